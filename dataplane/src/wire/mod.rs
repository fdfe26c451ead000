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
