//! Weighted round robin, after the kernel's `ip_vs_wrr.c`.
//!
//! Passes over the server list with a falling current weight `cw`: a server is
//! picked when its weight is at least `cw`. `cw` starts at the maximum weight,
//! falls by the weights' gcd at the end of each pass and wraps back to the
//! maximum; so weights 4:3:2 give A A B A B C A B C. As in the kernel, the
//! maximum is lowered by `gcd - 1` so that the last pass runs with `cw == 1`
//! and still finds a server whose weight fell below the gcd.

use crate::hash::gcd;
use crate::{Dests, Flow, Scheduler};

/// Weighted round-robin state: IPVS's `ip_vs_wrr_mark`.
#[derive(Debug, Clone, Default)]
pub struct Wrr {
    /// Last server picked; `None` is the list head.
    cl: Option<usize>,
    /// Current weight.
    cw: i64,
    /// Maximum weight, less `di - 1`.
    mw: i64,
    /// Decreasing interval: gcd of the positive weights.
    di: i64,
}

impl Scheduler for Wrr {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn update<D: Dests + ?Sized>(&mut self, dests: &D) {
        let weights = (0..dests.len()).map(|i| dests.dest(i).weight);
        let g = weights.clone().filter(|&w| w > 0).fold(0, gcd);
        let max = weights.max().unwrap_or(0);
        // ip_vs_wrr_dest_changed: back to the head, keep cw where it can.
        self.cl = None;
        self.di = i64::from(g.max(1));
        self.mw = i64::from(max) - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    fn pick<D: Dests + ?Sized>(&mut self, dests: &D, _flow: &Flow) -> Option<usize> {
        if self.mw <= 0 || dests.is_empty() {
            return None;
        }
        let n = dests.len();
        let last = self.cl.filter(|&l| l < n);
        let mut pos = last;
        let mut stop: Option<usize> = None;
        let (mut last_pass, mut restarted) = (false, false);
        loop {
            for i in pos.map_or(0, |p| p + 1)..n {
                let d = dests.dest(i);
                if !d.overloaded && i64::from(d.weight) >= self.cw {
                    self.cl = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    self.cl = Some(i);
                    return None;
                }
            }
            pos = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                // Give up after a last pass (cw == 1) that saw every server.
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                // The pass for weight >= 1 began after `last`; finish it up to
                // `last` and no further.
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{picks, weighted};

    fn seq(weights: &[u32], n: usize) -> String {
        let dests = weighted(weights);
        let mut s = Wrr::default();
        s.update(&dests[..]);
        picks(&mut s, &dests, n, 0)
            .into_iter()
            .map(|p| p.map_or('-', |i| (b'A' + i as u8) as char))
            .collect()
    }

    #[test]
    fn weights_4_3_2_give_the_kernel_sequence() {
        assert_eq!(seq(&[4, 3, 2], 18), "AABABCABCAABABCABC");
    }

    #[test]
    fn gcd_shortens_the_passes() {
        // 4:2 has gcd 2: the sequence is that of 2:1.
        assert_eq!(seq(&[4, 2], 6), "AABAAB");
        assert_eq!(seq(&[1, 1, 1], 6), "ABCABC");
    }

    #[test]
    fn quiesced_servers_are_skipped_and_none_left_is_no_destination() {
        assert_eq!(seq(&[0, 2, 1], 6), "BBCBBC");
        assert_eq!(seq(&[0, 0], 3), "---");
    }

    #[test]
    fn shares_follow_weights() {
        let s = seq(&[5, 1, 3], 900);
        let count = |c| s.chars().filter(|&x| x == c).count();
        assert_eq!((count('A'), count('B'), count('C')), (500, 100, 300));
    }
}
