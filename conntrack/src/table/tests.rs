use super::*;

fn key(cport: u16) -> FlowKey {
    FlowKey {
        proto: 6,
        cip: 0x0a00_0002,
        cport,
        vip: 0x0a00_0064,
        vport: 80,
    }
}

fn conn(dest_id: u32, expires: u32) -> Conn {
    Conn {
        dest_id,
        expires,
        ..Conn::default()
    }
}

#[test]
fn entry_fits_a_cache_line() {
    assert!(std::mem::size_of::<Entry<u32>>() <= 64);
    // What the memory target rests on: 40 bytes in 3/2 slots per entry (60).
    assert_eq!(std::mem::size_of::<Entry<u32>>(), 40);
    // IPv6 in a table of its own: 80 bytes, 120 per connection.
    assert_eq!(std::mem::size_of::<Entry<u128>>(), 80);
}

#[test]
fn ipv6_keys_find_their_connection_and_its_replies() {
    let v6 = |cport: u16, vip: u128| FlowKey::<u128> {
        proto: 6,
        cip: 0x2001_0db8_0000_0000_0000_0000_0000_0002,
        cport,
        vip,
        vport: 80,
    };
    let vip = 0x2001_0db8_0000_0000_0000_0000_0000_0100;
    let rip = 0x2001_0db8_0001_0000_0000_0000_0000_0011;
    let mut t = ConnTable::<u128>::with_capacity(64);
    // Keys that differ only in the high or the low half of an address.
    for p in 1..=40 {
        t.insert(v6(p, vip), Some(v6(p, rip)), conn(u32::from(p), 100))
            .unwrap();
    }
    assert!(t.get_mut(&v6(1, vip ^ 1 << 100)).is_none());
    assert!(t.get_mut(&v6(1, vip ^ 1)).is_none());
    assert_eq!(t.get_mut(&v6(7, vip)).unwrap().dest_id, 7);
    let (k, c) = t.get_reply_mut(&v6(9, rip)).unwrap();
    assert_eq!((k, c.dest_id), (v6(9, vip), 9));
    assert_eq!(t.remove(&v6(9, vip)).map(|c| c.dest_id), Some(9));
    assert!(t.get_reply_mut(&v6(9, rip)).is_none());
    assert_eq!(t.len(), 39);
}

#[test]
fn insert_then_find() {
    let mut t = ConnTable::with_capacity(4);
    t.insert(key(1), None, conn(7, 100)).unwrap();
    assert_eq!(t.get_mut(&key(1)).unwrap().dest_id, 7);
    assert!(t.get_mut(&key(2)).is_none());
    assert_eq!(t.len(), 1);
}

#[test]
fn refuses_past_capacity_and_keeps_old_entries() {
    let mut t = ConnTable::with_capacity(2);
    t.insert(key(1), None, conn(1, 100)).unwrap();
    t.insert(key(2), None, conn(2, 100)).unwrap();
    assert_eq!(t.insert(key(3), None, conn(3, 100)), Err(Full));
    assert_eq!(t.len(), 2);
    assert_eq!(t.get_mut(&key(1)).unwrap().dest_id, 1);
    // Re-inserting an existing key is an update, not a new slot.
    assert!(t.insert(key(2), None, conn(9, 100)).is_ok());
    assert_eq!(t.get_mut(&key(2)).unwrap().dest_id, 9);
}

#[test]
fn sweep_expires_only_due_entries_within_budget() {
    let mut t = ConnTable::with_capacity(8);
    t.insert(key(1), None, conn(1, 10)).unwrap();
    t.insert(key(2), None, conn(2, 50)).unwrap();
    let turn = t.slots.len();
    let mut gone = Vec::new();
    t.sweep(20, turn, |k, c| gone.push((k.cport, c.dest_id)));
    assert_eq!(gone, vec![(1, 1)]);
    assert_eq!(t.len(), 1);
    // A budget of one slot looks at one slot only.
    t.insert(key(3), None, conn(3, 5)).unwrap();
    let mut n = 0;
    t.sweep(60, 1, |_, _| n += 1);
    assert!(n <= 1);
    t.sweep(60, turn, |_, _| n += 1);
    assert_eq!(n, 2);
    assert!(t.is_empty());
}

#[test]
fn replies_find_their_connection_until_it_goes() {
    let mut t = ConnTable::with_capacity(4);
    let reply = FlowKey {
        vip: 0x0a00_000b,
        vport: 8080,
        ..key(1)
    };
    t.insert(key(1), Some(reply), conn(7, 10)).unwrap();
    let (k, c) = t.get_reply_mut(&reply).unwrap();
    assert_eq!((k, c.dest_id), (key(1), 7));
    t.sweep(20, t.slots.len(), |_, _| {});
    assert!(t.get_reply_mut(&reply).is_none());
    t.insert(key(1), Some(reply), conn(8, 10)).unwrap();
    t.remove(&key(1));
    assert!(t.get_reply_mut(&reply).is_none());
}

#[test]
fn freed_slots_are_reused() {
    let mut t = ConnTable::with_capacity(1);
    t.insert(key(1), None, conn(1, 10)).unwrap();
    assert_eq!(t.remove(&key(1)).unwrap().dest_id, 1);
    t.insert(key(2), None, conn(2, 10)).unwrap();
    assert_eq!(t.len(), 1);
}

#[test]
fn expiry_survives_clock_wrap() {
    assert!(expired(u32::MAX, 1));
    assert!(!expired(5, u32::MAX));
}

use testkit::Rng;

/// Keys from a small space, so inserts, hits, misses and removals all
/// happen often; few client tuples with several VIPs each, so probe runs
/// share home buckets (the table hashes by client tuple only).
fn small_key(r: &mut Rng) -> FlowKey {
    FlowKey {
        proto: if r.below(4) == 0 { 17 } else { 6 },
        cip: 0x0a00_0000 | r.below(64) as u32,
        cport: r.below(8) as u16,
        vip: 0x0a00_0064 + r.below(3) as u32,
        vport: 80,
    }
}

fn reply_of(k: &FlowKey) -> FlowKey {
    FlowKey {
        vip: k.vip ^ 0x0100_0000,
        vport: 8080,
        ..*k
    }
}

/// Drive the table and a std HashMap with the same random operations at
/// high load (capacity well below the key space) and compare after each.
#[test]
fn matches_a_plain_map_through_random_churn() {
    use std::collections::HashMap;
    for seed in 1..=8u64 {
        let mut r = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let cap = 200;
        let mut t = ConnTable::with_capacity(cap);
        let mut m: HashMap<FlowKey, (Conn, bool)> = HashMap::new();
        for step in 0..20_000u32 {
            let k = small_key(&mut r);
            match r.below(10) {
                0..=3 => {
                    let nat = r.below(2) == 0;
                    let c = conn(step, step + r.below(500) as u32);
                    let got = t.insert(k, nat.then(|| reply_of(&k)), c).map(|c| *c);
                    if m.contains_key(&k) || m.len() < cap {
                        assert_eq!(got, Ok(c), "seed {seed} step {step}");
                        m.insert(k, (c, nat));
                    } else {
                        assert_eq!(got, Err(Full));
                    }
                }
                4..=5 => assert_eq!(t.remove(&k), m.remove(&k).map(|v| v.0)),
                6 => {
                    let now = step;
                    let mut gone = Vec::new();
                    t.sweep(now, 16, |k, c| gone.push((*k, *c)));
                    for (k, c) in gone {
                        assert!(expired(c.expires, now));
                        assert_eq!(m.remove(&k).map(|v| v.0), Some(c));
                    }
                }
                7 => {
                    let want = m.get(&k).filter(|v| v.1).map(|v| (k, v.0));
                    let got = t.get_reply_mut(&reply_of(&k)).map(|(k, c)| (k, *c));
                    assert_eq!(got, want, "seed {seed} step {step}");
                }
                _ => assert_eq!(t.get_mut(&k).map(|c| *c), m.get(&k).map(|v| v.0)),
            }
            assert_eq!(t.len(), m.len());
        }
        // Everything the model holds is found, and nothing else is there.
        for (k, (c, _)) in &m {
            assert_eq!(t.get_mut(k).map(|c| *c), Some(*c));
        }
        let mut n = 0;
        t.for_each(|k, c| {
            n += 1;
            assert_eq!(m.get(k).map(|v| v.0), Some(*c));
        });
        assert_eq!(n, m.len());
        // Robin Hood invariant: each entry sits `probe - 1` slots past its
        // home bucket, and no entry is farther from home than its
        // successor by more than one slot.
        for (i, e) in t.slots.iter().enumerate() {
            if e.probe != 0 {
                let home = t.home(e.proto, e.cip, e.cport);
                assert_eq!((home + usize::from(e.probe) - 1) % t.slots.len(), i);
            }
        }
    }
}

#[test]
fn a_reply_needs_its_real_server_tuple() {
    let mut t = ConnTable::with_capacity(4);
    let k = key(1);
    t.insert(k, Some(reply_of(&k)), conn(7, 10)).unwrap();
    // Same client tuple, another server or port: not this connection's.
    let other = FlowKey {
        vport: 9090,
        ..reply_of(&k)
    };
    assert!(t.get_reply_mut(&other).is_none());
    // A DR connection has no reply tuple at all.
    t.insert(key(2), None, conn(8, 10)).unwrap();
    assert!(t.get_reply_mut(&reply_of(&key(2))).is_none());
    // A client tuple's two services each keep their own reply.
    let k2 = FlowKey { vip: k.vip + 1, ..k };
    let r2 = FlowKey {
        vport: 8081,
        ..reply_of(&k)
    };
    t.insert(k2, Some(r2), conn(9, 10)).unwrap();
    assert_eq!(t.get_reply_mut(&r2).map(|(k, c)| (k, c.dest_id)), Some((k2, 9)));
    assert_eq!(
        t.get_reply_mut(&reply_of(&k)).map(|(k, c)| (k, c.dest_id)),
        Some((k, 7))
    );
}

#[test]
fn ipv6_keys_that_differ_in_the_low_bits_only() {
    let mut t = ConnTable::<u128>::with_capacity(4096);
    let key = |p: u16| FlowKey::<u128> {
        proto: 6,
        cip: 0x2001_0db8_0001_0000_0000_0000_0000_0000 | u128::from(p),
        cport: p,
        vip: 0x2001_0db8_0000_0000_0000_0000_0000_0100,
        vport: 80,
    };
    for p in 0..2048 {
        t.insert(key(p), None, conn(u32::from(p) + 1, 100)).unwrap();
    }
    for p in 0..2048 {
        assert_eq!(
            t.get_mut(&key(p)).map(|c| c.dest_id),
            Some(u32::from(p) + 1),
            "port {p}"
        );
    }
}
