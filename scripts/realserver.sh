#!/usr/bin/env bash
# Prepare a real server for LVS-DR or LVS-TUN behind a ferrovs director:
#   realserver.sh [--dry-run] dr|tun VIP...   apply
#   realserver.sh [--dry-run] --undo          put back what apply changed
# DR: each VIP as a /32 on lo, arp_ignore=1 and arp_announce=2 so the server
# never answers ARP for the VIP (the director does). TUN: the same VIPs on
# tunl0 (the ipip module decapsulates), rp_filter off there and on "all".
# Idempotent: a second apply changes nothing. What apply changed, with the
# values it found, is kept in $FERROVS_RS_STATE (default
# /run/ferrovs/realserver.state) for --undo.
set -euo pipefail

STATE=${FERROVS_RS_STATE:-/run/ferrovs/realserver.state}
DRY=0
UNDO=0

usage() {
	echo "usage: $0 [--dry-run] dr|tun VIP... | $0 [--dry-run] --undo" >&2
	exit 2
}

die() {
	echo "realserver: $*" >&2
	exit 1
}

# do_or_say CMD...: run CMD, or with --dry-run print it.
do_or_say() {
	if ((DRY)); then
		echo "would run: $*"
	else
		"$@"
	fi
}

# set_sysctl KEY VALUE: set it, remembering the old value once.
set_sysctl() {
	local key=$1 want=$2 have
	have=$(sysctl -n "$key")
	[ "$have" = "$want" ] && return 0
	echo "set $key $have -> $want"
	((DRY)) && return 0
	sysctl -qw "$key=$want"
	grep -q "^sysctl $key " "$STATE" 2>/dev/null || echo "sysctl $key $have" >>"$STATE"
}

# add_vip VIP DEV: add VIP/32 on DEV unless it is there.
add_vip() {
	local vip=$1 dev=$2
	ip -4 -o addr show dev "$dev" | grep -q " inet $vip/32 " && return 0
	echo "add $vip/32 on $dev"
	((DRY)) && return 0
	ip addr add "$vip/32" dev "$dev"
	echo "addr $vip $dev" >>"$STATE"
}

undo() {
	[ -f "$STATE" ] || {
		echo "realserver: nothing to undo ($STATE absent)"
		return 0
	}
	local kind a b
	# Newest change first, so a sysctl set twice ends at its first value.
	while read -r kind a b; do
		case $kind in
		sysctl)
			echo "set $a back to $b"
			do_or_say sysctl -qw "$a=$b"
			;;
		addr)
			echo "remove $a/32 from $b"
			do_or_say ip addr del "$a/32" dev "$b"
			;;
		up)
			echo "bring $a down"
			do_or_say ip link set "$a" down
			;;
		esac
	done < <(tac "$STATE")
	((DRY)) || rm -f "$STATE"
}

while (($#)); do
	case $1 in
	--dry-run) DRY=1 ;;
	--undo) UNDO=1 ;;
	-h | --help) usage ;;
	*) break ;;
	esac
	shift
done

if ((UNDO)); then
	(($# == 0)) || usage
	undo
	exit 0
fi
(($# >= 2)) || usage
mode=$1
shift
for vip in "$@"; do
	ok=0
	if [[ $vip =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]]; then
		ok=1
		for o in "${BASH_REMATCH[@]:1}"; do
			((10#$o <= 255)) || ok=0
		done
	fi
	((ok)) || die "$vip is not an IPv4 address"
done
case $mode in
dr) dev=lo ;;
tun)
	dev=tunl0
	# Check before changing anything: without ipip there is no tunl0 and
	# nothing would decapsulate the director's packets.
	if ! ip link show tunl0 >/dev/null 2>&1; then
		modprobe ipip 2>/dev/null || true
		ip link show tunl0 >/dev/null 2>&1 ||
			die "no tunl0: this kernel has no ipip module (modprobe ipip failed); LVS-TUN real servers need it"
	fi
	;;
*) usage ;;
esac

((DRY)) || mkdir -p "$(dirname "$STATE")"
before=$( ((DRY)) || cat "$STATE" 2>/dev/null || true)
for k in all "$dev"; do
	set_sysctl "net.ipv4.conf.$k.arp_ignore" 1
	set_sysctl "net.ipv4.conf.$k.arp_announce" 2
done
if [ "$mode" = tun ]; then
	for k in all tunl0; do
		set_sysctl "net.ipv4.conf.$k.rp_filter" 0
	done
	ip -o link show tunl0 | grep -q "[<,]UP[,>]" || {
		echo "bring tunl0 up"
		do_or_say ip link set tunl0 up
		((DRY)) || echo "up tunl0" >>"$STATE"
	}
fi
for vip in "$@"; do
	add_vip "$vip" "$dev"
done
after=$( ((DRY)) || cat "$STATE" 2>/dev/null || true)
if ! ((DRY)) && [ "$before" = "$after" ]; then
	echo "realserver: nothing to change"
fi
