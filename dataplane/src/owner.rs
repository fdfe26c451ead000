//! Which worker owns a flow, and the hand-off of frames between workers.
//!
//! The owner of a flow is a pure function of its client-side tuple (CIP and
//! client port), so a NAT reply, whose hash on the wire differs from its
//! request's and which the NIC may deliver to another queue, still finds the
//! worker that holds its connection. A frame that arrives at a non-owner is
//! copied into a buffer from a shared, preallocated pool and pushed onto the
//! owner's bounded lock-free inbox (crossbeam `ArrayQueue`); the owner
//! forwards it at its next batch and returns the buffer. When the pool or the
//! inbox is empty/full the frame is dropped; both outcomes are counted.
//!
//! Nothing here allocates after [`Handoff::new`].

use crate::wire::{ETHERTYPE_IPV4, Ethernet};
use crossbeam_queue::ArrayQueue;

/// Largest frame a hand-off buffer holds (a UMEM frame is 2 KiB).
pub const MAX_FRAME: usize = 2048;

/// One frame in transit between workers.
#[derive(Debug)]
pub struct HandoffBuf {
    /// Link the frame came in on.
    pub link: u8,
    /// Bytes used in `data`.
    pub len: u16,
    /// The frame.
    pub data: [u8; MAX_FRAME],
}

/// The hand-off queues of all workers.
#[derive(Debug)]
pub struct Handoff {
    inboxes: Vec<ArrayQueue<Box<HandoffBuf>>>,
    pool: ArrayQueue<Box<HandoffBuf>>,
}

impl Handoff {
    /// Make inboxes of `depth` frames for `workers` workers, and a pool of
    /// buffers to fill them (control side: allocates everything now).
    pub fn new(workers: usize, depth: usize) -> Self {
        let total = workers * depth;
        let pool = ArrayQueue::new(total.max(1));
        for _ in 0..total {
            let buf = Box::new(HandoffBuf {
                link: 0,
                len: 0,
                data: [0; MAX_FRAME],
            });
            // The pool was sized for exactly these buffers.
            let _ = pool.push(buf);
        }
        Self {
            inboxes: (0..workers).map(|_| ArrayQueue::new(depth.max(1))).collect(),
            pool,
        }
    }

    /// Return the number of workers.
    pub fn workers(&self) -> usize {
        self.inboxes.len()
    }

    /// Copy `frame` (from link `link`) to worker `to`; return false if it
    /// was dropped (pool empty, inbox full, or frame too big).
    pub fn send(&self, to: usize, link: u8, frame: &[u8]) -> bool {
        let Some(inbox) = self.inboxes.get(to) else {
            return false;
        };
        if frame.len() > MAX_FRAME {
            return false;
        }
        let Some(mut buf) = self.pool.pop() else {
            return false;
        };
        buf.link = link;
        buf.len = frame.len() as u16;
        buf.data[..frame.len()].copy_from_slice(frame);
        match inbox.push(buf) {
            Ok(()) => true,
            Err(buf) => {
                // The pool has room for every buffer it handed out.
                let _ = self.pool.push(buf);
                false
            }
        }
    }

    /// Take the next frame handed to worker `me`.
    pub fn recv(&self, me: usize) -> Option<Box<HandoffBuf>> {
        self.inboxes.get(me)?.pop()
    }

    /// Give a buffer back to the pool once its frame was forwarded.
    pub fn recycle(&self, buf: Box<HandoffBuf>) {
        let _ = self.pool.push(buf);
    }
}

/// Return the worker, of `workers`, that owns the flow of client `cip:cport`.
#[inline]
pub fn owner_of(cip: u32, cport: u16, workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    (flow_hash(cip, cport) % workers as u64) as usize
}

/// Hash a client tuple to 32 bits: a multiplicative mix, so consecutive
/// ports and addresses spread.
#[inline]
pub fn flow_hash(cip: u32, cport: u16) -> u64 {
    (u64::from(cip) << 16 | u64::from(cport)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
}

/// Read the client tuple of a frame: for a packet to a VIP it is the source,
/// for a reply from a NAT real server the destination. `is_reply(proto, src,
/// sport)` tells the two apart. `None` for frames without one (the worker
/// that received them counts and drops them).
#[inline]
pub fn client_of(frame: &[u8], is_reply: impl Fn(u8, u32, u16) -> bool) -> Option<(u32, u16, FlowSide)> {
    let eth = Ethernet::new_checked(frame).ok()?;
    if eth.ethertype() != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = eth.payload();
    if ip.len() < 20 {
        return None;
    }
    let l4 = usize::from(ip[0] & 0x0f) * 4;
    if ip.len() < l4 + 4 {
        return None;
    }
    let proto = ip[9];
    let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
    let sport = u16::from_be_bytes([ip[l4], ip[l4 + 1]]);
    let dport = u16::from_be_bytes([ip[l4 + 2], ip[l4 + 3]]);
    Some(if is_reply(proto, src, sport) {
        (
            dst,
            dport,
            FlowSide::Reply {
                proto,
                rip: src,
                rport: sport,
            },
        )
    } else {
        (
            src,
            sport,
            FlowSide::Request {
                proto,
                vip: dst,
                vport: dport,
            },
        )
    })
}

/// Which way a frame goes, with the service side of its tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSide {
    /// Client → VIP.
    Request {
        /// IP protocol.
        proto: u8,
        /// Destination (VIP).
        vip: u32,
        /// Destination port.
        vport: u16,
    },
    /// NAT real server → client.
    Reply {
        /// IP protocol.
        proto: u8,
        /// Source (RIP).
        rip: u32,
        /// Source port.
        rport: u16,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_stable_and_spreads() {
        let mut seen = [0u32; 4];
        for p in 0..4000u16 {
            let o = owner_of(0x0a00_0002, p, 4);
            assert_eq!(o, owner_of(0x0a00_0002, p, 4));
            seen[o] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        assert_eq!(owner_of(1, 2, 1), 0);
    }

    #[test]
    fn request_and_nat_reply_have_the_same_owner() {
        let req = crate::wire::tcp_frame([10, 0, 0, 2], 40000, [10, 0, 0, 100], 80, 0x02);
        // The reply from RIP 10.98.0.11:8080 back to the client.
        let rep = crate::wire::tcp_frame([10, 98, 0, 11], 8080, [10, 0, 0, 2], 40000, 0x12);
        let is_reply = |_, src, sport| src == 0x0a62_000b && sport == 8080;
        let client = |f: &[u8]| client_of(f, is_reply).map(|(c, p, _)| (c, p));
        assert_eq!(client(&req), Some((0x0a00_0002, 40000)));
        assert_eq!(client(&rep), Some((0x0a00_0002, 40000)));
        assert_eq!(client_of(&req[..20], is_reply), None);
    }

    #[test]
    fn handoff_delivers_and_counts_what_it_cannot() {
        let h = Handoff::new(2, 2);
        assert!(h.send(1, 0, b"one"));
        assert!(h.send(1, 1, b"two"));
        assert!(!h.send(1, 0, b"three"), "inbox of 2 is full");
        assert!(!h.send(5, 0, b"x"), "no such worker");
        let a = h.recv(1).unwrap();
        assert_eq!((&a.data[..usize::from(a.len)], a.link), (&b"one"[..], 0));
        h.recycle(a);
        assert!(h.recv(0).is_none());
        assert!(!h.send(0, 0, &[0u8; MAX_FRAME + 1]), "too big");
    }
}
