//! The hot path allocates nothing: new connections, established ones,
//! malformed frames and expiry, on a warmed-up forwarder.

use dataplane::stats::WorkerStats;
use dataplane::{Forwarder, SlotMap, Snapshot, Update, Verdict};
use std::sync::Arc;

fn frame(cport: u16, flags: u8) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&40u16.to_be_bytes());
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 1, 0, 2]);
    f[30..34].copy_from_slice(&[10, 0, 0, 100]);
    f[34..36].copy_from_slice(&cport.to_be_bytes());
    f[36..38].copy_from_slice(&80u16.to_be_bytes());
    f[46] = 0x50;
    f[47] = flags;
    f
}

#[test]
fn forwarding_allocates_nothing() {
    let mut rules = config::Rules::default();
    for line in [
        "-A -t 10.0.0.100:80 -s rr",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g",
        "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g",
    ] {
        let args: Vec<&str> = line.split_whitespace().collect();
        rules
            .apply(&config::ipvsadm::parse(&args).unwrap())
            .unwrap();
    }
    let mut slots = SlotMap::default();
    slots.assign(&rules).unwrap();
    let snap = Snapshot::build(1, [2, 0, 0, 0, 0, 1], &rules, &slots, |_| {
        Some([2, 0, 0, 0, 0, 2])
    });
    let mut fwd = Forwarder::new(
        Update::new(Arc::new(snap)),
        512,
        Arc::new(WorkerStats::default()),
    );
    let mut frames: Vec<(Vec<u8>, Vec<u8>)> = (0..2000)
        .map(|p| (frame(p, 0x02), frame(p, 0x10)))
        .collect();
    let mut junk = frame(1, 0x02);
    junk[14] = 0x46;
    let mut tx = 0;
    let info = allocation_counter::measure(|| {
        for (round, (syn, ack)) in frames.iter_mut().enumerate() {
            // The table holds 512 and established entries live 900 s: later
            // SYNs find it full and are forwarded without an entry.
            let now = round as u32;
            tx += usize::from(fwd.handle(syn, now) == Verdict::Tx);
            tx += usize::from(fwd.handle(ack, now) == Verdict::Tx);
            assert!(matches!(fwd.handle(&mut junk, now), Verdict::Drop(_)));
            fwd.expire(now, 64);
        }
    });
    assert_eq!(info.count_total, 0, "the hot path allocated");
    assert!(tx >= 2000, "frames were not forwarded: {tx}");
    assert!(
        fwd.stats().table_full.get() > 0,
        "the full-table path was not exercised"
    );
}
