//! IP-in-IP tunnelling (`-i`, "Tunnel"): the client's packet, untouched,
//! inside an outer IPv4 header from the director to the real server
//! (protocol 4), which decapsulates it and answers the client directly.
//!
//! As the kernel's `ip_vs_tunnel_xmit`: the outer header copies the inner
//! TOS, TTL and DF bit; when the result would not fit the egress MTU and the
//! inner packet forbids fragmentation, the client gets ICMP "fragmentation
//! needed" with the MTU less the 20 bytes of the outer header.
//!
//! The outer header goes in front of the IP packet: the frame grows by 20
//! bytes at the front ([`Frame::push_front`]).

use crate::frame::Frame;
use crate::wire::{ETHERTYPE_IPV4, checksum};

/// Length of the outer header.
pub const OUTER_LEN: usize = 20;
/// IP protocol number of IP-in-IP.
pub const PROTO_IPIP: u8 = 4;
const DF: u16 = 0x4000;

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

/// Encapsulate the IPv4 packet of `frame` (Ethernet + IPv4, checked by the
/// caller) from `src` to `dst` (host order), with Ethernet header `from` →
/// `to`; `mtu` is the egress link's and `id` the outer IP id.
pub fn encap(
    frame: &mut dyn Frame,
    src: u32,
    dst: u32,
    from: [u8; 6],
    to: [u8; 6],
    mtu: u16,
    id: u16,
) -> Encap {
    let b = frame.bytes();
    let inner_len = usize::from(u16::from_be_bytes([b[16], b[17]]));
    let (tos, ttl) = (b[15], b[22]);
    let df = u16::from_be_bytes([b[20], b[21]]) & DF;
    // Without DF the kernel would fragment the outer packet; the dataplane
    // does not, so it goes whole and the link may drop it.
    if inner_len + OUTER_LEN > usize::from(mtu) && df != 0 {
        return Encap::FragNeeded(mtu.saturating_sub(OUTER_LEN as u16));
    }
    if !frame.push_front(OUTER_LEN) {
        return Encap::NoRoom;
    }
    let b = frame.bytes();
    b[0..6].copy_from_slice(&to);
    b[6..12].copy_from_slice(&from);
    b[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let h = &mut b[14..14 + OUTER_LEN];
    h[0] = 0x45;
    h[1] = tos;
    h[2..4].copy_from_slice(&((inner_len + OUTER_LEN) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6..8].copy_from_slice(&df.to_be_bytes());
    h[8] = ttl;
    h[9] = PROTO_IPIP;
    h[10..12].fill(0);
    h[12..16].copy_from_slice(&src.to_be_bytes());
    h[16..20].copy_from_slice(&dst.to_be_bytes());
    let c = checksum(h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    Encap::Done
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let r = encap(&mut f, 0x0a00_000a, 0x0a00_000b, [0xaa; 6], [0xbb; 6], 1500, 7);
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
        let r = encap(&mut f, 1, 2, [0; 6], [0; 6], 1500, 0);
        assert_eq!(r, Encap::FragNeeded(1480));
        assert_eq!(f, before);
        let mut f = packet(1460, false);
        assert_eq!(encap(&mut f, 1, 2, [0; 6], [0; 6], 1500, 0), Encap::Done);
    }

    #[test]
    fn no_room_changes_nothing() {
        let mut f = [0u8; 64];
        f[12..14].copy_from_slice(&[8, 0]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&50u16.to_be_bytes());
        assert_eq!(encap(&mut f, 1, 2, [0; 6], [0; 6], 1500, 0), Encap::NoRoom);
    }
}
