//! ICMP errors about a live connection, end to end: a "fragmentation
//! needed" from the client's side, quoting the connection's reply, reaches
//! the real server that holds the connection (DR), translated to it (NAT);
//! one from a NAT real server's side reaches the client with the VIP in the
//! quoted header. The receiving kernel is the judge: it matches the error
//! to its TCP socket only when addresses, ports and checksums are right
//! (the quoted sequence number is made up, so it then counts the error in
//! `TcpExtOutOfWindowIcmps` rather than lowering the path MTU).

mod lab;

use lab::{Daemon, KeepAlive, Lab, RS1, RS2, VIP};

/// Send a "fragmentation needed" (next-hop MTU 1400) to argv[1] through a
/// raw socket, quoting a TCP packet from argv[2]:argv[3] to argv[4]:argv[5].
const SEND_ERROR: &str = r#"
import socket, struct, sys
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s & 0xffff) + (s >> 16)
    return ~((s & 0xffff) + (s >> 16)) & 0xffff
to, src, sport, dst, dport = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 1440, 1, 0x4000, 63, 6, 0, socket.inet_aton(src), socket.inet_aton(dst))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
quoted = ip + struct.pack("!HHI", sport, dport, 12345)
icmp = struct.pack("!BBHHH", 3, 4, 0, 0, 1400) + quoted
icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).sendto(icmp, (to, 0))
"#;

/// The `TcpExt` counter `name` of `role`'s network namespace.
fn tcp_ext(lab: &Lab, role: &str, name: &str) -> u64 {
    let out = lab.exec(role, &["cat", "/proc/net/netstat"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let [names, values] = rows[..] else {
        panic!("no TcpExt in {role}: {text}")
    };
    let at = names.split_whitespace().position(|n| n == name).expect("counter");
    values
        .split_whitespace()
        .nth(at)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Send the error from `role`.
fn send_error(lab: &Lab, role: &str, to: &str, (src, sport): (&str, u16), (dst, dport): (&str, u16)) {
    let (sport, dport) = (sport.to_string(), dport.to_string());
    let out = lab.exec(role, &["python3", "-c", SEND_ERROR, to, src, &sport, dst, &dport]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Wait (bounded) until `role`'s `TcpExt` counter `name` passes `was`.
fn rises(lab: &Lab, role: &str, name: &str, was: u64) -> bool {
    lab::wait_for(std::time::Duration::from_secs(3), || {
        tcp_ext(lab, role, name) > was
    })
}

/// Open a keep-alive connection through the director; return it, the
/// server that answered (`rs1`/`rs2`) and the client's port.
fn live_connection(lab: &Lab, d: &Daemon) -> (KeepAlive, &'static str, u16) {
    let mut conn = KeepAlive::open(lab);
    let answer = conn.ask();
    let role = match answer.as_str() {
        "server1" => "rs1",
        "server2" => "rs2",
        other => panic!("no answer through the director: {other:?}\n{}", d.log()),
    };
    let listing = d.ok(&["-L", "-n", "-c"]);
    let cport = listing
        .lines()
        .find(|l| l.contains("ESTABLISHED"))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("10.99.0.2:")))
        .and_then(|w| w.rsplit(':').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no established connection: {listing}"));
    (conn, role, cport)
}

/// The other real server.
fn other(role: &str) -> &'static str {
    if role == "rs1" { "rs2" } else { "rs1" }
}

#[test]
fn dr_error_about_a_reply_reaches_the_connections_server() {
    let lab = Lab::up();
    let d = Daemon::start(&lab);
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    for rs in [RS1, RS2] {
        d.ok(&["-a", "-t", &svc, "-r", &format!("{rs}:80"), "-g"]);
    }
    let (_conn, role, cport) = live_connection(&lab, &d);
    let name = "OutOfWindowIcmps";
    let (was, was_other) = (tcp_ext(&lab, role, name), tcp_ext(&lab, other(role), name));
    // A router on the client's side could not pass the server's reply.
    send_error(&lab, "client", VIP, (VIP, 80), ("10.99.0.2", cport));
    assert!(
        rises(&lab, role, name, was),
        "{role} never matched the error\n{}",
        d.ok(&["--counters"])
    );
    assert_eq!(
        tcp_ext(&lab, other(role), name),
        was_other,
        "the other server got it"
    );
    assert!(d.ok(&["--counters"]).contains("icmp_errors 1"));
}

#[test]
fn nat_errors_are_translated_both_ways() {
    let lab = Lab::up_kind("nat");
    let d = Daemon::start_on(&lab, &["eth0", "eth1"]);
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    for rs in ["10.98.0.11", "10.98.0.12"] {
        d.ok(&["-a", "-t", &svc, "-r", &format!("{rs}:8080"), "-m"]);
    }
    let (_conn, role, cport) = live_connection(&lab, &d);
    let rip = if role == "rs1" { "10.98.0.11" } else { "10.98.0.12" };
    let name = "OutOfWindowIcmps";
    // From the client's side, about the reply (VIP:80 → client): the
    // server matches it only as its own packet, from RIP:8080.
    let was = tcp_ext(&lab, role, name);
    send_error(&lab, "client", VIP, (VIP, 80), ("10.99.0.2", cport));
    assert!(
        rises(&lab, role, name, was),
        "{role} never matched the error\n{}",
        d.ok(&["--counters"])
    );
    // From the server's side, about the request the director sent it
    // (client → RIP:8080): the client matches it only as about its own
    // packet to VIP:80, from the VIP.
    let was = tcp_ext(&lab, "client", name);
    send_error(&lab, role, "10.99.0.2", ("10.99.0.2", cport), (rip, 8080));
    assert!(
        rises(&lab, "client", name, was),
        "the client never matched the error\n{}",
        d.ok(&["--counters"])
    );
    assert!(d.ok(&["--counters"]).contains("icmp_errors 2"));
}
