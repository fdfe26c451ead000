//! keepalived's notify scripts: run through `sh -c` on a thread of their
//! own, bounded by a timeout, so a slow script never holds up the protocol.
//!
//! Must not touch: the instances (a script's result changes nothing).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use vrrp::instance::State;

/// A script that runs longer is killed.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Scripts started and not yet ended.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Run the scripts `n` has for `state`: the state's own, then the generic
/// `notify` with keepalived's four arguments (`INSTANCE|GROUP NAME STATE
/// PRIORITY`).
pub fn transition(n: &config::keepalived::vrrp::Notify, kind: &str, name: &str, state: State, priority: u8) {
    let specific = match state {
        State::Master => &n.master,
        State::Backup => &n.backup,
        State::Fault => &n.fault,
        State::Stop => &n.stop,
        State::Init => &None,
    };
    if let Some(cmd) = specific {
        spawn(cmd.clone());
    }
    if let Some(cmd) = &n.any {
        spawn(format!("{cmd} {kind} {name} {} {priority}", state.name()));
    }
}

/// Run `cmd` in the background.
pub fn spawn(cmd: String) {
    RUNNING.fetch_add(1, Ordering::SeqCst);
    let started = std::thread::Builder::new()
        .name("vrrp-notify".into())
        .spawn(move || {
            run(&cmd);
            RUNNING.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = started {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        eprintln!("ferrovs: vrrp: notify thread: {e}");
    }
}

/// Wait up to `limit` for the scripts still running (the daemon is
/// stopping: `notify_stop` should get to run).
pub fn wait(limit: Duration) {
    let until = Instant::now() + limit;
    while RUNNING.load(Ordering::SeqCst) > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(cmd: &str) {
    let child = Command::new("/bin/sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return eprintln!("ferrovs: vrrp: notify {cmd:?}: {e}"),
    };
    let until = Instant::now() + TIMEOUT;
    while Instant::now() < until {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => break,
        }
    }
    eprintln!("ferrovs: vrrp: notify {cmd:?}: still running after {TIMEOUT:?}, killed");
    let _ = child.kill();
    let _ = child.wait();
}
