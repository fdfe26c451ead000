//! The worker's end of the fast path (`crate::fast`): which connections go
//! to the XDP flow map and when they come back, and what the kernel
//! forwarded for them.
//!
//! Owns: the offload and removal decisions and the counting of touches.
//! Must not touch: the map (the control thread writes it) or the frame.

use super::Forwarder;
use crate::fast::{ConnKey, FastEvent, Touch};
use crate::snapshot::{DestSnap, Snapshot};
use crate::stats::WorkerStats;
use crate::xsk::{FastAction, FastKey, FastVal};
use config::FwdMethod;
use conntrack::{Addr, Conn, ConnState, FlowKey};

/// Touches a worker takes per loop at most.
const TOUCH_BATCH: usize = 256;

/// Whether `conn` is one the fast path holds once it is set up: established
/// TCP, or UDP from its first packet (both directions of a NAT one: the
/// reply's rewrite is known as soon as the client's is).
pub(super) fn offloadable(conn: &Conn, _d: &DestSnap) -> bool {
    matches!(conn.state, ConnState::Established | ConnState::Udp)
}

/// Offload or unload connection `key` as a packet moved it from `before`
/// to `conn`.
pub(super) fn transition<A: Addr>(
    snap: &Snapshot,
    stats: &WorkerStats,
    me: usize,
    key: &FlowKey<A>,
    before: &Conn,
    conn: &Conn,
) {
    let Some((si, di)) = snap.dest_of(conn.dest_id, conn.slot) else {
        return;
    };
    let d = &snap.services[si].dests[di];
    match (offloadable(before, d), offloadable(conn, d)) {
        (false, true) => offload(snap, stats, me, key, conn, d),
        (true, false) => unload(snap, stats, me, key, Some(d)),
        _ => {}
    }
}

/// Hand connection `key` to `d` (established, say) to the fast path, both
/// directions for NAT, of either family; a flow that leaves by another link than it
/// came in on (two-armed NAT) is redirected there, when that link's
/// interface index is known.
pub(super) fn offload<A: Addr>(
    snap: &Snapshot,
    stats: &WorkerStats,
    me: usize,
    key: &FlowKey<A>,
    conn: &Conn,
    d: &DestSnap,
) {
    let Some(rings) = &snap.fast else { return };
    if conn.template {
        return;
    }
    let (Some(mac), Some(link), Some(client)) = (d.mac, snap.link(d.link), snap.link(conn.client_link))
    else {
        return;
    };
    // (to the server, back to the client): the interface to redirect to,
    // 0 for the one the frame came in on.
    let (there, back) = if d.link == conn.client_link {
        (0, 0)
    } else if link.ifindex != 0 && client.ifindex != 0 {
        (link.ifindex, client.ifindex)
    } else {
        return;
    };
    let v6 = A::V6;
    let (cip, vip) = (key.cip.widen(), key.vip.widen());
    let rip = d.addr;
    let rport = if d.port == 0 { key.vport } else { d.port };
    let inbound = FastKey::new(v6, key.proto, (cip, key.cport), (vip, key.vport));
    let tun_src = if v6 { link.addr6 } else { u128::from(link.addr) };
    let action = match d.fwd {
        FwdMethod::Dr => FastAction::Dr,
        FwdMethod::Nat => FastAction::Nat {
            to_server: true,
            addr: rip,
            port: rport,
        },
        FwdMethod::Tun if tun_src != 0 => FastAction::Tun {
            src: tun_src,
            dst: rip,
            mtu: link.mtu,
        },
        FwdMethod::Tun => return,
    };
    let mut events = [None, None];
    events[0] = Some(FastEvent::Add {
        key: inbound,
        val: FastVal::new(v6, action, link.mac, mac).out_of(there),
        conn: ConnKey::of(key),
        out: false,
        dest_id: d.id,
    });
    if d.fwd == FwdMethod::Nat {
        let reply = FastKey::new(v6, key.proto, (rip, rport), (cip, key.cport));
        let back_to = FastAction::Nat {
            to_server: false,
            addr: vip,
            port: key.vport,
        };
        events[1] = Some(FastEvent::Add {
            key: reply,
            val: FastVal::new(v6, back_to, client.mac, conn.client_mac).out_of(back),
            conn: ConnKey::of(key),
            out: true,
            dest_id: d.id,
        });
    }
    push(rings, stats, me, events.into_iter().flatten(), true);
}

/// Take connection `key` (to `d`, if it still exists) back from the fast
/// path: it left ESTABLISHED, or the table.
pub(super) fn unload<A: Addr>(
    snap: &Snapshot,
    stats: &WorkerStats,
    me: usize,
    key: &FlowKey<A>,
    d: Option<&DestSnap>,
) {
    let Some(rings) = &snap.fast else { return };
    let v6 = A::V6;
    let (cip, vip) = (key.cip.widen(), key.vip.widen());
    let mut events = [
        Some(FastEvent::Del(FastKey::new(
            v6,
            key.proto,
            (cip, key.cport),
            (vip, key.vport),
        ))),
        None,
    ];
    if let Some(d) = d.filter(|d| d.fwd == FwdMethod::Nat) {
        let rport = if d.port == 0 { key.vport } else { d.port };
        events[1] = Some(FastEvent::Del(FastKey::new(
            v6,
            key.proto,
            (d.addr, rport),
            (cip, key.cport),
        )));
    }
    push(rings, stats, me, events.into_iter().flatten(), false);
}

fn push(
    rings: &crate::fast::FastRings,
    stats: &WorkerStats,
    me: usize,
    events: impl Iterator<Item = FastEvent>,
    add: bool,
) {
    let Some(ring) = rings.events.get(me) else { return };
    for e in events {
        if ring.push(e).is_err() {
            stats.fast_drops.add(1);
        } else if add {
            stats.fast_offloads.add(1);
        } else {
            stats.fast_removals.add(1);
        }
    }
}

impl Forwarder {
    /// Count what the kernel forwarded for this worker's connections, and
    /// keep those connections alive as their packets would have.
    pub fn take_touches(&mut self, now: u32) {
        let Some(rings) = self.update.snap.fast.clone() else {
            return;
        };
        let Some(ring) = rings.touches.get(self.me()) else {
            return;
        };
        for _ in 0..TOUCH_BATCH {
            let Some(t) = ring.pop() else { break };
            self.touch(&t, now);
        }
    }

    fn touch(&mut self, t: &Touch, now: u32) {
        let snap = &self.update.snap;
        let conn = match &t.conn {
            ConnKey::V4(k) => self.tables.v4.get_mut(k),
            ConnKey::V6(k) => self.tables.v6.get_mut(k),
        };
        let Some(conn) = conn else {
            // The kernel forwards for a connection this worker no longer
            // has (an offload that crossed its removal, a -C): stop it.
            if let Some(rings) = &snap.fast {
                push(
                    rings,
                    &self.stats,
                    self.me(),
                    std::iter::once(FastEvent::Del(t.key)),
                    false,
                );
            }
            return;
        };
        conn.expires = now.wrapping_add(snap.timeouts.of(conn.state));
        let c = self.stats.dest(conn.slot);
        if t.out {
            c.out_pkts.add(t.pkts);
            c.out_bytes.add(t.bytes);
        } else {
            c.in_pkts.add(t.pkts);
            c.in_bytes.add(t.bytes);
        }
        self.stats.fast_pkts.add(t.pkts);
    }
}
