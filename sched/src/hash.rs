//! Hashes for the static-hash schedulers (dh, sh, mh).

/// The kernel's `hash_32()`: multiply by the 32-bit golden ratio and keep the
/// top `bits` bits.
pub fn hash_32(val: u32, bits: u32) -> u32 {
    const GOLDEN_RATIO_32: u32 = 0x61C8_8647;
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// A 64-bit mix of `val` with `seed` (the splitmix64 finalizer): cheap, and
/// every input bit reaches every output bit.
pub fn mix64(val: u64, seed: u64) -> u64 {
    let mut z = val ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Return the greatest common divisor.
pub fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
