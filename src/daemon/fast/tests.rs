//! The keeper's decisions against a flow map in memory: no root, no
//! kernel, the clock given.

use super::*;
use conntrack::FlowKey;
use dataplane::fast::{ConnKey, FastEvent};
use dataplane::xsk::FastAction;
use std::cell::{Cell, RefCell};

/// A flow map in memory of `cap` entries, as the kernel's refuses past it.
struct MemMap {
    flows: RefCell<HashMap<FastKey, FastVal>>,
    cap: usize,
    on: Cell<bool>,
}

impl MemMap {
    fn new(cap: usize) -> Self {
        Self {
            flows: RefCell::default(),
            cap,
            on: Cell::new(false),
        }
    }

    /// The kernel forwarded `pkts` packets of `key` in all.
    fn forwarded(&self, key: &FastKey, pkts: u64) {
        if let Some(FastVal::V4(v)) = self.flows.borrow_mut().get_mut(key) {
            v.pkts = pkts;
            v.bytes = pkts * 100;
        }
    }
}

impl FlowMap for MemMap {
    fn switch(&self, on: bool) -> io::Result<()> {
        self.on.set(on);
        Ok(())
    }
    fn add(&self, keys: &[FastKey], vals: &[FastVal]) -> io::Result<usize> {
        let mut m = self.flows.borrow_mut();
        let mut n = 0;
        for (k, v) in keys.iter().zip(vals) {
            if m.len() >= self.cap {
                break;
            }
            m.insert(*k, *v);
            n += 1;
        }
        Ok(n)
    }
    fn take(&self, key: &FastKey) -> Option<FastVal> {
        self.flows.borrow_mut().remove(key)
    }
    fn remove(&self, keys: &[FastKey]) {
        for k in keys {
            self.flows.borrow_mut().remove(k);
        }
    }
    fn read(&self, keys: &mut Vec<FastKey>, vals: &mut Vec<FastVal>) -> io::Result<()> {
        keys.clear();
        vals.clear();
        for (k, v) in self.flows.borrow().iter() {
            keys.push(*k);
            vals.push(*v);
        }
        Ok(())
    }
    fn punts(&self) -> io::Result<[u64; PUNT_REASONS]> {
        Ok([0; PUNT_REASONS])
    }
}

fn key(cport: u16) -> FastKey {
    FastKey::new(false, 6, (0x0a00_0002, cport), (0x0a00_0064, 80))
}

/// Worker 0's offload of connection `cport` to server `dest_id`.
fn add(k: &Keeper, cport: u16, dest_id: u32) {
    let e = FastEvent::Add {
        key: key(cport),
        val: FastVal::new(false, FastAction::Dr, [2; 6], [4; 6]),
        conn: ConnKey::V4(FlowKey {
            proto: 6,
            cip: 0x0a00_0002,
            cport,
            vip: 0x0a00_0064,
            vport: 80,
        }),
        out: false,
        dest_id,
    };
    k.rings.events[0].push(e).unwrap();
}

fn touches(k: &Keeper) -> Vec<(u16, u64)> {
    std::iter::from_fn(|| k.rings.touches[0].pop())
        .map(|t| (t.key.tuple().2, t.pkts))
        .collect()
}

#[test]
fn offloads_fill_the_map_and_the_rest_are_refused_and_counted() {
    let map = MemMap::new(8);
    let mut k = Keeper::start(&map, 1, 2).unwrap();
    assert!(map.on.get(), "the fast path is switched on");
    for cport in 1..=3 {
        add(&k, cport, 1);
    }
    k.pump(&map, Instant::now());
    // The keeper's capacity (--conn-max for the workers) binds first.
    assert_eq!((map.flows.borrow().len(), k.stats.flows, k.stats.full), (2, 2, 1));
}

#[test]
fn offloads_for_a_server_gone_are_not_made_and_its_flows_leave() {
    let map = MemMap::new(8);
    let mut k = Keeper::start(&map, 1, 8).unwrap();
    add(&k, 1, 1);
    add(&k, 2, 2);
    k.pump(&map, Instant::now());
    assert_eq!(map.flows.borrow().len(), 2);
    // Server 2 is deleted: its flow leaves the map, and an offload a
    // worker made from an older snapshot is not made.
    k.prune(&map, Live::from([(1, Some([4; 6]))]));
    add(&k, 3, 2);
    k.pump(&map, Instant::now());
    let left: Vec<FastKey> = map.flows.borrow().keys().copied().collect();
    assert_eq!(left, [key(1)]);
    // A server whose MAC changed is gone for its flows too.
    k.prune(&map, Live::from([(1, Some([9; 6]))]));
    assert!(map.flows.borrow().is_empty());
}

#[test]
fn the_kernel_s_counts_go_back_to_the_worker_once() {
    let map = MemMap::new(8);
    let mut k = Keeper::start(&map, 1, 8).unwrap();
    let t0 = Instant::now();
    add(&k, 1, 1);
    k.pump(&map, t0);
    map.forwarded(&key(1), 10);
    // Read once a second: before that, nothing goes back.
    k.pump(&map, t0 + READ_EVERY / 2);
    assert_eq!(touches(&k), []);
    k.pump(&map, t0 + READ_EVERY);
    assert_eq!(touches(&k), [(1, 10)]);
    // Nothing new, nothing handed back; then only what is new.
    k.pump(&map, t0 + READ_EVERY * 2);
    assert_eq!(touches(&k), []);
    map.forwarded(&key(1), 15);
    k.pump(&map, t0 + READ_EVERY * 3);
    assert_eq!(touches(&k), [(1, 5)]);
}

#[test]
fn a_removal_hands_back_the_last_counts_and_strays_are_taken_out() {
    let map = MemMap::new(8);
    let mut k = Keeper::start(&map, 1, 8).unwrap();
    let t0 = Instant::now();
    add(&k, 1, 1);
    k.pump(&map, t0);
    map.forwarded(&key(1), 7);
    k.rings.events[0].push(FastEvent::Del(key(1))).unwrap();
    k.pump(&map, t0);
    assert!(map.flows.borrow().is_empty());
    assert_eq!(
        touches(&k),
        [(1, 7)],
        "the packets since the last read are not lost"
    );
    // A flow in the map that no worker asked for (a removal a full ring
    // lost): out at the read after next.
    map.flows
        .borrow_mut()
        .insert(key(9), FastVal::new(false, FastAction::Dr, [2; 6], [4; 6]));
    k.pump(&map, t0 + READ_EVERY);
    k.pump(&map, t0 + READ_EVERY);
    assert!(map.flows.borrow().is_empty());
}
