# SPDX-License-Identifier: GPL-3.0-or-later
#
# Scenario "lvm_repair": `lvconvert --repair` with LVM's default
# thin_repair_options (Debian 12: [""], an empty argument) runs our
# thin_repair and then our thin_dump (whose first line's transaction LVM
# compares with its own).  A pool with three thin LVs and a snapshot; its
# metadata damaged on disk (damage=sm: the data space map's index root;
# damage=sb: a byte of the superblock its checksum covers), so our
# thin_check refuses it and LVM refuses to activate the pool; after the
# repair the pool activates, every LV reads back as written, and the
# repaired metadata checks clean with all three checkers.

. /thinp/lvm.sh

LVS="t1 t2 t3 s1"


activate_all() {
	L vgchange -ay $VG
	L lvchange -ay -K $VG/s1
}

scenario_main() {
	lvm_new_vg
	L lvcreate -L 64M -c 64k -T $VG/pool
	L lvcreate -V 32M -T $VG/pool -n t1
	L lvcreate -V 16M -T $VG/pool -n t2
	L lvcreate -V 16M -T $VG/pool -n t3
	put "$(dm_node $VG t1)" 0 3145728 0
	put "$(dm_node $VG t2)" 131072 2097152 3145728
	put "$(dm_node $VG t3)" 5000000 1000000 5000000
	sync
	L lvcreate -s $VG/t1 -n s1
	L lvchange -ay -K $VG/s1
	put "$(dm_node $VG s1)" 65536 262144 7000000
	put "$(dm_node $VG t1)" 1048576 65536 7500000
	sync
	lv_hashes $LVS >/tmp/hashes.want
	cat /tmp/hashes.want
	L lvs -a -o+thin_id,transaction_id $VG
	trans=$(lvattr pool transaction_id)
	meta_table_save pool
	L vgchange -an $VG

	step damage
	meta_open pool
	case ${THINP_DAMAGE:-sm} in
	sb)	# a byte of the superblock's checksummed padding
		put_le32 "$META" 3000 3735928559 ;;
	sm)	# the checksum of the data space map's index root (the
		# superblock's data space map root: its bitmap root at byte 80)
		b=$(od -An -tu8 -j 80 -N8 "$META" | tr -d ' ')
		echo "## data space map index root: block $b"
		put_le32 "$META" $((b * 4096)) 3735928559 ;;
	esac
	must_fail damage $OURS/thin_check "$META"
	meta_close

	step refused
	tools_log_reset
	CHECK=refused
	L_fail vgchange -ay $VG
	tools_log_show
	expect_ran check_ran "thin_check '-q' '/dev/mapper/$VG-pool_tmeta'"
	[ -z "$(dmsetup ls | grep "^$VG-pool")" ] || fail refused "pool devices left after the refusal: $(dmsetup ls | tr '\n' ' ')"

	step repair
	tools_log_reset
	CHECK=repair
	L lvs -a $VG
	L lvconvert --repair $VG/pool
	tools_log_show
	grep -q 'does not match' /tmp/run.out && fail repair_transaction "LVM saw another transaction id: $(grep 'does not match' /tmp/run.out)"
	L lvs -a -o+devices $VG
	expect_repair_ran repair_ran
	expect_ran dump_ran "thin_dump '$SPARE'"
	expect_eq repair_order "the tools LVM ran" "$(cut -d' ' -f1 "$LVM_TOOLS_LOG" | tr '\n' ' ')" "thin_repair thin_dump "
	[ -n "$(lvattr pool_meta0 lv_name)" ] || fail repair "no pool_meta0 (the damaged metadata) after the repair"

	step activate
	CHECK=activate
	tools_log_reset
	activate_all
	expect_ran check_ran_repaired "thin_check '-q' '/dev/mapper/$VG-pool_tmeta'"
	lv_hashes $LVS >/tmp/hashes.now
	cat /tmp/hashes.now
	cmp -s /tmp/hashes.want /tmp/hashes.now || fail data_repaired "LVs read back differently: $(diff /tmp/hashes.want /tmp/hashes.now | tr '\n' ' ')"
	echo "## ok data_repaired: every LV reads as written"
	expect_eq transaction "pool transaction id" "$(lvattr pool transaction_id)" "$trans"
	# the kernel keeps working on the repaired metadata
	put "$(dm_node $VG t3)" 0 131072 100000
	L lvcreate -V 8M -T $VG/pool -n t4
	put "$(dm_node $VG t4)" 0 1048576 0
	sync
	meta_table_save pool
	L vgchange -an $VG

	step checks
	meta_open pool
	check_clean check_repaired "$META"
	meta_close
	L lvremove -y $VG/pool_meta0
	L vgck $VG
	tools_log_reset
	activate_all
	lv_hashes $LVS | grep -v '^t3 ' >/tmp/hashes.now
	grep -v '^t3 ' /tmp/hashes.want | cmp -s - /tmp/hashes.now || fail data_final "LVs read back differently at the end"
	L vgchange -an $VG
}
