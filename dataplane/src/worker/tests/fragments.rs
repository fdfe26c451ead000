//! IPv4 fragments: every fragment of a datagram goes where its first one
//! went, with one worker and with two, whatever order they come in; NAT
//! rewrites every fragment; memory stays bounded. etherparse reassembles
//! what came out, as the real server's kernel would.

use super::*;
use crate::frag::{HOLD_FRAMES, HOLD_SECS};
use etherparse::defrag::IpDefragPool;
use etherparse::{Ipv4Header, NetSlice, UdpHeader};

const UDP_TWO_RS: &[&str] = &[
    "-A -u 10.0.0.100:53 -s rr",
    "-a -u 10.0.0.100:53 -r 10.0.0.11:53 -g",
    "-a -u 10.0.0.100:53 -r 10.0.0.12:53 -g",
];

const UDP_NAT: &[&str] = &[
    "-A -u 10.0.0.100:53 -s rr",
    "-a -u 10.0.0.100:53 -r 10.0.0.11:5353 -m",
];

/// A UDP datagram of `len` payload bytes from `src:sport` to `dst:dport`,
/// cut into fragments of at most 1480 bytes of IP payload (a 1500 MTU) with
/// IP id `id`, as the sender's kernel cuts it with DF off.
fn fragments(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, len: usize, id: u16) -> Vec<Vec<u8>> {
    let payload: Vec<u8> = (0..len).map(|i| (i * 7 + usize::from(id)) as u8).collect();
    let mut ip = Ipv4Header::new(0, 64, etherparse::IpNumber::UDP, src, dst).unwrap();
    let udp = UdpHeader::with_ipv4_checksum(sport, dport, &ip, &payload).unwrap();
    let mut datagram = udp.to_bytes().to_vec();
    datagram.extend_from_slice(&payload);
    let chunks: Vec<&[u8]> = datagram.chunks(1480).collect();
    ip.identification = id;
    ip.dont_fragment = false;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut h = ip.clone();
            h.set_payload_len(chunk.len()).unwrap();
            h.more_fragments = i + 1 < chunks.len();
            h.fragment_offset = etherparse::IpFragOffset::try_new((i * 1480 / 8) as u16).unwrap();
            h.header_checksum = h.calc_header_checksum();
            let mut v = Vec::new();
            v.extend_from_slice(&DIRECTOR_MAC);
            v.extend_from_slice(&CLIENT_MAC);
            v.extend_from_slice(&[0x08, 0x00]);
            v.extend_from_slice(&h.to_bytes());
            v.extend_from_slice(chunk);
            v
        })
        .collect()
}

/// Reassemble `frames` (fragments of one datagram, in any order) with
/// etherparse; return the IP header of the first and the UDP header and
/// payload, after checking every IP header checksum.
fn reassemble(frames: &[Vec<u8>]) -> (Ipv4Header, UdpHeader, Vec<u8>) {
    let mut pool: IpDefragPool = IpDefragPool::new();
    let mut first = None;
    let mut whole = None;
    for f in frames {
        let p = SlicedPacket::from_ethernet(f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "IP checksum");
        if h.fragment_offset.value() == 0 {
            first = Some(h);
        }
        if let Some(done) = pool.process_sliced_packet(&p, (), ()).unwrap() {
            whole = Some(done.payload);
        }
    }
    let whole = whole.expect("the datagram did not reassemble");
    let (udp, rest) = UdpHeader::from_slice(&whole).unwrap();
    (first.unwrap(), udp, rest.to_vec())
}

/// Check the reassembled UDP checksum against the addresses it now has.
fn udp_checksum_ok(ip: &Ipv4Header, udp: &UdpHeader, payload: &[u8]) -> bool {
    udp.checksum == udp.calc_checksum_ipv4(ip, payload).unwrap()
}

/// Send each of `frames` through `f`, insisting each goes on; return them.
fn forward_all(f: &mut Forwarder, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    frames
        .iter()
        .map(|fr| {
            let (v, out) = send(f, fr, 0);
            assert_eq!(v, Verdict::Tx(0));
            out
        })
        .collect()
}

#[test]
fn every_fragment_goes_where_its_first_went() {
    let (mut f, _) = forwarder(UDP_TWO_RS);
    let mut macs = Vec::new();
    for (cport, len) in [(40000, 3000), (40001, 9000)] {
        let frags = fragments(CIP, cport, VIP, 53, len, cport);
        assert!(frags.len() >= 3);
        let out: Vec<Vec<u8>> = frags
            .iter()
            .map(|fr| {
                let (v, out) = send(&mut f, fr, 0);
                assert_eq!(v, Verdict::Tx(0));
                assert_eq!(&out[12..], &fr[12..], "DR changes only the MACs");
                out
            })
            .collect();
        let mac = dst_mac(&out[0]);
        assert!(out.iter().all(|o| dst_mac(o) == mac), "fragments split");
        let (ip, udp, payload) = reassemble(&out);
        assert_eq!((payload.len(), udp.destination_port), (len, 53));
        assert!(udp_checksum_ok(&ip, &udp, &payload));
        macs.push(mac);
    }
    assert_eq!(macs, [RS1_MAC, RS2_MAC], "each datagram scheduled as its 5-tuple");
    // An unfragmented datagram of the first flow goes the same way.
    let (_, out) = send(&mut f, &fragments(CIP, 40000, VIP, 53, 100, 9)[0], 0);
    assert_eq!(dst_mac(&out), RS1_MAC);
}

#[test]
fn nat_rewrites_every_fragment_and_the_ports_of_the_first() {
    let (mut f, _) = forwarder(UDP_NAT);
    let out = forward_all(&mut f, &fragments(CIP, 40000, VIP, 53, 3000, 77));
    let (ip, udp, payload) = reassemble(&out);
    assert_eq!((ip.destination, udp.destination_port), ([10, 0, 0, 11], 5353));
    assert!(
        udp_checksum_ok(&ip, &udp, &payload),
        "the first fragment's checksum"
    );
    // The real server's fragmented answer goes back from the VIP.
    let reply = fragments([10, 0, 0, 11], 5353, CIP, 40000, 4000, 78);
    let back = forward_all(&mut f, &reply);
    let (ip, udp, payload) = reassemble(&back);
    assert_eq!((ip.source, udp.source_port, payload.len()), (VIP, 53, 4000));
    assert!(udp_checksum_ok(&ip, &udp, &payload));
    assert_eq!(f.stats().dest(0).out_pkts.get(), reply.len() as u64);
}

#[test]
fn tun_encapsulates_each_fragment() {
    let (mut f, _) = forwarder(&[
        "-A -u 10.0.0.100:53 -s rr",
        "-a -u 10.0.0.100:53 -r 10.0.0.11:53 -i",
    ]);
    for fr in fragments(CIP, 40000, VIP, 53, 3000, 5) {
        let (v, out) = send(&mut f, &fr, 0);
        assert_eq!(v, Verdict::Tx(0));
        let outer = SlicedPacket::from_ethernet(&out).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &outer.net else {
            panic!()
        };
        assert_eq!(
            (ip.header().protocol(), ip.header().destination()),
            (etherparse::IpNumber::IPV4, [10, 0, 0, 11])
        );
        assert_eq!(&out[14 + 20..], &fr[14..], "the fragment rides inside whole");
    }
}

#[test]
fn early_fragments_wait_for_their_first_and_then_go() {
    let mut w = workers(1, UDP_TWO_RS);
    let mut frags = fragments(CIP, 40000, VIP, 53, 3000, 11);
    frags.rotate_left(1); // the later fragments come first
    w[0].2.input = frags;
    run_all(&mut w);
    let (f, _, io) = &w[0];
    assert_eq!(f.stats().frags_held.get(), 2);
    assert_eq!(io.output.len(), 3, "held fragments were not sent");
    assert!(io.output.iter().all(|o| dst_mac(o) == RS1_MAC));
    assert_eq!(f.stats().drops(Reason::Fragment), 0);
    assert_eq!(f.stats().rx.get(), 3, "a held frame is received once");
}

#[test]
fn fragments_whose_first_never_comes_are_bounded_then_dropped() {
    let (mut f, _) = forwarder(UDP_TWO_RS);
    let flood = HOLD_FRAMES + 5;
    for id in 0..flood as u16 {
        let later = fragments(CIP, 40000, VIP, 53, 3000, id).remove(1);
        let (v, _) = send(&mut f, &later, 0);
        let want = if usize::from(id) < HOLD_FRAMES {
            Verdict::Consumed
        } else {
            Verdict::Drop(Reason::Fragment)
        };
        assert_eq!(v, want, "fragment {id}");
    }
    let mut io = MemIo {
        input: Vec::new(),
        output: Vec::new(),
        stop: Arc::new(AtomicBool::new(false)),
    };
    frags::release_held(&mut io, &mut f, HOLD_SECS - 1);
    assert_eq!(f.stats().drops(Reason::Fragment), 5, "still waiting");
    frags::release_held(&mut io, &mut f, HOLD_SECS);
    assert_eq!(f.stats().drops(Reason::Fragment), flood as u64);
    assert!(io.output.is_empty());
    // The hold is free again, and live traffic was never in its way.
    assert_eq!(send(&mut f, &udp(5353, 53), HOLD_SECS).0, Verdict::Tx(0));
}

#[test]
fn two_workers_agree_on_every_fragment_in_any_order() {
    let mut w = workers(2, UDP_TWO_RS);
    // Datagrams whose flow owner and fragment owner differ both ways.
    let mut datagrams = Vec::new();
    for (cport, id) in (40000..40100).zip(100..) {
        let frags = fragments(CIP, cport, VIP, 53, 3000, id);
        let flow = w[0].0.owner(&frags[0], 2).unwrap();
        let later = w[0].0.owner(&frags[1], 2).unwrap();
        if flow != later && !datagrams.iter().any(|(fl, _): &(usize, _)| *fl == flow) {
            datagrams.push((flow, frags));
        }
    }
    assert_eq!(datagrams.len(), 2, "both cases found");
    for (_, frags) in &datagrams {
        // The first fragment at worker 0, the later ones at worker 1.
        w[0].2.input.push(frags[0].clone());
        w[1].2.input.extend(frags[1..].iter().cloned());
    }
    // Two rounds: a decision made in the second worker's turn reaches the
    // first in its next.
    run_all(&mut w);
    run_all(&mut w);
    let out: Vec<&Vec<u8>> = w.iter().flat_map(|(_, _, io)| &io.output).collect();
    assert_eq!(out.len(), 6, "every fragment forwarded");
    for (_, frags) in &datagrams {
        let id = &frags[0][18..20];
        let mine: Vec<Vec<u8>> = out
            .iter()
            .filter(|o| &o[18..20] == id)
            .map(|o| o.to_vec())
            .collect();
        let mac = dst_mac(&mine[0]);
        assert!(
            mine.iter().all(|o| dst_mac(o) == mac),
            "fragments split between servers"
        );
        let (_, udp, payload) = reassemble(&mine);
        assert_eq!(payload.len(), 3000);
        assert_eq!(udp.destination_port, 53);
    }
    let drops: u64 = w.iter().map(|(f, _, _)| f.stats().drops(Reason::Fragment)).sum();
    assert_eq!(drops, 0);
}
