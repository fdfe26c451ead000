//! Least connection, after the kernel's `ip_vs_lc.c`.
//!
//! The server with the least overhead (active × 256 + inactive) wins; weights
//! other than 0 do not matter. Ties go to the first server in the list, since
//! the kernel replaces its candidate only on a strictly smaller overhead.

use crate::{Least, LoadKind};

/// Least-connection scheduler: an index of servers by overhead.
#[derive(Debug, Clone)]
pub struct Lc {
    least: Least,
}

crate::least_scheduler!(Lc, "lc", LoadKind::Lc);

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
