//! The daemon's log: the `log` crate's macros, one line each on stderr.
//!
//! Under systemd (`JOURNAL_STREAM` set), or whenever stderr is not a
//! terminal, each line starts with its syslog severity (`<3>` error, `<4>`
//! warning, `<6>` info, `<7>` debug), which journald reads: `journalctl -u
//! ferrovs -p warning` shows warnings and errors only. On a terminal the
//! lines are plain. `--log-level` (or `log_level` in the config file) sets
//! the least severe level written.
//!
//! Owns: the format and the level. Must not touch: the words (callers
//! choose them; the state changes an operator alerts on use keepalived's,
//! so rules written for keepalived's log keep matching).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::{IsTerminal, Write};

struct Stderr {
    severity: bool,
}

/// Start logging at `level`. Lines logged before (none are) or a second
/// call are harmless: the first logger stays, the level follows the last.
pub fn init(level: LevelFilter) {
    let severity = std::env::var_os("JOURNAL_STREAM").is_some() || !std::io::stderr().is_terminal();
    let _ = log::set_boxed_logger(Box::new(Stderr { severity }));
    log::set_max_level(level);
}

/// The syslog severity of `level` (RFC 5424: 3 error, 4 warning, 6
/// informational, 7 debug).
fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// One line of the log, newline included.
fn line(level: Level, with_severity: bool, args: &std::fmt::Arguments<'_>) -> String {
    if with_severity {
        format!("<{}>ferrovs: {args}\n", severity(level))
    } else {
        format!("ferrovs: {args}\n")
    }
}

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // One write per line, so threads' lines never interleave.
        let text = line(record.level(), self.severity, record.args());
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_the_syslog_severity_journald_reads() {
        let at = |level, sev| line(level, sev, &format_args!("rs {} down", 1));
        assert_eq!(at(Level::Error, true), "<3>ferrovs: rs 1 down\n");
        assert_eq!(at(Level::Warn, true), "<4>ferrovs: rs 1 down\n");
        assert_eq!(at(Level::Info, true), "<6>ferrovs: rs 1 down\n");
        assert_eq!(at(Level::Debug, true), "<7>ferrovs: rs 1 down\n");
        assert_eq!(at(Level::Warn, false), "ferrovs: rs 1 down\n");
    }
}
