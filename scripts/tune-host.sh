#!/usr/bin/env bash
# Make a host fit for ferrovs workers on --cpus (one worker per listed core,
# one NIC queue each):
#   tune-host.sh [--dry-run] [--no-host] [--busy-poll] [--hugepages N] \
#                --interface IF [--interface IF2] --cpus 2,3
#   tune-host.sh [--dry-run] --undo
# Per interface: channels = the worker count; each queue's IRQ on its
# worker's core; RPS and XPS off on those queues (the queue is the worker's
# and nobody else's); GRO, LRO and VLAN offloads off (XDP sees frames before
# any of them, and a VLAN tag stripped into metadata is lost to it); with
# --busy-poll, napi_defer_hard_irqs and gro_flush_timeout for preferred busy
# polling. Host-wide (skipped with --no-host): bpffs on /sys/fs/bpf, the BPF
# JIT on, hugepages if asked for. Idempotent; --dry-run only reports; every
# change is recorded in $FERROVS_TUNE_STATE (default
# /run/ferrovs/tune-host.state) with the command that undoes it.
set -euo pipefail

STATE=${FERROVS_TUNE_STATE:-/run/ferrovs/tune-host.state}
DRY=0
UNDO=0
HOST=1
BUSY=0
HUGEPAGES=
IFACES=()
CPUS=()

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
	echo "usage: $0 [--dry-run] [--no-host] [--busy-poll] [--hugepages N] --interface IF... --cpus LIST" >&2
	echo "       $0 [--dry-run] --undo" >&2
	exit 2
}

# channels IF N: N queues (combined where the driver has them, else rx/tx).
channels() {
	local ifname=$1 n=$2 out kind have k k2
	out=$(ethtool -l "$ifname" 2>/dev/null) || {
		echo "$ifname: the driver cannot change its channels; make sure it has $n queue(s)"
		return 0
	}
	if awk '/^Pre-set/ {m=1} /^Current/ {m=0} m && /^Combined:/ && $2 != "n/a" && $2 > 0 {f=1} END {exit !f}' <<<"$out"; then
		kind=(combined)
	else
		kind=(rx tx)
	fi
	for k in "${kind[@]}"; do
		case $k in combined) k2=Combined ;; *) k2=${k^^} ;; esac
		have=$(awk -v k="$k2:" '/^Current/ {c=1} c && $1 == k {print $2; exit}' <<<"$out")
		[ "$have" = "$n" ] && continue
		change "$ifname: $k channels $have -> $n" "channels:$ifname:$k" ethtool -L "$ifname" "$k" "$have" -- \
			ethtool -L "$ifname" "$k" "$n"
	done
}

# offloads IF: turn off what XDP cannot use, if the driver lets us.
offloads() {
	local ifname=$1 feat state
	for feat in generic-receive-offload large-receive-offload rx-vlan-offload tx-vlan-offload \
		rx-vlan-stag-hw-parse tx-vlan-stag-hw-insert; do
		# "on", but not "on [fixed]": the driver would refuse.
		state=$(ethtool -k "$ifname" 2>/dev/null | awk -v f="$feat:" '$1 == f {print $2 $3}')
		[ "$state" = on ] || continue
		change "$ifname: $feat off" "feature:$ifname:$feat" ethtool -K "$ifname" "$feat" on -- \
			ethtool -K "$ifname" "$feat" off
	done
}

# irqs IF: each queue's interrupt on the core of the worker that owns it.
irqs() {
	local ifname=$1 irq name q found=0
	while read -r irq name; do
		found=1
		q=$(grep -oE '[0-9]+$' <<<"$name" || echo 0)
		((q < ${#CPUS[@]})) || continue
		set_file "/proc/irq/$irq/smp_affinity_list" "${CPUS[$q]}"
	done < <(awk -v i="$ifname" 'index($NF, i) == 1 {sub(":", "", $1); print $1, $NF}' /proc/interrupts)
	((found)) || echo "$ifname: no interrupts of its own (a virtual device): nothing to pin"
	if pgrep -x irqbalance >/dev/null 2>&1; then
		echo "warning: irqbalance is running and will move these IRQs again; stop it or ban the worker cores (IRQBALANCE_BANNED_CPULIST)"
	fi
}

# queues IF N: RPS and XPS off on the workers' queues.
steering() {
	local ifname=$1 n=$2 q dir=/sys/class/net/$1/queues
	for ((q = 0; q < n; q++)); do
		[ -w "$dir/rx-$q/rps_cpus" ] && set_file "$dir/rx-$q/rps_cpus" 0
		[ -w "$dir/tx-$q/xps_cpus" ] && set_file "$dir/tx-$q/xps_cpus" 0
	done
	return 0
}

host_wide() {
	if ! mountpoint -q /sys/fs/bpf; then
		change "mount bpffs on /sys/fs/bpf" mount:bpffs umount /sys/fs/bpf -- mount -t bpf bpf /sys/fs/bpf
	fi
	[ -w /proc/sys/net/core/bpf_jit_enable ] && set_file /proc/sys/net/core/bpf_jit_enable 1
	[ -n "$HUGEPAGES" ] && set_file /proc/sys/vm/nr_hugepages "$HUGEPAGES"
	return 0
}

while (($#)); do
	case $1 in
	--dry-run) DRY=1 ;;
	--undo) UNDO=1 ;;
	--no-host) HOST=0 ;;
	--busy-poll) BUSY=1 ;;
	--hugepages)
		HUGEPAGES=${2:?--hugepages needs a count}
		shift
		;;
	--interface | -i)
		IFACES+=("${2:?--interface needs a name}")
		shift
		;;
	--cpus)
		IFS=, read -ra CPUS <<<"${2:?--cpus needs a list}"
		shift
		;;
	*) usage ;;
	esac
	shift
done

if ((UNDO)); then
	undo_all
	exit 0
fi
((${#IFACES[@]} && ${#CPUS[@]})) || usage
for c in "${CPUS[@]}"; do
	if ! [[ $c =~ ^[0-9]+$ ]] || ! [ -d "/sys/devices/system/cpu/cpu$c" ]; then
		die "--cpus: no core $c"
	fi
done
[ -z "$HUGEPAGES" ] || [[ $HUGEPAGES =~ ^[0-9]+$ ]] || die "--hugepages: $HUGEPAGES is not a count"
for ifname in "${IFACES[@]}"; do
	[ -d "/sys/class/net/$ifname" ] || die "no interface $ifname"
done

before=$(state_digest)
((HOST)) && host_wide
for ifname in "${IFACES[@]}"; do
	channels "$ifname" "${#CPUS[@]}"
	irqs "$ifname"
	steering "$ifname" "${#CPUS[@]}"
	offloads "$ifname"
	if ((BUSY)); then
		set_file "/sys/class/net/$ifname/napi_defer_hard_irqs" 2
		set_file "/sys/class/net/$ifname/gro_flush_timeout" 200000
	fi
done
if ! ((DRY)) && [ "$before" = "$(state_digest)" ]; then
	echo "tune-host: nothing to change"
fi
