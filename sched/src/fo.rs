//! Weighted failover, after the kernel's `ip_vs_fo.c`.
//!
//! The available server with the highest weight takes every new connection;
//! the first of equals wins. Lowering its weight (or quiescing it) fails over.

use crate::index::{Heaviest, IndexedHeap};
use crate::{Dests, Flow, Scheduler};

/// Weighted-failover state: available servers by weight.
#[derive(Debug, Clone, Default)]
pub struct Fo {
    heaviest: IndexedHeap<Heaviest>,
}

/// Pick the heaviest server for which `eligible` holds: from the index when
/// it was built for this list, else by the kernel's scan.
pub(crate) fn heaviest<D: Dests + ?Sized>(
    index: &IndexedHeap<Heaviest>,
    dests: &D,
    eligible: impl Fn(&crate::Dest) -> bool,
) -> Option<usize> {
    if index.capacity() == dests.len() {
        return index.top();
    }
    let mut best: Option<(usize, u32)> = None;
    for i in 0..dests.len() {
        let d = dests.dest(i);
        if eligible(&d) && best.is_none_or(|(_, w)| d.weight > w) {
            best = Some((i, d.weight));
        }
    }
    best.map(|(i, _)| i)
}

impl Scheduler for Fo {
    fn name(&self) -> &'static str {
        "fo"
    }

    fn update<D: Dests + ?Sized>(&mut self, dests: &D) {
        self.heaviest.reset(dests.len());
        self.sync(dests);
    }

    #[inline]
    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, _flow: &Flow) -> Option<usize> {
        heaviest(&self.heaviest, dests, crate::Dest::available)
    }

    fn on_change<D: Dests + ?Sized>(&mut self, dests: &D, i: usize) {
        let d = dests.dest(i);
        self.heaviest
            .set(i, d.available().then(|| Heaviest::new(d.weight, i)));
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{d, pick_once};

    #[test]
    fn table() {
        let cases = [
            ("highest weight", vec![d(1, 0), d(5, 100), d(3, 0)], Some(1)),
            ("first of equals", vec![d(5, 0), d(5, 0)], Some(0)),
            (
                "quiesced top fails over",
                vec![d(0, 0), d(2, 0), d(1, 0)],
                Some(1),
            ),
        ];
        for (what, dests, want) in cases {
            assert_eq!(pick_once("fo", &dests), want, "{what}");
        }
    }
}
