#!/usr/bin/env bash
# Real inputs for the fuzz corpora: a DR lab (scripts/lab.sh) with the
# daemon forwarding HTTP over IPv4 and IPv6, a UDP datagram and a ping to
# the VIP while it runs a sync master, and keepalived (VRRPv2 and v3
# instances) on the client, captured with tcpdump on the client's eth0 (what reaches the
# director: AF_XDP takes its frames before any capture on the director
# sees them) and on rs1's (what the director sent), one file a frame
# (neighbour discovery and most ARP left out), into
# fuzz/corpus/{frame,wire}/cap-*; keepalived's adverts (from their IP
# header, as the raw socket hands them) into fuzz/corpus/vrrp/cap-*, and
# the sync messages (UDP payloads) into fuzz/corpus/sync/cap-*. The frame
# target's rule set has the lab's services, so these frames are forwarded
# there as in the lab. Needs root and a built daemon (default
# target/release/ferrovs; FERROVS_BIN overrides).
set -euo pipefail

cd "$(dirname "$0")/.."
bin=$(realpath "${FERROVS_BIN:-target/release/ferrovs}")
export LAB="fzc$$"
tmp=$(mktemp -d)
sock="$tmp/ferrovs.sock"
cleanup() {
	for p in ${dumpers:-} ${keepalived:-}; do kill "$p" 2>/dev/null || true; done
	if [ -n "${daemon:-}" ]; then kill "$daemon" 2>/dev/null || true; fi
	# shellcheck disable=SC2086 # the process ids, one word each
	wait ${dumpers:-} ${daemon:-} ${keepalived:-} 2>/dev/null || true
	scripts/lab.sh down >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
scripts/lab.sh up >/dev/null
ns() { ip netns exec "$LAB-$1" "${@:2}"; }

dumpers=
for host in client rs1; do
	ns "$host" tcpdump -i eth0 -U -s 0 -w "$tmp/$host.pcap" 2>/dev/null &
	dumpers="$dumpers $!"
done
sleep 1
ns dir "$bin" daemon --interface eth0 --socket "$sock" 2>"$tmp/daemon.log" &
daemon=$!
fvs() { FERROVS_SOCKET=$sock "$bin" "$@"; }
for _ in $(seq 100); do fvs -L -n >/dev/null 2>&1 && break; sleep 0.1; done
fvs -A -t 10.99.0.100:80 -s rr
fvs -a -t 10.99.0.100:80 -r 10.99.0.11:80 -g
fvs -a -t 10.99.0.100:80 -r 10.99.0.12:80 -g
fvs -A -u 10.99.0.100:53 -s rr
fvs -a -u 10.99.0.100:53 -r 10.99.0.11:53 -g
fvs -A -t '[2001:db8:99::100]:80' -s rr
fvs -a -t '[2001:db8:99::100]:80' -r '[2001:db8:99::11]:80' -g
fvs --start-daemon master --mcast-interface eth0 --syncid 9
cat >"$tmp/keepalived.conf" <<'CONF'
vrrp_instance V2 {
    state MASTER
    interface eth0
    virtual_router_id 42
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass fuzz
    }
    virtual_ipaddress {
        10.99.0.200/24
    }
}
vrrp_instance V3 {
    state BACKUP
    version 3
    interface eth0
    virtual_router_id 43
    priority 100
    advert_int 0.5
    virtual_ipaddress {
        10.99.0.201/24
    }
}
CONF
ns client keepalived -n -l -P -f "$tmp/keepalived.conf" -p "$tmp/ka.pid" -r "$tmp/ka.vrrp.pid" \
	>/dev/null 2>&1 &
keepalived=$!

ns client curl -s -m 5 -o /dev/null http://10.99.0.100/
ns client curl -s -m 5 -o /dev/null -g 'http://[2001:db8:99::100]/'
echo query | ns client socat -T 2 - UDP:10.99.0.100:53 >/dev/null || true
ns client ping -c 1 -W 2 10.99.0.100 >/dev/null || true
# Packets enough for the sync threshold, and a partial message's flush.
for _ in 1 2 3 4; do echo again | ns client socat -T 1 - UDP:10.99.0.100:53 >/dev/null || true; done
sleep 4
# shellcheck disable=SC2086 # the process ids, one word each
kill $dumpers
# shellcheck disable=SC2086
wait $dumpers 2>/dev/null || true
dumpers=

python3 - "$tmp/client.pcap" "$tmp/rs1.pcap" <<'PY'
import struct, sys, pathlib
n, seen, arp, adverts = {}, set(), 0, {}
def put(target, data):
    i = n.get(target, 0)
    n[target] = i + 1
    pathlib.Path(f"fuzz/corpus/{target}/cap-{i:03}").write_bytes(data)
def noise(f):
    # Neighbour discovery and MLD, beyond the first few: the host's chatter.
    global arp
    if f[12:14] == b"\x08\x06":
        arp += 1
        return arp > 2
    if f[12:14] == b"\x86\xdd" and len(f) > 54:
        return f[20] == 0 or (f[20] == 58 and f[54] >= 130)
    return False
for path in sys.argv[1:]:
    data = pathlib.Path(path).read_bytes()
    # pcap: a 24-byte file header, then a 16-byte header before each frame
    fmt = "<IIII" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">IIII"
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(fmt, data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if frame in seen or noise(frame):
            continue
        seen.add(frame)
        ip = frame[14:]
        if frame[12:14] == b"\x08\x00" and ip[9] == 112:
            # Two adverts of each instance: the rest differ only in IP id.
            kind = ip[20:24]
            adverts[kind] = adverts.get(kind, 0) + 1
            if adverts[kind] <= 2:
                put("vrrp", ip)
            continue
        ihl = (ip[0] & 15) * 4 if frame[12:14] == b"\x08\x00" else 0
        if ihl and ip[9] == 17 and ip[ihl + 2:ihl + 4] == b"\x22\x90":
            put("sync", ip[ihl + 8:])
            continue
        # The frame target's first byte is its clock.
        put("frame", b"\x01" + frame)
        put("wire", frame)
print("fuzz-captures:", ", ".join(f"{t} {k}" for t, k in sorted(n.items())))
PY
