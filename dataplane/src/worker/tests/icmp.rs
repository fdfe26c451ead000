//! ICMP errors about connections, both ways and by every method, with
//! etherparse building the errors and checking what came out.

use super::traffic::NAT_RS;
use super::*;
use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{Icmpv4Type, NetSlice, TransportSlice};

const ROUTER: [u8; 4] = [10, 0, 0, 1];
const RIP: [u8; 4] = [10, 0, 0, 11];

/// The first 28 bytes (IP header and 8 more) of a TCP packet from
/// `src:sport` to `dst:dport`: what an ICMP error quotes.
fn quote(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src, dst, 63)
        .tcp(sport, dport, 7, 64240)
        .ack(1)
        .write(&mut v, &[0x55; 1400])
        .unwrap();
    v.truncate(28);
    v
}

/// A "fragmentation needed" (next-hop MTU 1400) from `from` to `to`, from
/// `mac`, quoting `quoted`.
fn frag_needed(from: [u8; 4], to: [u8; 4], mac: [u8; 6], quoted: &[u8]) -> Vec<u8> {
    let t =
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 });
    let mut v = Vec::new();
    PacketBuilder::ethernet2(mac, DIRECTOR_MAC)
        .ipv4(from, to, 64)
        .icmpv4(t)
        .write(&mut v, quoted)
        .unwrap();
    v
}

/// The outer addresses of `frame`, and the quoted packet's addresses and
/// ports, after checking the outer, ICMP and quoted IP checksums.
fn read(frame: &[u8]) -> ([u8; 4], [u8; 4], [u8; 4], u16, [u8; 4], u16) {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "outer IP checksum");
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else {
        panic!("not ICMP")
    };
    assert_eq!(wire::checksum(icmp.slice()), 0, "ICMP checksum");
    let (q, _) = etherparse::Ipv4Header::from_slice(icmp.payload()).unwrap();
    assert_eq!(q.header_checksum, q.calc_header_checksum(), "quoted IP checksum");
    let ports = &icmp.payload()[20..24];
    let port = |i: usize| u16::from_be_bytes([ports[i], ports[i + 1]]);
    (h.source, h.destination, q.source, port(0), q.destination, port(2))
}

/// A forwarder with `lines` and one connection from CIP:40000 to VIP:80.
fn connected(lines: &[&str]) -> Forwarder {
    let (mut f, _) = forwarder(lines);
    assert_eq!(send(&mut f, &tcp(40000, 80, Seg::Syn), 0).0, Verdict::Tx(0));
    f
}

#[test]
fn dr_sends_an_error_about_a_reply_to_the_connections_server() {
    let mut f = connected(TWO_RS);
    let err = frag_needed(ROUTER, VIP, CLIENT_MAC, &quote(VIP, 80, CIP, 40000));
    let (v, out) = send(&mut f, &err, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(dst_mac(&out), RS1_MAC, "the connection's server");
    assert_eq!(&out[12..], &err[12..], "DR changes only the MACs");
    assert_eq!(f.stats().icmp_errors.get(), 1);
    // The same error about a connection nobody has is dropped, counted.
    let stray = frag_needed(ROUTER, VIP, CLIENT_MAC, &quote(VIP, 80, CIP, 40001));
    assert_eq!(send(&mut f, &stray, 0).0, Verdict::Drop(Reason::IcmpNoConnection));
    assert_eq!(f.table().len(), 1, "an error creates no connection");
}

#[test]
fn tun_encapsulates_an_error_to_the_connections_server() {
    let mut f = connected(&[
        "-A -t 10.0.0.100:80 -s rr",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -i",
    ]);
    let err = frag_needed(ROUTER, VIP, CLIENT_MAC, &quote(VIP, 80, CIP, 40000));
    let (v, out) = send(&mut f, &err, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!((&out[23], &out[30..34]), (&4, &RIP[..]), "IP-in-IP to the server");
    assert_eq!(&out[34..], &err[14..], "the error rides inside whole");
}

#[test]
fn nat_translates_an_error_from_the_client_side_to_the_server() {
    let mut f = connected(NAT_RS);
    let err = frag_needed(ROUTER, VIP, CLIENT_MAC, &quote(VIP, 80, CIP, 40000));
    let (v, out) = send(&mut f, &err, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(dst_mac(&out), RS1_MAC);
    // As the server sent it: from RIP:8080 to the client.
    assert_eq!(read(&out), (ROUTER, RIP, RIP, 8080, CIP, 40000));
}

#[test]
fn nat_translates_an_error_from_the_server_side_to_the_client() {
    let mut f = connected(NAT_RS);
    // The server (or a router on its side) could not take the request the
    // director sent it, from the client to RIP:8080.
    let err = frag_needed(RIP, CIP, RS1_MAC, &quote(CIP, 40000, RIP, 8080));
    let (v, out) = send(&mut f, &err, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(dst_mac(&out), CLIENT_MAC);
    // As the client sent it: to VIP:80, and the error from the VIP.
    assert_eq!(read(&out), (VIP, CIP, CIP, 40000, VIP, 80));
    assert_eq!(f.stats().icmp_errors.get(), 1);
}

#[test]
fn errors_that_quote_too_little_or_no_service_are_dropped() {
    let mut f = connected(NAT_RS);
    let cut = frag_needed(ROUTER, VIP, CLIENT_MAC, &quote(VIP, 80, CIP, 40000)[..24]);
    assert_eq!(send(&mut f, &cut, 0).0, Verdict::Drop(Reason::IcmpQuote));
    let other = frag_needed(ROUTER, VIP, CLIENT_MAC, &quote([10, 0, 0, 50], 22, CIP, 40000));
    assert_eq!(send(&mut f, &other, 0).0, Verdict::Drop(Reason::NoService));
}

#[test]
fn two_workers_send_an_error_to_the_connections_owner() {
    let mut w = workers(2, NAT_RS);
    // Connections from many client ports, all arriving at worker 0.
    w[0].2.input = (40000..40040).map(|p| tcp(p, 80, Seg::Syn)).collect();
    run_all(&mut w);
    let errs: Vec<Vec<u8>> = (40000..40040)
        .map(|p| frag_needed(ROUTER, VIP, CLIENT_MAC, &quote(VIP, 80, CIP, p)))
        .collect();
    w[0].2.output.clear();
    w[1].2.output.clear();
    w[0].2.input = errs;
    run_all(&mut w);
    let out: Vec<&Vec<u8>> = w.iter().flat_map(|(_, _, io)| &io.output).collect();
    assert_eq!(out.len(), 40, "every error found its connection");
    let drops: u64 = w
        .iter()
        .map(|(f, _, _)| f.stats().drops(Reason::IcmpNoConnection))
        .sum();
    assert_eq!(drops, 0);
}
