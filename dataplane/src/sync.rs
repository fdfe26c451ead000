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
    /// Client address (a template's may be a network).
    pub cip: u32,
    /// Client port (0 for a template).
    pub cport: u16,
    /// Virtual address (for a fwmark template: 0).
    pub vip: u32,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub rip: u32,
    /// Real server port.
    pub rport: u16,
    /// The service's firewall mark (0: none).
    pub fwmark: u32,
    /// The state's full timeout, seconds.
    pub timeout: u32,
}

/// A master's sync rings, one per worker, and when to refresh.
#[derive(Debug, Clone)]
pub struct SyncMaster {
    /// Worker `i` pushes onto ring `i`; the sender drains them all.
    pub rings: Arc<[ArrayQueue<SyncConn>]>,
    /// A connection carrying packets is sent again after this many
    /// seconds.
    pub refresh: u32,
}

impl SyncMaster {
    /// Rings for `workers` workers.
    pub fn new(workers: usize, refresh: u32) -> Self {
        Self {
            rings: (0..workers.max(1)).map(|_| ArrayQueue::new(RING)).collect(),
            refresh: refresh.max(1),
        }
    }
}

impl PartialEq for SyncMaster {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.rings, &other.rings) && self.refresh == other.refresh
    }
}

/// Whether a connection that went from `old` to `new` (IPVS state numbers,
/// `tcp` or not), last seen at `last_seen`, is sent at `now`.
#[inline]
pub fn due(tcp: bool, old: u8, new: u8, last_seen: u32, now: u32, refresh: u32) -> bool {
    if !sent_state(tcp, new) {
        return false;
    }
    old != new || now / refresh != last_seen / refresh
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
    fn the_kernels_states_and_a_refresh_per_period() {
        // SYN_RECV never; into ESTABLISHED at once; a FIN at once.
        assert!(!due(true, 0, 3, 0, 0, 60));
        assert!(due(true, 3, 1, 0, 0, 60));
        assert!(due(true, 1, 4, 10, 10, 60));
        // Established and busy: once per 60 s window.
        assert!(!due(true, 1, 1, 61, 62, 60));
        assert!(due(true, 1, 1, 119, 120, 60));
        // UDP (state 0 on the wire) whenever new or due.
        assert!(due(false, 11, 0, 0, 0, 60));
        assert!(!due(false, 0, 0, 5, 6, 60));
    }
}
