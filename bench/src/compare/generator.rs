//! Which generator sends a run's frames, and sending with it.
//!
//! - `live-frames`: `BPF_PROG_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`, the
//!   program stamping and redirecting each frame in the kernel (as
//!   xdp-trafficgen does): the faster, where the kernel allows it.
//! - `af-xdp`: an AF_XDP socket in copy mode sending from user space, one
//!   per thread on its own queue: works wherever AF_XDP does.
//!
//! `auto` asks the kernel once and takes live frames where they are
//! allowed. The runner measures the chosen one's ceiling (its frames
//! reflected straight back), so no ratio is read past what it can offer.

use dataplane::xsk::bench::{Generator, Pace, XskGenerator, probe_live_frames};
use std::time::{Duration, Instant};

/// The `--generator` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GenChoice {
    /// Live frames where the kernel allows them, else AF_XDP.
    #[default]
    Auto,
    /// BPF_PROG_RUN over live frames only (an error where refused).
    LiveFrames,
    /// AF_XDP TX in copy mode.
    AfXdp,
}

/// A generator that runs on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Gen {
    /// BPF_PROG_RUN over live frames.
    LiveFrames,
    /// AF_XDP TX in copy mode.
    AfXdp,
}

impl Gen {
    /// Its name in the report and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::LiveFrames => "live-frames",
            Self::AfXdp => "af-xdp",
        }
    }
}

/// The order in which the generator visits its flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Ports {
    /// RFC 4814: consecutive frames far apart in the port range (each flow
    /// still once per cycle).
    #[default]
    Pseudorandom,
    /// One flow after the other.
    Sequential,
}

impl Ports {
    /// Its name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pseudorandom => "pseudorandom",
            Self::Sequential => "sequential",
        }
    }
}

/// Resolve `choice` on this kernel: the generator, and why it was taken.
///
/// # Errors
/// Live frames were asked for and the kernel refuses them.
pub fn choose(choice: GenChoice) -> Result<(Gen, String), String> {
    match (choice, probe_live_frames()) {
        (GenChoice::AfXdp, _) => Ok((Gen::AfXdp, "asked for".into())),
        (GenChoice::LiveFrames | GenChoice::Auto, Ok(())) => {
            Ok((Gen::LiveFrames, "live frames allowed".into()))
        }
        (GenChoice::LiveFrames, Err(e)) => Err(format!(
            "--generator live-frames: this kernel refuses BPF_PROG_RUN over live frames ({e}); \
             use --generator af-xdp (or auto, which falls back to it)"
        )),
        (GenChoice::Auto, Err(e)) => Ok((Gen::AfXdp, format!("live frames refused: {e}"))),
    }
}

/// Send `f` out of interface `ifname` (index `ifindex`) over `flows` flows
/// for `secs` from `threads` generators of kind `generator`, each pinned to its
/// own core (one alone: to `cpu`, else the last) with its share of the
/// rate; return what they sent.
pub fn generate(
    generator: Gen,
    (ifname, ifindex): (&str, u32),
    f: &[u8],
    flows: u32,
    pace: Pace,
    (threads, cpu): (usize, Option<usize>),
    secs: f64,
) -> std::io::Result<u64> {
    let share = Pace {
        rate: pace.rate / threads as f64,
        ..pace
    };
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let secs = Duration::from_secs_f64(secs);
    // Each thread makes its own generator (libbpf objects stay on the thread
    // that made them; an AF_XDP socket is one queue's) and reports what it
    // sent.
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..threads)
            .map(|i| {
                // One thread: the last core, away from the first worker
                // (core 0); more: a core each from 0 on.
                let at = if threads == 1 {
                    cpu.unwrap_or(cores.len().saturating_sub(1))
                } else {
                    i
                };
                let core = cores.get(at % cores.len().max(1)).copied();
                s.spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    match generator {
                        Gen::LiveFrames => {
                            let g = Generator::new(ifindex, f, flows, 10_000, share)?;
                            run_live_for(&g, f, secs)?;
                            g.sent()
                        }
                        // Queue i: veth hands it to the peer's queue i, so
                        // thread i feeds worker i.
                        Gen::AfXdp => {
                            XskGenerator::new(ifname, i as u32, f, flows, 10_000, share)?.run_for(secs)
                        }
                    }
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("generator thread")))
            })
            .sum::<std::io::Result<u64>>()
    })
}

/// Keep a live-frame `generator` sending `frame` for about `secs`, in as
/// few BPF_PROG_RUN calls as will do: each call costs tens of ms here
/// outside the run (live-frame set-up and tear-down), a gap in which
/// nothing is sent. A short first call measures the time per run; the next
/// ones are sized to what is left.
pub fn run_live_for(generator: &Generator, frame: &[u8], secs: Duration) -> std::io::Result<()> {
    let start = Instant::now();
    let mut chunk = 50_000u64;
    while let Some(left) = secs.checked_sub(start.elapsed()) {
        let ns = generator.send(frame, chunk as u32)?;
        chunk = (left.as_nanos() as u64 / u64::from(ns.max(1))).clamp(10_000, i32::MAX as u64);
    }
    Ok(())
}
