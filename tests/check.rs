//! `ferrovs check` over every sample configuration keepalived ships (the
//! Debian package scripts/deps.sh installs), and over broken files: no
//! root, no interface, no socket.

mod lab;

use lab::{bin, run};
use std::process::Command;

const SAMPLES: &str = "/usr/share/doc/keepalived/samples";

fn check(args: &[&str]) -> (bool, String) {
    let out = run(Command::new(bin()).arg("check").args(args));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn every_keepalived_sample_loads_ipv6_included() {
    let samples = lab::keepalived_samples();
    for p in &samples {
        let path = p.display().to_string();
        let (ok, text) = check(&["-v", "--keepalived", &path]);
        assert!(ok && text.contains("the daemon would start"), "{path}: {text}");
        if path.ends_with(".IPv6") {
            // Its group's `ae00::2-9` range parses; the service is IPv6.
            assert!(
                text.contains(
                    "-A -t [ae00::1]:80 -s rr -p 50\n-a -t [ae00::1]:80 -r [ae00::10]:25 -m -w 1\n"
                ),
                "{text}"
            );
        }
    }
}

#[test]
fn what_is_not_applied_is_said_by_line_and_v_prints_the_services() {
    let path = format!("{SAMPLES}/keepalived.conf.SSL_GET");
    let (ok, text) = check(&["-v", "--keepalived", &path]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("{path}:19: vrrp_instance VI_1: auth_type AH")),
        "{text}"
    );
    assert!(
        text.contains("-A -t 192.168.200.100:443"),
        "the services as -S text: {text}"
    );
}

#[test]
fn broken_files_fail_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("ferrovs-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "method.conf",
            "--keepalived",
            "virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind FULLNAT\n}\n",
            "method.conf:3",
        ),
        (
            "vrid.conf",
            "--keepalived",
            "vrrp_instance V {\n interface e\n virtual_router_id 0\n}\n",
            "vrid.conf:3",
        ),
        (
            "rules.save",
            "--rules",
            "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r x -g\n",
            "rules.save:2",
        ),
        (
            "ferrovs.toml",
            "--config",
            "queues = 2\nqueue = 3\n",
            "ferrovs.toml:2",
        ),
    ];
    for (name, flag, text, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let (ok, out) = check(&[flag, &path.display().to_string()]);
        assert!(!ok && out.contains(want), "{name}: {out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (ok, out) = check(&["--bogus"]);
    assert!(!ok && out.contains("usage: ferrovs check"), "{out}");
}

#[test]
fn every_command_says_its_version() {
    let say = |args: &[&str]| {
        let out = run(Command::new(bin()).args(args));
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let v = say(&["--version"]);
    let want = format!("ferrovs {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(v.starts_with(&want) && v.ends_with(')'), "{v}");
    // The same line from every command, short or long, before anything
    // else is checked (no interface, no root, no daemon needed).
    for args in [
        &["-V"][..],
        &["daemon", "--version"],
        &["daemon", "-i", "nosuchif0", "-V"],
        &["doctor", "--version"],
        &["check", "-V"],
        &["-L", "-n", "--version"],
    ] {
        assert_eq!(say(args), v, "{args:?}");
    }
}
