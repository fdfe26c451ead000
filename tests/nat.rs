//! LVS-NAT end to end: a two-armed director (client side eth0, real-server
//! side eth1) translating VIP:80 to RIP:8080 and the replies back.

mod lab;

use lab::{Daemon, Lab, VIP, total_counter};

const RS1: &str = "10.98.0.11";
const RS2: &str = "10.98.0.12";

fn nat_lab() -> (Lab, Daemon) {
    let lab = Lab::up_kind("nat");
    let d = Daemon::start_on(&lab, &["eth0", "eth1"]);
    (lab, d)
}

#[test]
fn two_hundred_connections_with_port_mapping_all_succeed_split_by_rr() {
    let (lab, d) = nat_lab();
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    for rs in [RS1, RS2] {
        d.ok(&["-a", "-t", &svc, "-r", &format!("{rs}:8080"), "-m", "-w", "1"]);
    }
    let list = d.ok(&["-L", "-n"]);
    assert!(
        list.contains(&format!("-> {RS1}:8080")) && list.contains("Masq"),
        "{list}"
    );
    let urls: Vec<String> = (0..200).map(|i| format!("http://{VIP}/{i}")).collect();
    let mut args = vec!["curl", "-s", "-m", "60", "--http1.0"];
    args.extend(urls.iter().map(String::as_str));
    let out = lab.exec("client", &args);
    let text = String::from_utf8_lossy(&out.stdout);
    let n1 = text.lines().filter(|l| *l == "server1").count();
    let n2 = text.lines().filter(|l| *l == "server2").count();
    assert_eq!(
        (n1, n2),
        (100, 100),
        "curl exit {:?}\n{}",
        out.status.code(),
        d.log()
    );
    assert!(out.status.success());
}

#[test]
fn udp_is_translated_both_ways() {
    let (lab, d) = nat_lab();
    let svc = format!("{VIP}:53");
    d.ok(&["-A", "-u", &svc, "-s", "rr"]);
    for rs in [RS1, RS2] {
        d.ok(&["-a", "-u", &svc, "-r", &format!("{rs}:53"), "-m"]);
    }
    // The client's socket is connected to VIP:53, so the kernel hands it an
    // answer only if the reply's source was translated back to VIP:53.
    let answers: Vec<String> = (0..4).map(|i| lab.udp_ask(41000 + i)).collect();
    assert_eq!(
        answers,
        ["server1", "server2", "server1", "server2"],
        "{}",
        d.log()
    );
}

#[test]
fn two_workers_on_two_queues_hand_replies_to_the_flow_owner() {
    let lab = Lab::up_with("nat", 2);
    let d = Daemon::start_with(&lab, &["-i", "eth0", "-i", "eth1", "--queues", "2"]);
    let svc = format!("{VIP}:80");
    d.ok(&["-A", "-t", &svc, "-s", "rr"]);
    for rs in [RS1, RS2] {
        d.ok(&["-a", "-t", &svc, "-r", &format!("{rs}:8080"), "-m"]);
    }
    let urls: Vec<String> = (0..200).map(|i| format!("http://{VIP}/{i}")).collect();
    let mut args = vec!["curl", "-s", "-m", "120", "--http1.0"];
    args.extend(urls.iter().map(String::as_str));
    let out = lab.exec("client", &args);
    let text = String::from_utf8_lossy(&out.stdout);
    let answered = text
        .lines()
        .filter(|l| *l == "server1" || *l == "server2")
        .count();
    let counters = d.ok(&["--counters"]);
    assert_eq!(answered, 200, "{counters}\n{}", d.log());
    assert!(out.status.success());
    // Both workers took frames, and replies that the switch hashed to the
    // other queue reached their flow's owner.
    let field = |name: &str| total_counter(&counters, name);
    assert!(field("handoffs") > 0, "{counters}");
    assert_eq!(field("handoff_drops"), 0, "{counters}");
    for q in 0..2 {
        let line = counters
            .lines()
            .find(|l| l.starts_with(&format!("worker {q}:")))
            .unwrap_or_default();
        assert!(!line.contains("rx 0 "), "worker {q} idle: {counters}");
    }
}
