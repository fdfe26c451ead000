//! One running `vrrp_instance`: its election (the `vrrp` crate's
//! [`Instance`]) and what carrying out its actions means on the host:
//! adverts sent, addresses set and removed, gratuitous ARPs, the
//! transition's log line and notify scripts.
//!
//! Must not touch: other instances (the engine moves sync groups) or the
//! sockets' receive side.

use super::net::{self, Addr, Port};
use super::notify;
use config::keepalived::vrrp::Instance as Conf;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};
use vrrp::instance::{Action, Instance, Params, State, Why};
use vrrp::packet::{self, Advert, Auth, Checksum, Version};

/// One instance and its counters.
#[derive(Debug)]
pub struct Run {
    /// Its configuration.
    pub conf: Conf,
    /// Its election.
    pub inst: Instance,
    /// Index of its interface's port.
    pub port: usize,
    /// The advert source.
    pub src: Ipv4Addr,
    /// The advertised addresses.
    pub vips: Vec<Ipv4Addr>,
    /// Every address set as master (advertised and excluded).
    addrs: Vec<Addr>,
    auth: Auth,
    checksum: Checksum,
    /// Second GARP burst, and the periodic refresh.
    garp_at: Option<Instant>,
    refresh_at: Option<Instant>,
    ip_id: u16,
    /// Adverts sent and taken in, transitions.
    pub sent: u64,
    /// Adverts that passed the checks.
    pub received: u64,
    /// Transitions since start.
    pub transitions: u64,
    /// Adverts for this instance ignored (bad auth, interval, …).
    pub ignored: u64,
    /// The last transition on the wall clock, and why.
    pub last: Option<(SystemTime, Why)>,
    /// Priority trackers add (or take away), and whether one is failing.
    pub track_weight: i32,
    /// A tracked interface or script with no weight is failing.
    pub track_fault: bool,
    /// Held at priority 1 while the director warms up.
    pub held: bool,
}

impl Run {
    /// Set up `conf` on `port` (index `port_index`).
    pub fn new(conf: Conf, port: &Port, port_index: usize, ifindex: impl Fn(&str) -> Option<u32>) -> Self {
        let src = conf.src_ip.unwrap_or(port.addr);
        let version = if conf.version == 3 {
            Version::V3
        } else {
            Version::V2
        };
        let params = Params {
            version,
            priority: conf.priority,
            interval_cs: conf.advert_int_cs,
            start_master: conf.state_master,
            preempt: conf.preempt,
            preempt_delay: Duration::from_millis(u64::from(conf.preempt_delay_ms)),
            down_adverts: conf.down_timer_adverts,
            addr: src,
        };
        let addrs = conf
            .vips
            .iter()
            .chain(&conf.excluded)
            .map(|v| Addr {
                ifindex: v.dev.as_deref().and_then(&ifindex).unwrap_or(port.ifindex),
                addr: v.addr,
                prefix: v.prefix,
                label: v.label.clone(),
            })
            .collect();
        Self {
            vips: conf.vips.iter().map(|v| v.addr).collect(),
            auth: conf.auth_pass.as_deref().map_or(Auth::None, Auth::pass),
            checksum: if conf.v3_checksum_as_v2 {
                Checksum::AsV2
            } else {
                Checksum::PseudoHeader
            },
            inst: Instance::new(params),
            conf,
            port: port_index,
            src,
            addrs,
            garp_at: None,
            refresh_at: None,
            ip_id: 0,
            sent: 0,
            received: 0,
            transitions: 0,
            ignored: 0,
            last: None,
            track_weight: 0,
            track_fault: false,
            held: false,
        }
    }

    /// What received adverts must match.
    pub fn expect(&self) -> packet::Expect<'_> {
        packet::Expect {
            version: self.inst.params().version,
            auth: self.auth,
            interval_cs: self.conf.advert_int_cs,
            checksum: self.checksum,
            peers: &self.conf.unicast_peers,
            addrs: &self.vips,
            own: self.src,
        }
    }

    /// Return the next time [`Self::due`] has work.
    pub fn deadline(&self) -> Option<Instant> {
        [self.inst.deadline(), self.garp_at, self.refresh_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// The timers due at `now`: the election's, and gratuitous ARP bursts.
    pub fn due(&mut self, now: Instant, port: &Port) -> Vec<Action> {
        if self.garp_at.is_some_and(|t| now >= t) {
            self.garp_at = None;
            self.garp(port, self.conf.garp_master_repeat);
        }
        if self.refresh_at.is_some_and(|t| now >= t) {
            self.refresh_at = Some(now + Duration::from_secs(u64::from(self.conf.garp_master_refresh)));
            self.garp(port, self.conf.garp_master_refresh_repeat);
        }
        if self.inst.deadline().is_some_and(|t| now >= t) {
            self.inst.on_timer(now)
        } else {
            Vec::new()
        }
    }

    /// Send an advert with `priority` (to the group, or to each peer).
    pub fn advertise(&mut self, port: &Port, priority: u8) {
        let advert = Advert {
            version: self.inst.params().version,
            vrid: self.conf.vrid,
            priority,
            interval_cs: self.conf.advert_int_cs,
            auth: self.auth,
            addrs: self.vips.clone(),
        };
        let (dsts, ttl) = if self.conf.unicast_peers.is_empty() {
            (vec![packet::GROUP], packet::TTL)
        } else {
            (self.conf.unicast_peers.clone(), self.conf.unicast_ttl)
        };
        for dst in dsts {
            // keepalived's ids count up and skip 0.
            self.ip_id = self.ip_id.wrapping_add(1).max(1);
            let msg = advert.encode(self.checksum, self.src, dst);
            match port.send(&packet::ip_packet(self.src, dst, ttl, self.ip_id, &msg), dst) {
                Ok(()) => self.sent += 1,
                Err(e) => log::warn!("vrrp: ({}) advert to {dst}: {e}", self.conf.name),
            }
        }
    }

    fn garp(&self, port: &Port, count: u32) {
        if let Err(e) = net::garp(
            &port.name,
            port.mac,
            &self.addrs.iter().map(|a| a.addr).collect::<Vec<_>>(),
            count,
        ) {
            log::warn!("vrrp: ({}) gratuitous ARP: {e}", self.conf.name);
        }
    }

    fn set_addrs(&self, add: bool) {
        for a in &self.addrs {
            if let Err(e) = net::set_addr(a, add) {
                let verb = if add { "add" } else { "remove" };
                log::error!("vrrp: ({}) {verb} {}/{}: {e}", self.conf.name, a.addr, a.prefix);
            }
        }
    }

    /// Carry out a transition: the log line, the addresses, the ARPs, the
    /// notify scripts.
    pub fn transition(&mut self, port: &Port, now: Instant, (from, to, why): (State, State, Why)) {
        // keepalived's own words, so log watchers keep working.
        // A fault is what an operator is paged for; the rest is news.
        let level = if to == State::Fault {
            log::Level::Warn
        } else {
            log::Level::Info
        };
        log::log!(
            level,
            "vrrp: ({}) Entering {} STATE ({})",
            self.conf.name,
            to.name(),
            why.name()
        );
        self.transitions += 1;
        self.last = Some((SystemTime::now(), why));
        if to == State::Master {
            self.set_addrs(true);
            self.garp(port, self.conf.garp_master_repeat);
            let delay = u64::from(self.conf.garp_master_delay);
            self.garp_at = (delay > 0).then(|| now + Duration::from_secs(delay));
            let refresh = u64::from(self.conf.garp_master_refresh);
            self.refresh_at = (refresh > 0).then(|| now + Duration::from_secs(refresh));
        } else if from == State::Master || from == State::Init {
            // From INIT too: addresses a killed run left behind go.
            self.set_addrs(false);
            self.garp_at = None;
            self.refresh_at = None;
        }
        let prio = self.inst.effective_priority();
        notify::transition(&self.conf.notify, "INSTANCE", &self.conf.name, to, prio);
    }
}
