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
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let words: Vec<&str> = text.split_whitespace().collect();
        words
            .chunks(2)
            .filter_map(|kv| Some((kv[0].to_string(), kv.get(1)?.parse().ok()?)))
            .collect()
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
