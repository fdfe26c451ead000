//! The sockets a check opens: where to (`connect_ip`/`connect_port`), from
//! where (`bindto`/`bind_port`), and bounded by `connect_timeout`. Shared by
//! every checker (`probe`, `http`).
//!
//! Must not touch: verdicts (the checkers decide what an answer means).

use config::keepalived::Check;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

pub fn timeout_of(check: &Check) -> Duration {
    Duration::from_secs(u64::from(check.connect_timeout.max(1)))
}

pub fn target(check: &Check) -> SocketAddr {
    SocketAddr::from((check.connect_ip, check.port))
}

/// The local address of a check: `bindto` and `bind_port`, if given.
pub fn local(check: &Check) -> Option<SocketAddr> {
    (check.bindto.is_some() || check.bind_port.is_some()).then(|| {
        SocketAddr::from((
            check.bindto.unwrap_or(any(check.connect_ip)),
            check.bind_port.unwrap_or(0),
        ))
    })
}

/// The unspecified address of `a`'s family.
pub fn any(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// `fut` within `t`, its error or the timeout said as `what`.
pub async fn within<T>(
    t: Duration,
    what: &str,
    fut: impl Future<Output = std::io::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(t, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {t:?}")),
    }
}

/// A TCP connection to the check's target, from its local address.
pub async fn connect(check: &Check) -> Result<TcpStream, String> {
    let addr = target(check);
    let what = format!("connect {addr}");
    let sock = if addr.is_ipv6() {
        TcpSocket::new_v6()
    } else {
        TcpSocket::new_v4()
    }
    .map_err(|e| format!("{what}: {e}"))?;
    if let Some(l) = local(check) {
        // The same source port again while the last one is in TIME_WAIT.
        sock.set_reuseaddr(true).map_err(|e| format!("{what}: {e}"))?;
        sock.bind(l).map_err(|e| format!("{what}: bind {l}: {e}"))?;
    }
    within(timeout_of(check), &what, sock.connect(addr)).await
}

pub async fn udp_socket(check: &Check) -> Result<UdpSocket, String> {
    let addr = target(check);
    let l = local(check).unwrap_or_else(|| SocketAddr::from((any(check.connect_ip), 0)));
    let s = UdpSocket::bind(l).await.map_err(|e| format!("bind {l}: {e}"))?;
    s.connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    Ok(s)
}
