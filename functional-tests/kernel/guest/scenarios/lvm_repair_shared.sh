# SPDX-License-Identifier: GPL-3.0-or-later
#
# Scenario "lvm_repair_shared": `lvconvert --repair` of a pool whose thin
# LV has 31 snapshots, with the smallest metadata LV LVM makes (4 MiB,
# and so a 4 MiB spare for the repair's output).  The 8,192 chunks of t1
# are mapped by leaves that every snapshot shares; written out once per
# device, even in full leaves, they would take 32 x 33 leaves, more than
# the spare's 1,024 blocks, so the repair must keep them shared, as the
# kernel and 1.x's repair do.
# After the repair, the pool activates, t1 and two snapshots written
# since read back as written, and the repaired metadata checks clean
# with all three checkers.

. /thinp/lvm.sh

LVS="t1 s1 s31"
SNAPS=31


activate_some() {
	L vgchange -ay $VG
	L lvchange -ay -K $VG/s1
	L lvchange -ay -K $VG/s31
}

scenario_main() {
	lvm_new_vg
	L lvcreate -L 576M -c 64k --poolmetadatasize 4M -T $VG/pool
	L lvcreate -V 512M -T $VG/pool -n t1
	t1=$(dm_node $VG t1)
	i=0
	while [ $i -lt 64 ]; do
		put "$t1" $((i * 8388608)) 8388608 0
		i=$((i + 1))
	done
	sync
	i=1
	while [ $i -le $SNAPS ]; do
		L lvcreate -s $VG/t1 -n s$i
		i=$((i + 1))
	done
	L lvchange -ay -K $VG/s1
	L lvchange -ay -K $VG/s31
	# a few writes of their own: shared and private leaves side by side
	put "$(dm_node $VG s1)" 65536 262144 1000000
	put "$(dm_node $VG s31)" 300000000 131072 2000000
	put "$t1" 100000000 65536 3000000
	sync
	lv_hashes $LVS >/tmp/hashes.want
	cat /tmp/hashes.want
	L lvs -a -o+thin_id,transaction_id,metadata_percent $VG
	trans=$(lvattr pool transaction_id)
	L vgchange -an $VG

	step repair
	tools_log_reset
	CHECK=repair
	L lvconvert --repair $VG/pool
	tools_log_show
	grep -q 'does not match' /tmp/run.out && fail repair_transaction "LVM saw another transaction id: $(grep 'does not match' /tmp/run.out)"
	expect_repair_ran repair_ran

	step activate
	CHECK=activate
	activate_some
	L lvs -a -o+thin_id,transaction_id,metadata_percent $VG
	lv_hashes $LVS >/tmp/hashes.now
	cat /tmp/hashes.now
	cmp -s /tmp/hashes.want /tmp/hashes.now || fail data_repaired "LVs read back differently: $(diff /tmp/hashes.want /tmp/hashes.now | tr '\n' ' ')"
	echo "## ok data_repaired: t1, s1 and s31 read as written"
	expect_eq transaction "pool transaction id" "$(lvattr pool transaction_id)" "$trans"
	meta_table_save pool
	L vgchange -an $VG

	step checks
	meta_open pool
	check_clean check_repaired "$META"
	meta_close
}
