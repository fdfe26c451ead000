//! A received frame as the forwarder sees it: bytes it may rewrite in place,
//! lengthen at the front (TUN's outer header) or shorten (an ICMP error built
//! from the frame).
//!
//! The AF_XDP port implements it over a UMEM frame (`xsk::port`); tests and
//! benches use `Vec<u8>` and byte arrays.

/// A frame the forwarder rewrites.
pub trait Frame {
    /// Return the frame's bytes, from the Ethernet header on.
    fn bytes(&mut self) -> &mut [u8];
    /// Lengthen the frame by `n` bytes at the front: the old contents move
    /// `n` bytes on, the first `n` bytes are left as they were. Return false
    /// (changing nothing) when the buffer has no room.
    fn push_front(&mut self, n: usize) -> bool;
    /// Set the frame's length to `len`, which must not exceed the current
    /// length; return false otherwise.
    fn truncate(&mut self, len: usize) -> bool;
}

impl Frame for Vec<u8> {
    fn bytes(&mut self) -> &mut [u8] {
        self
    }
    fn push_front(&mut self, n: usize) -> bool {
        // Tests only: a UMEM frame moves its bytes in place instead.
        self.splice(0..0, std::iter::repeat_n(0, n));
        true
    }
    fn truncate(&mut self, len: usize) -> bool {
        len <= self.len() && {
            Vec::truncate(self, len);
            true
        }
    }
}

impl<const N: usize> Frame for [u8; N] {
    fn bytes(&mut self) -> &mut [u8] {
        self
    }
    fn push_front(&mut self, _n: usize) -> bool {
        false
    }
    fn truncate(&mut self, len: usize) -> bool {
        len == N
    }
}
