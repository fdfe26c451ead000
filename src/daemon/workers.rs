//! The workers: one pinned thread per queue, each with its AF_XDP port and
//! forwarder, and the channels that join it to the control thread; the
//! steering program that feeds them.
//!
//! Owns: starting and stopping workers, publishing a snapshot to every
//! worker (and the steering maps) and waiting, bounded, until each runs it,
//! and the `-L -c` dumps of their tables. Must not touch: the rules (the
//! caller builds the snapshot) or the frames (the workers' own).

use super::Opts;
use crossbeam_channel::{Receiver, Sender, bounded};
use dataplane::owner::Handoff;
use dataplane::sync::SyncConn;
use dataplane::worker::{self, ConnInfo, Dump, Forwarder, WorkerCtl};
use dataplane::xsk::{Port, PortConfig, Steer};
use dataplane::{Snapshot, Update, WorkerStats};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Frames each worker's hand-off inbox holds.
const HANDOFF_DEPTH: usize = 1024;
/// How long a rules change waits for every worker to take it. Workers poll
/// for new rules every batch (microseconds); this is for one descheduled
/// on an overloaded host.
const INSTALL_WAIT: Duration = Duration::from_secs(2);
/// How long `-L -c` waits for each worker's table.
const DUMP_WAIT: Duration = Duration::from_secs(2);
/// How long a worker may take to open its sockets.
const START_WAIT: Duration = Duration::from_secs(10);

struct Handle {
    stats: Arc<WorkerStats>,
    updates: Sender<Update>,
    retired: Receiver<Update>,
    dumps: Sender<Dump>,
    dumped: Receiver<Dump>,
    pending: Option<Update>,
    thread: Option<JoinHandle<()>>,
}

/// The running workers and the steering program.
pub struct Workers {
    handles: Vec<Handle>,
    /// Every worker's counters, by queue.
    pub stats: Vec<Arc<WorkerStats>>,
    steer: Steer,
    stop: Arc<AtomicBool>,
    /// Version of the newest snapshot published.
    version: u64,
    conn_max: usize,
    conn_max6: usize,
    /// The queues between workers (a sync backup feeds them too).
    handoff: Arc<Handoff>,
}

impl Workers {
    /// Return the steering program (its maps).
    pub fn steer(&self) -> &Steer {
        &self.steer
    }

    /// Swap our program in on links taken over from the last run.
    pub fn go_live(&mut self) -> Result<(), String> {
        let adopted = self.steer.adopted;
        self.steer.go_live().map_err(|e| e.to_string())?;
        if adopted {
            log::info!("took over the last run's XDP attachments");
        }
        Ok(())
    }

    /// Return the queues between workers.
    pub fn handoff(&self) -> Arc<Handoff> {
        self.handoff.clone()
    }

    /// Attach the steering program to `ifindexes` and start one worker per
    /// queue of `opts` on interfaces `ifnames`, with rules `snap`.
    ///
    /// # Errors
    /// The program could not be attached or a worker could not open its
    /// sockets; the workers started so far stop when this is dropped.
    pub fn start(
        opts: &Opts,
        ifnames: &[String],
        ifindexes: &[u32],
        snap: Arc<Snapshot>,
    ) -> Result<Self, String> {
        let steer = attach(opts, ifindexes).map_err(|e| format!("{}: {e}", ifnames.join(",")))?;
        let mut w = Self {
            handles: Vec::new(),
            stats: Vec::new(),
            steer,
            stop: Arc::new(AtomicBool::new(false)),
            version: snap.version,
            conn_max: opts.conn_max,
            conn_max6: opts
                .conn_max6
                .unwrap_or((opts.conn_max / 4).clamp(1, dataplane::worker::DEFAULT_CONN_MAX6)),
            handoff: Arc::new(Handoff::new(opts.place.queues as usize, HANDOFF_DEPTH)),
        };
        let cfg = opts.port_config();
        let epoch = Instant::now();
        let handoff = w.handoff.clone();
        for q in 0..opts.place.queues {
            let core = opts
                .place
                .cpus
                .get(q as usize)
                .copied()
                .or_else(|| opts.place.cpus.is_empty().then_some(q as usize));
            w.spawn(q, core, ifnames, &cfg, &snap, &handoff, epoch)?;
        }
        Ok(w)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one worker's whole placement, called once per queue"
    )]
    fn spawn(
        &mut self,
        q: u32,
        core: Option<usize>,
        ifnames: &[String],
        cfg: &PortConfig,
        snap: &Arc<Snapshot>,
        handoff: &Arc<Handoff>,
        epoch: Instant,
    ) -> Result<(), String> {
        let stats = Arc::new(WorkerStats::default());
        let (up_tx, up_rx) = bounded(1);
        let (ret_tx, ret_rx) = bounded(4);
        let (fd_tx, fd_rx) = bounded(1);
        let (dump_tx, dump_rx) = bounded(1);
        let (dumped_tx, dumped_rx) = bounded(1);
        let ctl = WorkerCtl {
            updates: up_rx,
            retired: ret_tx,
            stop: self.stop.clone(),
            me: q as usize,
            handoff: handoff.clone(),
            dumps: dump_rx,
            dumped: dumped_tx,
        };
        let update = Update::new(snap.clone());
        let (ifnames, cfg, wstats) = (ifnames.to_vec(), *cfg, stats.clone());
        let capacities = (self.conn_max, self.conn_max6);
        let thread = std::thread::Builder::new()
            .name(format!("ferrovs-q{q}"))
            .spawn(move || {
                // Pin first, so the UMEM and table are touched on this core.
                if let Some(id) = core {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                        log::warn!("worker {q}: cannot pin to core {id}");
                    }
                }
                let mut port = match Port::open(&ifnames, q, &cfg) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = fd_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = fd_tx.send(Ok(port.fds()));
                let mut fwd = Forwarder::with_capacities(update, capacities, wstats);
                worker::run(&mut port, &mut fwd, &ctl, epoch);
            })
            .map_err(|e| format!("spawn worker {q}: {e}"))?;
        self.stats.push(stats.clone());
        self.handles.push(Handle {
            stats,
            updates: up_tx,
            retired: ret_rx,
            dumps: dump_tx,
            dumped: dumped_rx,
            pending: None,
            thread: Some(thread),
        });
        let fds = fd_rx
            .recv_timeout(START_WAIT)
            .map_err(|_| format!("worker {q} did not start"))??;
        for (link, fd) in fds.into_iter().enumerate() {
            self.steer
                .set_socket(link, q, fd)
                .map_err(|e| format!("queue {q}: {e}"))?;
        }
        Ok(())
    }

    /// Hand `snap` to every worker and the steering program; workers take it
    /// at their next batch.
    pub fn publish(&mut self, snap: Arc<Snapshot>) {
        self.version = snap.version;
        let (keys, reals) = (snap.steering_keys::<u32>(), snap.nat_real_keys::<u32>());
        let (keys6, reals6) = (snap.steering_keys::<u128>(), snap.nat_real_keys::<u128>());
        for w in &mut self.handles {
            // A worker that has not taken the previous update gets this one
            // instead; the older one is dropped here, off the hot path.
            w.pending = Some(Update::new(snap.clone()));
        }
        self.deliver();
        let done = self.steer.set_services(&keys, &reals);
        if let Err(e) = done.and_then(|()| self.steer.set_services6(&keys6, &reals6)) {
            log::error!("steering map update: {e}");
        }
    }

    /// Tell the steering program the director's own addresses.
    pub fn set_locals(&mut self, addrs: &[u32], addrs6: &[u128]) {
        let done = self.steer.set_locals(addrs);
        if let Err(e) = done.and_then(|()| self.steer.set_locals6(addrs6)) {
            log::error!("steering map update: {e}");
        }
    }

    /// Deliver the newest rules until every worker runs them.
    ///
    /// # Errors
    /// Some worker had not taken them within the bound (it takes them when
    /// it next polls; the message names it).
    pub fn wait_installed(&mut self) -> Result<(), String> {
        let end = Instant::now() + INSTALL_WAIT;
        loop {
            self.deliver();
            let late: Vec<String> = self
                .handles
                .iter()
                .enumerate()
                .filter(|(_, w)| w.stats.rules_version.get() != self.version)
                .map(|(q, _)| q.to_string())
                .collect();
            if late.is_empty() {
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(format!(
                    "the rules are committed but worker(s) {} did not install them within {} ms",
                    late.join(","),
                    INSTALL_WAIT.as_millis()
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Hand pending rules to workers that have room, and free retired ones.
    pub fn deliver(&mut self) {
        for w in &mut self.handles {
            if let Some(u) = w.pending.take() {
                w.pending = w.updates.try_send(u).err().map(|e| e.into_inner());
            }
            while w.retired.try_recv().is_ok() {}
        }
    }

    /// Return every worker's connections and templates (`-L -c`).
    pub fn dump(&self) -> Vec<ConnInfo> {
        self.dump_all(|room| Dump::List(Vec::with_capacity(room)))
            .into_iter()
            .flat_map(|d| match d {
                Dump::List(rows) => rows,
                Dump::Sync(_) => Vec::new(),
            })
            .collect()
    }

    /// Return every worker's connections and templates as sync sends them
    /// (a full-table transfer).
    pub fn sync_dump(&self) -> Vec<SyncConn> {
        self.dump_all(|room| Dump::Sync(Vec::with_capacity(room)))
            .into_iter()
            .flat_map(|d| match d {
                Dump::Sync(rows) => rows,
                Dump::List(_) => Vec::new(),
            })
            .collect()
    }

    /// Ask each worker to fill a buffer `make` sizes; return what came back.
    fn dump_all(&self, make: impl Fn(usize) -> Dump) -> Vec<Dump> {
        let mut out = Vec::new();
        for w in &self.handles {
            // Room for every connection the worker counts, its templates and
            // some that arrive meanwhile; filling it never allocates.
            let room = (w.stats.conns.get() as usize * 2 + 1024).min(self.conn_max + self.conn_max6);
            if w.dumps.send_timeout(make(room), DUMP_WAIT).is_err() {
                continue;
            }
            if let Ok(d) = w.dumped.recv_timeout(DUMP_WAIT) {
                out.push(d);
            }
        }
        out
    }

    /// Return the connection table size of all workers together.
    pub fn table_size(&self) -> usize {
        self.conn_max * self.handles.len().max(1)
    }
}

impl Drop for Workers {
    /// Stop and join every worker; then the steering program leaves the
    /// interfaces (its bpf_link goes with `steer`).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in &mut self.handles {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// Entries of the fast path's flow map: `--conn-max` for each worker (a NAT
/// connection takes two, one a direction), at most the program's ceiling.
pub fn fast_flows(opts: &Opts) -> usize {
    (opts.conn_max * opts.place.queues as usize).min(dataplane::xsk::MAX_FAST_FLOWS)
}

/// Attach the steering program, pinned in `--bpf-pins` with `--state-dir`;
/// where pinning fails (no bpffs there), unpinned, and said so: the
/// director then works as without `--state-dir` between two runs.
fn attach(opts: &Opts, ifindexes: &[u32]) -> std::io::Result<Steer> {
    if let Some(dir) = opts.pins() {
        let pinned =
            std::fs::create_dir_all(dir).and_then(|()| Steer::attach(ifindexes, fast_flows(opts), Some(dir)));
        match pinned {
            Ok(s) => return Ok(s),
            Err(e) => log::warn!(
                "--bpf-pins {}: {e}; the program goes with the process (connections are reset while no daemon runs)",
                dir.display()
            ),
        }
    }
    Steer::attach(ifindexes, fast_flows(opts), None)
}
