//! Running a keepalived configuration: load it, start its health checks,
//! turn check results into rules (server removed or quiesced, sorry server
//! when the quorum is lost), and reload it on SIGHUP or `ferrovs --reload`
//! by merging, so that unchanged servers keep their connections. Its
//! `vrrp_instance` blocks run on the VRRP thread (`crate::vrrp`).

use crate::health::{self, Change, Checkers};
use config::ipvsadm::{Command, DestSpec};
use config::keepalived::{self, Check, Keepalived};
use config::{Rules, ServiceKey};
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::collections::HashSet;
use std::path::PathBuf;

/// A loaded configuration and the state of its checks.
#[derive(Debug)]
pub struct Running {
    path: PathBuf,
    cfg: Keepalived,
    up: Vec<bool>,
    sorry_on: HashSet<ServiceKey>,
    tx: Sender<Change>,
    rx: Receiver<Change>,
    checkers: Option<Checkers>,
    /// The VRRP instances, if the file has any. Dropped last: the
    /// addresses are released when the daemon stops.
    vrrp: Option<crate::vrrp::Vrrp>,
    /// What the VRRP thread publishes (listing, metrics).
    vrrp_shared: crate::vrrp::Shared,
}

/// A check's identity across reloads.
fn same_check(a: &Check, b: &Check) -> bool {
    (a.service, a.rip, a.rport, &a.kind, a.port) == (b.service, b.rip, b.rport, &b.kind, b.port)
}

impl Running {
    /// Load `path` and start its checks; print what it does not apply.
    ///
    /// # Errors
    /// The file is unreadable or has a syntax error (`file:line: problem`).
    pub fn start(path: PathBuf) -> Result<Self, String> {
        let cfg = keepalived::load(&path).map_err(|e| e.to_string())?;
        for n in &cfg.notes {
            eprintln!("ferrovs: keepalived: {n}");
        }
        let up = cfg.checks.iter().map(|c| !c.alpha).collect();
        let (tx, rx) = unbounded();
        let mut r = Self {
            path,
            cfg,
            up,
            sorry_on: HashSet::new(),
            tx,
            rx,
            checkers: None,
            vrrp: None,
            vrrp_shared: crate::vrrp::Shared::default(),
        };
        if !r.cfg.vrrp.instances.is_empty() {
            r.vrrp = Some(crate::vrrp::Vrrp::start(&r.cfg.vrrp, &r.vrrp_shared)?);
        }
        r.checkers = Some(health::start(&r.cfg.checks, &r.up, &r.tx));
        Ok(r)
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

    /// Return what the VRRP thread publishes (empty without instances).
    pub fn vrrp_shared(&self) -> crate::vrrp::Shared {
        self.vrrp_shared.clone()
    }

    /// Read the file again; on error keep running as before.
    ///
    /// # Errors
    /// The new file is unreadable or has a syntax error.
    pub fn reload(&mut self) -> Result<(), String> {
        let cfg = keepalived::load(&self.path).map_err(|e| e.to_string())?;
        for n in &cfg.notes {
            eprintln!("ferrovs: keepalived: {n}");
        }
        // A check that stays keeps its state; a new one starts as configured.
        let up = cfg
            .checks
            .iter()
            .map(|c| {
                self.cfg
                    .checks
                    .iter()
                    .position(|o| same_check(o, c))
                    .map_or(!c.alpha, |i| self.up[i])
            })
            .collect();
        self.checkers = None;
        // Results still queued belong to the old checks.
        while self.rx.try_recv().is_ok() {}
        self.cfg = cfg;
        self.up = up;
        self.checkers = Some(health::start(&self.cfg.checks, &self.up, &self.tx));
        match (&self.vrrp, self.cfg.vrrp.instances.is_empty()) {
            (Some(v), _) => v.reload(&self.cfg.vrrp),
            (None, false) => self.vrrp = Some(crate::vrrp::Vrrp::start(&self.cfg.vrrp, &self.vrrp_shared)?),
            (None, true) => {}
        }
        Ok(())
    }

    /// Take the checks' news; return whether any server changed state.
    pub fn poll(&mut self) -> bool {
        let mut changed = false;
        while let Ok(c) = self.rx.try_recv() {
            let Some(check) = self.cfg.checks.get(c.check) else {
                continue;
            };
            if self.up[c.check] != c.up {
                self.up[c.check] = c.up;
                changed = true;
                // Logged once per change, not every interval.
                eprintln!(
                    "ferrovs: {} {}:{} of {} is {} ({})",
                    check.kind.name(),
                    check.rip,
                    check.rport,
                    check.service,
                    if c.up { "up" } else { "down" },
                    c.why
                );
            }
        }
        changed
    }

    /// The rules the configuration gives with the servers' current health.
    pub fn effective(&mut self) -> Rules {
        let mut rules = self.cfg.rules.clone();
        for (check, _) in self.cfg.checks.iter().zip(&self.up).filter(|(_, up)| !**up) {
            let spec = DestSpec {
                addr: check.rip,
                port: Some(check.rport),
                fwd: None,
                weight: Some(0),
                u_threshold: None,
                l_threshold: None,
            };
            let cmd = if check.inhibit_on_failure {
                Command::EditDest(check.service, spec)
            } else {
                Command::DelDest(check.service, spec)
            };
            // A server with two failing checks is gone after the first.
            let _ = rules.apply(&cmd);
        }
        for extra in &self.cfg.extras {
            let Some((addr, port)) = extra.sorry_server else {
                continue;
            };
            let up_weight: u32 = rules
                .service(&extra.service)
                .map_or(0, |s| s.dests.iter().map(|d| d.weight).sum());
            // Hysteresis: lose the quorum below quorum - h, regain it at
            // quorum + h.
            let on = self.sorry_on.contains(&extra.service);
            let lost = if on {
                up_weight < extra.quorum + extra.hysteresis
            } else {
                up_weight < extra.quorum.saturating_sub(extra.hysteresis).max(1)
            };
            if lost {
                self.sorry_on.insert(extra.service);
                let spec = DestSpec {
                    addr,
                    port: Some(port),
                    fwd: Some(extra.fwd),
                    weight: Some(1),
                    u_threshold: None,
                    l_threshold: None,
                };
                let _ = rules.apply(&Command::AddDest(extra.service, spec));
            } else {
                self.sorry_on.remove(&extra.service);
            }
        }
        rules
    }
}
