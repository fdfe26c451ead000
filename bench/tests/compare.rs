//! The comparison runner end to end: it builds its namespaces, drives each
//! forwarder flat out and prints one row per forwarder. Frames must come back
//! rewritten correctly (the sink's error count) and ferrovs must forward.
//! Needs root, like the daemon; it removes what it made.

use std::process::Command;

#[test]
fn compare_prints_a_row_per_forwarder_and_ferrovs_forwards() {
    let bench = env!("CARGO_BIN_EXE_ferrovs-bench");
    // `cargo test --workspace` builds the daemon next to the bench binary.
    let daemon = std::path::Path::new(bench).with_file_name("ferrovs");
    assert!(
        daemon.exists(),
        "build the ferrovs binary first (cargo test --workspace does)"
    );
    let json_path = std::env::temp_dir().join(format!("ferrovs-compare-{}.json", std::process::id()));
    let out = Command::new(bench)
        .args(["compare", "--seconds", "1", "--flows", "256", "--json"])
        .arg(&json_path)
        .env("FERROVS_BIN", &daemon)
        .output()
        .expect("run ferrovs-bench compare");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |name: &str| -> Vec<f64> {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row in:\n{text}"))
            .split_whitespace()
            .skip(1)
            .map(|w| w.trim_end_matches('%').parse().unwrap_or(f64::NAN))
            .collect()
    };
    // offered Mpps, fwd Mpps, delivered %, vs af_xdp, vs nft, errors
    for name in ["af_xdp-swap", "ferrovs-dr", "ferrovs-nat", "ferrovs-tun"] {
        let r = row(name);
        assert!(r[1] > 0.01, "{name} forwarded nothing:\n{text}");
        assert_eq!(r[5], 0.0, "{name}: frames came back wrong:\n{text}");
    }
    for name in ["xdp-tx", "nft-dnat"] {
        assert!(text.lines().any(|l| l.starts_with(name)), "{text}");
    }
    let json = std::fs::read_to_string(&json_path).expect("the --json file");
    let _ = std::fs::remove_file(&json_path);
    assert_eq!(json.matches("\"dut\":").count(), 6, "{json}");
    assert!(json.contains("\"dut\":\"ferrovs-tun\""), "{json}");
    let leftover = Command::new("ip").args(["netns", "list"]).output().expect("ip");
    assert!(
        !String::from_utf8_lossy(&leftover.stdout).contains("fvb"),
        "namespaces left behind"
    );
}

#[test]
fn a_terminated_run_removes_its_namespaces() {
    let bench = env!("CARGO_BIN_EXE_ferrovs-bench");
    let daemon = std::path::Path::new(bench).with_file_name("ferrovs");
    let mut child = Command::new(bench)
        .args(["compare", "--seconds", "2", "--flows", "16"])
        .env("FERROVS_BIN", &daemon)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ferrovs-bench compare");
    let mine = format!("fvb{}-", child.id());
    let listed = |ns: &str| {
        let out = Command::new("ip").args(["netns", "list"]).output().expect("ip");
        String::from_utf8_lossy(&out.stdout).contains(ns)
    };
    // Mid-run: its namespaces exist.
    let start = std::time::Instant::now();
    while !listed(&mine) && start.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(listed(&mine), "the run never built its namespaces");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    // It ends within one measurement plus clean-up.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > end {
            let _ = child.kill();
            panic!("the run did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut err);
    assert!(!status.success(), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(!listed(&mine), "namespaces left behind:\n{err}");
}
