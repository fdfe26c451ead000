//! Where a frame goes to its real server ([`Route`]), what was sent
//! ([`Sent`]), and TUN's glue from a route to the outer header of either
//! family (the link's address, MAC and MTU; "fragmentation needed" or
//! "packet too big" back out of the link the frame came in on).
//!
//! Below `crate::family`, which dispatches to these per family; must not
//! touch connections or decisions.

use super::{icmp, tun};
use crate::frame::Frame;
use crate::snapshot::{DestSnap, Snapshot};
use crate::stats::Reason;
use crate::wire::Headers;

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
