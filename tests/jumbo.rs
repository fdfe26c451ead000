//! An interface whose MTU makes frames larger than a UMEM frame is refused
//! at start, with the MTU, the frame size and the fix, before anything is
//! attached.

mod lab;

use lab::{Netns, bin, run, text};
use std::process::Command;

#[test]
fn a_jumbo_mtu_is_refused_at_start_with_the_fix() {
    let ns = Netns::new("jumbo", "FERROVS_JUMBO_STATE");
    ns.sh("ip link add d0 type veth peer name d1 && ip link set d0 mtu 9000 up");
    let socket = std::env::temp_dir().join(format!("{}.sock", ns.name));
    let out = run(Command::new("ip")
        .args(["netns", "exec", &ns.name, bin(), "daemon", "-i", "d0", "--socket"])
        .arg(&socket));
    let msg = text(&out);
    assert!(!out.status.success(), "{msg}");
    assert!(msg.contains("MTU 9000"), "{msg}");
    assert!(msg.contains("set the MTU to 1778 at most"), "{msg}");
    assert!(msg.contains("ip link set dev d0 mtu 1500"), "{msg}");
    assert!(!socket.exists(), "the control socket was left behind");
    // The largest MTU that fits starts: the daemon forwards until told to
    // stop (bounded by `timeout`, whose SIGTERM it ends on cleanly).
    ns.sh("ip link set d0 mtu 1778");
    let out = run(Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "timeout",
            "2",
            bin(),
            "daemon",
            "-i",
            "d0",
            "--socket",
        ])
        .arg(&socket));
    let msg = text(&out);
    assert!(msg.contains("forwarding on d0"), "{msg}");
    assert!(!msg.contains("MTU"), "{msg}");
}
