# SPDX-License-Identifier: GPL-3.0-or-later
#
# Scenario "lvm_cache": Debian's lvm2 runs our cache_check when it
# activates a cached LV.  An origin LV with a cache pool attached (smq,
# writeback) is written, deactivated (LVM checks the metadata then too)
# and activated again with LVM's default cache_check_options (lvm2 2.03:
# "-q --clear-needs-check-flag"); the tools log proves that our
# cache_check ran on the pool's metadata with exactly those options, and
# the LV reads back as written.  Then the NEEDS_CHECK flag is set in the
# cache superblock: our cache_check must clear it on activation.
# Negative control: the mapping array's root block zeroed, LVM must
# refuse to activate because our cache_check rejects the metadata; with
# the block put back the LV activates and reads as written.  Last, a range
# of the LV is discarded: the discard bitset the kernel then writes checks
# clean and the LV activates again.
# Every check of the metadata is also clean for 0.9's and 1.x's
# cache_check.

. /thinp/lvm.sh

MiB=1048576

expect_data() {
	h=$(dev_hash "$LV")
	expect_eq "$1" "hash of the cached LV" "$h" "$(cat /tmp/hash.want)"
}

# The cache pool's metadata LV, found while the cache is active.
cmeta_table_save() {
	name=$(dmsetup ls | awk '{ print $1 }' | grep "^$VG-.*cmeta\$" | head -n 1)
	[ -n "$name" ] || fail cmeta_table "no cache metadata device: $(dmsetup ls | tr '\n' ' ')"
	CMETA_NAME=$name
	dmsetup table "$name" >/tmp/cmeta.table
	echo "## cache metadata device $name: $(cat /tmp/cmeta.table)"
}
cmeta_open() {
	must cmeta_open dmsetup create cmeta_direct --table "$(cat /tmp/cmeta.table)"
	dmsetup mknodes
	META=/dev/mapper/cmeta_direct
}
cmeta_close() { must cmeta_close dmsetup remove cmeta_direct; }

# cache_sb_set_flags DEV FLAGS: the cache superblock's flags, re-checksummed
# (the same crc32c as thin's, xor 9031977); flag 2 is NEEDS_CHECK.
cache_sb_csum() { echo $(( $(sb_csum "$1") ^ 160774 ^ 9031977 )); }
cache_sb_set_flags() {
	put_le32 "$1" 4 "$2"
	put_le32 "$1" 0 "$(cache_sb_csum "$1")"
	sync
}

expect_cache_check() {
	c=$1 opts=$2
	tools_log_show
	line=$(grep "^cache_check $opts '/dev/" "$LVM_TOOLS_LOG" | head -n 1)
	[ -n "$line" ] || fail "$c" "LVM did not run our cache_check with $opts"
	dev=$(echo "$line" | sed "s/.* '//; s/'\$//")
	case "$dev" in *cmeta*) ;; *) fail "$c" "cache_check ran on $dev, not the cache metadata" ;; esac
	echo "## ok $c: LVM ran $line"
}

scenario_main() {
	lvm_new_vg
	L lvcreate -L 48M -n lv $VG
	L lvcreate --type cache-pool -L 16M -n cpool $VG
	L lvconvert -y --type cache --cachepool $VG/cpool --cachemode writeback --cachepolicy smq \
		--chunksize 64k $VG/lv
	L lvs -a -o+cache_mode,cache_policy,chunk_size $VG
	LV=$(dm_node $VG lv)
	st=$(dmsetup status $VG-lv)
	echo "## cache status: $st"
	case "$st" in *" cache "*smq*) ;; *) fail lvm_build "not a dm-cache with smq: $st" ;; esac
	# hot ranges, read several times: smq promotes them to the cache
	for i in 1 2; do
		put_direct "$LV" 0 $((2 * MiB)) $((i * MiB))
		put "$LV" $((5 * MiB + 1000)) 300000 $((2 * MiB))
		put_direct "$LV" $((20 * MiB)) $((3 * MiB)) $((4 * MiB))
		drop_caches
		dd if="$LV" of=/dev/null bs=1M count=8 status=none
	done
	put_direct "$LV" $((40 * MiB)) $((1 * MiB)) $((6 * MiB))
	sync
	dev_hash "$LV" >/tmp/hash.want
	info "lv hash $(cat /tmp/hash.want); status $(dmsetup status $VG-lv)"
	cmeta_table_save

	step deactivate
	tools_log_reset
	CHECK=deactivate
	L lvchange -an $VG/lv
	[ -z "$(dmsetup ls | grep "^$VG-")" ] || fail deactivate "devices left: $(dmsetup ls | tr '\n' ' ')"
	tools_log_show
	cmeta_open
	cache_clean check_after_lvm "$META"
	must dump $OURS/cache_dump -o /tmp/c.xml "$META"
	info "mappings $(grep -c '<mapping ' /tmp/c.xml) dirty $(grep -c 'dirty="true"' /tmp/c.xml)"
	[ "$(grep -c '<mapping ' /tmp/c.xml)" -gt 0 ] || fail mappings "the cache holds no mapping to test with"
	cmeta_close

	step activate_default
	tools_log_reset
	CHECK=activate_default
	L lvchange -ay $VG/lv
	opts=$(lvmconfig --type default global/cache_check_options </dev/null | sed 's/.*=\[//; s/\]$//; s/"//g; s/,/ /g')
	want=
	for o in $opts; do want="$want${want:+ }'$o'"; done
	info "default cache_check_options: $want"
	expect_cache_check run_default "$want"
	expect_cache_check run_default_clear "'-q' '--clear-needs-check-flag'"
	expect_data data_default

	step needs_check
	CHECK=needs_check
	L lvchange -an $VG/lv
	cmeta_open
	cache_sb_set_flags "$META" 2
	expect_eq needs_check_set "superblock flags" "$(get_le32 "$META" 4)" 2
	run $OURS/cache_check "$META"
	cmeta_close
	tools_log_reset
	L lvchange -ay $VG/lv
	expect_cache_check run_clear "'-q' '--clear-needs-check-flag'"
	st=$(dmsetup status $VG-lv)
	echo "## cache status: $st"
	case "$st" in *needs_check*|*" ro "*|*Fail*) fail flag_cleared "the cache is not healthy: $st" ;; esac
	expect_data data_needs_check
	L lvchange -an $VG/lv
	cmeta_open
	flags=$(get_le32 "$META" 4)
	[ $((flags & 2)) -eq 0 ] || fail flag_cleared "NEEDS_CHECK still set: flags $flags"
	echo "## ok flag_cleared: superblock flags $flags"
	cache_clean check_after_clear "$META"

	step damaged
	CHECK=damaged
	root=$(get_le32 "$META" 192)
	info "mapping root block $root"
	[ "$root" -gt 0 ] || fail damaged "no mapping root"
	save "$META" $((root * 4096)) 4096 /tmp/root.blk
	must damage dd if=/dev/zero of="$META" bs=4096 seek="$root" count=1 conv=notrunc status=none
	sync
	must_fail damaged_ours $OURS/cache_check -q "$META"
	if [ -x $UPSTREAM/pdata_tools ]; then
		must_fail damaged_upstream $UPSTREAM/pdata_tools cache_check -q "$META"
	fi
	cmeta_close
	tools_log_reset
	L_fail lvchange -ay $VG/lv
	expect_cache_check refused_by_ours "'-q' '--clear-needs-check-flag'"
	# LVM's reason must be the checker's verdict, not the kernel's
	grep -q "Check of pool .* failed (status:1)" /tmp/run.out ||
		fail refused_by_ours "LVM failed for another reason: $(grep -v WARNING /tmp/run.out | tail -n 2 | tr '\n' ' ')"
	case "$(dmsetup table $VG-lv 2>/dev/null)" in *" cache "*) fail refused "the damaged cache was activated" ;; esac
	echo "## ok refused: LVM did not activate the damaged cache"
	# anything LVM left active goes, then the block is put back
	L vgchange -an $VG
	cmeta_open
	put_file /tmp/root.blk "$META" $((root * 4096))
	sync
	cache_clean check_put_back "$META"
	cmeta_close
	tools_log_reset
	L lvchange -ay $VG/lv
	expect_cache_check run_put_back "'-q' '--clear-needs-check-flag'"
	expect_data data_put_back

	step discard
	CHECK=discard
	# discarded ranges are recorded in the discard bitset on deactivation
	must discard blkdiscard -o $((24 * MiB)) -l $((8 * MiB)) "$LV"
	sync
	dev_hash "$LV" >/tmp/hash.want
	L lvchange -an $VG/lv
	cmeta_open
	dnr=$(get_le32 "$META" 224)
	info "discard block size $(get_le32 "$META" 216) sectors, $dnr blocks"
	[ "$dnr" -gt 0 ] || fail discard_bitset "the kernel wrote no discard bitset"
	cache_clean check_discards "$META"
	# no dump writes the discard bitset: ours is 0.9's (its dirty flags
	# aside: 0.9 ignores the version 2 dirty bitset)
	must dump $OURS/cache_dump -o /tmp/d.xml "$META"
	expect_eq dump_vs_debian "our dump vs 0.9's" \
		"$($DEBIAN/pdata_tools cache_dump "$META" | sed 's/dirty="true"/dirty="false"/' | md5sum)" \
		"$(sed 's/dirty="true"/dirty="false"/' /tmp/d.xml | md5sum)"
	expect_eq no_discards "discard elements in our dump" "$(grep -c '<discard' /tmp/d.xml)" 0
	cmeta_close
	tools_log_reset
	L lvchange -ay $VG/lv
	expect_cache_check run_discards "'-q' '--clear-needs-check-flag'"
	expect_data data_discards

	step final
	L lvchange -an $VG/lv
	L vgck $VG
	cmeta_open
	cache_clean check_final "$META"
	cmeta_close
}
