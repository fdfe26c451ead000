//! VRRP in `ferrovs daemon`: the `vrrp_instance` blocks of the
//! keepalived.conf given with `--keepalived`, run on a control-plane thread
//! of their own (never a worker), interoperable with keepalived.
//!
//! | part | owns |
//! |---|---|
//! | this file | the thread: adverts in, timers, reloads, sync groups, the status the listing and metrics read |
//! | [`run`] | one instance: adverts out, addresses, ARPs, log line, notify |
//! | [`net`] | raw sockets, rtnetlink addresses, gratuitous ARP frames |
//! | [`track`] | `track_interface` and `track_script` |
//! | [`notify`] | notify scripts, bounded, off the protocol's thread |
//!
//! The XDP steering program passes protocol 112 to the host, so adverts
//! reach these sockets whatever the workers do; the workers forward what
//! reaches the VIPs in every state, as an IPVS backup does.
//!
//! Must not touch: the rules or the workers.

mod net;
mod notify;
mod run;
mod track;

use config::keepalived::vrrp::Vrrp as Conf;
use crossbeam_channel::{Receiver, Sender, select, unbounded};
use run::Run;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use vrrp::instance::{Action, State};
use vrrp::packet::Ignored;

/// The thread wakes at least this often (trackers, status).
const TICK: Duration = Duration::from_millis(100);

/// One instance as `-L --vrrp` and the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// Instance name.
    pub name: String,
    /// Interface.
    pub interface: String,
    /// VRID.
    pub vrid: u8,
    /// State (listed and serialized as keepalived names it: `MASTER`, …).
    #[serde(serialize_with = "state_name")]
    pub state: State,
    /// Configured priority.
    pub priority: u8,
    /// Priority after trackers.
    pub effective_priority: u8,
    /// The master's address, as last seen (ours when master).
    pub master: Option<String>,
    /// Advert interval in use, in centiseconds.
    pub advert_int_cs: u16,
    /// Seconds since the epoch of the last transition.
    pub last_transition: Option<u64>,
    /// Why it happened.
    pub last_reason: Option<&'static str>,
    /// Transitions.
    pub transitions: u64,
    /// Adverts sent.
    pub adverts_sent: u64,
    /// Adverts received and taken.
    pub adverts_received: u64,
    /// Adverts for this instance that were ignored.
    pub adverts_ignored: u64,
}

fn state_name<S: serde::Serializer>(state: &State, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(state.name())
}

/// Ignored adverts by reason, over every interface.
pub type IgnoredCounts = [AtomicU64; Ignored::ALL.len()];

/// A counter family of the metrics: name, help, and its value per instance.
type Family = (&'static str, &'static str, fn(&Status) -> u64);

/// What the VRRP thread publishes, shared with the listing and the
/// metrics; it outlives a thread restarted by a reload.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    status: Arc<Mutex<Vec<Status>>>,
    ignored: Arc<IgnoredCounts>,
    /// Instances held at the lowest priority (a director warming its
    /// connection table before it may preempt).
    held: Arc<Mutex<HashSet<String>>>,
}

impl Shared {
    /// Hold instance `name` at priority 1 (`on`), or let it go back to its
    /// own. An instance held when the VRRP thread starts starts as BACKUP
    /// whatever its `state`.
    pub fn hold(&self, name: &str, on: bool) {
        if let Ok(mut h) = self.held.lock() {
            if on {
                h.insert(name.to_string());
            } else {
                h.remove(name);
            }
        }
    }

    fn is_held(held: &Mutex<HashSet<String>>, name: &str) -> bool {
        held.lock().is_ok_and(|h| h.contains(name))
    }

    /// Return the instances as last published.
    pub fn status(&self) -> Vec<Status> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Return the ignored adverts by reason name.
    pub fn ignored_counts(&self) -> Vec<(&'static str, u64)> {
        Ignored::ALL
            .iter()
            .zip(self.ignored.iter())
            .map(|(w, n)| (w.name(), n.load(Ordering::Relaxed)))
            .collect()
    }

    /// The Prometheus families: state, transitions, adverts, ignored.
    pub fn metrics(&self) -> String {
        use crate::prom::{Kind, Text};
        let list = self.status();
        let mut t = Text::new();
        let states = [
            State::Init,
            State::Backup,
            State::Master,
            State::Fault,
            State::Stop,
        ];
        let name = "ferrovs_vrrp_state";
        t.family(name, Kind::Gauge, "1 for the state each VRRP instance is in.");
        for s in &list {
            for st in states {
                let labels: crate::prom::Labels<'_> = &[("vrrp_instance", &s.name), ("state", &st.name())];
                t.sample(name, labels, u8::from(s.state == st));
            }
        }
        let families: [Family; 3] = [
            ("vrrp_transitions_total", "State transitions.", |s| s.transitions),
            ("vrrp_adverts_sent_total", "Adverts sent.", |s| s.adverts_sent),
            (
                "vrrp_adverts_received_total",
                "Adverts received and taken.",
                |s| s.adverts_received,
            ),
        ];
        for (name, help, f) in families {
            let name = format!("ferrovs_{name}");
            t.family(&name, Kind::Counter, help);
            for s in &list {
                t.sample(&name, &[("vrrp_instance", &s.name)], f(s));
            }
        }
        let name = "ferrovs_vrrp_adverts_ignored_total";
        t.family(name, Kind::Counter, "Adverts ignored, by reason.");
        for (why, n) in self.ignored_counts() {
            t.sample(name, &[("reason", &why)], n);
        }
        t.into_string()
    }
}

enum Cmd {
    Reload(Conf),
    Stop,
}

/// The VRRP thread, stopped (priority 0 sent, addresses removed) on drop.
pub struct Vrrp {
    cmds: Sender<Cmd>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Vrrp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vrrp").finish_non_exhaustive()
    }
}

impl Vrrp {
    /// Start the instances of `conf`.
    ///
    /// # Errors
    /// An interface is missing or a socket cannot be opened.
    pub fn start(conf: &Conf, shared: &Shared) -> Result<Self, String> {
        let (cmds, cmd_rx) = unbounded();
        let mut engine = Engine::new(cmd_rx, shared);
        engine.configure(conf.clone())?;
        let thread = std::thread::Builder::new()
            .name("vrrp".into())
            .spawn(move || engine.run())
            .map_err(|e| format!("vrrp thread: {e}"))?;
        Ok(Self {
            cmds,
            thread: Some(thread),
        })
    }

    /// Apply a reloaded configuration.
    pub fn reload(&self, conf: &Conf) {
        let _ = self.cmds.send(Cmd::Reload(conf.clone()));
    }
}

impl Drop for Vrrp {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Engine {
    runs: Vec<Run>,
    ports: Vec<net::Port>,
    /// Sync groups as indices into `runs`, their blocks, and the state
    /// their notify scripts were last run for.
    groups: Vec<Vec<usize>>,
    group_conf: Vec<config::keepalived::vrrp::SyncGroup>,
    group_state: Vec<Option<State>>,
    tracker: track::Tracker,
    packets: Receiver<(usize, Vec<u8>)>,
    packets_tx: Sender<(usize, Vec<u8>)>,
    cmds: Receiver<Cmd>,
    stop_rx: Arc<AtomicBool>,
    status: Arc<Mutex<Vec<Status>>>,
    ignored: Arc<IgnoredCounts>,
    held: Arc<Mutex<HashSet<String>>>,
}

impl Engine {
    fn new(cmds: Receiver<Cmd>, shared: &Shared) -> Self {
        // Adverts waiting for the engine: a flood fills this and is dropped.
        let (packets_tx, packets) = crossbeam_channel::bounded(1024);
        Self {
            runs: Vec::new(),
            ports: Vec::new(),
            groups: Vec::new(),
            group_conf: Vec::new(),
            group_state: Vec::new(),
            tracker: track::Tracker::default(),
            packets,
            packets_tx,
            cmds,
            stop_rx: Arc::new(AtomicBool::new(false)),
            status: shared.status.clone(),
            ignored: shared.ignored.clone(),
            held: shared.held.clone(),
        }
    }

    /// Open the ports `conf` needs and set its instances up (INIT).
    fn configure(&mut self, conf: Conf) -> Result<(), String> {
        for i in &conf.instances {
            if self.ports.iter().any(|p| p.name == i.interface) {
                continue;
            }
            let multicast = conf
                .instances
                .iter()
                .any(|j| j.interface == i.interface && j.unicast_peers.is_empty());
            let port = net::Port::open(&i.interface, multicast)
                .map_err(|e| format!("vrrp_instance {} ({}): {e}", i.name, i.at))?;
            port.receive(
                self.ports.len(),
                self.packets_tx.clone(),
                self.stop_rx.clone(),
                self.ignored.clone(),
            );
            self.ports.push(port);
        }
        let ifindex = |name: &str| self.ports.iter().find(|p| p.name == name).map(|p| p.ifindex);
        let mut runs = Vec::new();
        for i in &conf.instances {
            let pi = self.ports.iter().position(|p| p.name == i.interface).unwrap_or(0);
            let held = Shared::is_held(&self.held, &i.name);
            let mut c = i.clone();
            // Held, it must not take over at start: BACKUP at priority 1.
            c.state_master &= !held;
            let mut run = Run::new(c, &self.ports[pi], pi, ifindex);
            if held {
                run.held = true;
                let _ = run.inst.set_effective_priority(Instant::now(), 1);
                // The configuration as written, for reloads to compare.
                run.conf.state_master = i.state_master;
            }
            runs.push(run);
        }
        self.groups = conf
            .groups
            .iter()
            .map(|g| {
                g.members
                    .iter()
                    .filter_map(|m| runs.iter().position(|r| r.conf.name == *m))
                    .collect()
            })
            .collect();
        self.runs = runs;
        self.group_state = vec![None; conf.groups.len()];
        self.group_conf = conf.groups.clone();
        self.tracker = track::Tracker::new(&conf);
        Ok(())
    }

    fn run(mut self) {
        let now = Instant::now();
        for i in 0..self.runs.len() {
            let a = self.runs[i].inst.start(now);
            self.apply(i, a, now);
        }
        loop {
            let now = Instant::now();
            let next = self.runs.iter().filter_map(Run::deadline).min();
            let wait = next.map_or(TICK, |t| t.saturating_duration_since(now).min(TICK));
            select! {
                recv(self.packets) -> m => if let Ok((port, bytes)) = m {
                    self.packet(port, &bytes, Instant::now());
                },
                recv(self.cmds) -> c => match c {
                    Ok(Cmd::Reload(conf)) => self.reload(conf),
                    Ok(Cmd::Stop) | Err(_) => break,
                },
                default(wait) => {}
            }
            let now = Instant::now();
            for i in 0..self.runs.len() {
                let port = &self.ports[self.runs[i].port];
                let a = self.runs[i].due(now, port);
                self.apply(i, a, now);
            }
            self.track(now);
            self.notify_groups();
            self.publish();
        }
        self.shutdown();
        self.notify_groups();
        notify::wait(Duration::from_secs(5));
    }

    /// A group whose members all reached one state runs its notify
    /// scripts for it, once (`notify` gets `GROUP NAME STATE 0`).
    fn notify_groups(&mut self) {
        for (g, members) in self.groups.iter().enumerate() {
            let Some(&first) = members.first() else { continue };
            let st = self.runs[first].inst.state();
            if members.iter().any(|&m| self.runs[m].inst.state() != st) || self.group_state[g] == Some(st) {
                continue;
            }
            self.group_state[g] = Some(st);
            let Some(conf) = self.group_conf.get(g) else {
                continue;
            };
            notify::transition(&conf.notify, "GROUP", &conf.name, st, 0);
        }
    }

    fn count(&self, why: Ignored) {
        let at = Ignored::ALL.iter().position(|w| *w == why).unwrap_or(0);
        self.ignored[at].fetch_add(1, Ordering::Relaxed);
    }

    fn packet(&mut self, port: usize, bytes: &[u8], now: Instant) {
        let r = match vrrp::packet::parse(bytes) {
            Ok(r) => r,
            Err(why) => return self.count(why),
        };
        let Some(i) = self
            .runs
            .iter()
            .position(|x| x.port == port && x.conf.vrid == r.vrid)
        else {
            return self.count(Ignored::Vrid);
        };
        if let Err(why) = r.check(&self.runs[i].expect()) {
            // Our own adverts are not news, and not counted against anyone.
            if why != Ignored::Own {
                self.runs[i].ignored += 1;
                self.count(why);
            }
            return;
        }
        self.runs[i].received += 1;
        let a = self.runs[i].inst.on_advert(now, r.src, r.priority, r.interval_cs);
        self.apply(i, a, now);
    }

    /// Carry out `actions` of instance `i`, and what they set off in its
    /// sync group.
    fn apply(&mut self, i: usize, actions: Vec<Action>, now: Instant) {
        let mut work = vec![(i, actions)];
        // Each member moves at most once per round: bounded by the group.
        for _ in 0..=self.runs.len() {
            let Some((i, actions)) = work.pop() else { break };
            for a in actions {
                let port = &self.ports[self.runs[i].port];
                match a {
                    Action::Advertise(p) => self.runs[i].advertise(port, p),
                    Action::SplitBrain { from, priority } => log::warn!(
                        "vrrp: ({}) another master {from} at priority {priority} while master: \
                         the election decides",
                        self.runs[i].conf.name
                    ),
                    Action::Transition { from, to, why } => {
                        // The new state is listed before the addresses
                        // move: whoever sees the VIP arrive or leave reads
                        // the state that moved it.
                        self.publish();
                        self.runs[i].transition(port, now, (from, to, why));
                        // A member that yields to another master takes the
                        // group along; faults move the group in `track`
                        // (each member sends its priority 0).
                        if from == State::Master && to == State::Backup {
                            for &j in self.groups.iter().filter(|g| g.contains(&i)).flatten() {
                                if j != i {
                                    work.push((j, self.runs[j].inst.follow_group(now)));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn track(&mut self, now: Instant) {
        for i in 0..self.runs.len() {
            let held = Shared::is_held(&self.held, &self.runs[i].conf.name);
            let r = &mut self.runs[i];
            if held != r.held {
                r.held = held;
                let p = if held {
                    1
                } else {
                    i32::from(r.conf.priority) + r.track_weight
                };
                let a = r.inst.set_effective_priority(now, p);
                self.apply(i, a, now);
            }
        }
        let results = self.tracker.poll(&self.runs);
        for (i, weight, fault) in results {
            let r = &mut self.runs[i];
            if weight != r.track_weight {
                r.track_weight = weight;
                let p = if r.held {
                    1
                } else {
                    i32::from(r.conf.priority) + weight
                };
                let a = r.inst.set_effective_priority(now, p);
                self.apply(i, a, now);
            }
            if fault != self.runs[i].track_fault {
                self.runs[i].track_fault = fault;
                let group: Vec<usize> = self
                    .groups
                    .iter()
                    .filter(|g| g.contains(&i))
                    .flatten()
                    .copied()
                    .collect();
                let members = if group.is_empty() { vec![i] } else { group };
                for j in members {
                    // A group member stays faulted while any member is.
                    let any = fault
                        || self
                            .groups
                            .iter()
                            .any(|g| g.contains(&j) && g.iter().any(|&k| self.runs[k].track_fault));
                    let a = self.runs[j].inst.set_fault(now, any);
                    self.apply(j, a, now);
                }
            }
        }
    }

    /// A reloaded configuration: instances that did not change keep
    /// running untouched; the others restart.
    fn reload(&mut self, conf: Conf) {
        let now = Instant::now();
        let same = self.runs.len() == conf.instances.len()
            && self.runs.iter().zip(&conf.instances).all(|(r, c)| r.conf == *c);
        if same {
            self.tracker = track::Tracker::new(&conf);
            return;
        }
        for i in 0..self.runs.len() {
            let r = &mut self.runs[i];
            // A block that changed only its priority keeps running with the
            // new one, as keepalived applies it.
            let reprioritised = conf
                .instances
                .iter()
                .find(|c| c.priority != r.conf.priority && c.same_but_priority(&r.conf));
            if let Some(c) = reprioritised {
                r.conf.priority = c.priority;
                let a = r.inst.set_priority(now, c.priority, r.track_weight);
                self.apply(i, a, now);
            } else if !conf.instances.contains(&self.runs[i].conf) {
                let a = self.runs[i].inst.stop(now);
                self.apply(i, a, now);
            }
        }
        let kept: Vec<(usize, Run)> = std::mem::take(&mut self.runs)
            .into_iter()
            .filter_map(|r| conf.instances.iter().position(|c| *c == r.conf).map(|at| (at, r)))
            .collect();
        let mut kept = kept;
        if let Err(e) = self.configure(conf) {
            log::error!("vrrp: reload: {e}");
        }
        // Unchanged instances carry on as they were; new ones start.
        for i in 0..self.runs.len() {
            if let Some(pos) = kept.iter().position(|(at, _)| *at == i) {
                let (_, r) = kept.swap_remove(pos);
                self.runs[i] = r;
            } else {
                let a = self.runs[i].inst.start(now);
                self.apply(i, a, now);
            }
        }
    }

    fn publish(&self) {
        let list = self.runs.iter().map(status_of).collect();
        if let Ok(mut s) = self.status.lock() {
            *s = list;
        }
    }

    fn shutdown(&mut self) {
        self.stop_rx.store(true, Ordering::Relaxed);
        let now = Instant::now();
        for i in 0..self.runs.len() {
            let a = self.runs[i].inst.stop(now);
            self.apply(i, a, now);
        }
        self.publish();
    }
}

fn status_of(r: &Run) -> Status {
    Status {
        name: r.conf.name.clone(),
        interface: r.conf.interface.clone(),
        vrid: r.conf.vrid,
        state: r.inst.state(),
        priority: r.conf.priority,
        effective_priority: r.inst.effective_priority(),
        master: r.inst.master().map(|(a, _)| a.to_string()),
        advert_int_cs: r.inst.interval_cs(),
        last_transition: r
            .last
            .and_then(|(t, _)| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
        last_reason: r.last.map(|(_, w)| w.name()),
        transitions: r.transitions,
        adverts_sent: r.sent,
        adverts_received: r.received,
        adverts_ignored: r.ignored,
    }
}
