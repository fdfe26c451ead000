//! scripts/realserver.sh in a namespace of its own: apply, apply again (no
//! change), undo (back to the start); TUN without ipip fails before it
//! changes anything.

mod lab;

use std::path::PathBuf;
use std::process::{Command, Output};

use lab::run;

/// A bare network namespace, deleted on drop, with its own state file.
struct Ns {
    name: String,
    state: PathBuf,
}

impl Ns {
    fn new(tag: &str) -> Self {
        let name = format!("ferrovs-rs-{tag}-{}", std::process::id());
        let _ = run(Command::new("ip").args(["netns", "del", &name]));
        assert!(
            run(Command::new("ip").args(["netns", "add", &name]))
                .status
                .success()
        );
        let state = std::env::temp_dir().join(format!("{name}.state"));
        let _ = std::fs::remove_file(&state);
        Self { name, state }
    }

    fn script(&self, args: &[&str]) -> Output {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/realserver.sh");
        run(Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(script)
            .args(args)
            .env("FERROVS_RS_STATE", &self.state))
    }

    fn sh(&self, cmd: &str) -> String {
        let out = run(Command::new("ip").args(["netns", "exec", &self.name, "sh", "-c", cmd]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Everything the script may touch.
    fn snapshot(&self) -> String {
        self.sh(
            "ip -4 -o addr show; ip -o link show; for k in all lo; do \
             sysctl net.ipv4.conf.$k.arp_ignore net.ipv4.conf.$k.arp_announce net.ipv4.conf.$k.rp_filter; done",
        )
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = run(Command::new("ip").args(["netns", "del", &self.name]));
        let _ = std::fs::remove_file(&self.state);
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn dr_apply_is_idempotent_and_undo_restores_the_start() {
    let ns = Ns::new("dr");
    let start = ns.snapshot();
    let dry = ns.script(&["--dry-run", "dr", "10.99.0.100"]);
    assert!(
        dry.status.success() && text(&dry).contains("add 10.99.0.100/32 on lo"),
        "{}",
        text(&dry)
    );
    assert_eq!(ns.snapshot(), start, "--dry-run changed something");

    let first = ns.script(&["dr", "10.99.0.100", "10.99.0.101"]);
    assert!(first.status.success(), "{}", text(&first));
    let applied = ns.snapshot();
    for want in [
        "inet 10.99.0.100/32",
        "inet 10.99.0.101/32",
        "net.ipv4.conf.all.arp_ignore = 1",
        "net.ipv4.conf.all.arp_announce = 2",
        "net.ipv4.conf.lo.arp_ignore = 1",
    ] {
        assert!(applied.contains(want), "{want} missing:\n{applied}");
    }
    let again = ns.script(&["dr", "10.99.0.100", "10.99.0.101"]);
    assert!(text(&again).contains("nothing to change"), "{}", text(&again));
    assert_eq!(ns.snapshot(), applied);

    let undo = ns.script(&["--undo"]);
    assert!(undo.status.success(), "{}", text(&undo));
    assert_eq!(ns.snapshot(), start);
    assert!(!ns.state.exists());
}

#[test]
fn tun_needs_ipip_and_refuses_bad_input_unchanged() {
    let ns = Ns::new("tun");
    let start = ns.snapshot();
    let bad = ns.script(&["dr", "10.99.0.300"]);
    assert!(!bad.status.success() && text(&bad).contains("not an IPv4 address"));
    assert_eq!(ns.snapshot(), start);

    let has_ipip =
        ns.sh("ip link show tunl0 2>/dev/null || (modprobe ipip 2>/dev/null && ip link show tunl0)");
    let tun = ns.script(&["tun", "10.99.0.100"]);
    if has_ipip.contains("tunl0") {
        assert!(tun.status.success(), "{}", text(&tun));
        assert!(ns.snapshot().contains("tunl0    inet 10.99.0.100/32"));
        assert!(ns.script(&["--undo"]).status.success());
    } else {
        assert!(!tun.status.success());
        assert!(text(&tun).contains("no ipip module"), "{}", text(&tun));
        assert_eq!(ns.snapshot(), start, "a refused TUN apply changed something");
    }
}
