//! scripts/realserver.sh in a namespace of its own: apply, apply again (no
//! change), undo (back to the start); TUN without ipip fails before it
//! changes anything.

mod lab;

use lab::{Netns, text};

fn ns(tag: &str) -> Netns {
    Netns::new(tag, "FERROVS_RS_STATE")
}

/// Everything realserver.sh may touch.
fn snapshot(ns: &Netns) -> String {
    ns.sh("ip -4 -o addr show; ip -o link show; for k in all lo; do \
         sysctl net.ipv4.conf.$k.arp_ignore net.ipv4.conf.$k.arp_announce net.ipv4.conf.$k.rp_filter; done")
}

#[test]
fn dr_apply_is_idempotent_and_undo_restores_the_start() {
    let ns = ns("rs-dr");
    let start = snapshot(&ns);
    let dry = ns.script("realserver.sh", &["--dry-run", "dr", "10.99.0.100"]);
    assert!(
        dry.status.success() && text(&dry).contains("add 10.99.0.100/32 on lo"),
        "{}",
        text(&dry)
    );
    assert_eq!(snapshot(&ns), start, "--dry-run changed something");

    let first = ns.script("realserver.sh", &["dr", "10.99.0.100", "10.99.0.101"]);
    assert!(first.status.success(), "{}", text(&first));
    let applied = snapshot(&ns);
    for want in [
        "inet 10.99.0.100/32",
        "inet 10.99.0.101/32",
        "net.ipv4.conf.all.arp_ignore = 1",
        "net.ipv4.conf.all.arp_announce = 2",
        "net.ipv4.conf.lo.arp_ignore = 1",
    ] {
        assert!(applied.contains(want), "{want} missing:\n{applied}");
    }
    let again = ns.script("realserver.sh", &["dr", "10.99.0.100", "10.99.0.101"]);
    assert!(text(&again).contains("nothing to change"), "{}", text(&again));
    assert_eq!(snapshot(&ns), applied);

    let undo = ns.script("realserver.sh", &["--undo"]);
    assert!(undo.status.success(), "{}", text(&undo));
    assert_eq!(snapshot(&ns), start);
    assert!(!ns.state.exists());
}

#[test]
fn tun_needs_ipip_and_refuses_bad_input_unchanged() {
    let ns = ns("rs-tun");
    let start = snapshot(&ns);
    let bad = ns.script("realserver.sh", &["dr", "10.99.0.300"]);
    assert!(!bad.status.success() && text(&bad).contains("not an IPv4 address"));
    assert_eq!(snapshot(&ns), start);

    let has_ipip =
        ns.sh("ip link show tunl0 2>/dev/null || (modprobe ipip 2>/dev/null && ip link show tunl0)");
    let tun = ns.script("realserver.sh", &["tun", "10.99.0.100"]);
    if has_ipip.contains("tunl0") {
        assert!(tun.status.success(), "{}", text(&tun));
        assert!(snapshot(&ns).contains("tunl0    inet 10.99.0.100/32"));
        assert!(ns.script("realserver.sh", &["--undo"]).status.success());
    } else {
        assert!(!tun.status.success());
        assert!(text(&tun).contains("no ipip module"), "{}", text(&tun));
        assert_eq!(snapshot(&ns), start, "a refused TUN apply changed something");
    }
}
