//! Connection sync in the workers: what a master hands its sender, and a
//! backup taking over a connection it never saw a SYN of.

use super::*;
use crate::sync::{SyncConn, SyncMaster};

/// A forwarder whose rules come with a master sync ring.
pub(super) fn master(lines: &[&str]) -> (Forwarder, SyncMaster) {
    let sm = SyncMaster::new(1, crate::sync::SyncPolicy::default());
    let mut slots = SlotMap::default();
    let r = rules(lines);
    slots.assign(&r).unwrap();
    let mut input = Input::new(1, &r, &slots, LINKS, &neigh);
    input.sync = Some(sm.clone());
    let u = Update::new(Arc::new(Snapshot::build(&input)));
    (Forwarder::new(u, 1 << 15, Arc::new(WorkerStats::default())), sm)
}

fn sent(sm: &SyncMaster) -> Vec<SyncConn> {
    std::iter::from_fn(|| sm.rings[0].pop()).collect()
}

/// A TCP connection opened and carried to its third client packet (the
/// kernel's default sync_threshold 3).
fn opened(f: &mut Forwarder, port: u16, now: u32) {
    for seg in [Seg::Syn, Seg::Ack, Seg::Ack] {
        send(f, &tcp(port, 80, seg), now);
    }
}

#[test]
fn a_master_sends_at_the_kernels_packet_counts_and_never_half_open() {
    let (mut f, sm) = master(TWO_RS);
    assert_eq!(send(&mut f, &tcp(40000, 80, Seg::Syn), 0).0, Verdict::Tx(0));
    assert!(sent(&sm).is_empty(), "SYN_RECV is never synced");
    assert_eq!(send(&mut f, &tcp(40000, 80, Seg::Ack), 0).0, Verdict::Tx(0));
    assert!(sent(&sm).is_empty(), "ESTABLISHED at packet 2: not yet");
    send(&mut f, &tcp(40000, 80, Seg::Ack), 0);
    let got = sent(&sm);
    assert_eq!(got.len(), 1, "packet 3");
    let c = got[0];
    assert_eq!(
        (c.proto, c.state, c.fwd, c.cport, c.vport, c.rport),
        (6, 1, 3, 40000, 80, 80)
    );
    assert_eq!(
        (c.rip, c.timeout),
        (u128::from(u32::from_be_bytes([10, 0, 0, 11])), 900)
    );
    // Packets 4 to 52: nothing; 53: again.
    for _ in 4..53 {
        send(&mut f, &tcp(40000, 80, Seg::Ack), 1);
    }
    assert!(sent(&sm).is_empty());
    send(&mut f, &tcp(40000, 80, Seg::Ack), 1);
    assert_eq!(sent(&sm).len(), 1, "packet 53");
    // Leaving ESTABLISHED: at once.
    send(&mut f, &tcp(40000, 80, Seg::Fin), 2);
    assert_eq!(sent(&sm)[0].state, ConnState::FinWait as u8);
    // A UDP flow: at its third datagram too.
    for n in 1..=3 {
        send(&mut f, &udp(5353, 53), 3);
        assert_eq!(sent(&sm).len(), usize::from(n == 3), "datagram {n}");
    }
    assert_eq!(f.stats().sync_sent.get(), 4);
}

#[test]
fn a_persistence_template_goes_after_its_connection() {
    let (mut f, sm) = master(&[
        "-A -t 10.0.0.100:80 -s rr -p 300",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g",
    ]);
    opened(&mut f, 40000, 0);
    let got = sent(&sm);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(!got[0].template && got[1].template, "{got:?}");
    assert!(got[1].cport == 0 && got[1].timeout == 300, "{got:?}");
}

#[test]
fn a_full_ring_drops_and_counts() {
    let (mut f, sm) = master(&[
        "-A -u 10.0.0.100:53 -s rr",
        "-a -u 10.0.0.100:53 -r 10.0.0.11:53 -g",
    ]);
    for p in 0..crate::sync::RING + 5 {
        for _ in 0..3 {
            send(&mut f, &udp(p as u16 + 1, 53), 0);
        }
    }
    assert_eq!(sm.rings[0].len(), crate::sync::RING);
    assert_eq!(f.stats().sync_drops.get(), 5);
}

#[test]
fn a_backup_forwards_a_connection_it_learnt() {
    let (mut m, sm) = master(TWO_RS);
    for p in [40000, 40001] {
        opened(&mut m, p, 0);
    }
    let learnt = sent(&sm);
    let (mut b, _) = forwarder(TWO_RS);
    // Without the sync a mid-flow segment has no connection.
    assert_eq!(
        send(&mut b, &tcp(40001, 80, Seg::Ack), 0).0,
        Verdict::Drop(Reason::NoConnection)
    );
    for c in &learnt {
        b.learn_conn(c, 0);
    }
    assert_eq!(b.table().len(), 2);
    assert_eq!(
        b.stats().dest(0).active.get() + b.stats().dest(1).active.get(),
        2,
        "counted"
    );
    // The same server the master chose (rr: 40000 → rs1, 40001 → rs2).
    for (p, mac) in [(40000, RS1_MAC), (40001, RS2_MAC)] {
        let (v, out) = send(&mut b, &tcp(p, 80, Seg::Ack), 1);
        assert_eq!((v, dst_mac(&out)), (Verdict::Tx(0), mac), "port {p}");
    }
    // Learnt again: refreshed, not doubled.
    b.learn_conn(&learnt[0], 2);
    assert_eq!((b.table().len(), b.stats().sync_learnt.get()), (2, 3));
    // A service this director does not have yet: kept unbound, counted,
    // and bound when the rules bring it.
    let other = SyncConn {
        vport: 8080,
        rport: 8080,
        ..learnt[0]
    };
    b.learn_conn(&other, 2);
    assert_eq!(
        (b.stats().sync_unbound.get(), b.parked.len(), b.table().len()),
        (1, 1, 2)
    );
    let mut more = TWO_RS.to_vec();
    more.extend([
        "-A -t 10.0.0.100:8080 -s rr",
        "-a -t 10.0.0.100:8080 -r 10.0.0.11:8080 -g",
    ]);
    let r = rules(&more);
    let mut slots = SlotMap::default();
    slots.assign(&r).unwrap();
    let input = Input::new(1, &r, &slots, LINKS, &neigh);
    b.install(Update::new(Arc::new(Snapshot::build(&input))));
    b.rebind(3);
    assert_eq!(
        (b.parked.len(), b.table().len()),
        (0, 3),
        "bound once its service came"
    );
    // One whose timeout passed before its service came is forgotten.
    b.learn_conn(
        &SyncConn {
            vport: 9090,
            timeout: 5,
            ..other
        },
        3,
    );
    b.install(Update::new(Arc::new(Snapshot::build(&input))));
    b.rebind(10);
    assert_eq!((b.parked.len(), b.table().len()), (0, 3));
}

#[test]
fn a_nat_backup_answers_the_client_once_it_has_seen_it() {
    let nat = &[
        "-A -t 10.0.0.100:80 -s rr",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m",
    ];
    let (mut m, sm) = master(nat);
    opened(&mut m, 40000, 0);
    let (mut b, _) = forwarder(nat);
    b.learn_conn(&sent(&sm)[0], 0);
    let reply = || {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(RS1_MAC, DIRECTOR_MAC)
            .ipv4([10, 0, 0, 11], CIP, 64)
            .tcp(8080, 40000, 5, 64240)
            .ack(1)
            .write(&mut v, b"ok")
            .unwrap();
        v
    };
    assert_eq!(
        send(&mut b, &reply(), 1).0,
        Verdict::Drop(Reason::NoNeighbour),
        "no client MAC yet"
    );
    assert_eq!(send(&mut b, &tcp(40000, 80, Seg::Ack), 1).0, Verdict::Tx(0));
    let (v, out) = send(&mut b, &reply(), 1);
    assert_eq!((v, dst_mac(&out)), (Verdict::Tx(0), CLIENT_MAC));
}
