#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Demo of thin_merge: builds (scripts/bootstrap.sh), generates the metadata
# of a pool holding the copy of an external origin (device 1), the external
# snapshot written to meanwhile (device 2) and an unrelated volume
# (device 3), merges 2 over 1, checks the result with our thin_check and
# Debian's, and shows thin_ls and thin_dump before and after.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
scripts/bootstrap.sh
bin=$top/build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo
echo "== generating a pool: origin copy (1), external snapshot (2), another volume (3)"
"${PYTHON3:-python3}" - "$work/pool.xml" <<'PY'
import random, sys
random.seed(7)
out = open(sys.argv[1], "w")
out.write('<superblock uuid="" time="2" transaction="4" flags="0" version="2" '
          'data_block_size="128" nr_data_blocks="65536">\n')
def device(dev, maps, trans, ctime, stime):
    out.write(f'  <device dev_id="{dev}" mapped_blocks="{len(maps)}" transaction="{trans}" '
              f'creation_time="{ctime}" snap_time="{stime}">\n')
    for o, d, t in maps:
        out.write(f'    <single_mapping origin_block="{o}" data_block="{d}" time="{t}"/>\n')
    out.write('  </device>\n')
# 1: the background copy of a 16 MiB source (256 blocks of 64 KiB), allocated
#    in between the snapshot's writes
# 2: the external snapshot: 24 blocks written while the copy ran, some
#    beyond what the copy had reached, one past the copy's end
writes = sorted(random.sample(range(256), 23)) + [300]
copy, snap, d = [], [], 0
for o in range(256):
    copy.append((o, d, 0)); d += 1
    if writes and writes[0] <= o:
        snap.append((writes.pop(0), d, 1)); d += 1
snap += [(w, d + i, 1) for i, w in enumerate(writes)]
device(1, copy, 0, 0, 0)
device(2, sorted(snap), 1, 1, 1)
# 3: an unrelated volume
device(3, [(o, 2000 + o, 2) for o in range(64)], 2, 2, 2)
out.write('</superblock>\n')
PY
truncate -s 8M "$work/meta.bin" "$work/merged.bin"
"$bin/thin_restore" -i "$work/pool.xml" -o "$work/meta.bin"

echo
echo "== before: thin_ls"
"$bin/thin_ls" -o DEV,MAPPED_BLOCKS,EXCLUSIVE,SHARED,CREATE_TIME,SNAP_TIME "$work/meta.bin"
echo
echo "== thin_merge --dry-run"
"$bin/thin_merge" -i "$work/meta.bin" -o "$work/merged.bin" --origin 1 --snapshot 2 --dry-run
echo
echo "== thin_merge -i meta -o merged --origin 1 --snapshot 2"
"$bin/thin_merge" -i "$work/meta.bin" -o "$work/merged.bin" --origin 1 --snapshot 2
echo
echo "== after: thin_ls"
"$bin/thin_ls" -o DEV,MAPPED_BLOCKS,EXCLUSIVE,SHARED,CREATE_TIME,SNAP_TIME "$work/merged.bin"
echo
echo "== after: thin_check (ours), then Debian's thin_check 0.9.0"
"$bin/thin_check" "$work/merged.bin"
debian=${THINP_ORACLE_DIR:-/var/cache/thinp-tools/oracles}/0.9/usr/sbin/thin_check
if [ -x "$debian" ]; then
	"$debian" -q "$work/merged.bin" && echo "   Debian thin_check: clean"
else
	echo "   (Debian's thin_check is not in the oracle cache: scripts/fetch-oracles.sh)"
fi
echo
echo "== before/after: thin_dump of device 1 (first mappings), ranges as thin_dump writes them"
"$bin/thin_dump" --dev-id 1 "$work/meta.bin" | head -n 8
echo "   ..."
"$bin/thin_dump" --dev-id 1 "$work/merged.bin" | head -n 8
echo "   ..."
echo
echo "== where the snapshot wrote, the merged device now maps the snapshot's block (time 1):"
"$bin/thin_dump" --format human_readable --dev-id 2 "$work/meta.bin" | grep ' -> ' | head -n 3 |
while read -r line; do
	key=${line%% *}
	printf '   snapshot: %-18s merged: %s\n' "$line" \
		"$("$bin/thin_dump" --format human_readable --dev-id 1 "$work/merged.bin" | grep -E "^ +$key -> " )"
done
