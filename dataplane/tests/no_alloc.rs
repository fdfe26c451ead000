//! The hot path allocates nothing: new connections, established ones,
//! malformed frames and expiry, on a warmed-up forwarder.

use dataplane::sync::SyncMaster;
use dataplane::wire::{tcp_frame, tcp6_frame};
use dataplane::{Forwarder, Verdict};

fn frame(cport: u16, flags: u8) -> [u8; 64] {
    tcp_frame([10, 1, 0, 2], cport, [10, 0, 0, 100], 80, flags)
}

/// A UDP frame from `src:sport` to `dst:dport` (checksum 0: none).
fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> [u8; 64] {
    let mut f = tcp_frame(src, sport, dst, dport, 0);
    f[23] = 17; // UDP: ports in the same place
    f[38..40].copy_from_slice(&30u16.to_be_bytes());
    f[40..42].fill(0);
    f
}

/// `f` as a fragment of datagram `id`: the first (More Fragments set) or a
/// later one (offset 8 bytes).
fn fragment(mut f: [u8; 64], id: u16, later: bool) -> [u8; 64] {
    f[18..20].copy_from_slice(&id.to_be_bytes());
    f[20..22].copy_from_slice(&if later { 1u16 } else { 0x2000 }.to_be_bytes());
    f
}

/// A forwarder with `commands` as its rules and a table of `capacity`; every
/// server's MAC resolved.
fn forwarder(commands: &str, capacity: usize) -> Forwarder {
    forwarder_with(commands, capacity, None)
}

/// [`forwarder`], with a master sync daemon's rings if `sync`.
fn forwarder_with(commands: &str, capacity: usize, sync: Option<SyncMaster>) -> Forwarder {
    let rules = config::Rules::from_commands("test", commands).unwrap();
    dataplane::fixture::forwarder(&rules, (capacity, capacity / 4), sync)
}

#[test]
fn forwarding_allocates_nothing() {
    let mut fwd = forwarder(
        "-A -t 10.0.0.100:80 -s rr\n\
         -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g\n\
         -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g",
        512,
    );
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

#[test]
fn nat_both_ways_allocates_nothing() {
    let mut fwd = forwarder(
        "-A -u 10.0.0.100:53 -s wlc\n\
         -a -u 10.0.0.100:53 -r 10.0.0.11:5353 -m\n\
         -a -u 10.0.0.100:53 -r 10.0.0.12:5353 -m",
        4096,
    );
    let mut forwarded = 0;
    let info = allocation_counter::measure(|| {
        for p in 0..1000u16 {
            let mut q = udp([10, 1, 0, 2], 20000 + p, [10, 0, 0, 100], 53);
            assert_eq!(fwd.handle(&mut q, 0, 0), Verdict::Tx(0));
            // The query now goes to RIP:5353; answer from there.
            let rip = [q[30], q[31], q[32], q[33]];
            let mut a = udp(rip, 5353, [10, 1, 0, 2], 20000 + p);
            assert_eq!(fwd.handle(&mut a, 0, 0), Verdict::Tx(0));
            assert_eq!(&a[26..30], &[10, 0, 0, 100], "reply source not translated");
            forwarded += 2;
        }
    });
    assert_eq!(info.count_total, 0, "NAT allocated");
    assert_eq!(forwarded, 2000);
}

#[test]
fn partial_checksums_and_ip_options_allocate_nothing() {
    let mut fwd = forwarder(
        "-A -t 10.0.0.100:80 -s rr\n\
         -a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m",
        4096,
    );
    // A SYN with four NOP option bytes (IHL 6) and a partial checksum: the
    // folded pseudo-header sum, as a sender with offload leaves it.
    let syn = |cport: u16| {
        let f = frame(cport, 0x02);
        let mut v = [0u8; 68];
        v[..34].copy_from_slice(&f[..34]);
        v[34..38].fill(1);
        v[38..58].copy_from_slice(&f[34..54]);
        v[14] = 0x46;
        v[16..18].copy_from_slice(&44u16.to_be_bytes());
        let h = dataplane::wire::parse(&v).unwrap();
        let p = dataplane::wire::pseudo_sum(h.src, h.dst, h.proto, 20);
        v[38 + 16..38 + 18].copy_from_slice(&dataplane::wire::fold(p).to_be_bytes());
        v
    };
    let mut frames: Vec<[u8; 68]> = (0..1000).map(syn).collect();
    let mut tx = 0;
    let info = allocation_counter::measure(|| {
        for f in &mut frames {
            tx += usize::from(fwd.handle(f, 0, 0) == Verdict::Tx(0));
        }
    });
    assert_eq!(info.count_total, 0, "the hot path allocated");
    assert_eq!(tx, 1000);
    assert_eq!(fwd.stats().csum_completed.get(), 1000);
}

#[test]
fn fragments_allocate_nothing() {
    let mut fwd = forwarder(
        "-A -u 10.0.0.100:53 -s rr\n\
         -a -u 10.0.0.100:53 -r 10.0.0.11:5353 -m",
        4096,
    );
    let (cip, vip, rip) = ([10, 1, 0, 2], [10, 0, 0, 100], [10, 0, 0, 11]);
    let mut verdicts = [0usize; 3];
    let info = allocation_counter::measure(|| {
        for p in 0..1000u16 {
            let q = udp(cip, 20000 + p, vip, 53);
            let a = udp(rip, 5353, cip, 20000 + p);
            // A later fragment before its first (held, or dropped once the
            // hold is full), the first, a later one after it; the same for
            // the answer.
            let mut frames = [
                fragment(q, p, true),
                fragment(q, p, false),
                fragment(q, p, true),
                fragment(a, p, false),
                fragment(a, p, true),
            ];
            for f in &mut frames {
                match fwd.handle(f, 0, 0) {
                    Verdict::Tx(_) => verdicts[0] += 1,
                    Verdict::Consumed => verdicts[1] += 1,
                    Verdict::Drop(_) => verdicts[2] += 1,
                }
            }
        }
    });
    assert_eq!(info.count_total, 0, "fragments allocated");
    assert_eq!(verdicts[0], 4000, "{verdicts:?}");
    assert!(
        verdicts[1] > 0 && verdicts[2] > 0,
        "hold and overflow: {verdicts:?}"
    );
}

/// A "fragmentation needed" from `from` to `to` quoting a TCP packet from
/// `qsrc:qsport` to `qdst:qdport`.
fn icmp_error(
    from: [u8; 4],
    to: [u8; 4],
    (qsrc, qsport): ([u8; 4], u16),
    (qdst, qdport): ([u8; 4], u16),
) -> Vec<u8> {
    use etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded;
    let mut quoted = Vec::new();
    etherparse::PacketBuilder::ipv4(qsrc, qdst, 63)
        .tcp(qsport, qdport, 1, 1000)
        .write(&mut quoted, &[])
        .unwrap();
    quoted.truncate(28);
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(from, to, 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            FragmentationNeeded { next_hop_mtu: 1400 },
        ))
        .write(&mut v, &quoted)
        .unwrap();
    v
}

#[test]
fn icmp_errors_allocate_nothing() {
    let mut fwd = forwarder(
        "-A -t 10.0.0.100:80 -s rr\n\
         -a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m",
        4096,
    );
    let (cip, vip, rip) = ([10, 1, 0, 2], [10, 0, 0, 100], [10, 0, 0, 11]);
    let mut frames: Vec<[Vec<u8>; 3]> = (0..500u16)
        .map(|p| {
            [
                frame(30000 + p, 0x02).to_vec(),
                icmp_error([10, 1, 0, 1], vip, (vip, 80), (cip, 30000 + p)),
                icmp_error(rip, cip, (cip, 30000 + p), (rip, 8080)),
            ]
        })
        .collect();
    let mut tx = 0;
    let info = allocation_counter::measure(|| {
        for trio in &mut frames {
            for f in trio.iter_mut() {
                tx += usize::from(fwd.handle(f, 0, 0) == Verdict::Tx(0));
            }
        }
    });
    assert_eq!(info.count_total, 0, "ICMP allocated");
    assert_eq!(tx, 1500);
    assert_eq!(fwd.stats().icmp_errors.get(), 1000);
}

#[test]
fn sync_on_both_sides_allocates_nothing() {
    let rules = "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g";
    let sm = SyncMaster::new(1, dataplane::sync::SyncPolicy::default());
    let mut master = forwarder_with(rules, 4096, Some(sm.clone()));
    let mut backup = forwarder(rules, 4096);
    let mut frames: Vec<([u8; 64], [u8; 64])> = (0..1000).map(|p| (frame(p, 0x02), frame(p, 0x10))).collect();
    let mut learnt = 0;
    let info = allocation_counter::measure(|| {
        for (syn, ack) in &mut frames {
            master.handle(syn, 0, 0);
            // The third packet is the one synced (sync_threshold 3).
            for _ in 0..2 {
                let mut again = *ack;
                master.handle(&mut again, 0, 0);
            }
            while let Some(c) = sm.rings[0].pop() {
                backup.learn_conn(&c, 0);
                learnt += 1;
            }
        }
    });
    assert_eq!(info.count_total, 0, "sync allocated");
    assert_eq!((learnt, backup.table().len()), (1000, 1000));
}

#[test]
fn ipv6_dr_and_nat66_allocate_nothing() {
    const VIP: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0100;
    const RIP: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0011;
    const CIP: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0002;
    let mut fwd = forwarder(
        "-A -t [2001:db8::100]:80 -s rr\n\
         -a -t [2001:db8::100]:80 -r [2001:db8::11]:80 -g\n\
         -A -t [2001:db8::100]:8080 -s wlc -p 60\n\
         -a -t [2001:db8::100]:8080 -r [2001:db8::11]:8081 -m",
        // The IPv6 table is a quarter of this: room for every connection.
        16384,
    );
    let mut junk = tcp6_frame(CIP, 1, VIP, 80, 0x02);
    junk[19] = 0xff; // payload length past the frame
    let mut forwarded = 0;
    let info = allocation_counter::measure(|| {
        for p in 0..1000u16 {
            let mut syn = tcp6_frame(CIP, 10000 + p, VIP, 80, 0x02);
            let mut ack = tcp6_frame(CIP, 10000 + p, VIP, 80, 0x10);
            forwarded += usize::from(fwd.handle(&mut syn, 0, 0) == Verdict::Tx(0));
            forwarded += usize::from(fwd.handle(&mut ack, 0, 0) == Verdict::Tx(0));
            let mut nat = tcp6_frame(CIP, 10000 + p, VIP, 8080, 0x02);
            forwarded += usize::from(fwd.handle(&mut nat, 0, 0) == Verdict::Tx(0));
            let mut reply = tcp6_frame(RIP, 8081, CIP, 10000 + p, 0x12);
            forwarded += usize::from(fwd.handle(&mut reply, 0, 0) == Verdict::Tx(0));
            assert!(matches!(fwd.handle(&mut junk, 0, 0), Verdict::Drop(_)));
            fwd.expire6(0, 64);
        }
    });
    assert_eq!(info.count_total, 0, "the IPv6 path allocated");
    assert_eq!(forwarded, 4000);
}
