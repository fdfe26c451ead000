//! The daemon's configuration file (`ferrovs daemon --config FILE`): where it
//! forwards, on which cores, with which AF_XDP settings, and which rules it
//! loads at start. Every key is optional and mirrors a daemon flag; a flag
//! given on the command line wins over the file.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file's keys, named after the daemon's flags (`--conn-max` is
/// `conn_max`).
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DaemonConf {
    /// Interfaces; the first receives VIP traffic.
    pub interfaces: Option<Vec<String>>,
    /// Queues, one worker each.
    pub queues: Option<u32>,
    /// Worker q runs on `cpus[q]`.
    pub cpus: Option<Vec<usize>>,
    /// UMEM frames per queue.
    pub frames: Option<u32>,
    /// RX and TX ring entries (a power of two).
    pub ring_size: Option<u32>,
    /// `auto`, `copy` or `zerocopy`.
    pub bind_mode: Option<String>,
    /// Let the kernel say when it needs a wakeup syscall (off: kick every batch).
    pub need_wakeup: Option<bool>,
    /// Preferred busy polling: microseconds the kernel may spin in a poll (0: off).
    pub busy_poll_us: Option<u32>,
    /// Packets per busy-poll run.
    pub busy_poll_budget: Option<u32>,
    /// Control socket path.
    pub socket: Option<String>,
    /// Control socket permissions, octal (`"0660"`).
    pub socket_mode: Option<String>,
    /// Prometheus metrics address.
    pub metrics: Option<String>,
    /// Connection table capacity per worker.
    pub conn_max: Option<usize>,
    /// IPv6 connection table capacity per worker.
    pub conn_max6: Option<usize>,
    /// Maglev table size (a prime).
    pub mh_table_size: Option<u32>,
    /// `stateless` or `drop`.
    pub full_table: Option<String>,
    /// `auto`, `on` or `off`.
    pub fast_path: Option<String>,
    /// `error`, `warn`, `info` or `debug`.
    pub log_level: Option<String>,
    /// An ipvsadm-save file to load at start.
    pub rules: Option<PathBuf>,
    /// A keepalived.conf to load at start and on SIGHUP.
    pub keepalived: Option<PathBuf>,
    /// Where the rules and connection tables outlive the process.
    pub state_dir: Option<PathBuf>,
    /// A bpffs directory for the pinned XDP attachments (with state_dir).
    pub bpf_pins: Option<PathBuf>,
    /// `[threshold, period]` of a sync master (IPVS's `sync_threshold`).
    pub sync_threshold: Option<Vec<u8>>,
    /// IPVS's `sync_refresh_period`, seconds.
    pub sync_refresh_period: Option<u32>,
    /// IPVS's `sync_retries` (0-3).
    pub sync_retries: Option<u8>,
    /// Connection sync daemons to start, as `--start-daemon` would:
    /// `[[sync_daemon]]` tables.
    pub sync_daemon: Option<Vec<SyncDaemonConf>>,
}

/// One `[[sync_daemon]]`: ipvsadm's `--start-daemon` options.
#[derive(Debug, Default, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields)]
pub struct SyncDaemonConf {
    /// `master` or `backup`.
    pub state: String,
    /// `--mcast-interface` (default eth0).
    pub mcast_interface: Option<String>,
    /// `--syncid` (default 0).
    pub syncid: Option<u8>,
    /// `--sync-maxlen`.
    pub sync_maxlen: Option<u16>,
    /// `--mcast-group`.
    pub mcast_group: Option<std::net::Ipv4Addr>,
    /// `--mcast-port`.
    pub mcast_port: Option<u16>,
    /// `--mcast-ttl`.
    pub mcast_ttl: Option<u8>,
}

impl DaemonConf {
    /// Parse the text of a configuration file; `name` is used in errors.
    ///
    /// # Errors
    /// Not TOML, an unknown key or a value of the wrong type: the message
    /// names the line.
    pub fn parse(name: &str, text: &str) -> Result<Self, String> {
        let conf: Self = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map_or(0, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            format!("{name}:{line}: {}", e.message())
        })?;
        if let Some(m) = &conf.socket_mode {
            parse_mode(m).map_err(|e| format!("{name}: socket_mode: {e}"))?;
        }
        Ok(conf)
    }

    /// Read and parse a configuration file.
    ///
    /// # Errors
    /// The file cannot be read, or [`DaemonConf::parse`] refuses it.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&path.display().to_string(), &text)
    }
}

/// Parse an octal permission string such as `0660`.
///
/// # Errors
/// Not octal, or bits beyond 0777.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    match u32::from_str_radix(s.trim_start_matches("0o"), 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!("{s:?} is not an octal mode such as \"0660\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let c = DaemonConf::parse(
            "f",
            "interfaces = [\"eth0\", \"eth1\"]\nqueues = 2\ncpus = [2, 3]\nframes = 8192\n\
             ring_size = 4096\nbind_mode = \"zerocopy\"\nneed_wakeup = false\nbusy_poll_us = 20\n\
             socket_mode = \"0660\"\nrules = \"/etc/ferrovs/rules\"\n",
        )
        .unwrap();
        assert_eq!(c.interfaces.unwrap(), ["eth0", "eth1"]);
        assert_eq!((c.queues, c.cpus.unwrap()), (Some(2), vec![2, 3]));
        assert_eq!(
            (c.ring_size, c.need_wakeup, c.busy_poll_us),
            (Some(4096), Some(false), Some(20))
        );
        assert_eq!(c.rules.unwrap(), Path::new("/etc/ferrovs/rules"));
        assert_eq!(c.metrics, None);
    }

    #[test]
    fn sync_daemons_are_tables_of_start_daemon_options() {
        let c = DaemonConf::parse(
            "f",
            "[[sync_daemon]]\nstate = \"master\"\nmcast_interface = \"eth1\"\nsyncid = 7\n\n\
             [[sync_daemon]]\nstate = \"backup\"\nmcast_group = \"224.0.0.82\"\nmcast_port = 8849\n",
        )
        .unwrap();
        let d = c.sync_daemon.unwrap();
        assert_eq!(
            (d[0].state.as_str(), d[0].syncid, d[1].mcast_port),
            ("master", Some(7), Some(8849))
        );
        let e = DaemonConf::parse("f", "[[sync_daemon]]\nstate = \"master\"\nsyncid = 300\n").unwrap_err();
        assert!(e.contains("f:3"), "{e}");
    }

    #[test]
    fn the_shipped_example_parses() {
        let c = DaemonConf::parse("ferrovs.toml", include_str!("../../scripts/ferrovs.toml")).unwrap();
        // It starts once the operator names the interface: nothing else it
        // sets needs a file or a core the host may not have.
        assert_eq!(
            (c.interfaces, c.queues, c.cpus, c.rules),
            (None, None, None, None)
        );
        assert_eq!(c.log_level.as_deref(), Some("info"));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_line() {
        let e = DaemonConf::parse("f.toml", "queues = 2\n\nqueue = 3\n").unwrap_err();
        assert!(
            e.starts_with("f.toml:3:") && e.contains("unknown field `queue`"),
            "{e}"
        );
        let e = DaemonConf::parse("f.toml", "queues = 2\nframes = \"many\"\n").unwrap_err();
        assert!(e.starts_with("f.toml:2:"), "{e}");
        let e = DaemonConf::parse("f.toml", "socket_mode = \"rw\"\n").unwrap_err();
        assert!(e.contains("socket_mode"), "{e}");
        assert_eq!(parse_mode("0660"), Ok(0o660));
    }
}
