//! The `-L -n` listing, laid out as ipvsadm 1.31 lays it out so that scripts
//! that parse `ipvsadm -Ln` parse ours.

use crate::ipvsadm::ListOpts;
use crate::{Names, RealServer, Rules, VirtualService};
use std::fmt::Write;
use std::net::IpAddr;

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

/// Services in ipvsadm's order (`ipvs_cmp_services`: mark, family,
/// protocol, address, port), each with its servers in theirs (address,
/// port).
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
    v.sort_by_key(|(s, _)| {
        let k = &s.key;
        (k.fwmark, k.is_ipv6(), k.proto.number(), k.addr, k.port)
    });
    v
}

/// A service as `-L` names it: `TCP  VIP:PORT`, `FWM  N` (` IPv6` after an
/// IPv6 mark); cut at 33 characters for IPv4 only, as ipvsadm does.
fn service_name(k: &crate::ServiceKey) -> String {
    let mut name = match (k.fwmark, k.is_ipv6()) {
        (0, _) => format!("{:<4} {}", k.proto.name(), crate::addr_port(k.addr, k.port)),
        (m, false) => format!("FWM  {m}"),
        (m, true) => format!("FWM  {m} IPv6"),
    };
    if !k.is_ipv6() {
        name.truncate(33);
    }
    name
}

/// A real server as `-L` names it: cut at 28 characters for IPv4 only.
fn dest_name(d: &RealServer) -> String {
    let mut name = crate::addr_port(d.addr, d.port);
    if d.addr.is_ipv4() {
        name.truncate(28);
    }
    name
}

/// A persistence netmask as ipvsadm shows it: dotted for IPv4, a prefix
/// length for IPv6.
fn netmask_text(m: IpAddr) -> String {
    match m {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(_) => crate::prefix_len(m).to_string(),
    }
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
        let name = service_name(&svc.key);
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
            if svc.netmask != svc.key.host_mask() {
                let _ = write!(out, " mask {}", netmask_text(svc.netmask));
            }
            // ipvsadm shows `ops` only inside the persistent block.
            if svc.ops {
                out.push_str(" ops");
            }
        }
        out.push('\n');
        for d in dests {
            let c = counts(d.id);
            let dname = dest_name(d);
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
            let _ = write!(out, "  -> {:<28}", dest_name(d));
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
        let _ = write!(out, "  -> {:<28} {:8} {:8} {:8}", dest_name(d), r[0], r[1], r[2]);
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
            netmask: netmask_text(svc.netmask),
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
    let addr = |a: IpAddr, port: u16, proto: &str| {
        if numeric {
            return crate::addr_port(a, port);
        }
        let host = names.host_name(a).map_or_else(|| a.to_string(), str::to_string);
        let port = names
            .port_name(port, proto)
            .map_or_else(|| port.to_string(), str::to_string);
        if a.is_ipv6() {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    };
    for m in &rules.marks {
        out.push_str("--mark -A");
        if let Some(p) = m.proto {
            let _ = write!(out, " -p {}", p.name().to_lowercase());
        }
        let _ = write!(out, " -d {}/{}", m.addr, if m.addr.is_ipv6() { 128 } else { 32 });
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
            let six = if svc.key.is_ipv6() { " -6" } else { "" };
            format!("-f {}{six}", svc.key.fwmark)
        } else {
            format!("{flag} {}", addr(svc.key.addr, svc.key.port, proto))
        };
        let _ = write!(out, "-A {vname} -s {}", svc.scheduler);
        if let Some(p) = svc.persistence {
            let _ = write!(out, " -p {p}");
            if svc.netmask != svc.key.host_mask() {
                let _ = write!(out, " -M {}", netmask_text(svc.netmask));
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
mod tests;
