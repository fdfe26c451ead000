//! Per-packet pieces of the hot path, one at a time: the IPv4 header
//! checksum, the incremental checksum update NAT uses, and a whole
//! `Forwarder::handle` (parse, service and connection lookup, rewrite) for an
//! established flow in DR, NAT and TUN, over IPv4 and IPv6 (`dr6`, `nat6`,
//! `tun6`), at 1 k and 64 k flows; and a flood
//! of new connections (SYN, then the ACK that establishes it) with and
//! without a master sync daemon taking them.
//!
//! `cargo bench -p ferrovs-bench --bench packet`.

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use dataplane::Verdict;
use dataplane::wire::{checksum, checksum_adjust};
use ferrovs_bench::{Buf, frame, frame6, fresh, setup, setup_family};
use std::hint::black_box;

fn checksums(c: &mut Criterion) {
    let f = frame(4242, false);
    let mut g = c.benchmark_group("checksum");
    g.bench_function("ipv4_header_full", |b| b.iter(|| checksum(black_box(&f[14..34]))));
    g.bench_function("incremental_u16", |b| {
        b.iter(|| checksum_adjust(black_box(0x1c46), black_box(0x0050), black_box(0x1f90)))
    });
    g.finish();
}

fn handle(c: &mut Criterion) {
    let mut g = c.benchmark_group("handle");
    for flows in [1024usize, 65_535] {
        let frames: Vec<[u8; 64]> = (0..flows as u16).map(|p| frame(p, false)).collect();
        for (name, method) in [("dr", "-g"), ("nat", "-m"), ("tun", "-i")] {
            let mut fwd = setup(method, flows);
            let mut buf = Buf::default();
            let mut i = 0usize;
            g.bench_function(BenchmarkId::new(name, flows), |b| {
                b.iter(|| {
                    // A fresh copy each time: NAT and TUN rewrite the frame.
                    buf.load(&frames[i % flows]);
                    i += 1;
                    let v = fwd.handle(&mut buf, 0, 1);
                    debug_assert_eq!(v, Verdict::Tx(0));
                    black_box(v)
                });
            });
        }
        // The same over IPv6, side by side.
        let frames6: Vec<_> = (0..flows as u16).map(|p| frame6(p, false)).collect();
        for (name, method) in [("dr6", "-g"), ("nat6", "-m"), ("tun6", "-i")] {
            let mut fwd = setup_family(method, flows, true);
            let mut buf = Buf::default();
            let mut i = 0usize;
            g.bench_function(BenchmarkId::new(name, flows), |b| {
                b.iter(|| {
                    buf.load(&frames6[i % flows]);
                    i += 1;
                    let v = fwd.handle(&mut buf, 0, 1);
                    debug_assert_eq!(v, Verdict::Tx(0));
                    black_box(v)
                });
            });
        }
    }
    g.finish();
}

/// New connections a batch.
const NEW: u16 = 10_000;

fn new_connections(c: &mut Criterion) {
    let mut g = c.benchmark_group("new_connections");
    let frames: Vec<([u8; 64], [u8; 64])> = (0..NEW).map(|p| (frame(p, true), frame(p, false))).collect();
    for sync in [false, true] {
        let name = if sync { "sync" } else { "no_sync" };
        g.bench_function(BenchmarkId::new(name, NEW), |b| {
            b.iter_batched(
                || {
                    let rings = sync
                        .then(|| dataplane::sync::SyncMaster::new(1, dataplane::sync::SyncPolicy::default()));
                    (fresh("-g", usize::from(NEW), rings.clone()), rings)
                },
                |(mut fwd, rings)| {
                    let mut buf = Buf::default();
                    // Three packets a connection: a master syncs each at
                    // the third (sync_threshold 3).
                    for (syn, ack) in &frames {
                        buf.load(syn);
                        black_box(fwd.handle(&mut buf, 0, 1));
                        for _ in 0..2 {
                            buf.load(ack);
                            black_box(fwd.handle(&mut buf, 0, 1));
                        }
                    }
                    // The sync thread's side, on another core in the daemon.
                    black_box(rings.map(|r| r.rings[0].len()))
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, checksums, handle, new_connections);
criterion_main!(benches);
