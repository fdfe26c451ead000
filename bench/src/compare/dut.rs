//! The devices under test that need setting up in the DUT namespace: the
//! nftables DNAT path and the ferrovs daemon with its service.
//!
//! Must not touch: anything outside the DUT namespace.

use super::{Bg, Opts, RS_MACS, Topology, Traffic, ferrovs_bin, mac, sh, spawn_daemon};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An nftables ruleset in a namespace (forwarding on), flushed on drop.
pub(super) struct Nft(String);

impl Nft {
    pub(super) fn load(ns: &str, ipv6: bool) -> Result<Self, String> {
        // Forwarding on; no ICMP redirects: the servers sit on the interface
        // the frames came in on, which would make the kernel send one per flow.
        for kv in [
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.send_redirects=0",
            "net.ipv4.conf.eth0.send_redirects=0",
            "net.ipv6.conf.all.forwarding=1",
        ] {
            sh(&["ip", "netns", "exec", ns, "sysctl", "-qw", kv])?;
        }
        let (family, addr, vip, rs) = if ipv6 {
            (
                "ip6",
                "ip6",
                "2001:db8:50::100",
                ["2001:db8:50::11", "2001:db8:50::12"],
            )
        } else {
            ("ip", "ip", "10.50.0.100", ["10.50.0.11", "10.50.0.12"])
        };
        let rules = format!(
            "table {family} lb {{\n chain pre {{\n  type nat hook prerouting priority dstnat;\n  \
             {addr} daddr {vip} meta l4proto {{ tcp, udp }} th dport 9 dnat to numgen inc mod 2 map {{ 0 : {}, 1 : {} }}\n \
             }}\n}}\n",
            rs[0], rs[1]
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("nft: {e} (install nftables)"))?;
        if let Some(mut stdin) = child.stdin.take() {
            std::io::Write::write_all(&mut stdin, rules.as_bytes()).map_err(|e| format!("nft: {e}"))?;
        }
        let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
        if !out.status.success() {
            return Err(format!("nft: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Self(ns.to_string()))
    }
}

impl Drop for Nft {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "exec", &self.0, "nft", "flush", "ruleset"]);
        for kv in ["net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"] {
            let _ = sh(&["ip", "netns", "exec", &self.0, "sysctl", "-qw", kv]);
        }
    }
}

/// `ferrovs daemon` in the DUT namespace with a service on VIP:9 for the
/// generator's protocol, by forwarding method `flag` (-g, -m, -i) over `servers` real
/// servers (2: the topology's two; more: addresses in 10.52.0.0/16 whose
/// static neighbours alternate between the two sink MACs), scheduled by
/// `sched`, with connection tables of `conn_max` (and `conn_max6`, else
/// the daemon's default); stopped on drop.
pub(super) fn ferrovs(
    t: &Topology,
    o: &Opts,
    flag: &str,
    (servers, fast): (u32, bool),
    sched: &str,
    (conn_max, conn_max6): (u64, Option<u64>),
) -> Result<Bg, String> {
    t.queues(o.gen_threads)?;
    t.busy_poll(o.busy_poll_us)?;
    let rips: Vec<String> = if o.ipv6 {
        if servers > 2 {
            return Err("more than two servers: IPv4 only".into());
        }
        vec!["[2001:db8:50::11]".into(), "[2001:db8:50::12]".into()]
    } else if servers <= 2 {
        vec!["10.50.0.11".into(), "10.50.0.12".into()]
    } else {
        (0..servers)
            .map(|i| format!("10.52.{}.{}", i / 250, i % 250 + 1))
            .collect()
    };
    if servers > 2 {
        let batch: String = rips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                format!(
                    "neigh replace {ip} lladdr {} dev eth0 nud permanent\n",
                    mac(RS_MACS[i % 2])
                )
            })
            .collect();
        let mut child = Command::new("ip")
            .args(["-n", &t.dut_ns, "-batch", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| format!("ip -batch: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            std::io::Write::write_all(&mut stdin, batch.as_bytes()).map_err(|e| format!("ip -batch: {e}"))?;
        }
        child.wait().map_err(|e| format!("ip -batch: {e}"))?;
        sh(&[
            "ip",
            "-n",
            &t.dut_ns,
            "route",
            "replace",
            "10.52.0.0/16",
            "dev",
            "eth0",
        ])?;
    }
    let sock = format!("/tmp/{}.sock", t.dut_ns);
    let (conn_max, queues, busy) = (
        conn_max.to_string(),
        o.gen_threads.to_string(),
        o.busy_poll_us.to_string(),
    );
    let conn_max6 = conn_max6.map(|n| n.to_string());
    let mut args = vec![
        "--conn-max",
        &conn_max,
        "--queues",
        &queues,
        "--busy-poll-us",
        &busy,
        "--fast-path",
        if fast { "on" } else { "off" },
    ];
    if let Some(n) = &conn_max6 {
        args.extend(["--conn-max6", n.as_str()]);
    }
    let dut = spawn_daemon(t, &sock, &args)?;
    let ctl = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = Command::new(ferrovs_bin());
        cmd.args(args)
            .env("FERROVS_SOCKET", &sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let Ok(mut child) = cmd.spawn() else { return false };
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = std::io::Write::write_all(&mut pipe, text.as_bytes());
        }
        child.wait().is_ok_and(|s| s.success())
    };
    // A large table takes seconds to lay out, more on a loaded machine.
    let end = Instant::now() + Duration::from_secs(60);
    while !ctl(&["-L", "-n"], None) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    let svc = if o.ipv6 {
        "[2001:db8:50::100]:9"
    } else {
        "10.50.0.100:9"
    };
    let proto = if o.traffic == Traffic::Udp { "-u" } else { "-t" };
    let mut rules = format!("-A {proto} {svc} -s {sched}\n");
    for rip in &rips {
        rules += &format!("-a {proto} {svc} -r {rip}:9 {flag} -w 1\n");
    }
    if !ctl(&["-R"], Some(&rules)) {
        return Err(format!(
            "could not configure the ferrovs daemon ({flag}, {servers} servers)"
        ));
    }
    Ok(dut)
}

/// Run `ferrovs ARGS` against the DUT's daemon; return what it printed.
pub(super) fn ctl_output(t: &Topology, args: &[&str]) -> Result<String, String> {
    let what = format!("ferrovs {}", args.join(" "));
    let out = Command::new(ferrovs_bin())
        .args(args)
        .env("FERROVS_SOCKET", format!("/tmp/{}.sock", t.dut_ns))
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Start a master sync daemon on the DUT's daemon, sending on `lo`.
pub(super) fn sync_master(t: &Topology) -> Result<(), String> {
    ctl_output(t, &["--start-daemon", "master", "--mcast-interface", "lo"]).map(drop)
}
