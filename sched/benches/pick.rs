//! Cost of one pick for every scheduler at 2, 16, 256 and 4096 real servers,
//! and of building a Maglev table for 1000 servers at 65537 slots.
//!
//! `cargo bench -p ferrovs-sched`. Servers carry mixed weights and connection
//! counts so that least-connection loops cannot stop early.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sched::{AnySched, Dest, Flow, NAMES, SchedFlags, SchedOpts, Scheduler};
use std::hint::black_box;

fn dests(n: usize) -> Vec<Dest> {
    (0..n as u32)
        .map(|i| Dest {
            addr: 0x0a00_0000 + i,
            port: 80,
            weight: 1 + i % 7,
            active_conns: 3 + (i * 7919) % 50,
            inactive_conns: (i * 104_729) % 30,
            overloaded: false,
        })
        .collect()
}

fn picks(c: &mut Criterion) {
    let mut g = c.benchmark_group("pick");
    for n in [2usize, 16, 256, 4096] {
        let d = dests(n);
        for name in NAMES {
            let opts = SchedOpts {
                flags: SchedFlags::default(),
                mh_table_size: 65537,
            };
            let mut s = AnySched::with_opts(name.parse().expect("known scheduler"), &opts);
            s.update(&d[..]);
            let mut cip = 0u32;
            g.bench_with_input(BenchmarkId::new(*name, n), &n, |b, _| {
                b.iter(|| {
                    cip = cip.wrapping_add(0x9e37_79b9);
                    let f = Flow {
                        cip,
                        cport: cip as u16,
                        vip: cip >> 3,
                        vport: 80,
                        now: 0,
                    };
                    black_box(s.pick(&d[..], black_box(&f)))
                })
            });
        }
    }
    g.finish();
}

/// What a new connection costs the scheduler in the dataplane: the pick, then
/// the count change the worker reports back.
fn pick_and_count(c: &mut Criterion) {
    let mut g = c.benchmark_group("pick+count");
    for n in [256usize, 4096] {
        for name in ["wlc", "lc", "sed", "nq", "twos"] {
            let mut d = dests(n);
            let mut s = AnySched::named(name).expect("known scheduler");
            s.update(&d[..]);
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    let i = s.pick(&d[..], &Flow::default()).expect("a server");
                    // Alternate up and down so counts stay bounded.
                    let x = &mut d[i];
                    x.active_conns = if x.active_conns > 60 {
                        3
                    } else {
                        x.active_conns + 1
                    };
                    s.on_change(&d[..], i);
                })
            });
        }
    }
    g.finish();
}

fn maglev_build(c: &mut Criterion) {
    let d = dests(1000);
    c.bench_function("mh build 1000 servers, 65537 slots", |b| {
        b.iter(|| {
            let mut s = sched::Mh::new(65537, SchedFlags::default());
            s.update(&d[..]);
            black_box(s)
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_millis(700))
        .sample_size(30);
    targets = picks, pick_and_count, maglev_build
}
criterion_main!(benches);
