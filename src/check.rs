//! `ferrovs check`: read a configuration as the daemon would and say
//! whether it would start, without an interface, a socket or root — the
//! `keepalived -t` / `nginx -t` of ferrovs, for CI gates.
//!
//! `ferrovs check --keepalived FILE | --config FILE | --rules FILE [-v]`:
//! every keyword not applied is printed with its `FILE:LINE`; `-v` prints
//! the resulting services as `-S` text; the exit code is 0 when the daemon
//! would start and 1 (with `FILE:LINE: problem`) when it would refuse.
//!
//! Must not touch: anything running.

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: ferrovs check --keepalived FILE | --config FILE | --rules FILE [-v]";

/// Run `ferrovs check` with `args` (after the word `check`).
pub fn main(args: &[String]) -> ExitCode {
    let verbose = args.iter().any(|a| a == "-v" || a == "--verbose");
    let rest: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "-v" && *a != "--verbose")
        .collect();
    let result = match rest[..] {
        ["--keepalived", f] => keepalived(Path::new(f), verbose),
        ["--config", f] => daemon_file(Path::new(f), verbose),
        ["--rules", f] => rules(Path::new(f), verbose),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferrovs check: {e}");
            ExitCode::FAILURE
        }
    }
}

fn save(rules: &config::Rules) -> String {
    config::render_save(rules, true, config::Names::system())
}

fn keepalived(path: &Path, verbose: bool) -> Result<String, String> {
    let k = config::keepalived::load(path).map_err(|e| e.to_string())?;
    // The daemon refuses an unknown script_user; it warns of the rest.
    let ctx = crate::health::Context::new(&k);
    let mut out: String = k
        .notes
        .iter()
        .chain(&ctx.notes(&k))
        .map(|n| format!("{n}\n"))
        .collect();
    let v = &k.vrrp;
    out.push_str(&format!(
        "{}: {} services, {} real servers, {} checks, {} VRRP instances: the daemon would start\n",
        path.display(),
        k.rules.services.len(),
        k.rules.services.iter().map(|s| s.dests.len()).sum::<usize>(),
        k.checks.len(),
        v.instances.len()
    ));
    if verbose {
        out.push_str(&save(&k.rules));
    }
    Ok(out)
}

fn rules(path: &Path, verbose: bool) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut r = config::Rules::default();
    r.apply_commands(&path.display().to_string(), &text)
        .map_err(|e| e.to_string())?;
    let mut out = format!(
        "{}: {} services: the daemon would start\n",
        path.display(),
        r.services.len()
    );
    if verbose {
        out.push_str(&save(&r));
    }
    Ok(out)
}

/// The daemon's TOML file, and the rules and keepalived files it names.
fn daemon_file(path: &Path, verbose: bool) -> Result<String, String> {
    let conf = config::daemon::DaemonConf::read(path)?;
    let mut out = String::new();
    if let Some(r) = &conf.rules {
        out.push_str(&rules(r, verbose)?);
    }
    if let Some(k) = &conf.keepalived {
        out.push_str(&keepalived(k, verbose)?);
    }
    out.push_str(&format!("{}: the daemon would start\n", path.display()));
    Ok(out)
}
