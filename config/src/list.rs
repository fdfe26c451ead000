//! The `-L -n` listing, laid out as ipvsadm 1.31 lays it out so that scripts
//! that parse `ipvsadm -Ln` parse ours.

use crate::ipvsadm::ListOpts;
use crate::{Names, RealServer, Rules, VirtualService};
use std::fmt::Write;
use std::net::Ipv4Addr;

/// Counters of one real server, summed over the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// ESTABLISHED connections.
    pub active: u64,
    /// Connections in other states.
    pub inactive: u64,
    /// Connections scheduled (`--stats` Conns).
    pub conns: u64,
    /// Packets client → server.
    pub in_pkts: u64,
    /// Packets server → client (NAT only: the others bypass the director).
    pub out_pkts: u64,
    /// Bytes client → server.
    pub in_bytes: u64,
    /// Bytes server → client.
    pub out_bytes: u64,
    /// Persistence templates pointing at the server.
    pub persist: u64,
    /// Rates as IPVS's estimator gives them (`--rate`): connections, packets
    /// in/out and bytes in/out per second.
    pub rates: [u64; 5],
}

impl std::ops::Add for Counts {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            active: self.active + o.active,
            inactive: self.inactive + o.inactive,
            conns: self.conns + o.conns,
            in_pkts: self.in_pkts + o.in_pkts,
            out_pkts: self.out_pkts + o.out_pkts,
            in_bytes: self.in_bytes + o.in_bytes,
            out_bytes: self.out_bytes + o.out_bytes,
            persist: self.persist + o.persist,
            rates: std::array::from_fn(|i| self.rates[i] + o.rates[i]),
        }
    }
}

/// Version ipvsadm prints in its header; ours follows the IPVS interface it
/// mirrors.
const IPVS_VERSION: &str = "1.2.1";

/// Services in ipvsadm's order (`ipvs_cmp_services`: protocol, address,
/// port), each with its servers in theirs (address, port).
fn sorted(rules: &Rules) -> Vec<(&VirtualService, Vec<&RealServer>)> {
    let mut v: Vec<_> = rules
        .services
        .iter()
        .map(|s| {
            let mut d: Vec<&RealServer> = s.dests.iter().collect();
            d.sort_by_key(|d| (d.addr, d.port));
            (s, d)
        })
        .collect();
    v.sort_by_key(|(s, _)| (s.key.fwmark, s.key.proto.number(), s.key.addr, s.key.port));
    v
}

/// ipvsadm's `print_largenum()`: 9 wide, or K/M/G/T above 8 digits unless
/// `--exact`.
fn largenum(out: &mut String, n: u64, exact: bool) {
    let _ = match n {
        _ if exact => write!(out, "{:>w$}", n, w = n.to_string().len().max(8) + 1),
        0..100_000_000 => write!(out, "{n:9}"),
        100_000_000..1_000_000_000 => write!(out, "{:8}K", n / 1_000),
        1_000_000_000..100_000_000_000 => write!(out, "{:8}M", n / 1_000_000),
        100_000_000_000..100_000_000_000_000 => write!(out, "{:8}G", n / 1_000_000_000),
        _ => write!(out, "{:8}T", n / 1_000_000_000_000),
    };
}

/// Render the listing as `ipvsadm -L -n` (or `--stats`) does; `counts(id)`
/// gives a real server's counters by id and `size` is the connection table
/// size shown in the header.
pub fn render_list(rules: &Rules, opts: &ListOpts, size: usize, counts: impl Fn(u32) -> Counts) -> String {
    let mut out = String::new();
    if opts.timeout {
        let (tcp, fin, udp) = rules.timeouts;
        return format!("Timeout (tcp tcpfin udp): {tcp} {fin} {udp}\n");
    }
    header(&mut out, opts, size);
    for (svc, dests) in sorted(rules) {
        if opts.service.is_some_and(|k| k != svc.key) {
            continue;
        }
        let mut name = if svc.key.fwmark != 0 {
            format!("FWM  {}", svc.key.fwmark)
        } else {
            format!("{}  {}:{}", svc.key.proto.name(), svc.key.addr, svc.key.port)
        };
        name.truncate(33);
        if opts.stats || opts.rate {
            numbers(&mut out, &name, &dests, opts, &counts);
            continue;
        }
        let _ = write!(out, "{name} {}", svc.scheduler);
        let flags = svc.sched_flags.names(svc.scheduler);
        if !flags.is_empty() {
            let _ = write!(out, " ({})", flags.join(","));
        }
        if let Some(p) = svc.persistence {
            let _ = write!(out, " persistent {p}");
            if svc.netmask != Ipv4Addr::BROADCAST {
                let _ = write!(out, " mask {}", svc.netmask);
            }
            // ipvsadm shows `ops` only inside the persistent block.
            if svc.ops {
                out.push_str(" ops");
            }
        }
        out.push('\n');
        for d in dests {
            let c = counts(d.id);
            let dname = format!("{}:{}", d.addr, d.port);
            let _ = if opts.thresholds {
                writeln!(
                    out,
                    "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                    d.u_threshold, d.l_threshold, c.active, c.inactive
                )
            } else if opts.persistent_conn {
                writeln!(
                    out,
                    "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                    d.weight, c.persist, c.active, c.inactive
                )
            } else {
                writeln!(
                    out,
                    "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                    d.fwd.name(),
                    d.weight,
                    c.active,
                    c.inactive
                )
            };
        }
    }
    out
}

/// The head of an `ipvsadm -L` listing of the kind `opts` asks for.
fn header(out: &mut String, opts: &ListOpts, size: usize) {
    // `write!` to a String cannot fail.
    let _ = writeln!(out, "IP Virtual Server version {IPVS_VERSION} (size={size})");
    if opts.stats {
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        );
    } else if opts.rate {
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        );
    } else if opts.thresholds {
        let _ = writeln!(
            out,
            "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        );
    } else if opts.persistent_conn {
        let _ = writeln!(
            out,
            "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
        );
    } else {
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    }
}

/// The rows of a `--stats` or `--rate` listing for one service `name`.
fn numbers(
    out: &mut String,
    name: &str,
    dests: &[&RealServer],
    opts: &ListOpts,
    counts: &impl Fn(u32) -> Counts,
) {
    let total = dests.iter().fold(Counts::default(), |t, d| t + counts(d.id));
    let _ = write!(out, "{name:<33}");
    if opts.stats {
        for n in [
            total.conns,
            total.in_pkts,
            total.out_pkts,
            total.in_bytes,
            total.out_bytes,
        ] {
            largenum(out, n, opts.exact);
        }
        out.push('\n');
        for d in dests {
            let c = counts(d.id);
            let _ = write!(out, "  -> {:<28}", format!("{}:{}", d.addr, d.port));
            for n in [c.conns, c.in_pkts, c.out_pkts, c.in_bytes, c.out_bytes] {
                largenum(out, n, opts.exact);
            }
            out.push('\n');
        }
        return;
    }
    for n in total.rates {
        largenum(out, n, opts.exact);
    }
    out.push('\n');
    for d in dests {
        let r = counts(d.id).rates;
        let _ = write!(
            out,
            "  -> {:<28} {:8} {:8} {:8}",
            format!("{}:{}", d.addr, d.port),
            r[0],
            r[1],
            r[2]
        );
        largenum(out, r[3], opts.exact);
        largenum(out, r[4], opts.exact);
        out.push('\n');
    }
}

/// Render the services, their servers and counters as JSON (`-L --json`):
/// `{"timeouts": {…}, "services": [{…, "dests": [{…}]}]}`, in ipvsadm's order.
pub fn render_json(rules: &Rules, counts: impl Fn(u32) -> Counts) -> String {
    let (tcp, tcpfin, udp) = rules.timeouts;
    let services = sorted(rules)
        .into_iter()
        .map(|(svc, dests)| JsonService {
            protocol: svc.key.proto.name(),
            address: svc.key.addr.to_string(),
            port: svc.key.port,
            scheduler: svc.scheduler.name(),
            flags: svc.sched_flags.names(svc.scheduler),
            persistence: svc.persistence,
            netmask: svc.netmask.to_string(),
            ops: svc.ops,
            dests: dests.iter().map(|d| JsonDest::new(d, &counts(d.id))).collect(),
        })
        .collect();
    let doc = JsonRules {
        timeouts: JsonTimeouts { tcp, tcpfin, udp },
        services,
    };
    // Plain data of strings and numbers: serialising it cannot fail.
    let mut out = serde_json::to_string(&doc).unwrap_or_default();
    out.push('\n');
    out
}

/// `-L --timeout --json`.
pub fn render_timeouts_json(rules: &Rules) -> String {
    let (tcp, tcpfin, udp) = rules.timeouts;
    let mut out = serde_json::to_string(&JsonTimeouts { tcp, tcpfin, udp }).unwrap_or_default();
    out.push('\n');
    out
}

#[derive(serde::Serialize)]
struct JsonRules {
    timeouts: JsonTimeouts,
    services: Vec<JsonService>,
}

#[derive(serde::Serialize)]
struct JsonTimeouts {
    tcp: u32,
    tcpfin: u32,
    udp: u32,
}

#[derive(serde::Serialize)]
struct JsonService {
    protocol: &'static str,
    address: String,
    port: u16,
    scheduler: &'static str,
    flags: Vec<String>,
    persistence: Option<u32>,
    netmask: String,
    ops: bool,
    dests: Vec<JsonDest>,
}

#[derive(serde::Serialize)]
struct JsonDest {
    address: String,
    port: u16,
    forward: &'static str,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    active: u64,
    inactive: u64,
    persistent: u64,
    conns: u64,
    in_pkts: u64,
    out_pkts: u64,
    in_bytes: u64,
    out_bytes: u64,
    cps: u64,
    in_pps: u64,
    out_pps: u64,
    in_bps: u64,
    out_bps: u64,
}

impl JsonDest {
    fn new(d: &RealServer, c: &Counts) -> Self {
        let [cps, in_pps, out_pps, in_bps, out_bps] = c.rates;
        Self {
            address: d.addr.to_string(),
            port: d.port,
            forward: d.fwd.name(),
            weight: d.weight,
            u_threshold: d.u_threshold,
            l_threshold: d.l_threshold,
            active: c.active,
            inactive: c.inactive,
            persistent: c.persist,
            conns: c.conns,
            in_pkts: c.in_pkts,
            out_pkts: c.out_pkts,
            in_bytes: c.in_bytes,
            out_bytes: c.out_bytes,
            cps,
            in_pps,
            out_pps,
            in_bps,
            out_bps,
        }
    }
}

/// Render the rules as `ipvsadm -S` (`-S -n` with `numeric`) writes them:
/// one `-A` line per service, then one `-a` line per real server, in
/// ipvsadm's order; names from `names` unless numeric.
pub fn render_save(rules: &Rules, numeric: bool, names: &Names) -> String {
    let mut out = String::new();
    let addr = |a: Ipv4Addr, port: u16, proto: &str| {
        if numeric {
            return format!("{a}:{port}");
        }
        let host = names.host_name(a).map_or_else(|| a.to_string(), str::to_string);
        let port = names
            .port_name(port, proto)
            .map_or_else(|| port.to_string(), str::to_string);
        format!("{host}:{port}")
    };
    for m in &rules.marks {
        out.push_str("--mark -A");
        if let Some(p) = m.proto {
            let _ = write!(out, " -p {}", p.name().to_lowercase());
        }
        let _ = write!(out, " -d {}/32", m.addr);
        if !m.ports.is_empty() {
            let ports: Vec<String> = m.ports.iter().map(u16::to_string).collect();
            let _ = write!(out, " --dports {}", ports.join(","));
        }
        let _ = writeln!(out, " -j MARK --set-mark {}", m.mark);
    }
    for (svc, dests) in sorted(rules) {
        let proto = if svc.key.proto == crate::Protocol::Tcp {
            "tcp"
        } else {
            "udp"
        };
        let flag = if proto == "tcp" { "-t" } else { "-u" };
        let vname = if svc.key.fwmark != 0 {
            format!("-f {}", svc.key.fwmark)
        } else {
            format!("{flag} {}", addr(svc.key.addr, svc.key.port, proto))
        };
        let _ = write!(out, "-A {vname} -s {}", svc.scheduler);
        if let Some(p) = svc.persistence {
            let _ = write!(out, " -p {p}");
            if svc.netmask != Ipv4Addr::BROADCAST {
                let _ = write!(out, " -M {}", svc.netmask);
            }
        }
        if svc.ops {
            out.push_str(" -o");
        }
        let flags = svc.sched_flags.names(svc.scheduler);
        if !flags.is_empty() {
            let _ = write!(out, " -b {}", flags.join(","));
        }
        out.push('\n');
        for d in dests {
            let _ = write!(
                out,
                "-a {vname} -r {} {} -w {}",
                addr(d.addr, d.port, proto),
                d.fwd.flag(),
                d.weight
            );
            if d.u_threshold != 0 {
                let _ = write!(out, " -x {}", d.u_threshold);
            }
            if d.l_threshold != 0 {
                let _ = write!(out, " -y {}", d.l_threshold);
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The LVS-NAT course lab, plus a persistent UDP service, entered out of
    /// ipvsadm's order to check the sort.
    const LAB: &str = "\
-A -u 172.16.1.100:53 -s rr -p 50
-a -u 172.16.1.100:53 -r 172.16.1.6:53 -m
-A -t 172.16.1.100:80 -s rr
-a -t 172.16.1.100:80 -r 172.16.1.6 -g -w 3
-a -t 172.16.1.100:80 -r 172.16.1.5 -m
";

    fn lab() -> Rules {
        Rules::from_commands("lab", LAB).unwrap()
    }

    fn counts(id: u32) -> Counts {
        Counts {
            active: u64::from(id) * 10,
            inactive: 1,
            conns: u64::from(id) * 100,
            in_pkts: 123_456_789 * u64::from(id),
            out_pkts: 0,
            in_bytes: 1_000 * u64::from(id),
            out_bytes: 42,
            persist: 0,
            rates: [u64::from(id), 20 * u64::from(id), 0, 2_000 * u64::from(id), 0],
        }
    }

    #[test]
    fn list_layout_matches_ipvsadm() {
        let got = render_list(&lab(), &ListOpts::default(), 4096, counts);
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  172.16.1.100:80 rr
  -> 172.16.1.5:80                Masq    1      30         1         
  -> 172.16.1.6:80                Route   3      20         1         
UDP  172.16.1.100:53 rr persistent 50
  -> 172.16.1.6:53                Masq    1      10         1         
";
        assert_eq!(got, want);
    }

    #[test]
    fn stats_layout_matches_ipvsadm() {
        let opts = ListOpts {
            stats: true,
            ..ListOpts::default()
        };
        let got = render_list(&lab(), &opts, 4096, counts);
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  172.16.1.100:80                   500  617283K        0     5000       84
  -> 172.16.1.5:80                     300  370370K        0     3000       42
  -> 172.16.1.6:80                     200  246913K        0     2000       42
UDP  172.16.1.100:53                   100  123456K        0     1000       42
  -> 172.16.1.6:53                     100  123456K        0     1000       42
";
        assert_eq!(got, want);
        let exact = render_list(&lab(), &ListOpts { exact: true, ..opts }, 4096, counts);
        assert!(
            exact.contains("  -> 172.16.1.5:80                     300 370370367"),
            "{exact}"
        );
    }

    #[test]
    fn thresholds_and_persistent_conn_layouts() {
        let rules = Rules::from_commands(
            "t",
            "-A -t 10.0.0.100:80 -s wlc -p\n-a -t 10.0.0.100:80 -r 10.0.0.11:80 -x 100 -y 50\n",
        )
        .unwrap();
        let th = render_list(
            &rules,
            &ListOpts {
                thresholds: true,
                ..ListOpts::default()
            },
            8,
            counts,
        );
        assert_eq!(
            th,
            "IP Virtual Server version 1.2.1 (size=8)\n\
             Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\n\
             TCP  10.0.0.100:80 wlc persistent 300\n\
             \x20 -> 10.0.0.11:80                 100        50         10         1         \n"
        );
        let pc = render_list(
            &rules,
            &ListOpts {
                persistent_conn: true,
                ..ListOpts::default()
            },
            8,
            |_| Counts {
                persist: 7,
                ..Counts::default()
            },
        );
        assert!(
            pc.contains("Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn "),
            "{pc}"
        );
        assert!(
            pc.contains("  -> 10.0.0.11:80                 1         7           0          0         \n"),
            "{pc}"
        );
    }

    #[test]
    fn json_listing() {
        let got = render_json(&lab(), counts);
        assert!(got.starts_with("{\"timeouts\":{\"tcp\":900,\"tcpfin\":120,\"udp\":300},\"services\":[{\"protocol\":\"TCP\",\"address\":\"172.16.1.100\",\"port\":80,\"scheduler\":\"rr\",\"flags\":[],\"persistence\":null"), "{got}");
        assert!(
            got.contains("{\"address\":\"172.16.1.5\",\"port\":80,\"forward\":\"Masq\",\"weight\":1,"),
            "{got}"
        );
        assert!(got.contains("\"persistence\":50"), "{got}");
        // Balanced braces and brackets: a JSON reader would take it.
        let depth = got.chars().try_fold(0i32, |d, c| match c {
            '{' | '[' => Some(d + 1),
            '}' | ']' => (d > 0).then(|| d - 1),
            _ => Some(d),
        });
        assert_eq!(depth, Some(0));
    }

    #[test]
    fn rate_layout_matches_ipvsadm() {
        let opts = ListOpts {
            rate: true,
            ..ListOpts::default()
        };
        let got = render_list(&lab(), &opts, 4096, counts);
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  172.16.1.100:80                     5      100        0    10000        0
  -> 172.16.1.5:80                       3       60        0     6000        0
  -> 172.16.1.6:80                       2       40        0     4000        0
UDP  172.16.1.100:53                     1       20        0     2000        0
  -> 172.16.1.6:53                       1       20        0     2000        0
";
        assert_eq!(got, want);
    }

    #[test]
    fn save_layout_and_round_trip() {
        let rules = lab();
        let saved = render_save(&rules, true, &Names::default());
        let want = "\
-A -t 172.16.1.100:80 -s rr
-a -t 172.16.1.100:80 -r 172.16.1.5:80 -m -w 1
-a -t 172.16.1.100:80 -r 172.16.1.6:80 -g -w 3
-A -u 172.16.1.100:53 -s rr -p 50
-a -u 172.16.1.100:53 -r 172.16.1.6:53 -m -w 1
";
        assert_eq!(saved, want);
        // -S | -C | -R gives the same rules (ids aside) and the same save.
        let mut restored = Rules::default();
        restored.apply_commands("saved", &saved).unwrap();
        assert_eq!(render_save(&restored, true, &Names::default()), saved);
        let none = |_| Counts::default();
        assert_eq!(
            render_list(&restored, &ListOpts::default(), 1, none),
            render_list(&rules, &ListOpts::default(), 1, none)
        );
    }

    #[test]
    fn fwmark_services_list_and_save_with_their_mark_rules() {
        let text = "\
--mark -A -p tcp -d 10.0.0.100/32 --dports 80,443 -j MARK --set-mark 7
-A -f 7 -s rr -p 300
-a -f 7 -r 10.0.0.11:0 -g -w 1
-A -t 10.0.0.100:22 -s rr
";
        let rules = Rules::from_commands("fw", text).unwrap();
        let listed = render_list(&rules, &ListOpts::default(), 1, |_| Counts::default());
        assert!(listed.ends_with(
            "TCP  10.0.0.100:22 rr\nFWM  7 rr persistent 300\n  -> 10.0.0.11:0                  Route   1      0          0         \n"
        ), "{listed}");
        let saved = render_save(&rules, true, &Names::default());
        assert_eq!(
            saved,
            "--mark -A -p tcp -d 10.0.0.100/32 --dports 80,443 -j MARK --set-mark 7\n\
             -A -t 10.0.0.100:22 -s rr\n-A -f 7 -s rr -p 300\n-a -f 7 -r 10.0.0.11:0 -g -w 1\n"
        );
        let mut again = rules.clone();
        again.apply_commands("s", "-C\n").unwrap();
        again.apply_commands("s", &saved).unwrap();
        assert_eq!(render_save(&again, true, &Names::default()), saved);
    }

    #[test]
    fn save_with_names_and_restore_resolves_them() {
        let names = Names::parse(
            "172.16.1.100 vip\n172.16.1.5 minion-one\n",
            "http 80/tcp\ndomain 53/udp\n",
        );
        let saved = render_save(&lab(), false, &names);
        assert!(
            saved.starts_with("-A -t vip:http -s rr\n-a -t vip:http -r minion-one:http -m -w 1\n"),
            "{saved}"
        );
    }

    #[test]
    fn a_bad_line_refuses_the_whole_batch() {
        let mut rules = lab();
        let before = rules.clone();
        let batch =
            "-A -t 10.0.0.1:80 -s rr\n\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w 1\n-a -t 10.0.0.9:80 -r 10.0.0.3\n";
        let err = rules.apply_commands("stdin", batch).unwrap_err();
        assert_eq!(err.to_string(), "stdin:4: Service not defined: TCP 10.0.0.9:80");
        assert_eq!(rules, before);
        let err = rules.apply_commands("stdin", "-L -n\n").unwrap_err();
        assert!(err.to_string().starts_with("stdin:1: only rule changes"), "{err}");
    }
}
