//! HOT PATH ENTRY: one worker's loop, rx batch → classify → conntrack/sched →
//! rewrite → tx.
//!
//! Rules for everything reachable from [`Forwarder::handle`] and [`run`]: no
//! allocation, no locks, no syscalls but the ring's one kick per batch, no
//! logging. Drops are counted by [`Reason`]; a frame never causes a panic.
//! Time is read once per batch and passed in as `now`.

mod account;
mod frags;
mod icmp;
mod offload;
mod schedule;
mod synced;

/// Marks a persistence template's key: its protocol field has this bit set,
/// so templates and connections share the table without meeting.
const TEMPLATE: u8 = 0x80;

use crate::family::{Family, Tables};
use crate::frag::{FragAction, FragTable, Held};
use crate::frame::Frame;
use crate::fwd;
use crate::owner::{self, Handoff};
use crate::snapshot::Update;
use crate::stats::{Reason, WorkerStats};
use crate::wire::{self, Frag, Headers, IpBits, PROTO_ICMP, PROTO_TCP};
use account::{View, release};
use config::FwdMethod;
use conntrack::{ConnState, ConnTable, Direction, FlowKey};
use crossbeam_channel::{Receiver, Sender};
use sched::Scheduler;
use schedule::Ctx;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use crate::frame::{Batch, PacketIo, Verdict};

/// One worker's forwarding state: the rules it reads, its schedulers, its
/// connection table and its counters.
///
/// Connection counts that lc-style schedulers read are this worker's only:
/// with N workers each sees about 1/N of the connections, which balances the
/// same as long as flows spread evenly over queues.
#[derive(Debug)]
pub struct Forwarder {
    update: Update,
    tables: Tables,
    stats: Arc<WorkerStats>,
    /// IP id of the next outer (TUN) header.
    ip_id: u16,
    /// Decisions for the later fragments of datagrams this worker owns.
    frags: FragTable,
    /// Later fragments that came before their decision.
    held: Held,
    /// This worker's index and the queues to the others (set by [`run`]):
    /// fragment decisions go to the worker that owns their datagram.
    peers: Option<(usize, Arc<Handoff>)>,
    /// Learnt connections not bound to a server yet.
    parked: synced::Parked,
}

/// One turn of the expiry clock hand over the whole connection table takes
/// this long (so a connection goes at most this late). The hand moves by
/// time, not by loop: a busy-poll loop spins a million times a second, and
/// a fixed number of slots per loop streamed the table through the cache
/// (gigabytes a second for a 60 MB table) whether or not anything was due.
const SWEEP_TURN: Duration = Duration::from_secs(2);

/// Slots the hand looks at in one loop at most.
const SWEEP_MAX: usize = 4096;

/// How far the clock hand should be: slots due by elapsed time.
#[derive(Debug, Default)]
struct SweepClock {
    done: u128,
}

impl SweepClock {
    /// Slots to look at now, `elapsed` since the worker started, for a table
    /// of `slots`.
    fn budget(&mut self, elapsed: Duration, slots: usize) -> usize {
        let due = elapsed.as_nanos() * slots as u128 / SWEEP_TURN.as_nanos();
        // After a stall the hand catches up SWEEP_MAX slots a loop, not in
        // one long pause.
        let n = due.saturating_sub(self.done).min(SWEEP_MAX as u128);
        self.done += n;
        n as usize
    }
}

/// The IPv6 table's capacity when none is given ([`Forwarder::new`]):
/// a quarter of the IPv4 one, at most this (30 MB a worker).
pub const DEFAULT_CONN_MAX6: usize = 1 << 18;

impl Forwarder {
    /// Make a forwarder with an IPv4 table of `capacity` connections and an
    /// IPv6 one of a quarter of that (at most [`DEFAULT_CONN_MAX6`]).
    pub fn new(update: Update, capacity: usize, stats: Arc<WorkerStats>) -> Self {
        Self::with_capacities(
            update,
            (capacity, (capacity / 4).clamp(1, DEFAULT_CONN_MAX6)),
            stats,
        )
    }

    /// Make a forwarder with tables of (IPv4, IPv6) connections: each
    /// family's table is allocated whole now, so its size is what an
    /// operator gives it.
    pub fn with_capacities(update: Update, (v4, v6): (usize, usize), stats: Arc<WorkerStats>) -> Self {
        Self {
            update,
            tables: Tables {
                v4: ConnTable::with_capacity(v4),
                v6: ConnTable::with_capacity(v6),
            },
            stats,
            ip_id: 0,
            frags: FragTable::default(),
            held: Held::default(),
            peers: None,
            parked: synced::Parked::default(),
        }
    }

    /// Join the other workers: this one is `me` of `handoff.workers()`.
    pub fn join(&mut self, me: usize, handoff: Arc<Handoff>) {
        self.peers = Some((me, handoff));
    }

    /// Return the worker that owns the flow of `frame`, of `workers`
    /// (tests and benches; the loop uses [`Self::owner_of`] on the one
    /// parse).
    pub fn owner(&self, frame: &[u8], workers: usize) -> Option<usize> {
        match wire::parse(frame) {
            Ok(h) => self.owner_of(frame, &h, workers),
            Err(wire::Malformed::NotIpv4) => wire::parse6(frame)
                .ok()
                .map(|h| self.owner6_of(frame, &h, workers)),
            Err(_) => None,
        }
    }

    /// [`Self::owner_of`] for IPv6.
    #[inline]
    pub fn owner6_of(&self, frame: &[u8], h: &Headers<u128>, workers: usize) -> usize {
        if h.frag == Frag::Later {
            return owner::frag_owner(&crate::frag::FragKey::of(h, frame), workers);
        }
        let snap = &self.update.snap;
        let (cip, cport, side) = if h.proto == wire::PROTO_ICMPV6 {
            let Some(q) = h.quoted6(frame).ok() else { return 0 };
            let is_service = |p, a, port| snap.classify(p, a, port).is_some();
            let Some(s) = icmp::side_of(&q, is_service, |p, a, port| snap.is_nat_real(p, a, port)) else {
                return 0;
            };
            s
        } else {
            owner::client_of(h, |p, s, sp| snap.is_nat_real(p, s, sp))
        };
        let mask = match side {
            owner::FlowSide::Request { proto, vip, vport } => snap.owner_mask(false, proto, vip, vport),
            owner::FlowSide::Reply { proto, rip, rport } => snap.owner_mask(true, proto, rip, rport),
        };
        if mask != 0 {
            owner::owner_of((cip & mask).fold32(), 0, workers)
        } else {
            owner::owner_of(cip.fold32(), cport, workers)
        }
    }

    /// Return the worker that owns the flow of `frame`, parsed as `h`, of
    /// `workers`. A later fragment has no ports: its datagram decides.
    #[inline]
    pub fn owner_of(&self, frame: &[u8], h: &Headers, workers: usize) -> Option<usize> {
        if h.frag == Frag::Later {
            return Some(owner::frag_owner(&crate::frag::FragKey::of(h, frame), workers));
        }
        let snap = &self.update.snap;
        let (cip, cport, side) = if h.proto == PROTO_ICMP {
            let q = h.quoted(frame).ok()?;
            let is_service = |p, a, port| snap.classify(p, a, port).is_some();
            icmp::side_of(&q, is_service, |p, a, port| snap.is_nat_real(p, a, port))?
        } else {
            owner::client_of(h, |p, s, sp| snap.is_nat_real(p, s, sp))
        };
        let mask = match side {
            owner::FlowSide::Request { proto, vip, vport } => snap.owner_mask(false, proto, vip, vport),
            owner::FlowSide::Reply { proto, rip, rport } => snap.owner_mask(true, proto, rip, rport),
        };
        // Persistent services: the client (network) alone decides, so that
        // all its connections and its template live on one worker.
        Some(if mask != 0 {
            owner::owner_of(cip & mask, 0, workers)
        } else {
            owner::owner_of(cip, cport, workers)
        })
    }

    /// Fill `buf`, up to its capacity, with this worker's connections and
    /// persistence templates as `ipvsadm -L -c` shows them. This walks the
    /// whole table: the control plane asks for it, a batch boundary pays.
    pub fn dump(&self, buf: &mut Vec<ConnInfo>, now: u32) {
        buf.clear();
        dump_table(&self.tables.v4, &self.update.snap, buf, now);
        dump_table(&self.tables.v6, &self.update.snap, buf, now);
    }

    /// Return this worker's counters.
    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    /// Return the IPv4 connection table (control plane listings, tests).
    pub fn table(&self) -> &ConnTable {
        &self.tables.v4
    }

    /// Return the IPv6 connection table (control plane listings, tests).
    pub fn table6(&self) -> &ConnTable<u128> {
        &self.tables.v6
    }

    /// Switch to newer rules at a batch boundary; return the old ones so the
    /// control thread frees them.
    pub fn install(&mut self, update: Update) -> Update {
        let mut old = std::mem::replace(&mut self.update, update);
        let new = &self.update.snap;
        self.stats.rules_version.set(new.version);
        // Parked connections may find their service or server now.
        self.parked.rules_changed();
        // A service whose scheduler and servers are unchanged (say, only a
        // MAC moved) keeps its scheduler state, so rr does not restart its
        // lap on every publication.
        for (si, svc) in new.services.iter().enumerate() {
            let Some(oi) = old.snap.same_service(svc) else {
                continue;
            };
            let o = &old.snap.services[oi];
            let same_servers = o.dests.len() == svc.dests.len()
                && o.dests
                    .iter()
                    .zip(&svc.dests)
                    .all(|(a, b)| (a.id, a.weight) == (b.id, b.weight));
            if o.scheduler == svc.scheduler && o.sched_flags == svc.sched_flags && same_servers {
                std::mem::swap(&mut self.update.scheds[si], &mut old.scheds[oi]);
            }
            // __ip_vs_update_dest: a lowered or removed upper threshold clears
            // the overload flag.
            for d in &svc.dests {
                let was = old
                    .snap
                    .dest_of(d.id, d.slot)
                    .map(|(s, i)| old.snap.services[s].dests[i].u_threshold);
                if was.is_some_and(|u| d.u_threshold == 0 || d.u_threshold > u) {
                    self.stats.dest(d.slot).overloaded.reset();
                }
            }
        }
        // A slot that now belongs to another server starts from zero; the old
        // server's connections no longer count against it (see `expire`).
        for svc in &new.services {
            for d in &svc.dests {
                if old.snap.slot_owner(d.slot) != d.id {
                    self.stats.reset_dest(d.slot);
                }
            }
        }
        // Schedulers built on the control side saw no connections: let every
        // one read this worker's counts (no allocation; O(servers)).
        let Update { snap, scheds } = &mut self.update;
        for (svc, sched) in snap.services.iter().zip(scheds.iter_mut()) {
            sched.sync(&View {
                svc,
                stats: &self.stats,
            });
        }
        old
    }

    /// Expire IPv4 connections due at `now`, looking at up to `budget`
    /// slots (IPv6: [`Self::expire6`]); an offloaded one leaves the fast
    /// path with it.
    pub fn expire(&mut self, now: u32, budget: usize) {
        self.expire_in::<u32>(now, budget);
    }

    fn expire_in<A: Family>(&mut self, now: u32, budget: usize) {
        let me = self.me();
        let Update { snap, scheds } = &mut self.update;
        let stats = &*self.stats;
        A::table(&mut self.tables).sweep(now, budget, |key, conn| {
            if snap.fast.is_some() {
                let d = snap
                    .dest_of(conn.dest_id, conn.slot)
                    .map(|(s, i)| &snap.services[s].dests[i]);
                if d.is_none_or(|d| offload::offloadable(conn, d)) {
                    offload::unload(snap, stats, me, key, d);
                }
            }
            release(stats, snap, scheds, conn);
        });
    }

    /// This worker's index (0 alone).
    fn me(&self) -> usize {
        self.peers.as_ref().map_or(0, |(me, _)| *me)
    }

    /// [`Self::expire`] for the IPv6 table.
    pub fn expire6(&mut self, now: u32, budget: usize) {
        self.expire_in::<u128>(now, budget);
    }

    /// Decide on one frame that came in on link `ingress` and rewrite it in
    /// place.
    #[inline]
    pub fn handle(&mut self, frame: &mut dyn Frame, ingress: u8, now: u32) -> Verdict {
        let h = wire::parse(frame.bytes());
        self.handle_parsed(frame, &h, ingress, now)
    }

    /// Decide on an IPv6 frame (one that [`wire::parse`] found not IPv4).
    #[cold]
    #[inline(never)]
    fn handle_ipv6(&mut self, frame: &mut dyn Frame, ingress: u8, now: u32) -> Verdict {
        match wire::parse6(frame.bytes()) {
            Ok(h) => self.handle6_parsed(frame, &h, ingress, now),
            Err(m) => self.verdict(Err(m.into())),
        }
    }

    /// [`Self::handle_parsed`] for IPv6 (`rx` counted there): the same
    /// decisions over the IPv6 table.
    fn handle6_parsed(&mut self, frame: &mut dyn Frame, h: &Headers<u128>, ingress: u8, now: u32) -> Verdict {
        if h.frag == Frag::Later {
            return self.later_fragment(frame, h, ingress, now);
        }
        let out = if h.proto == wire::PROTO_ICMPV6 {
            self.icmp_error(frame, h, ingress)
        } else {
            self.forward(frame, h, ingress, now)
        };
        self.verdict(out)
    }

    /// A TCP/UDP packet of either family: to a service (inbound), from a
    /// NAT real server (outbound), or of nothing here.
    #[inline(always)]
    fn forward<A: Family>(
        &mut self,
        frame: &mut dyn Frame,
        h: &Headers<A>,
        ingress: u8,
        now: u32,
    ) -> Result<u8, Reason> {
        if let Some(si) = self.update.snap.classify(h.proto, h.dst, h.dport) {
            self.inbound(frame, h, si, ingress, now)
        } else if self.update.snap.is_nat_real(h.proto, h.src, h.sport) {
            self.outbound(frame, h, now)
        } else {
            Err(Reason::NoService)
        }
    }

    /// [`Self::handle`] for a frame already parsed (once) as `h`.
    // Always inlined into the loop: its rare branches (fragments, ICMP) made
    // the compiler keep it out of line.
    #[inline(always)]
    pub fn handle_parsed(
        &mut self,
        frame: &mut dyn Frame,
        h: &Result<Headers, wire::Malformed>,
        ingress: u8,
        now: u32,
    ) -> Verdict {
        self.stats.rx.add(1);
        // By reference: the headers are not copied on the way.
        let h = match h {
            Ok(h) => h,
            Err(wire::Malformed::NotIpv4) => return self.handle_ipv6(frame, ingress, now),
            Err(m) => return self.verdict(Err((*m).into())),
        };
        if h.frag == Frag::Later {
            return self.later_fragment(frame, h, ingress, now);
        }
        let out = if h.proto == PROTO_ICMP {
            self.icmp_error(frame, h, ingress)
        } else {
            self.forward(frame, h, ingress, now)
        };
        self.verdict(out)
    }

    /// Turn a decision into a verdict, counting a drop.
    fn verdict(&self, out: Result<u8, Reason>) -> Verdict {
        match out {
            Ok(link) => Verdict::Tx(link),
            Err(reason) => {
                self.stats.count_drops(reason, 1);
                Verdict::Drop(reason)
            }
        }
    }

    /// Split the forwarder into what one decision borrows.
    fn ctx<A: Family>(&mut self) -> Ctx<'_, A> {
        let me = self.me();
        Ctx {
            snap: &self.update.snap,
            scheds: &mut self.update.scheds,
            table: A::table(&mut self.tables),
            stats: &self.stats,
            me,
        }
    }

    /// Client → server: look the connection up or schedule it, then transmit
    /// by the server's method. Return the egress link.
    fn inbound<A: Family>(
        &mut self,
        frame: &mut dyn Frame,
        h: &Headers<A>,
        si: usize,
        ingress: u8,
        now: u32,
    ) -> Result<u8, Reason> {
        let key = FlowKey {
            proto: h.proto,
            cip: h.src,
            cport: h.sport,
            vip: h.dst,
            vport: h.dport,
        };
        let mut cx = self.ctx();
        if schedule::is_syn(h) {
            cx.reuse_closing(&key);
        }
        let (si, di) = if cx.snap.services[si].ops && h.proto != PROTO_TCP {
            (si, cx.one_packet(si, &schedule::flow(h, now))?)
        } else if let Some(hit) = cx.lookup(&key, h, ingress, now) {
            hit?
        } else {
            (si, cx.schedule(&key, h, si, ingress, now)?)
        };
        if h.frag == Frag::First {
            let d = &self.update.snap.services[si].dests[di];
            let (dest_id, slot) = (d.id, d.slot);
            self.remember(frame.bytes(), h, FragAction::ToReal { dest_id, slot }, now);
        }
        self.transmit(frame, h, si, di, ingress)
    }

    /// Send a client's packet on to server `di` of service `si`, counted.
    // Always inlined: the cold callers (fragments) made the compiler keep
    // it out of line, a call and spills on every forwarded frame.
    #[inline(always)]
    fn transmit<A: Family>(
        &mut self,
        frame: &mut dyn Frame,
        h: &Headers<A>,
        si: usize,
        di: usize,
        ingress: u8,
    ) -> Result<u8, Reason> {
        let snap = &self.update.snap;
        let d = &snap.services[si].dests[di];
        if fwd::complete_checksum(frame.bytes(), h) {
            self.stats.csum_completed.add(1);
        }
        if d.fwd == FwdMethod::Tun {
            self.ip_id = self.ip_id.wrapping_add(1);
        }
        let route = fwd::Route {
            snap,
            dest: d,
            rport: schedule::real_port(d, h),
            ingress,
            ip_id: self.ip_id,
        };
        let egress = match fwd::xmit(frame, h, &route)? {
            fwd::Sent::Forwarded(link) => link,
            fwd::Sent::FragNeeded(link) => {
                self.stats.frag_needed.add(1);
                link
            }
        };
        let c = self.stats.dest(d.slot);
        c.in_pkts.add(1);
        c.in_bytes.add(frame.bytes().len() as u64);
        Ok(egress)
    }

    /// Server → client, NAT only: the reply of a known connection gets the
    /// VIP:vport back as its source and goes to the client's MAC, out of the
    /// link the client came in on.
    fn outbound<A: Family>(&mut self, frame: &mut dyn Frame, h: &Headers<A>, now: u32) -> Result<u8, Reason> {
        let reply = FlowKey {
            proto: h.proto,
            cip: h.dst,
            cport: h.dport,
            vip: h.src,
            vport: h.sport,
        };
        let me = self.me();
        let (key, conn) = A::table(&mut self.tables)
            .get_reply_mut(&reply)
            .ok_or(Reason::NoConnection)?;
        let Update { snap, scheds } = &mut self.update;
        let before = snap.fast.is_some().then_some(*conn);
        conn.set_seen_reply();
        account::advance(&self.stats, snap, scheds, conn, Direction::Output, h, now);
        if let Some(before) = before {
            offload::transition(snap, &self.stats, me, &key, &before, conn);
        }
        let (link, client_mac, slot) = (conn.client_link, conn.client_mac, conn.slot);
        if link == synced::UNKNOWN_LINK {
            // Learnt from a master and no client packet seen here yet: no
            // MAC to answer to.
            return Err(Reason::NoNeighbour);
        }
        let (vip, vport) = (key.vip, key.vport);
        let b = frame.bytes();
        if h.frag == Frag::First {
            let to = FragAction::ToClient {
                vip: vip.widen(),
                link,
                mac: client_mac,
                slot,
            };
            self.remember(b, h, to, now);
        }
        if fwd::complete_checksum(b, h) {
            self.stats.csum_completed.add(1);
        }
        self.reply(b, h, (vip, vport), link, client_mac, slot)
    }

    /// Send a NAT reply on to the client, counted.
    fn reply<A: Family>(
        &self,
        b: &mut [u8],
        h: &Headers<A>,
        vip: (A, u16),
        link: u8,
        client_mac: [u8; 6],
        slot: u16,
    ) -> Result<u8, Reason> {
        fwd::xmit_reply(b, h, &self.update.snap, vip, link, client_mac)?;
        let c = self.stats.dest(slot);
        c.out_pkts.add(1);
        c.out_bytes.add(b.len() as u64);
        Ok(link)
    }
}

/// Append the connections of `table` to `buf`, up to its capacity.
fn dump_table<A: Family>(table: &ConnTable<A>, snap: &crate::Snapshot, buf: &mut Vec<ConnInfo>, now: u32) {
    table.for_each(|k, c| {
        if buf.len() == buf.capacity() {
            return;
        }
        let rip = snap
            .dest_of(c.dest_id, c.slot)
            .map(|(si, di)| &snap.services[si].dests[di]);
        buf.push(ConnInfo {
            proto: k.proto & !TEMPLATE,
            cip: A::ip(k.cip),
            cport: k.cport,
            vip: A::ip(k.vip),
            vport: k.vport,
            rip: rip.map(|d| A::ip(A::narrow(d.addr))),
            rport: rip.map_or(0, |d| d.port),
            state: c.state,
            expires_in: c.expires.wrapping_sub(now).min(i32::MAX as u32),
            template: c.template,
            // As the worker asked: the map may have been full.
            offloaded: snap.fast.is_some()
                && !c.template
                && c.client_link != synced::UNKNOWN_LINK
                && rip.is_some_and(|d| offload::offloadable(c, d)),
        });
    });
}

/// One connection or template as `ipvsadm -L -c` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// IP protocol.
    pub proto: u8,
    /// Client address (a template's may be a network; a fwmark template's
    /// VIP is its mark).
    pub cip: IpAddr,
    /// Client port (0 for a template).
    pub cport: u16,
    /// VIP.
    pub vip: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address (none if it was deleted).
    pub rip: Option<IpAddr>,
    /// Real server port.
    pub rport: u16,
    /// State.
    pub state: ConnState,
    /// Seconds until it expires.
    pub expires_in: u32,
    /// A persistence template.
    pub template: bool,
    /// Handed to the XDP fast path.
    pub offloaded: bool,
}

/// A table dump the control thread asks a worker for, in a buffer it
/// sized.
#[derive(Debug)]
pub enum Dump {
    /// As `ipvsadm -L -c` lists them.
    List(Vec<ConnInfo>),
    /// As sync sends them.
    Sync(Vec<crate::sync::SyncConn>),
}

/// The channels that join a worker to the control thread.
#[derive(Debug)]
pub struct WorkerCtl {
    /// Newer rules, published by the control thread.
    pub updates: Receiver<Update>,
    /// Old rules, handed back to be freed off the hot path.
    pub retired: Sender<Update>,
    /// Set by the control thread to end the loop.
    pub stop: Arc<AtomicBool>,
    /// This worker's index (its queue).
    pub me: usize,
    /// Buffers to fill with the connection table (`-L -c`, a sync
    /// transfer); sized by the control thread, so filling them never
    /// allocates.
    pub dumps: Receiver<Dump>,
    /// Filled buffers, back to the control thread.
    pub dumped: Sender<Dump>,
    /// The hand-off queues of all workers.
    pub handoff: Arc<Handoff>,
}

/// Frames taken from the inbox per batch, at most.
const INBOX_BATCH: usize = 64;

/// Busy-poll `io` until told to stop.
pub fn run<P: PacketIo>(io: &mut P, fwd: &mut Forwarder, ctl: &WorkerCtl, epoch: Instant) {
    fwd.join(ctl.me, ctl.handoff.clone());
    let mut pending: Option<Update> = None;
    let (mut sweep, mut sweep6) = (SweepClock::default(), SweepClock::default());
    while !ctl.stop.load(Ordering::Relaxed) {
        // A full return queue keeps the old rules here until the next batch,
        // rather than freeing them on the hot path.
        if let Some(old) = pending.take() {
            pending = ctl.retired.try_send(old).err().map(|e| e.into_inner());
        }
        if pending.is_none() {
            if let Ok(update) = ctl.updates.try_recv() {
                let old = fwd.install(update);
                pending = ctl.retired.try_send(old).err().map(|e| e.into_inner());
            }
        }
        let elapsed = epoch.elapsed();
        let now = elapsed.as_secs() as u32;
        fwd.rebind(now);
        fwd.take_touches(now);
        if let Ok(mut d) = ctl.dumps.try_recv() {
            match &mut d {
                Dump::List(buf) => fwd.dump(buf, now),
                Dump::Sync(buf) => fwd.sync_dump(buf),
            }
            let _ = ctl.dumped.try_send(d);
        }
        let (me, handoff) = (ctl.me, &*ctl.handoff);
        // Connections a backup learnt, for this worker's flows.
        for _ in 0..INBOX_BATCH {
            let Some(c) = handoff.recv_sync(me) else { break };
            fwd.learn_conn(&c, now);
        }
        // Decisions first, so fragments handed over after them find them.
        for _ in 0..INBOX_BATCH {
            let Some(note) = handoff.recv_note(me) else { break };
            fwd.learn(&note, now);
        }
        for _ in 0..INBOX_BATCH {
            let Some(buf) = handoff.recv(me) else { break };
            let bytes = &buf.data[..usize::from(buf.len)];
            if !io.inject(bytes, buf.link, |frame, ingress| fwd.handle(frame, ingress, now)) {
                fwd.stats().handoff_drops.add(1);
            }
            handoff.recycle(buf);
        }
        let workers = handoff.workers();
        let b = io.poll(|frame, ingress| {
            // The one parse: the owner and the forwarder read the same
            // headers.
            let h = wire::parse(frame.bytes());
            if workers > 1 {
                let owner = match &h {
                    Ok(h) => fwd.owner_of(frame.bytes(), h, workers),
                    // IPv6: parsed again by the forwarder (its path is not
                    // the IPv4 one's).
                    Err(wire::Malformed::NotIpv4) => fwd.owner(frame.bytes(), workers),
                    Err(_) => None,
                };
                if let Some(owner) = owner.filter(|&o| o != me) {
                    let stats = fwd.stats();
                    if handoff.send(owner, ingress, frame.bytes()) {
                        stats.handoffs.add(1);
                    } else {
                        stats.handoff_drops.add(1);
                    }
                    return Verdict::Consumed;
                }
            }
            fwd.handle_parsed(frame, &h, ingress, now)
        });
        frags::release_held(io, fwd, now);
        let stats = fwd.stats();
        stats.tx.add(b.tx as u64);
        stats.count_drops(Reason::TxFull, b.tx_full as u64);
        let budget = sweep.budget(elapsed, fwd.table().slots());
        if budget > 0 {
            fwd.expire(now, budget);
        }
        let budget = sweep6.budget(elapsed, fwd.table6().slots());
        if budget > 0 {
            fwd.expire6(now, budget);
        }
    }
}

#[cfg(test)]
mod tests;
