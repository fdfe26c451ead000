//! IPv4 header view.

use super::{Truncated, be16, be32};

mod field {
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: usize = 2;
    pub const FRAG: usize = 6;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// A view of an IPv4 packet.
///
/// `new_checked` accepts only what `check_len` proves safe to index: at least
/// 20 bytes and an IHL that fits. Version, IHL < 5 and the total length are
/// reported by getters so the caller can count each reason apart.
#[derive(Debug)]
pub struct Ipv4<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4<T> {
    /// Wrap `buffer` after checking it holds a 20-byte header.
    ///
    /// # Errors
    /// [`Truncated`] when it is shorter than 20 bytes.
    pub fn new_checked(buffer: T) -> Result<Self, Truncated> {
        if buffer.as_ref().len() < MIN_HEADER_LEN {
            return Err(Truncated);
        }
        Ok(Self { buffer })
    }

    /// Return the version field.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Return the header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Return the total length field.
    pub fn total_len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), field::TOTAL_LEN))
    }

    /// Return the fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        // 0x1FFF masks the offset; the top three bits are flags.
        be16(self.buffer.as_ref(), field::FRAG) & 0x1fff
    }

    /// Return the protocol field.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Return the header checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Return the source address (host order).
    pub fn src(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SRC)
    }

    /// Return the destination address (host order).
    pub fn dst(&self) -> u32 {
        be32(self.buffer.as_ref(), field::DST)
    }
}
