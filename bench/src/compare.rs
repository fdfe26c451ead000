//! `ferrovs-bench compare` and `sweep`: one run, side by side, on namespaces
//! it builds and removes (on every exit path): a generator namespace (the
//! paced generator of `generator` — live frames, or AF_XDP where the kernel
//! refuses them — whose interface also carries the sink of `parts`) and a
//! device-under-test namespace running, after a measure of the generator's
//! own ceiling (its frames reflected by XDP_TX), in turn:
//!
//! - `xdp-tx`: the in-kernel ceiling: an XDP program swapping MACs (XDP_TX);
//! - `af_xdp-swap`: the AF_XDP ceiling: our steering program and a MAC-swap
//!   loop on the same sockets, ring code and core ferrovs uses;
//! - `nft-dnat`: the kernel path a user without IPVS would pick: IP
//!   forwarding with an nftables `numgen` DNAT rule over the two servers
//!   (an `ip6` table with `--ipv6`);
//! - `ferrovs-dr`, `-nat`, `-tun` (and `-2w`, two workers): `ferrovs daemon`
//!   with rr over two real servers (static neighbours pointing back at the
//!   generator), by each forwarding method, with the XDP fast path on (the
//!   generator's side runs an XDP program, so XDP_TX into the veth works);
//!   `ferrovs-dr-afxdp`, `-nat-afxdp`, `-tun-afxdp` (only when named): the
//!   same with it off, every frame through the AF_XDP workers.
//!
//! With `--ipv6` every row runs over IPv6 (the topology is dual-stack: VIP6
//! 2001:db8:50::100, servers ::11 and ::12).
//!
//! For each: the flat-out (overload) rate, the RFC 2544 loss-free rate,
//! latency at half that rate, CPU per core, and the ratios to the two
//! baselines (`report`). The sink counts only frames rewritten right (MAC,
//! address, checksum), so a forwarder that mangles frames shows as errors,
//! not as throughput.
//!
//! Must not touch: anything outside its namespaces; the daemon is driven
//! through its commands only.

use dataplane::xsk::bench::Pace;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod dut;
mod generator;
mod parts;
mod report;
mod sweep;

use dut::{Nft, ferrovs, sync_master};
pub use generator::{Gen, GenChoice, Ports, choose};
pub use parts::{GenCheckArgs, GenSinkArgs, afxdp_swap, gen_check, gen_sink, kernel_swap, xdp_pass};
use report::Report;
pub use sweep::{FastPaths, Sweep, capacity, connections, sweep};

const GEN_MAC: [u8; 6] = [0x02, 0x42, 0, 0, 0, 0x02];
const DUT_MAC: [u8; 6] = [0x02, 0x42, 0, 0, 0, 0x01];
const RS_MACS: [[u8; 6]; 2] = [[0x02, 0x42, 0, 0, 0, 0x11], [0x02, 0x42, 0, 0, 0, 0x12]];
/// Client addresses start here; flows past 65 536 take the next ones.
const GEN_IP: [u8; 4] = [10, 64, 0, 0];
const GEN_IP6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 0);
const VIP6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0x50, 0, 0, 0, 0, 0x100);
const VIP: [u8; 4] = [10, 50, 0, 100];
const PORT: u16 = 9;

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn mac(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// The two namespaces, removed on drop.
pub(crate) struct Topology {
    pub(crate) gen_ns: String,
    pub(crate) dut_ns: String,
    /// Frames the generator has sent in this topology: where the next
    /// trial's connections start, so each trial's are new.
    first: std::cell::Cell<u64>,
    /// Empty the DUT's conntrack table before each trial (the kernel path's
    /// connection rows: its table, 262 144 entries by default, would fill
    /// from one trial to the next, and the next trial measure only drops).
    pub(crate) flush_conntrack: std::cell::Cell<bool>,
}

impl Topology {
    pub(crate) fn up() -> Result<Self, String> {
        let p = format!("fvb{}", std::process::id());
        let t = Self {
            gen_ns: format!("{p}-gen"),
            dut_ns: format!("{p}-dut"),
            first: std::cell::Cell::new(0),
            flush_conntrack: std::cell::Cell::new(false),
        };
        for ns in [&t.gen_ns, &t.dut_ns] {
            sh(&["ip", "netns", "add", ns])?;
        }
        // Two queues each way at most; the DUT uses as many as it has
        // workers (`queues`), and veth puts a frame on queue (sending CPU
        // mod queues), so a generator on two cores feeds two workers.
        sh(&[
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            &t.gen_ns,
            "numtxqueues",
            "2",
            "numrxqueues",
            "2",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &t.dut_ns,
            "numtxqueues",
            "2",
            "numrxqueues",
            "2",
        ])?;
        for (ns, m, addr) in [
            (&t.gen_ns, GEN_MAC, "10.50.0.2/24"),
            (&t.dut_ns, DUT_MAC, "10.50.0.1/24"),
        ] {
            sh(&["ip", "-n", ns, "link", "set", "eth0", "address", &mac(m)])?;
            sh(&["ip", "-n", ns, "addr", "add", addr, "dev", "eth0"])?;
            sh(&["ip", "-n", ns, "link", "set", "eth0", "up"])?;
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        sh(&[
            "ip",
            "-n",
            &t.dut_ns,
            "addr",
            "add",
            "10.50.0.100/32",
            "dev",
            "eth0",
        ])?;
        // The clients, for the kernel path's answers (nft DNAT): behind
        // the generator.
        sh(&[
            "ip",
            "-n",
            &t.dut_ns,
            "route",
            "add",
            "10.64.0.0/16",
            "via",
            "10.50.0.2",
        ])?;
        for (ns, addr) in [
            (&t.gen_ns, "2001:db8:50::2/64"),
            (&t.dut_ns, "2001:db8:50::1/64"),
            (&t.dut_ns, "2001:db8:50::100/128"),
        ] {
            sh(&["ip", "-n", ns, "addr", "add", addr, "dev", "eth0", "nodad"])?;
        }
        // The "real servers" are the generator's side: their MACs lead back
        // to its interface, where the sink tells them apart.
        for (i, m) in RS_MACS.iter().chain(RS_MACS.iter()).enumerate() {
            let ip = if i < 2 {
                format!("10.50.0.{}", 11 + i)
            } else {
                format!("2001:db8:50::{}", 9 + i)
            };
            sh(&[
                "ip",
                "-n",
                &t.dut_ns,
                "neigh",
                "replace",
                &ip,
                "lladdr",
                &mac(*m),
                "dev",
                "eth0",
                "nud",
                "permanent",
            ])?;
        }
        t.queues(1)?;
        Ok(t)
    }
}

impl Topology {
    /// With preferred busy polling (`us` > 0), pair it on the DUT's
    /// interface with what `scripts/tune-host.sh --busy-poll` sets on a
    /// director (napi_defer_hard_irqs 2, gro_flush_timeout 200 µs): the
    /// queue's receive work then runs in the worker's own syscalls. Without
    /// the pair, a worker whose TX makes receive work on its own core (NAT:
    /// the servers' answers) was starved by it under overload (measured:
    /// 1-2 % of its loss-free rate delivered, flat out).
    pub(crate) fn busy_poll(&self, us: u32) -> Result<(), String> {
        let (defer, flush) = if us > 0 { ("2", "200000") } else { ("0", "0") };
        for (file, v) in [("napi_defer_hard_irqs", defer), ("gro_flush_timeout", flush)] {
            let path = format!("/sys/class/net/eth0/{file}");
            sh(&[
                "ip",
                "netns",
                "exec",
                &self.dut_ns,
                "sh",
                "-c",
                &format!("echo {v} > {path}"),
            ])?;
        }
        Ok(())
    }

    /// Give the DUT's interface `n` queues (set before a forwarder starts).
    /// The generator's side sends on as many: veth takes an XDP program only
    /// while it has no fewer receive queues than its peer sends on.
    fn queues(&self, n: u32) -> Result<(), String> {
        let n = n.to_string();
        let ethtool = |ns: &str, what: &[&str]| {
            let mut args = vec!["ip", "netns", "exec", ns, "ethtool", "-L", "eth0"];
            args.extend_from_slice(what);
            sh(&args)
        };
        ethtool(&self.gen_ns, &["tx", &n])?;
        ethtool(&self.dut_ns, &["rx", &n, "tx", &n])
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.gen_ns, &self.dut_ns] {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A process in a namespace, killed on drop.
pub(crate) struct Bg(pub(crate) Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn me() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "ferrovs-bench".into())
}

pub(crate) fn ferrovs_bin() -> String {
    std::env::var("FERROVS_BIN").unwrap_or_else(|_| {
        let exe = std::env::current_exe().unwrap_or_default();
        exe.with_file_name("ferrovs").display().to_string()
    })
}

/// The ferrovs daemon on the DUT's eth0 with control socket `sock` and
/// `more` flags.
pub(crate) fn spawn_daemon(t: &Topology, sock: &str, more: &[&str]) -> Result<Bg, String> {
    let bin = ferrovs_bin();
    let mut args = vec![bin.as_str(), "daemon", "-i", "eth0", "--socket", sock];
    args.extend_from_slice(more);
    spawn_in(&t.dut_ns, &args)
}

pub(crate) fn spawn_in(ns: &str, args: &[&str]) -> Result<Bg, String> {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .map(Bg)
        .map_err(|e| format!("start {}: {e}", args[0]))
}

/// One trial: the generator in the generator namespace for a while, paced
/// or flat out, and what its sink saw.
#[derive(Debug, Clone, Copy, Default)]
struct Trial {
    /// Frames per second sent (with the servers' answers, where the sink
    /// gives them) and delivered (to a known MAC).
    sent: f64,
    delivered: f64,
    /// Of `sent`, the generator's own frames per second.
    client: f64,
    /// Frames that came back wrong (unknown MAC, bad IPv4 checksum).
    errors: u64,
    /// Latency percentiles in ns (p50, p99, p99.9), when stamped.
    latency: Option<[u64; 3]>,
}

impl Trial {
    /// Share of sent frames not delivered (errors count as lost).
    fn loss(&self) -> f64 {
        if self.sent <= 0.0 {
            return 1.0;
        }
        (1.0 - self.delivered / self.sent).max(0.0)
    }
}

/// The destination address a forwarded frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dst {
    /// Still the VIP (DR).
    Vip,
    /// The real server's (NAT, TUN's outer header, DNAT).
    Rip,
}

/// Where a forwarder sends what it forwards, so where the sink looks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Back {
    /// To the real servers' MACs (a load balancer), with this destination
    /// address.
    Servers(Dst),
    /// Back to the generator (a MAC swap).
    Sender,
    /// To the real servers (their address), which answer through the
    /// forwarder back to the client (NAT, DNAT: connections).
    Answered,
}

/// Run the generator and sink in the generator namespace for `secs`.
fn trial(t: &Topology, secs: f64, o: &Opts, pace: Pace, back: Back) -> Result<Trial, String> {
    if t.flush_conntrack.get() {
        // conntrack -F says how many it deleted on stderr.
        sh(&["ip", "netns", "exec", &t.dut_ns, "conntrack", "-F"])
            .map_err(|e| format!("{e} (conntrack, from Debian's conntrack package, empties the table)"))?;
    }
    let cpu = o.gen_cpu.map(|c| c.to_string());
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &t.gen_ns,
            &me(),
            "gen-sink",
            &secs.to_string(),
            &o.flows.to_string(),
            &pace.rate.to_string(),
            if pace.stamp { "1" } else { "0" },
            match back {
                Back::Servers(_) => "servers",
                Back::Sender => "sender",
                Back::Answered => "answered",
            },
            o.traffic.name(),
            &o.size.to_string(),
            &o.gen_threads.to_string(),
            if o.ipv6 { "6" } else { "4" },
            match back {
                Back::Servers(Dst::Vip) | Back::Sender => "vip",
                Back::Servers(Dst::Rip) | Back::Answered => "rip",
            },
            o.generator.name(),
            o.ports.name(),
        ])
        .args(cpu.iter().flat_map(|c| ["--cpu", c.as_str()]))
        .args(["--first", &t.first.get().to_string()])
        .args(
            o.clients_from
                .iter()
                .flat_map(|c| ["--clients-from".to_string(), c.to_string()]),
        )
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("gen-sink: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "gen-sink: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let [sent, got, errors, elapsed, p50, p99, p999, frames] = v[..] else {
        return Err(format!("gen-sink said {text:?}"));
    };
    // The next trial's connections start after this one's.
    t.first.set(t.first.get() + frames as u64);
    Ok(Trial {
        sent: sent / elapsed,
        delivered: got / elapsed,
        client: frames / elapsed,
        errors: errors as u64,
        latency: (p50 > 0.0).then_some([p50 as u64, p99 as u64, p999 as u64]),
    })
}

/// Busy and total jiffies per CPU, from /proc/stat.
fn cpu_times() -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|w| w.parse().ok())
                .collect();
            let total: u64 = v.iter().take(8).sum();
            // idle and iowait
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

/// Percent busy per CPU between two [`cpu_times`] readings.
fn cpu_busy(before: &[(u64, u64)], after: &[(u64, u64)]) -> Vec<f64> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| {
            let total = a.1.saturating_sub(b.1).max(1) as f64;
            100.0 * a.0.saturating_sub(b.0) as f64 / total
        })
        .collect()
}

const INTERRUPTED: &str = "interrupted; namespaces removed";

/// Loss under which a rate counts as loss-free (RFC 2544 asks for none; a
/// software generator on a shared box needs this much slack).
const LOSS_FREE: f64 = 0.001;

/// What the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Traffic {
    /// UDP datagrams.
    Udp,
    /// TCP SYNs only (a new connection each, as in a SYN flood).
    Syn,
    /// TCP established flows: one SYN per flow, then ACK segments.
    Tcp,
    /// New TCP connections (RFC 9693's establishment): SYN, the server's
    /// SYN-ACK, ACK, each on a new flow.
    Cps,
    /// TCP connections opened and closed: SYN, SYN-ACK, ACK, then FIN|ACK,
    /// the server's FIN|ACK, ACK, each on a new flow.
    Teardown,
}

impl Traffic {
    fn name(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Syn => "syn",
            Self::Tcp => "tcp",
            Self::Cps => "cps",
            Self::Teardown => "teardown",
        }
    }

    /// Frames the client sends per connection (0: not connections).
    pub fn per_connection(self) -> u32 {
        match self {
            Self::Cps => 2,
            Self::Teardown => 4,
            _ => 0,
        }
    }
}

/// The runner's settings.
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    /// Seconds of the flat-out (overload) run of each forwarder.
    pub secs: f64,
    /// Seconds of each trial of the loss-free search and the latency run.
    pub trial: f64,
    /// Trials of the loss-free search at most.
    pub steps: u32,
    /// Client flows the generator cycles through.
    pub flows: u32,
    /// What it sends, and how large each frame is on the wire.
    pub traffic: Traffic,
    pub size: usize,
    /// Generator threads, one per core (2 to feed two DUT queues).
    pub gen_threads: u32,
    /// IPv6 frames (to VIP 2001:db8:50::100 from 2001:db8:64::/48).
    pub ipv6: bool,
    /// Preferred busy polling (µs per syscall) for the AF_XDP rows, ferrovs
    /// and the swap alike; 0: off.
    pub busy_poll_us: u32,
    /// The generator, chosen once for the run ([`choose`]).
    pub generator: Gen,
    /// The order of the client ports.
    pub ports: Ports,
    /// The CPU of a single generator thread (default: the last, away from
    /// the first worker's).
    pub gen_cpu: Option<usize>,
    /// The first client address, IPv4 (default 10.64.0.0).
    pub clients_from: Option<std::net::Ipv4Addr>,
}

/// The generator of a run: which, why, and what it can offer.
#[derive(Debug, Clone)]
struct GenInfo {
    kind: Gen,
    why: String,
    /// Flat out against an in-kernel XDP_TX reflection, one generator
    /// thread: frames per second sent and reflected back.
    ceiling: (f64, f64),
}

/// Measure the generator's ceiling: flat out, one thread, its frames
/// reflected straight back by the in-kernel XDP_TX swap, so nothing but the
/// generator (and its sink) limits the rate.
fn ceiling(t: &Topology, o: &Opts, why: &str, stop: &AtomicBool) -> Result<GenInfo, String> {
    eprintln!(
        "[0] generator {} ({why}): its ceiling, frames reflected by XDP_TX …",
        o.generator.name()
    );
    t.queues(1)?;
    t.busy_poll(0)?;
    let _dut = spawn_in(&t.dut_ns, &[&me(), "kernel-swap"])?;
    std::thread::sleep(Duration::from_millis(500));
    let o = Opts { gen_threads: 1, ..*o };
    let flat = trial(t, o.secs, &o, Pace::default(), Back::Sender)?;
    if stop.load(Ordering::Relaxed) {
        return Err(INTERRUPTED.to_string());
    }
    eprintln!(
        "  sent {:.3} Mpps, reflected {:.3} Mpps",
        flat.sent / 1e6,
        flat.delivered / 1e6
    );
    Ok(GenInfo {
        kind: o.generator,
        why: why.to_string(),
        ceiling: (flat.sent, flat.delivered),
    })
}

/// Everything measured of one forwarder.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    /// Flat out: offered and delivered frames per second, errors.
    offered: f64,
    overload: f64,
    errors: u64,
    /// Highest paced rate delivered with under [`LOSS_FREE`] loss.
    loss_free: f64,
    /// p50, p99, p99.9 in ns at half the loss-free rate.
    latency: Option<[u64; 3]>,
    /// Offered twice the loss-free rate (or what the generator can, if
    /// less): that rate, and what was delivered.
    twice: Option<(f64, f64)>,
    /// Client frames per connection (0: not connections), and the
    /// generator's own frames per second at the loss-free rate, for the
    /// connection rates.
    per_conn: u32,
    client_loss_free: f64,
    /// Percent busy per CPU during the flat-out run.
    cpu: Vec<f64>,
}

/// RFC 2544's search over the rates the generator is asked for, from
/// what the forwarder managed flat out (`flat`), between 0 and what the
/// generator sent flat out, in at most `steps` trials of `paced` (a trial
/// at that generator rate): the highest rate offered with under
/// [`LOSS_FREE`] loss, and the generator's own frames per second at it (0s:
/// none).
fn loss_free(
    paced: &dyn Fn(f64) -> Result<Trial, String>,
    flat: &Trial,
    steps: u32,
) -> Result<(f64, f64), String> {
    // A paced generator sharing its core with the DUT sends
    // less than it is asked for: the rate reported is what it sent. The
    // generator is paced in its own frames; with the servers' answers
    // counted too, what was offered is more (`own` scales one to the other).
    let own = if flat.sent > 0.0 {
        flat.client / flat.sent
    } else {
        1.0
    };
    let (mut lo, mut hi) = (0.0f64, flat.client);
    let mut rate = flat.delivered.min(flat.sent) * own;
    let (mut best, mut client_loss_free) = (0.0f64, 0.0f64);
    for _ in 0..steps {
        if rate < 1000.0 {
            break;
        }
        let r = paced(rate)?;
        let pass = r.loss() < LOSS_FREE;
        eprintln!(
            "  paced {:.3} Mpps: sent {:.3}, loss {:.3}% {}",
            rate / 1e6,
            r.sent / 1e6,
            100.0 * r.loss(),
            if pass { "ok" } else { "" }
        );
        if pass {
            if r.sent > best {
                (best, client_loss_free) = (r.sent, r.client);
            }
            lo = rate;
        } else {
            hi = rate;
        }
        if hi - lo < hi * 0.02 {
            break;
        }
        rate = (lo + hi) / 2.0;
    }
    Ok((best, client_loss_free))
}

/// Measure one forwarder, already running in the DUT namespace: flat out,
/// then the loss-free search, then latency at half that rate.
fn characterize(t: &Topology, name: &str, back: Back, o: &Opts, stop: &AtomicBool) -> Result<Row, String> {
    let trial = |secs: f64, pace: Pace| {
        let r = trial(t, secs, o, pace, back)?;
        if stop.load(Ordering::Relaxed) {
            return Err(INTERRUPTED.to_string());
        }
        Ok(r)
    };
    let before = cpu_times();
    let flat = trial(o.secs, Pace::default())?;
    let cpu = cpu_busy(&before, &cpu_times());
    eprintln!(
        "  flat out: offered {:.3} Mpps, delivered {:.3} Mpps, cpu {}",
        flat.sent / 1e6,
        flat.delivered / 1e6,
        cpu.iter()
            .map(|c| format!("{c:.0}%"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let paced = |rate: f64| {
        trial(
            o.trial,
            Pace {
                rate,
                ..Pace::default()
            },
        )
    };
    let (best, client_loss_free) = loss_free(&paced, &flat, o.steps)?;
    // Connections carry their numbers in seq and ack, not a send time.
    let latency = if best > 0.0 && o.traffic.per_connection() == 0 {
        let r = trial(
            o.trial,
            Pace {
                rate: client_loss_free / 2.0,
                stamp: true,
                ..Pace::default()
            },
        )?;
        r.latency.map(|l| (l, r.sent))
    } else {
        None
    };
    // Overload without collapse: offered twice the loss-free rate, how
    // much does it still deliver?
    let twice = if best > 0.0 {
        let r = trial(
            o.trial,
            Pace {
                rate: (2.0 * client_loss_free).min(flat.client),
                ..Pace::default()
            },
        )?;
        eprintln!(
            "  offered {:.3} Mpps (2x loss-free): delivered {:.3}",
            r.sent / 1e6,
            r.delivered / 1e6
        );
        Some((r.sent, r.delivered))
    } else {
        None
    };
    if let Some(([p50, p99, p999], sent)) = latency {
        eprintln!(
            "  latency at {:.3} Mpps: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
            sent / 1e6,
            p50 as f64 / 1e3,
            p99 as f64 / 1e3,
            p999 as f64 / 1e3
        );
    }
    Ok(Row {
        name: name.to_string(),
        offered: flat.sent,
        overload: flat.delivered,
        errors: flat.errors,
        loss_free: best,
        latency: latency.map(|l| l.0),
        twice,
        per_conn: o.traffic.per_connection(),
        client_loss_free,
        cpu,
    })
}

/// The runner.
pub fn run(o: &Opts, why: &str, only: &[&str], json: Option<&str>, svg: Option<&str>) -> Result<(), String> {
    refuse_connections(o)?;
    // `--rows`: measure only these (the ratios need their baselines).
    let want = |name: &str| only.is_empty() || only.contains(&name);
    // SIGINT or SIGTERM ends the run after the current measurement, through
    // the drops that remove the namespaces (a signal's default would skip
    // them). Ctrl-C also stops the children, which ends that one early.
    let stop = term_flag();
    let interrupted = || {
        if stop.load(Ordering::Relaxed) {
            Err(INTERRUPTED.to_string())
        } else {
            Ok(())
        }
    };
    let t = Topology::up()?;
    let generator = ceiling(&t, o, why, &stop)?;
    let mut rows = Vec::new();
    if want("xdp-tx") {
        eprintln!("[1/9] xdp-tx: in-kernel XDP_TX swap …");
        let _dut = spawn_in(&t.dut_ns, &[&me(), "kernel-swap"])?;
        std::thread::sleep(Duration::from_millis(500));
        rows.push(characterize(&t, "xdp-tx", Back::Sender, o, &stop)?);
        interrupted()?;
    }
    if want("af_xdp-swap") {
        eprintln!("[2/9] af_xdp-swap: AF_XDP MAC swap (the ceiling on these sockets) …");
        t.busy_poll(o.busy_poll_us)?;
        let _dut = spawn_in(&t.dut_ns, &[&me(), "afxdp-swap", &o.busy_poll_us.to_string()])?;
        std::thread::sleep(Duration::from_millis(800));
        rows.push(characterize(&t, "af_xdp-swap", Back::Sender, o, &stop)?);
        interrupted()?;
    }
    if want("nft-dnat") {
        eprintln!("[3/9] nft-dnat: nftables numgen DNAT (the kernel's forwarding path) …");
        // No busy poller here: deferred NAPI would only wait for its timer.
        t.busy_poll(0)?;
        let _nft = Nft::load(&t.dut_ns, o.ipv6)?;
        // veth takes frames redirected by XDP only into a NAPI context,
        // which an XDP program sets up: ferrovs' steering program with no
        // service passes every frame to this path, as it would beside ferrovs.
        let _pass = spawn_in(&t.dut_ns, &[&me(), "xdp-pass"])?;
        std::thread::sleep(Duration::from_millis(500));
        rows.push(characterize(&t, "nft-dnat", Back::Servers(Dst::Rip), o, &stop)?);
        interrupted()?;
    }
    let methods = [
        ("dr", "-g", Dst::Vip),
        ("nat", "-m", Dst::Rip),
        ("tun", "-i", Dst::Rip),
    ];
    for (workers, (i, (method, flag, dst))) in [1, 2]
        .into_iter()
        .flat_map(|w| methods.into_iter().enumerate().map(move |m| (w, m)))
    {
        let step = 4 + i + 3 * (workers as usize - 1);
        let name = if workers == 1 {
            format!("ferrovs-{method}")
        } else {
            format!("ferrovs-{method}-{workers}w")
        };
        if !want(&name) {
            continue;
        }
        eprintln!("[{step}/9] {name}, {workers} worker(s) …");
        // Two workers need two queues fed: the generator runs on two cores.
        let o = Opts {
            gen_threads: workers,
            ..*o
        };
        let _dut = ferrovs(&t, &o, flag, (2, true), "rr", (1 << 20, None))?;
        rows.push(characterize(&t, &name, Back::Servers(dst), &o, &stop)?);
        interrupted()?;
    }
    // Only when named: the same without the fast path.
    for (method, flag, dst) in methods {
        let name = format!("ferrovs-{method}-afxdp");
        if !only.contains(&name.as_str()) {
            continue;
        }
        eprintln!("[extra] {name}: no fast path …");
        let _dut = ferrovs(&t, o, flag, (2, false), "rr", (1 << 20, None))?;
        rows.push(characterize(&t, &name, Back::Servers(dst), o, &stop)?);
        interrupted()?;
    }
    // Only when named: DR with a connection sync master running (its
    // messages go out on lo, so the sink sees only forwarded frames).
    if only.contains(&"ferrovs-dr-sync") {
        eprintln!("[extra] ferrovs-dr-sync: DR with a sync master …");
        let dut = ferrovs(&t, o, "-g", (2, true), "rr", (1 << 20, None))?;
        sync_master(&t)?;
        rows.push(characterize(
            &t,
            "ferrovs-dr-sync",
            Back::Servers(Dst::Vip),
            o,
            &stop,
        )?);
        drop(dut);
        interrupted()?;
    }
    Report::new(rows, o, generator).publish(json, svg)
}

/// Connection traffic needs the servers' answers and new flows each
/// trial, which `connections` arranges: the other runs refuse it.
fn refuse_connections(o: &Opts) -> Result<(), String> {
    if o.traffic.per_connection() > 0 {
        return Err(format!(
            "--traffic {}: run `ferrovs-bench connections` (it answers as the servers and opens new flows each trial)",
            o.traffic.name()
        ));
    }
    Ok(())
}

fn term_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
    flag
}
