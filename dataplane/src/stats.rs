//! Per-worker counters: one writer (the worker), read by the control plane.
//!
//! As firecracker's `metrics.rs` explains, `fetch_add(Relaxed)` is still a
//! `LOCK`ed instruction; a counter with a single writer only needs a relaxed
//! load and store, and the control plane sums the workers when it reads.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A counter written by one thread only.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add `n` (the owning worker only).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Subtract `n`, stopping at zero (the owning worker only).
    #[inline]
    pub fn sub(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).saturating_sub(n), Relaxed);
    }

    /// Set to `v` (the owning worker only).
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }

    /// Set to zero (the owning worker only).
    #[inline]
    pub fn reset(&self) {
        self.0.store(0, Relaxed);
    }

    /// Return the current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Why a frame was dropped; each reason has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// Shorter than an Ethernet header.
    TruncatedEthernet,
    /// Not IPv4 (the steering program sends only IPv4).
    NotIpv4,
    /// Shorter than an IPv4 header.
    TruncatedIp,
    /// IP version field is not 4.
    BadVersion,
    /// IHL below 5.
    BadIhl,
    /// IP options whose lengths do not add up to the header.
    IpOptions,
    /// Total length past the end of the frame, or shorter than the header.
    BadTotalLength,
    /// A later fragment whose first fragment did not come (in time, or the
    /// hold for early fragments was full): nothing says where it goes.
    Fragment,
    /// TCP or UDP header does not fit.
    TruncatedL4,
    /// Neither TCP nor UDP, nor an ICMP error about them.
    UnsupportedProtocol,
    /// An ICMP error whose quoted packet is cut short or not TCP/UDP.
    IcmpQuote,
    /// IPv6 extension headers past the payload, too many, or two fragment
    /// headers.
    ExtHeaders,
    /// An ICMP error about a packet of a service, for no connection this
    /// worker has (the host would have had no socket for it either).
    IcmpNoConnection,
    /// No virtual service for (protocol, VIP, port).
    NoService,
    /// A TCP segment other than SYN for a connection we do not know.
    NoConnection,
    /// The scheduler found no available real server.
    NoDestination,
    /// The real server's MAC is not (yet) in the neighbour table.
    NoNeighbour,
    /// The connection's real server was deleted.
    DestGone,
    /// The forwarding method is not supported by this build.
    UnsupportedMethod,
    /// The TX ring had no room.
    TxFull,
    /// The connection table was full and the policy is to drop.
    TableFull,
}

impl Reason {
    /// Every reason, in counter order.
    pub const ALL: [Reason; 21] = [
        Self::TruncatedEthernet,
        Self::NotIpv4,
        Self::TruncatedIp,
        Self::BadVersion,
        Self::BadIhl,
        Self::IpOptions,
        Self::BadTotalLength,
        Self::Fragment,
        Self::TruncatedL4,
        Self::UnsupportedProtocol,
        Self::IcmpQuote,
        Self::ExtHeaders,
        Self::IcmpNoConnection,
        Self::NoService,
        Self::NoConnection,
        Self::NoDestination,
        Self::NoNeighbour,
        Self::DestGone,
        Self::UnsupportedMethod,
        Self::TxFull,
        Self::TableFull,
    ];

    /// Return the counter name.
    pub fn name(self) -> &'static str {
        match self {
            Self::TruncatedEthernet => "truncated_ethernet",
            Self::NotIpv4 => "not_ipv4",
            Self::TruncatedIp => "truncated_ip",
            Self::BadVersion => "bad_version",
            Self::BadIhl => "bad_ihl",
            Self::IpOptions => "ip_options",
            Self::BadTotalLength => "bad_total_length",
            Self::Fragment => "fragment",
            Self::TruncatedL4 => "truncated_l4",
            Self::UnsupportedProtocol => "unsupported_protocol",
            Self::IcmpQuote => "icmp_quote",
            Self::ExtHeaders => "ext_headers",
            Self::IcmpNoConnection => "icmp_no_connection",
            Self::NoService => "no_service",
            Self::NoConnection => "no_connection",
            Self::NoDestination => "no_destination",
            Self::NoNeighbour => "no_neighbour",
            Self::DestGone => "dest_gone",
            Self::UnsupportedMethod => "unsupported_method",
            Self::TxFull => "tx_full",
            Self::TableFull => "table_full",
        }
    }
}

impl From<crate::wire::Malformed> for Reason {
    fn from(m: crate::wire::Malformed) -> Self {
        use crate::wire::Malformed as M;
        match m {
            M::TruncatedEthernet => Self::TruncatedEthernet,
            M::NotIpv4 => Self::NotIpv4,
            M::TruncatedIp => Self::TruncatedIp,
            M::BadVersion => Self::BadVersion,
            M::BadIhl => Self::BadIhl,
            M::BadTotalLength => Self::BadTotalLength,
            M::IpOptions => Self::IpOptions,
            M::TruncatedL4 => Self::TruncatedL4,
            M::UnsupportedProtocol => Self::UnsupportedProtocol,
            M::IcmpQuote => Self::IcmpQuote,
            M::ExtHeaders => Self::ExtHeaders,
        }
    }
}

/// Counters of one real server on one worker, indexed by the server's slot.
#[derive(Debug, Default)]
pub struct DestCounters {
    /// ESTABLISHED connections now.
    pub active: Counter,
    /// Connections in other states now.
    pub inactive: Counter,
    /// Connections scheduled, ever.
    pub conns: Counter,
    /// Packets forwarded.
    pub in_pkts: Counter,
    /// Bytes forwarded.
    pub in_bytes: Counter,
    /// Reply packets translated back (NAT).
    pub out_pkts: Counter,
    /// Reply bytes translated back (NAT).
    pub out_bytes: Counter,
    /// 1 while over the upper threshold (IPVS `IP_VS_DEST_F_OVERLOAD`).
    pub overloaded: Counter,
    /// Persistence templates pointing at the server now.
    pub persist: Counter,
}

impl DestCounters {
    fn reset(&self) {
        for c in [
            &self.active,
            &self.inactive,
            &self.conns,
            &self.in_pkts,
            &self.in_bytes,
            &self.out_pkts,
            &self.out_bytes,
            &self.overloaded,
            &self.persist,
        ] {
            c.reset();
        }
    }
}

/// Most real servers the director holds at once (counter slots per worker).
pub const MAX_DESTS: usize = 4096;

/// Everything one worker counts.
#[derive(Debug)]
pub struct WorkerStats {
    /// Frames received.
    pub rx: Counter,
    /// Frames sent.
    pub tx: Counter,
    /// New connections that found the table full and were forwarded without
    /// an entry.
    pub table_full: Counter,
    /// Connections in the table now.
    pub conns: Counter,
    /// ICMP "fragmentation needed" sent back for TUN packets over the MTU.
    pub frag_needed: Counter,
    /// TCP/UDP checksums left partial by the sender's offload, completed
    /// before the frame went on.
    pub csum_completed: Counter,
    /// ICMP errors about a connection sent on to its real server or client.
    pub icmp_errors: Counter,
    /// Later fragments that came before their first fragment's decision and
    /// waited for it.
    pub frags_held: Counter,
    /// Connections handed to the master sync sender.
    pub sync_sent: Counter,
    /// Sync events dropped: the ring to the sender was full.
    pub sync_drops: Counter,
    /// Connections learnt from a master (inserted or refreshed).
    pub sync_learnt: Counter,
    /// Learnt connections whose service or server is not configured here
    /// (kept unbound until it is, up to `PARKED` a worker), or that found
    /// the table full.
    pub sync_unbound: Counter,
    /// Version of the rules snapshot the worker runs with.
    pub rules_version: Counter,
    /// Frames handed to the worker that owns their flow.
    pub handoffs: Counter,
    /// Frames that could not be handed over (pool empty, inbox full) or
    /// taken in (no free frame); dropped.
    pub handoff_drops: Counter,
    /// Flow map entries asked for (a NAT connection asks for two).
    pub fast_offloads: Counter,
    /// Flow map entries given back.
    pub fast_removals: Counter,
    /// Fast-path events lost to a full ring.
    pub fast_drops: Counter,
    /// Packets the kernel forwarded for this worker's connections.
    pub fast_pkts: Counter,
    drops: [Counter; Reason::ALL.len()],
    dests: Box<[DestCounters]>,
}

impl Default for WorkerStats {
    fn default() -> Self {
        Self {
            rx: Counter::default(),
            tx: Counter::default(),
            table_full: Counter::default(),
            conns: Counter::default(),
            frag_needed: Counter::default(),
            csum_completed: Counter::default(),
            frags_held: Counter::default(),
            icmp_errors: Counter::default(),
            sync_sent: Counter::default(),
            sync_drops: Counter::default(),
            sync_learnt: Counter::default(),
            sync_unbound: Counter::default(),
            rules_version: Counter::default(),
            handoffs: Counter::default(),
            handoff_drops: Counter::default(),
            fast_offloads: Counter::default(),
            fast_removals: Counter::default(),
            fast_drops: Counter::default(),
            fast_pkts: Counter::default(),
            drops: Default::default(),
            dests: (0..MAX_DESTS).map(|_| DestCounters::default()).collect(),
        }
    }
}

impl WorkerStats {
    /// Count `n` drops for `reason`.
    #[inline]
    pub fn count_drops(&self, reason: Reason, n: u64) {
        self.drops[reason as usize].add(n);
    }

    /// Return the drops counted for `reason`.
    pub fn drops(&self, reason: Reason) -> u64 {
        self.drops[reason as usize].get()
    }

    /// Return the counters of the real server in `slot`.
    #[inline]
    pub fn dest(&self, slot: u16) -> &DestCounters {
        &self.dests[usize::from(slot) % MAX_DESTS]
    }

    /// Zero the counters of `slot` (its server changed; owning worker only).
    pub fn reset_dest(&self, slot: u16) {
        self.dest(slot).reset();
    }
}
