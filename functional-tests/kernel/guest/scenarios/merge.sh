# SPDX-License-Identifier: GPL-3.0-or-later
#
# Scenarios "merge*" and "negative_control": the kernel activates what
# thin_merge wrote, and the merged device reads exactly what the external
# snapshot showed.
#
# The workflow: an external origin disk holds a seeded pattern; a pool
# holds O (id 1, an empty thin device) and S (id 2, an external snapshot
# of the origin disk: "thin <pool> 2 <origin>").  The origin is copied into
# O in eight chunks while S is written at awkward places between chunks
# (partial blocks, sub-page and unaligned multi-block ranges, the last
# block and its last sector, overwrites, blocks the copy has not reached),
# so the allocations of O and S interleave.  S's hash is recorded; the
# pool is removed; the merge runs on the metadata disk, as an admin would;
# the pool is activated on the result with the merged device M and no
# external origin.  M must read exactly as S did; the id that disappears
# cannot be activated; the pool's used data blocks equal the distinct data
# blocks the dump maps (nothing leaked); the kernel then writes to M and
# fills the rest of the pool with a new device, after which M (and every
# other device) must read as before (nothing wrongly marked free, sharing
# kept).
#
# Parameters (kernel command line, see the host's scenario table):
#   THINP_MERGE    tool: our thin_merge; wrong: a deliberately wrong merge
#                  (S's mappings dropped instead of laid over O's), the
#                  negative control, which must fail at merged_hash
#   THINP_INPLACE  1: thin_merge --in-place on the pool's metadata disk;
#                  0: thin_merge -o to the second metadata disk
#   THINP_REBASE   1: --rebase (M keeps S's id)
#   THINP_SHARED   1: the pool also holds U (id 3, unrelated, written
#                  between the chunks) and T (id 4, an internal snapshot of
#                  O taken halfway through the copy); both must read as
#                  before the merge, also after M is written where it
#                  shares blocks with T
#
# Disks: meta, meta2 (16 MiB), data, origin (read-only), pat (read-only).

O=1 S=2 U=3 T=4 F=9

# blk N: byte offset of data block N
blk() { echo $(($1 * BS_BYTES)); }

# between_chunks K: what happens after chunk K (0..6) of the copy.
between_chunks() {
	s=/dev/mapper/s
	case $1 in
	0)	# a partial block (O_DIRECT, 4 KiB in a 64 KiB block) and a
		# sub-page piece (buffered: read-modify-write through dm-thin)
		put_direct $s $(($(blk 5) + 8192)) 4096 0
		put $s $(($(blk 7) + 100)) 1000 100000 ;;
	1)	# an unaligned multi-block range, and full blocks the copy
		# has not reached yet
		put $s $(($(blk 40) + 1000)) $((3 * BS_BYTES + 777)) 200000
		put_direct $s $(blk $((NB * 3 / 4))) $((2 * BS_BYTES)) 500000 ;;
	2)	# the last block, then its last sector again
		put_direct $s $(blk $((NB - 1))) $BS_BYTES $MiB
		put_direct $s $(($(blk $NB) - 512)) 512 $((2 * MiB + 4096)) ;;
	3)	# overwrites: across the earlier unaligned range, and block 5
		put $s $(($(blk 40) + 30000)) $BS_BYTES $((3 * MiB))
		put_direct $s $(blk 5) $BS_BYTES $((4 * MiB))
		if [ "$THINP_SHARED" = 1 ]; then
			# T: O as it is halfway through the copy
			snap o $T $O
		fi ;;
	4)	# a sector-aligned range over twelve blocks
		put_direct $s $(($(blk 100) - 4096)) $((10 * BS_BYTES + 8192)) $((5 * MiB)) ;;
	5)	# one sector in a block the copy has not reached
		put_direct $s $(($(blk $((NB * 7 / 8 + 3))) + 512)) 512 $((6 * MiB)) ;;
	6)	# and over it again, buffered, two blocks
		put $s $(blk $((NB * 7 / 8 + 3))) $((2 * BS_BYTES)) $((7 * MiB)) ;;
	esac
	if [ "$THINP_SHARED" = 1 ]; then
		put /dev/mapper/u $(($1 * MiB + 512 * $1)) $((BS_BYTES + 4096)) $(($1 * 65536))
	fi
}

# do_merge: runs the merge on the deactivated pool's metadata; sets NEW
# (the metadata disk the pool is activated on afterwards).
do_merge() {
	r=
	[ "$THINP_REBASE" = 1 ] && r=--rebase
	case $THINP_MERGE in
	tool)
		if [ "$THINP_INPLACE" = 1 ]; then
			NEW=$META
			must merge $OURS/thin_merge -i "$META" --in-place --origin $O --snapshot $S $r
		else
			NEW=$META2
			before=$(md5sum <"$META")
			must merge $OURS/thin_merge -i "$META" -o "$META2" --origin $O --snapshot $S $r
			expect_eq merge_input_unchanged "md5 of the input metadata" "$(md5sum <"$META")" "$before"
		fi ;;
	wrong)
		# The negative control: drop S instead of laying it over O.
		NEW=$META2
		awk -v s=$S '
			$0 ~ "<device dev_id=\"" s "\"" { skip = 1 }
			!skip { print }
			skip && /<\/device>/ { skip = 0 }' /tmp/pre-merge.xml >/tmp/wrong.xml
		restore_with "$(restore_writer)" /tmp/wrong.xml "$META2" ;;
	*)	fail setup "unknown THINP_MERGE=$THINP_MERGE" ;;
	esac
}

scenario_main() {
	MiB=1048576
	META=$(disk meta) META2=$(disk meta2) DATA=$(disk data) ORIGIN=$(disk origin)
	SECT=$(sectors "$ORIGIN")
	NB=$((SECT / BS))
	CHUNK=$((NB / 8))
	[ $((CHUNK * 8)) = $NB ] || fail setup "origin size must be a multiple of 8 blocks"
	M_ID=$O GONE_ID=$S
	[ "$THINP_REBASE" = 1 ] && { M_ID=$S; GONE_ID=$O; }
	info "origin_blocks=$NB merge=$THINP_MERGE in_place=$THINP_INPLACE rebase=$THINP_REBASE shared=$THINP_SHARED"

	step prepare
	must zero_meta dd if=/dev/zero of="$META" bs=4096 count=1 status=none
	pool_up "$META" "$DATA"
	pool_msg create_thin $O
	pool_msg create_thin $S
	thin_up o $O $SECT
	thin_up s $S $SECT "$ORIGIN"
	if [ "$THINP_SHARED" = 1 ]; then
		pool_msg create_thin $U
		thin_up u $U 65536
	fi
	h_origin=$(dev_hash "$ORIGIN")
	expect_eq external_snapshot "S before any write" "$(dev_hash /dev/mapper/s)" "$h_origin"

	step copy_and_write
	k=0
	while [ $k -lt 8 ]; do
		must copy dd if="$ORIGIN" of=/dev/mapper/o bs=$BS_BYTES skip=$((k * CHUNK)) seek=$((k * CHUNK)) count=$CHUNK status=none
		between_chunks $k
		k=$((k + 1))
	done
	drop_caches
	expect_eq copy "O after the copy" "$(dev_hash /dev/mapper/o)" "$h_origin"
	h_s=$(dev_hash /dev/mapper/s)
	[ "$h_s" != "$h_origin" ] || fail copy_and_write "S reads like the origin: the writes did not land"
	info "s_mapped=$(thin_mapped s) o_mapped=$(thin_mapped o) used=$(pool_data_used)"
	if [ "$THINP_SHARED" = 1 ]; then
		thin_up t $T $SECT
		h_t=$(dev_hash /dev/mapper/t)
		h_u=$(dev_hash /dev/mapper/u)
		[ "$h_t" != "$h_origin" ] || fail copy_and_write "T reads like the whole origin: it was taken too late"
		dm_down t u
	fi
	dm_down o s pool

	step merge
	check_clean check_before_merge "$META"
	dump /tmp/pre-merge.xml "$META"
	do_merge
	check_clean check_merged "$NEW"
	dump /tmp/merged.xml "$NEW"
	devs=$(xml_devices /tmp/merged.xml | tr '\n' ' ')
	info "merged_devices=$devs"
	case " $devs" in *" $M_ID "*) ;; *) fail merged_devices "no device $M_ID in the merged metadata: $devs" ;; esac
	case " $devs" in *" $GONE_ID "*) fail merged_devices "device $GONE_ID still in the merged metadata: $devs" ;; esac
	if [ "$THINP_SHARED" = 1 ]; then
		expect_eq merged_devices "devices after the merge" "$devs" "$M_ID $U $T "
	fi
	m_map=$(xml_mappings /tmp/merged.xml $M_ID)
	expect_eq merged_details "M's mapped_blocks vs its mappings" "$(xml_details_mapped /tmp/merged.xml $M_ID)" "$m_map"
	want_used=$(xml_used /tmp/merged.xml)

	step activate_merged
	pool_up "$NEW" "$DATA"
	thin_up m $M_ID $SECT
	expect_eq merged_hash "hash of the merged device" "$(dev_hash /dev/mapper/m)" "$h_s"
	expect_eq merged_mapped "M's mapped blocks (kernel)" "$(thin_mapped m)" "$m_map"
	CHECK=gone_id must_fail gone_id dmsetup create gone --table "0 $SECT thin $POOL $GONE_ID"
	dmsetup remove gone >/dev/null 2>&1
	used=$(pool_data_used)
	expect_eq no_leak "pool's used data blocks vs the blocks the dump maps" "$used" "$want_used"
	if [ "$THINP_SHARED" = 1 ]; then
		thin_up t $T $SECT
		thin_up u $U 65536
		expect_eq others_kept "hash of T" "$(dev_hash /dev/mapper/t)" "$h_t"
		expect_eq others_kept "hash of U" "$(dev_hash /dev/mapper/u)" "$h_u"
	else
		expect_eq no_leak "pool's used data blocks vs M's mappings" "$used" "$m_map"
	fi

	step write_merged
	# Blocks 200..203 came from O (T shares them), 41 from S, the one
	# before last from O's second half: a write must never reach T or U.
	put_direct /dev/mapper/m $(blk 200) $((4 * BS_BYTES)) 0
	put /dev/mapper/m $(($(blk 41) + 333)) 5000 $MiB
	put_direct /dev/mapper/m $(blk $((NB - 2))) $BS_BYTES $((2 * MiB))
	expect_eq write_merged "M's rewritten blocks" "$(range_hash /dev/mapper/m $(blk 200) $((4 * BS_BYTES)))" \
		"$(range_hash "$(disk pat)" 0 $((4 * BS_BYTES)))"
	if [ "$THINP_SHARED" = 1 ]; then
		expect_eq sharing_safe "hash of T after writes to M" "$(dev_hash /dev/mapper/t)" "$h_t"
		expect_eq sharing_safe "hash of U after writes to M" "$(dev_hash /dev/mapper/u)" "$h_u"
	fi
	h_m=$(dev_hash /dev/mapper/m)

	step fill_pool
	free=$(( $(pool_data_total) - $(pool_data_used) ))
	info "filling $free free data blocks"
	pool_msg create_thin $F
	thin_up fill $F $((free * BS))
	must fill dd if=/dev/zero of=/dev/mapper/fill bs=$BS_BYTES count=$free conv=fsync status=none
	expect_eq fill "pool's used data blocks after the fill" "$(pool_data_used)" "$(pool_data_total)"
	pool_healthy fill
	expect_eq nothing_wrongly_free "hash of M after the fill" "$(dev_hash /dev/mapper/m)" "$h_m"
	if [ "$THINP_SHARED" = 1 ]; then
		expect_eq nothing_wrongly_free "hash of T after the fill" "$(dev_hash /dev/mapper/t)" "$h_t"
		expect_eq nothing_wrongly_free "hash of U after the fill" "$(dev_hash /dev/mapper/u)" "$h_u"
		dm_down t u
	fi
	dm_down m fill pool

	step check_after
	check_clean check_after "$NEW"
	dump /tmp/after.xml "$NEW"
}
