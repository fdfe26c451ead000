//! The daemon's settings: its command line, and the TOML file (`--config`)
//! that fills what the command line left alone.
//!
//! Owns: parsing and checking settings. Must not touch: anything running.

use crate::ctl;
use crate::placement::{Placement, from_file};
use clap::Parser;
use dataplane::snapshot::FullTable;
use dataplane::xsk::{BindMode, PortConfig};
use std::path::PathBuf;

/// Options of `ferrovs daemon`.
#[derive(Debug, Parser)]
#[command(about = "Run the ferrovs director: AF_XDP workers plus the control socket")]
pub struct Opts {
    /// Interfaces, queues, cores, frames, config file.
    #[command(flatten)]
    pub place: Placement,
    /// Control socket path.
    #[arg(long, default_value_t = ctl::default_path())]
    pub socket: String,
    /// Control socket permissions (octal): 0660 lets a group manage rules.
    #[arg(long, default_value = "0600", value_parser = config::daemon::parse_mode)]
    pub socket_mode: u32,
    /// Load this ipvsadm-save file at start.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// RX and TX ring entries per socket (a power of two).
    #[arg(long, default_value_t = PortConfig::default().ring)]
    pub ring_size: u32,
    /// Bind with need_wakeup (syscalls only when the kernel asks); `false`
    /// kicks TX every batch.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub need_wakeup: bool,
    /// Preferred busy polling: µs the kernel may spin per syscall (0: off).
    #[arg(long, default_value_t = 0)]
    pub busy_poll_us: u32,
    /// Packets per busy-poll run.
    #[arg(long, default_value_t = PortConfig::default().busy_poll_budget)]
    pub busy_poll_budget: u32,
    /// Connection table capacity per worker.
    #[arg(long, default_value_t = 1 << 20)]
    pub conn_max: usize,
    /// IPv6 connection table capacity per worker (a table of its own, 120 B
    /// a connection to IPv4's 60); default a quarter of --conn-max, at most
    /// 262144.
    #[arg(long)]
    pub conn_max6: Option<usize>,
    /// Lookup table size of mh (Maglev) services; a prime, ideally over 100x
    /// the servers of a service.
    #[arg(long, default_value_t = sched::DEFAULT_MH_TABLE_SIZE, value_parser = prime)]
    pub mh_table_size: u32,
    /// What a new flow gets when a worker's connection table is full:
    /// `stateless` (a server picked from its client tuple, no entry) or
    /// `drop`. Established connections are never evicted either way.
    #[arg(long, value_enum, default_value_t = FullTablePolicy::Stateless)]
    pub full_table: FullTablePolicy,
    /// Load this keepalived.conf: its virtual_server blocks become the rules
    /// and its checkers run; SIGHUP or `ferrovs --reload` reads it again.
    #[arg(long)]
    pub keepalived: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (e.g. `127.0.0.1:9410`).
    #[arg(long)]
    pub metrics: Option<String>,
    /// AF_XDP bind mode.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    pub bind_mode: Mode,
    /// The XDP fast path for established flows: `auto` (on unless the
    /// sockets must be zero-copy, where userspace is the fast path), `on`
    /// or `off`.
    #[arg(long, value_enum, default_value_t = FastPath::Auto)]
    pub fast_path: FastPath,
    /// The least severe log lines written: `error`, `warn`, `info` (state
    /// changes: servers, quorum, VRRP, reloads) or `debug`.
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    /// As IPVS's sysctl: when a real server is deleted, drop its connections
    /// (the next packet of a flow is scheduled anew) instead of letting them
    /// flow to it until they end.
    #[arg(long)]
    pub expire_nodest_conn: bool,
    /// As IPVS's sysctl `sync_threshold`: a sync master sends a connection
    /// at its client's packet THRESHOLD and every PERIOD packets after
    /// (PERIOD 0: once).
    #[arg(long, default_value = "3,50", value_parser = sync_threshold)]
    pub sync_threshold: (u8, u8),
    /// As IPVS's `sync_refresh_period`: seconds after which a busy
    /// connection is sent again (0: by packet counts alone).
    #[arg(long, default_value_t = 0)]
    pub sync_refresh_period: u32,
    /// As IPVS's `sync_retries` (0-3): with --sync-refresh-period, extra
    /// sends within a refresh period, an eighth of it apart.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub sync_retries: u8,
    /// Keep the rules (every committed change, written atomically) and the
    /// connection tables here, and take them back at start: a restart, a
    /// crash or an upgrade loses neither (see docs/daemon.md, "Restarts").
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// With --state-dir: pin the XDP attachments in this directory of a
    /// bpffs, so the program outlives the process (it drops VIP traffic
    /// while no daemon runs, instead of the host resetting connections).
    #[arg(long, default_value = "/sys/fs/bpf/ferrovs")]
    pub bpf_pins: PathBuf,
    /// Detach the program pinned in --bpf-pins and remove the pins, then
    /// exit: a real shutdown of a director that keeps it across restarts.
    #[arg(long)]
    pub stop_clean: bool,
    /// Sync daemons to start (from the file's `[[sync_daemon]]` tables).
    #[arg(skip)]
    pub sync_daemons: Vec<(crate::sync::Role, crate::sync::Settings)>,
}

impl Opts {
    /// Parse the command line and, with `--config`, fill every setting the
    /// command line left alone from the file.
    ///
    /// # Errors
    /// The file cannot be read, has an unknown key or a bad value.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        use clap::{CommandFactory, FromArgMatches};
        let m = Self::command().get_matches_from(args);
        // clap exits with its own message on a bad command line, as before.
        let mut o = Self::from_arg_matches(&m).map_err(|e| e.to_string())?;
        if o.stop_clean {
            // Needs no interface: it only takes off what the pins hold.
            return Ok(o);
        }
        let Some(f) = o.place.merge(&m)? else {
            return Ok(o);
        };
        let path = o.place.config.clone().unwrap_or_default();
        let file = |id: &str| from_file(&m, id);
        let bad = |key: &str, e: String| format!("{}: {key}: {e}", path.display());
        macro_rules! take {
            ($($field:ident <- $key:ident),* $(,)?) => {$(
                if let (true, Some(v)) = (file(stringify!($field)), f.$key.clone()) {
                    o.$field = v;
                }
            )*};
        }
        take!(ring_size <- ring_size, need_wakeup <- need_wakeup, busy_poll_us <- busy_poll_us,
            busy_poll_budget <- busy_poll_budget, socket <- socket, conn_max <- conn_max);
        if let (true, Some(v)) = (file("socket_mode"), &f.socket_mode) {
            o.socket_mode = config::daemon::parse_mode(v).map_err(|e| bad("socket_mode", e))?;
        }
        if let (true, Some(v)) = (file("mh_table_size"), f.mh_table_size) {
            o.mh_table_size = prime(&v.to_string()).map_err(|e| bad("mh_table_size", e))?;
        }
        if let (true, Some(v)) = (file("bind_mode"), &f.bind_mode) {
            o.bind_mode = clap::ValueEnum::from_str(v, false).map_err(|e| bad("bind_mode", e))?;
        }
        if let (true, Some(v)) = (file("fast_path"), &f.fast_path) {
            o.fast_path = clap::ValueEnum::from_str(v, false).map_err(|e| bad("fast_path", e))?;
        }
        if let (true, Some(v)) = (file("log_level"), &f.log_level) {
            o.log_level = clap::ValueEnum::from_str(v, false).map_err(|e| bad("log_level", e))?;
        }
        if let (true, Some(v)) = (file("full_table"), &f.full_table) {
            o.full_table = clap::ValueEnum::from_str(v, false).map_err(|e| bad("full_table", e))?;
        }
        // Optional settings: the file's value, unless the command line gave one.
        if file("metrics") && f.metrics.is_some() {
            o.metrics = f.metrics;
        }
        if file("conn_max6") && f.conn_max6.is_some() {
            o.conn_max6 = f.conn_max6;
        }
        if file("rules") && f.rules.is_some() {
            o.rules = f.rules;
        }
        if file("keepalived") && f.keepalived.is_some() {
            o.keepalived = f.keepalived;
        }
        if file("state_dir") && f.state_dir.is_some() {
            o.state_dir = f.state_dir;
        }
        if let (true, Some(v)) = (file("bpf_pins"), f.bpf_pins) {
            o.bpf_pins = v;
        }
        if let (true, Some(v)) = (file("sync_threshold"), &f.sync_threshold) {
            let [t, p] = v[..] else {
                return Err(bad("sync_threshold", "two numbers: [threshold, period]".into()));
            };
            o.sync_threshold = sync_threshold(&format!("{t},{p}")).map_err(|e| bad("sync_threshold", e))?;
        }
        if let (true, Some(v)) = (file("sync_refresh_period"), f.sync_refresh_period) {
            o.sync_refresh_period = v;
        }
        if let (true, Some(v)) = (file("sync_retries"), f.sync_retries) {
            if v > 3 {
                return Err(bad("sync_retries", format!("{v}: 0 to 3")));
            }
            o.sync_retries = v;
        }
        for d in f.sync_daemon.iter().flatten() {
            o.sync_daemons
                .push(sync_daemon(d).map_err(|e| bad("sync_daemon", e))?);
        }
        Ok(o)
    }
}

impl Opts {
    /// When a sync master sends a connection.
    pub fn sync_policy(&self) -> dataplane::sync::SyncPolicy {
        dataplane::sync::SyncPolicy {
            threshold: self.sync_threshold.0,
            period: self.sync_threshold.1,
            refresh: self.sync_refresh_period,
            retries: self.sync_retries,
        }
    }
}

/// `THRESHOLD,PERIOD`, checked as the kernel (and our 7-bit count) wants.
fn sync_threshold(s: &str) -> Result<(u8, u8), String> {
    let (t, p) = s
        .split_once([',', ' '])
        .ok_or_else(|| format!("{s}: THRESHOLD,PERIOD (e.g. 3,50)"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<u8>()
            .map_err(|_| format!("{v}: not a number 0-255"))
    };
    let (threshold, period) = (num(t)?, num(p)?);
    dataplane::sync::SyncPolicy {
        threshold,
        period,
        ..dataplane::sync::SyncPolicy::default()
    }
    .check()?;
    Ok((threshold, period))
}

/// A `[[sync_daemon]]` table as `--start-daemon` takes it.
fn sync_daemon(
    d: &config::daemon::SyncDaemonConf,
) -> Result<(crate::sync::Role, crate::sync::Settings), String> {
    use crate::sync::{Role, Settings};
    let role = match d.state.as_str() {
        "master" => Role::Master,
        "backup" => Role::Backup,
        other => return Err(format!("state \"{other}\": master or backup")),
    };
    let def = Settings::default();
    let group = d.mcast_group.unwrap_or(def.group);
    if !group.is_multicast() {
        return Err(format!("mcast_group {group}: not a multicast address"));
    }
    Ok((
        role,
        Settings {
            interface: d.mcast_interface.clone().unwrap_or(def.interface),
            syncid: d.syncid.unwrap_or(def.syncid),
            maxlen: d.sync_maxlen.unwrap_or(def.maxlen),
            group,
            port: d.mcast_port.unwrap_or(def.port),
            ttl: d.mcast_ttl.unwrap_or(def.ttl),
        },
    ))
}

fn prime(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|e| format!("{e}"))?;
    // 2^24 slots (64 MiB of table per service and worker) is far past any
    // useful size; the bound keeps a typo from exhausting memory.
    if sched::is_prime(n) && n < 1 << 24 {
        Ok(n)
    } else {
        Err(format!("{n} is not a prime below 2^24"))
    }
}

/// `--full-table` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FullTablePolicy {
    /// Stateless pick from the client tuple.
    Stateless,
    /// Drop new flows.
    Drop,
}

/// `--bind-mode` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    /// Zero-copy where the driver has it, else copy.
    Auto,
    /// Copy mode.
    Copy,
    /// Zero-copy, or fail.
    Zerocopy,
}

/// `--log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// And warnings: a server down, quorum lost, a VRRP fault.
    Warn,
    /// And what changed: servers back, reloads, VRRP transitions, starts.
    Info,
    /// And what an operator reads while chasing a bug.
    Debug,
}

impl LogLevel {
    /// The `log` crate's filter.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            Self::Error => log::LevelFilter::Error,
            Self::Warn => log::LevelFilter::Warn,
            Self::Info => log::LevelFilter::Info,
            Self::Debug => log::LevelFilter::Debug,
        }
    }
}

/// `--fast-path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FastPath {
    /// On where the sockets run in copy mode (all but `--bind-mode
    /// zerocopy`) on physical interfaces; off on virtual ones (veth, say),
    /// which drop XDP_TX frames unless their peer runs an XDP program.
    Auto,
    /// On.
    On,
    /// Off: every frame through the workers.
    Off,
}

impl Opts {
    /// Return whether the fast path runs, and why.
    /// Where the XDP attachments are pinned: only with --state-dir.
    pub fn pins(&self) -> Option<&std::path::Path> {
        self.state_dir.as_ref().map(|_| self.bpf_pins.as_path())
    }

    pub fn fast_path_on(&self) -> (bool, &'static str) {
        // A virtual interface has no device behind it in sysfs.
        let physical = |i: &String| std::path::Path::new(&format!("/sys/class/net/{i}/device")).exists();
        match self.fast_path {
            FastPath::On => (true, "--fast-path on"),
            FastPath::Off => (false, "--fast-path off"),
            FastPath::Auto if matches!(self.bind_mode, Mode::Zerocopy) => {
                (false, "zero-copy sockets are the fast path")
            }
            FastPath::Auto if !self.place.interface.iter().all(physical) => (
                false,
                "a virtual interface (veth drops XDP_TX frames unless its peer runs an XDP program; \
                 --fast-path on where it does)",
            ),
            FastPath::Auto => (true, "copy-mode sockets on physical interfaces"),
        }
    }

    /// Return the AF_XDP socket settings.
    pub fn port_config(&self) -> PortConfig {
        PortConfig {
            frames: self.place.frames,
            ring: self.ring_size,
            need_wakeup: self.need_wakeup,
            busy_poll_us: self.busy_poll_us,
            busy_poll_budget: self.busy_poll_budget,
            mode: match self.bind_mode {
                Mode::Auto => BindMode::Auto,
                Mode::Copy => BindMode::Copy,
                Mode::Zerocopy => BindMode::ZeroCopy,
            },
            ..PortConfig::default()
        }
    }

    /// Return the full-table policy.
    pub fn full_table(&self) -> FullTable {
        match self.full_table {
            FullTablePolicy::Stateless => FullTable::Stateless,
            FullTablePolicy::Drop => FullTable::Drop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> Result<Opts, String> {
        Opts::from_args(
            ["ferrovs daemon", "--interface", "eth0"]
                .iter()
                .chain(args)
                .map(|s| s.to_string()),
        )
    }

    #[test]
    fn log_level_from_the_command_line_or_the_file() {
        assert_eq!(opts(&[]).unwrap().log_level, LogLevel::Info);
        assert_eq!(opts(&["--log-level", "warn"]).unwrap().log_level, LogLevel::Warn);
        let dir = std::env::temp_dir().join(format!("ferrovs-opts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ferrovs.toml");
        std::fs::write(&file, "log_level = \"debug\"\n").unwrap();
        let path = file.to_str().unwrap();
        assert_eq!(opts(&["--config", path]).unwrap().log_level, LogLevel::Debug);
        // The command line wins.
        let o = opts(&["--config", path, "--log-level", "error"]).unwrap();
        assert_eq!(o.log_level, LogLevel::Error);
        std::fs::write(&file, "log_level = \"loud\"\n").unwrap();
        let e = opts(&["--config", path]).unwrap_err();
        assert!(e.contains("log_level"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
