//! keepalived's health checks, in the control plane (never in a worker).
//!
//! Every check is a task on one thread's event loop (a current-thread
//! tokio runtime), so thousands of real servers cost timers and sockets,
//! not threads. A check sleeps `warmup` (a random part of it), then runs on
//! its `delay_loop`: an up server goes down after `retry` more failed
//! attempts `delay_before_retry` apart, a down one comes up at its first
//! success. Each change (state, or a dynamic weight from MISC_CHECK's
//! `misc_dynamic` or FILE_CHECK) is reported once to the control thread,
//! which recomputes the rules. Must not touch the rules itself.

mod http;
mod net;
mod probe;

use crate::scripts::Policy;
use config::keepalived::{Check, Keepalived};
use crossbeam_channel::Sender;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// A server's health (or dynamic weight) changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Index of the check in the configuration's list.
    pub check: usize,
    /// The server is up now.
    pub up: bool,
    /// What this check adds to the server's weight (`misc_dynamic`,
    /// FILE_CHECK; 0 for the others).
    pub delta: i64,
    /// Why (the last attempt's result).
    pub why: String,
}

/// What every check shares: the TLS setup of `SSL_GET` and how scripts run.
#[derive(Debug)]
pub struct Context {
    /// The client TLS configurations, or why they could not be built
    /// (every SSL_GET then fails with that reason).
    tls: Result<http::Tls, String>,
    /// `script_user`, `enable_script_security`.
    pub scripts: Policy,
}

impl Context {
    /// The shared setup for `cfg`'s checks.
    pub fn new(cfg: &Keepalived) -> Self {
        Self {
            tls: http::Tls::new(&cfg.ssl),
            scripts: Policy::new(cfg.script_user.as_ref(), cfg.script_security),
        }
    }
}

impl Context {
    /// What of `cfg` will not work as written, said at load: SSL_GET with
    /// a TLS setup that failed, scripts the security rule or a missing user
    /// stops. Such checks count as failed; such scripts do not run.
    pub fn notes(&self, cfg: &Keepalived) -> Vec<String> {
        let mut notes = Vec::new();
        if let Err(e) = &self.tls {
            if let Some(c) = cfg.checks.iter().find(|c| c.kind.name() == "SSL_GET") {
                notes.push(format!("{}: {e}: every SSL_GET check fails", c.at));
            }
        }
        if let (Some(why), Some(at)) = (self.scripts.unusable(), &cfg.script_user_at) {
            notes.push(format!(
                "{at}: {why}: scripts that run as script_user are not run (keepalived: \"Error setting global script uid/gid\")"
            ));
        }
        // (where, what, command line, who it runs as)
        let mut scripts: Vec<Script<'_>> = Vec::new();
        for c in &cfg.checks {
            if let config::keepalived::CheckKind::Misc { path, run_as, .. } = &c.kind {
                scripts.push((&c.at, "MISC_CHECK", path, run_as.as_ref()));
            }
        }
        for rs in &cfg.servers {
            for (what, p) in [("notify_up", &rs.notify_up), ("notify_down", &rs.notify_down)] {
                if let Some(p) = p {
                    scripts.push((&p.at, what, &p.line, p.run_as.as_ref()));
                }
            }
        }
        for vs in &cfg.extras {
            for (what, p) in [("quorum_up", &vs.quorum_up), ("quorum_down", &vs.quorum_down)] {
                if let Some(p) = p {
                    scripts.push((&p.at, what, &p.line, p.run_as.as_ref()));
                }
            }
        }
        // VRRP's scripts run as the daemon's own user.
        let vrrp_scripts = cfg.vrrp.scripts.iter().map(|s| &s.at).chain(
            cfg.vrrp
                .instances
                .iter()
                .filter(|i| {
                    let n = &i.notify;
                    [&n.master, &n.backup, &n.fault, &n.stop, &n.any]
                        .iter()
                        .any(|p| p.is_some())
                })
                .map(|i| &i.at),
        );
        let mut as_root = vrrp_scripts
            .map(String::as_str)
            .find(|_| nix::unistd::Uid::effective().is_root());
        for (at, what, line, run_as) in scripts {
            match self.scripts.command(line, run_as) {
                Err(e) => notes.push(format!("{at}: {what}: {e}")),
                Ok(_) if as_root.is_none() && self.scripts.runs_as_root(run_as) => as_root = Some(at),
                Ok(_) => {}
            }
        }
        // keepalived: "SECURITY VIOLATION - check scripts are being
        // executed but script_security not enabled" (it runs them anyway).
        if let (false, Some(at)) = (cfg.script_security, as_root) {
            notes.push(format!(
                "{at}: scripts run as root without enable_script_security (keepalived warns: SECURITY VIOLATION); \
                 add enable_script_security and script_user to global_defs"
            ));
        }
        notes
    }
}

/// A script of the configuration: where, what, its command line, its user.
type Script<'a> = (&'a str, &'a str, &'a str, Option<&'a config::keepalived::RunAs>);

/// Lateness histogram bucket bounds, in seconds.
pub const LATE_BOUNDS: [f64; 7] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0];

/// How late checks start against their schedule (the event loop's load).
#[derive(Debug, Default)]
pub struct Stats {
    /// Checks started.
    pub attempts: AtomicU64,
    /// Started within each bound of `LATE_BOUNDS` (cumulative), then all.
    pub late_buckets: [AtomicU64; 8],
    /// Sum of lateness in microseconds.
    pub late_sum_us: AtomicU64,
    /// The largest lateness seen, microseconds.
    pub late_max_us: AtomicU64,
}

impl Stats {
    /// The Prometheus text of these figures.
    pub fn metrics(&self) -> String {
        use crate::prom::{Kind, Text};
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut t = Text::new();
        let name = "ferrovs_check_lateness_seconds";
        t.family(
            name,
            Kind::Histogram,
            "How late health checks start against their delay_loop.",
        );
        let bucket = format!("{name}_bucket");
        for (b, n) in LATE_BOUNDS.iter().zip(&self.late_buckets) {
            t.sample(&bucket, &[("le", b)], get(n));
        }
        let count = get(&self.late_buckets[7]);
        t.sample(&bucket, &[("le", &"+Inf")], count);
        t.sample(&format!("{name}_sum"), &[], get(&self.late_sum_us) as f64 / 1e6);
        t.sample(&format!("{name}_count"), &[], count);
        t.single(
            "ferrovs_check_lateness_max_seconds",
            Kind::Gauge,
            "The latest start of any check so far.",
            get(&self.late_max_us) as f64 / 1e6,
        );
        t.into_string()
    }

    fn record(&self, late: Duration) {
        let s = late.as_secs_f64();
        self.attempts.fetch_add(1, Ordering::Relaxed);
        for (i, b) in LATE_BOUNDS.iter().enumerate() {
            if s <= *b {
                self.late_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.late_buckets[7].fetch_add(1, Ordering::Relaxed);
        let us = late.as_micros() as u64;
        self.late_sum_us.fetch_add(us, Ordering::Relaxed);
        self.late_max_us.fetch_max(us, Ordering::Relaxed);
    }
}

/// The running checks of one configuration; dropping it stops them.
#[derive(Debug)]
pub struct Checkers {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkers {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        // Joined, so no result of an old check arrives after a reload.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Start the checks on their thread; changes go to `tx`. Check `i` starts
/// from `initial[i]` (up, weight delta) and reports only changes from it.
///
/// # Errors
/// The thread or its runtime could not be created.
pub fn start(
    checks: &[Check],
    initial: &[(bool, i64)],
    ctx: Arc<Context>,
    stats: Arc<Stats>,
    tx: &Sender<Change>,
) -> Result<Checkers, String> {
    raise_nofile(checks.len() as u64 * 2 + 1024);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("health checks: {e}"))?;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let checks: Vec<(Check, (bool, i64))> = checks
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), initial.get(i).copied().unwrap_or((true, 0))))
        .collect();
    let tx = tx.clone();
    let thread = std::thread::Builder::new()
        .name("ferrovs-checks".into())
        .spawn(move || {
            rt.block_on(async move {
                for (i, (check, state)) in checks.into_iter().enumerate() {
                    tokio::spawn(run(i, check, state, ctx.clone(), stats.clone(), tx.clone()));
                }
                let _ = stopped.await;
            });
            // Dropping the runtime cancels the tasks and kills their
            // MISC_CHECK children.
        })
        .map_err(|e| format!("health checks: {e}"))?;
    Ok(Checkers {
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// Room for every check's socket at once: the usual soft limit of 1024
/// descriptors is below a few thousand checks (the hard limit is not).
fn raise_nofile(want: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < want {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, want.min(hard), hard);
        }
    }
}

/// A pseudo-random share of `max` seconds for check `i` (keepalived's
/// warmup spreads checks of the same server; no need for a real RNG).
fn warmup(i: usize, max: u32) -> Duration {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mut x = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    Duration::from_millis(x % (u64::from(max) * 1000 + 1))
}

async fn run(
    i: usize,
    check: Check,
    (mut up, mut delta): (bool, i64),
    ctx: Arc<Context>,
    stats: Arc<Stats>,
    tx: Sender<Change>,
) {
    let mut next = Instant::now() + warmup(i, check.warmup);
    let period = Duration::from_secs(u64::from(check.delay_loop.max(1)));
    loop {
        tokio::time::sleep_until(next).await;
        stats.record(Instant::now().saturating_duration_since(next));
        let (ok, d, why) = attempt_with_retries(&check, &ctx, up).await;
        if ok != up || d != delta {
            (up, delta) = (ok, d);
            if tx
                .send(Change {
                    check: i,
                    up,
                    delta,
                    why,
                })
                .is_err()
            {
                return;
            }
        }
        next = Instant::now() + period;
    }
}

/// keepalived's rule: an up server gets `retry` more attempts before it is
/// down; a down one is up at its first success.
async fn attempt_with_retries(check: &Check, ctx: &Context, up: bool) -> (bool, i64, String) {
    let mut why = String::new();
    let retries = if up { check.retry } else { 0 };
    for n in 0..=retries {
        if n > 0 {
            tokio::time::sleep(Duration::from_secs(u64::from(check.delay_before_retry))).await;
        }
        match probe::attempt(check, ctx).await {
            Ok(delta) => return (true, delta, "ok".into()),
            Err(e) => why = e,
        }
    }
    (false, 0, why)
}

/// Run one attempt of `check` on a runtime of its own (tests, `ferrovs
/// check`-style one-offs): `Ok(weight delta)` or why it failed.
#[cfg(test)]
pub fn attempt_once(check: &Check, ctx: &Context) -> Result<i64, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(probe::attempt(check, ctx))
}

#[cfg(test)]
mod tests;
