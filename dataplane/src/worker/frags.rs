//! The later fragments of a datagram: sent where its first fragment went.
//!
//! Owns: recording a first fragment's decision (here or at the worker that
//! owns the datagram's key), forwarding later fragments by it, holding the
//! early ones and sending them once it comes. Must not touch: connections
//! (a later fragment neither finds nor moves one: it has no ports).

use super::{Forwarder, PacketIo, Verdict};
use crate::family::Family;
use crate::frag::{FragAction, FragKey, FragNote};
use crate::frame::Frame;
use crate::owner::{self, MAX_FRAME};
use crate::stats::Reason;
use crate::wire::{self, Headers};

impl Forwarder {
    /// Record where the rest of the datagram of first fragment `frame`
    /// (parsed as `h`) goes: here, or with the worker that owns its key.
    // Off the hot path: kept out of the common case's code.
    #[cold]
    #[inline(never)]
    pub(super) fn remember<A: Family>(&mut self, frame: &[u8], h: &Headers<A>, action: FragAction, now: u32) {
        let note = FragNote {
            key: FragKey::of(h, frame),
            action,
        };
        if let Some((me, handoff)) = &self.peers {
            let to = owner::frag_owner(&note.key, handoff.workers());
            if to != *me {
                if !handoff.note(to, note) {
                    self.stats.handoff_drops.add(1);
                }
                return;
            }
        }
        self.learn(&note, now);
    }

    /// Take in a decision for a datagram this worker owns; its held
    /// fragments may go.
    pub fn learn(&mut self, note: &FragNote, now: u32) {
        self.frags.insert(note, now);
        self.held.release(&note.key);
    }

    /// A later fragment: forward it by its datagram's decision, or hold it
    /// until that comes.
    // Off the hot path: kept out of the common case's code.
    #[cold]
    #[inline(never)]
    pub(super) fn later_fragment<A: Family>(
        &mut self,
        frame: &mut dyn Frame,
        h: &Headers<A>,
        ingress: u8,
        now: u32,
    ) -> Verdict {
        let key = FragKey::of(h, frame.bytes());
        let out = match self.frags.get(&key, now) {
            Some(FragAction::ToReal { dest_id, slot }) => match self.update.snap.dest_of(dest_id, slot) {
                Some((si, di)) => self.transmit(frame, h, si, di, ingress),
                None => Err(Reason::DestGone),
            },
            Some(FragAction::ToClient { vip, link, mac, slot }) => {
                self.reply(frame.bytes(), h, (A::narrow(vip), 0), link, mac, slot)
            }
            None if self.held.hold(key, ingress, frame.bytes(), now) => {
                self.stats.frags_held.add(1);
                return Verdict::Consumed;
            }
            None => Err(Reason::Fragment),
        };
        self.verdict(out)
    }
}

/// Send the held fragments whose decision came, and drop (counted) those
/// that waited too long.
pub(super) fn release_held<P: PacketIo>(io: &mut P, fwd: &mut Forwarder, now: u32) {
    let expired = fwd.held.expire(now);
    if expired > 0 {
        fwd.stats.count_drops(Reason::Fragment, expired);
    }
    if !fwd.held.any_ready() {
        return;
    }
    let mut buf = [0u8; MAX_FRAME];
    // Bounded: each turn frees a held frame, and none is released again
    // within this call.
    while let Some((link, len)) = fwd.held.take_ready(&mut buf) {
        // Counted in rx when it first came: decided on here without it.
        let again = |frame: &mut dyn Frame, ingress| match wire::parse(frame.bytes()) {
            Ok(h) => fwd.later_fragment(frame, &h, ingress, now),
            Err(wire::Malformed::NotIpv4) => match wire::parse6(frame.bytes()) {
                Ok(h) => fwd.later_fragment(frame, &h, ingress, now),
                Err(m) => fwd.verdict(Err(m.into())),
            },
            Err(m) => fwd.verdict(Err(m.into())),
        };
        if !io.inject(&buf[..len], link, again) {
            fwd.stats.handoff_drops.add(1);
        }
    }
}
