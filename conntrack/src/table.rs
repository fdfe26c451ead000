//! The table: a hashbrown index over a fixed slab, swept like a clock.
//!
//! Capacity is reserved when the table is made, and an insert past it is
//! refused ([`Full`]) rather than grown, so the hot path never allocates.
//! Expiry is a clock hand over the slab that looks at a bounded number of slots
//! per call ([`ConnTable::sweep`]): amortised O(1) per packet, never a full scan.

use crate::{ConnState, FlowKey};
use hashbrown::HashMap;

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
    /// A reply from the server was seen (NAT): client packets then follow
    /// IPVS's INPUT table rather than INPUT-ONLY.
    pub seen_reply: bool,
    /// A persistence template (client → server for a service), not a
    /// connection.
    pub template: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: FlowKey,
    /// The key of the real server's replies (NAT), indexed too.
    reply: Option<FlowKey>,
    conn: Conn,
    used: bool,
}

/// The table is at capacity; the new connection was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// One worker's connections.
#[derive(Debug)]
pub struct ConnTable {
    index: HashMap<FlowKey, u32>,
    replies: HashMap<FlowKey, u32>,
    slab: Vec<Entry>,
    free: Vec<u32>,
    hand: usize,
}

impl ConnTable {
    /// Make a table for at most `capacity` connections (allocates all of it).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let empty = Entry {
            key: FlowKey::default(),
            reply: None,
            conn: Conn::default(),
            used: false,
        };
        Self {
            // Twice the entries: hashbrown grows (allocates) when deleted
            // markers exhaust its room and it is over half full; at under half
            // it only rehashes in place, and at this load deleted markers
            // stay rare (an erase leaves EMPTY when its group has room).
            index: HashMap::with_capacity(capacity * 2),
            replies: HashMap::with_capacity(capacity * 2),
            slab: vec![empty; capacity],
            free: (0..capacity as u32).rev().collect(),
            hand: 0,
        }
    }

    /// Return the number of connections held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Return whether the table holds no connection.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Return the most connections the table can hold.
    pub fn capacity(&self) -> usize {
        self.slab.len()
    }

    /// Find the connection of `key`.
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Conn> {
        let i = *self.index.get(key)? as usize;
        Some(&mut self.slab[i].conn)
    }

    /// Store a new connection; with `reply`, the real server's replies find
    /// it too ([`ConnTable::get_reply_mut`]).
    ///
    /// # Errors
    /// [`Full`] when the table is at capacity.
    pub fn insert(&mut self, key: FlowKey, reply: Option<FlowKey>, conn: Conn) -> Result<&mut Conn, Full> {
        if let Some(&i) = self.index.get(&key) {
            self.slab[i as usize].conn = conn;
            return Ok(&mut self.slab[i as usize].conn);
        }
        let i = self.free.pop().ok_or(Full)?;
        self.index.insert(key, i);
        if let Some(r) = reply {
            self.replies.insert(r, i);
        }
        let e = &mut self.slab[i as usize];
        *e = Entry {
            key,
            reply,
            conn,
            used: true,
        };
        Ok(&mut e.conn)
    }

    /// Find a connection by the key of its real server's replies; return its
    /// client-side key too.
    pub fn get_reply_mut(&mut self, reply: &FlowKey) -> Option<(FlowKey, &mut Conn)> {
        let i = *self.replies.get(reply)? as usize;
        let e = &mut self.slab[i];
        Some((e.key, &mut e.conn))
    }

    /// Remove the connection of `key`, returning it.
    pub fn remove(&mut self, key: &FlowKey) -> Option<Conn> {
        let i = self.index.remove(key)?;
        Some(self.release(i as usize))
    }

    fn release(&mut self, i: usize) -> Conn {
        let e = &mut self.slab[i];
        e.used = false;
        if let Some(r) = e.reply.take() {
            self.replies.remove(&r);
        }
        self.free.push(i as u32);
        e.conn
    }

    /// Advance the clock hand over up to `budget` slots, removing connections
    /// expired at `now` and handing each to `on_expire`.
    pub fn sweep(&mut self, now: u32, budget: usize, mut on_expire: impl FnMut(&FlowKey, &Conn)) {
        let n = self.slab.len();
        for _ in 0..budget.min(n) {
            let i = self.hand;
            self.hand = (self.hand + 1) % n;
            let e = self.slab[i];
            if e.used && expired(e.conn.expires, now) {
                self.index.remove(&e.key);
                self.release(i);
                on_expire(&e.key, &e.conn);
            }
        }
    }

    /// Visit every connection (control plane listings; not for the hot path).
    pub fn for_each(&self, mut f: impl FnMut(&FlowKey, &Conn)) {
        for e in self.slab.iter().filter(|e| e.used) {
            f(&e.key, &e.conn);
        }
    }
}

/// Compare on a wrapping clock, as the kernel's `time_after` does.
fn expired(expires: u32, now: u32) -> bool {
    now.wrapping_sub(expires) as i32 >= 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cport: u16) -> FlowKey {
        FlowKey {
            proto: 6,
            cip: 0x0a00_0002,
            cport,
            vip: 0x0a00_0064,
            vport: 80,
        }
    }

    fn conn(dest_id: u32, expires: u32) -> Conn {
        Conn {
            dest_id,
            expires,
            ..Conn::default()
        }
    }

    #[test]
    fn entry_fits_a_cache_line() {
        assert!(std::mem::size_of::<Entry>() <= 64);
    }

    #[test]
    fn insert_then_find() {
        let mut t = ConnTable::with_capacity(4);
        t.insert(key(1), None, conn(7, 100)).unwrap();
        assert_eq!(t.get_mut(&key(1)).unwrap().dest_id, 7);
        assert!(t.get_mut(&key(2)).is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn refuses_past_capacity_and_keeps_old_entries() {
        let mut t = ConnTable::with_capacity(2);
        t.insert(key(1), None, conn(1, 100)).unwrap();
        t.insert(key(2), None, conn(2, 100)).unwrap();
        assert_eq!(t.insert(key(3), None, conn(3, 100)), Err(Full));
        assert_eq!(t.len(), 2);
        assert_eq!(t.get_mut(&key(1)).unwrap().dest_id, 1);
        // Re-inserting an existing key is an update, not a new slot.
        assert!(t.insert(key(2), None, conn(9, 100)).is_ok());
        assert_eq!(t.get_mut(&key(2)).unwrap().dest_id, 9);
    }

    #[test]
    fn sweep_expires_only_due_entries_within_budget() {
        let mut t = ConnTable::with_capacity(8);
        t.insert(key(1), None, conn(1, 10)).unwrap();
        t.insert(key(2), None, conn(2, 50)).unwrap();
        let mut gone = Vec::new();
        t.sweep(20, 8, |k, c| gone.push((k.cport, c.dest_id)));
        assert_eq!(gone, vec![(1, 1)]);
        assert_eq!(t.len(), 1);
        // A budget of one slot looks at one slot only.
        t.insert(key(3), None, conn(3, 5)).unwrap();
        let mut n = 0;
        t.sweep(60, 1, |_, _| n += 1);
        assert!(n <= 1);
        t.sweep(60, 8, |_, _| n += 1);
        assert_eq!(n, 2);
        assert!(t.is_empty());
    }

    #[test]
    fn replies_find_their_connection_until_it_goes() {
        let mut t = ConnTable::with_capacity(4);
        let reply = FlowKey {
            vip: 0x0a00_000b,
            vport: 8080,
            ..key(1)
        };
        t.insert(key(1), Some(reply), conn(7, 10)).unwrap();
        let (k, c) = t.get_reply_mut(&reply).unwrap();
        assert_eq!((k, c.dest_id), (key(1), 7));
        t.sweep(20, 4, |_, _| {});
        assert!(t.get_reply_mut(&reply).is_none());
        t.insert(key(2), Some(reply), conn(8, 10)).unwrap();
        t.remove(&key(2));
        assert!(t.get_reply_mut(&reply).is_none());
    }

    #[test]
    fn freed_slots_are_reused() {
        let mut t = ConnTable::with_capacity(1);
        t.insert(key(1), None, conn(1, 10)).unwrap();
        assert_eq!(t.remove(&key(1)).unwrap().dest_id, 1);
        t.insert(key(2), None, conn(2, 10)).unwrap();
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn expiry_survives_clock_wrap() {
        assert!(expired(u32::MAX, 1));
        assert!(!expired(5, u32::MAX));
    }
}
