//! scripts/tune-host.sh on a four-queue veth in a namespace of its own:
//! dry run (no change), apply for two workers, apply again (no change),
//! undo (back to the start). Host-wide steps (bpffs, JIT, hugepages) are left
//! out with --no-host: they are the host's, not the namespace's.

mod lab;

use lab::{Netns, text};

/// Everything tune-host.sh may change on the veth.
fn snapshot(ns: &Netns) -> String {
    ns.sh(
        "ethtool -l tx0 | sed -n '/Current/,$p'; ethtool -k tx0 | grep -E 'receive-offload|vlan'; \
         cd /sys/class/net/tx0 && grep . napi_defer_hard_irqs gro_flush_timeout queues/*/rps_cpus queues/*/xps_cpus",
    )
}

#[test]
fn apply_is_idempotent_and_undo_restores_the_start() {
    let ns = Netns::new("tune", "FERROVS_TUNE_STATE");
    ns.sh(
        "ip link add tx0 numtxqueues 4 numrxqueues 4 type veth peer name tx1 numtxqueues 4 numrxqueues 4 && \
         echo 3 > /sys/class/net/tx0/queues/rx-1/rps_cpus && ethtool -K tx0 gro on",
    );
    let start = snapshot(&ns);
    assert!(start.contains("RX:\t\t4"), "{start}");
    let args = ["--no-host", "--busy-poll", "--interface", "tx0", "--cpus", "0,1"];

    let dry = ns.script("tune-host.sh", &[&["--dry-run"][..], &args].concat());
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains("tx0: rx channels 4 -> 2"), "{}", text(&dry));
    assert_eq!(snapshot(&ns), start, "--dry-run changed something");

    let first = ns.script("tune-host.sh", &args);
    assert!(first.status.success(), "{}", text(&first));
    let tuned = snapshot(&ns);
    for want in [
        "RX:\t\t2",
        "TX:\t\t2",
        "generic-receive-offload: off",
        "rx-vlan-offload: off",
        "queues/rx-1/rps_cpus:0",
        "napi_defer_hard_irqs:2",
    ] {
        assert!(tuned.contains(want), "{want} missing:\n{tuned}");
    }
    let again = ns.script("tune-host.sh", &args);
    assert!(text(&again).contains("nothing to change"), "{}", text(&again));
    assert_eq!(snapshot(&ns), tuned);

    let undo = ns.script("tune-host.sh", &["--undo"]);
    assert!(undo.status.success(), "{}", text(&undo));
    assert_eq!(snapshot(&ns), start);
    assert!(!ns.state.exists());
}

#[test]
fn bad_arguments_change_nothing() {
    let ns = Netns::new("tune-bad", "FERROVS_TUNE_STATE");
    ns.sh("ip link add tx0 type veth peer name tx1");
    let start = snapshot(&ns);
    for args in [
        &["--no-host", "--interface", "nosuch0", "--cpus", "0"][..],
        &["--no-host", "--interface", "tx0", "--cpus", "0,9999"],
        &["--no-host", "--interface", "tx0"],
    ] {
        let out = ns.script("tune-host.sh", args);
        assert!(!out.status.success(), "{args:?} was accepted: {}", text(&out));
    }
    assert_eq!(snapshot(&ns), start);
    assert!(!ns.state.exists());
}
