//! The fast path's map entries (`flows` and `flows6` in fast.bpf.h): keys,
//! values and the rewrite a value encodes, for either address family.
//!
//! Owns: building and reading entries. Must not touch: their layout (one
//! source, src/xdp/layout.h, through [`super::layout`]) or the maps (the
//! steering program's loader does).

use super::layout;

/// Key of the `flows` map: a frame's own tuple, network order.
pub type FastKey4 = layout::flow_key;

/// Key of the `flows6` map.
pub type FastKey6 = layout::flow6_key;

/// A flow of either map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FastKey {
    /// IPv4.
    V4(FastKey4),
    /// IPv6.
    V6(FastKey6),
}

impl FastKey {
    /// The key of frames of `proto` from `src:sport` to `dst:dport` (host
    /// order; IPv4 addresses in the low 32 bits unless `v6`).
    pub fn new(v6: bool, proto: u8, (src, sport): (u128, u16), (dst, dport): (u128, u16)) -> Self {
        let (sport, dport) = (sport.to_be(), dport.to_be());
        if v6 {
            return Self::V6(FastKey6 {
                src: src.to_be_bytes(),
                dst: dst.to_be_bytes(),
                sport,
                dport,
                proto,
                pad: [0; 3],
            });
        }
        Self::V4(FastKey4 {
            src: (src as u32).to_be(),
            dst: (dst as u32).to_be(),
            sport,
            dport,
            proto,
            pad: [0; 3],
        })
    }

    /// (protocol, source, source port, destination, destination port), host
    /// order.
    pub fn tuple(&self) -> (u8, u128, u16, u128, u16) {
        match self {
            Self::V4(k) => (
                k.proto,
                u128::from(u32::from_be(k.src)),
                u16::from_be(k.sport),
                u128::from(u32::from_be(k.dst)),
                u16::from_be(k.dport),
            ),
            Self::V6(k) => (
                k.proto,
                u128::from_be_bytes(k.src),
                u16::from_be(k.sport),
                u128::from_be_bytes(k.dst),
                u16::from_be(k.dport),
            ),
        }
    }

    pub(crate) fn v4(&self) -> Option<FastKey4> {
        match self {
            Self::V4(k) => Some(*k),
            Self::V6(_) => None,
        }
    }

    pub(crate) fn v6(&self) -> Option<FastKey6> {
        match self {
            Self::V6(k) => Some(*k),
            Self::V4(_) => None,
        }
    }
}

/// What the fast path does with a flow's frames (addresses in host order,
/// IPv4 ones in the low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastAction {
    /// Direct routing: MACs only.
    Dr,
    /// NAT: the destination (client to server, `true`) or the source (a
    /// reply back to the client) becomes `addr:port`.
    Nat {
        /// Which end is rewritten.
        to_server: bool,
        /// The new address.
        addr: u128,
        /// The new port.
        port: u16,
    },
    /// IP-in-IP (IPv6-in-IPv6) from `src` to `dst` over a link of `mtu`.
    Tun {
        /// Outer source.
        src: u128,
        /// Outer destination.
        dst: u128,
        /// The link's MTU.
        mtu: u16,
    },
}

impl FastAction {
    fn code(&self) -> u8 {
        match self {
            Self::Dr => layout::FAST_DR as u8,
            Self::Nat { .. } => layout::FAST_NAT as u8,
            Self::Tun { .. } => layout::FAST_TUN as u8,
        }
    }
}

/// Value of the `flows` map.
pub type FastVal4 = layout::flow_val;

/// Value of the `flows6` map.
pub type FastVal6 = layout::flow6_val;

/// A flow's value in either map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastVal {
    /// IPv4.
    V4(FastVal4),
    /// IPv6.
    V6(FastVal6),
}

impl FastVal {
    /// A flow sent by `action` from MAC `smac` (ours) to `dmac`.
    pub fn new(v6: bool, action: FastAction, smac: [u8; 6], dmac: [u8; 6]) -> Self {
        let (to_server, addr, port, src, mtu) = match action {
            FastAction::Dr => (false, 0, 0, 0, 0),
            FastAction::Nat {
                to_server,
                addr,
                port,
            } => (to_server, addr, port, 0, 0),
            FastAction::Tun { src, dst, mtu } => (false, dst, 0, src, mtu),
        };
        let (action, to_server, port) = (action.code(), u8::from(to_server), port.to_be());
        if v6 {
            return Self::V6(FastVal6 {
                action,
                to_server,
                smac,
                dmac,
                port,
                addr: addr.to_be_bytes(),
                tun_src: src.to_be_bytes(),
                mtu,
                ..FastVal6::default()
            });
        }
        Self::V4(FastVal4 {
            action,
            to_server,
            smac,
            dmac,
            port,
            addr: (addr as u32).to_be(),
            tun_src: (src as u32).to_be(),
            mtu,
            ..FastVal4::default()
        })
    }

    /// The MAC the flow's frames go to.
    pub fn dest_mac(&self) -> [u8; 6] {
        match self {
            Self::V4(v) => v.dmac,
            Self::V6(v) => v.dmac,
        }
    }

    /// The same flow sent out of interface `ifindex` rather than back out
    /// of the one it came in on.
    #[must_use]
    pub fn out_of(self, ifindex: u32) -> Self {
        match self {
            Self::V4(v) => Self::V4(FastVal4 { ifindex, ..v }),
            Self::V6(v) => Self::V6(FastVal6 { ifindex, ..v }),
        }
    }

    /// Packets and bytes the fast path forwarded, and the
    /// `CLOCK_MONOTONIC` nanoseconds of the last one.
    pub fn counts(&self) -> (u64, u64, u64) {
        match self {
            Self::V4(v) => (v.pkts, v.bytes, v.last_seen),
            Self::V6(v) => (v.pkts, v.bytes, v.last_seen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_give_back_their_tuple() {
        let k = FastKey::new(
            true,
            6,
            (0x2001_0db8 << 96 | 2, 40000),
            (0x2001_0db8 << 96 | 0x100, 80),
        );
        assert_eq!(
            k.tuple(),
            (6, 0x2001_0db8 << 96 | 2, 40000, 0x2001_0db8 << 96 | 0x100, 80)
        );
        let k = FastKey::new(false, 17, (0x0a00_0002, 5000), (0x0a00_0064, 53));
        assert_eq!(k.tuple(), (17, 0x0a00_0002, 5000, 0x0a00_0064, 53));
    }
}
