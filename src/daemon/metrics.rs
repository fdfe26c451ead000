//! The Prometheus endpoint (`ferrovs daemon --metrics ADDR:PORT`): counters
//! per worker (frames, hand-offs, drops by reason, table occupancy) and per
//! service and real server (connections, packets, bytes), in the text
//! exposition format. Served on a thread of its own, one short request at a
//! time, from what the control thread published (the workers' counters and
//! the rules' book), so a slow scraper never holds up a rules change.

use super::Book;
use crate::prom::{Kind, Text};
use config::{Counts, Rules};
use dataplane::{Reason, WorkerStats};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Listen on `addr` without blocking the control loop.
///
/// # Errors
/// The address is taken or malformed.
pub fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// How often the metrics thread looks for a scraper and for `stop`.
const POLL: Duration = Duration::from_millis(50);

/// One more block of metrics text (VRRP, health checks, sync, the fast
/// path), made at each scrape by the part that owns those counts.
pub type Section = Box<dyn Fn() -> String + Send>;

/// Serve `listener` on a thread of its own until `stop`: every request is
/// answered with the metrics of `workers` and the newest `book`, then each
/// of `sections`.
pub fn spawn(
    listener: TcpListener,
    workers: Vec<Arc<WorkerStats>>,
    book: Arc<Mutex<Arc<Book>>>,
    sections: Vec<Section>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let body = || {
                        // The lock is held only to clone the Arc.
                        let b = book.lock().map(|b| b.clone()).unwrap_or_default();
                        let stats: Vec<&WorkerStats> = workers.iter().map(|w| &**w).collect();
                        let mut text = render(&stats, &b.rules, |id| b.counts(id, &workers));
                        for section in &sections {
                            text.push_str(&section());
                        }
                        text
                    };
                    let _ = answer(&mut s, &body);
                }
                Err(_) => std::thread::sleep(POLL),
            }
        }
    })
}

/// How long a scraper has to send its request head, all of it: one that
/// trickles it (slowloris) is cut off there, and the next one served.
pub const HEAD_WAIT: Duration = Duration::from_secs(2);
/// The most of a request head read (any path answers the same).
pub const HEAD_MAX: usize = 2048;

fn answer(s: &mut TcpStream, body: &impl Fn() -> String) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    // Read the request head (any path answers with the metrics).
    let mut buf = [0u8; HEAD_MAX];
    let mut seen = 0;
    let start = std::time::Instant::now();
    while seen < buf.len() {
        let left = HEAD_WAIT.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        s.set_read_timeout(Some(left))?;
        let n = s.read(&mut buf[seen..])?;
        seen += n;
        if n == 0 || buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let body = body();
    write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A metric family over real servers: name, type, help, and its value.
type Family = (&'static str, Kind, &'static str, fn(&Counts) -> u64);

/// A metric family over workers, likewise.
type WorkerFamily = (&'static str, Kind, &'static str, fn(&WorkerStats) -> u64);

const WORKER_FAMILIES: [WorkerFamily; 17] = [
    ("worker_rx_frames_total", Kind::Counter, "Frames received.", |w| {
        w.rx.get()
    }),
    ("worker_tx_frames_total", Kind::Counter, "Frames sent.", |w| {
        w.tx.get()
    }),
    (
        "worker_handoffs_total",
        Kind::Counter,
        "Frames handed to the worker owning their flow.",
        |w| w.handoffs.get(),
    ),
    (
        "worker_handoff_drops_total",
        Kind::Counter,
        "Frames dropped for lack of room to hand them over.",
        |w| w.handoff_drops.get(),
    ),
    (
        "worker_connections",
        Kind::Gauge,
        "Connections in the worker's table.",
        |w| w.conns.get(),
    ),
    (
        "worker_checksums_completed_total",
        Kind::Counter,
        "TCP/UDP checksums a sender's offload left partial, completed.",
        |w| w.csum_completed.get(),
    ),
    (
        "worker_fragments_held_total",
        Kind::Counter,
        "Later IPv4 fragments that waited for their first fragment's decision.",
        |w| w.frags_held.get(),
    ),
    (
        "worker_icmp_errors_total",
        Kind::Counter,
        "ICMP errors about a connection sent on to its real server or client.",
        |w| w.icmp_errors.get(),
    ),
    (
        "worker_sync_sent_total",
        Kind::Counter,
        "Connections handed to the master sync daemon.",
        |w| w.sync_sent.get(),
    ),
    (
        "worker_sync_drops_total",
        Kind::Counter,
        "Sync events dropped: the ring to the sync daemon was full.",
        |w| w.sync_drops.get(),
    ),
    (
        "worker_sync_learnt_total",
        Kind::Counter,
        "Connections learnt from a master director.",
        |w| w.sync_learnt.get(),
    ),
    (
        "worker_sync_unbound_total",
        Kind::Counter,
        "Learnt connections not kept: no such service or server here, or a full table.",
        |w| w.sync_unbound.get(),
    ),
    (
        "worker_table_full_total",
        Kind::Counter,
        "New flows that found the table full.",
        |w| w.table_full.get(),
    ),
    (
        "worker_fast_packets_total",
        Kind::Counter,
        "Packets of this worker's connections the XDP fast path forwarded.",
        |w| w.fast_pkts.get(),
    ),
    (
        "worker_fast_offloads_total",
        Kind::Counter,
        "Flow map entries asked for (two for a NAT connection).",
        |w| w.fast_offloads.get(),
    ),
    (
        "worker_fast_removals_total",
        Kind::Counter,
        "Flow map entries given back.",
        |w| w.fast_removals.get(),
    ),
    (
        "worker_fast_drops_total",
        Kind::Counter,
        "Fast-path events lost to a full ring.",
        |w| w.fast_drops.get(),
    ),
];

/// Render every metric.
pub fn render(workers: &[&WorkerStats], rules: &Rules, counts: impl Fn(u32) -> Counts) -> String {
    let mut t = Text::new();
    t.family(
        "ferrovs_build_info",
        Kind::Gauge,
        "The running binary: its version and commit (always 1).",
    )
    .sample(
        "ferrovs_build_info",
        &[("version", &crate::VERSION), ("commit", &crate::COMMIT)],
        1,
    );
    for (name, kind, help, f) in WORKER_FAMILIES {
        let name = format!("ferrovs_{name}");
        t.family(&name, kind, help);
        for (q, w) in workers.iter().enumerate() {
            t.sample(&name, &[("worker", &q)], f(w));
        }
    }
    let name = "ferrovs_worker_drops_total";
    t.family(name, Kind::Counter, "Frames dropped, by reason.");
    for (q, w) in workers.iter().enumerate() {
        for r in Reason::ALL {
            t.sample(name, &[("worker", &q), ("reason", &r.name())], w.drops(r));
        }
    }
    let servers: Vec<Server<'_>> = rules
        .services
        .iter()
        .flat_map(|svc| svc.dests.iter().map(move |d| (svc, d)))
        .map(|(svc, d)| (svc, d, counts(d.id)))
        .collect();
    render_servers(&mut t, &servers);
    node_ipvs(&mut t, &servers);
    t.into_string()
}

/// A family's name, help and what its value is.
type Named<F> = (&'static str, &'static str, F);
/// A family of one value summed over every server.
type Total = Named<fn(&Counts) -> u64>;
/// A family over servers, with their settings.
type Backend = Named<fn(&config::RealServer, &Counts) -> u64>;

/// A real server of the rules, its service and its counts.
type Server<'a> = (&'a config::VirtualService, &'a config::RealServer, Counts);

/// `ferrovs_server_*` and `ferrovs_real_server_weight`, labelled as
/// ipvsadm names them: the service `TCP 10.0.0.100:80` (IPv6 in brackets, a
/// mark service as `FWM N`), the server `10.0.0.11:80`.
fn render_servers(t: &mut Text, servers: &[Server<'_>]) {
    let server_families: [Family; 7] = [
        (
            "server_connections_total",
            Kind::Counter,
            "Connections scheduled to the real server.",
            |c| c.conns,
        ),
        (
            "server_active_connections",
            Kind::Gauge,
            "ESTABLISHED connections.",
            |c| c.active,
        ),
        (
            "server_inactive_connections",
            Kind::Gauge,
            "Connections in other states.",
            |c| c.inactive,
        ),
        (
            "server_in_packets_total",
            Kind::Counter,
            "Packets client to server.",
            |c| c.in_pkts,
        ),
        (
            "server_out_packets_total",
            Kind::Counter,
            "Packets server to client (NAT).",
            |c| c.out_pkts,
        ),
        (
            "server_in_bytes_total",
            Kind::Counter,
            "Bytes client to server.",
            |c| c.in_bytes,
        ),
        (
            "server_out_bytes_total",
            Kind::Counter,
            "Bytes server to client (NAT).",
            |c| c.out_bytes,
        ),
    ];
    let labels = |svc: &config::VirtualService, d: &config::RealServer| {
        (svc.key.to_string(), config::addr_port(d.addr, d.port))
    };
    for (name, kind, help, f) in server_families {
        let name = format!("ferrovs_{name}");
        t.family(&name, kind, help);
        for (svc, d, c) in servers {
            let (service, server) = labels(svc, d);
            t.sample(&name, &[("service", &service), ("server", &server)], f(c));
        }
    }
    let name = "ferrovs_real_server_weight";
    t.family(
        name,
        Kind::Gauge,
        "The weight the scheduler uses now (after health checks and misc_dynamic; 0: quiesced). A server a check removed is not listed (ferrovs_real_server_up says 0).",
    );
    for (svc, d, _) in servers {
        let (service, server) = labels(svc, d);
        t.sample(name, &[("service", &service), ("server", &server)], d.weight);
    }
}

/// The node_exporter IPVS collector's families (`node_ipvs_*`, as it reads
/// them from /proc/net/ip_vs, which a userspace director has not), so the
/// dashboards and alerts built on it keep working: totals over every
/// server, and per server its connections and weight, labelled as it
/// labels them.
fn node_ipvs(t: &mut Text, servers: &[Server<'_>]) {
    let totals: [Total; 5] = [
        (
            "connections_total",
            "The total number of connections made.",
            |c| c.conns,
        ),
        (
            "incoming_packets_total",
            "The total number of incoming packets.",
            |c| c.in_pkts,
        ),
        (
            "outgoing_packets_total",
            "The total number of outgoing packets.",
            |c| c.out_pkts,
        ),
        (
            "incoming_bytes_total",
            "The total amount of incoming data.",
            |c| c.in_bytes,
        ),
        (
            "outgoing_bytes_total",
            "The total amount of outgoing data.",
            |c| c.out_bytes,
        ),
    ];
    for (name, help, f) in totals {
        let sum: u64 = servers.iter().map(|(_, _, c)| f(c)).sum();
        t.single(&format!("node_ipvs_{name}"), Kind::Counter, help, sum);
    }
    let backend: [Backend; 3] = [
        (
            "backend_connections_active",
            "The current active connections by local and remote address.",
            |_, c| c.active,
        ),
        (
            "backend_connections_inactive",
            "The current inactive connections by local and remote address.",
            |_, c| c.inactive,
        ),
        (
            "backend_weight",
            "The current backend weight by local and remote address.",
            |d, _| u64::from(d.weight),
        ),
    ];
    for (name, help, f) in backend {
        let name = format!("node_ipvs_{name}");
        t.family(&name, Kind::Gauge, help);
        for (svc, d, c) in servers {
            let k = &svc.key;
            // /proc/net/ip_vs: "TCP"/"UDP" with the VIP, or "FWM" with the
            // mark as 8 hex digits and no address.
            let (local, port, proto, mark) = if k.fwmark != 0 {
                (String::new(), 0, "FWM", format!("{:08X}", k.fwmark))
            } else {
                (k.addr.to_string(), k.port, k.proto.name(), String::new())
            };
            let labels: crate::prom::Labels<'_> = &[
                ("local_address", &local),
                ("local_port", &port),
                ("remote_address", &d.addr),
                ("remote_port", &d.port),
                ("proto", &proto),
                ("local_mark", &mark),
            ];
            t.sample(&name, labels, f(d, c));
        }
    }
}
