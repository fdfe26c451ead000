//! Control side: turn `config::Rules` into the immutable [`Snapshot`] the
//! workers read, with everything precomputed (service index, RS MACs, counter
//! slots), so the hot path only indexes.
//!
//! Workers pick up the newest [`Update`] at a batch boundary and send the old
//! one back, so that nothing is freed on the hot path.

use crate::stats::MAX_DESTS;
use crate::wire::IpBits;
use config::{FwdMethod, Rules};
use conntrack::Addr;
use hashbrown::HashMap;
use sched::{AnySched, Scheduler};
use std::net::IpAddr;
use std::sync::Arc;

/// What new flows get when a worker's connection table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullTable {
    /// A stateless pick from the client tuple (every packet of the flow gets
    /// the same server, with no entry).
    #[default]
    Stateless,
    /// Dropped (counted as `table_full`).
    Drop,
}

/// A mark rule as the workers match it (host order).
#[derive(Debug, Clone, PartialEq, Eq)]
struct MarkSnap<A> {
    proto: Option<u8>,
    addr: A,
    ports: Vec<u16>,
    mark: u32,
}

/// What the workers look up by address, for one address family: services
/// by (protocol, VIP, port), NAT real servers, mark services and rules.
/// IPv4 and IPv6 keep apart (as IPVS keys services by family too), so an
/// IPv4 lookup hashes 32-bit addresses only.
#[derive(Debug)]
pub struct FamilySnap<A> {
    index: HashMap<(u8, A, u16), u32>,
    /// (protocol, RIP, port) of every NAT real server, with its service's
    /// persistence mask (0: not persistent): their replies come back
    /// through the director.
    nat_reals: HashMap<(u8, A, u16), A>,
    /// Fwmark services by mark.
    fwmarks: HashMap<u32, u32>,
    /// Mark rules, in order.
    marks: Vec<MarkSnap<A>>,
}

impl<A> Default for FamilySnap<A> {
    fn default() -> Self {
        Self {
            index: HashMap::new(),
            nat_reals: HashMap::new(),
            fwmarks: HashMap::new(),
            marks: Vec::new(),
        }
    }
}

/// An address family's half of a snapshot: the one thing about a family
/// the snapshot itself needs (`crate::family::Family` builds the rest on
/// it).
pub trait SnapFamily: Addr + IpBits {
    /// This family's lookups in `snap`.
    fn fam(snap: &Snapshot) -> &FamilySnap<Self>;
}

impl SnapFamily for u32 {
    #[inline]
    fn fam(snap: &Snapshot) -> &FamilySnap<Self> {
        &snap.v4
    }
}

impl SnapFamily for u128 {
    #[inline]
    fn fam(snap: &Snapshot) -> &FamilySnap<Self> {
        &snap.v6
    }
}

/// One real server as the workers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestSnap {
    /// Stable id (never 0).
    pub id: u32,
    /// Counter slot on every worker.
    pub slot: u16,
    /// RIP (host order; IPv4 in the low 32 bits).
    pub addr: u128,
    /// Real port.
    pub port: u16,
    /// Forwarding method.
    pub fwd: FwdMethod,
    /// Weight.
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub l_threshold: u32,
    /// MAC from the neighbour table, if resolved.
    pub mac: Option<[u8; 6]>,
    /// Link (index into the daemon's interfaces) the server is reached on.
    pub link: u8,
    /// Deleted: its connections still flow, but nothing new goes to it (no
    /// scheduler picks it at weight 0, no persistence template leads to it).
    pub deleted: bool,
}

/// One virtual service as the workers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvcSnap {
    /// IP protocol number.
    pub proto: u8,
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// VIP (host order; IPv4 in the low 32 bits).
    pub vip: u128,
    /// Virtual port.
    pub vport: u16,
    /// Scheduler.
    pub scheduler: sched::Kind,
    /// Scheduler flags (`-b`).
    pub sched_flags: sched::SchedFlags,
    /// Persistence timeout (`-p`), if persistent.
    pub persistence: Option<u32>,
    /// Persistence granularity (`-M`), host order (IPv4 in the low 32 bits).
    pub netmask: u128,
    /// One-packet scheduling (`-o`).
    pub ops: bool,
    /// Firewall mark of a fwmark service, else 0.
    pub fwmark: u32,
    /// Real servers.
    pub dests: Vec<DestSnap>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SlotPos {
    owner: u32,
    svc: u32,
    idx: u32,
}

/// The rules as one immutable, versioned value.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every publication.
    pub version: u64,
    /// The director's interfaces, by link index.
    pub links: Vec<LinkSnap>,
    /// Virtual services.
    pub services: Vec<SvcSnap>,
    /// Maglev table size for mh services (a prime).
    pub mh_table_size: u32,
    /// Connection timeouts (`ipvsadm --set`).
    pub timeouts: conntrack::Timeouts,
    /// What new flows get when a worker's connection table is full.
    pub full_table: FullTable,
    /// IPVS's `expire_nodest_conn`: a packet of a connection to a deleted
    /// server is dropped and the connection forgotten.
    pub expire_nodest_conn: bool,
    /// The master sync daemon's rings, while one runs: workers push the
    /// connections it sends.
    pub sync: Option<crate::sync::SyncMaster>,
    /// The fast path's rings, while it is on.
    pub fast: Option<crate::fast::FastRings>,
    /// IPv4 lookups.
    pub(crate) v4: FamilySnap<u32>,
    /// IPv6 lookups.
    pub(crate) v6: FamilySnap<u128>,
    slots: Box<[SlotPos]>,
}

/// One of the director's interfaces as the workers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkSnap {
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its IPv4 address (host order; 0: none): TUN's outer source.
    pub addr: u32,
    /// Its IPv6 address (host order; 0: none): TUN's outer source over IPv6.
    pub addr6: u128,
    /// Its MTU: TUN packets over it get "fragmentation needed".
    pub mtu: u16,
    /// Its interface index (0 where none is known, as in tests): where the
    /// fast path redirects a flow that leaves by another link than it came.
    pub ifindex: u32,
}

/// Resolves a RIP to its MAC and the link it is on.
pub type NeighFn<'a> = &'a dyn Fn(IpAddr) -> Option<([u8; 6], u8)>;

/// Everything a [`Snapshot`] is built from.
pub struct Input<'a> {
    /// Version of the publication.
    pub version: u64,
    /// The rules (deleted servers still in the trash included).
    pub rules: &'a Rules,
    /// Counter slots: servers without one are left out.
    pub slots: &'a SlotMap,
    /// The director's interfaces.
    pub links: &'a [LinkSnap],
    /// RIP → MAC and link.
    pub neigh: NeighFn<'a>,
    /// Whether server `id` is deleted (in the trash).
    pub deleted: &'a dyn Fn(u32) -> bool,
    /// Maglev table size for mh services (a prime).
    pub mh_table_size: u32,
    /// What new flows get when a worker's connection table is full.
    pub full_table: FullTable,
    /// IPVS's `expire_nodest_conn`.
    pub expire_nodest_conn: bool,
    /// The master sync daemon's rings, while one runs.
    pub sync: Option<crate::sync::SyncMaster>,
    /// The fast path's rings, while it is on.
    pub fast: Option<crate::fast::FastRings>,
}

impl<'a> Input<'a> {
    /// Inputs with the daemon's defaults for everything but the rules, the
    /// slots, the links and the neighbours.
    pub fn new(
        version: u64,
        rules: &'a Rules,
        slots: &'a SlotMap,
        links: &'a [LinkSnap],
        neigh: NeighFn<'a>,
    ) -> Self {
        Self {
            version,
            rules,
            slots,
            links,
            neigh,
            deleted: &|_| false,
            mh_table_size: sched::DEFAULT_MH_TABLE_SIZE,
            full_table: FullTable::Stateless,
            expire_nodest_conn: false,
            sync: None,
            fast: None,
        }
    }
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("version", &self.version)
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

/// Assigns each real server a counter slot, reusing slots of deleted servers.
#[derive(Debug, Clone, Default)]
pub struct SlotMap {
    by_id: HashMap<u32, u16>,
    free: Vec<u16>,
    next: u16,
}

/// More real servers than there are counter slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyDests;

impl std::fmt::Display for TooManyDests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "too many real servers (at most {MAX_DESTS})")
    }
}

impl SlotMap {
    /// Give every server of `rules` a slot and free the slots of the others.
    ///
    /// # Errors
    /// [`TooManyDests`] when the rules hold more servers than slots; the map is
    /// unchanged then.
    pub fn assign(&mut self, rules: &Rules) -> Result<(), TooManyDests> {
        let ids: Vec<u32> = rules.dests().map(|(_, d)| d.id).collect();
        if ids.len() > MAX_DESTS {
            return Err(TooManyDests);
        }
        let gone: Vec<u32> = self
            .by_id
            .keys()
            .copied()
            .filter(|id| !ids.contains(id))
            .collect();
        for id in gone {
            if let Some(slot) = self.by_id.remove(&id) {
                self.free.push(slot);
            }
        }
        for id in ids {
            if !self.by_id.contains_key(&id) {
                let slot = match self.free.pop() {
                    Some(s) => s,
                    None => {
                        let s = self.next;
                        self.next += 1;
                        s
                    }
                };
                self.by_id.insert(id, slot);
            }
        }
        Ok(())
    }

    /// Return the slot of server `id`.
    pub fn slot(&self, id: u32) -> Option<u16> {
        self.by_id.get(&id).copied()
    }
}

impl Snapshot {
    /// Build a snapshot of `input.rules`.
    ///
    /// Servers without a slot (call [`SlotMap::assign`] first) are left out.
    pub fn build(input: &Input<'_>) -> Self {
        let Input {
            version,
            rules,
            slots,
            neigh,
            ..
        } = *input;
        let mut timeouts = conntrack::Timeouts::default();
        let (tcp, tcpfin, udp) = rules.timeouts;
        timeouts.set(tcp, tcpfin, udp);
        let mut snap = Self {
            version,
            links: input.links.to_vec(),
            services: Vec::with_capacity(rules.services.len()),
            mh_table_size: input.mh_table_size,
            timeouts,
            full_table: input.full_table,
            expire_nodest_conn: input.expire_nodest_conn,
            sync: input.sync.clone(),
            fast: input.fast.clone(),
            v4: FamilySnap::default(),
            v6: FamilySnap::default(),
            slots: vec![SlotPos::default(); MAX_DESTS].into_boxed_slice(),
        };
        for m in &rules.marks {
            let proto = m.proto.map(config::Protocol::number);
            let (ports, mark) = (m.ports.clone(), m.mark);
            match m.addr {
                IpAddr::V4(a) => snap.v4.marks.push(MarkSnap {
                    proto,
                    addr: u32::from(a),
                    ports,
                    mark,
                }),
                IpAddr::V6(a) => snap.v6.marks.push(MarkSnap {
                    proto,
                    addr: u128::from(a),
                    ports,
                    mark,
                }),
            }
        }
        for (si, svc) in rules.services.iter().enumerate() {
            let dests = svc
                .dests
                .iter()
                .filter_map(|d| {
                    let n = neigh(d.addr);
                    Some(DestSnap {
                        id: d.id,
                        slot: slots.slot(d.id)?,
                        addr: bits(d.addr),
                        port: d.port,
                        fwd: d.fwd,
                        weight: d.weight,
                        u_threshold: d.u_threshold,
                        l_threshold: d.l_threshold,
                        mac: n.map(|n| n.0),
                        link: n.map_or(0, |n| n.1),
                        deleted: (input.deleted)(d.id),
                    })
                })
                .collect::<Vec<_>>();
            for (di, d) in dests.iter().enumerate() {
                snap.slots[usize::from(d.slot)] = SlotPos {
                    owner: d.id,
                    svc: si as u32,
                    idx: di as u32,
                };
            }
            let s = SvcSnap {
                proto: svc.key.proto.number(),
                v6: svc.key.is_ipv6(),
                vip: bits(svc.key.addr),
                vport: svc.key.port,
                scheduler: svc.scheduler,
                sched_flags: svc.sched_flags,
                persistence: svc.persistence,
                netmask: bits(svc.netmask),
                ops: svc.ops,
                fwmark: svc.key.fwmark,
                dests,
            };
            if s.v6 {
                snap.v6.add(si, &s);
            } else {
                snap.v4.add(si, &s);
            }
            snap.services.push(s);
        }
        snap
    }

    /// Return the MAC of the director's link `link`.
    #[inline]
    pub fn link_mac(&self, link: u8) -> Option<[u8; 6]> {
        self.link(link).map(|l| l.mac)
    }

    /// Return the director's link `link`.
    #[inline]
    pub fn link(&self, link: u8) -> Option<&LinkSnap> {
        self.links.get(usize::from(link))
    }

    /// Return whether (protocol, address, port) is a NAT real server, whose
    /// packets are replies to be translated back.
    #[inline]
    pub fn is_nat_real<A: SnapFamily>(&self, proto: u8, addr: A, port: u16) -> bool {
        A::fam(self).nat_real(proto, addr, port).is_some()
    }

    /// Return the client-network mask that decides the owner of a flow
    /// with this (protocol, VIP, port) — or, with `reply`, from this NAT real
    /// server: the service's `-M` mask if it is persistent (its flows are
    /// owned by client address alone, so the persistence template is on the
    /// same worker), else 0 (address and port decide).
    #[inline]
    pub fn owner_mask<A: SnapFamily>(&self, reply: bool, proto: u8, addr: A, port: u16) -> A {
        if reply {
            A::fam(self).nat_real(proto, addr, port).unwrap_or_default()
        } else {
            self.classify(proto, addr, port).map_or(A::default(), |si| {
                let s = &self.services[si];
                s.persistence.map_or(A::default(), |_| A::narrow(s.netmask))
            })
        }
    }

    /// Return the (protocol, RIP, port) of every NAT real server of family
    /// `A`, for the steering program.
    pub fn nat_real_keys<A: SnapFamily>(&self) -> Vec<(u8, A, u16)> {
        A::fam(self).nat_reals.keys().copied().collect()
    }

    /// Return the index of the service `svc` (of another snapshot) has here:
    /// the same (protocol, VIP, port), or the same firewall mark, in the
    /// same family.
    pub fn same_service(&self, svc: &SvcSnap) -> Option<usize> {
        let fwmarks = if svc.v6 {
            &self.v6.fwmarks
        } else {
            &self.v4.fwmarks
        };
        if svc.fwmark != 0 {
            return fwmarks.get(&svc.fwmark).map(|&i| i as usize);
        }
        if svc.v6 {
            self.service(svc.proto, svc.vip, svc.vport)
        } else {
            self.service(svc.proto, svc.vip as u32, svc.vport)
        }
    }

    /// Return the index of the service for (protocol, VIP, port).
    #[inline]
    pub fn service<A: SnapFamily>(&self, proto: u8, vip: A, vport: u16) -> Option<usize> {
        A::fam(self).index.get(&(proto, vip, vport)).map(|&i| i as usize)
    }

    /// Return the IPv4 fwmark service of `mark` (IPv6: [`Self::fwmark_service_of`]).
    pub fn fwmark_service(&self, mark: u32) -> Option<usize> {
        self.fwmark_service_of::<u32>(mark)
    }

    /// Return the fwmark service of `mark` in family `A`.
    pub fn fwmark_service_of<A: SnapFamily>(&self, mark: u32) -> Option<usize> {
        A::fam(self).fwmarks.get(&mark).map(|&i| i as usize)
    }

    /// Return the service a packet to (protocol, address, port) belongs to:
    /// the virtual service of that tuple, else the fwmark service of the
    /// first mark rule that matches it.
    #[inline]
    pub fn classify<A: SnapFamily>(&self, proto: u8, dst: A, dport: u16) -> Option<usize> {
        let f = A::fam(self);
        if let Some(&si) = f.index.get(&(proto, dst, dport)) {
            return Some(si as usize);
        }
        let m = f.marks.iter().find(|m| {
            m.addr == dst
                && m.proto.is_none_or(|p| p == proto)
                && (m.ports.is_empty() || m.ports.contains(&dport))
        })?;
        f.fwmarks.get(&m.mark).map(|&i| i as usize)
    }

    /// Return (service, server) indices of server `id` in `slot`, if it still
    /// exists.
    #[inline]
    pub fn dest_of(&self, id: u32, slot: u16) -> Option<(usize, usize)> {
        let p = self.slots.get(usize::from(slot))?;
        (p.owner == id && id != 0).then_some((p.svc as usize, p.idx as usize))
    }

    /// Return the id of the server that owns `slot` (0 when none).
    #[inline]
    pub fn slot_owner(&self, slot: u16) -> u32 {
        self.slots.get(usize::from(slot)).map_or(0, |p| p.owner)
    }

    /// Return the (protocol, VIP, port) of every service of family `A` and
    /// of its mark rules (port 0: any), for the steering program.
    pub fn steering_keys<A: SnapFamily>(&self) -> Vec<(u8, A, u16)> {
        let f = A::fam(self);
        let mut keys: Vec<(u8, A, u16)> = f.index.keys().copied().collect();
        // Mark rules of marks that have a service; port 0 stands for any.
        for m in f.marks.iter().filter(|m| f.fwmarks.contains_key(&m.mark)) {
            let protos: &[u8] = match m.proto {
                Some(p) => &[p][..],
                None => &[6, 17],
            };
            for &p in protos {
                if m.ports.is_empty() {
                    keys.push((p, m.addr, 0));
                }
                keys.extend(m.ports.iter().map(|&port| (p, m.addr, port)));
            }
        }
        keys
    }

    /// Make fresh per-worker scheduler state for every service, with its
    /// tables built (control side: this allocates).
    pub fn schedulers(&self) -> Box<[AnySched]> {
        self.services
            .iter()
            .map(|s| {
                let opts = sched::SchedOpts {
                    flags: s.sched_flags,
                    mh_table_size: self.mh_table_size,
                };
                let mut sched = AnySched::with_opts(s.scheduler, &opts);
                let dests: Vec<sched::Dest> = s
                    .dests
                    .iter()
                    .map(|d| sched::Dest {
                        addr: if s.v6 { d.addr.fold32() } else { d.addr as u32 },
                        port: d.port,
                        weight: d.weight,
                        ..sched::Dest::default()
                    })
                    .collect();
                sched.update(&dests[..]);
                sched
            })
            .collect()
    }
}

/// An address as the snapshot holds it: host order, IPv4 in the low 32
/// bits.
fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl<A: Addr> FamilySnap<A> {
    /// Index service `si` (of this family).
    fn add(&mut self, si: usize, s: &SvcSnap) {
        let vip = A::narrow(s.vip);
        if s.fwmark != 0 {
            self.fwmarks.insert(s.fwmark, si as u32);
        } else {
            self.index.insert((s.proto, vip, s.vport), si as u32);
        }
        // A fwmark service carries both protocols.
        let protos: &[u8] = if s.fwmark != 0 { &[6, 17] } else { &[s.proto] };
        let mask = s.persistence.map_or(A::default(), |_| A::narrow(s.netmask));
        for d in s.dests.iter().filter(|d| d.fwd == FwdMethod::Nat) {
            for &p in protos {
                self.nat_reals.insert((p, A::narrow(d.addr), d.port), mask);
            }
        }
    }

    /// The NAT real server entry of a reply's source: exact port, or port 0
    /// (a fwmark service's server that keeps each packet's port).
    #[inline]
    fn nat_real(&self, proto: u8, addr: A, port: u16) -> Option<A> {
        if self.nat_reals.is_empty() {
            return None;
        }
        self.nat_reals
            .get(&(proto, addr, port))
            .or_else(|| self.nat_reals.get(&(proto, addr, 0)))
            .copied()
    }
}

/// What a worker receives: the rules plus its own scheduler state.
#[derive(Debug)]
pub struct Update {
    /// The rules.
    pub snap: Arc<Snapshot>,
    /// One scheduler per service, owned by the receiving worker.
    pub scheds: Box<[AnySched]>,
}

impl Update {
    /// Make an update for one worker from a shared snapshot.
    pub fn new(snap: Arc<Snapshot>) -> Self {
        let scheds = snap.schedulers();
        Self { snap, scheds }
    }
}
