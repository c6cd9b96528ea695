#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Benchmark of the cache and era tools against upstream 1.x: a cache of
# 1M blocks (every block mapped, with hints, 30% dirty, format 2) and an
# era target of 16M blocks (with one archived writeset in the small
# variant only: 0.9's writeset XML lists every bit).  restore, check and
# dump, each tool timed BENCH_RUNS times (median), peak RSS from
# /usr/bin/time.  Not a test: MISS does not fail; exit 1 only when a tool
# fails or our dump differs from the input.
#
#   bench/cache-era-bench.sh BUILD_DIR [small|full]
#
# small: cache 256K blocks, era 1M blocks.  Environment: BENCH_DIR
# (/var/tmp/thinp-bench), BENCH_RUNS (3), BENCH_TARGET (0.5, ours/1.x
# time), BENCH_RSS_MB (32), PYTHON3.
set -u
BUILD=${1:?usage: cache-era-bench.sh BUILD_DIR [small|full]}
SIZE=${2:-full}
SRC=$(cd "$(dirname "$0")/.." && pwd)
ONEX=${ONEX_PDATA_TOOLS:-${THINP_ORACLE_DIR:-/var/cache/thinp-tools/oracles}/1x/usr/sbin/pdata_tools}
DIR=${BENCH_DIR:-/var/tmp/thinp-bench}/cache-era
RUNS=${BENCH_RUNS:-3}
TARGET=${BENCH_TARGET:-0.5}
RSS_MB=${BENCH_RSS_MB:-32}
PY=${PYTHON3:-python3}
mkdir -p "$DIR"
fail=0

if [ "$SIZE" = small ]; then CB=262144; EB=1048576; else CB=1048576; EB=16777216; fi

gen() {
	local kind=$1 n=$2 out=$3
	[ -s "$out" ] && return
	"$PY" - "$kind" "$n" "$out" <<'PYEOF'
import base64, random, sys
kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(1)
with open(out + '.tmp', 'w') as f:
    if kind == 'cache':
        f.write('<superblock uuid="" block_size="128" nr_cache_blocks="%d" policy="smq" hint_width="4">\n  <mappings>\n' % n)
        obs = rng.sample(range(4 * n), n)
        for cb in range(n):
            f.write('    <mapping cache_block="%d" origin_block="%d" dirty="%s"/>\n'
                    % (cb, obs[cb], 'true' if rng.random() < 0.3 else 'false'))
        f.write('  </mappings>\n  <hints>\n')
        for cb in range(n):
            f.write('    <hint cache_block="%d" data="%s"/>\n'
                    % (cb, base64.b64encode(rng.getrandbits(32).to_bytes(4, 'little')).decode()))
        f.write('  </hints>\n</superblock>\n')
    else:
        f.write('<superblock uuid="" block_size="128" nr_blocks="%d" current_era="100">\n' % n)
        if n <= 1 << 20:
            f.write('  <writeset era="99" nr_bits="%d">\n' % n)
            for b in range(n):
                f.write('    <bit block="%d" value="%s"/>\n' % (b, 'true' if rng.random() < 0.05 else 'false'))
            f.write('  </writeset>\n')
        f.write('  <era_array>\n')
        for b in range(n):
            f.write('    <era block="%d" era="%d"/>\n' % (b, rng.randrange(99)))
        f.write('  </era_array>\n</superblock>\n')
import os
os.rename(out + '.tmp', out)
PYEOF
}

# time_it OUTFILE CMD...: median seconds and max RSS (KiB) of RUNS runs
time_it() {
	local out=$1; shift
	local ts=() rss=0 i
	for ((i = 0; i < RUNS; i++)); do
		/usr/bin/time -f '%e %M' -o "$DIR/time" "$@" > "$out" 2>"$DIR/stderr" || { echo "FAILED: $* ($(head -c 300 "$DIR/stderr"))"; fail=1; }
		read -r t m < <(tail -1 "$DIR/time")
		ts+=("$t"); [ "$m" -gt "$rss" ] && rss=$m
	done
	printf '%s %s\n' "$(printf '%s\n' "${ts[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")" "$rss"
}

row() {	# name ours_t ours_rss onex_t
	local verdict ratio
	if [ -n "$4" ]; then
		ratio=$(awk -v a="$2" -v b="$4" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
		verdict=$(awk -v r="$ratio" -v t="$TARGET" -v m="$3" -v l="$RSS_MB" 'BEGIN { print (r <= t && m < l * 1024) ? "ok" : "MISS" }')
	else
		ratio=-; verdict=$(awk -v m="$3" -v l="$RSS_MB" 'BEGIN { print (m < l * 1024) ? "ok (no 1.x)" : "MISS" }')
	fi
	printf '%-22s %8s s %8s MiB %8s s %6s  %s\n' "$1" "$2" "$(($3 / 1024))" "${4:--}" "$ratio" "$verdict"
}

printf '%-22s %10s %12s %10s %6s\n' benchmark ours "peak RSS" 1.x ratio
for kind in cache era; do
	if [ $kind = cache ]; then n=$CB; else n=$EB; fi
	xml="$DIR/$kind-$n.xml"
	gen $kind $n "$xml"
	for who in ours onex; do
		truncate -s 0 "$DIR/$who.meta"; truncate -s 1G "$DIR/$who.meta"
	done
	read -r ot om < <(time_it /dev/null "$BUILD/${kind}_restore" -i "$xml" -o "$DIR/ours.meta")
	read -r xt xm < <(time_it /dev/null "$ONEX" ${kind}_restore -i "$xml" -o "$DIR/onex.meta")
	row "${kind}_restore $n" "$ot" "$om" "$xt"
	read -r ot om < <(time_it /dev/null "$BUILD/${kind}_check" "$DIR/ours.meta")
	read -r xt xm < <(time_it /dev/null "$ONEX" ${kind}_check "$DIR/onex.meta")
	row "${kind}_check $n" "$ot" "$om" "$xt"
	read -r ot om < <(time_it "$DIR/dump.xml" "$BUILD/${kind}_dump" "$DIR/ours.meta")
	cmp -s "$DIR/dump.xml" "$xml" || { echo "our ${kind}_dump differs from the input"; fail=1; }
	if [ $kind = cache ]; then
		read -r xt xm < <(time_it /dev/null "$ONEX" ${kind}_dump "$DIR/onex.meta")
	else
		xt=	# 1.x's era_dump refuses metadata without a current writeset
	fi
	row "${kind}_dump $n" "$ot" "$om" "$xt"
done
rm -f "$DIR/ours.meta" "$DIR/onex.meta" "$DIR/dump.xml"
exit $fail
