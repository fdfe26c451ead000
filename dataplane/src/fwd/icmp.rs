//! ICMP: the "fragmentation needed" (type 3, code 4, RFC 1191) the director
//! sends, and the NAT of ICMP errors about a connection that it forwards.
//!
//! [`frag_needed`] builds the error in place from the packet that did not
//! fit, back to its sender: as the kernel's `icmp_send(skb,
//! ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu)` from `ip_vs_tunnel_xmit`,
//! from the address the packet was sent to (the VIP).
//!
//! [`nat_error`] translates an error about a NAT connection as IPVS's
//! `ip_vs_nat_icmp`: the outer address and the quoted packet's address and
//! port, both IP header checksums and the ICMP checksum over the message.
//! The quoted TCP/UDP checksum is left as it was (IPVS does too; the quote is
//! usually cut before the data it covers, and no receiver checks it).

use super::nat::{self, Side};
use crate::frame::Frame;
use crate::wire::{
    ETHERTYPE_IPV4, ETHERTYPE_IPV6, Headers, ICMP_HEADER_LEN, IPV4_HEADER_LEN, IPV6_HEADER_LEN, Icmpv4,
    IpBits, Ipv4, Ipv6, L3, PROTO_ICMP, PROTO_ICMPV6, Quoted, fold, set_be16, set_be32, sum,
};

/// Bytes of the offending packet quoted: its IP header and 8 bytes more
/// (RFC 792); the header may carry up to 40 bytes of options.
const MAX_QUOTE: usize = 60 + 8;
/// Length of the built frame for a packet without IP options: Ethernet + IP
/// + ICMP header + quote.
pub const FRAG_NEEDED_LEN: usize = L3 + IPV4_HEADER_LEN + ICMP_HEADER_LEN + IPV4_HEADER_LEN + 8;
/// ICMP "destination unreachable", code "fragmentation needed and DF set".
const DEST_UNREACH: u8 = 3;
const FRAG_NEEDED: u8 = 4;
/// TTL of the errors we originate (the kernel's default).
const TTL: u8 = 64;

/// Turn `frame` (parsed as `h`) into the ICMP error for it, addressed back
/// to its sender, from `our_mac` to `their_mac`, with next-hop MTU `mtu`.
/// Return false (changing nothing) if the frame is too short to hold the
/// error.
pub fn frag_needed(
    frame: &mut dyn Frame,
    h: &Headers,
    our_mac: [u8; 6],
    their_mac: [u8; 6],
    mtu: u16,
) -> bool {
    let b = frame.bytes();
    // The offending packet's header, options included, and 8 bytes of L4.
    let quote_len = h.l4 - L3 + 8;
    let len = L3 + IPV4_HEADER_LEN + ICMP_HEADER_LEN + quote_len;
    if quote_len > MAX_QUOTE || b.len() < len || h.end < h.l4 + 8 {
        return false;
    }
    let mut quote = [0u8; MAX_QUOTE];
    quote[..quote_len].copy_from_slice(&b[L3..L3 + quote_len]);
    let mut eth = h.ethernet_mut(b);
    eth.set_dst(their_mac);
    eth.set_src(our_mac);
    eth.set_ethertype(ETHERTYPE_IPV4);
    let mut ip = Ipv4::new_unchecked(&mut b[L3..L3 + IPV4_HEADER_LEN]);
    ip.set_version_and_header_len(IPV4_HEADER_LEN);
    ip.set_tos(0);
    ip.set_total_len((len - L3) as u16);
    ip.set_ident(0);
    ip.set_flags_frag(0);
    ip.set_ttl(TTL);
    ip.set_protocol(PROTO_ICMP);
    ip.set_src(h.dst);
    ip.set_dst(h.src);
    ip.fill_checksum();
    let mut icmp = Icmpv4::new_unchecked(&mut b[L3 + IPV4_HEADER_LEN..len]);
    icmp.set_type_code(DEST_UNREACH, FRAG_NEEDED);
    icmp.set_next_hop_mtu(mtu);
    icmp.payload_mut().copy_from_slice(&quote[..quote_len]);
    icmp.fill_checksum();
    frame.truncate(len)
}

/// ICMPv6 "packet too big" (RFC 4443 §3.2).
const PACKET_TOO_BIG: u8 = 2;
/// An ICMPv6 error, quote included, fits the IPv6 minimum MTU.
const IPV6_MIN_MTU: usize = 1280;

/// Turn `frame` (IPv6, parsed as `h`) into ICMPv6 "packet too big" for it,
/// back to its sender from the address it was sent to, quoting as much of
/// it as fits in 1280 bytes (and in the frame), as the kernel's
/// `icmpv6_send(skb, ICMPV6_PKT_TOOBIG, 0, mtu)` from
/// `ip_vs_tunnel_xmit_v6`. Return false (changing nothing) if the frame
/// cannot hold it.
pub fn packet_too_big(
    frame: &mut dyn Frame,
    h: &Headers<u128>,
    our_mac: [u8; 6],
    their_mac: [u8; 6],
    mtu: u32,
) -> bool {
    const HEAD: usize = IPV6_HEADER_LEN + 8;
    let b = frame.bytes();
    let Some(room) = b.len().checked_sub(L3 + HEAD) else {
        return false;
    };
    let quote_len = (h.end - L3).min(IPV6_MIN_MTU - HEAD).min(room);
    // The quote moves back by the new headers: copy it from its end so no
    // byte is overwritten before it is read.
    b.copy_within(L3..L3 + quote_len, L3 + HEAD);
    let len = L3 + HEAD + quote_len;
    let mut eth = h.ethernet_mut(b);
    eth.set_dst(their_mac);
    eth.set_src(our_mac);
    eth.set_ethertype(ETHERTYPE_IPV6);
    let msg_len = 8 + quote_len;
    let mut ip = Ipv6::new_unchecked(&mut b[L3..L3 + IPV6_HEADER_LEN]);
    ip.set_version_tc_flow(0, 0);
    ip.set_payload_len(msg_len as u16);
    ip.set_next_header(PROTO_ICMPV6);
    ip.set_hop_limit(TTL);
    ip.set_src(h.dst);
    ip.set_dst(h.src);
    let at = L3 + IPV6_HEADER_LEN;
    b[at] = PACKET_TOO_BIG;
    b[at + 1] = 0;
    set_be16(b, at + 2, 0);
    set_be32(b, at + 4, mtu);
    let pseudo = h.dst.sum16() + h.src.sum16() + msg_len as u32 + u32::from(PROTO_ICMPV6);
    let c = !fold(pseudo + sum(&b[at..len]));
    set_be16(b, at + 2, c);
    frame.truncate(len)
}

/// Translate the ICMP error `frame` (parsed as `h`, quoting `q`) for a NAT
/// connection. `Side::Dst`: it came from the client's side and goes to the
/// real server `addr:port`, which becomes the outer destination and the
/// quoted packet's source. `Side::Src`: it came from the real server's side
/// and goes to the client from VIP `addr:port`, the outer source and the
/// quoted destination.
pub fn nat_error(frame: &mut [u8], h: &Headers, q: &Quoted, side: Side, addr: u32, port: u16) {
    nat::rewrite(frame, h, side, addr, port);
    let mut ip = q.ipv4_mut(frame);
    match side {
        Side::Dst => ip.set_src(addr),
        Side::Src => ip.set_dst(addr),
    }
    ip.fill_checksum();
    match side {
        Side::Dst => q.set_src_port(frame, port),
        Side::Src => q.set_dst_port(frame, port),
    }
    h.icmp_mut(frame).fill_checksum();
}

/// [`nat_error`] for an ICMPv6 error: no IP header checksums, and the
/// ICMPv6 checksum covers the (rewritten) outer addresses.
pub fn nat_error6(frame: &mut [u8], h: &Headers<u128>, q: &Quoted<u128>, side: Side, addr: u128, port: u16) {
    let mut outer = *h;
    nat::rewrite6(frame, h, side, addr, port);
    let mut ip = q.ipv6_mut(frame);
    match side {
        Side::Dst => {
            ip.set_src(addr);
            outer.dst = addr;
            q.set_src_port(frame, port);
        }
        Side::Src => {
            ip.set_dst(addr);
            outer.src = addr;
            q.set_dst_port(frame, port);
        }
    }
    outer.fill_icmp6_checksum(frame);
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv4Type, PacketBuilder, SlicedPacket, TransportSlice};

    /// A 1500-byte UDP datagram from the client to the VIP.
    fn too_big() -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 2], [10, 0, 0, 100], 64)
            .udp(5000, 53)
            .write(&mut f, &[9u8; 1472])
            .unwrap();
        f
    }

    #[test]
    fn builds_a_valid_error_back_to_the_sender() {
        let mut f = too_big();
        let orig = f.clone();
        let h = crate::wire::parse(&f).unwrap();
        assert!(frag_needed(&mut f, &h, [4; 6], [2; 6], 1480));
        assert_eq!(f.len(), FRAG_NEEDED_LEN);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
            panic!()
        };
        let h = ip.header();
        assert_eq!((h.source(), h.destination()), ([10, 0, 0, 100], [10, 0, 0, 2]));
        assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
        let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
            panic!()
        };
        match icmp.icmp_type() {
            Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu },
            ) => assert_eq!(next_hop_mtu, 1480),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            icmp.checksum(),
            icmp.header().icmp_type.calc_checksum(icmp.payload())
        );
        assert_eq!(icmp.payload(), &orig[14..42]);
    }

    #[test]
    fn quotes_the_whole_header_when_it_has_options() {
        let mut f = too_big();
        // Four NOPs of options: IHL 6, total length 4 more.
        f.splice(34..34, [1u8; 4]);
        f[14] = 0x46;
        let total = u16::from_be_bytes([f[16], f[17]]) + 4;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        let orig = f.clone();
        let h = crate::wire::parse(&f).unwrap();
        assert!(frag_needed(&mut f, &h, [4; 6], [2; 6], 1480));
        assert_eq!(f.len(), FRAG_NEEDED_LEN + 4);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
            panic!()
        };
        assert_eq!(icmp.payload(), &orig[14..14 + 24 + 8]);
        assert_eq!(
            icmp.checksum(),
            icmp.header().icmp_type.calc_checksum(icmp.payload())
        );
    }
}
