//! Fixtures laid out by hand from the kernel's structures
//! (`struct ip_vs_sync_mesg`, `ip_vs_sync_v4`, `ip_vs_sync_conn_v0`) and its
//! receiver's rules (`ip_vs_process_message`, `ip_vs_proc_sync_conn`).

use super::*;

/// One DR TCP ESTABLISHED connection, syncid 7: 10.99.0.2:40000 →
/// 10.99.0.100:80 → 10.99.0.11:80, flags 0x83 (DROUTE | NOOUTPUT),
/// timeout 900 s.
const ONE: [u8; 44] = [
    0x00, 0x07, 0x00, 0x2c, 0x01, 0x01, 0x00, 0x00, // header: reserved, syncid, size 44, 1 conn, v1
    0x00, 0x06, 0x00, 0x24, 0x00, 0x00, 0x00, 0x83, // IPv4, TCP, v0 size 36, flags
    0x00, 0x01, 0x9c, 0x40, 0x00, 0x50, 0x00, 0x50, // state, cport, vport, dport
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x84, // fwmark, timeout
    0x0a, 0x63, 0x00, 0x02, 0x0a, 0x63, 0x00, 0x64, // caddr, vaddr
    0x0a, 0x63, 0x00, 0x0b, // daddr
];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn conn(cport: u16) -> Entry {
    Entry {
        protocol: 6,
        flags: flags::DROUTE | flags::NOOUTPUT,
        state: 1,
        cport,
        vport: 80,
        dport: 80,
        fwmark: 0,
        timeout: 900,
        caddr: ip("10.99.0.2"),
        vaddr: ip("10.99.0.100"),
        daddr: ip("10.99.0.11"),
        seq: None,
        pe: None,
    }
}

fn entries(items: Vec<Item>) -> Vec<Entry> {
    items
        .into_iter()
        .filter_map(|i| match i {
            Item::Entry(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn one_connection_is_the_kernels_bytes() {
    let mut enc = Encoder::new(7, DEFAULT_MAXLEN);
    assert_eq!(enc.push(&conn(40000)), None);
    assert_eq!(enc.flush().unwrap(), ONE);
    assert_eq!(decode(&ONE, 7).unwrap(), [Item::Entry(conn(40000))]);
    assert_eq!(decode(&ONE, 0).unwrap().len(), 1, "syncid 0 takes every syncid");
}

#[test]
fn entries_are_padded_to_four_bytes_and_options_ride_along() {
    let mut pe = conn(40001);
    pe.pe = Some((b"sip".to_vec(), b"abc".to_vec()));
    let mut seq = conn(40002);
    seq.flags |= 0x0400;
    seq.seq = Some([1, 2, 3, 4, 5, 6]);
    let mut enc = Encoder::new(1, DEFAULT_MAXLEN);
    for e in [&pe, &seq, &conn(40003)] {
        assert_eq!(enc.push(e), None);
    }
    let m = enc.flush().unwrap();
    // 36 + PE_DATA(2+3) + PE_NAME(2+3) = 46, padded to 48; 36 + 26 = 62,
    // padded to 64; 36 unpadded.
    assert_eq!(m.len(), 8 + 48 + 64 + 36);
    assert_eq!(u16::from_be_bytes([m[2], m[3]]) as usize, m.len());
    assert_eq!((m[8 + 2], m[8 + 3]), (0, 46), "entry size excludes its padding");
    assert_eq!(entries(decode(&m, 1).unwrap()), [pe, seq, conn(40003)]);
}

#[test]
fn a_full_message_goes_and_the_next_begins() {
    let mut enc = Encoder::new(0, 200);
    let mut sent = Vec::new();
    for p in 0..20 {
        if let Some(m) = enc.push(&conn(p)) {
            sent.push(m);
        }
    }
    sent.extend(enc.flush());
    assert!(sent.iter().all(|m| m.len() <= 200), "maxlen");
    // 8 + 36 + 4 × 36 = 188: five entries a message.
    assert_eq!(sent.len(), 4);
    let all: Vec<Entry> = sent.iter().flat_map(|m| entries(decode(m, 0).unwrap())).collect();
    assert_eq!(all, (0..20).map(conn).collect::<Vec<_>>());
}

#[test]
fn the_kernels_receive_rules() {
    assert_eq!(decode(&ONE[..3], 0), Err(Dropped::Short));
    assert_eq!(decode(&ONE[..40], 0), Err(Dropped::Size), "size must be exact");
    let mut padded = ONE.to_vec();
    padded.push(0);
    assert_eq!(decode(&padded, 0), Err(Dropped::Size));
    assert_eq!(decode(&ONE, 8), Err(Dropped::Syncid));
    let edit = |at: usize, v: u8| {
        let mut m = ONE.to_vec();
        m[at] = v;
        decode(&m, 0).unwrap()
    };
    assert_eq!(edit(8, 2), [Item::Malformed], "unknown entry type");
    assert_eq!(edit(10, 0x10), [Item::Malformed], "entry version 1");
    assert_eq!(edit(11, 0x30), [Item::Malformed], "entry size past the datagram");
    assert_eq!(
        edit(4, 2),
        [Item::Entry(conn(40000)), Item::Malformed],
        "a second entry that is not there"
    );
}

/// `ONE`'s entry with option bytes `opt` appended (sizes fixed up).
fn with_option(opt: &[u8]) -> Vec<u8> {
    let mut m = ONE.to_vec();
    m.extend_from_slice(opt);
    let n = m.len();
    m[2..4].copy_from_slice(&(n as u16).to_be_bytes());
    m[10..12].copy_from_slice(&((n - 8) as u16).to_be_bytes());
    m
}

#[test]
fn options_unknown_optional_bad() {
    assert_eq!(
        entries(decode(&with_option(&[0x49, 2, 0, 0]), 0).unwrap()),
        [conn(40000)],
        "optional: skipped"
    );
    assert_eq!(
        decode(&with_option(&[9, 2, 0, 0]), 0).unwrap(),
        [Item::Skipped],
        "mandatory unknown: entry dropped"
    );
    assert_eq!(
        decode(&with_option(&[1, 4, 0, 0, 0, 0]), 0).unwrap(),
        [Item::Malformed],
        "SEQ not 24 bytes"
    );
    assert_eq!(
        decode(&with_option(&[2, 0]), 0).unwrap(),
        [Item::Malformed],
        "zero length"
    );
    assert_eq!(
        decode(&with_option(&[2, 1, 7]), 0).unwrap(),
        [Item::Skipped],
        "PE data without a name"
    );
    let dup = [2, 1, 7, 2, 1, 7];
    assert_eq!(
        decode(&with_option(&dup), 0).unwrap(),
        [Item::Malformed],
        "duplicate"
    );
}

#[test]
fn version_0_is_read() {
    // nr_conns 1, syncid 3, size 28; entry: reserved, UDP, cport 5353,
    // vport 53, dport 53, caddr, vaddr, daddr, flags 0x183, state 0.
    let v0: [u8; 28] = [
        1, 3, 0, 28, 0, 17, 0x14, 0xe9, 0, 53, 0, 53, 10, 99, 0, 2, 10, 99, 0, 100, 10, 99, 0, 12, 0x01,
        0x83, 0, 0,
    ];
    let got = entries(decode(&v0, 3).unwrap());
    assert_eq!(got.len(), 1);
    let e = &got[0];
    assert_eq!((e.protocol, e.cport, e.flags, e.timeout), (17, 5353, 0x183, 0));
    assert_eq!((e.caddr, e.daddr), (ip("10.99.0.2"), ip("10.99.0.12")));
}

#[test]
fn ipv6_entries_round_trip() {
    let e = Entry {
        caddr: ip("2001:db8::2"),
        vaddr: ip("2001:db8::100"),
        daddr: ip("2001:db8::11"),
        ..conn(40000)
    };
    let mut enc = Encoder::new(0, DEFAULT_MAXLEN);
    enc.push(&e);
    let m = enc.flush().unwrap();
    assert_eq!((m.len(), m[8]), (8 + 72, 1));
    assert_eq!(entries(decode(&m, 0).unwrap()), [e]);
}

#[test]
fn a_template_and_sequence_options_are_the_kernels_bytes() {
    // A DR persistence template (flags 0x1183: TEMPLATE | INACTIVE |
    // NOOUTPUT | DROUTE), cport 0, timeout 300; then a NAT connection with
    // IN_SEQ (0x0400) and its 24-byte SEQ option, type 1 length 24, BE32s.
    let template = Entry {
        flags: 0x1183,
        state: 0,
        cport: 0,
        timeout: 300,
        ..conn(0)
    };
    let mut seq = conn(40000);
    seq.flags = 0x0400;
    seq.seq = Some([0x1111_1111, 2, 0, 0x2222_2222, 0, 3]);
    let mut enc = Encoder::new(9, DEFAULT_MAXLEN);
    enc.push(&template);
    enc.push(&seq);
    let m = enc.flush().unwrap();
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x00, 0x09, 0x00, 0x6a, 0x02, 0x01, 0x00, 0x00][..],
        // template: size 36, flags, state 0, cport 0, vport 80, dport 80, fwmark 0, timeout 300
        &[0x00, 0x06, 0x00, 0x24, 0x00, 0x00, 0x11, 0x83, 0x00, 0x00, 0x00, 0x00, 0x00, 0x50, 0x00, 0x50],
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2c],
        &[10, 99, 0, 2, 10, 99, 0, 100, 10, 99, 0, 11],
        // connection: size 62 (36 + 2 + 24), flags 0x400, ESTABLISHED
        &[0x00, 0x06, 0x00, 0x3e, 0x00, 0x00, 0x04, 0x00, 0x00, 0x01, 0x9c, 0x40, 0x00, 0x50, 0x00, 0x50],
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x84],
        &[10, 99, 0, 2, 10, 99, 0, 100, 10, 99, 0, 11],
        &[0x01, 24],
        &[0x11, 0x11, 0x11, 0x11, 0, 0, 0, 2, 0, 0, 0, 0, 0x22, 0x22, 0x22, 0x22, 0, 0, 0, 0, 0, 0, 0, 3],
    ]
    .concat();
    assert_eq!(m, want);
    assert_eq!(entries(decode(&want, 9).unwrap()), [template, seq]);
}

/// Found by the fuzz target: a PE name that is not UTF-8 came back as
/// text with replacement characters, 22 bytes, which our own decoder then
/// refused as over 16. The kernel compares the bytes; so do we.
#[test]
fn a_pe_name_is_its_bytes_and_survives_a_round_trip() {
    let mut e = conn(40004);
    e.pe = Some((
        vec![0x63, 0, 0x9c, 0xf5, 0xff, 0xff, 0xfc, 0x7b, 0xf5, 0x63],
        vec![0, 0x48],
    ));
    let mut enc = Encoder::new(9, DEFAULT_MAXLEN);
    assert_eq!(enc.push(&e), None);
    let m = enc.flush().unwrap();
    assert_eq!(entries(decode(&m, 9).unwrap()), [e]);
}
