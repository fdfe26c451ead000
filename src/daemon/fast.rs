//! The keeper of the fast path's flow map, on the control thread: it
//! applies the workers' offloads and removals (one batch syscall each way
//! per tick), reads the map's counters once a second and hands them back
//! to the workers as touches, so `--stats`, `--rate`, metrics and the
//! expiry count the frames the kernel forwarded; and it takes out what no
//! worker holds any more (a server gone with `--expire-nodest-conn`, `-C`).
//!
//! Owns: the map's contents and their shadow here (which worker, which
//! connection, what was already handed back). Must not touch: connections
//! (the workers decide), the rules.

use dataplane::fast::{FastEvent, FastRings, Touch};
use dataplane::xsk::{FastKey, FastVal, PUNT_NAMES, PUNT_REASONS, Steer};
use hashbrown::HashMap;
use std::fmt::Write as _;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the map's counters are read and handed back.
const READ_EVERY: Duration = Duration::from_secs(1);
/// Events taken from the rings per tick at most.
const EVENTS_PER_TICK: usize = 1 << 16;

/// One flow of the map, as the keeper knows it.
#[derive(Debug, Clone, Copy)]
struct Shadow {
    worker: usize,
    touch: Touch,
    dest_id: u32,
    /// The server's MAC the flow was handed with (client-to-server flows;
    /// `None` for a NAT reply, which goes to the client's).
    dest_mac: Option<[u8; 6]>,
}

/// Counts for `--counters` and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeeperStats {
    /// Flows in the map now, as the keeper holds them.
    pub flows: usize,
    /// Flows the kernel's map held at the last read (the same, unless an
    /// operation failed).
    pub in_map: usize,
    /// Offloads the full map refused (those flows stay in userspace).
    pub full: u64,
    /// Map operations the kernel refused otherwise.
    pub errors: u64,
    /// Frames of flows in the map that the program handed to the workers,
    /// by reason, and the partial checksums it completed ([`PUNT_NAMES`]).
    pub punts: [u64; PUNT_REASONS],
}

impl KeeperStats {
    /// The `--counters --json` object.
    pub fn json(&self) -> serde_json::Value {
        let punts: serde_json::Map<String, serde_json::Value> = PUNT_NAMES
            .iter()
            .zip(self.punts)
            .map(|(n, v)| (n.to_string(), v.into()))
            .collect();
        serde_json::json!({
            "flows": self.flows,
            "map": self.in_map,
            "full": self.full,
            "errors": self.errors,
            "punts": punts,
        })
    }

    /// The `--counters` line.
    pub fn line(&self) -> String {
        let mut text = format!(
            "fast path: flows {} map {} full {} errors {}; punts",
            self.flows, self.in_map, self.full, self.errors
        );
        for (name, n) in PUNT_NAMES.iter().zip(self.punts) {
            let _ = write!(text, " {name} {n}");
        }
        text.push('\n');
        text
    }
}

/// The fast path's Prometheus text from the stats the keeper last shared.
pub fn metrics(shared: &Mutex<KeeperStats>) -> String {
    use crate::prom::{Kind, Text};
    let s = shared.lock().map(|s| *s).unwrap_or_default();
    let mut t = Text::new();
    t.single(
        "ferrovs_fast_flows",
        Kind::Gauge,
        "Flows in the XDP fast path's map.",
        s.flows,
    );
    t.single(
        "ferrovs_fast_full_total",
        Kind::Counter,
        "Offloads the full map refused (those flows stay in userspace).",
        s.full,
    );
    t.single(
        "ferrovs_fast_errors_total",
        Kind::Counter,
        "Flow map operations the kernel refused.",
        s.errors,
    );
    let name = "ferrovs_fast_punts_total";
    t.family(
        name,
        Kind::Counter,
        "Frames of offloaded flows the XDP program handed to the workers, by reason (partial-completed: checksums it finished, no punt).",
    );
    for (reason, n) in PUNT_NAMES.iter().zip(s.punts) {
        t.sample(name, &[("reason", reason)], n);
    }
    t.into_string()
}

/// The XDP flow map as the keeper uses it: the steering program's in the
/// daemon, one in memory in the tests, so the keeper's decisions (what is
/// offloaded, refused, pruned, handed back) are tested without root.
pub trait FlowMap {
    /// Turn the fast path on or off.
    ///
    /// # Errors
    /// The switch could not be set.
    fn switch(&self, on: bool) -> io::Result<()>;
    /// Put these flows in; return how many were taken.
    ///
    /// # Errors
    /// The map refused the batch.
    fn add(&self, keys: &[FastKey], vals: &[FastVal]) -> io::Result<usize>;
    /// Take one flow out, with its last counts.
    fn take(&self, key: &FastKey) -> Option<FastVal>;
    /// Take these flows out.
    fn remove(&self, keys: &[FastKey]);
    /// Every flow with its counts.
    ///
    /// # Errors
    /// The read failed.
    fn read(&self, keys: &mut Vec<FastKey>, vals: &mut Vec<FastVal>) -> io::Result<()>;
    /// The punts by reason.
    ///
    /// # Errors
    /// The read failed.
    fn punts(&self) -> io::Result<[u64; PUNT_REASONS]>;
}

impl FlowMap for Steer {
    fn switch(&self, on: bool) -> io::Result<()> {
        self.set_fast(on)
    }
    fn add(&self, keys: &[FastKey], vals: &[FastVal]) -> io::Result<usize> {
        self.fast_add(keys, vals)
    }
    fn take(&self, key: &FastKey) -> Option<FastVal> {
        self.fast_take(key)
    }
    fn remove(&self, keys: &[FastKey]) {
        self.fast_remove(keys);
    }
    fn read(&self, keys: &mut Vec<FastKey>, vals: &mut Vec<FastVal>) -> io::Result<()> {
        self.fast_read(keys, vals)
    }
    fn punts(&self) -> io::Result<[u64; PUNT_REASONS]> {
        self.fast_punts()
    }
}

/// The flow map's keeper.
#[derive(Debug)]
pub struct Keeper {
    /// The workers' rings (the snapshot carries them to the workers).
    pub rings: FastRings,
    shadow: HashMap<FastKey, Shadow>,
    /// Entries the map may hold (`--conn-max` a worker, all workers).
    capacity: usize,
    adds: (Vec<FastKey>, Vec<FastVal>, Vec<Shadow>),
    dels: Vec<FastKey>,
    read: (Vec<FastKey>, Vec<FastVal>),
    last_read: Instant,
    /// What it counted.
    pub stats: KeeperStats,
    /// The same, as of the last read, for the metrics thread.
    pub shared: Arc<Mutex<KeeperStats>>,
    /// The servers whose flows may be in the map, with their MACs, as of
    /// the last publication (`None` before the first): an offload a worker
    /// made from an older snapshot, for a server since gone or moved, is
    /// not made.
    live: Option<Live>,
}

/// Server id → its MAC (`None`: not resolved).
pub type Live = HashMap<u32, Option<[u8; 6]>>;

/// Whether flow `s` may stay in the map by `live`.
fn keeps(live: Option<&Live>, s: &Shadow) -> bool {
    live.is_none_or(|l| {
        l.get(&s.dest_id)
            .is_some_and(|m| s.dest_mac.is_none() || *m == s.dest_mac)
    })
}

impl Keeper {
    /// A keeper for `workers` workers and a map of at most `capacity`
    /// flows; turns the fast path on in `steer`.
    ///
    /// # Errors
    /// The program's switch could not be set.
    pub fn start(steer: &impl FlowMap, workers: usize, capacity: usize) -> Result<Self, String> {
        steer.switch(true).map_err(|e| format!("fast path: {e}"))?;
        Ok(Self {
            rings: FastRings::new(workers),
            shadow: HashMap::new(),
            capacity: capacity.min(dataplane::xsk::MAX_FAST_FLOWS),
            adds: (Vec::new(), Vec::new(), Vec::new()),
            dels: Vec::new(),
            read: (Vec::new(), Vec::new()),
            last_read: Instant::now(),
            stats: KeeperStats::default(),
            shared: Arc::default(),
            live: None,
        })
    }

    /// Apply what the workers asked since the last tick; once a second,
    /// hand the kernel's counts back to them.
    pub fn pump(&mut self, steer: &impl FlowMap, now: Instant) {
        self.take_events();
        // Removals one by one, each with its last counts: packets the kernel
        // forwarded since the last read are handed back, not lost.
        for k in std::mem::take(&mut self.dels) {
            let last = steer.take(&k);
            if let (Some(s), Some(v)) = (self.shadow.remove(&k), last) {
                self.hand_back(&s, &v);
            }
        }
        self.add(steer);
        if now.saturating_duration_since(self.last_read) >= READ_EVERY {
            self.last_read = now;
            self.touch(steer);
            match steer.punts() {
                Ok(p) => self.stats.punts = p,
                Err(_) => self.stats.errors += 1,
            }
            if let Ok(mut s) = self.shared.lock() {
                *s = self.stats;
                s.flows = self.shadow.len();
            }
        }
        self.stats.flows = self.shadow.len();
    }

    fn take_events(&mut self) {
        let events = self.rings.events.clone();
        for (worker, ring) in events.iter().enumerate() {
            for _ in 0..EVENTS_PER_TICK {
                let Some(e) = ring.pop() else { break };
                match e {
                    FastEvent::Add {
                        key,
                        val,
                        conn,
                        out,
                        dest_id,
                    } => {
                        let touch = Touch {
                            key,
                            conn,
                            out,
                            pkts: 0,
                            bytes: 0,
                        };
                        self.dels.retain(|k| *k != key);
                        self.adds.0.push(key);
                        self.adds.1.push(val);
                        self.adds.2.push(Shadow {
                            worker,
                            touch,
                            dest_id,
                            dest_mac: (!out).then(|| val.dest_mac()),
                        });
                    }
                    FastEvent::Del(key) => {
                        // An add still waiting here is simply not made.
                        if let Some(i) = self.adds.0.iter().rposition(|k| *k == key) {
                            self.adds.0.swap_remove(i);
                            self.adds.1.swap_remove(i);
                            self.adds.2.swap_remove(i);
                        } else {
                            self.dels.push(key);
                        }
                    }
                }
            }
        }
    }

    /// Put the waiting offloads in the map, as many as it has room for.
    fn add(&mut self, steer: &impl FlowMap) {
        let (keys, vals, shadows) = &mut self.adds;
        if keys.is_empty() {
            return;
        }
        // Offloads for servers gone since the worker decided: not made (the
        // worker has the new snapshot by now, or will unload them itself).
        let live = self.live.as_ref();
        let mut i = 0;
        while i < keys.len() {
            if keeps(live, &shadows[i]) {
                i += 1;
            } else {
                keys.swap_remove(i);
                vals.swap_remove(i);
                shadows.swap_remove(i);
            }
        }
        let room = self.capacity.saturating_sub(self.shadow.len());
        let n = keys.len().min(room);
        let taken = match steer.add(&keys[..n], &vals[..n]) {
            Ok(t) => t,
            Err(_) => {
                self.stats.errors += 1;
                0
            }
        };
        self.stats.full += (keys.len() - taken) as u64;
        for (k, s) in keys.iter().zip(shadows.iter()).take(taken) {
            self.shadow.insert(*k, *s);
        }
        keys.clear();
        vals.clear();
        shadows.clear();
    }

    /// Read the map; hand each flow's new packets back to its worker, and
    /// take out flows no worker asked for (left over, say, from a removal
    /// that a full ring lost).
    fn touch(&mut self, steer: &impl FlowMap) {
        let (keys, vals) = &mut self.read;
        if steer.read(keys, vals).is_err() {
            self.stats.errors += 1;
            return;
        }
        let (keys, vals) = std::mem::take(&mut self.read);
        self.stats.in_map = keys.len();
        for (k, v) in keys.iter().zip(vals.iter()) {
            let Some(s) = self.shadow.get(k).copied() else {
                self.dels.push(*k);
                continue;
            };
            if let Some(sent) = self.hand_back(&s, v) {
                if let Some(e) = self.shadow.get_mut(k) {
                    e.touch = sent;
                }
            }
        }
        // The buffers are kept for the next read.
        self.read = (keys, vals);
    }

    /// Hand what the kernel counted for flow `s` since it was last handed
    /// back (its map value is `v`) to its worker; return the counts now
    /// handed back, or `None` when there was nothing new or the ring was
    /// full (the same counts then go with the next read).
    fn hand_back(&self, s: &Shadow, v: &FastVal) -> Option<Touch> {
        let (v_pkts, v_bytes, _) = v.counts();
        let pkts = v_pkts.saturating_sub(s.touch.pkts);
        if pkts == 0 {
            return None;
        }
        let bytes = v_bytes.saturating_sub(s.touch.bytes);
        let t = Touch {
            pkts,
            bytes,
            ..s.touch
        };
        let pushed = self
            .rings
            .touches
            .get(s.worker)
            .is_some_and(|r| r.push(t).is_ok());
        pushed.then_some(Touch {
            pkts: v_pkts,
            bytes: v_bytes,
            ..s.touch
        })
    }

    /// Take out every flow whose server is not in `live` or has moved to
    /// another MAC (its connections go to the workers to be decided again),
    /// and keep `live` for the offloads still on their way. What the
    /// workers pushed before is applied first, so none of it slips past.
    pub fn prune(&mut self, steer: &impl FlowMap, live: Live) {
        self.take_events();
        self.add(steer);
        self.remove(steer, |s| !keeps(Some(&live), s));
        self.live = Some(live);
    }

    fn remove(&mut self, steer: &impl FlowMap, gone: impl Fn(&Shadow) -> bool) {
        let gone: Vec<FastKey> = self
            .shadow
            .iter()
            .filter(|(_, s)| gone(s))
            .map(|(k, _)| *k)
            .collect();
        if !gone.is_empty() {
            steer.remove(&gone);
            for k in &gone {
                self.shadow.remove(k);
            }
        }
        self.stats.flows = self.shadow.len();
    }

    /// Empty the map (`-C`).
    pub fn clear(&mut self, steer: &impl FlowMap) {
        self.take_events();
        self.add(steer);
        self.remove(steer, |_| true);
    }
}

#[cfg(test)]
mod tests;
