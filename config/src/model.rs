//! The rules model: what the director should do, independent of how.

use crate::Error;
use crate::ipvsadm::{Command, DestSpec, ServiceSpec};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Transport protocol of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (`-t`).
    #[doc(alias = "-t")]
    Tcp,
    /// UDP (`-u`).
    #[doc(alias = "-u")]
    Udp,
}

impl Protocol {
    /// Return the IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
        }
    }

    /// Return the name ipvsadm prints ("TCP", "UDP").
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }
}

/// Identify a virtual service: protocol, VIP and port — or a firewall mark
/// (`-f N`), when `fwmark` is not 0 and the other fields are unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// Protocol.
    pub proto: Protocol,
    /// Virtual IP; for a mark service, the unspecified address of its family
    /// (`-f N` is IPv4, `-f N -6` IPv6).
    pub addr: IpAddr,
    /// Virtual port.
    pub port: u16,
    /// Firewall mark of a mark service, else 0.
    pub fwmark: u32,
}

impl ServiceKey {
    /// Make the key of firewall-mark service `mark`.
    pub fn fwmark(mark: u32) -> Self {
        Self {
            proto: Protocol::Tcp,
            addr: Ipv4Addr::UNSPECIFIED.into(),
            port: 0,
            fwmark: mark,
        }
    }

    /// Make the key of IPv6 firewall-mark service `mark` (`-f N -6`).
    pub fn fwmark6(mark: u32) -> Self {
        Self {
            addr: Ipv6Addr::UNSPECIFIED.into(),
            ..Self::fwmark(mark)
        }
    }

    /// Return whether the service is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// Return the persistence netmask that keeps every client apart in this
    /// service's family (255.255.255.255, or /128).
    pub fn host_mask(&self) -> IpAddr {
        if self.is_ipv6() {
            Ipv6Addr::from(u128::MAX).into()
        } else {
            Ipv4Addr::BROADCAST.into()
        }
    }
}

/// Write `addr:port` as ipvsadm does: IPv6 addresses in brackets.
pub fn addr_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Return the prefix length of netmask `m` (IPv6 persistence masks are
/// given and shown as one).
pub fn prefix_len(m: IpAddr) -> u32 {
    match m {
        IpAddr::V4(a) => u32::from(a).leading_ones(),
        IpAddr::V6(a) => u128::from(a).leading_ones(),
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.fwmark, self.is_ipv6()) {
            (0, _) => write!(f, "{} {}", self.proto.name(), addr_port(self.addr, self.port)),
            (m, false) => write!(f, "FWM {m}"),
            (m, true) => write!(f, "FWM {m} IPv6"),
        }
    }
}

/// A mark rule: packets to `addr` (one of `ports`, any if empty) of
/// `proto` (either if `None`) get firewall mark `mark`, which selects the
/// fwmark service — what `iptables -t mangle … -j MARK --set-mark N` does
/// for IPVS, held by ferrovs because its frames skip netfilter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkRule {
    /// Protocol, or both.
    pub proto: Option<Protocol>,
    /// Destination address (a /32 or a /128).
    pub addr: IpAddr,
    /// Destination ports; empty means every port.
    pub ports: Vec<u16>,
    /// The mark.
    pub mark: u32,
}

/// How a packet reaches the real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FwdMethod {
    /// Direct routing: rewrite MACs only ("Route").
    #[doc(alias = "-g")]
    Dr,
    /// NAT: rewrite addresses and ports both ways ("Masq").
    #[doc(alias = "-m")]
    Nat,
    /// IP-in-IP tunnel ("Tunnel").
    #[doc(alias = "-i")]
    Tun,
}

impl FwdMethod {
    /// Return the word ipvsadm prints in its Forward column.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dr => "Route",
            Self::Nat => "Masq",
            Self::Tun => "Tunnel",
        }
    }

    /// Return the ipvsadm flag that selects the method.
    pub fn flag(self) -> &'static str {
        match self {
            Self::Dr => "-g",
            Self::Nat => "-m",
            Self::Tun => "-i",
        }
    }
}

/// A backend of a virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    /// Stable id, unique over the life of the rules; ids start at 1 so that 0
    /// never names a server.
    pub id: u32,
    /// Real server IP (RIP), of its service's family.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Forwarding method.
    pub fwd: FwdMethod,
    /// Weight; 0 is quiesced.
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub l_threshold: u32,
}

/// A virtual service and its real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualService {
    /// Protocol, VIP and port.
    pub key: ServiceKey,
    /// Scheduler name, as `-s` gave it (validated).
    pub scheduler: sched::Kind,
    /// Persistence timeout in seconds (`-p`), if persistent.
    pub persistence: Option<u32>,
    /// Persistence granularity (`-M`): 255.255.255.255 (IPv6: /128) is one
    /// client. An IPv6 service's mask is the prefix `-M` gave as a length.
    pub netmask: IpAddr,
    /// Scheduler flags (`-b`).
    pub sched_flags: sched::SchedFlags,
    /// One-packet scheduling (`-o`, UDP only).
    pub ops: bool,
    /// Real servers, in the order they were added.
    pub dests: Vec<RealServer>,
}

/// Every virtual service of the director.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Services, in the order they were added.
    pub services: Vec<VirtualService>,
    /// Mark rules for fwmark services, in the order they were added (the
    /// first that matches a packet gives its mark).
    pub marks: Vec<MarkRule>,
    /// Connection timeouts (tcp, tcpfin, udp) in seconds, as `ipvsadm --set`
    /// sets and `-L --timeout` shows them.
    pub timeouts: (u32, u32, u32),
    pub(crate) last_id: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            services: Vec::new(),
            marks: Vec::new(),
            // IPVS's defaults: ESTABLISHED 15 min, FIN_WAIT 2 min, UDP 5 min.
            timeouts: (900, 120, 300),
            last_id: 0,
        }
    }
}

impl Rules {
    /// Return every real server of every service, with its service's key.
    pub fn dests(&self) -> impl Iterator<Item = (&ServiceKey, &RealServer)> {
        self.services
            .iter()
            .flat_map(|s| s.dests.iter().map(move |d| (&s.key, d)))
    }

    /// Return the service with `key`.
    pub fn service(&self, key: &ServiceKey) -> Option<&VirtualService> {
        self.services.iter().find(|s| s.key == *key)
    }

    fn service_mut(&mut self, key: &ServiceKey) -> Result<&mut VirtualService, Error> {
        self.services
            .iter_mut()
            .find(|s| s.key == *key)
            .ok_or_else(|| Error::new(format!("Service not defined: {key}")))
    }

    /// Apply one rules-changing command; on error nothing changes.
    ///
    /// Listing commands change nothing and are accepted.
    ///
    /// # Errors
    /// The service or real server does not exist, or already exists.
    pub fn apply(&mut self, cmd: &Command) -> Result<(), Error> {
        let mut next = self.clone();
        next.apply_in_place(cmd)?;
        *self = next;
        Ok(())
    }

    /// Build rules from ipvsadm commands, one per line as `ipvsadm -S` writes
    /// them; blank lines and `#` comments are skipped.
    ///
    /// # Errors
    /// The first bad line, as `SOURCE:LINE: problem`; nothing is returned then.
    ///
    /// # Examples
    /// ```
    /// let rules = config::Rules::from_commands("rules", "-A -t 10.0.0.100:80 -s rr\n").unwrap();
    /// assert_eq!(rules.services.len(), 1);
    /// let err = config::Rules::from_commands("rules", "\n-A -t 10.0.0.100:80 -s nope\n").unwrap_err();
    /// assert!(err.to_string().starts_with("rules:2: unknown scheduler"));
    /// ```
    pub fn from_commands(source: &str, text: &str) -> Result<Self, Error> {
        let mut rules = Self::default();
        rules.apply_commands(source, text)?;
        Ok(rules)
    }

    /// Become `new` (a reloaded configuration) while keeping the identity of
    /// every real server that stays: a server with the same address and port
    /// in a service that stays keeps its id, so its connections keep flowing;
    /// only what differs is added, changed or removed.
    pub fn merge(&mut self, new: &Rules) {
        let mut services = Vec::with_capacity(new.services.len());
        for ns in &new.services {
            let old = self.services.iter().find(|s| s.key == ns.key);
            let mut svc = ns.clone();
            svc.dests = ns
                .dests
                .iter()
                .map(|nd| {
                    let id = old
                        .and_then(|o| o.dests.iter().find(|d| d.addr == nd.addr && d.port == nd.port))
                        .map_or_else(
                            || {
                                self.last_id += 1;
                                self.last_id
                            },
                            |d| d.id,
                        );
                    RealServer { id, ..nd.clone() }
                })
                .collect();
            services.push(svc);
        }
        self.services = services;
        self.marks = new.marks.clone();
        self.timeouts = new.timeouts;
    }

    /// Apply ipvsadm commands, one per line (`ipvsadm -R`), all or nothing:
    /// on error the rules are as they were and the error names the line.
    ///
    /// # Errors
    /// The first bad line, as `SOURCE:LINE: problem`.
    pub fn apply_commands(&mut self, source: &str, text: &str) -> Result<usize, Error> {
        let mut next = self.clone();
        let mut applied = 0;
        for (i, line) in text.lines().enumerate() {
            let mut words: Vec<&str> = line.split_whitespace().collect();
            // Save files from scripts sometimes keep the program name.
            if words.first() == Some(&"ipvsadm") {
                words.remove(0);
            }
            if words.is_empty() || words[0].starts_with('#') {
                continue;
            }
            let cmd = crate::ipvsadm::parse(&words).map_err(|e| e.at(source, i + 1))?;
            if !cmd.changes_rules() || cmd == Command::Restore {
                return Err(Error::new("only rule changes can be restored").at(source, i + 1));
            }
            next.apply_in_place(&cmd).map_err(|e| e.at(source, i + 1))?;
            applied += 1;
        }
        *self = next;
        Ok(applied)
    }

    fn apply_in_place(&mut self, cmd: &Command) -> Result<(), Error> {
        match cmd {
            Command::AddService(spec) => {
                if self.service(&spec.key).is_some() {
                    return Err(Error::new(format!("Service already exists: {}", spec.key)));
                }
                // ipvsadm's default scheduler is wlc.
                let scheduler = spec.scheduler.unwrap_or(sched::Kind::Wlc);
                self.services.push(VirtualService {
                    key: spec.key,
                    scheduler,
                    persistence: spec.persistence,
                    netmask: spec.netmask.unwrap_or(spec.key.host_mask()),
                    sched_flags: spec.sched_flags.unwrap_or_default(),
                    ops: spec.ops,
                    dests: Vec::new(),
                });
            }
            Command::EditService(spec) => {
                let svc = self.service_mut(&spec.key)?;
                if let Some(s) = spec.scheduler {
                    svc.scheduler = s;
                }
                if let Some(f) = spec.sched_flags {
                    svc.sched_flags = f;
                }
                svc.ops = spec.ops;
                svc.persistence = spec.persistence;
                svc.netmask = spec.netmask.unwrap_or(spec.key.host_mask());
            }
            Command::DelService(key) => {
                self.service_mut(key)?;
                self.services.retain(|s| s.key != *key);
            }
            Command::AddDest(key, d) => {
                let id = self.last_id + 1;
                let svc = self.service_mut(key)?;
                let port = d.port.unwrap_or(svc.key.port);
                if d.addr.is_ipv6() != svc.key.is_ipv6() {
                    // IPVS mixes families only for tunnels (IPv6 servers
                    // behind an IPv4 VIP); ferrovs does not.
                    return Err(Error::new(format!(
                        "real server {} is not of the service's address family \
                         (mixing IPv4 and IPv6 is not supported)",
                        d.addr
                    )));
                }
                if svc.dests.iter().any(|r| r.addr == d.addr && r.port == port) {
                    return Err(Error::new(format!(
                        "Destination already exists: {}",
                        addr_port(d.addr, port)
                    )));
                }
                svc.dests.push(RealServer {
                    id,
                    addr: d.addr,
                    port,
                    fwd: d.fwd.unwrap_or(FwdMethod::Dr),
                    weight: d.weight.unwrap_or(1),
                    u_threshold: d.u_threshold.unwrap_or(0),
                    l_threshold: d.l_threshold.unwrap_or(0),
                });
                self.last_id = id;
            }
            Command::EditDest(key, d) => {
                let dest = find_dest(self.service_mut(key)?, d)?;
                let DestSpec {
                    fwd,
                    weight,
                    u_threshold,
                    l_threshold,
                    ..
                } = *d;
                dest.fwd = fwd.unwrap_or(dest.fwd);
                dest.weight = weight.unwrap_or(dest.weight);
                dest.u_threshold = u_threshold.unwrap_or(dest.u_threshold);
                dest.l_threshold = l_threshold.unwrap_or(dest.l_threshold);
            }
            Command::DelDest(key, d) => {
                let svc = self.service_mut(key)?;
                let port = find_dest(svc, d)?.port;
                svc.dests.retain(|r| !(r.addr == d.addr && r.port == port));
            }
            // -C clears the mark rules too: they are saved with the services
            // (-S), so -S | -C | -R gives the same rules back.
            Command::Clear => {
                self.services.clear();
                self.marks.clear();
            }
            Command::List(_) | Command::Save { .. } | Command::Restore | Command::Zero(_) => {}
            Command::Mark { add: true, rule } => {
                if self.marks.contains(rule) {
                    return Err(Error::new("Mark rule already exists"));
                }
                self.marks.push(rule.clone());
            }
            Command::Mark { add: false, rule } => {
                let before = self.marks.len();
                self.marks.retain(|m| m != rule);
                if self.marks.len() == before {
                    return Err(Error::new("No such mark rule"));
                }
            }
            Command::SetTimeouts(tcp, tcpfin, udp) => {
                // As ipvsadm: 0 leaves a value as it is.
                for (slot, v) in [&mut self.timeouts.0, &mut self.timeouts.1, &mut self.timeouts.2]
                    .into_iter()
                    .zip([*tcp, *tcpfin, *udp])
                {
                    if v != 0 {
                        *slot = v;
                    }
                }
            }
        }
        Ok(())
    }
}

fn find_dest<'a>(svc: &'a mut VirtualService, d: &DestSpec) -> Result<&'a mut RealServer, Error> {
    let port = d.port.unwrap_or(svc.key.port);
    svc.dests
        .iter_mut()
        .find(|r| r.addr == d.addr && r.port == port)
        .ok_or_else(|| Error::new(format!("No such destination: {}", addr_port(d.addr, port))))
}

/// Build a service spec with just a key (tests and callers that only need one).
impl From<ServiceKey> for ServiceSpec {
    fn from(key: ServiceKey) -> Self {
        Self {
            key,
            scheduler: None,
            persistence: None,
            netmask: None,
            sched_flags: None,
            ops: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvsadm::parse;

    fn run(rules: &mut Rules, line: &str) -> Result<(), Error> {
        let args: Vec<&str> = line.split_whitespace().collect();
        rules.apply(&parse(&args)?)
    }

    #[test]
    fn add_service_and_servers() {
        let mut r = Rules::default();
        run(&mut r, "-A -t 10.0.0.100:80 -s rr").unwrap();
        run(&mut r, "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1").unwrap();
        run(&mut r, "-a -t 10.0.0.100:80 -r 10.0.0.12 -g -w 3").unwrap();
        let s = &r.services[0];
        assert_eq!(s.scheduler, "rr");
        assert_eq!(s.dests.len(), 2);
        assert_eq!((s.dests[1].port, s.dests[1].weight), (80, 3));
        assert_eq!((s.dests[0].id, s.dests[1].id), (1, 2));
    }

    #[test]
    fn refused_changes_leave_rules_untouched() {
        let mut r = Rules::default();
        run(&mut r, "-A -t 10.0.0.100:80 -s rr").unwrap();
        let before = r.clone();
        let e = run(&mut r, "-a -t 10.0.0.200:80 -r 10.0.0.11:80 -g").unwrap_err();
        assert!(e.problem.contains("Service not defined"), "{e}");
        let e = run(&mut r, "-A -t 10.0.0.100:80 -s rr").unwrap_err();
        assert!(e.problem.contains("already exists"), "{e}");
        assert_eq!(r, before);
    }

    #[test]
    fn edit_and_delete_servers() {
        let mut r = Rules::default();
        run(&mut r, "-A -u 10.0.0.100:53 -s rr").unwrap();
        run(&mut r, "-a -u 10.0.0.100:53 -r 10.0.0.11 -w 2").unwrap();
        run(&mut r, "-e -u 10.0.0.100:53 -r 10.0.0.11 -w 0").unwrap();
        assert_eq!(r.services[0].dests[0].weight, 0);
        run(&mut r, "-d -u 10.0.0.100:53 -r 10.0.0.11").unwrap();
        assert!(r.services[0].dests.is_empty());
        assert!(run(&mut r, "-d -u 10.0.0.100:53 -r 10.0.0.11").is_err());
        // Ids are never reused, so old connections never name a new server.
        run(&mut r, "-a -u 10.0.0.100:53 -r 10.0.0.11").unwrap();
        assert_eq!(r.services[0].dests[0].id, 2);
    }

    #[test]
    fn merge_keeps_ids_of_servers_that_stay() {
        let mut r = Rules::default();
        run(&mut r, "-A -t 10.0.0.100:80 -s rr").unwrap();
        run(&mut r, "-a -t 10.0.0.100:80 -r 10.0.0.11 -w 1").unwrap();
        run(&mut r, "-a -t 10.0.0.100:80 -r 10.0.0.12 -w 1").unwrap();
        let new = Rules::from_commands(
            "new",
            "-A -t 10.0.0.100:80 -s wlc\n-a -t 10.0.0.100:80 -r 10.0.0.12 -w 5\n-a -t 10.0.0.100:80 -r 10.0.0.13\n",
        )
        .unwrap();
        r.merge(&new);
        let s = &r.services[0];
        assert_eq!(s.scheduler, "wlc");
        let ids: Vec<(IpAddr, u32, u32)> = s.dests.iter().map(|d| (d.addr, d.id, d.weight)).collect();
        assert_eq!(
            ids,
            [
                (Ipv4Addr::new(10, 0, 0, 12).into(), 2, 5),
                (Ipv4Addr::new(10, 0, 0, 13).into(), 3, 1)
            ]
        );
    }

    #[test]
    fn delete_service_and_clear() {
        let mut r = Rules::default();
        run(&mut r, "-A -t 10.0.0.100:80 -s rr").unwrap();
        run(&mut r, "-A -t 10.0.0.100:443 -s rr").unwrap();
        run(&mut r, "-D -t 10.0.0.100:80").unwrap();
        assert_eq!(r.services.len(), 1);
        run(&mut r, "-C").unwrap();
        assert!(r.services.is_empty());
    }
}
