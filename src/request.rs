//! What a client asks the daemon, parsed once: an ipvsadm command, or one of
//! ferrovs' own verbs. The client parses its command line into a
//! [`Request`] (refusing bad input before it bothers the daemon) and sends
//! its words; the daemon parses the same words back with the same code.
//!
//! Owns: the request words on the control socket. Must not touch: the rules
//! (the daemon applies a request) or the socket itself (`ctl`).

use config::ipvsadm::Command;

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
    Counters,
    /// `--reload`: read the keepalived configuration again, as SIGHUP.
    Reload,
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
        match words[..] {
            ["--counters"] => return Ok(Self::Counters),
            ["--reload"] => return Ok(Self::Reload),
            ["-L" | "--list", "--vrrp"] | ["--vrrp", "-L" | "--list"] => {
                return Ok(Self::Vrrp { json: false });
            }
            ["-L" | "--list", "--vrrp", "--json"] | ["-L" | "--list", "--json", "--vrrp"] => {
                return Ok(Self::Vrrp { json: true });
            }
            ["-R" | "--restore", "--dry-run"] => {
                return Ok(Self::Restore {
                    text: String::new(),
                    dry_run: true,
                });
            }
            _ => {}
        }
        match config::ipvsadm::parse(&words).map_err(|e| e.to_string())? {
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
    pub fn from_wire(mut words: Vec<String>) -> Result<Self, String> {
        let restore = words.first().is_some_and(|w| w == "-R" || w == "--restore");
        if !restore {
            return Self::from_cli(&words);
        }
        let text = words
            .pop()
            .filter(|_| !words.is_empty())
            .ok_or_else(|| "-R reads the rules from standard input".to_string())?;
        match Self::from_cli(&words)? {
            Self::Restore { dry_run, .. } => Ok(Self::Restore { text, dry_run }),
            _ => Err("-R reads the rules from standard input".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_daemon_parse_the_same_words() {
        for line in [
            "--counters",
            "--reload",
            "-L --vrrp",
            "-L --vrrp --json",
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
    }
}
