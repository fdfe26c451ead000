//! LVS schedulers: given a virtual service's real servers, pick one for a new
//! connection.
//!
//! Owns: the [`Scheduler`] trait, the [`AnySched`] dispatch enum and one file per
//! scheduler, named as ipvsadm names it (`wlc.rs` holds [`Wlc`], whose name is
//! `"wlc"`), each following the kernel's `net/netfilter/ipvs/ip_vs_<name>.c`:
//! rr wrr lc wlc lblc lblcr dh sh sed nq, and the newer mh fo ovf twos. A
//! scheduler's name is parsed once into a [`Kind`] (`-s NAME`, keepalived's
//! `lb_algo`); everything after that holds the kind, never the string.
//!
//! Must not touch: I/O, clocks, threads or locks. A scheduler has two halves, as
//! IPVS's ops do: the control half ([`AnySched::new`], [`Scheduler::update`])
//! may allocate; the pick half ([`Scheduler::pick`]) runs once per new
//! connection on a worker's hot path and never allocates. Each worker owns its
//! own scheduler state, so rr's cursor or lblc's cache are per worker, as in
//! DPVS, and connection counts are the worker's own (see [`Dest`]).

mod dh;
mod fo;
mod hash;
mod index;
mod lblc;
mod lblcr;
mod lc;
mod mh;
mod nq;
mod ovf;
mod rr;
mod sed;
mod sh;
mod twos;
mod wlc;
mod wrr;

pub use dh::Dh;
pub use fo::Fo;
pub use lblc::Lblc;
pub use lblcr::Lblcr;
pub use lc::Lc;
pub use mh::{DEFAULT_MH_TABLE_SIZE, Mh, is_prime};
pub use nq::Nq;
pub use ovf::Ovf;
pub use rr::Rr;
pub use sed::Sed;
pub use sh::Sh;
pub use twos::Twos;
pub use wlc::Wlc;
pub use wrr::Wrr;

use std::fmt;

/// Flow fields a scheduler may use, in host byte order, plus the time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    /// Client IPv4 address (sh, mh hash on it).
    pub cip: u32,
    /// Client port (sh-port, mh-port).
    pub cport: u16,
    /// Virtual (destination) IPv4 address (dh, lblc, lblcr key on it).
    pub vip: u32,
    /// Virtual port.
    pub vport: u16,
    /// The worker's clock in seconds (lblc/lblcr cache expiry).
    pub now: u32,
}

/// Read-only view of one real server as the scheduler sees it.
///
/// Connection counts are those of the picking worker only: with N workers each
/// sees about 1/N of a server's connections. Least-connection schedulers then
/// balance each worker's share, which balances the whole as long as flows
/// spread evenly over the queues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dest {
    /// RIP (host order); dh/sh/mh tables are built from it.
    pub addr: u32,
    /// Real port.
    pub port: u16,
    /// Weight; 0 means quiesced: no new connections, old ones stay.
    pub weight: u32,
    /// Established connections this worker tracks to the server.
    pub active_conns: u32,
    /// Connections in other states this worker tracks to the server.
    pub inactive_conns: u32,
    /// Set when the upper connection threshold was reached (IPVS
    /// `IP_VS_DEST_F_OVERLOAD`).
    pub overloaded: bool,
}

impl Dest {
    /// Return whether the server may take a new connection: not quiesced and
    /// not over its threshold, the test every IPVS scheduler makes.
    pub fn available(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }

    /// Return IPVS's connection overhead, `ip_vs_dest_conn_overhead()`:
    /// active × 256 + inactive, so that established connections dominate.
    pub fn overhead(&self) -> u64 {
        (u64::from(self.active_conns) << 8) + u64::from(self.inactive_conns)
    }
}

/// The real servers of one service, as the worker holds them.
pub trait Dests {
    /// Return the number of real servers.
    fn len(&self) -> usize;
    /// Return the view of server `i` (`i < len()`).
    fn dest(&self, i: usize) -> Dest;
    /// Return whether there are no real servers.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Dests for [Dest] {
    fn len(&self) -> usize {
        <[Dest]>::len(self)
    }
    fn dest(&self, i: usize) -> Dest {
        self[i]
    }
}

/// One LVS scheduling algorithm.
pub trait Scheduler {
    /// Return the name ipvsadm uses for this scheduler (`-s NAME`).
    fn name(&self) -> &'static str;
    /// Rebuild derived state after the server list or weights changed
    /// (control plane: may allocate).
    fn update<D: Dests + ?Sized>(&mut self, dests: &D);
    /// Pick a server for a new connection, or `None` for "no destination"
    /// (hot path: must not allocate).
    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, flow: &Flow) -> Option<usize>;
    /// Server `i`'s connection counts or overload flag changed (hot path:
    /// must not allocate). Schedulers that index servers by load update here.
    fn on_change<D: Dests + ?Sized>(&mut self, _dests: &D, _i: usize) {}
    /// Re-read every server's counts, as when this state takes over a worker
    /// whose counts are not zero (no allocation).
    fn sync<D: Dests + ?Sized>(&mut self, dests: &D) {
        for i in 0..dests.len() {
            self.on_change(dests, i);
        }
    }
}

/// Scheduler flags (`ipvsadm -b`): IPVS's `IP_VS_SVC_F_SCHED1`/`SCHED2` bits,
/// spelled `sh-fallback`/`mh-fallback` and `sh-port`/`mh-port`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SchedFlags {
    /// On an unavailable server, hash on to another one (sh, mh).
    pub fallback: bool,
    /// Hash the client port too, not only its address (sh, mh).
    pub port: bool,
}

impl SchedFlags {
    /// Parse ipvsadm's comma-separated `-b` list.
    ///
    /// # Errors
    /// A flag ipvsadm does not know, named in the message.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut f = Self::default();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "sh-fallback" | "mh-fallback" | "flag-1" => f.fallback = true,
                "sh-port" | "mh-port" | "flag-2" => f.port = true,
                _ => return Err(format!("unknown scheduler flag \"{name}\"")),
            }
        }
        Ok(f)
    }

    /// Return the flags as `ipvsadm -L` names them for scheduler `sched`.
    pub fn names(&self, sched: Kind) -> Vec<String> {
        let prefix = if sched == Kind::Mh { "mh" } else { "sh" };
        let mut v = Vec::new();
        if self.fallback {
            v.push(format!("{prefix}-fallback"));
        }
        if self.port {
            v.push(format!("{prefix}-port"));
        }
        v
    }
}

/// Settings a scheduler is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedOpts {
    /// `-b` flags.
    pub flags: SchedFlags,
    /// Maglev lookup table size (prime).
    pub mh_table_size: u32,
}

impl Default for SchedOpts {
    fn default() -> Self {
        Self {
            flags: SchedFlags::default(),
            mh_table_size: DEFAULT_MH_TABLE_SIZE,
        }
    }
}

/// Every scheduler, dispatched without a `Box<dyn>` per service.
#[derive(Debug, Clone)]
pub enum AnySched {
    /// Round robin.
    Rr(Rr),
    /// Weighted round robin.
    Wrr(Wrr),
    /// Least connection.
    Lc(Lc),
    /// Weighted least connection.
    Wlc(Wlc),
    /// Locality-based least connection.
    Lblc(Lblc),
    /// Locality-based least connection with replication.
    Lblcr(Lblcr),
    /// Destination hashing.
    Dh(Dh),
    /// Source hashing.
    Sh(Sh),
    /// Shortest expected delay.
    Sed(Sed),
    /// Never queue.
    Nq(Nq),
    /// Maglev hashing.
    Mh(Mh),
    /// Weighted failover.
    Fo(Fo),
    /// Weighted overflow.
    Ovf(Ovf),
    /// Power of two choices.
    Twos(Twos),
}

/// Names accepted by `-s`, in ipvsadm's spelling.
pub const NAMES: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos",
];

/// A scheduler's kind, parsed once from ipvsadm's `-s NAME` (or
/// keepalived's `lb_algo`), so the rest of the program never handles a
/// name it has not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Kind {
    /// `rr`.
    #[doc(alias = "rr")]
    Rr,
    /// `wrr`.
    #[doc(alias = "wrr")]
    Wrr,
    /// `lc`.
    #[doc(alias = "lc")]
    Lc,
    /// `wlc`, ipvsadm's default.
    #[doc(alias = "wlc")]
    #[default]
    Wlc,
    /// `lblc`.
    #[doc(alias = "lblc")]
    Lblc,
    /// `lblcr`.
    #[doc(alias = "lblcr")]
    Lblcr,
    /// `dh`.
    #[doc(alias = "dh")]
    Dh,
    /// `sh`.
    #[doc(alias = "sh")]
    Sh,
    /// `sed`.
    #[doc(alias = "sed")]
    Sed,
    /// `nq`.
    #[doc(alias = "nq")]
    Nq,
    /// `mh`.
    #[doc(alias = "mh")]
    Mh,
    /// `fo`.
    #[doc(alias = "fo")]
    Fo,
    /// `ovf`.
    #[doc(alias = "ovf")]
    Ovf,
    /// `twos`.
    #[doc(alias = "twos")]
    Twos,
}

impl Kind {
    /// Every kind, in the order of [`NAMES`].
    pub const ALL: [Kind; 14] = [
        Self::Rr,
        Self::Wrr,
        Self::Lc,
        Self::Wlc,
        Self::Lblc,
        Self::Lblcr,
        Self::Dh,
        Self::Sh,
        Self::Sed,
        Self::Nq,
        Self::Mh,
        Self::Fo,
        Self::Ovf,
        Self::Twos,
    ];

    /// Return the name ipvsadm uses (`-s NAME`).
    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }
}

impl std::str::FromStr for Kind {
    type Err = UnknownScheduler;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| UnknownScheduler(name.to_string()))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq<&str> for Kind {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

/// The name given to `-s` is not a scheduler we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScheduler(pub String);

impl fmt::Display for UnknownScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown scheduler \"{}\" (known: {})", self.0, NAMES.join(" "))
    }
}

impl std::error::Error for UnknownScheduler {}

/// Call `$body` with `$s` bound to the inner scheduler, whatever its kind.
macro_rules! each {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            AnySched::Rr($s) => $body,
            AnySched::Wrr($s) => $body,
            AnySched::Lc($s) => $body,
            AnySched::Wlc($s) => $body,
            AnySched::Lblc($s) => $body,
            AnySched::Lblcr($s) => $body,
            AnySched::Dh($s) => $body,
            AnySched::Sh($s) => $body,
            AnySched::Sed($s) => $body,
            AnySched::Nq($s) => $body,
            AnySched::Mh($s) => $body,
            AnySched::Fo($s) => $body,
            AnySched::Ovf($s) => $body,
            AnySched::Twos($s) => $body,
        }
    };
}

impl AnySched {
    /// Create a scheduler of `kind` with default settings.
    pub fn new(kind: Kind) -> Self {
        Self::with_opts(kind, &SchedOpts::default())
    }

    /// Create the scheduler ipvsadm calls `name`, with default settings.
    ///
    /// # Errors
    /// [`UnknownScheduler`] when no scheduler has that name.
    pub fn named(name: &str) -> Result<Self, UnknownScheduler> {
        name.parse().map(Self::new)
    }

    /// Create a scheduler of `kind` with `opts`; call [`Scheduler::update`]
    /// before the first pick.
    pub fn with_opts(kind: Kind, opts: &SchedOpts) -> Self {
        match kind {
            Kind::Rr => Self::Rr(Rr::default()),
            Kind::Wrr => Self::Wrr(Wrr::default()),
            Kind::Lc => Self::Lc(Lc::default()),
            Kind::Wlc => Self::Wlc(Wlc::default()),
            Kind::Lblc => Self::Lblc(Lblc::default()),
            Kind::Lblcr => Self::Lblcr(Lblcr::default()),
            Kind::Dh => Self::Dh(Dh::default()),
            Kind::Sh => Self::Sh(Sh::new(opts.flags)),
            Kind::Sed => Self::Sed(Sed::default()),
            Kind::Nq => Self::Nq(Nq::default()),
            Kind::Mh => Self::Mh(Mh::new(opts.mh_table_size, opts.flags)),
            Kind::Fo => Self::Fo(Fo::default()),
            Kind::Ovf => Self::Ovf(Ovf::default()),
            Kind::Twos => Self::Twos(Twos::default()),
        }
    }
}

impl Scheduler for AnySched {
    fn name(&self) -> &'static str {
        each!(self, s => s.name())
    }
    fn update<D: Dests + ?Sized>(&mut self, dests: &D) {
        each!(self, s => s.update(dests))
    }
    #[inline]
    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, flow: &Flow) -> Option<usize> {
        each!(self, s => s.pick(dests, flow))
    }
    #[inline]
    fn on_change<D: Dests + ?Sized>(&mut self, dests: &D, i: usize) {
        each!(self, s => s.on_change(dests, i))
    }
    fn sync<D: Dests + ?Sized>(&mut self, dests: &D) {
        each!(self, s => s.sync(dests))
    }
}

/// Implement [`Scheduler`] for `$ty { least: Least }`: the schedulers whose
/// pick is the least-loaded available server by one [`LoadKind`].
macro_rules! least_scheduler {
    ($ty:ident, $name:literal, $kind:expr) => {
        impl Default for $ty {
            fn default() -> Self {
                Self {
                    least: $crate::Least::new($kind),
                }
            }
        }

        impl $crate::Scheduler for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn update<D: $crate::Dests + ?Sized>(&mut self, dests: &D) {
                self.least = $crate::Least::new($kind);
                self.least.reset(dests);
            }

            #[inline]
            fn pick<D: $crate::Dests + ?Sized>(&mut self, dests: &D, _flow: &$crate::Flow) -> Option<usize> {
                self.least.pick(dests)
            }

            fn on_change<D: $crate::Dests + ?Sized>(&mut self, dests: &D, i: usize) {
                self.least.on_change(dests, i);
            }
        }
    };
}
pub(crate) use least_scheduler;

/// How a [`Least`] index weighs a server's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadKind {
    /// lc: overhead, weights ignored.
    Lc,
    /// wlc: overhead / weight.
    Wlc,
    /// sed: (active + 1) / weight.
    Sed,
}

/// The least-loaded available server, kept in an indexed heap so a pick is
/// O(1) and a count change O(log n). Until sized by `reset` (or if the server
/// list no longer matches), it falls back to the kernel's linear scan.
#[derive(Debug, Clone)]
pub(crate) struct Least {
    heap: index::IndexedHeap<index::Ratio>,
    kind: LoadKind,
}

impl Least {
    pub(crate) fn new(kind: LoadKind) -> Self {
        Self {
            heap: index::IndexedHeap::default(),
            kind,
        }
    }

    fn key(&self, d: &Dest, i: usize) -> Option<index::Ratio> {
        let (load, weight) = match self.kind {
            LoadKind::Lc => (d.overhead(), 1),
            LoadKind::Wlc => (d.overhead(), u64::from(d.weight)),
            LoadKind::Sed => (sed::sed_overhead(d), u64::from(d.weight)),
        };
        d.available().then_some(index::Ratio {
            load,
            weight,
            idx: i as u32,
        })
    }

    pub(crate) fn reset<D: Dests + ?Sized>(&mut self, dests: &D) {
        self.heap.reset(dests.len());
        for i in 0..dests.len() {
            self.on_change(dests, i);
        }
    }

    pub(crate) fn on_change<D: Dests + ?Sized>(&mut self, dests: &D, i: usize) {
        if i < dests.len() {
            let k = self.key(&dests.dest(i), i);
            self.heap.set(i, k);
        }
    }

    #[inline]
    pub(crate) fn pick<D: Dests + ?Sized>(&self, dests: &D) -> Option<usize> {
        if self.heap.capacity() == dests.len() {
            return self.heap.top();
        }
        match self.kind {
            LoadKind::Lc => (0..dests.len())
                .filter(|&i| dests.dest(i).available())
                .min_by_key(|&i| dests.dest(i).overhead()),
            LoadKind::Wlc => weighted_least(dests, 0..dests.len(), Dest::overhead),
            LoadKind::Sed => weighted_least(dests, 0..dests.len(), sed::sed_overhead),
        }
    }
}

/// The weighted least-load loop shared by wlc, sed, lblc and lblcr: the first
/// available server, then any later one with a strictly smaller
/// `overhead / weight`, compared as products because (`ip_vs_wlc.c`)
/// "Remember -- no floats in kernel mode!!! The comparison of h1*w2 > h2*w1
/// is equivalent to that of h1/w1 > h2/w2".
pub(crate) fn weighted_least<D: Dests + ?Sized>(
    dests: &D,
    members: impl Iterator<Item = usize>,
    overhead: impl Fn(&Dest) -> u64,
) -> Option<usize> {
    let mut least: Option<(usize, u64, u64)> = None;
    for i in members {
        let d = dests.dest(i);
        if !d.available() {
            continue;
        }
        let (doh, dw) = (overhead(&d), u64::from(d.weight));
        match least {
            Some((_, loh, lw)) if u128::from(loh) * u128::from(dw) <= u128::from(doh) * u128::from(lw) => {}
            _ => least = Some((i, doh, dw)),
        }
    }
    least.map(|(i, _, _)| i)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the schedulers' table-driven tests.
    use super::*;

    /// A server with `weight` and `active` established connections.
    pub fn d(weight: u32, active: u32) -> Dest {
        Dest {
            addr: 0x0a00_0000,
            port: 80,
            weight,
            active_conns: active,
            ..Dest::default()
        }
    }

    /// Servers with distinct addresses 10.0.1.i and the given weights.
    pub fn weighted(weights: &[u32]) -> Vec<Dest> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Dest {
                addr: 0x0a00_0100 + i as u32,
                ..d(w, 0)
            })
            .collect()
    }

    /// Pick `n` times with a flow from client `cip`.
    pub fn picks<S: Scheduler>(s: &mut S, dests: &[Dest], n: usize, cip: u32) -> Vec<Option<usize>> {
        (0..n)
            .map(|_| {
                s.pick(
                    dests,
                    &Flow {
                        cip,
                        ..Flow::default()
                    },
                )
            })
            .collect()
    }

    /// Build scheduler `name`, update it with `dests`, pick once.
    pub fn pick_once(name: &str, dests: &[Dest]) -> Option<usize> {
        let mut s = AnySched::named(name).unwrap();
        s.update(dests);
        s.pick(dests, &Flow::default())
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn known_names_build_and_report_their_name() {
        for name in NAMES {
            assert_eq!(AnySched::named(name).unwrap().name(), *name);
        }
    }

    #[test]
    fn unknown_name_is_refused_with_the_name() {
        let err = AnySched::named("wlcc").unwrap_err();
        assert!(err.to_string().contains("\"wlcc\""), "{err}");
    }

    #[test]
    fn no_scheduler_picks_a_quiesced_or_overloaded_server_or_from_nothing() {
        let mut over = d(5, 0);
        over.overloaded = true;
        for name in NAMES {
            assert_eq!(pick_once(name, &[]), None, "{name}: empty service");
            assert_eq!(pick_once(name, &[d(0, 0), over]), None, "{name}: none available");
            // Only server 2 may take the connection, whatever the hashes say.
            let mut s = AnySched::with_opts(
                name.parse().unwrap(),
                &SchedOpts {
                    flags: SchedFlags {
                        fallback: true,
                        port: false,
                    },
                    mh_table_size: 251,
                },
            );
            let dests = [
                Dest { addr: 1, ..d(0, 0) },
                Dest { addr: 2, ..over },
                Dest { addr: 3, ..d(1, 0) },
            ];
            s.update(&dests[..]);
            for cip in 0..50 {
                let f = Flow {
                    cip,
                    cport: cip as u16,
                    vip: cip * 7,
                    ..Flow::default()
                };
                if let Some(i) = s.pick(&dests[..], &f) {
                    assert_eq!(i, 2, "{name} picked an unavailable server");
                } else {
                    // Static hash schedulers without a fallback may find none.
                    assert!(["dh", "sh", "mh"].contains(name), "{name} found no server");
                }
            }
        }
    }

    #[test]
    fn sched_flags_parse_and_print() {
        let f = SchedFlags::parse("sh-fallback,sh-port").unwrap();
        assert!(f.fallback && f.port);
        assert_eq!(f.names(Kind::Mh), ["mh-fallback", "mh-port"]);
        assert!(SchedFlags::parse("sh-nope").unwrap_err().contains("sh-nope"));
    }

    #[test]
    fn weighted_least_breaks_ties_to_the_first() {
        let dests = weighted(&[1, 1, 1]);
        assert_eq!(weighted_least(&dests[..], 0..3, Dest::overhead), Some(0));
    }
}

#[cfg(test)]
mod differential {
    //! The indexed schedulers against the kernel's scans: two instances see
    //! the same servers and flows; one is built with `update` and told of
    //! every change, the other never built, so it scans. Their picks must
    //! agree, ties included.
    use super::*;

    #[test]
    fn indexed_picks_equal_linear_scans_under_random_changes() {
        for name in ["lc", "wlc", "sed", "nq", "fo", "ovf", "lblc", "lblcr", "twos"] {
            let n = 23;
            let mut dests: Vec<Dest> = (0..n as u32)
                .map(|i| Dest {
                    addr: i,
                    weight: 1 + i % 4,
                    ..Dest::default()
                })
                .collect();
            let mut indexed = AnySched::named(name).unwrap();
            indexed.update(&dests[..]);
            let mut scan = AnySched::named(name).unwrap();
            let mut r = testkit::Rng::new(0x1234_5678_9abc_def1);
            for step in 0..20_000u32 {
                let x = r.next_u64();
                let i = (x % n as u64) as usize;
                let d = &mut dests[i];
                match (x >> 8) % 8 {
                    0..=2 => d.active_conns += 1,
                    3 => d.active_conns = d.active_conns.saturating_sub(2),
                    4 => d.inactive_conns += 1,
                    5 => d.inactive_conns = d.inactive_conns.saturating_sub(1),
                    6 => d.overloaded = (x >> 16) % 4 == 0,
                    _ => {}
                }
                indexed.on_change(&dests[..], i);
                let f = Flow {
                    cip: (x >> 20) as u32,
                    vip: ((x >> 40) % 64) as u32,
                    now: step / 100,
                    ..Flow::default()
                };
                let a = indexed.pick(&dests[..], &f);
                let b = scan.pick(&dests[..], &f);
                assert_eq!(a, b, "{name} at step {step}");
            }
        }
    }
}
