//! The dataplane: AF_XDP sockets, the XDP steering program, and the per-core
//! workers that parse, schedule and rewrite frames in place.
//!
//! Owns: `xsk` (the only module with `unsafe`: UMEM, rings, and the libbpf
//! loader of our steering program), `wire` (zero-copy header views), `fwd`
//! (DR rewrite), `worker` (THE HOT PATH), `snapshot` (rules → immutable
//! per-worker view, built on the control side), `stats` (single-writer
//! counters) and `neigh` (RS MACs from the kernel's neighbour table).
//!
//! Must not touch: the control socket, rule parsing or process lifetime; the
//! binary wires those. Scheduling and connection state come from the pure
//! `sched` and `conntrack` crates.

pub mod frame;
pub mod fwd;
pub mod neigh;
pub mod owner;
pub mod snapshot;
pub mod stats;
pub mod wire;
pub mod worker;
pub mod xsk;

pub use frame::Frame;
pub use snapshot::{Input, LinkSnap, SlotMap, Snapshot, Update};
pub use stats::{Reason, WorkerStats};
pub use worker::{Forwarder, PacketIo, Verdict, WorkerCtl};
