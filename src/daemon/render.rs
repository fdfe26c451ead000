//! What the control socket answers with, as text or JSON: the connection
//! table as `ipvsadm -Lnc` lays it out, the workers' counters, and the VRRP
//! instances.
//!
//! Owns: layouts. Must not touch: the rules or the workers (callers hand in
//! what to render).

use dataplane::WorkerStats;
use dataplane::worker::ConnInfo;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `addr:port` as ipvsadm writes it (IPv6 in brackets).
fn addr(a: IpAddr, p: u16) -> String {
    config::addr_port(a, p)
}

/// A connection's real server: the unspecified address of its family once
/// the server is deleted, as the kernel shows it.
fn dest(c: &ConnInfo) -> String {
    let none = match c.vip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    addr(c.rip.unwrap_or(none), c.rport)
}

/// A fwmark service's templates span protocols: ipvsadm shows them as IP.
fn proto(c: &ConnInfo) -> &'static str {
    match c.proto {
        6 => "TCP",
        17 => "UDP",
        _ => "IP",
    }
}

fn state(c: &ConnInfo) -> &'static str {
    if c.template { "NONE" } else { c.state.name() }
}

/// One connection of `-L -c --json`.
#[derive(serde::Serialize)]
struct JsonConn {
    protocol: &'static str,
    expire: u32,
    state: &'static str,
    source: String,
    #[serde(rename = "virtual")]
    vaddr: String,
    destination: String,
    template: bool,
    offloaded: bool,
}

#[derive(serde::Serialize)]
struct JsonConns {
    connections: Vec<JsonConn>,
}

/// Render connections as `ipvsadm -Lnc` lays them out (or as JSON).
pub fn conns(rows: &[ConnInfo], json: bool) -> String {
    if json {
        let doc = JsonConns {
            connections: rows
                .iter()
                .map(|c| JsonConn {
                    protocol: proto(c),
                    expire: c.expires_in,
                    state: state(c),
                    source: addr(c.cip, c.cport),
                    vaddr: addr(c.vip, c.vport),
                    destination: dest(c),
                    template: c.template,
                    offloaded: c.offloaded,
                })
                .collect(),
        };
        // Strings and numbers only: serialising cannot fail.
        let mut out = serde_json::to_string(&doc).unwrap_or_default();
        out.push('\n');
        return out;
    }
    let mut out = String::from(
        "IPVS connection entries\npro expire state       source             virtual            destination\n",
    );
    for c in rows {
        let _ = writeln!(
            out,
            "{:<3} {:02}:{:02}  {:<11} {:<18} {:<18} {}",
            proto(c),
            c.expires_in / 60,
            c.expires_in % 60,
            state(c),
            addr(c.cip, c.cport),
            addr(c.vip, c.vport),
            dest(c)
        );
    }
    out
}

/// `-L --vrrp`: one row per instance, then the ignored adverts by reason;
/// `now` (seconds since the epoch) dates the last transitions.
pub fn vrrp(list: &[crate::vrrp::Status], ignored: &[(&'static str, u64)], json: bool, now: u64) -> String {
    if json {
        let ignored: serde_json::Map<String, serde_json::Value> = ignored
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).into()))
            .collect();
        let v = serde_json::json!({ "instances": list, "ignored": ignored });
        return format!("{v}\n");
    }
    let mut out = format!(
        "{:<16} {:<10} {:>4} {:<7} {:>4} {:>4} {:<15} {:>7} {:>6} {:>8} {:>8}  {}\n",
        "Instance",
        "Interface",
        "VRID",
        "State",
        "Prio",
        "Eff",
        "Master",
        "Advert",
        "Trans",
        "Sent",
        "Recv",
        "Last transition"
    );
    for s in list {
        let last = match (s.last_transition, s.last_reason) {
            (Some(t), Some(why)) => format!("{}s ago ({why})", now.saturating_sub(t)),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<16} {:<10} {:>4} {:<7} {:>4} {:>4} {:<15} {:>6.2}s {:>6} {:>8} {:>8}  {last}",
            s.name,
            s.interface,
            s.vrid,
            s.state.name(),
            s.priority,
            s.effective_priority,
            s.master.as_deref().unwrap_or("-"),
            f64::from(s.advert_int_cs) / 100.0,
            s.transitions,
            s.adverts_sent,
            s.adverts_received,
        );
    }
    let bad: Vec<String> = ignored
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if !bad.is_empty() {
        let _ = writeln!(out, "ignored adverts: {}", bad.join(" "));
    }
    out
}

/// Every counter of `stats`, summed: frames, events, drops by reason.
fn counter_values<'a>(stats: impl Iterator<Item = &'a WorkerStats> + Clone) -> Vec<(&'static str, u64)> {
    let sum = |f: &dyn Fn(&WorkerStats) -> u64| stats.clone().map(f).sum::<u64>();
    let events: [(&str, u64); 17] = [
        ("rx", sum(&|s| s.rx.get())),
        ("tx", sum(&|s| s.tx.get())),
        ("handoffs", sum(&|s| s.handoffs.get())),
        ("handoff_drops", sum(&|s| s.handoff_drops.get())),
        ("table_full", sum(&|s| s.table_full.get())),
        ("frag_needed", sum(&|s| s.frag_needed.get())),
        ("csum_completed", sum(&|s| s.csum_completed.get())),
        ("frags_held", sum(&|s| s.frags_held.get())),
        ("icmp_errors", sum(&|s| s.icmp_errors.get())),
        ("sync_sent", sum(&|s| s.sync_sent.get())),
        ("sync_drops", sum(&|s| s.sync_drops.get())),
        ("sync_learnt", sum(&|s| s.sync_learnt.get())),
        ("sync_unbound", sum(&|s| s.sync_unbound.get())),
        ("fast_pkts", sum(&|s| s.fast_pkts.get())),
        ("fast_offloads", sum(&|s| s.fast_offloads.get())),
        ("fast_removals", sum(&|s| s.fast_removals.get())),
        ("fast_drops", sum(&|s| s.fast_drops.get())),
    ];
    let drops = dataplane::Reason::ALL.map(|r| (r.name(), sum(&|s| s.drops(r))));
    events.into_iter().chain(drops).collect()
}

/// One line of counters: rx and tx, then every other that is not 0.
pub fn counters<'a>(stats: impl Iterator<Item = &'a WorkerStats> + Clone) -> String {
    let values = counter_values(stats);
    let mut line = format!("rx {} tx {}", values[0].1, values[1].1);
    for (name, n) in values.into_iter().skip(2) {
        if n > 0 {
            let _ = write!(line, " {name} {n}");
        }
    }
    line
}

/// `ferrovs --counters --json`: every worker's counters (all of them, 0s
/// included), their sum, and the fast path's.
pub fn counters_json<'a>(
    stats: impl Iterator<Item = &'a WorkerStats> + Clone,
    fast: Option<&super::fast::KeeperStats>,
) -> String {
    let object = |values: Vec<(&str, u64)>| {
        serde_json::Value::Object(
            values
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into()))
                .collect(),
        )
    };
    let workers: Vec<serde_json::Value> = stats
        .clone()
        .map(|w| object(counter_values(std::iter::once(w))))
        .collect();
    let mut out = serde_json::json!({ "workers": workers, "total": object(counter_values(stats)) });
    if let Some(f) = fast {
        out["fast_path"] = f.json();
    }
    out.to_string() + "\n"
}

/// `ferrovs --counters`: every worker's counters, one line each, then their
/// sum.
pub fn counters_table<'a>(stats: impl Iterator<Item = &'a WorkerStats> + Clone) -> String {
    let mut out = String::new();
    for (q, w) in stats.clone().enumerate() {
        let _ = writeln!(out, "worker {q}: {}", counters(std::iter::once(w)));
    }
    let _ = writeln!(out, "total: {}", counters(stats));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack::ConnState;

    #[test]
    fn connection_listing_matches_ipvsadm_lnc() {
        let row = |template, state, expires_in| ConnInfo {
            proto: 6,
            cip: Ipv4Addr::from(0x0a0f_9066).into(),
            cport: 43614,
            vip: Ipv4Addr::from(0x0a0f_3ed0).into(),
            vport: 19080,
            rip: Some(Ipv4Addr::from(0x0a0f_9047).into()),
            rport: 19080,
            state,
            expires_in,
            template,
            offloaded: false,
        };
        let rows = [
            row(false, ConnState::SynRecv, 57),
            row(true, ConnState::None, 24 * 60 + 5),
        ];
        assert_eq!(
            conns(&rows, false),
            "IPVS connection entries\n\
             pro expire state       source             virtual            destination\n\
             TCP 00:57  SYN_RECV    10.15.144.102:43614 10.15.62.208:19080 10.15.144.71:19080\n\
             TCP 24:05  NONE        10.15.144.102:43614 10.15.62.208:19080 10.15.144.71:19080\n"
        );
        let json = conns(&rows[..1], true);
        assert_eq!(
            json,
            "{\"connections\":[{\"protocol\":\"TCP\",\"expire\":57,\"state\":\"SYN_RECV\",\
             \"source\":\"10.15.144.102:43614\",\"virtual\":\"10.15.62.208:19080\",\
             \"destination\":\"10.15.144.71:19080\",\"template\":false,\"offloaded\":false}]}\n"
        );
        // IPv6 as ipvsadm shows it: in brackets, the columns' width a
        // minimum; a deleted server as the unspecified address.
        let six = ConnInfo {
            proto: 17,
            cip: "2001:db8:1::2".parse().unwrap(),
            cport: 40000,
            vip: "2001:db8::100".parse().unwrap(),
            vport: 53,
            rip: None,
            rport: 0,
            state: ConnState::Udp,
            expires_in: 300,
            template: false,
            offloaded: false,
        };
        assert!(
            conns(&[six], false)
                .ends_with("\nUDP 05:00  UDP         [2001:db8:1::2]:40000 [2001:db8::100]:53 [::]:0\n")
        );
    }

    #[test]
    fn vrrp_listing_shows_every_instance_and_the_ignored_adverts() {
        let st = crate::vrrp::Status {
            name: "VI_1".into(),
            interface: "eth0".into(),
            vrid: 51,
            state: ::vrrp::instance::State::Master,
            priority: 150,
            effective_priority: 130,
            master: Some("10.99.0.10".into()),
            advert_int_cs: 100,
            last_transition: Some(1000),
            last_reason: Some("master down"),
            transitions: 2,
            adverts_sent: 40,
            adverts_received: 3,
            adverts_ignored: 1,
        };
        let text = vrrp(std::slice::from_ref(&st), &[("ttl", 1), ("vrid", 0)], false, 1012);
        let row = text.lines().nth(1).unwrap();
        for want in [
            "VI_1",
            "eth0",
            "51",
            "MASTER",
            "150",
            "130",
            "10.99.0.10",
            "1.00s",
            "12s ago (master down)",
        ] {
            assert!(row.contains(want), "{want}: {text}");
        }
        assert!(text.ends_with("ignored adverts: ttl 1\n"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&vrrp(&[st], &[("ttl", 1)], true, 0)).unwrap();
        assert_eq!(
            (v["instances"][0]["state"].as_str(), v["ignored"]["ttl"].as_u64()),
            (Some("MASTER"), Some(1))
        );
    }
}
