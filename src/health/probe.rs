//! One attempt of each checker, as keepalived makes it: TCP connect, UDP
//! datagram, ICMP echo, DNS query, SMTP greeting, MISC command, FILE value
//! (HTTP and SSL in `http`). Every attempt is bounded by its timeout and
//! originates from `bindto`/`bind_port` when given. Must not touch state: an
//! attempt returns its verdict and nothing else.

use super::Context;
use super::net::{connect, target, timeout_of, udp_socket, within};
use config::keepalived::{Check, CheckKind};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};

/// `Ok(weight delta)` (0 unless the checker is dynamic), or why not.
pub async fn attempt(check: &Check, ctx: &Context) -> Result<i64, String> {
    match &check.kind {
        CheckKind::Tcp => connect(check).await.map(|_| 0),
        CheckKind::Http {
            urls,
            tls,
            sni,
            protocol,
        } => {
            for url in urls {
                super::http::get(check, ctx, url, *tls, *sni, protocol).await?;
            }
            Ok(0)
        }
        CheckKind::Udp {
            payload,
            require_reply,
        } => udp(check, payload, *require_reply).await.map(|()| 0),
        CheckKind::Ping => ping(check).await.map(|()| 0),
        CheckKind::Dns { qtype, name } => dns(check, *qtype, name).await.map(|()| 0),
        CheckKind::Smtp { helo } => smtp(check, helo).await.map(|()| 0),
        CheckKind::Misc {
            path,
            timeout,
            dynamic,
            run_as,
        } => misc(check, ctx, path, *timeout, *dynamic, run_as.as_ref()).await,
        CheckKind::File { path, weight } => file(check, path, *weight),
        CheckKind::NotApplied { keyword } => Err(format!("{keyword} is not applied by ferrovs")),
    }
}

/// keepalived's UDP_CHECK: a datagram to the port; an ICMP port
/// unreachable (a refused receive on a connected socket) is down, and so is
/// silence when a reply is required.
async fn udp(check: &Check, payload: &[u8], require_reply: bool) -> Result<(), String> {
    let s = udp_socket(check).await?;
    let addr = target(check);
    s.send(payload)
        .await
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut buf = [0u8; 2048];
    match tokio::time::timeout(timeout_of(check), s.recv(&mut buf)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{addr}: {e}")),
        Err(_) if require_reply => Err(format!("no reply from {addr} within {:?}", timeout_of(check))),
        Err(_) => Ok(()),
    }
}

/// A DNS query: `name` (labels), `qtype`, class IN, recursion desired.
pub fn dns_query(id: u16, qtype: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len().min(63) as u8);
        q.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

/// keepalived's DNS_CHECK: the reply with our id and the response bit must
/// carry rcode 0 (NOERROR); other datagrams are ignored until the timeout.
async fn dns(check: &Check, qtype: u16, name: &str) -> Result<(), String> {
    let s = udp_socket(check).await?;
    let addr = target(check);
    let id = (std::process::id() as u16) ^ (check.port.rotate_left(7)) ^ (qtype << 3);
    let q = dns_query(id, qtype, name);
    s.send(&q).await.map_err(|e| format!("send to {addr}: {e}"))?;
    let wait = async {
        let mut buf = [0u8; 1500];
        loop {
            let n = s.recv(&mut buf).await?;
            if n < 12 || buf[..2] != id.to_be_bytes() || buf[2] & 0x80 == 0 {
                continue;
            }
            return Ok(buf[3] & 0x0f);
        }
    };
    match within(timeout_of(check), &format!("DNS {addr}"), wait).await? {
        0 => Ok(()),
        rcode => Err(format!("DNS {addr}: rcode {rcode}")),
    }
}

/// An SMTP reply: its code, after any `NNN-` continuation lines.
async fn smtp_reply(r: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let mut line = String::new();
    for _ in 0..64 {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        return line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an SMTP reply: {:?}", line.trim_end())));
    }
    Err(std::io::Error::other("too many continuation lines"))
}

/// keepalived's SMTP_CHECK: greeting 220, HELO answered 250, QUIT 221.
async fn smtp(check: &Check, helo: &str) -> Result<(), String> {
    let addr = target(check);
    let s = connect(check).await?;
    let mut r = BufReader::new(s);
    let t = timeout_of(check);
    let step = |want: u16, got: u16, what: &str| {
        if got == want {
            Ok(())
        } else {
            Err(format!("SMTP {addr}: {what} answered {got}, want {want}"))
        }
    };
    let code = within(t, &format!("SMTP {addr} greeting"), smtp_reply(&mut r)).await?;
    step(220, code, "greeting")?;
    let send = format!("HELO {helo}\r\n");
    within(t, &format!("SMTP {addr}"), r.get_mut().write_all(send.as_bytes())).await?;
    let code = within(t, &format!("SMTP {addr} HELO"), smtp_reply(&mut r)).await?;
    step(250, code, "HELO")?;
    within(t, &format!("SMTP {addr}"), r.get_mut().write_all(b"QUIT\r\n")).await?;
    let code = within(t, &format!("SMTP {addr} QUIT"), smtp_reply(&mut r)).await?;
    step(221, code, "QUIT")
}

/// keepalived's PING_CHECK: one ICMP (IPv6: ICMPv6) echo, answered within
/// the timeout.
async fn ping(check: &Check) -> Result<(), String> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let rip = check.connect_ip;
    // IPv6: echo request 128, reply 129; the kernel fills an ICMPv6 raw
    // socket's checksum and hands replies over without the IP header.
    let (domain, proto, request, reply) = match rip {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4, 8, 0),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6, 128, 129),
    };
    let s = Socket::new(domain, Type::RAW, Some(proto)).map_err(|e| format!("ping: {e}"))?;
    s.set_nonblocking(true).map_err(|e| format!("ping: {e}"))?;
    if let Some(b) = check.bindto {
        s.bind(&SockAddr::from(SocketAddr::from((b, 0))))
            .map_err(|e| format!("ping: bind {b}: {e}"))?;
    }
    let low = match rip {
        IpAddr::V4(a) => u32::from(a) as u16,
        IpAddr::V6(a) => u128::from(a) as u16,
    };
    let id = (std::process::id() as u16) ^ low;
    let echo = echo_request(request, id);
    // A raw socket driven as a datagram socket: tokio's own reactor, no
    // file-descriptor registration of ours. Connected, it hears only `rip`.
    let s = UdpSocket::from_std(std::net::UdpSocket::from(s)).map_err(|e| format!("ping: {e}"))?;
    let to = SocketAddr::from((rip, 0));
    s.connect(to).await.map_err(|e| format!("ping {rip}: {e}"))?;
    s.send(&echo).await.map_err(|e| format!("ping {rip}: {e}"))?;
    let wait = async {
        let mut buf = [0u8; 1500];
        loop {
            let n = s.recv(&mut buf).await?;
            // An IPv4 raw socket hands over the IP header: the reply is
            // after it.
            let ihl = if rip.is_ipv4() {
                usize::from(buf[0] & 0x0f) * 4
            } else {
                0
            };
            let icmp = &buf[ihl.min(n)..n];
            if icmp.len() >= 8 && icmp[0] == reply && icmp[4..6] == echo[4..6] {
                return Ok(());
            }
        }
    };
    within(timeout_of(check), &format!("ping {rip}"), wait).await
}

/// An ICMP echo request (type `kind`) with identifier `id`, checksummed
/// (over the message only: right for ICMP, replaced by the kernel for
/// ICMPv6).
fn echo_request(kind: u8, id: u16) -> [u8; 16] {
    let mut echo = [
        kind, 0, 0, 0, 0, 0, 0, 1, b'f', b'e', b'r', b'r', b'o', b'v', b's', 0,
    ];
    echo[4..6].copy_from_slice(&id.to_be_bytes());
    let sum: u32 = echo
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    echo[2..4].copy_from_slice(&(!(folded as u16)).to_be_bytes());
    echo
}

/// keepalived's MISC_CHECK: exit 0 is up; with `misc_dynamic`, 2-255 is up
/// with the server's weight set to (code - 2).
async fn misc(
    check: &Check,
    ctx: &Context,
    line: &str,
    timeout: u32,
    dynamic: bool,
    run_as: Option<&config::keepalived::RunAs>,
) -> Result<i64, String> {
    let cmd = ctx.scripts.command(line, run_as)?;
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stderr(std::process::Stdio::null()).kill_on_drop(true);
    let t = Duration::from_secs(u64::from(timeout.max(1)));
    let status = match tokio::time::timeout(t, cmd.status()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("{line}: {e}")),
        Err(_) => return Err(format!("{line}: timed out")),
    };
    match status.code() {
        Some(0) => Ok(0),
        Some(c @ 2..=255) if dynamic => Ok(i64::from(c - 2) - i64::from(check.weight)),
        _ => Err(format!("{line}: {status}")),
    }
}

/// keepalived's FILE_CHECK: the file holds a number; with weight 0 any
/// value but 0 is down, otherwise value × weight is added to the server's
/// weight and a total of 0 or less is down.
fn file(check: &Check, path: &std::path::Path, weight: i64) -> Result<i64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // keepalived reads it with strtol: no number is 0.
    let value: i64 = text
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    if weight == 0 {
        return if value == 0 {
            Ok(0)
        } else {
            Err(format!("{} holds {value}", path.display()))
        };
    }
    let delta = value.saturating_mul(weight);
    if i64::from(check.weight) + delta <= 0 {
        return Err(format!(
            "{} holds {value}: weight {} {delta:+} is not above 0",
            path.display(),
            check.weight
        ));
    }
    Ok(delta)
}
