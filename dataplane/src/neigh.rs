//! Real-server MACs from the kernel's neighbour table (control side).
//!
//! DR and the first hop of NAT/TUN need the RS's MAC. The operator never types
//! it: we read the kernel's IPv4 neighbour table of the director's namespace
//! (`/proc/net/arp`), ask the kernel to resolve an address it lacks by sending
//! it one empty UDP datagram (the kernel ARPs before it can send), and re-read
//! the table periodically so a changed MAC is followed.

use hashbrown::HashMap;
use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;

/// `ATF_COM`: the entry is complete (a MAC is known).
const ATF_COM: u32 = 0x2;
/// Port the resolution datagram goes to: discard.
const SOLICIT_PORT: u16 = 9;

/// A copy of the neighbour table for the director's interfaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Neighbours {
    macs: HashMap<Ipv4Addr, ([u8; 6], u8)>,
}

impl Neighbours {
    /// Read the complete entries of `ifnames` from `/proc/net/arp`.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn read(ifnames: &[String]) -> io::Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string("/proc/net/arp")?, ifnames))
    }

    /// Parse the text of `/proc/net/arp`, keeping complete entries of
    /// `ifnames`, each with the index of its interface in `ifnames`.
    pub fn parse(text: &str, ifnames: &[String]) -> Self {
        let macs = text
            .lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let [ip, _hw, flags, mac, _mask, dev] = f[..] else {
                    return None;
                };
                let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
                let link = ifnames.iter().position(|n| n == dev)?;
                if flags & ATF_COM == 0 {
                    return None;
                }
                Some((ip.parse().ok()?, (parse_mac(mac)?, link as u8)))
            })
            .collect();
        Self { macs }
    }

    /// Return the MAC of `addr` and the link it is on, if known.
    pub fn mac(&self, addr: Ipv4Addr) -> Option<([u8; 6], u8)> {
        self.macs.get(&addr).copied()
    }
}

/// Ask the kernel to resolve `addr` by sending it one empty datagram.
///
/// # Errors
/// The socket cannot be made or the send fails at once (no route).
pub fn solicit(addr: Ipv4Addr) -> io::Result<()> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
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
pub fn mtu(ifname: &str) -> io::Result<u16> {
    let text = std::fs::read_to_string(Path::new("/sys/class/net").join(ifname).join("mtu"))?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad mtu"))
}

/// Return the first IPv4 address of interface `ifname` (host order), as
/// `ip -4 -o addr show dev IF` lists it, if it has one.
///
/// # Errors
/// `ip` could not be run.
pub fn ipv4(ifname: &str) -> io::Result<Option<u32>> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", ifname])
        .output()?;
    Ok(parse_ip_addr(&String::from_utf8_lossy(&out.stdout)))
}

/// Parse the first `inet A.B.C.D/N` of `ip -o addr` output.
fn parse_ip_addr(text: &str) -> Option<u32> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == "inet")?;
    let addr: Ipv4Addr = words.next()?.split('/').next()?.parse().ok()?;
    Some(u32::from(addr))
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

    const ARP: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
10.0.0.11        0x1         0x2         02:00:00:00:00:11     *        eth0
10.0.0.12        0x1         0x0         00:00:00:00:00:00     *        eth0
10.0.0.13        0x1         0x2         02:00:00:00:00:13     *        eth1
";

    #[test]
    fn keeps_complete_entries_of_the_interface() {
        let n = Neighbours::parse(ARP, &["eth0".to_string()]);
        assert_eq!(
            n.mac(Ipv4Addr::new(10, 0, 0, 11)),
            Some(([2, 0, 0, 0, 0, 0x11], 0))
        );
        assert_eq!(n.mac(Ipv4Addr::new(10, 0, 0, 12)), None, "incomplete entry");
        assert_eq!(n.mac(Ipv4Addr::new(10, 0, 0, 13)), None, "other interface");
        let both = Neighbours::parse(ARP, &["eth0".to_string(), "eth1".to_string()]);
        assert_eq!(
            both.mac(Ipv4Addr::new(10, 0, 0, 13)),
            Some(([2, 0, 0, 0, 0, 0x13], 1))
        );
    }

    #[test]
    fn ip_addr_output() {
        let line = "2: eth1    inet 10.98.0.1/24 scope global eth1\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(parse_ip_addr(line), Some(0x0a62_0001));
        assert_eq!(parse_ip_addr(""), None);
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
