//! Frame-level tests of the forwarder, with etherparse as an independent
//! builder and oracle.

use super::*;
use crate::snapshot::{Input, LinkSnap, SlotMap, Snapshot};
use config::Rules;
use etherparse::{PacketBuilder, SlicedPacket};
use std::net::{Ipv4Addr, Ipv6Addr};

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const DIRECTOR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const RS1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
const RS2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x12];
const CIP: [u8; 4] = [10, 0, 0, 2];
const VIP: [u8; 4] = [10, 0, 0, 100];
/// The director's one link (TUN's outer source 10.0.0.10).
const LINKS: &[LinkSnap] = &[LinkSnap {
    mac: DIRECTOR_MAC,
    addr: 0x0a00_000a,
    addr6: 0x2001_0db8_0000_0000_0000_0000_0000_000a,
    mtu: 1500,
    ifindex: 0,
}];

fn rules(lines: &[&str]) -> Rules {
    Rules::from_commands("test", &lines.join("\n")).unwrap()
}

fn neigh(a: IpAddr) -> Option<([u8; 6], u8)> {
    match a {
        IpAddr::V4(a) if a.octets() == [10, 0, 0, 11] => Some((RS1_MAC, 0)),
        IpAddr::V4(a) if a.octets() == [10, 0, 0, 12] => Some((RS2_MAC, 0)),
        IpAddr::V6(a) if a == Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11) => Some((RS1_MAC, 0)),
        IpAddr::V6(a) if a == Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x12) => Some((RS2_MAC, 0)),
        _ => None,
    }
}

fn update(r: &Rules, slots: &mut SlotMap, version: u64) -> Update {
    slots.assign(r).unwrap();
    Update::new(Arc::new(Snapshot::build(&Input::new(
        version, r, slots, LINKS, &neigh,
    ))))
}

const TWO_RS: &[&str] = &[
    "-A -t 10.0.0.100:80 -s rr",
    "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1",
    "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 1",
    "-A -u 10.0.0.100:53 -s rr",
    "-a -u 10.0.0.100:53 -r 10.0.0.11:53 -g",
];

fn forwarder(lines: &[&str]) -> (Forwarder, SlotMap) {
    let mut slots = SlotMap::default();
    let u = update(&rules(lines), &mut slots, 1);
    (Forwarder::new(u, 1024, Arc::new(WorkerStats::default())), slots)
}

/// A forwarder whose rules change under it, as the control plane changes them.
struct Live {
    f: Forwarder,
    rules: Rules,
    slots: SlotMap,
    version: u64,
}

impl Live {
    fn new(lines: &[&str]) -> Self {
        let (f, slots) = forwarder(lines);
        Self {
            f,
            rules: rules(lines),
            slots,
            version: 1,
        }
    }

    /// Publish the same rules again.
    fn republish(&mut self) -> Update {
        self.version += 1;
        let u = update(&self.rules, &mut self.slots, self.version);
        self.f.install(u)
    }

    /// Delete server `id` as the daemon does (`edit` sets its weight to 0):
    /// it stays in the workers' rules, marked deleted, so its connections can
    /// still reach it; `expire` is `--expire-nodest-conn`.
    fn delete_to_trash(&mut self, edit: &str, id: u32, expire: bool) -> Update {
        let args: Vec<&str> = edit.split_whitespace().collect();
        self.rules.apply(&config::ipvsadm::parse(&args).unwrap()).unwrap();
        self.version += 1;
        self.slots.assign(&self.rules).unwrap();
        let snap = Snapshot::build(&Input {
            deleted: &|d| d == id,
            expire_nodest_conn: expire,
            ..Input::new(self.version, &self.rules, &self.slots, LINKS, &neigh)
        });
        self.f.install(Update::new(Arc::new(snap)))
    }

    /// Apply an ipvsadm command and install the result; return the old rules.
    fn change(&mut self, line: &str) -> Update {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.rules.apply(&config::ipvsadm::parse(&args).unwrap()).unwrap();
        self.version += 1;
        let u = update(&self.rules, &mut self.slots, self.version);
        self.f.install(u)
    }
}

#[derive(Clone, Copy)]
enum Seg {
    Syn,
    Ack,
    Fin,
}

fn tcp(cport: u16, dport: u16, seg: Seg) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(CIP, VIP, 64)
        .tcp(cport, dport, 1000, 64240);
    let b = match seg {
        Seg::Syn => b.syn(),
        Seg::Ack => b.ack(1),
        Seg::Fin => b.ack(1).fin(),
    };
    let mut v = Vec::new();
    b.write(&mut v, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    v
}

fn udp(cport: u16, dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(CIP, VIP, 64)
        .udp(cport, dport)
        .write(&mut v, b"query")
        .unwrap();
    v
}

/// Run one frame through; return the verdict and the rewritten frame.
fn send(f: &mut Forwarder, frame: &[u8], now: u32) -> (Verdict, Vec<u8>) {
    let mut buf = frame.to_vec();
    let v = f.handle(&mut buf, 0, now);
    (v, buf)
}

fn dst_mac(frame: &[u8]) -> [u8; 6] {
    match SlicedPacket::from_ethernet(frame).unwrap().link {
        Some(etherparse::LinkSlice::Ethernet2(e)) => e.destination(),
        other => panic!("not ethernet: {other:?}"),
    }
}

#[test]
fn dr_rewrites_macs_and_nothing_else() {
    let (mut f, _) = forwarder(TWO_RS);
    let input = tcp(40000, 80, Seg::Syn);
    let (v, out) = send(&mut f, &input, 0);
    assert_eq!(v, Verdict::Tx(0));
    let p = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(e)) = p.link else {
        panic!()
    };
    assert_eq!(e.destination(), RS1_MAC);
    assert_eq!(e.source(), DIRECTOR_MAC);
    // IP header, TCP header and payload are untouched, checksums included.
    assert_eq!(out[12..], input[12..]);
    assert_eq!(out.len(), input.len());
}

#[test]
fn rr_spreads_connections_and_each_connection_sticks() {
    let (mut f, _) = forwarder(TWO_RS);
    let mut seen = Vec::new();
    for cport in 40000..40010 {
        let (v, out) = send(&mut f, &tcp(cport, 80, Seg::Syn), 0);
        assert_eq!(v, Verdict::Tx(0));
        let rs = dst_mac(&out);
        seen.push(rs);
        for seg in [Seg::Ack, Seg::Ack, Seg::Fin] {
            let (v, out) = send(&mut f, &tcp(cport, 80, seg), 1);
            assert_eq!(v, Verdict::Tx(0));
            assert_eq!(dst_mac(&out), rs, "a connection changed server");
        }
    }
    assert_eq!(seen.iter().filter(|m| **m == RS1_MAC).count(), 5);
    assert_eq!(seen.iter().filter(|m| **m == RS2_MAC).count(), 5);
    assert_ne!(seen[0], seen[1]);
}

#[test]
fn udp_is_forwarded_and_sticks() {
    let (mut f, _) = forwarder(TWO_RS);
    for _ in 0..3 {
        let (v, out) = send(&mut f, &udp(5353, 53), 0);
        assert_eq!(v, Verdict::Tx(0));
        assert_eq!(dst_mac(&out), RS1_MAC);
    }
    assert_eq!(f.table().len(), 1);
}

#[test]
fn tcp_without_syn_for_unknown_flow_is_dropped() {
    let (mut f, _) = forwarder(TWO_RS);
    let (v, _) = send(&mut f, &tcp(40000, 80, Seg::Ack), 0);
    assert_eq!(v, Verdict::Drop(Reason::NoConnection));
    assert_eq!(f.stats().drops(Reason::NoConnection), 1);
    assert!(f.table().is_empty());
}

#[test]
fn frame_for_no_service_is_dropped() {
    let (mut f, _) = forwarder(TWO_RS);
    let (v, _) = send(&mut f, &tcp(40000, 443, Seg::Syn), 0);
    assert_eq!(v, Verdict::Drop(Reason::NoService));
}

#[test]
fn first_packet_without_a_usable_server_is_dropped_and_counted() {
    let cases = [
        ("-a -t 10.0.0.100:80 -r 10.0.0.99:80 -g", Reason::NoNeighbour),
        (
            "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 0",
            Reason::NoDestination,
        ),
    ];
    for (dest, reason) in cases {
        let (mut f, _) = forwarder(&["-A -t 10.0.0.100:80 -s rr", dest]);
        let (v, _) = send(&mut f, &tcp(40000, 80, Seg::Syn), 0);
        assert_eq!(v, Verdict::Drop(reason), "{dest}");
        assert_eq!(f.stats().drops(reason), 1, "{dest}");
        assert!(f.table().is_empty(), "{dest}: a connection without a server");
    }
}

#[test]
fn quiesced_server_keeps_its_connections_but_takes_no_new_ones() {
    let mut l = Live::new(TWO_RS);
    let (_, out) = send(&mut l.f, &tcp(40000, 80, Seg::Syn), 0);
    assert_eq!(dst_mac(&out), RS1_MAC);
    let old = l.change("-e -t 10.0.0.100:80 -r 10.0.0.11:80 -w 0");
    assert_eq!(old.snap.version, 1);
    let (v, out) = send(&mut l.f, &tcp(40000, 80, Seg::Ack), 1);
    assert_eq!((v, dst_mac(&out)), (Verdict::Tx(0), RS1_MAC));
    for cport in 40001..40005 {
        let (_, out) = send(&mut l.f, &tcp(cport, 80, Seg::Syn), 1);
        assert_eq!(dst_mac(&out), RS2_MAC);
    }
}

#[test]
fn scheduler_state_survives_an_update_that_changes_no_server() {
    let mut l = Live::new(TWO_RS);
    let (_, out) = send(&mut l.f, &tcp(40000, 80, Seg::Syn), 0);
    assert_eq!(dst_mac(&out), RS1_MAC);
    // Editing another service's server changes nothing for this one.
    l.change("-e -u 10.0.0.100:53 -r 10.0.0.11:53 -w 2");
    let (_, out) = send(&mut l.f, &tcp(40001, 80, Seg::Syn), 0);
    assert_eq!(dst_mac(&out), RS2_MAC, "rr restarted its lap");
}

#[test]
fn deleted_server_connections_are_dropped_as_dest_gone() {
    let mut l = Live::new(TWO_RS);
    send(&mut l.f, &tcp(40000, 80, Seg::Syn), 0);
    l.change("-d -t 10.0.0.100:80 -r 10.0.0.11:80");
    let (v, _) = send(&mut l.f, &tcp(40000, 80, Seg::Ack), 1);
    assert_eq!(v, Verdict::Drop(Reason::DestGone));
}

const RS1_TO_TRASH: &str = "-e -t 10.0.0.100:80 -r 10.0.0.11:80 -w 0";

#[test]
fn deleted_server_keeps_its_connections_and_takes_no_new_ones() {
    let mut l = Live::new(TWO_RS);
    let (_, out) = send(&mut l.f, &tcp(40000, 80, Seg::Syn), 0);
    assert_eq!(dst_mac(&out), RS1_MAC);
    l.delete_to_trash(RS1_TO_TRASH, 1, false);
    let (v, out) = send(&mut l.f, &tcp(40000, 80, Seg::Ack), 1);
    assert_eq!((v, dst_mac(&out)), (Verdict::Tx(0), RS1_MAC));
    for cport in 40001..40004 {
        let (_, out) = send(&mut l.f, &tcp(cport, 80, Seg::Syn), 1);
        assert_eq!(dst_mac(&out), RS2_MAC);
    }
}

#[test]
fn expire_nodest_conn_drops_and_forgets_the_connection() {
    let mut l = Live::new(TWO_RS);
    send(&mut l.f, &tcp(40000, 80, Seg::Syn), 0);
    let rs1 = l.slots.slot(1).unwrap();
    let stats = Arc::clone(&l.f.stats);
    assert_eq!(stats.dest(rs1).inactive.get() + stats.dest(rs1).active.get(), 1);
    l.delete_to_trash(RS1_TO_TRASH, 1, true);
    let (v, _) = send(&mut l.f, &tcp(40000, 80, Seg::Ack), 1);
    assert_eq!(v, Verdict::Drop(Reason::DestGone));
    // Forgotten, and off the server's counts, so the slot can be freed.
    assert_eq!(stats.dest(rs1).inactive.get() + stats.dest(rs1).active.get(), 0);
    let (v, _) = send(&mut l.f, &tcp(40000, 80, Seg::Ack), 1);
    assert_eq!(v, Verdict::Drop(Reason::NoConnection));
    let (_, out) = send(&mut l.f, &tcp(40000, 80, Seg::Syn), 2);
    assert_eq!(dst_mac(&out), RS2_MAC);
}

#[test]
fn a_template_does_not_lead_to_a_deleted_server() {
    let mut l = Live::new(&[
        "-A -t 10.0.0.100:80 -s rr -p 60",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g",
        "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g",
    ]);
    let (_, out) = send(&mut l.f, &tcp(40000, 80, Seg::Syn), 0);
    assert_eq!(dst_mac(&out), RS1_MAC);
    l.delete_to_trash(RS1_TO_TRASH, 1, false);
    let (_, out) = send(&mut l.f, &tcp(40001, 80, Seg::Syn), 1);
    assert_eq!(dst_mac(&out), RS2_MAC);
}

#[test]
fn upper_threshold_overloads_and_expiry_clears_it() {
    let (mut f, slots) = forwarder(&[
        "-A -t 10.0.0.100:80 -s rr",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -x 2",
        "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g",
    ]);
    let rs1 = slots.slot(1).unwrap();
    let mut macs = Vec::new();
    for cport in 40000..40006 {
        let (_, out) = send(&mut f, &tcp(cport, 80, Seg::Syn), 0);
        macs.push(dst_mac(&out));
    }
    // rr alternates until rs1 holds 2 connections, then only rs2 is used.
    assert_eq!(macs, [RS1_MAC, RS2_MAC, RS1_MAC, RS2_MAC, RS2_MAC, RS2_MAC]);
    assert_eq!(f.stats().dest(rs1).overloaded.get(), 1);
    // SYN_RECV entries live 30 s: all expire, rs1 drops below 3/4 of 2.
    f.expire(61, usize::MAX);
    assert_eq!(f.stats().dest(rs1).overloaded.get(), 0);
    let (_, out) = send(&mut f, &tcp(41000, 80, Seg::Syn), 61);
    assert_eq!(dst_mac(&out), RS1_MAC);
}

#[test]
fn counts_follow_state_and_expiry() {
    let (mut f, slots) = forwarder(TWO_RS);
    let rs1 = slots.slot(1).unwrap();
    send(&mut f, &tcp(40000, 80, Seg::Syn), 0);
    let c = f.stats().dest(rs1);
    assert_eq!((c.active.get(), c.inactive.get(), c.conns.get()), (0, 1, 1));
    send(&mut f, &tcp(40000, 80, Seg::Ack), 0);
    let c = f.stats().dest(rs1);
    assert_eq!((c.active.get(), c.inactive.get()), (1, 0));
    send(&mut f, &tcp(40000, 80, Seg::Fin), 0);
    assert_eq!(
        (
            f.stats().dest(rs1).active.get(),
            f.stats().dest(rs1).inactive.get()
        ),
        (0, 1)
    );
    // FIN_WAIT lives 120 s: not yet at 100, gone at 121.
    f.expire(100, usize::MAX);
    assert_eq!(f.table().len(), 1);
    f.expire(121, usize::MAX);
    assert!(f.table().is_empty());
    assert_eq!(f.stats().dest(rs1).inactive.get(), 0);
    assert_eq!(f.stats().conns.get(), 0);
}

/// Build an IPv4/TCP frame by hand so each header field can be broken.
fn raw(ihl: u8, total_len: u16, frag: u16, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&DIRECTOR_MAC);
    v.extend_from_slice(&CLIENT_MAC);
    v.extend_from_slice(&[0x08, 0x00]);
    v.push(0x40 | ihl);
    v.push(0);
    v.extend_from_slice(&total_len.to_be_bytes());
    v.extend_from_slice(&[0, 1]);
    v.extend_from_slice(&frag.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&CIP);
    v.extend_from_slice(&VIP);
    for _ in 5..ihl.max(5) {
        v.extend_from_slice(&[1, 1, 1, 1]); // NOP options
    }
    v.extend_from_slice(l4);
    v
}

/// A 20-byte TCP SYN header to port 80.
const TCP_SYN: [u8; 20] = [
    0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
];

#[test]
fn malformed_frames_are_counted_per_reason() {
    let good = raw(5, 40, 0, 6, &TCP_SYN);
    let mut ihl4 = good.clone();
    ihl4[14] = 0x44;
    let mut v6 = good.clone();
    v6[14] = 0x65;
    let mut arp = good.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    // IP options are forwarded now; one whose length runs past the
    // header is not.
    let mut bad_options = raw(6, 44, 0, 6, &TCP_SYN);
    bad_options[34..36].copy_from_slice(&[7, 9]);
    let mut bad_doff = good.clone();
    bad_doff[14 + 20 + 12] = 0xf0; // data offset 60 > 20 bytes present
    let cases: Vec<(&str, Vec<u8>, Reason)> = vec![
        (
            "truncated ethernet",
            good[..10].to_vec(),
            Reason::TruncatedEthernet,
        ),
        ("arp", arp, Reason::NotIpv4),
        ("truncated ip", good[..14 + 12].to_vec(), Reason::TruncatedIp),
        ("ip version 6", v6, Reason::BadVersion),
        ("ihl < 5", ihl4, Reason::BadIhl),
        (
            "total length past frame",
            raw(5, 400, 0, 6, &TCP_SYN),
            Reason::BadTotalLength,
        ),
        (
            "total length below header",
            raw(5, 12, 0, 6, &TCP_SYN),
            Reason::BadTotalLength,
        ),
        ("malformed ip options", bad_options, Reason::IpOptions),
        (
            "truncated tcp",
            raw(5, 30, 0, 6, &TCP_SYN[..10]),
            Reason::TruncatedL4,
        ),
        ("tcp data offset past end", bad_doff, Reason::TruncatedL4),
        (
            "truncated udp",
            raw(5, 24, 0, 17, &[0, 53, 0, 53]),
            Reason::TruncatedL4,
        ),
        (
            "icmp",
            raw(5, 28, 0, 1, &[8, 0, 0, 0, 0, 0, 0, 0]),
            Reason::UnsupportedProtocol,
        ),
    ];
    let (mut f, _) = forwarder(TWO_RS);
    for (what, frame, want) in &cases {
        let (v, out) = send(&mut f, frame, 0);
        assert_eq!(v, Verdict::Drop(*want), "{what}");
        assert_eq!(&out, frame, "{what}: a dropped frame was modified");
    }
    for reason in Reason::ALL {
        let want = cases.iter().filter(|c| c.2 == reason).count() as u64;
        assert_eq!(f.stats().drops(reason), want, "{}", reason.name());
    }
    // The well-formed frame the cases were cut from is forwarded.
    assert_eq!(send(&mut f, &good, 0).0, Verdict::Tx(0));
}

#[test]
fn no_prefix_or_noise_panics() {
    let (mut f, _) = forwarder(TWO_RS);
    let good = tcp(40000, 80, Seg::Syn);
    for n in 0..good.len() {
        let _ = send(&mut f, &good[..n], 0);
    }
    // Deterministic noise (xorshift), with the header bytes that steer it kept
    // plausible half of the time.
    let mut r = testkit::Rng::new(0x9e37_79b9_7f4a_7c15);
    for i in 0..20_000 {
        let len = r.below(128) as usize;
        let mut frame = r.bytes(len);
        if i % 2 == 0 && frame.len() > 34 {
            frame[12..14].copy_from_slice(&[0x08, 0x00]);
            frame[14] = 0x45;
            frame[30..34].copy_from_slice(&VIP);
        }
        let _ = send(&mut f, &frame, 0);
    }
    assert_eq!(f.stats().rx.get(), good.len() as u64 + 20_000);
}

/// In-memory rings: frames in, frames out.
struct MemIo {
    input: Vec<Vec<u8>>,
    output: Vec<Vec<u8>>,
    stop: Arc<AtomicBool>,
}

impl PacketIo for MemIo {
    fn inject(&mut self, bytes: &[u8], link: u8, mut f: impl FnMut(&mut dyn Frame, u8) -> Verdict) -> bool {
        let mut frame = bytes.to_vec();
        if let Verdict::Tx(_) = f(&mut frame, link) {
            self.output.push(frame);
        }
        true
    }
    fn poll(&mut self, mut f: impl FnMut(&mut dyn Frame, u8) -> Verdict) -> Batch {
        let mut b = Batch::default();
        for mut frame in self.input.drain(..) {
            b.rx += 1;
            if f(&mut frame, 0) == Verdict::Tx(0) {
                b.tx += 1;
                self.output.push(frame);
            }
        }
        if b.rx == 0 {
            self.stop.store(true, Ordering::Relaxed);
        }
        b
    }
}

#[test]
fn run_loop_forwards_picks_up_updates_and_retires_old_rules() {
    let mut slots = SlotMap::default();
    let r = rules(TWO_RS);
    let mut f = Forwarder::new(update(&r, &mut slots, 1), 64, Arc::new(WorkerStats::default()));
    let (up_tx, up_rx) = crossbeam_channel::bounded(2);
    let (ret_tx, ret_rx) = crossbeam_channel::bounded(2);
    let stop = Arc::new(AtomicBool::new(false));
    let ctl = WorkerCtl {
        updates: up_rx,
        retired: ret_tx,
        stop: stop.clone(),
        me: 0,
        handoff: Arc::new(crate::owner::Handoff::new(1, 4)),
        dumps: crossbeam_channel::never(),
        dumped: crossbeam_channel::bounded(1).0,
    };
    up_tx.send(update(&r, &mut slots, 2)).unwrap();
    let mut io = MemIo {
        input: (0..4).map(|i| tcp(40000 + i, 80, Seg::Syn)).collect(),
        output: Vec::new(),
        stop,
    };
    run(&mut io, &mut f, &ctl, Instant::now());
    assert_eq!(io.output.len(), 4);
    assert_eq!(f.stats().tx.get(), 4);
    assert_eq!(ret_rx.try_recv().unwrap().snap.version, 1);
}

#[test]
fn wlc_splits_new_connections_by_weight() {
    let (mut f, _) = forwarder(&[
        "-A -t 10.0.0.100:80 -s wlc",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1",
        "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 3",
    ]);
    let mut n1 = 0;
    for cport in 0..200 {
        let (_, out) = send(&mut f, &tcp(10000 + cport, 80, Seg::Syn), 0);
        n1 += usize::from(dst_mac(&out) == RS1_MAC);
        // Each connection completes: ACK, then FIN (inactive from then on).
        send(&mut f, &tcp(10000 + cport, 80, Seg::Ack), 0);
        send(&mut f, &tcp(10000 + cport, 80, Seg::Fin), 0);
    }
    assert_eq!(n1, 50);
}

#[test]
fn wlc_split_survives_republished_rules() {
    let mut l = Live::new(&[
        "-A -t 10.0.0.100:80 -s wlc",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1",
        "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 3",
    ]);
    let mut n1 = 0;
    for cport in 0..200u16 {
        if cport % 7 == 3 {
            // A publication that changes nothing for the service, as a MAC
            // refresh does.
            l.republish();
        }
        let (_, out) = send(&mut l.f, &tcp(10000 + cport, 80, Seg::Syn), 0);
        n1 += usize::from(dst_mac(&out) == RS1_MAC);
        send(&mut l.f, &tcp(10000 + cport, 80, Seg::Ack), 0);
        send(&mut l.f, &tcp(10000 + cport, 80, Seg::Fin), 0);
    }
    assert_eq!(n1, 50);
}

#[test]
fn syn_on_a_closing_connection_is_scheduled_afresh() {
    let (mut f, slots) = forwarder(TWO_RS);
    let (_, out) = send(&mut f, &tcp(40000, 80, Seg::Syn), 0);
    assert_eq!(dst_mac(&out), RS1_MAC);
    send(&mut f, &tcp(40000, 80, Seg::Ack), 0);
    send(&mut f, &tcp(40000, 80, Seg::Fin), 0);
    // The client port comes back with a new SYN: rr moves on to rs2, and the
    // old connection no longer counts against rs1.
    let (_, out) = send(&mut f, &tcp(40000, 80, Seg::Syn), 1);
    assert_eq!(dst_mac(&out), RS2_MAC);
    let rs1 = f.stats().dest(slots.slot(1).unwrap());
    assert_eq!((rs1.active.get(), rs1.inactive.get()), (0, 0));
    assert_eq!(f.table().len(), 1);
}

#[test]
fn tun_wraps_the_packet_for_the_real_server() {
    let mut slots = SlotMap::default();
    let r = rules(&[
        "-A -t 10.0.0.100:80 -s rr",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -i",
    ]);
    slots.assign(&r).unwrap();
    let snap = Snapshot::build(&Input::new(1, &r, &slots, LINKS, &neigh));
    let mut f = Forwarder::new(Update::new(Arc::new(snap)), 64, Arc::new(WorkerStats::default()));
    let input = tcp(40000, 80, Seg::Syn);
    let (v, out) = send(&mut f, &input, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(dst_mac(&out), RS1_MAC);
    let p = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
        panic!()
    };
    assert_eq!(ip.header().protocol(), etherparse::IpNumber(4));
    assert_eq!(
        (ip.header().source(), ip.header().destination()),
        ([10, 0, 0, 10], [10, 0, 0, 11])
    );
    assert_eq!(&out[34..], &input[14..], "inner packet changed");
}

/// `n` workers on one hand-off, each with `lines` as rules and its own
/// in-memory rings, as the daemon joins them.
fn workers(n: usize, lines: &[&str]) -> Vec<(Forwarder, WorkerCtl, MemIo)> {
    let handoff = Arc::new(crate::owner::Handoff::new(n, 64));
    let mut slots = SlotMap::default();
    let r = rules(lines);
    (0..n)
        .map(|me| {
            let (_up_tx, up_rx) = crossbeam_channel::bounded(1);
            let (ret_tx, _ret_rx) = crossbeam_channel::bounded(1);
            let stop = Arc::new(AtomicBool::new(false));
            let f = Forwarder::new(update(&r, &mut slots, 1), 64, Arc::new(WorkerStats::default()));
            let ctl = WorkerCtl {
                updates: up_rx,
                retired: ret_tx,
                stop: stop.clone(),
                me,
                handoff: handoff.clone(),
                dumps: crossbeam_channel::never(),
                dumped: crossbeam_channel::bounded(1).0,
            };
            (
                f,
                ctl,
                MemIo {
                    input: Vec::new(),
                    output: Vec::new(),
                    stop,
                },
            )
        })
        .collect()
}

/// Run each worker's loop until its input is drained, in order.
fn run_all(workers: &mut [(Forwarder, WorkerCtl, MemIo)]) {
    for (f, ctl, io) in workers {
        ctl.stop.store(false, Ordering::Relaxed);
        run(io, f, ctl, Instant::now());
    }
}

#[test]
fn frames_of_another_workers_flows_are_handed_to_it() {
    let mut workers = workers(2, TWO_RS);
    // Every SYN arrives at worker 0; about half belong to worker 1.
    let frames: Vec<Vec<u8>> = (0..40).map(|i| tcp(40000 + i, 80, Seg::Syn)).collect();
    let owned_by_1 = frames
        .iter()
        .filter(|f| workers[0].0.owner(f, 2) == Some(1))
        .count();
    assert!(owned_by_1 > 5 && owned_by_1 < 35, "{owned_by_1}");
    workers[0].2.input = frames;
    run_all(&mut workers);
    let (w0, w1) = (&workers[0], &workers[1]);
    assert_eq!(w0.0.stats().handoffs.get(), owned_by_1 as u64);
    assert_eq!(w0.0.stats().handoff_drops.get(), 0);
    assert_eq!(
        w1.2.output.len(),
        owned_by_1,
        "the owner forwarded what it was handed"
    );
    assert_eq!(w0.2.output.len() + w1.2.output.len(), 40);
    assert_eq!(
        w1.0.table().len(),
        owned_by_1,
        "connections live with their owner"
    );
}

/// A SYN from `cip:cport` to 10.0.0.100:80.
#[test]
fn the_hand_turns_once_per_turn_time_and_catches_up_in_bounded_steps() {
    let mut c = SweepClock::default();
    let slots = 1_500_000;
    // A million loops a second for a second: half a turn in all, at a
    // slot or so a loop.
    let mut total = 0;
    for us in 1..=1_000_000u64 {
        let n = c.budget(Duration::from_micros(us), slots);
        assert!(n <= 1);
        total += n;
    }
    assert_eq!(total, slots / 2);
    // A 10 s stall: 5 turns due, taken SWEEP_MAX at a time.
    let n = c.budget(Duration::from_secs(11), slots);
    assert_eq!(n, SWEEP_MAX);
    let mut rest = 0;
    while let n @ 1.. = c.budget(Duration::from_secs(11), slots) {
        assert!(n <= SWEEP_MAX);
        rest += n;
    }
    assert_eq!(total + SWEEP_MAX + rest, slots * 11 / 2);
}

mod differential;
mod fragments;
mod icmp;
mod ipv6;
mod persistence;
mod sync;
mod traffic;
