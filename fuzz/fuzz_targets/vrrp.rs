//! A VRRP datagram as the raw socket hands it (IP header first): ignored
//! with a reason, or an advertisement, never a panic. An advert is then
//! checked as a v2 PASS instance and a v3 one would check it, and the advert
//! we would send with its fields parses back to them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use vrrp::packet::{Advert, Auth, Checksum, Expect, Version, ip_packet, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(r) = parse(data) else {
        return;
    };
    let addrs = [Ipv4Addr::new(10, 99, 0, 200)];
    for (version, auth, interval_cs) in [(Version::V2, Auth::pass("fuzz"), 100), (Version::V3, Auth::None, 50)] {
        let _ = r.check(&Expect {
            version,
            auth,
            interval_cs,
            checksum: Checksum::default(),
            peers: &[],
            addrs: &addrs,
            own: Ipv4Addr::new(10, 99, 0, 10),
        });
    }
    let advert = Advert {
        version: r.version,
        vrid: r.vrid,
        priority: r.priority,
        interval_cs: r.interval_cs,
        auth: if r.auth.0 == 1 { Auth::Pass(r.auth.1) } else { Auth::None },
        addrs: r.addrs.clone(),
    };
    let sent = ip_packet(r.src, r.dst, r.ttl, 0, &advert.encode(Checksum::PseudoHeader, r.src, r.dst));
    let back = parse(&sent).expect("an advert we send parses");
    assert_eq!(
        (back.version, back.vrid, back.priority, back.ttl, &back.addrs),
        (r.version, r.vrid, r.priority, r.ttl, &r.addrs)
    );
    match r.version {
        Version::V2 => {
            assert!(back.sums_ok.0, "a v2 checksum covers the message alone");
            // v2 sends whole seconds, 1 at least.
            assert_eq!(back.interval_cs, r.interval_cs.max(100));
            assert_eq!(back.auth.0, if r.auth.0 == 1 { 1 } else { 0 });
        }
        Version::V3 => {
            assert!(back.sums_ok.1, "a v3 checksum covers the pseudo-header");
            assert_eq!(back.interval_cs, r.interval_cs);
        }
    }
});
