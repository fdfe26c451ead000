//! Frames through `Forwarder::handle` with a realistic rule set (DR, NAT,
//! TUN, persistence, a mark service, IPv6, and the DR lab's services, which
//! the frames `scripts/fuzz-captures.sh` took in the lab reach): never a panic, a forwarded
//! frame still parses as what it should be, and NAT is the identity there
//! and back: the server's answer to a translated frame, if forwarded, goes
//! to the client from the VIP:port it asked.
#![no_main]

use dataplane::wire;
use dataplane::{Forwarder, Verdict};
use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};

/// Also the rules of the differential test of the two forwarders
/// (dataplane/src/worker/tests/differential.rs), which runs this corpus.
const RULES: &str = include_str!("../frame.rules");

fn forwarder() -> Forwarder {
    let rules = config::Rules::from_commands("fuzz", RULES).expect("valid rules");
    dataplane::fixture::forwarder(&rules, (4096, 1024), None)
}

static FWD: OnceLock<Mutex<Forwarder>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    // The first byte moves the clock (expiry, templates); the rest is the
    // frame. One forwarder for the whole run: state built by one input is
    // met by the next, as on the wire.
    let now = u32::from(data[0]);
    let mut frame = data[1..].to_vec();
    let before = frame.clone();
    let fwd = FWD.get_or_init(|| Mutex::new(forwarder()));
    let mut fwd = fwd.lock().unwrap_or_else(|e| e.into_inner());
    let v = fwd.handle(&mut frame, 0, now);
    fwd.expire(now, 64);
    fwd.expire6(now, 64);
    if let Verdict::Tx(_) = v {
        // What goes out is a frame of the family that came in (TUN wraps it
        // in an outer header of the same family; an ICMP answer is IP).
        let v4 = wire::parse(&before).is_ok();
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        assert_eq!(ethertype, if v4 { 0x0800 } else { 0x86dd }, "{before:02x?} -> {frame:02x?}");
        let outer = &frame[14..];
        assert!(outer.len() >= 20);
        assert_eq!(outer[0] >> 4, if v4 { 4 } else { 6 });
        if v4 {
            nat_round_trip(&mut fwd, &before, &frame, now);
        }
    }
});

/// The IPv4 (source, destination) address:port of `f`, and where its L4
/// header starts, if it is a whole TCP or UDP datagram.
fn ends(f: &[u8]) -> Option<(([u8; 4], u16), ([u8; 4], u16), usize)> {
    let l4 = 14 + usize::from(*f.get(14)? & 0x0f) * 4;
    let unfragmented = f.get(20..22)? == [0, 0] || f.get(20..22)? == [0x40, 0];
    if !matches!(f.get(23)?, 6 | 17) || !unfragmented || f.len() < l4 + 8 {
        return None;
    }
    let addr = |at: usize| <[u8; 4]>::try_from(&f[at..at + 4]).ok();
    let port = |at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
    Some(((addr(26)?, port(l4)), (addr(30)?, port(l4 + 2)), l4))
}

/// `input` went out translated to a NAT server as `out`: its answer (the
/// same frame, ends and MACs swapped, checksums still right) must come back
/// from the VIP:port to the client, payload untouched.
fn nat_round_trip(fwd: &mut Forwarder, input: &[u8], out: &[u8], now: u32) {
    let (Some((client, vip, _)), Some((from, server, l4))) = (ends(input), ends(out)) else {
        return;
    };
    if from != client || server.0 != [10, 0, 0, 11] || !matches!(server.1, 8081 | 5353) {
        return;
    }
    let mut reply = out.to_vec();
    let (macs, ips) = (reply[0..12].to_vec(), reply[26..34].to_vec());
    reply[0..6].copy_from_slice(&macs[6..12]);
    reply[6..12].copy_from_slice(&macs[0..6]);
    reply[26..30].copy_from_slice(&ips[4..8]);
    reply[30..34].copy_from_slice(&ips[0..4]);
    let ports = reply[l4..l4 + 4].to_vec();
    reply[l4..l4 + 2].copy_from_slice(&ports[2..4]);
    reply[l4 + 2..l4 + 4].copy_from_slice(&ports[0..2]);
    if let Verdict::Tx(_) = fwd.handle(&mut reply, 0, now) {
        let back = ends(&reply).expect("a translated reply parses");
        assert_eq!((back.0, back.1), (vip, client), "{out:02x?} -> {reply:02x?}");
        let hdr = if input[23] == 6 { 20 } else { 8 };
        let (a, b) = (ends(input).map(|e| e.2 + hdr), back.2 + hdr);
        assert_eq!(input.get(a.unwrap_or(0)..), reply.get(b..), "payload changed");
    }
}
