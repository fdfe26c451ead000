//! The ipvsadm surface against a running daemon: save, clear and restore;
//! a bad restore file refused whole; --stats moving with traffic and -Z;
//! and live changes under a long-lived connection.

mod lab;

use lab::{Daemon, KeepAlive, Lab, RS1, RS2, VIP};
use std::io::Write;
use std::process::{Command, Stdio};

/// `ferrovs -R` with `input` on standard input.
fn restore(d: &Daemon, input: &str) -> std::process::Output {
    let mut child = Command::new(lab::bin())
        .arg("-R")
        .env("FERROVS_SOCKET", &d.socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferrovs -R");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

#[test]
fn save_clear_restore_round_trips_and_a_bad_file_changes_nothing() {
    let lab = Lab::up();
    let d = Daemon::start(&lab);
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "wrr", "-p", "120"]);
    d.ok(&[
        "-a",
        "-t",
        &svc,
        "-r",
        &format!("{RS2}:80"),
        "-g",
        "-w",
        "3",
        "-x",
        "100",
        "-y",
        "50",
    ]);
    d.ok(&["-a", "-t", &svc, "-r", &format!("{RS1}:80"), "-g", "-w", "1"]);
    d.ok(&["-A", "-u", &format!("{VIP}:53"), "-s", "sh", "-b", "sh-port"]);
    let saved = d.ok(&["-S", "-n"]);
    assert_eq!(
        saved,
        format!(
            "-A -t {svc} -s wrr -p 120\n\
             -a -t {svc} -r {RS1}:80 -g -w 1\n\
             -a -t {svc} -r {RS2}:80 -g -w 3 -x 100 -y 50\n\
             -A -u {VIP}:53 -s sh -b sh-port\n"
        )
    );
    let listing = d.ok(&["-L", "-n"]);
    d.ok(&["-C"]);
    assert_eq!(d.ok(&["-S", "-n"]), "");
    let out = restore(&d, &saved);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(d.ok(&["-S", "-n"]), saved);
    assert_eq!(d.ok(&["-L", "-n"]), listing);

    // Names as real save files have them resolve (localhost, http).
    let out = restore(
        &d,
        "-A -t localhost:http -s rr\n-a -t localhost:http -r localhost:8080 -m\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(d.ok(&["-L", "-n"]).contains("TCP  127.0.0.1:80 rr"));

    // One bad line (the third) refuses the whole file.
    let before = d.ok(&["-S", "-n"]);
    let bad = "-A -t 10.99.0.200:80 -s rr\n-a -t 10.99.0.200:80 -r 10.99.0.11 -g\n-a -t 10.99.0.201:80 -r 10.99.0.12 -g\n";
    let out = restore(&d, bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("stdin:3: Service not defined"), "{err}");
    assert_eq!(d.ok(&["-S", "-n"]), before, "a refused file changed the rules");
}

#[test]
fn stats_count_traffic_and_zero_resets_them() {
    let lab = Lab::up();
    let d = Daemon::start(&lab);
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    d.ok(&["-a", "-t", &svc, "-r", &format!("{RS1}:80"), "-g"]);
    for _ in 0..3 {
        lab.http_get(&[format!("http://{VIP}/")]);
    }
    let stats = d.ok(&["-L", "-n", "--stats"]);
    let line = stats
        .lines()
        .find(|l| l.starts_with("TCP"))
        .unwrap_or_default()
        .to_string();
    let cols: Vec<u64> = line
        .split_whitespace()
        .skip(2)
        .map(|c| c.parse().unwrap_or(0))
        .collect();
    // Conns InPkts OutPkts InBytes OutBytes: 3 connections, ≥ 5 packets each
    // inbound; DR sends nothing back through the director.
    assert_eq!(cols.len(), 5, "{stats}");
    assert_eq!(cols[0], 3, "{stats}");
    assert!(cols[1] >= 15 && cols[3] > cols[1] * 50 && cols[2] == 0, "{stats}");
    d.ok(&["-Z"]);
    let zeroed = d.ok(&["-L", "-n", "--stats"]);
    let line = zeroed.lines().find(|l| l.starts_with("TCP")).unwrap_or_default();
    assert!(line.split_whitespace().skip(2).all(|c| c == "0"), "{zeroed}");
    // --rate: IPVS's estimator runs every 2 s; keep traffic going across a
    // few ticks (bounded: 24 requests, 6 s), then the rates are non-zero.
    for _ in 0..24 {
        lab.http_get(&[format!("http://{VIP}/")]);
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let rate = d.ok(&["-L", "-n", "--rate"]);
    assert!(
        rate.contains("Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS"),
        "{rate}"
    );
    let line = rate.lines().find(|l| l.starts_with("TCP")).unwrap_or_default();
    let cols: Vec<u64> = line
        .split_whitespace()
        .skip(2)
        .map(|c| c.parse().unwrap_or(0))
        .collect();
    assert!(cols[0] >= 1 && cols[1] >= 5 && cols[3] > cols[1], "{rate}");
}

#[test]
fn a_long_lived_connection_survives_live_changes() {
    let lab = Lab::up();
    let d = Daemon::start(&lab);
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    d.ok(&["-a", "-t", &svc, "-r", &format!("{RS1}:80"), "-g"]);
    d.ok(&["-a", "-t", &svc, "-r", &format!("{RS2}:80"), "-g"]);
    // A client holding one keep-alive connection, sending a request each
    // time it reads a line on stdin, printing each answer.
    let mut client = KeepAlive::open(&lab);
    let mut ask = || client.ask();
    let first = ask();
    assert!(first == "server1" || first == "server2", "{first:?}\n{}", d.log());
    let (mine, other) = if first == "server1" {
        (RS1, RS2)
    } else {
        (RS2, RS1)
    };
    // A new real server; the connection's server quiesced; the other deleted.
    d.ok(&["-a", "-t", &svc, "-r", "10.99.0.13:80", "-g"]);
    assert_eq!(ask(), first);
    d.ok(&["-e", "-t", &svc, "-r", &format!("{mine}:80"), "-g", "-w", "0"]);
    assert_eq!(ask(), first);
    d.ok(&["-d", "-t", &svc, "-r", &format!("{other}:80")]);
    assert_eq!(ask(), first);
}

#[test]
fn dry_run_shows_the_change_and_json_lists_the_rules() {
    let lab = Lab::up();
    let d = Daemon::start(&lab);
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    d.ok(&["-a", "-t", &svc, "-r", &format!("{RS1}:80"), "-g"]);
    let before = d.ok(&["-S", "-n"]);
    let mut child = Command::new(lab::bin())
        .args(["-R", "--dry-run"])
        .env("FERROVS_SOCKET", &d.socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ferrovs -R --dry-run");
    let batch = format!("-d -t {svc} -r {RS1}:80\n-a -t {svc} -r {RS2}:80 -g -w 2\n");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(batch.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let diff = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        diff,
        format!("- -a -t {svc} -r {RS1}:80 -g -w 1\n+ -a -t {svc} -r {RS2}:80 -g -w 2\n")
    );
    assert_eq!(d.ok(&["-S", "-n"]), before, "a dry run changed the rules");
    // --json parses as JSON and carries the same rules.
    let json = d.ok(&["-L", "-n", "--json"]);
    let py = "import json, sys\nd = json.load(sys.stdin)\ns = d['services'][0]\nprint(s['scheduler'], s['dests'][0]['address'], s['dests'][0]['forward'])";
    let mut child = Command::new("python3")
        .args(["-c", py])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(json.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("rr {RS1} Route"),
        "{json}"
    );
}

#[test]
fn prometheus_counters_move_with_traffic() {
    let lab = Lab::up();
    let d = Daemon::start_with(&lab, &["--interface", "eth0", "--metrics", "127.0.0.1:9410"]);
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    d.ok(&["-a", "-t", &svc, "-r", &format!("{RS1}:80"), "-g"]);
    let scrape = || lab::scrape(&lab);
    let value = |text: &str, series: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    let server = format!("ferrovs_server_connections_total{{service=\"TCP {svc}\",server=\"{RS1}:80\"}}");
    let before = scrape();
    assert!(
        before.contains("# TYPE ferrovs_worker_rx_frames_total counter"),
        "{before}"
    );
    assert_eq!(value(&before, &server), 0, "{before}");
    // What ran, for a bug report: the version `ferrovs --version` says.
    let version = String::from_utf8_lossy(
        &Command::new(lab::bin())
            .arg("--version")
            .output()
            .expect("ferrovs")
            .stdout,
    )
    .trim()
    .to_string();
    let (v, commit) = version
        .strip_prefix("ferrovs ")
        .and_then(|r| r.strip_suffix(')')?.split_once(" (commit "))
        .unwrap_or_else(|| panic!("{version}"));
    let info = format!("ferrovs_build_info{{version=\"{v}\",commit=\"{commit}\"}} 1");
    assert!(before.lines().any(|l| l == info), "{info} in:\n{before}");
    for _ in 0..3 {
        lab.http_get(&[format!("http://{VIP}/")]);
    }
    let after = scrape();
    assert_eq!(value(&after, &server), 3, "{after}");
    // The weight the scheduler uses, and node_exporter's IPVS families as
    // its dashboards read them.
    let weight = format!("ferrovs_real_server_weight{{service=\"TCP {svc}\",server=\"{RS1}:80\"}}");
    assert_eq!(value(&after, &weight), 1, "{after}");
    assert_eq!(value(&after, "node_ipvs_connections_total "), 3, "{after}");
    // Our own listings take ipvsadm's -n and --json in any order.
    let counters: serde_json::Value = serde_json::from_str(&d.ok(&["--counters", "--json"])).expect("JSON");
    assert!(
        counters["total"]["rx"].as_u64().is_some_and(|n| n >= 15),
        "{counters}"
    );
    assert_eq!(
        counters["workers"].as_array().map(Vec::len),
        Some(1),
        "{counters}"
    );
    // (-L -n --vrrp is taken: the daemon answers it, here with no instance.)
    let vrrp = d.cmd(&["-L", "-n", "--vrrp"]);
    assert!(
        lab::text(&vrrp).contains("no VRRP instances"),
        "{}",
        lab::text(&vrrp)
    );
    let backend = format!(
        "node_ipvs_backend_weight{{local_address=\"{VIP}\",local_port=\"80\",remote_address=\"{RS1}\",\
         remote_port=\"80\",proto=\"TCP\",local_mark=\"\"}}"
    );
    assert_eq!(value(&after, &backend), 1, "{after}");
    assert!(
        value(&after, "ferrovs_worker_rx_frames_total{worker=\"0\"}") >= 15,
        "{after}"
    );
    assert!(
        after.contains("ferrovs_worker_drops_total{worker=\"0\",reason=\"no_service\"} 0"),
        "{after}"
    );
}
