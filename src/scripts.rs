//! Scripts keepalived runs (MISC_CHECK, notify_up/down, quorum_up/down,
//! VRRP notify): who they run as (`script_user`, a script's own `user`),
//! keepalived's `enable_script_security` rule, and running them in the
//! background with a timeout so no script ever holds up a check or the
//! protocol. Must not touch rules, checks or instances: a script's result
//! is its caller's business.

use config::keepalived::RunAs;
use nix::unistd::{Group, Uid, User};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A uid and gid a script runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// How scripts are run: the default user and the security rule.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    default: Option<Identity>,
    /// Why scripts that run as `script_user` cannot run (it names no
    /// user or group): keepalived runs none of them, and neither do we.
    unusable: Option<String>,
    security: bool,
}

/// Resolve `user [group]` through NSS.
fn resolve(r: &RunAs) -> Result<Identity, String> {
    let user = User::from_name(&r.user)
        .map_err(|e| format!("user {}: {e}", r.user))?
        .ok_or_else(|| format!("user {} does not exist", r.user))?;
    let gid = match &r.group {
        None => user.gid,
        Some(g) => {
            Group::from_name(g)
                .map_err(|e| format!("group {g}: {e}"))?
                .ok_or_else(|| format!("group {g} does not exist"))?
                .gid
        }
    };
    Ok(Identity {
        uid: user.uid.as_raw(),
        gid: gid.as_raw(),
    })
}

impl Policy {
    /// keepalived's rule: `script_user` if given, else the user
    /// `keepalived_script` if it exists, else the daemon's own. A
    /// `script_user` that names no user or group is not a reason to refuse
    /// the file (keepalived carries on): the scripts that would run as it
    /// are not run, and [`Self::unusable`] says why.
    pub fn new(script_user: Option<&RunAs>, security: bool) -> Self {
        let (default, unusable) = match script_user {
            Some(r) => match resolve(r) {
                Ok(i) => (Some(i), None),
                Err(e) => (None, Some(format!("script_user: {e}"))),
            },
            None => (
                resolve(&RunAs {
                    user: "keepalived_script".into(),
                    group: None,
                })
                .ok(),
                None,
            ),
        };
        Self {
            default,
            unusable,
            security,
        }
    }

    /// Why scripts that run as `script_user` are not run, if they are not.
    pub fn unusable(&self) -> Option<&str> {
        self.unusable.as_deref()
    }

    /// The identity a script runs as (`None`: the daemon's own).
    ///
    /// # Errors
    /// Its own user or group does not exist.
    pub fn identity(&self, run_as: Option<&RunAs>) -> Result<Option<Identity>, String> {
        match (run_as, &self.unusable) {
            (Some(r), _) => resolve(r).map(Some),
            (None, Some(why)) => Err(format!("not run: {why}")),
            (None, None) => Ok(self.default),
        }
    }

    /// Whether a script of `run_as` runs as root (its own user, else the
    /// default, else this process's).
    pub fn runs_as_root(&self, run_as: Option<&RunAs>) -> bool {
        self.identity(run_as).is_ok_and(as_root)
    }

    /// A command for `line` (through `sh -c`, so quoting works as in a
    /// shell) as its user, or why it may not run: with
    /// `enable_script_security`, a script run as root that a non-root user
    /// could change.
    ///
    /// # Errors
    /// Unknown user, another user than ours when we are not root, or
    /// refused by the security rule.
    pub fn command(&self, line: &str, run_as: Option<&RunAs>) -> Result<Command, String> {
        let who = self.identity(run_as)?;
        if self.security && as_root(who) {
            insecure(line).map_or(Ok(()), |why| {
                Err(format!(
                    "{line:?} not run (enable_script_security: it runs as root and {why})"
                ))
            })?;
        }
        let me = Uid::effective();
        // Only root may change to another user. A script configured to run
        // as someone else is refused, said at load, rather than run as us
        // behind the configuration's back.
        if let Some(i) = who.filter(|i| !may_run_as(me.as_raw(), i.uid)) {
            return Err(format!(
                "{line:?} not run: it runs as uid {} but the daemon runs as uid {me} and cannot switch \
                 users (run the daemon as root, or drop script_user/user so it runs as the daemon's user)",
                i.uid
            ));
        }
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", line]).stdin(Stdio::null()).stdout(Stdio::null());
        if let Some(i) = who.filter(|_| me.is_root()) {
            cmd.uid(i.uid).gid(i.gid);
        }
        Ok(cmd)
    }
}

/// Whether a script of identity `who` (`None`: ours) runs as root.
fn as_root(who: Option<Identity>) -> bool {
    who.map_or_else(|| Uid::effective().is_root(), |i| i.uid == 0)
}

/// Whether a process of uid `me` may start a script as uid `target`: root
/// may switch to anyone, the rest only run as themselves.
fn may_run_as(me: u32, target: u32) -> bool {
    me == 0 || me == target
}

/// Why the program `line` starts could be changed by a non-root user: it,
/// or a directory above it, is not root's or is group/other writable.
fn insecure(line: &str) -> Option<String> {
    let prog = line.split_whitespace().next()?;
    let path = which(prog)?;
    let path = path.canonicalize().unwrap_or(path);
    let mut p: Option<&Path> = Some(&path);
    while let Some(at) = p {
        let Ok(m) = std::fs::metadata(at) else {
            return Some(format!("{} cannot be read", at.display()));
        };
        if m.uid() != 0 {
            return Some(format!("{} belongs to uid {}", at.display(), m.uid()));
        }
        // A sticky directory (/tmp) still lets others add, not replace.
        if m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0 {
            return Some(format!("{} is writable by others", at.display()));
        }
        p = at.parent();
    }
    None
}

/// `prog` as the shell would find it.
fn which(prog: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        return Some(PathBuf::from(prog));
    }
    std::env::var_os("PATH")?
        .to_string_lossy()
        .split(':')
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
}

/// Scripts started and not yet ended.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// A script that runs longer than this is killed.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Run `cmd` in the background on a thread of its own, killed after
/// `TIMEOUT`; `what` names it in messages.
pub fn spawn(mut cmd: Command, what: String) {
    RUNNING.fetch_add(1, Ordering::SeqCst);
    let started = std::thread::Builder::new()
        .name("ferrovs-script".into())
        .spawn(move || {
            wait_child(&mut cmd, &what);
            RUNNING.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = started {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        log::error!("script thread: {e}");
    }
}

/// Wait up to `limit` for the scripts still running (the daemon is
/// stopping: a stop notify should get to run).
pub fn wait(limit: Duration) {
    let until = Instant::now() + limit;
    while RUNNING.load(Ordering::SeqCst) > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_child(cmd: &mut Command, what: &str) {
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return log::warn!("{what}: {e}"),
    };
    let until = Instant::now() + TIMEOUT;
    while Instant::now() < until {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => break,
        }
    }
    log::warn!("{what}: still running after {TIMEOUT:?}, killed");
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_refuses_a_root_script_others_can_change() {
        let dir = std::env::temp_dir().join(format!("ferrovs-scripts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("notify.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
        let line = format!("{} UP", script.display());
        let root = RunAs {
            user: "root".into(),
            group: None,
        };
        let strict = Policy::new(Some(&root), true);
        let err = strict.command(&line, None).unwrap_err();
        assert!(err.contains("is writable by others"), "{err}");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The temp dir itself is root's in the test environment only when
        // we are root; the rule is then about the file alone.
        if Uid::effective().is_root() {
            assert!(strict.command(&line, None).is_ok());
        }
        // Without the rule, anything runs.
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(Policy::new(Some(&root), false).command(&line, None).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_root_runs_scripts_as_another_user() {
        assert!(may_run_as(0, 65534) && may_run_as(0, 0));
        assert!(may_run_as(999, 999));
        assert!(!may_run_as(999, 65534) && !may_run_as(999, 0));
    }

    #[test]
    fn an_unknown_script_user_stops_its_scripts_not_the_file() {
        let nobody = RunAs {
            user: "no-such-user-ferrovs".into(),
            group: None,
        };
        let p = Policy::new(Some(&nobody), false);
        let why = p.unusable().expect("said why");
        assert!(why.contains("no-such-user-ferrovs does not exist"), "{why}");
        // Scripts of script_user are not run; one with its own user is.
        let e = p.command("/bin/true", None).unwrap_err();
        assert!(e.starts_with("not run: script_user"), "{e}");
        let root = RunAs {
            user: "root".into(),
            group: None,
        };
        assert!(p.command("/bin/true", Some(&root)).is_ok());
    }
}
