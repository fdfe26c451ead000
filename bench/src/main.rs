//! `ferrovs-bench`: the benchmark harness.
//!
//! Owns: traffic generation, sinks and side-by-side comparisons: `compare`
//! (namespaces, paced live-frame generator, counting and timing sink,
//! loss-free search, one row per forwarder), `sweep` (the same for ferrovs
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

use dataplane::{Forwarder, Verdict};
use ferrovs_bench::{Buf, frame, setup};
use std::time::Instant;

mod compare;
mod export;
mod plot;

const USAGE: &str = "\
usage: ferrovs-bench forwarder [FLOWS] [PACKETS]
       ferrovs-bench compare [--seconds S] [--trial S] [--steps N] [--flows N] [--traffic udp|syn|tcp]
                             [--size BYTES] [--ipv6] [--busy-poll-us US] [--rows NAME,NAME,...]
                             [--json FILE] [--svg FILE]
       ferrovs-bench sweep flows|servers [--points N,N,...] [compare's options]
       ferrovs-bench export trex|pktgen [--flows N] [--size BYTES] [--traffic udp|syn|tcp]
                             [--vip ADDR] [--dst-mac MAC]   (the scenario for a hardware generator)
                             (root: builds its own namespaces)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("forwarder") => {
            let num = |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
            forwarder(num(1, 1024), num(2, 10_000_000));
        }
        Some("compare" | "sweep") => {
            let text = |name: &str| {
                args.iter()
                    .position(|a| a == name)
                    .and_then(|i| args.get(i + 1))
                    .map(String::as_str)
            };
            let opt = |name: &str, default: f64| text(name).and_then(|v| v.parse().ok()).unwrap_or(default);
            let o = compare::Opts {
                secs: opt("--seconds", 3.0),
                trial: opt("--trial", 1.0),
                steps: opt("--steps", 7.0) as u32,
                flows: opt("--flows", 1024.0) as u32,
                traffic: match text("--traffic").map_or(Some(compare::Traffic::Udp), compare::Traffic::parse)
                {
                    Some(t) => t,
                    None => {
                        eprintln!("ferrovs-bench: --traffic is udp, syn or tcp");
                        std::process::exit(2);
                    }
                },
                size: opt("--size", 64.0) as usize,
                gen_threads: 1,
                ipv6: args.iter().any(|a| a == "--ipv6"),
                busy_poll_us: opt("--busy-poll-us", 0.0) as u32,
            };
            // IPv6's stamped UDP frame needs 84 bytes on the wire.
            let o = compare::Opts {
                size: if o.ipv6 { o.size.max(84) } else { o.size },
                ..o
            };
            let result = match args.get(1).map(String::as_str).filter(|_| args[0] == "sweep") {
                None => {
                    let only: Vec<&str> = text("--rows").map(|r| r.split(',').collect()).unwrap_or_default();
                    compare::run(&o, &only, text("--json"), text("--svg"))
                }
                Some(what) => {
                    let (kind, default) = match what {
                        "flows" => (compare::Sweep::Flows, "1000,100000,1000000,10000000"),
                        "servers" => (compare::Sweep::Servers, "2,16,256,4096"),
                        _ => {
                            eprintln!("{USAGE}");
                            std::process::exit(2);
                        }
                    };
                    let points: Result<Vec<u64>, _> = text("--points")
                        .unwrap_or(default)
                        .split(',')
                        .map(str::parse)
                        .collect();
                    match points {
                        Ok(points) => compare::sweep(kind, &points, &o, text("--json"), text("--svg")),
                        Err(_) => Err("--points is a comma-separated list of numbers".to_string()),
                    }
                }
            };
            if let Err(e) = result {
                eprintln!("ferrovs-bench: {e}");
                std::process::exit(1);
            }
        }
        Some("export") => {
            let text = |name: &str| {
                args.iter()
                    .position(|a| a == name)
                    .and_then(|i| args.get(i + 1))
                    .map(String::as_str)
            };
            let Some(traffic) = compare::Traffic::parse(text("--traffic").unwrap_or("udp")) else {
                eprintln!("ferrovs-bench: --traffic is udp, syn or tcp");
                std::process::exit(2);
            };
            let s = export::Scenario {
                flows: text("--flows").and_then(|v| v.parse().ok()).unwrap_or(1024),
                size: text("--size").and_then(|v| v.parse().ok()).unwrap_or(64),
                traffic,
                vip: text("--vip").unwrap_or("10.50.0.100").to_string(),
                dst_mac: text("--dst-mac").unwrap_or("02:42:00:00:00:01").to_string(),
            };
            match args.get(1).map(String::as_str) {
                Some("trex") => print!("{}", export::trex(&s)),
                Some("pktgen") => print!("{}", export::pktgen(&s)),
                _ => {
                    eprintln!("{USAGE}");
                    std::process::exit(2);
                }
            }
        }
        // Parts the runner starts inside its namespaces.
        Some(part @ ("gen-sink" | "gen-check" | "kernel-swap" | "afxdp-swap" | "xdp-pass")) => {
            if let Err(e) = compare::part(part, &args[1..]) {
                eprintln!("ferrovs-bench {part}: {e}");
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

fn forwarder(flows: usize, packets: usize) {
    let flows = flows.clamp(1, usize::from(u16::MAX));
    let frames: Vec<[u8; 64]> = (0..flows as u16).map(|p| frame(p, false)).collect();
    let methods = [("DR", "-g"), ("NAT", "-m"), ("TUN", "-i")];
    let mut fwds: Vec<Forwarder> = methods.iter().map(|(_, m)| setup(m, flows)).collect();
    let mut ns = [0f64; 3];
    let mut buf = Buf {
        data: [0; 256],
        len: 0,
    };
    // Interleave rounds so that noise on a shared machine hits all three.
    const ROUNDS: usize = 10;
    for _ in 0..ROUNDS {
        for (k, fwd) in fwds.iter_mut().enumerate() {
            let n = packets / ROUNDS;
            let start = Instant::now();
            for i in 0..n {
                // Every method gets a fresh copy of the frame (NAT and TUN
                // change it), so the copy costs all three the same.
                buf.load(&frames[i % flows]);
                assert_eq!(fwd.handle(&mut buf, 0, 1), Verdict::Tx(0));
            }
            ns[k] += start.elapsed().as_secs_f64() * 1e9 / n as f64 / ROUNDS as f64;
        }
    }
    println!("forwarder, one core, {flows} established flows, 64-byte frames, {packets} packets per method:");
    println!(
        "{:<6} {:>12} {:>10} {:>8}",
        "method", "ns/packet", "Mpps", "vs DR"
    );
    for (k, (name, _)) in methods.iter().enumerate() {
        println!(
            "{:<6} {:>12.1} {:>10.2} {:>8.2}",
            name,
            ns[k],
            1e3 / ns[k],
            ns[0] / ns[k]
        );
    }
}
