//! The second generator: AF_XDP TX in copy mode from the generator's own
//! interface, for kernels that refuse `BPF_PROG_RUN` over live frames
//! (hardened kernels, some container runtimes, LSM policies). It sends the
//! same frames as the live-frame program (`gen` in bench.bpf.c) — the
//! flow's client port and address, SYN then ACK, the send time — written
//! from user space into UMEM frames, paced by a token bucket of its own.
//!
//! One socket per thread, on its own queue: veth hands a frame sent on
//! queue q to the peer's receive queue q, so thread i feeds worker i.
//!
//! Must not touch: the sink or any program on the interface (the socket is
//! bound with libxdp's program load inhibited and receives nothing).

use super::{BURST, Pace};
use crate::worker::{PacketIo, Verdict};
use crate::xsk::port::{BindMode, Port, PortConfig};
use std::io;
use std::time::{Duration, Instant};

/// `CLOCK_MONOTONIC` in ns: the clock of `bpf_ktime_get_ns`, which the
/// sink reads to time a frame from the stamp this generator wrote.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec that outlives the call; with a
    // valid clock id clock_gettime only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// UMEM frames of a generator's socket: as many as its TX ring holds, so
/// it runs out of frames (and waits for completions) before the ring
/// overflows, and no frame is written only to find the ring full.
const FRAMES: u32 = 2048;

/// Frames written per poll at most.
const BATCH: usize = 64;

/// A frame template and where its fields are, as `gen` patches them.
#[derive(Debug, Clone)]
struct Template {
    head: Vec<u8>,
    v6: bool,
    /// Offset of the L4 header.
    l4: usize,
    tcp: bool,
}

impl Template {
    fn new(frame: &[u8]) -> io::Result<Self> {
        let bad = || io::Error::other("generator frame: not Ethernet + IPv4/IPv6 (no options) + TCP/UDP");
        let ethertype = frame.get(12..14).ok_or_else(bad)?;
        let v6 = ethertype == [0x86, 0xdd];
        let (l4, proto) = if v6 {
            (54, *frame.get(20).ok_or_else(bad)?)
        } else if ethertype == [0x08, 0x00] && frame.get(14) == Some(&0x45) {
            (34, *frame.get(23).ok_or_else(bad)?)
        } else {
            return Err(bad());
        };
        let tcp = proto == 6;
        // TCP: the stamp rides in seq and ack; UDP: the first 8 payload bytes.
        let need = if tcp { l4 + 20 } else { l4 + 16 };
        if (proto != 6 && proto != 17) || frame.len() < need {
            return Err(bad());
        }
        Ok(Self {
            head: frame.to_vec(),
            v6,
            l4,
            tcp,
        })
    }

    /// Write flow `flow`'s fields into `f` (a fresh copy of the head): the
    /// client port `base_port + flow % 65536`, the client address plus
    /// `flow / 65536` in its low 16 bits, SYN or ACK, and the stamp.
    fn patch(&self, f: &mut [u8], flow: u32, base_port: u16, tcp: TcpFields, stamp: Option<u64>) {
        let step = (flow >> 16) as u16;
        if step != 0 {
            let at = if self.v6 { 36 } else { 28 };
            let lo = u16::from_be_bytes([f[at], f[at + 1]]).wrapping_add(step);
            f[at..at + 2].copy_from_slice(&lo.to_be_bytes());
            if !self.v6 {
                f[24..26].fill(0);
                let c = crate::wire::checksum(&f[14..34]);
                f[24..26].copy_from_slice(&c.to_be_bytes());
            }
        }
        let l4 = self.l4;
        let port = base_port.wrapping_add(flow as u16);
        f[l4..l4 + 2].copy_from_slice(&port.to_be_bytes());
        if let Some(ns) = stamp {
            let at = if self.tcp { l4 + 4 } else { l4 + 8 };
            f[at..at + 8].copy_from_slice(&ns.to_ne_bytes());
        }
        if self.tcp {
            match tcp {
                TcpFields::Flags(flags) => f[l4 + 13] = flags,
                TcpFields::Conn(flags, seq, ack) => {
                    f[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
                    f[l4 + 8..l4 + 12].copy_from_slice(&ack.to_be_bytes());
                    f[l4 + 13] = flags;
                }
            }
            // A stateful path (conntrack) checks it.
            let c = super::tcp_checksum(f, l4);
            f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        }
    }
}

/// What a TCP frame carries beside the template's fields.
#[derive(Debug, Clone, Copy)]
enum TcpFields {
    /// These flags (seq and ack: the template's, or the stamp).
    Flags(u8),
    /// A connection's frame: flags, seq, ack ([`super::conn_frame`]).
    Conn(u8, u32, u32),
}

/// An AF_XDP generator on one queue of one interface: the frame of
/// [`super::Generator`], over `nflows` flows, as [`Pace`] says.
pub struct XskGenerator {
    port: Port,
    template: Template,
    nflows: u32,
    /// See [`super::flow_step`].
    step: u32,
    base_port: u16,
    pace: Pace,
    seq: u64,
    /// Frames the kernel took off the TX ring and completed.
    produced: u64,
}

impl std::fmt::Debug for XskGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskGenerator")
            .field("nflows", &self.nflows)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl XskGenerator {
    /// Bind a sending socket to queue `queue` of `ifname` for `frame` (IPv4
    /// or IPv6 without options, UDP or TCP).
    ///
    /// # Errors
    /// The frame is not one the generator knows, or the socket could not be
    /// made (no AF_XDP, no such queue, locked-memory limit).
    pub fn new(
        ifname: &str,
        queue: u32,
        frame: &[u8],
        nflows: u32,
        base_port: u16,
        pace: Pace,
    ) -> io::Result<Self> {
        let template = Template::new(frame)?;
        let cfg = PortConfig {
            frames: FRAMES,
            ring: FRAMES,
            batch: BATCH,
            mode: BindMode::Copy,
            rx: false,
            ..PortConfig::default()
        };
        Ok(Self {
            port: Port::open(&[ifname.to_string()], queue, &cfg)?,
            template,
            nflows: nflows.max(1),
            step: super::flow_step(nflows.max(1), pace.pseudorandom),
            base_port,
            pace,
            seq: 0,
            produced: 0,
        })
    }

    /// Write up to `n` frames and hand them to the kernel; return how many
    /// went on the TX ring.
    fn send_batch(&mut self, n: usize) -> usize {
        let (t, nflows, step, base_port, pace) =
            (&self.template, self.nflows, self.step, self.base_port, self.pace);
        let mut seq = self.seq;
        for _ in 0..n {
            let ok = self.port.inject(&t.head, 0, |f, _| {
                let (flow, phase) = super::frame_flow(pace.first + seq, pace.conn_pkts, nflows, step);
                // Connections carry real numbers in seq and ack: no stamp.
                let (fields, stamp) = match phase {
                    Some(p) => {
                        let (flags, s, a) = super::conn_frame(flow, p);
                        (TcpFields::Conn(flags, s, a), None)
                    }
                    None => (
                        TcpFields::Flags(if seq < pace.syn_first { 0x02 } else { 0x10 }),
                        pace.stamp.then(monotonic_ns),
                    ),
                };
                t.patch(f.bytes(), flow, base_port, fields, stamp);
                Verdict::Tx(0)
            });
            if !ok {
                break;
            }
            seq += 1;
        }
        let b = self.port.poll(|_, _| Verdict::Consumed);
        // What found the ring full was not sent: its flow goes again.
        self.seq = seq - b.tx_full as u64;
        self.produced += b.tx as u64;
        b.tx
    }

    /// Send for `secs`, paced or flat out; return the frames sent (put on
    /// the ring and completed by the kernel) over the whole life of this
    /// generator.
    ///
    /// # Errors
    /// None today: a full ring is waited out, not an error.
    pub fn run_for(&mut self, secs: Duration) -> io::Result<u64> {
        let start = Instant::now();
        let end = start + secs;
        // Token bucket in frames: at most BURST saved up, as the program's.
        let mut credit = 0f64;
        let mut last = start;
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            let n = if self.pace.rate > 0.0 {
                credit =
                    (credit + now.duration_since(last).as_secs_f64() * self.pace.rate).min(f64::from(BURST));
                last = now;
                (credit as usize).min(BATCH)
            } else {
                BATCH
            };
            let sent = self.send_batch(n);
            credit -= sent as f64;
        }
        // Completions of what is still in flight: the kernel finishes each
        // frame it took (sent or dropped by the peer's full ring) promptly.
        let drain = Instant::now() + Duration::from_millis(200);
        while self.port.in_flight() > 0 && Instant::now() < drain {
            self.send_batch(0);
        }
        Ok(self.produced - self.port.in_flight() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pseudorandom_order_visits_every_flow_once_a_cycle() {
        for n in [1u32, 2, 3, 10, 256, 1000, 65_536, 1_000_000] {
            let step = super::super::flow_step(n, true);
            let mut seen = vec![false; n as usize];
            for seq in 0..u64::from(n) {
                let f = super::super::frame_flow(seq, 0, n, step).0 as usize;
                assert!(!seen[f], "{n}: flow {f} twice");
                seen[f] = true;
            }
            // Consecutive frames are far apart, not neighbours.
            if n >= 256 {
                assert!(
                    step > n / 4 && u64::from(step) < u64::from(n) * 3 / 4,
                    "{n}: {step}"
                );
            }
        }
        assert_eq!(super::super::flow_step(1000, false), 1);
    }

    #[test]
    fn a_connection_is_its_frames_on_one_new_flow() {
        let step = super::super::flow_step(1 << 24, true);
        let flows: Vec<(u32, Option<u64>)> = (100..108)
            .map(|n| super::super::frame_flow(n, 4, 1 << 24, step))
            .collect();
        let frames: Vec<(u8, u32, u32)> = flows
            .iter()
            .map(|&(flow, p)| super::super::conn_frame(flow, p.unwrap()))
            .collect();
        let flags: Vec<u8> = frames.iter().map(|f| f.0).collect();
        assert_eq!(flags, [0x02, 0x10, 0x11, 0x10, 0x02, 0x10, 0x11, 0x10]);
        assert!(flows[..4].iter().all(|f| f.0 == flows[0].0));
        assert!(flows[4..].iter().all(|f| f.0 == flows[4].0));
        assert_ne!(flows[0].0, flows[4].0);
        // The numbers of a handshake and a close: ACK and FIN acknowledge
        // the server's ISN, the last ACK its FIN; seq moves past SYN and FIN.
        let (isn, sisn) = (frames[0].1, frames[0].1 ^ super::super::SERVER_ISN_XOR);
        assert_eq!(frames[0].2, 0);
        assert_eq!((frames[1].1, frames[1].2), (isn + 1, sisn + 1));
        assert_eq!((frames[2].1, frames[2].2), (isn + 1, sisn + 1));
        assert_eq!((frames[3].1, frames[3].2), (isn + 2, sisn + 2));
        // Opened only: SYN, ACK.
        assert_eq!(super::super::frame_flow(7, 2, 16, 1), (3, Some(1)));
    }

    fn udp4() -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 64, 0, 0]);
        let c = crate::wire::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f
    }

    #[test]
    fn flows_past_a_port_range_take_the_next_address_with_a_right_checksum() {
        let t = Template::new(&udp4()).unwrap();
        let mut f = t.head.clone();
        t.patch(
            &mut f,
            65_536 + 7,
            10_000,
            TcpFields::Flags(0x10),
            Some(0x0102_0304_0506_0708),
        );
        assert_eq!(&f[26..30], &[10, 64, 0, 1]);
        assert_eq!(crate::wire::checksum(&f[14..34]), 0);
        assert_eq!(u16::from_be_bytes([f[34], f[35]]), 10_007);
        assert_eq!(&f[42..50], &0x0102_0304_0506_0708u64.to_ne_bytes());
    }

    #[test]
    fn tcp_frames_are_syn_then_ack_with_the_stamp_in_seq_and_ack() {
        let mut f = udp4();
        f[23] = 6;
        f[16..18].copy_from_slice(&46u16.to_be_bytes());
        // Data offset: 5 words.
        f[34 + 12] = 5 << 4;
        f[14 + 10..14 + 12].fill(0);
        let c = crate::wire::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        let t = Template::new(&f).unwrap();
        let mut g = t.head.clone();
        t.patch(&mut g, 3, 10_000, TcpFields::Flags(0x02), Some(42));
        assert_eq!(g[34 + 13], 0x02);
        assert_eq!(&g[38..46], &42u64.to_ne_bytes());
        t.patch(&mut g, 3, 10_000, TcpFields::Flags(0x10), None);
        assert_eq!(g[34 + 13], 0x10);
        // The checksum follows, as a receiver's stack computes it.
        let c = etherparse::Ipv4Header::from_slice(&g[14..]).unwrap().0;
        let tcp = etherparse::TcpHeader::from_slice(&g[34..]).unwrap().0;
        let payload = &g[54..14 + usize::from(c.total_len)];
        assert_eq!(tcp.checksum, tcp.calc_checksum_ipv4(&c, payload).unwrap());
    }

    /// A 64-byte TCP frame to 10.50.0.100:9 with its checksum right.
    fn tcp4() -> Vec<u8> {
        let mut f = udp4();
        f[23] = 6;
        f[16..18].copy_from_slice(&46u16.to_be_bytes());
        f[30..34].copy_from_slice(&[10, 50, 0, 100]);
        f[36..38].copy_from_slice(&9u16.to_be_bytes());
        f[34 + 12] = 5 << 4;
        f[24..26].fill(0);
        let c = crate::wire::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        let c = super::super::tcp_checksum(&f, 34);
        f[50..52].copy_from_slice(&c.to_be_bytes());
        f
    }

    /// Needs CAP_BPF (root), as the other tests of the programs.
    #[test]
    fn both_generators_write_the_same_connection_frames() {
        // The program counts what it sent per CPU: stay on one.
        if let Some(core) = core_affinity::get_core_ids().and_then(|c| c.first().copied()) {
            core_affinity::set_for_current(core);
        }
        let template = tcp4();
        let pace = Pace {
            conn_pkts: 4,
            first: 1_000_003,
            pseudorandom: true,
            ..Pace::default()
        };
        let nflows = 1 << 24;
        let g = super::super::Generator::new(1, &template, nflows, 10_000, pace).unwrap();
        let t = Template::new(&template).unwrap();
        let step = super::super::flow_step(nflows, true);
        for seq in 0..12u64 {
            let kernel = g.write_one(&template).unwrap();
            let (flow, phase) = super::super::frame_flow(pace.first + seq, 4, nflows, step);
            let (flags, s, a) = super::super::conn_frame(flow, phase.unwrap());
            let mut ours = template.clone();
            t.patch(&mut ours, flow, 10_000, TcpFields::Conn(flags, s, a), None);
            assert_eq!(kernel, ours, "frame {seq}");
            // And a receiver's stack takes both.
            let ip = etherparse::Ipv4Header::from_slice(&ours[14..]).unwrap().0;
            let tcp = etherparse::TcpHeader::from_slice(&ours[34..]).unwrap().0;
            let payload = &ours[54..14 + usize::from(ip.total_len)];
            assert_eq!(tcp.checksum, tcp.calc_checksum_ipv4(&ip, payload).unwrap());
        }
    }

    #[test]
    fn a_frame_it_cannot_patch_is_refused() {
        assert!(Template::new(&[0u8; 20]).is_err());
        let mut arp = udp4();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(Template::new(&arp).is_err());
        assert!(Template::new(&udp4()[..40]).is_err());
    }
}
