//! What a client asks the daemon, parsed once: an ipvsadm command, or one of
//! ferrovs' own verbs. The client parses its command line into a
//! [`Request`] (refusing bad input before it bothers the daemon) and sends
//! its words; the daemon parses the same words back with the same code.
//!
//! On the control socket a request is its words, each followed by a NUL
//! byte ([`encode`], [`decode`]); the reply is a first line `ok` or
//! `error`, then the output or the message ([`reply`], [`parse_reply`]).
//!
//! Owns: the request words and both frames. Must not touch: the rules (the
//! daemon applies a request) or the socket itself (the binary's `ctl`: its
//! size limit, timeouts and clients).

use crate::ipvsadm::Command;

/// One request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// An ipvsadm command (`-A`, `-a`, `-L`, `-S`, `-Z`, `--set`, …).
    Ipvsadm(Command),
    /// `-R`: apply the commands of `text`, all or none; with `dry_run`,
    /// only say what they would change.
    Restore {
        /// The commands (the client's standard input).
        text: String,
        /// `-R --dry-run`.
        dry_run: bool,
    },
    /// `--counters`: every worker's counters.
    Counters {
        /// As JSON.
        json: bool,
    },
    /// `--reload`: read the keepalived configuration again, as SIGHUP.
    Reload,
    /// `--start-daemon master|backup [--mcast-interface IF] [--syncid N]
    /// [--sync-maxlen N] [--mcast-group ADDR] [--mcast-port P]
    /// [--mcast-ttl T]`, as ipvsadm.
    StartDaemon {
        /// Master or backup.
        role: crate::sync::Role,
        /// How it runs.
        settings: crate::sync::Settings,
    },
    /// `--stop-daemon master|backup`.
    StopDaemon(crate::sync::Role),
    /// `-L --daemon [--json]`.
    ListDaemon {
        /// `--json`.
        json: bool,
    },
    /// `-L --vrrp [--json]`: the VRRP instances (keepalived has only its
    /// log and SNMP for this).
    Vrrp {
        /// `--json`.
        json: bool,
    },
}

impl Request {
    /// Parse a command line; a restore's text is empty (the client reads it
    /// from standard input into [`Request::Restore`]'s `text`).
    ///
    /// # Errors
    /// The command is not one ferrovs knows, with ipvsadm's wording.
    pub fn from_cli<S: AsRef<str>>(args: &[S]) -> Result<Self, String> {
        let words: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        if let Some(r) = daemon_request(&words)? {
            return Ok(r);
        }
        // Listings of our own take their flags in any order, with -n (all
        // of them are numeric) as ipvsadm's listings do.
        let json = words.contains(&"--json");
        let flags_only = |allowed: &[&str]| {
            words
                .iter()
                .all(|w| allowed.contains(w) || matches!(*w, "-n" | "--numeric" | "--json"))
        };
        if words.contains(&"--counters") && flags_only(&["--counters"]) {
            return Ok(Self::Counters { json });
        }
        if words.contains(&"--vrrp") && flags_only(&["--vrrp", "-L", "--list"]) {
            return Ok(Self::Vrrp { json });
        }
        match words[..] {
            ["--reload"] => return Ok(Self::Reload),
            ["-R" | "--restore", "--dry-run"] => {
                return Ok(Self::Restore {
                    text: String::new(),
                    dry_run: true,
                });
            }
            _ => {}
        }
        match crate::ipvsadm::parse(&words).map_err(|e| e.to_string())? {
            Command::Restore => Ok(Self::Restore {
                text: String::new(),
                dry_run: false,
            }),
            cmd => Ok(Self::Ipvsadm(cmd)),
        }
    }

    /// Return the words to send for `args` (the command line this request
    /// was parsed from): a restore carries its text as the last word.
    pub fn to_wire<S: AsRef<str>>(&self, args: &[S]) -> Vec<String> {
        let mut words: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
        if let Self::Restore { text, .. } = self {
            words.push(text.clone());
        }
        words
    }

    /// Parse the words a client sent ([`Request::to_wire`]).
    ///
    /// # Errors
    /// As [`Request::from_cli`]; a restore without its text.
    pub fn from_wire(words: Vec<String>) -> Result<Self, String> {
        // The text is the last word, whatever the words before it are
        // (`-R`, `-n -R`, `--restore --dry-run`).
        if let Some((text, cli)) = words.split_last()
            && let Ok(Self::Restore { dry_run, .. }) = Self::from_cli(cli)
        {
            return Ok(Self::Restore {
                text: text.clone(),
                dry_run,
            });
        }
        match Self::from_cli(&words)? {
            Self::Restore { .. } => Err("-R reads the rules from standard input".into()),
            req => Ok(req),
        }
    }
}

/// A request's bytes: each word and a NUL.
pub fn encode<S: AsRef<str>>(words: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in words {
        out.extend_from_slice(w.as_ref().as_bytes());
        out.push(0);
    }
    out
}

/// A request's words from its bytes ([`encode`]; a last NUL may be
/// missing).
///
/// # Errors
/// The bytes are not UTF-8.
pub fn decode(bytes: Vec<u8>) -> Result<Vec<String>, &'static str> {
    let text = String::from_utf8(bytes).map_err(|_| "request is not UTF-8")?;
    Ok(text.split_terminator('\0').map(str::to_string).collect())
}

/// A reply as it goes on the wire.
pub fn reply(result: &Result<String, String>) -> Vec<u8> {
    let (head, body) = match result {
        Ok(out) => ("ok", out),
        Err(msg) => ("error", msg),
    };
    format!("{head}\n{body}").into_bytes()
}

/// A reply's result from its text ([`reply`]); `None` when it is neither.
pub fn parse_reply(text: &str) -> Option<Result<String, String>> {
    match text.split_once('\n') {
        Some(("ok", out)) => Some(Ok(out.to_string())),
        Some(("error", msg)) => Some(Err(msg.to_string())),
        _ => None,
    }
}

/// The sync daemon verbs, ipvsadm's words (`--opt value` or
/// `--opt=value`); `None` for any other command.
fn daemon_request(words: &[&str]) -> Result<Option<Request>, String> {
    use crate::sync::{Role, Settings};
    let mut flat: Vec<String> = Vec::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) if k.starts_with("--") => flat.extend([k.to_string(), v.to_string()]),
            _ => flat.push((*w).to_string()),
        }
    }
    let f: Vec<&str> = flat.iter().map(String::as_str).collect();
    let role = |w: Option<&&str>| match w.copied() {
        Some("master") => Ok(Role::Master),
        Some("backup") => Ok(Role::Backup),
        other => Err(format!(
            "invalid daemon state \"{}\": master or backup",
            other.unwrap_or("")
        )),
    };
    match f.first().copied() {
        Some("-L" | "--list") if f.contains(&"--daemon") => {
            return Ok(Some(Request::ListDaemon {
                json: f.contains(&"--json"),
            }));
        }
        Some("--stop-daemon") => return role(f.get(1)).map(|r| Some(Request::StopDaemon(r))),
        Some("--start-daemon") => {}
        _ => return Ok(None),
    }
    let role = role(f.get(1))?;
    let mut s = Settings::default();
    let mut it = f[2..].chunks(2);
    for pair in &mut it {
        let [opt, v] = pair else {
            return Err(format!("option \"{}\" needs a value", pair[0]));
        };
        let num = |max: u32| -> Result<u32, String> {
            v.parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n) || (*opt == "--syncid" && *n == 0))
                .ok_or_else(|| format!("invalid value \"{v}\" for {opt}"))
        };
        match *opt {
            "--mcast-interface" => s.interface = (*v).to_string(),
            "--syncid" => s.syncid = num(255)? as u8,
            "--sync-maxlen" => s.maxlen = num(65507)? as u16,
            "--mcast-port" => s.port = num(65535)? as u16,
            "--mcast-ttl" => s.ttl = num(255)? as u8,
            "--mcast-group" => {
                s.group = v
                    .parse()
                    .ok()
                    .filter(std::net::Ipv4Addr::is_multicast)
                    .ok_or_else(|| {
                        format!("invalid value \"{v}\" for --mcast-group: not a multicast address")
                    })?;
            }
            other => {
                return Err(format!(
                    "option \"{other}\" is not supported by ferrovs with --start-daemon"
                ));
            }
        }
    }
    Ok(Some(Request::StartDaemon { role, settings: s }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_frames_give_back_what_went_in() {
        for words in [&[][..], &[""], &["-L", "-n"], &["-R", "-A -t 1.2.3.4:80\n\n", ""]] {
            assert_eq!(decode(encode(words)).unwrap(), words, "{words:?}");
        }
        assert_eq!(decode(b"-L\0-n".to_vec()).unwrap(), ["-L", "-n"]);
        assert_eq!(decode(vec![b'-', 0xff, 0]), Err("request is not UTF-8"));
        for r in [Ok(String::new()), Ok("a\nb\n".into()), Err("no\nsuch".into())] {
            let text = String::from_utf8(reply(&r)).unwrap();
            assert_eq!(parse_reply(&text), Some(r));
        }
        for bad in ["", "ok", "okay\n", "Error\nx"] {
            assert_eq!(parse_reply(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn our_listings_take_their_flags_in_any_order() {
        let parse = |line: &str| Request::from_cli(&line.split_whitespace().collect::<Vec<_>>());
        for (line, want) in [
            ("-L -n --vrrp", Request::Vrrp { json: false }),
            ("--vrrp -L", Request::Vrrp { json: false }),
            ("-L --json -n --vrrp", Request::Vrrp { json: true }),
            ("--counters", Request::Counters { json: false }),
            ("--counters --json", Request::Counters { json: true }),
            ("-n --counters", Request::Counters { json: false }),
        ] {
            assert_eq!(parse(line), Ok(want), "{line}");
        }
        // Another command's flags are not taken with them.
        assert!(parse("--counters -C").is_err());
        assert!(parse("--vrrp -A").is_err());
    }

    #[test]
    fn client_and_daemon_parse_the_same_words() {
        for line in [
            "--counters",
            "--reload",
            "-L --vrrp",
            "-L --vrrp --json",
            "--start-daemon master --mcast-interface eth1 --syncid 7",
            "--start-daemon=backup --sync-maxlen=1400",
            "--stop-daemon backup",
            "-L --daemon",
            "-L -n --stats",
            "-A -t 10.0.0.100:80 -s rr",
            "-R",
            "-R --dry-run",
        ] {
            let args: Vec<&str> = line.split_whitespace().collect();
            let mut req = Request::from_cli(&args).unwrap();
            if let Request::Restore { text, .. } = &mut req {
                *text = "-C\n".into();
            }
            assert_eq!(Request::from_wire(req.to_wire(&args)).unwrap(), req, "{line}");
        }
        for verb in ["-A", "-E"] {
            let e = Request::from_cli(&[verb, "-t", "10.0.0.100:80", "-s", "wlcc"]).unwrap_err();
            assert!(e.contains("unknown scheduler \"wlcc\""), "{verb}: {e}");
        }
        assert!(Request::from_wire(vec!["-R".into()]).is_err());
        let Ok(Request::StartDaemon { role, settings }) = Request::from_cli(&[
            "--start-daemon",
            "master",
            "--mcast-interface",
            "eth1",
            "--mcast-ttl",
            "3",
        ]) else {
            panic!()
        };
        assert_eq!(
            (role, settings.interface.as_str(), settings.ttl, settings.port),
            (crate::sync::Role::Master, "eth1", 3, 8848)
        );
        for bad in [
            &["--start-daemon", "primary"][..],
            &["--start-daemon", "master", "--syncid", "300"],
            &["--start-daemon", "master", "--mcast-group", "10.0.0.1"],
            &["--start-daemon", "master", "--mcast-port"],
        ] {
            assert!(Request::from_cli(bad).is_err(), "{bad:?}");
        }
    }
}
