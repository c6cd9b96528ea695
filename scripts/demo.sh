#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Demo: builds (scripts/bootstrap.sh), generates a small pool's metadata,
# then shows what our tools make of it.  Work files go to a temp dir.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
scripts/bootstrap.sh
bin=$top/build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== generating a pool: an origin copy, an external snapshot, another device"
"${PYTHON3:-python3}" - "$work/pool.xml" <<'PY'
import random, sys
random.seed(7)
out = open(sys.argv[1], "w")
out.write('<superblock uuid="" time="2" transaction="4" flags="0" version="2" '
          'data_block_size="128" nr_data_blocks="65536">\n')
def device(dev, runs, ctime, stime):
    n = sum(l for _, _, l, _ in runs)
    out.write(f'  <device dev_id="{dev}" mapped_blocks="{n}" transaction="0" '
              f'creation_time="{ctime}" snap_time="{stime}">\n')
    for o, d, l, t in runs:
        if l == 1:
            out.write(f'    <single_mapping origin_block="{o}" data_block="{d}" time="{t}"/>\n')
        else:
            out.write(f'    <range_mapping origin_begin="{o}" data_begin="{d}" length="{l}" time="{t}"/>\n')
    out.write('  </device>\n')
# device 1: the copy of the external origin (16 MiB at 64 KiB blocks)
device(1, [(0, 0, 256, 0)], 0, 0)
# device 2: the external snapshot, with a few writes
device(2, [(o, 300 + i, 1, 1) for i, o in enumerate(sorted(random.sample(range(300), 12)))], 1, 1)
# device 3: an unrelated volume
device(3, [(0, 1000, 64, 2)], 2, 2)
out.write('</superblock>\n')
PY
truncate -s 8M "$work/meta.bin"
/usr/sbin/thin_restore -i "$work/pool.xml" -o "$work/meta.bin" >/dev/null

echo "== thin_check"
"$bin/thin_check" "$work/meta.bin"
echo "== thin_dump --format human_readable (first lines)"
"$bin/thin_dump" --format human_readable "$work/meta.bin" | head -n 20
echo "== thin_dump matches thin-provisioning-tools 0.9 byte for byte:"
"$bin/thin_dump" "$work/meta.bin" >"$work/ours.xml"
/usr/sbin/thin_dump "$work/meta.bin" >"$work/theirs.xml"
cmp "$work/ours.xml" "$work/theirs.xml" && echo "   yes ($(wc -l <"$work/ours.xml") lines)"
