#!/bin/bash
# fetch-kernel.sh SUITE: prints the path of the cached vmlinuz of Debian's
# stock amd64 kernel for SUITE (bullseye, bookworm, trixie, sid, ...),
# downloading it first if it is not cached yet. See vmtest/README.md.
#
# The package is found and fetched through a private apt configuration under
# $VMTEST_CACHE/apt/SUITE (its own sources.list, lists, package cache and an
# empty dpkg status), so the system's apt configuration and state are never
# changed, and the kernel is never installed: apt-get download fetches the
# .deb and dpkg-deb extracts /boot/vmlinuz-* and /boot/config-* from it.
#
# Environment:
#   VMTEST_CACHE            cache root (default ~/.cache/memlock-exporter/vmtest)
#   VMTEST_REFRESH=1        resolve the newest kernel again even if one is cached
#   VMTEST_MIRROR           Debian mirror (default: the one in /etc/apt/sources.list*)
#   VMTEST_SECURITY_MIRROR  Debian security mirror (same)
#
# Progress goes to stderr; stdout carries only the path.

set -euo pipefail

suite=${1:?usage: fetch-kernel.sh SUITE}
cache=${VMTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memlock-exporter/vmtest}
kdir=$cache/kernels/$suite
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

log() { echo "vmtest: $suite: $*" >&2; }

cached() {
	local f
	for f in "$kdir"/vmlinuz-*; do
		[ -f "$f" ] && { echo "$f"; return 0; }
	done
	return 1
}

if [ "${VMTEST_REFRESH:-0}" != 1 ] && path=$(cached); then
	log "using cached $path ($(cat "$kdir"/package 2>/dev/null || echo 'package unknown'); VMTEST_REFRESH=1 looks for a newer one)"
	echo "$path"
	exit 0
fi

# The mirrors the host already uses: URIs of deb822 .sources files and of
# one-line .list entries (disabled or commented entries are not read).
host_uris() {
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -n -E 's/^URIs:[[:space:]]*//p; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' |
		tr -s ' \t' '\n\n'
}
mirror=${VMTEST_MIRROR:-$(host_uris | grep -E '/debian/?$' | head -n1 || true)}
security=${VMTEST_SECURITY_MIRROR:-$(host_uris | grep -E '/debian-security/?$' | head -n1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}

apt_dir=$cache/apt/$suite
mkdir -p "$apt_dir"/lists/partial "$apt_dir"/cache/archives/partial "$apt_dir"/sources.list.d \
	"$apt_dir"/preferences.d "$kdir"
: >"$apt_dir"/status
{
	echo "# written by vmtest/fetch-kernel.sh: Debian $suite, to download its kernel only"
	case $suite in
	sid | unstable | experimental)
		echo "deb [signed-by=$keyring] $mirror $suite main" ;;
	*)
		echo "deb [signed-by=$keyring] $mirror $suite main"
		echo "deb [signed-by=$keyring] $mirror $suite-updates main"
		echo "deb [signed-by=$keyring] $security $suite-security main" ;;
	esac
} >"$apt_dir"/sources.list
# Read by apt after its own defaults and before /etc/apt/apt.conf.d (whose
# proxy settings, if any, therefore still apply).
cat >"$apt_dir"/apt.conf <<EOF
Dir::Etc::SourceList "$apt_dir/sources.list";
Dir::Etc::SourceParts "$apt_dir/sources.list.d";
Dir::Etc::Preferences "$apt_dir/preferences";
Dir::Etc::PreferencesParts "$apt_dir/preferences.d";
Dir::State::Lists "$apt_dir/lists";
Dir::State::status "$apt_dir/status";
Dir::Cache "$apt_dir/cache";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
Acquire::Languages "none";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled "false";
Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";
// Mirrors may serve snapshots whose Release files have expired;
// signatures are still checked.
Acquire::Check-Valid-Until "false";
// A dropped connection is tried again rather than failing the kernel.
Acquire::Retries "3";
// The private directories belong to root, not to _apt.
APT::Sandbox::User "root";
EOF
export APT_CONFIG=$apt_dir/apt.conf

log "apt-get update ($(grep -c '^deb ' "$apt_dir"/sources.list) suites from $mirror, $security)"
if ! out=$(apt-get update -q 2>&1); then
	echo "$out" >&2
	log "apt-get update failed"
	exit 1
fi
if grep -E '^(W|E):' <<<"$out" >&2; then :; fi

# linux-image-amd64 is the metapackage; it depends on the concrete image,
# e.g. linux-image-6.1.0-41-amd64 or linux-image-6.12.57+deb13-amd64.
pkg=$(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
	--no-replaces --no-enhances linux-image-amd64 |
	sed -n -E 's/^[[:space:]]*\|?Depends:[[:space:]]*(linux-image-[^[:space:]<>]+-amd64)$/\1/p' | head -n1)
if [ -z "$pkg" ]; then
	apt-cache policy linux-image-amd64 >&2 || true
	log "cannot resolve linux-image-amd64 to a kernel image package"
	exit 1
fi
version=$(apt-cache show --no-all-versions "$pkg" | sed -n 's/^Version: //p' | head -n1)
from=$(apt-cache policy "$pkg" | awk -v v="$version" '$1 == v && NF == 2 { getline; print $3; exit }')

if [ "${VMTEST_REFRESH:-0}" = 1 ] && path=$(cached) && grep -qxF "$pkg $version" "$kdir"/package 2>/dev/null; then
	log "$pkg $version is already cached"
	echo "$path"
	exit 0
fi

# Up to trixie the image package holds /boot/vmlinuz-<release> (and the
# modules); since 2026 sid splits it: linux-image-<release> only depends on
# linux-binary-<release> (/usr/lib/modules/<release>/vmlinuz) and
# linux-base-<release> (.../config). Fetch those parts when they exist.
parts=$(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
	--no-replaces --no-enhances "$pkg" |
	sed -n -E 's/^[[:space:]]*\|?Depends:[[:space:]]*(linux-(binary|base)-[^[:space:]<>]+)$/\1/p')
if [ -n "$parts" ]; then
	# shellcheck disable=SC2086 # one package name per word
	get=$(echo $parts)
else
	get="$pkg=$version"
fi

tmp=$(mktemp -d "$cache/download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "apt-get download $get${from:+ (image from $from)}"
# shellcheck disable=SC2086
(cd "$tmp" && apt-get download -q $get >&2)
mkdir "$tmp"/x
for deb in "$tmp"/*.deb; do
	# Not every package has every member: tar's complaint is expected,
	# the check for vmlinuz below is what counts.
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp"/x --wildcards \
		'./boot/vmlinuz-*' './boot/config-*' './usr/lib/modules/*/vmlinuz' './usr/lib/modules/*/config' \
		2>/dev/null || true
done
for f in "$tmp"/x/usr/lib/modules/*/vmlinuz "$tmp"/x/usr/lib/modules/*/config; do
	[ -f "$f" ] || continue
	mkdir -p "$tmp"/x/boot
	mv "$f" "$tmp/x/boot/$(basename "$f")-$(basename "$(dirname "$f")")"
done
vmlinuz=$(ls "$tmp"/x/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
if [ -z "$vmlinuz" ]; then
	log "no vmlinuz in $(cd "$tmp" && echo *.deb)"
	exit 1
fi
release=${vmlinuz##*/vmlinuz-}
rm -f "$kdir"/vmlinuz-* "$kdir"/config-* "$kdir"/package
mv "$vmlinuz" "$kdir/vmlinuz-$release"
if [ -f "$tmp/x/boot/config-$release" ]; then mv "$tmp/x/boot/config-$release" "$kdir/"; fi
echo "$pkg $version" >"$kdir"/package
log "cached vmlinuz-$release ($pkg $version; downloaded $(du -ch "$tmp"/*.deb | tail -n1 | cut -f1), vmlinuz $(du -h "$kdir/vmlinuz-$release" | cut -f1))"
echo "$kdir/vmlinuz-$release"
