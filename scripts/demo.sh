#!/usr/bin/env bash
# The LVS-DR demo on the built-in lab: a client, a director running ferrovs
# on AF_XDP, two web servers. Sends 6 HTTP requests to the VIP and prints which
# real server answered (rr: server1, server2, server1, …), prints
# `ferrovs -L -n`, then tears everything down. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cargo build --release --quiet --bin ferrovs

export LAB=fvs-demo
export FERROVS_SOCKET=/run/ferrovs/demo.sock
B=target/release/ferrovs
VIP=10.99.0.100
DPID=

cleanup() {
	if [ -n "$DPID" ]; then
		kill -TERM "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
	fi
	scripts/lab.sh down
}
trap cleanup EXIT

scripts/lab.sh up
ip netns exec "$LAB-dir" "$B" daemon --interface eth0 --socket "$FERROVS_SOCKET" &
DPID=$!
for _ in $(seq 1 100); do
	"$B" -L -n >/dev/null 2>&1 && break
	sleep 0.1
done

set -x
"$B" -A -t "$VIP:80" -s rr
"$B" -a -t "$VIP:80" -r 10.99.0.11:80 -g -w 1
"$B" -a -t "$VIP:80" -r 10.99.0.12:80 -g -w 1
{ set +x; } 2>/dev/null

for i in 1 2 3 4 5 6; do
	printf 'request %d -> %s\n' "$i" "$(ip netns exec "$LAB-client" curl -s -m 5 "http://$VIP/")"
done
echo
"$B" -L -n
