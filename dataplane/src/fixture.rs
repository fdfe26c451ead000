//! A forwarder built outside the daemon, over rules and one link, with
//! every real server's MAC resolved: the one the benches, the fuzz targets
//! and the allocation test share (the worker's unit tests keep a network of
//! their own, whose MACs they assert on).
//!
//! Must not touch: anything running (it builds a snapshot and a forwarder,
//! and nothing else).

use crate::snapshot::{Input, LinkSnap, SlotMap, Snapshot, Update};
use crate::stats::WorkerStats;
use crate::sync::SyncMaster;
use crate::worker::Forwarder;
use std::sync::Arc;

/// The one link: 02:00:00:00:00:01, 10.0.0.10 and 2001:db8::a, MTU 1500.
pub const LINK: LinkSnap = LinkSnap {
    mac: [2, 0, 0, 0, 0, 1],
    addr: 0x0a00_000a,
    addr6: 0x2001_0db8_0000_0000_0000_0000_0000_000a,
    mtu: 1500,
    ifindex: 0,
};

/// The MAC every real server resolves to.
pub const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// A forwarder of `rules` with tables of (IPv4, IPv6) `capacities`, and a
/// master sync daemon's rings if `sync`.
///
/// # Panics
/// More real servers than counter slots.
pub fn forwarder(rules: &config::Rules, capacities: (usize, usize), sync: Option<SyncMaster>) -> Forwarder {
    let mut slots = SlotMap::default();
    slots.assign(rules).expect("the servers fit the counter slots");
    let links = [LINK];
    let input = Input {
        sync,
        ..Input::new(1, rules, &slots, &links, &|_| Some((SERVER_MAC, 0)))
    };
    Forwarder::with_capacities(
        Update::new(Arc::new(Snapshot::build(&input))),
        capacities,
        Arc::new(WorkerStats::default()),
    )
}
