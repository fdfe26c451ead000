//! Before the daemon changes anything on the host (an XDP program, a VRRP
//! advert, an address), every setting and every interface it names is
//! checked, and every problem is reported at once, each with its fix: an
//! operator with a mistyped interface and a bad core number learns both
//! from one start, and the network saw nothing.
//!
//! Owns: the checks. Must not touch: the host (it only reads it, through
//! the `host` crate).

use super::Opts;
use crate::keepalived::Running;

/// Check `opts` and the interfaces of `keepalived`'s configuration.
///
/// # Errors
/// Every problem found, one per line.
pub fn check(opts: &Opts, keepalived: Option<&Running>) -> Result<(), String> {
    let mut bad = Vec::new();
    let place = &opts.place;
    for name in &place.interface {
        if let Err(e) = interface(name).and_then(|()| super::links::check_link(name, place.queues).map(drop))
        {
            bad.push(e);
        }
    }
    for (name, what) in keepalived.map(Running::interfaces).unwrap_or_default() {
        if let Err(e) = interface(&name) {
            bad.push(format!("{what}: {e}"));
        }
    }
    if place.queues == 0 {
        bad.push("--queues 0: at least 1 (one worker per queue)".into());
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    for &c in &place.cpus {
        if c >= cores {
            bad.push(format!(
                "--cpus {c}: this host has cores 0 to {} (nproc); a worker cannot run there",
                cores - 1
            ));
        }
    }
    if !place.cpus.is_empty() && place.cpus.len() < place.queues as usize {
        bad.push(format!(
            "--cpus lists {} core(s) for {} queue(s): one each",
            place.cpus.len(),
            place.queues
        ));
    }
    if !opts.ring_size.is_power_of_two() {
        bad.push(format!(
            "--ring-size {}: a power of two (2048, say)",
            opts.ring_size
        ));
    }
    if place.frames == 0 {
        bad.push("--frames 0: UMEM frames per queue, 4096 by default".into());
    }
    if let Some(m) = &opts.metrics {
        if m.parse::<std::net::SocketAddr>().is_err() {
            bad.push(format!("--metrics {m}: ADDR:PORT (127.0.0.1:9410, say)"));
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    Err(format!(
        "nothing was changed on this host; fix and start again:\n  {}",
        bad.join("\n  ")
    ))
}

/// That interface `name` exists.
fn interface(name: &str) -> Result<(), String> {
    if host::exists(name) {
        return Ok(());
    }
    Err(format!("no such interface {name} (`ip -br link` lists them)"))
}
