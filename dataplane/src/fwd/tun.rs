//! IP-in-IP tunnelling (`-i`, "Tunnel"): the client's packet, untouched,
//! inside an outer IPv4 header from the director to the real server
//! (protocol 4), which decapsulates it and answers the client directly.
//!
//! As the kernel's `ip_vs_tunnel_xmit`: the outer header copies the inner
//! TOS, TTL and DF bit (its id is 0 under DF); when the result would not
//! fit the egress MTU and the inner packet forbids fragmentation, the
//! client gets ICMP "fragmentation needed" with the MTU less the 20 bytes
//! of the outer header.
//!
//! The outer header goes in front of the IP packet: the frame grows by 20
//! bytes at the front ([`Frame::push_front`]).
//!
//! IPv6 as `ip_vs_tunnel_xmit_v6`: an outer IPv6 header (next header 41,
//! IPv6-in-IPv6) with the inner traffic class and hop limit and no flow
//! label; IPv6 is never fragmented on the way, so a packet that would not
//! fit gets ICMPv6 "packet too big" with the MTU less the 40 outer bytes.

use crate::frame::Frame;
use crate::wire::{
    DF, ETHERTYPE_IPV4, ETHERTYPE_IPV6, Ethernet, Headers, IPV4_HEADER_LEN, IPV6_HEADER_LEN, Ipv4, Ipv6, L3,
};

/// Length of the outer header.
pub const OUTER_LEN: usize = IPV4_HEADER_LEN;
/// Length of the outer IPv6 header.
pub const OUTER6_LEN: usize = IPV6_HEADER_LEN;
/// IP protocol number of IP-in-IP.
pub const PROTO_IPIP: u8 = 4;
/// IP protocol number of IPv6-in-IP.
pub const PROTO_IPV6: u8 = 41;

/// What [`encap`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// Encapsulated; send to the real server.
    Done,
    /// Too big with DF set: answer the client with this next-hop MTU.
    FragNeeded(u16),
    /// The frame buffer has no room for the outer header.
    NoRoom,
}

/// The outer header's ends: addresses (host order), MACs, the egress
/// link's MTU and the outer IP id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    /// The director's address on the egress link.
    pub src: u32,
    /// The real server.
    pub dst: u32,
    /// The director's MAC on the egress link.
    pub from: [u8; 6],
    /// The real server's MAC.
    pub to: [u8; 6],
    /// The egress link's MTU.
    pub mtu: u16,
    /// IP id of the outer header.
    pub id: u16,
}

/// Encapsulate the IPv4 packet of `frame` (parsed as `h`) in the outer
/// header `o`.
pub fn encap(frame: &mut dyn Frame, h: &Headers, o: &Outer) -> Encap {
    let inner = h.ipv4(frame.bytes());
    let (inner_len, tos, ttl) = (inner.total_len(), inner.tos(), inner.ttl());
    let df = inner.flags_frag() & DF;
    // Without DF the kernel would fragment the outer packet; the dataplane
    // does not, so it goes whole and the link may drop it.
    if inner_len + OUTER_LEN > usize::from(o.mtu) && df != 0 {
        return Encap::FragNeeded(o.mtu.saturating_sub(OUTER_LEN as u16));
    }
    if !frame.push_front(OUTER_LEN) {
        return Encap::NoRoom;
    }
    let b = frame.bytes();
    let mut eth = Ethernet::new_unchecked(&mut b[..]);
    eth.set_dst(o.to);
    eth.set_src(o.from);
    eth.set_ethertype(ETHERTYPE_IPV4);
    // The frame grew by OUTER_LEN at the front: the outer header sits where
    // the inner one was, and the inner packet follows it whole.
    let mut ip = Ipv4::new_unchecked(&mut b[L3..L3 + OUTER_LEN]);
    ip.set_version_and_header_len(OUTER_LEN);
    ip.set_tos(tos);
    ip.set_total_len((inner_len + OUTER_LEN) as u16);
    // As the kernel's ip_select_ident for a packet no socket sent: an
    // atomic datagram (DF) needs no id (RFC 6864), so 0, the fast path's too.
    ip.set_ident(if df != 0 { 0 } else { o.id });
    ip.set_flags_frag(df);
    ip.set_ttl(ttl);
    ip.set_protocol(PROTO_IPIP);
    ip.set_src(o.src);
    ip.set_dst(o.dst);
    ip.fill_checksum();
    Encap::Done
}

/// Encapsulate the IPv6 packet of `frame` (parsed as `h`) in an outer IPv6
/// header from `src` to `dst` (`o`'s other fields as for IPv4; `id` is
/// unused).
pub fn encap6(frame: &mut dyn Frame, h: &Headers<u128>, (src, dst): (u128, u128), o: &Outer) -> Encap {
    let inner_len = h.end - L3;
    if inner_len + OUTER6_LEN > usize::from(o.mtu) {
        return Encap::FragNeeded(o.mtu.saturating_sub(OUTER6_LEN as u16));
    }
    let inner = Ipv6::new_unchecked(&frame.bytes()[L3..h.end]);
    let (tc, hops) = (inner.traffic_class(), inner.hop_limit());
    if !frame.push_front(OUTER6_LEN) {
        return Encap::NoRoom;
    }
    let b = frame.bytes();
    let mut eth = Ethernet::new_unchecked(&mut b[..]);
    eth.set_dst(o.to);
    eth.set_src(o.from);
    eth.set_ethertype(ETHERTYPE_IPV6);
    let mut ip = Ipv6::new_unchecked(&mut b[L3..L3 + OUTER6_LEN]);
    ip.set_version_tc_flow(tc, 0);
    ip.set_payload_len(inner_len as u16);
    ip.set_next_header(PROTO_IPV6);
    ip.set_hop_limit(hops);
    ip.set_src(src);
    ip.set_dst(dst);
    Encap::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{checksum, parse};
    use etherparse::{PacketBuilder, SlicedPacket};

    fn packet(payload: usize, df: bool) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 2], [10, 0, 0, 100], 61)
            .tcp(40000, 80, 1, 1000)
            .write(&mut v, &vec![7u8; payload])
            .unwrap();
        // Set or clear DF (etherparse sets it), then fix the checksum.
        if df {
            v[20] |= 0x40;
        } else {
            v[20] &= !0x40;
        }
        v[24..26].fill(0);
        let c = checksum(&v[14..34]);
        v[24..26].copy_from_slice(&c.to_be_bytes());
        v
    }

    #[test]
    fn outer_header_wraps_the_untouched_packet() {
        let inner = packet(100, true);
        let mut f = inner.clone();
        let h = parse(&f).unwrap();
        let r = encap(
            &mut f,
            &h,
            &outer(0x0a00_000a, 0x0a00_000b, [0xaa; 6], [0xbb; 6], 1500, 7),
        );
        assert_eq!(r, Encap::Done);
        assert_eq!(f.len(), inner.len() + OUTER_LEN);
        assert_eq!(&f[34..], &inner[14..], "inner packet changed");
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::LinkSlice::Ethernet2(e)) = p.link else {
            panic!()
        };
        assert_eq!((e.destination(), e.source()), ([0xbb; 6], [0xaa; 6]));
        let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
            panic!()
        };
        let h = ip.header();
        assert_eq!(h.protocol(), etherparse::IpNumber(PROTO_IPIP));
        assert_eq!((h.source(), h.destination()), ([10, 0, 0, 10], [10, 0, 0, 11]));
        assert_eq!(usize::from(h.total_len()), inner.len() - 14 + OUTER_LEN);
        assert!(h.dont_fragment());
        assert_eq!(h.ttl(), 61);
        assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
    }

    #[test]
    fn too_big_with_df_asks_for_fragmentation_needed() {
        let mut f = packet(1460, true);
        let before = f.clone();
        let h = parse(&f).unwrap();
        let r = encap(&mut f, &h, &outer(1, 2, [0; 6], [0; 6], 1500, 0));
        assert_eq!(r, Encap::FragNeeded(1480));
        assert_eq!(f, before);
        let mut f = packet(1460, false);
        let h = parse(&f).unwrap();
        assert_eq!(
            encap(&mut f, &h, &outer(1, 2, [0; 6], [0; 6], 1500, 0)),
            Encap::Done
        );
    }

    fn outer(src: u32, dst: u32, from: [u8; 6], to: [u8; 6], mtu: u16, id: u16) -> Outer {
        Outer {
            src,
            dst,
            from,
            to,
            mtu,
            id,
        }
    }

    #[test]
    fn no_room_changes_nothing() {
        let mut f = crate::wire::tcp_frame([10, 0, 0, 2], 1, [10, 0, 0, 100], 80, 2);
        let h = parse(&f).unwrap();
        let before = f;
        assert_eq!(
            encap(&mut f, &h, &outer(1, 2, [0; 6], [0; 6], 1500, 0)),
            Encap::NoRoom
        );
        assert_eq!(f, before);
    }
}
