#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The snapshot_merge benchmark (make bench runs it after run-bench.sh):
# a 4 GiB origin, a dm-snapshot store with 20% of its chunks changed,
# random and clustered (bench/gen-snapstore.py).  Times, in the same run:
#   floor   dd of the same number of bytes, COW to origin, sequential,
#           1 MiB blocks, fdatasync at the end (as snapshot_merge flushes);
#   scatter the scattered-write floor: the same writes as the merge at the
#           same places (the --dd lines' destinations, in origin order),
#           data from memory, then fdatasync (bench/scatter-write.py): a
#           random store's chunks land in that many places, which a
#           sequential dd does not pay;
#   ours    snapshot_merge --commit (default engine for the device kind);
#   script  the --dd lines run by sh, as list_exception_chunks users did:
#           the first SNAP_BENCH_SCRIPT_LINES lines are timed and the time
#           scaled to all of them (a full run takes many minutes).
# Each merge is checked against the table read here by Python, on a
# sample of the chunks.  Not a test: MISS is a result, exit 1 only when
# something is broken (a tool fails, a merged chunk is wrong).
#
#   bench/snapshot-bench.sh BUILD_DIR [random|clustered]...
#
# Environment:
#   BENCH_DIR               cache (default /var/tmp/thinp-bench); the stores
#                           and origin live in BENCH_DIR/snapshot
#   BENCH_RUNS              timed runs per measure, median reported (3)
#   SNAP_BENCH_ORIGIN_MIB   origin size (4096)
#   SNAP_BENCH_PERCENT      changed chunks (20)
#   SNAP_BENCH_CHUNK        chunk size in sectors (8: LVM's default 4 KiB)
#   SNAP_BENCH_SCRIPT_LINES dd lines timed for the script (2000)
#   SNAP_BENCH_LOOP         1: also merge through loop devices (root)
#   targets: SNAP_BENCH_FLOOR_TARGET (1.3), SNAP_BENCH_SCRIPT_TARGET (5),
#            SNAP_BENCH_RSS_MB (32)

set -u
export LC_ALL=C

BUILD=${1:?usage: $0 BUILD_DIR [random|clustered]...}
shift
SHAPES=${*:-random clustered}
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON3=${PYTHON3:-python3}
DIR=${BENCH_DIR:-/var/tmp/thinp-bench}/snapshot
RUNS=${BENCH_RUNS:-3}
ORIGIN_MIB=${SNAP_BENCH_ORIGIN_MIB:-4096}
PERCENT=${SNAP_BENCH_PERCENT:-20}
CHUNK=${SNAP_BENCH_CHUNK:-8}
SCRIPT_LINES=${SNAP_BENCH_SCRIPT_LINES:-2000}
FLOOR_TARGET=${SNAP_BENCH_FLOOR_TARGET:-1.3}
SCRIPT_TARGET=${SNAP_BENCH_SCRIPT_TARGET:-5}
RSS_MB=${SNAP_BENCH_RSS_MB:-32}
GNU_TIME=/usr/bin/time
MERGE=$BUILD/snapshot_merge
RESULTS=$DIR/results.txt
PROBLEMS=0

die() { echo "snapshot-bench: $*" >&2; exit 1; }
[ -x "$MERGE" ] || die "no $MERGE"
[ -x "$GNU_TIME" ] || die "needs GNU time ($GNU_TIME)"
mkdir -p "$DIR" || die "cannot create $DIR"
exec 9>"$DIR/.lock"
flock 9

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

ORIGIN=$DIR/origin
if [ "$(stat -c %s "$ORIGIN" 2>/dev/null)" != $((ORIGIN_MIB << 20)) ]; then
	echo "-- writing a $ORIGIN_MIB MiB origin"
	dd if=/dev/zero of="$ORIGIN" bs=16M count=$((ORIGIN_MIB / 16)) status=none || die "cannot write $ORIGIN"
fi

# check SHAPE: a sample of the table's chunks, compared in Python
check_merge() {
	"$PYTHON3" - "$1" "$ORIGIN" <<'PYEOF'
import random, struct, sys
cow, origin = sys.argv[1:3]
with open(cow, 'rb') as f:
    magic, valid, version, cs = struct.unpack('<IIII', f.read(16))
    cb = cs * 512; epa = cb // 16
    last = {}
    a = 0
    while True:
        f.seek((1 + a * (epa + 1)) * cb)
        raw = f.read(cb)
        end = False
        for k in range(epa):
            old, new = struct.unpack_from('<QQ', raw, 16 * k)
            if new == 0:
                end = True
                break
            last[old] = new
        if end or len(raw) < cb:
            break
        a += 1
    sample = random.Random(7).sample(sorted(last), min(3000, len(last)))
    with open(origin, 'rb') as o:
        for old in sample:
            f.seek(last[old] * cb); o.seek(old * cb)
            if f.read(cb) != o.read(cb):
                print('chunk %d differs' % old); sys.exit(1)
print('ok: %d of %d chunks compared' % (len(sample), len(last)))
PYEOF
}

{
	echo "# snapshot_merge benchmark, $(date -Is), host $(uname -n), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), nproc $(nproc)"
	echo "run origin_mib=$ORIGIN_MIB percent=$PERCENT chunk_sectors=$CHUNK runs=$RUNS dir=$DIR"
} >"$RESULTS.new"
note() { echo "   $*"; echo "$*" >>"$RESULTS.new"; }

echo "snapshot_merge benchmark: $ORIGIN_MIB MiB origin, $PERCENT% of its $((CHUNK * 512))-byte chunks changed; $RUNS runs, medians; in $DIR"
for shape in $SHAPES; do
	cow=$DIR/cow.$shape.$ORIGIN_MIB.$PERCENT.$CHUNK
	if [ ! -s "$cow" ]; then
		echo "-- generating the $shape store"
		"$PYTHON3" "$HERE/gen-snapstore.py" "$cow.tmp" $((ORIGIN_MIB << 20)) "$CHUNK" "$PERCENT" "$shape" 1 >/dev/null &&
			mv "$cow.tmp" "$cow" || die "cannot generate $cow"
	fi
	info=$("$BUILD/snapshot_check" "$cow") || die "snapshot_check $cow failed"
	chunks=$(echo "$info" | sed -n 's/.*; \([0-9]*\) origin chunks changed.*/\1/p')
	extents=$(echo "$info" | sed -n 's/.*, \([0-9]*\) extents$/\1/p')
	bytes=$((chunks * CHUNK * 512))
	echo "-- $shape: $chunks chunks ($((bytes >> 20)) MiB) in $extents extents"
	"$MERGE" -i "$cow" -o "$ORIGIN" --dd -q | grep '^dd ' >"$DIR/script.all"
	cat "$cow" "$ORIGIN" >/dev/null	# warm (unless something drops the page cache: see drops=)
	drops0=$(awk '$1 == "drop_pagecache" { print $2 }' /proc/vmstat)

	floor=() scatter=() ours=() rss=()
	for r in $(seq "$RUNS"); do
		t=$(now)
		dd if="$cow" of="$ORIGIN" bs=1M count=$((bytes >> 20)) conv=notrunc,fdatasync status=none || die "dd failed"
		floor+=("$(elapsed "$t")")
		t=$(now)
		"$PYTHON3" "$HERE/scatter-write.py" "$ORIGIN" "$DIR/script.all" || die "scatter-write failed"
		scatter+=("$(elapsed "$t")")
		t=$(now)
		"$GNU_TIME" -f %M -o "$DIR/rss" "$MERGE" -i "$cow" -o "$ORIGIN" --commit -q || { echo "snapshot_merge failed"; PROBLEMS=$((PROBLEMS + 1)); }
		ours+=("$(elapsed "$t")")
		rss+=("$(cat "$DIR/rss")")
	done
	check=$(check_merge "$cow") || { echo "   WRONG: $check"; PROBLEMS=$((PROBLEMS + 1)); }
	drops=$(( $(awk '$1 == "drop_pagecache" { print $2 }' /proc/vmstat) - drops0 ))
	f=$(printf '%s\n' "${floor[@]}" | median)
	sc=$(printf '%s\n' "${scatter[@]}" | median)
	o=$(printf '%s\n' "${ours[@]}" | median)
	m=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1)

	# the dd script: a timed prefix, scaled
	lines=$(wc -l <"$DIR/script.all")
	head -n "$SCRIPT_LINES" "$DIR/script.all" >"$DIR/script.part"
	part=$(wc -l <"$DIR/script.part")
	t=$(now)
	sh "$DIR/script.part" || { echo "dd script failed"; PROBLEMS=$((PROBLEMS + 1)); }
	sync
	p=$(elapsed "$t")
	s=$(awk -v p="$p" -v n="$part" -v all="$lines" 'BEGIN { printf "%.1f", p * all / n }')

	rf=$(ratio "$o" "$f") rs=$(ratio "$s" "$o") rsc=$(ratio "$o" "$sc")
	vf=MISS; le "$rf" "$FLOOR_TARGET" && vf=PASS
	vs=MISS; le "$SCRIPT_TARGET" "$rs" && vs=PASS
	vr=MISS; [ "$m" -lt $((RSS_MB * 1024)) ] && vr=PASS
	note "$shape chunks=$chunks extents=$extents floor_s=$f scatter_s=$sc ours_s=$o floor_runs=${floor[*]} scatter_runs=${scatter[*]} ours_runs=${ours[*]} rss_kib=$m script_s=$s (${part} of $lines lines in ${p} s) drops=$drops $check"
	note "$shape ours/floor=$rf target<=$FLOOR_TARGET $vf; ours/scatter=$rsc; script/ours=$rs target>=$SCRIPT_TARGET $vs; rss<${RSS_MB}MB $vr"

	if [ "${SNAP_BENCH_LOOP:-0}" = 1 ] && [ "$(id -u)" = 0 ]; then
		lc=$(losetup -f --show "$cow") && lo=$(losetup -f --show "$ORIGIN") || die "losetup failed"
		t=$(now)
		dd if="$lc" of="$lo" bs=1M count=$((bytes >> 20)) iflag=direct oflag=direct status=none
		lf=$(elapsed "$t")
		t=$(now)
		"$MERGE" -i "$lc" -o "$lo" --commit -q || PROBLEMS=$((PROBLEMS + 1))
		lm=$(elapsed "$t")
		losetup -d "$lc" "$lo"
		note "$shape loop: floor_s=$lf ours_s=$lm ours/floor=$(ratio "$lm" "$lf")"
	fi
done
mv "$RESULTS.new" "$RESULTS"
echo "results in $RESULTS"
[ "$PROBLEMS" -eq 0 ]
