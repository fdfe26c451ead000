//! IPv4 fragments through the director, with default offloads: UDP
//! datagrams of 3,000 and 9,000 bytes sent with DF off (so the client's
//! kernel cuts them to the 1500-byte MTU) arrive whole at one real server,
//! with one worker and with two, through DR and NAT (whose answers, as big,
//! come back fragmented through the director); a flood of stray fragments
//! with random ids leaves the daemon's memory bounded and live traffic
//! served.

mod lab;

use lab::{Bg, Daemon, Lab, RS1, RS2, VIP, total_counter, wait_for};
use std::time::Duration;

const PORT: u16 = 5000;

/// The real server's answerer: for each datagram, its name, the length and
/// the SHA-256 of what arrived, padded to the same length (so a big
/// question gets a big, fragmented answer).
const ANSWER: &str = r#"
import hashlib, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[2], int(sys.argv[3])))
while True:
    data, peer = s.recvfrom(65535)
    head = f"{sys.argv[1]} {len(data)} {hashlib.sha256(data).hexdigest()}".encode()
    s.sendto(head + b" " * max(0, len(data) - len(head)), peer)
"#;

/// The client: one datagram of each size in argv[3:] (DF off), each from a
/// port of its own; one line per answer: the server's name and "ok" when
/// it saw every byte and its answer came back whole.
const ASK: &str = r#"
import hashlib, socket, sys
vip, port = sys.argv[1], int(sys.argv[2])
for i, n in enumerate(int(x) for x in sys.argv[3:]):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER: IP_PMTUDISC_DONT
    s.settimeout(3)
    data = bytes((i * 31 + j) % 251 for j in range(n))
    s.sendto(data, (vip, port))
    try:
        ans, _ = s.recvfrom(65535)
        name, length, digest = ans.split()[:3]
        whole = int(length) == n and digest.decode() == hashlib.sha256(data).hexdigest()
        print(name.decode(), "ok" if whole and len(ans) == n else "bad")
    except (OSError, ValueError) as e:
        print("none", e)
"#;

/// Stray later fragments (offset 1480, random ids) to VIP:PORT through a
/// raw socket, as fast as the client sends them, `argv[2]` of them.
const FLOOD: &str = r#"
import random, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
dst = socket.inet_aton(sys.argv[1])
body = bytes(200)
for _ in range(int(sys.argv[2])):
    ident = random.randrange(1, 65536)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, 185, 64, 17, 0, bytes(4), dst)
    s.sendto(hdr + body, (sys.argv[1], 0))
"#;

/// Start the answerers on both real servers (bound to the VIP for DR, whose
/// answers must come from it), and the UDP service with `method`.
fn serve(lab: &Lab, d: &Daemon, method: &str) -> Vec<Bg> {
    let svc = format!("{VIP}:{PORT}");
    d.ok(&["-A", "-u", &svc, "-s", "rr"]);
    let nat = method == "-m";
    let (rs1, rs2) = if nat {
        ("10.98.0.11", "10.98.0.12")
    } else {
        (RS1, RS2)
    };
    let bind = if nat { "0.0.0.0" } else { VIP };
    let port = PORT.to_string();
    let bg = [("rs1", rs1, "server1"), ("rs2", rs2, "server2")]
        .into_iter()
        .map(|(role, rip, name)| {
            d.ok(&["-a", "-u", &svc, "-r", &format!("{rip}:{PORT}"), method]);
            lab.spawn(role, &["python3", "-c", ANSWER, name, bind, &port])
        })
        .collect();
    for role in ["rs1", "rs2"] {
        let up = wait_for(Duration::from_secs(10), || {
            let out = lab.exec(role, &["ss", "-Hlun", &format!("sport = :{PORT}")]);
            !out.stdout.is_empty()
        });
        assert!(up, "{role} does not listen on udp {PORT}");
    }
    bg
}

/// Ask with one datagram of each size; return the answer lines.
fn ask(lab: &Lab, sizes: &[usize]) -> Vec<String> {
    let port = PORT.to_string();
    let mut args = vec!["timeout", "60", "python3", "-c", ASK, VIP, &port];
    let sizes: Vec<String> = sizes.iter().map(ToString::to_string).collect();
    args.extend(sizes.iter().map(String::as_str));
    let out = lab.exec("client", &args);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Send big datagrams through a lab of `kind` with `queues` workers; each
/// must arrive whole at one server, both servers taking some.
fn whole_datagrams(kind: &str, queues: u32) {
    let lab = Lab::up_with(kind, queues);
    let q = queues.to_string();
    let mut args = vec!["-i", "eth0", "--queues", &q];
    if kind == "nat" {
        args.extend(["-i", "eth1"]);
    }
    let d = Daemon::start_with(&lab, &args);
    let method = if kind == "nat" { "-m" } else { "-g" };
    let _servers = serve(&lab, &d, method);
    let sizes = [3000, 9000, 3000, 9000, 3000, 9000, 3000, 9000];
    let answers = ask(&lab, &sizes);
    let counters = d.ok(&["--counters"]);
    eprintln!("{kind}, {queues} worker(s): {answers:?}\n{counters}");
    assert_eq!(answers.len(), sizes.len(), "{answers:?}\n{counters}");
    for a in &answers {
        assert!(a.ends_with(" ok"), "{a}: {answers:?}\n{counters}\n{}", d.log());
    }
    for name in ["server1", "server2"] {
        assert!(
            answers.iter().any(|a| a.starts_with(name)),
            "{name} took none: {answers:?}"
        );
    }
    assert!(!counters.contains(" fragment "), "fragments dropped: {counters}");
}

#[test]
fn dr_one_worker_delivers_whole_datagrams() {
    whole_datagrams("dr", 1);
}

#[test]
fn dr_two_workers_deliver_whole_datagrams() {
    whole_datagrams("dr", 2);
}

#[test]
fn nat_one_worker_translates_every_fragment_both_ways() {
    whole_datagrams("nat", 1);
}

#[test]
fn nat_two_workers_translate_every_fragment_both_ways() {
    whole_datagrams("nat", 2);
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_fragment_flood_leaves_memory_bounded_and_traffic_served() {
    let lab = Lab::up();
    let d = Daemon::start(&lab);
    let _servers = serve(&lab, &d, "-g");
    assert!(ask(&lab, &[3000]).iter().all(|a| a.ends_with(" ok")));
    let before = rss_kib(d.pid());
    let flood = lab.exec(
        "client",
        &["timeout", "60", "python3", "-c", FLOOD, VIP, "100000"],
    );
    assert!(
        flood.status.success(),
        "{}",
        String::from_utf8_lossy(&flood.stderr)
    );
    let after = rss_kib(d.pid());
    let counters = d.ok(&["--counters"]);
    eprintln!("RSS {before} KiB before, {after} KiB after\n{counters}");
    let field = |name: &str| total_counter(&counters, name);
    // Every stray fragment was held a while or dropped, and counted.
    assert!(field("fragment") > 50_000, "{counters}");
    assert!(field("frags_held") > 0, "{counters}");
    // The hold and the table are fixed arrays: nothing grows per fragment.
    assert!(
        after < before + 4096,
        "RSS grew from {before} KiB to {after} KiB under the flood"
    );
    let answers = ask(&lab, &[3000, 9000, 3000, 9000]);
    assert!(
        answers.iter().all(|a| a.ends_with(" ok")),
        "{answers:?}\n{counters}"
    );
}
