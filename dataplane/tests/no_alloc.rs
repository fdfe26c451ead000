//! The hot path allocates nothing: new connections, established ones,
//! malformed frames and expiry, on a warmed-up forwarder.

use dataplane::stats::WorkerStats;
use dataplane::wire::tcp_frame;
use dataplane::{Forwarder, SlotMap, Snapshot, Update, Verdict};
use std::sync::Arc;

fn frame(cport: u16, flags: u8) -> [u8; 64] {
    tcp_frame([10, 1, 0, 2], cport, [10, 0, 0, 100], 80, flags)
}

#[test]
fn forwarding_allocates_nothing() {
    let rules = config::Rules::from_commands(
        "test",
        "-A -t 10.0.0.100:80 -s rr\n\
         -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g\n\
         -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g",
    )
    .unwrap();
    let mut slots = SlotMap::default();
    slots.assign(&rules).unwrap();
    let snap = Snapshot::build(1, vec![[2, 0, 0, 0, 0, 1]], &rules, &slots, |_| {
        Some(([2, 0, 0, 0, 0, 2], 0))
    });
    let mut fwd = Forwarder::new(Update::new(Arc::new(snap)), 512, Arc::new(WorkerStats::default()));
    let mut frames: Vec<([u8; 64], [u8; 64])> = (0..2000).map(|p| (frame(p, 0x02), frame(p, 0x10))).collect();
    let mut junk = frame(1, 0x02);
    junk[14] = 0x46;
    let mut tx = 0;
    let info = allocation_counter::measure(|| {
        for (round, (syn, ack)) in frames.iter_mut().enumerate() {
            // The table holds 512 and established entries live 900 s: later
            // SYNs find it full and are forwarded without an entry.
            let now = round as u32;
            tx += usize::from(fwd.handle(syn, 0, now) == Verdict::Tx(0));
            tx += usize::from(fwd.handle(ack, 0, now) == Verdict::Tx(0));
            assert!(matches!(fwd.handle(&mut junk, 0, now), Verdict::Drop(_)));
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
