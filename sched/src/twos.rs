//! Power of two choices, after the kernel's `ip_vs_twos.c`.
//!
//! Draw two servers at random, each with probability proportional to its
//! weight, and keep the one with the smaller `overhead / weight`. The random
//! source is a per-worker xorshift generator: cheap, and deterministic in
//! tests.

use crate::index::Fenwick;
use crate::{Dests, Flow, Scheduler};

/// Two-choices state: the random generator and a Fenwick tree of available
/// servers' weights, so a weighted draw is O(log n) instead of a scan.
#[derive(Debug, Clone)]
pub struct Twos {
    rng: u64,
    weights: Fenwick,
    built_for: usize,
}

impl Default for Twos {
    fn default() -> Self {
        Self {
            rng: 0x2545_F491_4F6C_DD1D,
            weights: Fenwick::default(),
            built_for: usize::MAX,
        }
    }
}

impl Twos {
    fn next(&mut self) -> u64 {
        // xorshift64 (Marsaglia 2003).
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

impl Twos {
    /// The kernel's loop: walk available servers subtracting weights from
    /// both random values; each picks the server where it reaches zero.
    fn draw_by_scan<D: Dests + ?Sized>(
        dests: &D,
        mut r1: i64,
        mut r2: i64,
    ) -> (Option<usize>, Option<usize>) {
        let (mut c1, mut c2) = (None, None);
        for i in (0..dests.len()).filter(|&i| dests.dest(i).available()) {
            let w = i64::from(dests.dest(i).weight);
            r1 -= w;
            r2 -= w;
            if r1 <= 0 && c1.is_none() {
                c1 = Some(i);
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some(i);
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        (c1, c2)
    }
}

impl Scheduler for Twos {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn update<D: Dests + ?Sized>(&mut self, dests: &D) {
        self.weights.reset(dests.len());
        self.built_for = dests.len();
        self.sync(dests);
    }

    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, _flow: &Flow) -> Option<usize> {
        let indexed = self.built_for == dests.len();
        let total = if indexed {
            self.weights.total()
        } else {
            (0..dests.len())
                .filter(|&i| dests.dest(i).available())
                .map(|i| u64::from(dests.dest(i).weight))
                .sum()
        };
        if total == 0 {
            return None;
        }
        // As the kernel: random weights in [0, total] inclusive.
        let r1 = self.next() % (total + 1);
        let r2 = self.next() % (total + 1);
        let (c1, c2) = if indexed {
            // A draw of 0 lands on the first server, as a draw of 1 does.
            (self.weights.select(r1.max(1)), self.weights.select(r2.max(1)))
        } else {
            Self::draw_by_scan(dests, r1 as i64, r2 as i64)
        };
        let (a, b) = (c1?, c2?);
        let (da, db) = (dests.dest(a), dests.dest(b));
        let lighter = u128::from(db.weight) * u128::from(da.overhead())
            > u128::from(da.weight) * u128::from(db.overhead());
        Some(if lighter { b } else { a })
    }

    fn on_change<D: Dests + ?Sized>(&mut self, dests: &D, i: usize) {
        let d = dests.dest(i);
        self.weights
            .set(i, if d.available() { u64::from(d.weight) } else { 0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{d, weighted};

    #[test]
    fn picks_follow_weights_when_idle() {
        let dests = weighted(&[1, 3]);
        let mut s = Twos::default();
        let mut n = [0u32; 2];
        for _ in 0..40_000 {
            n[s.pick(&dests[..], &Flow::default()).unwrap()] += 1;
        }
        // Idle servers tie, so the first draw stands. The kernel draws from
        // [0, total] inclusive, which gives the first server one extra
        // value: P(second) = 3/5, not 3/4.
        let share = f64::from(n[1]) / 40_000.0;
        assert!((0.57..0.63).contains(&share), "{n:?}");
    }

    #[test]
    fn the_less_loaded_of_two_wins() {
        let dests = [d(1, 10), d(1, 0)];
        let mut s = Twos::default();
        let ones = (0..1000)
            .filter(|_| s.pick(&dests[..], &Flow::default()) == Some(1))
            .count();
        // Server 1 loses only when both draws land on server 0; with the
        // inclusive range each does with P = 2/3, so it wins 5/9 of picks.
        assert!((500..620).contains(&ones), "{ones}");
    }
}
