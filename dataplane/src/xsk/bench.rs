//! The benchmark's kernel side (`src/xdp/bench.bpf.c`): a BPF_PROG_RUN
//! live-frame generator, a counting sink, and the in-kernel XDP_TX forwarder
//! ferrovs is compared with. Used by the `bench` crate only.

mod afxdp;

pub use afxdp::XskGenerator;

use super::bpf::{Map, Object, run_live, run_once};
use std::io;
use std::os::fd::RawFd;

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench.bpf.o"));

use super::layout::{self, gen_cfg as GenCfg};

/// Bytes of a frame's start the generator rewrites on every send.
const HEAD_MAX: usize = layout::HEAD_MAX as usize;

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
    /// TCP connections: 0, frames as `syn_first` says; else each
    /// connection is this many frames of a new flow ([`conn_frame`]; no
    /// stamp: seq and ack carry the connection's numbers).
    pub conn_pkts: u32,
    /// The first frame's number: a run goes on from where the last left
    /// off, so its connections are new ones.
    pub first: u64,
}

/// The server's ISN for a client's (`SERVER_ISN_XOR` in layout.h): the
/// sink answers a SYN with it and the generator acknowledges it, so a
/// stateful path sees numbers that agree, and nobody keeps state.
pub const SERVER_ISN_XOR: u32 = layout::SERVER_ISN_XOR;

/// Frame `phase` of flow `flow`'s connection: TCP flags, seq and ack, as
/// the program's `set_conn` writes them: SYN, ACK, FIN|ACK, ACK (opened by
/// the first two, closed by the last two), the client's ISN from the flow.
pub fn conn_frame(flow: u32, phase: u64) -> (u8, u32, u32) {
    let isn = flow.wrapping_mul(2_654_435_761);
    let sisn = isn ^ SERVER_ISN_XOR;
    let step = match phase {
        0 => 0,
        3 => 2,
        _ => 1,
    };
    let flags = match phase {
        0 => 0x02,
        2 => 0x11,
        _ => 0x10,
    };
    let ack = if phase == 0 { 0 } else { sisn.wrapping_add(step) };
    (flags, isn.wrapping_add(step), ack)
}

/// The flow of frame `n` (counted from [`Pace::first`]) over `nflows`
/// flows visited by `step`, and for connection traffic the frame's place
/// in its connection ([`conn_frame`]).
pub fn frame_flow(n: u64, conn_pkts: u32, nflows: u32, step: u32) -> (u32, Option<u64>) {
    let (n, phase) = match conn_pkts {
        0 => (n, None),
        k => (n / u64::from(k), Some(n % u64::from(k))),
    };
    let nflows = u64::from(nflows.max(1));
    ((n % nflows * u64::from(step) % nflows) as u32, phase)
}

/// The TCP checksum of `frame` (Ethernet, IPv4 without options or IPv6,
/// TCP at `l4`), over the pseudo-header and the segment the IP header
/// says, with the checksum field taken as 0.
pub fn tcp_checksum(frame: &[u8], l4: usize) -> u16 {
    use crate::wire::{fold, sum};
    let v6 = l4 == 54;
    let (addrs, seg_len) = if v6 {
        (
            &frame[22..54],
            usize::from(u16::from_be_bytes([frame[18], frame[19]])),
        )
    } else {
        let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
        (&frame[26..34], total.saturating_sub(20))
    };
    // A length the frame cannot hold is read as far as it goes.
    let end = (l4 + seg_len).clamp(l4 + 20, frame.len());
    let mut s = sum(addrs) + 6 + seg_len as u32;
    s += sum(&frame[l4..l4 + 16]) + sum(&frame[l4 + 18..end]);
    !fold(s)
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
pub const SINK_SLOTS: u32 = layout::SINK_SLOTS;

/// Buckets of the sink's latency histogram (`LAT_BUCKETS`), each
/// [`LAT_BUCKET_NS`] wide; the last also holds everything longer.
pub const LAT_BUCKETS: u32 = layout::LAT_BUCKETS;
/// Width of one latency bucket in ns (`LAT_NS`).
pub const LAT_BUCKET_NS: u64 = layout::LAT_NS as u64;

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
            conn_pkts: pace.conn_pkts,
            pad: 0,
            first: pace.first,
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

    /// Run the program once over `frame` without sending it (plain
    /// BPF_PROG_RUN) and return the frame it would have sent: a test of
    /// what this generator writes, on kernels that refuse live frames too.
    /// Call from one CPU (its count of frames sent is per CPU).
    ///
    /// # Errors
    /// BPF_PROG_RUN failed, or the program did not redirect the frame.
    pub fn write_one(&self, frame: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; frame.len() + 256];
        let (verdict, len) = run_once(self.prog, frame, &mut out)?;
        // XDP_REDIRECT
        if verdict != 4 {
            return Err(io::Error::other(format!(
                "generator verdict {verdict}, not a redirect"
            )));
        }
        out.truncate(len);
        Ok(out)
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
    /// SYNs and FINs answered as the real server (see [`Sink::attach`]).
    pub answered: u64,
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
    /// [`Pace::stamp`]) into its latency histogram; with `answer`, it
    /// answers as the real server of slots 0 and 1: a SYN with a SYN-ACK,
    /// a FIN with a FIN-ACK, sent back out of `ifindex`.
    ///
    /// # Errors
    /// The kernel refused the program or the attach.
    pub fn attach(ifindex: u32, slots: &[SinkSlot], (stamped, answer): (bool, bool)) -> io::Result<Self> {
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
        obj.map::<u32, u32>(c"sink_stamped")?.update(
            &0,
            &(if stamped { layout::SINK_STAMPED } else { 0 } | if answer { layout::SINK_REPLY } else { 0 }),
            "sink mode",
        )?;
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
        c.answered = read(2 * SINK_SLOTS + 3)?;
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
