//! The Prometheus endpoint (`ferrovs daemon --metrics ADDR:PORT`): counters
//! per worker (frames, hand-offs, drops by reason, table occupancy) and per
//! service and real server (connections, packets, bytes), in the text
//! exposition format. Served on a thread of its own, one short request at a
//! time, from what the control thread published (the workers' counters and
//! the rules' book), so a slow scraper never holds up a rules change.

use crate::daemon::Book;
use config::{Counts, Rules};
use dataplane::{Reason, WorkerStats};
use std::fmt::Write as _;
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
type Family = (&'static str, &'static str, &'static str, fn(&Counts) -> u64);

/// A metric family over workers, likewise.
type WorkerFamily = (&'static str, &'static str, &'static str, fn(&WorkerStats) -> u64);

const WORKER_FAMILIES: [WorkerFamily; 17] = [
    ("worker_rx_frames_total", "counter", "Frames received.", |w| {
        w.rx.get()
    }),
    ("worker_tx_frames_total", "counter", "Frames sent.", |w| {
        w.tx.get()
    }),
    (
        "worker_handoffs_total",
        "counter",
        "Frames handed to the worker owning their flow.",
        |w| w.handoffs.get(),
    ),
    (
        "worker_handoff_drops_total",
        "counter",
        "Frames dropped for lack of room to hand them over.",
        |w| w.handoff_drops.get(),
    ),
    (
        "worker_connections",
        "gauge",
        "Connections in the worker's table.",
        |w| w.conns.get(),
    ),
    (
        "worker_checksums_completed_total",
        "counter",
        "TCP/UDP checksums a sender's offload left partial, completed.",
        |w| w.csum_completed.get(),
    ),
    (
        "worker_fragments_held_total",
        "counter",
        "Later IPv4 fragments that waited for their first fragment's decision.",
        |w| w.frags_held.get(),
    ),
    (
        "worker_icmp_errors_total",
        "counter",
        "ICMP errors about a connection sent on to its real server or client.",
        |w| w.icmp_errors.get(),
    ),
    (
        "worker_sync_sent_total",
        "counter",
        "Connections handed to the master sync daemon.",
        |w| w.sync_sent.get(),
    ),
    (
        "worker_sync_drops_total",
        "counter",
        "Sync events dropped: the ring to the sync daemon was full.",
        |w| w.sync_drops.get(),
    ),
    (
        "worker_sync_learnt_total",
        "counter",
        "Connections learnt from a master director.",
        |w| w.sync_learnt.get(),
    ),
    (
        "worker_sync_unbound_total",
        "counter",
        "Learnt connections not kept: no such service or server here, or a full table.",
        |w| w.sync_unbound.get(),
    ),
    (
        "worker_table_full_total",
        "counter",
        "New flows that found the table full.",
        |w| w.table_full.get(),
    ),
    (
        "worker_fast_packets_total",
        "counter",
        "Packets of this worker's connections the XDP fast path forwarded.",
        |w| w.fast_pkts.get(),
    ),
    (
        "worker_fast_offloads_total",
        "counter",
        "Flow map entries asked for (two for a NAT connection).",
        |w| w.fast_offloads.get(),
    ),
    (
        "worker_fast_removals_total",
        "counter",
        "Flow map entries given back.",
        |w| w.fast_removals.get(),
    ),
    (
        "worker_fast_drops_total",
        "counter",
        "Fast-path events lost to a full ring.",
        |w| w.fast_drops.get(),
    ),
];

/// Render every metric.
pub fn render(workers: &[&WorkerStats], rules: &Rules, counts: impl Fn(u32) -> Counts) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
        let _ = writeln!(out, "# HELP ferrovs_{name} {help}\n# TYPE ferrovs_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "ferrovs_{name}{{{labels}}} {v}");
        }
    };
    // Neither label needs escaping: a version and a hex commit.
    family(
        "build_info",
        "gauge",
        "The running binary: its version and commit (always 1).",
        vec![(
            format!("version=\"{}\",commit=\"{}\"", crate::VERSION, crate::COMMIT),
            1,
        )],
    );
    for (name, kind, help, f) in WORKER_FAMILIES {
        let samples = workers
            .iter()
            .enumerate()
            .map(|(q, w)| (format!("worker=\"{q}\""), f(w)))
            .collect();
        family(name, kind, help, samples);
    }
    let drops = workers
        .iter()
        .enumerate()
        .flat_map(|(q, w)| {
            Reason::ALL.map(|r| (format!("worker=\"{q}\",reason=\"{}\"", r.name()), w.drops(r)))
        })
        .collect();
    family(
        "worker_drops_total",
        "counter",
        "Frames dropped, by reason.",
        drops,
    );
    let mut rs: Vec<(String, Counts)> = Vec::new();
    for svc in &rules.services {
        for d in &svc.dests {
            // As ipvsadm names them: IPv6 in brackets, a mark service as
            // "FWM N".
            let labels = format!(
                "service=\"{}\",server=\"{}\"",
                svc.key,
                config::addr_port(d.addr, d.port)
            );
            rs.push((labels, counts(d.id)));
        }
    }
    let server_families: [Family; 7] = [
        (
            "server_connections_total",
            "counter",
            "Connections scheduled to the real server.",
            |c| c.conns,
        ),
        (
            "server_active_connections",
            "gauge",
            "ESTABLISHED connections.",
            |c| c.active,
        ),
        (
            "server_inactive_connections",
            "gauge",
            "Connections in other states.",
            |c| c.inactive,
        ),
        (
            "server_in_packets_total",
            "counter",
            "Packets client to server.",
            |c| c.in_pkts,
        ),
        (
            "server_out_packets_total",
            "counter",
            "Packets server to client (NAT).",
            |c| c.out_pkts,
        ),
        (
            "server_in_bytes_total",
            "counter",
            "Bytes client to server.",
            |c| c.in_bytes,
        ),
        (
            "server_out_bytes_total",
            "counter",
            "Bytes server to client (NAT).",
            |c| c.out_bytes,
        ),
    ];
    for (name, kind, help, f) in server_families {
        family(
            name,
            kind,
            help,
            rs.iter().map(|(l, c)| (l.clone(), f(c))).collect(),
        );
    }
    out
}
