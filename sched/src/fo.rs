//! Weighted failover, after the kernel's `ip_vs_fo.c`.
//!
//! The available server with the highest weight takes every new connection;
//! the first of equals wins. Lowering its weight (or quiescing it) fails over.

use crate::{Dests, Flow, Scheduler};

/// Weighted-failover scheduler (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fo;

impl Scheduler for Fo {
    fn name(&self) -> &'static str {
        "fo"
    }

    fn update<D: Dests + ?Sized>(&mut self, _dests: &D) {}

    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, _flow: &Flow) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for i in 0..dests.len() {
            let d = dests.dest(i);
            if d.available() && best.is_none_or(|(_, w)| d.weight > w) {
                best = Some((i, d.weight));
            }
        }
        best.map(|(i, _)| i)
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
