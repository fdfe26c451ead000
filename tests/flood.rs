//! A SYN flood from a million random sources: the connection table stays at
//! its capacity, an established keep-alive connection keeps being answered
//! during and after the flood, and new connections get a stateless pick.

mod lab;

use std::time::{Duration, Instant};

use lab::{Daemon, Lab, RS1, RS2, VIP, wait_for};

/// One keep-alive connection (http.client never reconnects: a broken
/// connection is an error), a request every 50 ms: it marks `started` after
/// its first answer, and goes on until the test marks `done` and 20 more are
/// answered (bounded: 120 s, 2400 requests). Prints the requests made
/// during the flood and after it.
const LIVE: &str = r#"
import http.client, os, sys, time
vip, started, done = sys.argv[1], sys.argv[2], sys.argv[3]
c = http.client.HTTPConnection(vip, 80, timeout=5)
during = after = 0
deadline = time.time() + 120
while time.time() < deadline and during < 2400 and after < 20:
    c.request("GET", "/")
    body = c.getresponse().read().decode().strip()
    if body not in ("server1", "server2"):
        sys.exit("bad answer %r" % body)
    if os.path.exists(done):
        after += 1
    else:
        during += 1
        open(started, "w").close()
    time.sleep(0.05)
print(during, after)
"#;

/// Send `n` TCP SYNs to VIP:80 from random addresses in 100.64.0.0/10 and
/// ports, out of the client's eth0 (AF_PACKET, valid IPv4 checksums).
const FLOOD: &str = r#"
import random, socket, struct, sys
dst = bytes.fromhex(sys.argv[1].replace(":", ""))
n = int(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
src = s.getsockname()[4]
vip = socket.inet_aton(sys.argv[3])
eth = dst + src + b"\x08\x00"
tail = struct.pack("!IIBBHHH", 1, 0, 0x50, 0x02, 65535, 0, 0)
rnd = random.Random(7)
def csum(h):
    t = sum(struct.unpack("!10H", h))
    t = (t & 0xFFFF) + (t >> 16)
    t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF
sent = 0
for i in range(n):
    a = rnd.getrandbits(22)
    sip = bytes((100, 64 | (a >> 16), (a >> 8) & 255, a & 255))
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, i & 0xFFFF, 0, 64, 6, 0, sip, vip)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(eth + ip + struct.pack("!HH", 1024 + rnd.getrandbits(15), 80) + tail)
    sent += 1
print(sent)
"#;

const CAPACITY: u64 = 4096;
const SYNS: u64 = 1_000_000;

#[test]
fn a_syn_flood_fills_the_table_to_capacity_and_a_live_connection_keeps_going() {
    let lab = Lab::up();
    let cap = CAPACITY.to_string();
    let d = Daemon::start_with(&lab, &["--interface", "eth0", "--conn-max", &cap]);
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    for rs in [RS1, RS2] {
        d.ok(&["-a", "-t", &svc, "-r", &format!("{rs}:80"), "-g"]);
    }
    let out = lab.exec("dir", &["cat", "/sys/class/net/eth0/address"]);
    let dir_mac = String::from_utf8_lossy(&out.stdout).trim().to_string();

    // The live connection runs from before the flood until after it: no
    // race with a wall clock, each side waits for the other's mark.
    let (started, done) = (
        format!("/tmp/{}.flood-started", lab.name),
        format!("/tmp/{}.flood-done", lab.name),
    );
    let ns = lab.ns("client");
    let (s2, d2) = (started.clone(), done.clone());
    let live = std::thread::spawn(move || {
        std::process::Command::new("ip")
            .args(["netns", "exec", &ns, "python3", "-c", LIVE, VIP, &s2, &d2])
            .output()
            .expect("python3")
    });
    assert!(
        wait_for(Duration::from_secs(10), || std::path::Path::new(&started)
            .exists()),
        "the live connection never got its first answer:\n{}",
        d.log()
    );
    let start = Instant::now();
    let flood = lab.exec(
        "client",
        &["python3", "-c", FLOOD, &dir_mac, &SYNS.to_string(), VIP],
    );
    let flood_done = start.elapsed();
    std::fs::write(&done, "").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&flood.stdout).trim(),
        SYNS.to_string(),
        "{flood:?}"
    );
    let out = live.join().unwrap();
    for f in [&started, &done] {
        let _ = std::fs::remove_file(f);
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let counts: Vec<u32> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(
        out.status.success(),
        "the live connection broke: {}\n{}",
        lab::text(&out),
        d.log()
    );
    // Answered all through the flood (at 20 a second, a flood of seconds
    // sees dozens), and after it, on the one connection.
    assert!(
        matches!(counts[..], [during, 20] if during >= 5),
        "requests during and after the flood: {text}"
    );
    let bodies = counts.iter().sum::<u32>();

    // The table held at capacity: every other SYN was refused as table_full.
    let list = d.ok(&["-L", "-n"]);
    let entries: u64 = list
        .lines()
        .filter(|l| l.trim_start().starts_with("->"))
        .filter_map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            Some(c.get(4)?.parse::<u64>().ok()? + c.get(5)?.parse::<u64>().ok()?)
        })
        .sum();
    assert!(
        entries <= CAPACITY,
        "{entries} connections in a table of {CAPACITY}:\n{list}"
    );
    assert!(
        entries >= CAPACITY / 2,
        "the flood did not fill the table:\n{list}"
    );
    let counters = d.ok(&["--counters"]);
    let full: u64 = counters
        .lines()
        .find(|l| l.starts_with("total:"))
        .and_then(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.iter()
                .position(|x| *x == "table_full")
                .and_then(|i| w.get(i + 1)?.parse().ok())
        })
        .unwrap_or(0);
    assert!(full > SYNS / 2, "table_full {full}:\n{counters}");
    eprintln!(
        "flood: {SYNS} SYNs in {flood_done:?}; {entries} entries of {CAPACITY}; \
         table_full {full}; live connection: {bodies} answers"
    );
    // A full table still serves new connections, statelessly (the default
    // `--full-table stateless`).
    let (bodies, _) = lab.http_get(&[format!("http://{VIP}/")]);
    assert_eq!(bodies.len(), 1, "no answer after the flood:\n{}", d.log());
}
