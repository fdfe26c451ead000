//! Direct routing (`-g`, "Route"): the frame goes to the real server unchanged
//! but for its MACs. The real server holds the VIP on `lo` and answers the
//! client directly, so the director only ever sees one direction.

use crate::wire::{Headers, IpBits};

/// Rewrite the MACs of `frame` (parsed as `h`): from the director's
/// interface to the real server.
pub fn rewrite<A: IpBits>(frame: &mut [u8], h: &Headers<A>, director_mac: [u8; 6], rs_mac: [u8; 6]) {
    let mut eth = h.ethernet_mut(frame);
    eth.set_src(director_mac);
    eth.set_dst(rs_mac);
}
