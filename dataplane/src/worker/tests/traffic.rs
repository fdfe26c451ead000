//! Traffic as real networks send it: checksums a sender's offload left
//! partial, and IPv4 options, through every forwarding method.

use super::*;
use etherparse::{IpHeaders, Ipv4Header, NetSlice, TransportSlice};

pub(super) const NAT_RS: &[&str] = &[
    "-A -t 10.0.0.100:80 -s rr",
    "-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m",
    "-A -u 10.0.0.100:53 -s rr",
    "-a -u 10.0.0.100:53 -r 10.0.0.11:5353 -m",
];

/// Leave `frame`'s TCP/UDP checksum as a sender with checksum offload does:
/// the folded pseudo-header sum (Linux's CHECKSUM_PARTIAL).
fn partial(mut frame: Vec<u8>) -> Vec<u8> {
    let h = wire::parse(&frame).unwrap();
    let at = h.l4 + if h.proto == PROTO_TCP { 16 } else { 6 };
    let p = wire::fold(wire::pseudo_sum(h.src, h.dst, h.proto, (h.end - h.l4) as u16));
    frame[at..at + 2].copy_from_slice(&p.to_be_bytes());
    frame
}

/// Check, with etherparse as the oracle, that the IPv4 packet `ip` (from
/// its IP header on) has right IP and TCP/UDP checksums.
fn checksums_ok(ip: &[u8]) -> bool {
    let p = SlicedPacket::from_ip(ip).unwrap();
    let Some(NetSlice::Ipv4(v4)) = &p.net else {
        panic!("not IPv4")
    };
    let h = v4.header().to_header();
    let ip_ok = h.header_checksum == h.calc_header_checksum();
    ip_ok
        && match p.transport {
            Some(TransportSlice::Tcp(t)) => {
                t.checksum() == t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap()
            }
            Some(TransportSlice::Udp(u)) => {
                u.checksum() == u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap()
            }
            _ => panic!("not TCP or UDP"),
        }
}

/// A client SYN to VIP:80 whose IP header carries `options`.
fn syn_with_options(options: &[u8]) -> Vec<u8> {
    let mut ip = Ipv4Header::new(0, 64, etherparse::IpNumber::TCP, CIP, VIP).unwrap();
    ip.options = options.try_into().unwrap();
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ip(IpHeaders::Ipv4(ip, Default::default()))
        .tcp(40000, 80, 1000, 64240)
        .syn()
        .write(&mut v, b"")
        .unwrap();
    v
}

#[test]
fn partial_checksums_are_completed_by_every_method() {
    for method in ["-g", "-m", "-i"] {
        let lines = [
            "-A -t 10.0.0.100:80 -s rr",
            &format!("-a -t 10.0.0.100:80 -r 10.0.0.11:80 {method}"),
            "-A -u 10.0.0.100:53 -s rr",
            &format!("-a -u 10.0.0.100:53 -r 10.0.0.11:53 {method}"),
        ];
        let (mut f, _) = forwarder(&lines);
        for input in [tcp(40000, 80, Seg::Syn), udp(5000, 53)] {
            let input = partial(input);
            assert!(!checksums_ok(&input[14..]), "{method}: the fixture is partial");
            let (v, out) = send(&mut f, &input, 0);
            assert_eq!(v, Verdict::Tx(0), "{method}");
            // TUN: the inner packet is what the server checks.
            let ip = if method == "-i" { &out[34..] } else { &out[14..] };
            assert!(checksums_ok(ip), "{method}: checksum not completed");
        }
        assert_eq!(f.stats().csum_completed.get(), 2, "{method}");
    }
}

#[test]
fn nat_replies_with_partial_checksums_are_completed_and_translated() {
    let (mut f, _) = forwarder(NAT_RS);
    let (_, fwd) = send(&mut f, &partial(tcp(40000, 80, Seg::Syn)), 0);
    assert!(checksums_ok(&fwd[14..]));
    // The real server answers with its own offload: SYN-ACK from RIP:8080.
    let mut reply = Vec::new();
    PacketBuilder::ethernet2(RS1_MAC, DIRECTOR_MAC)
        .ipv4([10, 0, 0, 11], CIP, 64)
        .tcp(8080, 40000, 5000, 64240)
        .syn()
        .ack(1001)
        .write(&mut reply, b"")
        .unwrap();
    let (v, out) = send(&mut f, &partial(reply), 0);
    assert_eq!(v, Verdict::Tx(0));
    assert!(checksums_ok(&out[14..]), "reply checksum");
    assert_eq!(&out[26..30], &VIP, "reply source is the VIP");
    assert_eq!(
        &out[34..36],
        &80u16.to_be_bytes(),
        "reply source port is the virtual port"
    );
    assert_eq!(f.stats().csum_completed.get(), 2);
}

#[test]
fn a_whole_checksum_is_left_alone_and_not_counted() {
    let (mut f, _) = forwarder(TWO_RS);
    let input = tcp(40000, 80, Seg::Syn);
    let (_, out) = send(&mut f, &input, 0);
    assert_eq!(&out[12..], &input[12..], "DR changed more than the MACs");
    assert_eq!(f.stats().csum_completed.get(), 0);
}

#[test]
fn ip_options_are_forwarded_by_every_method() {
    // Record route (7, length 7, pointer 4, one slot) and End of Options.
    let options = [7, 7, 4, 0, 0, 0, 0, 0];
    for (method, port) in [("-g", 80u16), ("-m", 8080), ("-i", 80)] {
        let lines = [
            "-A -t 10.0.0.100:80 -s rr",
            &format!("-a -t 10.0.0.100:80 -r 10.0.0.11:{port} {method}"),
        ];
        let (mut f, _) = forwarder(&lines);
        let input = partial(syn_with_options(&options));
        let (v, out) = send(&mut f, &input, 0);
        assert_eq!(v, Verdict::Tx(0), "{method}");
        let ip = if method == "-i" { &out[34..] } else { &out[14..] };
        assert!(checksums_ok(ip), "{method}");
        assert_eq!(&ip[20..28], &options, "{method}: options changed");
        let p = SlicedPacket::from_ip(ip).unwrap();
        let Some(TransportSlice::Tcp(t)) = p.transport else {
            panic!("{method}")
        };
        assert_eq!(t.destination_port(), port, "{method}");
    }
}

#[test]
fn malformed_options_are_dropped_and_counted() {
    let (mut f, _) = forwarder(TWO_RS);
    // An option whose length runs past the header, and one of length 1.
    for bad in [[7u8, 12, 4, 0], [0x44, 1, 0, 0]] {
        let mut frame = syn_with_options(&[1, 1, 1, 1]);
        frame[34..38].copy_from_slice(&bad);
        let (v, out) = send(&mut f, &frame, 0);
        assert_eq!(v, Verdict::Drop(Reason::IpOptions), "{bad:?}");
        assert_eq!(out, frame);
    }
    assert_eq!(f.stats().drops(Reason::IpOptions), 2);
}

#[test]
fn a_first_fragment_keeps_its_checksum() {
    let (mut f, _) = forwarder(TWO_RS);
    // A UDP first fragment whose checksum field happens to equal the
    // pseudo-header sum of this fragment: it covers the whole datagram,
    // so it must not be "completed" from this fragment's bytes.
    let mut input = partial(udp(5000, 53));
    input[20] |= 0x20; // More Fragments
    let (v, out) = send(&mut f, &input, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&out[12..], &input[12..], "a first fragment was changed");
    assert_eq!(f.stats().csum_completed.get(), 0);
}
