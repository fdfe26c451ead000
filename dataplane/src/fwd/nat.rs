//! NAT (`-m`, "Masq"): rewrite the destination of client→server packets
//! (VIP:vport → RIP:rport) and the source of server→client replies (RIP:rport
//! → VIP:vport), fixing the IPv4 and TCP/UDP checksums incrementally (IPv6,
//! NAT66: no header checksum, the TCP/UDP one over eight address words).
//!
//! Incremental update per RFC 1624 (`HC' = ~(~HC + ~m + m')`) over each
//! 16-bit word that changes: the address halves (which the TCP/UDP checksum
//! covers through its pseudo-header) and the port. A UDP checksum of zero
//! means "none" and stays zero; a computed zero is sent as 0xffff (RFC 768).
//!
//! A fragmented datagram: the first fragment has the ports and the TCP/UDP
//! checksum (over the whole datagram, so the incremental update stays right);
//! a later fragment has neither, and only its addresses change.

use crate::wire::{Frag, Headers, IpBits, PROTO_TCP, PROTO_UDP, adjust_addr, checksum_adjust};

/// Which endpoint of the packet to rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Source address and port.
    Src,
    /// Destination address and port.
    Dst,
}

/// Rewrite `side`'s address and port of `frame` (parsed as `h`) to
/// `addr:port` (host order).
pub fn rewrite(frame: &mut [u8], h: &Headers, side: Side, addr: u32, port: u16) {
    let mut ip = h.ipv4_mut(frame);
    let old_addr = match side {
        Side::Src => ip.src(),
        Side::Dst => ip.dst(),
    };
    ip.set_checksum(adjust_addr(ip.checksum(), old_addr, addr));
    match side {
        Side::Src => ip.set_src(addr),
        Side::Dst => ip.set_dst(addr),
    }
    ports(frame, h, side, (old_addr, addr), port);
}

/// [`rewrite`] for IPv6 (NAT66).
pub fn rewrite6(frame: &mut [u8], h: &Headers<u128>, side: Side, addr: u128, port: u16) {
    let mut ip = h.ipv6_mut(frame);
    let old_addr = match side {
        Side::Src => ip.src(),
        Side::Dst => ip.dst(),
    };
    match side {
        Side::Src => ip.set_src(addr),
        Side::Dst => ip.set_dst(addr),
    }
    ports(frame, h, side, (old_addr, addr), port);
}

/// The TCP/UDP half of a rewrite: the port, and the checksum for the
/// address (which it covers through its pseudo-header) and the port.
fn ports<A: IpBits>(frame: &mut [u8], h: &Headers<A>, side: Side, (old_addr, addr): (A, A), port: u16) {
    if h.frag == Frag::Later {
        return;
    }
    // The TCP/UDP checksum covers the addresses through its pseudo-header.
    match h.proto {
        PROTO_TCP => {
            let mut t = h.tcp_mut(frame);
            let old_port = match side {
                Side::Src => t.src_port(),
                Side::Dst => t.dst_port(),
            };
            let c = adjust_addr(t.checksum(), old_addr, addr);
            t.set_checksum(checksum_adjust(c, old_port, port));
            match side {
                Side::Src => t.set_src_port(port),
                Side::Dst => t.set_dst_port(port),
            }
        }
        PROTO_UDP => {
            let mut u = h.udp_mut(frame);
            let old_port = match side {
                Side::Src => u.src_port(),
                Side::Dst => u.dst_port(),
            };
            let c = u.checksum();
            if c != 0 {
                let c = checksum_adjust(adjust_addr(c, old_addr, addr), old_port, port);
                u.set_checksum(if c == 0 { 0xffff } else { c });
            }
            match side {
                Side::Src => u.set_src_port(port),
                Side::Dst => u.set_dst_port(port),
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    use testkit::Rng;

    fn packet(r: &mut Rng, udp: bool) -> Vec<u8> {
        let src = (r.next_u64() as u32).to_be_bytes();
        let dst = (r.next_u64() as u32).to_be_bytes();
        let len = (r.next_u64() % 200) as usize;
        let payload: Vec<u8> = (0..len).map(|_| r.next_u64() as u8).collect();
        let b = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64);
        let mut v = Vec::new();
        if udp {
            b.udp(r.next_u64() as u16, r.next_u64() as u16)
                .write(&mut v, &payload)
                .unwrap();
        } else {
            b.tcp(
                r.next_u64() as u16,
                r.next_u64() as u16,
                r.next_u64() as u32,
                1000,
            )
            .ack(r.next_u64() as u32)
            .write(&mut v, &payload)
            .unwrap();
        }
        v
    }

    /// Rebuild `frame` with etherparse from its own parsed fields, so its
    /// checksums are computed in full; compare with ours.
    fn recomputed(frame: &[u8]) -> Vec<u8> {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
            panic!()
        };
        let h = ip.header();
        let b = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(h.source(), h.destination(), h.ttl());
        let mut v = Vec::new();
        match p.transport.unwrap() {
            TransportSlice::Udp(u) => b
                .udp(u.source_port(), u.destination_port())
                .write(&mut v, u.payload()),
            TransportSlice::Tcp(t) => b
                .tcp(
                    t.source_port(),
                    t.destination_port(),
                    t.sequence_number(),
                    t.window_size(),
                )
                .ack(t.acknowledgment_number())
                .write(&mut v, t.payload()),
            _ => panic!(),
        }
        .unwrap();
        v
    }

    #[test]
    fn incremental_checksums_equal_full_recomputation() {
        let mut r = Rng::new(0x0123_4567_89ab_cdef);
        for i in 0..2000 {
            let udp = i % 2 == 1;
            let mut f = packet(&mut r, udp);
            let side = if i % 3 == 0 { Side::Src } else { Side::Dst };
            let h = parse(&f).unwrap();
            rewrite(&mut f, &h, side, r.next_u64() as u32, r.next_u64() as u16);
            assert_eq!(f, recomputed(&f), "packet {i}");
        }
    }

    #[test]
    fn rewrite_then_reverse_is_the_identity() {
        let mut r = Rng::new(42);
        for i in 0..2000 {
            let udp = i % 2 == 0;
            let orig = packet(&mut r, udp);
            let mut f = orig.clone();
            let old_dst = u32::from_be_bytes([f[30], f[31], f[32], f[33]]);
            let old_dport = u16::from_be_bytes([f[36], f[37]]);
            let h = parse(&f).unwrap();
            rewrite(&mut f, &h, Side::Dst, r.next_u64() as u32, r.next_u64() as u16);
            rewrite(&mut f, &h, Side::Dst, old_dst, old_dport);
            // Ones'-complement has two zeros: 0x0000 and 0xffff may swap in
            // a checksum, both valid; compare everything else exactly.
            let (mut a, mut b) = (f.clone(), orig.clone());
            for v in [&mut a, &mut b] {
                v[24..26].fill(0);
                let c = if udp { 34 + 6 } else { 34 + 16 };
                v[c..c + 2].fill(0);
            }
            assert_eq!(a, b, "packet {i}");
            assert_eq!(f, recomputed(&f), "packet {i}: checksums");
        }
    }

    #[test]
    fn udp_without_checksum_keeps_none() {
        let mut r = Rng::new(7);
        let mut f = packet(&mut r, true);
        f[40..42].fill(0);
        let h = parse(&f).unwrap();
        rewrite(&mut f, &h, Side::Dst, 0x0a00_000b, 8080);
        assert_eq!(&f[40..42], &[0, 0]);
        assert_eq!(&f[30..34], &[10, 0, 0, 11]);
        assert_eq!(&f[36..38], &8080u16.to_be_bytes());
    }
}
