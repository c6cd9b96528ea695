#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Benchmarks of our commands against thin-provisioning-tools 0.9.0 (Debian,
# and 1.x, as scripts/fetch-oracles.sh unpacks them).  Not a test: `make check` never runs it.
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
#   BENCH_DELTA_TARGET   the same for thin_delta (default 0.3)
#   BENCH_MERGE_TARGET   highest acceptable full merge / I/O floor (dd of
#                    the used metadata blocks) time ratio (default 2)
#   BENCH_INPLACE_TARGET highest acceptable merge --in-place / full merge
#                    time ratio on the clustered pool (default 0.05)
#   BENCH_CLUSTERED  the clustered pool's snapshot, K:M = M writes in K hot
#                    spots (default 200:15000)
#   BENCH_RSS_MAPPINGS   pool sizes of the merge RSS table (default
#                    "1048576 16777216 67108864"; small: 1048576)
#   BENCH_RSS_MB, BENCH_RSS_FLAT: merge peak RSS targets: below this many
#                    MiB (32), largest / smallest pool at most (1.3)
#   BENCH_RSS_RUNS   runs per size in the RSS table (default 1)
#   BENCH_RSS_MIN_FREE_GB: skip pools over 16M mappings that are not cached
#                    yet when BENCH_DIR has less free space (default 20)
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

ALL_BENCHES="dump check restore merge delta"
HERE=$(cd "$(dirname "$0")" && pwd)
GEN_POOL="$HERE/gen-pool.py"
PYTHON3=${PYTHON3:-python3}
GNU_TIME=/usr/bin/time
ORACLE_DIR=${THINP_ORACLE_DIR:-/var/cache/thinp-tools/oracles}	# scripts/fetch-oracles.sh
DEBIAN_SBIN=$ORACLE_DIR/0.9/usr/sbin
ONEX=$ORACLE_DIR/1x/usr/sbin/pdata_tools
BENCH_DIR=${BENCH_DIR:-/var/tmp/thinp-bench}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_CACHE=${BENCH_CACHE:-auto}
BENCH_RESTORER=${BENCH_RESTORER:-auto}
BENCH_TARGET=${BENCH_TARGET:-0.8}
DELTA_TARGET=${BENCH_DELTA_TARGET:-0.3}
SNAP_PERCENT=${BENCH_SNAP_PERCENT:-1}
OTHER_DEVICES=${BENCH_OTHER_DEVICES:-0}
SEED=${BENCH_SEED:-1}
METADATA_SIZE=2G     # sparse; 16M mappings take about 550 MiB
MERGE_TARGET=${BENCH_MERGE_TARGET:-2}
INPLACE_TARGET=${BENCH_INPLACE_TARGET:-0.05}
CLUSTER_SHAPE=${BENCH_CLUSTERED:-200:15000}
RSS_MB=${BENCH_RSS_MB:-32}
RSS_FLAT=${BENCH_RSS_FLAT:-1.3}
RSS_RUNS=${BENCH_RSS_RUNS:-1}
RSS_MIN_FREE_GB=${BENCH_RSS_MIN_FREE_GB:-20}

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
case "$SIZE" in
small) RSS_MAPPINGS=${BENCH_RSS_MAPPINGS:-1048576} ;;
full) RSS_MAPPINGS=${BENCH_RSS_MAPPINGS:-1048576 16777216 67108864} ;;
esac
[[ "$CLUSTER_SHAPE" =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] ||
	die "BENCH_CLUSTERED must be K:M (hot spots:writes)"
for m in $RSS_MAPPINGS; do
	case "$m" in ''|*[!0-9]*|0) die "BENCH_RSS_MAPPINGS: not a number of mappings: '$m'" ;; esac
done
case "$RSS_RUNS" in
''|*[!0-9]*|0) die "BENCH_RSS_RUNS must be a positive number" ;;
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
# where merge --in-place works on its copies: the disk of the cached pools
DISK_SCRATCH=$(mktemp -d "$BENCH_DIR/scratch.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$SCRATCH" "$DISK_SCRATCH"' EXIT
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
	echo "$BENCH_DIR/pool-m$MAPPINGS-$(snap_tag)-o$OTHER_DEVICES-s$SEED-f$format"
}

# The snapshot's shape: SNAP_PERCENT random writes, or when CLUSTERED is set
# (K:M, bench_merge's clustered pool) M writes in K hot spots.
# With SHARED set (bench_delta's second pool), the snapshot of SNAP_PERCENT
# random writes is a kernel-style one sharing its unwritten leaves.
snap_tag() {
	if [ -n "${CLUSTERED:-}" ]; then echo "c${CLUSTERED/:/x}"
	elif [ -n "${SHARED:-}" ]; then echo "p${SNAP_PERCENT}shared"
	else echo "p$SNAP_PERCENT"; fi
}

snap_args() {
	if [ -n "${CLUSTERED:-}" ]; then
		echo --clustered "$CLUSTERED"
	elif [ -n "${SHARED:-}" ]; then
		echo --snap-percent "$SNAP_PERCENT" --shared
	else
		echo --snap-percent "$SNAP_PERCENT"
	fi
}

snap_desc() {
	if [ -n "${CLUSTERED:-}" ]; then
		echo "${CLUSTERED#*:} writes in ${CLUSTERED%%:*} hot spots"
	elif [ -n "${SHARED:-}" ]; then
		echo "$SNAP_PERCENT%, sharing its unwritten leaves"
	else
		echo "$SNAP_PERCENT%"
	fi
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
		echo "-- generating the pool XML ($MAPPINGS origin mappings, snapshot $(snap_desc))"
		t0=$EPOCHREALTIME
		# shellcheck disable=SC2046 # snap_args: two words
		"$PYTHON3" "$GEN_POOL" --mappings "$MAPPINGS" $(snap_args) \
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

# thin_delta between the origin (1) and the snapshot (2), plain and
# --verbose; ratios against 1.x with BENCH_DELTA_TARGET, peak RSS against
# BENCH_RSS_MB; our output must equal 0.9.0's.  Twice: on the main pool
# (an external snapshot: the trees share nothing) and on a pool whose
# snapshot shares its unwritten leaves as a kernel snapshot does
# (gen-pool.py --shared; written by our thin_restore, as 0.9.0's rejects
# the <def>s that share).
bench_delta() {
	local saved_meta=$META saved_pool=$POOL saved_desc=$POOL_DESC
	delta_tables "" "$META"
	if ! [ -x "$BUILD/thin_restore" ]; then
		note "delta_shared=skipped (needs our thin_restore)"
		return 0
	fi
	echo
	if SHARED=1 OTHER_DEVICES=0 make_pool ours; then
		POOL_DESC="$SIZE, $MAPPINGS origin + $(pool_info mapped_blocks "$(pool_info snapshot)") snapshot mappings sharing $(pool_info shared_leaves) leaves with it, metadata $(du -m "$META" | cut -f1) MiB written by our thin_restore"
		echo "-- pool: $META"
		echo "   ($POOL_DESC)"
		delta_tables -shared "$META"
	fi
	META=$saved_meta POOL=$saved_pool POOL_DESC=$saved_desc
}

# delta_tables CASE META: the plain and --verbose tables on one pool.
delta_tables() {
	local e v tag saved_target=$BENCH_TARGET kb row tool engine status med runs
	local case=$1 META=$2
	BENCH_TARGET=$DELTA_TARGET
	for v in "" --verbose; do
		tag=${v:+-verbose}$case
		echo
		echo "-- thin_delta $v --thin1 1 --thin2 2 (XML to a file in $BENCH_TMP)${case:+, ${case#-} pool}"
		for e in $(ours_engines); do
			bench_tool "delta$tag" ours "$e" "$SCRATCH/delta-ours-$e.xml" : \
				"$BUILD/thin_delta" --io-engine "$e" $v --thin1 1 --thin2 2 "$META"
		done
		bench_tool "delta$tag" 0.9.0 - "$SCRATCH/delta-debian.xml" : \
			"$DEBIAN_SBIN/thin_delta" $v --thin1 1 --thin2 2 "$META"
		bench_tool "delta$tag" 1.x - "$SCRATCH/delta-1x.xml" : \
			"$ONEX" thin_delta $v --thin1 1 --thin2 2 "$META"
		for row in "${ROWS[@]}"; do
			IFS='|' read -r tool engine status med kb runs <<<"$row"
			[ "$tool" = ours ] && [ "$status" = ok ] || continue
			if [ "$kb" -lt $((RSS_MB * 1024)) ]; then
				note "delta${tag}_rss_ours_$engine=PASS peak_rss_kb=$kb target_mb=$RSS_MB"
			else
				note "delta${tag}_rss_ours_$engine=MISS peak_rss_kb=$kb target_mb=$RSS_MB"
			fi
		done
		print_table "delta$tag" "thin_delta $v${case:+ (${case#-} pool)}"
		for e in $(ours_engines); do
			same_output "delta${tag}_ours_${e}_vs_0.9.0" "$SCRATCH/delta-ours-$e.xml" \
				"$SCRATCH/delta-debian.xml"
		done
		rm -f "$SCRATCH"/delta-*.xml
	done
	BENCH_TARGET=$saved_target
}

new_output() {
	rm -f "$SCRATCH/out.bin"
	truncate -s "$METADATA_SIZE" "$SCRATCH/out.bin"
}

# verify_output NAME [FILE]: checks FILE ($SCRATCH/out.bin) with 0.9.0's thin_check;
# then, when EXPECTED_XML is set, compares 0.9.0's dump of it with that
# file, and when EXPECTED_DEVICES is set, compares its device lines
# (dev_id and mapped_blocks, one device per line) with that string.
verify_output() {
	local name=$1 file=${2:-$SCRATCH/out.bin} devices
	if "$DEBIAN_SBIN/thin_check" -q "$file" >"$SCRATCH/vcheck" 2>&1; then
		note "${name}_thin_check_0.9.0=pass"
	else
		note "${name}_thin_check_0.9.0=FAIL"
		problem "$name: output fails $DEBIAN_SBIN/thin_check: $(head -n 3 "$SCRATCH/vcheck" | tr '\n' ' ')"
		return
	fi
	if [ -n "${EXPECTED_XML:-}" ]; then
		"$DEBIAN_SBIN/thin_dump" "$file" >"$SCRATCH/vdump.xml" 2>&1
		same_output "${name}_dump_vs_input" "$SCRATCH/vdump.xml" "$EXPECTED_XML"
		rm -f "$SCRATCH/vdump.xml"
	fi
	if [ -n "${EXPECTED_DEVICES:-}" ]; then
		devices=$("$DEBIAN_SBIN/thin_dump" --skip-mappings "$file" 2>&1 |
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

# ----------------------------------------------------------------
# thin_merge.  No other implementation exists, so it is measured against
# what bounds it and what replaces it, in the same run:
#   1. the pool's own: full merge to a new output vs the I/O floor (dd of
#      the input's used metadata blocks) and vs thin_dump | merge-model.py
#      > XML; thin_restore with the 1.x tools;
#   2. a clustered pool (same origin, snapshot writes in a few hot spots):
#      --in-place vs the full merge;
#   3. peak RSS of the full merge as the pool grows (1M, 16M, 64M mappings).

# new_output_like: a fresh sparse $SCRATCH/out.bin of OUT_SIZE bytes (the
# input's size)
new_output_like() {
	rm -f "$SCRATCH/out.bin"
	truncate -s "$OUT_SIZE" "$SCRATCH/out.bin"
}

# the 1.x pipeline's output, and its intermediate XML gone
new_model_output() {
	rm -f "$SCRATCH/model.xml"
	new_output_like
}

# in place: a fresh copy of the clustered pool's metadata, on the disk the
# pools are on (so that dropping the page cache makes it cold, as the input
# of the full merge is); the copy is not timed
new_inplace_copy() {
	rm -f "$DISK_SCRATCH/inplace.bin"
	cp --sparse=always "$XMETA" "$DISK_SCRATCH/inplace.bin" ||
		problem "merge: cannot copy $XMETA to $DISK_SCRATCH"
}

# extra_pool MAPPINGS CLUSTERED METADATA_SIZE: another cached pool (no other
# devices; CLUSTERED K:M or empty for BENCH_SNAP_PERCENT), written by our
# thin_restore when built; sets XPOOL, XMETA, XWRITER.  Returns 1 if it
# cannot be built.
extra_pool() {
	local MAPPINGS=$1 CLUSTERED=$2 METADATA_SIZE=$3 OTHER_DEVICES=0 POOL META restorer=debian
	[ -x "$BUILD/thin_restore" ] && restorer=ours
	make_pool "$restorer" || return 1
	XPOOL=$POOL
	XMETA=$META
	case "$restorer" in
	ours) XWRITER="our thin_restore" ;;
	debian) XWRITER="0.9.0's thin_restore" ;;
	esac
}

# metadata_size MAPPINGS: the sparse size of a pool's metadata file
# (2 GiB up to 16M mappings, 8 GiB up to 64M, then the 15.9 GiB maximum)
metadata_size() {
	if [ "$1" -le 16777216 ]; then echo 2G
	elif [ "$1" -le 67108864 ]; then echo 8G
	else echo 16320M
	fi
}

# merged_devices: the devices (id:mapped_blocks, in id order) a merge of
# $POOL's snapshot into its origin leaves: the snapshot's writes all fall
# inside the origin's range, so the merged device has the origin's id and
# mapped_blocks; the other devices stay as they are.
merged_devices() {
	"$PYTHON3" -c 'import json, sys
v = json.load(open(sys.argv[1]))
m = v["mapped_blocks"]
print(" ".join("%s:%s" % (d, m[d]) for d in sorted(m, key=int)
               if int(d) != v["snapshot"]))' "$POOL/pool.json"
}

# dump_dev FILE OUT ID: 0.9.0's dump of device ID of the metadata in FILE
dump_dev() {
	"$DEBIAN_SBIN/thin_dump" --dev-id "$3" "$1" >"$2" 2>&1 ||
		problem "merge: $DEBIAN_SBIN/thin_dump --dev-id $3 $1 failed: $(tail -n 2 "$2" | tr '\n' ' ')"
}

# ratio A B: A / B with 2 decimals (3 below 0.1), or - if either is missing
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "" || b == "" || b <= 0) { print "-"; exit }
		r = a / b; if (r < 0.1) printf "%.3f", r; else printf "%.2f", r }'
}

# print_ratio_table BENCH TITLE POOLDESC TARGET JUDGED REF1 KEY1 [REF2 KEY2]:
# the ROWS with their time ratios to the rows REF1 and REF2 ("tool/engine"),
# in columns (and summary keys) ratio_KEY1 and ratio_KEY2; the rows named in
# JUDGED (space-separated tool/engine) get a verdict: PASS if their ratio to
# REF1 is at most TARGET.  Appends the rows to the summary file; clears ROWS.
print_ratio_table() {
	local bench=$1 title=$2 desc=$3 target=$4 judged=$5 ref1=$6 key1=$7 ref2=${8:-} key2=${9:-}
	local row tool engine status med kb runs r1 r2 med1="" med2="" rss shown t verdict
	for row in "${ROWS[@]}"; do
		IFS='|' read -r tool engine status med kb runs <<<"$row"
		[ "$status" = ok ] || continue
		[ "$tool/$engine" = "$ref1" ] && med1=$med
		[ -n "$ref2" ] && [ "$tool/$engine" = "$ref2" ] && med2=$med
	done
	echo
	echo "== $title"
	echo "   pool: $desc; $CACHE_MODE cache; median of $BENCH_RUNS runs"
	printf '   %-6s %-8s %9s %12s %9s %9s %7s %s\n' tool engine median_s peak_rss_MB \
		"/$key1" "${key2:+/$key2}" target verdict
	for row in "${ROWS[@]}"; do
		IFS='|' read -r tool engine status med kb runs <<<"$row"
		r1=-; r2=-; rss=-; shown=$med; t=-; verdict=-
		if [ "$status" = ok ]; then
			rss=$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')
			r1=$(ratio "$med" "$med1")
			[ -n "$ref2" ] && r2=$(ratio "$med" "$med2")
		else
			shown=$status
		fi
		case " $judged " in
		*" $tool/$engine "*)
			t="<=$target"
			if [ "$status" = skipped ]; then
				verdict=-
			elif [ "$status" != ok ]; then
				verdict=MISS
			elif [ "$r1" = - ]; then
				verdict=-
			elif awk -v r="$r1" -v t="$target" 'BEGIN { exit !(r <= t) }'; then
				verdict=PASS
			else
				verdict=MISS
			fi ;;
		esac
		printf '   %-6s %-8s %9s %12s %9s %9s %7s %s\n' "$tool" "$engine" "$shown" "$rss" \
			"$r1" "${key2:+$r2}" "$t" "$verdict"
		printf 'bench=%s tool=%s engine=%s status=%s median_s=%s peak_rss_kb=%s ratio_%s=%s%s target=%s verdict=%s runs_s=%s\n' \
			"$bench" "$tool" "$engine" "$status" "${med:--}" "${kb:--}" "$key1" "$r1" \
			"${key2:+ ratio_$key2=$r2}" "${t#<=}" "$verdict" "${runs:--}" >>"$RESULTS_NEW"
	done
	ROWS=()
}

bench_merge() {
	if ! [ -x "$BUILD/thin_merge" ]; then
		echo
		echo "-- thin_merge"
		skip_row merge ours - "no $BUILD/thin_merge"
		print_table merge "thin_merge"
		return
	fi
	merge_full
	merge_inplace
	merge_rss
}

# 1. Full merge vs the I/O floor and the 1.x XML pipeline, on the pool.
merge_full() {
	local origin snapshot expected e used prefix floor_desc ok1x=no
	origin=$(pool_info origin)
	snapshot=$(pool_info snapshot)
	expected=$(merged_devices)
	OUT_SIZE=$(stat -c %s "$META")
	echo
	echo "-- thin_merge -i META -o OUT --origin $origin --snapshot $snapshot (OUT: a fresh sparse file of META's size in $BENCH_TMP)"
	echo "   vs the I/O floor (dd of META's used blocks) and vs thin_dump | merge-model.py > XML; thin_restore (1.x)"
	if used=$("$PYTHON3" "$HERE/meta-used.py" "$META" 2>"$SCRATCH/err"); then
		prefix=$(echo "$used" | sed -n 's/.* prefix=\([0-9]*\).*/\1/p')
		floor_desc="blocks 0 .. $((prefix - 1))"
		note "merge_input_space_map $used"
		bench_tool merge floor dd /dev/null new_output_like \
			dd if="$META" of="$SCRATCH/out.bin" bs=1M \
			count=$((prefix * 4096)) iflag=count_bytes conv=notrunc,fsync status=none
	else
		problem "merge: meta-used.py $META failed: $(tail -n 2 "$SCRATCH/err" | tr '\n' ' ')"
		skip_row merge floor dd "meta-used.py failed"
	fi
	for e in $(ours_engines); do
		if bench_tool merge ours "$e" /dev/null new_output_like \
			"$BUILD/thin_merge" --io-engine "$e" -i "$META" \
			-o "$SCRATCH/out.bin" --origin "$origin" --snapshot "$snapshot"; then
			EXPECTED_DEVICES=$expected verify_output "merge_ours_$e"
			[ -f "$SCRATCH/merge-ours-dev.xml" ] ||
				dump_dev "$SCRATCH/out.bin" "$SCRATCH/merge-ours-dev.xml" "$origin"
		fi
	done
	# 1.x thin_restore reads a regular file only: the XML goes through one
	# shellcheck disable=SC2016 # the script's arguments are its $1 ...
	bench_tool merge 1.x xml /dev/null new_model_output \
		bash -c 'set -o pipefail
			"$1" thin_dump "$2" |
				"$3" "$4" --origin "$5" --snapshot "$6" --spool-dir "$7" >"$8" &&
			"$1" thin_restore -q -i "$8" -o "$9"' merge-1x \
		"$ONEX" "$META" "$PYTHON3" "$HERE/merge-model.py" "$origin" "$snapshot" \
		"$SCRATCH" "$SCRATCH/model.xml" "$SCRATCH/out.bin" && ok1x=yes
	if [ "$ok1x" = yes ]; then
		EXPECTED_DEVICES=$expected verify_output merge_1x_xml
		if [ -f "$SCRATCH/merge-ours-dev.xml" ]; then
			dump_dev "$SCRATCH/out.bin" "$SCRATCH/merge-1x-dev.xml" "$origin"
			same_output "merge_dev${origin}_ours_vs_1x_xml" \
				"$SCRATCH/merge-ours-dev.xml" "$SCRATCH/merge-1x-dev.xml"
		fi
	fi
	rm -f "$SCRATCH/out.bin" "$SCRATCH/model.xml" "$SCRATCH"/merge-*-dev.xml
	print_ratio_table merge "thin_merge: full merge vs the I/O floor (dd of $floor_desc) and the 1.x XML pipeline" \
		"$POOL_DESC" "$MERGE_TARGET" "ours/sync ours/async" floor/dd floor 1.x/xml 1x
}

# 2. --in-place vs the full merge on a pool whose snapshot wrote in a few
# hot spots: the in-place cost follows the snapshot, the full one the pool.
merge_inplace() {
	local origin snapshot expected desc ok_full=no
	echo
	echo "-- thin_merge --in-place vs the full merge, snapshot: $CLUSTER_SHAPE (hot spots:writes)"
	if ! extra_pool "$MAPPINGS" "$CLUSTER_SHAPE" "$METADATA_SIZE"; then
		skip_row merge-clustered ours in-place "cannot build the clustered pool"
		print_ratio_table merge-clustered "thin_merge --in-place" - "$INPLACE_TARGET" \
			ours/in-place ours/full full
		return
	fi
	origin=$(POOL=$XPOOL pool_info origin)
	snapshot=$(POOL=$XPOOL pool_info snapshot)
	expected=$(POOL=$XPOOL merged_devices)
	desc="$MAPPINGS origin + $(POOL=$XPOOL pool_info mapped_blocks "$snapshot") snapshot mappings in ${CLUSTER_SHAPE%%:*} hot spots, metadata $(du -m "$XMETA" | cut -f1) MiB written by $XWRITER"
	echo "   pool: $XMETA"
	OUT_SIZE=$(stat -c %s "$XMETA")
	if bench_tool merge-clustered ours full /dev/null new_output_like \
		"$BUILD/thin_merge" --io-engine sync -i "$XMETA" -o "$SCRATCH/out.bin" \
		--origin "$origin" --snapshot "$snapshot"; then
		EXPECTED_DEVICES=$expected verify_output merge_clustered_full
		dump_dev "$SCRATCH/out.bin" "$SCRATCH/merge-full-dev.xml" "$origin"
		ok_full=yes
	fi
	rm -f "$SCRATCH/out.bin"
	if bench_tool merge-clustered ours in-place /dev/null new_inplace_copy \
		"$BUILD/thin_merge" -i "$DISK_SCRATCH/inplace.bin" --in-place \
		--origin "$origin" --snapshot "$snapshot"; then
		EXPECTED_DEVICES=$expected verify_output merge_clustered_inplace "$DISK_SCRATCH/inplace.bin"
		if [ "$ok_full" = yes ]; then
			dump_dev "$DISK_SCRATCH/inplace.bin" "$SCRATCH/merge-inplace-dev.xml" "$origin"
			same_output "merge_clustered_dev${origin}_inplace_vs_full" \
				"$SCRATCH/merge-full-dev.xml" "$SCRATCH/merge-inplace-dev.xml"
		fi
	fi
	rm -f "$DISK_SCRATCH/inplace.bin" "$SCRATCH"/merge-*-dev.xml
	print_ratio_table merge-clustered "thin_merge --in-place (its default engine: async) vs the full merge (sync); in place on a fresh copy of the metadata each run, copied before the cache is dropped" \
		"$desc" "$INPLACE_TARGET" ours/in-place ours/full full
}

# 3. Peak RSS of the full merge at 1M, 16M and 64M mappings (BENCH_RSS_RUNS
# runs each): below BENCH_RSS_MB, and flat (largest / smallest pool at most
# BENCH_RSS_FLAT).
merge_rss() {
	local m label origin snapshot expected avail kb first_kb="" last_kb="" last_label="" first_label=""
	local over=no row tool engine status med runs r verdict flat="-" sizes=()
	local BENCH_RUNS=$RSS_RUNS
	echo
	echo "-- thin_merge peak RSS as the pool grows (full merge, --io-engine sync, $RSS_RUNS run(s) per size)"
	for m in $RSS_MAPPINGS; do
		label="$((m / 1048576))M"
		[ "$m" -lt 1048576 ] && label=$m
		if [ "$m" -gt 16777216 ] && ! [ -f "$(MAPPINGS=$m CLUSTERED='' OTHER_DEVICES=0 pool_dir)/ok-ours" ]; then
			if ! [ -x "$BUILD/thin_restore" ]; then
				skip_row merge-rss ours "$label" "needs our thin_restore to build the pool (0.9.0's would take many minutes)"
				continue
			fi
			avail=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print int($4 / 1048576) }')
			if [ "${avail:-0}" -lt "$RSS_MIN_FREE_GB" ]; then
				skip_row merge-rss ours "$label" "only ${avail} GB free in $BENCH_DIR (the $label pool needs about $RSS_MIN_FREE_GB GB with its XML and scratch)"
				continue
			fi
		fi
		if ! extra_pool "$m" "" "$(metadata_size "$m")"; then
			skip_row merge-rss ours "$label" "cannot build the pool"
			continue
		fi
		# the output takes up to 3 times the input's used blocks
		avail=$(df -Pm "$BENCH_TMP" | awk 'NR == 2 { print $4 }')
		if [ "${avail:-0}" -lt $((3 * $(du -m "$XMETA" | cut -f1))) ]; then
			skip_row merge-rss ours "$label" "only ${avail} MiB free in $BENCH_TMP for the output (3x the input's $(du -m "$XMETA" | cut -f1) MiB)"
			continue
		fi
		origin=$(POOL=$XPOOL pool_info origin)
		snapshot=$(POOL=$XPOOL pool_info snapshot)
		expected=$(POOL=$XPOOL merged_devices)
		OUT_SIZE=$(stat -c %s "$XMETA")
		sizes+=("$label: $m + $(POOL=$XPOOL pool_info mapped_blocks "$snapshot") mappings, metadata $(du -m "$XMETA" | cut -f1) MiB by $XWRITER")
		bench_tool merge-rss ours "$label" /dev/null new_output_like \
			"$BUILD/thin_merge" --io-engine sync -i "$XMETA" -o "$SCRATCH/out.bin" \
			--origin "$origin" --snapshot "$snapshot" &&
			EXPECTED_DEVICES=$expected verify_output "merge_rss_$label"
		rm -f "$SCRATCH/out.bin"
	done
	echo
	echo "== thin_merge peak RSS (full merge, --io-engine sync): below $RSS_MB MB, largest pool within ${RSS_FLAT}x of the smallest"
	for label in "${sizes[@]}"; do echo "   pool $label"; done
	printf '   %-8s %9s %12s %9s %7s %s\n' mappings median_s peak_rss_MB /smallest target verdict
	for row in "${ROWS[@]}"; do
		IFS='|' read -r tool engine status med kb runs <<<"$row"
		[ "$status" = ok ] && [ -z "$first_kb" ] && first_kb=$kb first_label=$engine
	done
	for row in "${ROWS[@]}"; do
		IFS='|' read -r tool engine status med kb runs <<<"$row"
		r=-; verdict=-
		if [ "$status" = ok ]; then
			r=$(ratio "$kb" "$first_kb")
			if [ "$kb" -lt $((RSS_MB * 1024)) ]; then verdict=PASS; else verdict=MISS; over=yes; fi
			last_kb=$kb last_label=$engine
			printf '   %-8s %9s %12s %9s %7s %s\n' "$engine" "$med" \
				"$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')" "$r" "<$RSS_MB" "$verdict"
		else
			printf '   %-8s %9s %12s %9s %7s %s\n' "$engine" "$status" - - "<$RSS_MB" -
			[ "$status" = FAIL ] && over=yes
		fi
		printf 'bench=merge-rss tool=ours engine=sync mappings=%s status=%s median_s=%s peak_rss_kb=%s ratio_rss_vs_%s=%s target_mb=%s verdict=%s runs_s=%s\n' \
			"$engine" "$status" "${med:--}" "${kb:--}" "$first_label" "$r" "$RSS_MB" \
			"$verdict" "${runs:--}" >>"$RESULTS_NEW"
	done
	ROWS=()
	if [ -n "$first_kb" ] && [ "$last_label" != "$first_label" ]; then
		r=$(ratio "$last_kb" "$first_kb")
		if awk -v r="$r" -v t="$RSS_FLAT" 'BEGIN { exit !(r <= t) }'; then flat=yes; else flat=no; fi
		if [ "$over" = no ] && [ "$flat" = yes ]; then verdict=PASS; else verdict=MISS; fi
		note "merge_rss_verdict=$verdict all_below_${RSS_MB}MB=$([ "$over" = no ] && echo yes || echo no) rss_${last_label}_vs_${first_label}=$r flat_target=$RSS_FLAT flat=$flat"
	else
		note "merge_rss_verdict=- (fewer than two pool sizes measured: flatness not judged)"
	fi
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
