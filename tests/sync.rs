//! Connection sync between two ferrovs directors, VRRP and
//! `lvs_sync_daemon` from one keepalived.conf each: a TCP session running
//! through the VIP while the master dies goes on, on the same real server,
//! through the backup; a persistent client keeps its real server; bad sync
//! datagrams are counted and ignored.
//!
//! "The master dies" is its links going down and a SIGKILL, as a host that
//! fails: a killed process alone leaves the VIP configured on its
//! interface, and that kernel would answer the client with resets.

mod lab;

use lab::{Daemon, Lab, VIP, wait_for};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PORT: u16 = 7000;

/// ferrovs' keepalived.conf for director `role` at `prio`: VRRP on eth0,
/// the sync daemon following it, and a DR service on VIP:`port` (`extra`
/// lines in the service).
fn conf(lab: &Lab, role: &str, prio: u8, port: u16, extra: &str) -> String {
    let path = format!("/tmp/{}-{role}-sync.conf", lab.name);
    let text = format!(
        "global_defs {{\n lvs_sync_daemon eth0 VI_1\n}}\n\
         vrrp_instance VI_1 {{\n state BACKUP\n interface eth0\n virtual_router_id 51\n priority {prio}\n\
         advert_int 1\n virtual_ipaddress {{\n {VIP}/32\n }}\n}}\n\
         virtual_server {VIP} {port} {{\n lb_algo rr\n lb_kind DR\n protocol TCP\n {extra}\n\
         real_server 10.99.0.11 {port} {{\n }}\n real_server 10.99.0.12 {port} {{\n }}\n}}\n"
    );
    std::fs::write(&path, text).expect("conf");
    path
}

fn start(lab: &Lab, role: &str, conf: &str) -> Daemon {
    Daemon::start_in(lab, role, &[], &["-i", "eth0", "--keepalived", conf])
}

/// Start the backup (100) then the master (150); wait until the master
/// holds the VIP and each runs its sync daemon.
fn pair(lab: &Lab, port: u16, extra: &str) -> (Daemon, Daemon) {
    let backup = start(lab, "dir2", &conf(lab, "dir2", 100, port, extra));
    let master = start(lab, "dir", &conf(lab, "dir", 150, port, extra));
    syncing(&master, &backup);
    (master, backup)
}

/// An echo server on PORT of each real server (for DR the VIP is on their
/// lo), listening before this returns; stopped when the guards drop.
fn echo_servers(lab: &Lab) -> Vec<lab::Bg> {
    let echo = format!("TCP-LISTEN:{PORT},fork,reuseaddr");
    let guards = ["rs1", "rs2"]
        .map(|rs| lab.spawn(rs, &["socat", &echo, "EXEC:cat"]))
        .into();
    for rs in ["rs1", "rs2"] {
        let up = wait_for(Duration::from_secs(5), || {
            let out = lab.exec(rs, &["ss", "-Hltn", &format!("sport = :{PORT}")]);
            String::from_utf8_lossy(&out.stdout).contains("LISTEN")
        });
        assert!(up, "echo server on {rs}");
    }
    guards
}

/// Wait until `master` runs the master sync daemon and `backup` the
/// backup one.
fn syncing(master: &Daemon, backup: &Daemon) {
    let ready = wait_for(Duration::from_secs(10), || {
        master.ok(&["-L", "--daemon"]).starts_with("master sync daemon")
            && backup.ok(&["-L", "--daemon"]).starts_with("backup sync daemon")
    });
    assert!(ready, "{}\n{}", master.log(), backup.log());
}

/// Start the echoed session through the VIP: `n` lines, 100 ms apart.
fn session(lab: &Lab, n: usize) -> Child {
    let (port, n) = (PORT.to_string(), n.to_string());
    let args = [
        "netns",
        "exec",
        &lab.ns("client"),
        "python3",
        "-c",
        SESSION,
        VIP,
        &port,
        &n,
    ];
    Command::new("ip")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("client")
}

/// What the client said at its end.
fn said(client: Child) -> String {
    let out = client.wait_with_output().expect("client ends");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Wait until `backup` holds the session, then kill the master.
fn learnt_then_kill(lab: &Lab, master: &mut Daemon, backup: &Daemon) {
    let learnt = wait_for(Duration::from_secs(5), || holds(backup, PORT));
    assert!(
        learnt,
        "the backup never learnt the session: {}",
        backup.ok(&["-L", "--daemon", "--json"])
    );
    kill(lab, master);
}

/// Run 12 s of the echoed session through the VIP, killing the master
/// once the backup learnt it; return what the client said.
fn session_across_death(lab: &Lab, master: &mut Daemon, backup: &Daemon) -> String {
    let client = session(lab, 120);
    learnt_then_kill(lab, master, backup);
    said(client)
}

/// Kill the master as a failing host dies: its links go dark first (so
/// its kernel, which keeps the VIP configured, never answers a packet of
/// the session with a reset), then the process is killed.
fn kill(lab: &Lab, master: &mut Daemon) {
    for dev in ["eth0", "eth1"] {
        // eth1 exists on a two-armed director only.
        let _ = lab.exec("dir", &["ip", "link", "set", dev, "down"]);
    }
    assert!(master.stop_with("KILL"));
}

/// Whether `d` lists an ESTABLISHED connection to VIP:`port`.
fn holds(d: &Daemon, port: u16) -> bool {
    d.ok(&["-L", "-n", "-c"])
        .lines()
        .any(|l| l.contains("ESTABLISHED") && l.contains(&format!("{VIP}:{port}")))
}

/// The client: one line every 100 ms for `n` lines on one connection,
/// each echoed back; prints how many came back and whether it was reset.
const SESSION: &str = r#"
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
n, got = int(sys.argv[3]), 0
try:
    f = s.makefile("rb")
    for i in range(n):
        line = b"line %d\n" % i
        s.sendall(line)
        if f.readline() == line:
            got += 1
        time.sleep(0.1)
    print("echoed", got, "of", n)
except OSError as e:
    print("echoed", got, "of", n, "error", e)
"#;

#[test]
fn a_session_survives_the_masters_death_on_the_same_server() {
    let lab = Lab::up_pair("dr");
    let _echo = echo_servers(&lab);
    let (mut master, backup) = pair(&lab, PORT, "");
    let vip_held = wait_for(Duration::from_secs(8), || {
        let out = lab.exec("dir", &["ip", "-4", "addr", "show", "dev", "eth0"]);
        String::from_utf8_lossy(&out.stdout).contains(VIP)
    });
    assert!(vip_held, "{}", master.log());
    let said = session_across_death(&lab, &mut master, &backup);
    assert_eq!(said, "echoed 120 of 120", "{}", backup.log());
    assert!(
        backup.log().contains("(VI_1) Entering MASTER STATE"),
        "{}",
        backup.log()
    );
    assert!(backup.ok(&["-L", "--daemon"]).starts_with("master sync daemon"));
}

#[test]
fn a_persistent_client_keeps_its_server_after_failover() {
    let lab = Lab::up_pair("dr");
    // A second client address, so that the master's rr has moved on when
    // the client we follow comes: its template names server2, where a
    // backup without templates would start from server1.
    let out = lab.exec("client", &["ip", "addr", "add", "10.99.0.3/24", "dev", "eth0"]);
    assert!(out.status.success());
    let (mut master, backup) = pair(&lab, 80, "persistence_timeout 300");
    let vip_held = wait_for(Duration::from_secs(8), || {
        lab.exec("client", &["curl", "-s", "-m", "1", &format!("http://{VIP}/")])
            .status
            .success()
    });
    assert!(vip_held, "{}", master.log());
    let get = |from: &str| {
        let out = lab.exec(
            "client",
            &[
                "curl",
                "-s",
                "-m",
                "3",
                "--interface",
                from,
                &format!("http://{VIP}/"),
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // The curls above were from 10.99.0.2 (the first address): its
    // template names the server rr picked first; 10.99.0.3 gets the other.
    let first = get("10.99.0.2");
    let other = get("10.99.0.3");
    assert_ne!(first, other, "rr gave both clients one server");
    let learnt = wait_for(Duration::from_secs(5), || {
        backup
            .ok(&["-L", "-n", "-c"])
            .lines()
            .filter(|l| l.contains("NONE"))
            .count()
            >= 2
    });
    assert!(learnt, "templates not synced: {}", backup.ok(&["-L", "-n", "-c"]));
    kill(&lab, &mut master);
    let took = wait_for(Duration::from_secs(8), || {
        backup.log().contains("Entering MASTER STATE")
    });
    assert!(took, "{}", backup.log());
    // New connections after failover: each client keeps its server.
    let back = wait_for(Duration::from_secs(5), || !get("10.99.0.3").is_empty());
    assert!(back, "{}", backup.log());
    assert_eq!(
        (get("10.99.0.2"), get("10.99.0.3")),
        (first, other),
        "{}",
        backup.ok(&["-L", "-n", "-c"])
    );
}

/// Bad datagrams to the sync group, sent from the client: a size that
/// does not match, another syncid, an entry of a bad type, a truncated
/// entry, garbage.
const BAD_SYNC: &str = r#"
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.99.0.2"))
entry = struct.pack("!BBHIHHHHII4s4s4s", 0, 6, 36, 0x83, 1, 40000, 80, 80, 0, 900,
    socket.inet_aton("10.99.0.2"), socket.inet_aton("10.99.0.100"), socket.inet_aton("10.99.0.11"))
def msg(syncid, body, n=1, size=None):
    return struct.pack("!BBHBBH", 0, syncid, size or 8 + len(body), n, 1, 0) + body
for m in [msg(51, entry, size=99), msg(52, entry), msg(51, b"\x07" + entry[1:]), msg(51, entry[:30]), b"\xff\xff"]:
    s.sendto(m, ("224.0.0.81", 8848))
"#;

#[test]
fn bad_sync_datagrams_are_counted_and_ignored() {
    let lab = Lab::up_pair("dr");
    let (_master, backup) = pair(&lab, 80, "");
    let out = lab.exec("client", &["python3", "-c", BAD_SYNC]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = || -> serde_json::Value {
        serde_json::from_str(&backup.ok(&["-L", "--daemon", "--json"])).unwrap_or_default()
    };
    let counted = wait_for(Duration::from_secs(3), || {
        let d = &json()["daemons"][0];
        d["dropped"]["size"] == 1
            && d["dropped"]["syncid"] == 1
            && d["dropped"]["short"] == 1
            && d["bad_entries"]["malformed"] == 2
    });
    assert!(counted, "{}", json());
    assert!(!holds(&backup, 80), "a bad datagram made a connection");
}

/// 10,000 UDP flows to VIP:53 from one client, each from a port of its own,
/// through a raw socket, 500 every 20 ms.
const FLOWS: &str = r#"
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
src, dst = socket.inet_aton("10.99.0.2"), socket.inet_aton(sys.argv[1])
# Three datagrams a flow: a master syncs at the third (sync_threshold 3).
for p in range(20000, 20000 + int(sys.argv[2])):
    udp = struct.pack("!HHHH", p, 53, 8 + 4, 0) + b"ping"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
    for _ in range(3):
        s.sendto(ip + udp, (sys.argv[1], 0))
    if p % 300 == 0:
        time.sleep(0.02)
"#;

#[test]
fn ten_thousand_flows_reach_the_backup_within_two_seconds() {
    let lab = Lab::up_pair("dr");
    let udp = |role: &str, prio| {
        let path = format!("/tmp/{}-{role}-sync.conf", lab.name);
        let tcp = conf(&lab, role, prio, 80, "");
        let text = std::fs::read_to_string(&tcp)
            .unwrap()
            .replace("protocol TCP", "protocol UDP")
            .replace(" 80", " 53");
        std::fs::write(&path, text).unwrap();
        path
    };
    let backup = start(&lab, "dir2", &udp("dir2", 100));
    let master = start(&lab, "dir", &udp("dir", 150));
    syncing(&master, &backup);
    let sent = lab.exec("client", &["python3", "-c", FLOWS, VIP, "10000"]);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let count = |d: &Daemon| {
        d.ok(&["-L", "-n", "-c"])
            .lines()
            .filter(|l| l.starts_with("UDP"))
            .count()
    };
    // What the master holds once it stops growing (a burst may lose a
    // frame or two on the lab's links) is what the backup must hold.
    let mut held = 0;
    let settled = wait_for(Duration::from_secs(5), || {
        let now = count(&master);
        let same = now == held;
        held = now;
        same && now > 0
    });
    assert!(
        settled && held >= 9_900,
        "master holds {held}: {}",
        master.ok(&["--counters"])
    );
    let t0 = std::time::Instant::now();
    let synced = wait_for(Duration::from_secs(2), || count(&backup) == held);
    eprintln!(
        "the backup held {} of the master's {held} flows {:?} after",
        count(&backup),
        t0.elapsed()
    );
    assert!(
        synced,
        "backup: {}\n{}",
        backup.ok(&["-L", "--daemon", "--json"]),
        master.ok(&["--counters"])
    );
}

/// The NAT pair's file for `role` at `prio`: the client-side VIP and the
/// real servers' gateway in one sync group, the sync daemon following the
/// external instance, and a NAT service on VIP:PORT.
fn nat_conf(lab: &Lab, role: &str, prio: u8) -> String {
    let path = format!("/tmp/{}-{role}-natsync.conf", lab.name);
    let text = format!(
        "global_defs {{\n lvs_sync_daemon eth0 VI_EXT\n}}\n\
         vrrp_sync_group G {{\n group {{\n VI_EXT\n VI_INT\n }}\n}}\n\
         vrrp_instance VI_EXT {{\n state BACKUP\n interface eth0\n virtual_router_id 51\n priority {prio}\n\
         advert_int 1\n virtual_ipaddress {{\n {VIP}/32\n }}\n}}\n\
         vrrp_instance VI_INT {{\n state BACKUP\n interface eth1\n virtual_router_id 52\n priority {prio}\n\
         advert_int 1\n virtual_ipaddress {{\n 10.98.0.254/24\n }}\n}}\n\
         virtual_server {VIP} {PORT} {{\n lb_algo rr\n lb_kind NAT\n protocol TCP\n\
         real_server 10.98.0.11 {PORT} {{\n }}\n real_server 10.98.0.12 {PORT} {{\n }}\n}}\n"
    );
    std::fs::write(&path, text).expect("conf");
    path
}

#[test]
fn a_nat_session_survives_the_masters_death() {
    let lab = Lab::up_pair("nat");
    let _echo = echo_servers(&lab);
    let args = |c: &str| ["-i", "eth0", "-i", "eth1", "--keepalived", c].map(str::to_string);
    let (c2, c1) = (nat_conf(&lab, "dir2", 100), nat_conf(&lab, "dir", 150));
    let (a2, a1) = (args(&c2), args(&c1));
    let backup = Daemon::start_in(&lab, "dir2", &[], &a2.each_ref().map(String::as_str));
    let mut master = Daemon::start_in(&lab, "dir", &[], &a1.each_ref().map(String::as_str));
    syncing(&master, &backup);
    let said = session_across_death(&lab, &mut master, &backup);
    assert_eq!(
        said,
        "echoed 120 of 120",
        "{}\n{}",
        backup.log(),
        backup.ok(&["--counters"])
    );
}

/// The VRRP state of `d`'s instance.
fn vrrp_state(d: &Daemon) -> String {
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["-L", "--vrrp", "--json"])).unwrap_or_default();
    v["instances"][0]["state"].as_str().unwrap_or("").to_string()
}

#[test]
fn a_restarted_master_pulls_the_table_before_it_preempts_and_the_session_survives_failback() {
    let lab = Lab::up_pair("dr");
    let _echo = echo_servers(&lab);
    let (mut master, backup) = pair(&lab, PORT, "");
    assert!(
        wait_for(Duration::from_secs(8), || vrrp_state(&master) == "MASTER"),
        "{}",
        master.log()
    );
    // 30 s of session: failover to dir2, then back to a restarted dir.
    let client = session(&lab, 300);
    learnt_then_kill(&lab, &mut master, &backup);
    assert!(
        wait_for(Duration::from_secs(8), || vrrp_state(&backup) == "MASTER"),
        "{}",
        backup.log()
    );
    for dev in ["eth0", "eth1"] {
        let _ = lab.exec("dir", &["ip", "link", "set", dev, "up"]);
    }
    let again = start(&lab, "dir", &conf(&lab, "dir", 150, PORT, ""));
    // Held at priority 1 until it has dir2's table, then it preempts.
    assert!(
        wait_for(Duration::from_secs(15), || vrrp_state(&again) == "MASTER"),
        "{}",
        again.log()
    );
    let log = again.log();
    let warm = log
        .lines()
        .find(|l| l.contains("sync: warm:"))
        .unwrap_or_else(|| panic!("no warm-up line\n{log}"));
    assert!(
        warm.contains("connections from 10.99.0.20") && !warm.contains(" 0 connections"),
        "{warm}"
    );
    let master_at = log.find("Entering MASTER STATE").expect("became master");
    assert!(
        log.find("sync: warm:").is_some_and(|w| w < master_at),
        "warm after preempting\n{log}"
    );
    assert!(holds(&again, PORT), "{}", again.ok(&["-L", "-n", "-c"]));
    let v: serde_json::Value =
        serde_json::from_str(&again.ok(&["-L", "--daemon", "--json"])).unwrap_or_default();
    assert_eq!(v["warmup"]["outcome"], "pulled", "{v}");
    assert_eq!(
        said(client),
        "echoed 300 of 300",
        "{}\n{}",
        again.log(),
        backup.log()
    );
}

/// 30,000 sync datagrams (too short to be messages) and 30,000 VRRP-protocol
/// packets as fast as one client sends them.
const FLOOD: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.99.0.2"))
v = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
v.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.99.0.2"))
v.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
for _ in range(30000):
    s.sendto(b"\xff\xff", ("224.0.0.81", 8848))
    v.sendto(b"\x31\x33\x64\x01\x00\x01\x00\x00", ("224.0.0.18", 0))
"#;

#[test]
fn a_flood_of_sync_and_vrrp_datagrams_is_capped_and_counted() {
    let lab = Lab::up_pair("dr");
    let (master, backup) = pair(&lab, 80, "");
    let out = lab.exec("client", &["python3", "-c", FLOOD]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = || -> serde_json::Value {
        serde_json::from_str(&backup.ok(&["-L", "--daemon", "--json"])).unwrap_or_default()
    };
    let capped = wait_for(Duration::from_secs(3), || {
        json()["daemons"][0]["dropped"]["rate"].as_u64() > Some(0)
    });
    assert!(capped, "{}", json());
    let vrrp = backup.ok(&["-L", "--vrrp", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&vrrp).unwrap_or_default();
    assert!(
        v["ignored"]["rate"].as_u64() > Some(0),
        "no VRRP advert over the rate limit counted:\n{vrrp}"
    );
    let vrrp = backup.ok(&["-L", "--vrrp"]);
    // Both directors kept their roles, and the master still serves.
    assert!(
        master.ok(&["-L", "--vrrp"]).contains("MASTER"),
        "{}",
        master.ok(&["-L", "--vrrp"])
    );
    assert!(vrrp.contains("BACKUP"), "{vrrp}");
    assert_eq!(lab.http_answers(&format!("http://{}/", lab::VIP), 1).len(), 1);
}
