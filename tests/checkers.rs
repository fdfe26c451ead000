//! keepalived's checkers against real services in the lab's real-server
//! namespaces: nginx over TLS with a self-signed certificate (SSL_GET),
//! dnsmasq (DNS_CHECK), Python's smtpd (SMTP_CHECK), a file (FILE_CHECK),
//! and the scripts keepalived runs (notify_up/down, quorum_up/down, as
//! script_user), with misc_dynamic weights. Each server leaves the pool when
//! its service stops answering and comes back when it answers again.

mod lab;

use lab::{Bg, Daemon, Lab, RS1, RS2, Scratch, VIP, listening, wait_for};
use std::time::Duration;

fn conf(dir: &Scratch, body: &str) -> String {
    let path = dir.path("keepalived.conf");
    std::fs::write(&path, body).expect("write keepalived.conf");
    path
}

/// A DR service on `port` whose servers RS1 and RS2 have `check` (with
/// `{rs}` replaced by the server's address).
fn service(port: u16, check: &str, extra: &str) -> String {
    let reals: String = [RS1, RS2]
        .iter()
        .map(|rs| {
            format!(
                "    real_server {rs} {port} {{\n        weight 1\n        {}\n    }}\n",
                check.replace("{rs}", rs)
            )
        })
        .collect();
    format!(
        "virtual_server {VIP} {port} {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n{extra}{reals}}}\n"
    )
}

fn listed(d: &Daemon, rs: &str, port: u16) -> bool {
    d.ok(&["-L", "-n"]).contains(&format!("-> {rs}:{port}"))
}

/// RS1 leaves the pool when its service (`rs1`) stops and is back when
/// `start` has started it again; the new service is returned.
fn leaves_and_returns(d: &Daemon, port: u16, rs1: Bg, start: impl FnOnce() -> Bg) -> Bg {
    assert!(
        wait_for(Duration::from_secs(10), || listed(d, RS1, port)
            && listed(d, RS2, port)),
        "both servers up at first\n{}",
        d.log()
    );
    drop(rs1);
    assert!(
        wait_for(Duration::from_secs(15), || !listed(d, RS1, port)),
        "rs1 still listed\n{}",
        d.log()
    );
    assert!(listed(d, RS2, port), "rs2 went too\n{}", d.log());
    let again = start();
    assert!(
        wait_for(Duration::from_secs(15), || listed(d, RS1, port)),
        "rs1 not back\n{}",
        d.log()
    );
    again
}

/// nginx on `role` serving `/health` over TLS on 443 with a self-signed
/// certificate made by openssl.
fn https(lab: &Lab, role: &str, dir: &Scratch) -> Bg {
    let (key, cert) = (dir.path("key.pem"), dir.path("cert.pem"));
    if !std::path::Path::new(&cert).exists() {
        let out = lab::run(std::process::Command::new("openssl").args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=rs.example.test",
            "-keyout",
            &key,
            "-out",
            &cert,
        ]));
        assert!(out.status.success(), "openssl: {}", lab::text(&out));
    }
    let server = format!(
        "listen 443 ssl; ssl_certificate {cert}; ssl_certificate_key {key};\n\
         location = /health {{ return 200 \"ok\\n\"; }}\n location / {{ return 404; }}"
    );
    lab::nginx(lab, role, dir, &server, 443)
}

#[test]
fn ssl_get_follows_an_https_server_by_status_and_digest() {
    let lab = Lab::up();
    let dir = Scratch::new(&format!("{}-ssl", lab.name));
    // md5("ok\n"), as keepalived's genhash prints it.
    let check = "SSL_GET {\n            url {\n                path /health\n                digest 2e1a2b9d4a7f5e3f63d3b0bbd4a1c4a0\n            }\n            url {\n                path /nothing-here\n                status_code 404\n            }\n            enable_sni\n            virtualhost rs.example.test\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n            warmup 0\n        }";
    let digest = md5_hex(b"ok\n");
    let check = check.replace("2e1a2b9d4a7f5e3f63d3b0bbd4a1c4a0", &digest);
    let path = conf(&dir, &service(443, &check, ""));
    let rs1 = https(&lab, "rs1", &dir);
    let _rs2 = https(&lab, "rs2", &dir);
    let d = Daemon::start_with(&lab, &["--interface", "eth0", "--keepalived", &path]);
    let _rs1 = leaves_and_returns(&d, 443, rs1, || https(&lab, "rs1", &dir));
    assert!(
        d.log()
            .contains(&format!("SSL_GET {RS1}:443 of TCP {VIP}:443 is down")),
        "{}",
        d.log()
    );
}

/// MD5 of `b` in hex, from coreutils (an oracle that is not our code).
fn md5_hex(b: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("md5sum");
    child.stdin.take().unwrap().write_all(b).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..32].to_string()
}

/// dnsmasq on `role`, answering www.example.test on port 5353.
fn dnsmasq(lab: &Lab, role: &str, addr: &str) -> Bg {
    let bg = lab.spawn(
        role,
        &[
            "dnsmasq",
            "--no-daemon",
            "--port=5353",
            &format!("--listen-address={addr}"),
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--user=root",
            "--pid-file",
            "--address=/www.example.test/10.1.2.3",
        ],
    );
    let up = wait_for(Duration::from_secs(10), || {
        let out = lab.exec(role, &["ss", "-Hlun", "sport = :5353"]);
        String::from_utf8_lossy(&out.stdout).contains("5353")
    });
    assert!(up, "dnsmasq does not listen on {role}");
    bg
}

#[test]
fn dns_check_follows_dnsmasq() {
    let lab = Lab::up();
    let dir = Scratch::new(&format!("{}-dns", lab.name));
    let check = "DNS_CHECK {\n            type A\n            name www.example.test\n            connect_port 5353\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n            warmup 0\n        }";
    let path = conf(&dir, &service(80, check, ""));
    let rs1 = dnsmasq(&lab, "rs1", RS1);
    let _rs2 = dnsmasq(&lab, "rs2", RS2);
    let d = Daemon::start_with(&lab, &["--interface", "eth0", "--keepalived", &path]);
    let _rs1 = leaves_and_returns(&d, 80, rs1, || dnsmasq(&lab, "rs1", RS1));
}

/// Python's smtpd on `role`, port 2525.
fn smtpd(lab: &Lab, role: &str, addr: &str) -> Bg {
    let bg = lab.spawn(
        role,
        &[
            "python3",
            "-W",
            "ignore",
            "-m",
            "smtpd",
            "-n",
            "-c",
            "DebuggingServer",
            &format!("{addr}:2525"),
        ],
    );
    listening(lab, role, 2525);
    bg
}

#[test]
fn smtp_check_follows_an_smtp_server() {
    let lab = Lab::up();
    let dir = Scratch::new(&format!("{}-smtp", lab.name));
    let check = "SMTP_CHECK {\n            helo_name director.example.test\n            connect_port 2525\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n            warmup 0\n        }";
    let path = conf(&dir, &service(80, check, ""));
    let rs1 = smtpd(&lab, "rs1", RS1);
    let _rs2 = smtpd(&lab, "rs2", RS2);
    let d = Daemon::start_with(&lab, &["--interface", "eth0", "--keepalived", &path]);
    let _rs1 = leaves_and_returns(&d, 80, rs1, || smtpd(&lab, "rs1", RS1));
}

/// The lines of the scripts' log, sorted.
fn log_lines(path: &str) -> Vec<String> {
    let mut l: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    l.sort();
    l
}

#[test]
fn file_check_notify_and_quorum_scripts_and_misc_dynamic() {
    let lab = Lab::up();
    let dir = Scratch::new(&format!("{}-file", lab.name));
    // nobody must be able to write the scripts' log.
    let _ = lab::run(std::process::Command::new("chmod").args(["777", &dir.path("")]));
    let (weight, log) = (dir.path("rs1.state"), dir.path("scripts.log"));
    std::fs::write(&weight, "0\n").unwrap();
    let body = format!(
        "global_defs {{\n    script_user nobody\n}}\n\
         track_file rs1_state {{\n    file {weight}\n    weight 0\n}}\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n\
             quorum 2\n\
             quorum_up \"echo QUORUM_UP $(id -un) >> {log}\"\n\
             quorum_down \"echo QUORUM_DOWN $(id -un) >> {log}\" root\n\
             real_server {RS1} 80 {{\n        weight 1\n\
                 notify_up \"echo UP {RS1} $(id -un) >> {log}\"\n\
                 notify_down \"echo DOWN {RS1} $(id -un) >> {log}\"\n\
                 FILE_CHECK {{\n            track_file rs1_state\n        }}\n    }}\n\
             real_server {RS2} 80 {{\n        weight 1\n\
                 MISC_CHECK {{\n            misc_path \"exit 7\"\n            misc_dynamic\n        }}\n    }}\n\
         }}\n"
    );
    let path = conf(&dir, &body);
    let d = Daemon::start_with(&lab, &["--interface", "eth0", "--keepalived", &path]);
    // misc_dynamic: exit 7 is weight 5.
    let weight_of = |rs: &str| {
        d.ok(&["-L", "-n"])
            .lines()
            .find(|l| l.contains(&format!("-> {rs}:80")))
            .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
    };
    assert!(
        wait_for(Duration::from_secs(10), || weight_of(RS2).as_deref() == Some("5")),
        "rs2's weight is {:?}\n{}",
        weight_of(RS2),
        d.log()
    );
    assert!(listed(&d, RS1, 80));
    // A non-zero value with weight 0 is a failure: rs1 leaves, total weight
    // 5 keeps the quorum of 2.
    std::fs::write(&weight, "1\n").unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || !listed(&d, RS1, 80)),
        "rs1 still listed\n{}",
        d.log()
    );
    assert!(
        wait_for(Duration::from_secs(5), || log_lines(&log)
            == [format!("DOWN {RS1} nobody")]),
        "{:?}\n{}",
        log_lines(&log),
        d.log()
    );
    // In keepalived's words, with the severity journald filters on.
    let removed = format!("<4>ferrovs: Removing service [{RS1}]:tcp:80 from VS [{VIP}]:tcp:80\n");
    assert!(d.log().contains(&removed), "no {removed:?} in\n{}", d.log());
    std::fs::write(&weight, "0\n").unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || listed(&d, RS1, 80)),
        "rs1 not back\n{}",
        d.log()
    );
    let added = format!("<6>ferrovs: Adding service [{RS1}]:tcp:80 to VS [{VIP}]:tcp:80\n");
    assert!(
        wait_for(Duration::from_secs(5), || d.log().contains(&added)),
        "no {added:?} in\n{}",
        d.log()
    );
    let want = [format!("DOWN {RS1} nobody"), format!("UP {RS1} nobody")];
    assert!(
        wait_for(Duration::from_secs(5), || log_lines(&log) == want),
        "{:?}",
        log_lines(&log)
    );
    // Both down: the quorum of 2 is lost, its script runs as root (its own
    // user), and comes back with rs1.
    std::fs::write(&weight, "1\n").unwrap();
    let misc_off = body.replace("exit 7", "exit 1");
    std::fs::write(&path, misc_off).unwrap();
    d.ok(&["--reload"]);
    assert!(
        wait_for(Duration::from_secs(10), || log_lines(&log)
            .contains(&"QUORUM_DOWN root".to_string())),
        "{:?}\n{}",
        log_lines(&log),
        d.log()
    );
    // The weight under the quorum of 2 (how much depends on whether rs2's
    // check failed yet); the reload said what it did.
    let vs = format!(" for VS [{VIP}]:tcp:80");
    let has = |start: &str, end: &str| d.log().lines().any(|l| l.starts_with(start) && l.ends_with(end));
    assert!(has("<4>ferrovs: Lost quorum 2-0=2 > ", &vs), "{}", d.log());
    for line in [
        format!("<6>ferrovs: Reloading {path}"),
        format!("<6>ferrovs: Reload of {path} done"),
    ] {
        assert!(has(&line, &line), "no {line:?} in\n{}", d.log());
    }
    std::fs::write(&weight, "0\n").unwrap();
    std::fs::write(&path, &body).unwrap();
    d.ok(&["--reload"]);
    assert!(
        wait_for(Duration::from_secs(10), || log_lines(&log)
            .contains(&"QUORUM_UP nobody".to_string())),
        "{:?}\n{}",
        log_lines(&log),
        d.log()
    );
    assert!(
        wait_for(Duration::from_secs(5), || has(
            "<6>ferrovs: Gained quorum 2+0=2 <= ",
            &vs
        )),
        "{}",
        d.log()
    );
}
