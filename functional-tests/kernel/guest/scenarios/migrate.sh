# SPDX-License-Identifier: GPL-3.0-or-later
#
# Scenario "migrate": our thin_migrate copies thin devices of an ACTIVE
# pool.
#
# The kernel builds a pool with an origin A (writes of every shape: whole
# blocks, a piece inside a block, a range over block edges, the last
# block) and an internal snapshot S of A that then diverges.  Then, with
# the pool and both devices active:
#   migrate_dev   A to a blank disk (--dest-dev): the disk reads as A;
#   migrate_file  S to a file on a tmpfs (--dest-file): the file reads as
#                 S, and its allocated bytes are exactly S's mapped blocks
#                 (only mapped ranges are written; each of them whole);
#   released      after each run the pool holds no metadata snapshot;
#   held_refused  with a metadata snapshot already held by someone else,
#                 thin_migrate fails and leaves that snapshot held;
#   not_thin      the pool device itself is refused as a source;
# and the metadata is clean for the three checkers afterwards.
#
# Disks: meta (16 MiB), data (64 MiB), dest (32 MiB), pat (pattern).

MiB=1048576
SZ=32768			# sectors of A and S (16 MiB)

# held_root: the pool status's held metadata root field ("-" when none).
held_root() { dmsetup status pool | awk '{ print $7 }'; }

scenario_main() {
	META=$(disk meta) DATA=$(disk data) DEST=$(disk dest)

	step build_with_kernel
	must zero_meta dd if=/dev/zero of="$META" bs=4096 count=1 status=none
	pool_up "$META" "$DATA"
	pool_msg create_thin 1
	thin_up a 1 $SZ
	put_direct /dev/mapper/a 0 $((2 * MiB)) 0
	put /dev/mapper/a $((3 * MiB + 1000)) 5000 $MiB
	put /dev/mapper/a $((5 * MiB - 4096)) 200000 $((2 * MiB))
	put_direct /dev/mapper/a $((9 * MiB)) 65536 $((3 * MiB))
	put /dev/mapper/a $((16 * MiB - 512)) 512 $((4 * MiB))
	drop_caches
	snap a 2 1
	thin_up s 2 $SZ
	put_direct /dev/mapper/s $MiB 131072 $((5 * MiB))
	put /dev/mapper/s $((12 * MiB)) 70000 $((6 * MiB))
	put_direct /dev/mapper/a 0 65536 $((7 * MiB))
	drop_caches
	h_a=$(dev_hash /dev/mapper/a)
	h_s=$(dev_hash /dev/mapper/s)
	m_a=$(thin_mapped a)
	m_s=$(thin_mapped s)
	info "mapped a=$m_a s=$m_s"
	expect_eq released "held metadata root before" "$(held_root)" "-"

	step migrate_dev
	must migrate_dev $OURS/thin_migrate -q --source-dev /dev/mapper/a --dest-dev "$DEST"
	expect_eq migrate_dev "A's copy on the disk" "$(range_hash "$DEST" 0 $((16 * MiB)))" "$h_a"
	expect_eq released "held metadata root after --dest-dev" "$(held_root)" "-"

	step migrate_file
	mkdir -p /mnt
	must migrate_file mount -t tmpfs -o size=64m tmpfs /mnt
	must migrate_file $OURS/thin_migrate --buffer-size-meg 1 --source-dev /dev/mapper/s --dest-file /mnt/s.img
	expect_eq migrate_file "S's copy in the file" "$(md5sum /mnt/s.img | cut -d' ' -f1)" "$h_s"
	expect_eq migrate_file "the file's size" "$(stat -c %s /mnt/s.img)" "$((16 * MiB))"
	expect_eq migrate_file_extents "bytes allocated to the file" \
		"$(($(stat -c %b /mnt/s.img) * $(stat -c %B /mnt/s.img)))" "$((m_s * BS_BYTES))"
	expect_eq released "held metadata root after --dest-file" "$(held_root)" "-"

	# before the step that makes dm-thin refuse a second snapshot on purpose
	kernel_log_check

	step held_refused
	pool_msg reserve_metadata_snap
	held=$(held_root)
	must_fail held_refused $OURS/thin_migrate -q --source-dev /dev/mapper/a --dest-file /mnt/a.img
	expect_eq held_refused "the other holder's snapshot" "$(held_root)" "$held"
	[ ! -e /mnt/a.img ] || fail held_refused "a failed migration left its output behind"
	pool_msg release_metadata_snap
	expect_eq released "held metadata root" "$(held_root)" "-"
	# dm-thin logged its refusal of our reserve; that one line is expected
	dmesg | grep -q 'Pool metadata snapshot already exists' ||
		fail held_refused "dm-thin did not refuse a second metadata snapshot"
	dmesg -c >/dev/null

	step not_thin
	must_fail not_thin $OURS/thin_migrate -q --source-dev "$POOL" --dest-file /mnt/p.img
	grep -q 'not a thin device' /tmp/run.out || fail not_thin "no clear message: $(cat /tmp/run.out)"

	step still_working
	put_direct /dev/mapper/s 0 65536 $((7 * MiB))
	drop_caches
	dm_down a s pool
	check_clean check_after "$META"
}
