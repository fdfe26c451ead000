//! Host and service names, as ipvsadm resolves them: `/etc/hosts` and
//! `/etc/services` (real save files say `-A -t localhost:http`, `-r
//! minion-one:http`). Reading those two files is this crate's only I/O; the
//! tables themselves are parsed from text, so tests give their own.

use std::net::IpAddr;
#[cfg(test)]
use std::net::Ipv4Addr;
use std::sync::OnceLock;

/// Name tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    hosts: Vec<(IpAddr, Vec<String>)>,
    services: Vec<(String, u16, String)>,
}

impl Names {
    /// Parse the text of an `/etc/hosts` and an `/etc/services`.
    pub fn parse(hosts: &str, services: &str) -> Self {
        let words = |line: &str| -> Vec<String> {
            line.split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        let hosts = hosts
            .lines()
            .filter_map(|l| {
                let w = words(l);
                let addr = w.first()?.parse().ok()?;
                (w.len() > 1).then(|| (addr, w[1..].to_vec()))
            })
            .collect();
        let services = services
            .lines()
            .flat_map(|l| {
                let w = words(l);
                let parsed = w.get(1).and_then(|pp| {
                    let (port, proto) = pp.split_once('/')?;
                    Some((port.parse::<u16>().ok()?, proto.to_string()))
                });
                match parsed {
                    // The name and its aliases all name the port.
                    Some((port, proto)) => {
                        let names: Vec<String> = std::iter::once(w[0].clone())
                            .chain(w[2..].iter().cloned())
                            .collect();
                        names.into_iter().map(|n| (n, port, proto.clone())).collect()
                    }
                    None => Vec::new(),
                }
            })
            .collect();
        Self { hosts, services }
    }

    /// Return the tables of this system, read once.
    pub fn system() -> &'static Names {
        static NAMES: OnceLock<Names> = OnceLock::new();
        NAMES.get_or_init(|| {
            let read = |p| std::fs::read_to_string(p).unwrap_or_default();
            Names::parse(&read("/etc/hosts"), &read("/etc/services"))
        })
    }

    /// Return the address of host `name`: its IPv4 address, else its IPv6
    /// one (as a resolver that prefers IPv4, like ipvsadm's).
    pub fn host(&self, name: &str) -> Option<IpAddr> {
        let mut named = self.hosts.iter().filter(|(_, n)| n.iter().any(|x| x == name));
        let first = named.clone().next().map(|(a, _)| *a)?;
        Some(named.find(|(a, _)| a.is_ipv4()).map_or(first, |(a, _)| *a))
    }

    /// Return the port of service `name` (TCP's, else UDP's).
    pub fn port(&self, name: &str) -> Option<u16> {
        let find = |proto: &str| {
            self.services
                .iter()
                .find(|(n, _, p)| n == name && p == proto)
                .map(|s| s.1)
        };
        find("tcp").or_else(|| find("udp"))
    }

    /// Return the first host name of `addr`.
    pub fn host_name(&self, addr: IpAddr) -> Option<&str> {
        self.hosts
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, n)| n[0].as_str())
    }

    /// Return the name of `port` for `proto` ("tcp" or "udp").
    pub fn port_name(&self, port: u16, proto: &str) -> Option<&str> {
        self.services
            .iter()
            .find(|(_, p, pr)| *p == port && pr == proto)
            .map(|(n, _, _)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "::1 localhost ip6-localhost\n2001:db8::6 six\n127.0.0.1 localhost\n10.0.0.11 minion-one m1 # the first\n# 10.0.0.99 gone\n";
    const SERVICES: &str = "http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP\nhttps 443/tcp\ndomain 53/udp\n";

    #[test]
    fn resolves_both_ways() {
        let n = Names::parse(HOSTS, SERVICES);
        assert_eq!(n.host("minion-one"), Some(Ipv4Addr::new(10, 0, 0, 11).into()));
        assert_eq!(n.host("m1"), Some(Ipv4Addr::new(10, 0, 0, 11).into()));
        assert_eq!(n.host("six"), Some("2001:db8::6".parse().unwrap()));
        assert_eq!(
            n.host("localhost"),
            Some(Ipv4Addr::LOCALHOST.into()),
            "IPv4 first"
        );
        assert_eq!(n.host("gone"), None);
        assert_eq!(
            (n.port("http"), n.port("www"), n.port("domain")),
            (Some(80), Some(80), Some(53))
        );
        assert_eq!(n.host_name(Ipv4Addr::LOCALHOST.into()), Some("localhost"));
        assert_eq!(n.port_name(80, "tcp"), Some("http"));
        assert_eq!(n.port_name(80, "udp"), None);
    }
}
