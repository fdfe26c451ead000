//! Byte fixtures captured from keepalived 2.2.7 (Debian 12) in the lab with
//! `tcpdump -x`: VRRPv2 with `auth_type PASS` and VRRPv3 with its default
//! pseudo-header checksum, vrid 51, priority 150, 1 s, two addresses.

use super::*;

/// `10.77.0.2 > 224.0.0.18: VRRPv2, vrid 51, prio 150, authtype simple,
/// intvl 1s` (auth_pass secret12; 10.77.0.100/24 and 10.77.0.101).
const V2: [u8; 44] = [
    0x45, 0xc0, 0x00, 0x2c, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x3f, 0x0a, 0x4d, 0x00, 0x02, //
    0xe0, 0x00, 0x00, 0x12, 0x21, 0x33, 0x96, 0x02, 0x01, 0x01, 0xc4, 0xe7, 0x0a, 0x4d, 0x00, 0x64, //
    0x0a, 0x4d, 0x00, 0x65, 0x73, 0x65, 0x63, 0x72, 0x65, 0x74, 0x31, 0x32,
];

/// The same instance with `vrrp_version 3` (no auth; intvl 100cs).
const V3: [u8; 36] = [
    0x45, 0xc0, 0x00, 0x24, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x47, 0x0a, 0x4d, 0x00, 0x02, //
    0xe0, 0x00, 0x00, 0x12, 0x31, 0x33, 0x96, 0x02, 0x00, 0x64, 0x38, 0x21, 0x0a, 0x4d, 0x00, 0x64, //
    0x0a, 0x4d, 0x00, 0x65,
];

const SRC: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const VIPS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 77, 0, 100), Ipv4Addr::new(10, 77, 0, 101)];

fn advert(version: Version) -> Advert {
    Advert {
        version,
        vrid: 51,
        priority: 150,
        interval_cs: 100,
        auth: if version == Version::V2 {
            Auth::pass("secret12")
        } else {
            Auth::None
        },
        addrs: VIPS.to_vec(),
    }
}

fn expect(version: Version) -> Expect<'static> {
    Expect {
        version,
        auth: advert(version).auth,
        interval_cs: 100,
        checksum: Checksum::PseudoHeader,
        peers: &[],
        addrs: &VIPS,
        own: Ipv4Addr::new(10, 77, 0, 3),
    }
}

#[test]
fn we_build_what_keepalived_sends() {
    for (version, fixture) in [(Version::V2, &V2[..]), (Version::V3, &V3[..])] {
        let m = advert(version).encode(Checksum::PseudoHeader, SRC, GROUP);
        assert_eq!(ip_packet(SRC, GROUP, TTL, 1, &m), fixture, "{version:?}");
    }
}

#[test]
fn we_read_what_keepalived_sends() {
    let r = parse(&V2).unwrap();
    assert_eq!((r.src, r.vrid, r.priority, r.interval_cs), (SRC, 51, 150, 100));
    assert_eq!((r.addrs.as_slice(), r.auth.0), (&VIPS[..], 1));
    assert_eq!(r.check(&expect(Version::V2)), Ok(()));
    let r = parse(&V3).unwrap();
    assert_eq!(
        (r.version, r.interval_cs, r.sums_ok),
        (Version::V3, 100, (false, true))
    );
    assert_eq!(r.check(&expect(Version::V3)), Ok(()));
    // The same packet under `v3_checksum_as_v2` is refused: the modes must
    // agree on both sides.
    let as_v2 = Expect {
        checksum: Checksum::AsV2,
        ..expect(Version::V3)
    };
    assert_eq!(r.check(&as_v2), Err(Ignored::Checksum));
    let m = advert(Version::V3).encode(Checksum::AsV2, SRC, GROUP);
    let r = parse(&ip_packet(SRC, GROUP, TTL, 1, &m)).unwrap();
    assert_eq!(r.check(&as_v2), Ok(()));
}

#[test]
fn ethernet_padding_after_the_packet_is_ignored() {
    let mut padded = V3.to_vec();
    padded.resize(46, 0);
    assert_eq!(parse(&padded).unwrap().check(&expect(Version::V3)), Ok(()));
}

/// `V2` with `edit` applied (IP checksum not fixed: raw sockets hand over
/// what the kernel accepted, and we do not read it).
fn v2_with(edit: impl Fn(&mut Vec<u8>)) -> Result<(), Ignored> {
    let mut p = V2.to_vec();
    edit(&mut p);
    parse(&p)?.check(&expect(Version::V2))
}

#[test]
fn bad_adverts_are_ignored_by_reason() {
    assert_eq!(v2_with(|p| p[8] = 254), Err(Ignored::Ttl));
    assert_eq!(
        v2_with(|p| p[20] = 0x31),
        Err(Ignored::Length),
        "a v3 header is 8 bytes shorter"
    );
    assert_eq!(
        parse(&V3).unwrap().check(&expect(Version::V2)),
        Err(Ignored::Version)
    );
    assert_eq!(v2_with(|p| p[20] = 0x41), Err(Ignored::Version), "version 4");
    assert_eq!(v2_with(|p| p[24] = 0), Err(Ignored::AuthType));
    assert_eq!(v2_with(|p| p[43] = b'3'), Err(Ignored::AuthPass));
    assert_eq!(v2_with(|p| p[25] = 2), Err(Ignored::Interval));
    assert_eq!(v2_with(|p| p[27] ^= 1), Err(Ignored::Checksum));
    assert_eq!(v2_with(|p| p.truncate(40)), Err(Ignored::Length), "short");
    assert_eq!(v2_with(|p| p[23] = 3), Err(Ignored::Length), "count past the end");
    assert_eq!(v2_with(|p| p[9] = 6), Err(Ignored::NotVrrp));
    assert_eq!(
        v2_with(|p| p[3] = 0x40),
        Err(Ignored::Length),
        "IP length past the end"
    );
    assert_eq!(parse(&V2[..19]), Err(Ignored::NotVrrp));
    // Another address in the list (checksum fixed so that is the one fault).
    let other = Advert {
        addrs: vec![VIPS[0], Ipv4Addr::new(10, 77, 0, 102)],
        ..advert(Version::V2)
    };
    let p = ip_packet(
        SRC,
        GROUP,
        TTL,
        1,
        &other.encode(Checksum::PseudoHeader, SRC, GROUP),
    );
    assert_eq!(
        parse(&p).unwrap().check(&expect(Version::V2)),
        Err(Ignored::Addresses)
    );
    // A master that stops may leave its addresses out.
    let stop = Advert {
        priority: 0,
        addrs: vec![],
        ..advert(Version::V2)
    };
    let p = ip_packet(
        SRC,
        GROUP,
        TTL,
        1,
        &stop.encode(Checksum::PseudoHeader, SRC, GROUP),
    );
    assert_eq!(parse(&p).unwrap().check(&expect(Version::V2)), Ok(()));
    // Our own advert, looped back by multicast.
    let own = Expect {
        own: SRC,
        ..expect(Version::V2)
    };
    assert_eq!(parse(&V2).unwrap().check(&own), Err(Ignored::Own));
}

#[test]
fn unicast_takes_any_ttl_from_peers_only() {
    let peer = Ipv4Addr::new(10, 77, 0, 9);
    let m = advert(Version::V3).encode(Checksum::PseudoHeader, peer, Ipv4Addr::new(10, 77, 0, 3));
    let p = ip_packet(peer, Ipv4Addr::new(10, 77, 0, 3), 64, 1, &m);
    let peers = [peer];
    let uni = Expect {
        peers: &peers,
        ..expect(Version::V3)
    };
    assert_eq!(parse(&p).unwrap().check(&uni), Ok(()));
    let strangers = [Ipv4Addr::new(10, 77, 0, 8)];
    let other = Expect {
        peers: &strangers,
        ..expect(Version::V3)
    };
    assert_eq!(parse(&p).unwrap().check(&other), Err(Ignored::Destination));
    // A multicast advert reaching a unicast instance.
    assert_eq!(parse(&V3).unwrap().check(&uni), Err(Ignored::Destination));
}
