//! What VRRP does to the host: a raw IPv4 socket per interface for
//! protocol 112 (adverts in and out), the virtual addresses added and
//! removed through rtnetlink, and gratuitous ARPs.
//!
//! Must not touch: elections (the `vrrp` crate decides), the rules.

use crossbeam_channel::Sender;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use vrrp::packet::Ignored;

/// Adverts taken a second on one interface at most: a peer sends one a
/// second per instance (VRRPv3's shortest interval, 10 ms, is 100 a
/// second), so this is room for many instances and nothing for a flood.
pub const ADVERTS_PER_SEC: u32 = 2000;

/// One interface's VRRP socket.
#[derive(Debug)]
pub struct Port {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub ifindex: u32,
    /// Its primary IPv4 address (the advert source unless configured).
    pub addr: Ipv4Addr,
    /// Its MAC (gratuitous ARPs come from it).
    pub mac: [u8; 6],
    sock: Arc<Socket>,
}

/// Read an interface's index, MAC and first IPv4 address.
fn interface(name: &str) -> io::Result<(u32, [u8; 6], Ipv4Addr)> {
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| io::Error::other(format!("no interface {name}")))?;
    let mac = iface.mac.map(|m| m.octets()).unwrap_or_default();
    let addr = iface
        .ips
        .iter()
        .find_map(|n| match n.ip() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
        .ok_or_else(|| io::Error::other(format!("{name} has no IPv4 address")))?;
    Ok((iface.index, mac, addr))
}

impl Port {
    /// Open the socket on `name`, in the multicast group unless only
    /// unicast is used.
    ///
    /// # Errors
    /// No such interface, no address, or the socket cannot be set up.
    pub fn open(name: &str, multicast: bool) -> io::Result<Self> {
        let (ifindex, mac, addr) = interface(name)?;
        let sock = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(vrrp::packet::PROTO_VRRP))),
        )?;
        sock.bind_device(Some(name.as_bytes()))?;
        sock.set_header_included_v4(true)?;
        sock.set_multicast_loop_v4(false)?;
        sock.set_multicast_if_v4(&addr)?;
        if multicast {
            sock.join_multicast_v4(&vrrp::packet::GROUP, &addr)?;
        }
        // Receive threads wake this often to see whether to stop.
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(Self {
            name: name.to_string(),
            ifindex,
            mac,
            addr,
            sock: Arc::new(sock),
        })
    }

    /// Send the IPv4 packet `packet` (header included) to `dst`.
    ///
    /// # Errors
    /// The kernel refused it.
    pub fn send(&self, packet: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        self.sock
            .send_to(packet, &SockAddr::from(SocketAddrV4::new(dst, 0)))
            .map(drop)
    }

    /// Start the thread that hands every packet received here, tagged
    /// `port`, to `out`, until `stop`; at most [`ADVERTS_PER_SEC`] a
    /// second, and no more than `out` has room for: the rest is counted in
    /// `ignored` (as [`Ignored::Rate`]) and dropped unread.
    pub fn receive(
        &self,
        port: usize,
        out: Sender<(usize, Vec<u8>)>,
        stop: Arc<AtomicBool>,
        ignored: Arc<super::IgnoredCounts>,
    ) {
        let sock = self.sock.clone();
        std::thread::Builder::new()
            .name(format!("vrrp-rx-{}", self.name))
            .spawn(move || {
                let mut buf = vec![0u8; 4096];
                let mut cap = crate::ratecap::RateCap::new(ADVERTS_PER_SEC);
                let rate = Ignored::ALL.iter().position(|w| *w == Ignored::Rate).unwrap_or(0);
                while !stop.load(Ordering::Relaxed) {
                    match (&*sock).read(&mut buf) {
                        Ok(n) => {
                            if !cap.allow() {
                                ignored[rate].fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            match out.try_send((port, buf[..n].to_vec())) {
                                Ok(()) => {}
                                Err(crossbeam_channel::TrySendError::Full(_)) => {
                                    ignored[rate].fetch_add(1, Ordering::Relaxed);
                                }
                                Err(_) => return,
                            }
                        }
                        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            })
            .map(drop)
            .unwrap_or_else(|e| log::error!("vrrp: receive thread: {e}"));
    }
}

/// One virtual address to set or remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// Interface index.
    pub ifindex: u32,
    /// Address.
    pub addr: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// Label (`eth0:vip`).
    pub label: Option<String>,
}

/// Add (`true`) or remove `a` through rtnetlink; an address already there
/// (or already gone) is not an error.
///
/// # Errors
/// The netlink request failed otherwise.
pub fn set_addr(a: &Addr, add: bool) -> io::Result<()> {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.prefix_len = a.prefix;
    msg.header.index = a.ifindex;
    msg.attributes.push(AddressAttribute::Local(IpAddr::V4(a.addr)));
    msg.attributes.push(AddressAttribute::Address(IpAddr::V4(a.addr)));
    if let Some(l) = &a.label {
        msg.attributes.push(AddressAttribute::Label(l.clone()));
    }
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK;
    let payload = if add {
        header.flags |= NLM_F_CREATE | NLM_F_EXCL;
        RouteNetlinkMessage::NewAddress(msg)
    } else {
        RouteNetlinkMessage::DelAddress(msg)
    };
    let mut m = NetlinkMessage::new(header, NetlinkPayload::from(payload));
    m.finalize();
    let mut out = vec![0; m.buffer_len()];
    m.serialize(&mut out);
    let mut sock = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.connect(&netlink_sys::SocketAddr::new(0, 0))?;
    sock.send(&out, 0)?;
    let mut buf = vec![0u8; 8192];
    let n = sock.recv(&mut &mut buf[..], 0)?;
    match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[..n]).map(|m| m.payload) {
        Ok(NetlinkPayload::Error(e)) => match e.code.map(|c| -c.get()) {
            None => Ok(()),
            // EEXIST on add, EADDRNOTAVAIL on remove: already as wanted.
            Some(17) if add => Ok(()),
            Some(99) if !add => Ok(()),
            Some(code) => Err(io::Error::from_raw_os_error(code)),
        },
        _ => Ok(()),
    }
}

/// Send `count` gratuitous ARPs for each of `addrs` out of interface
/// `name` from `mac`: ARP requests with the address as sender and target,
/// to the broadcast MAC, as keepalived sends them.
///
/// # Errors
/// The interface cannot be opened for sending.
pub fn garp(name: &str, mac: [u8; 6], addrs: &[Ipv4Addr], count: u32) -> io::Result<()> {
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| io::Error::other(format!("no interface {name}")))?;
    let cfg = pnet_datalink::Config {
        read_timeout: Some(Duration::from_millis(1)),
        ..Default::default()
    };
    let pnet_datalink::Channel::Ethernet(mut tx, _rx) = pnet_datalink::channel(&iface, cfg)? else {
        return Err(io::Error::other("not an Ethernet interface"));
    };
    for _ in 0..count {
        for a in addrs {
            if let Some(r) = tx.send_to(&garp_frame(mac, *a), None) {
                r?;
            }
        }
    }
    Ok(())
}

/// The gratuitous ARP frame for `addr` from `mac`.
pub fn garp_frame(mac: [u8; 6], addr: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[..6].fill(0xff);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    // Ethernet, IPv4, 6 + 4 byte addresses, request.
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&addr.octets());
    f[32..38].fill(0xff);
    f[38..42].copy_from_slice(&addr.octets());
    f
}
