//! ICMP errors about connections, as IPVS's `ip_vs_in_icmp` and
//! `ip_vs_out_icmp` (and their `_v6` twins): destination unreachable
//! (fragmentation needed among them), time exceeded and parameter problem
//! (ICMPv6: and packet too big) quote a packet; the packet's connection says
//! where the error goes.
//!
//! - From the client's side, about a packet the service sent from VIP:vport
//!   (a DR or TUN real server's answer, or a NAT reply): to the connection's
//!   real server by its method; NAT translates it to the server.
//! - From a NAT real server's side, about a packet sent to RIP:rport: back
//!   to the client, translated to come from the VIP.
//!
//! Owns: which connection an error is about, and its counters. Must not
//! touch: connection state (an error does not move a connection on, as in
//! IPVS) or the table's contents.

use super::Forwarder;
use crate::family::Family;
use crate::frame::Frame;
use crate::fwd::{self, dr, nat::Side};
use crate::owner::FlowSide;
use crate::stats::Reason;
use crate::wire::{Headers, Quoted};
use config::FwdMethod;
use conntrack::FlowKey;

/// Which way an ICMP error goes, from the packet it quotes, with the
/// client's tuple (the owner's key).
pub(super) fn side_of<A: Copy>(
    q: &Quoted<A>,
    is_service: impl Fn(u8, A, u16) -> bool,
    is_nat_real: impl Fn(u8, A, u16) -> bool,
) -> Option<(A, u16, FlowSide<A>)> {
    if is_service(q.proto, q.src, q.sport) {
        let side = FlowSide::Request {
            proto: q.proto,
            vip: q.src,
            vport: q.sport,
        };
        Some((q.dst, q.dport, side))
    } else if is_nat_real(q.proto, q.dst, q.dport) {
        let side = FlowSide::Reply {
            proto: q.proto,
            rip: q.dst,
            rport: q.dport,
        };
        Some((q.src, q.sport, side))
    } else {
        None
    }
}

impl Forwarder {
    /// Send the ICMP error `frame` (parsed as `h`) on for the connection of
    /// the packet it quotes. Return the egress link.
    // Off the hot path: kept out of the common case's code.
    #[cold]
    #[inline(never)]
    pub(super) fn icmp_error<A: Family>(
        &mut self,
        frame: &mut dyn Frame,
        h: &Headers<A>,
        ingress: u8,
    ) -> Result<u8, Reason> {
        let q = A::quoted(h, frame.bytes())?;
        let snap = &self.update.snap;
        let side = side_of(
            &q,
            |p, a, port| snap.classify(p, a, port).is_some(),
            |p, a, port| snap.is_nat_real(p, a, port),
        );
        let link = match side {
            Some((cip, cport, FlowSide::Request { proto, vip, vport })) => {
                let key = FlowKey {
                    proto,
                    cip,
                    cport,
                    vip,
                    vport,
                };
                self.icmp_to_real(frame, h, &q, &key, ingress)?
            }
            Some((cip, cport, FlowSide::Reply { proto, rip, rport })) => {
                let reply = FlowKey {
                    proto,
                    cip,
                    cport,
                    vip: rip,
                    vport: rport,
                };
                self.icmp_to_client(frame.bytes(), h, &q, &reply)?
            }
            None => return Err(Reason::NoService),
        };
        self.stats.icmp_errors.add(1);
        Ok(link)
    }

    /// From the client's side: to the real server of connection `key`.
    fn icmp_to_real<A: Family>(
        &mut self,
        frame: &mut dyn Frame,
        h: &Headers<A>,
        q: &Quoted<A>,
        key: &FlowKey<A>,
        ingress: u8,
    ) -> Result<u8, Reason> {
        let conn = A::table(&mut self.tables)
            .get_mut(key)
            .ok_or(Reason::IcmpNoConnection)?;
        let snap = &self.update.snap;
        let (si, di) = snap.dest_of(conn.dest_id, conn.slot).ok_or(Reason::DestGone)?;
        let d = &snap.services[si].dests[di];
        let mac = d.mac.ok_or(Reason::NoNeighbour)?;
        let link_mac = snap.link_mac(d.link).ok_or(Reason::NoNeighbour)?;
        let c = self.stats.dest(d.slot);
        c.in_pkts.add(1);
        c.in_bytes.add(frame.bytes().len() as u64);
        if d.fwd == FwdMethod::Nat {
            let b = frame.bytes();
            // The port the connection's packets go to (fwmark servers
            // without one keep the virtual port).
            let rport = if d.port == 0 { key.vport } else { d.port };
            A::nat_error(b, h, q, Side::Dst, A::narrow(d.addr), rport);
            dr::rewrite(b, h, link_mac, mac);
            return Ok(d.link);
        }
        // DR and TUN: the error goes as the connection's packets go.
        self.ip_id = self.ip_id.wrapping_add(1);
        let route = fwd::Route {
            snap,
            dest: d,
            rport: 0,
            ingress,
            ip_id: self.ip_id,
        };
        match fwd::xmit(frame, h, &route)? {
            fwd::Sent::Forwarded(link) => Ok(link),
            // Too big to tunnel, and an error is never answered with an
            // error (RFC 1122 3.2.2): xmit's answer is dropped.
            fwd::Sent::FragNeeded(_) => Err(Reason::UnsupportedMethod),
        }
    }

    /// From a NAT real server's side: back to the client of the connection
    /// whose reply direction is `reply`, from the VIP.
    fn icmp_to_client<A: Family>(
        &mut self,
        b: &mut [u8],
        h: &Headers<A>,
        q: &Quoted<A>,
        reply: &FlowKey<A>,
    ) -> Result<u8, Reason> {
        let (key, conn) = A::table(&mut self.tables)
            .get_reply_mut(reply)
            .ok_or(Reason::IcmpNoConnection)?;
        let (link, client_mac, slot) = (conn.client_link, conn.client_mac, conn.slot);
        let link_mac = self.update.snap.link_mac(link).ok_or(Reason::NoNeighbour)?;
        A::nat_error(b, h, q, Side::Src, key.vip, key.vport);
        dr::rewrite(b, h, link_mac, client_mac);
        let c = self.stats.dest(slot);
        c.out_pkts.add(1);
        c.out_bytes.add(b.len() as u64);
        Ok(link)
    }
}
