//! The generator and the sink on their own: a veth pair in a namespace made
//! for the test; the generator sends paced frames out of one end, the sink
//! counts them on the other. Every frame sent must be counted once, under
//! the right heading, with its latency. Needs root.

use std::collections::HashMap;
use std::process::Command;

/// A namespace holding veth pair `gen0`–`sink0`, removed on drop.
struct Ns(String);

impl Ns {
    fn new(tag: &str) -> Self {
        let ns = Self(format!("fvt{}-{tag}", std::process::id()));
        let ip = |args: &[&str]| {
            let ok = Command::new("ip").args(args).status().is_ok_and(|s| s.success());
            assert!(ok, "ip {}", args.join(" "));
        };
        ip(&["netns", "add", &ns.0]);
        ip(&[
            "-n", &ns.0, "link", "add", "gen0", "type", "veth", "peer", "name", "sink0",
        ]);
        for dev in ["gen0", "sink0"] {
            ip(&["-n", &ns.0, "link", "set", dev, "up"]);
        }
        ns
    }

    /// Run `gen-check` with `args`; return its `key value` pairs.
    fn check(&self, args: &[&str]) -> HashMap<String, f64> {
        let (ok, text) = self.run(args);
        assert!(ok, "{text}");
        let words: Vec<&str> = text.split_whitespace().collect();
        words
            .chunks(2)
            .filter_map(|kv| Some((kv[0].to_string(), kv.get(1)?.parse().ok()?)))
            .collect()
    }

    /// Run `gen-check` with `args`: whether it succeeded, and what it said
    /// (stdout, then stderr).
    fn run(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.0,
                env!("CARGO_BIN_EXE_ferrovs-bench"),
                "gen-check",
            ])
            .args(args)
            .output()
            .expect("run gen-check");
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn every_paced_frame_is_counted_once_with_its_latency() {
    let ns = Ns::new("good");
    let r = ns.check(&["good", "20000", "0.5"]);
    let sent = r["sent"];
    // Paced at 20 kpps for 0.5 s: never faster than asked (32 frames of
    // saved-up credit at most), and not far slower (10 000 here; half of it
    // leaves room for a busy machine).
    assert!(
        sent > 5000.0 && sent <= 20_000.0 * r["elapsed"] * 1.02 + 32.0,
        "{r:?}"
    );
    assert_eq!(r["frames"], sent, "{r:?}");
    assert_eq!(r["bytes"], sent * 60.0, "{r:?}");
    assert_eq!(r["unknown"] + r["bad_checksum"] + r["wrong_addr"], 0.0, "{r:?}");
    assert_eq!(r["stamped"], sent, "{r:?}");
    // One hop over veth: some µs, not nothing and not seconds.
    assert!(r["p50_ns"] > 0.0 && r["p50_ns"] < 2_000_000.0, "{r:?}");
}

#[test]
fn a_wrong_checksum_mac_or_address_is_an_error_not_a_delivery() {
    let ns = Ns::new("bad");
    let r = ns.check(&["bad-checksum", "10000", "0.3"]);
    assert!(r["sent"] > 0.0, "{r:?}");
    assert_eq!(r["bad_checksum"], r["sent"], "{r:?}");
    assert_eq!(r["frames"], 0.0, "{r:?}");
    let r = ns.check(&["unknown-mac", "10000", "0.3"]);
    assert!(r["sent"] > 0.0, "{r:?}");
    assert_eq!(r["unknown"], r["sent"], "{r:?}");
    assert_eq!(r["frames"], 0.0, "{r:?}");
    // Right MAC, right checksum, but not the address the slot expects (a
    // NAT that forgot to rewrite the destination, say).
    let r = ns.check(&["wrong-addr", "10000", "0.3"]);
    assert!(r["sent"] > 0.0, "{r:?}");
    assert_eq!(r["wrong_addr"], r["sent"], "{r:?}");
    assert_eq!(r["frames"], 0.0, "{r:?}");
}

#[test]
fn ipv6_frames_are_counted_and_timed_too() {
    let ns = Ns::new("v6");
    let r = ns.check(&["good6", "20000", "0.3"]);
    let sent = r["sent"];
    assert!(sent > 1000.0, "{r:?}");
    assert_eq!(r["frames"], sent, "{r:?}");
    // IPv6's smallest stamped UDP frame: 84 bytes on the wire, 80 here.
    assert_eq!(r["bytes"], sent * 80.0, "{r:?}");
    assert_eq!(r["stamped"], sent, "{r:?}");
    assert_eq!(r["unknown"] + r["bad_checksum"], 0.0, "{r:?}");
}

#[test]
fn auto_takes_live_frames_where_allowed_and_af_xdp_where_refused() {
    let ns = Ns::new("auto");
    let (live_ok, live) = ns.run(&["good", "10000", "0.2", "--generator", "live-frames"]);
    if !live_ok {
        // A refusal says what was refused and what to use instead.
        assert!(live.contains("refuses BPF_PROG_RUN over live frames"), "{live}");
        assert!(live.contains("--generator af-xdp"), "{live}");
    }
    let (ok, auto) = ns.run(&["good", "10000", "0.2"]);
    assert!(ok, "{auto}");
    let want = if live_ok {
        "generator live-frames (live frames allowed)"
    } else {
        "generator af-xdp (live frames refused: "
    };
    assert!(auto.starts_with(want), "live frames: {live}\nauto: {auto}");
    // AF_XDP by name runs on every kernel with AF_XDP, and every frame it
    // sends is counted once.
    let r = ns.check(&["good", "10000", "0.2", "--generator", "af-xdp"]);
    assert!(r["sent"] > 500.0, "{r:?}");
    assert_eq!(r["frames"], r["sent"], "{r:?}");
    assert_eq!(r["stamped"], r["sent"], "{r:?}");
}
