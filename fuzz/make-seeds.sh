#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Makes the seed corpora in corpus/ from small pools restored with a build
# of ours: make-seeds.sh BUILD_DIR (e.g. ../build).  Metadata images are
# 64 blocks (256 KiB) cut after their last used block; one pool gets a
# held metadata snapshot (functional-tests/lib/heldroot.py).
set -eu
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$here"
mkdir -p corpus/validators corpus/btree-walk corpus/space-map corpus/xml corpus/merge corpus/repair \
	corpus/cache-md corpus/era-md corpus/cache-xml corpus/era-xml corpus/snapshot corpus/pack

pool() {	# name, devices (dev_id:origin_begin:data_begin:length ...)
	name=$1; shift
	{
		echo '<superblock uuid="" time="2" transaction="3" flags="0" version="2" data_block_size="128" nr_data_blocks="40000">'
		last=
		for d in "$@"; do
			IFS=: read -r id ob db len <<-X
			$d
			X
			if [ "$id" != "$last" ]; then
				[ -n "$last" ] && echo '  </device>'
				echo "  <device dev_id=\"$id\" mapped_blocks=\"MAPPED$id\" transaction=\"1\" creation_time=\"0\" snap_time=\"1\">"
				last=$id
			fi
			if [ "$len" = 1 ]; then
				echo "    <single_mapping origin_block=\"$ob\" data_block=\"$db\" time=\"1\"/>"
			else
				echo "    <range_mapping origin_begin=\"$ob\" data_begin=\"$db\" length=\"$len\" time=\"0\"/>"
			fi
		done
		echo '  </device>'
		echo '</superblock>'
	} > "$tmp/$name.xml"
	# mapped_blocks: the sum of each device's lengths
	for id in $(printf '%s\n' "$@" | cut -d: -f1 | sort -u); do
		n=$(printf '%s\n' "$@" | awk -F: -v id="$id" '$1 == id { s += $4 } END { print s }')
		sed -i "s/MAPPED$id\"/$n\"/" "$tmp/$name.xml"
	done
	truncate -s 256K "$tmp/$name.md"
	"$build/thin_restore" -q -i "$tmp/$name.xml" -o "$tmp/$name.md"
	"$build/thin_check" -q "$tmp/$name.md"
	cp "$tmp/$name.xml" "corpus/xml/$name.xml"
}

trim() {	# image -> image without its trailing zero blocks
	python3 - "$1" "$2" <<-'X'
	import sys
	data = open(sys.argv[1], 'rb').read()
	n = len(data) // 4096
	while n > 1 and not any(data[(n - 1) * 4096:n * 4096]):
	    n -= 1
	open(sys.argv[2], 'wb').write(data[:n * 4096])
	X
}

pool small 1:0:5:3 2:0:5:2 2:2:9:1 3:0:20:2
pool leaves 1:0:0:600 1:1000:600:300 2:1:5000:1 2:599:5001:1 2:1100:5002:1
pool shared 1:0:100:40 2:0:100:40 3:0:100:30 3:30:200:1
pool empty 1:0:0:1 2:5:1:1
pool deep 1:0:0:300 1:400:300:300 1:800:600:300 1:1200:900:300 1:1600:1200:300 2:0:2000:1 2:1599:2001:1 2:2100:2002:1
cp "$tmp/shared.md" "$tmp/held.md"
PYTHONPATH="$here/../functional-tests" python3 -c "
import sys
from lib import heldroot
heldroot.build_held_root('$tmp/held.md')
"
for p in small leaves shared empty deep held; do
	trim "$tmp/$p.md" "corpus/merge/$p"
	cp "corpus/merge/$p" "corpus/btree-walk/$p"
	cp "corpus/merge/$p" "corpus/space-map/$p"
	cp "corpus/merge/$p" "corpus/repair/$p"
done
# repair: devices 1 and 2 share a full leaf (a 1.x <def> both refer to),
# as a snapshot and its origin do; device 2 has a leaf of its own after it
sharedleaf_seed() {
	python3 - "$tmp/sharedleaf.xml" <<-'X'
	import sys
	maps = ''.join('    <single_mapping origin_block="%d" data_block="%d" time="0"/>\n'
	               % (2 * i, i) for i in range(200))
	own = ''.join('    <single_mapping origin_block="%d" data_block="%d" time="1"/>\n'
	              % (1000 + i, 500 + i) for i in range(120))
	dev = ('  <device dev_id="%d" mapped_blocks="%d" transaction="1" creation_time="0" '
	       'snap_time="1">\n    <ref name="s"/>\n%s  </device>\n')
	open(sys.argv[1], 'w').write(
	    '<superblock uuid="" time="2" transaction="3" flags="0" version="2" '
	    'data_block_size="128" nr_data_blocks="40000">\n'
	    '  <def name="s">\n' + maps + '  </def>\n' +
	    dev % (1, 200, '') + dev % (2, 320, own) + '</superblock>\n')
	X
	truncate -s 256K "$tmp/sharedleaf.md"
	"$build/thin_restore" -q -i "$tmp/sharedleaf.xml" -o "$tmp/sharedleaf.md"
	"$build/thin_check" -q "$tmp/sharedleaf.md"
	trim "$tmp/sharedleaf.md" corpus/repair/sharedleaf
}
sharedleaf_seed
# validators: single blocks of the small pool (control byte 0: as they are)
python3 - "$tmp/small.md" corpus/validators <<-'X'
import sys
data = open(sys.argv[1], 'rb').read()
for b in range(len(data) // 4096):
    blk = data[b * 4096:(b + 1) * 4096]
    if any(blk):
        open('%s/block%d' % (sys.argv[2], b), 'wb').write(bytes([b & 0x3f]) + blk.rstrip(b'\0'))
X

# cache and era: small XML (functional-tests/lib/cacheera.py's models),
# restored into 64-block images
PYTHONPATH="$here/../functional-tests" python3 - "$tmp" <<-'X'
import sys
from lib import cacheera
d = sys.argv[1]
for name, m in (('small', cacheera.CacheModel(40, seed=1)),
                ('full', cacheera.CacheModel(300, seed=2, fill=0.9)),
                ('empty', cacheera.CacheModel(5, seed=3, fill=0))):
    open('%s/cache-%s.xml' % (d, name), 'wb').write(m.xml())
for name, m in (('small', cacheera.EraModel(40, seed=1)),
                ('wide', cacheera.EraModel(700, current_era=20, nr_writesets=3, seed=2)),
                ('one', cacheera.EraModel(8, current_era=3, nr_writesets=1, seed=3))):
    open('%s/era-%s.xml' % (d, name), 'wb').write(m.xml())
X
for x in "$tmp"/cache-*.xml "$tmp"/era-*.xml; do
	b=$(basename "$x" .xml)
	k=${b%%-*}
	n=${b#*-}
	cp "$x" "corpus/$k-xml/$n.xml"
	for v in 1 2; do
		[ "$k" = era ] && [ "$v" = 2 ] && continue
		opt=
		[ "$k" = cache ] && opt="--metadata-version $v"
		truncate -s 256K "$tmp/$b.md"
		"$build/${k}_restore" -q $opt -i "$x" -o "$tmp/$b.md"
		"$build/${k}_check" -q "$tmp/$b.md"
		trim "$tmp/$b.md" "corpus/$k-md/$n-v$v"
	done
done
# snapshot: small COW stores (functional-tests/lib/snapstore.py)
PYTHONPATH="$here/../functional-tests" python3 - "$here/corpus/snapshot" <<-'X'
import sys
from lib import snapstore
d = sys.argv[1]
snapstore.Store(8).add_many([5, 3, 9, 4, 100, 6, 7]).write(d + '/small')
snapstore.Store(16).add_many(range(0, 40, 3)).write(d + '/chunk16')
s = snapstore.Store(8).add_many([1, 2, 3, 8, 9])
s.write(d + '/merged')
s.clear_tail(d + '/merged', 2)
snapstore.Store(8).write(d + '/empty')
snapstore.Store(8, valid=0).add_many([2, 1]).write(d + '/invalid')
X
# pack: whole packs of the thin pools, and each pack's inflated chunk
# behind a first byte giving the device size in blocks less one
for p in small shared held; do
	"$build/thin_metadata_pack" -q -i "corpus/merge/$p" -o "corpus/pack/$p.pack" 2>/dev/null || {
		cp "corpus/merge/$p" "$tmp/$p.md"; truncate -s 256K "$tmp/$p.md"
		"$build/thin_metadata_pack" -q -i "$tmp/$p.md" -o "corpus/pack/$p.pack"; }
	python3 - "corpus/pack/$p.pack" "corpus/pack/$p.chunk" <<-'X'
	import struct, sys, zlib
	data = open(sys.argv[1], 'rb').read()
	nr = struct.unpack_from('<Q', data, 24)[0]
	n = struct.unpack_from('<Q', data, 32)[0]
	open(sys.argv[2], 'wb').write(bytes([min(nr, 256) - 1]) + zlib.decompress(data[40:40 + n]))
	X
done
echo "seeds made in $here/corpus"
