//! IPv4 header view (RFC 791), after smoltcp's `wire/ipv4.rs`.

use super::{Malformed, be16, be32, set_be16, set_be32};

mod field {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// The Don't Fragment bit of the flags/fragment-offset word.
pub const DF: u16 = 0x4000;
/// The More Fragments bit.
pub const MF: u16 = 0x2000;

/// A view of an IPv4 packet.
///
/// Once [`Ipv4::check_len`] returned `Ok`, no getter or setter panics: the
/// buffer holds a version-4 header of at least 20 bytes and a total length
/// between the header length and the buffer's end.
#[derive(Debug)]
pub struct Ipv4<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4<T> {
    /// Wrap `buffer` without checking it (a header this crate is writing, or
    /// one [`super::parse`] already checked).
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wrap `buffer` after [`Self::check_len`].
    ///
    /// # Errors
    /// What [`Self::check_len`] finds.
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check the buffer against the header's own length fields, in the order
    /// the drop counters tell them apart: too short for a header, not
    /// version 4, IHL under 5, total length shorter than the header or past
    /// the buffer.
    ///
    /// # Errors
    /// [`Malformed::TruncatedIp`], [`Malformed::BadVersion`],
    /// [`Malformed::BadIhl`] or [`Malformed::BadTotalLength`].
    pub fn check_len(&self) -> Result<(), Malformed> {
        let len = self.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Malformed::TruncatedIp);
        }
        if self.version() != 4 {
            return Err(Malformed::BadVersion);
        }
        let hlen = self.header_len();
        if hlen < MIN_HEADER_LEN {
            return Err(Malformed::BadIhl);
        }
        let total = self.total_len();
        if total > len || total < hlen {
            return Err(Malformed::BadTotalLength);
        }
        Ok(())
    }

    /// Return the version field.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Return the header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Return the type-of-service byte (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// Return the total length field.
    pub fn total_len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), field::TOTAL_LEN.start))
    }

    /// Return the identification field.
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT.start)
    }

    /// Return the flags/fragment-offset word.
    pub fn flags_frag(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG.start)
    }

    /// Return whether Don't Fragment is set.
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & DF != 0
    }

    /// Return whether More Fragments is set.
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & MF != 0
    }

    /// Return the fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        // 0x1FFF masks the offset; the top three bits are flags.
        self.flags_frag() & 0x1fff
    }

    /// Return the time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Return the protocol field.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Return the header checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Return the source address (host order).
    pub fn src(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SRC.start)
    }

    /// Return the destination address (host order).
    pub fn dst(&self) -> u32 {
        be32(self.buffer.as_ref(), field::DST.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4<T> {
    /// Set version 4 and a header of `len` bytes (a multiple of 4).
    pub fn set_version_and_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | (len / 4) as u8;
    }

    /// Set the type-of-service byte.
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::TOS] = v;
    }

    /// Set the total length field.
    pub fn set_total_len(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::TOTAL_LEN.start, v);
    }

    /// Set the identification field.
    pub fn set_ident(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::IDENT.start, v);
    }

    /// Set the flags/fragment-offset word.
    pub fn set_flags_frag(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::FLAGS_FRAG.start, v);
    }

    /// Set the time to live.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Set the protocol field.
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }

    /// Set the header checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::CHECKSUM.start, v);
    }

    /// Set the source address (host order).
    pub fn set_src(&mut self, v: u32) {
        set_be32(self.buffer.as_mut(), field::SRC.start, v);
    }

    /// Set the destination address (host order).
    pub fn set_dst(&mut self, v: u32) {
        set_be32(self.buffer.as_mut(), field::DST.start, v);
    }

    /// Compute the header checksum over the header and store it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hlen = self.header_len();
        let c = super::checksum(&self.buffer.as_ref()[..hlen]);
        self.set_checksum(c);
    }
}
