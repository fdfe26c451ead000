//! Zero-copy views over frame bytes, after smoltcp's `wire` module.
//!
//! Guarantee: once `new_checked` returned `Ok`, no getter or setter of that view
//! panics. Views borrow the UMEM slice; nothing is copied or allocated.

mod checksum;
mod ethernet;
mod ipv4;
mod l4;

pub use checksum::{checksum, checksum_adjust};
pub use ethernet::{ETHERTYPE_IPV4, Ethernet};
pub use ipv4::Ipv4;
pub use l4::{PROTO_TCP, PROTO_UDP, Tcp, Udp};

/// The buffer is too short or a length field is inconsistent with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

/// Read a big-endian u16 at `at` (callers checked the length).
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Read a big-endian u32 at `at` (callers checked the length).
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Build a 64-byte Ethernet/IPv4/TCP frame (no payload, zero checksums) from
/// `cip:cport` to `vip:vport` with TCP `flags`: the frame benchmarks and
/// allocation tests feed the forwarder.
pub fn tcp_frame(cip: [u8; 4], cport: u16, vip: [u8; 4], vport: u16, flags: u8) -> [u8; 64] {
    let mut f = [0u8; 64];
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&40u16.to_be_bytes());
    f[22] = 64;
    f[23] = PROTO_TCP;
    f[26..30].copy_from_slice(&cip);
    f[30..34].copy_from_slice(&vip);
    f[34..36].copy_from_slice(&cport.to_be_bytes());
    f[36..38].copy_from_slice(&vport.to_be_bytes());
    f[46] = 0x50;
    f[47] = flags;
    f
}
