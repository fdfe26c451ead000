//! Each checker against a loopback peer of the test's own: the verdicts and
//! their reasons. Lab tests (tests/keepalived.rs) run them against real
//! servers in namespaces.

use super::*;
use config::ServiceKey;
use config::keepalived::{CheckKind, Url};
use md5::{Digest, Md5};
use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, TcpListener};

fn check(kind: CheckKind, port: u16) -> Check {
    Check {
        service: ServiceKey::fwmark(1),
        rip: Ipv4Addr::LOCALHOST.into(),
        rport: port,
        weight: 1,
        inhibit_on_failure: false,
        alpha: false,
        kind,
        connect_ip: Ipv4Addr::LOCALHOST.into(),
        port,
        bindto: None,
        bind_port: None,
        delay_loop: 1,
        connect_timeout: 1,
        retry: 0,
        delay_before_retry: 0,
        warmup: 0,
        at: "test:1".into(),
    }
}

fn ctx() -> Context {
    Context::new(&config::keepalived::Keepalived::default())
}

fn attempt(c: &Check) -> Result<i64, String> {
    attempt_once(c, &ctx())
}

/// A one-shot HTTP server on loopback answering `body` with `status`.
fn serve_once(status: u16, body: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            // Read the whole request head: closing with unread bytes
            // would reset the connection under the client's read.
            let (mut buf, mut have) = ([0u8; 4096], 0);
            while have < buf.len() && !buf[..have].windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf[have..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => have += n,
                }
            }
            let _ = write!(
                s,
                "HTTP/1.0 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn tcp_check_follows_the_listener() {
    // Below the ephemeral range, which the other tests' port-0 listeners
    // (in parallel) take from: once closed, the port stays closed.
    let l = (20000..30000)
        .find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok())
        .expect("a free port below the ephemeral range");
    let port = l.local_addr().unwrap().port();
    assert_eq!(attempt(&check(CheckKind::Tcp, port)), Ok(0));
    drop(l);
    assert!(attempt(&check(CheckKind::Tcp, port)).is_err());
}

#[test]
fn bindto_and_bind_port_are_the_source() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut c = check(CheckKind::Tcp, port);
    c.bindto = Some(Ipv4Addr::new(127, 0, 0, 9).into());
    c.bind_port = Some(port.wrapping_add(1).max(1024));
    assert_eq!(attempt(&c), Ok(0));
    let (_, peer) = l.accept().unwrap();
    assert_eq!(
        peer,
        std::net::SocketAddr::from((Ipv4Addr::new(127, 0, 0, 9), c.bind_port.unwrap()))
    );
}

fn http(digest: Option<&str>, status: &[(u16, u16)]) -> CheckKind {
    CheckKind::Http {
        urls: vec![Url {
            path: "/".into(),
            digest: digest.map(str::to_string),
            status: status.to_vec(),
            virtualhost: None,
        }],
        tls: false,
        sni: false,
        protocol: "1.0".into(),
    }
}

#[test]
fn http_get_checks_status_ranges_and_digest() {
    let digest: String = Md5::digest(b"server1\n")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let port = serve_once(200, "server1\n");
    assert_eq!(attempt(&check(http(Some(&digest), &[(200, 200)]), port)), Ok(0));
    let port = serve_once(200, "server1\n");
    let err = attempt(&check(
        http(Some("00000000000000000000000000000000"), &[(200, 299)]),
        port,
    ))
    .unwrap_err();
    assert!(err.contains("digest"), "{err}");
    let port = serve_once(500, "oops");
    let err = attempt(&check(http(None, &[(200, 299), (301, 301)]), port)).unwrap_err();
    assert!(err.contains("status 500, want 200-299 301"), "{err}");
    let port = serve_once(301, "moved");
    assert_eq!(
        attempt(&check(http(None, &[(200, 299), (301, 301)]), port)),
        Ok(0)
    );
}

#[test]
fn ssl_get_without_a_tls_server_fails_in_the_handshake() {
    // A plain HTTP server behind an SSL_GET: the handshake must fail, never
    // count as up. (A TLS server is the lab test's nginx.)
    let port = serve_once(200, "plain");
    let mut kind = http(None, &[(200, 299)]);
    if let CheckKind::Http { tls, .. } = &mut kind {
        *tls = true;
    }
    let err = attempt(&check(kind, port)).unwrap_err();
    assert!(err.contains("TLS"), "{err}");
}

#[test]
fn udp_check_reads_a_port_unreachable_and_requires_a_reply_if_told() {
    let udp = |payload: &[u8], require_reply| CheckKind::Udp {
        payload: payload.to_vec(),
        require_reply,
    };
    let answering = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = answering.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while let Ok((n, peer)) = answering.recv_from(&mut b) {
            let _ = answering.send_to(&b[..n], peer);
        }
    });
    assert!(attempt(&check(udp(b"hi", true), port)).is_ok());
    // A port that is bound but silent: up unless a reply is required.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sport = silent.local_addr().unwrap().port();
    assert!(attempt(&check(udp(b"hi", false), sport)).is_ok());
    assert!(attempt(&check(udp(b"hi", true), sport)).is_err());
    drop(silent);
    // Nothing there: the kernel's port unreachable.
    let e = attempt(&check(udp(b"hi", false), sport)).unwrap_err();
    assert!(e.contains("refused"), "{e}");
}

#[test]
fn ping_check_wants_an_echo_reply() {
    // Down is a lab test (tests/keepalived.rs): a real server that stops
    // answering echoes; here, loopback answers.
    assert!(attempt(&check(CheckKind::Ping, 0)).is_ok(), "127.0.0.1 answers");
}

/// A DNS responder answering each query with `rcode`, after one datagram
/// with a wrong id (which the check must ignore).
fn dns_responder(rcode: u8) -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut b = [0u8; 512];
        if let Ok((n, peer)) = s.recv_from(&mut b) {
            let mut reply = b[..n].to_vec();
            reply[2] |= 0x80;
            reply[3] = (reply[3] & 0xf0) | rcode;
            let mut wrong = reply.clone();
            wrong[0] ^= 0xff;
            let _ = s.send_to(&wrong, peer);
            let _ = s.send_to(&reply, peer);
        }
    });
    port
}

#[test]
fn dns_check_wants_its_id_and_noerror() {
    let dns = CheckKind::Dns {
        qtype: 1,
        name: "www.example.com".into(),
    };
    assert_eq!(attempt(&check(dns.clone(), dns_responder(0))), Ok(0));
    let e = attempt(&check(dns, dns_responder(3))).unwrap_err();
    assert!(e.contains("rcode 3"), "{e}");
    let q = probe::dns_query(0x1234, 6, ".");
    assert_eq!(q, [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1]);
}

/// An SMTP greeter answering `greeting`, then 250 to HELO and 221 to QUIT;
/// it records the HELO line.
fn smtp_greeter(greeting: &'static str) -> (u16, std::sync::mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let _ = s.write_all(greeting.as_bytes());
        let mut r = std::io::BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        if r.read_line(&mut line).is_ok() {
            let _ = tx.send(line.trim_end().to_string());
            let _ = s.write_all(b"250 hello\r\n");
        }
        line.clear();
        if r.read_line(&mut line).is_ok() && line.starts_with("QUIT") {
            let _ = s.write_all(b"221 bye\r\n");
        }
    });
    (port, rx)
}

#[test]
fn smtp_check_wants_220_then_250_then_221() {
    let smtp = CheckKind::Smtp {
        helo: "checker.example.com".into(),
    };
    let (port, helo) = smtp_greeter("220-mail.example.com ESMTP\r\n220 ready\r\n");
    assert_eq!(attempt(&check(smtp.clone(), port)), Ok(0));
    assert_eq!(helo.recv().unwrap(), "HELO checker.example.com");
    let (port, _) = smtp_greeter("554 go away\r\n");
    let e = attempt(&check(smtp, port)).unwrap_err();
    assert!(e.contains("greeting answered 554, want 220"), "{e}");
}

#[test]
fn misc_check_follows_the_exit_code_and_misc_dynamic_sets_the_weight() {
    let misc = |cmd: &str, t, dynamic| CheckKind::Misc {
        path: cmd.into(),
        timeout: t,
        dynamic,
        run_as: None,
    };
    assert_eq!(attempt(&check(misc("exit 0", 2, false), 0)), Ok(0));
    assert!(
        attempt(&check(misc("exit 3", 2, false), 0))
            .unwrap_err()
            .contains("exit status: 3")
    );
    assert!(
        attempt(&check(misc("sleep 5", 1, false), 0))
            .unwrap_err()
            .contains("timed out")
    );
    // misc_dynamic: exit 12 is weight 10 (the server's own is 1: +9).
    assert_eq!(attempt(&check(misc("exit 12", 2, true), 0)), Ok(9));
    assert!(attempt(&check(misc("exit 1", 2, true), 0)).is_err());
}

#[test]
fn file_check_reads_the_number_times_the_weight() {
    let path = std::env::temp_dir().join(format!("ferrovs-file-check-{}", std::process::id()));
    let file = |weight| CheckKind::File {
        path: path.clone(),
        weight,
    };
    std::fs::write(&path, "0\n").unwrap();
    assert_eq!(attempt(&check(file(0), 0)), Ok(0));
    std::fs::write(&path, "1\n").unwrap();
    assert!(attempt(&check(file(0), 0)).unwrap_err().contains("holds 1"));
    std::fs::write(&path, "4").unwrap();
    assert_eq!(attempt(&check(file(3), 0)), Ok(12));
    // reverse: the weight goes negative; at or below 0 the server is down.
    assert!(attempt(&check(file(-3), 0)).is_err());
    std::fs::remove_file(&path).unwrap();
    assert!(attempt(&check(file(1), 0)).is_err(), "no file is down");
}

#[test]
fn checks_report_changes_on_their_schedule() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = crossbeam_channel::unbounded();
    let stats = Arc::new(Stats::default());
    let checks = vec![check(CheckKind::Tcp, port), check(CheckKind::Tcp, 1)];
    let running = start(
        &checks,
        &[(false, 0), (true, 0)],
        Arc::new(ctx()),
        stats.clone(),
        &tx,
    )
    .unwrap();
    let mut got: Vec<(usize, bool)> = (0..2)
        .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
        .map(|c| (c.check, c.up))
        .collect();
    got.sort_unstable();
    assert_eq!(got, [(0, true), (1, false)]);
    drop(running);
    assert!(stats.attempts.load(Ordering::Relaxed) >= 2);
}
