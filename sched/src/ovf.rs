//! Weighted overflow, after the kernel's `ip_vs_ovf.c`.
//!
//! The highest-weight server whose active connections do not exceed its
//! weight takes the connection: a server overflows to the next once it holds
//! more active connections than its weight.

use crate::fo::heaviest;
use crate::index::{Heaviest, IndexedHeap};
use crate::{Dest, Dests, Flow, Scheduler};

/// Weighted-overflow state: servers with room, by weight.
#[derive(Debug, Clone, Default)]
pub struct Ovf {
    heaviest: IndexedHeap<Heaviest>,
}

fn has_room(d: &Dest) -> bool {
    d.available() && d.active_conns <= d.weight
}

impl Scheduler for Ovf {
    fn name(&self) -> &'static str {
        "ovf"
    }

    fn update<D: Dests + ?Sized>(&mut self, dests: &D) {
        self.heaviest.reset(dests.len());
        self.sync(dests);
    }

    #[inline]
    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, _flow: &Flow) -> Option<usize> {
        heaviest(&self.heaviest, dests, has_room)
    }

    fn on_change<D: Dests + ?Sized>(&mut self, dests: &D, i: usize) {
        let d = dests.dest(i);
        self.heaviest
            .set(i, has_room(&d).then(|| Heaviest::new(d.weight, i)));
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{d, pick_once};

    #[test]
    fn table() {
        let cases = [
            ("highest weight with room", vec![d(2, 0), d(5, 5)], Some(1)),
            ("overflows past its weight", vec![d(2, 0), d(5, 6)], Some(0)),
            ("all overflowing: none", vec![d(1, 2), d(1, 3)], None),
        ];
        for (what, dests, want) in cases {
            assert_eq!(pick_once("ovf", &dests), want, "{what}");
        }
    }
}
