#!/usr/bin/env bash
# The built-in LVS-DR lab: network namespaces on this host, joined on one L2
# segment by a bridge in its own namespace (the lab's switch).
#
#   client 10.99.0.2 ──┐
#   director 10.99.0.10 (+ VIP 10.99.0.100) ──┤ bridge (ns LAB-sw)
#   rs1 10.99.0.11 (VIP on lo) ──┤
#   rs2 10.99.0.12 (VIP on lo) ──┘
#
# rs1/rs2 run an HTTP server on port 80 and a UDP responder on VIP:53 that
# answer their own name ("server1", "server2"), and have the DR setup of the LVS books: VIP on lo as /32,
# arp_ignore=1, arp_announce=2. Each namespace's interface is eth0.
#
# Usage: scripts/lab.sh up|down|status
#   LAB=NAME  prefix of the namespaces (default "fvs"), so several labs can
#             exist at once; everything the lab creates lives in LAB-* and
#             goes away with it. Interfaces outside them are never touched.
set -euo pipefail

LAB="${LAB:-fvs}"
NET=10.99.0
VIP="$NET.100"
ROLES=(client dir rs1 rs2)
declare -A ADDR=([client]=$NET.2 [dir]=$NET.10 [rs1]=$NET.11 [rs2]=$NET.12)
PY="${PYTHON:-/usr/bin/python3}"

ns() { echo "$LAB-$1"; }
in_ns() { local n; n=$(ns "$1"); shift; ip netns exec "$n" "$@"; }
have_ns() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

# The real servers' HTTP server (port 80: HTTP/1.1 keep-alive, body = its
# name) and UDP responder (VIP port 53: answers each datagram with its name,
# from the VIP, as a DR real server must).
HTTPD='
import http.server, socket, socketserver, sys, threading
NAME, VIP = sys.argv[1], sys.argv[2]
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((VIP, 53))
    while True:
        _, peer = s.recvfrom(2048)
        s.sendto(NAME.encode(), peer)
threading.Thread(target=udp, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = (NAME + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            # Say so, as real servers do, or a client may race the close and
            # send its next request on this connection.
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("0.0.0.0", 80), H).serve_forever()
'

down() {
	local n
	for r in "${ROLES[@]}" sw; do
		n=$(ns "$r")
		have_ns "$n" || continue
		# Stop what runs inside (HTTP servers, a daemon) before the namespace goes.
		ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null || true
	done
	for r in "${ROLES[@]}" sw; do
		n=$(ns "$r")
		if have_ns "$n"; then
			for _ in $(seq 1 20); do
				[ -z "$(ip netns pids "$n" 2>/dev/null)" ] && break
				sleep 0.1
			done
			ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
			ip netns del "$n"
		fi
	done
}

wait_listening() {
	local r=$1
	for _ in $(seq 1 50); do
		in_ns "$r" ss -Hltn 'sport = :80' | grep -q LISTEN && return 0
		sleep 0.1
	done
	echo "lab: HTTP server on $r did not start" >&2
	return 1
}

up() {
	down
	ip netns add "$(ns sw)"
	in_ns sw ip link add br0 type bridge
	in_ns sw ip link set br0 up
	for r in "${ROLES[@]}"; do
		ip netns add "$(ns "$r")"
		ip link add eth0 netns "$(ns "$r")" type veth peer name "p-$r" netns "$(ns sw)"
		in_ns sw ip link set "p-$r" master br0 up
		in_ns "$r" ip link set lo up
		in_ns "$r" ip addr add "${ADDR[$r]}/24" dev eth0
		in_ns "$r" ip link set eth0 up
		# Frames cross the director's AF_XDP socket as bytes: senders must
		# write whole checksums, not leave them to an offload that veth
		# would carry as skb metadata only.
		in_ns "$r" ethtool -K eth0 tx off >/dev/null 2>&1 || true
	done
	# The director answers ARP for the VIP.
	in_ns dir ip addr add "$VIP/32" dev eth0
	for r in rs1 rs2; do
		in_ns "$r" ip addr add "$VIP/32" dev lo
		for k in all eth0; do
			in_ns "$r" sysctl -qw "net.ipv4.conf.$k.arp_ignore=1"
			in_ns "$r" sysctl -qw "net.ipv4.conf.$k.arp_announce=2"
		done
		name="server${r#rs}"
		in_ns "$r" setsid "$PY" -c "$HTTPD" "$name" "$VIP" </dev/null >/dev/null 2>&1 &
	done
	wait_listening rs1
	wait_listening rs2
	echo "lab $LAB up: client $NET.2, director $NET.10 VIP $VIP, rs1 $NET.11, rs2 $NET.12"
}

status() {
	local n
	for r in sw "${ROLES[@]}"; do
		n=$(ns "$r")
		if have_ns "$n"; then
			printf '%-12s up   pids: %s\n' "$n" "$(ip netns pids "$n" | tr '\n' ' ')"
		else
			printf '%-12s down\n' "$n"
		fi
	done
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
*)
	echo "usage: LAB=NAME $0 up|down|status" >&2
	exit 2
	;;
esac
