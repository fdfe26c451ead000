//! Connection sync between directors, on the workers' side: what a master's
//! worker hands its sync sender, and what a backup's worker takes in.
//!
//! A master's worker pushes a [`SyncConn`] onto its own bounded ring
//! ([`SyncMaster`], shared through the snapshot) when a connection enters a
//! state the kernel syncs (TCP ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT,
//! TIME_WAIT; UDP and persistence templates when made), and again at most
//! once per refresh period while it carries packets, so the backup's copy
//! (which lives its state's full timeout from the last sync) never runs out
//! before the master's. A full ring drops the event and counts it: no
//! syscall, lock or allocation on the hot path.
//!
//! A backup's sync receiver pushes [`SyncConn`]s onto a worker's inbox
//! ([`crate::owner::Handoff::send_sync`]); the worker that owns the flow
//! inserts or refreshes it (`Forwarder::learn_conn`).
//!
//! Must not touch: sockets or the wire format (the daemon's sync threads
//! and the `connsync` crate do those).

use crossbeam_queue::ArrayQueue;
use std::sync::Arc;

/// Events a worker's ring holds.
pub const RING: usize = 16384;

/// One connection (or template) as sync carries it, host order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncConn {
    /// IP protocol (0 for a fwmark template).
    pub proto: u8,
    /// A persistence template.
    pub template: bool,
    /// IPVS's protocol state number (TCP 1 = ESTABLISHED …; UDP 0).
    pub state: u8,
    /// Forwarding method code as IPVS numbers them (0 NAT, 2 TUN, 3 DR).
    pub fwd: u8,
    /// IPv6 (else IPv4: addresses in the low 32 bits).
    pub v6: bool,
    /// Client address (a template's may be a network).
    pub cip: u128,
    /// Client port (0 for a template).
    pub cport: u16,
    /// Virtual address (for a fwmark template: 0).
    pub vip: u128,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub rip: u128,
    /// Real server port.
    pub rport: u16,
    /// The service's firewall mark (0: none).
    pub fwmark: u32,
    /// The state's full timeout, seconds.
    pub timeout: u32,
}

/// When a master sends a connection: the kernel's sysctls
/// `sync_threshold` (threshold, period) and `sync_refresh_period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPolicy {
    /// Sent at the client's packet number `threshold` (default 3) …
    pub threshold: u8,
    /// … and every `period` packets after (default 50; 0: once).
    pub period: u8,
    /// Seconds (default 0: off): sent again once this long (at most half
    /// the state's timeout, at least 10 s) has passed, not by packets.
    pub refresh: u32,
    /// In refresh mode, extra sends within a refresh window, an eighth of
    /// it apart (0-3, default 0): `sync_retries`.
    pub retries: u8,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        Self {
            threshold: 3,
            period: 50,
            refresh: 0,
            retries: 0,
        }
    }
}

/// The count of a connection's client packets that sync keeps in 7 bits.
const PKTS_MAX: u8 = 127;

impl SyncPolicy {
    /// The kernel's rules, and ours: the count lives in 7 bits.
    ///
    /// # Errors
    /// What is wrong with the values.
    pub fn check(&self) -> Result<(), String> {
        if self.period > PKTS_MAX {
            return Err(format!(
                "sync_period {}: at most {PKTS_MAX} in ferrovs",
                self.period
            ));
        }
        if self.period > 0 && self.threshold >= self.period {
            return Err(format!(
                "sync_threshold {} must be below sync_period {}",
                self.threshold, self.period
            ));
        }
        if self.threshold >= PKTS_MAX {
            return Err(format!("sync_threshold {}: below {PKTS_MAX}", self.threshold));
        }
        if self.retries > 3 {
            return Err(format!("sync_retries {}: 0 to 3", self.retries));
        }
        Ok(())
    }

    /// A connection's count after one more client packet (`pkts`: before).
    /// With a period it is kept modulo the period; in refresh mode it only
    /// says whether the connection was ever sent.
    #[inline]
    pub fn count(&self, pkts: u8) -> u8 {
        if self.period > 0 {
            (pkts + 1) % self.period
        } else if self.refresh == 0 {
            (pkts + 1).min(PKTS_MAX)
        } else {
            pkts
        }
    }

    /// The refresh window for a state's `timeout`, and its eighth (the
    /// spacing of retries).
    #[inline]
    fn windows(&self, timeout: u32) -> (u32, u32) {
        let w = self.refresh.min((timeout / 2).max(10)).max(1);
        (w, (w / 8).max(1))
    }

    /// A connection's count once it was sent at `now` (its previous packet
    /// at `last_seen`). In refresh mode the count is 0 before the first
    /// send, then 1 + the retries made in the current window.
    #[inline]
    pub fn sent(&self, pkts: u8, (last_seen, now): (u32, u32), timeout: u32) -> u8 {
        if self.period > 0 || self.refresh == 0 {
            return pkts;
        }
        let (w, _) = self.windows(timeout);
        if pkts == 0 || now / w != last_seen / w {
            1
        } else {
            pkts.saturating_add(1)
        }
    }

    /// Whether a connection that went from `old` to `new` (IPVS state
    /// numbers, `tcp` or not) with count `pkts`, its previous packet at
    /// `last_seen`, its state's timeout `timeout`, is sent at `now`
    /// (`ip_vs_sync_conn_needed`).
    #[inline]
    pub fn due(
        &self,
        tcp: bool,
        (old, new): (u8, u8),
        pkts: u8,
        (last_seen, now): (u32, u32),
        timeout: u32,
    ) -> bool {
        if !sent_state(tcp, new) {
            return false;
        }
        // Leaving ESTABLISHED (or any change but into it) goes at once.
        if tcp && old != new && new != 1 {
            return true;
        }
        if self.refresh > 0 {
            let (w, eighth) = self.windows(timeout);
            let sent_before = self.period > 0 || pkts != 0;
            if sent_before && now / w == last_seen / w {
                // Within the window: only a retry, an eighth apart.
                let retried = pkts.saturating_sub(1);
                let retry = self.period == 0 && retried < self.retries && now / eighth != last_seen / eighth;
                if !retry {
                    return false;
                }
            }
        }
        if self.period > 0 {
            pkts == self.threshold
        } else {
            self.refresh > 0 || pkts == self.threshold
        }
    }
}

/// A master's sync rings, one per worker, and when to send.
#[derive(Debug, Clone)]
pub struct SyncMaster {
    /// Worker `i` pushes onto ring `i`; the sender drains them all.
    pub rings: Arc<[ArrayQueue<SyncConn>]>,
    /// When a connection is sent.
    pub policy: SyncPolicy,
}

impl SyncMaster {
    /// Rings for `workers` workers.
    pub fn new(workers: usize, policy: SyncPolicy) -> Self {
        Self {
            rings: (0..workers.max(1)).map(|_| ArrayQueue::new(RING)).collect(),
            policy,
        }
    }
}

impl PartialEq for SyncMaster {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.rings, &other.rings) && self.policy == other.policy
    }
}

/// Whether a connection in IPVS state `state` is ever sent: for TCP,
/// ESTABLISHED, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT; the kernel never
/// syncs SYN_SENT/SYN_RECV (a backup must not forward a half-open one).
#[inline]
pub fn sent_state(tcp: bool, state: u8) -> bool {
    const SENT: [bool; 12] = [
        false, true, false, false, true, true, true, true, false, false, false, false,
    ];
    !tcp || SENT.get(usize::from(state)).copied().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_threshold_period_and_refresh() {
        let p = SyncPolicy::default();
        // Packets 1, 2, 3, … of an established connection: sent at 3, 53.
        let mut c = 0;
        let sent: Vec<u32> = (1..=110)
            .filter(|_| {
                c = p.count(c);
                p.due(true, (1, 1), c, (0, 0), 900)
            })
            .collect();
        assert_eq!(sent, [3, 53, 103]);
        // SYN_RECV never; leaving ESTABLISHED at once, whatever the count.
        assert!(!p.due(true, (0, 3), 3, (0, 0), 60));
        assert!(p.due(true, (1, 4), 7, (10, 10), 120));
        // Period 0: once, at the threshold.
        let once = SyncPolicy { period: 0, ..p };
        assert!(once.due(false, (0, 0), 3, (0, 0), 300) && !once.due(false, (0, 0), 4, (0, 0), 300));
        // Refresh mode: the first chance, then once per window.
        let refresh = SyncPolicy {
            period: 0,
            refresh: 60,
            ..p
        };
        assert!(refresh.due(true, (3, 1), 0, (5, 5), 900));
        let s = refresh.sent(0, (5, 5), 900);
        assert!(!refresh.due(true, (1, 1), s, (61, 62), 900));
        assert!(refresh.due(true, (1, 1), s, (119, 120), 900));
        // sync_retries 2: two more sends in a window, an eighth (7 s) apart.
        let retrying = SyncPolicy {
            retries: 2,
            ..refresh
        };
        let mut c = retrying.sent(0, (60, 60), 900);
        let mut at = Vec::new();
        for now in 61..120 {
            if retrying.due(true, (1, 1), c, (now - 1, now), 900) {
                c = retrying.sent(c, (now - 1, now), 900);
                at.push(now);
            }
        }
        assert_eq!(at, [63, 70]);
        assert!(SyncPolicy { threshold: 50, ..p }.check().is_err());
        assert!(SyncPolicy { period: 200, ..p }.check().is_err());
        assert!(SyncPolicy { retries: 4, ..p }.check().is_err());
    }
}
