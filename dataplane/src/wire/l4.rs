//! TCP and UDP header views: ports, TCP flags, checksum fields.

use super::{Malformed, be16, set_be16};

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// TCP flag bits of byte 13 (RFC 9293).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const TCP_DATA_OFF: usize = 12;
    pub const TCP_FLAGS: usize = 13;
    pub const TCP_CHECKSUM: usize = 16;
    pub const UDP_CHECKSUM: usize = 6;
}

/// A view of a TCP segment.
///
/// Once [`Tcp::check_len`] returned `Ok`, no getter or setter panics.
#[derive(Debug)]
pub struct Tcp<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tcp<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = 20;

    /// Wrap `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wrap `buffer` after [`Self::check_len`].
    ///
    /// # Errors
    /// [`Malformed::TruncatedL4`].
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let t = Self::new_unchecked(buffer);
        t.check_len()?;
        Ok(t)
    }

    /// Check that the buffer holds the whole header, options included.
    ///
    /// # Errors
    /// [`Malformed::TruncatedL4`] when the header or its data offset does
    /// not fit.
    pub fn check_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < Self::MIN_HEADER_LEN {
            return Err(Malformed::TruncatedL4);
        }
        let doff = usize::from(b[field::TCP_DATA_OFF] >> 4) * 4;
        if doff < Self::MIN_HEADER_LEN || doff > b.len() {
            return Err(Malformed::TruncatedL4);
        }
        Ok(())
    }

    /// Return the source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Return the destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Return the flags byte (CWR ECE URG ACK PSH RST SYN FIN).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::TCP_FLAGS]
    }

    /// Return the checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TCP_CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tcp<T> {
    /// Set the source port.
    pub fn set_src_port(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    /// Set the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    /// Set the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::TCP_CHECKSUM, v);
    }

    /// Set the header length (data offset) to `len` bytes, a multiple of 4.
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::TCP_DATA_OFF] = ((len / 4) as u8) << 4;
    }

    /// Set the flags byte.
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::TCP_FLAGS] = v;
    }
}

/// A view of a UDP datagram.
///
/// Once [`Udp::check_len`] returned `Ok`, no getter or setter panics.
#[derive(Debug)]
pub struct Udp<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Udp<T> {
    /// Length of the header.
    pub const HEADER_LEN: usize = 8;

    /// Wrap `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wrap `buffer` after [`Self::check_len`].
    ///
    /// # Errors
    /// [`Malformed::TruncatedL4`].
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let u = Self::new_unchecked(buffer);
        u.check_len()?;
        Ok(u)
    }

    /// Check that the buffer holds the 8-byte header.
    ///
    /// # Errors
    /// [`Malformed::TruncatedL4`] when it is shorter.
    pub fn check_len(&self) -> Result<(), Malformed> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            return Err(Malformed::TruncatedL4);
        }
        Ok(())
    }

    /// Return the source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Return the destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Return the checksum field (0: the sender computed none).
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::UDP_CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Udp<T> {
    /// Set the source port.
    pub fn set_src_port(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    /// Set the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    /// Set the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::UDP_CHECKSUM, v);
    }
}
