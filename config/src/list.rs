//! The `-L -n` listing, laid out as ipvsadm 1.31 lays it out so that scripts
//! that parse `ipvsadm -Ln` parse ours.

use crate::Rules;
use crate::ipvsadm::ListOpts;
use std::fmt::Write;

/// Connection counts of one real server, summed over the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// ESTABLISHED connections.
    pub active: u64,
    /// Connections in other states.
    pub inactive: u64,
}

/// Version ipvsadm prints in its header; ours follows the IPVS interface it
/// mirrors.
const IPVS_VERSION: &str = "1.2.1";

/// Render the listing; `counts(id)` gives a real server's counts by id and
/// `size` is the connection table size shown in the header.
pub fn render_list(rules: &Rules, opts: &ListOpts, size: usize, counts: impl Fn(u32) -> Counts) -> String {
    let mut out = String::new();
    if opts.timeout {
        let (tcp, fin, udp) = rules.timeouts;
        return format!("Timeout (tcp tcpfin udp): {tcp} {fin} {udp}\n");
    }
    // `write!` to a String cannot fail.
    let _ = writeln!(out, "IP Virtual Server version {IPVS_VERSION} (size={size})");
    out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
    out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    for svc in &rules.services {
        if opts.service.is_some_and(|k| k != svc.key) {
            continue;
        }
        let _ = write!(
            out,
            "{}  {}:{} {}",
            svc.key.proto.name(),
            svc.key.addr,
            svc.key.port,
            svc.scheduler
        );
        let flags = svc.sched_flags.names(&svc.scheduler);
        if !flags.is_empty() {
            let _ = write!(out, " ({})", flags.join(","));
        }
        if let Some(p) = svc.persistence {
            let _ = write!(out, " persistent {p}");
            if svc.netmask != std::net::Ipv4Addr::BROADCAST {
                let _ = write!(out, " mask {}", svc.netmask);
            }
        }
        out.push('\n');
        for d in &svc.dests {
            let c = counts(d.id);
            let _ = writeln!(
                out,
                "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                format!("{}:{}", d.addr, d.port),
                d.fwd.name(),
                d.weight,
                c.active,
                c.inactive
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvsadm::parse;

    #[test]
    fn layout_matches_ipvsadm() {
        let mut r = Rules::default();
        for line in [
            "-A -t 172.16.1.100:80 -s rr",
            "-a -t 172.16.1.100:80 -r 172.16.1.5 -m",
            "-a -t 172.16.1.100:80 -r 172.16.1.6 -g -w 3",
            "-A -u 172.16.1.100:53 -s rr -p 50",
        ] {
            r.apply(&parse(&line.split_whitespace().collect::<Vec<_>>()).unwrap())
                .unwrap();
        }
        let got = render_list(&r, &ListOpts::default(), 4096, |id| Counts {
            active: u64::from(id) * 10,
            inactive: 1,
        });
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  172.16.1.100:80 rr
  -> 172.16.1.5:80                Masq    1      10         1         
  -> 172.16.1.6:80                Route   3      20         1         
UDP  172.16.1.100:53 rr persistent 50
";
        assert_eq!(got, want);
    }
}
