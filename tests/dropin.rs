//! ferrovs as a drop-in on an LVS host: a shell script written for ipvsadm
//! runs unchanged through links named ipvsadm, ipvsadm-save and
//! ipvsadm-restore, and prints ipvsadm 1.31's layouts; what ferrovs does not
//! implement is refused by name; exit codes are ipvsadm's.

mod lab;

use lab::{Daemon, Lab, Scratch, run, text};
use std::process::Command;

/// Links named as ipvsadm's tools to the binary under test, in `dir`.
fn links(dir: &Scratch) {
    for tool in ["ipvsadm", "ipvsadm-save", "ipvsadm-restore"] {
        std::os::unix::fs::symlink(lab::bin(), dir.path(tool)).expect("link");
    }
}

/// Run `script` with bash, the links first on PATH, against `socket`.
fn sh(dir: &Scratch, socket: &str, script: &str) -> std::process::Output {
    let path = format!("{}:{}", dir.path(""), std::env::var("PATH").unwrap_or_default());
    run(Command::new("bash")
        .args(["-c", script])
        .env("PATH", path)
        .env("FERROVS_SOCKET", socket)
        .env("SAVE", dir.path("rules.save")))
}

/// The seeds' lab commands, as an ipvsadm script: DR and NAT services,
/// save, clear, restore.
const SCRIPT: &str = r#"
set -e
ipvsadm -C
ipvsadm -A -t 10.99.0.100:80 -s rr
ipvsadm -a -t 10.99.0.100:80 -r 10.99.0.11:80 -g -w 1
ipvsadm -a -t 10.99.0.100:80 -r 10.99.0.12:80 -g -w 2
ipvsadm -A -t 10.99.0.100:8080 -s wlc -p 60
ipvsadm -a -t 10.99.0.100:8080 -r 10.98.0.11:8080 -m
ipvsadm -L -n
ipvsadm-save -n > "$SAVE"
ipvsadm -C
echo cleared
ipvsadm -Ln
ipvsadm-restore < "$SAVE"
ipvsadm-save -n
"#;

/// ipvsadm 1.31's `-L -n` of those services.
const LISTED: &str = "\
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.99.0.100:80 rr
  -> 10.99.0.11:80                Route   1      0          0         
  -> 10.99.0.12:80                Route   2      0          0         
TCP  10.99.0.100:8080 wlc persistent 60
  -> 10.98.0.11:8080              Masq    1      0          0         
";

/// … and `ipvsadm-save -n`.
const SAVED: &str = "\
-A -t 10.99.0.100:80 -s rr
-a -t 10.99.0.100:80 -r 10.99.0.11:80 -g -w 1
-a -t 10.99.0.100:80 -r 10.99.0.12:80 -g -w 2
-A -t 10.99.0.100:8080 -s wlc -p 60
-a -t 10.99.0.100:8080 -r 10.98.0.11:8080 -m -w 1
";

#[test]
fn an_ipvsadm_script_runs_through_the_links_with_ipvsadms_output() {
    let lab = Lab::up();
    let d = Daemon::start(&lab);
    let dir = Scratch::new(&format!("{}-dropin", lab.name));
    links(&dir);
    let out = sh(&dir, &d.socket, SCRIPT);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (listed, rest) = stdout.split_once("cleared\n").expect("the script's marker");
    // The version line (the table's size) first, then ipvsadm's layout.
    let (version, listing) = listed.split_once('\n').unwrap();
    assert!(
        version.starts_with("IP Virtual Server version 1.2.1 (size="),
        "{version}"
    );
    assert_eq!(listing, LISTED);
    assert_eq!(std::fs::read_to_string(dir.path("rules.save")).unwrap(), SAVED);
    // After -C, an empty table; after the restore, the same rules.
    let (empty, saved) = rest.split_at(rest.find("-A ").expect("restored rules"));
    assert_eq!(empty.lines().count(), 3, "{empty}");
    assert_eq!(saved, SAVED);
}

#[test]
fn ipvsadms_exit_codes_and_unsupported_options_by_name() {
    let lab = Lab::up();
    let d = Daemon::start(&lab);
    let dir = Scratch::new(&format!("{}-codes", lab.name));
    links(&dir);
    let code = |script: &str| {
        let o = sh(&dir, &d.socket, script);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).trim().to_string(),
        )
    };
    // ipvsadm's options ferrovs does not do: named, exit 2 (a usage error).
    let (c, e) = code("ipvsadm -A -t 10.99.0.100:81 -s rr --pe sip");
    assert_eq!(
        (c, e.as_str()),
        (Some(2), "option --pe is not supported by ferrovs")
    );
    let (c, e) = code("ipvsadm -A -t 10.99.0.100:81 --tun-type gue");
    assert_eq!(c, Some(2), "{e}");
    assert!(e.contains("--tun-type is not supported by ferrovs"), "{e}");
    // A bad command line: 2, with no "ferrovs:" prefix, as ipvsadm.
    let (c, e) = code("ipvsadm -A -t 10.99.0.100:81 -s nosuch");
    assert_eq!(c, Some(2));
    assert!(!e.starts_with("ferrovs:") && e.contains("nosuch"), "{e}");
    // A change the director refuses: 1.
    let (c, _) = code("ipvsadm -D -t 10.99.0.100:99");
    assert_eq!(c, Some(1));
    // No director: ipvsadm's "Can't initialize ipvs", 2.
    let o = run(Command::new(dir.path("ipvsadm"))
        .args(["-L", "-n"])
        .env("FERROVS_SOCKET", "/nonexistent/ferrovs.sock"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("Can't initialize ipvs"),
        "{}",
        text(&o)
    );
    // Who it is.
    let o = run(Command::new(dir.path("ipvsadm")).arg("--version"));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("emulating ipvsadm 1.31"),
        "{}",
        text(&o)
    );
    let o = run(Command::new(dir.path("ipvsadm-save")).arg("-x"));
    assert_eq!(o.status.code(), Some(2));
}
