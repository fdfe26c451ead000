//! The table: connections stored inline in one open-addressing array
//! (Robin Hood linear probing, backward-shift deletion), swept like a clock.
//!
//! Why not hashbrown: its deletions leave tombstones in a full group, and at
//! the load a compact table runs at they pile up until an insert must rehash
//! the whole table or grow it — an allocation or a pause of milliseconds on
//! the hot path, in exactly the churn a SYN flood makes. Backward-shift
//! deletion leaves no tombstones, so the table never rehashes.
//!
//! One array slot holds the whole entry (key, connection, NAT reply tuple),
//! so a hit is one probe run through adjacent memory. As in IPVS's connection
//! hash, the bucket is chosen by protocol and client tuple only: a client
//! packet (client tuple = source) and a NAT reply (client tuple =
//! destination) land on the same probe run and differ only in what is
//! compared next.
//!
//! Capacity is fixed when the table is made, with half as many slots again as
//! entries to keep probe runs short; an insert past it is refused ([`Full`]).
//! Expiry is a clock hand over the slots that looks at a bounded number of
//! them per call ([`ConnTable::sweep`]): amortised O(1) per packet.

use crate::{Addr, ConnState, FlowKey};
use std::hash::BuildHasher;

/// What the table remembers about one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Conn {
    /// Stable id of the real server (ids start at 1; 0 is never a server).
    pub dest_id: u32,
    /// Per-worker counter slot of that server.
    pub slot: u16,
    /// Protocol state.
    pub state: ConnState,
    /// `now` at which the connection expires unless a packet arrives.
    pub expires: u32,
    /// MAC the client's packets came from (NAT replies go back to it).
    pub client_mac: [u8; 6],
    /// Interface (link index) the client's packets came in on.
    pub client_link: u8,
    /// Bit 7: a reply from the server was seen (NAT), so client packets
    /// follow IPVS's INPUT table rather than INPUT-ONLY. Bits 0-6: the
    /// client's packets counted for sync (`sync_threshold`), modulo the
    /// sync period. One byte, so an entry stays 40 B.
    pub packed: u8,
    /// A persistence template (client → server for a service), not a
    /// connection.
    pub template: bool,
}

impl Conn {
    const SEEN_REPLY: u8 = 0x80;

    /// A reply from the server was seen.
    #[inline]
    pub fn seen_reply(&self) -> bool {
        self.packed & Self::SEEN_REPLY != 0
    }

    /// Note that a reply from the server was seen.
    #[inline]
    pub fn set_seen_reply(&mut self) {
        self.packed |= Self::SEEN_REPLY;
    }

    /// The client's packets counted for sync (0-127).
    #[inline]
    pub fn sync_pkts(&self) -> u8 {
        self.packed & !Self::SEEN_REPLY
    }

    /// Set that count (kept to 7 bits).
    #[inline]
    pub fn set_sync_pkts(&mut self, n: u8) {
        self.packed = (self.packed & Self::SEEN_REPLY) | (n & !Self::SEEN_REPLY);
    }
}

/// One slot. `probe` is 0 for an empty slot, else 1 + the distance from the
/// slot's home bucket (Robin Hood's ordering key). The key is stored as loose
/// fields so they pack around [`Conn`] with no padding: 40 bytes for IPv4,
/// 80 for IPv6 (three 16-byte addresses, 16-byte aligned).
#[derive(Debug, Clone, Copy, Default)]
struct Entry<A: Addr> {
    conn: Conn,
    cip: A,
    vip: A,
    cport: u16,
    vport: u16,
    proto: u8,
    probe: u8,
    /// Real server port and address of a NAT connection (its replies'
    /// source); `rport` 0 when there is none.
    rport: u16,
    rip: A,
}

impl<A: Addr> Entry<A> {
    fn key(&self) -> FlowKey<A> {
        FlowKey {
            proto: self.proto,
            cip: self.cip,
            cport: self.cport,
            vip: self.vip,
            vport: self.vport,
        }
    }

    /// The key as words, so a compare has no branch.
    #[inline]
    fn words(&self) -> A::Words {
        A::words(self.proto, self.cip, self.cport, self.vip, self.vport)
    }
}

/// Longest probe distance stored in [`Entry::probe`]; an insert that would
/// need more is refused as [`Full`] (with a keyed hash, not reached at our
/// load: runs average a few slots, the longest a few dozen).
const MAX_PROBE: u8 = u8::MAX - 1;

/// The table is at capacity; the new connection was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// One worker's connections of one address family.
#[derive(Debug)]
pub struct ConnTable<A: Addr = u32> {
    slots: Vec<Entry<A>>,
    capacity: usize,
    len: usize,
    /// Per-table hash key, so a client cannot choose ports that collide.
    seed: u64,
    hand: usize,
}

impl<A: Addr> ConnTable<A> {
    /// Make a table for at most `capacity` connections (allocates all of it).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            slots: vec![Entry::default(); capacity + capacity / 2 + 1],
            capacity,
            len: 0,
            seed: std::collections::hash_map::RandomState::new().hash_one(0u8),
            hand: 0,
        }
    }

    /// Return the number of connections held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Return whether the table holds no connection.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Return the most connections the table can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Return the slots one turn of the clock hand passes ([`ConnTable::sweep`]).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Return the home bucket of a client tuple.
    fn home(&self, proto: u8, cip: A, cport: u16) -> usize {
        // fmix64 (MurmurHash3's finaliser): every input bit reaches the high
        // bits, which the multiply-shift below keeps.
        let h = crate::key::fmix64(cip.mix(proto, cport, self.seed));
        ((u128::from(h) * self.slots.len() as u128) >> 64) as usize
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() { 0 } else { i + 1 }
    }

    /// Walk the probe run of a client tuple; return the slot where `hit`
    /// holds, stopping where Robin Hood ordering proves it absent.
    fn find(&self, proto: u8, cip: A, cport: u16, hit: impl Fn(&Entry<A>) -> bool) -> Option<usize> {
        let mut i = self.home(proto, cip, cport);
        for dist in 1..=MAX_PROBE {
            let e = &self.slots[i];
            if e.probe < dist {
                return None;
            }
            if hit(e) {
                return Some(i);
            }
            i = self.next(i);
        }
        None
    }

    fn position(&self, key: &FlowKey<A>) -> Option<usize> {
        let want = A::words(key.proto, key.cip, key.cport, key.vip, key.vport);
        self.find(key.proto, key.cip, key.cport, |e| A::same(e.words(), want))
    }

    /// Find the connection of `key`.
    pub fn get_mut(&mut self, key: &FlowKey<A>) -> Option<&mut Conn> {
        let i = self.position(key)?;
        Some(&mut self.slots[i].conn)
    }

    /// Store a new connection; with `reply` (the key of a NAT server's
    /// replies: same protocol and client tuple, the real server in place of
    /// the virtual one), those replies find it too
    /// ([`ConnTable::get_reply_mut`]).
    ///
    /// # Errors
    /// [`Full`] when the table is at capacity.
    pub fn insert(
        &mut self,
        key: FlowKey<A>,
        reply: Option<FlowKey<A>>,
        conn: Conn,
    ) -> Result<&mut Conn, Full> {
        debug_assert!(
            reply.is_none_or(|r| (r.proto, r.cip, r.cport) == (key.proto, key.cip, key.cport)),
            "a reply key shares the client tuple"
        );
        debug_assert!(reply.is_none_or(|r| r.vport != 0), "a NAT server has a port");
        let (rip, rport) = reply.map_or((A::default(), 0), |r| (r.vip, r.vport));
        // One walk from home: the key, if present, comes before the first
        // entry nearer its home than the key would be (Robin Hood order);
        // that entry's slot is where a new one settles, and every entry from
        // there to the next empty slot moves one slot on. Refuse if any
        // distance would pass MAX_PROBE (there is always an empty slot: more
        // slots than entries).
        let home = self.home(key.proto, key.cip, key.cport);
        let want = A::words(key.proto, key.cip, key.cport, key.vip, key.vport);
        let (mut i, mut dist, mut settled) = (home, 1u16, false);
        let mut at = None;
        loop {
            let e = &self.slots[i];
            if e.probe == 0 {
                at.get_or_insert((i, dist));
                break;
            }
            settled |= u16::from(e.probe) < dist;
            if settled {
                at.get_or_insert((i, dist));
            } else if A::same(e.words(), want) {
                let e = &mut self.slots[i];
                (e.conn, e.rip, e.rport) = (conn, rip, rport);
                return Ok(&mut e.conn);
            }
            if (!settled && dist >= u16::from(MAX_PROBE)) || (settled && e.probe == MAX_PROBE) {
                return Err(Full);
            }
            dist += 1;
            i = self.next(i);
        }
        if self.len >= self.capacity {
            return Err(Full);
        }
        let Some((at, dist)) = at else { return Err(Full) };
        let mut carry = Entry {
            conn,
            cip: key.cip,
            vip: key.vip,
            cport: key.cport,
            vport: key.vport,
            proto: key.proto,
            probe: dist as u8,
            rport,
            rip,
        };
        // The new entry takes its slot; each displaced one moves on a slot
        // (one farther from its home) until one lands in the empty slot.
        let mut i = at;
        loop {
            let e = &mut self.slots[i];
            let empty = e.probe == 0;
            std::mem::swap(e, &mut carry);
            if empty {
                break;
            }
            carry.probe += 1;
            i = self.next(i);
        }
        self.len += 1;
        Ok(&mut self.slots[at].conn)
    }

    /// Find a connection by the key of its real server's replies; return its
    /// client-side key too.
    pub fn get_reply_mut(&mut self, reply: &FlowKey<A>) -> Option<(FlowKey<A>, &mut Conn)> {
        // The server's tuple is the vip/vport half of `reply`: compare it
        // with the entry's rip/rport in that half's place.
        let want = A::words(reply.proto, reply.cip, reply.cport, reply.vip, reply.vport);
        let i = self.find(reply.proto, reply.cip, reply.cport, |e| {
            A::same(A::words(e.proto, e.cip, e.cport, e.rip, e.rport), want)
        })?;
        let e = &mut self.slots[i];
        Some((e.key(), &mut e.conn))
    }

    /// Remove the connection of `key`, returning it.
    pub fn remove(&mut self, key: &FlowKey<A>) -> Option<Conn> {
        let i = self.position(key)?;
        Some(self.remove_at(i).conn)
    }

    /// Empty slot `i`, shifting the rest of its probe run back one slot so
    /// no tombstone is left.
    fn remove_at(&mut self, i: usize) -> Entry<A> {
        let gone = self.slots[i];
        let (mut hole, mut j) = (i, self.next(i));
        while self.slots[j].probe > 1 {
            self.slots[hole] = self.slots[j];
            self.slots[hole].probe -= 1;
            hole = j;
            j = self.next(j);
        }
        self.slots[hole] = Entry::default();
        self.len -= 1;
        gone
    }

    /// Advance the clock hand over up to `budget` slots, removing connections
    /// expired at `now` and handing each to `on_expire`.
    ///
    /// A removal shifts the next entry of its run back into the slot just
    /// looked at, so the hand looks at that slot again (within the budget).
    /// An entry shifted back behind the hand by a removal elsewhere waits
    /// for the next turn: expiry may be one turn late, never lost.
    pub fn sweep(&mut self, now: u32, budget: usize, mut on_expire: impl FnMut(&FlowKey<A>, &Conn)) {
        // A whole turn is a look per slot plus one per removal.
        for _ in 0..budget.min(self.slots.len() + self.len) {
            let i = self.hand;
            let e = &self.slots[i];
            if e.probe != 0 && expired(e.conn.expires, now) {
                let gone = self.remove_at(i);
                on_expire(&gone.key(), &gone.conn);
            } else {
                self.hand = self.next(i);
            }
        }
    }

    /// Visit every connection (control plane listings; not for the hot path).
    pub fn for_each(&self, mut f: impl FnMut(&FlowKey<A>, &Conn)) {
        for e in self.slots.iter().filter(|e| e.probe != 0) {
            f(&e.key(), &e.conn);
        }
    }
}

/// Compare on a wrapping clock, as the kernel's `time_after` does.
fn expired(expires: u32, now: u32) -> bool {
    now.wrapping_sub(expires) as i32 >= 0
}

#[cfg(test)]
mod tests;
