//! `ferrovs-bench`: the benchmark harness.
//!
//! Owns: traffic generation, sinks and side-by-side comparisons (the full
//! harness is its own piece of work). What it has today: `forwarder`, the
//! per-packet cost of the hot path (`dataplane::Forwarder::handle`: parse,
//! service lookup, connection lookup, DR rewrite) over frames in memory, with
//! no socket in the way, so a change to the hot path can be measured before
//! and after.
//!
//! Must not touch: the daemon's control plane; it builds its own rules.

use dataplane::stats::WorkerStats;
use dataplane::wire::tcp_frame;
use dataplane::{Forwarder, SlotMap, Snapshot, Update, Verdict};
use std::sync::Arc;
use std::time::Instant;

const USAGE: &str = "usage: ferrovs-bench forwarder [FLOWS] [PACKETS]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("forwarder") => {
            let num = |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
            forwarder(num(1, 1024), num(2, 20_000_000));
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

/// A 64-byte TCP segment from 10.1.x.y:`cport` to the service.
fn frame(cport: u16, syn: bool) -> [u8; 64] {
    let cip = [10, 1, (cport >> 8) as u8, cport as u8];
    tcp_frame(cip, cport, [10, 0, 0, 100], 80, if syn { 0x02 } else { 0x10 })
}

fn forwarder(flows: usize, packets: usize) {
    let rules = config::Rules::from_commands(
        "bench",
        "-A -t 10.0.0.100:80 -s rr\n\
         -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g\n\
         -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g",
    )
    .expect("valid rules");
    let mut slots = SlotMap::default();
    slots.assign(&rules).expect("two servers fit");
    let snap = Snapshot::build(1, vec![[2, 0, 0, 0, 0, 1]], &rules, &slots, |_| {
        Some(([2, 0, 0, 0, 0, 2], 0))
    });
    let mut fwd = Forwarder::new(
        Update::new(Arc::new(snap)),
        flows.max(1) * 2,
        Arc::new(WorkerStats::default()),
    );
    let flows = flows.clamp(1, usize::from(u16::MAX));
    for cport in 0..flows as u16 {
        assert_eq!(fwd.handle(&mut frame(cport, true), 0, 0), Verdict::Tx(0));
    }
    let mut frames: Vec<[u8; 64]> = (0..flows as u16).map(|p| frame(p, false)).collect();
    let start = Instant::now();
    let mut sent = 0usize;
    for i in 0..packets {
        let f = &mut frames[i % flows];
        sent += usize::from(fwd.handle(f, 0, 1) == Verdict::Tx(0));
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(sent, packets, "frames were dropped");
    println!(
        "forwarder: {flows} flows, {packets} packets: {:.1} ns/packet, {:.2} Mpps on one core",
        secs * 1e9 / packets as f64,
        packets as f64 / secs / 1e6
    );
}
