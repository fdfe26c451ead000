//! `ferrovs check` against keepalived 2.2.7 itself (`keepalived -t -f`,
//! from the Debian package scripts/deps.sh installs), config by config:
//! every sample keepalived ships and the cases where keepalived warns and
//! carries on. Both must agree on start / no start; where keepalived warns,
//! ours says something too; every notice of ours names its file and line.
//!
//! keepalived's exit status under `-t`: 0 clean, 5 configuration errors it
//! runs with all the same, 6 scripts without script security (it runs
//! them), 4 a configuration it cannot run. keepalived checks interfaces
//! against the host, so it runs in a namespace of the test's own with the
//! interfaces the samples name (eth0 to eth3). Needs root, as the namespace
//! tests do.

mod lab;

use lab::{bin, run, text};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A namespace with eth0..eth3 (veth pairs), deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Self {
        let ns = Self(format!("fvk{}", std::process::id()));
        let ip = |args: &[&str]| {
            let out = run(Command::new("ip").args(args));
            assert!(out.status.success(), "ip {args:?}: {}", text(&out));
        };
        ip(&["netns", "add", &ns.0]);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        for i in 0..4 {
            let (me, peer) = (format!("eth{i}"), format!("peer{i}"));
            ip(&[
                "-n", &ns.0, "link", "add", &me, "type", "veth", "peer", "name", &peer,
            ]);
            ip(&["-n", &ns.0, "link", "set", &me, "up"]);
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(Command::new("ip").args(["netns", "del", &self.0]));
    }
}

/// The cases beside the samples: (name, text).
fn cases() -> Vec<(&'static str, String)> {
    let vs = |algo: &str, rs: &str, extra: &str| {
        format!(
            "virtual_server 10.0.0.100 80 {{\n    delay_loop 6\n    lb_algo {algo}\n    lb_kind DR\n    protocol TCP\n\
             {extra}    real_server {rs} 80 {{\n        weight 1\n        TCP_CHECK {{\n            connect_timeout 3\n        }}\n    }}\n}}\n"
        )
    };
    let ok = vs("rr", "10.0.0.11", "");
    vec![
        ("bad_lb_algo", vs("bogus", "10.0.0.11", "")),
        ("bad_rs_addr", vs("rr", "10.0.0.300", "")),
        ("bad_vs_addr", ok.replace("10.0.0.100 80", "10.0.0.1000 80")),
        ("negative_weight", ok.replace("weight 1", "weight -5")),
        ("unknown_keyword", vs("rr", "10.0.0.11", "    bogus_keyword 1\n")),
        ("missing_include", format!("include /nonexistent-dir/*.conf\n{ok}")),
        (
            "unknown_script_user",
            format!("global_defs {{\n    script_user nosuchuser-ferrovs\n}}\n{ok}"),
        ),
        (
            "global_lvs_sync_daemon_interface",
            format!("global_defs {{\n    lvs_sync_daemon_interface eth0\n}}\n{ok}"),
        ),
        ("unterminated", "virtual_server 10.0.0.100 80 {\n    lb_algo rr\n".into()),
        ("stray_close", format!("{ok}}}\n")),
        (
            "fwmark_server_port",
            "virtual_server fwmark 7 {\n    lb_algo rr\n    lb_kind DR\n    real_server 10.0.0.11 80 {\n        weight 1\n    }\n}\n"
                .into(),
        ),
        (
            "misc_check_as_root",
            "virtual_server 10.0.0.100 80 {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    real_server 10.0.0.11 80 {\n        MISC_CHECK {\n            misc_path \"/bin/true\"\n        }\n    }\n}\n"
                .into(),
        ),
        (
            "http_nb_get_retry",
            "virtual_server 10.0.0.100 80 {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    real_server 10.0.0.11 80 {\n        HTTP_GET {\n            url {\n                path /\n            }\n            nb_get_retry 3\n        }\n    }\n}\n"
                .into(),
        ),
        (
            "instance_lvs_sync_daemon_interface",
            "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    lvs_sync_daemon_interface eth1\n    virtual_ipaddress {\n        10.0.0.100/32\n    }\n}\n"
                .into(),
        ),
        (
            "pass_auth",
            "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    authentication {\n        auth_type PASS\n        auth_pass secret\n    }\n    virtual_ipaddress {\n        10.0.0.100/32\n    }\n}\n"
                .into(),
        ),
        ("clean", ok),
    ]
}

#[test]
fn check_agrees_with_keepalived_t_on_start_and_warns_where_it_does() {
    let ns = Netns::new();
    let dir = std::env::temp_dir().join(format!("ferrovs-kat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: Vec<PathBuf> = lab::keepalived_samples();
    for (name, body) in cases() {
        let p = dir.join(format!("{name}.conf"));
        std::fs::write(&p, body).unwrap();
        files.push(p);
    }
    let mut table = Vec::new();
    for f in &files {
        table.push(row(&ns, f));
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("config | keepalived -t | ferrovs check | notices");
    for (name, t, ours, notes, _) in &table {
        eprintln!(
            "{name} | {t} | {} | {notes}",
            if *ours { "start" } else { "refuse" }
        );
    }
    assert!(table.len() >= 40, "{} configs", table.len());
    for (name, t, ours, notes, out) in &table {
        let keepalived_starts = matches!(t, 0 | 5 | 6);
        assert_eq!(
            keepalived_starts, *ours,
            "{name}: keepalived -t {t}, ours:\n{out}"
        );
        if matches!(t, 5 | 6) {
            assert!(
                *notes > 0,
                "{name}: keepalived warns (-t {t}), ours is silent:\n{out}"
            );
        }
        if name.starts_with("pass_auth") {
            assert!(!out.contains("authentication"), "{name}:\n{out}");
        }
    }
}

/// (name, keepalived -t's status, ours starts, our notices, our output).
fn row(ns: &Netns, f: &Path) -> (String, i32, bool, usize, String) {
    let path = f.display().to_string();
    let kat = run(Command::new("ip").args([
        "netns",
        "exec",
        &ns.0,
        "keepalived",
        "-t",
        "-l",
        "-D",
        "-f",
        &path,
    ]));
    let t = kat.status.code().unwrap_or(-1);
    let out = run(Command::new(bin()).args(["check", "--keepalived", &path]));
    let said = text(&out);
    // Every notice names its file and line: `FILE:LINE: …`.
    let mut notes = 0;
    for l in said.lines().filter(|l| !l.contains("the daemon would start")) {
        let at = l
            .split(": ")
            .next()
            .and_then(|w| w.rsplit_once(':'))
            .is_some_and(|(file, line)| !file.is_empty() && line.parse::<usize>().is_ok());
        assert!(at, "{path}: a notice without file:line: {l}");
        notes += 1;
    }
    let name = f
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    (name, t, out.status.success(), notes, said)
}
