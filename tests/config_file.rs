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
