//! Never queue, after the kernel's `ip_vs_nq.c`.
//!
//! An idle server (no active connection) takes the connection at once, the
//! first one in the list; otherwise it is shortest expected delay.

use crate::sed::sed_overhead;
use crate::{Dests, Flow, Scheduler, weighted_least};

/// Never-queue scheduler (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct Nq;

impl Scheduler for Nq {
    fn name(&self) -> &'static str {
        "nq"
    }

    fn update<D: Dests + ?Sized>(&mut self, _dests: &D) {}

    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, _flow: &Flow) -> Option<usize> {
        let idle = (0..dests.len()).find(|&i| {
            let d = dests.dest(i);
            d.available() && d.active_conns == 0
        });
        idle.or_else(|| weighted_least(dests, 0..dests.len(), sed_overhead))
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
