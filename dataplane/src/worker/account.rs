//! A connection's place in the counters and the schedulers' view: what a
//! state change, a new connection or a departing one does to the active and
//! inactive counts, the thresholds (`-x`/`-y`) and the schedulers that read
//! them.
//!
//! Owns: the bookkeeping every path through the worker shares. Must not
//! touch: the table (the caller inserts and removes) or the frame.

use crate::snapshot::{DestSnap, Snapshot, SvcSnap};
use crate::stats::{Counter, WorkerStats};
use crate::wire::{Headers, IpBits, PROTO_TCP, tcp_flags};
use conntrack::{Conn, ConnState, Direction, TcpFlags};
use sched::{AnySched, Dest, Dests, Scheduler};

/// The scheduler's view of one service: weights from the snapshot, counts
/// from this worker's counters.
pub(super) struct View<'a> {
    pub(super) svc: &'a SvcSnap,
    pub(super) stats: &'a WorkerStats,
}

impl Dests for View<'_> {
    fn len(&self) -> usize {
        self.svc.dests.len()
    }
    fn dest(&self, i: usize) -> Dest {
        let d = &self.svc.dests[i];
        let c = self.stats.dest(d.slot);
        Dest {
            addr: if self.svc.v6 {
                d.addr.fold32()
            } else {
                d.addr as u32
            },
            port: d.port,
            weight: d.weight,
            active_conns: c.active.get() as u32,
            inactive_conns: c.inactive.get() as u32,
            overloaded: c.overloaded.get() != 0,
        }
    }
}

/// Return the TCP flags conntrack's state machine reads.
#[inline]
pub(super) fn flags<A: IpBits>(h: &Headers<A>) -> TcpFlags {
    TcpFlags {
        syn: h.has(tcp_flags::SYN),
        ack: h.has(tcp_flags::ACK),
        fin: h.has(tcp_flags::FIN),
        rst: h.has(tcp_flags::RST),
    }
}

/// The counter a connection counts in: active (ESTABLISHED) or inactive.
fn state_counter<'a>(stats: &'a WorkerStats, conn: &Conn) -> &'a Counter {
    let c = stats.dest(conn.slot);
    if conn.state.is_active() {
        &c.active
    } else {
        &c.inactive
    }
}

/// Count `conn` in its state's counter.
pub(super) fn count(stats: &WorkerStats, conn: &Conn) {
    state_counter(stats, conn).add(1);
}

pub(super) fn uncount(stats: &WorkerStats, conn: &Conn) {
    state_counter(stats, conn).sub(1);
}

/// Move `conn` on with a packet in `dir`: next state, counts and scheduler
/// kept in step, timer refreshed with the state's timeout.
pub(super) fn advance<A: IpBits>(
    stats: &WorkerStats,
    snap: &Snapshot,
    scheds: &mut [AnySched],
    conn: &mut Conn,
    dir: Direction,
    h: &Headers<A>,
    now: u32,
) {
    let next = if h.proto == PROTO_TCP {
        conn.state.on_tcp(dir, flags(h))
    } else {
        ConnState::Udp
    };
    if next != conn.state {
        uncount(stats, conn);
        conn.state = next;
        count(stats, conn);
        if let Some((si, di)) = snap.dest_of(conn.dest_id, conn.slot) {
            let svc = &snap.services[si];
            scheds[si].on_change(&View { svc, stats }, di);
        }
    }
    conn.expires = now.wrapping_add(snap.timeouts.of(next));
}

/// A connection left the table: take it off its server's counts (if that
/// server still exists) and tell the scheduler.
pub(super) fn release(stats: &WorkerStats, snap: &Snapshot, scheds: &mut [AnySched], conn: &Conn) {
    if conn.template {
        // Templates are not connections; they count as persistent ones.
        if snap.dest_of(conn.dest_id, conn.slot).is_some() {
            stats.dest(conn.slot).persist.sub(1);
        }
        return;
    }
    stats.conns.sub(1);
    if let Some((si, di)) = snap.dest_of(conn.dest_id, conn.slot) {
        let svc = &snap.services[si];
        uncount(stats, conn);
        unbind(stats, &svc.dests[di]);
        scheds[si].on_change(&View { svc, stats }, di);
    }
}

/// `ip_vs_bind_dest()`: a server reaching its upper threshold is overloaded.
pub(super) fn bind(stats: &WorkerStats, d: &DestSnap) {
    let c = stats.dest(d.slot);
    if d.u_threshold != 0 && c.active.get() + c.inactive.get() >= u64::from(d.u_threshold) {
        c.overloaded.set(1);
    }
}

/// `ip_vs_unbind_dest()`: an overloaded server recovers below its lower
/// threshold, or below 3/4 of its upper one when no lower one is set.
fn unbind(stats: &WorkerStats, d: &DestSnap) {
    let c = stats.dest(d.slot);
    let total = c.active.get() + c.inactive.get();
    let clear = if d.l_threshold != 0 {
        total < u64::from(d.l_threshold)
    } else if d.u_threshold != 0 {
        total * 4 < u64::from(d.u_threshold) * 3
    } else {
        true
    };
    if clear {
        c.overloaded.reset();
    }
}
