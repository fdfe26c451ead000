#!/usr/bin/env bash
# The fuzz targets (fuzz/, cargo-fuzz on the nightly toolchain):
#   scripts/fuzz.sh smoke [SECONDS]   every target for SECONDS (default 10)
#                                    from a copy of its committed corpus
#   scripts/fuzz.sh run TARGET [SECONDS] [JOBS]   a campaign of one target,
#                                    growing fuzz/corpus/TARGET
#   scripts/fuzz.sh list
# keepalived's own sample configurations join the keepalived corpus when
# the keepalived package is installed. A crash leaves its input in
# fuzz/artifacts/TARGET/ and the script fails.
set -euo pipefail

cd "$(dirname "$0")/.."
TARGETS=(frame wire ipvsadm restore keepalived daemon_toml vrrp sync ctl)

# The fuzzed code has no `unsafe` (the workspace denies it outside AF_XDP,
# which no target reaches), so AddressSanitizer would find nothing Rust's
# own checks do not; without it the text parsers run about three times
# as many inputs a second.
SAN=(--sanitizer none)

# dict TARGET: libFuzzer's -dict option for the target's committed
# dictionary (fuzz/dict/TARGET.dict: the tokens its parser matches).
dict() {
	[ -f "fuzz/dict/$1.dict" ] && echo "-dict=fuzz/dict/$1.dict"
	return 0
}

# corpus TARGET DIR: the committed corpus (unless DIR is it) and, for
# keepalived, its samples.
corpus() {
	local t=$1 dir=$2
	mkdir -p "$dir"
	[ "$dir" = "fuzz/corpus/$t" ] || cp -r "fuzz/corpus/$t/." "$dir/"
	if [ "$t" = keepalived ] && [ -d /usr/share/doc/keepalived/samples ]; then
		cp /usr/share/doc/keepalived/samples/keepalived.conf.* "$dir/" 2>/dev/null || true
	fi
}

case "${1:-}" in
list) cargo +nightly fuzz list ;;
smoke)
	secs=${2:-10}
	scratch=$(mktemp -d)
	trap 'rm -rf "$scratch"' EXIT
	for t in "${TARGETS[@]}"; do
		corpus "$t" "$scratch/$t"
		log="$scratch/$t.log"
		# libFuzzer exits non-zero on a crash (its input is then in
		# fuzz/artifacts/TARGET/), and so does a build that fails.
		# shellcheck disable=SC2046 # the option is one word, or none
		if ! cargo +nightly fuzz run "${SAN[@]}" "$t" "$scratch/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 $(dict "$t") >"$log" 2>&1; then
			tail -40 "$log" >&2
			echo "fuzz: $t failed (fuzz/artifacts/$t/)" >&2
			exit 1
		fi
		echo "fuzz: $t: $(grep -E '^#[0-9]+' "$log" | tail -1)"
	done
	;;
run)
	t=${2:?target}
	secs=${3:-1800}
	jobs=${4:-1}
	corpus "$t" "fuzz/corpus/$t"
	# shellcheck disable=SC2046 # the option is one word, or none
	cargo +nightly fuzz run "${SAN[@]}" "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -jobs="$jobs" -workers="$jobs" \
		-rss_limit_mb=2048 -print_final_stats=1 $(dict "$t")
	;;
*)
	echo "usage: $0 list | smoke [SECONDS] | run TARGET [SECONDS] [JOBS]" >&2
	exit 2
	;;
esac
