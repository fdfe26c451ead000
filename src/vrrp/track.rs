//! keepalived's trackers: `track_interface` (the interface's operational
//! state, read each second) and `track_script` (each `vrrp_script` run on a
//! thread of its own every `interval`, bounded by `timeout`, with `rise`
//! and `fall`). A tracker with weight 0 puts its instances in FAULT while it
//! fails; a positive weight is added while it succeeds, a negative one
//! taken away while it fails (`reverse` swaps the two).
//!
//! Must not touch: the instances (the engine applies what this returns).

use super::run::Run;
use config::keepalived::vrrp::{Script, Vrrp as Conf};
use crossbeam_channel::{Receiver, unbounded};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often interfaces are looked at.
const IFACE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct ScriptState {
    conf: Script,
    up: bool,
    streak: u32,
}

/// The trackers of one configuration.
#[derive(Debug, Default)]
pub struct Tracker {
    scripts: Vec<ScriptState>,
    results: Option<Receiver<(usize, bool)>>,
    stop: Arc<AtomicBool>,
    ifaces: HashMap<String, bool>,
    checked: Option<Instant>,
}

impl Tracker {
    /// Start the scripts of `conf`.
    pub fn new(conf: &Conf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = unbounded();
        for (i, s) in conf.scripts.iter().enumerate() {
            let (s, tx, stop) = (s.clone(), tx.clone(), stop.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("vrrp-script-{}", s.name))
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let ok = run_once(&s.script, Duration::from_secs(u64::from(s.timeout)));
                        if tx.send((i, ok)).is_err() {
                            return;
                        }
                        // Sleep the interval in steps, to notice a stop.
                        for _ in 0..s.interval * 10 {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                });
            if let Err(e) = spawned {
                log::warn!("vrrp: vrrp_script {}: {e}", s.name);
            }
        }
        Self {
            scripts: conf
                .scripts
                .iter()
                .map(|s| ScriptState {
                    conf: s.clone(),
                    up: true,
                    streak: 0,
                })
                .collect(),
            results: Some(rx),
            stop,
            ifaces: HashMap::new(),
            checked: None,
        }
    }

    /// Take in script results and look at interfaces; return for each
    /// instance its tracker weight and whether one with weight 0 fails.
    pub fn poll(&mut self, runs: &[Run]) -> Vec<(usize, i32, bool)> {
        if let Some(rx) = &self.results {
            while let Ok((i, ok)) = rx.try_recv() {
                if let Some(s) = self.scripts.get_mut(i) {
                    step(s, ok);
                }
            }
        }
        let now = Instant::now();
        if self.checked.is_none_or(|t| now >= t + IFACE_EVERY) {
            self.checked = Some(now);
            for r in runs {
                for (name, _) in &r.conf.track_interfaces {
                    self.ifaces.insert(name.clone(), iface_up(name));
                }
            }
        }
        runs.iter()
            .enumerate()
            .map(|(i, r)| {
                let mut weight = 0;
                let mut fault = false;
                let scripts = r.conf.track_scripts.iter().filter_map(|(name, w)| {
                    let s = self.scripts.iter().find(|s| s.conf.name == *name)?;
                    Some((s.up, w.unwrap_or(s.conf.weight), s.conf.reverse))
                });
                let ifaces = r
                    .conf
                    .track_interfaces
                    .iter()
                    .map(|(name, w)| (self.ifaces.get(name).copied().unwrap_or(true), *w, false));
                for (up, w, reverse) in scripts.chain(ifaces) {
                    let good = up != reverse;
                    match w {
                        0 => fault |= !good,
                        w if w > 0 && good => weight += w,
                        w if w < 0 && !good => weight += w,
                        _ => {}
                    }
                }
                (i, weight, fault)
            })
            .collect()
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One result for a script: `fall` failures in a row take it down, `rise`
/// successes bring it up.
fn step(s: &mut ScriptState, ok: bool) {
    if ok == s.up {
        s.streak = 0;
        return;
    }
    s.streak += 1;
    let need = if s.up { s.conf.fall } else { s.conf.rise };
    if s.streak >= need {
        s.up = ok;
        s.streak = 0;
        if ok {
            log::info!("vrrp: VRRP_Script({}) succeeded", s.conf.name);
        } else {
            log::warn!("vrrp: VRRP_Script({}) failed", s.conf.name);
        }
    }
}

/// Run `script` once; true when it exits 0 within `timeout`.
fn run_once(script: &str, timeout: Duration) -> bool {
    let child = Command::new("/bin/sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        match child.try_wait() {
            Ok(Some(st)) => return st.success(),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// Whether interface `name` is operationally up.
fn iface_up(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/operstate"))
        .map(|s| matches!(s.trim(), "up" | "unknown"))
        .unwrap_or(false)
}
