//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

/// Return the ones'-complement sum of `data` folded to 16 bits, complemented.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Return checksum `old_sum` updated for a 16-bit field changed from `old` to
/// `new`.
//= https://www.rfc-editor.org/rfc/rfc1624#section-3
//# HC' = ~(~HC + ~m + m')
pub fn checksum_adjust(old_sum: u16, old: u16, new: u16) -> u16 {
    let sum = u32::from(!old_sum) + u32::from(!old) + u32::from(new);
    !fold(sum)
}

/// Return the ones'-complement sum of `data` (RFC 1071), not folded: the
/// running sum [`fold`] and [`checksum`] finish.
pub fn sum(data: &[u8]) -> u32 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(u16::from_be_bytes([*b, 0]));
    }
    sum
}

/// Return the TCP/UDP pseudo-header sum (RFC 793 §3.1, RFC 768), not
/// folded: source and destination address, protocol, segment length.
#[inline]
pub fn pseudo_sum(src: u32, dst: u32, proto: u8, len: u16) -> u32 {
    (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + u32::from(proto) + u32::from(len)
}

/// Fold a 32-bit ones'-complement sum to 16 bits (end-around carry).
pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn incremental_equals_full_recomputation() {
        let mut data = [
            0x45u8, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 100,
        ];
        let before = checksum(&data);
        for new in [0u16, 1, 0x7fff, 0xfffe, 0xffff, 0xabcd] {
            let mut d = data;
            let old = u16::from_be_bytes([d[16], d[17]]);
            d[16..18].copy_from_slice(&new.to_be_bytes());
            assert_eq!(checksum_adjust(before, old, new), checksum(&d), "new={new:#x}");
        }
        data[0] = 0x46;
        assert_ne!(checksum(&data), before);
    }
}
