//! The two forwarders side by side: the worker, and the XDP fast path
//! (steer.bpf.c with fast.bpf.h, the real object, run by `BPF_PROG_RUN`).
//!
//! A worker with the fast path on establishes each connection; the offloads
//! it asks for are put in the program's maps as the control thread puts
//! them; then every frame goes through the kernel first and the worker
//! second. Where the kernel forwards, the worker must forward out of the
//! same link with the same bytes. Where the kernel punts, it must be for
//! the reason the table expects (it leaves the frame to the worker, which
//! is then the only forwarder).
//!
//! The one documented difference: the outer IPv4 id of a TUN packet
//! without DF varies on both sides (a counter in the worker, a random
//! number in the kernel: no CPU there can keep a shared counter), so those
//! two bytes and the header checksum are compared by validity, not value.
//!
//! Needs root (CAP_BPF), as the namespace tests do.

use super::*;
use crate::fast::{FastEvent, FastRings};
use crate::snapshot::NeighFn;
use crate::xsk::{PUNT_NAMES, PUNT_REASONS, Steer};
use etherparse::{IpHeaders, Ipv4Header};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const MTU: usize = 1500;

/// Where the kernel punts, by `PUNT_NAMES` index.
const FLAGS: usize = 0;
const FRAGMENT: usize = 1;
const OPTIONS: usize = 2;
const MTU_PUNT: usize = 3;

/// What the kernel made of a frame.
#[derive(Debug, PartialEq)]
enum Kernel {
    /// XDP_TX with these bytes.
    Forwarded(Vec<u8>),
    /// Left to the sockets, counted under this reason.
    Punted(&'static str),
    /// Not a flow it holds.
    Passed,
}

/// A worker with the fast path on, and the program's maps it fills.
struct Pair {
    f: Forwarder,
    steer: Steer,
    rings: FastRings,
    offloads: usize,
}

impl Pair {
    fn new(rules: &Rules, neigh: NeighFn<'_>) -> Self {
        let mut slots = SlotMap::default();
        slots.assign(rules).unwrap();
        let rings = FastRings::new(1);
        let snap = Snapshot::build(&Input {
            fast: Some(rings.clone()),
            ..Input::new(1, rules, &slots, LINKS, neigh)
        });
        let f = Forwarder::new(
            Update::new(Arc::new(snap)),
            4096,
            Arc::new(WorkerStats::default()),
        );
        let steer = Steer::detached(4096).expect("load the steering program (needs root)");
        steer.set_fast(true).unwrap();
        Self {
            f,
            steer,
            rings,
            offloads: 0,
        }
    }

    /// Carry the worker's offloads and removals into the maps, as the
    /// control thread does.
    fn sync_maps(&mut self) {
        while let Some(e) = self.rings.events[0].pop() {
            match e {
                FastEvent::Add { key, val, .. } => {
                    assert_eq!(self.steer.fast_add(&[key], &[val]).unwrap(), 1);
                    self.offloads += 1;
                }
                FastEvent::Del(key) => self.steer.fast_remove(&[key]),
            }
        }
    }

    fn kernel(&self, frame: &[u8]) -> Kernel {
        let before = self.steer.fast_punts().unwrap();
        let mut out = vec![0u8; frame.len() + 256];
        let (verdict, bytes) = self.steer.test_run(frame, &mut out).unwrap();
        let after = self.steer.fast_punts().unwrap();
        // The last counter is completed checksums, no punt.
        let why = (0..PUNT_REASONS - 1).find(|&i| after[i] != before[i]);
        match (verdict, why) {
            (XDP_TX, None) => Kernel::Forwarded(bytes.to_vec()),
            (XDP_PASS, Some(i)) => Kernel::Punted(PUNT_NAMES[i]),
            (XDP_PASS, None) => Kernel::Passed,
            other => panic!("verdict {} with punt {:?}", other.0, other.1),
        }
    }

    /// The frame through the kernel, then through the worker; where the
    /// kernel forwarded, the worker must have done the same.
    fn both(&mut self, frame: &[u8], now: u32) -> Kernel {
        let k = self.kernel(frame);
        let mut w = frame.to_vec();
        let v = self.f.handle(&mut w, 0, now);
        self.sync_maps();
        if let Kernel::Forwarded(kb) = &k {
            assert_eq!(v, Verdict::Tx(0), "the kernel forwarded {frame:02x?}");
            assert_same(kb, &w, frame);
        }
        k
    }
}

/// Equal bytes, but for the outer id (and so the header checksum) of a TUN
/// packet without DF, which must only be valid on both sides.
fn assert_same(kernel: &[u8], worker: &[u8], input: &[u8]) {
    let tun_no_df =
        kernel.len() > 34 && kernel[12..14] == [8, 0] && kernel[23] == 4 && kernel[20] & 0x40 == 0;
    if !tun_no_df {
        assert_eq!(kernel, worker, "{}", differ(kernel, worker, input));
        return;
    }
    for b in [kernel, worker] {
        assert_eq!(ip_sum(&b[14..34]), 0xffff, "outer checksum of {b:02x?}");
    }
    let mask = |b: &[u8]| {
        let mut b = b.to_vec();
        b[18..20].fill(0);
        b[24..26].fill(0);
        b
    };
    let (k, w) = (mask(kernel), mask(worker));
    assert_eq!(k, w, "{}", differ(&k, &w, input));
}

/// Where `kernel` and `worker` part, for the failure message.
fn differ(kernel: &[u8], worker: &[u8], input: &[u8]) -> String {
    let at = kernel
        .iter()
        .zip(worker)
        .position(|(k, w)| k != w)
        .unwrap_or(kernel.len().min(worker.len()));
    let near = |b: &[u8]| b[at.saturating_sub(4)..(at + 8).min(b.len())].to_vec();
    format!(
        "kernel and worker part at byte {at} (lengths {} and {}): kernel {:02x?}, worker {:02x?}; input {input:02x?}",
        kernel.len(),
        worker.len(),
        near(kernel),
        near(worker)
    )
}

/// The one's complement sum of `b`'s 16-bit words, folded.
fn ip_sum(b: &[u8]) -> u16 {
    let s: u32 = b
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    crate::wire::fold(s)
}

/// One frame of a case.
#[derive(Clone, Copy)]
struct Pkt<'a> {
    v6: bool,
    udp: bool,
    /// From the real server (a NAT reply), not the client.
    reply: bool,
    /// TCP flags: SYN, ACK, FIN.
    flags: (bool, bool, bool),
    payload: usize,
    df: bool,
    mf: bool,
    options: &'a [u8],
    /// The TCP/UDP checksum left as a sender's offload leaves it.
    partial: bool,
}

const DATA: Pkt = Pkt {
    v6: false,
    udp: false,
    reply: false,
    flags: (false, true, false),
    payload: 100,
    df: true,
    mf: false,
    options: &[],
    partial: false,
};

/// One method's service: its ports and real server.
struct Method {
    name: &'static str,
    vport: (u16, u16),
    server: (u8, u16),
    nat: bool,
}

const METHODS: &[Method] = &[
    Method {
        name: "dr",
        vport: (80, 53),
        server: (1, 0),
        nat: false,
    },
    Method {
        name: "nat",
        vport: (8080, 5353),
        server: (1, 9000),
        nat: true,
    },
    Method {
        name: "tun",
        vport: (443, 4789),
        server: (2, 0),
        nat: false,
    },
];

fn rules_of_methods() -> Rules {
    let mut lines = Vec::new();
    for m in METHODS {
        let flag = match m.name {
            "dr" => "-g",
            "nat" => "-m",
            _ => "-i",
        };
        for (proto, vport) in [("-t", m.vport.0), ("-u", m.vport.1)] {
            let rport = if m.server.1 == 0 { vport } else { m.server.1 };
            for (vip, rip) in [
                ("10.0.0.100".to_string(), rip(false, m.server.0).to_string()),
                ("[2001:db8::100]".into(), format!("[{}]", rip(true, m.server.0))),
            ] {
                lines.push(format!("-A {proto} {vip}:{vport} -s rr"));
                lines.push(format!("-a {proto} {vip}:{vport} -r {rip}:{rport} {flag}"));
            }
        }
    }
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    rules(&lines)
}

/// Real server `n` (1 or 2) of the test network: 10.0.0.1n or 2001:db8::1n.
fn rip(v6: bool, n: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10 + u16::from(n)))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10 + n))
    }
}

/// The frame `p` of connection `cport` of `m`.
fn frame(m: &Method, cport: u16, p: Pkt) -> Vec<u8> {
    let vport = if p.udp { m.vport.1 } else { m.vport.0 };
    let rport = if m.server.1 == 0 { vport } else { m.server.1 };
    let (client, vip) = if p.v6 {
        let a = |n| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n));
        (a(2), a(0x100))
    } else {
        (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
        )
    };
    let rip = rip(p.v6, m.server.0);
    let ((src, sport), (dst, dport), macs) = if p.reply {
        ((rip, rport), (client, cport), (RS1_MAC, DIRECTOR_MAC))
    } else {
        ((client, cport), (vip, vport), (CLIENT_MAC, DIRECTOR_MAC))
    };
    let ip = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = Ipv4Header::new(0, 64, etherparse::IpNumber::TCP, s.octets(), d.octets()).unwrap();
            h.dont_fragment = p.df;
            h.more_fragments = p.mf;
            h.options = p.options.try_into().unwrap();
            IpHeaders::Ipv4(h, Default::default())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => IpHeaders::Ipv6(
            etherparse::Ipv6Header {
                hop_limit: 61,
                source: s.octets(),
                destination: d.octets(),
                ..Default::default()
            },
            Default::default(),
        ),
        _ => unreachable!(),
    };
    let b = PacketBuilder::ethernet2(macs.0, macs.1).ip(ip);
    let payload = vec![0x5au8; p.payload];
    let mut v = Vec::new();
    if p.udp {
        b.udp(sport, dport).write(&mut v, &payload).unwrap();
    } else {
        let mut b = b.tcp(sport, dport, 1000, 64240);
        if p.flags.0 {
            b = b.syn();
        }
        if p.flags.1 {
            b = b.ack(1);
        }
        if p.flags.2 {
            b = b.fin();
        }
        b.write(&mut v, &payload).unwrap();
    }
    if p.partial {
        make_partial(&mut v, p.v6, p.udp);
    }
    v
}

/// The folded pseudo-header sum in the TCP/UDP checksum field, as a sender
/// with checksum offload leaves it (Linux's CHECKSUM_PARTIAL).
fn make_partial(v: &mut [u8], v6: bool, udp: bool) {
    let (l3, addrs) = if v6 {
        (54, 22..54)
    } else {
        (14 + usize::from(v[14] & 0x0f) * 4, 26..34)
    };
    let len = v.len() - l3;
    let mut pseudo = v[addrs].to_vec();
    pseudo.extend_from_slice(&[0, if udp { 17 } else { 6 }]);
    pseudo.extend_from_slice(&(len as u16).to_be_bytes());
    let at = l3 + if udp { 6 } else { 16 };
    v[at..at + 2].copy_from_slice(&ip_sum(&pseudo).to_be_bytes());
}

/// Open connection `cport` of `m` on the worker (three-way handshake, or a
/// first datagram) and check the worker offloaded it.
fn establish(pair: &mut Pair, m: &Method, cport: u16, v6: bool, udp: bool) {
    let before = pair.offloads;
    let base = Pkt { v6, udp, ..DATA };
    if udp {
        pair.both(&frame(m, cport, base), 0);
    } else {
        pair.both(
            &frame(
                m,
                cport,
                Pkt {
                    flags: (true, false, false),
                    payload: 0,
                    ..base
                },
            ),
            0,
        );
        if m.nat {
            let synack = Pkt {
                flags: (true, true, false),
                payload: 0,
                reply: true,
                ..base
            };
            pair.both(&frame(m, cport, synack), 0);
        }
        pair.both(&frame(m, cport, Pkt { payload: 0, ..base }), 0);
    }
    let want = if m.nat { 2 } else { 1 };
    assert_eq!(
        pair.offloads - before,
        want,
        "{} v6={v6} udp={udp}: offloads",
        m.name
    );
}

#[test]
fn the_fast_path_forwards_as_the_worker_does_for_every_method() {
    let rules = rules_of_methods();
    let mut pair = Pair::new(&rules, &neigh);
    let mut cport = 40000;
    let mut compared = 0;
    for m in METHODS {
        for v6 in [false, true] {
            for udp in [false, true] {
                cport += 1;
                establish(&mut pair, m, cport, v6, udp);
                let base = Pkt { v6, udp, ..DATA };
                for (what, p, want) in cases(m, base) {
                    let got = pair.both(&frame(m, cport, p), 1);
                    let ok = match (&got, want) {
                        (Kernel::Forwarded(_), None) => true,
                        (Kernel::Punted(why), Some(i)) => *why == PUNT_NAMES[i],
                        _ => false,
                    };
                    assert!(
                        ok,
                        "{} v6={v6} udp={udp} {what}: got {got:?}, want {want:?}",
                        m.name
                    );
                    compared += usize::from(want.is_none());
                }
            }
        }
    }
    eprintln!("{compared} generated frames forwarded by both, alike");
    assert!(compared >= 30, "{compared} frames compared");
}

/// A connection's frames after it is established, each with the punt
/// reason the kernel must give (None: it forwards).
fn cases<'a>(m: &Method, base: Pkt<'a>) -> Vec<(&'static str, Pkt<'a>, Option<usize>)> {
    let mut c = vec![
        ("data", base, None),
        (
            "partial checksum",
            Pkt {
                partial: true,
                ..base
            },
            None,
        ),
        ("no payload", Pkt { payload: 0, ..base }, None),
    ];
    if m.nat {
        c.push(("reply", Pkt { reply: true, ..base }, None));
        c.push((
            "partial reply",
            Pkt {
                reply: true,
                partial: true,
                ..base
            },
            None,
        ));
    }
    if !base.v6 {
        c.push(("no DF", Pkt { df: false, ..base }, None));
        c.push((
            "options",
            Pkt {
                options: &[7, 7, 4, 0, 0, 0, 0, 0],
                ..base
            },
            Some(OPTIONS),
        ));
        c.push((
            "first fragment",
            Pkt {
                mf: true,
                df: false,
                ..base
            },
            Some(FRAGMENT),
        ));
    }
    if m.name == "tun" {
        // The outer header fits the link's MTU with the inner packet at
        // MTU - outer; one byte more does not.
        let (outer, l4) = if base.v6 { (40, 40) } else { (20, 20) };
        let hdr = l4 + if base.udp { 8 } else { 20 };
        let fits = MTU - outer - hdr;
        c.push((
            "at the MTU",
            Pkt {
                payload: fits,
                ..base
            },
            None,
        ));
        c.push((
            "over the MTU",
            Pkt {
                payload: fits + 1,
                ..base
            },
            Some(MTU_PUNT),
        ));
        if !base.v6 {
            c.push((
                "over the MTU, no DF",
                Pkt {
                    payload: fits + 1,
                    df: false,
                    ..base
                },
                None,
            ));
        }
    }
    // Last: the worker takes the flow back from the kernel on a FIN.
    if !base.udp {
        c.push((
            "fin",
            Pkt {
                flags: (false, true, true),
                ..base
            },
            Some(FLAGS),
        ));
    }
    c
}

/// The frame fuzz target's corpus (lab captures and what the fuzzer found
/// from them) and the wire target's, in name order, through one pair with
/// the fuzz target's rules: connections the captures open are offloaded
/// as they would be, and every frame the kernel then forwards must leave
/// the worker the same. The frame corpus's first byte is the clock.
#[test]
fn corpus_frames_the_fast_path_forwards_match_the_worker() {
    let rules = Rules::from_commands("fuzz", include_str!("../../../../fuzz/frame.rules")).unwrap();
    let mut pair = Pair::new(&rules, &|_| Some((RS1_MAC, 0)));
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus");
    let mut inputs = Vec::new();
    for (dir, clocked) in [("frame", true), ("wire", false)] {
        let mut files: Vec<_> = std::fs::read_dir(format!("{corpus}/{dir}"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap();
            match (clocked, data.split_first()) {
                (true, Some((&now, frame))) => inputs.push((u32::from(now), frame.to_vec())),
                (false, _) => inputs.push((0, data)),
                _ => {}
            }
        }
    }
    // BPF_PROG_RUN takes what a NIC could hand XDP: an Ethernet header at
    // least, a frame within the page at most.
    inputs.retain(|(_, f)| (14..=3000).contains(&f.len()));
    let (mut forwarded, mut punted) = (0, 0);
    for (now, frame) in &inputs {
        match pair.both(frame, *now) {
            Kernel::Forwarded(_) => forwarded += 1,
            Kernel::Punted(_) => punted += 1,
            Kernel::Passed => {}
        }
        pair.f.expire(*now, 64);
        pair.f.expire6(*now, 64);
        pair.sync_maps();
    }
    eprintln!(
        "{} corpus frames: {forwarded} forwarded by both, {punted} punted, {} offloads",
        inputs.len(),
        pair.offloads
    );
    assert!(
        inputs.len() > 400,
        "the corpus is missing: {} frames",
        inputs.len()
    );
    assert!(
        forwarded >= 20,
        "only {forwarded} corpus frames reached the fast path"
    );
}
