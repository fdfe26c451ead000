//! The shapes of the Linux kernel's own IPVS selftest
//! (`tools/testing/selftests/net/netfilter/ipvs.sh`), built here as our own:
//! a routed VIP (on the director's `lo`, the client routing it via the
//! director's address) and a two-armed director whose real server sits
//! behind its second interface. DR: the server answers the client straight
//! over the client's own segment; NAT: the server's default route is the
//! director. Offloads stay at their defaults; bytes are compared.
//!
//! ```text
//!  client ──br0── c1 ═══ d1 director d2 ═══ s1 server
//!               └ c2 ═══════════════════════ s2 (DR only: the reply path)
//! ```

mod lab;

use lab::{bin, random_file, run, text, wait_for};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// One director at a time: each busy-polls a core of this 2-core box.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const VIP: &str = "207.175.44.110";
const RIP: &str = "172.16.0.2";

/// Three namespaces wired as above, removed (with what runs in them) on
/// drop.
struct Topo {
    tag: String,
    kids: Vec<Child>,
    dir: std::path::PathBuf,
}

impl Topo {
    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.tag)
    }

    fn sh(&self, role: &str, script: &str) -> Output {
        let out = run(Command::new("ip").args(["netns", "exec", &self.ns(role), "sh", "-ec", script]));
        assert!(out.status.success(), "{role}: {script}: {}", text(&out));
        out
    }

    fn spawn(&mut self, role: &str, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        self.kids.push(child);
    }

    /// Build the namespaces; `dr` adds the server's leg on the client's
    /// segment (its reply path), else the server routes via the director.
    fn up(kind: &str) -> Self {
        let tag = format!("fvk{}{kind}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        let _ = std::fs::create_dir_all(&dir);
        let t = Self {
            tag,
            kids: Vec::new(),
            dir,
        };
        for r in ["c", "d", "s"] {
            let _ = run(Command::new("ip").args(["netns", "del", &t.ns(r)]));
            assert!(
                run(Command::new("ip").args(["netns", "add", &t.ns(r)]))
                    .status
                    .success()
            );
            t.sh(r, "ip link set lo up");
        }
        let (c, d, s) = (t.ns("c"), t.ns("d"), t.ns("s"));
        let link = |a: &str, an: &str, b: &str, bn: &str| {
            let out = run(Command::new("ip").args([
                "link", "add", a, "netns", an, "type", "veth", "peer", "name", b, "netns", bn,
            ]));
            assert!(out.status.success(), "{}", text(&out));
        };
        link("c1", &c, "d1", &d);
        link("d2", &d, "s1", &s);
        t.sh(
            "c",
            &format!(
                "ip link add br0 type bridge; ip link set c1 master br0; ip link set c1 up; \
                 ip link set br0 up; ip addr add 10.0.0.2/24 dev br0; ip route add {VIP}/32 via 10.0.0.1"
            ),
        );
        t.sh(
            "d",
            &format!(
                "ip addr add 10.0.0.1/24 dev d1; ip addr add 172.16.0.1/24 dev d2; \
                 ip link set d1 up; ip link set d2 up; ip addr add {VIP}/32 dev lo; \
                 sysctl -qw net.ipv4.ip_forward=1"
            ),
        );
        t.sh("s", &format!("ip addr add {RIP}/24 dev s1; ip link set s1 up"));
        if kind == "dr" {
            link("c2", &c, "s2", &s);
            t.sh("c", "ip link set c2 master br0; ip link set c2 up");
            t.sh(
                "s",
                &format!(
                    "ip addr add 10.0.0.3/24 dev s2; ip link set s2 up; ip addr add {VIP}/32 dev lo; \
                     sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
                     net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.s1.rp_filter=0"
                ),
            );
        } else {
            t.sh("s", "ip route add default via 172.16.0.1");
        }
        t
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        for k in &mut self.kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        for r in ["c", "d", "s"] {
            let _ = run(Command::new("ip").args(["netns", "del", &self.ns(r)]));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The director on both arms; the service VIP:8080 to RIP:8080 by `method`;
/// 64 KiB from the client arrive whole at the server.
fn carries(kind: &str, method: &str) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut t = Topo::up(kind);
    let socket = t.path("ctl.sock");
    let ns = t.ns("d");
    t.spawn(
        "d",
        &[bin(), "daemon", "-i", "d1", "-i", "d2", "--socket", &socket],
    );
    let ctl = |args: &[&str]| run(Command::new(bin()).args(args).env("FERROVS_SOCKET", &socket));
    assert!(
        wait_for(Duration::from_secs(20), || ctl(&["-L", "-n"]).status.success()),
        "the daemon in {ns} did not answer"
    );
    let svc = format!("{VIP}:8080");
    for args in [
        vec!["-A", "-t", &svc, "-s", "rr"],
        vec!["-a", "-t", &svc, "-r", "172.16.0.2:8080", method],
    ] {
        let out = ctl(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    let (sent, got) = (t.path("sent"), t.path("got"));
    random_file(&sent, 65536, 7);
    t.spawn(
        "s",
        &[
            "timeout",
            "20",
            "socat",
            "-u",
            "TCP-LISTEN:8080,reuseaddr",
            &format!("CREATE:{got}"),
        ],
    );
    assert!(
        wait_for(Duration::from_secs(10), || {
            let out =
                run(Command::new("ip").args(["netns", "exec", &t.ns("s"), "ss", "-Hltn", "sport = :8080"]));
            String::from_utf8_lossy(&out.stdout).contains("LISTEN")
        }),
        "server not listening"
    );
    let out = run(Command::new("ip").args([
        "netns",
        "exec",
        &t.ns("c"),
        "timeout",
        "20",
        "socat",
        "-u",
        &format!("OPEN:{sent}"),
        &format!("TCP:{VIP}:8080"),
    ]));
    assert!(out.status.success(), "{kind} {method}: client: {}", text(&out));
    let whole = wait_for(Duration::from_secs(10), || {
        std::fs::metadata(&got).is_ok_and(|m| m.len() == 65536)
    });
    assert!(whole, "{kind} {method}: the bytes did not arrive whole");
    assert!(
        run(Command::new("cmp").args([&sent, &got])).status.success(),
        "{kind} {method}: bytes differ"
    );
}

#[test]
fn routed_vip_through_a_two_armed_dr_director() {
    carries("dr", "-g");
}

#[test]
fn routed_vip_through_a_two_armed_nat_director() {
    carries("nat", "-m");
}
