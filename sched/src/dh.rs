//! Destination hashing, after the kernel's `ip_vs_dh.c`.
//!
//! A static table of 256 buckets, filled with the servers in turn (weights
//! other than 0 play no part, as in the kernel), indexed by a hash of the
//! packet's destination address. A bucket whose server is unavailable gives
//! "no destination"; the table is rebuilt only when the servers change.

use crate::hash::hash_32;
use crate::{Dests, Flow, Scheduler};

/// log2 of the table size (`CONFIG_IP_VS_DH_TAB_BITS`).
const TAB_BITS: u32 = 8;

/// Destination-hashing state: bucket → server index.
#[derive(Debug, Clone, Default)]
pub struct Dh {
    buckets: Vec<u16>,
}

impl Scheduler for Dh {
    fn name(&self) -> &'static str {
        "dh"
    }

    fn update<D: Dests + ?Sized>(&mut self, dests: &D) {
        let n = dests.len();
        self.buckets = if n == 0 {
            Vec::new()
        } else {
            (0..1usize << TAB_BITS).map(|i| (i % n) as u16).collect()
        };
    }

    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, flow: &Flow) -> Option<usize> {
        let i = usize::from(*self.buckets.get(hash_32(flow.vip, TAB_BITS) as usize)?);
        (i < dests.len() && dests.dest(i).available()).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::weighted;

    #[test]
    fn same_destination_same_server_and_all_servers_used() {
        let dests = weighted(&[1, 1, 1]);
        let mut s = Dh::default();
        s.update(&dests[..]);
        let mut used = [false; 3];
        for vip in 0..1000u32 {
            let f = Flow {
                vip,
                cip: vip * 31,
                ..Flow::default()
            };
            let a = s.pick(&dests[..], &f).unwrap();
            let g = Flow { cip: 7, ..f };
            assert_eq!(s.pick(&dests[..], &g), Some(a), "client changed the mapping");
            used[a] = true;
        }
        assert_eq!(used, [true; 3]);
    }
}
