//! Maglev hashing, after the kernel's `ip_vs_mh.c` and the Maglev paper
//! (Eisenbud et al., NSDI 2016).
//!
//! The control half builds a lookup table of prime size M: each server has a
//! permutation of the slots (`offset + j * skip mod M`, from two hashes of its
//! address and port) and, round by round, servers claim their next free
//! preferred slot, each `weight / gcd` times per round, until the table is
//! full. The pick half is one hash of the client address (and port, with
//! `mh-port`) and one table read. Removing one of N servers moves about 1/N
//! of the slots. An unavailable server gives "no destination", or with
//! `mh-fallback` the server of a rehashed slot that is available.
//!
//! Hash functions differ from the kernel's siphash, so a flow may map to
//! another server than under IPVS; the properties are the same.

use crate::hash::{gcd, mix64};
use crate::{Dests, Flow, SchedFlags, Scheduler};

/// Default lookup table size: a prime over 100× a few hundred servers.
pub const DEFAULT_MH_TABLE_SIZE: u32 = 65537;
/// Rehash attempts with `mh-fallback` before "no destination".
const FALLBACK_TRIES: u64 = 256;
/// Empty slot marker during the build.
const EMPTY: u16 = u16::MAX;

/// Maglev state: the lookup table, slot → server index.
#[derive(Debug, Clone)]
pub struct Mh {
    size: u32,
    flags: SchedFlags,
    table: Vec<u16>,
}

impl Mh {
    /// Make an empty scheduler with a table of `size` slots (a prime).
    pub fn new(size: u32, flags: SchedFlags) -> Self {
        Self {
            size: size.max(2),
            flags,
            table: Vec::new(),
        }
    }

    fn slot(&self, flow: &Flow, attempt: u64) -> usize {
        let port = if self.flags.port {
            u64::from(flow.cport) << 32
        } else {
            0
        };
        (mix64(u64::from(flow.cip) | port, attempt) % u64::from(self.size)) as usize
    }

    /// Return the server index of every slot (tests, and `-L` in the future).
    pub fn table(&self) -> &[u16] {
        &self.table
    }
}

/// Return whether `n` is prime (control plane: validating a table size).
pub fn is_prime(n: u32) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

impl Scheduler for Mh {
    fn name(&self) -> &'static str {
        "mh"
    }

    fn update<D: Dests + ?Sized>(&mut self, dests: &D) {
        let m = u64::from(self.size);
        let live: Vec<usize> = (0..dests.len()).filter(|&i| dests.dest(i).weight > 0).collect();
        self.table.clear();
        if live.is_empty() {
            return;
        }
        let g = live.iter().map(|&i| dests.dest(i).weight).fold(0, gcd);
        // (next slot in the permutation, skip, turns per round) per live server.
        let mut perm: Vec<(u64, u64, u32)> = live
            .iter()
            .map(|&i| {
                let d = dests.dest(i);
                let key = u64::from(d.addr) << 16 | u64::from(d.port);
                let offset = mix64(key, 1) % m;
                let skip = mix64(key, 2) % (m - 1) + 1;
                (offset, skip, d.weight / g)
            })
            .collect();
        let mut table = vec![EMPTY; self.size as usize];
        let mut filled = 0u64;
        'rounds: loop {
            for (k, p) in perm.iter_mut().enumerate() {
                for _ in 0..p.2 {
                    // Each server's permutation visits every slot (M prime,
                    // 0 < skip < M), so this finds a free one. Stepping by
                    // `skip` with a conditional subtract avoids a division
                    // per probe.
                    let slot = loop {
                        let c = p.0 as usize;
                        p.0 += p.1;
                        if p.0 >= m {
                            p.0 -= m;
                        }
                        if table[c] == EMPTY {
                            break c;
                        }
                    };
                    table[slot] = live[k] as u16;
                    filled += 1;
                    if filled == m {
                        break 'rounds;
                    }
                }
            }
        }
        self.table = table;
    }

    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, flow: &Flow) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        let usable = |i: usize| i < dests.len() && dests.dest(i).available();
        let tries = if self.flags.fallback { FALLBACK_TRIES } else { 1 };
        (0..tries)
            .map(|a| usize::from(self.table[self.slot(flow, a)]))
            .find(|&i| usable(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dest;
    use crate::testing::weighted;

    fn build(weights: &[u32], size: u32) -> (Mh, Vec<Dest>) {
        let dests = weighted(weights);
        let mut s = Mh::new(size, SchedFlags::default());
        s.update(&dests[..]);
        (s, dests)
    }

    fn shares(s: &Mh, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &i in s.table() {
            c[usize::from(i)] += 1;
        }
        c
    }

    #[test]
    fn empty_endpoints_map_nothing() {
        let (mut s, dests) = build(&[], 251);
        assert!(s.table().is_empty());
        assert_eq!(s.pick(&dests[..], &Flow::default()), None);
    }

    #[test]
    fn determinism() {
        let (a, _) = build(&[1, 2, 3], 65537);
        let (b, _) = build(&[1, 2, 3], 65537);
        assert_eq!(a.table(), b.table());
    }

    #[test]
    fn slot_shares_within_one_percent_of_weight_shares() {
        let weights: Vec<u32> = (0..50).map(|i| 1 + i % 4).collect();
        let (s, _) = build(&weights, 65537);
        let total: u32 = weights.iter().sum();
        for (i, c) in shares(&s, weights.len()).into_iter().enumerate() {
            let want = f64::from(weights[i]) / f64::from(total);
            let got = c as f64 / 65537.0;
            assert!(
                (got - want).abs() <= 0.01 * want.max(0.01),
                "server {i}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn higher_weight_gets_more_slots_and_weight_zero_none() {
        let (s, _) = build(&[1, 2, 0], 251);
        let c = shares(&s, 3);
        assert!(c[1] > c[0], "{c:?}");
        assert_eq!(c[2], 0);
    }

    #[test]
    fn removing_one_of_n_moves_about_one_nth() {
        let n = 20;
        let mut dests = weighted(&vec![1; n]);
        let mut s = Mh::new(65537, SchedFlags::default());
        s.update(&dests[..]);
        let before: Vec<u32> = s.table().iter().map(|&i| dests[usize::from(i)].addr).collect();
        dests.remove(7);
        s.update(&dests[..]);
        let moved = s
            .table()
            .iter()
            .zip(&before)
            .filter(|(i, old)| dests[usize::from(**i)].addr != **old)
            .count();
        // The removed server's own 1/N must move; Maglev adds a little more.
        let bound = 65537.0 * (1.0 / n as f64) * 1.5;
        assert!((moved as f64) <= bound, "moved {moved}, bound {bound}");
        assert!(moved as f64 >= 65537.0 / n as f64 * 0.9);
    }

    #[test]
    fn fallback_finds_an_available_server() {
        let (mut s, mut dests) = build(&[1, 1, 1], 251);
        let f = Flow {
            cip: 99,
            ..Flow::default()
        };
        let a = s.pick(&dests[..], &f).unwrap();
        dests[a].weight = 0;
        assert_eq!(s.pick(&dests[..], &f), None);
        s.flags.fallback = true;
        let b = s.pick(&dests[..], &f).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn primes() {
        assert!(is_prime(65537) && is_prime(251) && is_prime(2));
        assert!(!is_prime(65536) && !is_prime(1) && !is_prime(0));
    }
}
