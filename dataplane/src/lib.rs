//! The dataplane: AF_XDP sockets, the XDP steering program, and the per-core
//! workers that parse, schedule and rewrite frames in place.
//!
//! One packet's way, top to bottom (DPVS `__dp_vs_in` → `conn_lookup` →
//! `conn_sched` → `packet_xmit`; Katran `process_packet`):
//!
//! | layer | module | owns |
//! |---|---|---|
//! | loop | [`worker`] | THE HOT PATH: rx batch → [`wire::parse`] once → owner or hand-off → lookup / schedule (`worker::schedule`) → [`fwd::xmit`] → tx; rules picked up at batch boundaries |
//! | hand-off | [`owner`] | which worker owns a flow, from the parsed headers; the bounded inboxes between workers |
//! | fragments | [`frag`] | where a datagram's later fragments go: the first fragment's decision by datagram key, early fragments held |
//! | rewrite | [`fwd`] | DR, NAT, TUN and the ICMP error, written through `wire`'s setters |
//! | bytes | [`wire`] | checked header views (getters, setters, `check_len`), the checksum, the one parse into [`wire::Headers`] |
//! | families | [`family`] | IPv4 (`u32`) and IPv6 (`u128`) as one type parameter: which lookups, which connection table |
//! | rules | [`snapshot`] | `config::Rules` → the immutable per-worker view, built on the control side from one [`snapshot::Input`] |
//! | counters | [`stats`] | single-writer per-worker counters, drop reasons |
//! | fast path | [`fast`] | the rings between the workers and the keeper of the XDP flow map: offloads, removals, and what the kernel forwarded |
//! | sync | [`sync`] | what a master's worker hands the sync sender (bounded rings), what a backup's worker takes in |
//! | frames | [`frame`] | what a rewrite may do to a frame (grow at the front, shrink) |
//! | kernel | [`xsk`] | the only `unsafe`: UMEM, rings, owned frame tokens, the libbpf loader and typed maps of our steering program (and, with feature `bench`, the benchmark's programs) |
//!
//! Must not touch: the control socket, rule parsing, process lifetime or
//! host facts (neighbours, addresses, MTUs: the `host` crate); the binary
//! wires those. Scheduling and connection state come from the pure
//! `sched` and `conntrack` crates.

pub mod family;
pub mod fast;
pub mod fixture;
pub mod frag;
pub mod frame;
pub mod fwd;
pub mod owner;
pub mod snapshot;
pub mod stats;
pub mod sync;
pub mod wire;
pub mod worker;
pub mod xsk;

pub use frame::Frame;
pub use snapshot::{Input, LinkSnap, SlotMap, Snapshot, Update};
pub use stats::{Reason, WorkerStats};
pub use worker::{Forwarder, PacketIo, Verdict, WorkerCtl};
