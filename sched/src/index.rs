//! Indexed structures that let the counting schedulers pick in O(1) or
//! O(log n) instead of scanning every server: the kernel's lc family walks the
//! whole list per connection, which at 4096 servers costs microseconds.
//!
//! The worker reports every change of a server's counts or overload flag
//! ([`crate::Scheduler::on_change`]); the structures update in O(log n) and
//! allocate nothing after [`IndexedHeap::reset`] / [`Fenwick::reset`].

use std::cmp::Ordering;

/// A binary min-heap over server indices with a key per server, where each
/// server can be inserted, re-keyed or removed by index.
#[derive(Debug, Clone)]
pub(crate) struct IndexedHeap<K> {
    heap: Vec<u32>,
    /// Position in `heap` of each server, or `NONE`.
    pos: Vec<u32>,
    keys: Vec<Option<K>>,
}

const NONE: u32 = u32::MAX;

impl<K> Default for IndexedHeap<K> {
    fn default() -> Self {
        Self {
            heap: Vec::new(),
            pos: Vec::new(),
            keys: Vec::new(),
        }
    }
}

impl<K: Ord + Copy> IndexedHeap<K> {
    /// Size for `n` servers and empty it (control half: allocates).
    pub(crate) fn reset(&mut self, n: usize) {
        self.heap = Vec::with_capacity(n);
        self.pos = vec![NONE; n];
        self.keys = vec![None; n];
    }

    /// Return the number of servers it was sized for.
    pub(crate) fn capacity(&self) -> usize {
        self.pos.len()
    }

    /// Return the server with the least key.
    #[inline]
    pub(crate) fn top(&self) -> Option<usize> {
        self.heap.first().map(|&i| i as usize)
    }

    /// Set server `i`'s key, or take it out with `None`.
    pub(crate) fn set(&mut self, i: usize, key: Option<K>) {
        if i >= self.pos.len() {
            return;
        }
        let old = self.keys[i];
        self.keys[i] = key;
        match (old.is_some(), key) {
            (false, None) => {}
            (false, Some(_)) => {
                let at = self.heap.len();
                self.heap.push(i as u32);
                self.pos[i] = at as u32;
                self.up(at);
            }
            (true, None) => self.remove(i),
            (true, Some(k)) => {
                let at = self.pos[i] as usize;
                match old.map(|o| k.cmp(&o)) {
                    Some(Ordering::Less) => self.up(at),
                    _ => self.down(at),
                }
            }
        }
    }

    fn remove(&mut self, i: usize) {
        let at = self.pos[i] as usize;
        let last = self.heap.len() - 1;
        self.swap(at, last);
        self.heap.pop();
        self.pos[i] = NONE;
        if at < self.heap.len() {
            self.down(at);
            self.up(at);
        }
    }

    fn key(&self, at: usize) -> K {
        // Invariant: every index in `heap` has a key.
        self.keys[self.heap[at] as usize].expect("heap member has a key")
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a] as usize] = a as u32;
        self.pos[self.heap[b] as usize] = b as u32;
    }

    fn up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if self.key(at) >= self.key(parent) {
                break;
            }
            self.swap(at, parent);
            at = parent;
        }
    }

    fn down(&mut self, mut at: usize) {
        loop {
            let (l, r) = (2 * at + 1, 2 * at + 2);
            let mut least = at;
            if l < self.heap.len() && self.key(l) < self.key(least) {
                least = l;
            }
            if r < self.heap.len() && self.key(r) < self.key(least) {
                least = r;
            }
            if least == at {
                break;
            }
            self.swap(at, least);
            at = least;
        }
    }
}

/// Load per weight, ordered as the kernel compares it: `h1 * w2 < h2 * w1`,
/// ties to the lower index (the kernel keeps the first server of equals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ratio {
    pub(crate) load: u64,
    pub(crate) weight: u64,
    pub(crate) idx: u32,
}

impl Ord for Ratio {
    fn cmp(&self, other: &Self) -> Ordering {
        (u128::from(self.load) * u128::from(other.weight))
            .cmp(&(u128::from(other.load) * u128::from(self.weight)))
            .then(self.idx.cmp(&other.idx))
    }
}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Highest weight first, ties to the lower index (fo, ovf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Heaviest {
    pub(crate) neg_weight: i64,
    pub(crate) idx: u32,
}

impl Heaviest {
    pub(crate) fn new(weight: u32, idx: usize) -> Self {
        Self {
            neg_weight: -i64::from(weight),
            idx: idx as u32,
        }
    }
}

/// A Fenwick (binary indexed) tree of server weights: prefix sums and
/// weighted selection in O(log n) (twos).
#[derive(Debug, Clone, Default)]
pub(crate) struct Fenwick {
    tree: Vec<u64>,
    values: Vec<u64>,
    sum: u64,
}

impl Fenwick {
    /// Size for `n` servers, all zero (control half: allocates).
    pub(crate) fn reset(&mut self, n: usize) {
        self.tree = vec![0; n + 1];
        self.values = vec![0; n];
        self.sum = 0;
    }

    /// Set server `i`'s value.
    pub(crate) fn set(&mut self, i: usize, v: u64) {
        let Some(old) = self.values.get(i).copied() else {
            return;
        };
        self.values[i] = v;
        self.sum = self.sum.wrapping_add(v).wrapping_sub(old);
        let mut k = i + 1;
        while k < self.tree.len() {
            self.tree[k] = self.tree[k].wrapping_add(v).wrapping_sub(old);
            k += k & k.wrapping_neg();
        }
    }

    /// Return the sum of all values.
    pub(crate) fn total(&self) -> u64 {
        self.sum
    }

    /// Return the first server whose running sum reaches `target` (≥ 1).
    pub(crate) fn select(&self, target: u64) -> Option<usize> {
        let n = self.values.len();
        let (mut pos, mut rem) = (0usize, target);
        // The highest power of two not above n.
        let mut step = if n == 0 {
            0
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next] < rem {
                pos = next;
                rem -= self.tree[next];
            }
            step >>= 1;
        }
        (pos < n).then_some(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_tracks_minimum_through_updates_and_removals() {
        let mut h = IndexedHeap::default();
        h.reset(5);
        for (i, k) in [(0, 5), (1, 3), (2, 9), (3, 1), (4, 7)] {
            h.set(i, Some((k, i)));
        }
        assert_eq!(h.top(), Some(3));
        h.set(3, None);
        assert_eq!(h.top(), Some(1));
        h.set(2, Some((0, 2)));
        assert_eq!(h.top(), Some(2));
        h.set(2, Some((10, 2)));
        assert_eq!(h.top(), Some(1));
        for i in 0..5 {
            h.set(i, None);
        }
        assert_eq!(h.top(), None);
        assert_eq!(h.capacity(), 5);
    }

    #[test]
    fn heap_matches_a_linear_scan_under_random_updates() {
        let mut h = IndexedHeap::default();
        let n = 37;
        h.reset(n);
        let mut keys: Vec<Option<(u32, usize)>> = vec![None; n];
        let mut r = testkit::Rng::new(88172645463325252);
        for _ in 0..20_000 {
            let x = r.next_u64();
            let i = (x % n as u64) as usize;
            let k = if x % 5 == 0 {
                None
            } else {
                Some(((x >> 8) as u32 % 20, i))
            };
            keys[i] = k;
            h.set(i, k);
            let want = keys.iter().flatten().min().map(|&(_, i)| i);
            assert_eq!(h.top(), want);
        }
    }

    #[test]
    fn ratio_orders_like_the_kernel() {
        let r = |load, weight, idx| Ratio { load, weight, idx };
        assert!(r(1, 1, 0) > r(2, 3, 1)); // 1/1 > 2/3
        assert!(r(1, 1, 0) < r(3, 3, 1)); // equal: lower index first
    }

    #[test]
    fn fenwick_selects_by_running_weight() {
        let mut f = Fenwick::default();
        f.reset(4);
        for (i, w) in [(0, 2), (1, 0), (2, 3), (3, 1)] {
            f.set(i, w);
        }
        assert_eq!(f.total(), 6);
        let picks: Vec<_> = (1..=6).map(|t| f.select(t)).collect();
        assert_eq!(picks, [Some(0), Some(0), Some(2), Some(2), Some(2), Some(3)]);
        assert_eq!(f.select(7), None);
        f.set(2, 0);
        assert_eq!(f.select(3), Some(3));
    }
}
