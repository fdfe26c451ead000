#!/usr/bin/env bash
# The built-in LVS lab: network namespaces on this host joined by bridges,
# each bridge in a namespace of its own (the lab's switches).
#
# DR (the default), one L2 segment, switch LAB-sw:
#   client 10.99.0.2, director 10.99.0.10 (+ VIP 10.99.0.100),
#   rs1 10.99.0.11 and rs2 10.99.0.12 with the VIP on lo as /32,
#   arp_ignore=1 and arp_announce=2, as in the LVS books.
#
# NAT (LAB_KIND=nat), a two-armed director:
#   client side, switch LAB-sw:  client 10.99.0.2, director eth0 10.99.0.10
#                                (+ VIP 10.99.0.100)
#   server side, switch LAB-swr: director eth1 10.98.0.1, rs1 10.98.0.11 and
#                                rs2 10.98.0.12, whose default gateway is the
#                                director, as in the LVS-NAT lab.
#
# TUN (LAB_KIND=tun): the DR segment, and the real servers take IP-in-IP
#   packets from the director. This kernel has no ipip module, so a small
#   helper on each decapsulates (AF_PACKET in, TUN device tun0 out); the
#   inner packet is for the VIP on lo, and the answer goes straight to the
#   client. rp_filter is off, as on any TUN real server.
#
# rs1/rs2 answer their own name ("server1", "server2"): HTTP on port 80 (DR)
# or 8080 (NAT, to show port mapping), and UDP on port 53. Each namespace's
# interfaces are eth0 (and eth1 on a two-armed director).
#
# Usage: scripts/lab.sh up|down|status
#   LAB=NAME       prefix of the namespaces (default "fvs"), so several labs
#                  can exist at once; everything the lab creates lives in
#                  LAB-* and goes away with it. Interfaces outside them are
#                  never touched.
#   LAB_KIND=dr|nat|tun  topology (default dr).
#   LAB_QUEUES=N   queues on the director's interfaces (default 1), one
#                  worker each.
#   LAB_PAIR=1     a second director, dir2 (10.99.0.20, and 10.98.0.2 on the
#                  NAT server side), for VRRP: the VIP is then on neither
#                  director (VRRP puts it on the master), and NAT real
#                  servers route via 10.98.0.254, the server side's VRRP
#                  address.
#   LAB_SERVERS=N  real servers rs1..rsN (default 2, at most 9), at .11 to .1N.
#   LAB_XDP_PEERS=1  an XDP program (XDP_PASS) on every switch port, as a
#                  physical NIC or switch takes what the director sends with
#                  XDP_TX: veth drops such frames unless its peer runs one
#                  (for `ferrovs daemon --fast-path on`).
#
# Every host is dual-stack: 2001:db8:99::/64 beside 10.99.0.0/24 (client
# ::2, director ::10 with VIP6 2001:db8:99::100, rsN ::1N) and, for NAT,
# 2001:db8:98::/64 beside 10.98.0.0/24 (director ::1, the servers' default
# gateway). Addresses skip duplicate detection (nodad), so they work at
# once. The director's VIP6 is deprecated, so its own traffic (health
# checks) leaves from ::10. A DR or TUN real server holds VIP6 on lo as a /128: Linux answers
# neighbour solicitations only for addresses of the interface asked, so the
# VIP6 needs no arp_ignore. TUN's helper also takes IPv6-in-IPv6 (next
# header 41).
set -euo pipefail

LAB="${LAB:-fvs}"
KIND="${LAB_KIND:-dr}"
QUEUES="${LAB_QUEUES:-1}"
PAIR="${LAB_PAIR:-0}"
XDP_PEERS="${LAB_XDP_PEERS:-0}"
SERVERS="${LAB_SERVERS:-2}"
VIP=10.99.0.100
VIP6=2001:db8:99::100
RSS=()
for ((i = 1; i <= SERVERS; i++)); do RSS+=("rs$i"); done
ROLES=(client dir "${RSS[@]}")
SWITCHES=(sw swr)
PY="${PYTHON:-/usr/bin/python3}"

ns() { echo "$LAB-$1"; }
in_ns() {
	local n
	n=$(ns "$1")
	shift
	ip netns exec "$n" "$@"
}
# Output captured, not piped into grep -q: under pipefail an early grep exit
# can fail the pipeline by SIGPIPE.
have_ns() { grep -qx "$1" <<<"$(ip netns list | awk '{print $1}')"; }

# The real servers' HTTP server (HTTP/1.1 keep-alive, body = its name; IPv4
# and IPv6) and UDP responder (answers each datagram with its name).
# Arguments: name, HTTP port, UDP addresses (the VIP and VIP6 for DR:
# replies must come from them).
HTTPD='
import http.server, socket, socketserver, sys, threading
NAME, PORT, UDP_ADDRS = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
def udp(addr):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
    if ":" in addr:
        # Beside 0.0.0.0:53, [::]:53 must not claim IPv4 too.
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, 53))
    while True:
        _, peer = s.recvfrom(2048)
        s.sendto(NAME.encode(), peer)
for a in UDP_ADDRS:
    threading.Thread(target=udp, args=(a,), daemon=True).start()
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
    address_family = socket.AF_INET6
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
S(("::", PORT), H).serve_forever()
'

# The TUN real servers' decapsulator: IP-in-IP (protocol 4) and
# IPv6-in-IPv6 (next header 41) packets from eth0 (AF_PACKET), inner packet
# into tun0 (which tells the families apart by the version nibble).
DECAP='
import fcntl, os, socket, struct, threading
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", b"tun0", IFF_TUN | IFF_NO_PI))
def v6():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x86dd))
    s.bind(("eth0", 0x86dd))
    while True:
        p = s.recv(65535)
        if len(p) >= 80 and p[6] == 41:
            os.write(tun, p[40:])
threading.Thread(target=v6, daemon=True).start()
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.bind(("eth0", 0x0800))
while True:
    p = s.recv(65535)
    if len(p) >= 40 and p[9] == 4:
        os.write(tun, p[(p[0] & 15) * 4:])
'

down() {
	local n
	# Every server a lab may have, whatever LAB_SERVERS says now.
	for r in client dir rs{1..9} dir2 "${SWITCHES[@]}"; do
		n=$(ns "$r")
		have_ns "$n" || continue
		# Stop what runs inside (HTTP servers, a daemon) before the namespace goes.
		ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null || true
	done
	for r in client dir rs{1..9} dir2 "${SWITCHES[@]}"; do
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
	rm -f "/tmp/$LAB-xdp-pass.o"
}

# pass_prog: an XDP program that passes every frame, compiled once per lab
# (clang, as the daemon's build needs it).
pass_prog() {
	local obj="/tmp/$LAB-xdp-pass.o"
	if [ ! -e "$obj" ]; then
		printf '%s\n' '#include <linux/bpf.h>' '#include <bpf/bpf_helpers.h>' \
			'SEC("xdp") int pass(struct xdp_md *ctx) { return XDP_PASS; }' \
			'char LICENSE[] SEC("license") = "GPL";' |
			clang -O2 -target bpf -I"/usr/include/$(gcc -print-multiarch)" -x c -c - -o "$obj"
	fi
	echo "$obj"
}

wait_listening() {
	local r=$1 port=$2
	for _ in $(seq 1 50); do
		grep -q LISTEN <<<"$(in_ns "$r" ss -Hltn "sport = :$port")" && return 0
		sleep 0.1
	done
	echo "lab: HTTP server on $r did not start" >&2
	return 1
}

# plug ROLE DEV SWITCH ADDR/LEN ADDR6/LEN: a veth from ROLE's DEV to a port
# of SWITCH.
plug() {
	local r=$1 dev=$2 sw=$3 addr=$4 addr6=$5
	# The director's links get LAB_QUEUES queues (both ends), so that the
	# switch spreads flows over them by hash, as a multi-queue NIC does.
	local q=1
	[ "$r" = dir ] && q=$QUEUES
	ip link add "$dev" netns "$(ns "$r")" numtxqueues "$q" numrxqueues "$q" type veth \
		peer name "p-$r-$dev" netns "$(ns "$sw")" numtxqueues "$q" numrxqueues "$q"
	in_ns "$sw" ip link set "p-$r-$dev" master br0 up
	if [ "$XDP_PEERS" = 1 ]; then
		in_ns "$sw" ip link set dev "p-$r-$dev" xdp obj "$(pass_prog)" sec xdp
	fi
	in_ns "$r" ip addr add "$addr" dev "$dev"
	in_ns "$r" ip addr add "$addr6" dev "$dev" nodad
	in_ns "$r" ip link set "$dev" up
	# Offloads stay at their defaults, as on a user's own lab: senders leave
	# TCP/UDP checksums partial, and the director completes them.
}

up() {
	down
	case "$KIND" in dr | nat | tun) ;; *)
		echo "lab: LAB_KIND must be dr, nat or tun" >&2
		exit 2
		;;
	esac
	for s in "${SWITCHES[@]}"; do
		ip netns add "$(ns "$s")"
		in_ns "$s" ip link add br0 type bridge
		in_ns "$s" ip link set br0 up
	done
	local roles=("${ROLES[@]}")
	[ "$PAIR" = 1 ] && roles+=(dir2)
	for r in "${roles[@]}"; do
		ip netns add "$(ns "$r")"
		in_ns "$r" ip link set lo up
	done
	plug client eth0 sw 10.99.0.2/24 2001:db8:99::2/64
	plug dir eth0 sw 10.99.0.10/24 2001:db8:99::10/64
	if [ "$PAIR" = 1 ]; then
		plug dir2 eth0 sw 10.99.0.20/24 2001:db8:99::20/64
		[ "$KIND" = nat ] && plug dir2 eth1 swr 10.98.0.2/24 2001:db8:98::2/64
	else
		# The director answers ARP (and neighbour solicitations) for the VIPs.
		# VIP6 deprecated (preferred_lft 0): a /128 otherwise wins the
		# kernel's source-address choice (longest match) for the director's
		# own traffic to the servers, which hold the VIP6 themselves.
		in_ns dir ip addr add "$VIP/32" dev eth0
		in_ns dir ip addr add "$VIP6/128" dev eth0 nodad preferred_lft 0
	fi
	local port r
	if [ "$KIND" != nat ]; then
		port=80
		for r in "${RSS[@]}"; do
			plug "$r" eth0 sw "10.99.0.1${r#rs}/24" "2001:db8:99::1${r#rs}/64"
			in_ns "$r" ip addr add "$VIP/32" dev lo
			in_ns "$r" ip addr add "$VIP6/128" dev lo nodad
			for k in all eth0; do
				in_ns "$r" sysctl -qw "net.ipv4.conf.$k.arp_ignore=1"
				in_ns "$r" sysctl -qw "net.ipv4.conf.$k.arp_announce=2"
			done
		done
	else
		port=8080
		plug dir eth1 swr 10.98.0.1/24 2001:db8:98::1/64
		local gw=10.98.0.1 gw6=2001:db8:98::1
		[ "$PAIR" = 1 ] && gw=10.98.0.254 && gw6=2001:db8:98::254
		for r in "${RSS[@]}"; do
			plug "$r" eth0 swr "10.98.0.1${r#rs}/24" "2001:db8:98::1${r#rs}/64"
			# With a pair the gateway is VRRP's, on whichever is master.
			in_ns "$r" ip route add default via "$gw" dev eth0
			in_ns "$r" ip -6 route add default via "$gw6" dev eth0
		done
	fi
	for r in "${RSS[@]}"; do
		local udp_addr=0.0.0.0,::
		[ "$KIND" != nat ] && udp_addr=$VIP,$VIP6
		in_ns "$r" setsid "$PY" -c "$HTTPD" "server${r#rs}" "$port" "$udp_addr" </dev/null >/dev/null 2>&1 &
	done
	for r in "${RSS[@]}"; do
		wait_listening "$r" "$port"
	done
	if [ "$KIND" = tun ]; then
		for r in "${RSS[@]}"; do
			for k in all default eth0; do
				in_ns "$r" sysctl -qw "net.ipv4.conf.$k.rp_filter=0"
			done
			in_ns "$r" setsid "$PY" -c "$DECAP" </dev/null >/dev/null 2>&1 &
		done
		for r in "${RSS[@]}"; do
			for _ in $(seq 1 50); do
				in_ns "$r" ip link show tun0 >/dev/null 2>&1 && break
				sleep 0.1
			done
			in_ns "$r" sysctl -qw net.ipv4.conf.tun0.rp_filter=0
			in_ns "$r" ip link set tun0 up
		done
	fi
	if [ "$KIND" != nat ]; then
		echo "lab $LAB up (${KIND^^}): client 10.99.0.2, director 10.99.0.10 VIP $VIP, ${RSS[*]} 10.99.0.11.. (IPv6: 2001:db8:99::, VIP6 $VIP6)"
	else
		echo "lab $LAB up (NAT): client 10.99.0.2, director 10.99.0.10 VIP $VIP / 10.98.0.1, ${RSS[*]} 10.98.0.11..:8080 (IPv6: 2001:db8:99:: / 2001:db8:98::, VIP6 $VIP6)"
	fi
}

status() {
	local n
	for r in "${SWITCHES[@]}" "${ROLES[@]}"; do
		n=$(ns "$r")
		if have_ns "$n"; then
			printf '%-12s up   pids: %s\n' "$n" "$(ip netns pids "$n" | tr '\n' ' ')"
		else
			printf '%-12s down\n' "$n"
		fi
	done
}

# server-stop ROLE / server-start ROLE: stop or start a real server's HTTP
# and UDP servers (health-check tests).
server_stop() {
	ip netns pids "$(ns "$1")" | xargs -r kill 2>/dev/null || true
	for _ in $(seq 1 50); do
		[ -z "$(ip netns pids "$(ns "$1")")" ] && return 0
		sleep 0.1
	done
}

server_start() {
	local r=$1 port=80 udp_addr=$VIP,$VIP6
	# A NAT lab's real servers sit on the server side's 10.98.0.0/24
	# (LAB_KIND is not passed again).
	if [ "$KIND" = nat ] || grep -q 'inet 10\.98\.' <<<"$(in_ns "$r" ip -4 addr show dev eth0)"; then
		port=8080
		udp_addr=0.0.0.0,::
	fi
	in_ns "$r" setsid "$PY" -c "$HTTPD" "server${r#rs}" "$port" "$udp_addr" </dev/null >/dev/null 2>&1 &
	wait_listening "$r" "$port"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
server-stop) server_stop "${2:?role}" ;;
server-start) server_start "${2:?role}" ;;
*)
	echo "usage: LAB=NAME LAB_KIND=dr|nat|tun $0 up|down|status|server-stop ROLE|server-start ROLE" >&2
	exit 2
	;;
esac
