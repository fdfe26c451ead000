//! Source hashing, after the kernel's `ip_vs_sh.c`.
//!
//! A static table of 256 buckets in which each server takes `weight`
//! consecutive buckets in turn, indexed by a hash of the client address (and
//! port, with `sh-port`). An unavailable server gives "no destination", or
//! with `sh-fallback` the next bucket of a rehash that holds an available one.

use crate::hash::hash_32;
use crate::{Dests, Flow, SchedFlags, Scheduler};

/// log2 of the table size (`CONFIG_IP_VS_SH_TAB_BITS`).
const TAB_BITS: u32 = 8;
const TAB_SIZE: u32 = 1 << TAB_BITS;

/// Source-hashing state: bucket → server index.
#[derive(Debug, Clone, Default)]
pub struct Sh {
    buckets: Vec<u16>,
    flags: SchedFlags,
}

impl Sh {
    /// Make an empty table honouring `flags`.
    pub fn new(flags: SchedFlags) -> Self {
        Self {
            buckets: Vec::new(),
            flags,
        }
    }

    /// `ip_vs_sh_hashkey()`: hash of address (+ port), then `offset` buckets on.
    fn bucket(&self, flow: &Flow, offset: u32) -> usize {
        let port = if self.flags.port { u32::from(flow.cport) } else { 0 };
        ((offset + hash_32(flow.cip.wrapping_add(port), TAB_BITS)) % TAB_SIZE) as usize
    }
}

impl Scheduler for Sh {
    fn name(&self) -> &'static str {
        "sh"
    }

    fn update<D: Dests + ?Sized>(&mut self, dests: &D) {
        // ip_vs_sh_reassign: stay on a server until it has `weight` buckets
        // (one at least, so a quiesced server keeps its place in the table).
        self.buckets.clear();
        if dests.is_empty() {
            return;
        }
        let (mut d, mut count) = (0, 0);
        for _ in 0..TAB_SIZE {
            self.buckets.push(d as u16);
            count += 1;
            if count >= dests.dest(d).weight {
                d = (d + 1) % dests.len();
                count = 0;
            }
        }
    }

    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, flow: &Flow) -> Option<usize> {
        let usable = |i: usize| i < dests.len() && dests.dest(i).available();
        let first = usize::from(*self.buckets.get(self.bucket(flow, 0))?);
        if usable(first) {
            return Some(first);
        }
        if !self.flags.fallback {
            return None;
        }
        // ip_vs_sh_get_fallback: try every other bucket offset once.
        (1..TAB_SIZE)
            .map(|off| usize::from(self.buckets[self.bucket(flow, off)]))
            .find(|&i| usable(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::weighted;

    fn sh(weights: &[u32], flags: SchedFlags) -> (Sh, Vec<crate::Dest>) {
        let dests = weighted(weights);
        let mut s = Sh::new(flags);
        s.update(&dests[..]);
        (s, dests)
    }

    #[test]
    fn buckets_follow_weights() {
        let (s, _) = sh(&[1, 3], SchedFlags::default());
        let ones = s.buckets.iter().filter(|&&b| b == 0).count();
        assert_eq!((ones, s.buckets.len() - ones), (64, 192));
    }

    #[test]
    fn same_client_same_server_and_port_only_with_sh_port() {
        let (mut s, dests) = sh(&[1, 1, 1, 1], SchedFlags::default());
        let f = |cport| Flow {
            cip: 0x0a00_0002,
            cport,
            ..Flow::default()
        };
        let a = s.pick(&dests[..], &f(1000));
        assert!((1001..1100).all(|p| s.pick(&dests[..], &f(p)) == a));
        let (mut s, dests) = sh(
            &[1, 1, 1, 1],
            SchedFlags {
                port: true,
                fallback: false,
            },
        );
        let spread: std::collections::HashSet<_> = (1000..1100).map(|p| s.pick(&dests[..], &f(p))).collect();
        assert!(spread.len() > 1, "sh-port did not spread ports");
    }

    #[test]
    fn unavailable_server_without_and_with_fallback() {
        let (mut s, mut dests) = sh(&[1, 1], SchedFlags::default());
        let f = Flow {
            cip: 42,
            ..Flow::default()
        };
        let a = s.pick(&dests[..], &f).unwrap();
        dests[a].weight = 0;
        assert_eq!(s.pick(&dests[..], &f), None);
        s.flags.fallback = true;
        assert_eq!(s.pick(&dests[..], &f), Some(1 - a));
    }
}
