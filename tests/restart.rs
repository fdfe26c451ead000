//! A restart loses nothing (`--state-dir`): rules added by commands and an
//! established TCP session survive SIGKILL of the daemon and the same
//! command line started a second later; the pinned program drops the
//! session's packets meanwhile (the client retransmits) rather than let the
//! host reset it, and with the fast path forwards them on. A state file
//! that fails its checks is refused and the daemon starts without it.

mod lab;

use lab::{Daemon, Lab, Pins, RS1, Scratch, VIP, run, text, wait_for};
use std::process::Command;
use std::time::Duration;

/// The client's session: a numbered line every 100 ms for `secs` seconds,
/// each read back from the echo server; prints how many came back intact,
/// then the longest wait for one in ms.
fn session(secs: u32, port: u16) -> String {
    format!(
        "import socket, time\ns = socket.create_connection(('{VIP}', {port}), timeout=5)\n\
         s.settimeout(8)\nf = s.makefile('rwb')\nok, worst = 0, 0\n\
         for i in range({secs} * 10):\n\
         \x20   t = time.time()\n    f.write(b'line %d\\n' % i); f.flush()\n\
         \x20   if f.readline() == b'line %d\\n' % i: ok += 1\n\
         \x20   worst = max(worst, int((time.time() - t) * 1000))\n\
         \x20   time.sleep(0.1)\nprint(ok, worst)\n"
    )
}

/// Rules by command, a session, SIGKILL, the same command line a second
/// later: the rules are back and every line of the session is echoed.
/// Return the longest wait for an echo (ms).
fn survives_sigkill(lab: &Lab, args: &[&str], service: &[&str], rs: &str) -> u64 {
    let port = 9100;
    let svc = format!("{VIP}:{port}");
    let mut d = Daemon::start_with(lab, args);
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    let mut add = vec!["-a", "-t", &svc, "-r"];
    let real = format!("{rs}:{port}");
    add.push(&real);
    add.extend_from_slice(service);
    d.ok(&add);
    let echo = lab.spawn(
        "rs1",
        &[
            "timeout",
            "60",
            "socat",
            &format!("TCP-LISTEN:{port},reuseaddr,fork"),
            "EXEC:cat",
        ],
    );
    lab::listening(lab, "rs1", port);
    let py = session(6, port);
    let client = std::thread::scope(|s| {
        let client = s.spawn(|| lab.exec("client", &["timeout", "40", "python3", "-c", &py]));
        // Let the session establish and be written to the state directory.
        std::thread::sleep(Duration::from_millis(2500));
        assert!(d.stop_with("KILL"), "daemon did not die on SIGKILL");
        // Gone before the next one starts: its drop cleans its socket path.
        drop(d);
        std::thread::sleep(Duration::from_secs(1));
        (
            Daemon::start_with(lab, args),
            client.join().expect("client thread"),
        )
    });
    let (d, client) = client;
    let list = d.ok(&["-L", "-n"]);
    assert!(
        list.contains(&format!("-> {real}")),
        "the rules did not come back:\n{list}\n{}",
        d.log()
    );
    let out = text(&client);
    let words: Vec<u64> = out.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(
        client.status.success() && words.first() == Some(&60),
        "the session did not carry on: {out}\n{}",
        d.log()
    );
    assert!(d.log().contains("connections back"), "{}", d.log());
    drop(echo);
    let worst = words.get(1).copied().unwrap_or(u64::MAX);
    eprintln!("{args:?}: 60 of 60 lines echoed, the longest wait {worst} ms");
    worst
}

#[test]
fn dr_rules_and_a_tcp_session_survive_sigkill() {
    let pins = Pins::new("restart-dr-pins");
    let state = Scratch::new("restart-dr-state");
    let lab = Lab::up();
    let args = [
        "-i",
        "eth0",
        "--fast-path",
        "off",
        "--state-dir",
        &state.path("s"),
        "--bpf-pins",
        &pins.dir(),
    ];
    survives_sigkill(&lab, &args, &["-g"], RS1);
}

#[test]
fn nat_rules_and_a_tcp_session_survive_sigkill() {
    let pins = Pins::new("restart-nat-pins");
    let state = Scratch::new("restart-nat-state");
    let lab = Lab::up_kind("nat");
    let args = [
        "-i",
        "eth0",
        "-i",
        "eth1",
        "--fast-path",
        "off",
        "--state-dir",
        &state.path("s"),
        "--bpf-pins",
        &pins.dir(),
    ];
    survives_sigkill(&lab, &args, &["-m"], "10.98.0.11");
}

#[test]
fn with_the_fast_path_the_session_flows_through_the_gap() {
    let pins = Pins::new("restart-fast-pins");
    let state = Scratch::new("restart-fast-state");
    let lab = Lab::up_xdp_peers("dr");
    let args = [
        "-i",
        "eth0",
        "--fast-path",
        "on",
        "--state-dir",
        &state.path("s"),
        "--bpf-pins",
        &pins.dir(),
    ];
    let worst = survives_sigkill(&lab, &args, &["-g"], RS1);
    // Down for over a second; without the kernel's forwarding a line would
    // wait for the client's retransmission (200 ms, then 400, …) past it.
    assert!(worst < 500, "an echo waited {worst} ms: the gap was not bridged");
}

#[test]
fn a_damaged_state_file_is_refused_and_the_daemon_starts_without_it() {
    let pins = Pins::new("restart-bad-pins");
    let state = Scratch::new("restart-bad-state");
    let lab = Lab::up();
    let dir = state.path("s");
    let args = ["-i", "eth0", "--state-dir", &dir, "--bpf-pins", &pins.dir()];
    let svc = format!("{VIP}:80");
    let mut d = Daemon::start_with(&lab, &args);
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    d.ok(&["-a", "-t", &svc, "-r", &format!("{RS1}:80"), "-g"]);
    assert!(d.stop_with("TERM"));
    let file = format!("{dir}/rules");
    let good = std::fs::read_to_string(&file).expect("a state file");
    for (what, bad) in [
        ("truncated", good[..good.len() - 5].to_string()),
        ("changed", good.replace(RS1, "10.99.0.99")),
        ("another version", good.replace("state 1", "state 9")),
    ] {
        std::fs::write(&file, &bad).unwrap();
        let mut d = Daemon::start_with(&lab, &args);
        assert!(d.log().contains("state refused"), "{what}: {}", d.log());
        assert!(!d.ok(&["-L", "-n"]).contains(RS1), "{what}: loaded anyway");
        // It forwards with what it has: rules added now work and are kept.
        d.ok(&["-A", "-t", &svc, "-s", "rr"]);
        d.ok(&["-a", "-t", &svc, "-r", &format!("{RS1}:80"), "-g"]);
        assert!(
            wait_for(Duration::from_secs(5), || lab
                .http_answers(&format!("http://{VIP}/"), 1)
                == ["server1"]),
            "{what}: not forwarding"
        );
        assert!(d.stop_with("TERM"));
        assert!(std::path::Path::new(&format!("{dir}/rules.refused")).exists());
    }
    // A real shutdown: --stop-clean takes the pinned program off.
    let out = run(Command::new(lab::bin()).args(["daemon", "--stop-clean", "--bpf-pins", &pins.dir()]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        lab.xdp_programs(),
        Vec::<String>::new(),
        "XDP left after --stop-clean"
    );
}

#[test]
fn a_pin_whose_interface_is_gone_is_replaced() {
    let pins = Pins::new("restart-stale-pins");
    let state = Scratch::new("restart-stale-state");
    let dir = state.path("s");
    let args = ["-i", "eth0", "--state-dir", &dir, "--bpf-pins", &pins.dir()];
    let svc = format!("{VIP}:80");
    {
        let lab = Lab::up();
        let mut d = Daemon::start_with(&lab, &args);
        d.ok(&["-A", "-t", &svc, "-s", "rr"]);
        d.ok(&["-a", "-t", &svc, "-r", &format!("{RS1}:80"), "-g"]);
        assert!(d.stop_with("KILL"));
    }
    // The lab and its interfaces are gone; the pins are left over.
    let lab = Lab::up();
    let d = Daemon::start_with(&lab, &args);
    let up = wait_for(Duration::from_secs(5), || {
        lab.http_answers(&format!("http://{VIP}/"), 1) == ["server1"]
    });
    assert!(up, "not forwarding over a stale pin\n{}", d.log());
    drop(d);
    let out = run(Command::new(lab::bin()).args(["daemon", "--stop-clean", "--bpf-pins", &pins.dir()]));
    assert!(out.status.success(), "{}", text(&out));
}
