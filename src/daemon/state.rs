//! The director's committed state on disk (`--state-dir`): the rules with
//! their servers' ids (`config::state`) and the sync daemons started by
//! request, in one file written atomically after every change (write,
//! fsync, rename, fsync of the directory) and read at start.
//!
//! The file is `rules` in the state directory: a version line, a checksum
//! line (FNV-1a 64 and length of the rest), then ipvsadm command lines. A
//! file that fails any check is refused whole, kept beside as
//! `rules.refused`, and the daemon starts without it.
//!
//! Beside it, `conns`: every worker's connections and templates as the
//! kernel's sync messages (what a backup director takes in), written each
//! second and at exit, taken back at start as a backup takes a master's
//! table. A crash loses what changed since the last one; a connection's
//! timer starts again at its state's full timeout (as a synced one does).
//! Its header line: version, FNV-1a 64 and length of the messages.
//!
//! Owns: those files. Must not touch: the running rules (the control loop
//! applies what this reads), the connection tables.

use crate::request::Request;
use crate::sync::{Role, Settings};
use config::Rules;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The first line: the format of what follows.
const VERSION: &str = "# ferrovs state 1";
/// The connections file's first words.
const CONNS: &str = "# ferrovs conns 1";

/// What a state file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    /// The rules, ids included.
    pub rules: Rules,
    /// The sync daemons started by request (`--start-daemon`).
    pub daemons: Vec<(Role, Settings)>,
}

/// The state directory and what was last written there.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    last: String,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The file's text for `saved`.
pub fn render(saved: &Saved) -> String {
    let mut body = config::state::render(&saved.rules);
    for (role, s) in &saved.daemons {
        let _ = writeln!(
            body,
            "--start-daemon {} --mcast-interface {} --syncid {} --sync-maxlen {} --mcast-group {} --mcast-port {} --mcast-ttl {}",
            role.name(),
            s.interface,
            s.syncid,
            s.maxlen,
            s.group,
            s.port,
            s.ttl
        );
    }
    format!(
        "{VERSION}\n# sum {:016x} {}\n{body}",
        fnv1a(body.as_bytes()),
        body.len()
    )
}

/// Read a state file's text (`source` names it in errors).
///
/// # Errors
/// Another version, a checksum or length that does not match (a truncated
/// or changed file), or a line that does not parse.
pub fn parse(source: &str, text: &str) -> Result<Saved, String> {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    if first != VERSION {
        return Err(format!(
            "{source}: not a state file of this version (\"{first}\", expected \"{VERSION}\")"
        ));
    }
    let (sum, body) = rest.split_once('\n').unwrap_or((rest, ""));
    let want = format!("# sum {:016x} {}", fnv1a(body.as_bytes()), body.len());
    if sum != want {
        return Err(format!(
            "{source}: checksum or length does not match: truncated or changed"
        ));
    }
    let (mut rules_text, mut daemons) = (String::new(), Vec::new());
    for (i, line) in body.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"--start-daemon") {
            match Request::from_cli(&words) {
                Ok(Request::StartDaemon { role, settings }) => daemons.push((role, settings)),
                Ok(_) => return Err(format!("{source}:{}: not a sync daemon", i + 3)),
                Err(e) => return Err(format!("{source}:{}: {e}", i + 3)),
            }
        } else {
            rules_text.push_str(line);
        }
        // Line numbers stay the file's in errors from the rules.
        rules_text.push('\n');
    }
    let rules = config::state::parse(source, &rules_text).map_err(|e| e.to_string())?;
    Ok(Saved { rules, daemons })
}

impl StateDir {
    /// Use `dir` (made if missing, mode 0700).
    ///
    /// # Errors
    /// It cannot be made.
    pub fn open(dir: &Path) -> Result<Self, String> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("state directory {}: {e}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            last: String::new(),
        })
    }

    fn file(&self) -> PathBuf {
        self.dir.join("rules")
    }

    /// The state the last run left, `Ok(None)` when there is none.
    ///
    /// # Errors
    /// The file is there but refused (it is moved to `rules.refused`).
    pub fn load(&mut self) -> Result<Option<Saved>, String> {
        let path = self.file();
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| format!("{}: not text", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        };
        match text.and_then(|t| parse(&path.display().to_string(), &t).map(|s| (t, s))) {
            Ok((t, s)) => {
                self.last = t;
                Ok(Some(s))
            }
            Err(e) => {
                let _ = std::fs::rename(&path, self.dir.join("rules.refused"));
                Err(e)
            }
        }
    }

    /// Write `saved` if it changed since the last write.
    ///
    /// # Errors
    /// The file could not be written; the one before stays whole.
    pub fn save(&mut self, saved: &Saved) -> Result<(), String> {
        let text = render(saved);
        if text == self.last {
            return Ok(());
        }
        let (path, tmp) = (self.file(), self.dir.join("rules.new"));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| format!("{}: {e}", path.display()))?;
        self.last = text;
        Ok(())
    }
}

impl StateDir {
    /// Replace the connections file with `msgs` (sync messages). No fsync:
    /// it belongs on a tmpfs (a RuntimeDirectory), and is rewritten each
    /// second anyway; the rename keeps it whole.
    ///
    /// # Errors
    /// It could not be written; the one before stays.
    pub fn save_conns(&self, msgs: &[u8]) -> Result<(), String> {
        let (path, tmp) = (self.dir.join("conns"), self.dir.join("conns.new"));
        let mut text = format!("{CONNS} {:016x} {}\n", fnv1a(msgs), msgs.len()).into_bytes();
        text.extend_from_slice(msgs);
        std::fs::write(&tmp, &text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The connections the last run left (sync messages), `Ok(None)` when
    /// there are none.
    ///
    /// # Errors
    /// The file is there but fails its checks (it is removed).
    pub fn load_conns(&self) -> Result<Option<Vec<u8>>, String> {
        let path = self.dir.join("conns");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let checked = || -> Option<Vec<u8>> {
            let nl = bytes.iter().position(|&b| b == b'\n')?;
            let head = std::str::from_utf8(&bytes[..nl]).ok()?;
            let body = &bytes[nl + 1..];
            (head == format!("{CONNS} {:016x} {}", fnv1a(body), body.len())).then(|| body.to_vec())
        };
        let got = checked();
        if got.is_none() {
            let _ = std::fs::remove_file(&path);
            return Err(format!(
                "{}: not a connections file of this version, or truncated or changed",
                path.display()
            ));
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> Saved {
        let mut rules = Rules::default();
        rules
            .apply_commands(
                "t",
                "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.11:80 -m\n--set 10 20 30",
            )
            .unwrap();
        let s = Settings {
            interface: "eth1".into(),
            syncid: 7,
            ..Settings::default()
        };
        Saved {
            rules,
            daemons: vec![(Role::Master, s)],
        }
    }

    #[test]
    fn a_state_comes_back_whole() {
        let text = render(&saved());
        assert_eq!(parse("rules", &text).unwrap(), saved(), "{text}");
    }

    #[test]
    fn truncated_changed_or_foreign_files_are_refused() {
        let text = render(&saved());
        let cut = &text[..text.len() - 10];
        assert!(parse("rules", cut).unwrap_err().contains("truncated"));
        let changed = text.replace("10.0.0.11", "10.0.0.12");
        assert!(parse("rules", &changed).unwrap_err().contains("checksum"));
        let other = text.replace("state 1", "state 2");
        assert!(parse("rules", &other).unwrap_err().contains("version"));
        assert!(parse("rules", "").is_err());
    }

    #[test]
    fn the_file_is_written_only_on_change_and_read_back() {
        let dir = std::env::temp_dir().join(format!("ferrovs-state-{}", std::process::id()));
        let mut st = StateDir::open(&dir).unwrap();
        assert_eq!(st.load().unwrap(), None);
        st.save(&saved()).unwrap();
        let mtime = std::fs::metadata(dir.join("rules")).unwrap().modified().unwrap();
        st.save(&saved()).unwrap();
        assert_eq!(
            std::fs::metadata(dir.join("rules")).unwrap().modified().unwrap(),
            mtime
        );
        let mut again = StateDir::open(&dir).unwrap();
        assert_eq!(again.load().unwrap(), Some(saved()));
        assert_eq!(again.load_conns().unwrap(), None);
        again.save_conns(b"\x00\x01\x00\x08abcd").unwrap();
        assert_eq!(
            again.load_conns().unwrap().as_deref(),
            Some(&b"\x00\x01\x00\x08abcd"[..])
        );
        let mut cut = std::fs::read(dir.join("conns")).unwrap();
        cut.pop();
        std::fs::write(dir.join("conns"), cut).unwrap();
        assert!(again.load_conns().is_err());
        std::fs::write(dir.join("rules"), "garbage").unwrap();
        assert!(again.load().is_err());
        assert!(dir.join("rules.refused").exists() && !dir.join("rules").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
