//! Weighted least connection, after the kernel's `ip_vs_wlc.c` (ipvsadm's
//! default scheduler).
//!
//! The server with the least `overhead / weight` wins, overhead being
//! active × 256 + inactive; compared as `h1 * w2 > h2 * w1`, no division.

use crate::{Least, LoadKind};

/// Weighted least-connection scheduler: an index of servers by load per weight.
#[derive(Debug, Clone)]
pub struct Wlc {
    least: Least,
}

crate::least_scheduler!(Wlc, "wlc", LoadKind::Wlc);

#[cfg(test)]
mod tests {
    use crate::testing::{d, pick_once};

    #[test]
    fn table() {
        let cases = [
            (
                "weight 3 takes 3x the connections",
                vec![d(1, 1), d(3, 2)],
                Some(1),
            ),
            (
                "at 1:3 exactly, the first keeps it",
                vec![d(1, 1), d(3, 3)],
                Some(0),
            ),
            ("idle beats busy", vec![d(5, 1), d(1, 0)], Some(1)),
            ("quiesced skipped", vec![d(0, 0), d(1, 100)], Some(1)),
        ];
        for (what, dests, want) in cases {
            assert_eq!(pick_once("wlc", &dests), want, "{what}");
        }
    }
}
