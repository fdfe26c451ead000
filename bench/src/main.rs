//! `ferrovs-bench`: the benchmark harness.
//!
//! Owns: traffic generation, sinks and side-by-side comparisons: `compare`
//! (namespaces, a paced generator of live frames or AF_XDP, counting and
//! timing sink, loss-free search, one row per forwarder), `sweep` (the same for ferrovs
//! over flow and real-server counts), `export` (the scenario for TRex and
//! pktgen-dpdk) and `forwarder`, the per-packet cost of the hot path
//! (`dataplane::Forwarder::handle`: parse, service lookup, connection
//! lookup, rewrite) for DR, NAT and TUN side by side, over frames in memory
//! with no socket in the way, so a change to the hot path can be measured
//! before and after.
//!
//! Must not touch: the daemon's control plane (it drives the daemon through
//! its commands, as an operator would) or the host's settings (everything
//! happens in namespaces it makes and removes).

use clap::{Args, Parser};
use dataplane::{Forwarder, Verdict};
use ferrovs_bench::{Buf, frame, frame6, setup_family};
use std::process::ExitCode;
use std::time::Instant;

mod checks;
mod compare;
mod export;
mod plot;

/// The benchmark harness (root: `compare` and `sweep` build their own
/// namespaces).
#[derive(Debug, Parser)]
#[command(name = "ferrovs-bench")]
enum Cli {
    /// Hot-path cost per packet, DR/NAT/TUN side by side, in memory.
    Forwarder {
        /// Established flows.
        #[arg(default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=65535))]
        flows: u64,
        /// Packets per method.
        #[arg(default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(10..))]
        packets: u64,
        /// The same methods over IPv6 too, side by side (DR6, NAT6, TUN6).
        #[arg(long)]
        ipv6: bool,
    },
    /// Every forwarder side by side: overload and loss-free rates, latency,
    /// CPU.
    Compare {
        #[command(flatten)]
        run: RunArgs,
        /// Only these rows (comma-separated names).
        #[arg(long, value_delimiter = ',')]
        rows: Vec<String>,
    },
    /// ferrovs DR over flow or real-server counts.
    Sweep {
        /// What to vary.
        #[arg(value_enum)]
        what: compare::Sweep,
        /// The points (default: 1000,100000,1000000,10000000 flows or
        /// 2,16,256,4096 servers).
        #[arg(long, value_delimiter = ',')]
        points: Vec<u64>,
        /// The XDP fast path at each point: on, off (rows `… -afxdp`) or
        /// both.
        #[arg(long, value_enum, default_value_t = compare::FastPaths::On)]
        fast_path: compare::FastPaths,
        #[command(flatten)]
        run: RunArgs,
    },
    /// ferrovs DR with its connection table full: memory per connection,
    /// time to fill, forwarding rates while full.
    Capacity {
        /// Connections to hold (the table is sized a quarter over).
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
        conns: u32,
        #[command(flatten)]
        run: RunArgs,
    },
    /// New TCP connections a second, and connections opened and closed a
    /// second (RFC 9693), for nft DNAT, ferrovs DR and ferrovs NAT.
    Connections {
        #[command(flatten)]
        run: RunArgs,
    },
    /// keepalived-style health checks at scale: N real servers with
    /// TCP_CHECK through a ferrovs daemon; how late checks start against
    /// their delay_loop, and the CPU of the checks' thread.
    Checks {
        /// Real servers (one port each on the server namespace).
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=20000))]
        servers: u32,
        /// Of those, how many have nothing listening (refused at once).
        #[arg(long, default_value_t = 0)]
        dead: u32,
        /// keepalived's delay_loop, seconds.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=60))]
        delay_loop: u32,
        /// Seconds measured (after every check has run once).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(2..=3600))]
        seconds: u64,
    },
    /// The scenario for a hardware generator.
    Export {
        /// TRex (STL) or pktgen-dpdk.
        #[arg(value_enum)]
        format: Format,
        /// Client flows.
        #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        flows: u64,
        /// Frame size on the wire.
        #[arg(long, default_value_t = 64, value_parser = size_parser())]
        size: usize,
        /// What to send.
        #[arg(long, value_enum, default_value_t = compare::Traffic::Udp)]
        traffic: compare::Traffic,
        /// The VIP.
        #[arg(long, default_value = "10.50.0.100")]
        vip: std::net::Ipv4Addr,
        /// The director's MAC.
        #[arg(long, default_value = "02:42:00:00:00:01", value_parser = mac)]
        dst_mac: String,
    },
    /// (inside the generator namespace) one trial's generator and sink.
    #[command(hide = true)]
    GenSink(compare::GenSinkArgs),
    /// (in a test's namespace) the generator and sink on their own.
    #[command(hide = true)]
    GenCheck(compare::GenCheckArgs),
    /// (inside the DUT namespace) the in-kernel XDP_TX swap.
    #[command(hide = true)]
    KernelSwap,
    /// (inside the DUT namespace) the AF_XDP swap.
    #[command(hide = true)]
    AfxdpSwap {
        /// Preferred busy polling, µs.
        #[arg(default_value_t = 0)]
        busy_poll_us: u32,
    },
    /// (inside the DUT namespace) the steering program alone.
    #[command(hide = true)]
    XdpPass,
}

/// The options `compare` and `sweep` share.
#[derive(Debug, Args)]
struct RunArgs {
    /// Seconds of the flat-out (overload) run of each forwarder.
    #[arg(long = "seconds", default_value_t = 3.0)]
    secs: f64,
    /// Seconds of each trial of the loss-free search.
    #[arg(long, default_value_t = 1.0)]
    trial: f64,
    /// Trials of the loss-free search at most.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=30))]
    steps: u32,
    /// Client flows (client ports, then client addresses).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    flows: u32,
    /// What the generator sends.
    #[arg(long, value_enum, default_value_t = compare::Traffic::Udp)]
    traffic: compare::Traffic,
    /// Frame size on the wire, 64 to 1518 (IPv6: 84 at least).
    #[arg(long, default_value_t = 64, value_parser = size_parser())]
    size: usize,
    /// IPv6 frames.
    #[arg(long)]
    ipv6: bool,
    /// Preferred busy polling for the AF_XDP rows, µs per syscall.
    #[arg(long, default_value_t = 0)]
    busy_poll_us: u32,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<String>,
    /// Write a bar chart here.
    #[arg(long)]
    svg: Option<String>,
    /// The generator: live frames where the kernel allows them (`auto`),
    /// or one named.
    #[arg(long, value_enum, default_value_t = compare::GenChoice::Auto)]
    generator: compare::GenChoice,
    /// The order of the flows' client ports: pseudorandom (RFC 4814) or
    /// sequential.
    #[arg(long, value_enum, default_value_t = compare::Ports::Pseudorandom)]
    ports: compare::Ports,
    /// Pin the (single-thread) generator to this CPU; default the last,
    /// away from the first worker's. 0 puts it, and the receive work its
    /// sends cause, on the worker's core (a director that shares its core
    /// with the kernel's receive path).
    #[arg(long)]
    gen_cpu: Option<usize>,
}

impl RunArgs {
    /// The run's settings, with the generator chosen on this kernel, and
    /// why it was.
    fn opts(&self) -> Result<(compare::Opts, String), String> {
        let (generator, why) = compare::choose(self.generator)?;
        Ok((self.settings(generator), why))
    }

    fn settings(&self, generator: compare::Gen) -> compare::Opts {
        compare::Opts {
            secs: self.secs,
            trial: self.trial,
            steps: self.steps,
            flows: self.flows,
            traffic: self.traffic,
            // IPv6's stamped UDP frame needs 84 bytes on the wire.
            size: if self.ipv6 { self.size.max(84) } else { self.size },
            gen_threads: 1,
            ipv6: self.ipv6,
            busy_poll_us: self.busy_poll_us,
            generator,
            ports: self.ports,
            gen_cpu: self.gen_cpu,
            clients_from: None,
        }
    }
}

/// Export formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// A TRex STL profile (Python).
    Trex,
    /// A pktgen-dpdk Lua script.
    Pktgen,
}

fn size_parser() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(64..=1518)
}

fn mac(s: &str) -> Result<String, String> {
    host::parse_mac(s)
        .map(|_| s.to_string())
        .ok_or_else(|| format!("{s} is not a MAC address (aa:bb:cc:dd:ee:ff)"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli {
        Cli::Forwarder { flows, packets, ipv6 } => {
            forwarder(*flows as usize, *packets as usize, *ipv6);
            Ok(())
        }
        Cli::Compare { run, rows } => {
            let only: Vec<&str> = rows.iter().map(String::as_str).collect();
            run.opts()
                .and_then(|(o, why)| compare::run(&o, &why, &only, run.json.as_deref(), run.svg.as_deref()))
        }
        Cli::Checks {
            servers,
            dead,
            delay_loop,
            seconds,
        } => checks::run(*servers, *dead, *delay_loop, *seconds),
        Cli::Connections { run } => run
            .opts()
            .and_then(|(o, why)| compare::connections((&o, &why), run.json.as_deref(), run.svg.as_deref())),
        Cli::Capacity { conns, run } => run.opts().and_then(|(o, why)| {
            compare::capacity(*conns, (&o, &why), run.json.as_deref(), run.svg.as_deref())
        }),
        Cli::Sweep {
            what,
            points,
            fast_path,
            run,
        } => {
            let default: &[u64] = match what {
                compare::Sweep::Flows => &[1000, 100_000, 1_000_000, 10_000_000],
                compare::Sweep::Servers => &[2, 16, 256, 4096],
            };
            let points = if points.is_empty() { default } else { points };
            run.opts().and_then(|(o, why)| {
                compare::sweep(
                    (*what, *fast_path),
                    points,
                    (&o, &why),
                    run.json.as_deref(),
                    run.svg.as_deref(),
                )
            })
        }
        Cli::Export { traffic, .. }
            if matches!(traffic, compare::Traffic::Cps | compare::Traffic::Teardown) =>
        {
            Err(format!(
                "export --traffic {}: connections need the sink answering as the server, which only \
             `ferrovs-bench connections` has; export udp, syn or tcp",
                if *traffic == compare::Traffic::Cps {
                    "cps"
                } else {
                    "teardown"
                }
            ))
        }
        Cli::Export {
            format,
            flows,
            size,
            traffic,
            vip,
            dst_mac,
        } => {
            let s = export::Scenario {
                flows: *flows,
                size: *size,
                traffic: *traffic,
                vip: vip.to_string(),
                dst_mac: dst_mac.clone(),
            };
            match format {
                Format::Trex => print!("{}", export::trex(&s)),
                Format::Pktgen => print!("{}", export::pktgen(&s)),
            }
            Ok(())
        }
        Cli::GenSink(a) => compare::gen_sink(a),
        Cli::GenCheck(a) => compare::gen_check(a),
        Cli::KernelSwap => compare::kernel_swap(),
        Cli::AfxdpSwap { busy_poll_us } => compare::afxdp_swap(*busy_poll_us),
        Cli::XdpPass => compare::xdp_pass(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrovs-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn forwarder(flows: usize, packets: usize, ipv6: bool) {
    let flows = flows.clamp(1, usize::from(u16::MAX));
    let frames: Vec<Vec<u8>> = (0..flows as u16).map(|p| frame(p, false).to_vec()).collect();
    let frames6: Vec<Vec<u8>> = (0..flows as u16).map(|p| frame6(p, false).to_vec()).collect();
    let mut methods = vec![("DR", "-g", false), ("NAT", "-m", false), ("TUN", "-i", false)];
    if ipv6 {
        methods.extend([("DR6", "-g", true), ("NAT6", "-m", true), ("TUN6", "-i", true)]);
    }
    let mut fwds: Vec<Forwarder> = methods
        .iter()
        .map(|(_, m, v6)| setup_family(m, flows, *v6))
        .collect();
    let mut ns = vec![0f64; methods.len()];
    let mut buf = Buf::default();
    // Interleave rounds so that noise on a shared machine hits every row.
    const ROUNDS: usize = 10;
    for _ in 0..ROUNDS {
        for (k, fwd) in fwds.iter_mut().enumerate() {
            let frames = if methods[k].2 { &frames6 } else { &frames };
            let n = packets / ROUNDS;
            let start = Instant::now();
            for i in 0..n {
                // Every method gets a fresh copy of the frame (NAT and TUN
                // change it), so the copy costs all of them the same.
                buf.load(&frames[i % flows]);
                assert_eq!(fwd.handle(&mut buf, 0, 1), Verdict::Tx(0));
            }
            ns[k] += start.elapsed().as_secs_f64() * 1e9 / n as f64 / ROUNDS as f64;
        }
    }
    println!(
        "forwarder, one core, {flows} established flows, 64-byte frames (84 for IPv6), {packets} packets per method:"
    );
    println!(
        "{:<6} {:>12} {:>10} {:>8}",
        "method", "ns/packet", "Mpps", "vs DR"
    );
    for (k, (name, _, _)) in methods.iter().enumerate() {
        println!(
            "{:<6} {:>12.1} {:>10.2} {:>8.2}",
            name,
            ns[k],
            1e3 / ns[k],
            ns[0] / ns[k]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_is_an_error_not_a_default() {
        let parse = |line: &str| Cli::try_parse_from(line.split_whitespace());
        assert!(parse("ferrovs-bench compare --seconds 2 --flows 16").is_ok());
        for bad in [
            "ferrovs-bench compare --flows many",
            "ferrovs-bench compare --traffic icmp",
            "ferrovs-bench compare --size 9000",
            "ferrovs-bench sweep servers --points 2,x",
            "ferrovs-bench export trex --dst-mac 02:00",
            "ferrovs-bench gen-sink 1 16 0 1 servers udp 64 1 5 vip",
            "ferrovs-bench forwarder 0",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let Ok(Cli::Sweep { points, .. }) = parse("ferrovs-bench sweep flows --points 1,2") else {
            panic!("sweep")
        };
        assert_eq!(points, [1, 2]);
    }
}
