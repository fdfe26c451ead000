//! `ferrovs-bench export trex|pktgen`: the scenario `compare` runs here —
//! frames to VIP:9 over N client flows, client ports counted from 10000 and
//! then client addresses from 10.64.0.0 — as a TRex stateless profile or a
//! pktgen-dpdk Lua script, for a hardware generator on bare metal.

use crate::compare::Traffic;

/// The scenario, with the addresses of the machine under test.
pub struct Scenario {
    pub flows: u64,
    pub size: usize,
    pub traffic: Traffic,
    pub vip: String,
    pub dst_mac: String,
}

/// Client ports per client address: ports 10000..60000.
const PORTS: u64 = 50_000;

impl Scenario {
    /// Client addresses and ports per address that make at least `flows`
    /// distinct tuples.
    fn split(&self) -> (u64, u64) {
        let flows = self.flows.max(1);
        let ports = flows.min(PORTS);
        (flows.div_ceil(ports), ports)
    }

    fn proto(&self) -> &'static str {
        if self.traffic == Traffic::Udp {
            "udp"
        } else {
            "tcp"
        }
    }
}

/// A TRex stateless (STL) profile; `-t flows=N,size=B` overrides at start.
pub fn trex(s: &Scenario) -> String {
    format!(
        r#"# ferrovs benchmark scenario as a TRex stateless profile (made by
# `ferrovs-bench export trex`). {size}-byte {proto} frames to {vip}:9 over
# `flows` client tuples: client ports 10000.. for each client address from
# 10.64.0.0 on, as `ferrovs-bench compare` sends them.
#
#   trex-console> start -f ferrovs.py -m 10mpps -p 0 -t flows={flows},size={size}
#
# For the established-flow mix (tcp), send one SYN per flow first: start
# the same profile with traffic=syn at a low rate for flows/rate seconds.
from trex_stl_lib.api import *


class FerrovsScenario(object):
    def get_streams(self, direction=0, flows={flows}, size={size}, traffic="{traffic}", **kwargs):
        flows = int(flows)
        size = int(size)
        ports = min(flows, {ports_max})
        addrs = -(-flows // ports)
        if traffic == "udp":
            l4 = UDP(sport=10000, dport=9)
            port_field = "UDP.sport"
        else:
            l4 = TCP(sport=10000, dport=9, flags="S" if traffic == "syn" else "A")
            port_field = "TCP.sport"
        base = Ether(dst="{dst_mac}") / IP(src="10.64.0.0", dst="{vip}") / l4
        pad = max(0, size - 4 - len(base)) * "x"
        last = "10.64.%d.%d" % ((addrs - 1) >> 8, (addrs - 1) & 0xFF)
        vm = STLScVmRaw([
            STLVmTupleGen(ip_min="10.64.0.0", ip_max=last,
                          port_min=10000, port_max=10000 + ports - 1, name="tuple"),
            STLVmWrFlowVar(fv_name="tuple.ip", pkt_offset="IP.src"),
            STLVmFixIpv4(offset="IP"),
            STLVmWrFlowVar(fv_name="tuple.port", pkt_offset=port_field),
        ])
        return [STLStream(packet=STLPktBuilder(pkt=base / pad, vm=vm), mode=STLTXCont())]


def register():
    return FerrovsScenario()
"#,
        size = s.size,
        proto = s.proto(),
        vip = s.vip,
        flows = s.flows,
        traffic = match s.traffic {
            Traffic::Udp => "udp",
            Traffic::Syn => "syn",
            // Connections need a generator that answers as the server:
            // the command line refuses them before this.
            Traffic::Tcp | Traffic::Cps | Traffic::Teardown => "tcp",
        },
        ports_max = PORTS,
        dst_mac = s.dst_mac,
    )
}

/// A pktgen-dpdk Lua script for port 0 (`pktgen -f ferrovs.lua`). pktgen's
/// ranges step every field on every packet, so the tuples repeat after the
/// least common multiple of the two range lengths: the address count is
/// made coprime with the port count, and then every pair comes up.
pub fn pktgen(s: &Scenario) -> String {
    let (mut addrs, ports) = s.split();
    while addrs > 1 && gcd(addrs, ports) != 1 {
        addrs += 1;
    }
    let last = addrs - 1;
    format!(
        r#"-- ferrovs benchmark scenario as a pktgen-dpdk script (made by
-- `ferrovs-bench export pktgen`): {size}-byte {proto} frames to {vip}:9 over
-- {n} client tuples ({addrs} client addresses from 10.64.0.0 x {ports} client
-- ports from 10000), as `ferrovs-bench compare` sends them.
--   pktgen -l 0-2 -n 4 -- -P -m "[1:2].0" -f ferrovs.lua
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local port = "0"
pktgen.set_proto(port, "{proto}")
pktgen.dst_mac(port, "start", "{dst_mac}")
pktgen.dst_ip(port, "start", "{vip}")
pktgen.dst_ip(port, "inc", "0.0.0.0")
pktgen.dst_ip(port, "min", "{vip}")
pktgen.dst_ip(port, "max", "{vip}")
pktgen.src_ip(port, "start", "10.64.0.0")
pktgen.src_ip(port, "inc", "0.0.0.1")
pktgen.src_ip(port, "min", "10.64.0.0")
pktgen.src_ip(port, "max", "10.64.{hi}.{lo}")
pktgen.dst_port(port, "start", 9)
pktgen.dst_port(port, "inc", 0)
pktgen.dst_port(port, "min", 9)
pktgen.dst_port(port, "max", 9)
pktgen.src_port(port, "start", 10000)
pktgen.src_port(port, "inc", 1)
pktgen.src_port(port, "min", 10000)
pktgen.src_port(port, "max", {port_max})
pktgen.pkt_size(port, "start", {size})
pktgen.pkt_size(port, "inc", 0)
pktgen.pkt_size(port, "min", {size})
pktgen.pkt_size(port, "max", {size})
pktgen.set_range(port, "on")
pktgen.start(port)
"#,
        size = s.size,
        proto = s.proto(),
        vip = s.vip,
        n = addrs * ports,
        dst_mac = s.dst_mac,
        hi = last >> 8,
        lo = last & 0xff,
        port_max = 10_000 + ports - 1,
    )
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(flows: u64) -> Scenario {
        Scenario {
            flows,
            size: 64,
            traffic: Traffic::Udp,
            vip: "192.0.2.10".into(),
            dst_mac: "02:00:00:00:00:01".into(),
        }
    }

    #[test]
    fn pktgen_ranges_cover_every_flow_once_per_cycle() {
        for flows in [1, 1000, 50_000, 1_000_000, 10_000_000] {
            let text = pktgen(&scenario(flows));
            let (addrs, ports) = scenario(flows).split();
            let value = |key: &str| -> String {
                let line = text.lines().find(|l| l.contains(key)).unwrap();
                line.rsplit(", ")
                    .next()
                    .unwrap()
                    .trim_end_matches(')')
                    .trim_matches('"')
                    .to_string()
            };
            let port_max: u64 = value("src_port(port, \"max\"").parse().unwrap();
            let ip_max = value("src_ip(port, \"max\"");
            let o: Vec<u64> = ip_max.split('.').map(|x| x.parse().unwrap()).collect();
            let n_addrs = (o[2] << 8 | o[3]) + 1;
            let n_ports = port_max - 10_000 + 1;
            assert_eq!(n_ports, ports);
            assert!(
                n_addrs >= addrs && gcd(n_addrs, n_ports) == 1,
                "{flows}: {n_addrs} x {n_ports}"
            );
            // Distinct tuples in one cycle: lcm = product when coprime.
            assert!(n_addrs * n_ports >= flows);
            assert!(text.contains("pktgen.dst_ip(port, \"start\", \"192.0.2.10\")"));
            assert!(text.contains("pktgen.set_proto(port, \"udp\")"));
        }
    }

    #[test]
    fn trex_profile_names_the_scenario() {
        let text = trex(&Scenario {
            traffic: Traffic::Syn,
            ..scenario(1_000_000)
        });
        assert!(text.contains("flows=1000000, size=64, traffic=\"syn\""));
        assert!(text.contains("IP(src=\"10.64.0.0\", dst=\"192.0.2.10\")"));
        assert!(text.contains("Ether(dst=\"02:00:00:00:00:01\")"));
        assert!(text.contains("def register():"));
        // It is Python a TRex server can load (syntax checked here).
        let mut py = std::process::Command::new("python3")
            .args(["-c", "import ast, sys; ast.parse(sys.stdin.read())"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        std::io::Write::write_all(&mut py.stdin.take().unwrap(), text.as_bytes()).unwrap();
        assert!(py.wait().unwrap().success(), "{text}");
    }
}
