//! The decision for a client's packet, in the named steps of IPVS's
//! `ip_vs_in` (DPVS `__dp_vs_in`, Katran `process_packet`): look the
//! connection up, or schedule a new one — persistence first, then the
//! service's scheduler, then the entry and the thresholds.
//!
//! Owns: what goes into and out of the connection table for client packets.
//! Must not touch: the frame (the worker transmits once this said where).

use super::account::{self, View, advance, bind, count, release};
use crate::family::Family;
use crate::owner;
use crate::snapshot::{DestSnap, FullTable, Snapshot, SvcSnap};
use crate::stats::{Reason, WorkerStats};
use crate::wire::{Headers, IpBits, PROTO_TCP};
use config::FwdMethod;
use conntrack::{Conn, ConnState, ConnTable, Direction, FlowKey};
use sched::{AnySched, Flow, Scheduler};

use super::TEMPLATE;

/// The parts of a forwarder one decision borrows at once (the rules read,
/// the schedulers and table written).
pub(super) struct Ctx<'a, A: Family = u32> {
    pub(super) snap: &'a Snapshot,
    pub(super) scheds: &'a mut [AnySched],
    pub(super) table: &'a mut ConnTable<A>,
    pub(super) stats: &'a WorkerStats,
    /// This worker's index (its sync ring).
    pub(super) me: usize,
}

impl<A: Family> Ctx<'_, A> {
    /// IPVS's conn_reuse_mode: a SYN on a connection that is closing is a
    /// new connection from a reused client port; end the old one so it is
    /// scheduled afresh, or the port would stick to its old server.
    pub(super) fn reuse_closing(&mut self, key: &FlowKey<A>) {
        if self.table.get_mut(key).is_some_and(|c| c.state.is_closing()) {
            if let Some(old) = self.table.remove(key) {
                release(self.stats, self.snap, self.scheds, &old);
            }
        }
    }

    /// One-packet scheduling (`-o`): every datagram is a connection of its
    /// own, scheduled and forgotten, as DNS services want.
    pub(super) fn one_packet(&mut self, si: usize, flow: &Flow) -> Result<usize, Reason> {
        let di = self.pick(si, flow)?;
        let svc = &self.snap.services[si];
        self.stats.dest(svc.dests[di].slot).conns.add(1);
        Ok(di)
    }

    /// The connection of `key`, moved on by this packet: `None` when there
    /// is none; an error when its server was deleted and
    /// `--expire-nodest-conn` forgets it.
    /// Return (service, server) indices: the connection's own service.
    pub(super) fn lookup(
        &mut self,
        key: &FlowKey<A>,
        h: &Headers<A>,
        ingress: u8,
        now: u32,
    ) -> Option<Result<(usize, usize), Reason>> {
        let conn = self.table.get_mut(key)?;
        let Some((si, di)) = self.snap.dest_of(conn.dest_id, conn.slot) else {
            return Some(Err(Reason::DestGone));
        };
        if self.snap.expire_nodest_conn && self.snap.services[si].dests[di].deleted {
            // The client's next packet is scheduled anew (for TCP, once it
            // opens a new connection).
            if let Some(gone) = self.table.remove(key) {
                let d = &self.snap.services[si].dests[di];
                super::offload::unload(self.snap, self.stats, self.me, key, Some(d));
                release(self.stats, self.snap, self.scheds, &gone);
            }
            return Some(Err(Reason::DestGone));
        }
        // IPVS's IP_VS_CONN_F_NOOUTPUT: until a reply is seen (never, in DR
        // and TUN), client packets follow the input-only table.
        let dir = if conn.seen_reply() {
            Direction::Input
        } else {
            Direction::InputOnly
        };
        if conn.client_link == super::synced::UNKNOWN_LINK {
            // Learnt from a master (or the last run): its client is where
            // this packet is from, and now the fast path can have it.
            (conn.client_mac, conn.client_link) = (h.src_mac, ingress);
            let d = &self.snap.services[si].dests[di];
            if self.snap.fast.is_some() && super::offload::offloadable(conn, d) {
                super::offload::offload(self.snap, self.stats, self.me, key, conn, d);
            }
        }
        // Only a sync master looks at what the packet changed.
        let before = self.snap.sync.as_ref().map(|sm| {
            let last = conn.expires.wrapping_sub(self.snap.timeouts.of(conn.state));
            (sm.policy, conn.state, last)
        });
        // Only the fast path looks at what the packet changed.
        let was = self.snap.fast.is_some().then_some(*conn);
        advance(self.stats, self.snap, self.scheds, conn, dir, h, now);
        if let Some(was) = was {
            super::offload::transition(self.snap, self.stats, self.me, key, &was, conn);
        }
        if let Some((p, old, last)) = before {
            let tcp = h.proto == PROTO_TCP;
            let pkts = p.count(conn.sync_pkts());
            conn.set_sync_pkts(pkts);
            let timeout = self.snap.timeouts.of(conn.state);
            if p.due(tcp, (old as u8, conn.state as u8), pkts, (last, now), timeout) {
                conn.set_sync_pkts(p.sent(pkts, (last, now), timeout));
                let c = *conn;
                self.sync_out(key, &c, h, (si, di));
            }
        }
        Some(Ok((si, di)))
    }

    /// Send connection `key` to the sync sender, and its persistence
    /// template after it (the kernel syncs a connection's controller too).
    #[cold]
    fn sync_out(&mut self, key: &FlowKey<A>, conn: &Conn, h: &Headers<A>, (si, di): (usize, usize)) {
        super::synced::emit(self.snap, self.stats, self.me, key, conn, (si, di));
        let svc = &self.snap.services[si];
        if svc.persistence.is_none() {
            return;
        }
        let tkey = template_key(h, svc);
        let Some(t) = self.table.get_mut(&tkey) else {
            return;
        };
        if let Some(at) = self.snap.dest_of(t.dest_id, t.slot) {
            super::synced::emit(self.snap, self.stats, self.me, &tkey, t, at);
        }
    }

    /// A packet with no connection: schedule it (`ip_vs_schedule`) and
    /// remember the choice, or, with a full table, pick statelessly or drop.
    pub(super) fn schedule(
        &mut self,
        key: &FlowKey<A>,
        h: &Headers<A>,
        si: usize,
        ingress: u8,
        now: u32,
    ) -> Result<usize, Reason> {
        let svc = &self.snap.services[si];
        if self.table.len() >= self.table.capacity() {
            // Full table (a SYN flood, say): no new entry can be made, and
            // established connections must keep their place. New flows get
            // a stateless pick from their client tuple, the same for every
            // one of their packets, or are dropped, as configured.
            self.stats.table_full.add(1);
            if self.snap.full_table == FullTable::Drop {
                return Err(Reason::TableFull);
            }
            return stateless_pick(svc, self.stats, h).ok_or(Reason::NoDestination);
        }
        // As IPVS (without sloppy_tcp): only a SYN starts a TCP connection,
        // so a mid-flow segment is never sent to a server that has no state.
        if h.proto == PROTO_TCP && !is_syn(h) {
            return Err(Reason::NoConnection);
        }
        let flow = flow(h, now);
        let di = match svc.persistence {
            Some(timeout) => self.persistent(h, si, timeout, &flow)?,
            None => self.pick(si, &flow)?,
        };
        self.insert(key, h, si, di, ingress, now)?;
        Ok(di)
    }

    /// Follow the client's persistence template, or pick and make one.
    fn persistent(&mut self, h: &Headers<A>, si: usize, timeout: u32, flow: &Flow) -> Result<usize, Reason> {
        let (snap, now) = (self.snap, flow.now);
        let tkey = template_key(h, &snap.services[si]);
        let live = self.table.get_mut(&tkey).and_then(|t| {
            let (tsi, tdi) = snap.dest_of(t.dest_id, t.slot)?;
            // The template keeps its server, quiesced or not (as IPVS by
            // default), while that server exists.
            t.expires = now.wrapping_add(timeout);
            (tsi == si && !snap.services[tsi].dests[tdi].deleted).then_some(tdi)
        });
        if let Some(tdi) = live {
            return Ok(tdi);
        }
        let di = self.pick(si, flow)?;
        let d = &snap.services[si].dests[di];
        let template = Conn {
            dest_id: d.id,
            slot: d.slot,
            expires: now.wrapping_add(timeout),
            template: true,
            ..Conn::default()
        };
        // A full table: the connection still goes, without a template to
        // follow.
        // Synced with its first connection that is (as its controller).
        if self.table.insert(tkey, None, template).is_ok() {
            self.stats.dest(d.slot).persist.add(1);
        }
        Ok(di)
    }

    /// Ask service `si`'s scheduler for a server.
    fn pick(&mut self, si: usize, flow: &Flow) -> Result<usize, Reason> {
        let view = View {
            svc: &self.snap.services[si],
            stats: self.stats,
        };
        self.scheds[si].pick(&view, flow).ok_or(Reason::NoDestination)
    }

    /// Make the connection entry of a new flow to server `di`, counted and
    /// bound (`ip_vs_bind_dest`).
    fn insert(
        &mut self,
        key: &FlowKey<A>,
        h: &Headers<A>,
        si: usize,
        di: usize,
        ingress: u8,
        now: u32,
    ) -> Result<(), Reason> {
        let svc = &self.snap.services[si];
        let d = &svc.dests[di];
        // No entry without a MAC: the client's retransmission is scheduled
        // afresh once the neighbour is resolved.
        d.mac.ok_or(Reason::NoNeighbour)?;
        let state = if h.proto == PROTO_TCP {
            ConnState::None.on_tcp(Direction::InputOnly, account::flags(h))
        } else {
            ConnState::Udp
        };
        // The first packet counts for sync.
        let policy = self.snap.sync.as_ref().map(|sm| sm.policy);
        let pkts = policy.map_or(0, |p| p.count(0));
        let mut conn = Conn {
            dest_id: d.id,
            slot: d.slot,
            state,
            expires: now.wrapping_add(self.snap.timeouts.of(state)),
            packed: pkts,
            template: false,
            client_mac: h.src_mac,
            client_link: ingress,
        };
        // NAT replies come back from RIP:rport to CIP:cport.
        let reply = (d.fwd == FwdMethod::Nat).then_some(FlowKey {
            vip: A::narrow(d.addr),
            vport: real_port(d, h),
            ..*key
        });
        self.stats.dest(d.slot).conns.add(1);
        let timeout = self.snap.timeouts.of(state);
        let send = policy.is_some_and(|p| {
            let tcp = h.proto == PROTO_TCP;
            p.due(
                tcp,
                (ConnState::None as u8, state as u8),
                pkts,
                (now, now),
                timeout,
            )
        });
        if let (true, Some(p)) = (send, policy) {
            conn.set_sync_pkts(p.sent(pkts, (now, now), timeout));
        }
        match self.table.insert(*key, reply, conn) {
            Ok(_) => {
                self.stats.conns.add(1);
                count(self.stats, &conn);
                bind(self.stats, d);
                if self.snap.fast.is_some() && super::offload::offloadable(&conn, d) {
                    super::offload::offload(self.snap, self.stats, self.me, key, &conn, d);
                }
                if send {
                    self.sync_out(key, &conn, h, (si, di));
                }
                self.scheds[si].on_change(
                    &View {
                        svc,
                        stats: self.stats,
                    },
                    di,
                );
            }
            // Checked by the caller; a template may have taken the last slot.
            Err(conntrack::Full) => self.stats.table_full.add(1),
        }
        Ok(())
    }
}

/// Return whether `h` opens a TCP connection: SYN without ACK or RST.
#[inline]
pub(super) fn is_syn<A: IpBits>(h: &Headers<A>) -> bool {
    let f = account::flags(h);
    h.proto == PROTO_TCP && f.syn && !f.ack && !f.rst
}

/// The scheduler's view of a packet.
#[inline]
pub(super) fn flow<A: IpBits>(h: &Headers<A>, now: u32) -> Flow {
    Flow {
        cip: h.src.fold32(),
        cport: h.sport,
        vip: h.dst.fold32(),
        vport: h.dport,
        now,
    }
}

/// Pick a server from the client tuple alone, with no state: hash, then
/// the next available server from there (a full-table fallback).
fn stateless_pick<A: IpBits>(svc: &SvcSnap, stats: &WorkerStats, h: &Headers<A>) -> Option<usize> {
    let n = svc.dests.len();
    if n == 0 {
        return None;
    }
    let view = View { svc, stats };
    let hash = owner::flow_hash(h.src.fold32(), h.sport) as usize;
    (0..n)
        .map(|k| (hash + k) % n)
        .find(|&i| sched::Dests::dest(&view, i).available())
}

/// The persistence template of the client (network) of `h` for its service
/// (IPVS's template: client address under `-M`, VIP, port).
fn template_key<A: Family>(h: &Headers<A>, svc: &SvcSnap) -> FlowKey<A> {
    // A fwmark service's ports and protocols share one template (IPVS keys
    // it by mark, with protocol IPPROTO_IP).
    let (proto, vip, vport) = if svc.fwmark != 0 {
        (0, A::narrow(u128::from(svc.fwmark)), 0)
    } else {
        (h.proto, h.dst, h.dport)
    };
    FlowKey {
        proto: proto | TEMPLATE,
        cip: h.src & A::narrow(svc.netmask),
        cport: 0,
        vip,
        vport,
    }
}

/// The port a packet goes to on server `d`: its own, or the packet's when
/// the server's is 0 (a fwmark service's server keeps each port).
#[inline]
pub(super) fn real_port<A: IpBits>(d: &DestSnap, h: &Headers<A>) -> u16 {
    if d.port == 0 { h.dport } else { d.port }
}
