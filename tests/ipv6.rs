//! IPv6 end to end, as an operator runs it: ipvsadm's `[v6]` forms, real
//! clients (curl, socat, Python) and servers over IPv6 through DR, NAT66 and
//! TUN (IPv6-in-IPv6, decapsulated by the lab's helper: this kernel has no
//! ip6_tunnel module), beside IPv4 services in the same daemon.

mod lab;

use lab::{Daemon, Lab, RS1, Scratch, VIP, VIP6, rs6, rs6_nat, total_counter, wait_for};
use std::time::Duration;

fn svc6(port: u16) -> String {
    format!("[{VIP6}]:{port}")
}

/// GET http://[VIP6]/ `n` times, a connection each; the bodies in order.
fn answers6(lab: &Lab, n: usize) -> Vec<String> {
    lab.http_answers(&format!("http://[{VIP6}]/"), n)
}

#[test]
fn dr_rr_is_exact_over_thirty_connections_beside_ipv4_and_lists_as_ipvsadm() {
    let lab = Lab::up_servers("dr", 3);
    let d = Daemon::start(&lab);
    d.ok(&["-A", "-t", &svc6(80), "-s", "rr"]);
    for n in 1..=3 {
        d.ok(&["-a", "-t", &svc6(80), "-r", &format!("[{}]:80", rs6(n)), "-g"]);
    }
    // An IPv4 service in the same daemon.
    d.ok(&["-A", "-t", &format!("{VIP}:80"), "-s", "rr"]);
    d.ok(&["-a", "-t", &format!("{VIP}:80"), "-r", &format!("{RS1}:80"), "-g"]);
    let got = answers6(&lab, 30);
    let want: Vec<String> = (0..30).map(|i| format!("server{}", i % 3 + 1)).collect();
    assert_eq!(got, want, "{}", d.log());
    assert_eq!(lab.http_answers(&format!("http://{VIP}/"), 2), ["server1"; 2]);

    let list = d.ok(&["-L", "-n"]);
    assert!(list.contains("\nTCP  10.99.0.100:80 rr\n"), "{list}");
    assert!(list.contains("\nTCP  [2001:db8:99::100]:80 rr\n"), "{list}");
    for n in 1..=3 {
        let row = format!("  -> [{}]:80         Route   1      ", rs6(n));
        let line = list
            .lines()
            .find(|l| l.starts_with(&row))
            .unwrap_or_else(|| panic!("{row}\n{list}"));
        let cols: Vec<u32> = line
            .split_whitespace()
            .skip(4)
            .map(|c| c.parse().unwrap())
            .collect();
        assert_eq!(cols.iter().sum::<u32>(), 10, "{line}");
    }
    let conns = d.ok(&["-L", "-n", "-c"]);
    assert!(
        conns
            .lines()
            .any(|l| l.contains(" [2001:db8:99::2]:") && l.contains(" [2001:db8:99::100]:80 ")),
        "{conns}"
    );
    // -S | -C | -R gives the same rules back.
    let saved = d.ok(&["-S", "-n"]);
    assert!(
        saved.contains("-a -t [2001:db8:99::100]:80 -r [2001:db8:99::13]:80 -g -w 1\n"),
        "{saved}"
    );
    d.ok(&["-C"]);
    let dir = Scratch::new("ipv6-save");
    std::fs::write(dir.path("rules"), &saved).unwrap();
    let restore = lab::run(
        std::process::Command::new(lab::bin())
            .args(["--socket", &d.socket, "-R"])
            .stdin(std::fs::File::open(dir.path("rules")).unwrap()),
    );
    assert!(restore.status.success(), "{}", lab::text(&restore));
    assert_eq!(d.ok(&["-S", "-n"]), saved);

    // Persistence: the client keeps its server across connections.
    d.ok(&["-E", "-t", &svc6(80), "-s", "rr", "-p", "300"]);
    let sticky = answers6(&lab, 6);
    assert!(sticky.iter().all(|a| *a == sticky[0]), "{sticky:?}");
    let templates = d.ok(&["-L", "-n", "-c"]);
    assert!(
        templates
            .lines()
            .any(|l| l.contains("NONE") && l.contains("[2001:db8:99::2]:0")),
        "{templates}"
    );
}

#[test]
fn nat66_maps_ports_by_wrr_exactly_and_translates_udp() {
    let lab = Lab::up_kind("nat");
    let d = Daemon::start_with(
        &lab,
        &[
            "--interface",
            "eth0",
            "--interface",
            "eth1",
            "--metrics",
            "[::1]:9411",
        ],
    );
    d.ok(&["-A", "-t", &svc6(80), "-s", "wrr"]);
    for (n, w) in [(1, "3"), (2, "1")] {
        d.ok(&[
            "-a",
            "-t",
            &svc6(80),
            "-r",
            &format!("[{}]:8080", rs6_nat(n)),
            "-m",
            "-w",
            w,
        ]);
    }
    d.ok(&["-A", "-u", &svc6(53), "-s", "rr"]);
    d.ok(&["-a", "-u", &svc6(53), "-r", &format!("[{}]:53", rs6_nat(2)), "-m"]);
    // IPVS's wrr over weights 3 and 1: three to rs1, then one to rs2.
    let want: Vec<&str> = [1, 1, 1, 2, 1, 1, 1, 2]
        .iter()
        .map(|&n| ["server1", "server2"][n - 1])
        .collect();
    assert_eq!(answers6(&lab, 8), want, "{}", d.log());
    assert_eq!(lab.udp_ask_to(VIP6, 42000), "server2", "{}", d.log());
    let list = d.ok(&["-L", "-n"]);
    assert!(
        list.contains("  -> [2001:db8:98::11]:8080       Masq    3      "),
        "{list}"
    );
    // Every frame each way was translated: none dropped.
    let counters = d.ok(&["--counters"]);
    let rx = total_counter(&counters, "rx");
    assert!(rx > 0 && rx == total_counter(&counters, "tx"), "{counters}");
}

#[test]
fn tun6_carries_an_upload_intact_and_packet_too_big_sets_the_path_mtu() {
    let lab = Lab::up_kind("tun");
    let d = Daemon::start(&lab);
    d.ok(&["-A", "-t", &svc6(80), "-s", "rr"]);
    d.ok(&["-A", "-t", &svc6(9000), "-s", "rr"]);
    for n in 1..=2 {
        d.ok(&["-a", "-t", &svc6(80), "-r", &format!("[{}]:80", rs6(n)), "-i"]);
    }
    d.ok(&["-a", "-t", &svc6(9000), "-r", &format!("[{}]:9000", rs6(1)), "-i"]);
    assert_eq!(
        answers6(&lab, 4),
        ["server1", "server2", "server1", "server2"],
        "{}",
        d.log()
    );

    // A 300 kB upload: full-sized segments are 1500 bytes, 1540 once
    // wrapped, over the MTU: the director answers "packet too big, 1460",
    // the client's kernel lowers its path MTU and the rest fits.
    let up = lab::upload(&lab, ("rs1", 9000, true), &format!("TCP6:[{VIP6}]:9000"), 300_000);
    assert!(up.is_ok(), "{up:?}\n{}", d.log());
    let route = lab.exec("client", &["ip", "-6", "route", "get", VIP6]);
    assert!(lab::text(&route).contains("mtu 1460"), "{}", lab::text(&route));
    let counters = d.ok(&["--counters"]);
    assert!(total_counter(&counters, "frag_needed") >= 1, "{counters}");
}

#[test]
fn keepalived_ipv6_virtual_server_with_tcp_check_drops_a_dead_server() {
    let lab = Lab::up();
    let real = |n: u32| {
        format!(
            "    real_server {} 80 {{\n        weight 1\n        TCP_CHECK {{\n            connect_timeout 1\n            retry 1\n        }}\n    }}\n",
            rs6(n)
        )
    };
    let conf = format!(
        "virtual_server {VIP6} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n{}{}}}\n",
        real(1),
        real(2)
    );
    let dir = Scratch::new("ipv6-keepalived");
    std::fs::write(dir.path("keepalived.conf"), conf).unwrap();
    let d = Daemon::start_with(
        &lab,
        &[
            "--interface",
            "eth0",
            "--keepalived",
            &dir.path("keepalived.conf"),
        ],
    );
    let listed = |n: u32| d.ok(&["-L", "-n"]).contains(&format!("-> [{}]:80", rs6(n)));
    assert!(
        wait_for(Duration::from_secs(10), || listed(1) && listed(2)),
        "{}",
        d.log()
    );
    lab.server("server-stop", "rs2");
    assert!(
        wait_for(Duration::from_secs(10), || !listed(2)),
        "rs2 still listed\n{}",
        d.log()
    );
    assert_eq!(answers6(&lab, 4), ["server1"; 4], "{}", d.log());
}
