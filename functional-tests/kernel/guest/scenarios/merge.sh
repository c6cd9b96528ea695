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
# blocks the dump maps (nothing leaked).  The kernel then writes new data
# to M (no other device may see it: blocks M shares with T are copied),
# puts M's data back, and fills the rest of the pool with a new device;
# after that M must still read as S did and every other device as before
# (nothing wrongly marked free).  Our thin_check, Debian's and upstream's
# must be clean on the metadata before the merge, after it and at the end.
#
# The thin_merge command lines (do_merge):
#   thin_merge -i META -o META2 --origin 1 --snapshot 2 [--rebase] [--merged-only]
#   thin_merge -i META --in-place --origin 1 --snapshot 2 [--rebase]
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
#   THINP_MERGED_ONLY  1: -o --merged-only: the output holds M alone (U
#                  and T are gone, their blocks free)
#   THINP_SABOTAGE snap_time: after the merge, M's snapshotted_time is set
#                  to 0 (dump, edit, restore): the second negative control,
#                  which must fail at sharing_safe
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
	[ "$THINP_MERGED_ONLY" = 1 ] && r="$r --merged-only"
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
		restore_with "${THINP_WRITER:-$(restore_writer)}" /tmp/wrong.xml "$META2" ;;
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
	# T is O halfway through the copy: its table covers that half only
	# (its mapping count is compared in the dumps).
	T_SECT=$((SECT / 2))
	M_ID=$O GONE_ID=$S
	[ "$THINP_REBASE" = 1 ] && { M_ID=$S; GONE_ID=$O; }
	# U and T survive the merge, unless --merged-only writes M alone.
	OTHERS=0
	[ "$THINP_SHARED" = 1 ] && [ "$THINP_MERGED_ONLY" != 1 ] && OTHERS=1
	info "origin_blocks=$NB merge=$THINP_MERGE in_place=$THINP_INPLACE rebase=$THINP_REBASE shared=$THINP_SHARED merged_only=$THINP_MERGED_ONLY"

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
	# the origin's hash comes from the host, which wrote it
	h_origin=$THINP_ORIGIN_MD5
	expect_eq external_snapshot "S's first 4 MiB before any write" \
		"$(range_hash /dev/mapper/s 0 $((4 * MiB)))" "$(range_hash "$ORIGIN" 0 $((4 * MiB)))"

	step copy_and_write
	k=0
	while [ $k -lt 8 ]; do
		must copy dd if="$ORIGIN" of=/dev/mapper/o bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes \
			skip=$(blk $((k * CHUNK))) seek=$(blk $((k * CHUNK))) count=$(blk $CHUNK) conv=fsync status=none
		between_chunks $k
		k=$((k + 1))
	done
	h_s=$(dev_hash /dev/mapper/s)
	[ "$h_s" != "$h_origin" ] || fail copy_and_write "S reads like the origin: the writes did not land"
	info "s_mapped=$(thin_mapped s) o_mapped=$(thin_mapped o) used=$(pool_data_used)"
	if [ "$THINP_SHARED" = 1 ]; then
		thin_up t $T $T_SECT
		h_t=$(dev_hash /dev/mapper/t)
		h_u=$(dev_hash /dev/mapper/u)
		expect_eq snapshot_t "T (O halfway)" "$h_t" "$(range_hash "$ORIGIN" 0 $((T_SECT * 512)))"
		dm_down t u
	fi
	dm_down o s pool

	step merge
	check_clean check_before_merge "$META"
	dump /tmp/pre-merge.xml "$META"
	# S's mappings, in the log: their data blocks sit between O's
	awk -v s=$S '$0 ~ "<device dev_id=\"" s "\"" { p = 1 } p { print } p && /<\/device>/ { exit }' /tmp/pre-merge.xml
	do_merge
	if [ "$THINP_SABOTAGE" = snap_time ]; then
		# The second negative control: M's snapshotted_time set to 0, so
		# the kernel no longer sees the blocks M shares with T as shared.
		dump /tmp/sabotage.xml "$NEW"
		sed "/<device dev_id=\"$M_ID\"/ s/snap_time=\"[0-9]*\"/snap_time=\"0\"/" /tmp/sabotage.xml >/tmp/sabotaged.xml
		NEW=$META2
		restore_with "$THINP_WRITER" /tmp/sabotaged.xml "$NEW"
	fi
	check_clean check_merged "$NEW"
	dump /tmp/merged.xml "$NEW"
	devs=$(xml_devices /tmp/merged.xml | tr '\n' ' ')
	info "merged_devices=$devs"
	case " $devs" in *" $M_ID "*) ;; *) fail merged_devices "no device $M_ID in the merged metadata: $devs" ;; esac
	case " $devs" in *" $GONE_ID "*) fail merged_devices "device $GONE_ID still in the merged metadata: $devs" ;; esac
	if [ $OTHERS = 1 ]; then
		expect_eq merged_devices "devices after the merge" "$devs" "$(echo "$M_ID $U $T" | tr ' ' '\n' | sort -n | tr '\n' ' ')"
		for d in $U $T; do
			expect_eq others_kept "mappings of device $d" "$(xml_mappings /tmp/merged.xml $d)" \
				"$(xml_mappings /tmp/pre-merge.xml $d)"
		done
	elif [ "$THINP_SHARED" = 1 ]; then
		expect_eq merged_devices "devices written by --merged-only" "$devs" "$M_ID "
	fi
	m_map=$(xml_mappings /tmp/merged.xml $M_ID)
	expect_eq merged_details "M's mapped_blocks vs its mappings" "$(xml_details_mapped /tmp/merged.xml $M_ID)" "$m_map"
	want_used=$(xml_used /tmp/merged.xml)

	step activate_merged
	pool_up "$NEW" "$DATA"
	thin_up m $M_ID $SECT
	expect_eq merged_hash "hash of the merged device" "$(dev_hash /dev/mapper/m)" "$h_s"
	expect_eq merged_mapped "M's mapped blocks (kernel)" "$(thin_mapped m)" "$m_map"
	must_fail gone_id dmsetup create gone --table "0 $SECT thin $POOL $GONE_ID"
	dmsetup remove gone >/dev/null 2>&1
	used=$(pool_data_used)
	expect_eq no_leak "pool's used data blocks vs the blocks the dump maps" "$used" "$want_used"
	if [ $OTHERS = 1 ]; then
		thin_up t $T $T_SECT
		thin_up u $U 65536
		check_others others_kept
	else
		expect_eq no_leak "pool's used data blocks vs M's mappings" "$used" "$m_map"
	fi

	step write_merged
	# Blocks 200..203 came from O (T shares them), 41 from S (a piece
	# of it, buffered), the one before last from O's second half.  New
	# data goes there, T and U must not see it (a block shared with T is
	# copied), then M's own data goes back, so M must read as S did
	# until the end.
	save /dev/mapper/m $(blk 200) $((4 * BS_BYTES)) /tmp/w1
	save /dev/mapper/m $(($(blk 41) + 333)) 5000 /tmp/w2
	save /dev/mapper/m $(blk $((NB - 2))) $BS_BYTES /tmp/w3
	put_direct /dev/mapper/m $(blk 200) $((4 * BS_BYTES)) 0
	put /dev/mapper/m $(($(blk 41) + 333)) 5000 $MiB
	put_direct /dev/mapper/m $(blk $((NB - 2))) $BS_BYTES $((2 * MiB))
	expect_eq write_merged "M's rewritten blocks 200..203" "$(range_hash /dev/mapper/m $(blk 200) $((4 * BS_BYTES)))" \
		"$(range_hash "$(disk pat)" 0 $((4 * BS_BYTES)))"
	expect_eq write_merged "M's rewritten piece of block 41" "$(range_hash /dev/mapper/m $(($(blk 41) + 333)) 5000)" \
		"$(range_hash "$(disk pat)" $MiB 5000)"
	[ $OTHERS = 1 ] && check_others sharing_safe
	put_file /tmp/w1 /dev/mapper/m $(blk 200) direct
	put_file /tmp/w2 /dev/mapper/m $(($(blk 41) + 333))
	put_file /tmp/w3 /dev/mapper/m $(blk $((NB - 2))) direct

	step fill_pool
	free=$(( $(pool_data_total) - $(pool_data_used) ))
	info "filling $free free data blocks"
	pool_msg create_thin $F
	thin_up fill $F $((free * BS))
	must fill dd if=/dev/zero of=/dev/mapper/fill bs=$BS_BYTES count=$free conv=fsync status=none
	expect_eq fill "pool's used data blocks after the fill" "$(pool_data_used)" "$(pool_data_total)"
	pool_healthy fill
	expect_eq nothing_wrongly_free "hash of M after the writes and the fill" "$(dev_hash /dev/mapper/m)" "$h_s"
	if [ $OTHERS = 1 ]; then
		check_others nothing_wrongly_free
		dm_down t u
	fi
	dm_down m fill pool

	step check_after
	check_clean check_after "$NEW"
	dump /tmp/after.xml "$NEW"
}

# check_others CHECK: T and U read as before the merge.
check_others() {
	expect_eq "$1" "hash of T" "$(dev_hash /dev/mapper/t)" "$h_t"
	expect_eq "$1" "hash of U" "$(dev_hash /dev/mapper/u)" "$h_u"
}
