//! Forwarding methods: rewrite one frame in place for its real server.
//!
//! Pure functions over `&mut [u8]` whose headers the caller already checked.

pub mod dr;
pub mod icmp;
pub mod nat;
pub mod tun;
