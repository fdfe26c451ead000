//! Connection sync in the worker: handing a master's connections to its
//! sync sender, and taking in what a backup learnt.
//!
//! Owns: the worker's end of the sync rings and inboxes, and the entries a
//! backup makes. Must not touch: sockets, the wire format.

use super::Forwarder;
use super::TEMPLATE;
use super::account::{bind, count, uncount};
use crate::family::Family;
use crate::owner;
use crate::snapshot::Snapshot;
use crate::stats::WorkerStats;
use crate::sync::SyncConn;
use config::FwdMethod;
use conntrack::{Addr, Conn, ConnState, FlowKey};

/// `client_link` of a learnt connection until its client's first packet
/// here says where the client is (links are numbered from 0, a few).
pub(super) const UNKNOWN_LINK: u8 = u8::MAX;

/// Unbound connections a worker keeps at most.
pub const PARKED: usize = 4096;

/// Learnt connections whose service or server is not configured here yet:
/// kept (the kernel keeps them unbound) until a rules change brings it, or
/// their timeout passes. Both lists are allocated once; a full one drops
/// and counts.
#[derive(Debug)]
pub struct Parked {
    list: Vec<(SyncConn, u32)>,
    spare: Vec<(SyncConn, u32)>,
    retry: bool,
}

impl Default for Parked {
    fn default() -> Self {
        Self {
            list: Vec::with_capacity(PARKED),
            spare: Vec::with_capacity(PARKED),
            retry: false,
        }
    }
}

impl Parked {
    /// The rules changed: try the parked ones again at the next turn.
    pub fn rules_changed(&mut self) {
        self.retry = !self.list.is_empty();
    }

    /// How many wait.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.list.len()
    }
}

/// IPVS's numbers for the forwarding methods.
fn fwd_code(f: FwdMethod) -> u8 {
    match f {
        FwdMethod::Nat => 0,
        FwdMethod::Tun => 2,
        FwdMethod::Dr => 3,
    }
}

/// Connection (or template) `key` → server `di` of service `si` as sync
/// carries it.
#[inline]
fn sync_conn_of<A: Addr>(
    snap: &Snapshot,
    key: &FlowKey<A>,
    conn: &Conn,
    (si, di): (usize, usize),
) -> SyncConn {
    let svc = &snap.services[si];
    let d = &svc.dests[di];
    let state = match conn.state {
        _ if conn.template => 0,
        ConnState::Udp => 0,
        s => s as u8,
    };
    let timeout = if conn.template {
        svc.persistence.unwrap_or(0)
    } else {
        snap.timeouts.of(conn.state)
    };
    SyncConn {
        proto: key.proto & !TEMPLATE,
        template: conn.template,
        state,
        fwd: fwd_code(d.fwd),
        v6: A::V6,
        cip: key.cip.widen(),
        cport: key.cport,
        vip: key.vip.widen(),
        vport: key.vport,
        rip: d.addr,
        rport: if d.port == 0 { key.vport } else { d.port },
        fwmark: svc.fwmark,
        timeout,
    }
}

/// Hand connection (or template) `key` → server `di` of service `si` to the
/// sync sender through ring `me`; a full ring drops it, counted.
#[inline]
pub(super) fn emit<A: Addr>(
    snap: &Snapshot,
    stats: &WorkerStats,
    me: usize,
    key: &FlowKey<A>,
    conn: &Conn,
    at: (usize, usize),
) {
    let Some(sm) = &snap.sync else { return };
    let c = sync_conn_of(snap, key, conn, at);
    match sm.rings.get(me).map(|r| r.push(c)) {
        Some(Ok(())) => stats.sync_sent.add(1),
        _ => stats.sync_drops.add(1),
    }
}

impl Forwarder {
    /// Fill `buf`, up to its capacity, with every connection and template
    /// of this worker that sync would send (a full-table transfer to a
    /// director warming up). Walks the whole table: the control plane asks,
    /// a batch boundary pays.
    pub fn sync_dump(&self, buf: &mut Vec<SyncConn>) {
        buf.clear();
        let snap = &self.update.snap;
        let mut take = |sc: SyncConn, template: bool| {
            if buf.len() < buf.capacity() && (template || crate::sync::sent_state(sc.proto == 6, sc.state)) {
                buf.push(sc);
            }
        };
        self.tables.v4.for_each(|k, c| {
            if let Some(at) = snap.dest_of(c.dest_id, c.slot) {
                take(sync_conn_of(snap, k, c, at), c.template);
            }
        });
        self.tables.v6.for_each(|k, c| {
            if let Some(at) = snap.dest_of(c.dest_id, c.slot) {
                take(sync_conn_of(snap, k, c, at), c.template);
            }
        });
    }
}

impl Forwarder {
    /// Keep `c` unbound until the rules have its service and server.
    fn park(&mut self, c: &SyncConn, now: u32) {
        let p = &mut self.parked;
        if let Some(slot) = p.list.iter_mut().find(|(o, _)| same_flow(o, c)) {
            *slot = (*c, now.wrapping_add(c.timeout.max(1)));
            return;
        }
        if p.list.len() < p.list.capacity() {
            p.list.push((*c, now.wrapping_add(c.timeout.max(1))));
        }
        self.stats.sync_unbound.add(1);
    }

    /// After a rules change, bind what waits (and forget what timed out).
    #[inline]
    pub fn rebind(&mut self, now: u32) {
        if self.parked.retry {
            self.rebind_parked(now);
        }
    }

    /// No allocation: the two lists trade places.
    #[cold]
    fn rebind_parked(&mut self, now: u32) {
        self.parked.retry = false;
        let mut waiting = std::mem::take(&mut self.parked.spare);
        std::mem::swap(&mut waiting, &mut self.parked.list);
        for (c, expires) in waiting.drain(..) {
            // Expiry counts around the clock's wrap, as the table's does.
            if expires.wrapping_sub(now) as i32 > 0 {
                self.learn_conn(&c, now);
            }
        }
        self.parked.spare = waiting;
    }

    /// Take in a connection a master sent: hand it to the worker that owns
    /// its flow, or insert or refresh it here; with no service or server for
    /// it yet, park it.
    pub fn learn_conn(&mut self, c: &SyncConn, now: u32) {
        if c.v6 {
            self.learn_conn_in::<u128>(c, now);
        } else {
            self.learn_conn_in::<u32>(c, now);
        }
    }

    fn learn_conn_in<A: Family>(&mut self, c: &SyncConn, now: u32) {
        let snap = &self.update.snap;
        let (cip, vip) = (A::narrow(c.cip), A::narrow(c.vip));
        let si = if c.fwmark != 0 {
            snap.fwmark_service_of::<A>(c.fwmark)
        } else {
            snap.service(c.proto, vip, c.vport)
        };
        let Some(si) = si else {
            return self.park(c, now);
        };
        let svc = &snap.services[si];
        // The owner rule of a packet of this flow (client network alone for
        // a persistent service, so templates meet their connections).
        let mask = svc.persistence.map_or(0, |_| svc.netmask);
        if let Some((me, handoff)) = &self.peers {
            let workers = handoff.workers();
            let to = if mask != 0 || c.template {
                let net = A::narrow(c.cip & if mask != 0 { mask } else { u128::MAX });
                owner::owner_of(net.fold32(), 0, workers)
            } else {
                owner::owner_of(cip.fold32(), c.cport, workers)
            };
            if to != *me {
                if !handoff.send_sync(to, *c) {
                    self.stats.sync_unbound.add(1);
                }
                return;
            }
        }
        let found = svc
            .dests
            .iter()
            .position(|d| d.addr == c.rip && (d.port == c.rport || d.port == 0) && !d.deleted);
        let Some(di) = found else {
            return self.park(c, now);
        };
        let state = match (c.template, c.proto) {
            (true, _) => ConnState::None,
            (false, p) if p == crate::wire::PROTO_TCP => {
                ConnState::from_tcp_number(c.state).unwrap_or(ConnState::Established)
            }
            _ => ConnState::Udp,
        };
        let key = FlowKey {
            proto: if c.template { c.proto | TEMPLATE } else { c.proto },
            cip,
            cport: c.cport,
            vip,
            vport: c.vport,
        };
        let timeout = if c.timeout == 0 {
            snap.timeouts.of(state)
        } else {
            c.timeout
        };
        self.keep(&key, c, (si, di), state, now.wrapping_add(timeout));
    }

    /// Insert or refresh a learnt entry, counted as a scheduled one is.
    fn keep<A: Family>(
        &mut self,
        key: &FlowKey<A>,
        c: &SyncConn,
        (si, di): (usize, usize),
        state: ConnState,
        expires: u32,
    ) {
        let snap = &self.update.snap;
        let stats = &*self.stats;
        let d = &snap.services[si].dests[di];
        let table = A::table(&mut self.tables);
        if let Some(conn) = table.get_mut(key) {
            if conn.dest_id == d.id {
                if !conn.template && conn.state != state {
                    uncount(stats, conn);
                    conn.state = state;
                    count(stats, conn);
                }
                conn.expires = expires;
                return stats.sync_learnt.add(1);
            }
            // Another server now: the master re-scheduled it.
            if let Some(old) = table.remove(key) {
                super::account::release(stats, snap, &mut self.update.scheds, &old);
            }
        }
        let conn = Conn {
            dest_id: d.id,
            slot: d.slot,
            state,
            expires,
            // Filled in by the client's first packet here.
            client_mac: [0; 6],
            client_link: UNKNOWN_LINK,
            packed: 0,
            template: c.template,
        };
        let reply = (d.fwd == FwdMethod::Nat && !c.template).then_some(FlowKey {
            vip: A::narrow(d.addr),
            vport: c.rport,
            ..*key
        });
        match table.insert(*key, reply, conn) {
            Ok(_) if c.template => stats.dest(d.slot).persist.add(1),
            Ok(_) => {
                stats.conns.add(1);
                count(stats, &conn);
                bind(stats, d);
            }
            Err(conntrack::Full) => return stats.sync_unbound.add(1),
        }
        stats.sync_learnt.add(1);
    }
}

/// The same connection (or template) of the same service.
fn same_flow(a: &SyncConn, b: &SyncConn) -> bool {
    (
        a.proto, a.template, a.v6, a.cip, a.cport, a.vip, a.vport, a.fwmark,
    ) == (
        b.proto, b.template, b.v6, b.cip, b.cport, b.vip, b.vport, b.fwmark,
    )
}
