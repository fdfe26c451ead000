#!/usr/bin/env bash
# Every check and test: formatting, clippy, unit tests, and the end-to-end
# tests that build network namespaces (those need root). Installs the system
# packages it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
grep -q rustfmt <<<"$(rustup component list --installed 2>/dev/null)" || rustup component add rustfmt clippy
cargo fmt --all --check
shellcheck -x scripts/*.sh .ci/run packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The size limits of the code: 120 lines a function, 900 a file.
python3 scripts/sizes.py
python3 scripts/cycles.py
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
# The forwarding suites again with the XDP fast path on in every daemon
# (on labs whose switch ports take XDP_TX): LVS semantics unchanged.
FERROVS_LAB_FAST_PATH=on cargo test --test dr --test nat --test tun --test topologies \
	--test real_software --test ipv6 2>&1 | tee -a "$log"
# One closing line for the whole run; cargo closes on its last (often empty)
# doc-test binary otherwise.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
# Every fuzz target for a bounded run from its corpus: a regression of a
# parser shows as a crash here (a longer campaign: scripts/fuzz.sh run).
scripts/fuzz.sh smoke "${FUZZ_SECONDS:-10}"
