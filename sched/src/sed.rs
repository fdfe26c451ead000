//! Shortest expected delay, after the kernel's `ip_vs_sed.c`.
//!
//! Expected delay of a server is `(active + 1) / weight`: the connection
//! would be its `active + 1`-th. Inactive connections do not count.

use crate::{Dest, Least, LoadKind};

/// Shortest-expected-delay scheduler: an index of servers by load per weight.
#[derive(Debug, Clone)]
pub struct Sed {
    least: Least,
}

/// `ip_vs_sed_dest_overhead()`: active connections plus the new one.
pub(crate) fn sed_overhead(d: &Dest) -> u64 {
    u64::from(d.active_conns) + 1
}

crate::least_scheduler!(Sed, "sed", LoadKind::Sed);

#[cfg(test)]
mod tests {
    use crate::testing::{d, pick_once};

    #[test]
    fn table() {
        let cases = [
            // The LVS course example: delays 2/1, 3/2, 4/3 -> the third.
            (
                "weights 1,2,3 with 1,2,3 active",
                vec![d(1, 1), d(2, 2), d(3, 3)],
                Some(2),
            ),
            (
                "an idle heavy server beats an idle light one",
                vec![d(1, 0), d(4, 0)],
                Some(1),
            ),
            ("ties go to the first", vec![d(2, 1), d(2, 1)], Some(0)),
            ("quiesced skipped", vec![d(0, 0), d(1, 5)], Some(1)),
        ];
        for (what, dests, want) in cases {
            assert_eq!(pick_once("sed", &dests), want, "{what}");
        }
    }
}
