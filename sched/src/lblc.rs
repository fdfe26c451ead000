//! Locality-based least connection, after the kernel's `ip_vs_lblc.c`.
//!
//! Meant for cache clusters: requests for one destination address go to the
//! same server while it is not overloaded, keeping that server's cache warm.
//! A cache maps destination address → server; on a miss, or when the cached
//! server is unavailable or "overloaded" (more active connections than its
//! weight while another server has fewer than half its weight), wlc picks
//! and the cache is updated.
//!
//! The cache has a fixed capacity, allocated by the control half; when it is
//! full, entries unused for six minutes are dropped (the kernel's periodic
//! collector does the same), and if none is, the pick stands uncached.

use crate::{Dests, Flow, Least, LoadKind, Scheduler};
use hashbrown::HashMap;

/// Cache capacity: the kernel's `IP_VS_LBLC_TAB_SIZE * 16`.
pub(crate) const MAX_ENTRIES: usize = 1024 * 16;
/// An entry unused this long may be collected when the cache is full.
pub(crate) const ENTRY_TIMEOUT: u32 = 6 * 60;
/// An entry unused this long is stale (`lblc_expiration`, 24 h).
pub(crate) const EXPIRATION: u32 = 24 * 60 * 60;

/// A destination-address-keyed cache of fixed capacity.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cache<V> {
    map: HashMap<u32, (V, u32)>,
    /// `now` of the last collection: a full cache of fresh entries is
    /// scanned at most once a second, not on every miss.
    collected: Option<u32>,
}

impl<V> Cache<V> {
    /// Allocate room for every entry (control half).
    pub(crate) fn reset(&mut self) {
        // Twice the entries, so churn never grows the table (see conntrack).
        self.map = HashMap::with_capacity(MAX_ENTRIES * 2);
    }

    /// Return the fresh entry of `key`, marking it used at `now`.
    pub(crate) fn get_mut(&mut self, key: u32, now: u32) -> Option<&mut V> {
        let (v, lastuse) = self.map.get_mut(&key)?;
        if now.wrapping_sub(*lastuse) > EXPIRATION {
            return None;
        }
        *lastuse = now;
        Some(v)
    }

    /// Store `v` for `key`, collecting idle entries if the cache is full;
    /// return false if there was still no room.
    pub(crate) fn insert(&mut self, key: u32, v: V, now: u32) -> bool {
        if self.map.len() >= MAX_ENTRIES && !self.map.contains_key(&key) {
            if self.collected != Some(now) {
                self.collected = Some(now);
                self.map
                    .retain(|_, (_, used)| now.wrapping_sub(*used) < ENTRY_TIMEOUT);
            }
            if self.map.len() >= MAX_ENTRIES {
                return false;
            }
        }
        self.map.insert(key, (v, now));
        true
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// What lblc and lblcr need besides their cache: wlc for new picks, and how
/// many servers are under half their weight, which `is_overloaded()` asks.
#[derive(Debug, Clone)]
pub(crate) struct Fallback {
    least: Least,
    under_half: Vec<bool>,
    n_under_half: usize,
}

impl Default for Fallback {
    fn default() -> Self {
        Self {
            least: Least::new(LoadKind::Wlc),
            under_half: Vec::new(),
            n_under_half: 0,
        }
    }
}

impl Fallback {
    pub(crate) fn reset<D: Dests + ?Sized>(&mut self, dests: &D) {
        self.least = Least::new(LoadKind::Wlc);
        self.least.reset(dests);
        self.under_half = vec![false; dests.len()];
        self.n_under_half = 0;
        for i in 0..dests.len() {
            self.on_change(dests, i);
        }
    }

    pub(crate) fn on_change<D: Dests + ?Sized>(&mut self, dests: &D, i: usize) {
        self.least.on_change(dests, i);
        let d = dests.dest(i);
        let under = u64::from(d.active_conns) * 2 < u64::from(d.weight);
        if let Some(u) = self.under_half.get_mut(i) {
            if *u != under {
                *u = under;
                if under {
                    self.n_under_half += 1;
                } else {
                    self.n_under_half -= 1;
                }
            }
        }
    }

    /// wlc's pick.
    pub(crate) fn pick<D: Dests + ?Sized>(&self, dests: &D) -> Option<usize> {
        self.least.pick(dests)
    }

    /// `is_overloaded()` of lblc/lblcr: busier than its weight while some
    /// server (any, available or not) is under half its weight.
    pub(crate) fn is_overloaded<D: Dests + ?Sized>(&self, dests: &D, i: usize) -> bool {
        let d = dests.dest(i);
        if d.active_conns <= d.weight {
            return false;
        }
        if self.under_half.len() == dests.len() {
            return self.n_under_half > 0;
        }
        (0..dests.len()).any(|j| {
            let o = dests.dest(j);
            u64::from(o.active_conns) * 2 < u64::from(o.weight)
        })
    }
}

/// Locality-based least-connection state: the cache.
#[derive(Debug, Clone, Default)]
pub struct Lblc {
    cache: Cache<u16>,
    fallback: Fallback,
}

impl Scheduler for Lblc {
    fn name(&self) -> &'static str {
        "lblc"
    }

    fn update<D: Dests + ?Sized>(&mut self, dests: &D) {
        // Server indices change with the list: start a new cache.
        self.cache.reset();
        self.fallback.reset(dests);
    }

    fn on_change<D: Dests + ?Sized>(&mut self, dests: &D, i: usize) {
        self.fallback.on_change(dests, i);
    }

    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, flow: &Flow) -> Option<usize> {
        if let Some(&mut cached) = self.cache.get_mut(flow.vip, flow.now) {
            let i = usize::from(cached);
            if i < dests.len() && dests.dest(i).available() && !self.fallback.is_overloaded(dests, i) {
                return Some(i);
            }
        }
        let i = self.fallback.pick(dests)?;
        self.cache.insert(flow.vip, i as u16, flow.now);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{d, weighted};

    fn flow(vip: u32, now: u32) -> Flow {
        Flow {
            vip,
            now,
            ..Flow::default()
        }
    }

    #[test]
    fn a_destination_sticks_to_its_server() {
        let mut dests = weighted(&[1, 1]);
        let mut s = Lblc::default();
        s.update(&dests[..]);
        assert_eq!(s.pick(&dests[..], &flow(7, 0)), Some(0));
        // Server 0 is now busier, but destination 7 stays with it.
        dests[0].active_conns = 1;
        s.sync(&dests[..]);
        assert_eq!(s.pick(&dests[..], &flow(7, 1)), Some(0));
        // A new destination goes to the least loaded.
        assert_eq!(s.pick(&dests[..], &flow(8, 1)), Some(1));
    }

    #[test]
    fn overloaded_cached_server_moves_the_destination() {
        let mut dests = [d(2, 0), d(4, 0)];
        let mut s = Lblc::default();
        s.update(&dests[..]);
        dests[1].active_conns = 9; // make wlc choose 0 first
        assert_eq!(s.pick(&dests[..], &flow(7, 0)), Some(0));
        // 0 has 3 active > weight 2, and 1 has 1 active < 4/2: overloaded.
        dests[0].active_conns = 3;
        dests[1].active_conns = 1;
        s.sync(&dests[..]);
        assert_eq!(s.pick(&dests[..], &flow(7, 1)), Some(1));
        assert_eq!(s.pick(&dests[..], &flow(7, 2)), Some(1), "cache not updated");
    }

    #[test]
    fn quiesced_cached_server_is_left_and_stale_entries_ignored() {
        let mut dests = weighted(&[1, 1]);
        let mut s = Lblc::default();
        s.update(&dests[..]);
        assert_eq!(s.pick(&dests[..], &flow(7, 0)), Some(0));
        dests[0].weight = 0;
        s.sync(&dests[..]);
        assert_eq!(s.pick(&dests[..], &flow(7, 1)), Some(1));
        dests[0].weight = 1;
        dests[1].active_conns = 1;
        s.sync(&dests[..]);
        // Fresh: stays on 1 though 0 is idler. A day idle: wlc again, so 0.
        assert_eq!(s.pick(&dests[..], &flow(7, 2)), Some(1));
        assert_eq!(s.pick(&dests[..], &flow(7, 3 + EXPIRATION)), Some(0));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let dests = weighted(&[1]);
        let mut s = Lblc::default();
        s.update(&dests[..]);
        for vip in 0..(MAX_ENTRIES as u32 + 100) {
            assert_eq!(s.pick(&dests[..], &flow(vip, 0)), Some(0));
        }
        assert_eq!(s.cache.len(), MAX_ENTRIES);
        // Once the old entries have idled, new ones displace them.
        s.pick(&dests[..], &flow(u32::MAX, ENTRY_TIMEOUT + 1));
        assert_eq!(s.cache.len(), 1);
    }
}
