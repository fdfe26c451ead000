//! The shipped systemd unit: systemd accepts it, and the daemon runs as an
//! unprivileged user with exactly the capabilities the unit grants.

mod lab;

use std::path::PathBuf;
use std::process::Command;

use lab::{Daemon, Lab, Pins, RS1, Scratch, VIP, bin, run};

fn unit() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/ferrovs.service");
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    // verify insists the ExecStart binary exists: point it at ours.
    let dir = std::env::temp_dir().join(format!("ferrovs-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ferrovs.service");
    std::fs::write(&path, unit().replace("/usr/local/sbin/ferrovs", bin())).unwrap();
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&path));
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
}

#[test]
fn the_daemon_forwards_as_nobody_with_the_units_capabilities() {
    let via = lab::setpriv_as(&["--reuid=65534", "--regid=65534", "--clear-groups"], &unit());
    let via: Vec<&str> = via.iter().map(String::as_str).collect();
    let lab = Lab::up();
    let d = Daemon::start_via(&lab, &via, &["--interface", "eth0"]);
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    d.ok(&["-a", "-t", &svc, "-r", &format!("{RS1}:80"), "-g"]);
    let (bodies, _) = lab.http_get(&[format!("http://{VIP}/")]);
    assert_eq!(bodies, ["server1"], "{}", d.log());
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap_or_default();
    assert!(
        status.contains("Uid:\t65534"),
        "the daemon runs as root:\n{status}"
    );
}

#[test]
fn as_the_units_user_a_sigkilled_director_comes_back_with_its_rules() {
    // What the unit's ExecStartPre and RuntimeDirectory give the daemon: a
    // bpffs and a state directory that its user owns.
    let pins = Pins::new("unit-pins");
    let state = Scratch::new("unit-state");
    for dir in [pins.dir(), state.path("")] {
        let out = run(Command::new("chown").args(["65534:65534", &dir]));
        assert!(out.status.success(), "{}", lab::text(&out));
    }
    let via = lab::setpriv_as(&["--reuid=65534", "--regid=65534", "--clear-groups"], &unit());
    let via: Vec<&str> = via.iter().map(String::as_str).collect();
    let lab = Lab::up();
    let sdir = state.path("s");
    let args = [
        "--interface",
        "eth0",
        "--state-dir",
        &sdir,
        "--bpf-pins",
        &pins.dir(),
    ];
    let mut d = Daemon::start_via(&lab, &via, &args);
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    d.ok(&["-a", "-t", &svc, "-r", &format!("{RS1}:80"), "-g"]);
    assert!(d.stop_with("KILL"));
    drop(d);
    // Killed, the program stays (the unit's Restart= brings the daemon back).
    assert!(
        !lab.xdp_programs().is_empty(),
        "the program went with the process"
    );
    let d = Daemon::start_via(&lab, &via, &args);
    let (bodies, _) = lab.http_get(&[format!("http://{VIP}/")]);
    assert_eq!(bodies, ["server1"], "{}", d.log());
    assert!(d.log().contains("rules are back"), "{}", d.log());
    drop(d);
    let out = run(Command::new(bin()).args(["daemon", "--stop-clean", "--bpf-pins", &pins.dir()]));
    assert!(out.status.success(), "{}", lab::text(&out));
}
