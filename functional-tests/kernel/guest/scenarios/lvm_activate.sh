# SPDX-License-Identifier: GPL-3.0-or-later
#
# Scenario "lvm_activate": Debian's lvm2 runs our thin_check on every pool
# activation.  A pool with two thin LVs and an LVM thin snapshot of one,
# written on both sides after the snapshot; deactivated and activated
# again with LVM's default thin_check_options (Debian 12: "-q"), then with
# the pool's NEEDS_CHECK flag set and "-q --clear-needs-check-flag" (our
# thin_check must clear the flag, or the kernel would keep the pool
# read-only), then with a
# thin_check_options of one empty string (what old configurations pass).
# Every LV reads back as written (md5 through dm-thin).

. /thinp/lvm.sh

hashes() {
	for lv in t1 t2 s1; do
		echo "$lv $(dev_hash "$(dm_node $VG $lv)")"
	done
}

activate_all() {
	L vgchange -ay $VG
	L lvchange -ay -K $VG/s1
}

expect_hashes() {
	hashes >/tmp/hashes.now
	cat /tmp/hashes.now
	cmp -s /tmp/hashes.want /tmp/hashes.now || fail "$1" "LVs read back differently: $(diff /tmp/hashes.want /tmp/hashes.now | tr '\n' ' ')"
	echo "## ok $1: every LV reads as written"
}

scenario_main() {
	lvm_new_vg
	L lvcreate -L 64M -c 64k -T $VG/pool
	L lvcreate -V 32M -T $VG/pool -n t1
	L lvcreate -V 16M -T $VG/pool -n t2
	T1=$(dm_node $VG t1)
	T2=$(dm_node $VG t2)
	put "$T1" 0 4194304 0
	put "$T1" 16777216 1048576 4194304
	put "$T2" 65536 2097152 1048576
	sync
	L lvcreate -s $VG/t1 -n s1
	L lvchange -ay -K $VG/s1
	S1=$(dm_node $VG s1)
	# both sides of the snapshot written after it: the kernel breaks sharing
	put "$T1" 1000000 300000 7000000
	put "$S1" 2097152 1048576 3000000
	put "$S1" 33000000 100000 6000000
	sync
	hashes >/tmp/hashes.want
	cat /tmp/hashes.want
	meta_table_save pool
	L lvs -a -o+thin_id,transaction_id $VG
	tools_log_reset

	step deactivate
	CHECK=deactivate
	L vgchange -an $VG
	[ -z "$(dmsetup ls | grep "^$VG-")" ] || fail deactivate "devices left: $(dmsetup ls | tr '\n' ' ')"
	meta_open pool
	check_clean check_after_lvm "$META"
	meta_close

	step activate_default
	tools_log_reset
	CHECK=activate_default
	activate_all
	tools_log_show
	opts=$(lvmconfig --type default global/thin_check_options </dev/null | sed 's/.*=\[//; s/\]$//; s/"//g; s/,/ /g')
	line="thin_check"
	for o in $opts; do line="$line '$o'"; done
	line="$line '/dev/mapper/$VG-pool_tmeta'"
	expect_ran run_default "$line"
	expect_hashes data_default

	step needs_check
	CHECK=needs_check
	L vgchange -an $VG
	meta_open pool
	sb_set_flags "$META" 1
	expect_eq needs_check_set "superblock flags" "$(get_le32 "$META" 4)" 1
	meta_close
	tools_log_reset
	L vgchange -ay --config 'global { thin_check_options = [ "-q", "--clear-needs-check-flag" ] }' $VG
	L lvchange -ay -K $VG/s1
	tools_log_show
	expect_ran run_clear "thin_check '-q' '--clear-needs-check-flag' '/dev/mapper/$VG-pool_tmeta'"
	pool_st=$(dmsetup status $VG-pool-tpool)
	echo "## pool status: $pool_st"
	set -- $pool_st
	[ "$8" = rw ] && [ "${11}" = - ] || fail flag_cleared "the pool is not read-write without needs_check: $pool_st"
	expect_hashes data_needs_check
	put "$T2" 3000000 65536 100000
	sync
	L vgchange -an $VG
	meta_open pool
	expect_eq flag_cleared "superblock flags" "$(get_le32 "$META" 4)" 0
	check_clean check_after_clear "$META"
	meta_close
	activate_all
	hashes >/tmp/hashes.want

	step empty_options
	CHECK=empty_options
	L vgchange -an $VG
	tools_log_reset
	L vgchange -ay --config 'global { thin_check_options = [ "" ] }' $VG
	L lvchange -ay -K $VG/s1
	tools_log_show
	expect_ran run_empty "thin_check '' '/dev/mapper/$VG-pool_tmeta'"
	expect_hashes data_empty_options

	step final
	L vgchange -an $VG
	L vgck $VG
	meta_open pool
	check_clean check_final "$META"
	meta_close
}
