//! The in-memory pieces of the benchmarks, shared by `ferrovs-bench
//! forwarder` and the criterion benches: a frame buffer with headroom like
//! a UMEM frame, the benchmark's TCP frames, and a forwarder with
//! established flows.

use dataplane::wire::{TCP6_FRAME_LEN, tcp_frame, tcp6_frame};
use dataplane::{Forwarder, Frame, Verdict};

/// A 64-byte TCP segment from 10.1.x.y:`cport` to the service.
pub fn frame(cport: u16, syn: bool) -> [u8; 64] {
    let cip = [10, 1, (cport >> 8) as u8, cport as u8];
    tcp_frame(cip, cport, [10, 0, 0, 100], 80, if syn { 0x02 } else { 0x10 })
}

/// The IPv6 VIP of the benchmark's IPv6 service.
pub const VIP6: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0100;

/// [`frame`] over IPv6: from 2001:db8:1::x:y to `[VIP6]:80` (74 bytes).
pub fn frame6(cport: u16, syn: bool) -> [u8; TCP6_FRAME_LEN] {
    let cip = 0x2001_0db8_0001_0000_0000_0000_0000_0000 | u128::from(cport);
    tcp6_frame(cip, cport, VIP6, 80, if syn { 0x02 } else { 0x10 })
}

/// A frame buffer with room to grow, as a UMEM frame has.
pub struct Buf {
    /// The bytes, with room to grow.
    pub data: [u8; 256],
    /// Bytes in use.
    pub len: usize,
}

impl Default for Buf {
    fn default() -> Self {
        Self {
            data: [0; 256],
            len: 0,
        }
    }
}

impl Buf {
    /// Copy `bytes` in.
    pub fn load(&mut self, bytes: &[u8]) {
        self.data[..bytes.len()].copy_from_slice(bytes);
        self.len = bytes.len();
    }
}

impl Frame for Buf {
    fn bytes(&mut self) -> &mut [u8] {
        &mut self.data[..self.len]
    }
    fn push_front(&mut self, n: usize) -> bool {
        if self.len + n > self.data.len() {
            return false;
        }
        self.data.copy_within(0..self.len, n);
        self.len += n;
        true
    }
    fn truncate(&mut self, len: usize) -> bool {
        len <= self.len && {
            self.len = len;
            true
        }
    }
}

/// A forwarder with one service whose two servers use `method` (`-g`,
/// `-m` or `-i`), with `flows` established connections.
pub fn setup(method: &str, flows: usize) -> Forwarder {
    setup_family(method, flows, false)
}

/// [`setup`] for IPv4 or (`v6`) the same over IPv6.
pub fn setup_family(method: &str, flows: usize, v6: bool) -> Forwarder {
    let mut fwd = fresh_family(method, flows, None, v6);
    let mut buf = Buf::default();
    for cport in 0..flows as u16 {
        if v6 {
            buf.load(&frame6(cport, true));
        } else {
            buf.load(&frame(cport, true));
        }
        assert_eq!(fwd.handle(&mut buf, 0, 0), Verdict::Tx(0), "{method}");
    }
    fwd
}

/// A forwarder for two `method` servers with a table of `2 × flows` and
/// no connections, handing connections to `sync` if given (a master sync
/// daemon's rings).
pub fn fresh(method: &str, flows: usize, sync: Option<dataplane::sync::SyncMaster>) -> Forwarder {
    fresh_family(method, flows, sync, false)
}

/// [`fresh`] for IPv4 or (`v6`) the same service over IPv6, with an IPv6
/// table of `2 × flows`.
pub fn fresh_family(
    method: &str,
    flows: usize,
    sync: Option<dataplane::sync::SyncMaster>,
    v6: bool,
) -> Forwarder {
    let (vip, r1, r2) = if v6 {
        ("[2001:db8::100]", "[2001:db8::11]", "[2001:db8::12]")
    } else {
        ("10.0.0.100", "10.0.0.11", "10.0.0.12")
    };
    let rules = config::Rules::from_commands(
        "bench",
        &format!(
            "-A -t {vip}:80 -s rr\n\
             -a -t {vip}:80 -r {r1}:8080 {method}\n\
             -a -t {vip}:80 -r {r2}:8080 {method}"
        ),
    )
    .expect("valid rules");
    dataplane::fixture::forwarder(&rules, (flows * 2, flows * 2), sync)
}
