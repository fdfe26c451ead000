//! `ferrovs`: the director's command line.
//!
//! `ferrovs daemon …` runs the dataplane and the control socket; every other
//! invocation is an ipvsadm-style command (`ferrovs -A -t VIP:PORT -s rr`)
//! sent to the running daemon. The binary only wires crates together: rules
//! live in `config`, forwarding in `dataplane`.

mod check;
mod ctl;
mod daemon;
mod docs;
mod doctor;
mod estimator;
mod health;
mod ipvsadm;
mod keepalived;
mod logging;
mod placement;
mod prom;
mod ratecap;
mod scripts;
mod sync;
mod vrrp;

use config::request;
use std::process::ExitCode;

const USAGE: &str = "\
ferrovs: Linux Virtual Server director on AF_XDP
  ferrovs --version | -V    the version and commit (any command takes it)

Run the director:
  ferrovs daemon --interface IF [--queues N] [--cpus LIST] [--socket PATH]
  (ferrovs daemon --help for every option)
  ferrovs doctor --interface IF [--queues N] [--cpus LIST] | --config FILE   check the host first
  ferrovs check --keepalived FILE | --config FILE | --rules FILE [-v]
                            would the daemon start with it (no root, no interface)

Manage it as with ipvsadm:
  ferrovs -A|-E -t|-u VIP:PORT [-s SCHEDULER] [-p [TIMEOUT]]
  ferrovs -D -t|-u VIP:PORT
  ferrovs -a|-e -t|-u VIP:PORT -r RIP[:PORT] [-g|-m|-i] [-w WEIGHT] [-x UPPER] [-y LOWER]
  ferrovs -d -t|-u VIP:PORT -r RIP[:PORT]
  ferrovs -C
  ferrovs -L|-l [-n] [-c] [--stats [--exact]] [--timeout] [-t|-u VIP:PORT]
  ferrovs -S [-n]           the rules as ipvsadm-save text
  ferrovs -R < FILE         apply ipvsadm commands (a save file), all or none
  ferrovs -R --dry-run < FILE   show what it would change, change nothing
  ferrovs -Z [-t|-u VIP:PORT]
  ferrovs --set TCP TCPFIN UDP
  ferrovs --counters        each worker's packet, hand-off and drop counters
  ferrovs --reload          read the daemon's keepalived.conf again (as SIGHUP)
  ferrovs -L --vrrp [--json]  the VRRP instances
  ferrovs --start-daemon master|backup [--mcast-interface IF] [--syncid N]
          [--sync-maxlen N] [--mcast-group ADDR] [--mcast-port P] [--mcast-ttl T]
  ferrovs --stop-daemon master|backup
  ferrovs -L --daemon [--json]  the connection sync daemons

Commands reach the daemon on FERROVS_SOCKET (default /run/ferrovs/ferrovs.sock);
`--socket PATH` before the command overrides it.
";

fn main() -> ExitCode {
    let argv0 = std::env::args().next().unwrap_or_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Installed under ipvsadm's names (links to this binary), it is them.
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(code) = ipvsadm::main(&name, &args) {
        return code;
    }
    // Every command, the daemon's and the checks' too, says what it is.
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("{}", version());
        return ExitCode::SUCCESS;
    }
    if args.first().is_some_and(|a| a == "daemon") {
        logging::init(log::LevelFilter::Info);
        let opts = daemon::Opts::from_args(
            std::iter::once("ferrovs daemon".to_string()).chain(args.into_iter().skip(1)),
        );
        return match opts.and_then(|o| {
            log::set_max_level(o.log_level.filter());
            daemon::run(o)
        }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.first().is_some_and(|a| a == "doctor") {
        let opts = doctor::Opts::from_args(
            std::iter::once("ferrovs doctor".to_string()).chain(args.into_iter().skip(1)),
        );
        let opts = match opts {
            Ok(o) => o,
            Err(e) => {
                eprintln!("ferrovs doctor: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (text, ok) = doctor::report(&doctor::check(&opts));
        print!("{text}");
        return if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    if args.first().is_some_and(|a| a == "check") {
        return check::main(&args[1..]);
    }
    if args.first().is_some_and(|a| a == "generate") {
        return docs::main(&args[1..]);
    }
    if args.iter().any(|a| a == "-h" || a == "--help") || args.first().is_some_and(|a| a == "help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    admin(args, Personality::Ferrovs)
}

/// This build's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit it was built from (build.rs), or "unknown".
pub const COMMIT: &str = env!("FERROVS_COMMIT");

/// `ferrovs VERSION (commit COMMIT)`: what a bug report quotes.
pub fn version() -> String {
    format!("ferrovs {VERSION} (commit {COMMIT})")
}

/// Who the admin command line speaks as: ferrovs, or ipvsadm (invoked by
/// that name), whose messages carry no prefix and whose "no IPVS" failure
/// exits 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    /// `ferrovs …`.
    Ferrovs,
    /// `ipvsadm …` (and `ipvsadm-save`, `ipvsadm-restore`).
    Ipvsadm,
}

impl Personality {
    fn say(self, msg: &str) {
        match self {
            Self::Ferrovs => eprintln!("ferrovs: {msg}"),
            Self::Ipvsadm => eprintln!("{msg}"),
        }
    }
}

/// An ipvsadm-style command sent to the running daemon.
fn admin(mut args: Vec<String>, who: Personality) -> ExitCode {
    let mut socket = ctl::default_path();
    if args.first().is_some_and(|a| a == "--socket") {
        if args.len() < 2 {
            who.say("--socket needs a path");
            return ExitCode::from(2);
        }
        socket = args.remove(1);
        args.remove(0);
    }
    // ipvsadm with no arguments lists the table.
    if args.is_empty() {
        args.push("-L".into());
    }
    // Refuse bad input here, before bothering the daemon; it parses the
    // same words again with the same code.
    let mut req = match request::Request::from_cli(&args) {
        Ok(r) => r,
        Err(e) => {
            who.say(&e);
            return ExitCode::from(2);
        }
    };
    // -R: the rules come from standard input; the daemon applies them all
    // or none.
    if let request::Request::Restore { text, .. } = &mut req {
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), text) {
            who.say(&format!("reading standard input: {e}"));
            return ExitCode::FAILURE;
        }
    }
    let args = req.to_wire(&args);
    match ctl::call(&socket, &args) {
        Ok(Ok(out)) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Ok(Err(msg)) => {
            who.say(&msg);
            ExitCode::FAILURE
        }
        // ipvsadm's own words when it finds no IPVS, and its exit code.
        Err(e) if who == Personality::Ipvsadm => {
            eprintln!(
                "Can't initialize ipvs: {e}\nAre you sure that the ferrovs daemon is running (systemctl start ferrovs)?"
            );
            ExitCode::from(2)
        }
        Err(e) => {
            who.say(&e.to_string());
            ExitCode::FAILURE
        }
    }
}
