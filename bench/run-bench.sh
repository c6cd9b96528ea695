#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Benchmarks of our commands against thin-provisioning-tools 0.9.0 (Debian,
# /usr/sbin) and 1.x (/opt/thinp-1x).  Not a test: `make check` never runs it.
#
#   bench/run-bench.sh BUILD_DIR [small|full] [BENCH...]
#
# BUILD_DIR holds our pdata_tools and its command symlinks.  small = a pool
# of 1M origin mappings, full = 16M (the default; 1 TiB at 64 KiB blocks).
# BENCH: any of dump check restore merge (default: all of them).  See
# bench/README.md for what is measured and how to read the output.
#
# Environment:
#   BENCH_DIR        cache of generated pools and last-results.txt
#                    (default /var/tmp/thinp-bench)
#   BENCH_TMP        scratch for the outputs of the tools, ideally a tmpfs
#                    (default /dev/shm, else $BENCH_DIR/tmp)
#   BENCH_RUNS       timed runs per tool, median reported (default 3)
#   BENCH_CACHE      auto | cold | warm: drop the page cache before every
#                    run (cold) or do one untimed warm-up run (warm); auto
#                    = cold if /proc/sys/vm/drop_caches is writable
#   BENCH_RESTORER   auto | ours | debian: what writes the cached metadata
#                    (auto: ours if BUILD_DIR has thin_restore)
#   BENCH_SNAP_PERCENT, BENCH_OTHER_DEVICES, BENCH_SEED: pool parameters
#                    (default 1, 0, 1)
#   BENCH_TARGET     highest acceptable ours/1.x time ratio (default 0.8)
#   PYTHON3          interpreter for gen-pool.py (default python3)

set -u
export LC_ALL=C

usage() {
	cat <<EOF
Usage: $0 BUILD_DIR [small|full] [BENCH...]
  BENCH: ${ALL_BENCHES}  (default: all)
EOF
}

die() {
	echo "run-bench.sh: $*" >&2
	exit 1
}

ALL_BENCHES="dump check restore merge"
HERE=$(cd "$(dirname "$0")" && pwd)
GEN_POOL="$HERE/gen-pool.py"
PYTHON3=${PYTHON3:-python3}
GNU_TIME=/usr/bin/time
DEBIAN_SBIN=/usr/sbin
ONEX=/opt/thinp-1x/usr/sbin/pdata_tools
BENCH_DIR=${BENCH_DIR:-/var/tmp/thinp-bench}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_CACHE=${BENCH_CACHE:-auto}
BENCH_RESTORER=${BENCH_RESTORER:-auto}
BENCH_TARGET=${BENCH_TARGET:-0.8}
SNAP_PERCENT=${BENCH_SNAP_PERCENT:-1}
OTHER_DEVICES=${BENCH_OTHER_DEVICES:-0}
SEED=${BENCH_SEED:-1}
METADATA_SIZE=2G     # sparse; 16M mappings take about 550 MiB

# ----------------------------------------------------------------
# Arguments

[ $# -ge 1 ] || { usage >&2; exit 1; }
case "$1" in -h|--help) usage; exit 0 ;; esac
[ -d "$1" ] || die "build dir '$1' not found"
BUILD=$(cd "$1" && pwd)
shift
SIZE=full
BENCHES=""
for arg in "$@"; do
	case "$arg" in
	small|full) SIZE=$arg ;;
	*)
		case " $ALL_BENCHES " in
		*" $arg "*) BENCHES="$BENCHES $arg" ;;
		*) usage >&2; die "unknown benchmark or size '$arg'" ;;
		esac
		;;
	esac
done
BENCHES=${BENCHES:-$ALL_BENCHES}
case "$SIZE" in
small) MAPPINGS=1048576 ;;
full) MAPPINGS=16777216 ;;
esac
case "$BENCH_RUNS" in
''|*[!0-9]*|0) die "BENCH_RUNS must be a positive number" ;;
esac

[ -x "$BUILD/thin_dump" ] || die "$BUILD/thin_dump not found (not built?)"
[ -x "$GNU_TIME" ] || die "GNU time ($GNU_TIME) is needed"
for t in thin_dump thin_check thin_restore; do
	[ -x "$DEBIAN_SBIN/$t" ] || die "$DEBIAN_SBIN/$t (Debian 0.9.0) not found"
done
[ -x "$ONEX" ] || die "$ONEX (thinp 1.x) not found"

mkdir -p "$BENCH_DIR" || die "cannot create $BENCH_DIR"
# One benchmark at a time: two would skew each other's times.
exec 9>"$BENCH_DIR/.lock"
flock -n 9 || { echo "run-bench.sh: waiting for another run to finish" >&2; flock 9; }

if [ -z "${BENCH_TMP:-}" ]; then
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		BENCH_TMP=/dev/shm
	else
		BENCH_TMP=$BENCH_DIR/tmp
	fi
fi
mkdir -p "$BENCH_TMP" || die "cannot create $BENCH_TMP"
SCRATCH=$(mktemp -d "$BENCH_TMP/thinp-bench.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$SCRATCH"' EXIT
trap 'exit 130' INT TERM

RESULTS=$BENCH_DIR/last-results.txt
RESULTS_NEW=$SCRATCH/results.txt
PROBLEMS=()

# ----------------------------------------------------------------
# Page cache

drop_caches() {
	sync
	echo 3 2>/dev/null >/proc/sys/vm/drop_caches
}

CACHE_NOTE=""
case "$BENCH_CACHE" in
auto)
	if drop_caches; then
		CACHE_MODE=cold
	else
		CACHE_MODE=warm
		CACHE_NOTE="cannot drop the page cache: "
	fi ;;
cold)
	drop_caches || die "BENCH_CACHE=cold but the page cache cannot be dropped"
	CACHE_MODE=cold ;;
warm) CACHE_MODE=warm ;;
*) die "BENCH_CACHE must be auto, cold or warm" ;;
esac

# ----------------------------------------------------------------
# The pool, cached under $BENCH_DIR keyed by its parameters

choose_restorer() {
	case "$BENCH_RESTORER" in
	auto) if [ -x "$BUILD/thin_restore" ]; then echo ours; else echo debian; fi ;;
	ours)
		[ -x "$BUILD/thin_restore" ] || die "BENCH_RESTORER=ours but $BUILD/thin_restore is missing"
		echo ours ;;
	debian) echo debian ;;
	*) die "BENCH_RESTORER must be auto, ours or debian" ;;
	esac
}

# The XML and its JSON summary depend on the pool parameters and on
# gen-pool.py's POOL_FORMAT; the metadata also on the restorer (ours packs leaves
# differently from 0.9.0), so each restorer has its own image.
pool_dir() {
	local format
	format=$(sed -n 's/^POOL_FORMAT = \([0-9]*\)$/\1/p' "$GEN_POOL")
	[ -n "$format" ] || die "no POOL_FORMAT in $GEN_POOL"
	echo "$BENCH_DIR/pool-m$MAPPINGS-p$SNAP_PERCENT-o$OTHER_DEVICES-s$SEED-f$format"
}

# make_pool RESTORER: sets POOL (directory with pool.xml, pool.json) and
# META (the restored metadata, verified by 0.9.0's thin_check); returns 1
# if the restorer fails or its metadata fails the check.
make_pool() {
	local restorer=$1 dir t0 secs restore_cmd meta
	dir=$(pool_dir)
	POOL=$dir
	meta=$dir/meta-$restorer.bin
	META=$meta
	[ -f "$dir/ok-$restorer" ] && [ -f "$meta" ] && return 0
	mkdir -p "$dir" || die "cannot create $dir"
	rm -f "$dir/ok-$restorer" "$meta"

	if ! [ -s "$dir/pool.xml" ] || ! [ -s "$dir/pool.json" ]; then
		echo "-- generating the pool XML ($MAPPINGS origin mappings, snapshot $SNAP_PERCENT%)"
		t0=$EPOCHREALTIME
		"$PYTHON3" "$GEN_POOL" --mappings "$MAPPINGS" \
			--snap-percent "$SNAP_PERCENT" \
			--other-devices "$OTHER_DEVICES" --seed "$SEED" \
			>"$dir/pool.xml.tmp" 2>"$dir/pool.json.tmp" ||
			die "gen-pool.py failed: $(cat "$dir/pool.json.tmp")"
		mv "$dir/pool.xml.tmp" "$dir/pool.xml"
		mv "$dir/pool.json.tmp" "$dir/pool.json"
		echo "   $(stat -c %s "$dir/pool.xml") bytes in $(elapsed "$t0") s"
	fi

	case "$restorer" in
	ours) restore_cmd=("$BUILD/thin_restore") ;;
	debian) restore_cmd=("$DEBIAN_SBIN/thin_restore") ;;
	esac
	echo "-- restoring it with ${restore_cmd[*]} into a $METADATA_SIZE sparse file"
	truncate -s "$METADATA_SIZE" "$meta.tmp" || die "truncate failed"
	t0=$EPOCHREALTIME
	if ! "${restore_cmd[@]}" -i "$dir/pool.xml" -o "$meta.tmp" \
		>"$dir/restore-$restorer.log" 2>&1; then
		problem "caching: ${restore_cmd[*]} failed: $(tail -n 3 "$dir/restore-$restorer.log")"
		rm -f "$meta.tmp"
		return 1
	fi
	secs=$(elapsed "$t0")
	echo "   done in $secs s, $(du -m "$meta.tmp" | cut -f1) MiB used"
	echo "-- verifying it with $DEBIAN_SBIN/thin_check"
	t0=$EPOCHREALTIME
	if ! "$DEBIAN_SBIN/thin_check" "$meta.tmp" >"$dir/check-$restorer.log" 2>&1; then
		problem "caching: metadata written by ${restore_cmd[*]} fails $DEBIAN_SBIN/thin_check: $(tail -n 3 "$dir/check-$restorer.log")"
		rm -f "$meta.tmp"
		return 1
	fi
	echo "   passed in $(elapsed "$t0") s"
	mv "$meta.tmp" "$meta"
	printf 'restorer=%s\nrestore_s=%s\ndate=%s\n' "$restorer" "$secs" \
		"$(date -Is)" >"$dir/ok-$restorer"
}

# pool_info KEY...: a value of pool.json (gen-pool.py's summary)
pool_info() {
	"$PYTHON3" -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[k]
print(v)' "$POOL/pool.json" "$@"
}

# ----------------------------------------------------------------
# Measuring

elapsed() {
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'
}

problem() {
	PROBLEMS+=("$*")
	echo "!! $*" >&2
}

# measure STDOUT_FILE CMD...: one run under GNU time; sets RUN_S (wall
# seconds, ms resolution), RUN_KB (peak RSS), RUN_RC; stderr in $SCRATCH/err.
measure() {
	local out=$1 t0
	shift
	[ "$CACHE_MODE" = cold ] && drop_caches
	t0=$EPOCHREALTIME
	"$GNU_TIME" -f '%e %M' -o "$SCRATCH/time" "$@" >"$out" 2>"$SCRATCH/err"
	RUN_RC=$?
	RUN_S=$(elapsed "$t0")
	RUN_KB=$(awk 'END { print $2 }' "$SCRATCH/time")
	case "$RUN_KB" in ''|*[!0-9]*) RUN_KB=0 ;; esac
}

# bench_tool BENCH TOOL ENGINE OUTFILE PREPARE CMD...: RUNS timed runs
# (after a warm-up if the cache is warm); PREPARE is a function run before
# each run (e.g. to recreate an output file), or ':'.  Records one row.
bench_tool() {
	local bench=$1 tool=$2 engine=$3 out=$4 prepare=$5 i times="" kb_max=0 rc=0
	shift 5
	printf '   %-6s %-6s ' "$tool" "$engine"
	if [ "$CACHE_MODE" = warm ]; then
		$prepare
		measure "$out" "$@"
		rc=$RUN_RC
	fi
	for ((i = 1; i <= BENCH_RUNS && rc == 0; i++)); do
		$prepare
		measure "$out" "$@"
		rc=$RUN_RC
		times="$times $RUN_S"
		[ "$RUN_KB" -gt "$kb_max" ] && kb_max=$RUN_KB
		printf '%s ' "$RUN_S"
	done
	if [ "$rc" -ne 0 ]; then
		echo "FAILED (exit $rc)"
		problem "$bench: $tool ($engine) exit $rc: $*: $(tail -n 3 "$SCRATCH/err" | tr '\n' ' ')"
		record "$bench" "$tool" "$engine" FAIL "" 0
		return 1
	fi
	echo
	record "$bench" "$tool" "$engine" ok "$times" "$kb_max"
}

# median "T1 T2 ...": the median of the space-separated times
median() {
	echo "$1" | tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2];
		else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Rows of the current benchmark: "tool engine status median kb times"
ROWS=()
record() {
	local med=""
	local runs
	[ "$4" = ok ] && med=$(median "$5")
	runs=$(echo "$5" | tr ' ' '\n' | grep . | paste -sd,)
	ROWS+=("$2|$3|$4|$med|$6|$runs")
}

skip_row() {
	printf '   %-6s %-6s %s\n' "$2" "$3" "skipped: $4"
	ROWS+=("$2|$3|skipped|||")
}

# print_table BENCH TITLE: the table of ROWS, ratios against the 1.x row;
# appends the rows to the summary file and clears ROWS.
print_table() {
	local bench=$1 title=$2 ref="" row tool engine status med kb runs ratio target verdict rss shown
	for row in "${ROWS[@]}"; do
		IFS='|' read -r tool engine status med kb runs <<<"$row"
		[ "$tool" = 1.x ] && [ "$status" = ok ] && ref=$med
	done
	echo
	echo "== $title"
	echo "   pool: $POOL_DESC; $CACHE_MODE cache; median of $BENCH_RUNS runs"
	printf '   %-6s %-6s %9s %12s %10s %7s %s\n' tool engine median_s peak_rss_MB ours/1.x target verdict
	for row in "${ROWS[@]}"; do
		IFS='|' read -r tool engine status med kb runs <<<"$row"
		ratio=-; target=-; verdict=-; rss=-; shown=$med
		if [ "$status" = ok ]; then
			rss=$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')
			[ -n "$ref" ] && ratio=$(awk -v a="$med" -v b="$ref" \
				'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
		else
			shown=$status
		fi
		if [ "$tool" = ours ] && [ -n "$ref" ]; then
			target="<=$BENCH_TARGET"
			if [ "$status" != ok ]; then
				verdict=$( [ "$status" = skipped ] && echo - || echo MISS )
			elif [ "$ratio" = - ]; then
				verdict=-
			elif awk -v r="$ratio" -v t="$BENCH_TARGET" 'BEGIN { exit !(r <= t) }'; then
				verdict=PASS
			else
				verdict=MISS
			fi
		fi
		printf '   %-6s %-6s %9s %12s %10s %7s %s\n' "$tool" "$engine" "$shown" "$rss" "$ratio" "$target" "$verdict"
		printf 'bench=%s tool=%s engine=%s status=%s median_s=%s peak_rss_kb=%s ratio_vs_1x=%s target=%s verdict=%s runs_s=%s\n' \
			"$bench" "$tool" "$engine" "$status" "${med:--}" "${kb:--}" "$ratio" \
			"${target#<=}" "$verdict" "${runs:--}" >>"$RESULTS_NEW"
	done
	ROWS=()
}

# note KEY=VALUE...: a line of the summary file and of the output
note() {
	echo "   $*"
	echo "note $*" >>"$RESULTS_NEW"
}

# same_output NAME A B: cmp two outputs, print and record the verdict
same_output() {
	local name=$1 a=$2 b=$3
	if ! [ -f "$a" ] || ! [ -f "$b" ]; then
		note "$name=not-compared (missing output)"
	elif cmp -s "$a" "$b"; then
		note "$name=identical bytes=$(stat -c %s "$a")"
	else
		note "$name=DIFFERENT first_difference=\"$(cmp "$a" "$b" 2>&1 | head -n 1)\""
		problem "$name: outputs differ: $(cmp "$a" "$b" 2>&1 | head -n 1)"
	fi
}

ours_engines() {
	echo sync async
}

# ----------------------------------------------------------------
# Benchmarks: bench_NAME, one per command.  Each measures ours (every I/O
# engine), Debian 0.9.0 and 1.x on the cached pool, then print_table.

bench_dump() {
	local e compare="" debian_ok=no
	echo
	echo "-- thin_dump (XML to a file in $BENCH_TMP)"
	for e in $(ours_engines); do
		bench_tool dump ours "$e" "$SCRATCH/dump-ours-$e.xml" : \
			"$BUILD/thin_dump" --io-engine "$e" "$META" &&
			compare="$compare $e"
	done
	bench_tool dump 0.9.0 - "$SCRATCH/dump-debian.xml" : \
		"$DEBIAN_SBIN/thin_dump" "$META" && debian_ok=yes
	bench_tool dump 1.x - "$SCRATCH/dump-1x.xml" : \
		"$ONEX" thin_dump "$META"
	print_table dump "thin_dump"
	[ "$debian_ok" = yes ] || compare=""
	# failed runs are problems already: compare only what succeeded
	for e in $compare; do
		same_output "dump_ours_${e}_vs_0.9.0" "$SCRATCH/dump-ours-$e.xml" \
			"$SCRATCH/dump-debian.xml"
	done
	rm -f "$SCRATCH"/dump-*.xml
}

bench_check() {
	local e
	echo
	echo "-- thin_check"
	for e in $(ours_engines); do
		bench_tool check ours "$e" /dev/null : \
			"$BUILD/thin_check" --io-engine "$e" "$META"
	done
	bench_tool check 0.9.0 - /dev/null : "$DEBIAN_SBIN/thin_check" "$META"
	bench_tool check 1.x - /dev/null : "$ONEX" thin_check "$META"
	print_table check "thin_check"
}

new_output() {
	rm -f "$SCRATCH/out.bin"
	truncate -s "$METADATA_SIZE" "$SCRATCH/out.bin"
}

# verify_output NAME: checks $SCRATCH/out.bin with 0.9.0's thin_check;
# then, when EXPECTED_XML is set, compares 0.9.0's dump of it with that
# file, and when EXPECTED_DEVICES is set, compares its device lines
# (dev_id and mapped_blocks, one device per line) with that string.
verify_output() {
	local name=$1 devices
	if "$DEBIAN_SBIN/thin_check" -q "$SCRATCH/out.bin" >"$SCRATCH/vcheck" 2>&1; then
		note "${name}_thin_check_0.9.0=pass"
	else
		note "${name}_thin_check_0.9.0=FAIL"
		problem "$name: output fails $DEBIAN_SBIN/thin_check: $(head -n 3 "$SCRATCH/vcheck" | tr '\n' ' ')"
		return
	fi
	if [ -n "${EXPECTED_XML:-}" ]; then
		"$DEBIAN_SBIN/thin_dump" "$SCRATCH/out.bin" >"$SCRATCH/vdump.xml" 2>&1
		same_output "${name}_dump_vs_input" "$SCRATCH/vdump.xml" "$EXPECTED_XML"
		rm -f "$SCRATCH/vdump.xml"
	fi
	if [ -n "${EXPECTED_DEVICES:-}" ]; then
		devices=$("$DEBIAN_SBIN/thin_dump" --skip-mappings "$SCRATCH/out.bin" 2>&1 |
			sed -n 's/.*<device dev_id="\([0-9]*\)" mapped_blocks="\([0-9]*\)".*/\1:\2/p' |
			paste -sd' ')
		if [ "$devices" = "$EXPECTED_DEVICES" ]; then
			note "${name}_devices=as-expected($devices)"
		else
			note "${name}_devices=WRONG(got:${devices// /,};expected:${EXPECTED_DEVICES// /,})"
			problem "$name: devices (id:mapped_blocks) '$devices', expected '$EXPECTED_DEVICES'"
		fi
	fi
}

bench_restore() {
	local e
	echo
	echo "-- thin_restore (pool.xml to a fresh $METADATA_SIZE sparse file in $BENCH_TMP)"
	if [ -x "$BUILD/thin_restore" ]; then
		for e in $(ours_engines); do
			bench_tool restore ours "$e" /dev/null new_output \
				"$BUILD/thin_restore" --io-engine "$e" \
				-i "$POOL/pool.xml" -o "$SCRATCH/out.bin" &&
				EXPECTED_XML=$POOL/pool.xml verify_output "restore_ours_$e"
		done
	else
		skip_row restore ours - "no $BUILD/thin_restore"
	fi
	bench_tool restore 0.9.0 - /dev/null new_output \
		"$DEBIAN_SBIN/thin_restore" -i "$POOL/pool.xml" -o "$SCRATCH/out.bin"
	bench_tool restore 1.x - /dev/null new_output \
		"$ONEX" thin_restore -i "$POOL/pool.xml" -o "$SCRATCH/out.bin"
	rm -f "$SCRATCH/out.bin"
	print_table restore "thin_restore"
}

# No other implementation of thin_merge exists: absolute numbers only.
# The snapshot's writes all fall inside the origin's range, so the merged
# device has the origin's id and mapped_blocks.
bench_merge() {
	local e origin snapshot expected
	echo
	echo "-- thin_merge (origin + external snapshot to a fresh $METADATA_SIZE sparse file in $BENCH_TMP)"
	if ! [ -x "$BUILD/thin_merge" ]; then
		skip_row merge ours - "no $BUILD/thin_merge"
		print_table merge "thin_merge (no reference implementation)"
		return
	fi
	origin=$(pool_info origin)
	snapshot=$(pool_info snapshot)
	expected="$origin:$(pool_info mapped_blocks "$origin")"
	for e in $(ours_engines); do
		bench_tool merge ours "$e" /dev/null new_output \
			"$BUILD/thin_merge" --io-engine "$e" -i "$META" \
			-o "$SCRATCH/out.bin" --origin "$origin" --snapshot "$snapshot" &&
			EXPECTED_DEVICES=$expected verify_output "merge_ours_$e"
	done
	rm -f "$SCRATCH/out.bin"
	print_table merge "thin_merge (no reference implementation)"
}

# ----------------------------------------------------------------
# Main

START=$EPOCHREALTIME
echo "thinp-tools benchmarks: $(date -Is)"
echo "   ours:  $BUILD (thin_dump -V: $("$BUILD/thin_dump" -V 2>&1 | head -n 1))"
echo "   0.9.0: $DEBIAN_SBIN (thin_dump -V: $("$DEBIAN_SBIN/thin_dump" -V 2>&1 | head -n 1))"
echo "   1.x:   $ONEX (thin_dump -V: $("$ONEX" thin_dump -V 2>&1 | head -n 1))"
echo "   size $SIZE, benchmarks: ${BENCHES# }, page cache: $CACHE_MODE"
echo "   cache dir $BENCH_DIR, scratch $SCRATCH"
[ "$CACHE_MODE" = warm ] &&
	echo "   (${CACHE_NOTE}one untimed warm-up run per tool, warm cache)"

RESTORER=$(choose_restorer)
if ! make_pool "$RESTORER"; then
	[ "$RESTORER" = ours ] || die "cannot build the benchmark pool"
	echo "-- falling back to $DEBIAN_SBIN/thin_restore for the cached pool"
	RESTORER=debian
	make_pool debian || die "cannot build the benchmark pool"
fi
NR_SNAP=$(pool_info mapped_blocks "$(pool_info snapshot)")
case "$RESTORER" in
ours) WRITER="our thin_restore" ;;
debian) WRITER="0.9.0's thin_restore" ;;
esac
POOL_DESC="$SIZE, $MAPPINGS origin + $NR_SNAP snapshot mappings, metadata $(du -m "$META" | cut -f1) MiB written by $WRITER"
echo "-- pool: $META"
echo "   ($POOL_DESC)"

{
	echo "# thinp-tools benchmark results, $(date -Is), host $(uname -n), kernel $(uname -r)"
	echo "# one line per measured tool; times in seconds (wall), RSS in KiB"
	echo "run date=$(date -Is) size=$SIZE mappings=$MAPPINGS snapshot_mappings=$NR_SNAP snap_percent=$SNAP_PERCENT other_devices=$OTHER_DEVICES seed=$SEED cache=$CACHE_MODE runs=$BENCH_RUNS restorer=$RESTORER meta_mib=$(du -m "$META" | cut -f1) build=$BUILD ours_version=$("$BUILD/thin_dump" -V 2>&1 | head -n 1) meta=$META"
} >"$RESULTS_NEW"

for b in $BENCHES; do
	"bench_$b"
done

echo
if [ ${#PROBLEMS[@]} -gt 0 ]; then
	echo "Problems:"
	for p in "${PROBLEMS[@]}"; do
		echo " - $p"
		echo "problem $p" >>"$RESULTS_NEW"
	done
fi
echo "total $(elapsed "$START") s" >>"$RESULTS_NEW"
cp "$RESULTS_NEW" "$RESULTS"
echo "Benchmarks took $(elapsed "$START") s; summary in $RESULTS"
# A MISS is a result; a failing tool or a wrong output is not.
[ ${#PROBLEMS[@]} -eq 0 ]
