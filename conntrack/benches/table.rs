//! Connection table costs at 1 k and 1 M entries (10 M with
//! `FERROVS_BENCH_10M=1`: it needs several GiB): lookup hit, lookup miss plus
//! insert (with a remove to stay at size), and the expiry sweep per slot; and
//! the bytes each entry costs, the table's own overhead included, measured by
//! counting what `with_capacity` allocates.
//!
//! `cargo bench -p ferrovs-conntrack --bench table`

use conntrack::{Conn, ConnTable, FlowKey};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn key(i: u64) -> FlowKey {
    FlowKey {
        proto: 6,
        cip: 0x0a00_0000 | (i >> 16) as u32,
        cport: i as u16,
        vip: 0x0a00_0064,
        vport: 80,
    }
}

fn sizes() -> Vec<u64> {
    let mut v = vec![1_000, 1_000_000];
    if std::env::var_os("FERROVS_BENCH_10M").is_some() {
        v.push(10_000_000);
    }
    v
}

fn full(n: u64) -> ConnTable {
    let mut t = ConnTable::with_capacity(n as usize);
    for i in 0..n {
        let _ = t.insert(
            key(i),
            None,
            Conn {
                expires: u32::MAX / 2,
                ..Conn::default()
            },
        );
    }
    t
}

fn table(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack");
    for n in sizes() {
        let bytes = allocation_counter::measure(|| {
            black_box(ConnTable::<u32>::with_capacity(n as usize));
        })
        .bytes_total;
        println!(
            "conntrack: {n} entries: {:.1} bytes per entry (capacity {n})",
            bytes as f64 / n as f64
        );
        let mut t = full(n);
        let mut i = 0u64;
        g.bench_with_input(BenchmarkId::new("lookup-hit", n), &n, |b, &n| {
            b.iter(|| {
                i = (i + 7_919) % n;
                black_box(t.get_mut(&key(i)).map(|c| c.dest_id))
            })
        });
        // Keep the table at size: each insert of a new key removes an old one.
        let (mut next, mut oldest) = (n, 0u64);
        g.bench_with_input(BenchmarkId::new("miss+insert", n), &n, |b, _| {
            b.iter(|| {
                t.remove(&key(oldest));
                oldest += 1;
                black_box(t.get_mut(&key(next)).is_none());
                let _ = t.insert(
                    key(next),
                    None,
                    Conn {
                        expires: u32::MAX / 2,
                        ..Conn::default()
                    },
                );
                next += 1;
            })
        });
        g.bench_with_input(BenchmarkId::new("sweep-64-slots", n), &n, |b, _| {
            b.iter(|| {
                t.sweep(1, 64, |k, _| {
                    black_box(k);
                })
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_millis(1000))
        .sample_size(20);
    targets = table
}
criterion_main!(benches);
