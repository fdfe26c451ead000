//! The one parse of a frame, IPv4 and IPv6: never a panic, and what it
//! accepts its views can read.
#![no_main]

use dataplane::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = wire::parse(data) {
        assert!(h.l4 <= h.end && h.end <= data.len());
        let _ = h.l4_checksum_partial(data);
        if h.proto == wire::PROTO_ICMP {
            let _ = h.quoted(data);
        }
    }
    if let Ok(h) = wire::parse6(data) {
        assert!(h.l4 <= h.end && h.end <= data.len());
        let _ = h.l4_checksum_partial(data);
        let _ = h.ident6(data);
        if h.proto == wire::PROTO_ICMPV6 {
            let _ = h.quoted6(data);
        }
    }
});
