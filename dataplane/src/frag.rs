//! IP fragments (IPv4, and IPv6's fragment header): where the later
//! fragments of a datagram go.
//!
//! Only the first fragment of a datagram has the ports, so only it can find
//! (or schedule) the connection; the later ones carry the addresses, the
//! protocol and the IP id. The worker that decides on a first fragment
//! records that decision under the datagram's [`FragKey`] in the
//! [`FragTable`] of the worker that owns the key (itself, or another one
//! through a [`FragNote`] on the hand-off queues), and later fragments,
//! owned by their key (see [`crate::owner::frag_owner`]), look it up there.
//! So a NIC that hashes fragments by addresses only, or a first fragment that
//! lands on one queue and the rest on another, still sends every fragment to
//! the real server its 5-tuple maps to.
//!
//! A later fragment that arrives before its decision waits in [`Held`], a
//! few preallocated frames, for up to [`HOLD_SECS`]; with no room it is
//! dropped and counted. Both stores are fixed arrays: a flood of fragments
//! with random ids overwrites table entries and fills the hold, and never
//! grows memory.
//!
//! Must not touch: connections or schedulers (the worker decides; this only
//! remembers), frame bytes beyond copying held ones.

use crate::family::Family;
use crate::frame::MAX_FRAME;
use crate::wire::Headers;

/// Entries in a worker's fragment table (a power of two).
pub const TABLE_SLOTS: usize = 4096;
/// A decision is kept this long, in seconds (fragments of one datagram
/// arrive within milliseconds; a later datagram that reuses the id, after
/// the 16-bit id wrapped, overwrites it).
pub const DECISION_SECS: u32 = 5;
/// Frames a worker holds for decisions to come.
pub const HOLD_FRAMES: usize = 32;
/// An early fragment waits at most this long, in seconds (the clock
/// ticks in whole seconds, so between 1 and 2).
pub const HOLD_SECS: u32 = 2;

/// The datagram a fragment belongs to (RFC 791: source, destination,
/// protocol and identification; RFC 8200 §4.5 for IPv6, whose
/// identification is 32 bits), host order, IPv4 in the low bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FragKey {
    /// Source address.
    pub src: u128,
    /// Destination address.
    pub dst: u128,
    /// IP identification.
    pub id: u32,
    /// IP protocol (IPv6: of the fragmentable part).
    pub proto: u8,
    /// IPv6.
    pub v6: bool,
}

impl FragKey {
    /// Return the key of the fragment `frame`, parsed as `h`.
    pub fn of<A: Family>(h: &Headers<A>, frame: &[u8]) -> Self {
        Self {
            src: h.src.widen(),
            dst: h.dst.widen(),
            id: A::frag_id(h, frame),
            proto: h.proto,
            v6: A::V6,
        }
    }

    /// Hash the key to 64 bits (a multiplicative mix of all its fields).
    pub fn hash(&self) -> u64 {
        let fold = |a: u128| (a >> 64) as u64 ^ (a as u64).rotate_left(29);
        let a = fold(self.src) ^ fold(self.dst).rotate_left(32);
        let b = u64::from(self.id) << 9 | u64::from(self.proto) << 1 | u64::from(self.v6);
        (a ^ b.wrapping_mul(0xff51_afd7_ed55_8ccd)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// What the first fragment's worker decided for the rest of the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragAction {
    /// Client → real server: the server's id and counter slot (as a
    /// connection names it, so a rules update in between is noticed).
    ToReal {
        /// Server id.
        dest_id: u32,
        /// Server slot.
        slot: u16,
    },
    /// NAT real server → client: the VIP to put back as the source, and the
    /// client's link and MAC.
    ToClient {
        /// VIP (host order, IPv4 in the low bits).
        vip: u128,
        /// Link the client came in on.
        link: u8,
        /// The client's (next hop's) MAC.
        mac: [u8; 6],
        /// Server slot (for the out counters).
        slot: u16,
    },
}

/// A decision sent to the worker that owns its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragNote {
    /// The datagram.
    pub key: FragKey,
    /// Where its later fragments go.
    pub action: FragAction,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: FragKey,
    action: FragAction,
    expires: u32,
}

/// One worker's decisions for datagrams whose key it owns: direct-mapped,
/// a newer datagram overwrites an older one in its slot.
#[derive(Debug)]
pub struct FragTable {
    slots: Box<[Option<Entry>]>,
}

impl Default for FragTable {
    fn default() -> Self {
        Self {
            slots: vec![None; TABLE_SLOTS].into_boxed_slice(),
        }
    }
}

impl FragTable {
    fn index(key: &FragKey) -> usize {
        (key.hash() >> 40) as usize & (TABLE_SLOTS - 1)
    }

    /// Record `note`'s decision at `now`.
    pub fn insert(&mut self, note: &FragNote, now: u32) {
        self.slots[Self::index(&note.key)] = Some(Entry {
            key: note.key,
            action: note.action,
            expires: now.wrapping_add(DECISION_SECS),
        });
    }

    /// Return the decision for `key` if one was recorded and has not
    /// expired at `now`.
    pub fn get(&self, key: &FragKey, now: u32) -> Option<FragAction> {
        let e = self.slots[Self::index(key)].as_ref()?;
        (e.key == *key && now < e.expires).then_some(e.action)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    Waiting,
    Ready,
}

#[derive(Debug)]
struct HeldFrame {
    state: State,
    key: FragKey,
    link: u8,
    since: u32,
    len: u16,
    data: Box<[u8; MAX_FRAME]>,
}

/// Later fragments waiting for their first fragment's decision.
#[derive(Debug)]
pub struct Held {
    frames: Box<[HeldFrame]>,
    /// Frames not free (so an idle worker skips every scan).
    busy: usize,
    /// Frames whose decision came.
    ready: usize,
}

impl Default for Held {
    fn default() -> Self {
        let frames = (0..HOLD_FRAMES)
            .map(|_| HeldFrame {
                state: State::Free,
                key: FragKey::default(),
                link: 0,
                since: 0,
                len: 0,
                data: Box::new([0; MAX_FRAME]),
            })
            .collect();
        Self {
            frames,
            busy: 0,
            ready: 0,
        }
    }
}

impl Held {
    /// Keep a copy of `bytes` (from `link`) until `key`'s decision comes;
    /// return false when there is no room.
    pub fn hold(&mut self, key: FragKey, link: u8, bytes: &[u8], now: u32) -> bool {
        if bytes.len() > MAX_FRAME {
            return false;
        }
        let Some(f) = self.frames.iter_mut().find(|f| f.state == State::Free) else {
            return false;
        };
        f.data[..bytes.len()].copy_from_slice(bytes);
        (f.state, f.key, f.link, f.since, f.len) = (State::Waiting, key, link, now, bytes.len() as u16);
        self.busy += 1;
        true
    }

    /// The decision for `key` came: its frames may go.
    pub fn release(&mut self, key: &FragKey) {
        if self.busy == self.ready {
            return;
        }
        for f in self.frames.iter_mut() {
            if f.state == State::Waiting && f.key == *key {
                f.state = State::Ready;
                self.ready += 1;
            }
        }
    }

    /// Return whether a released frame waits to be taken.
    pub fn any_ready(&self) -> bool {
        self.ready > 0
    }

    /// Copy the next released frame into `out` and free its place; return
    /// its link and length.
    pub fn take_ready(&mut self, out: &mut [u8; MAX_FRAME]) -> Option<(u8, usize)> {
        if self.ready == 0 {
            return None;
        }
        let f = self.frames.iter_mut().find(|f| f.state == State::Ready)?;
        let len = usize::from(f.len);
        out[..len].copy_from_slice(&f.data[..len]);
        f.state = State::Free;
        self.ready -= 1;
        self.busy -= 1;
        Some((f.link, len))
    }

    /// Free the frames that waited [`HOLD_SECS`] by `now`; return how many.
    pub fn expire(&mut self, now: u32) -> u64 {
        if self.busy == self.ready {
            return 0;
        }
        let mut n = 0;
        for f in self.frames.iter_mut() {
            if f.state == State::Waiting && now.wrapping_sub(f.since) >= HOLD_SECS {
                f.state = State::Free;
                self.busy -= 1;
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u16) -> FragKey {
        FragKey {
            src: 0x0a00_0002,
            dst: 0x0a63_0064,
            id: u32::from(id),
            proto: 17,
            v6: false,
        }
    }

    const TO: FragAction = FragAction::ToReal { dest_id: 7, slot: 3 };

    #[test]
    fn a_decision_is_found_by_its_key_until_it_expires() {
        let mut t = FragTable::default();
        t.insert(
            &FragNote {
                key: key(1),
                action: TO,
            },
            10,
        );
        assert_eq!(t.get(&key(1), 10), Some(TO));
        assert_eq!(t.get(&key(2), 10), None);
        assert_eq!(t.get(&key(1), 10 + DECISION_SECS), None);
    }

    #[test]
    fn a_flood_of_keys_overwrites_and_never_grows() {
        let mut t = FragTable::default();
        for id in 0..=u16::MAX {
            t.insert(
                &FragNote {
                    key: key(id),
                    action: TO,
                },
                1,
            );
        }
        assert_eq!(t.slots.len(), TABLE_SLOTS);
        assert_eq!(t.get(&key(u16::MAX), 1), Some(TO), "the newest is kept");
    }

    #[test]
    fn held_frames_go_when_released_and_expire_otherwise() {
        let mut h = Held::default();
        assert!(h.hold(key(1), 0, b"one", 5));
        assert!(h.hold(key(2), 1, b"two", 5));
        let mut out = [0u8; MAX_FRAME];
        assert_eq!(h.take_ready(&mut out), None, "nothing released yet");
        h.release(&key(2));
        assert_eq!(h.take_ready(&mut out), Some((1, 3)));
        assert_eq!(&out[..3], b"two");
        assert_eq!(h.take_ready(&mut out), None);
        assert_eq!(h.expire(5 + HOLD_SECS - 1), 0);
        assert_eq!(h.expire(5 + HOLD_SECS), 1);
        h.release(&key(1));
        assert_eq!(h.take_ready(&mut out), None, "an expired frame is gone");
    }

    #[test]
    fn the_hold_is_bounded() {
        let mut h = Held::default();
        for id in 0..HOLD_FRAMES as u16 {
            assert!(h.hold(key(id), 0, &[0; 60], 0));
        }
        assert!(!h.hold(key(999), 0, &[0; 60], 0), "full");
        assert!(
            !Held::default().hold(key(1), 0, &[0; MAX_FRAME + 1], 0),
            "too big"
        );
    }
}
