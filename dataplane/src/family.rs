//! The two address families the workers forward, as one type parameter:
//! `u32` (IPv4) and `u128` (IPv6) addresses in host order. Everything that
//! differs between the families is a method here (which lookups, which
//! connection table), so the forwarding code is written once and compiled
//! twice, and the IPv4 path pays nothing for IPv6.
//!
//! Must not touch: frames (the views in `wire`) or decisions (the worker).

use crate::frame::Frame;
use crate::fwd::icmp;
use crate::fwd::nat::{self, Side};
use crate::fwd::route::{self, Route, Sent};
use crate::snapshot::SnapFamily;
use crate::stats::Reason;
use crate::wire::{Headers, Malformed, Quoted};
use conntrack::ConnTable;

/// A worker's connection tables, one per family.
#[derive(Debug)]
pub struct Tables {
    /// IPv4 connections (40 B each).
    pub v4: ConnTable<u32>,
    /// IPv6 connections (80 B each).
    pub v6: ConnTable<u128>,
}

/// An address family the workers forward (its lookups in a snapshot come
/// with [`SnapFamily`]).
pub trait Family: SnapFamily {
    /// This family's connection table.
    fn table(t: &mut Tables) -> &mut ConnTable<Self>;
    /// NAT: rewrite `side`'s address and port of `frame`.
    fn nat(frame: &mut [u8], h: &Headers<Self>, side: Side, addr: Self, port: u16);
    /// TUN: encapsulate `frame` for the real server of `r`, from link MAC
    /// to server MAC.
    ///
    /// # Errors
    /// No room, no address for the outer header.
    fn tun(
        frame: &mut dyn Frame,
        h: &Headers<Self>,
        r: &Route<'_>,
        macs: ([u8; 6], [u8; 6]),
    ) -> Result<Sent, Reason>;
    /// The identification of the datagram fragment `frame` (parsed as `h`)
    /// belongs to.
    fn frag_id(h: &Headers<Self>, frame: &[u8]) -> u32;
    /// The packet the ICMP (ICMPv6) error `frame` quotes.
    ///
    /// # Errors
    /// The quote is cut short or not TCP/UDP.
    fn quoted(h: &Headers<Self>, frame: &[u8]) -> Result<Quoted<Self>, Malformed>;
    /// Translate an ICMP error for a NAT connection (`icmp::nat_error`).
    fn nat_error(frame: &mut [u8], h: &Headers<Self>, q: &Quoted<Self>, side: Side, addr: Self, port: u16);
    /// An address of this family as the control plane shows it.
    fn ip(a: Self) -> std::net::IpAddr;
}

impl Family for u32 {
    #[inline]
    fn table(t: &mut Tables) -> &mut ConnTable<Self> {
        &mut t.v4
    }

    #[inline]
    fn nat(frame: &mut [u8], h: &Headers<Self>, side: Side, addr: Self, port: u16) {
        nat::rewrite(frame, h, side, addr, port);
    }

    #[inline]
    fn tun(
        frame: &mut dyn Frame,
        h: &Headers<Self>,
        r: &Route<'_>,
        macs: ([u8; 6], [u8; 6]),
    ) -> Result<Sent, Reason> {
        route::tun4(frame, h, r, macs)
    }

    fn frag_id(h: &Headers<Self>, frame: &[u8]) -> u32 {
        u32::from(h.ident(frame))
    }

    fn quoted(h: &Headers<Self>, frame: &[u8]) -> Result<Quoted<Self>, Malformed> {
        h.quoted(frame)
    }

    fn nat_error(frame: &mut [u8], h: &Headers<Self>, q: &Quoted<Self>, side: Side, addr: Self, port: u16) {
        icmp::nat_error(frame, h, q, side, addr, port);
    }

    fn ip(a: Self) -> std::net::IpAddr {
        std::net::Ipv4Addr::from(a).into()
    }
}

impl Family for u128 {
    #[inline]
    fn table(t: &mut Tables) -> &mut ConnTable<Self> {
        &mut t.v6
    }

    #[inline]
    fn nat(frame: &mut [u8], h: &Headers<Self>, side: Side, addr: Self, port: u16) {
        nat::rewrite6(frame, h, side, addr, port);
    }

    #[inline]
    fn tun(
        frame: &mut dyn Frame,
        h: &Headers<Self>,
        r: &Route<'_>,
        macs: ([u8; 6], [u8; 6]),
    ) -> Result<Sent, Reason> {
        route::tun6(frame, h, r, macs)
    }

    fn frag_id(h: &Headers<Self>, frame: &[u8]) -> u32 {
        h.ident6(frame)
    }

    fn quoted(h: &Headers<Self>, frame: &[u8]) -> Result<Quoted<Self>, Malformed> {
        h.quoted6(frame)
    }

    fn nat_error(frame: &mut [u8], h: &Headers<Self>, q: &Quoted<Self>, side: Side, addr: Self, port: u16) {
        icmp::nat_error6(frame, h, q, side, addr, port);
    }

    fn ip(a: Self) -> std::net::IpAddr {
        std::net::Ipv6Addr::from(a).into()
    }
}
