//! ferrovs under ipvsadm's own names: a link called `ipvsadm`,
//! `ipvsadm-save` or `ipvsadm-restore` to this binary behaves as that tool
//! (its options, its output, its exit codes: 2 for a bad command line, 1
//! for a refused change, 2 when no director answers), so scripts and units
//! written for kernel LVS keep working. `-h` and `--version` say that this
//! is ferrovs emulating ipvsadm 1.31.
//!
//! Must not touch: the command itself (the ordinary admin path runs it).

use crate::Personality;
use std::process::ExitCode;

/// The ipvsadm release whose command line and output ferrovs follows.
pub const EMULATES: &str = "1.31";

fn version() -> String {
    format!(
        "ipvsadm v{EMULATES} (ferrovs {} emulating ipvsadm {EMULATES}; IPVS in userspace)",
        env!("CARGO_PKG_VERSION")
    )
}

/// ipvsadm's `-h`, as far as ferrovs goes.
fn usage() -> String {
    format!(
        "{}
Usage:
  ipvsadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags] [-o]
  ipvsadm -D virtual-service
  ipvsadm -C
  ipvsadm -R
  ipvsadm -S [-n]
  ipvsadm -a|e virtual-service -r server-address [options]
  ipvsadm -d virtual-service -r server-address
  ipvsadm -L|l [virtual-service] [options]
  ipvsadm -Z [virtual-service]
  ipvsadm --set tcp tcpfin udp
  ipvsadm --start-daemon {{master|backup}} [daemon-options]
  ipvsadm --stop-daemon {{master|backup}}
  ipvsadm -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos,
                                      the default scheduler is wlc.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --sort                              sorting output of service/server entries
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)

Daemon Options:
  --syncid sid                        syncid for connection sync (default=0)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)

Not supported by ferrovs (refused by name): --sctp-service, --pe,
--tun-type, --tun-port, --tun-nocsum, --tun-csum, --tun-remcsum, -6.
",
        version()
    )
}

/// Run as the tool `name` names, if it is one of ipvsadm's; `None` for any
/// other name (ferrovs itself).
pub fn main(name: &str, args: &[String]) -> Option<ExitCode> {
    let args: Vec<String> = match name {
        "ipvsadm" => {
            if args.iter().any(|a| a == "-h" || a == "--help") {
                print!("{}", usage());
                return Some(ExitCode::SUCCESS);
            }
            if args.iter().any(|a| a == "-v" || a == "--version") {
                println!("{}", version());
                return Some(ExitCode::SUCCESS);
            }
            args.to_vec()
        }
        // ipvsadm-save [-n] is `ipvsadm -S [-n]`.
        "ipvsadm-save" => {
            if let Some(bad) = args.iter().find(|a| *a != "-n") {
                eprintln!("ipvsadm-save: unknown option {bad}\nUsage: ipvsadm-save [-n]");
                return Some(ExitCode::from(2));
            }
            std::iter::once("-S".to_string())
                .chain(args.iter().cloned())
                .collect()
        }
        // ipvsadm-restore < FILE is `ipvsadm -R`.
        "ipvsadm-restore" => {
            if let Some(bad) = args.first() {
                eprintln!("ipvsadm-restore: unknown option {bad}\nUsage: ipvsadm-restore < FILE");
                return Some(ExitCode::from(2));
            }
            vec!["-R".to_string()]
        }
        _ => return None,
    };
    Some(crate::admin(args, Personality::Ipvsadm))
}

#[cfg(test)]
mod tests {
    #[test]
    fn other_names_are_ferrovs() {
        assert!(super::main("ferrovs", &[]).is_none());
        assert!(super::usage().starts_with("ipvsadm v1.31 (ferrovs "));
    }
}
