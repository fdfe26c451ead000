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
//! Later IPv4 fragments have no ports: they are owned by their datagram's
//! key instead ([`frag_owner`]), and the worker that decided on the first
//! fragment sends that decision to the key's owner as a small
//! [`FragNote`] on a queue of its own.
//!
//! Nothing here allocates after [`Handoff::new`].

use crate::frag::{FragKey, FragNote};
use crate::sync::SyncConn;
use crate::wire::{Headers, IpBits};
use crossbeam_queue::ArrayQueue;

pub use crate::frame::MAX_FRAME;

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
    notes: Vec<ArrayQueue<FragNote>>,
    /// Connections a backup's sync receiver learnt, for the owning worker.
    synced: Vec<ArrayQueue<SyncConn>>,
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
            notes: (0..workers).map(|_| ArrayQueue::new(depth.max(1))).collect(),
            synced: (0..workers).map(|_| ArrayQueue::new(crate::sync::RING)).collect(),
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

    /// Send a fragment decision to worker `to`; return false if its queue
    /// is full (or there is no such worker).
    pub fn note(&self, to: usize, note: FragNote) -> bool {
        self.notes.get(to).is_some_and(|q| q.push(note).is_ok())
    }

    /// Give worker `to` a connection a backup learnt; return false if its
    /// inbox is full.
    pub fn send_sync(&self, to: usize, c: SyncConn) -> bool {
        self.synced.get(to).is_some_and(|q| q.push(c).is_ok())
    }

    /// Take the next learnt connection for worker `me`.
    pub fn recv_sync(&self, me: usize) -> Option<SyncConn> {
        self.synced.get(me)?.pop()
    }

    /// Take the next fragment decision sent to worker `me`.
    pub fn recv_note(&self, me: usize) -> Option<FragNote> {
        self.notes.get(me)?.pop()
    }
}

/// Return the worker, of `workers`, that owns the later fragments of the
/// datagram `key`.
#[inline]
pub fn frag_owner(key: &FragKey, workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    ((key.hash() >> 32) % workers as u64) as usize
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

/// Return the client tuple of a frame parsed as `h`: for a packet to a VIP
/// it is the source, for a reply from a NAT real server the destination.
/// `is_reply(proto, src, sport)` tells the two apart.
#[inline]
pub fn client_of<A: IpBits>(h: &Headers<A>, is_reply: impl Fn(u8, A, u16) -> bool) -> (A, u16, FlowSide<A>) {
    let proto = h.proto;
    if is_reply(proto, h.src, h.sport) {
        let side = FlowSide::Reply {
            proto,
            rip: h.src,
            rport: h.sport,
        };
        (h.dst, h.dport, side)
    } else {
        let side = FlowSide::Request {
            proto,
            vip: h.dst,
            vport: h.dport,
        };
        (h.src, h.sport, side)
    }
}

/// Which way a frame goes, with the service side of its tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSide<A = u32> {
    /// Client → VIP.
    Request {
        /// IP protocol.
        proto: u8,
        /// Destination (VIP).
        vip: A,
        /// Destination port.
        vport: u16,
    },
    /// NAT real server → client.
    Reply {
        /// IP protocol.
        proto: u8,
        /// Source (RIP).
        rip: A,
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
        let client_of = |f: &[u8], is_reply| crate::wire::parse(f).ok().map(|h| client_of(&h, is_reply));
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
