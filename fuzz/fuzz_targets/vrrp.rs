//! A VRRP datagram as the raw socket hands it (IP header first): ignored
//! with a reason, or an advertisement, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vrrp::packet::parse(data);
});
