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
    let out = Command::new(bench)
        .args(["compare", "--seconds", "1", "--flows", "256"])
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
    let swap = row("af_xdp-swap");
    let dr = row("ferrovs-dr");
    // offered Mpps, fwd Mpps, delivered %, vs af_xdp, errors
    assert!(swap[1] > 0.01 && dr[1] > 0.01, "{text}");
    assert_eq!((swap[4], dr[4]), (0.0, 0.0), "frames came back wrong:\n{text}");
    assert!(text.lines().any(|l| l.starts_with("xdp-tx")), "{text}");
    let leftover = Command::new("ip").args(["netns", "list"]).output().expect("ip");
    assert!(
        !String::from_utf8_lossy(&leftover.stdout).contains("fvb"),
        "namespaces left behind"
    );
}
