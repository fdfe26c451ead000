//! What the tests of every crate share (a dev-dependency only): a
//! deterministic pseudo-random stream, so a failure replays from its seed.
//!
//! Must not touch: anything the director ships (the `twos` scheduler keeps
//! its own generator, which is part of its behaviour).

/// xorshift64 (Marsaglia 2003): cheap, deterministic, good enough to spread
/// test inputs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream from `seed` (0, which xorshift would never leave, is 1).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (not 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `len` bytes, each the low byte of the next number.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_and_zero_still_moves() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(a.bytes(32), b.bytes(32));
        let mut z = Rng::new(0);
        assert_ne!(z.next_u64(), z.next_u64());
        assert!((0..100).all(|_| a.below(10) < 10));
    }
}
