#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Fetches the reference tools the tests compare ours with, and unpacks them
# into a cache of the project's own; nothing is installed.
#
#   scripts/fetch-oracles.sh [-q]
#
#   $THINP_ORACLE_DIR (default /var/cache/thinp-tools/oracles)
#     0.9/usr/sbin/pdata_tools   Debian 12's thin-provisioning-tools 0.9.0
#     1x/usr/sbin/pdata_tools    Debian 13's thin-provisioning-tools 1.x
#     apt/                       a private apt configuration and its lists
#     REASON                     why an oracle could not be had (when so)
#
# The packages come from the Debian mirror this machine's own apt sources
# name (no host is written here), through a private apt configuration that
# adds the bookworm and trixie suites; the machine's apt state is not
# touched.  apt checks the signed Release files; each .deb is checked again
# against the SHA256 of its Packages record before it is unpacked.  An
# unpacked oracle is kept and reused: later runs need no network.
#
# Exit 0 when both oracles are there; 1 otherwise, with the reason on
# stderr and in REASON (the tests then skip what needs them, saying so).
set -eu

quiet=
[ "${1:-}" = -q ] && quiet=1
say() { [ -n "$quiet" ] || echo "fetch-oracles: $*"; }

dir=${THINP_ORACLE_DIR:-/var/cache/thinp-tools/oracles}
pkg=thin-provisioning-tools
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# name suite version-pattern
oracles='0.9 bookworm 0.9.*
1x trixie 1.*'

have() {	# name pattern: the unpacked oracle is there and answers -V
	[ -f "$dir/$1/.verified" ] && [ -x "$dir/$1/usr/sbin/pdata_tools" ] &&
		case $("$dir/$1/usr/sbin/pdata_tools" thin_check -V 2>/dev/null) in
		$2) true ;;
		*) false ;;
		esac
}

fail() {
	echo "fetch-oracles: $*" >&2
	echo "$*" >"$dir/REASON"
	exit 1
}

all_there() {
	echo "$oracles" | while read -r name suite pattern; do
		have "$name" "$pattern" || exit 1
	done
}

# One run at a time per cache.
exec 9>"$dir/.lock"
flock 9

if all_there; then
	rm -f "$dir/REASON"
	say "oracles present in $dir"
	exit 0
fi

# ---------------------------------------------------------------------
# The Debian mirror of this machine's own apt sources (deb822 or one-line)
mirror() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && suites ~ /(^| )(bookworm|trixie|stable)( |$)/ && uri != "")
					{ print uri; found = 1; exit }
				types = suites = uri = ""
			}
			/^[ \t]*$/ { flush(); next }
			/^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
			/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
			/^URIs:/ { sub(/^URIs:[ \t]*/, ""); split($0, u, /[ \t]+/); uri = u[1] }
			END { if (!found) flush() }
		' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		sed -e 's/\[[^]]*\]//' "$f" |
			awk '$1 == "deb" && $3 ~ /^(bookworm|trixie|stable)$/ { print $2 }'
	done
}
uri=$(mirror | grep -v -- '-security' | head -n 1)
[ -n "$uri" ] || fail "no Debian mirror in this machine's apt sources"
[ -r "$keyring" ] || fail "no $keyring (package debian-archive-keyring)"
command -v apt-get >/dev/null 2>&1 || fail "no apt-get on this machine"

apt=$dir/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
{
	echo "deb [signed-by=$keyring] $uri bookworm main"
	echo "deb [signed-by=$keyring] $uri trixie main"
} >"$apt/sources.list"
set -- -o "Dir::Etc::SourceList=$apt/sources.list" \
	-o "Dir::Etc::SourceParts=$apt/none" \
	-o "Dir::State::Lists=$apt/lists" \
	-o "Dir::Cache=$apt/cache" \
	-o "Dir::State::status=$apt/status" \
	-o "APT::Sandbox::User=root" \
	-o "Acquire::Retries=2" -o "Acquire::http::Timeout=30"
: >"$apt/status"

say "updating the private package lists (bookworm, trixie) in $apt"
apt-get "$@" -q update >"$apt/update.log" 2>&1 ||
	fail "the package lists cannot be had (apt-get update: $(grep -E '^(E|W):' "$apt/update.log" | head -n 1))"

echo "$oracles" | while read -r name suite pattern; do
	have "$name" "$pattern" && continue
	record=$(apt-cache "$@" show "$pkg/$suite" 2>/dev/null | awk '/^$/ { exit } { print }')
	version=$(echo "$record" | sed -n 's/^Version: //p')
	sha=$(echo "$record" | sed -n 's/^SHA256: //p')
	file=$(echo "$record" | sed -n 's/^Filename: //p')
	[ -n "$version" ] && [ -n "$sha" ] && [ -n "$file" ] ||
		fail "no $pkg in $suite's package index$(grep -E '^(E|W):' "$apt/update.log" |
			head -n 1 | sed 's/^/ (apt-get update: /; s/$/)/')"
	deb=$apt/debs/$(basename "$file")
	if ! echo "$sha  $deb" | sha256sum -c --status 2>/dev/null; then
		say "downloading $pkg $version ($suite)"
		rm -f "$deb"
		(cd "$apt/debs" && apt-get "$@" -q download "$pkg/$suite" >"$apt/download.log" 2>&1) ||
			fail "$pkg $version cannot be downloaded (apt-get download: $(grep -E '^(E|W):' "$apt/download.log" | head -n 1))"
		echo "$sha  $deb" | sha256sum -c --status ||
			fail "$(basename "$deb") does not match the SHA256 of its Packages record"
	fi
	rm -rf "$dir/$name.new"
	dpkg-deb -x "$deb" "$dir/$name.new" || fail "cannot unpack $deb"
	echo "$version $sha" >"$dir/$name.new/.verified"
	rm -rf "$dir/$name"
	mv "$dir/$name.new" "$dir/$name"
	have "$name" "$pattern" ||
		fail "$pkg $version from $suite does not run here ($dir/$name/usr/sbin/pdata_tools)"
	say "$name: $pkg $version in $dir/$name"
done
all_there || exit 1
rm -f "$dir/REASON"
say "oracles present in $dir"
