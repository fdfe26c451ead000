#!/usr/bin/env bash
# Build the Debian package of ferrovs with dpkg-deb (Debian's own tool, no
# extra builder): the binary, ipvsadm's names as an alternative, the systemd
# units, /etc/ferrovs/ferrovs.toml as a conffile, the real-server script,
# man pages and completions generated from the binary's own options, the
# docs, and the Prometheus alert rules and Grafana dashboard.
#   scripts/package.sh                  release build, then the package
#   FERROVS_BIN=PATH scripts/package.sh package that binary instead
# Prints the path of the .deb; runs lintian when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${FERROVS_BIN:-}
if [ -z "$bin" ]; then
	cargo build --release --quiet
	bin=target/release/ferrovs
fi
version=$(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)-1
arch=$(dpkg --print-architecture)
out=target/deb
root=$out/ferrovs_${version}_$arch
rm -rf "$root"
mkdir -p "$root/DEBIAN"

install -D -m 0755 "$bin" "$root/usr/sbin/ferrovs"
strip --remove-section=.comment -o "$root/usr/sbin/ferrovs" "$bin"
# ipvsadm's names: links the alternative points at (argv[0] picks the tool).
for tool in ipvsadm ipvsadm-save ipvsadm-restore; do
	mkdir -p "$root/usr/lib/ferrovs"
	ln -s ../../sbin/ferrovs "$root/usr/lib/ferrovs/$tool"
done
# The real-server script beside the library it sources (run it on the real
# servers: /usr/lib/ferrovs/realserver.sh dr|tun VIP...).
install -D -m 0755 scripts/realserver.sh "$root/usr/lib/ferrovs/realserver.sh"
install -D -m 0644 scripts/lib.sh "$root/usr/lib/ferrovs/lib.sh"
# Units: the daemon's from the installed path, and ipvsadm's service.
mkdir -p "$root/lib/systemd/system"
# The package has the man pages the unit's Documentation= names (a unit
# installed by hand from scripts/ has none).
sed -e 's|/usr/local/sbin/ferrovs|/usr/sbin/ferrovs|g' -e '/Install:$/,/^#   systemctl/d' \
	-e '/^Description=/a Documentation=man:ferrovs-daemon(8) man:ferrovs.toml(5) man:ferrovs(8)' \
	scripts/ferrovs.service >"$root/lib/systemd/system/ferrovs.service"
install -m 0644 packaging/ferrovs-ipvsadm.service "$root/lib/systemd/system/"
chmod 0644 "$root/lib/systemd/system/ferrovs.service"
install -D -m 0644 scripts/ferrovs.toml "$root/etc/ferrovs/ferrovs.toml"
# Man pages and completions from the binary's own options.
man=$(mktemp -d)
trap 'rm -rf "$man"' EXIT
"$bin" generate man "$man"
install -D -m 0644 "$man/ferrovs.8" "$root/usr/share/man/man8/ferrovs.8"
for page in ferrovs-daemon ferrovs-check ferrovs-doctor; do
	install -D -m 0644 "$man/$page.8" "$root/usr/share/man/man8/$page.8"
done
install -D -m 0644 "$man/ferrovs.toml.5" "$root/usr/share/man/man5/ferrovs.toml.5"
gzip -9n "$root"/usr/share/man/man*/*
mkdir -p "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions"
"$bin" generate completion bash >"$root/usr/share/bash-completion/completions/ferrovs"
"$bin" generate completion zsh >"$root/usr/share/zsh/vendor-completions/_ferrovs"
# Documentation Debian wants, and ours: the README and docs/.
install -D -m 0644 packaging/debian/copyright "$root/usr/share/doc/ferrovs/copyright"
install -m 0644 README.md "$root/usr/share/doc/ferrovs/"
gzip -9n <CHANGELOG.md >"$root/usr/share/doc/ferrovs/changelog.gz"
install -D -m 0644 -t "$root/usr/share/doc/ferrovs/docs" docs/*.md
# Prometheus alert rules and the Grafana dashboard (checked against a live
# scrape by tests/monitoring.rs).
install -D -m 0644 -t "$root/usr/share/ferrovs/monitoring" packaging/monitoring/ferrovs-alerts.yml \
	packaging/monitoring/ferrovs-dashboard.json
printf 'ferrovs (%s) unstable; urgency=medium\n\n  * Package built by scripts/package.sh.\n\n -- ferrovs developers <ferrovs@lists.ferrovs.org>  %s\n' \
	"$version" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" |
	gzip -9n >"$root/usr/share/doc/ferrovs/changelog.Debian.gz"
install -D -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/ferrovs"
# Control files.
for f in postinst prerm postrm; do
	install -m 0755 "packaging/debian/$f" "$root/DEBIAN/$f"
done
install -m 0644 packaging/debian/conffiles "$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	packaging/debian/control.in >"$root/DEBIAN/control"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"
deb=$out/ferrovs_${version}_$arch.deb
dpkg-deb --build --root-owner-group "$root" "$deb" >/dev/null
if command -v lintian >/dev/null; then
	lintian --fail-on error "$deb" >&2
fi
echo "$deb"
