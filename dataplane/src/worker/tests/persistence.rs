//! Persistence templates, firewall-mark services, one-packet scheduling,
//! full tables and table dumps.

use super::*;

fn syn_from(cip: [u8; 4], cport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(cip, VIP, 64)
        .tcp(cport, 80, 1, 1000)
        .syn()
        .write(&mut v, &[])
        .unwrap();
    v
}

#[test]
fn persistence_keeps_a_client_on_its_server_until_the_template_expires() {
    let (mut f, _) = forwarder(&[
        "-A -t 10.0.0.100:80 -s rr -p 60",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g",
        "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g",
    ]);
    let server = |f: &mut Forwarder, cip, cport, now| dst_mac(&send(f, &syn_from(cip, cport), now).1);
    let a = [10, 1, 0, 2];
    let b = [10, 1, 0, 3];
    // rr would alternate; the template holds client a on its first server.
    let first = server(&mut f, a, 1000, 0);
    for port in 1001..1006 {
        assert_eq!(server(&mut f, a, port, 1), first);
    }
    // Another client gets the next server, and keeps it too.
    let other = server(&mut f, b, 2000, 1);
    assert_ne!(other, first);
    assert_eq!(server(&mut f, b, 2001, 2), other);
    // Connections are counted; templates are not, but as persistent ones.
    assert_eq!(f.stats().conns.get(), 8);
    let persist: u64 = (0..2).map(|s| f.stats().dest(s).persist.get()).sum();
    assert_eq!(persist, 2);
    // 60 s after its last use the template is gone: rr decides again.
    f.expire(63, usize::MAX);
    let mut seen = std::collections::HashSet::new();
    for port in 0..4 {
        seen.insert(server(&mut f, [10, 1, 0, 10 + port as u8], 3000 + port, 63));
    }
    assert_eq!(seen.len(), 2, "rr again after expiry");
    let persist: u64 = (0..2).map(|s| f.stats().dest(s).persist.get()).sum();
    assert_eq!(persist, 4, "old templates released, four new ones");
}

#[test]
fn persistence_netmask_groups_a_client_network() {
    let (mut f, _) = forwarder(&[
        "-A -t 10.0.0.100:80 -s rr -p 60 -M 255.255.255.0",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g",
        "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g",
    ]);
    let first = dst_mac(&send(&mut f, &syn_from([10, 1, 0, 2], 1000), 0).1);
    for host in 3..10 {
        assert_eq!(
            dst_mac(&send(&mut f, &syn_from([10, 1, 0, host], 1000), 0).1),
            first
        );
    }
    assert_ne!(dst_mac(&send(&mut f, &syn_from([10, 1, 1, 2], 1000), 0).1), first);
}

#[test]
fn persistent_flows_are_owned_by_client_address_alone() {
    let (f, _) = forwarder(&[
        "-A -t 10.0.0.100:80 -s rr -p",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g",
    ]);
    let owners: std::collections::HashSet<_> = (0..64)
        .map(|p| f.owner(&syn_from([10, 1, 0, 2], 1000 + p), 4))
        .collect();
    assert_eq!(owners.len(), 1, "one client, one owner");
    let (g, _) = forwarder(TWO_RS);
    let spread: std::collections::HashSet<_> = (0..64)
        .map(|p| g.owner(&syn_from([10, 1, 0, 2], 1000 + p), 4))
        .collect();
    assert!(spread.len() > 1, "without persistence the port spreads flows");
}

#[test]
fn dump_lists_connections_and_templates() {
    let (mut f, _) = forwarder(&[
        "-A -t 10.0.0.100:80 -s rr -p 60",
        "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g",
    ]);
    send(&mut f, &syn_from([10, 1, 0, 2], 1000), 5);
    let mut buf = Vec::with_capacity(8);
    f.dump(&mut buf, 5);
    buf.sort_by_key(|c| c.template);
    assert_eq!(buf.len(), 2);
    let (conn, template) = (buf[0], buf[1]);
    assert_eq!(
        (conn.cport, conn.state, conn.expires_in, conn.rip),
        (
            1000,
            ConnState::SynRecv,
            30,
            Some(Ipv4Addr::new(10, 0, 0, 11).into())
        )
    );
    assert!(template.template && template.cport == 0 && template.expires_in == 60);
    assert_eq!(template.proto, 6, "the template bit is not shown");
    // A full buffer stops the walk.
    let mut small = Vec::with_capacity(1);
    f.dump(&mut small, 5);
    assert_eq!(small.len(), 1);
}

#[test]
fn full_table_picks_statelessly_or_drops_as_configured() {
    let r = rules(TWO_RS);
    let mut slots = SlotMap::default();
    for policy in [
        crate::snapshot::FullTable::Stateless,
        crate::snapshot::FullTable::Drop,
    ] {
        slots.assign(&r).unwrap();
        let snap = Snapshot::build(&Input {
            full_table: policy,
            ..Input::new(1, &r, &slots, LINKS, &neigh)
        });
        let mut f = Forwarder::new(Update::new(Arc::new(snap)), 2, Arc::new(WorkerStats::default()));
        send(&mut f, &tcp(40000, 80, Seg::Syn), 0);
        send(&mut f, &tcp(40001, 80, Seg::Syn), 0);
        assert_eq!(f.table().len(), 2);
        // Full: a new flow's SYN and ACK both go to one server, no entry.
        let (v1, o1) = send(&mut f, &tcp(40002, 80, Seg::Syn), 0);
        let (v2, o2) = send(&mut f, &tcp(40002, 80, Seg::Ack), 0);
        if policy == crate::snapshot::FullTable::Drop {
            assert_eq!(
                (v1, v2),
                (Verdict::Drop(Reason::TableFull), Verdict::Drop(Reason::TableFull))
            );
        } else {
            assert_eq!((v1, v2), (Verdict::Tx(0), Verdict::Tx(0)));
            assert_eq!(dst_mac(&o1), dst_mac(&o2));
        }
        assert_eq!(f.table().len(), 2, "the table never grows");
        // Established connections keep their server.
        let (v, _) = send(&mut f, &tcp(40000, 80, Seg::Ack), 0);
        assert_eq!(v, Verdict::Tx(0));
        assert_eq!(f.stats().table_full.get(), 2);
    }
}

#[test]
fn one_packet_scheduling_spreads_every_datagram() {
    let (mut f, _) = forwarder(&[
        "-A -u 10.0.0.100:53 -s rr -o",
        "-a -u 10.0.0.100:53 -r 10.0.0.11:53 -g",
        "-a -u 10.0.0.100:53 -r 10.0.0.12:53 -g",
    ]);
    // The same client port, four datagrams: rr alternates, no entry stays.
    let macs: Vec<[u8; 6]> = (0..4)
        .map(|_| dst_mac(&send(&mut f, &udp(5353, 53), 0).1))
        .collect();
    assert_eq!(macs, [RS1_MAC, RS2_MAC, RS1_MAC, RS2_MAC]);
    assert!(f.table().is_empty());
}

#[test]
fn fwmark_service_takes_every_marked_port_and_shares_templates() {
    let (mut f, _) = forwarder(&[
        "--mark -A -p tcp -d 10.0.0.100 --dports 80,443 -j MARK --set-mark 5",
        "-A -f 5 -s rr -p 60",
        "-a -f 5 -r 10.0.0.11:0 -g",
        "-a -f 5 -r 10.0.0.12:0 -g",
    ]);
    let (v80, o80) = send(&mut f, &tcp(40000, 80, Seg::Syn), 0);
    let (v443, o443) = send(&mut f, &tcp(40001, 443, Seg::Syn), 0);
    assert_eq!((v80, v443), (Verdict::Tx(0), Verdict::Tx(0)));
    // One client, two ports of one mark: one template, one server.
    assert_eq!(dst_mac(&o80), dst_mac(&o443));
    // A port the rule does not mark is no service.
    assert_eq!(
        send(&mut f, &tcp(40002, 8080, Seg::Syn), 0).0,
        Verdict::Drop(Reason::NoService)
    );
}

#[test]
fn one_mark_over_tcp_and_udp_shares_one_template() {
    let (mut f, _) = forwarder(&[
        "--mark -A -p tcp -d 10.0.0.100 --dport 80 -j MARK --set-mark 6",
        "--mark -A -p udp -d 10.0.0.100 --dport 53 -j MARK --set-mark 6",
        "-A -f 6 -s rr -p 60",
        "-a -f 6 -r 10.0.0.11:0 -g",
        "-a -f 6 -r 10.0.0.12:0 -g",
    ]);
    // rr would alternate; the client's template keeps both on one server.
    let (_, tcp_out) = send(&mut f, &tcp(40000, 80, Seg::Syn), 0);
    let (v, udp_out) = send(&mut f, &udp(40001, 53), 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(dst_mac(&tcp_out), dst_mac(&udp_out));
}

#[test]
fn fwmark_nat_keeps_the_packet_port_when_the_server_port_is_0() {
    let (mut f, _) = forwarder(&[
        "--mark -A -d 10.0.0.100 -j MARK --set-mark 9",
        "-A -f 9 -s rr",
        "-a -f 9 -r 10.0.0.11:0 -m",
    ]);
    let (v, out) = send(&mut f, &udp(5353, 53), 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&out[30..34], &[10, 0, 0, 11]);
    assert_eq!(&out[36..38], &53u16.to_be_bytes(), "port kept");
    // The reply from RIP:53 finds its connection and is translated back.
    let mut reply = Vec::new();
    PacketBuilder::ethernet2(RS1_MAC, DIRECTOR_MAC)
        .ipv4([10, 0, 0, 11], CIP, 64)
        .udp(53, 5353)
        .write(&mut reply, b"answer")
        .unwrap();
    let (v, back) = send(&mut f, &reply, 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&back[26..30], &VIP);
}

#[test]
fn a_fwmark_service_keeps_its_scheduler_state_across_publications() {
    let mut l = Live::new(&[
        "--mark -A -p tcp -d 10.0.0.100 --dports 80 -j MARK --set-mark 3",
        "-A -f 3 -s rr",
        "-a -f 3 -r 10.0.0.11:0 -g",
        "-a -f 3 -r 10.0.0.12:0 -g",
    ]);
    let (_, out) = send(&mut l.f, &tcp(40000, 80, Seg::Syn), 0);
    assert_eq!(dst_mac(&out), RS1_MAC);
    // A publication that changes nothing (a neighbour moved elsewhere).
    l.republish();
    let (_, out) = send(&mut l.f, &tcp(40001, 80, Seg::Syn), 0);
    assert_eq!(dst_mac(&out), RS2_MAC, "rr restarted its lap");
}
