//! ICMPv4 header view (RFC 792): type, code, checksum and the word that
//! "fragmentation needed" carries the next-hop MTU in (RFC 1191).

use super::{be16, set_be16};

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const REST: std::ops::Range<usize> = 4..8;
    pub const NEXT_HOP_MTU: usize = 6;
}

/// Length of the header (type, code, checksum, four bytes more).
pub const HEADER_LEN: usize = 8;

/// A view of an ICMPv4 message; the buffer holds the whole message.
///
/// Setters need at least [`HEADER_LEN`] bytes: the only messages this crate
/// writes are ones it sized itself.
#[derive(Debug)]
pub struct Icmpv4<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4<T> {
    /// Wrap `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Return the message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Return the code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Return the next-hop MTU of a "fragmentation needed" message.
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4<T> {
    /// Set the type and code, and clear the rest of the header.
    pub fn set_type_code(&mut self, msg_type: u8, code: u8) {
        let b = self.buffer.as_mut();
        b[field::TYPE] = msg_type;
        b[field::CODE] = code;
        b[field::REST].fill(0);
    }

    /// Set the next-hop MTU of a "fragmentation needed" message.
    pub fn set_next_hop_mtu(&mut self, mtu: u16) {
        set_be16(self.buffer.as_mut(), field::NEXT_HOP_MTU, mtu);
    }

    /// Return the bytes after the header (the quoted packet of an error).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Compute the checksum over the whole message and store it.
    pub fn fill_checksum(&mut self) {
        set_be16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let c = super::checksum(self.buffer.as_ref());
        set_be16(self.buffer.as_mut(), field::CHECKSUM, c);
    }
}
