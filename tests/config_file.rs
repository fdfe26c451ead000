//! `ferrovs daemon --config FILE`: the director starts from the file alone,
//! loads its ipvsadm-save rules, lets command-line flags win, and refuses a
//! bad file or bad rules by line before it touches anything.

mod lab;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use lab::{Daemon, Lab, RS1, RS2, VIP, bin, run};

fn write(lab: &str, name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("{lab}.{name}"));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn the_daemon_starts_from_the_file_with_its_rules() {
    let lab = Lab::up();
    let rules = write(
        &lab.name,
        "rules",
        &format!(
            "-A -t {VIP}:80 -s rr\n-a -t {VIP}:80 -r {RS1}:80 -g -w 1\n-a -t {VIP}:80 -r {RS2}:80 -g -w 1\n"
        ),
    );
    // `socket` is overridden by the --socket the lab passes.
    let conf = write(
        &lab.name,
        "toml",
        &format!(
            "interfaces = [\"eth0\"]\nqueues = 1\nsocket = \"/nonexistent/ferrovs.sock\"\n\
             socket_mode = \"0660\"\nring_size = 1024\nneed_wakeup = false\nbusy_poll_us = 20\nrules = \"{}\"\n",
            rules.display()
        ),
    );
    let d = Daemon::start_with(&lab, &["--config", conf.to_str().unwrap()]);
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let save = d.ok(&["-S", "-n"]);
    assert!(
        save.contains(&format!("-a -t {VIP}:80 -r {RS2}:80 -g -w 1")),
        "{save}"
    );
    let answers = lab.http_answers(&format!("http://{VIP}/"), 4);
    assert_eq!(
        answers,
        ["server1", "server2", "server1", "server2"],
        "{}",
        d.log()
    );
    for p in [rules, conf] {
        let _ = std::fs::remove_file(p);
    }
}

/// Run `ferrovs daemon ARGS` (outside any lab: it must stop before it looks
/// at an interface) and return its stderr.
fn refused(args: &[&str]) -> String {
    let out = run(Command::new(bin()).arg("daemon").args(args));
    assert!(!out.status.success(), "the daemon started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_file_or_bad_rules_stop_the_start_naming_the_line() {
    let tag = format!("ferrovs-conf-{}", std::process::id());
    let conf = write(&tag, "toml", "interfaces = [\"lo\"]\nqueue = 2\n");
    let e = refused(&["--config", conf.to_str().unwrap()]);
    assert!(e.contains(".toml:2: unknown field `queue`"), "{e}");

    let rules = write(
        &tag,
        "rules",
        "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w x\n",
    );
    std::fs::write(
        &conf,
        format!("interfaces = [\"lo\"]\nrules = \"{}\"\n", rules.display()),
    )
    .unwrap();
    let e = refused(&[
        "--config",
        conf.to_str().unwrap(),
        "--socket",
        "/nonexistent/x.sock",
    ]);
    assert!(e.contains(":2:"), "{e}");
    // Flags still win: a bad --bind-mode on the command line is clap's error.
    let e = refused(&["--config", conf.to_str().unwrap(), "--bind-mode", "fast"]);
    assert!(e.contains("fast"), "{e}");
    for p in [conf, rules] {
        let _ = std::fs::remove_file(p);
    }
}

/// A start that fails changes nothing on the host: with a mistyped VRRP
/// interface, a priority-255 instance and a core that does not exist, the
/// daemon names both problems, and the wire saw no advert and no ARP, the
/// instance's address was not added, no XDP program was attached.
#[test]
fn a_failed_start_sends_nothing_and_attaches_nothing() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let lab = Lab::up();
    let conf = write(
        &lab.name,
        "keepalived.conf",
        &format!(
            "vrrp_instance VI_1 {{\n state MASTER\n interface eht0\n virtual_router_id 51\n priority 255\n\
             advert_int 1\n virtual_ipaddress {{\n 10.99.0.200/32 dev eth0\n }}\n}}\n\
             virtual_server {VIP} 80 {{\n lb_algo rr\n lb_kind DR\n protocol TCP\n\
             real_server {RS1} 80 {{\n }}\n}}\n"
        ),
    );
    // The wire of the director's interface, from before the start.
    let mut dump = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("dir"),
            "timeout",
            "4",
            "tcpdump",
            "-i",
            "eth0",
            "-n",
            "-l",
        ])
        .arg("vrrp or arp")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    let mut said = String::new();
    let mut err = BufReader::new(dump.stderr.take().unwrap());
    while !said.contains("listening on") && err.read_line(&mut said).unwrap_or(0) > 0 {}
    assert!(said.contains("listening on"), "tcpdump: {said}");
    let socket = format!("/tmp/{}.sock", lab.name);
    let conf = conf.to_str().unwrap();
    let out = run(Command::new("ip")
        .args(["netns", "exec", &lab.ns("dir")])
        .arg(bin())
        .args([
            "daemon",
            "-i",
            "eth0",
            "--keepalived",
            conf,
            "--cpus",
            "64",
            "--socket",
            &socket,
        ]));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the daemon started: {e}");
    assert!(
        e.contains("nothing was changed")
            && e.contains("vrrp_instance VI_1")
            && e.contains("no such interface eht0 (`ip -br link` lists them)")
            && e.contains("--cpus 64"),
        "{e}"
    );
    // One line a frame (tcpdump ends with an empty one when stopped).
    let frames = String::from_utf8_lossy(&dump.wait_with_output().unwrap().stdout).into_owned();
    assert!(frames.trim().is_empty(), "frames on the wire: {frames}");
    let addrs = lab::text(&lab.exec("dir", &["ip", "-o", "addr", "show", "dev", "eth0"]));
    assert!(!addrs.contains("10.99.0.200/32"), "{addrs}");
    let link = lab::text(&lab.exec("dir", &["ip", "link", "show", "dev", "eth0"]));
    assert!(!link.contains("xdp"), "{link}");
    let _ = std::fs::remove_file(conf);
}
