//! Never queue, after the kernel's `ip_vs_nq.c`.
//!
//! An idle server (no active connection) takes the connection at once, the
//! first one in the list; otherwise it is shortest expected delay.

use crate::{Dests, Flow, Least, LoadKind, Scheduler};

/// Never-queue state: a bitmap of idle available servers (first set bit is
/// the kernel's "first idle in the list") and an sed index for the rest.
#[derive(Debug, Clone)]
pub struct Nq {
    idle: Vec<u64>,
    least: Least,
}

impl Default for Nq {
    fn default() -> Self {
        Self {
            idle: Vec::new(),
            least: Least::new(LoadKind::Sed),
        }
    }
}

impl Nq {
    fn first_idle(&self) -> Option<usize> {
        let (w, bits) = self.idle.iter().enumerate().find(|(_, b)| **b != 0)?;
        Some(w * 64 + bits.trailing_zeros() as usize)
    }
}

impl Scheduler for Nq {
    fn name(&self) -> &'static str {
        "nq"
    }

    fn update<D: Dests + ?Sized>(&mut self, dests: &D) {
        self.idle = vec![0; dests.len().div_ceil(64)];
        self.least = Least::new(LoadKind::Sed);
        self.least.reset(dests);
        self.sync(dests);
    }

    #[inline]
    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, _flow: &Flow) -> Option<usize> {
        if self.idle.len() != dests.len().div_ceil(64) {
            // Not built for this list: the kernel's scan.
            let idle = (0..dests.len()).find(|&i| {
                let d = dests.dest(i);
                d.available() && d.active_conns == 0
            });
            return idle.or_else(|| self.least.pick(dests));
        }
        self.first_idle().or_else(|| self.least.pick(dests))
    }

    fn on_change<D: Dests + ?Sized>(&mut self, dests: &D, i: usize) {
        let d = dests.dest(i);
        if let Some(word) = self.idle.get_mut(i / 64) {
            let bit = 1u64 << (i % 64);
            if d.available() && d.active_conns == 0 {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
        self.least.on_change(dests, i);
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{d, pick_once};

    #[test]
    fn table() {
        let cases = [
            (
                "an idle server first, even a light one",
                vec![d(10, 1), d(1, 0)],
                Some(1),
            ),
            ("the first idle one", vec![d(1, 2), d(1, 0), d(9, 0)], Some(1)),
            ("none idle: sed", vec![d(1, 1), d(2, 2), d(3, 3)], Some(2)),
            ("quiesced idle server skipped", vec![d(0, 0), d(1, 3)], Some(1)),
        ];
        for (what, dests, want) in cases {
            assert_eq!(pick_once("nq", &dests), want, "{what}");
        }
    }
}
