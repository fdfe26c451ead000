//! `ferrovs daemon`: attach the steering program, start one pinned worker per
//! queue, and serve the control socket.
//!
//! Heads up — the rooms, and what each owns (read the one you change):
//!
//! | part | owns | must not touch |
//! |---|---|---|
//! | this file | the control loop: requests, timers, SIGHUP, keepalived, start and stop | frames, rule validation |
//! | [`opts`] | the command line and the TOML file | anything running |
//! | [`preflight`] | checking every setting and interface before the first host change, all problems at once | the host |
//! | [`links`] | the interfaces, real servers' MACs (neighbour table, solicitation) | the rules |
//! | [`workers`] | worker threads and their channels, publication of snapshots (bounded wait for every worker), the steering maps, `-L -c` dumps | the rules |
//! | [`book`] | the rules: commit, trash, `-Z`, dry run, counters as listed | workers, steering |
//! | [`render`] | the text and JSON of answers | state of any kind |
//! | [`syncd`] | the connection sync daemons and the master's rings | the rules |
//! | [`metrics`] | the Prometheus endpoint, on a thread of its own | the control loop |
//!
//! The control thread (this one) owns the rules. A change is validated in
//! full on a copy ([`book::Book::commit`]), then published to every worker as
//! an immutable snapshot; workers hand the old one back here to be freed. A
//! request returns once every worker runs the new rules, or says which did
//! not. Neighbour entries are re-read every second and a changed RS MAC is
//! published the same way.

mod book;
mod fast;
mod links;
mod metrics;
mod opts;
mod preflight;
mod render;
mod state;
mod syncd;
mod workers;

pub use book::Book;
pub use opts::Opts;

use crate::ctl;
use crate::request::Request;

use config::ipvsadm::{Command, ListOpts};
use config::{FwdMethod, Rules};
use dataplane::Snapshot;
use dataplane::snapshot::{FullTable, Input};
use links::Links;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workers::Workers;

/// How often the control loop wakes when idle.
const TICK: Duration = Duration::from_millis(20);
/// How often the connections are written to the state directory.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Sync message size of that file (a v1 message's size field is 16 bits).
const CHECKPOINT_MSG: usize = 60_000;
/// How long the workers may take to take the last run's connections in.
const ADOPT_WAIT: Duration = Duration::from_secs(10);

/// The settings every snapshot carries besides the rules.
#[derive(Debug, Clone, Copy)]
struct SnapSettings {
    mh_table_size: u32,
    full_table: FullTable,
    expire_nodest_conn: bool,
}

struct Control {
    links: Links,
    book: Book,
    workers: Workers,
    settings: SnapSettings,
    /// Version of the next snapshot.
    version: u64,
    /// The keepalived configuration driving the rules, if any.
    keepalived: Option<crate::keepalived::Running>,
    /// Set by SIGHUP: reload the keepalived configuration.
    hup: Arc<AtomicBool>,
    /// The book as the metrics thread reads it.
    published: Arc<Mutex<Arc<Book>>>,
    /// The connection sync daemons.
    syncd: syncd::Syncd,
    /// The fast path's flow map, while it runs.
    fast: Option<fast::Keeper>,
    /// `--state-dir`: where every committed change is written.
    state: Option<state::StateDir>,
    /// The sync daemons started by request (keepalived's follow its
    /// configuration instead), as the state file keeps them.
    requested: Vec<(crate::sync::Role, crate::sync::Settings)>,
}

/// Run the daemon until SIGTERM or SIGINT.
///
/// # Errors
/// Set-up failed: no such interface, the program or a socket could not be
/// attached, the control socket is taken.
pub fn run(opts: Opts) -> Result<(), String> {
    if opts.stop_clean {
        let n = dataplane::xsk::unpin_links(&opts.bpf_pins)
            .map_err(|e| format!("--stop-clean: {}: {e}", opts.bpf_pins.display()))?;
        log::info!(
            "detached {n} pinned XDP attachment(s) in {}",
            opts.bpf_pins.display()
        );
        return Ok(());
    }
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
    // Everything is checked before the first change to the host: no
    // advert, no address, no XDP program on a start that fails.
    let keepalived = match &opts.keepalived {
        Some(p) => Some(crate::keepalived::Running::load(p.clone()).map_err(|e| format!("keepalived: {e}"))?),
        None => None,
    };
    preflight::check(&opts, keepalived.as_ref())?;
    let links = Links::open(&opts.place.interface, opts.place.queues)?;
    let socket = PathBuf::from(&opts.socket);
    let listener =
        ctl::listen(&socket, opts.socket_mode).map_err(|e| format!("control socket {}: {e}", opts.socket))?;
    let metrics = match &opts.metrics {
        Some(a) => Some(metrics::listen(a).map_err(|e| format!("metrics address {a}: {e}"))?),
        None => None,
    };
    let started = Control::start(&opts, links, keepalived, hup).and_then(|mut control| {
        // VRRP and the checks last: their adverts and addresses reach the
        // network only once the director can forward.
        if let Some(k) = control.keepalived.as_mut() {
            k.go().map_err(|e| format!("keepalived: {e}"))?;
        }
        Ok(control)
    });
    let result = started.map(|mut control| {
        log::info!(
            "{}: forwarding on {} with {} worker(s); control socket {}",
            crate::version(),
            opts.place.interface.join(","),
            opts.place.queues,
            opts.socket
        );
        let scraper = metrics.map(|m| scrape(m, &control, stop.clone()));
        // The start-up rules, before the first request: the last run's
        // state when there is one (it began from --rules and carries every
        // change since), else --rules.
        let saved = control.load_state();
        if let Some(s) = &saved {
            if let Err(e) = control.change(s.rules.clone()) {
                log::warn!("state: {e}");
            }
        } else if let Some(text) = &rules_text {
            if let Err(e) = control.restore(text) {
                log::error!("--rules: {e}");
            }
        }
        control.apply_keepalived();
        let from_state = saved.map(|s| s.daemons).unwrap_or_default();
        let from_file = opts
            .sync_daemons
            .iter()
            .filter(|(role, _)| !from_state.iter().any(|(r, _)| r == role));
        for (role, settings) in from_state.iter().chain(from_file) {
            if let Err(e) = control.handle(Request::StartDaemon {
                role: *role,
                settings: settings.clone(),
            }) {
                log::error!("sync_daemon: {e}");
            }
        }
        control.persist();
        control.adopt_conns();
        // Rules, sockets and connections are in: our program may take the
        // frames from the last run's.
        if let Err(e) = control.workers.go_live() {
            log::error!("{e}");
        }
        control.serve(&listener, &stop);
        let line = render::counters(control.workers.stats.iter().map(|s| &**s));
        // Dropping `control` stops the workers and destroys the bpf_link:
        // the program leaves the interfaces.
        drop(control);
        if let Some(t) = scraper {
            let _ = t.join();
        }
        log::info!("stopped; {line}");
    });
    let _ = std::fs::remove_file(&socket);
    result
}

impl Control {
    /// Start the workers on `links` with empty rules.
    fn start(
        opts: &Opts,
        links: Links,
        keepalived: Option<crate::keepalived::Running>,
        hup: Arc<AtomicBool>,
    ) -> Result<Self, String> {
        let settings = SnapSettings {
            mh_table_size: opts.mh_table_size,
            full_table: opts.full_table(),
            expire_nodest_conn: opts.expire_nodest_conn,
        };
        let book = Book::default();
        let snap = snapshot(1, &book, &links, settings, (None, None));
        let ifindexes: Vec<u32> = links.links.iter().map(|l| l.ifindex).collect();
        let workers = Workers::start(opts, &links.names(), &ifindexes, snap)?;
        let queues = opts.place.queues as usize;
        let (on, why) = opts.fast_path_on();
        log::info!("fast path {} ({why})", if on { "on" } else { "off" });
        let fast = on
            .then(|| fast::Keeper::start(workers.steer(), queues, workers::fast_flows(opts)))
            .transpose()?;
        Ok(Self {
            fast,
            published: Arc::new(Mutex::new(Arc::new(book.clone()))),
            links,
            book,
            workers,
            settings,
            version: 2,
            keepalived,
            hup,
            syncd: syncd::Syncd::with_policy(opts.sync_policy()),
            state: opts.state_dir.as_deref().map(state::StateDir::open).transpose()?,
            requested: Vec::new(),
        })
    }

    /// The last run's state, if `--state-dir` has one that passes every
    /// check; a refused one is reported and set aside.
    fn load_state(&mut self) -> Option<state::Saved> {
        match self.state.as_mut()?.load() {
            Ok(Some(s)) => {
                log::info!(
                    "state: the last run's rules are back ({} services)",
                    s.rules.services.len()
                );
                Some(s)
            }
            Ok(None) => None,
            Err(e) => {
                log::warn!("state refused, starting without it: {e}");
                None
            }
        }
    }

    /// Give the workers the connections the last run left (`--state-dir`),
    /// as a backup takes a master's table.
    fn adopt_conns(&mut self) {
        let Some(st) = &self.state else { return };
        match st.load_conns() {
            Ok(Some(msgs)) => {
                let c = crate::sync::Counters::default();
                let handoff = self.workers.handoff();
                match crate::sync::transfer::take_all(&msgs, &handoff, &c, ADOPT_WAIT) {
                    Ok(n) => log::info!("state: {n} connections back"),
                    Err(e) => log::warn!("state: connections: {e}"),
                }
            }
            Ok(None) => {}
            Err(e) => log::warn!("state: connections refused, starting without them: {e}"),
        }
    }

    /// Write every worker's connections (`--state-dir`), once a second and
    /// at exit.
    fn checkpoint(&self) {
        let Some(st) = &self.state else { return };
        let conns = self.workers.sync_dump();
        let msgs = crate::sync::transfer::encode(&conns, 0, CHECKPOINT_MSG);
        if let Err(e) = st.save_conns(&msgs) {
            log::error!("state: connections not saved: {e}");
        }
    }

    /// Write the committed state, if it changed (`--state-dir`).
    fn persist(&mut self) {
        let Some(st) = &mut self.state else { return };
        let saved = state::Saved {
            rules: self.book.rules.clone(),
            daemons: self.requested.clone(),
        };
        if let Err(e) = st.save(&saved) {
            log::error!("state not saved: {e}");
        }
    }

    fn serve(&mut self, listener: &UnixListener, stop: &AtomicBool) {
        let (mut last_est, mut last_neigh) = (Instant::now(), Instant::now());
        let mut last_checkpoint = Instant::now();
        let mut clients = ctl::Clients::default();
        while !stop.load(Ordering::Relaxed) {
            clients.poll(listener, |words| {
                let reply = match words {
                    Ok(words) => Request::from_wire(words).and_then(|r| self.handle(r)),
                    Err(e) => Err(format!("bad request: {e}")),
                };
                self.persist();
                reply
            });
            let rips = self.rips();
            let mut moved = self.links.poll(&rips);
            self.workers
                .set_locals(&self.links.locals(), &self.links.locals6());
            if last_neigh.elapsed() >= links::NEIGH_EVERY {
                last_neigh = Instant::now();
                self.links.solicit(&rips);
                moved |= self.book.collect_trash(&self.workers.stats);
            }
            if moved {
                self.publish();
            }
            if self.hup.swap(false, Ordering::Relaxed) {
                // reload() logs how it went.
                let _ = self.reload();
            }
            if self.keepalived.as_mut().is_some_and(|k| k.poll()) {
                self.apply_keepalived();
            }
            self.follow_sync_daemon();
            if let Some(k) = &mut self.fast {
                k.pump(self.workers.steer(), Instant::now());
            }
            if last_est.elapsed().as_secs() >= crate::estimator::INTERVAL_SECS {
                last_est = Instant::now();
                self.book.estimate(&self.workers.stats);
                self.publish_book();
            }
            if self.state.is_some() && last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                last_checkpoint = Instant::now();
                self.checkpoint();
            }
            self.workers.deliver();
            std::thread::sleep(TICK);
        }
        self.checkpoint();
    }

    /// keepalived's `lvs_sync_daemon`: master while its instance is
    /// MASTER, backup otherwise; both without an instance.
    fn follow_sync_daemon(&mut self) {
        let Some(k) = &self.keepalived else { return };
        let Some(conf) = k.sync_daemon().cloned() else {
            return;
        };
        let (vrid, master) = match &conf.instance {
            None => (None, None),
            Some(name) => {
                let st = k.vrrp_shared().status();
                let Some(i) = st.iter().find(|i| i.name == *name) else {
                    return;
                };
                self.warm_up(name, i, &conf);
                (Some(i.vrid), Some(i.state == ::vrrp::instance::State::Master))
            }
        };
        if self.syncd.follow(&conf, vrid, master, &self.workers.handoff()) {
            self.publish();
        }
        let workers = &self.workers;
        self.syncd.serve_pulls(|| workers.sync_dump());
    }

    /// Warming up: pull the master's table while `instance` is held; let
    /// it go when done.
    fn warm_up(
        &mut self,
        instance: &str,
        st: &crate::vrrp::Status,
        conf: &config::keepalived::vrrp::SyncDaemon,
    ) {
        let Some(k) = &self.keepalived else { return };
        let now = Instant::now();
        if self.syncd.warmup.is_none() {
            let w = syncd::Warmup::new(instance.to_string(), now);
            if let Ok(mut reg) = self.syncd.registry.lock() {
                reg.push(("warmup", w.counters.clone()));
            }
            self.syncd.warmup = Some(w);
        }
        let Some(w) = self.syncd.warmup.as_mut() else {
            return;
        };
        let master = st.master.as_deref().and_then(|m| m.parse().ok());
        let pulled = self.syncd.pull.as_ref().and_then(|rx| rx.try_recv().ok());
        if pulled.is_some() {
            self.syncd.pull = None;
        }
        match w.step(now, (st.state, master), pulled) {
            syncd::WarmStep::Wait => {}
            syncd::WarmStep::Warm(_) => k.vrrp_shared().hold(instance, false),
            syncd::WarmStep::Pull(from, within) => {
                // The transfer runs on a thread of its own; its result comes
                // back to the next step.
                let (tx, rx) = crossbeam_channel::bounded(1);
                let s = syncd::settings(conf, Some(st.vrid));
                let (h, c) = (self.workers.handoff(), w.counters.clone());
                let started = std::thread::Builder::new()
                    .name("sync-pull".into())
                    .spawn(move || {
                        let _ = tx.send(crate::sync::transfer::pull(
                            from, s.port, s.syncid, &h, &c, within,
                        ));
                    });
                self.syncd.pull = Some(rx);
                if let Err(e) = started {
                    // As a failed transfer: tried again after the retry delay.
                    self.syncd.pull = None;
                    let _ = w.step(now, (st.state, master), Some(Err(e.to_string())));
                }
            }
        }
    }

    /// `-L --vrrp`.
    fn vrrp(&self, json: bool) -> Result<String, String> {
        let v = self
            .keepalived
            .as_ref()
            .and_then(|k| k.vrrp())
            .ok_or("no VRRP instances (daemon --keepalived FILE with vrrp_instance blocks)")?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(render::vrrp(&v.status(), &v.ignored_counts(), json, now))
    }

    /// Answer one request.
    fn handle(&mut self, req: Request) -> Result<String, String> {
        let cmd = match req {
            Request::Counters { json: true } => {
                let stats = self.workers.stats.iter().map(|s| &**s);
                return Ok(render::counters_json(stats, self.fast.as_ref().map(|k| &k.stats)));
            }
            Request::Counters { json: false } => {
                let mut text = render::counters_table(self.workers.stats.iter().map(|s| &**s));
                if let Some(k) = &self.fast {
                    text += &k.stats.line();
                }
                return Ok(text);
            }
            Request::Reload => return self.reload().map(|()| String::new()),
            Request::Vrrp { json } => return self.vrrp(json),
            Request::StartDaemon { role, settings } => {
                if self
                    .syncd
                    .start(role, settings.clone(), &self.workers.handoff())?
                {
                    self.publish();
                }
                self.requested.push((role, settings));
                return Ok(String::new());
            }
            Request::StopDaemon(role) => {
                if self.syncd.stop(role)? {
                    self.publish();
                }
                self.requested.retain(|(r, _)| *r != role);
                return Ok(String::new());
            }
            Request::ListDaemon { json } => return Ok(self.syncd.list(json)),
            Request::Restore { text, dry_run: true } => return self.book.dry_run(&text),
            Request::Restore { text, dry_run: false } => return self.restore(&text).map(|()| String::new()),
            Request::Ipvsadm(cmd) => cmd,
        };
        match &cmd {
            Command::List(opts) => return self.list(opts),
            Command::Save { numeric } => {
                return Ok(config::render_save(
                    &self.book.rules,
                    *numeric,
                    config::Names::system(),
                ));
            }
            Command::Zero(service) => {
                self.book.zero(*service, &self.workers.stats)?;
                self.publish_book();
                return Ok(String::new());
            }
            Command::Restore => return Err("-R reads the rules from standard input".into()),
            _ => {}
        }
        let mut next = self.book.rules.clone();
        next.apply(&cmd).map_err(|e| e.to_string())?;
        self.change(next)?;
        if let (Command::Clear, Some(k)) = (&cmd, &mut self.fast) {
            // -C empties the map: what flows on is the workers' to decide.
            k.clear(self.workers.steer());
        }
        Ok(String::new())
    }

    /// `-R`: apply a batch of ipvsadm commands, all or nothing.
    fn restore(&mut self, text: &str) -> Result<(), String> {
        let mut next = self.book.rules.clone();
        next.apply_commands("stdin", text).map_err(|e| e.to_string())?;
        self.change(next)
    }

    /// Make `next` the rules and publish them: when this returns, the rules
    /// are live in every worker, MACs of new servers included, or the error
    /// says which worker lags.
    fn change(&mut self, next: Rules) -> Result<(), String> {
        let tun = |v6: bool| {
            next.dests()
                .any(|(_, d)| d.fwd == FwdMethod::Tun && d.addr.is_ipv6() == v6)
        };
        if tun(false) && !self.links.have_ipv4() {
            return Err("-i (Tunnel) needs an IPv4 address on the director's interfaces".into());
        }
        if tun(true) && !self.links.have_ipv6() {
            return Err(
                "-i (Tunnel) to IPv6 real servers needs a global IPv6 address on the director's interfaces"
                    .into(),
            );
        }
        self.book.commit(next)?;
        let rips = self.rips();
        self.links.resolve(&rips);
        self.publish();
        self.workers.wait_installed()
    }

    /// Every real server's address, trashed ones included.
    fn rips(&self) -> Vec<std::net::IpAddr> {
        self.book.all_dests().map(|d| d.addr).collect()
    }

    /// Publish the book's rules to the workers, and the book to metrics.
    fn publish(&mut self) {
        let snap = snapshot(
            self.version,
            &self.book,
            &self.links,
            self.settings,
            (
                self.syncd.rings.clone(),
                self.fast.as_ref().map(|k| k.rings.clone()),
            ),
        );
        self.version += 1;
        if let Some(k) = &mut self.fast {
            // A deleted server's flows stay where they are, as in the
            // workers, unless --expire-nodest-conn stops them there; a
            // server whose MAC moved gets its flows back to the workers,
            // which send to the new one.
            let nodest = self.settings.expire_nodest_conn;
            let live: fast::Live = snap
                .services
                .iter()
                .flat_map(|s| &s.dests)
                .filter(|d| !(nodest && d.deleted))
                .map(|d| (d.id, d.mac))
                .collect();
            k.prune(self.workers.steer(), live);
        }
        self.workers.publish(snap);
        self.publish_book();
    }

    /// Give the metrics thread the book as it now is.
    fn publish_book(&self) {
        if let Ok(mut b) = self.published.lock() {
            *b = Arc::new(self.book.clone());
        }
    }

    fn list(&self, opts: &ListOpts) -> Result<String, String> {
        let rules = &self.book.rules;
        if opts.connections {
            return Ok(render::conns(&self.workers.dump(), opts.json));
        }
        if let Some(k) = opts.service {
            if rules.service(&k).is_none() {
                return Err(format!("Service not defined: {k}"));
            }
        }
        let counts = |id| self.book.counts(id, &self.workers.stats);
        if opts.json && opts.timeout {
            return Ok(config::render_timeouts_json(rules));
        }
        if opts.json {
            return Ok(config::render_json(rules, counts));
        }
        Ok(config::render_list(
            rules,
            opts,
            self.workers.table_size(),
            counts,
        ))
    }

    /// Make the rules what the keepalived configuration and its checks say,
    /// merged so that servers that stay keep their connections.
    fn apply_keepalived(&mut self) {
        let Some(k) = self.keepalived.as_mut() else { return };
        let mut next = self.book.rules.clone();
        next.merge(&k.effective());
        if let Err(e) = self.change(next) {
            log::error!("keepalived: {e}");
        }
        self.persist();
    }

    /// Read the keepalived configuration again (SIGHUP, `--reload`).
    fn reload(&mut self) -> Result<(), String> {
        let Some(k) = self.keepalived.as_mut() else {
            return Err("no keepalived configuration to reload (daemon --keepalived FILE)".into());
        };
        let path = k.path().display().to_string();
        log::info!("Reloading {path}");
        if let Err(e) = k.reload() {
            log::error!("Reload of {path} failed, the running configuration stays: {e}");
            return Err(e);
        }
        self.apply_keepalived();
        log::info!("Reload of {path} done");
        Ok(())
    }
}

/// Serve `listener`'s scrapes on a thread of their own: the workers, the
/// rules, and each part's families.
fn scrape(
    listener: std::net::TcpListener,
    control: &Control,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let (workers, book) = (control.workers.stats.clone(), control.published.clone());
    let mut sections: Vec<metrics::Section> = Vec::new();
    if let Some(k) = &control.keepalived {
        let (vrrp, checks, view) = (k.vrrp_shared(), k.check_stats(), k.view());
        sections.push(Box::new(move || vrrp.metrics()));
        sections.push(Box::new(move || checks.metrics()));
        sections.push(Box::new(move || crate::keepalived::metrics(&view)));
    }
    let sync = control.syncd.registry.clone();
    sections.push(Box::new(move || crate::sync::metrics(&sync)));
    if let Some(k) = &control.fast {
        let shared = k.shared.clone();
        sections.push(Box::new(move || fast::metrics(&shared)));
    }
    metrics::spawn(listener, workers, book, sections, stop)
}

/// Build snapshot `version` of the book's rules for the workers.
fn snapshot(
    version: u64,
    book: &Book,
    links: &Links,
    s: SnapSettings,
    (sync, fast): (
        Option<dataplane::sync::SyncMaster>,
        Option<dataplane::fast::FastRings>,
    ),
) -> Arc<Snapshot> {
    let rules = book.with_trash();
    let link_snaps = links.snaps();
    let neigh = |a| links.mac(a);
    let deleted = |id| book.trashed(id);
    Arc::new(Snapshot::build(&Input {
        deleted: &deleted,
        mh_table_size: s.mh_table_size,
        full_table: s.full_table,
        expire_nodest_conn: s.expire_nodest_conn,
        sync,
        fast,
        ..Input::new(version, &rules, &book.slots, &link_snaps, &neigh)
    }))
}
