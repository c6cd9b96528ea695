#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Installs what the build and the tests need (Debian 12, as root), then
# configures and builds in BUILD_DIR (default: build/).  Extra arguments
# go to ./configure.  Safe to run again: it only does what is missing.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	missing=
	for p in $(cat scripts/debian-packages.txt); do
		dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "bootstrap: installing$missing"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
	fi
fi

# The oracles of the tests: Debian's 0.9.0 and upstream 1.x, unpacked into
# the project's cache (never installed).  Without them, the tests that
# compare with them are skipped, each saying why (and CI=true fails).
if [ -z "${THINP_NO_ORACLES:-}" ]; then
	scripts/fetch-oracles.sh -q ||
		echo "bootstrap: the oracles cannot be had now; the tests that need them will be skipped"
fi

[ -x configure ] || autoreconf -fi
build=${BUILD_DIR:-build}
mkdir -p "$build"
cd "$build"
[ -f Makefile ] || ../configure -q "$@"
make -j"$(nproc)" >make.out 2>&1 || { cat make.out; exit 1; }
echo "bootstrap: built in $(pwd)"
