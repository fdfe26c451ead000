//! The running sync daemons (`--start-daemon`, `--stop-daemon`, `-L
//! --daemon`, keepalived's `lvs_sync_daemon`), and the master's rings the
//! snapshot hands the workers.
//!
//! Must not touch: the rules (the control loop republishes when the master
//! starts or stops).

use crate::sync::{Daemon, Role, Settings};
use config::keepalived::vrrp::SyncDaemon;
use dataplane::owner::Handoff;
use dataplane::sync::SyncMaster;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Seconds after which a connection carrying packets is synced again.
const REFRESH: u32 = 60;

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
}

impl Syncd {
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
                let rings = SyncMaster::new(handoff.workers(), REFRESH);
                let d = Daemon::master(s, rings.clone())?;
                self.rings = Some(rings);
                (d, true)
            }
            Role::Backup => (Daemon::backup(s, handoff.clone())?, false),
        };
        if let Ok(mut reg) = self.registry.lock() {
            reg.push((role, d.counters.clone()));
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
        eprintln!(
            "ferrovs: sync thread stopped: state = {}",
            role.name().to_uppercase()
        );
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
        let d = Settings::default();
        let s = Settings {
            interface: conf.interface.clone(),
            syncid: conf.syncid.or(vrid).unwrap_or(0),
            maxlen: conf.maxlen.unwrap_or(d.maxlen),
            group: conf.group.unwrap_or(d.group),
            port: conf.port.unwrap_or(d.port),
            ttl: conf.ttl.unwrap_or(d.ttl),
        };
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
                        eprintln!("ferrovs: lvs_sync_daemon: {e}");
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
        format!("{}\n", serde_json::json!({ "daemons": list }))
    }
}
