//! ICMP "fragmentation needed" (type 3, code 4, RFC 1191) built in place from
//! the packet that did not fit, sent back to its sender: as the kernel's
//! `icmp_send(skb, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu)` from
//! `ip_vs_tunnel_xmit`, from the address the packet was sent to (the VIP).

use crate::frame::Frame;
use crate::wire::{ETHERTYPE_IPV4, checksum};

/// Bytes of the offending packet quoted: its IP header and 8 bytes more
/// (RFC 792).
const QUOTE: usize = 28;
/// Length of the built frame: Ethernet + IP + ICMP header + quote.
pub const FRAG_NEEDED_LEN: usize = 14 + 20 + 8 + QUOTE;

/// Turn `frame` (Ethernet + IPv4 without options + at least 8 bytes of L4,
/// checked by the caller) into the ICMP error for it, addressed back to its
/// sender, from `our_mac` to `their_mac`, with next-hop MTU `mtu`. Return
/// false (changing nothing) if the frame is too short to hold the error.
pub fn frag_needed(frame: &mut dyn Frame, our_mac: [u8; 6], their_mac: [u8; 6], mtu: u16) -> bool {
    let b = frame.bytes();
    if b.len() < FRAG_NEEDED_LEN {
        return false;
    }
    let mut quote = [0u8; QUOTE];
    quote.copy_from_slice(&b[14..14 + QUOTE]);
    let (src, dst) = ([b[26], b[27], b[28], b[29]], [b[30], b[31], b[32], b[33]]);
    b[0..6].copy_from_slice(&their_mac);
    b[6..12].copy_from_slice(&our_mac);
    b[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip = &mut b[14..34];
    ip.fill(0);
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((FRAG_NEEDED_LEN - 14) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 1;
    ip[12..16].copy_from_slice(&dst);
    ip[16..20].copy_from_slice(&src);
    let c = checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut b[34..FRAG_NEEDED_LEN];
    icmp[0..8].copy_from_slice(&[3, 4, 0, 0, 0, 0, 0, 0]);
    icmp[6..8].copy_from_slice(&mtu.to_be_bytes());
    icmp[8..].copy_from_slice(&quote);
    let c = checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    frame.truncate(FRAG_NEEDED_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv4Type, PacketBuilder, SlicedPacket, TransportSlice};

    #[test]
    fn builds_a_valid_error_back_to_the_sender() {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 2], [10, 0, 0, 100], 64)
            .udp(5000, 53)
            .write(&mut f, &[9u8; 1472])
            .unwrap();
        let orig = f.clone();
        assert!(frag_needed(&mut f, [4; 6], [2; 6], 1480));
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
}
