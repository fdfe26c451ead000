//! The director's interfaces and its real servers' MACs.
//!
//! Owns: what the daemon knows of each interface (index, MAC, IPv4 address,
//! MTU) and the neighbour table of the real servers, with the solicitation
//! of those it lacks. Must not touch: the rules (callers say which RIPs
//! matter) or the workers (a changed MAC reaches them in the next
//! snapshot).

use dataplane::LinkSnap;
use dataplane::neigh::{self, Neighbours};
use hashbrown::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// How often the neighbour table is re-read.
pub const NEIGH_EVERY: Duration = Duration::from_secs(1);
/// How often it is re-read while a real server has no MAC yet: a SYN to an
/// unresolved server is dropped, and the client retransmits only after 1 s.
pub const NEIGH_PENDING_EVERY: Duration = Duration::from_millis(20);
/// How long a rules change waits for new servers' MACs before it is published
/// without them (an unreachable server must not stall the control socket).
const RESOLVE_WAIT: Duration = Duration::from_millis(200);

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
    /// Its MTU.
    pub mtu: u16,
}

/// The interfaces and the real servers' neighbour entries.
#[derive(Debug)]
pub struct Links {
    /// The interfaces, by link index (the order of `--interface`).
    pub links: Vec<Link>,
    neigh: Neighbours,
    solicited: HashMap<Ipv4Addr, Instant>,
    /// A real server has no MAC yet.
    pub unresolved: bool,
    last_read: Instant,
}

impl Links {
    /// Look up every interface of `names`, each with at least `queues`
    /// receive queues.
    ///
    /// # Errors
    /// No such interface, or too few queues (with the command that adds
    /// them).
    pub fn open(names: &[String], queues: u32) -> Result<Self, String> {
        let mut links = Vec::with_capacity(names.len());
        for name in names {
            let bad = |e: std::io::Error| format!("interface {name}: {e}");
            let have = neigh::rx_queues(name).map_err(bad)?;
            if queues == 0 || queues > have {
                return Err(format!(
                    "--queues {queues} but {name} has {have} receive queue(s); raise them with \
                     `ethtool -L {name} combined N` (or `rx N tx N`), N at most the cores"
                ));
            }
            links.push(Link {
                name: name.clone(),
                ifindex: neigh::ifindex(name).map_err(bad)?,
                mac: neigh::link_mac(name).map_err(bad)?,
                addr: neigh::ipv4(name).map_err(bad)?,
                mtu: neigh::mtu(name).map_err(bad)?,
            });
        }
        Ok(Self {
            neigh: Neighbours::read(names).unwrap_or_default(),
            links,
            solicited: HashMap::new(),
            unresolved: false,
            last_read: Instant::now() - NEIGH_EVERY,
        })
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
                mtu: l.mtu,
            })
            .collect()
    }

    /// Return whether some interface has an IPv4 address (TUN needs one).
    pub fn have_ipv4(&self) -> bool {
        self.links.iter().any(|l| l.addr.is_some())
    }

    /// Return the MAC of `addr` and the link it is on, if known.
    pub fn mac(&self, addr: Ipv4Addr) -> Option<([u8; 6], u8)> {
        self.neigh.mac(addr)
    }

    /// Return whether the table is due for another read.
    pub fn due(&self) -> bool {
        let every = if self.unresolved {
            NEIGH_PENDING_EVERY
        } else {
            NEIGH_EVERY
        };
        self.last_read.elapsed() >= every
    }

    /// Re-read the neighbour table and solicit those of `rips` without a
    /// MAC; return whether any of their MACs changed.
    pub fn refresh(&mut self, rips: &[Ipv4Addr]) -> bool {
        self.last_read = Instant::now();
        let Ok(fresh) = Neighbours::read(&self.names()) else {
            return false;
        };
        let changed = rips.iter().any(|&a| fresh.mac(a) != self.neigh.mac(a));
        self.unresolved = rips.iter().any(|&a| fresh.mac(a).is_none());
        for &a in rips {
            let due = self.solicited.get(&a).is_none_or(|t| t.elapsed() >= NEIGH_EVERY);
            if fresh.mac(a).is_none() && due {
                let _ = neigh::solicit(a);
                self.solicited.insert(a, Instant::now());
            }
        }
        self.neigh = fresh;
        changed
    }

    /// Solicit those of `rips` without a MAC and wait, bounded, for the
    /// kernel to resolve them.
    pub fn resolve(&mut self, rips: &[Ipv4Addr]) {
        let end = Instant::now() + RESOLVE_WAIT;
        self.refresh(rips);
        while self.unresolved && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
            self.refresh(rips);
        }
    }
}
