//! VRRP against Debian's keepalived (installed by scripts/deps.sh), run
//! VRRP-only in the second director's namespace, and against a second
//! ferrovs: who holds the VIP, how fast it moves on SIGTERM (priority 0)
//! and SIGKILL (master down), preemption and `nopreempt`, VRRPv3 and
//! unicast peers, a failing `track_script`, and bad adverts counted by
//! reason. HTTP goes through ferrovs whenever it is master.

mod lab;

use lab::{Daemon, Lab, VIP, run, wait_for};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// keepalived in `dir2`, VRRP-only with pid files of its own, stopped on
/// drop.
struct Keepalived {
    child: Child,
    files: Vec<String>,
}

impl Keepalived {
    fn start(lab: &Lab, conf: &str) -> Self {
        let base = format!("/tmp/{}-ka", lab.name);
        let (file, pid, vpid) = (
            format!("{base}.conf"),
            format!("{base}.pid"),
            format!("{base}.vrrp.pid"),
        );
        std::fs::write(&file, conf).expect("keepalived.conf");
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.ns("dir2")])
            .args([
                "keepalived",
                "-n",
                "-l",
                "-P",
                "-f",
                &file,
                "-p",
                &pid,
                "-r",
                &vpid,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start keepalived");
        Self {
            child,
            files: vec![file, pid, vpid],
        }
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        let _ = run(Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        let gone = wait_for(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !gone {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// How a test's instances speak.
#[derive(Clone, Copy)]
struct Mode {
    version: u8,
    unicast: bool,
}

const V2: Mode = Mode {
    version: 2,
    unicast: false,
};

/// A `vrrp_instance` for the director at `me` (peer `peer`) with `prio`
/// and `extra` lines.
fn instance(mode: Mode, prio: u8, me: &str, peer: &str, extra: &str) -> String {
    let auth = if mode.version == 2 {
        "authentication {\n auth_type PASS\n auth_pass secret12\n}"
    } else {
        ""
    };
    let uni = if mode.unicast {
        format!("unicast_src_ip {me}\nunicast_peer {{\n {peer}\n}}")
    } else {
        String::new()
    };
    format!(
        "global_defs {{\n vrrp_version {v}\n}}\n\
         vrrp_instance VI_1 {{\n state BACKUP\n interface eth0\n virtual_router_id 51\n priority {prio}\n\
         advert_int 1\n {auth}\n {uni}\n {extra}\n virtual_ipaddress {{\n {VIP}/32\n }}\n}}\n",
        v = mode.version
    )
}

/// ferrovs' file: the instance and the DR service on the VIP.
fn ferrovs_conf(lab: &Lab, role: &str, vrrp: &str) -> String {
    let path = format!("/tmp/{}-{role}-ferrovs.conf", lab.name);
    let text = format!(
        "{vrrp}\nvirtual_server {VIP} 80 {{\n lb_algo rr\n lb_kind DR\n protocol TCP\n\
         real_server 10.99.0.11 80 {{\n }}\n real_server 10.99.0.12 80 {{\n }}\n}}\n"
    );
    std::fs::write(&path, text).expect("ferrovs conf");
    path
}

fn start_ferrovs(lab: &Lab, role: &str, conf: &str) -> Daemon {
    Daemon::start_in(lab, role, &[], &["-i", "eth0", "--keepalived", conf])
}

/// Whether `role` has the VIP.
fn has_vip(lab: &Lab, role: &str) -> bool {
    let out = lab.exec(role, &["ip", "-4", "addr", "show", "dev", "eth0"]);
    String::from_utf8_lossy(&out.stdout).contains(&format!("{VIP}/32"))
}

/// Wait up to `limit` for `role` to have (or not) the VIP; return how long
/// it took.
fn vip_within(lab: &Lab, role: &str, want: bool, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    wait_for(limit, || has_vip(lab, role) == want).then(|| t0.elapsed())
}

/// The VIP stays where it is for `d`: neither side moves.
fn stays(lab: &Lab, holder: &str, other: &str, d: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        if !has_vip(lab, holder) || has_vip(lab, other) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

fn state_of(d: &Daemon) -> String {
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["-L", "--vrrp", "--json"])).unwrap_or_default();
    v["instances"][0]["state"].as_str().unwrap_or("?").to_string()
}

/// The other director in `dir2`: keepalived, or a second ferrovs.
enum Peer {
    Keepalived(Keepalived),
    Ferrovs(Daemon),
}

#[derive(Clone, Copy)]
enum PeerKind {
    Keepalived,
    Ferrovs,
}

impl Peer {
    /// Start the peer with priority `prio` (and `extra` lines) in `mode`.
    fn start(lab: &Lab, kind: PeerKind, mode: Mode, prio: u8, extra: &str) -> Self {
        let vrrp = instance(mode, prio, "10.99.0.20", "10.99.0.10", extra);
        match kind {
            PeerKind::Keepalived => Self::Keepalived(Keepalived::start(lab, &vrrp)),
            PeerKind::Ferrovs => Self::Ferrovs(start_ferrovs(lab, "dir2", &ferrovs_conf(lab, "dir2", &vrrp))),
        }
    }

    /// What the peer says about itself, for failure messages.
    fn log(&self) -> String {
        match self {
            Self::Keepalived(k) => format!("keepalived pid {}", k.child.id()),
            Self::Ferrovs(d) => d.log(),
        }
    }
}

/// ferrovs in `dir` with priority 150 (and `extra`) in `mode`.
fn ours(lab: &Lab, mode: Mode, extra: &str) -> Daemon {
    let conf = ferrovs_conf(
        lab,
        "dir",
        &instance(mode, 150, "10.99.0.10", "10.99.0.20", extra),
    );
    start_ferrovs(lab, "dir", &conf)
}

/// ferrovs (`d`, at 150) becomes master after its master-down interval
/// (3.4 s) and the peer (at 100) stays backup without the VIP.
fn elected(lab: &Lab, d: &Daemon, peer: &Peer) {
    let ours = vip_within(lab, "dir", true, Duration::from_secs(6)).is_some();
    assert!(ours, "ferrovs never took the VIP: {}", d.log());
    let released = vip_within(lab, "dir2", false, Duration::from_secs(2)).is_some();
    assert!(released, "the peer kept the VIP as backup: {}", peer.log());
    assert_eq!(state_of(d), "MASTER");
}

/// ferrovs at 150 against a peer at 100: ferrovs is master and serves
/// HTTP; on SIGTERM the peer holds the VIP within 1 s; a new ferrovs
/// preempts it.
fn master_then_hand_over(kind: PeerKind, mode: Mode) {
    let lab = Lab::up_pair("dr");
    let peer = Peer::start(&lab, kind, mode, 100, "");
    let mut d = ours(&lab, mode, "");
    elected(&lab, &d, &peer);
    assert!(d.log().contains("(VI_1) Entering MASTER STATE"), "{}", d.log());
    let answers = lab.http_answers(&format!("http://{VIP}/"), 2);
    assert_eq!(answers, ["server1", "server2"], "{}", d.log());
    // SIGTERM: priority 0, the peer takes over after its skew (0.6 s).
    let t0 = Instant::now();
    assert!(d.stop_with("TERM"));
    let took = vip_within(&lab, "dir2", true, Duration::from_secs(3)).map(|_| t0.elapsed());
    eprintln!(
        "v{} unicast={}: the peer took over {took:?} after SIGTERM",
        mode.version, mode.unicast
    );
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(1)),
        "takeover on SIGTERM took {took:?}: {}",
        peer.log()
    );
    assert!(!has_vip(&lab, "dir"), "a stopped ferrovs left the VIP");
    // A ferrovs at 150 starts again and preempts.
    let d = ours(&lab, mode, "");
    assert!(
        vip_within(&lab, "dir2", false, Duration::from_secs(6)).is_some(),
        "no preemption"
    );
    assert!(
        vip_within(&lab, "dir", true, Duration::from_secs(1)).is_some(),
        "{}",
        d.log()
    );
}

/// SIGKILL: the peer at 100 takes over within its master down (3 × 1 s +
/// 0.609 s) and half a second.
fn sigkill_hands_over(kind: PeerKind, mode: Mode) {
    let lab = Lab::up_pair("dr");
    let peer = Peer::start(&lab, kind, mode, 100, "");
    let mut d = ours(&lab, mode, "");
    elected(&lab, &d, &peer);
    let t0 = Instant::now();
    assert!(d.stop_with("KILL"));
    let took = vip_within(&lab, "dir2", true, Duration::from_secs(6)).map(|_| t0.elapsed());
    eprintln!(
        "v{} unicast={}: the peer took over {took:?} after SIGKILL",
        mode.version, mode.unicast
    );
    assert!(
        took.is_some_and(|t| t < Duration::from_millis(3609 + 500)),
        "takeover on SIGKILL took {took:?}"
    );
}

/// A peer at 200 keeps ferrovs (150) backup; a ferrovs with `nopreempt`
/// leaves a lower master (100) alone.
fn higher_peer_and_nopreempt(kind: PeerKind, mode: Mode) {
    let lab = Lab::up_pair("dr");
    let peer = Peer::start(&lab, kind, mode, 200, "");
    assert!(
        vip_within(&lab, "dir2", true, Duration::from_secs(6)).is_some(),
        "the peer never became master"
    );
    let d = ours(&lab, mode, "");
    assert!(stays(&lab, "dir2", "dir", Duration::from_secs(5)), "{}", d.log());
    assert_eq!(state_of(&d), "BACKUP");
    drop(d);
    drop(peer);
    let peer = Peer::start(&lab, kind, mode, 100, "");
    assert!(
        vip_within(&lab, "dir2", true, Duration::from_secs(6)).is_some(),
        "{}",
        peer.log()
    );
    let d = ours(&lab, mode, "nopreempt");
    assert!(
        stays(&lab, "dir2", "dir", Duration::from_secs(6)),
        "nopreempt preempted: {}",
        d.log()
    );
    assert_eq!(state_of(&d), "BACKUP");
}

const V3: Mode = Mode {
    version: 3,
    unicast: false,
};
const UNICAST: Mode = Mode {
    version: 2,
    unicast: true,
};

/// The three cases against one peer in one mode, as test functions.
macro_rules! cases {
    ($name:ident, $kind:expr, $mode:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn master_then_hand_over_on_sigterm_and_preempt() {
                super::master_then_hand_over($kind, $mode);
            }
            #[test]
            fn sigkill_hands_over_within_master_down() {
                super::sigkill_hands_over($kind, $mode);
            }
            #[test]
            fn a_higher_peer_keeps_us_backup_and_nopreempt_waits() {
                super::higher_peer_and_nopreempt($kind, $mode);
            }
        }
    };
}

cases!(keepalived_v2, PeerKind::Keepalived, V2);
cases!(keepalived_v3, PeerKind::Keepalived, V3);
cases!(keepalived_unicast, PeerKind::Keepalived, UNICAST);
cases!(ferrovs_v2, PeerKind::Ferrovs, V2);

#[test]
fn two_ferrovs_directors_elect_and_hand_over() {
    let lab = Lab::up_pair("dr");
    // The backup tells a script of its transitions, with keepalived's
    // arguments.
    let (tell, told) = (
        format!("/tmp/{}-tell.sh", lab.name),
        format!("/tmp/{}-told", lab.name),
    );
    std::fs::write(&tell, format!("#!/bin/sh\necho \"$@\" >> {told}\n")).unwrap();
    let _ = run(Command::new("chmod").args(["+x", &tell]));
    let notify = format!("notify {tell}\nnotify_master \"{tell} became master\"");
    let conf2 = ferrovs_conf(&lab, "dir2", &instance(V2, 100, "", "", &notify));
    let conf1 = ferrovs_conf(&lab, "dir", &instance(V2, 150, "", "", ""));
    let backup = start_ferrovs(&lab, "dir2", &conf2);
    let mut master = start_ferrovs(&lab, "dir", &conf1);
    assert!(
        vip_within(&lab, "dir", true, Duration::from_secs(8)).is_some(),
        "{}",
        master.log()
    );
    assert!(
        vip_within(&lab, "dir2", false, Duration::from_secs(3)).is_some(),
        "{}",
        backup.log()
    );
    assert_eq!(
        lab.http_answers(&format!("http://{VIP}/"), 2),
        ["server1", "server2"]
    );
    let t0 = Instant::now();
    assert!(master.stop_with("TERM"));
    let took = vip_within(&lab, "dir2", true, Duration::from_secs(3)).map(|_| t0.elapsed());
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(1)),
        "took {took:?}: {}",
        backup.log()
    );
    // The new master serves new connections.
    assert_eq!(
        lab.http_answers(&format!("http://{VIP}/"), 2),
        ["server1", "server2"],
        "{}",
        backup.log()
    );
    assert_eq!(state_of(&backup), "MASTER");
    let said = |want: &str| std::fs::read_to_string(&told).unwrap_or_default().contains(want);
    let heard = wait_for(Duration::from_secs(3), || {
        said("INSTANCE VI_1 BACKUP 100") && said("INSTANCE VI_1 MASTER 100") && said("became master")
    });
    assert!(heard, "{:?}", std::fs::read_to_string(&told));
    let _ = std::fs::remove_file(&tell);
    let _ = std::fs::remove_file(&told);
}

#[test]
fn a_failing_track_script_faults_and_recovers() {
    let lab = Lab::up_pair("dr");
    let flag = format!("/tmp/{}-healthy", lab.name);
    std::fs::write(&flag, "").unwrap();
    let _ka = Keepalived::start(&lab, &instance(V2, 100, "", "", ""));
    let script = format!("vrrp_script chk {{\n script \"test -e {flag}\"\n interval 1\n}}\n");
    let vrrp = script + &instance(V2, 150, "", "", "track_script {\n chk\n}");
    let conf = ferrovs_conf(&lab, "dir", &vrrp);
    let d = start_ferrovs(&lab, "dir", &conf);
    assert!(
        vip_within(&lab, "dir", true, Duration::from_secs(6)).is_some(),
        "{}",
        d.log()
    );
    std::fs::remove_file(&flag).unwrap();
    // Within an interval or two: FAULT, the VIP released, keepalived master.
    assert!(
        vip_within(&lab, "dir", false, Duration::from_secs(4)).is_some(),
        "{}",
        d.log()
    );
    assert!(vip_within(&lab, "dir2", true, Duration::from_secs(2)).is_some());
    assert_eq!(state_of(&d), "FAULT");
    std::fs::write(&flag, "").unwrap();
    // Back to BACKUP, then it preempts keepalived's 100.
    assert!(
        vip_within(&lab, "dir", true, Duration::from_secs(8)).is_some(),
        "{}",
        d.log()
    );
    assert!(vip_within(&lab, "dir2", false, Duration::from_secs(2)).is_some());
    let _ = std::fs::remove_file(&flag);
}

/// Send crafted VRRPv2 adverts for VRID 51 from the client: each edit of a
/// good one (priority 250, so a taken one would change the election).
const BAD_ADVERTS: &str = r#"
import socket, struct
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s & 0xffff) + (s >> 16)
    return ~((s & 0xffff) + (s >> 16)) & 0xffff
def advert(vrid=51, pw=b"secret12", ttl=255, cut=0, bad_sum=False):
    m = struct.pack("!BBBBBBH4s", 0x21, vrid, 250, 1, 1, 1, 0, socket.inet_aton("10.99.0.100")) + pw
    c = csum(m) ^ (1 if bad_sum else 0)
    m = m[:6] + struct.pack("!H", c) + m[8:]
    m = m[:len(m) - cut]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xc0, 20 + len(m), 7, 0, ttl, 112, 0,
                     socket.inet_aton("10.99.0.2"), socket.inet_aton("224.0.0.18"))
    return ip + m
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, 25, b"eth0")
for p in [advert(ttl=254), advert(vrid=52), advert(pw=b"wrongpw!"), advert(cut=4), advert(bad_sum=True)]:
    s.sendto(p, ("224.0.0.18", 0))
"#;

#[test]
fn bad_adverts_are_counted_by_reason_and_change_nothing() {
    let lab = Lab::up_pair("dr");
    let conf = ferrovs_conf(&lab, "dir", &instance(V2, 150, "", "", ""));
    let d = start_ferrovs(&lab, "dir", &conf);
    assert!(
        vip_within(&lab, "dir", true, Duration::from_secs(6)).is_some(),
        "{}",
        d.log()
    );
    let out = lab.exec("client", &["python3", "-c", BAD_ADVERTS]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ignored = |name: &str| -> u64 {
        let v: serde_json::Value =
            serde_json::from_str(&d.ok(&["-L", "--vrrp", "--json"])).unwrap_or_default();
        v["ignored"][name].as_u64().unwrap_or(0)
    };
    let all = ["ttl", "vrid", "auth_pass", "length", "checksum"];
    let counted = wait_for(Duration::from_secs(3), || all.iter().all(|r| ignored(r) == 1));
    let listing = d.ok(&["-L", "--vrrp"]);
    assert!(counted, "{listing}");
    assert!(listing.contains("ignored adverts: "), "{listing}");
    // None of them (priority 250) took the master down.
    assert!(stays(&lab, "dir", "dir2", Duration::from_secs(2)), "{}", d.log());
    assert_eq!(state_of(&d), "MASTER");
}

/// The two-armed NAT pair's file for the director at `me` with `prio`:
/// the client-side VIP and the real servers' gateway in one sync group, and
/// a script that, when `flag` is gone, fails the server side.
fn nat_pair_conf(lab: &Lab, role: &str, prio: u8, flag: &str) -> String {
    let path = format!("/tmp/{}-{role}-ferrovs.conf", lab.name);
    // The group's notify script writes its arguments to FILE.told.
    let tell = format!("/tmp/{}-{role}-tell.sh", lab.name);
    std::fs::write(&tell, format!("#!/bin/sh\necho \"$@\" >> {tell}.told\n")).unwrap();
    let _ = run(Command::new("chmod").args(["+x", &tell]));
    let text = format!(
        "vrrp_script arm {{\n script \"test -e {flag}\"\n interval 1\n}}\n\
         vrrp_sync_group G {{\n group {{\n VI_EXT\n VI_INT\n }}\n notify \"{tell}\"\n}}\n\
         vrrp_instance VI_EXT {{\n interface eth0\n virtual_router_id 51\n priority {prio}\n advert_int 1\n\
         virtual_ipaddress {{\n {VIP}/32\n }}\n}}\n\
         vrrp_instance VI_INT {{\n interface eth1\n virtual_router_id 52\n priority {prio}\n advert_int 1\n\
         track_script {{\n arm\n }}\n virtual_ipaddress {{\n 10.98.0.254/24\n }}\n}}\n\
         virtual_server {VIP} 80 {{\n lb_algo rr\n lb_kind NAT\n protocol TCP\n\
         real_server 10.98.0.11 8080 {{\n }}\n real_server 10.98.0.12 8080 {{\n }}\n}}\n"
    );
    std::fs::write(&path, text).expect("ferrovs conf");
    path
}

/// Whether `role` holds both addresses of the pair (or neither).
fn holds_pair(lab: &Lab, role: &str) -> (bool, bool) {
    let out = lab.exec(role, &["ip", "-4", "addr", "show"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (
        text.contains(&format!("{VIP}/32")),
        text.contains("10.98.0.254/24"),
    )
}

#[test]
fn a_sync_group_moves_both_arms_of_a_nat_pair_together() {
    let lab = Lab::up_pair("nat");
    let flag = format!("/tmp/{}-arm", lab.name);
    std::fs::write(&flag, "").unwrap();
    let (c1, c2) = (
        nat_pair_conf(&lab, "dir", 150, &flag),
        nat_pair_conf(&lab, "dir2", 100, "/"),
    );
    let args = |c: &str| {
        vec![
            "-i".to_string(),
            "eth0".into(),
            "-i".into(),
            "eth1".into(),
            "--keepalived".into(),
            c.to_string(),
        ]
    };
    let a1 = args(&c1);
    let a2 = args(&c2);
    let a1: Vec<&str> = a1.iter().map(String::as_str).collect();
    let a2: Vec<&str> = a2.iter().map(String::as_str).collect();
    let backup = Daemon::start_in(&lab, "dir2", &[], &a2);
    let master = Daemon::start_in(&lab, "dir", &[], &a1);
    let both =
        |role: &str, want: bool| wait_for(Duration::from_secs(8), || holds_pair(&lab, role) == (want, want));
    assert!(both("dir", true), "{}", master.log());
    assert!(both("dir2", false), "{}", backup.log());
    assert_eq!(
        lab.http_answers(&format!("http://{VIP}/"), 2),
        ["server1", "server2"],
        "{}",
        master.log()
    );
    // A reload of an unchanged file moves nothing.
    let transitions = |d: &Daemon| -> u64 {
        let v: serde_json::Value =
            serde_json::from_str(&d.ok(&["-L", "--vrrp", "--json"])).unwrap_or_default();
        v["instances"]
            .as_array()
            .map_or(0, |a| a.iter().filter_map(|i| i["transitions"].as_u64()).sum())
    };
    let before = transitions(&master);
    master.ok(&["--reload"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        transitions(&master),
        before,
        "a needless transition on reload: {}",
        master.log()
    );
    // The server side fails on the master: its instance faults, the group
    // follows, and the peer takes both addresses.
    let t0 = Instant::now();
    std::fs::remove_file(&flag).unwrap();
    assert!(both("dir2", true), "{}\n{}", master.log(), backup.log());
    assert!(both("dir", false), "{}", master.log());
    eprintln!(
        "sync group moved in {:?} after the script's file went",
        t0.elapsed()
    );
    let told = format!("/tmp/{}-dir2-tell.sh.told", lab.name);
    let heard = wait_for(Duration::from_secs(3), || {
        std::fs::read_to_string(&told)
            .unwrap_or_default()
            .contains("GROUP G MASTER 0")
    });
    assert!(heard, "group notify: {:?}", std::fs::read_to_string(&told));
    assert_eq!(
        lab.http_answers(&format!("http://{VIP}/"), 2),
        ["server1", "server2"],
        "{}",
        backup.log()
    );
    let _ = std::fs::remove_file(&flag);
    for role in ["dir", "dir2"] {
        let tell = format!("/tmp/{}-{role}-tell.sh", lab.name);
        let _ = std::fs::remove_file(format!("{tell}.told"));
        let _ = std::fs::remove_file(tell);
    }
}

#[test]
fn a_reloaded_priority_preempts_without_restarting_the_instance() {
    let lab = Lab::up_pair("dr");
    let backup = Peer::start(&lab, PeerKind::Ferrovs, V2, 100, "");
    let master = ours(&lab, V2, "");
    elected(&lab, &master, &backup);
    let Peer::Ferrovs(b) = &backup else { unreachable!() };
    // The same file with priority 200, read again.
    let path = format!("/tmp/{}-dir2-ferrovs.conf", lab.name);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("priority 100", "priority 200");
    std::fs::write(&path, text).unwrap();
    b.ok(&["--reload"]);
    assert!(
        vip_within(&lab, "dir2", true, Duration::from_secs(6)).is_some(),
        "{}",
        b.log()
    );
    assert!(
        vip_within(&lab, "dir", false, Duration::from_secs(2)).is_some(),
        "{}",
        master.log()
    );
    let log = b.log();
    assert!(
        !log.contains("STOP STATE") && log.matches("Entering BACKUP STATE").count() == 1,
        "restarted: {log}"
    );
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["-L", "--vrrp", "--json"])).unwrap_or_default();
    assert_eq!(v["instances"][0]["priority"], 200);
}
