//! The benchmark's kernel side (`src/xdp/bench.bpf.c`): a BPF_PROG_RUN
//! live-frame generator, a counting sink, and the in-kernel XDP_TX forwarder
//! ferrovs is compared with. Used by the `bench` crate only.

mod afxdp;

pub use afxdp::XskGenerator;

use super::bpf::{Map, Object, Plain, run_live};
use std::io;
use std::os::fd::RawFd;

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench.bpf.o"));

/// Matches `struct gen_cfg` in bench.bpf.c.
#[repr(C)]
#[derive(Clone, Copy)]
struct GenCfg {
    ifindex: u32,
    nflows: u32,
    base_port: u16,
    stamp: u16,
    burst: u32,
    cost_ps: u64,
    syn_first: u64,
    head_len: u32,
    step: u32,
}

// SAFETY: repr(C) of u32, u32, u16, u16, u32, u64, u64, u32, u32: every field
// at its natural alignment, 40 bytes without gaps, any bit pattern valid.
unsafe impl Plain for GenCfg {}

/// Bytes of a frame's start the generator rewrites on every send
/// (`HEAD_MAX`).
const HEAD_MAX: usize = 128;

/// How a generator sends.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pace {
    /// Frames per second; 0 = as fast as the kernel runs the program.
    pub rate: f64,
    /// Write the send time into the first 8 payload bytes (TCP: seq and
    /// ack) for the sink's latency histogram.
    pub stamp: bool,
    /// TCP frames: this many are sent as SYNs first, the rest as ACKs
    /// (`u64::MAX`: all SYNs).
    pub syn_first: u64,
    /// Visit the flows in a pseudorandom order (RFC 4814: each frame's
    /// client port far from the last one's), not one after the other.
    pub pseudorandom: bool,
}

/// The step through `nflows` flows: flow = (n × step) mod nflows for the
/// n-th frame. 1 visits them in order; otherwise the step nearest
/// `nflows` / φ that is coprime with `nflows`, so the order is a
/// permutation (every flow once per cycle) and consecutive frames land far
/// apart in the port range.
pub fn flow_step(nflows: u32, pseudorandom: bool) -> u32 {
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    if !pseudorandom || nflows < 3 {
        return 1;
    }
    let mut step = ((f64::from(nflows) * 0.618_033_988_75) as u32).max(1);
    while gcd(step, nflows) != 1 {
        step += 1;
    }
    step
}

/// Slots of the sink (`SINK_SLOTS`).
pub const SINK_SLOTS: u32 = 16;

/// Buckets of the sink's latency histogram (`LAT_BUCKETS`), each
/// [`LAT_BUCKET_NS`] wide; the last also holds everything longer.
pub const LAT_BUCKETS: u32 = 8192;
/// Width of one latency bucket in ns (`LAT_NS`).
pub const LAT_BUCKET_NS: u64 = 250;

/// Frames of credit a paced generator may save up: bursts stay well under
/// the veth ring (256), so pacing itself never overflows it.
const BURST: u32 = 32;

/// A traffic generator: sends a frame out of an interface many times, each
/// copy from the next of `nflows` client ports, from the calling thread.
#[derive(Debug)]
pub struct Generator {
    _obj: Object,
    prog: RawFd,
    /// `struct gen_state`, per CPU: seq, last_ns, credit_ps, sent.
    state: Map<u32, [u64; 4]>,
}

impl Generator {
    /// Load the generator for interface `ifindex`, sending `frame` (IPv4,
    /// UDP or TCP, no options) over `nflows` flows — client ports counted
    /// from `base_port`, then client addresses — as `pace` says.
    ///
    /// # Errors
    /// The kernel refused the program.
    pub fn new(ifindex: u32, frame: &[u8], nflows: u32, base_port: u16, pace: Pace) -> io::Result<Self> {
        let obj = Object::load(OBJECT, "benchmark programs", &[])?;
        let mut head = [0u8; HEAD_MAX];
        let head_len = frame.len().min(HEAD_MAX);
        head[..head_len].copy_from_slice(&frame[..head_len]);
        obj.map::<u32, [u8; HEAD_MAX]>(c"gen_head")?
            .update(&0, &head, "generator frame")?;
        let cfg = GenCfg {
            ifindex,
            nflows: nflows.max(1),
            base_port,
            stamp: u16::from(pace.stamp),
            burst: BURST,
            cost_ps: if pace.rate > 0.0 {
                (1e12 / pace.rate) as u64
            } else {
                0
            },
            syn_first: pace.syn_first,
            head_len: head_len as u32,
            step: flow_step(nflows.max(1), pace.pseudorandom),
        };
        obj.map::<u32, GenCfg>(c"gen_cfg")?
            .update(&0, &cfg, "generator config")?;
        Ok(Self {
            prog: obj.prog_fd(c"gen")?,
            state: obj.map(c"gen_state")?,
            _obj: obj,
        })
    }

    /// Run the program `count` times over `frame` (each run sends one copy,
    /// or, paced, none when it has no credit); return the kernel's time per
    /// run in ns.
    ///
    /// # Errors
    /// BPF_PROG_RUN failed (no live-frame support, bad frame).
    pub fn send(&self, frame: &[u8], count: u32) -> io::Result<u32> {
        run_live(self.prog, frame, count, 64)
    }

    /// Return the frames sent so far.
    ///
    /// # Errors
    /// The map read failed.
    pub fn sent(&self) -> io::Result<u64> {
        Ok(self.state.percpu_sum(&0)?[3])
    }
}

/// Ask the kernel to run the generator once over a live frame that it
/// drops at once (no flows are configured, so the program aborts): `Ok`
/// where `BPF_PROG_RUN` takes live frames, the kernel's refusal where it
/// does not (hardened kernels, some container runtimes, LSM policies).
///
/// # Errors
/// The refusal, or the program could not be loaded.
pub fn probe_live_frames() -> io::Result<()> {
    let obj = Object::load(OBJECT, "benchmark programs", &[])?;
    let prog = obj.prog_fd(c"gen")?;
    let mut frame = [0u8; 64];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    run_live(prog, &frame, 1, 1).map(|_| ())
}

/// One destination the sink counts: a MAC, and the IPv4 destination its
/// frames must carry (`None`: any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkSlot {
    /// Destination MAC.
    pub mac: [u8; 6],
    /// Destination address, in network order.
    pub dst: Option<[u8; 4]>,
}

/// A counting sink on one interface: frames and bytes per destination MAC.
#[derive(Debug)]
pub struct Sink {
    _obj: Object,
    counts: Map<u32, [u64; 1]>,
    lat: Map<u32, [u64; 1]>,
}

/// What a sink saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounts {
    /// Frames per MAC slot (good ones only).
    pub frames: [u64; SINK_SLOTS as usize],
    /// Bytes per MAC slot.
    pub bytes: [u64; SINK_SLOTS as usize],
    /// Frames to a MAC no slot has.
    pub unknown: u64,
    /// Frames with a wrong IPv4 header checksum (not under any slot).
    pub bad_checksum: u64,
    /// Frames whose IPv4 destination was not their slot's (not under any
    /// slot).
    pub wrong_addr: u64,
}

impl SinkCounts {
    /// Return all frames counted under a slot.
    pub fn total(&self) -> u64 {
        self.frames.iter().sum()
    }
}

impl Sink {
    /// Attach a sink to `ifindex` counting frames to each of `slots` (slot
    /// = index); with `stamped`, it also reads each frame's send time (see
    /// [`Pace::stamp`]) into its latency histogram.
    ///
    /// # Errors
    /// The kernel refused the program or the attach.
    pub fn attach(ifindex: u32, slots: &[SinkSlot], stamped: bool) -> io::Result<Self> {
        let mut obj = Object::load(OBJECT, "benchmark programs", &[])?;
        let macs: Map<u64, u32> = obj.map(c"sink_macs")?;
        let dsts: Map<u32, u32> = obj.map(c"sink_dst")?;
        for (i, slot) in slots.iter().enumerate().take(SINK_SLOTS as usize) {
            // The key is the MAC in the low 6 bytes of a u64, as the program
            // copies it.
            let mut key = [0u8; 8];
            key[..6].copy_from_slice(&slot.mac);
            macs.update(&u64::from_ne_bytes(key), &(i as u32), "sink MAC")?;
            // Network order, as the program compares it.
            let dst = u32::from_ne_bytes(slot.dst.unwrap_or([0; 4]));
            dsts.update(&(i as u32), &dst, "sink address")?;
        }
        obj.map::<u32, u32>(c"sink_stamped")?
            .update(&0, &u32::from(stamped), "sink mode")?;
        obj.attach_xdp(c"sink", ifindex)?;
        Ok(Self {
            counts: obj.map(c"sink_count")?,
            lat: obj.map(c"sink_lat")?,
            _obj: obj,
        })
    }

    /// Read the latency histogram: frames per bucket of [`LAT_BUCKET_NS`].
    ///
    /// # Errors
    /// A map read failed.
    pub fn latency(&self) -> io::Result<Vec<u64>> {
        (0..LAT_BUCKETS)
            .map(|k| Ok(self.lat.percpu_sum(&k)?[0]))
            .collect()
    }

    /// Read the counters.
    ///
    /// # Errors
    /// A map read failed.
    pub fn counts(&self) -> io::Result<SinkCounts> {
        let mut c = SinkCounts::default();
        let read = |k: u32| Ok::<_, io::Error>(self.counts.percpu_sum(&k)?[0]);
        for s in 0..SINK_SLOTS {
            c.frames[s as usize] = read(s)?;
            c.bytes[s as usize] = read(SINK_SLOTS + s)?;
        }
        c.unknown = read(2 * SINK_SLOTS)?;
        c.bad_checksum = read(2 * SINK_SLOTS + 1)?;
        c.wrong_addr = read(2 * SINK_SLOTS + 2)?;
        Ok(c)
    }
}

/// The in-kernel comparison: an XDP program swapping MACs and bouncing each
/// frame back out (XDP_TX) on one interface, attached while this lives.
#[derive(Debug)]
pub struct KernelSwap {
    _obj: Object,
}

impl KernelSwap {
    /// Attach it to `ifindex`.
    ///
    /// # Errors
    /// The kernel refused the program or the attach.
    pub fn attach(ifindex: u32) -> io::Result<Self> {
        let mut obj = Object::load(OBJECT, "benchmark programs", &[])?;
        obj.attach_xdp(c"swap", ifindex)?;
        Ok(Self { _obj: obj })
    }
}
