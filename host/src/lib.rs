//! What the host says about its network, in one place outside the hot
//! path's crate: real-server MACs and the director's addresses from the
//! kernel through rtnetlink, and interfaces' indexes, MACs, MTUs and queue
//! counts from /sys.
//!
//! DR and the first hop of NAT/TUN need the RS's MAC. The operator never types
//! it: a [`Watch`] dumps the kernel's IPv4 neighbour table and the
//! interfaces' IPv4 addresses once, then follows the kernel's change
//! notifications (`RTNLGRP_NEIGH`, `RTNLGRP_IPV4_IFADDR`) on the same
//! socket, so a MAC that changes or an address added to an interface is seen
//! at the next poll, with no polling of `/proc` and no `ip` to fork. An
//! address the table lacks is resolved by sending it one empty UDP datagram
//! (the kernel ARPs before it can send), and its entry arrives as a
//! notification.
//!
//! Must not touch: the rules or the workers (the daemon publishes what
//! changed).

use hashbrown::HashMap;
use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::path::Path;

/// Port the resolution datagram goes to: discard.
const SOLICIT_PORT: u16 = 9;
/// `RTNLGRP_NEIGH`, `RTNLGRP_IPV4_IFADDR` and `RTNLGRP_IPV6_IFADDR` of
/// `linux/rtnetlink.h`.
const GROUP_NEIGH: u32 = 3;
const GROUP_IPV4_IFADDR: u32 = 5;
const GROUP_IPV6_IFADDR: u32 = 9;

/// The neighbour table of the director's interfaces: RIP → MAC and link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Neighbours {
    macs: HashMap<IpAddr, ([u8; 6], u8)>,
}

impl Neighbours {
    /// Return the MAC of `addr` (IPv4 from ARP, IPv6 from neighbour
    /// discovery) and the link it is on, if known.
    pub fn mac(&self, addr: impl Into<IpAddr>) -> Option<([u8; 6], u8)> {
        self.macs.get(&addr.into()).copied()
    }

    /// Apply one neighbour message (new, changed or deleted entry) of the
    /// interfaces `ifindexes` (link 0, 1, …); return whether an entry
    /// changed. Only entries with a usable MAC count, as `ATF_COM` in
    /// `/proc/net/arp`: reachable, stale, delay, probe, permanent.
    pub fn apply(&mut self, msg: &NeighbourMessage, deleted: bool, ifindexes: &[u32]) -> bool {
        let h = &msg.header;
        let Some(link) = ifindexes.iter().position(|&i| i == h.ifindex) else {
            return false;
        };
        let Some(ip) = msg.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
            _ => None,
        }) else {
            return false;
        };
        let mac = msg.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::LinkLayerAddress(m) => <[u8; 6]>::try_from(&m[..]).ok(),
            _ => None,
        });
        let complete = matches!(
            h.state,
            NeighbourState::Reachable
                | NeighbourState::Stale
                | NeighbourState::Delay
                | NeighbourState::Probe
                | NeighbourState::Permanent
        );
        let entry = mac.filter(|_| complete && !deleted).map(|m| (m, link as u8));
        let before = self.macs.get(&ip).copied();
        match entry {
            Some(e) => self.macs.insert(ip, e),
            None => self.macs.remove(&ip),
        };
        before != entry
    }
}

/// A subscription to the kernel's neighbour and IPv4 address changes of
/// some interfaces, with what it has learnt.
#[derive(Debug)]
pub struct Watch {
    sock: Socket,
    buf: Vec<u8>,
    ifindexes: Vec<u32>,
    /// The neighbour table of those interfaces.
    pub neigh: Neighbours,
    /// Each interface's IPv4 addresses (host order), in the kernel's order.
    addrs: Vec<Vec<u32>>,
    /// Each interface's IPv6 addresses (host order), link-local ones too.
    addrs6: Vec<Vec<u128>>,
    /// Something changed since the last [`Watch::poll`].
    changed: bool,
}

impl Watch {
    /// Subscribe to changes on `ifindexes` and read the current neighbour
    /// table and addresses.
    ///
    /// # Errors
    /// The netlink socket could not be opened, or a dump failed.
    pub fn open(ifindexes: &[u32]) -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        for g in [GROUP_NEIGH, GROUP_IPV4_IFADDR, GROUP_IPV6_IFADDR] {
            sock.add_membership(g)?;
        }
        let mut w = Self {
            sock,
            buf: vec![0; 1 << 16],
            ifindexes: ifindexes.to_vec(),
            neigh: Neighbours::default(),
            addrs: vec![Vec::new(); ifindexes.len()],
            addrs6: vec![Vec::new(); ifindexes.len()],
            changed: false,
        };
        w.resync()?;
        w.sock.set_non_blocking(true)?;
        Ok(w)
    }

    /// Return the first IPv4 address of link `link` (host order).
    pub fn addr(&self, link: usize) -> Option<u32> {
        self.addrs.get(link).and_then(|a| a.first().copied())
    }

    /// Return every IPv4 address of the links (host order).
    pub fn all_addrs(&self) -> Vec<u32> {
        self.addrs.iter().flatten().copied().collect()
    }

    /// Return the first IPv6 address of link `link` that is not link-local
    /// (host order): TUN's outer source over IPv6.
    pub fn addr6(&self, link: usize) -> Option<u128> {
        let link_local = |a: u128| a >> 118 == 0x3fa;
        self.addrs6.get(link)?.iter().copied().find(|&a| !link_local(a))
    }

    /// Return every IPv6 address of the links (host order).
    pub fn all_addrs6(&self) -> Vec<u128> {
        self.addrs6.iter().flatten().copied().collect()
    }

    /// Read the whole neighbour table and address list again.
    fn resync(&mut self) -> io::Result<()> {
        self.changed = true;
        self.neigh = Neighbours::default();
        self.addrs.iter_mut().for_each(Vec::clear);
        self.addrs6.iter_mut().for_each(Vec::clear);
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut get_neigh = NeighbourMessage::default();
            get_neigh.header.family = family;
            self.dump(RouteNetlinkMessage::GetNeighbour(get_neigh))?;
            let mut get_addr = AddressMessage::default();
            get_addr.header.family = family;
            self.dump(RouteNetlinkMessage::GetAddress(get_addr))?;
        }
        Ok(())
    }

    /// Send a dump request and take in every message until it is done
    /// (change notifications that arrive meanwhile are taken in too).
    fn dump(&mut self, req: RouteNetlinkMessage) -> io::Result<()> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_DUMP | NLM_F_REQUEST;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(req));
        msg.finalize();
        let mut out = vec![0; msg.buffer_len()];
        msg.serialize(&mut out);
        self.sock.send(&out, 0)?;
        // A dump answers within one scheduling round; the bound keeps a
        // kernel that never says "done" from hanging the start.
        for _ in 0..10_000 {
            if self.recv_batch()? {
                return Ok(());
            }
        }
        Err(io::Error::other("netlink dump did not end"))
    }

    /// Take in every change the kernel sent since the last call; return
    /// whether a neighbour entry or an address changed.
    pub fn poll(&mut self) -> bool {
        loop {
            match self.recv_batch() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ENOBUFS: the kernel dropped notifications; read it all
                // again. Any other error: the same, next time.
                Err(_) => {
                    let _ = self.sock.set_non_blocking(false);
                    let _ = self.resync();
                    let _ = self.sock.set_non_blocking(true);
                    break;
                }
            }
        }
        std::mem::take(&mut self.changed)
    }

    /// Receive one datagram of messages and apply them; true when it held
    /// the end of a dump.
    fn recv_batch(&mut self) -> io::Result<bool> {
        let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
        let mut done = false;
        let mut at = 0;
        while at < n {
            let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[at..n]) else {
                break;
            };
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::Done(_) => done = true,
                NetlinkPayload::Error(e) => return Err(io::Error::other(format!("netlink: {e:?}"))),
                NetlinkPayload::InnerMessage(m) => self.apply(&m),
                _ => {}
            }
            if len == 0 {
                break;
            }
            at += len;
        }
        Ok(done)
    }

    fn apply(&mut self, m: &RouteNetlinkMessage) {
        match m {
            RouteNetlinkMessage::NewNeighbour(n) => {
                self.changed |= self.neigh.apply(n, false, &self.ifindexes);
            }
            RouteNetlinkMessage::DelNeighbour(n) => {
                self.changed |= self.neigh.apply(n, true, &self.ifindexes);
            }
            RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a) => {
                let Some(link) = self.ifindexes.iter().position(|&i| i == a.header.index) else {
                    return;
                };
                // IFA_LOCAL is the interface's own address (IFA_ADDRESS is
                // the peer's on point-to-point links; IPv6 has only it).
                let ip = |x: &AddressAttribute| match x {
                    AddressAttribute::Local(ip) | AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                };
                let local = a
                    .attributes
                    .iter()
                    .find(|x| matches!(x, AddressAttribute::Local(_)))
                    .or_else(|| {
                        a.attributes
                            .iter()
                            .find(|x| matches!(x, AddressAttribute::Address(_)))
                    });
                let new = matches!(m, RouteNetlinkMessage::NewAddress(_));
                self.changed |= match local.and_then(ip) {
                    Some(IpAddr::V4(v)) => keep(&mut self.addrs[link], u32::from(v), new),
                    Some(IpAddr::V6(v)) => keep(&mut self.addrs6[link], u128::from(v), new),
                    None => false,
                };
            }
            _ => {}
        }
    }
}

/// Add (`new`) or remove `ip` in `list`; return whether the list changed.
fn keep<T: PartialEq>(list: &mut Vec<T>, ip: T, new: bool) -> bool {
    match (new, list.iter().position(|x| *x == ip)) {
        (true, None) => list.push(ip),
        (false, Some(i)) => {
            list.remove(i);
        }
        _ => return false,
    }
    true
}

/// Ask the kernel to resolve `addr` by sending it one empty datagram.
///
/// # Errors
/// The socket cannot be made or the send fails at once (no route).
pub fn solicit(addr: IpAddr) -> io::Result<()> {
    let s = match addr {
        IpAddr::V4(_) => UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?,
        IpAddr::V6(_) => UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0))?,
    };
    s.send_to(&[], (addr, SOLICIT_PORT)).map(drop)
}

/// Return the MAC address of interface `ifname`.
///
/// # Errors
/// No such interface, or its address is not a MAC.
pub fn link_mac(ifname: &str) -> io::Result<[u8; 6]> {
    let text = std::fs::read_to_string(Path::new("/sys/class/net").join(ifname).join("address"))?;
    parse_mac(text.trim())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{ifname} has no MAC address")))
}

/// Whether interface `ifname` exists (a name, not a path).
pub fn exists(ifname: &str) -> bool {
    !ifname.is_empty() && !ifname.contains('/') && Path::new("/sys/class/net").join(ifname).is_dir()
}

/// Return the index of interface `ifname`.
///
/// # Errors
/// No such interface.
pub fn ifindex(ifname: &str) -> io::Result<u32> {
    let text = std::fs::read_to_string(Path::new("/sys/class/net").join(ifname).join("ifindex"))?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad ifindex"))
}

/// Return the MTU of interface `ifname`.
///
/// # Errors
/// No such interface.
pub fn mtu(ifname: &str) -> io::Result<u32> {
    let text = std::fs::read_to_string(Path::new("/sys/class/net").join(ifname).join("mtu"))?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad mtu"))
}

/// Return how many receive queues interface `ifname` has.
///
/// # Errors
/// No such interface.
pub fn rx_queues(ifname: &str) -> io::Result<u32> {
    let dir = std::fs::read_dir(Path::new("/sys/class/net").join(ifname).join("queues"))?;
    let n = dir
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    Ok(n as u32)
}

/// Parse `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A neighbour message as the kernel sends it for `ip` on `ifindex`.
    fn entry(ip: [u8; 4], mac: [u8; 6], state: NeighbourState, ifindex: u32) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.ifindex = ifindex;
        m.header.state = state;
        m.attributes = vec![
            NeighbourAttribute::Destination(NeighbourAddress::Inet(Ipv4Addr::from(ip))),
            NeighbourAttribute::LinkLayerAddress(mac.to_vec()),
        ];
        m
    }

    #[test]
    fn keeps_complete_entries_of_the_interface() {
        let table = [
            entry(
                [10, 0, 0, 11],
                [2, 0, 0, 0, 0, 0x11],
                NeighbourState::Reachable,
                7,
            ),
            entry([10, 0, 0, 12], [0; 6], NeighbourState::Incomplete, 7),
            entry([10, 0, 0, 13], [2, 0, 0, 0, 0, 0x13], NeighbourState::Stale, 8),
        ];
        let read = |ifindexes: &[u32]| {
            let mut n = Neighbours::default();
            for e in &table {
                n.apply(e, false, ifindexes);
            }
            n
        };
        let n = read(&[7]);
        assert_eq!(
            n.mac(Ipv4Addr::new(10, 0, 0, 11)),
            Some(([2, 0, 0, 0, 0, 0x11], 0))
        );
        assert_eq!(n.mac(Ipv4Addr::new(10, 0, 0, 12)), None, "incomplete entry");
        assert_eq!(n.mac(Ipv4Addr::new(10, 0, 0, 13)), None, "other interface");
        let both = read(&[7, 8]);
        assert_eq!(
            both.mac(Ipv4Addr::new(10, 0, 0, 13)),
            Some(([2, 0, 0, 0, 0, 0x13], 1))
        );
    }

    #[test]
    fn changes_and_deletions_follow_the_kernel() {
        let mut n = Neighbours::default();
        let rs = [10, 0, 0, 11];
        assert!(n.apply(&entry(rs, [2; 6], NeighbourState::Reachable, 7), false, &[7]));
        assert!(
            !n.apply(&entry(rs, [2; 6], NeighbourState::Stale, 7), false, &[7]),
            "same MAC"
        );
        assert!(
            n.apply(&entry(rs, [3; 6], NeighbourState::Reachable, 7), false, &[7]),
            "moved"
        );
        assert_eq!(n.mac(Ipv4Addr::from(rs)), Some(([3; 6], 0)));
        assert!(n.apply(&entry(rs, [3; 6], NeighbourState::Failed, 7), false, &[7]));
        assert_eq!(n.mac(Ipv4Addr::from(rs)), None, "failed");
        n.apply(&entry(rs, [3; 6], NeighbourState::Reachable, 7), false, &[7]);
        assert!(n.apply(&entry(rs, [3; 6], NeighbourState::Reachable, 7), true, &[7]));
        assert_eq!(n.mac(Ipv4Addr::from(rs)), None, "deleted");
    }

    /// Needs no privileges: the host namespace's own table and addresses.
    #[test]
    fn a_watch_reads_the_loopback_address() {
        let lo = ifindex("lo").unwrap();
        let w = Watch::open(&[lo]).unwrap();
        assert_eq!(w.addr(0), Some(u32::from(Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("0a:1B:00:ff:10:01"),
            Some([0x0a, 0x1b, 0, 0xff, 0x10, 1])
        );
        assert_eq!(parse_mac("0a:1b:00:ff:10"), None);
        assert_eq!(parse_mac("0a:1b:00:ff:10:01:02"), None);
        assert_eq!(parse_mac("zz:1b:00:ff:10:01"), None);
    }
}
