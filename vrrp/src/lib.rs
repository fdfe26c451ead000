//! VRRP as keepalived speaks it: the advertisement on the wire ([`packet`])
//! and one virtual router's elections and timers ([`instance`]), pure: no
//! sockets, no clock (time comes in as an `Instant`), no addresses set.
//!
//! Must not touch: interfaces, addresses, processes; the daemon's VRRP
//! thread does those, from the [`instance::Action`]s this returns.

pub mod instance;
pub mod packet;
