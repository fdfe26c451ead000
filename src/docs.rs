//! Man pages and shell completions, generated from the clap definitions
//! (the daemon's own `Opts`, and the admin command line's option table
//! here, which a test holds to the parser's), so they never drift:
//! `ferrovs generate man DIR` writes ferrovs(8), ferrovs-daemon(8) and
//! ferrovs.toml(5); `ferrovs generate completion bash|zsh` prints a
//! completion script.
//!
//! Must not touch: anything running.

use clap::{Arg, ArgAction, Command, CommandFactory};
use std::path::Path;
use std::process::ExitCode;

/// The admin command line: (short, long, value name, help). ipvsadm's
/// options first, then ferrovs' own.
const ADMIN: &[(Option<char>, &str, Option<&str>, &str)] = &[
    (Some('A'), "add-service", None, "add a virtual service"),
    (Some('E'), "edit-service", None, "edit a virtual service"),
    (Some('D'), "delete-service", None, "delete a virtual service"),
    (Some('C'), "clear", None, "clear the whole table"),
    (
        Some('R'),
        "restore",
        None,
        "apply ipvsadm commands (a save file) from standard input, all or none",
    ),
    (Some('S'), "save", None, "print the rules as ipvsadm-save text"),
    (Some('a'), "add-server", None, "add a real server"),
    (Some('e'), "edit-server", None, "edit a real server"),
    (Some('d'), "delete-server", None, "delete a real server"),
    (Some('L'), "list", None, "list the table (also -l)"),
    (
        Some('Z'),
        "zero",
        None,
        "zero the counters of a service or of all",
    ),
    (None, "set", Some("TCP TCPFIN UDP"), "set the connection timeouts"),
    (
        Some('t'),
        "tcp-service",
        Some("VIP:PORT"),
        "a TCP virtual service",
    ),
    (
        Some('u'),
        "udp-service",
        Some("VIP:PORT"),
        "a UDP virtual service",
    ),
    (
        Some('f'),
        "fwmark-service",
        Some("MARK"),
        "a firewall-mark virtual service",
    ),
    (
        Some('s'),
        "scheduler",
        Some("NAME"),
        "rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos (default wlc)",
    ),
    (
        Some('p'),
        "persistent",
        Some("[TIMEOUT]"),
        "persistent service (default 300 s)",
    ),
    (Some('M'), "netmask", Some("MASK"), "persistence granularity"),
    (
        Some('b'),
        "sched-flags",
        Some("FLAGS"),
        "scheduler flags (sh-fallback, sh-port, mh-fallback, mh-port)",
    ),
    (Some('o'), "ops", None, "one-packet scheduling"),
    (Some('r'), "real-server", Some("RIP[:PORT]"), "the real server"),
    (Some('g'), "gatewaying", None, "direct routing (DR, the default)"),
    (Some('m'), "masquerading", None, "NAT"),
    (Some('i'), "ipip", None, "IP-in-IP tunnelling (TUN)"),
    (Some('w'), "weight", Some("N"), "capacity of the real server"),
    (Some('x'), "u-threshold", Some("N"), "upper connection threshold"),
    (Some('y'), "l-threshold", Some("N"), "lower connection threshold"),
    (Some('n'), "numeric", None, "numeric addresses and ports"),
    (Some('c'), "connection", None, "list the connections"),
    (None, "stats", None, "list with statistics"),
    (None, "rate", None, "list with rates"),
    (None, "exact", None, "exact numbers"),
    (None, "timeout", None, "list the timeouts"),
    (None, "thresholds", None, "list with thresholds"),
    (None, "persistent-conn", None, "list with persistent connections"),
    (None, "sort", None, "sorted (always)"),
    (None, "json", None, "listings as JSON"),
    (None, "daemon", None, "list the connection sync daemons"),
    (
        None,
        "start-daemon",
        Some("master|backup"),
        "start a connection sync daemon",
    ),
    (
        None,
        "stop-daemon",
        Some("master|backup"),
        "stop a connection sync daemon",
    ),
    (None, "mcast-interface", Some("IF"), "the sync daemon's interface"),
    (None, "syncid", Some("N"), "the sync daemon's syncid (default 0)"),
    (
        None,
        "sync-maxlen",
        Some("N"),
        "largest sync message (default 1472)",
    ),
    (
        None,
        "mcast-group",
        Some("ADDR"),
        "sync group (default 224.0.0.81)",
    ),
    (None, "mcast-port", Some("PORT"), "sync port (default 8848)"),
    (None, "mcast-ttl", Some("TTL"), "sync TTL (default 1)"),
    (None, "vrrp", None, "with -L: the VRRP instances"),
    (
        None,
        "counters",
        None,
        "each worker's packet, hand-off and drop counters",
    ),
    (
        None,
        "reload",
        None,
        "read the daemon's keepalived.conf again (as SIGHUP)",
    ),
    (
        None,
        "dry-run",
        None,
        "with -R: say what would change, change nothing",
    ),
    (
        None,
        "mark",
        None,
        "mark rules for firewall-mark services, in iptables' words (ferrovs --mark -A|-D -p tcp -d VIP --dport P -j MARK --set-mark N)",
    ),
    (
        None,
        "socket",
        Some("PATH"),
        "the daemon's control socket (default $FERROVS_SOCKET or /run/ferrovs/ferrovs.sock)",
    ),
];

/// ferrovs' own options (not ipvsadm's), as `Request` parses them.
#[cfg(test)]
const FERROVS_ONLY: &[&str] = &[
    "json",
    "daemon",
    "start-daemon",
    "stop-daemon",
    "mcast-interface",
    "syncid",
    "sync-maxlen",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "vrrp",
    "counters",
    "reload",
    "dry-run",
    "mark",
    "socket",
];

/// The admin command line as a clap command (for documentation only: the
/// parser is `config::ipvsadm` and `Request`).
fn admin() -> Command {
    let mut cmd = Command::new("ferrovs")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Linux Virtual Server director on AF_XDP: ipvsadm's commands for the running daemon")
        .long_about(
            "ferrovs is a Linux Virtual Server director in userspace. `ferrovs daemon` runs it; every \
             other invocation is an ipvsadm command line sent to the running daemon over its control \
             socket. Installed as ipvsadm, ipvsadm-save or ipvsadm-restore (links to this binary), it \
             behaves as those tools. `ferrovs check --keepalived|--config|--rules FILE [-v]` says whether \
             the daemon would start with a file; `ferrovs doctor` checks the host.",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .subcommand(crate::daemon::Opts::command().name("daemon"))
        .subcommand(check_command())
        .subcommand(crate::doctor::Opts::command().name("doctor"));
    for &(short, long, value, help) in ADMIN {
        let mut a = Arg::new(long).long(long).help(help);
        if let Some(c) = short {
            a = a.short(c);
        }
        a = match value {
            Some(v) => a.value_name(v).action(ArgAction::Set),
            None => a.action(ArgAction::SetTrue),
        };
        cmd = cmd.arg(a);
    }
    cmd
}

/// roff-escaped text.
fn roff(s: &str) -> String {
    s.lines()
        .map(|l| {
            let l = l.replace('\\', "\\e");
            if l.starts_with(['.', '\'']) {
                format!("\\&{l}")
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The TOML key a daemon flag is in the file, if the file takes it.
fn toml_key(flag: &str) -> Option<String> {
    let key = match flag {
        "interface" => "interfaces".to_string(),
        f => f.replace('-', "_"),
    };
    // The file parser itself says whether the key exists.
    let probe = config::daemon::DaemonConf::parse("probe", &format!("{key} = 1\n"));
    match probe {
        Err(e) if e.contains("unknown field") => None,
        _ => Some(key),
    }
}

/// ferrovs.toml(5), from the daemon's flags the file takes.
fn toml_page() -> String {
    let mut t = format!(
        ".TH FERROVS.TOML 5 \"\" \"ferrovs {}\" \"File formats\"\n\
         .SH NAME\nferrovs.toml \\- the ferrovs daemon's configuration file\n\
         .SH SYNOPSIS\n/etc/ferrovs/ferrovs.toml, read by \\fBferrovs daemon \\-\\-config\\fR \\fIFILE\\fR\n\
         .SH DESCRIPTION\nA TOML file. Every key is optional and named after a daemon flag \
         (\\fB\\-\\-conn\\-max\\fR is \\fBconn_max\\fR); a flag given on the command line wins over \
         the file. An unknown key or a bad value stops the start, naming the line.\n.SH KEYS\n",
        env!("CARGO_PKG_VERSION")
    );
    let cmd = crate::daemon::Opts::command();
    for a in cmd.get_arguments() {
        let Some(long) = a.get_long() else { continue };
        let Some(key) = toml_key(long) else { continue };
        let help = a.get_help().map(ToString::to_string).unwrap_or_default();
        t.push_str(&format!(".TP\n.B {key}\n{}\n", roff(&help)));
    }
    t.push_str(
        ".TP\n.B [[sync_daemon]]\nA connection sync daemon to start, as \\fBferrovs \\-\\-start\\-daemon\\fR: \
         \\fBstate\\fR (master or backup), \\fBmcast_interface\\fR, \\fBsyncid\\fR, \\fBsync_maxlen\\fR, \
         \\fBmcast_group\\fR, \\fBmcast_port\\fR, \\fBmcast_ttl\\fR.\n.SH EXAMPLE\n.nf\n",
    );
    t.push_str(&roff(include_str!("../scripts/ferrovs.toml")));
    t.push_str(
        "\n.fi\n.SH SEE ALSO\n\\fBferrovs\\fR(8), \\fBferrovs\\-daemon\\fR(8), \\fBkeepalived.conf\\fR(5)\n",
    );
    t
}

/// `ferrovs check`, for its page (its parser is `crate::check`).
fn check_command() -> Command {
    Command::new("check")
        .about(
            "Say whether the daemon would start with a file, as keepalived -t does (no root, no interface)",
        )
        .disable_help_flag(true)
        .arg(Arg::new("keepalived").long("keepalived").value_name("FILE").help(
            "a keepalived.conf: every keyword not applied is said with its FILE:LINE; where keepalived \
             warns and carries on, so does the check",
        ))
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .help("a ferrovs.toml"),
        )
        .arg(
            Arg::new("rules")
                .long("rules")
                .value_name("FILE")
                .help("an ipvsadm-save file"),
        )
        .arg(
            Arg::new("verbose")
                .short('v')
                .long("verbose")
                .action(ArgAction::SetTrue)
                .help("also print the resulting services as ipvsadm-save text"),
        )
}

/// The sections clap does not write: (page, EXAMPLES, FILES, SIGNALS,
/// EXIT STATUS, SEE ALSO), roff.
fn extra(page: &str) -> String {
    let see = |pages: &[&str]| {
        pages
            .iter()
            .map(|p| format!("\\fB{p}\\fR"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (examples, files, signals, exit, also): (&str, &str, &str, &str, String) = match page {
        "ferrovs" => (
            "ferrovs \\-A \\-t 10.0.0.100:80 \\-s wlc\nferrovs \\-a \\-t 10.0.0.100:80 \\-r 10.0.0.11:80 \\-g \\-w 1\n\
             ferrovs \\-L \\-n \\-\\-stats\nferrovs \\-S \\-n > /etc/ferrovs/rules.save\nferrovs \\-L \\-n \\-\\-vrrp\n\
             ferrovs \\-\\-counters \\-\\-json",
            "/run/ferrovs/ferrovs.sock\tthe daemon's control socket ($FERROVS_SOCKET, \\-\\-socket)\n\
             /etc/ferrovs/rules.save\tsaved rules (ferrovs\\-ipvsadm.service)",
            "",
            "0 done; 1 refused (the rules are as they were), or no daemon answers; 2 a bad command line. \
             Invoked as ipvsadm: 2 when no daemon answers, as ipvsadm's \"Can't initialize ipvs\".",
            see(&[
                "ferrovs-daemon(8)",
                "ferrovs-check(8)",
                "ferrovs-doctor(8)",
                "ferrovs.toml(5)",
                "ipvsadm(8)",
            ]),
        ),
        "ferrovs-daemon" => (
            "ferrovs daemon \\-\\-interface eth0\nferrovs daemon \\-\\-config /etc/ferrovs/ferrovs.toml \\-\\-state\\-dir /run/ferrovs/state\n\
             ferrovs daemon \\-\\-interface eth0 \\-\\-keepalived /etc/keepalived/keepalived.conf \\-\\-metrics 127.0.0.1:9410\n\
             ferrovs daemon \\-\\-stop\\-clean \\-\\-bpf\\-pins /run/ferrovs/bpf",
            "/etc/ferrovs/ferrovs.toml\tsettings (\\-\\-config)\n/run/ferrovs/state\trules and connections kept across restarts\n\
             /run/ferrovs/bpf\tthe pinned XDP program (a bpffs)\n/usr/share/ferrovs/monitoring\tPrometheus alert rules, Grafana dashboard",
            "SIGHUP\treload the keepalived configuration (as ferrovs \\-\\-reload)\n\
             SIGTERM, SIGINT\tstop: VRRP masters send priority 0; with \\-\\-state\\-dir the state is saved and the program stays pinned",
            "0 stopped on a signal; 1 a start that failed (every problem named; nothing was changed on the host).",
            see(&[
                "ferrovs(8)",
                "ferrovs-check(8)",
                "ferrovs-doctor(8)",
                "ferrovs.toml(5)",
                "keepalived.conf(5)",
            ]),
        ),
        "ferrovs-check" => (
            "ferrovs check \\-\\-keepalived /etc/keepalived/keepalived.conf \\-v\nferrovs check \\-\\-config /etc/ferrovs/ferrovs.toml\n\
             ferrovs check \\-\\-rules /etc/ferrovs/rules.save",
            "",
            "",
            "0 the daemon would start (notices, if any, each with FILE:LINE); 1 it would refuse the file \
             (FILE:LINE: problem); 2 a bad command line.",
            see(&["ferrovs(8)", "ferrovs-daemon(8)", "keepalived(8)"]),
        ),
        _ => (
            "ferrovs doctor \\-\\-interface eth0\nferrovs doctor \\-\\-config /etc/ferrovs/ferrovs.toml",
            "",
            "",
            "0 every check passed; 1 one failed (each line says why and how to fix it).",
            see(&["ferrovs(8)", "ferrovs-daemon(8)"]),
        ),
    };
    let table = |title: &str, body: &str| -> String {
        if body.is_empty() {
            return String::new();
        }
        let rows: String = body
            .lines()
            .map(|l| match l.split_once('\t') {
                Some((k, v)) => format!(".TP\n.B {k}\n{v}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        format!(".SH {title}\n{rows}")
    };
    format!(
        ".SH EXAMPLES\n.nf\n{examples}\n.fi\n{}{}.SH EXIT STATUS\n{exit}\n.SH SEE ALSO\n{also}\n",
        table("FILES", files),
        table("SIGNALS", signals)
    )
}

fn write_man(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let render = |cmd: Command, page: &str| -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .section("8")
            .render(&mut out)
            .map_err(|e| e.to_string())?;
        out.extend_from_slice(extra(page).as_bytes());
        Ok(out)
    };
    let pages = [
        ("ferrovs.8", render(admin(), "ferrovs")?),
        (
            "ferrovs-daemon.8",
            render(
                crate::daemon::Opts::command().name("ferrovs-daemon"),
                "ferrovs-daemon",
            )?,
        ),
        (
            "ferrovs-check.8",
            render(check_command().name("ferrovs-check"), "ferrovs-check")?,
        ),
        (
            "ferrovs-doctor.8",
            render(
                crate::doctor::Opts::command().name("ferrovs-doctor"),
                "ferrovs-doctor",
            )?,
        ),
        ("ferrovs.toml.5", toml_page().into_bytes()),
    ];
    for (name, text) in pages {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

/// `ferrovs generate man DIR | completion bash|zsh`.
pub fn main(args: &[String]) -> ExitCode {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words[..] {
        ["man", dir] => write_man(Path::new(dir)),
        ["completion", shell] => {
            let shell = match shell {
                "bash" => clap_complete::Shell::Bash,
                "zsh" => clap_complete::Shell::Zsh,
                s => {
                    eprintln!("ferrovs generate: completion for bash or zsh, not {s}");
                    return ExitCode::from(2);
                }
            };
            clap_complete::generate(shell, &mut admin(), "ferrovs", &mut std::io::stdout());
            Ok(())
        }
        _ => {
            eprintln!("usage: ferrovs generate man DIR | completion bash|zsh");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrovs generate: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_option_is_one_the_parsers_take() {
        for &(_, long, ..) in ADMIN {
            assert!(
                config::ipvsadm::is_option(long) || FERROVS_ONLY.contains(&long),
                "--{long} is documented but not parsed"
            );
        }
        // ferrovs' own, each in a command line the client accepts.
        for line in [
            "-L --daemon --json",
            "--start-daemon master --mcast-interface eth0 --syncid 1 --sync-maxlen 1400 \
             --mcast-group 224.0.0.81 --mcast-port 8848 --mcast-ttl 1",
            "--stop-daemon backup",
            "-L --vrrp",
            "--counters",
            "--reload",
            "-R --dry-run",
            "--mark -A -p tcp -d 10.0.0.1 --dport 80 -j MARK --set-mark 1",
        ] {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert!(crate::request::Request::from_cli(&words).is_ok(), "{line}");
        }
    }

    #[test]
    fn the_toml_page_lists_the_files_keys_and_nothing_else() {
        let page = toml_page();
        for key in [
            "interfaces",
            "queues",
            "cpus",
            "conn_max",
            "conn_max6",
            "keepalived",
            "sync_threshold",
        ] {
            assert!(page.contains(&format!(".B {key}\n")), "{key} missing");
        }
        assert!(!page.contains(".B expire_nodest_conn\n"), "not a file key");
        // Every key the page names is one the file takes.
        for l in page.lines().filter_map(|l| l.strip_prefix(".B ")) {
            if l.starts_with('[') {
                continue;
            }
            assert!(toml_key(l).is_some(), "{l}");
        }
    }
}
