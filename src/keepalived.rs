//! Running a keepalived configuration: load it, start its health checks,
//! turn check results into rules (server removed or quiesced, sorry server
//! when the quorum is lost), and reload it on SIGHUP or `ferrovs --reload`
//! by merging, so that unchanged servers keep their connections. Its
//! `vrrp_instance` blocks run on the VRRP thread (`crate::vrrp`).

use crate::health::{self, Change, Checkers, Context, Stats};
use config::ipvsadm::{Command, DestSpec};
use config::keepalived::{self, Check, Keepalived, Program};
use config::{Rules, ServiceKey};
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A real server: (service, address, port).
type Server = (ServiceKey, IpAddr, u16);

/// A loaded configuration and the state of its checks.
#[derive(Debug)]
pub struct Running {
    path: PathBuf,
    cfg: Keepalived,
    /// Per check: up, and what it adds to the server's weight.
    state: Vec<(bool, i64)>,
    /// Per server: alive (every check up), as last announced.
    alive: HashMap<Server, bool>,
    /// Services whose quorum is lost.
    quorum_lost: HashSet<ServiceKey>,
    tx: Sender<Change>,
    rx: Receiver<Change>,
    ctx: Arc<Context>,
    stats: Arc<Stats>,
    checkers: Option<Checkers>,
    /// The VRRP instances, if the file has any. Dropped last: the
    /// addresses are released when the daemon stops.
    vrrp: Option<crate::vrrp::Vrrp>,
    /// What the VRRP thread publishes (listing, metrics).
    vrrp_shared: crate::vrrp::Shared,
    /// What the metrics thread shows of the checks.
    view: SharedView,
}

/// A check's identity across reloads.
fn same_check(a: &Check, b: &Check) -> bool {
    (a.service, a.rip, a.rport, &a.kind, a.port) == (b.service, b.rip, b.rport, &b.kind, b.port)
}

/// Load `path`, printing what it does not apply, with the shared setup of
/// its checks.
fn load(path: &std::path::Path) -> Result<(Keepalived, Context), String> {
    let cfg = keepalived::load(path).map_err(|e| e.to_string())?;
    for n in &cfg.notes {
        log::warn!("keepalived: {n}");
    }
    let ctx = Context::new(&cfg);
    for n in ctx.notes(&cfg) {
        log::warn!("keepalived: {n}");
    }
    Ok((cfg, ctx))
}

impl Running {
    /// Load `path` and check it, starting nothing: its VRRP instances and
    /// health checks start with [`Self::go`], once everything else the
    /// daemon needs is checked too. Logs what it does not apply.
    ///
    /// # Errors
    /// The file is unreadable or has a syntax error (`file:line: problem`).
    pub fn load(path: PathBuf) -> Result<Self, String> {
        let (cfg, ctx) = load(&path)?;
        let state = cfg.checks.iter().map(|c| (!c.alpha, 0)).collect();
        let (tx, rx) = unbounded();
        let mut r = Self {
            path,
            cfg,
            state,
            alive: HashMap::new(),
            quorum_lost: HashSet::new(),
            tx,
            rx,
            ctx: Arc::new(ctx),
            stats: Arc::new(Stats::default()),
            checkers: None,
            vrrp: None,
            vrrp_shared: crate::vrrp::Shared::default(),
            view: Arc::new(Mutex::new(HealthView {
                reload: (true, unix_now()),
                ..HealthView::default()
            })),
        };
        r.alive = r.servers_alive();
        Ok(r)
    }

    /// The interfaces the configuration names (VRRP instances, the sync
    /// daemon), each with where: `vrrp_instance VI_1 (file:line)`.
    pub fn interfaces(&self) -> Vec<(String, String)> {
        let mut named: Vec<(String, String)> = self
            .cfg
            .vrrp
            .instances
            .iter()
            .map(|i| {
                (
                    i.interface.clone(),
                    format!("vrrp_instance {} ({})", i.name, i.at),
                )
            })
            .collect();
        if let Some(s) = &self.cfg.sync_daemon {
            named.push((s.interface.clone(), "lvs_sync_daemon".into()));
        }
        named
    }

    /// Start the VRRP instances and the health checks.
    ///
    /// # Errors
    /// A VRRP socket or a check could not be set up.
    pub fn go(&mut self) -> Result<(), String> {
        // A director starting with the sync daemon warms up before it may
        // preempt (crate::daemon::syncd).
        if let Some(inst) = self.held_instance() {
            self.vrrp_shared.hold(&inst, true);
        }
        if !self.cfg.vrrp.instances.is_empty() {
            self.vrrp = Some(crate::vrrp::Vrrp::start(&self.cfg.vrrp, &self.vrrp_shared)?);
        }
        self.start_checks()
    }

    /// Start the configuration's health checks from their current state.
    fn start_checks(&mut self) -> Result<(), String> {
        self.checkers = Some(health::start(
            &self.cfg.checks,
            &self.state,
            self.ctx.clone(),
            self.stats.clone(),
            &self.tx,
        )?);
        Ok(())
    }

    /// How late the checks run against their schedule.
    pub fn check_stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Return what the VRRP thread publishes, if the configuration has
    /// instances.
    pub fn vrrp(&self) -> Option<&crate::vrrp::Shared> {
        self.vrrp.as_ref().map(|_| &self.vrrp_shared)
    }

    /// Return the configuration's `lvs_sync_daemon`, if any.
    pub fn sync_daemon(&self) -> Option<&config::keepalived::vrrp::SyncDaemon> {
        self.cfg.sync_daemon.as_ref()
    }

    /// The VRRP instance `lvs_sync_daemon` follows, held at priority 1
    /// from the start until the connection table is warm.
    pub fn held_instance(&self) -> Option<String> {
        self.cfg.sync_daemon.as_ref()?.instance.clone()
    }

    /// Return what the VRRP thread publishes (empty without instances).
    pub fn vrrp_shared(&self) -> crate::vrrp::Shared {
        self.vrrp_shared.clone()
    }

    /// The configuration file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// What the metrics thread shows of the servers' health, the quorums
    /// and the reloads.
    pub fn view(&self) -> SharedView {
        self.view.clone()
    }

    /// Read the file again; on error keep running as before.
    ///
    /// # Errors
    /// The new file is unreadable or has a syntax error.
    pub fn reload(&mut self) -> Result<(), String> {
        let r = self.reload_file();
        if let Ok(mut v) = self.view.lock() {
            v.reload = (r.is_ok(), unix_now());
        }
        r
    }

    fn reload_file(&mut self) -> Result<(), String> {
        let (cfg, ctx) = load(&self.path)?;
        // A check that stays keeps its state; a new one starts as configured.
        let state = cfg
            .checks
            .iter()
            .map(|c| {
                self.cfg
                    .checks
                    .iter()
                    .position(|o| same_check(o, c))
                    .map_or((!c.alpha, 0), |i| self.state[i])
            })
            .collect();
        self.checkers = None;
        // Results still queued belong to the old checks.
        while self.rx.try_recv().is_ok() {}
        self.cfg = cfg;
        self.state = state;
        self.ctx = Arc::new(ctx);
        self.start_checks()?;
        match (&self.vrrp, self.cfg.vrrp.instances.is_empty()) {
            (Some(v), _) => v.reload(&self.cfg.vrrp),
            (None, false) => self.vrrp = Some(crate::vrrp::Vrrp::start(&self.cfg.vrrp, &self.vrrp_shared)?),
            (None, true) => {}
        }
        Ok(())
    }

    /// Take the checks' news; return whether any server changed state or
    /// weight. Servers that came up or went down run their notify script.
    pub fn poll(&mut self) -> bool {
        let mut changed = false;
        while let Ok(c) = self.rx.try_recv() {
            let Some(check) = self.cfg.checks.get(c.check) else {
                continue;
            };
            if self.state[c.check] != (c.up, c.delta) {
                changed |= true;
                if self.state[c.check].0 != c.up {
                    // Logged once per change, not every interval.
                    let level = if c.up { log::Level::Info } else { log::Level::Warn };
                    log::log!(
                        level,
                        "{} {} of {} is {} ({})",
                        check.kind.name(),
                        config::addr_port(check.rip, check.rport),
                        check.service,
                        if c.up { "up" } else { "down" },
                        c.why
                    );
                }
                self.state[c.check] = (c.up, c.delta);
            }
        }
        if changed {
            let now = self.servers_alive();
            for rs in &self.cfg.servers {
                let key = (rs.service, rs.rip, rs.rport);
                let (Some(&is), was) = (now.get(&key), self.alive.get(&key).copied()) else {
                    continue;
                };
                if was != Some(is) {
                    let inhibit = self
                        .cfg
                        .checks
                        .iter()
                        .any(|c| (c.service, c.rip, c.rport) == key && c.inhibit_on_failure);
                    // As keepalived, which starts with every server in the
                    // pool: news is a change, or a server down at start.
                    if was.is_some() || !is {
                        log_server(&key, is, inhibit);
                    }
                    let script = if is { &rs.notify_up } else { &rs.notify_down };
                    self.run(script.as_ref(), if is { "notify_up" } else { "notify_down" });
                }
            }
            self.alive = now;
        }
        changed
    }

    /// Every checked server: alive when all its checks are up.
    fn servers_alive(&self) -> HashMap<Server, bool> {
        let mut alive = HashMap::new();
        for (c, (up, _)) in self.cfg.checks.iter().zip(&self.state) {
            *alive.entry((c.service, c.rip, c.rport)).or_insert(true) &= *up;
        }
        alive
    }

    /// Run a notify or quorum script in the background, if there is one.
    fn run(&self, script: Option<&Program>, what: &str) {
        let Some(p) = script else { return };
        match self.ctx.scripts.command(&p.line, p.run_as.as_ref()) {
            Ok(cmd) => crate::scripts::spawn(cmd, format!("{what} {:?}", p.line)),
            Err(e) => log::warn!("keepalived: {what}: {e}"),
        }
    }

    /// The rules the configuration gives with the servers' current health:
    /// a dead server removed (weight 0 with `inhibit_on_failure`), a
    /// dynamic weight applied, and, where the quorum is lost, its script
    /// run and the sorry server in place of every server.
    pub fn effective(&mut self) -> Rules {
        let mut rules = self.cfg.rules.clone();
        let mut servers: HashMap<Server, (bool, i64, u32, bool)> = HashMap::new();
        for (c, (up, delta)) in self.cfg.checks.iter().zip(&self.state) {
            let e = servers.entry((c.service, c.rip, c.rport)).or_insert((
                true,
                0,
                c.weight,
                c.inhibit_on_failure,
            ));
            e.0 &= *up;
            e.1 += *delta;
        }
        for ((service, rip, rport), (alive, delta, weight, inhibit)) in servers {
            let spec = |w: u32| DestSpec {
                addr: rip,
                port: Some(rport),
                fwd: None,
                weight: Some(w),
                u_threshold: None,
                l_threshold: None,
            };
            let cmd = match (alive, inhibit) {
                (false, true) => Command::EditDest(service, spec(0)),
                (false, false) => Command::DelDest(service, spec(0)),
                (true, _) if delta != 0 => {
                    let w = (i64::from(weight) + delta).clamp(0, i64::from(u32::MAX)) as u32;
                    Command::EditDest(service, spec(w))
                }
                (true, _) => continue,
            };
            let _ = rules.apply(&cmd);
        }
        let extras = self.cfg.extras.clone();
        for extra in &extras {
            self.quorum(&mut rules, extra);
        }
        self.publish();
        rules
    }

    /// Hand the metrics thread the servers' health and the quorums.
    fn publish(&self) {
        let alive = self.servers_alive();
        let servers = self
            .cfg
            .servers
            .iter()
            .map(|rs| {
                let key = (rs.service, rs.rip, rs.rport);
                (key, alive.get(&key).copied().unwrap_or(true))
            })
            .collect();
        let quorum = self
            .cfg
            .extras
            .iter()
            .map(|e| {
                let lost = self.quorum_lost.contains(&e.service);
                (e.service, !lost, lost && e.sorry_server.is_some())
            })
            .collect();
        if let Ok(mut v) = self.view.lock() {
            v.servers = servers;
            v.quorum = quorum;
        }
    }

    /// keepalived's quorum with hysteresis: lost below quorum - h (or with
    /// no weight at all), regained at quorum + h.
    fn quorum(&mut self, rules: &mut Rules, extra: &keepalived::ServiceExtras) {
        let up_weight: u32 = rules
            .service(&extra.service)
            .map_or(0, |s| s.dests.iter().map(|d| d.weight).sum());
        let was_lost = self.quorum_lost.contains(&extra.service);
        let lost = if was_lost {
            up_weight < extra.quorum + extra.hysteresis
        } else {
            up_weight < extra.quorum.saturating_sub(extra.hysteresis).max(1)
        };
        if lost != was_lost {
            log_quorum(extra, lost, up_weight);
            if lost {
                self.quorum_lost.insert(extra.service);
                self.run(extra.quorum_down.as_ref(), "quorum_down");
            } else {
                self.quorum_lost.remove(&extra.service);
                self.run(extra.quorum_up.as_ref(), "quorum_up");
            }
        }
        let Some((addr, port)) = extra.sorry_server.filter(|_| lost) else {
            return;
        };
        // The sorry server takes the place of every server.
        let dests: Vec<(IpAddr, u16)> = rules
            .service(&extra.service)
            .map(|s| s.dests.iter().map(|d| (d.addr, d.port)).collect())
            .unwrap_or_default();
        for (a, p) in dests {
            let spec = DestSpec {
                addr: a,
                port: Some(p),
                fwd: None,
                weight: None,
                u_threshold: None,
                l_threshold: None,
            };
            let _ = rules.apply(&Command::DelDest(extra.service, spec));
        }
        let spec = DestSpec {
            addr,
            port: Some(port),
            fwd: Some(extra.fwd),
            weight: Some(1),
            u_threshold: None,
            l_threshold: None,
        };
        let _ = rules.apply(&Command::AddDest(extra.service, spec));
    }
}

/// keepalived's name of a virtual server in its log (`format_vs`):
/// `[10.0.0.100]:tcp:80`, or `FWM 7`.
fn vs_name(s: &ServiceKey) -> String {
    if s.fwmark != 0 {
        return format!("FWM {}", s.fwmark);
    }
    rs_name(s, s.addr, s.port)
}

/// keepalived's name of a real server of `s` (`format_rs`).
fn rs_name(s: &ServiceKey, addr: IpAddr, port: u16) -> String {
    let proto = s.proto.name().to_ascii_lowercase();
    format!("[{addr}]:{proto}:{port}")
}

/// A server joined or left its service's pool, in keepalived's words
/// (`perform_svr_state`): "Removing service [10.0.0.11]:tcp:80 from VS
/// [10.0.0.100]:tcp:80"; with `inhibit_on_failure` it is disabled (weight
/// 0) instead.
fn log_server((service, rip, rport): &Server, up: bool, inhibit: bool) {
    let (verb, prep) = match (up, inhibit) {
        (true, false) => ("Adding", "to"),
        (true, true) => ("Enabling", "of"),
        (false, false) => ("Removing", "from"),
        (false, true) => ("Disabling", "of"),
    };
    let level = if up { log::Level::Info } else { log::Level::Warn };
    log::log!(
        level,
        "{verb} service {} {prep} VS {}",
        rs_name(service, *rip, *rport),
        vs_name(service)
    );
}

/// The quorum was lost or gained, and the sorry server went in or out, in
/// keepalived's words (`update_quorum_state`): "Lost quorum 2-0=2 > 1 for
/// VS …", "Gained quorum 2+0=2 <= 2 for VS …", "Adding sorry server … to
/// VS …", "Removing sorry server … from VS …".
fn log_quorum(extra: &keepalived::ServiceExtras, lost: bool, weight: u32) {
    let (q, h, vs) = (extra.quorum, extra.hysteresis, vs_name(&extra.service));
    let sorry = extra.sorry_server.map(|(a, p)| rs_name(&extra.service, a, p));
    if lost {
        let threshold = q.saturating_sub(h).max(1);
        log::warn!("Lost quorum {q}-{h}={threshold} > {weight} for VS {vs}");
        if let Some(rs) = sorry {
            log::warn!("Adding sorry server {rs} to VS {vs}");
        }
    } else {
        log::info!("Gained quorum {q}+{h}={} <= {weight} for VS {vs}", q + h);
        if let Some(rs) = sorry {
            log::info!("Removing sorry server {rs} from VS {vs}");
        }
    }
}

/// What the metrics thread shows of a running keepalived configuration.
#[derive(Debug, Default, Clone)]
pub struct HealthView {
    /// Every configured real server, up (all its checks pass) or not.
    servers: Vec<(Server, bool)>,
    /// Services with a quorum: quorum up, sorry server in.
    quorum: Vec<Quorum>,
    /// The last load or reload: whether it took, and when (Unix seconds).
    reload: (bool, u64),
}

/// A service's quorum up, and its sorry server in.
type Quorum = (ServiceKey, bool, bool);
/// A family over quorums: name, help, value.
type QuorumFamily = (&'static str, &'static str, fn(&Quorum) -> bool);

/// A [`HealthView`] shared with the metrics thread.
pub type SharedView = Arc<Mutex<HealthView>>;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The health families: a server up, a quorum up, a sorry server in, the
/// last reload.
pub fn metrics(view: &SharedView) -> String {
    use crate::prom::{Kind, Text};
    let v = view.lock().map(|v| v.clone()).unwrap_or_default();
    let mut t = Text::new();
    let name = "ferrovs_real_server_up";
    t.family(
        name,
        Kind::Gauge,
        "1 while every health check of the real server passes (a server without checks is up).",
    );
    for ((service, rip, rport), up) in &v.servers {
        let server = config::addr_port(*rip, *rport);
        t.sample(name, &[("service", service), ("server", &server)], u8::from(*up));
    }
    let quorum: [QuorumFamily; 2] = [
        (
            "ferrovs_quorum_up",
            "1 while the service's live weight meets its quorum.",
            |q| q.1,
        ),
        (
            "ferrovs_sorry_server_active",
            "1 while the sorry server stands in for the service's servers (quorum lost).",
            |q| q.2,
        ),
    ];
    for (name, help, f) in quorum {
        t.family(name, Kind::Gauge, help);
        for q in &v.quorum {
            t.sample(name, &[("service", &q.0)], u8::from(f(q)));
        }
    }
    t.single(
        "ferrovs_reload_last_success",
        Kind::Gauge,
        "1 if the last load or reload of the keepalived configuration took, 0 if it was refused (the running one stays).",
        u8::from(v.reload.0),
    );
    t.single(
        "ferrovs_reload_last_timestamp_seconds",
        Kind::Gauge,
        "When the keepalived configuration was last loaded or reloaded (refused or not), Unix seconds.",
        v.reload.1,
    );
    t.into_string()
}
