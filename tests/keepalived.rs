//! keepalived compatibility end to end: a keepalived.conf drives the rules,
//! its checkers follow the real servers, the sorry server takes over, and a
//! reload changes only what changed.

mod lab;

use lab::{Daemon, KeepAlive, Lab, RS1, RS2, VIP, wait_for};
use std::time::Duration;

fn conf(lab: &Lab, body: &str) -> String {
    let path = std::env::temp_dir().join(format!("{}.keepalived.conf", lab.name));
    std::fs::write(&path, body).expect("write keepalived.conf");
    path.display().to_string()
}

fn real(rs: &str, check: &str) -> String {
    format!("    real_server {rs} 80 {{\n        weight 1\n        {check}\n    }}\n")
}

const TCP: &str = "TCP_CHECK {\n            connect_timeout 1\n            retry 1\n        }";

fn service(reals: &str, extra: &str) -> String {
    format!(
        "virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n{extra}{reals}}}\n"
    )
}

fn answers(lab: &Lab, n: usize) -> Vec<String> {
    (0..n)
        .flat_map(|_| lab.http_get(&[format!("http://{VIP}/")]).0)
        .collect()
}

fn listed(d: &Daemon, rs: &str) -> bool {
    d.ok(&["-L", "-n"]).contains(&format!("-> {rs}:80"))
}

#[test]
fn tcp_check_takes_a_dead_server_out_and_back_in() {
    let lab = Lab::up();
    let path = conf(&lab, &service(&(real(RS1, TCP) + &real(RS2, TCP)), ""));
    let d = Daemon::start_with(&lab, &["--interface", "eth0", "--keepalived", &path]);
    assert!(listed(&d, RS1) && listed(&d, RS2), "{}", d.log());
    lab.server("server-stop", "rs1");
    // delay_loop 1 × retry 1, plus margin.
    assert!(
        wait_for(Duration::from_secs(10), || !listed(&d, RS1)),
        "rs1 still listed\n{}",
        d.log()
    );
    assert_eq!(answers(&lab, 6), vec!["server2"; 6], "{}", d.log());
    lab.server("server-start", "rs1");
    assert!(
        wait_for(Duration::from_secs(10), || listed(&d, RS1)),
        "rs1 not back\n{}",
        d.log()
    );
    let got = answers(&lab, 6);
    assert!(got.iter().any(|a| a == "server1"), "{got:?}");
    assert!(
        d.log()
            .contains(&format!("TCP_CHECK {RS1}:80 of TCP {VIP}:80 is down")),
        "{}",
        d.log()
    );
}

#[test]
fn http_get_digest_and_status_and_misc_check_decide() {
    let lab = Lab::up();
    let marker = std::env::temp_dir().join(format!("{}.up", lab.name));
    let _ = std::fs::remove_file(&marker);
    // rs1: a wrong digest, never up. rs2: right status, and a MISC_CHECK that
    // passes while the marker file exists.
    let http_bad = "HTTP_GET {\n            url {\n              path /\n              digest 00000000000000000000000000000000\n            }\n            connect_timeout 1\n        }";
    let misc = format!(
        "MISC_CHECK {{\n            misc_path \"test -e {}\"\n            misc_timeout 2\n        }}",
        marker.display()
    );
    let reals = real(RS1, http_bad) + &real(RS2, &misc);
    let path = conf(&lab, &service(&reals, ""));
    let d = Daemon::start_with(&lab, &["--interface", "eth0", "--keepalived", &path]);
    assert!(
        wait_for(Duration::from_secs(10), || !listed(&d, RS1) && !listed(&d, RS2)),
        "{}",
        d.log()
    );
    std::fs::write(&marker, "").unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || listed(&d, RS2)),
        "{}",
        d.log()
    );
    assert!(!listed(&d, RS1), "a wrong digest passed");
    assert!(d.log().contains("digest"), "{}", d.log());
    let _ = std::fs::remove_file(&marker);
}

#[test]
fn sorry_server_answers_when_every_server_is_down() {
    let lab = Lab::up();
    let path = conf(
        &lab,
        &service(&real(RS1, TCP), &format!("    sorry_server {RS2} 80\n")),
    );
    let d = Daemon::start_with(
        &lab,
        &[
            "--interface",
            "eth0",
            "--keepalived",
            &path,
            "--metrics",
            "127.0.0.1:9410",
        ],
    );
    assert_eq!(answers(&lab, 2), vec!["server1"; 2]);
    lab.server("server-stop", "rs1");
    assert!(
        wait_for(Duration::from_secs(10), || listed(&d, RS2)),
        "sorry server not in\n{}",
        d.log()
    );
    assert_eq!(answers(&lab, 3), vec!["server2"; 3]);
    // keepalived's words, as alerts written for it grep them.
    for line in [
        format!("<4>ferrovs: Removing service [{RS1}]:tcp:80 from VS [{VIP}]:tcp:80\n"),
        format!("<4>ferrovs: Lost quorum 1-0=1 > 0 for VS [{VIP}]:tcp:80\n"),
        format!("<4>ferrovs: Adding sorry server [{RS2}]:tcp:80 to VS [{VIP}]:tcp:80\n"),
    ] {
        assert!(d.log().contains(&line), "no {line:?} in\n{}", d.log());
    }
    // And what an operator alerts on, in the metrics.
    let text = lab::scrape(&lab);
    let service = format!("service=\"TCP {VIP}:80\"");
    for series in [
        format!("ferrovs_real_server_up{{{service},server=\"{RS1}:80\"}} 0"),
        format!("ferrovs_quorum_up{{{service}}} 0"),
        format!("ferrovs_sorry_server_active{{{service}}} 1"),
        format!("ferrovs_real_server_weight{{{service},server=\"{RS2}:80\"}} 1"),
        "ferrovs_reload_last_success 1".to_string(),
    ] {
        assert!(text.lines().any(|l| l == series), "no {series} in\n{text}");
    }
}

#[test]
fn reload_adds_a_server_and_keeps_an_open_connection() {
    let lab = Lab::up();
    let path = conf(&lab, &service(&real(RS1, TCP), ""));
    let d = Daemon::start_with(&lab, &["--interface", "eth0", "--keepalived", &path]);
    let mut client = KeepAlive::open(&lab);
    let mut ask = || client.ask();
    assert_eq!(ask(), "server1");
    conf(&lab, &service(&(real(RS1, TCP) + &real(RS2, TCP)), ""));
    d.ok(&["--reload"]);
    assert!(listed(&d, RS2), "{}", d.log());
    assert_eq!(ask(), "server1", "the open connection moved or broke");
    // New connections now reach both.
    let got = answers(&lab, 4);
    assert!(got.iter().any(|a| a == "server2"), "{got:?}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn ping_check_follows_echo_replies() {
    let lab = Lab::up();
    let ping = "PING_CHECK {\n            connect_timeout 1\n            retry 1\n        }";
    let path = conf(&lab, &service(&(real(RS1, ping) + &real(RS2, ping)), ""));
    let d = Daemon::start_with(&lab, &["--interface", "eth0", "--keepalived", &path]);
    assert!(listed(&d, RS1) && listed(&d, RS2), "{}", d.log());
    let echo = |on: &str| {
        let out = lab.exec(
            "rs1",
            &["sysctl", "-qw", &format!("net.ipv4.icmp_echo_ignore_all={on}")],
        );
        assert!(out.status.success());
    };
    echo("1");
    assert!(
        wait_for(Duration::from_secs(10), || !listed(&d, RS1)),
        "rs1 still listed\n{}",
        d.log()
    );
    assert!(
        d.log()
            .contains(&format!("PING_CHECK {RS1}:80 of TCP {VIP}:80 is down")),
        "{}",
        d.log()
    );
    assert!(listed(&d, RS2));
    echo("0");
    assert!(
        wait_for(Duration::from_secs(10), || listed(&d, RS1)),
        "rs1 not back\n{}",
        d.log()
    );
}

#[test]
fn udp_check_follows_the_responder() {
    let lab = Lab::up_kind("nat");
    // The real servers' UDP responder answers on port 53.
    let udp = "UDP_CHECK {\n            connect_port 53\n            connect_timeout 1\n            retry 1\n            payload 7175657279\n            require_reply\n        }";
    let reals: String = ["10.98.0.11", "10.98.0.12"]
        .iter()
        .map(|rs| format!("    real_server {rs} 8080 {{\n        weight 1\n        {udp}\n    }}\n"))
        .collect();
    let body = format!(
        "virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n{reals}}}\n"
    );
    let path = conf(&lab, &body);
    let d = Daemon::start_with(&lab, &["-i", "eth0", "-i", "eth1", "--keepalived", &path]);
    let nat_listed = |rs: &str| d.ok(&["-L", "-n"]).contains(&format!("-> {rs}:8080"));
    assert!(
        wait_for(Duration::from_secs(5), || nat_listed("10.98.0.11")),
        "{}",
        d.log()
    );
    lab.server("server-stop", "rs1");
    assert!(
        wait_for(Duration::from_secs(10), || !nat_listed("10.98.0.11")),
        "rs1 still listed\n{}",
        d.log()
    );
    assert!(nat_listed("10.98.0.12"));
    lab.server("server-start", "rs1");
    assert!(
        wait_for(Duration::from_secs(10), || nat_listed("10.98.0.11")),
        "rs1 not back\n{}",
        d.log()
    );
}

#[test]
fn tcp_check_of_nat_servers_gets_its_answers_past_the_steering() {
    // The servers' SYN-ACKs to the director's own address come from a NAT
    // real server's (address, port): they are the host's, not replies to
    // steer to the workers.
    let lab = Lab::up_kind("nat");
    let reals: String = ["10.98.0.11", "10.98.0.12"]
        .iter()
        .map(|rs| format!("    real_server {rs} 8080 {{\n        weight 1\n        {TCP}\n    }}\n"))
        .collect();
    let body = format!(
        "virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    alpha\n{reals}}}\n"
    );
    let path = conf(&lab, &body);
    let d = Daemon::start_with(&lab, &["-i", "eth0", "-i", "eth1", "--keepalived", &path]);
    let nat_listed = |rs: &str| d.ok(&["-L", "-n"]).contains(&format!("-> {rs}:8080"));
    // alpha: down until a check succeeds, so being listed is the proof.
    assert!(
        wait_for(Duration::from_secs(10), || nat_listed("10.98.0.11")
            && nat_listed("10.98.0.12")),
        "{}",
        d.log()
    );
    // A few more rounds of checks: none of their answers reaches a worker
    // (there, with no connection, it would be dropped).
    std::thread::sleep(Duration::from_secs(2));
    let counters = d.ok(&["--counters"]);
    assert_eq!(lab::total_counter(&counters, "no_connection"), 0, "{counters}");
    let got = answers(&lab, 4);
    assert!(
        got.iter().any(|a| a == "server1") && got.iter().any(|a| a == "server2"),
        "{got:?}"
    );
    lab.server("server-stop", "rs1");
    assert!(
        wait_for(Duration::from_secs(10), || !nat_listed("10.98.0.11")),
        "rs1 still listed\n{}",
        d.log()
    );
}
