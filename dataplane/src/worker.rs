//! HOT PATH ENTRY: one worker's loop, rx batch → classify → conntrack/sched →
//! rewrite → tx.
//!
//! Rules for everything reachable from [`Forwarder::handle`] and [`run`]: no
//! allocation, no locks, no syscalls but the ring's one kick per batch, no
//! logging. Drops are counted by [`Reason`]; a frame never causes a panic.
//! Time is read once per batch and passed in as `now`.

use crate::frame::Frame;
use crate::fwd::dr;
use crate::fwd::icmp;
use crate::fwd::nat::{self, Side};
use crate::fwd::tun::{self, Encap};
use crate::owner::{self, Handoff};
use crate::snapshot::{DestSnap, FullTable, Snapshot, SvcSnap, Update};
use crate::stats::{Reason, WorkerStats};
use crate::wire::{ETHERTYPE_IPV4, Ethernet, Ipv4, PROTO_TCP, PROTO_UDP, Tcp, Udp};
use config::FwdMethod;
use conntrack::{Conn, ConnState, ConnTable, Direction, FlowKey, TcpFlags};
use crossbeam_channel::{Receiver, Sender};
use sched::{AnySched, Dest, Dests, Flow, Scheduler};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What to do with a frame after [`Forwarder::handle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it (rewritten in place) out of this link (interface index).
    Tx(u8),
    /// Drop it; the reason was counted.
    Drop(Reason),
    /// Its bytes were handed to another worker; recycle the frame.
    Consumed,
}

/// A source and sink of frames: AF_XDP rings in the daemon, memory in tests.
pub trait PacketIo {
    /// Receive one batch, let `f` rewrite each frame in place (it is told
    /// the link the frame came in on), send those it returns [`Verdict::Tx`]
    /// for out of the link it names, and recycle the rest.
    fn poll(&mut self, f: impl FnMut(&mut dyn Frame, u8) -> Verdict) -> Batch;
    /// Copy `bytes` (handed over by another worker, from link `link`) into a
    /// free frame and let `f` decide on it as on a received one; it is sent
    /// with the next batch. Return false when no frame is free.
    fn inject(&mut self, bytes: &[u8], link: u8, f: impl FnMut(&mut dyn Frame, u8) -> Verdict) -> bool;
}

/// What one [`PacketIo::poll`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    /// Frames received.
    pub rx: usize,
    /// Frames queued for sending.
    pub tx: usize,
    /// Frames the handler wanted sent that found the TX ring full.
    pub tx_full: usize,
}

/// The fields of a frame the forwarder decides on (host byte order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// IP protocol.
    pub proto: u8,
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP flags (all false for UDP).
    pub flags: TcpFlags,
    /// Offset of the TCP/UDP header in the frame.
    pub l4: usize,
    /// Source MAC.
    pub src_mac: [u8; 6],
}

/// Check and read a frame's Ethernet, IPv4 and TCP/UDP headers.
///
/// # Errors
/// The [`Reason`] the frame cannot be forwarded.
pub fn parse(frame: &[u8]) -> Result<Parsed, Reason> {
    let eth = Ethernet::new_checked(frame).map_err(|_| Reason::TruncatedEthernet)?;
    if eth.ethertype() != ETHERTYPE_IPV4 {
        return Err(Reason::NotIpv4);
    }
    let l3 = eth.payload();
    let ip = Ipv4::new_checked(l3).map_err(|_| Reason::TruncatedIp)?;
    if ip.version() != 4 {
        return Err(Reason::BadVersion);
    }
    let hlen = ip.header_len();
    if hlen < 20 {
        return Err(Reason::BadIhl);
    }
    let total = ip.total_len();
    if total > l3.len() || total < hlen {
        return Err(Reason::BadTotalLength);
    }
    if hlen > 20 {
        return Err(Reason::IpOptions);
    }
    if ip.frag_offset() != 0 {
        return Err(Reason::Fragment);
    }
    // Ethernet padding may follow the IP packet; the L4 view ends at total_len.
    let l4 = &l3[hlen..total];
    let proto = ip.protocol();
    let (sport, dport, flags) = match proto {
        PROTO_TCP => {
            let t = Tcp::new_checked(l4).map_err(|_| Reason::TruncatedL4)?;
            let flags = TcpFlags {
                syn: t.syn(),
                ack: t.ack(),
                fin: t.fin(),
                rst: t.rst(),
            };
            (t.src_port(), t.dst_port(), flags)
        }
        PROTO_UDP => {
            let u = Udp::new_checked(l4).map_err(|_| Reason::TruncatedL4)?;
            (u.src_port(), u.dst_port(), TcpFlags::default())
        }
        _ => return Err(Reason::UnsupportedProtocol),
    };
    Ok(Parsed {
        proto,
        l4: Ethernet::<&[u8]>::HEADER_LEN + hlen,
        src_mac: eth.src(),
        src: ip.src(),
        dst: ip.dst(),
        sport,
        dport,
        flags,
    })
}

/// The scheduler's view of one service: weights from the snapshot, counts
/// from this worker's counters.
struct View<'a> {
    svc: &'a SvcSnap,
    stats: &'a WorkerStats,
}

impl Dests for View<'_> {
    fn len(&self) -> usize {
        self.svc.dests.len()
    }
    fn dest(&self, i: usize) -> Dest {
        let d = &self.svc.dests[i];
        let c = self.stats.dest(d.slot);
        Dest {
            addr: d.addr,
            port: d.port,
            weight: d.weight,
            active_conns: c.active.get() as u32,
            inactive_conns: c.inactive.get() as u32,
            overloaded: c.overloaded.get() != 0,
        }
    }
}

/// One worker's forwarding state: the rules it reads, its schedulers, its
/// connection table and its counters.
///
/// Connection counts that lc-style schedulers read are this worker's only:
/// with N workers each sees about 1/N of the connections, which balances the
/// same as long as flows spread evenly over queues.
#[derive(Debug)]
pub struct Forwarder {
    update: Update,
    table: ConnTable,
    stats: Arc<WorkerStats>,
    /// IP id of the next outer (TUN) header.
    ip_id: u16,
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

impl Forwarder {
    /// Make a forwarder with a table of `capacity` connections.
    pub fn new(update: Update, capacity: usize, stats: Arc<WorkerStats>) -> Self {
        Self {
            update,
            table: ConnTable::with_capacity(capacity),
            stats,

            ip_id: 0,
        }
    }

    /// Return the worker that owns the flow of `frame`, of `workers`.
    #[inline]
    pub fn owner(&self, frame: &[u8], workers: usize) -> Option<usize> {
        let snap = &self.update.snap;
        let (cip, cport, side) = owner::client_of(frame, |p, s, sp| snap.is_nat_real(p, s, sp))?;
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
        let snap = &self.update.snap;
        self.table.for_each(|k, c| {
            if buf.len() == buf.capacity() {
                return;
            }
            let (rip, rport) = snap.dest_of(c.dest_id, c.slot).map_or((0, 0), |(si, di)| {
                (snap.services[si].dests[di].addr, snap.services[si].dests[di].port)
            });
            buf.push(ConnInfo {
                proto: k.proto & !TEMPLATE,
                cip: k.cip,
                cport: k.cport,
                vip: k.vip,
                vport: k.vport,
                rip,
                rport,
                state: c.state,
                expires_in: c.expires.wrapping_sub(now).min(i32::MAX as u32),
                template: c.template,
            });
        });
    }

    /// Return this worker's counters.
    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    /// Return the connection table (control plane listings, tests).
    pub fn table(&self) -> &ConnTable {
        &self.table
    }

    /// Switch to newer rules at a batch boundary; return the old ones so the
    /// control thread frees them.
    pub fn install(&mut self, update: Update) -> Update {
        let mut old = std::mem::replace(&mut self.update, update);
        let new = &self.update.snap;
        self.stats.rules_version.set(new.version);
        // A service whose scheduler and servers are unchanged (say, only a
        // MAC moved) keeps its scheduler state, so rr does not restart its
        // lap on every publication.
        for (si, svc) in new.services.iter().enumerate() {
            let Some(oi) = old.snap.service(svc.proto, svc.vip, svc.vport) else {
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

    /// Expire connections due at `now`, looking at up to `budget` slots.
    pub fn expire(&mut self, now: u32, budget: usize) {
        let Update { snap, scheds } = &mut self.update;
        let stats = &*self.stats;
        self.table
            .sweep(now, budget, |_, conn| release(stats, snap, scheds, conn));
    }

    /// Decide on one frame that came in on link `ingress` and rewrite it in
    /// place.
    #[inline]
    pub fn handle(&mut self, frame: &mut dyn Frame, ingress: u8, now: u32) -> Verdict {
        self.stats.rx.add(1);
        let p = parse(frame.bytes());
        let out = p.and_then(|p| match self.update.snap.classify(p.proto, p.dst, p.dport) {
            Some(si) => self.inbound(frame, &p, si, ingress, now),
            None if self.update.snap.is_nat_real(p.proto, p.src, p.sport) => self.outbound(frame, &p, now),
            None => Err(Reason::NoService),
        });
        match out {
            Ok(link) => Verdict::Tx(link),
            Err(reason) => {
                self.stats.count_drops(reason, 1);
                Verdict::Drop(reason)
            }
        }
    }

    /// Client → server: find or schedule the connection, then forward by the
    /// server's method. Return the egress link.
    fn inbound(
        &mut self,
        frame: &mut dyn Frame,
        p: &Parsed,
        si: usize,
        ingress: u8,
        now: u32,
    ) -> Result<u8, Reason> {
        let snap = &self.update.snap;
        let key = FlowKey {
            proto: p.proto,
            cip: p.src,
            cport: p.sport,
            vip: p.dst,
            vport: p.dport,
        };
        let tcp = p.proto == PROTO_TCP;
        let stats = &*self.stats;
        let syn = tcp && p.flags.syn && !p.flags.ack && !p.flags.rst;
        // IPVS's conn_reuse_mode: a SYN on a connection that is closing is a
        // new connection from a reused client port; end the old one and
        // schedule afresh, or the port would stick to its old server.
        if syn && self.table.get_mut(&key).is_some_and(|c| c.state.is_closing()) {
            if let Some(old) = self.table.remove(&key) {
                release(stats, snap, &mut self.update.scheds, &old);
            }
        }
        let svc = &snap.services[si];
        let flow = Flow {
            cip: p.src,
            cport: p.sport,
            vip: p.dst,
            vport: p.dport,
            now,
        };
        let di = if svc.ops && !tcp {
            // One-packet scheduling (-o): every datagram is a connection of
            // its own, scheduled and forgotten, as DNS services want.
            let di = self.update.scheds[si]
                .pick(&View { svc, stats }, &flow)
                .ok_or(Reason::NoDestination)?;
            stats.dest(svc.dests[di].slot).conns.add(1);
            di
        } else if let Some(conn) = self.table.get_mut(&key) {
            let (csi, di) = snap.dest_of(conn.dest_id, conn.slot).ok_or(Reason::DestGone)?;
            if snap.expire_nodest_conn && snap.services[csi].dests[di].deleted {
                // The client's next packet is scheduled anew (for TCP, once
                // it opens a new connection).
                if let Some(gone) = self.table.remove(&key) {
                    release(stats, snap, &mut self.update.scheds, &gone);
                }
                return Err(Reason::DestGone);
            }
            debug_assert_eq!(csi, si);
            // IPVS's IP_VS_CONN_F_NOOUTPUT: until a reply is seen (never, in
            // DR and TUN), client packets follow the input-only table.
            let dir = if conn.seen_reply {
                Direction::Input
            } else {
                Direction::InputOnly
            };
            advance(stats, snap, &mut self.update.scheds, conn, dir, p, now);
            di
        } else if self.table.len() >= self.table.capacity() {
            // Full table (a SYN flood, say): no new entry can be made, and
            // established connections must keep their place. New flows get
            // a stateless pick from their client tuple, the same for every
            // one of their packets, or are dropped, as configured.
            stats.table_full.add(1);
            if snap.full_table == FullTable::Drop {
                return Err(Reason::TableFull);
            }
            stateless_pick(&snap.services[si], stats, p).ok_or(Reason::NoDestination)?
        } else {
            // As IPVS (without sloppy_tcp): only a SYN starts a TCP connection,
            // so a mid-flow segment is never sent to a server that has no state.
            if tcp && !syn {
                return Err(Reason::NoConnection);
            }
            let view = View { svc, stats };
            let di = match svc.persistence {
                Some(timeout) => {
                    let tkey = template_key(p, svc);
                    let live = self.table.get_mut(&tkey).and_then(|t| {
                        let (tsi, tdi) = snap.dest_of(t.dest_id, t.slot)?;
                        // The template keeps its server, quiesced or not (as
                        // IPVS by default), while that server exists.
                        t.expires = now.wrapping_add(timeout);
                        (tsi == si && !snap.services[tsi].dests[tdi].deleted).then_some(tdi)
                    });
                    match live {
                        Some(tdi) => tdi,
                        None => {
                            let di = self.update.scheds[si]
                                .pick(&view, &flow)
                                .ok_or(Reason::NoDestination)?;
                            let d = &svc.dests[di];
                            let template = Conn {
                                dest_id: d.id,
                                slot: d.slot,
                                expires: now.wrapping_add(timeout),
                                template: true,
                                ..Conn::default()
                            };
                            // A full table: the connection still goes, without
                            // a template to follow.
                            if self.table.insert(tkey, None, template).is_ok() {
                                stats.dest(d.slot).persist.add(1);
                            }
                            di
                        }
                    }
                }
                None => self.update.scheds[si]
                    .pick(&view, &flow)
                    .ok_or(Reason::NoDestination)?,
            };
            let d = &svc.dests[di];
            // No entry without a MAC: the client's retransmission is
            // scheduled afresh once the neighbour is resolved.
            d.mac.ok_or(Reason::NoNeighbour)?;
            let state = if tcp {
                ConnState::None.on_tcp(Direction::InputOnly, p.flags)
            } else {
                ConnState::Udp
            };
            let conn = Conn {
                dest_id: d.id,
                slot: d.slot,
                state,
                expires: now.wrapping_add(snap.timeouts.of(state)),
                seen_reply: false,
                template: false,
                client_mac: p.src_mac,
                client_link: ingress,
            };
            // NAT replies come back from RIP:rport to CIP:cport.
            let reply = (d.fwd == FwdMethod::Nat).then_some(FlowKey {
                vip: d.addr,
                vport: real_port(d, p),
                ..key
            });
            stats.dest(d.slot).conns.add(1);
            match self.table.insert(key, reply, conn) {
                Ok(_) => {
                    stats.conns.add(1);
                    count(stats, &conn);
                    bind(stats, d);
                    self.update.scheds[si].on_change(&view, di);
                }
                // Checked above; a template may have taken the last slot.
                Err(conntrack::Full) => stats.table_full.add(1),
            }
            di
        };
        let d = &snap.services[si].dests[di];
        let mac = d.mac.ok_or(Reason::NoNeighbour)?;
        let link_mac = *snap
            .link_macs
            .get(usize::from(d.link))
            .ok_or(Reason::NoNeighbour)?;
        let mut egress = d.link;
        match d.fwd {
            FwdMethod::Dr => dr::rewrite(frame.bytes(), link_mac, mac),
            FwdMethod::Nat => {
                nat::rewrite(frame.bytes(), p.l4, p.proto, Side::Dst, d.addr, real_port(d, p));
                dr::rewrite(frame.bytes(), link_mac, mac);
            }
            FwdMethod::Tun => {
                let link = usize::from(d.link);
                let src = *snap.link_addrs.get(link).ok_or(Reason::UnsupportedMethod)?;
                let mtu = snap.link_mtus.get(link).copied().unwrap_or(1500);
                self.ip_id = self.ip_id.wrapping_add(1);
                match tun::encap(frame, src, d.addr, link_mac, mac, mtu, self.ip_id) {
                    Encap::Done => {}
                    Encap::NoRoom => return Err(Reason::TxFull),
                    Encap::FragNeeded(next_hop) => {
                        // Answer the client from the link it came in on.
                        let back = *snap
                            .link_macs
                            .get(usize::from(ingress))
                            .ok_or(Reason::NoNeighbour)?;
                        if !icmp::frag_needed(frame, back, p.src_mac, next_hop) {
                            return Err(Reason::TruncatedL4);
                        }
                        stats.frag_needed.add(1);
                        egress = ingress;
                    }
                }
            }
        }
        let c = stats.dest(d.slot);
        c.in_pkts.add(1);
        c.in_bytes.add(frame.bytes().len() as u64);
        Ok(egress)
    }

    /// Server → client, NAT only: the reply of a known connection gets the
    /// VIP:vport back as its source and goes to the client's MAC, out of the
    /// link the client came in on.
    fn outbound(&mut self, frame: &mut dyn Frame, p: &Parsed, now: u32) -> Result<u8, Reason> {
        let reply = FlowKey {
            proto: p.proto,
            cip: p.dst,
            cport: p.dport,
            vip: p.src,
            vport: p.sport,
        };
        let (key, conn) = self.table.get_reply_mut(&reply).ok_or(Reason::NoConnection)?;
        conn.seen_reply = true;
        let Update { snap, scheds } = &mut self.update;
        advance(&self.stats, snap, scheds, conn, Direction::Output, p, now);
        let (link, client_mac, slot) = (conn.client_link, conn.client_mac, conn.slot);
        let link_mac = *self
            .update
            .snap
            .link_macs
            .get(usize::from(link))
            .ok_or(Reason::NoNeighbour)?;
        let b = frame.bytes();
        nat::rewrite(b, p.l4, p.proto, Side::Src, key.vip, key.vport);
        dr::rewrite(b, link_mac, client_mac);
        let c = self.stats.dest(slot);
        c.out_pkts.add(1);
        c.out_bytes.add(b.len() as u64);
        Ok(link)
    }
}

/// The counter a connection counts in: active (ESTABLISHED) or inactive.
fn state_counter<'a>(stats: &'a WorkerStats, conn: &Conn) -> &'a crate::stats::Counter {
    let c = stats.dest(conn.slot);
    if conn.state.is_active() {
        &c.active
    } else {
        &c.inactive
    }
}

fn count(stats: &WorkerStats, conn: &Conn) {
    state_counter(stats, conn).add(1);
}

/// One connection or template as `ipvsadm -L -c` lists it (host order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// IP protocol.
    pub proto: u8,
    /// Client address (a template's may be a network).
    pub cip: u32,
    /// Client port (0 for a template).
    pub cport: u16,
    /// VIP.
    pub vip: u32,
    /// Virtual port.
    pub vport: u16,
    /// Real server address (0 if it was deleted).
    pub rip: u32,
    /// Real server port.
    pub rport: u16,
    /// State.
    pub state: ConnState,
    /// Seconds until it expires.
    pub expires_in: u32,
    /// A persistence template.
    pub template: bool,
}

/// Pick a server from the client tuple alone, with no state: hash, then
/// the next available server from there (a full-table fallback).
fn stateless_pick(svc: &SvcSnap, stats: &WorkerStats, p: &Parsed) -> Option<usize> {
    let n = svc.dests.len();
    if n == 0 {
        return None;
    }
    let view = View { svc, stats };
    let h = owner::flow_hash(p.src, p.sport) as usize;
    (0..n).map(|k| (h + k) % n).find(|&i| view.dest(i).available())
}

/// Marks a persistence template's key: its protocol field has this bit set,
/// so templates and connections share the table without meeting.
const TEMPLATE: u8 = 0x80;

/// The persistence template of the client (network) of `p` for its service
/// (IPVS's template: client address under `-M`, VIP, port).
fn template_key(p: &Parsed, svc: &SvcSnap) -> FlowKey {
    // A fwmark service's ports and protocols share one template (IPVS keys
    // it by mark, with protocol IPPROTO_IP).
    let (proto, vip, vport) = if svc.fwmark != 0 {
        (0, svc.fwmark, 0)
    } else {
        (p.proto, p.dst, p.dport)
    };
    FlowKey {
        proto: proto | TEMPLATE,
        cip: p.src & svc.netmask,
        cport: 0,
        vip,
        vport,
    }
}

/// The port a packet goes to on server `d`: its own, or the packet's when
/// the server's is 0 (a fwmark service's server keeps each port).
fn real_port(d: &DestSnap, p: &Parsed) -> u16 {
    if d.port == 0 { p.dport } else { d.port }
}

/// Move `conn` on with a packet in `dir`: next state, counts and scheduler
/// kept in step, timer refreshed with the state's timeout.
fn advance(
    stats: &WorkerStats,
    snap: &Snapshot,
    scheds: &mut [AnySched],
    conn: &mut Conn,
    dir: Direction,
    p: &Parsed,
    now: u32,
) {
    let next = if p.proto == PROTO_TCP {
        conn.state.on_tcp(dir, p.flags)
    } else {
        ConnState::Udp
    };
    if next != conn.state {
        uncount(stats, conn);
        conn.state = next;
        count(stats, conn);
        if let Some((si, di)) = snap.dest_of(conn.dest_id, conn.slot) {
            scheds[si].on_change(
                &View {
                    svc: &snap.services[si],
                    stats,
                },
                di,
            );
        }
    }
    conn.expires = now.wrapping_add(snap.timeouts.of(next));
}

/// A connection left the table: take it off its server's counts (if that
/// server still exists) and tell the scheduler.
fn release(stats: &WorkerStats, snap: &Snapshot, scheds: &mut [AnySched], conn: &Conn) {
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
fn bind(stats: &WorkerStats, d: &DestSnap) {
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

fn uncount(stats: &WorkerStats, conn: &Conn) {
    state_counter(stats, conn).sub(1);
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
    /// Buffers to fill with the connection table (`-L -c`); sized by the
    /// control thread, so filling them never allocates.
    pub dumps: Receiver<Vec<ConnInfo>>,
    /// Filled buffers, back to the control thread.
    pub dumped: Sender<Vec<ConnInfo>>,
    /// The hand-off queues of all workers.
    pub handoff: Arc<Handoff>,
}

/// Frames taken from the inbox per batch, at most.
const INBOX_BATCH: usize = 64;

/// Busy-poll `io` until told to stop.
pub fn run<P: PacketIo>(io: &mut P, fwd: &mut Forwarder, ctl: &WorkerCtl, epoch: Instant) {
    let mut pending: Option<Update> = None;
    let mut sweep = SweepClock::default();
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
        if let Ok(mut buf) = ctl.dumps.try_recv() {
            fwd.dump(&mut buf, now);
            let _ = ctl.dumped.try_send(buf);
        }
        let (me, handoff) = (ctl.me, &*ctl.handoff);
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
            if workers > 1 {
                if let Some(owner) = fwd.owner(frame.bytes(), workers).filter(|&o| o != me) {
                    let stats = fwd.stats();
                    if handoff.send(owner, ingress, frame.bytes()) {
                        stats.handoffs.add(1);
                    } else {
                        stats.handoff_drops.add(1);
                    }
                    return Verdict::Consumed;
                }
            }
            fwd.handle(frame, ingress, now)
        });
        let stats = fwd.stats();
        stats.tx.add(b.tx as u64);
        stats.count_drops(Reason::TxFull, b.tx_full as u64);
        let budget = sweep.budget(elapsed, fwd.table().slots());
        if budget > 0 {
            fwd.expire(now, budget);
        }
    }
}

#[cfg(test)]
mod tests;
