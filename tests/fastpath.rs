//! The XDP fast path end to end (`--fast-path on`), on a lab whose switch
//! ports run an XDP program, as a physical NIC takes XDP_TX frames, with
//! default offloads (the client's TCP checksums arrive partial, and the
//! program finishes them): bytes intact, every packet counted once in
//! `--stats`, and the workers stay the truth: idle timeouts, FIN and `-C`
//! take flows out of the kernel's map.

mod lab;

use lab::{Daemon, Lab, RS1, VIP, total_counter, wait_for};
use std::time::Duration;

/// A DR lab with the fast path on and a service VIP:`port` on rs1.
fn fast_lab(port: u16, more: &[&str]) -> (Lab, Daemon) {
    let lab = Lab::up_xdp_peers("dr");
    let mut args = vec!["--interface", "eth0", "--fast-path", "on"];
    args.extend_from_slice(more);
    let d = Daemon::start_with(&lab, &args);
    let svc = format!("{VIP}:{port}");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    d.ok(&["-a", "-t", &svc, "-r", &format!("{RS1}:{port}"), "-g"]);
    (lab, d)
}

/// The number after `name` on the `fast path:` line of `--counters`.
fn fast_count(d: &Daemon, name: &str) -> u64 {
    let c = d.ok(&["--counters"]);
    let line = c.lines().find(|l| l.starts_with("fast path: ")).unwrap_or("");
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == name)
        .and_then(|i| words.get(i + 1)?.trim_end_matches(';').parse().ok())
        .unwrap_or(u64::MAX)
}

/// The fast path's flows now.
fn flows(d: &Daemon) -> u64 {
    fast_count(d, "flows")
}

#[test]
fn an_upload_goes_through_the_kernel_intact_and_is_counted_once() {
    let (lab, d) = fast_lab(9000, &[]);
    // The client's namespace sends no other TCP: its segment count is the
    // connection's (a capture can drop packets under load; this cannot).
    // OutSegs leaves retransmissions out (RFC 1213); the director sees them.
    let out_segs = || -> u64 {
        let snmp = lab::text(&lab.exec("client", &["cat", "/proc/net/snmp"]));
        let tcp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Tcp:")).collect();
        let field = |name: &str| -> u64 {
            let at = tcp[0].split_whitespace().position(|w| w == name).unwrap();
            tcp[1].split_whitespace().nth(at).unwrap().parse().unwrap()
        };
        field("OutSegs") + field("RetransSegs")
    };
    let before = out_segs();
    // Long enough that the offload (within a control tick, 20 ms) comes
    // early in it.
    let up = lab::upload(&lab, ("rs1", 9000, false), &format!("TCP:{VIP}:9000"), 40_000_000);
    assert!(up.is_ok(), "{up:?}\n{}", d.log());
    // The keeper hands a flow's counts back when it leaves the map, and
    // reads the punt counters once a second: within a few reads every
    // packet the kernel forwarded is counted with the workers', and the
    // checksums it finished are read (and the client's last ACKs are sent).
    let in_pkts = || -> (u64, String) {
        let stats = d.ok(&["-L", "-n", "--stats", "--exact"]);
        let line = stats
            .lines()
            .find(|l| l.starts_with(&format!("  -> {RS1}:9000")))
            .unwrap_or_else(|| panic!("{stats}"));
        (line.split_whitespace().nth(3).unwrap().parse().unwrap(), stats)
    };
    wait_for(Duration::from_secs(10), || {
        in_pkts().0 == out_segs() - before && fast_count(&d, "partial-completed") > 0
    });
    let client_sent = out_segs() - before;
    let counters = d.ok(&["--counters"]);
    let fast = total_counter(&counters, "fast_pkts");
    assert!(
        fast > client_sent / 2,
        "most went through the kernel: {fast} of {client_sent}\n{counters}"
    );
    // The client's offload left them partial: the kernel finished them (the
    // bytes arrived intact, so it finished them right).
    let completed = fast_count(&d, "partial-completed");
    assert!(
        completed > fast / 2 && completed != u64::MAX,
        "partial checksums finished in the kernel: {completed} of {fast}\n{counters}"
    );
    let (in_pkts, stats) = in_pkts();
    assert_eq!(
        in_pkts, client_sent,
        "--stats InPkts against the segments the client sent\n{stats}\n{counters}"
    );
    // The connection ended with FIN: out of the map, listed as closing.
    assert!(wait_for(Duration::from_secs(5), || flows(&d) == 0), "{counters}");
    let conns = d.ok(&["-L", "-n", "-c"]);
    assert!(
        conns.contains("TIME_WAIT") || conns.contains("FIN_WAIT") || conns.contains("CLOSE"),
        "{conns}"
    );
}

#[test]
fn idle_connections_time_out_of_the_map_and_clear_empties_it() {
    // ESTABLISHED times out after 3 s.
    let (lab, d) = fast_lab(9001, &[]);
    d.ok(&["--set", "3", "2", "3"]);
    let sink = lab.spawn(
        "rs1",
        &[
            "timeout",
            "30",
            "socat",
            "-u",
            "TCP-LISTEN:9001,reuseaddr,fork",
            "OPEN:/dev/null",
        ],
    );
    lab::listening(&lab, "rs1", 9001);
    // A connection that says a little and then idles.
    let py = format!(
        "import socket, time\ns = socket.create_connection(('{VIP}', 9001))\n\
         for _ in range(3):\n    s.send(b'hi\\n')\n    time.sleep(0.2)\ntime.sleep(10)\n"
    );
    let talk = || lab.spawn("client", &["timeout", "12", "python3", "-c", &py]);
    let idle = talk();
    assert!(
        wait_for(Duration::from_secs(5), || flows(&d) == 1),
        "never offloaded\n{}",
        d.log()
    );
    let json = d.ok(&["-L", "-n", "-c", "--json"]);
    assert!(
        json.contains("\"state\":\"ESTABLISHED\"") && json.contains("\"offloaded\":true"),
        "{json}"
    );
    // No packet for 3 s: the worker expires it, and the map lets it go.
    assert!(
        wait_for(Duration::from_secs(10), || flows(&d) == 0),
        "still offloaded\n{}",
        d.ok(&["--counters"])
    );
    assert!(!d.ok(&["-L", "-n", "-c"]).contains("ESTABLISHED"));
    drop(idle);
    // -C empties the map.
    d.ok(&["--set", "900", "120", "300"]);
    let again = talk();
    assert!(
        wait_for(Duration::from_secs(5), || flows(&d) == 1),
        "never offloaded\n{}",
        d.log()
    );
    d.ok(&["-C"]);
    assert_eq!(flows(&d), 0);
    drop(again);
    drop(sink);
}

/// `max_entries` of the daemon's BPF hash maps, from its fds' fdinfo (the
/// kernel's own account, not ours).
fn hash_map_sizes(pid: u32) -> Vec<u64> {
    let dir = format!("/proc/{pid}/fdinfo");
    let mut sizes = Vec::new();
    for e in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
    {
        let info = std::fs::read_to_string(e.path()).unwrap_or_default();
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        // BPF_MAP_TYPE_HASH is 1.
        if field("map_type:").as_deref() == Some("1") {
            if let Some(n) = field("max_entries:").and_then(|v| v.parse().ok()) {
                sizes.push(n);
            }
        }
    }
    sizes
}

/// rs1 on the NAT lab's server side.
const RS1_NAT: &str = "10.98.0.11";

#[test]
fn a_flood_of_new_flows_never_grows_the_map_past_conn_max() {
    // One worker, 64 connections: the map holds 64 entries, and each NAT
    // connection takes two (one a direction).
    let lab = Lab::up_xdp_peers("nat");
    let d = Daemon::start_with(
        &lab,
        &[
            "-i",
            "eth0",
            "-i",
            "eth1",
            "--fast-path",
            "on",
            "--conn-max",
            "64",
        ],
    );
    let svc = format!("{VIP}:53");
    d.ok(&["-A", "-u", &svc, "-s", "rr"]);
    d.ok(&["-a", "-u", &svc, "-r", &format!("{RS1_NAT}:53"), "-m"]);
    let sizes = hash_map_sizes(d.pid());
    assert!(sizes.contains(&64), "no 64-entry flow map: {sizes:?}");
    // 300 clients at once; each sends a first datagram (decided by the
    // worker), then, once the offloads are in, two more.
    let py = format!(
        "import socket, select, time\nsocks = []\nfor p in range(42000, 42300):\n\
         \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         \x20   s.bind(('0.0.0.0', p)); s.connect(('{VIP}', 53)); s.setblocking(False)\n\
         \x20   socks.append(s)\n\
         got = dict((s, 0) for s in socks)\n\
         def drain(until):\n\
         \x20   while time.time() < until:\n\
         \x20       r, _, _ = select.select(socks, [], [], 0.1)\n\
         \x20       for s in r:\n\
         \x20           while True:\n\
         \x20               try:\n                    s.recv(100); got[s] += 1\n\
         \x20               except OSError:\n                    break\n\
         for s in socks: s.send(b'q')\n\
         drain(time.time() + 1.0)\n\
         for _ in range(2):\n\
         \x20   for s in socks: s.send(b'q')\n\
         \x20   drain(time.time() + 1.0)\n\
         print(sum(1 for n in got.values() if n == 3))\n"
    );
    let out = lab.exec("client", &["timeout", "30", "python3", "-c", &py]);
    let answered: u64 = lab::text(&out).trim().parse().unwrap_or(0);
    // Let the keeper read the map once more.
    std::thread::sleep(Duration::from_millis(1500));
    let counters = d.ok(&["--counters"]);
    let (flows, in_map, full) = (
        fast_count(&d, "flows"),
        fast_count(&d, "map"),
        fast_count(&d, "full"),
    );
    assert!(
        flows <= 64 && in_map <= 64,
        "past capacity: {flows}/{in_map}\n{counters}"
    );
    assert!(flows > 0, "nothing offloaded\n{counters}");
    // Two-armed: the kernel redirected the offloaded flows' datagrams from
    // one link to the other (32 connections, four datagrams each way after
    // the first).
    let fast = total_counter(&counters, "fast_pkts");
    assert!(fast >= 32 * 4, "{fast} through the kernel\n{counters}");
    assert!(full > 0 && full != u64::MAX, "no offload was refused\n{counters}");
    // The connections the table took were all answered, offloaded or not.
    assert!(
        (60..=64).contains(&answered),
        "{answered} clients answered three times\n{counters}\n{}",
        lab::text(&out)
    );
}

/// An upload to `svc` (an IPv6 service on `lab`, served by rs1 at `rip`
/// by `method`) through the fast path: intact, and mostly through the
/// kernel. Returns the director's counters.
fn upload6(lab: &Lab, d: &Daemon, rip: &str, method: &str) -> String {
    let svc = format!("[{}]:9003", lab::VIP6);
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    d.ok(&["-a", "-t", &svc, "-r", &format!("[{rip}]:9003"), method]);
    let up = lab::upload(lab, ("rs1", 9003, true), &format!("TCP6:{svc}"), 20_000_000);
    assert!(up.is_ok(), "{up:?}\n{}", d.log());
    std::thread::sleep(Duration::from_millis(1500));
    let counters = d.ok(&["--counters"]);
    let (fast, rx) = (
        total_counter(&counters, "fast_pkts"),
        total_counter(&counters, "rx"),
    );
    assert!(
        fast > rx,
        "IPv6 went through the workers: {fast} in the kernel, {rx} here\n{counters}"
    );
    counters
}

#[test]
fn ipv6_dr_and_nat66_uploads_go_through_the_kernel_intact() {
    let lab = Lab::up_xdp_peers("dr");
    let d = Daemon::start_with(&lab, &["--interface", "eth0", "--fast-path", "on"]);
    upload6(&lab, &d, &lab::rs6(1), "-g");
    // One lab at a time (the next waits for this one's lock).
    drop(d);
    drop(lab);
    let lab = Lab::up_xdp_peers("nat");
    let d = Daemon::start_with(&lab, &["-i", "eth0", "-i", "eth1", "--fast-path", "on"]);
    let counters = upload6(&lab, &d, &lab::rs6_nat(1), "-m");
    // The client's default offloads: partial checksums finished in XDP.
    assert!(fast_count(&d, "partial-completed") > 0, "{counters}");
}
