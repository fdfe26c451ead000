//! `ferrovs doctor`: check the host against a deployment (interfaces,
//! queues, worker cores, UMEM size) and print each problem with the command
//! that fixes it. Exit non-zero when something would stop the daemon.
//!
//! It reads `/proc` and `/sys` under a root (`--root`, default `/`), so
//! tests give it fake trees for what a lab cannot show (a NIC with 8 queues).

use crate::placement::Placement;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Options of `ferrovs doctor`.
#[derive(Debug, clap::Parser)]
#[command(about = "Check this host for running the ferrovs daemon as configured")]
pub struct Opts {
    /// Interfaces, queues, cores, frames, or the daemon's config file.
    #[command(flatten)]
    pub place: Placement,
    /// Read /proc and /sys under this directory.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
}

impl Opts {
    /// Parse the command line, then fill what it left alone from `--config`.
    ///
    /// # Errors
    /// The configuration file cannot be read or is refused.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        use clap::{CommandFactory, FromArgMatches};
        let m = Self::command().get_matches_from(args);
        let mut o = Self::from_arg_matches(&m).map_err(|e| e.to_string())?;
        o.place.merge(&m)?;
        Ok(o)
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but slower or less robust than it could be.
    Warn,
    /// The daemon would not start or not forward.
    Fail,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How bad.
    pub level: Level,
    /// What was found.
    pub what: String,
    /// The command that fixes it, if any.
    pub fix: Option<String>,
}

/// Drivers with AF_XDP zero-copy support in mainline Linux.
const ZEROCOPY_DRIVERS: &[&str] = &[
    "ixgbe",
    "i40e",
    "ice",
    "igc",
    "igb",
    "mlx5_core",
    "stmmac",
    "ixgbevf",
    "idpf",
];

fn read(root: &Path, path: &str) -> Option<String> {
    std::fs::read_to_string(root.join(path.trim_start_matches('/'))).ok()
}

/// Run every check.
pub fn check(o: &Opts) -> Vec<Finding> {
    let cpus: Vec<usize> = if o.place.cpus.is_empty() {
        (0..o.place.queues as usize).collect()
    } else {
        o.place.cpus.clone()
    };
    let root = o.root.as_path();
    let mut d = Doctor {
        root,
        online: read(root, "/sys/devices/system/cpu/online").map_or(0, |s| count_cpus(s.trim())),
        cpus,
        found: Vec::new(),
    };
    d.kernel();
    for ifname in &o.place.interface {
        d.interface(ifname, o.place.queues);
    }
    d.cores();
    d.memlock(u64::from(o.place.frames) * u64::from(dataplane::xsk::FRAME_SIZE) * u64::from(o.place.queues));
    d.found
}

/// The checks of one run, and what they found.
struct Doctor<'a> {
    root: &'a Path,
    /// Online CPUs (0: unknown).
    online: usize,
    /// The workers' cores.
    cpus: Vec<usize>,
    found: Vec<Finding>,
}

impl Doctor<'_> {
    fn push(&mut self, level: Level, what: String, fix: Option<String>) {
        self.found.push(Finding { level, what, fix });
    }

    fn read(&self, path: &str) -> Option<String> {
        read(self.root, path)
    }

    /// Kernel: BPF JIT, XDP sockets, bpffs.
    fn kernel(&mut self) {
        match self
            .read("/proc/sys/net/core/bpf_jit_enable")
            .map(|s| s.trim().to_string())
        {
            Some(v) if v == "1" || v == "2" => self.push(Level::Ok, "BPF JIT is on".into(), None),
            Some(_) => self.push(
                Level::Warn,
                "BPF JIT is off: XDP programs run interpreted".into(),
                Some("sysctl -w net.core.bpf_jit_enable=1".into()),
            ),
            None => self.push(Level::Warn, "cannot read net.core.bpf_jit_enable".into(), None),
        }
        let xsk = self
            .read("/proc/net/protocols")
            .is_some_and(|p| p.lines().any(|l| l.starts_with("XDP")));
        if xsk {
            self.push(Level::Ok, "the kernel has XDP sockets".into(), None);
        } else {
            self.push(
                Level::Fail,
                "no XDP sockets in /proc/net/protocols (CONFIG_XDP_SOCKETS)".into(),
                Some("use a kernel built with CONFIG_XDP_SOCKETS=y".into()),
            );
        }
        if self
            .read("/proc/mounts")
            .is_some_and(|m| m.lines().any(|l| l.split_whitespace().nth(2) == Some("bpf")))
        {
            self.push(Level::Ok, "bpffs is mounted".into(), None);
        } else {
            self.push(
                Level::Warn,
                "bpffs is not mounted (needed to inspect or pin BPF objects)".into(),
                Some("mount -t bpf bpf /sys/fs/bpf".into()),
            );
        }
    }

    /// One interface: exists, driver and zero-copy, queues, XDP, IRQs.
    fn interface(&mut self, ifname: &str, workers: u32) {
        let dir = format!("/sys/class/net/{ifname}");
        if self.read(&format!("{dir}/ifindex")).is_none() {
            self.push(Level::Fail, format!("{ifname}: no such interface"), None);
            return;
        }
        let driver = std::fs::read_link(
            self.root
                .join(format!("sys/class/net/{ifname}/device/driver").as_str()),
        )
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()));
        match driver.as_deref() {
            Some(d) if ZEROCOPY_DRIVERS.contains(&d) => self.push(
                Level::Ok,
                format!("{ifname}: driver {d} has AF_XDP zero-copy"),
                None,
            ),
            Some(d) => self.push(
                Level::Warn,
                format!("{ifname}: driver {d}: AF_XDP in copy mode only"),
                None,
            ),
            None => self.push(
                Level::Warn,
                format!("{ifname}: virtual device (veth or similar): AF_XDP in copy mode only"),
                None,
            ),
        }
        self.queues(ifname, workers);
        if xdp_attached(self.root, ifname, &dir) {
            self.push(
                Level::Fail,
                format!("{ifname}: another XDP program is attached"),
                Some(format!("ip link set dev {ifname} xdp off")),
            );
        }
        self.irqs(ifname);
    }

    /// Receive queues of `ifname` against the worker count.
    fn queues(&mut self, ifname: &str, workers: u32) {
        let queues = std::fs::read_dir(self.root.join(format!("sys/class/net/{ifname}/queues")))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                    .count()
            })
            .unwrap_or(0) as u32;
        let fix = Some(format!("ethtool -L {ifname} combined {workers}"));
        if queues < workers {
            self.push(
                Level::Fail,
                format!("{ifname}: {queues} receive queue(s), {workers} worker(s) wanted"),
                fix,
            );
        } else if queues > workers {
            self.push(
                Level::Warn,
                format!("{ifname}: {queues} receive queues but {workers} worker(s): frames on the others are not seen"),
                fix,
            );
        } else {
            self.push(
                Level::Ok,
                format!("{ifname}: {queues} queue(s), one per worker"),
                None,
            );
        }
    }

    /// IRQs of the interface's queues on worker cores.
    fn irqs(&mut self, ifname: &str) {
        let Some(interrupts) = self.read("/proc/interrupts") else {
            return;
        };
        for line in interrupts.lines().filter(|l| l.contains(ifname)) {
            let irq = line.split(':').next().unwrap_or("").trim();
            let Some(list) = self.read(&format!("/proc/irq/{irq}/smp_affinity_list")) else {
                continue;
            };
            let on: Vec<usize> = parse_cpu_list(list.trim());
            let clash: Vec<usize> = on.iter().copied().filter(|c| self.cpus.contains(c)).collect();
            if !clash.is_empty() && on.len() < self.online.max(1) {
                let fix = format!(
                    "echo {} > /proc/irq/{irq}/smp_affinity_list",
                    first_free(self.online, &self.cpus)
                );
                self.push(
                    Level::Warn,
                    format!("{ifname}: IRQ {irq} runs on worker core(s) {clash:?}"),
                    Some(fix),
                );
            }
        }
    }

    /// Worker cores: exist, isolated.
    fn cores(&mut self) {
        for c in self.cpus.clone() {
            if self.online > 0 && c >= self.online {
                let online = self.online;
                self.push(
                    Level::Fail,
                    format!("worker core {c} does not exist ({online} online)"),
                    None,
                );
            }
        }
        let cmdline = self.read("/proc/cmdline").unwrap_or_default();
        for key in ["isolcpus", "nohz_full"] {
            let listed = cmdline
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{key}=")))
                .map(|v| parse_cpu_list(v.trim_start_matches("domain,").trim_start_matches("managed_irq,")))
                .unwrap_or_default();
            let missing: Vec<usize> = self
                .cpus
                .iter()
                .copied()
                .filter(|c| !listed.contains(c))
                .collect();
            if missing.is_empty() {
                self.push(Level::Ok, format!("worker cores are in {key}"), None);
            } else {
                let fix = format!("add {key}={} to the kernel command line", join(&self.cpus));
                self.push(
                    Level::Warn,
                    format!("worker core(s) {missing:?} not in {key}: other tasks may run there"),
                    Some(fix),
                );
            }
        }
    }

    /// Locked memory for `need` bytes of UMEM.
    fn memlock(&mut self, need: u64) {
        let Some(limits) = self.read("/proc/self/limits") else {
            return;
        };
        let soft = limits
            .lines()
            .find(|l| l.starts_with("Max locked memory"))
            .and_then(|l| l.split_whitespace().nth(3))
            .map(|v| {
                if v == "unlimited" {
                    u64::MAX
                } else {
                    v.parse().unwrap_or(0)
                }
            });
        match soft {
            Some(have) if have >= need => self.push(Level::Ok, format!("locked memory limit covers the UMEM ({need} bytes)"), None),
            Some(have) => self.push(
                Level::Warn,
                format!("locked memory limit {have} < UMEM {need} bytes: needs CAP_IPC_LOCK (root has it)"),
                Some("ulimit -l unlimited, or LimitMEMLOCK=infinity / AmbientCapabilities=CAP_IPC_LOCK in the unit".into()),
            ),
            None => {}
        }
    }
}

/// sysfs does not expose the attached XDP program, so on the live host ask
/// rtnetlink through `ip`; a fake tree (tests) stands it in with a file.
fn xdp_attached(root: &Path, ifname: &str, dir: &str) -> bool {
    if root != Path::new("/") {
        return read(root, &format!("{dir}/xdp_prog"))
            .is_some_and(|p| !p.trim().is_empty() && p.trim() != "0");
    }
    std::process::Command::new("ip")
        .args(["-d", "-j", "link", "show", "dev", ifname])
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains("\"xdp\":"))
}

fn parse_cpu_list(s: &str) -> Vec<usize> {
    s.split(',')
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) if a <= b => (a..=b).collect(),
                _ => Vec::new(),
            },
            None => part.parse().ok().into_iter().collect(),
        })
        .collect()
}

fn count_cpus(s: &str) -> usize {
    parse_cpu_list(s).len()
}

fn first_free(online: usize, workers: &[usize]) -> usize {
    (0..online.max(1)).find(|c| !workers.contains(c)).unwrap_or(0)
}

fn join(v: &[usize]) -> String {
    v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// Print the findings; return whether none fails.
pub fn report(findings: &[Finding]) -> (String, bool) {
    let mut out = String::new();
    for f in findings {
        let tag = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        let _ = writeln!(out, "{tag} {}", f.what);
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "     fix: {fix}");
        }
    }
    (out, findings.iter().all(|f| f.level != Level::Fail))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake /proc and /sys: a NIC `eth0` (ixgbe, 8 queues, IRQs on cores
    /// 2 and 5), 8 CPUs, isolcpus=2-5.
    fn fake_root() -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "ferrovs-doctor-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        let w = |p: &str, s: &str| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        w("proc/sys/net/core/bpf_jit_enable", "1\n");
        w(
            "proc/net/protocols",
            "protocol  size sockets\nXDP        960      0\nTCP\n",
        );
        w("proc/mounts", "bpf /sys/fs/bpf bpf rw 0 0\n");
        w("proc/cmdline", "BOOT_IMAGE=/vmlinuz isolcpus=2-5 nohz_full=2-5\n");
        w(
            "proc/self/limits",
            "Max locked memory         8388608              8388608              bytes\n",
        );
        w(
            "proc/interrupts",
            " 40:  1  0 IR-PCI-MSI eth0-TxRx-0\n 41:  1  0 IR-PCI-MSI eth0-TxRx-1\n",
        );
        w("proc/irq/40/smp_affinity_list", "2\n");
        w("proc/irq/41/smp_affinity_list", "6\n");
        w("sys/devices/system/cpu/online", "0-7\n");
        w("sys/class/net/eth0/ifindex", "2\n");
        for q in 0..8 {
            std::fs::create_dir_all(root.join(format!("sys/class/net/eth0/queues/rx-{q}"))).unwrap();
        }
        std::fs::create_dir_all(root.join("sys/bus/pci/drivers/ixgbe")).unwrap();
        std::fs::create_dir_all(root.join("sys/class/net/eth0/device")).unwrap();
        std::os::unix::fs::symlink(
            root.join("sys/bus/pci/drivers/ixgbe"),
            root.join("sys/class/net/eth0/device/driver"),
        )
        .unwrap();
        root
    }

    fn opts(root: &Path, queues: u32, cpus: &[usize]) -> Opts {
        Opts {
            place: Placement {
                interface: vec!["eth0".into()],
                config: None,
                queues,
                cpus: cpus.to_vec(),
                frames: 4096,
            },
            root: root.to_path_buf(),
        }
    }

    #[test]
    fn a_well_set_host_passes_and_problems_come_with_fixes() {
        let root = fake_root();
        let (text, ok) = report(&check(&opts(&root, 8, &[2, 3, 4, 5, 6, 7, 0, 1])));
        assert!(
            text.contains("ok   eth0: driver ixgbe has AF_XDP zero-copy"),
            "{text}"
        );
        assert!(text.contains("ok   eth0: 8 queue(s), one per worker"), "{text}");
        // IRQ 40 is on worker core 2: reported with the command that moves it.
        assert!(
            text.contains("warn eth0: IRQ 40 runs on worker core(s) [2]"),
            "{text}"
        );
        assert!(text.contains("fix: echo "), "{text}");
        // Cores 6, 7, 0, 1 are workers but not isolated.
        assert!(
            text.contains("worker core(s) [6, 7, 0, 1] not in isolcpus"),
            "{text}"
        );
        // 8 queues × 8 MiB of UMEM is over an 8 MiB memlock limit.
        assert!(text.contains("locked memory limit 8388608 < UMEM"), "{text}");
        assert!(ok, "warnings only:\n{text}");
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn blocking_problems_fail() {
        let root = fake_root();
        std::fs::write(root.join("sys/class/net/eth0/xdp_prog"), "17\n").unwrap();
        let mut o = opts(&root, 16, &[]);
        o.place.interface.push("nosuch0".into());
        let (text, ok) = report(&check(&o));
        assert!(!ok);
        assert!(
            text.contains("FAIL eth0: 8 receive queue(s), 16 worker(s) wanted"),
            "{text}"
        );
        assert!(text.contains("fix: ethtool -L eth0 combined 16"), "{text}");
        assert!(
            text.contains("FAIL eth0: another XDP program is attached"),
            "{text}"
        );
        assert!(text.contains("FAIL nosuch0: no such interface"), "{text}");
        assert!(text.contains("FAIL worker core 8 does not exist"), "{text}");
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5,7-8"), [0, 1, 2, 5, 7, 8]);
        assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
    }
}
