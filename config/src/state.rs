//! The rules as the daemon keeps them on disk between runs: the `-S -n`
//! text, the timeouts as `--set`, and what a save leaves out but a restart
//! must keep, each real server's id (connections that outlive the process
//! name their server by it).
//!
//! Owns: that text and reading it back, all or nothing. Must not touch:
//! files (the daemon writes and reads them), the sync daemons.

use crate::{Error, Names, Rules, render_save};
use std::fmt::Write as _;

/// The line that carries the servers' ids, in the order of the `-a` lines.
const IDS: &str = "# ids";
/// The line that carries the last id given (ids are never reused).
const LAST_ID: &str = "# last-id";

/// Render `rules` for [`parse`].
pub fn render(rules: &Rules) -> String {
    let mut text = render_save(rules, true, &Names::default());
    let (tcp, fin, udp) = rules.timeouts;
    let _ = writeln!(text, "--set {tcp} {fin} {udp}");
    text.push_str(IDS);
    // render_save lists each service's servers by address and port; restored,
    // they come back in that order.
    for svc in sorted_services(rules) {
        let mut dests: Vec<_> = svc.dests.iter().collect();
        dests.sort_by_key(|d| (d.addr, d.port));
        for d in dests {
            let _ = write!(text, " {}", d.id);
        }
    }
    let _ = writeln!(text, "\n{LAST_ID} {}", rules.last_id);
    text
}

fn sorted_services(rules: &Rules) -> Vec<&crate::VirtualService> {
    let mut v: Vec<_> = rules.services.iter().collect();
    v.sort_by_key(|s| {
        let k = &s.key;
        (k.fwmark, k.is_ipv6(), k.proto.number(), k.addr, k.port)
    });
    v
}

/// Read back what [`render`] wrote (`source` names it in errors).
///
/// # Errors
/// A line that does not parse or apply, ids missing, repeated or not one
/// per server: the text is refused whole.
pub fn parse(source: &str, text: &str) -> Result<Rules, Error> {
    let mut rules = Rules::default();
    rules.apply_commands(source, text)?;
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name));
    let bad = |what: &str| Error::new(format!("{source}: {what}"));
    let ids: Vec<u32> = field(IDS)
        .ok_or_else(|| bad("no server ids"))?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad("a server id is not a number"))?;
    let last: u32 = field(LAST_ID)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| bad("no last id"))?;
    let count: usize = rules.services.iter().map(|s| s.dests.len()).sum();
    let mut seen = std::collections::HashSet::new();
    if ids.len() != count || ids.iter().any(|&id| id == 0 || id > last || !seen.insert(id)) {
        return Err(bad("the server ids do not match the servers"));
    }
    let mut next = ids.into_iter();
    for svc in &mut rules.services {
        for d in &mut svc.dests {
            d.id = next.next().unwrap_or_default();
        }
    }
    rules.last_id = last;
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_timeouts_come_back() {
        let mut rules = Rules::default();
        rules
            .apply_commands(
                "t",
                "-A -t 10.0.0.1:80 -s wlc -p 60\n-a -t 10.0.0.1:80 -r 10.0.0.12:80 -g\n\
                 -a -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 3\n-A -f 5 -s rr\n-a -f 5 -r 10.0.0.13 -m\n\
                 -d -t 10.0.0.1:80 -r 10.0.0.12:80\n-a -t 10.0.0.1:80 -r 10.0.0.12:80 -g\n\
                 --mark -A -p tcp -d 10.0.0.2/32 --dports 443 -j MARK --set-mark 5\n--set 60 20 30",
            )
            .unwrap();
        let text = render(&rules);
        let back = parse("state", &text).unwrap();
        assert_eq!(back, rules, "{text}");
        // Restored text and renumbered: ids past every old one come next.
        assert_eq!(back.last_id, 4);
    }

    #[test]
    fn a_mismatched_or_missing_id_line_refuses_the_text() {
        let mut rules = Rules::default();
        rules
            .apply_commands(
                "t",
                "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.11:80 -g",
            )
            .unwrap();
        let text = render(&rules);
        for broken in [
            text.replace("# ids 1", "# ids 1 2"),
            text.replace("# ids 1", "# ids 0"),
            text.replace("# ids 1", "# ids x"),
            text.replace("# last-id 1", ""),
            text.replace("-s rr", "-s nope"),
        ] {
            assert!(parse("state", &broken).is_err(), "{broken}");
        }
    }
}
