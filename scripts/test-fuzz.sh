#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Short libFuzzer runs of every harness in fuzz/ (about 5 minutes on 2
# cores with the build: 12 harnesses, FUZZ_SECONDS each, default 40, two
# at a time).  Builds them with
# clang in $FUZZ_OUT (default fuzz-build in the source tree); skips all
# when clang or libFuzzer is missing.  Last line: N passed, N failed[, N
# skipped]; exit 1 on any crash, leak, timeout or memory blow-up (the
# inputs are kept in $FUZZ_OUT/findings-H/).
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_OUT:-$src/fuzz-build}
secs=${FUZZ_SECONDS:-40}
# ASan's quarantine (256 MiB by default) would fill the RSS limit by itself
# on the fastest harness (~60k runs/s), with no live memory behind it.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=32
export ASAN_OPTIONS
harnesses="validators btree-walk space-map xml merge repair cache-md era-md cache-xml era-xml snapshot pack"
n=$(echo $harnesses | wc -w)

if ! command -v clang >/dev/null 2>&1 ||
   ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
	echo "test-fuzz: clang or libFuzzer missing: skipped"
	echo "0 passed, 0 failed, $n skipped"
	exit 0
fi
if ! make -s -C "$src/fuzz" OUT="$out" -j2 all >"$out.build.log" 2>&1; then
	cat "$out.build.log"
	echo "0 passed, $n failed"
	exit 1
fi

run() {
	h=$1
	mkdir -p "$out/corpus-$h" "$out/findings-$h"
	if "$out/fuzz-$h" -timeout=10 -rss_limit_mb=512 -malloc_limit_mb=256 -close_fd_mask=3 \
	    -max_total_time="$secs" -artifact_prefix="$out/findings-$h/" \
	    "$out/corpus-$h" "$src/fuzz/corpus/$h" >"$out/fuzz-$h.log" 2>&1; then
		echo "PASS $h: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$out/fuzz-$h.log")"
	else
		echo "FAIL $h: see $out/fuzz-$h.log and $out/findings-$h/"
		grep -E 'ERROR|SUMMARY|abort|rejects' "$out/fuzz-$h.log" | head -5
	fi
}

results=$(mktemp)
trap 'rm -f "$results"' EXIT
set -- $harnesses
while [ $# -gt 0 ]; do
	run "$1" >>"$results" &
	if [ $# -gt 1 ]; then
		run "$2" >>"$results" &
		shift
	fi
	shift
	wait
done
cat "$results"
pass=$(grep -c '^PASS' "$results")
fail=$(grep -c '^FAIL' "$results")
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
