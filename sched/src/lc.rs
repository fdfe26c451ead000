//! Least connection, after the kernel's `ip_vs_lc.c`.
//!
//! The server with the least overhead (active × 256 + inactive) wins; weights
//! other than 0 do not matter. Ties go to the first server in the list, since
//! the kernel replaces its candidate only on a strictly smaller overhead.

use crate::{Dests, Flow, Scheduler};

/// Least-connection scheduler (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct Lc;

impl Scheduler for Lc {
    fn name(&self) -> &'static str {
        "lc"
    }

    fn update<D: Dests + ?Sized>(&mut self, _dests: &D) {}

    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, _flow: &Flow) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for i in 0..dests.len() {
            let d = dests.dest(i);
            if !d.available() {
                continue;
            }
            if least.is_none_or(|(_, loh)| d.overhead() < loh) {
                least = Some((i, d.overhead()));
            }
        }
        least.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use crate::Dest;
    use crate::testing::{d, pick_once};

    #[test]
    fn table() {
        let inactive = |weight, active, inactive| Dest {
            inactive_conns: inactive,
            ..d(weight, active)
        };
        let cases: &[(&str, Vec<Dest>, Option<usize>)] = &[
            ("fewest active wins", vec![d(1, 3), d(1, 1), d(1, 2)], Some(1)),
            ("weights are ignored", vec![d(100, 2), d(1, 1)], Some(1)),
            ("ties go to the first", vec![d(1, 2), d(1, 1), d(1, 1)], Some(1)),
            (
                "one active outweighs 255 inactive",
                vec![inactive(1, 1, 0), inactive(1, 0, 255)],
                Some(1),
            ),
            (
                "256 inactive equal one active",
                vec![inactive(1, 1, 0), inactive(1, 0, 256)],
                Some(0),
            ),
            ("quiesced skipped", vec![d(0, 0), d(1, 9)], Some(1)),
        ];
        for (what, dests, want) in cases {
            assert_eq!(pick_once("lc", dests), *want, "{what}");
        }
    }
}
