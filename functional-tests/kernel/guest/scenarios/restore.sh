# SPDX-License-Identifier: GPL-3.0-or-later
#
# Scenario "restore": the kernel activates a pool whose metadata a
# thin_restore wrote from XML.
#
# The kernel builds a pool (several devices, a snapshot sharing blocks
# with its origin, overwrites on both sides, an empty device); our
# thin_dump turns its metadata into XML; the writer (our thin_restore, or
# Debian's 0.9.0 one until ours is built: THINP_WRITER says which) writes
# it to a second metadata disk, sized smaller than the devices (so the
# kernel grows both space maps we wrote on activation); the pool is
# activated on that and every device must read what was written before;
# the kernel keeps working on it (writes that break sharing, a new
# snapshot, a delete, a new device) and the result is clean for our
# thin_check and the oracles.
#
# Disks: meta, meta2 (16 MiB), data (64 MiB), pat (pattern, read-only).

MiB=1048576
SZ=32768			# sectors of devices 1..3 (16 MiB)

scenario_main() {
	META=$(disk meta) META2=$(disk meta2) DATA=$(disk data)
	writer=${THINP_WRITER:-$(restore_writer)}
	info "writer=$writer"

	step build_with_kernel
	must zero_meta dd if=/dev/zero of="$META" bs=4096 count=1 status=none
	pool_up "$META" "$DATA"
	pool_msg create_thin 1
	pool_msg create_thin 2
	thin_up a 1 $SZ
	thin_up b 2 $SZ
	put_direct /dev/mapper/a 0 $((4 * MiB)) 0
	put /dev/mapper/a $((5 * MiB + 1000)) 300000 $MiB
	put /dev/mapper/a $((16 * MiB - 65536)) 65536 $((2 * MiB))
	put /dev/mapper/b $MiB 65536 $((3 * MiB))
	put_direct /dev/mapper/b $((9 * MiB + 512)) 512 $((3 * MiB + 4096))
	put /dev/mapper/b $((12 * MiB)) $((2 * MiB)) $((4 * MiB))
	drop_caches
	snap a 3 1
	thin_up c 3 $SZ
	put_direct /dev/mapper/a $MiB 262144 $((6 * MiB))
	put /dev/mapper/c $((2 * MiB)) 131072 $((7 * MiB))
	pool_msg create_thin 4
	thin_up d 4 16384
	drop_caches
	for n in a b c d; do
		eval "h_$n=$(dev_hash /dev/mapper/$n)"
		eval "m_$n=$(thin_mapped $n)"
	done
	used=$(pool_data_used)
	info "kernel_used=$used mapped=$m_a,$m_b,$m_c,$m_d"
	dm_down a b c d pool

	step dump_kernel_metadata
	check_clean check_kernel_metadata "$META"
	dump /tmp/before.xml "$META"
	expect_eq dump_devices "devices in the dump" "$(xml_devices /tmp/before.xml | tr '\n' ' ')" "1 2 3 4 "
	expect_eq dump_used "data blocks used by the dump's mappings" "$(xml_used /tmp/before.xml)" "$used"
	i=1
	for n in a b c d; do
		eval "want=\$m_$n"
		expect_eq dump_mappings "mappings of device $i" "$(xml_mappings /tmp/before.xml $i)" "$want"
		i=$((i + 1))
	done

	step restore
	# Written smaller than the devices the pool then runs on (768 of the
	# 1024 data blocks, 8 of the 16 MiB of metadata), so that the kernel
	# must extend both space maps we wrote when it activates the pool.
	sed 's/ nr_data_blocks="1024"/ nr_data_blocks="768"/' /tmp/before.xml >/tmp/small.xml
	must restore dmsetup create meta2small --table "0 16384 linear $META2 0"
	dmsetup mknodes
	restore_with "$writer" /tmp/small.xml /dev/mapper/meta2small
	dm_down meta2small
	check_clean check_restored "$META2"
	dump /tmp/restored.xml "$META2"
	must round_trip cmp /tmp/small.xml /tmp/restored.xml

	step activate_restored
	pool_up "$META2" "$DATA"
	expect_eq grown "data blocks after the kernel grew the data space map" "$(pool_data_total)" 1024
	expect_eq grown "metadata blocks after the kernel grew the metadata space map" \
		"$(dmsetup status pool | awk '{ split($5, a, "/"); print a[2] }')" 4096
	expect_eq restored_used "pool's used data blocks" "$(pool_data_used)" "$used"
	thin_up a 1 $SZ
	thin_up b 2 $SZ
	thin_up c 3 $SZ
	thin_up d 4 16384
	for n in a b c d; do
		eval "want=\$h_$n"
		expect_eq restored_hash "hash of $n" "$(dev_hash /dev/mapper/$n)" "$want"
		eval "want=\$m_$n"
		expect_eq restored_mapped "mapped blocks of $n" "$(thin_mapped $n)" "$want"
	done

	step kernel_keeps_working
	# A's blocks 48..55 are shared with its snapshot C: the write must
	# copy them, and C must not change.
	put_direct /dev/mapper/a $((3 * MiB)) 524288 $((5 * MiB))
	expect_eq cow_region "A's rewritten region" \
		"$(range_hash /dev/mapper/a $((3 * MiB)) 524288)" \
		"$(range_hash "$(disk pat)" $((5 * MiB)) 524288)"
	expect_eq sharing_safe "hash of snapshot c" "$(dev_hash /dev/mapper/c)" "$h_c"
	snap b 5 2
	thin_up e 5 $SZ
	put /dev/mapper/b $((12 * MiB + 65536)) 65536 0
	expect_eq new_snapshot "hash of snapshot e of b" "$(dev_hash /dev/mapper/e)" "$h_b"
	dm_down d
	pool_msg delete 4
	pool_msg create_thin 6
	thin_up f 6 8192
	put /dev/mapper/f 0 $((4 * MiB)) $((2 * MiB))
	expect_eq new_device "new device f" "$(dev_hash /dev/mapper/f)" \
		"$(range_hash "$(disk pat)" $((2 * MiB)) $((4 * MiB)))"
	pool_healthy kernel_keeps_working
	dm_down a b c e f pool

	step check_after
	check_clean check_after "$META2"
	dump /tmp/after.xml "$META2"
	expect_eq final_devices "devices after the kernel's changes" "$(xml_devices /tmp/after.xml | tr '\n' ' ')" "1 2 3 5 6 "
}
