//! Ethernet II header view.

use super::{Malformed, be16, set_be16};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;

/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: usize = 14;
}

/// A view of an Ethernet II frame.
///
/// Once [`Ethernet::check_len`] returned `Ok`, no getter or setter panics.
#[derive(Debug)]
pub struct Ethernet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ethernet<T> {
    /// Length of the header.
    pub const HEADER_LEN: usize = field::PAYLOAD;

    /// Wrap `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wrap `buffer` after [`Self::check_len`].
    ///
    /// # Errors
    /// [`Malformed::TruncatedEthernet`].
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let e = Self::new_unchecked(buffer);
        e.check_len()?;
        Ok(e)
    }

    /// Check that the buffer holds a whole header.
    ///
    /// # Errors
    /// [`Malformed::TruncatedEthernet`] when it is shorter than 14 bytes.
    pub fn check_len(&self) -> Result<(), Malformed> {
        if self.buffer.as_ref().len() < field::PAYLOAD {
            return Err(Malformed::TruncatedEthernet);
        }
        Ok(())
    }

    /// Return the destination MAC.
    pub fn dst(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        m
    }

    /// Return the source MAC.
    pub fn src(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        m
    }

    /// Return the EtherType.
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Return the bytes after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ethernet<T> {
    /// Set the destination MAC.
    pub fn set_dst(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac);
    }

    /// Set the source MAC.
    pub fn set_src(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac);
    }

    /// Set the EtherType.
    pub fn set_ethertype(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::ETHERTYPE, v);
    }
}
