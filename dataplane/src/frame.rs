//! A received frame as the forwarder sees it: bytes it may rewrite in place,
//! lengthen at the front (TUN's outer header) or shorten (an ICMP error built
//! from the frame).
//!
//! The AF_XDP port implements it over a UMEM frame (`xsk::port`); tests and
//! benches use `Vec<u8>` and byte arrays. [`PacketIo`] is the other side of
//! that boundary: what a port does with a batch and the verdicts on it, here
//! so that the unsafe layer depends on nothing above it.

use crate::stats::Reason;

/// Largest frame a hand-off or fragment buffer holds (a UMEM frame is 2
/// KiB).
pub const MAX_FRAME: usize = 2048;

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

/// What to do with a frame after the forwarder's `handle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it (rewritten in place) out of this link (interface index).
    Tx(u8),
    /// Drop it; the reason was counted.
    Drop(Reason),
    /// Its bytes were handed to another worker; recycle the frame.
    Consumed,
}

/// A source and sink of frames: AF_XDP rings in the daemon, memory in tests.
pub trait PacketIo {
    /// Receive one batch, let `f` rewrite each frame in place (it is told
    /// the link the frame came in on), send those it returns [`Verdict::Tx`]
    /// for out of the link it names, and recycle the rest.
    fn poll(&mut self, f: impl FnMut(&mut dyn Frame, u8) -> Verdict) -> Batch;
    /// Copy `bytes` (handed over by another worker, from link `link`) into a
    /// free frame and let `f` decide on it as on a received one; it is sent
    /// with the next batch. Return false when no frame is free.
    fn inject(&mut self, bytes: &[u8], link: u8, f: impl FnMut(&mut dyn Frame, u8) -> Verdict) -> bool;
}

/// What one [`PacketIo::poll`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    /// Frames received.
    pub rx: usize,
    /// Frames queued for sending.
    pub tx: usize,
    /// Frames the handler wanted sent that found the TX ring full.
    pub tx_full: usize,
}
