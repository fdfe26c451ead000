//! Forwarding methods: rewrite one frame in place for its real server, and
//! [`xmit`], which picks the method of the server a connection goes to (as
//! IPVS's `cp->packet_xmit`, DPVS's `dp_vs_xmit_*`).
//!
//! Owns: the bytes of a frame the worker decided to send. Writes go through
//! the checked views of `wire`, over the [`Headers`] the one parse returned.
//! Must not touch: connection state, schedulers or counters (the worker keeps
//! them; [`xmit`] only says what it sent).

pub mod dr;
pub mod icmp;
pub mod nat;
pub mod route;
pub mod tun;

pub use route::{Route, Sent};

use crate::family::Family;
use crate::frame::Frame;
use crate::snapshot::Snapshot;
use crate::stats::Reason;
use crate::wire::{Headers, IpBits};
use config::FwdMethod;

/// Finish a TCP/UDP checksum that the sender's offload left partial (see
/// [`Headers::l4_checksum_partial`]); return whether it was. Done before any
/// rewrite, so NAT's incremental update starts from a whole checksum.
#[inline]
pub fn complete_checksum<A: IpBits>(frame: &mut [u8], h: &Headers<A>) -> bool {
    let partial = h.l4_checksum_partial(frame);
    if partial {
        h.fill_l4_checksum(frame);
    }
    partial
}

/// Rewrite `frame` (parsed as `h`) for the real server of `r` by its
/// forwarding method.
///
/// # Errors
/// The server or link has no MAC or address yet, or the frame has no room.
#[inline(always)]
pub fn xmit<A: Family>(frame: &mut dyn Frame, h: &Headers<A>, r: &Route<'_>) -> Result<Sent, Reason> {
    let d = r.dest;
    let mac = d.mac.ok_or(Reason::NoNeighbour)?;
    let link_mac = r.snap.link_mac(d.link).ok_or(Reason::NoNeighbour)?;
    match d.fwd {
        FwdMethod::Dr => dr::rewrite(frame.bytes(), h, link_mac, mac),
        FwdMethod::Nat => {
            A::nat(frame.bytes(), h, nat::Side::Dst, A::narrow(d.addr), r.rport);
            dr::rewrite(frame.bytes(), h, link_mac, mac);
        }
        FwdMethod::Tun => return A::tun(frame, h, r, (link_mac, mac)),
    }
    Ok(Sent::Forwarded(d.link))
}

/// Rewrite a NAT reply (parsed as `h`) back to the client: VIP:vport as its
/// source, out of `link` to `client_mac`.
///
/// # Errors
/// The link has no MAC.
#[inline]
pub fn xmit_reply<A: Family>(
    frame: &mut [u8],
    h: &Headers<A>,
    snap: &Snapshot,
    (vip, vport): (A, u16),
    link: u8,
    client_mac: [u8; 6],
) -> Result<(), Reason> {
    let link_mac = snap.link_mac(link).ok_or(Reason::NoNeighbour)?;
    A::nat(frame, h, nat::Side::Src, vip, vport);
    dr::rewrite(frame, h, link_mac, client_mac);
    Ok(())
}
