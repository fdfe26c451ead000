//! The director's interfaces and its real servers' MACs.
//!
//! Owns: what the daemon knows of each interface (index, MAC, IPv4 and IPv6
//! addresses, MTU) and the neighbour table of the real servers (both followed through
//! rtnetlink notifications, `host::Watch`), with the
//! solicitation of those it lacks. Must not touch: the rules (callers say which RIPs
//! matter) or the workers (a changed MAC reaches them in the next
//! snapshot).

use dataplane::LinkSnap;
use hashbrown::HashMap;
use host::Watch;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How often a real server without a MAC is solicited again, and the trash
/// looked at.
pub const NEIGH_EVERY: Duration = Duration::from_secs(1);
/// How long a rules change waits for new servers' MACs before it is published
/// without them (an unreachable server must not stall the control socket).
const RESOLVE_WAIT: Duration = Duration::from_millis(200);

/// Refuse an interface whose frames would not fit a UMEM frame: the kernel
/// would drop every full-sized one before the workers saw it.
/// That interface `name` has `queues` receive queues at least and an MTU
/// an AF_XDP frame holds; its MTU.
///
/// # Errors
/// What is wrong, and how to fix it.
pub fn check_link(name: &str, queues: u32) -> Result<u16, String> {
    let bad = |e: std::io::Error| format!("interface {name}: {e}");
    let have = host::rx_queues(name).map_err(bad)?;
    if queues == 0 || queues > have {
        return Err(format!(
            "--queues {queues} but {name} has {have} receive queue(s); raise them with \
             `ethtool -L {name} combined N` (or `rx N tx N`), N at most the cores"
        ));
    }
    check_mtu(name, host::mtu(name).map_err(bad)?)
}

fn check_mtu(name: &str, mtu: u32) -> Result<u16, String> {
    let max = dataplane::xsk::max_frame_len();
    let need = mtu as usize + dataplane::wire::L3;
    if need > max {
        return Err(format!(
            "interface {name}: MTU {mtu} makes frames of up to {need} bytes, but an AF_XDP frame holds \
             {max} (2048 less the kernel's headroom); set the MTU to {} at most \
             (`ip link set dev {name} mtu 1500`): jumbo frames would need multi-buffer AF_XDP, \
             which ferrovs does not use",
            max - dataplane::wire::L3
        ));
    }
    // Under the frame size, so it fits.
    Ok(mtu as u16)
}

/// One interface of the director.
#[derive(Debug, Clone)]
pub struct Link {
    /// Its name.
    pub name: String,
    /// Its index.
    pub ifindex: u32,
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its first IPv4 address (host order), if it has one: TUN's outer
    /// source.
    pub addr: Option<u32>,
    /// Its first IPv6 address that is not link-local (host order): TUN's
    /// outer source over IPv6.
    pub addr6: Option<u128>,
    /// Its MTU.
    pub mtu: u16,
}

/// The interfaces and the real servers' neighbour entries.
#[derive(Debug)]
pub struct Links {
    /// The interfaces, by link index (the order of `--interface`).
    pub links: Vec<Link>,
    /// The kernel's neighbours and addresses of those interfaces, followed
    /// through rtnetlink notifications.
    watch: Watch,
    solicited: HashMap<IpAddr, Instant>,
}

impl Links {
    /// Look up every interface of `names`, each with at least `queues`
    /// receive queues, and subscribe to their neighbours and addresses.
    ///
    /// # Errors
    /// No such interface, too few queues (with the command that adds
    /// them), or no rtnetlink.
    pub fn open(names: &[String], queues: u32) -> Result<Self, String> {
        let mut links = Vec::with_capacity(names.len());
        for name in names {
            let bad = |e: std::io::Error| format!("interface {name}: {e}");
            let mtu = check_link(name, queues)?;
            links.push(Link {
                name: name.clone(),
                ifindex: host::ifindex(name).map_err(bad)?,
                mac: host::link_mac(name).map_err(bad)?,
                addr: None,
                addr6: None,
                mtu,
            });
        }
        let ifindexes: Vec<u32> = links.iter().map(|l| l.ifindex).collect();
        let watch = Watch::open(&ifindexes).map_err(|e| format!("rtnetlink: {e}"))?;
        let mut me = Self {
            links,
            watch,
            solicited: HashMap::new(),
        };
        me.take_addrs();
        Ok(me)
    }

    fn take_addrs(&mut self) {
        for (i, l) in self.links.iter_mut().enumerate() {
            l.addr = self.watch.addr(i);
            l.addr6 = self.watch.addr6(i);
        }
    }

    /// Return the interface names.
    pub fn names(&self) -> Vec<String> {
        self.links.iter().map(|l| l.name.clone()).collect()
    }

    /// Return the interfaces as the workers see them.
    pub fn snaps(&self) -> Vec<LinkSnap> {
        self.links
            .iter()
            .map(|l| LinkSnap {
                mac: l.mac,
                addr: l.addr.unwrap_or(0),
                addr6: l.addr6.unwrap_or(0),
                mtu: l.mtu,
                ifindex: l.ifindex,
            })
            .collect()
    }

    /// Return every IPv4 address of the interfaces (host order).
    pub fn locals(&self) -> Vec<u32> {
        self.watch.all_addrs()
    }

    /// Return every IPv6 address of the interfaces (host order).
    pub fn locals6(&self) -> Vec<u128> {
        self.watch.all_addrs6()
    }

    /// Return whether some interface has an IPv4 address (TUN needs one).
    pub fn have_ipv4(&self) -> bool {
        self.links.iter().any(|l| l.addr.is_some())
    }

    /// Return whether some interface has a global IPv6 address (TUN over
    /// IPv6 needs one).
    pub fn have_ipv6(&self) -> bool {
        self.links.iter().any(|l| l.addr6.is_some())
    }

    /// Return the MAC of `addr` and the link it is on, if known.
    pub fn mac(&self, addr: IpAddr) -> Option<([u8; 6], u8)> {
        self.watch.neigh.mac(addr)
    }

    /// Take in the kernel's changes since the last call (no syscall but one
    /// non-blocking read when nothing changed); return whether the MAC of
    /// one of `rips` or an interface address changed. Entries of other hosts
    /// (clients, routers) come and go without a publication.
    pub fn poll(&mut self, rips: &[IpAddr]) -> bool {
        let before: Vec<_> = rips.iter().map(|&a| self.mac(a)).collect();
        if !self.watch.poll() {
            return false;
        }
        let addrs: Vec<_> = self.links.iter().map(|l| (l.addr, l.addr6)).collect();
        self.take_addrs();
        addrs
            .iter()
            .zip(&self.links)
            .any(|(a, l)| *a != (l.addr, l.addr6))
            || rips.iter().zip(&before).any(|(&a, b)| self.mac(a) != *b)
    }

    /// Ask the kernel to resolve those of `rips` without a MAC, each at most
    /// once per [`NEIGH_EVERY`]; return whether some have none.
    pub fn solicit(&mut self, rips: &[IpAddr]) -> bool {
        let mut unresolved = false;
        let neigh = &self.watch.neigh;
        for &a in rips.iter().filter(|&&a| neigh.mac(a).is_none()) {
            unresolved = true;
            if self.solicited.get(&a).is_none_or(|t| t.elapsed() >= NEIGH_EVERY) {
                let _ = host::solicit(a);
                self.solicited.insert(a, Instant::now());
            }
        }
        self.solicited.retain(|a, _| rips.contains(a));
        unresolved
    }

    /// Solicit those of `rips` without a MAC and wait, bounded, for the
    /// kernel to resolve them.
    pub fn resolve(&mut self, rips: &[IpAddr]) {
        let end = Instant::now() + RESOLVE_WAIT;
        self.poll(rips);
        while self.solicit(rips) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
            self.poll(rips);
        }
    }
}
