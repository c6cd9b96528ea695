# SPDX-License-Identifier: GPL-3.0-or-later
#
# Scenarios "snapshot_*": the classic dm-snapshot target's persistent
# exception store, merged offline by our snapshot_merge.
#
#   THINP_MODE=commit   a "snapshot" target over (sorig, cow) is written
#                       at awkward places (sub-chunk, unaligned, buffered
#                       and O_DIRECT, overwrites, more chunks than one
#                       metadata area holds); while it is active the merge
#                       must refuse (O_EXCL: the holder is named); after
#                       it is removed, snapshot_check is clean, a dry run
#                       writes nothing, and snapshot_merge --commit
#                       --verify makes the origin read exactly as the
#                       snapshot did (merged_hash)
#   THINP_MODE=revert   a snapshot-origin over sorig with a snapshot on
#                       cow is written; the snapshot still shows the old
#                       contents; after both are removed the merge puts
#                       the origin back to its pre-snapshot state
#                       (reverted_hash)
#   THINP_MODE=kernel   a differential against the kernel itself: the
#                       same store merged by the kernel's snapshot-merge
#                       target on one copy and by ours on another; the
#                       origins must be byte-identical (kernel_identical);
#                       then a store the kernel merged only in part
#                       (stopped after its first batch, its origin behind
#                       a dm-delay target) is finished by ours
#                       (partial_hash)
#   THINP_MODE=wrong    the negative control: the store's last table entry
#                       is cleared before our merge (a merge that misses a
#                       chunk); the scenario must fail at merged_hash
#
# Disks: sorig, sorig2 (32 MiB, filled from the origin disk), cow, cow2
# (16 MiB), origin and pat (read-only).

CHUNK=${THINP_CHUNK:-8}		# sectors

fill_origin() {
	# the first 32 MiB of the seeded origin disk
	must fill dd if="$(disk origin)" of="$1" bs=1M count=32 oflag=direct status=none
}

# write_through DEV: awkward writes (bytes; pat offsets vary)
write_through() {
	d=$1
	put_direct "$d" 8192 4096 0			# one 4 KiB chunk
	put "$d" 100000 1000 4096			# a sub-page piece (read-modify-write)
	put "$d" 1048000 200000 9000			# unaligned, over many chunks
	put_direct "$d" $((3 << 20)) $((2 << 20)) 65536	# 2 MiB: more than one metadata area of 4 KiB chunks
	put_direct "$d" 8192 4096 500000		# an overwrite (no second entry)
	put "$d" $(((32 << 20) - 512)) 512 7777		# the last sector
	put_direct "$d" $((20 << 20)) 65536 123456	# a chunk-aligned run
	sync
}

snap_table() {	# ORIGIN COW: a persistent snapshot of 4 KiB chunks
	echo "0 $(sectors "$1") snapshot $1 $2 P $CHUNK"
}

merge_ours() {	# COW ORIGIN [extra]
	must snapshot_check $OURS/snapshot_check "$1"
	before=$(dev_hash "$2")
	must dry_run $OURS/snapshot_merge -i "$1" -o "$2"
	grep -q -- '--commit' /tmp/run.out || fail dry_run "the dry run does not say how to confirm"
	expect_eq dry_run "origin after a dry run" "$(dev_hash "$2")" "$before"
	must merge $OURS/snapshot_merge -i "$1" -o "$2" --commit --verify
}

scenario_main() {
	sorig=$(disk sorig) cow=$(disk cow)

	case $THINP_MODE in
	commit|wrong)
		step fill
		fill_origin "$sorig"
		step write
		must snap_activate dmsetup create snap --table "$(snap_table "$sorig" "$cow")"
		dmsetup mknodes
		write_through /dev/mapper/snap
		want=$(dev_hash /dev/mapper/snap)
		info snap_hash=$want
		step busy
		run $OURS/snapshot_merge -i "$cow" -o "$sorig" --commit && fail busy_refused "merged a COW in use"
		grep -q 'held by dm-[0-9]* (snap)' /tmp/run.out || fail busy_refused "the holder is not named: $(cat /tmp/run.out)"
		dm_down snap
		step merge
		if [ "$THINP_MODE" = wrong ]; then
			# clear the last entry of the table (area 0 or a later one)
			n=$($OURS/snapshot_check "$cow" | sed -n 's/.*: \([0-9]*\) exceptions.*/\1/p')
			epa=$((CHUNK * 512 / 16))
			a=$(((n - 1) / epa)) k=$(((n - 1) % epa))
			off=$(((1 + a * (epa + 1)) * CHUNK * 512 + k * 16))
			must sabotage dd if=/dev/zero of="$cow" bs=16 count=1 oflag=seek_bytes seek=$off conv=notrunc status=none
		fi
		merge_ours "$cow" "$sorig"
		expect_eq merged_hash "origin after the merge" "$(dev_hash "$sorig")" "$want"
		;;
	revert)
		step fill
		fill_origin "$sorig"
		old=$(dev_hash "$sorig")
		step write
		# the snapshot first: the origin target learns its chunk size when
		# it is resumed, and splits writes at chunk boundaries from then on
		must snap_activate dmsetup create snap --table "$(snap_table "$sorig" "$cow")"
		must origin_activate dmsetup create orig --table "0 $(sectors "$sorig") snapshot-origin $sorig"
		dmsetup mknodes
		write_through /dev/mapper/orig
		new=$(dev_hash /dev/mapper/orig)
		expect_eq snapshot_shows_old "the snapshot" "$(dev_hash /dev/mapper/snap)" "$old"
		[ "$new" != "$old" ] || fail write "the writes changed nothing"
		dm_down snap orig
		expect_eq write "the origin after the writes" "$(dev_hash "$sorig")" "$new"
		step merge
		merge_ours "$cow" "$sorig"
		expect_eq reverted_hash "origin after the revert" "$(dev_hash "$sorig")" "$old"
		;;
	kernel)
		sorig2=$(disk sorig2) cow2=$(disk cow2)
		step fill
		fill_origin "$sorig"
		step write
		must snap_activate dmsetup create snap --table "$(snap_table "$sorig" "$cow")"
		dmsetup mknodes
		write_through /dev/mapper/snap
		want=$(dev_hash /dev/mapper/snap)
		dm_down snap
		must copy dd if="$sorig" of="$sorig2" bs=1M oflag=direct status=none
		must copy dd if="$cow" of="$cow2" bs=1M oflag=direct status=none
		step kernel_merge
		must kernel_merge dmsetup create km --table "0 $(sectors "$sorig") snapshot-merge $sorig $cow P $CHUNK"
		tries=0
		while :; do
			st=$(dmsetup status km)
			set -- $st
			# "<start> <len> snapshot-merge <allocated>/<total> <metadata>"
			[ "${4%%/*}" = "$5" ] && break
			tries=$((tries + 1))
			[ $tries -lt 600 ] || fail kernel_merge "the kernel's merge did not finish: $st"
			usleep 100000
		done
		say "kernel merge done: $st"
		dm_down km
		step our_merge
		merge_ours "$cow2" "$sorig2"
		k=$(dev_hash "$sorig") o=$(dev_hash "$sorig2")
		info kernel_hash=$k ours_hash=$o
		expect_eq kernel_identical "our merge against the kernel's" "$o" "$k"
		expect_eq merged_hash "the kernel's merge against the snapshot" "$k" "$want"
		must kernel_store_empty $OURS/snapshot_check "$cow"
		grep -q ': 0 exceptions' /tmp/run.out || fail kernel_store_empty "the kernel's merge left entries: $(cat /tmp/run.out)"

		step partial
		# a fresh store; the kernel's merge is stopped early, ours finishes it
		fill_origin "$sorig"
		must zero dd if=/dev/zero of="$cow" bs=1M count=1 oflag=direct status=none
		must snap_activate dmsetup create snap --table "$(snap_table "$sorig" "$cow")"
		dmsetup mknodes
		write_through /dev/mapper/snap
		want=$(dev_hash /dev/mapper/snap)
		dm_down snap
		full=$($OURS/snapshot_check "$cow" | sed -n 's/.*: \([0-9]*\) exceptions.*/\1/p')
		# the kernel merges into the origin through a delay target (every
		# write 200 ms late), and is stopped once its first batch is in
		must slow dmsetup create slow --table "0 $(sectors "$sorig") delay $sorig 0 0 $sorig 0 200"
		dmsetup mknodes
		must kernel_merge dmsetup create km --table "0 $(sectors "$sorig") snapshot-merge /dev/mapper/slow $cow P $CHUNK"
		set -- $(dmsetup status km)
		first=${4%%/*} tries=0
		while :; do
			set -- $(dmsetup status km)
			[ "${4%%/*}" != "$first" ] && break
			tries=$((tries + 1))
			[ $tries -lt 300 ] || fail kernel_partial "the kernel's merge did not start"
			usleep 50000
		done
		dm_down km slow
		left=$($OURS/snapshot_check "$cow" | sed -n 's/.*: \([0-9]*\) exceptions.*/\1/p')
		info exceptions_before=$full exceptions_left=$left
		[ "$left" -gt 0 ] && [ "$left" -lt "$full" ] || fail kernel_partial "the kernel's merge was not stopped halfway ($left of $full left)"
		merge_ours "$cow" "$sorig"
		expect_eq partial_hash "origin after finishing a partial kernel merge" "$(dev_hash "$sorig")" "$want"
		;;
	*)
		fail setup "unknown THINP_MODE '$THINP_MODE'"
		;;
	esac
	return 0
}
