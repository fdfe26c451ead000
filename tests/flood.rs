//! A SYN flood from a million random sources: the connection table stays at
//! its capacity, an established keep-alive connection keeps being answered
//! during and after the flood, and new connections get a stateless pick.

mod lab;

use std::time::Instant;

use lab::{Daemon, Lab, RS1, RS2, VIP};

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

    // One keep-alive connection, a request every 50 ms, for longer than the
    // flood takes (bounded by curl's own -m).
    let url = format!("http://{VIP}/");
    let urls: Vec<String> = vec![url.clone(); 400];
    let ns = lab.ns("client");
    let start = Instant::now();
    let curl = std::thread::spawn(move || {
        let mut args = vec!["netns", "exec", &ns, "curl", "-s", "-m", "120", "--rate", "20/s"];
        args.extend(["-w", "connects=%{num_connects}\n"]);
        args.extend(urls.iter().map(String::as_str));
        let out = std::process::Command::new("ip")
            .args(&args)
            .output()
            .expect("curl");
        (String::from_utf8_lossy(&out.stdout).into_owned(), start.elapsed())
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let flood = lab.exec(
        "client",
        &["python3", "-c", FLOOD, &dir_mac, &SYNS.to_string(), VIP],
    );
    let flood_done = start.elapsed();
    assert_eq!(
        String::from_utf8_lossy(&flood.stdout).trim(),
        SYNS.to_string(),
        "{flood:?}"
    );
    let (text, curl_done) = curl.join().unwrap();

    let bodies = text
        .lines()
        .filter(|l| *l == "server1" || *l == "server2")
        .count();
    let connects: u32 = text
        .lines()
        .filter_map(|l| l.strip_prefix("connects="))
        .filter_map(|n| n.parse::<u32>().ok())
        .sum();
    assert!(
        flood_done < curl_done,
        "the flood ({flood_done:?}) outlasted the live connection ({curl_done:?})"
    );
    assert_eq!(bodies, 400, "answers lost:\n{}", d.log());
    assert_eq!(connects, 1, "the keep-alive connection broke:\n{text}");

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
        "flood: {SYNS} SYNs in {flood_done:?} (from 0.5 s); {entries} entries of {CAPACITY}; \
         table_full {full}; live connection: {bodies} answers"
    );
    // A full table still serves new connections, statelessly (the default
    // `--full-table stateless`).
    let (bodies, _) = lab.http_get(&[url]);
    assert_eq!(bodies.len(), 1, "no answer after the flood:\n{}", d.log());
}
