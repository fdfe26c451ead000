//! The running sync daemons (`--start-daemon`, `--stop-daemon`, `-L
//! --daemon`, keepalived's `lvs_sync_daemon`), the master's rings the
//! snapshot hands the workers, and warming up: a director that starts with
//! `lvs_sync_daemon IF INSTANCE` holds that instance at priority 1 until it
//! has pulled the current master's table (or a bound passes), so it never
//! preempts before it holds what survived a failover.
//!
//! Must not touch: the rules (the control loop republishes when the master
//! starts or stops).

use crate::sync::{Daemon, Role, Settings};
use config::keepalived::vrrp::SyncDaemon;
use crossbeam_channel::Receiver;
use dataplane::owner::Handoff;
use dataplane::sync::{SyncConn, SyncMaster};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A director warming up gives up on a transfer after this long.
pub const WARM_BOUND: Duration = Duration::from_secs(30);
/// Between two attempts at a transfer.
const WARM_RETRY: Duration = Duration::from_secs(1);

/// Where warming up stands.
#[derive(Debug)]
enum Stage {
    /// Waiting for a master to pull from (retrying after the instant).
    Cold(Option<Instant>),
    /// A transfer runs; its result comes here.
    Pulling(Receiver<Result<u64, String>>, Ipv4Addr, Instant),
    /// Done: the instance is not held any more.
    Done,
}

/// A director warming up, and what it did (`-L --daemon --json`, metrics).
#[derive(Debug)]
pub struct Warmup {
    /// The VRRP instance held meanwhile.
    pub instance: String,
    since: Instant,
    state: Stage,
    /// What the transfer took in.
    pub counters: Arc<crate::sync::Counters>,
    /// How it ended: `pulled`, `master` (nothing to pull), `timeout`.
    pub outcome: Option<&'static str>,
}

impl Warmup {
    /// Start warming up for `instance` (the caller holds it in VRRP).
    pub fn new(instance: String) -> Self {
        Self {
            instance,
            since: Instant::now(),
            state: Stage::Cold(None),
            counters: Arc::default(),
            outcome: None,
        }
    }

    /// Where it stands, for `-L --daemon --json`.
    pub fn json(&self) -> serde_json::Value {
        let state = match self.state {
            Stage::Cold(_) => "cold",
            Stage::Pulling(..) => "pulling",
            Stage::Done => "warm",
        };
        serde_json::json!({
            "instance": self.instance,
            "state": state,
            "outcome": self.outcome,
            "connections": self.counters.conns.load(Ordering::Relaxed),
            "messages": self.counters.messages.load(Ordering::Relaxed),
        })
    }

    /// A step: `state` and `master` are the instance's VRRP state and the
    /// master it last heard; return true when it has just become warm.
    pub fn step(
        &mut self,
        state: &str,
        master: Option<Ipv4Addr>,
        s: &Settings,
        handoff: &Arc<Handoff>,
    ) -> bool {
        let done = |w: &mut Self, why: &'static str| {
            w.state = Stage::Done;
            w.outcome = Some(why);
            w.counters.warm.store(true, Ordering::Relaxed);
            true
        };
        match &self.state {
            Stage::Done => false,
            Stage::Pulling(rx, from, at) => match rx.try_recv() {
                Ok(Ok(n)) => {
                    log::info!(
                        "sync: warm: {n} connections from {from} in {} ms",
                        at.elapsed().as_millis()
                    );
                    done(self, "pulled")
                }
                Ok(Err(e)) => {
                    log::warn!("sync: warm: transfer from {from}: {e}");
                    self.state = Stage::Cold(Some(Instant::now() + WARM_RETRY));
                    false
                }
                Err(_) => false,
            },
            Stage::Cold(_) if state == "MASTER" => {
                log::info!("sync: warm: MASTER with no peer to pull from");
                done(self, "master")
            }
            Stage::Cold(_) if self.since.elapsed() >= WARM_BOUND => {
                log::warn!("sync: warm: no transfer within {WARM_BOUND:?}, going on cold");
                done(self, "timeout")
            }
            Stage::Cold(retry) if retry.is_none_or(|t| Instant::now() >= t) => {
                let Some(from) = master.filter(|_| state == "BACKUP") else {
                    return false;
                };
                let (tx, rx) = crossbeam_channel::bounded(1);
                let (h, c, s) = (handoff.clone(), self.counters.clone(), s.clone());
                let left = WARM_BOUND.saturating_sub(self.since.elapsed());
                let started = std::thread::Builder::new()
                    .name("sync-pull".into())
                    .spawn(move || {
                        let _ = tx.send(crate::sync::transfer::pull(from, s.port, s.syncid, &h, &c, left));
                    });
                self.state = match started {
                    Ok(_) => Stage::Pulling(rx, from, Instant::now()),
                    Err(_) => Stage::Cold(Some(Instant::now() + WARM_RETRY)),
                };
                false
            }
            Stage::Cold(_) => false,
        }
    }
}

/// The master and backup daemons, each at most once (as the kernel).
#[derive(Debug, Default)]
pub struct Syncd {
    master: Option<Daemon>,
    backup: Option<Daemon>,
    /// The workers' rings while a master runs.
    pub rings: Option<SyncMaster>,
    /// The running daemons' counters, as the metrics thread reads them.
    pub registry: crate::sync::Registry,
    /// When `follow` last failed to start a daemon: it retries only every
    /// few seconds, and says so once each time.
    failed_at: Option<std::time::Instant>,
    /// Warming up (keepalived's `lvs_sync_daemon` with an instance).
    pub warmup: Option<Warmup>,
    /// When a master sends a connection (the daemon's sync settings).
    pub policy: dataplane::sync::SyncPolicy,
}

/// The settings `lvs_sync_daemon` gives (syncid: `id`, else the VRID).
pub fn settings(conf: &SyncDaemon, vrid: Option<u8>) -> Settings {
    let d = Settings::default();
    Settings {
        interface: conf.interface.clone(),
        syncid: conf.syncid.or(vrid).unwrap_or(0),
        maxlen: conf.maxlen.unwrap_or(d.maxlen),
        group: conf.group.unwrap_or(d.group),
        port: conf.port.unwrap_or(d.port),
        ttl: conf.ttl.unwrap_or(d.ttl),
    }
}

impl Syncd {
    /// No daemons yet; a master will send by `policy`.
    pub fn with_policy(policy: dataplane::sync::SyncPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// Answer the transfer requests the master accepted, with the table
    /// `dump` gives (asked only when a request waits).
    pub fn serve_pulls(&self, dump: impl FnOnce() -> Vec<SyncConn>) {
        let Some(m) = &self.master else { return };
        let Some(pulls) = &m.pulls else { return };
        let Ok(stream) = pulls.try_recv() else { return };
        let conns = dump();
        crate::sync::transfer::serve(stream, conns, m.settings.syncid, usize::from(m.settings.maxlen));
        // Any further request waits for the next tick.
    }

    /// Start the `role` daemon; return whether the snapshot must change
    /// (a master's rings).
    ///
    /// # Errors
    /// It runs already, or its socket cannot be set up.
    pub fn start(&mut self, role: Role, s: Settings, handoff: &Arc<Handoff>) -> Result<bool, String> {
        let slot = match role {
            Role::Master => &self.master,
            Role::Backup => &self.backup,
        };
        if slot.is_some() {
            return Err(format!("a {} sync daemon is running already", role.name()));
        }
        let (d, changed) = match role {
            Role::Master => {
                let rings = SyncMaster::new(handoff.workers(), self.policy);
                let d = Daemon::master(s, rings.clone())?;
                self.rings = Some(rings);
                (d, true)
            }
            Role::Backup => (Daemon::backup(s, handoff.clone())?, false),
        };
        if let Ok(mut reg) = self.registry.lock() {
            reg.push((role.name(), d.counters.clone()));
        }
        match role {
            Role::Master => self.master = Some(d),
            Role::Backup => self.backup = Some(d),
        }
        Ok(changed)
    }

    /// Stop the `role` daemon; return whether the snapshot must change.
    ///
    /// # Errors
    /// None runs.
    pub fn stop(&mut self, role: Role) -> Result<bool, String> {
        let gone = match role {
            Role::Master => self.master.take(),
            Role::Backup => self.backup.take(),
        };
        let Some(d) = gone else {
            return Err(format!("no {} sync daemon is running", role.name()));
        };
        log::info!("sync thread stopped: state = {}", role.name().to_uppercase());
        drop(d);
        if role == Role::Master {
            self.rings = None;
        }
        Ok(role == Role::Master)
    }

    /// Make the daemons what `lvs_sync_daemon` wants while its instance
    /// is `master` (`None`: no instance, both run); return whether the
    /// snapshot must change.
    pub fn follow(
        &mut self,
        conf: &SyncDaemon,
        vrid: Option<u8>,
        master: Option<bool>,
        handoff: &Arc<Handoff>,
    ) -> bool {
        let s = settings(conf, vrid);
        let (want_master, want_backup) = match master {
            None => (true, true),
            Some(m) => (m, !m),
        };
        if self
            .failed_at
            .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(5))
        {
            return false;
        }
        let mut changed = false;
        // Stop first: a backup becoming master lets its backup go.
        if !want_backup && self.backup.is_some() {
            let _ = self.stop(Role::Backup);
        }
        if !want_master && self.master.is_some() {
            changed |= self.stop(Role::Master).unwrap_or(false);
        }
        for (role, want, running) in [
            (Role::Master, want_master, self.master.is_some()),
            (Role::Backup, want_backup, self.backup.is_some()),
        ] {
            if want && !running {
                match self.start(role, s.clone(), handoff) {
                    Ok(c) => changed |= c,
                    Err(e) => {
                        self.failed_at = Some(std::time::Instant::now());
                        log::error!("lvs_sync_daemon: {e}");
                    }
                }
            }
        }
        changed
    }

    /// `-L --daemon`: one line per daemon, as ipvsadm prints them; with
    /// `json`, their settings and counters.
    pub fn list(&self, json: bool) -> String {
        let running = [&self.master, &self.backup].into_iter().flatten();
        if !json {
            return running.map(|d| format!("{}\n", d.line())).collect();
        }
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let list: Vec<serde_json::Value> = running
            .map(|d| {
                let c = &d.counters;
                serde_json::json!({
                    "state": d.role,
                    "settings": d.settings,
                    "messages": load(&c.messages),
                    "connections": load(&c.conns),
                    "dropped": {
                        "short": load(&c.dropped[0]),
                        "size": load(&c.dropped[1]),
                        "syncid": load(&c.dropped[2]),
                        "rate": load(&c.dropped[3]),
                    },
                    "bad_entries": {
                        "malformed": load(&c.bad_entries[0]),
                        "skipped": load(&c.bad_entries[1]),
                        "ipv6": load(&c.bad_entries[2]),
                    },
                    "errors": load(&c.errors),
                })
            })
            .collect();
        let warmup = self.warmup.as_ref().map(Warmup::json);
        format!("{}\n", serde_json::json!({ "daemons": list, "warmup": warmup }))
    }
}
