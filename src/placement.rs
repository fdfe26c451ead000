//! Where the workers run: interfaces, queues, cores and UMEM frames, as the
//! daemon takes them and the doctor checks them, from flags or `--config`.

use clap::ArgMatches;
use clap::parser::ValueSource;
use config::daemon::DaemonConf;
use std::path::PathBuf;

/// The flags both `ferrovs daemon` and `ferrovs doctor` take.
#[derive(Debug, Clone, clap::Args)]
pub struct Placement {
    /// Interface(s) of the director: the first receives traffic for the VIPs;
    /// real servers may sit behind any (a two-armed NAT director gives the
    /// client side and the real-server side: `-i eth0 -i eth1`).
    #[arg(short, long, value_delimiter = ',')]
    pub interface: Vec<String>,
    /// Read the settings from this TOML file (keys named as the daemon's
    /// flags, `conn_max` for `--conn-max`, `interfaces` for `--interface`); a
    /// flag given on the command line wins over the file.
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Number of queues, one worker each (queues 0..N of the interface).
    #[arg(short, long, default_value_t = 1)]
    pub queues: u32,
    /// Cores for the workers, by queue: worker q runs on the q-th core of the
    /// list (e.g. `--cpus 2,3`). Default: worker q on core q.
    #[arg(long, value_delimiter = ',')]
    pub cpus: Vec<usize>,
    /// UMEM frames per queue (2 KiB each).
    #[arg(long, default_value_t = dataplane::xsk::PortConfig::default().frames)]
    pub frames: u32,
}

impl Placement {
    /// With `--config`, read the file and fill what the command line (`m`)
    /// left alone; return the file for the caller's own keys.
    ///
    /// # Errors
    /// The file cannot be read or is refused, or neither it nor the
    /// command line names an interface.
    pub fn merge(&mut self, m: &ArgMatches) -> Result<Option<DaemonConf>, String> {
        let Some(path) = &self.config else {
            if self.interface.is_empty() {
                return Err("--interface IF (or --config FILE) is required".into());
            }
            return Ok(None);
        };
        let f = DaemonConf::read(path)?;
        let file = |id: &str| from_file(m, id);
        if let (true, Some(v)) = (file("interface"), &f.interfaces) {
            self.interface.clone_from(v);
        }
        if let (true, Some(v)) = (file("queues"), f.queues) {
            self.queues = v;
        }
        if let (true, Some(v)) = (file("cpus"), &f.cpus) {
            self.cpus.clone_from(v);
        }
        if let (true, Some(v)) = (file("frames"), f.frames) {
            self.frames = v;
        }
        if self.interface.is_empty() {
            return Err(format!(
                "{}: no interface to forward on: set interfaces = [\"eth0\"] there (ip -br link lists them), or give --interface",
                path.display()
            ));
        }
        Ok(Some(f))
    }
}

/// Whether setting `id` may come from the file: the command line did not
/// give it.
pub fn from_file(m: &ArgMatches, id: &str) -> bool {
    m.value_source(id) != Some(ValueSource::CommandLine)
}
