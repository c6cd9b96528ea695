#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# A short hostile-input campaign (scripts/hostile-campaign.py) on the
# normal build in $THINP_BUILD_DIR (default build/ in the source tree):
# HOSTILE_N mutated thin, cache and era images (default 300, a fixed
# seed), every reader on each with a 5 s and 64 MB limit.  About 1-2
# minutes on 2 cores.  Failing inputs go to $HOSTILE_KEEP (default
# hostile-findings/).  Last line: N passed, N failed; exit 1 on a failure.
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
build=${THINP_BUILD_DIR:-$src/build}
if [ ! -x "$build/thin_check" ] || [ ! -x "$build/cache_restore" ]; then
	echo "test-hostile: no build in $build"
	echo "0 passed, 1 failed"
	exit 1
fi
exec python3 "$src/scripts/hostile-campaign.py" "$build" -n "${HOSTILE_N:-300}" \
	--seed "${HOSTILE_SEED:-1}" --keep "${HOSTILE_KEEP:-$src/hostile-findings}"
