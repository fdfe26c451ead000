#!/usr/bin/env bash
# Every check and test: formatting, clippy, unit tests, and the end-to-end
# tests that build network namespaces (those need root). Installs the system
# packages it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
