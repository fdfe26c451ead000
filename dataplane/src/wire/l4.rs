//! TCP and UDP header views: ports, TCP flags.

use super::{Truncated, be16};

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// A view of a TCP segment.
#[derive(Debug)]
pub struct Tcp<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tcp<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = 20;

    /// Wrap `buffer` after checking it holds a whole header (options included).
    ///
    /// # Errors
    /// [`Truncated`] when the header or its data offset does not fit.
    pub fn new_checked(buffer: T) -> Result<Self, Truncated> {
        let b = buffer.as_ref();
        if b.len() < Self::MIN_HEADER_LEN {
            return Err(Truncated);
        }
        let doff = usize::from(b[12] >> 4) * 4;
        if doff < Self::MIN_HEADER_LEN || doff > b.len() {
            return Err(Truncated);
        }
        Ok(Self { buffer })
    }

    /// Return the source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }

    /// Return the destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    /// Return the flags byte (CWR ECE URG ACK PSH RST SYN FIN).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[13]
    }

    /// Return whether SYN is set.
    pub fn syn(&self) -> bool {
        self.flags() & 0x02 != 0
    }

    /// Return whether ACK is set.
    pub fn ack(&self) -> bool {
        self.flags() & 0x10 != 0
    }

    /// Return whether FIN is set.
    pub fn fin(&self) -> bool {
        self.flags() & 0x01 != 0
    }

    /// Return whether RST is set.
    pub fn rst(&self) -> bool {
        self.flags() & 0x04 != 0
    }
}

/// A view of a UDP datagram.
#[derive(Debug)]
pub struct Udp<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Udp<T> {
    /// Length of the header.
    pub const HEADER_LEN: usize = 8;

    /// Wrap `buffer` after checking it holds the 8-byte header.
    ///
    /// # Errors
    /// [`Truncated`] when it is shorter than 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Self, Truncated> {
        if buffer.as_ref().len() < Self::HEADER_LEN {
            return Err(Truncated);
        }
        Ok(Self { buffer })
    }

    /// Return the source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }

    /// Return the destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
}
