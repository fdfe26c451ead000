//! The fast path's two channels between the workers and the control thread
//! that keeps the XDP flow map (`xsk::Steer::fast_add`): the offloads and
//! removals a worker decides, and the packets the kernel forwarded for its
//! connections, which come back as [`Touch`]es so the worker's counters and
//! expiry see them.
//!
//! The workers stay the truth: a connection is offloaded once established
//! (TCP ESTABLISHED; UDP at its first packet), of either family, taken
//! back when it leaves that state or the table, and the kernel
//! only forwards what the map says. Both channels are bounded
//! single-producer rings: a worker never makes a syscall for them, and a
//! full ring drops the event (counted): an offload not made leaves the flow
//! in userspace, a removal not made is caught at the next read (the control
//! thread also removes what the workers no longer hold).
//!
//! Must not touch: the map itself (the control thread owns it) or
//! connections (each worker owns its own).

use crate::xsk::{FastKey, FastVal};
use conntrack::FlowKey;
use crossbeam_queue::ArrayQueue;
use std::sync::Arc;

/// Events a worker's ring holds.
pub const RING: usize = 8192;

/// A connection of either family, by its client-side key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKey {
    /// In the IPv4 table.
    V4(FlowKey<u32>),
    /// In the IPv6 table.
    V6(FlowKey<u128>),
}

impl ConnKey {
    /// The key of `key`'s connection, of its family.
    pub fn of<A: conntrack::Addr>(key: &FlowKey<A>) -> Self {
        let (cip, vip) = (key.cip.widen(), key.vip.widen());
        if A::V6 {
            return Self::V6(FlowKey {
                proto: key.proto,
                cip,
                cport: key.cport,
                vip,
                vport: key.vport,
            });
        }
        Self::V4(FlowKey {
            proto: key.proto,
            cip: cip as u32,
            cport: key.cport,
            vip: vip as u32,
            vport: key.vport,
        })
    }
}

/// What a worker asks of the flow map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastEvent {
    /// Forward `key`'s frames by `val`; they belong to connection `conn`
    /// (its client-side key), in the reply direction if `out`, of server
    /// `dest_id` in counter slot `slot`.
    Add {
        /// The map key.
        key: FastKey,
        /// The rewrite.
        val: FastVal,
        /// The connection.
        conn: ConnKey,
        /// A NAT reply's direction.
        out: bool,
        /// The server.
        dest_id: u32,
    },
    /// Stop forwarding `key`'s frames in the kernel.
    Del(FastKey),
}

/// What the kernel forwarded for one direction of a connection since the
/// last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    /// The flow's map key (a worker that no longer has the connection asks
    /// for its removal by it).
    pub key: FastKey,
    /// The connection (client-side key).
    pub conn: ConnKey,
    /// The reply direction (a NAT server's frames to the client).
    pub out: bool,
    /// Packets.
    pub pkts: u64,
    /// Bytes.
    pub bytes: u64,
}

/// The rings of every worker, while the fast path is on (the snapshot
/// carries them, as it carries the sync master's).
#[derive(Debug, Clone)]
pub struct FastRings {
    /// Worker → control thread.
    pub events: Arc<[ArrayQueue<FastEvent>]>,
    /// Control thread → worker.
    pub touches: Arc<[ArrayQueue<Touch>]>,
}

impl FastRings {
    /// Rings for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            events: (0..workers).map(|_| ArrayQueue::new(RING)).collect(),
            touches: (0..workers).map(|_| ArrayQueue::new(RING)).collect(),
        }
    }
}

impl PartialEq for FastRings {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.events, &other.events)
    }
}
