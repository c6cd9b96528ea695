#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# The whole test suite, as CI runs it: installs what is needed and builds
# (scripts/bootstrap.sh, which also fetches the oracles: Debian's 0.9.0 and
# upstream 1.x, into the project's cache), runs `make check` (googletest
# unit tests, functional tests of the commands, kernel end-to-end tests in a
# booted kernel), the unit tests and the functional tests again in a build
# with AddressSanitizer and UBSan, then the extra stages (scripts/test-*.sh
# named in STAGES below).  Ends with the line "N passed, N failed[, N
# skipped" over all of it; exits non-zero on any failure.
#
# A test whose oracle cannot be had (no network on a first run) is skipped
# and says why; under CI=true such a skip fails the run.
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
status=0
STAGES=${THINP_TEST_STAGES-fuzz hostile packaging}

if ! scripts/bootstrap.sh; then
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

# build in parallel; run the suites one after another (each is parallel inside)
make -C build -j"$(nproc)" all tests/unit-tests >build/check.out 2>&1 || status=1
make -C build check >>build/check.out 2>&1 || status=1
for log in build/tests/unit-tests.log build/functional-tests/run-tests.log \
	   build/functional-tests/kernel/run-kernel-tests.log; do
	[ -f "$log" ] && { echo "=== $log"; cat "$log"; }
done
[ $status = 0 ] || { echo "=== make check output"; tail -n 50 build/check.out; }

# The same code under the sanitizers: library and command defects that
# only show as memory errors fail here.
if BUILD_DIR=build-san THINP_NO_ORACLES=1 scripts/bootstrap.sh --enable-sanitizers >build-san.out 2>&1; then
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	make -C build-san -j"$(nproc)" tests/unit-tests >>build-san.out 2>&1
	echo "=== sanitizers: unit tests"
	THINP_BUILD_DIR=$top/build-san build-san/tests/unit-tests >build-san/unit-tests.log 2>&1 || status=1
	tail -n 3 build-san/unit-tests.log
	echo "=== sanitizers: functional tests (check, cli, restore, repair, merge, blockdev)"
	THINP_BUILD_DIR=$top/build-san THINP_SRC_DIR=$top THINP_SANITIZED=1 \
		functional-tests/run-tests test_check test_cli test_restore test_repair test_merge test_blockdev \
		>build-san/functional.log 2>&1 || status=1
	tail -n 3 build-san/functional.log
else
	cat build-san.out
	echo "sanitizer build failed"
	status=1
fi

# Extra stages: each prints its own closing line and exits non-zero on failure.
logs=
for stage in $STAGES; do
	script=scripts/test-$stage.sh
	[ -x "$script" ] || continue
	echo "=== $stage ($script)"
	"$script" >"build/stage-$stage.log" 2>&1 || status=1
	tail -n 5 "build/stage-$stage.log"
	logs="$logs build/stage-$stage.log"
done

# Totals over every log: googletest's and the other runners' closing lines.
set -- $(for log in build/tests/unit-tests.log build/functional-tests/run-tests.log \
		build/functional-tests/kernel/run-kernel-tests.log \
		build-san/unit-tests.log build-san/functional.log $logs; do
		[ -f "$log" ] && awk '
			/^\[  PASSED  \] [0-9]+ test/ { p += $4 }
			/^\[  FAILED  \] [0-9]+ test/ { f += $4 }
			/^\[  SKIPPED \] [0-9]+ test/ { s += $4 }
			/^[0-9]+ passed, [0-9]+ failed/ { p += $1; f += $3; if ($5 != "") s += $5 }
			END { print p + 0, f + 0, s + 0 }' "$log"
	done | awk '{ p += $1; f += $2; s += $3 } END { print p + 0, f + 0, s + 0 }')
passed=$1 failed=$2 skipped=$3
# a failure no runner counted (a crash, a build step) still counts as one
[ $status != 0 ] && [ "$failed" = 0 ] && failed=1
[ "$failed" != 0 ] && status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
