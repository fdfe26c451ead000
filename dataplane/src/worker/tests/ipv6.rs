//! IPv6 through the same decisions as IPv4: DR, NAT66 both ways with
//! checksums checked by etherparse, TUN (IPv6-in-IPv6) and its "packet too
//! big", persistence by prefix, and malformed frames counted by reason.

use super::*;
use etherparse::{Icmpv6Type, NetSlice, TransportSlice};

const CIP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const VIP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const RIP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11];

const V6_RS: &[&str] = &[
    "-A -t [2001:db8::100]:80 -s rr",
    "-a -t [2001:db8::100]:80 -r [2001:db8::11]:80 -g",
    "-a -t [2001:db8::100]:80 -r [2001:db8::12]:80 -g",
    "-A -u [2001:db8::100]:53 -s rr",
    "-a -u [2001:db8::100]:53 -r [2001:db8::11]:5353 -m",
    "-A -t [2001:db8::100]:8080 -s rr",
    "-a -t [2001:db8::100]:8080 -r [2001:db8::11]:8081 -m",
    "-A -t [2001:db8::100]:443 -s rr",
    "-a -t [2001:db8::100]:443 -r [2001:db8::12]:443 -i",
    // And IPv4 beside it, in the same forwarder.
    "-A -t 10.0.0.100:80 -s rr",
    "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g",
];

fn tcp6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16, seg: Seg, payload: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv6(src, dst, 61)
        .tcp(sport, dport, 1000, 64240);
    let b = match seg {
        Seg::Syn => b.syn(),
        Seg::Ack => b.ack(1),
        Seg::Fin => b.ack(1).fin(),
    };
    let mut v = Vec::new();
    b.write(&mut v, &vec![7u8; payload]).unwrap();
    v
}

fn udp6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv6(src, dst, 64)
        .udp(sport, dport)
        .write(&mut v, b"query")
        .unwrap();
    v
}

/// The IPv6 addresses, ports and whether the TCP/UDP checksum is right,
/// with etherparse as the oracle.
fn view6(frame: &[u8]) -> ([u8; 16], u16, [u8; 16], u16, bool) {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!("not IPv6")
    };
    let h = ip.header().to_header();
    match p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let ok = t.checksum() == t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap();
            (h.source, t.source_port(), h.destination, t.destination_port(), ok)
        }
        Some(TransportSlice::Udp(u)) => {
            let ok = u.checksum() == u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap();
            (h.source, u.source_port(), h.destination, u.destination_port(), ok)
        }
        other => panic!("not TCP or UDP: {other:?}"),
    }
}

#[test]
fn dr_round_robin_and_udp_over_ipv6_beside_ipv4() {
    let (mut f, _) = forwarder(V6_RS);
    let mut macs = Vec::new();
    for p in 0..10 {
        let (v, out) = send(&mut f, &tcp6(CIP6, 40000 + p, VIP6, 80, Seg::Syn, 0), 0);
        assert_eq!(v, Verdict::Tx(0));
        macs.push(dst_mac(&out));
        // DR: only the MACs change.
        let before = tcp6(CIP6, 40000 + p, VIP6, 80, Seg::Syn, 0);
        assert_eq!(out[12..], before[12..]);
    }
    let alternating: Vec<_> = (0..10)
        .map(|i| if i % 2 == 0 { RS1_MAC } else { RS2_MAC })
        .collect();
    assert_eq!(macs, alternating, "rr over two IPv6 servers");
    // The connection sticks to its server.
    let (_, out) = send(&mut f, &tcp6(CIP6, 40001, VIP6, 80, Seg::Ack, 10), 1);
    assert_eq!(dst_mac(&out), RS2_MAC);
    assert_eq!((f.table6().len(), f.table().len()), (10, 0));
    // IPv4 goes its own way, in its own table.
    assert_eq!(send(&mut f, &tcp(40000, 80, Seg::Syn), 0).0, Verdict::Tx(0));
    assert_eq!((f.table6().len(), f.table().len()), (10, 1));
    // UDP over NAT66.
    let (v, out) = send(&mut f, &udp6(CIP6, 5000, VIP6, 53), 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(view6(&out), (CIP6, 5000, RIP6, 5353, true));
    // No such service.
    assert_eq!(
        send(&mut f, &tcp6(CIP6, 1, VIP6, 81, Seg::Syn, 0), 0).0,
        Verdict::Drop(Reason::NoService)
    );
}

#[test]
fn nat66_rewrites_both_ways_with_right_checksums() {
    let (mut f, _) = forwarder(V6_RS);
    for payload in [0, 1, 100, 1000] {
        let cport = 30000 + payload as u16;
        let (v, out) = send(&mut f, &tcp6(CIP6, cport, VIP6, 8080, Seg::Syn, payload), 0);
        assert_eq!(v, Verdict::Tx(0));
        assert_eq!(view6(&out), (CIP6, cport, RIP6, 8081, true), "payload {payload}");
        assert_eq!(dst_mac(&out), RS1_MAC);
        let (v, back) = send(&mut f, &tcp6(RIP6, 8081, CIP6, cport, Seg::Ack, payload), 0);
        assert_eq!(v, Verdict::Tx(0));
        assert_eq!(view6(&back), (VIP6, 8080, CIP6, cport, true));
        assert_eq!(dst_mac(&back), CLIENT_MAC);
    }
    // A reply with no connection is not forwarded.
    assert_eq!(
        send(&mut f, &tcp6(RIP6, 8081, CIP6, 1, Seg::Ack, 0), 0).0,
        Verdict::Drop(Reason::NoConnection)
    );
}

#[test]
fn tun6_wraps_in_ipv6_or_answers_packet_too_big() {
    let (mut f, _) = forwarder(V6_RS);
    let inner = tcp6(CIP6, 40000, VIP6, 443, Seg::Syn, 100);
    let (v, out) = send(&mut f, &inner, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(out.len(), inner.len() + 40);
    assert_eq!(&out[54..], &inner[14..], "inner packet changed");
    let p = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!()
    };
    let h = ip.header();
    assert_eq!(h.next_header(), etherparse::IpNumber(41));
    assert_eq!(
        h.source(),
        0x2001_0db8_0000_0000_0000_0000_0000_000a_u128.to_be_bytes()
    );
    assert_eq!(h.destination()[15], 0x12);
    assert_eq!(
        (h.hop_limit(), usize::from(h.payload_length())),
        (61, inner.len() - 14)
    );
    assert_eq!(dst_mac(&out), RS2_MAC);

    // 1460 bytes of payload: 1520 inner + 40 outer passes the 1500 MTU.
    let big = tcp6(CIP6, 40001, VIP6, 443, Seg::Syn, 1440);
    let (v, ptb) = send(&mut f, &big, 0);
    assert_eq!(v, Verdict::Tx(0), "the error goes back out of the ingress link");
    assert_eq!(f.stats().frag_needed.get(), 1);
    assert_eq!(dst_mac(&ptb), CLIENT_MAC);
    let p = SlicedPacket::from_ethernet(&ptb).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!()
    };
    let h = ip.header().to_header();
    assert_eq!(
        (h.source, h.destination),
        (VIP6, CIP6),
        "from the VIP to the client"
    );
    let Some(TransportSlice::Icmpv6(icmp)) = p.transport else {
        panic!("not ICMPv6: {:?}", p.transport)
    };
    assert_eq!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1460 });
    let want = icmp
        .icmp_type()
        .calc_checksum(h.source, h.destination, icmp.payload())
        .unwrap();
    assert_eq!(icmp.checksum(), want, "ICMPv6 checksum");
    assert_eq!(
        &icmp.payload()[..40],
        &big[14..54],
        "the quote starts with the packet"
    );
    assert!(ptb.len() - 14 <= 1280, "fits the IPv6 minimum MTU");
}

#[test]
fn persistence_follows_the_prefix_length() {
    let (mut f, _) = forwarder(&[
        "-A -t [2001:db8::100]:80 -s rr -p 300 -M 64",
        "-a -t [2001:db8::100]:80 -r [2001:db8::11]:80 -g",
        "-a -t [2001:db8::100]:80 -r [2001:db8::12]:80 -g",
    ]);
    let client = |net: u8, host: u8| {
        let mut a = CIP6;
        a[7] = net;
        a[15] = host;
        a
    };
    let first = dst_mac(&send(&mut f, &tcp6(client(1, 1), 1, VIP6, 80, Seg::Syn, 0), 0).1);
    // Other hosts and ports of the same /64 follow the template.
    for (host, port) in [(2, 2), (200, 3), (1, 4)] {
        let out = send(&mut f, &tcp6(client(1, host), port, VIP6, 80, Seg::Syn, 0), 0).1;
        assert_eq!(dst_mac(&out), first);
    }
    // The next /64 is scheduled anew: rr gives it the other server.
    let other = dst_mac(&send(&mut f, &tcp6(client(2, 1), 5, VIP6, 80, Seg::Syn, 0), 0).1);
    assert_ne!(other, first);
    let mut buf = Vec::with_capacity(16);
    f.dump(&mut buf, 0);
    let templates: Vec<_> = buf.iter().filter(|c| c.template).map(|c| c.cip).collect();
    assert_eq!(templates.len(), 2, "one template per /64");
    assert!(templates.contains(&"2001:db8:1:1::".parse::<std::net::IpAddr>().unwrap()));
}

#[test]
fn malformed_ipv6_frames_are_counted_by_reason() {
    let (mut f, _) = forwarder(V6_RS);
    let good = tcp6(CIP6, 40000, VIP6, 80, Seg::Syn, 4);
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut v = good.clone();
        edit(&mut v);
        v
    };
    // Extension headers: `n` destination-options headers of 8 bytes each
    // before TCP.
    let chain = |n: usize| {
        let mut v = good.clone();
        let mut ext = Vec::new();
        for i in 0..n {
            ext.extend([if i + 1 == n { 6 } else { 60 }, 0, 1, 4, 0, 0, 0, 0]);
        }
        v.splice(54..54, ext);
        v[20] = 60;
        let len = (v.len() - 54) as u16;
        v[18..20].copy_from_slice(&len.to_be_bytes());
        v
    };
    assert_eq!(
        send(&mut f, &chain(3), 0).0,
        Verdict::Tx(0),
        "a short chain is walked"
    );
    let cases: Vec<(Vec<u8>, Reason)> = vec![
        (good[..40].to_vec(), Reason::TruncatedIp),
        (with(&|v| v[14] = 0x50), Reason::BadVersion),
        (with(&|v| v[19] = 0xff), Reason::BadTotalLength),
        (chain(9), Reason::ExtHeaders),
        (
            with(&|v| {
                // A hop-by-hop header that claims 2 KiB.
                v[20] = 0;
                v[55] = 0xff;
            }),
            Reason::ExtHeaders,
        ),
        (with(&|v| v[20] = 47), Reason::UnsupportedProtocol),
        (
            with(&|v| {
                v.truncate(54 + 10);
                v[18..20].copy_from_slice(&10u16.to_be_bytes());
            }),
            Reason::TruncatedL4,
        ),
    ];
    for (frame, reason) in &cases {
        assert_eq!(
            send(&mut f, frame, 0).0,
            Verdict::Drop(*reason),
            "{}",
            reason.name()
        );
    }
    for reason in [
        Reason::TruncatedIp,
        Reason::BadVersion,
        Reason::BadTotalLength,
        Reason::UnsupportedProtocol,
    ] {
        assert_eq!(f.stats().drops(reason), 1, "{}", reason.name());
    }
    assert_eq!(f.stats().drops(Reason::ExtHeaders), 2);
    // Noise with an IPv6 EtherType never panics.
    let mut r = testkit::Rng::new(0x2545_f491_4f6c_dd1d);
    for _ in 0..20_000 {
        let len = 14 + r.below(160) as usize;
        let mut frame = r.bytes(len);
        frame[12..14].copy_from_slice(&[0x86, 0xdd]);
        if frame.len() > 54 {
            frame[14] = 0x60;
            frame[38..54].copy_from_slice(&VIP6);
        }
        let _ = send(&mut f, &frame, 0);
    }
}

/// A UDP datagram of `len` payload bytes from `src:sport` to `dst:dport` in
/// IPv6 fragments (fragment header, identification `id`) of at most 1448
/// bytes of fragmentable part (1500 MTU less 40 and 8, a multiple of 8).
fn fragments6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16, len: usize, id: u32) -> Vec<Vec<u8>> {
    let payload: Vec<u8> = (0..len).map(|i| (i * 13 + id as usize) as u8).collect();
    let ip = etherparse::Ipv6Header {
        payload_length: 0,
        next_header: etherparse::IpNumber::UDP,
        hop_limit: 64,
        source: src,
        destination: dst,
        ..Default::default()
    };
    let udp = etherparse::UdpHeader::with_ipv6_checksum(sport, dport, &ip, &payload).unwrap();
    let mut datagram = udp.to_bytes().to_vec();
    datagram.extend_from_slice(&payload);
    let chunks: Vec<&[u8]> = datagram.chunks(1448).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut h = ip.clone();
            h.next_header = etherparse::IpNumber(44);
            h.payload_length = (8 + chunk.len()) as u16;
            let more = u16::from(i + 1 < chunks.len());
            let word = ((i * 1448 / 8) as u16) << 3 | more;
            let mut v = Vec::new();
            v.extend_from_slice(&DIRECTOR_MAC);
            v.extend_from_slice(&CLIENT_MAC);
            v.extend_from_slice(&[0x86, 0xdd]);
            v.extend_from_slice(&h.to_bytes());
            v.extend_from_slice(&[17, 0]);
            v.extend_from_slice(&word.to_be_bytes());
            v.extend_from_slice(&id.to_be_bytes());
            v.extend_from_slice(chunk);
            v
        })
        .collect()
}

#[test]
fn ipv6_fragments_follow_their_first_fragment_and_nat_rewrites_each() {
    let (mut f, _) = forwarder(&[
        "-A -u [2001:db8::100]:53 -s rr",
        "-a -u [2001:db8::100]:53 -r [2001:db8::11]:53 -g",
        "-a -u [2001:db8::100]:53 -r [2001:db8::12]:53 -g",
        "-A -u [2001:db8::100]:54 -s rr",
        "-a -u [2001:db8::100]:54 -r [2001:db8::11]:5454 -m",
    ]);
    // Two datagrams from two ports: rr gives them different servers, and
    // each fragment goes where its first one went.
    for (sport, want) in [(1000, RS1_MAC), (1001, RS2_MAC)] {
        let frames = fragments6(CIP6, sport, VIP6, 53, 4000, u32::from(sport));
        assert_eq!(frames.len(), 3);
        for fr in &frames {
            let (v, out) = send(&mut f, fr, 0);
            assert_eq!(v, Verdict::Tx(0));
            assert_eq!(dst_mac(&out), want);
            assert_eq!(&out[14..], &fr[14..], "DR changes no byte past the MACs");
        }
    }
    // A later fragment of a datagram never seen is held, not forwarded.
    let stray = fragments6(CIP6, 2000, VIP6, 53, 4000, 77);
    assert_eq!(send(&mut f, &stray[1], 0).0, Verdict::Consumed);
    // NAT66: every fragment's destination becomes the server's.
    for fr in fragments6(CIP6, 3000, VIP6, 54, 3000, 9) {
        let (v, out) = send(&mut f, &fr, 0);
        assert_eq!(v, Verdict::Tx(0));
        assert_eq!(&out[38..54], &RIP6, "fragment's destination");
    }
    assert_eq!(f.stats().frags_held.get(), 1);
}

/// An ICMPv6 error of `kind` from `src` to `dst` quoting `quoted` (an IPv6
/// packet from its header on), checksummed by etherparse.
fn icmp6_error(src: [u8; 16], dst: [u8; 16], kind: Icmpv6Type, quoted: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv6(src, dst, 64)
        .icmpv6(kind)
        .write(&mut v, quoted)
        .unwrap();
    v
}

/// The ICMPv6 message of `frame`: (outer source, outer destination, whether
/// its checksum is right, the quoted packet).
fn icmp6_view(frame: &[u8]) -> ([u8; 16], [u8; 16], bool, Vec<u8>) {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!("not IPv6")
    };
    let h = ip.header().to_header();
    let Some(TransportSlice::Icmpv6(icmp)) = p.transport else {
        panic!("not ICMPv6")
    };
    let want = icmp
        .icmp_type()
        .calc_checksum(h.source, h.destination, icmp.payload())
        .unwrap();
    (
        h.source,
        h.destination,
        icmp.checksum() == want,
        icmp.payload().to_vec(),
    )
}

#[test]
fn icmpv6_errors_about_a_connection_go_where_ipvs_sends_them() {
    let (mut f, _) = forwarder(V6_RS);
    let unreach = Icmpv6Type::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::Port);
    // NAT66: a connection CIP6:30000 -> VIP6:8080 -> RIP6:8081.
    assert_eq!(
        send(&mut f, &tcp6(CIP6, 30000, VIP6, 8080, Seg::Syn, 0), 0).0,
        Verdict::Tx(0)
    );
    // From the client's side, about VIP6:8080 -> CIP6:30000 (a reply the
    // client could not take): to the real server, translated.
    let reply = tcp6(VIP6, 8080, CIP6, 30000, Seg::Ack, 0);
    let router = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let err = icmp6_error(router, VIP6, unreach, &reply[14..]);
    let (v, out) = send(&mut f, &err, 0);
    assert_eq!(
        v,
        Verdict::Tx(0),
        "{:?}",
        f.stats().drops(Reason::IcmpNoConnection)
    );
    assert_eq!(dst_mac(&out), RS1_MAC);
    let (src, dst, ok, quote) = icmp6_view(&out);
    assert_eq!((src, dst, ok), (router, RIP6, true));
    assert_eq!(
        (&quote[8..24], &quote[40..42]),
        (&RIP6[..], &8081u16.to_be_bytes()[..]),
        "quote translated"
    );
    // From the real server's side, about CIP6:30000 -> RIP6:8081: back to
    // the client, from the VIP.
    let to_rs = tcp6(CIP6, 30000, RIP6, 8081, Seg::Ack, 0);
    let err = icmp6_error(RIP6, CIP6, Icmpv6Type::PacketTooBig { mtu: 1280 }, &to_rs[14..]);
    let (v, out) = send(&mut f, &err, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(dst_mac(&out), CLIENT_MAC);
    let (src, dst, ok, quote) = icmp6_view(&out);
    assert_eq!((src, dst, ok), (VIP6, CIP6, true));
    assert_eq!(
        (&quote[24..40], &quote[42..44]),
        (&VIP6[..], &8080u16.to_be_bytes()[..])
    );
    // DR: to the connection's server, only the MACs changed.
    assert_eq!(
        send(&mut f, &tcp6(CIP6, 30001, VIP6, 80, Seg::Syn, 0), 0).0,
        Verdict::Tx(0)
    );
    let reply = tcp6(VIP6, 80, CIP6, 30001, Seg::Ack, 0);
    let err = icmp6_error(router, VIP6, Icmpv6Type::PacketTooBig { mtu: 1400 }, &reply[14..]);
    let (v, out) = send(&mut f, &err, 0);
    assert_eq!((v, dst_mac(&out)), (Verdict::Tx(0), RS1_MAC));
    assert_eq!(&out[12..], &err[12..]);
    // About no connection: dropped as such; a cut quote: as icmp_quote.
    let stray = tcp6(VIP6, 80, CIP6, 1, Seg::Ack, 0);
    let err = icmp6_error(router, VIP6, unreach, &stray[14..]);
    assert_eq!(send(&mut f, &err, 0).0, Verdict::Drop(Reason::IcmpNoConnection));
    let err = icmp6_error(router, VIP6, unreach, &stray[14..50]);
    assert_eq!(send(&mut f, &err, 0).0, Verdict::Drop(Reason::IcmpQuote));
    assert_eq!(f.stats().icmp_errors.get(), 3);
}

#[test]
fn ipv6_connections_are_synced_and_a_backup_takes_them_over() {
    let (mut m, sm) = super::sync::master(V6_RS);
    for seg in [Seg::Syn, Seg::Ack, Seg::Ack] {
        assert_eq!(
            send(&mut m, &tcp6(CIP6, 40000, VIP6, 8080, seg, 0), 0).0,
            Verdict::Tx(0)
        );
    }
    let got: Vec<_> = std::iter::from_fn(|| sm.rings[0].pop()).collect();
    assert_eq!(got.len(), 1, "at the third packet, as IPv4");
    let c = got[0];
    assert!(c.v6);
    assert_eq!(
        (c.cip, c.vip, c.rip, c.rport),
        (
            u128::from_be_bytes(CIP6),
            u128::from_be_bytes(VIP6),
            u128::from_be_bytes(RIP6),
            8081
        )
    );
    // A backup that never saw the SYN forwards the next packet, and the
    // server's reply, by the learnt connection.
    let (mut b, _) = forwarder(V6_RS);
    b.learn_conn(&c, 0);
    assert_eq!((b.table6().len(), b.table().len()), (1, 0));
    let (v, out) = send(&mut b, &tcp6(CIP6, 40000, VIP6, 8080, Seg::Ack, 10), 1);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(view6(&out), (CIP6, 40000, RIP6, 8081, true));
    let (v, back) = send(&mut b, &tcp6(RIP6, 8081, CIP6, 40000, Seg::Ack, 10), 1);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(view6(&back), (VIP6, 8080, CIP6, 40000, true));
}

#[test]
fn ipv6_mark_rules_select_an_ipv6_fwmark_service() {
    let (mut f, _) = forwarder(&[
        "--mark -A -p tcp -d 2001:db8::100/128 --dports 443,8443 -j MARK --set-mark 5",
        "-A -f 5 -6 -s rr",
        "-a -f 5 -6 -r [2001:db8::12]:0 -g",
        // An IPv4 mark service with the same number is another service.
        "--mark -A -p tcp -d 10.0.0.100 --dport 443 -j MARK --set-mark 5",
        "-A -f 5 -s rr",
        "-a -f 5 -r 10.0.0.11:0 -g",
    ]);
    for port in [443, 8443] {
        let (v, out) = send(&mut f, &tcp6(CIP6, 40000, VIP6, port, Seg::Syn, 0), 0);
        assert_eq!((v, dst_mac(&out)), (Verdict::Tx(0), RS2_MAC), "port {port}");
    }
    assert_eq!(
        send(&mut f, &tcp6(CIP6, 40000, VIP6, 444, Seg::Syn, 0), 0).0,
        Verdict::Drop(Reason::NoService)
    );
    let (v, out) = send(&mut f, &tcp(40000, 443, Seg::Syn), 0);
    assert_eq!(
        (v, dst_mac(&out)),
        (Verdict::Tx(0), RS1_MAC),
        "IPv4 mark 5 is its own service"
    );
}
