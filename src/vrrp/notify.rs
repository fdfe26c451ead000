//! keepalived's VRRP notify scripts, run by `crate::scripts` on a thread of
//! their own, bounded by a timeout, so a slow script never holds up the
//! protocol.
//!
//! Must not touch: the instances (a script's result changes nothing).

use std::process::{Command, Stdio};
use std::time::Duration;
use vrrp::instance::State;

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

/// Run `cmd` in the background (through `sh -c`, bounded by the scripts'
/// timeout).
pub fn spawn(cmd: String) {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", &cmd]).stdin(Stdio::null());
    crate::scripts::spawn(c, format!("vrrp: notify {cmd:?}"));
}

/// Wait up to `limit` for the scripts still running (the daemon is
/// stopping: `notify_stop` should get to run).
pub fn wait(limit: Duration) {
    crate::scripts::wait(limit);
}
