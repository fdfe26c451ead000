//! The Debian package as an operator meets it: built by scripts/package.sh
//! (lintian clean, or each remaining tag explained in its overrides),
//! installed with dpkg on this Debian 12 host, its units verified by
//! systemd-analyze, its man pages rendered and its bash completion loaded,
//! the installed daemon forwarding in a lab namespace (as the package's
//! user, with the unit's capabilities) driven through the installed
//! `ipvsadm` name; then purged, taking everything it added away.

mod lab;

use lab::{Daemon, Lab, RS1, RS2, VIP, run, text, wait_for};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Purges the package when the test ends, however it ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "ferrovs"]).output();
    }
}

/// The value of `key` (`ExecStart=`, say) in `unit`.
fn unit_line<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in the unit"))
}

/// What systemd sets up for the unit: its RuntimeDirectory (/run/ferrovs,
/// the package user's) and its ExecStartPre (a bpffs for the pins, as
/// root); taken down again when the test ends, however it ends, with the
/// pinned program detached first.
struct Runtime;

impl Runtime {
    fn set_up(unit: &str) -> Self {
        assert!(
            !Path::new("/run/ferrovs").exists(),
            "/run/ferrovs exists on this host; this test makes and removes its own"
        );
        let me = Self;
        ok(Command::new("install").args([
            "-d",
            "-o",
            "ferrovs",
            "-g",
            "ferrovs",
            "-m",
            "0750",
            "/run/ferrovs",
        ]));
        let pre = unit_line(unit, "ExecStartPre=+");
        let script = pre
            .strip_prefix("/bin/sh -c '")
            .and_then(|s| s.strip_suffix('\''))
            .unwrap_or_else(|| panic!("ExecStartPre=+{pre}"));
        ok(Command::new("/bin/sh").args(["-c", script]));
        me
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/ferrovs")
            .args(["daemon", "--stop-clean", "--bpf-pins", "/run/ferrovs/bpf"])
            .output();
        let _ = Command::new("umount").arg("/run/ferrovs/bpf").output();
        let _ = std::fs::remove_dir_all("/run/ferrovs");
    }
}

/// ferrovs-ipvsadm.service as systemd runs it, against the daemon on
/// `socket`: it restores rules.save only into an empty table (never on top
/// of the state a restarted daemon kept), and saves the rules at stop.
fn ipvsadm_unit(socket: &str, ipvsadm: &dyn Fn(&[&str]) -> String) {
    let unit = std::fs::read_to_string("/lib/systemd/system/ferrovs-ipvsadm.service").expect("the unit");
    let step = |key: &str| {
        let line = unit_line(&unit, key);
        let script = line
            .strip_prefix("/bin/sh -c '")
            .and_then(|s| s.strip_suffix('\''))
            .unwrap_or_else(|| panic!("{key}{line}"));
        ok(Command::new("/bin/sh")
            .args(["-c", script])
            .env("FERROVS_SOCKET", socket));
    };
    let live = ipvsadm(&["-S", "-n"]);
    std::fs::write("/etc/ferrovs/rules.save", "-A -t 10.99.0.200:80 -s wlc\n").unwrap();
    step("ExecStart=");
    assert_eq!(ipvsadm(&["-S", "-n"]), live, "restored on top of the live rules");
    ipvsadm(&["-C"]);
    step("ExecStart=");
    let restored = ipvsadm(&["-S", "-n"]);
    assert!(restored.contains("-A -t 10.99.0.200:80 -s wlc"), "{restored}");
    ipvsadm(&["-a", "-t", "10.99.0.200:80", "-r", "10.99.0.11:80", "-g"]);
    step("ExecStop=");
    let saved = std::fs::read_to_string("/etc/ferrovs/rules.save").unwrap();
    assert!(saved.contains("-a -t 10.99.0.200:80 -r 10.99.0.11:80"), "{saved}");
}

fn installed() -> bool {
    run(Command::new("dpkg-query").args(["-W", "-f=${Status}", "ferrovs"]))
        .stdout
        .starts_with(b"install ok installed")
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_package_installs_a_working_director_and_purges_clean() {
    assert!(
        !installed(),
        "a ferrovs package is installed on this host; this test installs and purges its own"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The package around the binary under test (lintian runs inside).
    let built = ok(Command::new(root.join("scripts/package.sh")).env("FERROVS_BIN", lab::bin()));
    let deb = root.join(built.lines().last().expect("the .deb's path"));
    let _purge = Installed;
    ok(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(installed());
    // The user, the alternative, the tools under ipvsadm's names.
    ok(Command::new("id").arg("ferrovs"));
    let real_ipvsadm =
        Path::new("/usr/sbin/ipvsadm").is_file() && !Path::new("/usr/sbin/ipvsadm").is_symlink();
    if !real_ipvsadm {
        let target = std::fs::canonicalize("/usr/sbin/ipvsadm").expect("the ipvsadm alternative");
        assert_eq!(target, Path::new("/usr/sbin/ferrovs"));
    }
    let v = ok(Command::new("/usr/lib/ferrovs/ipvsadm").arg("--version"));
    assert!(v.contains("emulating ipvsadm 1.31"), "{v}");
    // Units, man pages, completion.
    ok(Command::new("systemd-analyze").args([
        "verify",
        "/lib/systemd/system/ferrovs.service",
        "/lib/systemd/system/ferrovs-ipvsadm.service",
    ]));
    for page in [
        "/usr/share/man/man8/ferrovs.8.gz",
        "/usr/share/man/man8/ferrovs-daemon.8.gz",
        "/usr/share/man/man8/ferrovs-check.8.gz",
        "/usr/share/man/man8/ferrovs-doctor.8.gz",
        "/usr/share/man/man5/ferrovs.toml.5.gz",
    ] {
        let shown = ok(Command::new("man").args(["-l", page]).env("MANPAGER", "cat"));
        assert!(shown.contains("NAME") && shown.len() > 500, "{page}: {shown}");
        // Each page of a command says how to use it and where to go next,
        // and names no page that does not exist.
        if page.contains("man8") {
            for section in ["EXAMPLES", "EXIT STATUS", "SEE ALSO"] {
                assert!(shown.contains(section), "{page}: no {section}");
            }
            assert!(!shown.contains("ferrovs-help"), "{page}: {shown}");
        }
    }
    let c = ok(Command::new("bash").args([
        "-c",
        "source /usr/share/bash-completion/completions/ferrovs && complete -p ferrovs",
    ]));
    assert!(c.contains("_ferrovs"), "{c}");
    // The installed daemon forwards as the unit starts it: the shipped
    // config with only the interface named, the unit's ExecStartPre (as
    // root) and ExecStart (as the package's user, with the unit's
    // capabilities), configured with the installed ipvsadm.
    {
        let lab = Lab::up();
        let conf = "/etc/ferrovs/ferrovs.toml";
        let shipped = std::fs::read_to_string(conf).expect("the shipped config");
        let named = shipped.replace("# interfaces = [\"eth0\"]", "interfaces = [\"eth0\"]");
        assert_ne!(
            named, shipped,
            "the shipped config has no interfaces line to set:\n{shipped}"
        );
        std::fs::write(conf, named).unwrap();
        let unit = std::fs::read_to_string("/lib/systemd/system/ferrovs.service").expect("the unit");
        let _runtime = Runtime::set_up(&unit);
        let exec = unit_line(&unit, "ExecStart=");
        let args: Vec<&str> = exec
            .strip_prefix("/usr/sbin/ferrovs daemon ")
            .unwrap_or_else(|| panic!("ExecStart={exec}"))
            .split_whitespace()
            .collect();
        let via = lab::setpriv_as(&["--reuid=ferrovs", "--regid=ferrovs", "--init-groups"], &unit);
        let via: Vec<&str> = via.iter().map(String::as_str).collect();
        let d = Daemon::start_bin(&lab, "dir", &via, "/usr/sbin/ferrovs", &args);
        let ipvsadm = |args: &[&str]| {
            ok(Command::new("/usr/lib/ferrovs/ipvsadm")
                .args(args)
                .env("FERROVS_SOCKET", &d.socket))
        };
        ipvsadm(&["-A", "-t", &format!("{VIP}:80"), "-s", "rr"]);
        for rs in [RS1, RS2] {
            ipvsadm(&["-a", "-t", &format!("{VIP}:80"), "-r", &format!("{rs}:80"), "-g"]);
        }
        let mut got = Vec::new();
        let answered = wait_for(Duration::from_secs(10), || {
            got = lab.http_answers(&format!("http://{VIP}/"), 4);
            got.iter().any(|a| a == "server1") && got.iter().any(|a| a == "server2")
        });
        assert!(answered, "{got:?}\n{}", d.log());
        let uid = ok(Command::new("id").args(["-u", "ferrovs"]));
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap_or_default();
        assert!(
            status.contains(&format!("Uid:\t{}", uid.trim())),
            "not the ferrovs user:\n{status}"
        );
        // It kept its state where the unit said, to start again with it.
        assert!(Path::new("/run/ferrovs/state").is_dir(), "{}", d.log());
        ipvsadm_unit(&d.socket, &ipvsadm);
    }
    // Purge: nothing of it is left.
    ok(Command::new("dpkg").args(["--purge", "ferrovs"]));
    for gone in [
        "/usr/sbin/ferrovs",
        "/usr/lib/ferrovs",
        "/etc/ferrovs",
        "/lib/systemd/system/ferrovs.service",
        "/lib/systemd/system/ferrovs-ipvsadm.service",
        "/usr/share/man/man8/ferrovs.8.gz",
        "/usr/share/bash-completion/completions/ferrovs",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} is still there");
    }
    if !real_ipvsadm {
        assert!(
            !Path::new("/usr/sbin/ipvsadm").exists(),
            "the alternative is still there"
        );
    }
    assert!(
        !run(Command::new("id").arg("ferrovs")).status.success(),
        "the user is still there"
    );
}
