//! keepalived-style health checks, in the control plane (never in a worker).
//!
//! Each check runs in a thread of its own on its `delay_loop`: TCP_CHECK
//! connects, HTTP_GET fetches its URLs and compares status and MD5 digest,
//! MISC_CHECK runs a command and reads its exit code. A server goes down
//! after `retry` failed attempts `delay_before_retry` apart, and up at the
//! first success; each change is reported once to the control thread, which
//! recomputes the rules (server removed, or weight 0 with
//! `inhibit_on_failure`; the sorry server when the quorum is lost).

use config::keepalived::{Check, CheckKind};
use crossbeam_channel::Sender;
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A server's health changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Index of the check in the configuration's list.
    pub check: usize,
    /// The server is up now.
    pub up: bool,
    /// Why (the last attempt's result).
    pub why: String,
}

/// The running checkers of one configuration; dropping it stops them.
#[derive(Debug)]
pub struct Checkers {
    stop: Arc<AtomicBool>,
}

impl Drop for Checkers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Start a thread per check; changes go to `tx`. A check starts from `up`
/// (its current state), and reports only changes from it.
pub fn start(checks: &[Check], initial: &[bool], tx: &Sender<Change>) -> Checkers {
    let stop = Arc::new(AtomicBool::new(false));
    for (i, check) in checks.iter().enumerate() {
        let (check, tx, stop) = (check.clone(), tx.clone(), stop.clone());
        let mut up = initial.get(i).copied().unwrap_or(true);
        let _ = std::thread::Builder::new()
            .name(format!("ferrovs-check-{i}"))
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (ok, why) = attempt_with_retries(&check, &stop);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if ok != up {
                        up = ok;
                        if tx.send(Change { check: i, up, why }).is_err() {
                            break;
                        }
                    }
                    sleep_unless_stopped(Duration::from_secs(u64::from(check.delay_loop.max(1))), &stop);
                }
            });
    }
    Checkers { stop }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
    }
}

/// Up at the first success; down after `retry` failures.
fn attempt_with_retries(check: &Check, stop: &AtomicBool) -> (bool, String) {
    let mut why = String::new();
    for n in 0..check.retry.max(1) {
        if n > 0 {
            sleep_unless_stopped(Duration::from_secs(u64::from(check.delay_before_retry)), stop);
        }
        match attempt(check) {
            Ok(()) => return (true, "ok".into()),
            Err(e) => why = e,
        }
    }
    (false, why)
}

/// One attempt of `check`.
pub fn attempt(check: &Check) -> Result<(), String> {
    let timeout = Duration::from_secs(u64::from(check.connect_timeout.max(1)));
    let addr = SocketAddr::from((check.rip, check.port));
    match &check.kind {
        CheckKind::Tcp => TcpStream::connect_timeout(&addr, timeout)
            .map(drop)
            .map_err(|e| format!("connect {addr}: {e}")),
        CheckKind::Http { urls } => {
            for (path, digest, status) in urls {
                http_get(addr, path, timeout, *status, digest.as_deref())?;
            }
            Ok(())
        }
        CheckKind::Misc { path, timeout } => misc(path, Duration::from_secs(u64::from((*timeout).max(1)))),
        CheckKind::Udp {
            payload,
            require_reply,
        } => udp(addr, payload, *require_reply, timeout),
        CheckKind::Ping => ping(check.rip, timeout),
    }
}

/// keepalived's UDP_CHECK: a datagram to the port; an ICMP port
/// unreachable (seen as a refused receive on a connected socket) is down,
/// and so is silence when a reply is required.
fn udp(addr: SocketAddr, payload: &[u8], require_reply: bool, timeout: Duration) -> Result<(), String> {
    let s = std::net::UdpSocket::bind(("0.0.0.0", 0)).map_err(|e| e.to_string())?;
    s.connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.send(payload).map_err(|e| format!("send to {addr}: {e}"))?;
    let mut buf = [0u8; 2048];
    match s.recv(&mut buf) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            if require_reply {
                Err(format!("no reply from {addr} within {timeout:?}"))
            } else {
                Ok(())
            }
        }
        Err(e) => Err(format!("{addr}: {e}")),
    }
}

/// keepalived's PING_CHECK: one ICMP echo, answered within `timeout`.
fn ping(rip: std::net::Ipv4Addr, timeout: Duration) -> Result<(), String> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    use std::io::Read;
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).map_err(|e| format!("ping: {e}"))?;
    let id = (std::process::id() as u16) ^ 0x5a5a;
    let mut echo = [
        8u8,
        0,
        0,
        0,
        (id >> 8) as u8,
        id as u8,
        0,
        1,
        b'f',
        b'e',
        b'r',
        b'r',
        b'o',
        b'v',
        b's',
        0,
    ];
    let sum = echo
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let c = !((sum & 0xffff) + (sum >> 16)) as u16;
    echo[2..4].copy_from_slice(&c.to_be_bytes());
    s.send_to(&echo, &SockAddr::from(SocketAddr::from((rip, 0))))
        .map_err(|e| format!("ping {rip}: {e}"))?;
    let until = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 1500];
    while let Some(left) = until
        .checked_duration_since(std::time::Instant::now())
        .filter(|d| !d.is_zero())
    {
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        let Ok(n) = (&s).read(&mut buf) else { break };
        // A raw socket hands over the IP header: the reply is after it.
        let ihl = usize::from(buf[0] & 0x0f) * 4;
        let from = std::net::Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
        let icmp = &buf[ihl.min(n)..n];
        if from == rip && icmp.len() >= 8 && icmp[0] == 0 && icmp[4..6] == echo[4..6] {
            return Ok(());
        }
    }
    Err(format!("no echo reply from {rip} within {timeout:?}"))
}

fn http_get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    status: Option<u16>,
    digest: Option<&str>,
) -> Result<(), String> {
    let fail = |what: &str| format!("GET http://{addr}{path}: {what}");
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail(&e.to_string()))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| fail(&e.to_string()))?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| fail(&e.to_string()))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
        addr.ip()
    )
    .map_err(|e| fail(&e.to_string()))?;
    let mut reply = Vec::new();
    s.take(1 << 20)
        .read_to_end(&mut reply)
        .map_err(|e| fail(&e.to_string()))?;
    let head_end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| fail("no HTTP reply"))?;
    let head = String::from_utf8_lossy(&reply[..head_end]);
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| fail("no status code"))?;
    let want = status.unwrap_or(200);
    if code != want {
        return Err(fail(&format!("status {code}, want {want}")));
    }
    if let Some(d) = digest {
        let got: String = Md5::digest(&reply[head_end + 4..])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if got != d {
            return Err(fail(&format!("digest {got}, want {d}")));
        }
    }
    Ok(())
}

fn misc(cmdline: &str, timeout: Duration) -> Result<(), String> {
    let mut child = Command::new("/bin/sh")
        .args(["-c", cmdline])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{cmdline}: {e}"))?;
    let end = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{cmdline}: {status}")),
            Ok(None) if Instant::now() >= end => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{cmdline}: timed out"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{cmdline}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::ServiceKey;
    use std::net::{Ipv4Addr, TcpListener};

    fn check(kind: CheckKind, port: u16) -> Check {
        Check {
            service: ServiceKey::fwmark(1),
            rip: Ipv4Addr::LOCALHOST,
            rport: port,
            weight: 1,
            inhibit_on_failure: false,
            alpha: false,
            kind,
            port,
            bindto: None,
            delay_loop: 1,
            connect_timeout: 1,
            retry: 1,
            delay_before_retry: 0,
        }
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
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(attempt(&check(CheckKind::Tcp, port)).is_ok());
        drop(l);
        assert!(attempt(&check(CheckKind::Tcp, port)).is_err());
    }

    #[test]
    fn http_get_checks_status_and_digest() {
        let digest: String = Md5::digest(b"server1\n")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let url = |d: Option<&str>, s| CheckKind::Http {
            urls: vec![("/".into(), d.map(str::to_string), s)],
        };
        let port = serve_once(200, "server1\n");
        assert_eq!(attempt(&check(url(Some(&digest), Some(200)), port)), Ok(()));
        let port = serve_once(200, "server1\n");
        let err = attempt(&check(url(Some("00000000000000000000000000000000"), None), port)).unwrap_err();
        assert!(err.contains("digest"), "{err}");
        let port = serve_once(500, "oops");
        let err = attempt(&check(url(None, None), port)).unwrap_err();
        assert!(err.contains("status 500, want 200"), "{err}");
    }

    #[test]
    fn udp_check_reads_a_port_unreachable_and_requires_a_reply_if_told() {
        let udp = |payload: &[u8], require_reply| CheckKind::Udp {
            payload: payload.to_vec(),
            require_reply,
        };
        // An answering responder.
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

    #[test]
    fn misc_check_follows_the_exit_code() {
        let misc = |cmd: &str, t| CheckKind::Misc {
            path: cmd.into(),
            timeout: t,
        };
        assert!(attempt(&check(misc("exit 0", 2), 0)).is_ok());
        assert!(
            attempt(&check(misc("exit 3", 2), 0))
                .unwrap_err()
                .contains("exit status: 3")
        );
        assert!(
            attempt(&check(misc("sleep 5", 1), 0))
                .unwrap_err()
                .contains("timed out")
        );
    }
}
