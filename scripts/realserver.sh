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

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
	echo "usage: $0 [--dry-run] dr|tun VIP... | $0 [--dry-run] --undo" >&2
	exit 2
}

# add_vip VIP DEV: add VIP/32 on DEV unless it is there.
add_vip() {
	local vip=$1 dev=$2
	# Not "ip ... | grep -q": with pipefail, grep leaving at the first match
	# can fail the pipeline by SIGPIPE and the address looks absent.
	grep -q " inet $vip/32 " <<<"$(ip -4 -o addr show dev "$dev")" && return 0
	change "add $vip/32 on $dev" "addr:$vip:$dev" ip addr del "$vip/32" dev "$dev" -- \
		ip addr add "$vip/32" dev "$dev"
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
	undo_all
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

before=$(state_digest)
for k in all "$dev"; do
	set_file "/proc/sys/net/ipv4/conf/$k/arp_ignore" 1
	set_file "/proc/sys/net/ipv4/conf/$k/arp_announce" 2
done
if [ "$mode" = tun ]; then
	for k in all tunl0; do
		set_file "/proc/sys/net/ipv4/conf/$k/rp_filter" 0
	done
	grep -q "[<,]UP[,>]" <<<"$(ip -o link show tunl0)" ||
		change "bring tunl0 up" link:tunl0 ip link set tunl0 down -- ip link set tunl0 up
fi
for vip in "$@"; do
	add_vip "$vip" "$dev"
done
if ! ((DRY)) && [ "$before" = "$(state_digest)" ]; then
	echo "realserver: nothing to change"
fi
