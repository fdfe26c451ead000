//! The connection sync daemons of `ferrovs daemon`, as ipvsadm starts the
//! kernel's (`--start-daemon master|backup`): the master drains the
//! workers' sync rings into v1 messages (`connsync`) multicast to the group
//! (224.0.0.81:8848, TTL 1 by default); the backup takes messages from the
//! group, v1 or v0, and hands each connection to the workers.
//!
//! Each daemon is a thread of its own; master and backup may run together.
//!
//! Must not touch: the rules or the connection tables (workers keep them).

use connsync::{Dropped, Encoder, Entry, Item, flags};
use dataplane::owner::{self, Handoff};
use dataplane::sync::{SyncConn, SyncMaster};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod transfer;

/// How often the master drains the rings.
const DRAIN_EVERY: Duration = Duration::from_millis(20);
/// A partly full message goes out this long after its first entry (the
/// kernel's flush time is 2 s).
const FLUSH_AFTER: Duration = Duration::from_secs(1);

pub use config::sync::{Role, Settings};

/// What a daemon counted.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages sent or received.
    pub messages: AtomicU64,
    /// Connections sent or received.
    pub conns: AtomicU64,
    /// Datagrams dropped whole: short, size mismatch, another syncid, past
    /// the rate limit ([`MESSAGES_PER_SEC`]).
    pub dropped: [AtomicU64; 4],
    /// Entries dropped: malformed (with the rest of their datagram),
    /// skipped (unknown mandatory option), IPv6 (not yet forwarded).
    pub bad_entries: [AtomicU64; 3],
    /// Send errors, or the workers' inboxes full.
    pub errors: AtomicU64,
    /// A warming-up director's transfer is done.
    pub warm: AtomicBool,
}

/// A metric family: name, help, and its samples (reason, value) of one
/// daemon.
type Family = (
    &'static str,
    &'static str,
    fn(&Counters) -> Vec<(&'static str, u64)>,
);

/// The running daemons' counters, shared with the metrics thread.
/// Each is labelled with its role (`master`, `backup`) or `warmup` (a
/// director's full-table transfer).
pub type Registry = std::sync::Arc<std::sync::Mutex<Vec<(&'static str, Arc<Counters>)>>>;

/// The Prometheus families of the daemons in `reg`.
pub fn metrics(reg: &Registry) -> String {
    use crate::prom::{Kind, Text};
    let list = reg.lock().map(|l| l.clone()).unwrap_or_default();
    let mut t = Text::new();
    let families: [Family; 4] = [
        (
            "sync_messages_total",
            "Sync messages sent (master) or taken in (backup).",
            |c| vec![("", c.messages.load(Ordering::Relaxed))],
        ),
        ("sync_connections_total", "Connections sent or received.", |c| {
            vec![("", c.conns.load(Ordering::Relaxed))]
        }),
        (
            "sync_dropped_total",
            "Datagrams or entries dropped, by reason.",
            |c| {
                let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
                vec![
                    ("short", l(&c.dropped[0])),
                    ("size", l(&c.dropped[1])),
                    ("syncid", l(&c.dropped[2])),
                    ("rate", l(&c.dropped[3])),
                    ("malformed", l(&c.bad_entries[0])),
                    ("skipped", l(&c.bad_entries[1])),
                    ("ipv6", l(&c.bad_entries[2])),
                ]
            },
        ),
        (
            "sync_errors_total",
            "Send errors, or the workers' inboxes full.",
            |c| vec![("", c.errors.load(Ordering::Relaxed))],
        ),
    ];
    for (name, help, f) in families {
        let name = format!("ferrovs_{name}");
        t.family(&name, Kind::Counter, help);
        for (role, c) in &list {
            for (reason, v) in f(c) {
                if reason.is_empty() {
                    t.sample(&name, &[("state", role)], v);
                } else {
                    t.sample(&name, &[("state", role), ("reason", &reason)], v);
                }
            }
        }
    }
    for (role, c) in list.iter().filter(|(r, _)| *r == "warmup") {
        let name = "ferrovs_sync_warm";
        t.family(
            name,
            Kind::Gauge,
            "1 once a director warming up holds the master's table (or gave up waiting).",
        );
        t.sample(name, &[("state", role)], u8::from(c.warm.load(Ordering::Relaxed)));
    }
    t.into_string()
}

/// A running daemon; stopped on drop.
#[derive(Debug)]
pub struct Daemon {
    /// Master or backup.
    pub role: Role,
    /// Its settings.
    pub settings: Settings,
    /// Its counters.
    pub counters: Arc<Counters>,
    /// A master's: transfer requests accepted, for the control loop to
    /// answer with the workers' tables.
    pub pulls: Option<crossbeam_channel::Receiver<std::net::TcpStream>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The interface's first IPv4 address.
fn iface_addr(name: &str) -> Result<Ipv4Addr, String> {
    pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| format!("no interface {name}"))?
        .ips
        .iter()
        .find_map(|n| match n.ip() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
        .ok_or_else(|| format!("{name} has no IPv4 address"))
}

impl Daemon {
    /// Start the master: drain `rings` into messages to the group.
    ///
    /// # Errors
    /// No such interface, or the socket cannot be set up.
    pub fn master(settings: Settings, rings: SyncMaster) -> Result<Self, String> {
        let addr = iface_addr(&settings.interface)?;
        let err = |e: std::io::Error| format!("sync master on {}: {e}", settings.interface);
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
        // As the kernel: from the interface's address, ephemeral port.
        sock.bind(&SockAddr::from(SocketAddrV4::new(addr, 0)))
            .map_err(err)?;
        sock.set_multicast_if_v4(&addr).map_err(err)?;
        sock.set_multicast_loop_v4(false).map_err(err)?;
        sock.set_multicast_ttl_v4(u32::from(settings.ttl)).map_err(err)?;
        sock.connect(&SockAddr::from(SocketAddrV4::new(settings.group, settings.port)))
            .map_err(err)?;
        let (stop, counters) = (Arc::new(AtomicBool::new(false)), Arc::new(Counters::default()));
        // Directors warming up ask here for the whole table.
        let listener = transfer::Listener::open(addr, settings.port, settings.syncid)
            .map_err(|e| format!("sync master on {}: transfer port: {e}", settings.interface))?;
        let (pulls_tx, pulls) = crossbeam_channel::bounded(4);
        let (s, c, st) = (settings.clone(), counters.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("sync-master".into())
            .spawn(move || send_loop(&sock, &s, &rings, &c, &st, &listener, &pulls_tx))
            .map_err(|e| e.to_string())?;
        log::info!(
            "sync thread started: state = MASTER, mcast_ifn = {}, syncid = {}",
            settings.interface,
            settings.syncid
        );
        Ok(Self {
            role: Role::Master,
            settings,
            counters,
            pulls: Some(pulls),
            stop,
            thread: Some(thread),
        })
    }

    /// Start the backup: hand what the group carries to the workers.
    ///
    /// # Errors
    /// No such interface, or the socket cannot be set up.
    pub fn backup(settings: Settings, handoff: Arc<Handoff>) -> Result<Self, String> {
        let addr = iface_addr(&settings.interface)?;
        let err = |e: std::io::Error| format!("sync backup on {}: {e}", settings.interface);
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
        sock.set_reuse_address(true).map_err(err)?;
        sock.bind_device(Some(settings.interface.as_bytes()))
            .map_err(err)?;
        sock.bind(&SockAddr::from(SocketAddrV4::new(settings.group, settings.port)))
            .map_err(err)?;
        sock.join_multicast_v4(&settings.group, &addr).map_err(err)?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(err)?;
        let (stop, counters) = (Arc::new(AtomicBool::new(false)), Arc::new(Counters::default()));
        let (s, c, st) = (settings.clone(), counters.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("sync-backup".into())
            .spawn(move || receive_loop(sock, &s, &handoff, &c, &st))
            .map_err(|e| e.to_string())?;
        log::info!(
            "sync thread started: state = BACKUP, mcast_ifn = {}, syncid = {}",
            settings.interface,
            settings.syncid
        );
        Ok(Self {
            role: Role::Backup,
            settings,
            counters,
            pulls: None,
            stop,
            thread: Some(thread),
        })
    }

    /// The line `ipvsadm -L --daemon` prints for it.
    pub fn line(&self) -> String {
        let s = &self.settings;
        format!(
            "{} sync daemon (mcast={}, syncid={}, maxlen={}, group={}, port={}, ttl={})",
            self.role.name(),
            s.interface,
            s.syncid,
            s.maxlen,
            s.group,
            s.port,
            s.ttl
        )
    }
}

fn send_loop(
    sock: &Socket,
    s: &Settings,
    rings: &SyncMaster,
    c: &Counters,
    stop: &AtomicBool,
    listener: &transfer::Listener,
    pulls: &crossbeam_channel::Sender<std::net::TcpStream>,
) {
    let mut enc = Encoder::new(s.syncid, usize::from(s.maxlen));
    let mut since: Option<Instant> = None;
    let send = |m: Vec<u8>, n: u64| {
        if sock.send(&m).is_ok() {
            c.messages.fetch_add(1, Ordering::Relaxed);
            c.conns.fetch_add(n, Ordering::Relaxed);
        } else {
            c.errors.fetch_add(1, Ordering::Relaxed);
        }
    };
    let mut pending = 0u64;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        for ring in rings.rings.iter() {
            while let Some(conn) = ring.pop() {
                if let Some(m) = enc.push(&entry(&conn)) {
                    send(m, pending);
                    pending = 0;
                    since = Some(Instant::now());
                }
                pending += 1;
                since.get_or_insert_with(Instant::now);
            }
        }
        if stopping || since.is_some_and(|t| t.elapsed() >= FLUSH_AFTER) {
            if let Some(m) = enc.flush() {
                send(m, pending);
            }
            pending = 0;
            since = None;
        }
        if stopping {
            return;
        }
        if let Some(stream) = listener.accept() {
            // Busy with one already: the asker retries.
            let _ = pulls.try_send(stream);
        }
        std::thread::sleep(DRAIN_EVERY);
    }
}

/// Sync messages a backup takes a second at most: a master sends a
/// message when its buffer fills (some 40 connections) or every 2 s, so
/// this is room for 400 000 connection changes a second, and a flood past
/// it costs nothing more.
pub const MESSAGES_PER_SEC: u32 = 10_000;

fn receive_loop(mut sock: Socket, s: &Settings, handoff: &Handoff, c: &Counters, stop: &AtomicBool) {
    // Any UDP payload fits; decode checks each message's own size.
    let mut buf = vec![0u8; 65536];
    let mut cap = crate::ratecap::RateCap::new(MESSAGES_PER_SEC);
    while !stop.load(Ordering::Relaxed) {
        let n = match sock.read(&mut buf) {
            Ok(n) => n,
            Err(_) => continue,
        };
        if !cap.allow() {
            c.dropped[3].fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if let Err(why) = take(&buf[..n], s.syncid, handoff, c) {
            let at = match why {
                Dropped::Short => 0,
                Dropped::Size => 1,
                Dropped::Syncid => 2,
            };
            c.dropped[at].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Decode one message and hand each of its connections to the worker that
/// owns it; return how many went.
///
/// # Errors
/// The message is dropped whole (and nothing was handed on).
pub fn take(msg: &[u8], syncid: u8, handoff: &Handoff, c: &Counters) -> Result<u64, Dropped> {
    take_with(msg, syncid, handoff, c, |to, conn| handoff.send_sync(to, conn))
}

/// [`take`], handing each connection on with `send` (to the worker it
/// names), which says whether it went.
///
/// # Errors
/// The message is dropped whole (and nothing was handed on).
pub fn take_with(
    msg: &[u8],
    syncid: u8,
    handoff: &Handoff,
    c: &Counters,
    mut send: impl FnMut(usize, SyncConn) -> bool,
) -> Result<u64, Dropped> {
    let items = connsync::decode(msg, syncid)?;
    c.messages.fetch_add(1, Ordering::Relaxed);
    let mut n = 0;
    for item in items {
        let e = match item {
            Item::Entry(e) => e,
            Item::Malformed => {
                c.bad_entries[0].fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Item::Skipped => {
                c.bad_entries[1].fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let Some(conn) = sync_conn(&e) else {
            c.bad_entries[2].fetch_add(1, Ordering::Relaxed);
            continue;
        };
        c.conns.fetch_add(1, Ordering::Relaxed);
        // The flow's owner, as far as the tuple tells; a worker that is
        // not (a persistent service) passes it on.
        let to = owner::owner_of(fold(conn.cip, conn.v6), conn.cport, handoff.workers());
        if send(to, conn) {
            n += 1;
        } else {
            c.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(n)
}

/// A worker's event as the kernel would sync it.
pub fn entry(c: &SyncConn) -> Entry {
    let mut f = u32::from(c.fwd);
    if c.fwd != 0 {
        f |= flags::NOOUTPUT;
    }
    if c.template {
        f |= flags::TEMPLATE;
    }
    // Templates and UDP are never ESTABLISHED in the kernel's sense.
    if c.template || c.proto != 6 || c.state != 1 {
        f |= flags::INACTIVE;
    }
    Entry {
        protocol: c.proto,
        flags: f,
        state: u16::from(c.state),
        cport: c.cport,
        vport: c.vport,
        dport: c.rport,
        fwmark: c.fwmark,
        timeout: c.timeout,
        caddr: ip(c.cip, c.v6),
        vaddr: ip(c.vip, c.v6),
        daddr: ip(c.rip, c.v6),
        seq: None,
        pe: None,
    }
}

/// A worker's address (host order, IPv4 in the low 32 bits) as sync
/// carries it.
fn ip(a: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::from(a as u32))
    }
}

/// The address the owner of a flow is chosen by (the workers' own fold).
fn fold(a: u128, v6: bool) -> u32 {
    use dataplane::wire::IpBits;
    if v6 { a.fold32() } else { a as u32 }
}

/// A received entry as a worker takes it; `None` for addresses of mixed
/// families or a state past the protocol's.
pub fn sync_conn(e: &Entry) -> Option<SyncConn> {
    let v6 = e.caddr.is_ipv6();
    let bits = |a: IpAddr| match a {
        IpAddr::V4(a) if !v6 => Some(u128::from(u32::from(a))),
        IpAddr::V6(a) if v6 => Some(u128::from(a)),
        _ => None,
    };
    let f = e.flags & flags::BACKUP_MASK;
    Some(SyncConn {
        proto: e.protocol,
        template: f & flags::TEMPLATE != 0,
        state: u8::try_from(e.state).ok().filter(|s| *s <= 10)?,
        fwd: (f & flags::FWD_MASK) as u8,
        v6,
        cip: bits(e.caddr)?,
        cport: e.cport,
        vip: bits(e.vaddr)?,
        vport: e.vport,
        rip: bits(e.daddr)?,
        rport: e.dport,
        fwmark: e.fwmark,
        timeout: e.timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_the_kernels_flags_and_back() {
        let c = SyncConn {
            proto: 6,
            template: false,
            state: 1,
            fwd: 3,
            v6: false,
            cip: 0x0a63_0002,
            cport: 40000,
            vip: 0x0a63_0064,
            vport: 80,
            rip: 0x0a63_000b,
            rport: 80,
            fwmark: 0,
            timeout: 900,
        };
        let e = entry(&c);
        assert_eq!(e.flags, 0x83, "DR TCP established, as the kernel sends it");
        assert_eq!(sync_conn(&e), Some(c));
        let t = SyncConn {
            template: true,
            cport: 0,
            state: 0,
            ..c
        };
        assert_eq!(entry(&t).flags, 0x1183, "a DR persistence template");
        let nat = SyncConn { fwd: 0, ..c };
        assert_eq!(entry(&nat).flags, 0, "NAT established");
        // IPv6 connections go as the kernel's IPv6 entries and come back.
        let six = SyncConn {
            v6: true,
            cip: 0x2001_0db8_0001_0000_0000_0000_0000_0002,
            vip: 0x2001_0db8_0000_0000_0000_0000_0000_0100,
            rip: 0x2001_0db8_0000_0000_0000_0000_0000_0011,
            ..c
        };
        let e = entry(&six);
        assert_eq!(e.vaddr, "2001:db8::100".parse::<IpAddr>().unwrap());
        assert_eq!(e.wire_len(), connsync::V6_LEN);
        assert_eq!(sync_conn(&e), Some(six));
        let mixed = Entry {
            daddr: "10.0.0.1".parse().unwrap(),
            ..e
        };
        assert_eq!(sync_conn(&mixed), None, "families do not mix");
    }

    #[test]
    fn metrics_name_the_daemon_and_the_reason() {
        let c = Arc::new(Counters::default());
        c.messages.store(3, Ordering::Relaxed);
        c.dropped[1].store(2, Ordering::Relaxed);
        let reg: Registry = Arc::new(std::sync::Mutex::new(vec![("backup", c)]));
        let text = metrics(&reg);
        assert!(
            text.contains("ferrovs_sync_messages_total{state=\"backup\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("ferrovs_sync_dropped_total{state=\"backup\",reason=\"size\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn the_daemon_line_is_ipvsadms() {
        let d = Daemon {
            role: Role::Backup,
            settings: Settings {
                syncid: 1,
                ..Settings::default()
            },
            counters: Arc::default(),
            pulls: None,
            stop: Arc::default(),
            thread: None,
        };
        assert_eq!(
            d.line(),
            "backup sync daemon (mcast=eth0, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"
        );
    }
}
