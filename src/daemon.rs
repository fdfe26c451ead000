//! `ferrovs daemon`: attach the steering program, start one pinned worker per
//! queue, and serve the control socket.
//!
//! The control thread (this one) owns the rules. A change is validated in
//! full on a copy, then published to every worker as an immutable snapshot;
//! workers hand the old one back here to be freed. Neighbour entries are
//! re-read every second and a changed RS MAC is published the same way.

use crate::ctl;
use crate::estimator::Estimators;
use crate::placement::{Placement, from_file};
use clap::Parser;
use config::ipvsadm::{Command, ListOpts};
use config::{Counts, FwdMethod, Rules};
use crossbeam_channel::{Receiver, Sender, bounded};
use dataplane::neigh::{self, Neighbours};
use dataplane::owner::Handoff;
use dataplane::snapshot::FullTable;
use dataplane::worker::{self, ConnInfo, Forwarder, WorkerCtl};
use dataplane::xsk::{BindMode, Port, PortConfig, Steer};
use dataplane::{SlotMap, Snapshot, Update, WorkerStats};
use hashbrown::HashMap;
use std::net::Ipv4Addr;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Options of `ferrovs daemon`.
#[derive(Debug, Parser)]
#[command(about = "Run the ferrovs director: AF_XDP workers plus the control socket")]
pub struct Opts {
    /// Interfaces, queues, cores, frames, config file.
    #[command(flatten)]
    pub place: Placement,
    /// Control socket path.
    #[arg(long, default_value_t = ctl::default_path())]
    pub socket: String,
    /// Control socket permissions (octal): 0660 lets a group manage rules.
    #[arg(long, default_value = "0600", value_parser = config::daemon::parse_mode)]
    pub socket_mode: u32,
    /// Load this ipvsadm-save file at start.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// RX and TX ring entries per socket (a power of two).
    #[arg(long, default_value_t = PortConfig::default().ring)]
    pub ring_size: u32,
    /// Bind with need_wakeup (syscalls only when the kernel asks); `false`
    /// kicks TX every batch.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub need_wakeup: bool,
    /// Preferred busy polling: µs the kernel may spin per syscall (0: off).
    #[arg(long, default_value_t = 0)]
    pub busy_poll_us: u32,
    /// Packets per busy-poll run.
    #[arg(long, default_value_t = PortConfig::default().busy_poll_budget)]
    pub busy_poll_budget: u32,
    /// Connection table capacity per worker.
    #[arg(long, default_value_t = 1 << 20)]
    pub conn_max: usize,
    /// Lookup table size of mh (Maglev) services; a prime, ideally over 100x
    /// the servers of a service.
    #[arg(long, default_value_t = sched::DEFAULT_MH_TABLE_SIZE, value_parser = prime)]
    pub mh_table_size: u32,
    /// What a new flow gets when a worker's connection table is full:
    /// `stateless` (a server picked from its client tuple, no entry) or
    /// `drop`. Established connections are never evicted either way.
    #[arg(long, value_enum, default_value_t = FullTablePolicy::Stateless)]
    pub full_table: FullTablePolicy,
    /// Load this keepalived.conf: its virtual_server blocks become the rules
    /// and its checkers run; SIGHUP or `ferrovs --reload` reads it again.
    #[arg(long)]
    pub keepalived: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (e.g. `127.0.0.1:9410`).
    #[arg(long)]
    pub metrics: Option<String>,
    /// AF_XDP bind mode.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    pub bind_mode: Mode,
    /// As IPVS's sysctl: when a real server is deleted, drop its connections
    /// (the next packet of a flow is scheduled anew) instead of letting them
    /// flow to it until they end.
    #[arg(long)]
    pub expire_nodest_conn: bool,
}

impl Opts {
    /// Parse the command line and, with `--config`, fill every setting the
    /// command line left alone from the file.
    ///
    /// # Errors
    /// The file cannot be read, has an unknown key or a bad value.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        use clap::{CommandFactory, FromArgMatches};
        let m = Self::command().get_matches_from(args);
        // clap exits with its own message on a bad command line, as before.
        let mut o = Self::from_arg_matches(&m).map_err(|e| e.to_string())?;
        let Some(f) = o.place.merge(&m)? else {
            return Ok(o);
        };
        let path = o.place.config.clone().unwrap_or_default();
        let file = |id: &str| from_file(&m, id);
        let bad = |key: &str, e: String| format!("{}: {key}: {e}", path.display());
        macro_rules! take {
            ($($field:ident <- $key:ident),* $(,)?) => {$(
                if let (true, Some(v)) = (file(stringify!($field)), f.$key.clone()) {
                    o.$field = v;
                }
            )*};
        }
        take!(ring_size <- ring_size, need_wakeup <- need_wakeup, busy_poll_us <- busy_poll_us,
            busy_poll_budget <- busy_poll_budget, socket <- socket, conn_max <- conn_max);
        if let (true, Some(v)) = (file("socket_mode"), &f.socket_mode) {
            o.socket_mode = config::daemon::parse_mode(v).map_err(|e| bad("socket_mode", e))?;
        }
        if let (true, Some(v)) = (file("mh_table_size"), f.mh_table_size) {
            o.mh_table_size = prime(&v.to_string()).map_err(|e| bad("mh_table_size", e))?;
        }
        if let (true, Some(v)) = (file("bind_mode"), &f.bind_mode) {
            o.bind_mode = clap::ValueEnum::from_str(v, false).map_err(|e| bad("bind_mode", e))?;
        }
        if let (true, Some(v)) = (file("full_table"), &f.full_table) {
            o.full_table = clap::ValueEnum::from_str(v, false).map_err(|e| bad("full_table", e))?;
        }
        // Optional settings: the file's value, unless the command line gave one.
        if file("metrics") && f.metrics.is_some() {
            o.metrics = f.metrics;
        }
        if file("rules") && f.rules.is_some() {
            o.rules = f.rules;
        }
        if file("keepalived") && f.keepalived.is_some() {
            o.keepalived = f.keepalived;
        }
        Ok(o)
    }
}

fn prime(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|e| format!("{e}"))?;
    // 2^24 slots (64 MiB of table per service and worker) is far past any
    // useful size; the bound keeps a typo from exhausting memory.
    if sched::is_prime(n) && n < 1 << 24 {
        Ok(n)
    } else {
        Err(format!("{n} is not a prime below 2^24"))
    }
}

/// `--full-table` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FullTablePolicy {
    /// Stateless pick from the client tuple.
    Stateless,
    /// Drop new flows.
    Drop,
}

/// `--bind-mode` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    /// Zero-copy where the driver has it, else copy.
    Auto,
    /// Copy mode.
    Copy,
    /// Zero-copy, or fail.
    Zerocopy,
}

/// `rules` with the trashed servers back in their services, weight 0, for
/// the workers (which must still reach them) and the counter slots.
fn with_trash(rules: &Rules, trash: &[(config::ServiceKey, config::RealServer)]) -> Rules {
    let mut all = rules.clone();
    for (key, d) in trash {
        if let Some(svc) = all.services.iter_mut().find(|s| s.key == *key) {
            svc.dests.push(config::RealServer {
                weight: 0,
                ..d.clone()
            });
        }
    }
    all
}

/// Render connections as `ipvsadm -Lnc` lays them out (or as JSON).
fn render_conns(rows: &[ConnInfo], json: bool) -> String {
    let addr = |a: u32, p: u16| format!("{}:{p}", std::net::Ipv4Addr::from(a));
    // A fwmark service's templates span protocols: ipvsadm shows them as IP.
    let proto = |c: &ConnInfo| match c.proto {
        6 => "TCP",
        17 => "UDP",
        _ => "IP",
    };
    let state = |c: &ConnInfo| if c.template { "NONE" } else { c.state.name() };
    if json {
        let items: Vec<String> = rows
            .iter()
            .map(|c| {
                format!(
                    "{{\"protocol\":\"{}\",\"expire\":{},\"state\":\"{}\",\"source\":\"{}\",\"virtual\":\"{}\",\
                     \"destination\":\"{}\",\"template\":{}}}",
                    proto(c),
                    c.expires_in,
                    state(c),
                    addr(c.cip, c.cport),
                    addr(c.vip, c.vport),
                    addr(c.rip, c.rport),
                    c.template
                )
            })
            .collect();
        return format!("{{\"connections\":[{}]}}\n", items.join(","));
    }
    let mut out = String::from(
        "IPVS connection entries\npro expire state       source             virtual            destination\n",
    );
    for c in rows {
        out.push_str(&format!(
            "{:<3} {:02}:{:02}  {:<11} {:<18} {:<18} {}\n",
            proto(c),
            c.expires_in / 60,
            c.expires_in % 60,
            state(c),
            addr(c.cip, c.cport),
            addr(c.vip, c.vport),
            addr(c.rip, c.rport)
        ));
    }
    out
}

/// Frames each worker's hand-off inbox holds.
const HANDOFF_DEPTH: usize = 1024;

/// The workers' counters summed, on one line: rx, tx, then every non-zero
/// event and drop reason by name.
fn counters(stats: &[&WorkerStats]) -> String {
    let sum = |f: &dyn Fn(&WorkerStats) -> u64| stats.iter().map(|s| f(s)).sum::<u64>();
    let mut line = format!("rx {} tx {}", sum(&|s| s.rx.get()), sum(&|s| s.tx.get()));
    let events: [(&str, u64); 4] = [
        ("handoffs", sum(&|s| s.handoffs.get())),
        ("handoff_drops", sum(&|s| s.handoff_drops.get())),
        ("table_full", sum(&|s| s.table_full.get())),
        ("frag_needed", sum(&|s| s.frag_needed.get())),
    ];
    let drops = dataplane::Reason::ALL.map(|r| (r.name(), sum(&|s| s.drops(r))));
    for (name, n) in events.into_iter().chain(drops) {
        if n > 0 {
            line.push_str(&format!(" {name} {n}"));
        }
    }
    line
}

/// How often the control loop wakes when idle.
const TICK: Duration = Duration::from_millis(20);
/// How often the neighbour table is re-read.
const NEIGH_EVERY: Duration = Duration::from_secs(1);
/// How often it is re-read while a real server has no MAC yet: a SYN to an
/// unresolved server is dropped, and the client retransmits only after 1 s.
const NEIGH_PENDING_EVERY: Duration = Duration::from_millis(20);
/// How long a rules change waits for new servers' MACs before it is published
/// without them (an unreachable server must not stall the control socket).
const RESOLVE_WAIT: Duration = Duration::from_millis(200);
/// How long a rules change waits for every worker to take it.
const INSTALL_WAIT: Duration = Duration::from_millis(200);
/// How long `-L -c` waits for each worker's table.
const DUMP_WAIT: Duration = Duration::from_secs(2);

struct WorkerHandle {
    stats: Arc<WorkerStats>,
    updates: Sender<Update>,
    retired: Receiver<Update>,
    dumps: Sender<Vec<ConnInfo>>,
    dumped: Receiver<Vec<ConnInfo>>,
    pending: Option<Update>,
    thread: Option<JoinHandle<()>>,
}

struct Control {
    ifnames: Vec<String>,
    macs: Vec<[u8; 6]>,
    /// IPv4 address of each interface (TUN's outer source).
    link_addrs: Vec<Option<u32>>,
    link_mtus: Vec<u16>,
    rules: Rules,
    slots: SlotMap,
    neigh: Neighbours,
    solicited: HashMap<Ipv4Addr, Instant>,
    unresolved: bool,
    version: u64,
    steer: Steer,
    workers: Vec<WorkerHandle>,
    conn_max: usize,
    mh_table_size: u32,
    full_table: FullTable,
    /// Counters at the last `-Z`, by real server id.
    zeroed: HashMap<u32, Counts>,
    /// The keepalived configuration driving the rules, if any.
    keepalived: Option<crate::keepalived::Running>,
    /// Set by SIGHUP: reload the keepalived configuration.
    hup: Arc<AtomicBool>,
    /// `--rate` estimators, fed every two seconds.
    estimators: Estimators,
    /// Deleted real servers whose connections still flow (IPVS's dest
    /// trash): not schedulable, gone once no worker counts a connection or
    /// template on them.
    trash: Vec<(config::ServiceKey, config::RealServer)>,
    expire_nodest_conn: bool,
}

/// Run the daemon until SIGTERM or SIGINT.
///
/// # Errors
/// Set-up failed: no such interface, the program or a socket could not be
/// attached, the control socket is taken.
pub fn run(opts: Opts) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| format!("signal handler: {e}"))?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| format!("signal handler: {e}"))?;
    // An ipvsadm-save file to start with: checked before anything is
    // attached, so a bad line stops the start with nothing changed.
    let rules_text = match &opts.rules {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Rules::default()
                .apply_commands(&p.display().to_string(), &text)
                .map_err(|e| e.to_string())?;
            Some(text)
        }
        None => None,
    };
    let keepalived = match &opts.keepalived {
        Some(p) => {
            Some(crate::keepalived::Running::start(p.clone()).map_err(|e| format!("keepalived: {e}"))?)
        }
        None => None,
    };
    let ifnames = opts.place.interface.clone();
    let (mut ifindexes, mut macs, mut link_addrs, mut link_mtus) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ifname in &ifnames {
        let bad = |e: std::io::Error| format!("interface {ifname}: {e}");
        ifindexes.push(neigh::ifindex(ifname).map_err(bad)?);
        macs.push(neigh::link_mac(ifname).map_err(bad)?);
        link_addrs.push(neigh::ipv4(ifname).map_err(bad)?);
        link_mtus.push(neigh::mtu(ifname).map_err(bad)?);
        let have = neigh::rx_queues(ifname).map_err(|e| format!("interface {ifname}: {e}"))?;
        if opts.place.queues == 0 || opts.place.queues > have {
            return Err(format!(
                "--queues {} but {ifname} has {have} receive queue(s); raise them with \
                 `ethtool -L {ifname} combined N` (or `rx N tx N`), N at most the cores",
                opts.place.queues
            ));
        }
    }
    let socket = PathBuf::from(&opts.socket);
    let listener =
        ctl::listen(&socket, opts.socket_mode).map_err(|e| format!("control socket {}: {e}", opts.socket))?;
    let metrics = match &opts.metrics {
        Some(a) => Some(crate::metrics::listen(a).map_err(|e| format!("metrics address {a}: {e}"))?),
        None => None,
    };
    let steer = Steer::attach(&ifindexes).map_err(|e| format!("{}: {e}", ifnames.join(",")))?;
    let mut control = Control {
        ifnames: ifnames.clone(),
        macs,
        link_addrs,
        link_mtus,
        rules: Rules::default(),
        slots: SlotMap::default(),
        neigh: Neighbours::read(&ifnames).unwrap_or_default(),
        solicited: HashMap::new(),
        unresolved: false,
        version: 0,
        steer,
        workers: Vec::new(),
        conn_max: opts.conn_max,
        mh_table_size: opts.mh_table_size,
        zeroed: HashMap::new(),
        keepalived,
        hup,
        estimators: Estimators::default(),
        trash: Vec::new(),
        expire_nodest_conn: opts.expire_nodest_conn,
        full_table: match opts.full_table {
            FullTablePolicy::Stateless => FullTable::Stateless,
            FullTablePolicy::Drop => FullTable::Drop,
        },
    };
    let workers_stop = Arc::new(AtomicBool::new(false));
    let result = control.start_workers(&opts, &workers_stop).map(|()| {
        eprintln!(
            "ferrovs: forwarding on {} with {} worker(s); control socket {}",
            ifnames.join(","),
            opts.place.queues,
            opts.socket
        );
        // The start-up rules, before the first request.
        if let Some(text) = &rules_text {
            let mut changed = false;
            match control.restore(text, &mut changed) {
                Ok(_) => {
                    control.resolve_new_servers();
                    control.publish();
                    control.wait_installed();
                }
                Err(e) => eprintln!("ferrovs: --rules: {e}"),
            }
        }
        control.apply_keepalived();
        control.serve(&listener, metrics.as_ref(), &stop);
    });
    workers_stop.store(true, Ordering::Relaxed);
    for w in &mut control.workers {
        if let Some(t) = w.thread.take() {
            let _ = t.join();
        }
    }
    let _ = std::fs::remove_file(&socket);
    if result.is_ok() {
        eprintln!("ferrovs: stopped; {}", control.counters_line());
    }
    // Dropping `control` destroys the bpf_link: the program leaves the interface.
    drop(control);
    result
}

impl Control {
    fn snapshot(&mut self) -> Arc<Snapshot> {
        self.version += 1;
        let neigh = &self.neigh;
        let rules = with_trash(&self.rules, &self.trash);
        let mut snap = Snapshot::build(self.version, self.macs.clone(), &rules, &self.slots, |a| {
            neigh.mac(a)
        });
        snap.mh_table_size = self.mh_table_size;
        snap.full_table = self.full_table;
        let (tcp, tcpfin, udp) = self.rules.timeouts;
        snap.timeouts.set(tcp, tcpfin, udp);
        snap.link_addrs = self.link_addrs.iter().map(|a| a.unwrap_or(0)).collect();
        snap.link_mtus = self.link_mtus.clone();
        snap.mark_deleted(|id| self.trash.iter().any(|(_, d)| d.id == id));
        snap.expire_nodest_conn = self.expire_nodest_conn;
        Arc::new(snap)
    }

    fn start_workers(&mut self, opts: &Opts, stop: &Arc<AtomicBool>) -> Result<(), String> {
        let cfg = PortConfig {
            frames: opts.place.frames,
            ring: opts.ring_size,
            need_wakeup: opts.need_wakeup,
            busy_poll_us: opts.busy_poll_us,
            busy_poll_budget: opts.busy_poll_budget,
            mode: match opts.bind_mode {
                Mode::Auto => BindMode::Auto,
                Mode::Copy => BindMode::Copy,
                Mode::Zerocopy => BindMode::ZeroCopy,
            },
            ..PortConfig::default()
        };
        let epoch = Instant::now();
        let snap = self.snapshot();
        let handoff = Arc::new(Handoff::new(opts.place.queues as usize, HANDOFF_DEPTH));
        for q in 0..opts.place.queues {
            let core = opts
                .place
                .cpus
                .get(q as usize)
                .copied()
                .or_else(|| opts.place.cpus.is_empty().then_some(q as usize));
            let stats = Arc::new(WorkerStats::default());
            let (up_tx, up_rx) = bounded(1);
            let (ret_tx, ret_rx) = bounded(4);
            let (fd_tx, fd_rx) = bounded(1);
            let (dump_tx, dump_rx) = bounded(1);
            let (dumped_tx, dumped_rx) = bounded(1);
            let ctl = WorkerCtl {
                updates: up_rx,
                retired: ret_tx,
                stop: stop.clone(),
                me: q as usize,
                handoff: handoff.clone(),
                dumps: dump_rx,
                dumped: dumped_tx,
            };
            let update = Update::new(snap.clone());
            let ifnames = self.ifnames.clone();
            let conn_max = self.conn_max;
            let wstats = stats.clone();
            let thread = std::thread::Builder::new()
                .name(format!("ferrovs-q{q}"))
                .spawn(move || {
                    // Pin first, so the UMEM and table are touched on this core.
                    if let Some(id) = core {
                        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                            eprintln!("ferrovs: worker {q}: cannot pin to core {id}");
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
                    let mut fwd = Forwarder::new(update, conn_max, wstats);
                    worker::run(&mut port, &mut fwd, &ctl, epoch);
                })
                .map_err(|e| format!("spawn worker {q}: {e}"))?;
            self.workers.push(WorkerHandle {
                stats,
                updates: up_tx,
                retired: ret_rx,
                dumps: dump_tx,
                dumped: dumped_rx,
                pending: None,
                thread: Some(thread),
            });
            let fds = fd_rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| format!("worker {q} did not start"))??;
            for (link, fd) in fds.into_iter().enumerate() {
                self.steer
                    .set_socket(link, q, fd)
                    .map_err(|e| format!("queue {q}: {e}"))?;
            }
        }
        Ok(())
    }

    fn serve(&mut self, listener: &UnixListener, metrics: Option<&std::net::TcpListener>, stop: &AtomicBool) {
        let mut last_neigh = Instant::now() - NEIGH_EVERY;
        let mut last_est = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            while let Ok((mut s, _)) = listener.accept() {
                let mut changed = false;
                let reply = match ctl::read_request(&mut s) {
                    Ok(args) => self.handle(&args, &mut changed),
                    Err(e) => Err(format!("bad request: {e}")),
                };
                if changed {
                    // Publish before replying: when the command returns, the
                    // rules are live in every worker, MACs of new servers
                    // included.
                    self.resolve_new_servers();
                    last_neigh = Instant::now();
                    self.publish();
                    self.wait_installed();
                }
                let _ = ctl::write_reply(&mut s, &reply);
            }
            let every = if self.unresolved {
                NEIGH_PENDING_EVERY
            } else {
                NEIGH_EVERY
            };
            if last_neigh.elapsed() >= every {
                last_neigh = Instant::now();
                // Both run: `|` rather than `||`.
                if self.refresh_neighbours() | self.collect_trash() {
                    self.publish();
                }
            }
            if self.hup.swap(false, Ordering::Relaxed) {
                if let Err(e) = self.reload() {
                    eprintln!("ferrovs: reload: {e}");
                }
            }
            if self.keepalived.as_mut().is_some_and(|k| k.poll()) {
                self.apply_keepalived();
            }
            if last_est.elapsed().as_secs() >= crate::estimator::INTERVAL_SECS {
                last_est = Instant::now();
                self.estimate();
            }
            if let Some(m) = metrics {
                let workers: Vec<&WorkerStats> = self.workers.iter().map(|w| &*w.stats).collect();
                crate::metrics::serve(m, || {
                    crate::metrics::render(&workers, &self.rules, |id| self.counts(id))
                });
            }
            self.deliver();
            std::thread::sleep(TICK);
        }
    }

    /// Solicit servers without a MAC and wait, bounded, for the kernel to
    /// resolve them.
    fn resolve_new_servers(&mut self) {
        let end = Instant::now() + RESOLVE_WAIT;
        self.refresh_neighbours();
        while self.unresolved && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
            self.refresh_neighbours();
        }
    }

    /// Re-read the neighbour table and solicit RIPs without a MAC; return
    /// whether any RS MAC changed.
    fn refresh_neighbours(&mut self) -> bool {
        let Ok(fresh) = Neighbours::read(&self.ifnames) else {
            return false;
        };
        let rips: Vec<Ipv4Addr> = self
            .rules
            .services
            .iter()
            .flat_map(|s| s.dests.iter().map(|d| d.addr))
            .collect();
        let changed = rips.iter().any(|&a| fresh.mac(a) != self.neigh.mac(a));
        self.unresolved = rips.iter().any(|&a| fresh.mac(a).is_none());
        for &a in &rips {
            let due = self.solicited.get(&a).is_none_or(|t| t.elapsed() >= NEIGH_EVERY);
            if fresh.mac(a).is_none() && due {
                let _ = neigh::solicit(a);
                self.solicited.insert(a, Instant::now());
            }
        }
        self.neigh = fresh;
        changed
    }

    fn publish(&mut self) {
        let snap = self.snapshot();
        let (keys, reals) = (snap.steering_keys(), snap.nat_real_keys());
        for w in &mut self.workers {
            // A worker that has not taken the previous update gets this one
            // instead; the older one is dropped here, off the hot path.
            w.pending = Some(Update::new(snap.clone()));
        }
        self.deliver();
        if let Err(e) = self.steer.set_services(&keys, &reals) {
            eprintln!("ferrovs: steering map update: {e}");
        }
    }

    /// Deliver the newest rules until every worker runs with them (bounded:
    /// a stuck worker must not stall the control socket).
    fn wait_installed(&mut self) {
        let end = Instant::now() + INSTALL_WAIT;
        while Instant::now() < end {
            self.deliver();
            if self
                .workers
                .iter()
                .all(|w| w.stats.rules_version.get() == self.version)
            {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn deliver(&mut self) {
        for w in &mut self.workers {
            if let Some(u) = w.pending.take() {
                w.pending = w.updates.try_send(u).err().map(|e| e.into_inner());
            }
            while w.retired.try_recv().is_ok() {}
        }
    }

    fn handle(&mut self, args: &[String], changed: &mut bool) -> Result<String, String> {
        if args == ["--counters"] {
            return Ok(self.counters_table());
        }
        if args == ["--reload"] {
            return self.reload();
        }
        // `-R`: the client sends the text it read from standard input.
        match args {
            [verb, text] if verb == "-R" || verb == "--restore" => return self.restore(text, changed),
            [verb, flag, text] if (verb == "-R" || verb == "--restore") && flag == "--dry-run" => {
                return self.dry_run(text);
            }
            _ => {}
        }
        let cmd = config::ipvsadm::parse(args).map_err(|e| e.to_string())?;
        match &cmd {
            Command::List(opts) => return self.list(opts),
            Command::Save { numeric } => {
                return Ok(config::render_save(
                    &self.rules,
                    *numeric,
                    config::Names::system(),
                ));
            }
            Command::Zero(service) => return self.zero(*service),
            Command::Restore => return Err("-R reads the rules from standard input".into()),
            Command::AddDest(_, d) | Command::EditDest(_, d)
                if d.fwd == Some(FwdMethod::Tun) && self.link_addrs.iter().all(Option::is_none) =>
            {
                return Err("-i (Tunnel) needs an IPv4 address on the director's interfaces".into());
            }
            _ => {}
        }
        let mut next = self.rules.clone();
        next.apply(&cmd).map_err(|e| e.to_string())?;
        self.commit(next)?;
        *changed = true;
        Ok(String::new())
    }

    /// `-R --dry-run`: what the batch would change, as a diff of the
    /// `-S -n` texts (`-` lines go, `+` lines come); nothing is applied.
    fn dry_run(&self, text: &str) -> Result<String, String> {
        let mut next = self.rules.clone();
        next.apply_commands("stdin", text).map_err(|e| e.to_string())?;
        let names = config::Names::default();
        let (before, after) = (
            config::render_save(&self.rules, true, &names),
            config::render_save(&next, true, &names),
        );
        let (old, new): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
        let mut out = String::new();
        for l in old.iter().filter(|l| !new.contains(l)) {
            out.push_str(&format!("- {l}\n"));
        }
        for l in new.iter().filter(|l| !old.contains(l)) {
            out.push_str(&format!("+ {l}\n"));
        }
        if next.timeouts != self.rules.timeouts {
            out.push_str(&format!(
                "~ timeouts {:?} -> {:?}\n",
                self.rules.timeouts, next.timeouts
            ));
        }
        Ok(out)
    }

    /// `-R`: apply a batch of ipvsadm commands, all or nothing.
    fn restore(&mut self, text: &str, changed: &mut bool) -> Result<String, String> {
        let mut next = self.rules.clone();
        next.apply_commands("stdin", text).map_err(|e| e.to_string())?;
        if next
            .services
            .iter()
            .flat_map(|s| &s.dests)
            .any(|d| d.fwd == FwdMethod::Tun)
            && self.link_addrs.iter().all(Option::is_none)
        {
            return Err("-i (Tunnel) needs an IPv4 address on the director's interfaces".into());
        }
        self.commit(next)?;
        *changed = true;
        Ok(String::new())
    }

    /// `-L -n -c`: every worker's connections and templates, laid out as
    /// `ipvsadm -Lnc`.
    fn list_connections(&self, json: bool) -> String {
        let mut rows = Vec::new();
        for w in &self.workers {
            // Room for every connection the worker counts, its templates and
            // some that arrive meanwhile; filling it never allocates.
            let room = (w.stats.conns.get() as usize * 2 + 1024).min(self.conn_max);
            if w.dumps.send_timeout(Vec::with_capacity(room), DUMP_WAIT).is_err() {
                continue;
            }
            if let Ok(entries) = w.dumped.recv_timeout(DUMP_WAIT) {
                rows.extend(entries);
            }
        }
        render_conns(&rows, json)
    }

    /// Return the workers' counters summed, on one line: rx, tx and every
    /// non-zero drop reason.
    fn counters_line(&self) -> String {
        let all: Vec<&WorkerStats> = self.workers.iter().map(|w| &*w.stats).collect();
        counters(&all)
    }

    /// `ferrovs --counters`: every worker's counters, one line each, then
    /// their sum.
    fn counters_table(&self) -> String {
        let mut out = String::new();
        for (q, w) in self.workers.iter().enumerate() {
            out.push_str(&format!("worker {q}: {}\n", counters(&[&w.stats])));
        }
        out.push_str(&format!("total: {}\n", self.counters_line()));
        out
    }

    fn list(&self, opts: &ListOpts) -> Result<String, String> {
        if opts.connections {
            return Ok(self.list_connections(opts.json));
        }
        if let Some(k) = opts.service {
            if self.rules.service(&k).is_none() {
                return Err(format!("Service not defined: {k}"));
            }
        }
        if opts.json && opts.timeout {
            let (tcp, tcpfin, udp) = self.rules.timeouts;
            return Ok(format!("{{\"tcp\":{tcp},\"tcpfin\":{tcpfin},\"udp\":{udp}}}\n"));
        }
        if opts.json {
            return Ok(config::render_json(&self.rules, |id| self.counts(id)));
        }
        let size = self.conn_max * self.workers.len().max(1);
        Ok(config::render_list(&self.rules, opts, size, |id| self.counts(id)))
    }

    /// Return real server `id`'s counters summed over the workers, less what
    /// `-Z` zeroed (workers' counters have one writer each, so the control
    /// plane keeps a baseline rather than resetting them).
    fn counts(&self, id: u32) -> Counts {
        let Some(slot) = self.slots.slot(id) else {
            return Counts::default();
        };
        let raw = self.workers.iter().fold(Counts::default(), |c, w| {
            let d = w.stats.dest(slot);
            c + Counts {
                active: d.active.get(),
                inactive: d.inactive.get(),
                conns: d.conns.get(),
                in_pkts: d.in_pkts.get(),
                out_pkts: d.out_pkts.get(),
                in_bytes: d.in_bytes.get(),
                out_bytes: d.out_bytes.get(),
                persist: d.persist.get(),
                rates: [0; 5],
            }
        });
        let zero = self.zeroed.get(&id).copied().unwrap_or_default();
        let rates = self.estimators.rates(id);
        Counts {
            conns: raw.conns.saturating_sub(zero.conns),
            in_pkts: raw.in_pkts.saturating_sub(zero.in_pkts),
            out_pkts: raw.out_pkts.saturating_sub(zero.out_pkts),
            in_bytes: raw.in_bytes.saturating_sub(zero.in_bytes),
            out_bytes: raw.out_bytes.saturating_sub(zero.out_bytes),
            rates,
            ..raw
        }
    }

    /// Make `next` the rules. Servers it deletes from services that stay go
    /// to the trash: their connections keep flowing (with
    /// `--expire-nodest-conn`, workers drop and forget them instead), and
    /// their counter slots stay theirs until no connection counts on them.
    fn commit(&mut self, next: Rules) -> Result<(), String> {
        let mut trash = self.trash.clone();
        for svc in &self.rules.services {
            let Some(kept) = next.services.iter().find(|s| s.key == svc.key) else {
                continue;
            };
            for d in svc
                .dests
                .iter()
                .filter(|d| !kept.dests.iter().any(|k| k.id == d.id))
            {
                trash.push((svc.key, d.clone()));
            }
        }
        // A deleted service takes its connections with it, as in IPVS.
        trash.retain(|(k, _)| next.services.iter().any(|s| s.key == *k));
        self.slots
            .assign(&with_trash(&next, &trash))
            .map_err(|e| e.to_string())?;
        self.trash = trash;
        self.rules = next;
        Ok(())
    }

    /// Empty the trash of servers no worker has a connection or template
    /// on; true when something went.
    fn collect_trash(&mut self) -> bool {
        let before = self.trash.len();
        let trash = std::mem::take(&mut self.trash);
        self.trash = trash
            .into_iter()
            .filter(|(_, d)| {
                let c = self.counts(d.id);
                c.active + c.inactive + c.persist > 0
            })
            .collect();
        if self.trash.len() == before {
            return false;
        }
        // Cannot fail: the same servers less some.
        let _ = self.slots.assign(&with_trash(&self.rules, &self.trash));
        true
    }

    /// Make the rules what the keepalived configuration and its checks say,
    /// merged so that servers that stay keep their connections.
    fn apply_keepalived(&mut self) {
        let Some(k) = self.keepalived.as_mut() else { return };
        let mut next = self.rules.clone();
        next.merge(&k.effective());
        if let Err(e) = self.commit(next) {
            eprintln!("ferrovs: keepalived: {e}");
            return;
        }
        self.resolve_new_servers();
        self.publish();
        self.wait_installed();
    }

    /// Read the keepalived configuration again (SIGHUP, `--reload`).
    fn reload(&mut self) -> Result<String, String> {
        let Some(k) = self.keepalived.as_mut() else {
            return Err("no keepalived configuration to reload (daemon --keepalived FILE)".into());
        };
        k.reload()?;
        self.apply_keepalived();
        Ok(String::new())
    }

    /// Feed every server's raw counters to its rate estimator.
    fn estimate(&mut self) {
        let ids: Vec<u32> = self
            .rules
            .services
            .iter()
            .flat_map(|s| s.dests.iter().map(|d| d.id))
            .collect();
        for &id in &ids {
            let c = self.counts(id);
            let z = self.zeroed.get(&id).copied().unwrap_or_default();
            // Raw (un-zeroed) counters: -Z must not look like a negative rate.
            let raw = [
                c.conns + z.conns,
                c.in_pkts + z.in_pkts,
                c.out_pkts + z.out_pkts,
                c.in_bytes + z.in_bytes,
                c.out_bytes + z.out_bytes,
            ];
            self.estimators.tick(id, raw);
        }
        self.estimators.retain(|id| ids.contains(&id));
    }

    /// `-Z`: zero the packet and byte counters of one service or all.
    fn zero(&mut self, service: Option<config::ServiceKey>) -> Result<String, String> {
        let ids: Vec<u32> = self
            .rules
            .services
            .iter()
            .filter(|s| service.is_none_or(|k| k == s.key))
            .flat_map(|s| s.dests.iter().map(|d| d.id))
            .collect();
        if let Some(k) = service.filter(|k| self.rules.service(k).is_none()) {
            return Err(format!("Service not defined: {k}"));
        }
        for id in ids {
            self.zeroed.remove(&id);
            let now = self.counts(id);
            self.zeroed.insert(id, now);
        }
        Ok(String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack::ConnState;

    #[test]
    fn connection_listing_matches_ipvsadm_lnc() {
        let row = |template, state, expires_in| ConnInfo {
            proto: 6,
            cip: 0x0a0f_9066,
            cport: 43614,
            vip: 0x0a0f_3ed0,
            vport: 19080,
            rip: 0x0a0f_9047,
            rport: 19080,
            state,
            expires_in,
            template,
        };
        let rows = [
            row(false, ConnState::SynRecv, 57),
            row(true, ConnState::None, 24 * 60 + 5),
        ];
        assert_eq!(
            render_conns(&rows, false),
            "IPVS connection entries\n\
             pro expire state       source             virtual            destination\n\
             TCP 00:57  SYN_RECV    10.15.144.102:43614 10.15.62.208:19080 10.15.144.71:19080\n\
             TCP 24:05  NONE        10.15.144.102:43614 10.15.62.208:19080 10.15.144.71:19080\n"
        );
        let json = render_conns(&rows[..1], true);
        assert_eq!(
            json,
            "{\"connections\":[{\"protocol\":\"TCP\",\"expire\":57,\"state\":\"SYN_RECV\",\
             \"source\":\"10.15.144.102:43614\",\"virtual\":\"10.15.62.208:19080\",\
             \"destination\":\"10.15.144.71:19080\",\"template\":false}]}\n"
        );
    }
}
