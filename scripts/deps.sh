#!/usr/bin/env bash
# Install the system packages ferrovs needs to build, run its lab and test:
#   clang + libbpf-dev      compile the XDP steering program (build.rs)
#   gcc make m4 pkg-config libelf-dev zlib1g-dev
#                           build the libxdp/libbpf that xsk-rs vendors
#   iproute2 ethtool curl python3 iputils-ping procps
#                           the netns lab: veths, HTTP servers, clients
#   nftables conntrack      the kernel-path baseline of the benchmark runner
#                           (conntrack empties its table between trials)
#   nginx-light wrk iperf3 socat tcpdump
#                           real servers and clients of the end-to-end tests
#   keepalived              the peer director of the VRRP interop tests (run
#                           VRRP-only in their namespaces, never as a service)
#   openssl dnsmasq-base    the checker tests' HTTPS server certificate and
#                           DNS server (SMTP is Python's smtpd)
#   lintian man-db          check the Debian package scripts/package.sh
#                           builds, render its man pages
#   prometheus              promtool: check the shipped alert rules and a
#                           live scrape (never started as a service)
#   systemd util-linux shellcheck
#                           check the service unit (systemd-analyze), run
#                           the daemon with its capabilities (setpriv), lint
#                           the scripts
# Debian/Ubuntu (apt). Installs only what is missing; needs root for that.
set -euo pipefail

PKGS=(clang gcc make m4 pkg-config libelf-dev zlib1g-dev libbpf-dev
	iproute2 ethtool curl python3 iputils-ping procps nftables conntrack systemd util-linux shellcheck
	nginx-light wrk iperf3 socat tcpdump keepalived openssl dnsmasq-base
	lintian man-db prometheus)

missing=()
for p in "${PKGS[@]}"; do
	grep -q "install ok installed" <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	SUDO=()
	[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
	export DEBIAN_FRONTEND=noninteractive
	"${SUDO[@]}" apt-get update -qq
	# Packages with a service (nginx) must not start it on the host: the
	# tests run their own instances inside their namespaces.
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
		"${SUDO[@]}" chmod +x "$policy"
		trap '"${SUDO[@]}" rm -f "$policy"' EXIT
	fi
	"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
	echo "deps: cargo not found: install a Rust toolchain (rustup) first" >&2
	exit 1
fi
# The fuzz targets (scripts/fuzz.sh) run cargo-fuzz on the nightly toolchain.
if grep -q nightly <<<"$(rustup toolchain list 2>/dev/null)" && ! cargo +nightly fuzz --version >/dev/null 2>&1; then
	echo "deps: installing cargo-fuzz"
	cargo install cargo-fuzz --locked --quiet
fi
