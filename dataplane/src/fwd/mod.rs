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
pub mod tun;

use crate::family::Family;
use crate::frame::Frame;
use crate::snapshot::{DestSnap, Snapshot};
use crate::stats::Reason;
use crate::wire::{Headers, IpBits};
use config::FwdMethod;

/// Where a frame goes to its real server.
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    /// The rules (link MACs, addresses, MTUs).
    pub snap: &'a Snapshot,
    /// The real server.
    pub dest: &'a DestSnap,
    /// The port on the real server (NAT).
    pub rport: u16,
    /// The link the frame came in on (ICMP errors go back out of it).
    pub ingress: u8,
    /// IP id of a TUN outer header.
    pub ip_id: u16,
}

/// What [`xmit`] sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The frame, rewritten, out of this link.
    Forwarded(u8),
    /// An ICMP "fragmentation needed" back to the client, out of this link.
    FragNeeded(u8),
}

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

/// TUN over IPv4: an outer IPv4 header (IPIP), or "fragmentation needed"
/// back to the client when the result would pass the MTU with DF set.
pub(crate) fn tun4(
    frame: &mut dyn Frame,
    h: &Headers,
    r: &Route<'_>,
    (link_mac, mac): ([u8; 6], [u8; 6]),
) -> Result<Sent, Reason> {
    let d = r.dest;
    let link = r.snap.link(d.link).ok_or(Reason::UnsupportedMethod)?;
    let outer = tun::Outer {
        src: link.addr,
        dst: d.addr as u32,
        from: link_mac,
        to: mac,
        mtu: link.mtu,
        id: r.ip_id,
    };
    match tun::encap(frame, h, &outer) {
        tun::Encap::Done => Ok(Sent::Forwarded(d.link)),
        tun::Encap::NoRoom => Err(Reason::TxFull),
        tun::Encap::FragNeeded(next_hop) => {
            // Answer the client from the link it came in on.
            let back = r.snap.link_mac(r.ingress).ok_or(Reason::NoNeighbour)?;
            if !icmp::frag_needed(frame, h, back, h.src_mac, next_hop) {
                return Err(Reason::TruncatedL4);
            }
            Ok(Sent::FragNeeded(r.ingress))
        }
    }
}

/// TUN over IPv6: an outer IPv6 header (IPv6-in-IPv6), or ICMPv6 "packet
/// too big" back to the client when the result would pass the MTU.
pub(crate) fn tun6(
    frame: &mut dyn Frame,
    h: &Headers<u128>,
    r: &Route<'_>,
    (link_mac, mac): ([u8; 6], [u8; 6]),
) -> Result<Sent, Reason> {
    let d = r.dest;
    let link = r.snap.link(d.link).ok_or(Reason::UnsupportedMethod)?;
    if link.addr6 == 0 {
        // No address of ours to send from on that link.
        return Err(Reason::NoNeighbour);
    }
    let outer = tun::Outer {
        src: 0,
        dst: 0,
        from: link_mac,
        to: mac,
        mtu: link.mtu,
        id: 0,
    };
    match tun::encap6(frame, h, (link.addr6, d.addr), &outer) {
        tun::Encap::Done => Ok(Sent::Forwarded(d.link)),
        tun::Encap::NoRoom => Err(Reason::TxFull),
        tun::Encap::FragNeeded(mtu) => {
            let back = r.snap.link_mac(r.ingress).ok_or(Reason::NoNeighbour)?;
            if !icmp::packet_too_big(frame, h, back, h.src_mac, u32::from(mtu)) {
                return Err(Reason::TruncatedL4);
            }
            Ok(Sent::FragNeeded(r.ingress))
        }
    }
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
