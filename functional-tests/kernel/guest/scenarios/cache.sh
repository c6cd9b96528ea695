# SPDX-License-Identifier: GPL-3.0-or-later
#
# Scenario "cache": dm-cache (smq, writeback) on metadata our tools wrote.
#
# The kernel builds a cache (writes that leave dirty blocks on the fast
# device); the cache is removed; our cache_check is clean and our
# cache_dump lists dirty mappings; our cache_restore writes the XML to a
# second metadata disk; the cache activates on it and reads exactly what
# was written (dirty blocks come from the fast device); our
# cache_writeback then copies the dirty blocks to the origin and marks
# them clean: the origin ALONE must then read as the cache did.  Every
# metadata written is clean for our cache_check, 0.9's and 1.x's.
# THINP_SABOTAGE=drop_dirty (negative control): the dirty mappings are
# removed from the XML before the restore, so the cache must no longer
# read as before: the scenario must fail at cache_hash.
#
# Disks: cmeta, cmeta2 (16 MiB), fast (16 MiB), slow (32 MiB), pat.

MiB=1048576
CBS=128				# cache block: 64 KiB

cache_up() {
	must cache_activate dmsetup create cache --table \
		"0 $(sectors "$SLOW") cache $1 $FAST $SLOW $CBS 1 writeback smq 0"
	dmsetup mknodes
	st=$(dmsetup status cache)
	echo "## cache status: $st"
	case "$st" in *Fail*|*needs_check*|*" ro "*) fail cache_activate "cache: $st" ;; esac
}

scenario_main() {
	CMETA=$(disk cmeta) CMETA2=$(disk cmeta2) FAST=$(disk fast) SLOW=$(disk slow)

	step build_with_kernel
	must zero_meta dd if=/dev/zero of="$CMETA" bs=4096 count=1 status=none
	cache_up "$CMETA"
	# the same ranges several times: smq promotes hot blocks
	for i in 1 2 3; do
		put_direct /dev/mapper/cache 0 $((2 * MiB)) $((i * MiB))
		put /dev/mapper/cache $((5 * MiB + 1000)) 300000 $((2 * MiB))
		put_direct /dev/mapper/cache $((20 * MiB)) $((3 * MiB)) $((4 * MiB))
		drop_caches
		dd if=/dev/mapper/cache of=/dev/null bs=1M count=8 status=none
	done
	# no more background writeback: the overwrites below stay dirty
	must throttle dmsetup message cache 0 migration_threshold 0
	put_direct /dev/mapper/cache 0 $((2 * MiB)) $((5 * MiB))
	put_direct /dev/mapper/cache $((20 * MiB)) $((3 * MiB)) $((1 * MiB))
	must fsync sync
	h_cache=$(dev_hash /dev/mapper/cache)
	info "cache hash $h_cache; status $(dmsetup status cache)"
	dm_down cache

	step dump_kernel_metadata
	cache_clean check_kernel_metadata "$CMETA"
	must dump $OURS/cache_dump -o /tmp/c.xml "$CMETA"
	dirty=$(grep -c 'dirty="true"' /tmp/c.xml)
	mapped=$(grep -c '<mapping ' /tmp/c.xml)
	info "mapped=$mapped dirty=$dirty"
	[ "$dirty" -gt 0 ] || fail dirty_blocks "the kernel left no dirty block to test with"
	expect_eq dump_vs_debian "our dump vs 0.9's" "$($DEBIAN/pdata_tools cache_dump "$CMETA" | sed 's/dirty="true"/dirty="false"/' | md5sum)" \
		"$(sed 's/dirty="true"/dirty="false"/' /tmp/c.xml | md5sum)"

	step restore
	if [ "$THINP_SABOTAGE" = drop_dirty ]; then
		grep -v 'dirty="true"' /tmp/c.xml >/tmp/c2.xml
		mv /tmp/c2.xml /tmp/c.xml
	fi
	must restore $OURS/cache_restore -i /tmp/c.xml -o "$CMETA2"
	cache_clean check_restored "$CMETA2"

	step activate_restored
	cache_up "$CMETA2"
	expect_eq cache_hash "hash through the cache" "$(dev_hash /dev/mapper/cache)" "$h_cache"
	dm_down cache
	cache_clean check_after_kernel "$CMETA2"

	step writeback
	must writeback $OURS/cache_writeback --metadata-device "$CMETA2" --origin-device "$SLOW" \
		--fast-device "$FAST"
	expect_eq origin_hash "hash of the origin alone" "$(dev_hash "$SLOW")" "$h_cache"
	must dump $OURS/cache_dump -o /tmp/after.xml "$CMETA2"
	expect_eq clean_after "dirty mappings after writeback" "$(grep -c 'dirty="true"' /tmp/after.xml)" 0
	cache_clean check_after_writeback "$CMETA2"
	cache_up "$CMETA2"
	expect_eq cache_hash_after "hash through the cache after writeback" "$(dev_hash /dev/mapper/cache)" "$h_cache"
	dm_down cache
}
