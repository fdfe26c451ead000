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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for a master to pull from (not before the instant, after a
    /// failed transfer).
    Cold(Option<Instant>),
    /// A transfer from this master runs, started then.
    Pulling(Ipv4Addr, Instant),
    /// Done: the instance is not held any more.
    Done,
}

/// What warming up asks of its driver after a [`Warmup::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarmStep {
    /// Nothing yet.
    Wait,
    /// Pull the table from this master, within this long; hand the result
    /// to the next step.
    Pull(Ipv4Addr, Duration),
    /// Warm (`pulled`, `master`: nothing to pull, `timeout`): let the
    /// instance go.
    Warm(&'static str),
}

/// A director warming up, and what it did (`-L --daemon --json`, metrics):
/// a state machine fed the instance's VRRP state, the transfer's result and
/// the time; the driver runs the transfer (`crate::sync::transfer::pull`).
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
    /// Start warming up for `instance` at `now` (the caller holds it in
    /// VRRP).
    pub fn new(instance: String, now: Instant) -> Self {
        Self {
            instance,
            since: now,
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

    fn done(&mut self, why: &'static str) -> WarmStep {
        self.state = Stage::Done;
        self.outcome = Some(why);
        self.counters.warm.store(true, Ordering::Relaxed);
        WarmStep::Warm(why)
    }

    /// A step at `now`: `state` and `master` are the instance's VRRP state
    /// and the master it last heard; `pulled`, the result of the transfer
    /// the last [`WarmStep::Pull`] asked for, once it has come.
    pub fn step(
        &mut self,
        now: Instant,
        (state, master): (::vrrp::instance::State, Option<Ipv4Addr>),
        pulled: Option<Result<u64, String>>,
    ) -> WarmStep {
        match (self.state, pulled) {
            (Stage::Done, _) => WarmStep::Wait,
            (Stage::Pulling(from, at), Some(Ok(n))) => {
                log::info!(
                    "sync: warm: {n} connections from {from} in {} ms",
                    now.saturating_duration_since(at).as_millis()
                );
                self.done("pulled")
            }
            (Stage::Pulling(from, _), Some(Err(e))) => {
                log::warn!("sync: warm: transfer from {from}: {e}");
                self.state = Stage::Cold(Some(now + WARM_RETRY));
                WarmStep::Wait
            }
            (Stage::Pulling(..), None) => WarmStep::Wait,
            (Stage::Cold(_), _) if state == ::vrrp::instance::State::Master => {
                log::info!("sync: warm: MASTER with no peer to pull from");
                self.done("master")
            }
            (Stage::Cold(_), _) if now.saturating_duration_since(self.since) >= WARM_BOUND => {
                log::warn!("sync: warm: no transfer within {WARM_BOUND:?}, going on cold");
                self.done("timeout")
            }
            (Stage::Cold(retry), _) if retry.is_none_or(|t| now >= t) => {
                let Some(from) = master.filter(|_| state == ::vrrp::instance::State::Backup) else {
                    return WarmStep::Wait;
                };
                self.state = Stage::Pulling(from, now);
                WarmStep::Pull(
                    from,
                    WARM_BOUND.saturating_sub(now.saturating_duration_since(self.since)),
                )
            }
            (Stage::Cold(_), _) => WarmStep::Wait,
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
    /// The result of the transfer warming up asked for, once it comes.
    pub pull: Option<Receiver<Result<u64, String>>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use ::vrrp::instance::State;

    const MASTER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    #[test]
    fn a_backup_pulls_from_its_master_and_is_warm() {
        let t0 = Instant::now();
        let mut w = Warmup::new("VI_1".into(), t0);
        // No master heard yet: wait.
        assert_eq!(w.step(t0, (State::Backup, None), None), WarmStep::Wait);
        let heard = (State::Backup, Some(MASTER_ADDR));
        assert_eq!(
            w.step(t0 + Duration::from_secs(2), heard, None),
            WarmStep::Pull(MASTER_ADDR, WARM_BOUND - Duration::from_secs(2))
        );
        // While it runs, nothing else is asked.
        assert_eq!(w.step(t0 + Duration::from_secs(3), heard, None), WarmStep::Wait);
        assert_eq!(
            w.step(t0 + Duration::from_secs(4), heard, Some(Ok(1200))),
            WarmStep::Warm("pulled")
        );
        assert_eq!(w.outcome, Some("pulled"));
        assert!(w.counters.warm.load(Ordering::Relaxed));
        assert_eq!(w.step(t0 + Duration::from_secs(5), heard, None), WarmStep::Wait);
    }

    #[test]
    fn a_failed_pull_is_tried_again_after_the_retry_delay() {
        let t0 = Instant::now();
        let mut w = Warmup::new("VI_1".into(), t0);
        let heard = (State::Backup, Some(MASTER_ADDR));
        assert!(matches!(w.step(t0, heard, None), WarmStep::Pull(..)));
        let failed = Some(Err("connection refused".into()));
        assert_eq!(w.step(t0, heard, failed), WarmStep::Wait);
        assert_eq!(w.step(t0 + WARM_RETRY / 2, heard, None), WarmStep::Wait);
        assert!(matches!(w.step(t0 + WARM_RETRY, heard, None), WarmStep::Pull(..)));
    }

    #[test]
    fn master_at_once_or_nothing_within_the_bound_lets_the_instance_go() {
        let t0 = Instant::now();
        let mut w = Warmup::new("VI_1".into(), t0);
        // Elected master (no peer): nothing to pull; the hold ends.
        assert_eq!(w.step(t0, (State::Master, None), None), WarmStep::Warm("master"));
        let mut w = Warmup::new("VI_1".into(), t0);
        // A backup that never hears a master: cold once the bound passes,
        // so the instance cannot stay held at priority 1 for ever.
        assert_eq!(
            w.step(t0 + WARM_BOUND / 2, (State::Backup, None), None),
            WarmStep::Wait
        );
        assert_eq!(
            w.step(t0 + WARM_BOUND, (State::Backup, None), None),
            WarmStep::Warm("timeout")
        );
    }

    #[test]
    fn a_fault_does_not_pull() {
        let t0 = Instant::now();
        let mut w = Warmup::new("VI_1".into(), t0);
        assert_eq!(
            w.step(t0, (State::Fault, Some(MASTER_ADDR)), None),
            WarmStep::Wait
        );
    }
}
