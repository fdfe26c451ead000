//! Weighted overflow, after the kernel's `ip_vs_ovf.c`.
//!
//! The highest-weight server whose active connections do not exceed its
//! weight takes the connection: a server overflows to the next once it holds
//! more active connections than its weight.

use crate::{Dests, Flow, Scheduler};

/// Weighted-overflow scheduler (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ovf;

impl Scheduler for Ovf {
    fn name(&self) -> &'static str {
        "ovf"
    }

    fn update<D: Dests + ?Sized>(&mut self, _dests: &D) {}

    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, _flow: &Flow) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for i in 0..dests.len() {
            let d = dests.dest(i);
            if !d.available() || d.active_conns > d.weight {
                continue;
            }
            if best.is_none_or(|(_, w)| d.weight > w) {
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
            ("highest weight with room", vec![d(2, 0), d(5, 5)], Some(1)),
            ("overflows past its weight", vec![d(2, 0), d(5, 6)], Some(0)),
            ("all overflowing: none", vec![d(1, 2), d(1, 3)], None),
        ];
        for (what, dests, want) in cases {
            assert_eq!(pick_once("ovf", &dests), want, "{what}");
        }
    }
}
