# SPDX-License-Identifier: GPL-3.0-or-later
#
# Scenarios "lvm_merge*": the external-origin workflow of LVM finished by
# our thin_merge_lvm.  A read-only LV src (8 MiB of the pattern) is the
# external origin of the thin snapshot snap (lvcreate -s --thinpool);
# snap is written at awkward places; src is copied into the thin LV copy;
# an unrelated thin LV u shares the pool.  Then, by mode (thinp_mode=):
#   plain  thin_merge_lvm without --yes changes nothing and prints the
#          plan; with --yes --activate: snap keeps its name, thin id and
#          UUID, has no origin and reads as before; copy is gone; src can
#          be removed; vgck and the three checkers are clean; the pool's
#          used data blocks are exactly the blocks snap and u map.
#   kill   for each step in thinp_points (comma separated), from a saved
#          copy of the PV: thin_merge_lvm killed (SIGKILL) at that step,
#          then run again, which must finish the job (checks as above).
#   fail   for each step: the step fails; thin_merge_lvm must roll back
#          to exactly the old state (VG metadata, snap's data).
#   refuse thin_merge_lvm's refusals, each changing nothing (also damaged
#          metadata and a transaction id other than LVM's).

. /thinp/lvm.sh

MERGE=$OURS/thin_merge_lvm
SRC_BYTES=8388608

snap_setup() {
	CHECK=lvm_build
	L pvcreate "$(disk pv)"
	L vgcreate $VG "$(disk pv)"
	L lvcreate -L 8M -n src $VG
	put "$(dm_node $VG src)" 0 $SRC_BYTES 0
	sync
	L lvchange -an $VG/src
	L lvchange -pr $VG/src
	L lvcreate -L 32M -c 64k -T $VG/pool
	L lvcreate -V 8M -T $VG/pool -n u
	put "$(dm_node $VG u)" 0 1048576 4000000
	L lvcreate -s --thinpool $VG/pool $VG/src -n snap
	L lvchange -ay -K $VG/snap
	S=$(dm_node $VG snap)
	put_direct "$S" 69632 4096 100000
	put "$S" 200000 1000 300000
	put "$S" 300000 200000 500000
	put_direct "$S" 1048576 131072 2000000
	put "$S" 8323072 65536 3000000
	put_direct "$S" 8388096 512 3100000
	put "$S" 250000 70000 3500000
	sync
	L lvcreate -V 8M -T $VG/pool -n copy
	L lvchange -ay $VG/src
	dmsetup ls
	must copy dd if="$(dm_node $VG src)" of="$(dm_node $VG copy)" bs=1M oflag=direct status=none
	expect_eq copy "copy's md5" "$(dev_hash "$(dm_node $VG copy)")" "$(dev_hash "$(dm_node $VG src)")"
	SNAP_HASH=$(dev_hash "$S")
	U_HASH=$(dev_hash "$(dm_node $VG u)")
	echo "## snap $SNAP_HASH, u $U_HASH"
	L lvs -a -o+thin_id,lv_uuid $VG
	SNAP_UUID=$(lvattr snap lv_uuid)
	SNAP_ID=$(lvattr snap thin_id)
	meta_table_save pool
	L vgchange -an $VG
}

# vg_state: the VG metadata text without its volatile lines.
vg_state() {
	vgcfgbackup -f /tmp/state.vg $VG </dev/null >/dev/null 2>&1 || fail state "vgcfgbackup failed"
	grep -vE '^[[:space:]]*(seqno|description|creation_time|creation_host|contents|version|#)' /tmp/state.vg | grep -v '^[[:space:]]*$'
}

# merged_ok CHECK: the state after a finished merge.
merged_ok() {
	mc=$1
	L lvs -a -o+thin_id,lv_uuid,origin $VG
	[ -z "$(lvattr copy lv_name)" ] || fail "$mc" "copy still exists"
	expect_eq "$mc" "snap's origin" "$(lvattr snap origin)" ""
	expect_eq "$mc" "snap's UUID" "$(lvattr snap lv_uuid)" "$SNAP_UUID"
	expect_eq "$mc" "snap's thin id" "$(lvattr snap thin_id)" "$SNAP_ID"
	[ -z "$(lvattr snap_tmerge lv_name)" ] || fail "$mc" "the temporary LV is left"
	CHECK=$mc L vgck $VG
	tools_log_reset
	CHECK=$mc L lvchange -ay $VG/snap
	expect_ran "$mc" "thin_check '-q' '/dev/mapper/$VG-pool_tmeta'"
	CHECK=$mc L lvchange -ay $VG/u
	expect_eq "$mc" "snap's md5" "$(dev_hash "$(dm_node $VG snap)")" "$SNAP_HASH"
	expect_eq "$mc" "u's md5" "$(dev_hash "$(dm_node $VG u)")" "$U_HASH"
	used=$(dmsetup status $VG-pool-tpool | awk '{ split($6, a, "/"); print a[1] }')
	meta_table_save pool
	CHECK=$mc L vgchange -an $VG
	meta_open pool
	check_clean "$mc" "$META"
	dump /tmp/merged.xml "$META"
	meta_close
	expect_eq "$mc" "devices" "$(xml_devices /tmp/merged.xml | tr '\n' ' ')" "$(echo "$SNAP_ID $U_ID" | tr ' ' '\n' | sort -n | tr '\n' ' ')"
	expect_eq "$mc" "pool used data blocks (kernel) vs blocks snap and u map" "$used" "$(xml_used /tmp/merged.xml)"
	expect_eq "$mc" "snap's mapped blocks" "$(xml_details_mapped /tmp/merged.xml "$SNAP_ID")" "$(xml_mappings /tmp/merged.xml "$SNAP_ID")"
}

save_pv() { must save_pv dd if="$(disk pv)" of="$(disk pvsave)" bs=1M status=none; }
restore_pv() { must restore_pv dd if="$(disk pvsave)" of="$(disk pv)" bs=1M status=none; sync; rm -rf /etc/lvm/thin_merge_lvm; }

mode_plain() {
	step dry_run
	before=$(vg_state)
	run $MERGE $VG/snap $VG/copy </dev/null || fail dry_run "thin_merge_lvm without --yes exited $RUN_RC"
	grep -q 'blocks taken from the snapshot' /tmp/run.out || fail dry_run "no thin_merge --dry-run figures in the plan"
	grep -q 'run again with --yes' /tmp/run.out || fail dry_run "no plan"
	[ "$(vg_state)" = "$before" ] || fail dry_run "the VG metadata changed"
	[ -z "$(dmsetup ls | grep "^$VG-")" ] || fail dry_run "devices left active: $(dmsetup ls | tr '\n' ' ')"
	echo "## ok dry_run: the plan printed, nothing changed"

	step merge
	tools_log_reset
	run $MERGE $VG/snap $VG/copy --yes --activate </dev/null || fail merge "thin_merge_lvm --yes exited $RUN_RC: $(tail -n 1 /tmp/run.out)"
	tools_log_show
	[ "$(lvattr snap lv_attr | cut -c5)" = a ] || fail merge "--activate did not activate snap"
	L vgchange -an $VG
	merged_ok merged
	step origin_removable
	L lvremove -y $VG/src
	L vgck $VG
}

mode_kill() {
	save_pv
	for p in $(echo "$THINP_POINTS" | tr , ' '); do
		step "kill_$p"
		restore_pv
		echo "+ THIN_MERGE_LVM_TEST_KILL=$p $MERGE $VG/snap $VG/copy --yes"
		THIN_MERGE_LVM_TEST_KILL=$p $MERGE $VG/snap $VG/copy --yes </dev/null >/tmp/run.out 2>&1
		rc=$?
		cat /tmp/run.out
		[ $rc -eq 137 ] || fail "kill_$p" "thin_merge_lvm was not killed at $p (exit $rc)"
		echo "## left after the kill:"; dmsetup ls
		run $MERGE $VG/snap $VG/copy </dev/null || fail "kill_$p" "the plan after the kill exited $RUN_RC"
		run $MERGE $VG/snap $VG/copy --yes </dev/null || fail "kill_$p" "the rerun after the kill at $p exited $RUN_RC: $(tail -n 1 /tmp/run.out)"
		merged_ok "resumed_$p"
	done
}

mode_fail() {
	save_pv
	before=$(vg_state)
	for p in $(echo "$THINP_POINTS" | tr , ' '); do
		step "fail_$p"
		echo "+ THIN_MERGE_LVM_TEST_FAIL=$p $MERGE $VG/snap $VG/copy --yes"
		THIN_MERGE_LVM_TEST_FAIL=$p $MERGE $VG/snap $VG/copy --yes </dev/null >/tmp/run.out 2>&1
		rc=$?
		cat /tmp/run.out
		[ $rc -eq 1 ] || fail "fail_$p" "thin_merge_lvm did not fail at $p (exit $rc)"
		grep -q 'rolled back' /tmp/run.out || fail "fail_$p" "no rollback reported"
		vg_state >/tmp/state.now
		echo "$before" | cmp -s - /tmp/state.now || fail "rollback_$p" "the VG metadata differs from before: $(echo "$before" | diff - /tmp/state.now | grep '^[-+][^-+]' | head -n 6 | tr '\n' ' ')"
		[ -z "$(dmsetup ls | grep "^$VG-")" ] || fail "rollback_$p" "devices left active: $(dmsetup ls | tr '\n' ' ')"
		[ ! -e /etc/lvm/thin_merge_lvm/$VG.snap.job ] || fail "rollback_$p" "the job record is left"
		echo "## ok rollback_$p: the VG metadata is as before"
	done
	step after_rollbacks
	L lvchange -ay -K $VG/snap
	expect_eq rollback_data "snap's md5 (external origin)" "$(dev_hash "$(dm_node $VG snap)")" "$SNAP_HASH"
	L vgchange -an $VG
	meta_open pool
	check_clean rollback_check "$META"
	meta_close
	step merge_after_rollbacks
	run $MERGE $VG/snap $VG/copy --yes </dev/null || fail merge "thin_merge_lvm --yes exited $RUN_RC: $(tail -n 1 /tmp/run.out)"
	merged_ok merged
}

# refuse CHECK TEXT ARGS...: thin_merge_lvm must exit 1 with one line on
# stderr containing TEXT, and change nothing.
refuse() {
	c=$1 text=$2
	shift 2
	before=$(vg_state)
	echo "+ thin_merge_lvm $* (must refuse)"
	$MERGE "$@" </dev/null >/tmp/out 2>/tmp/err
	rc=$?
	cat /tmp/out /tmp/err
	[ $rc -eq 1 ] || fail "$c" "exit $rc, not 1"
	[ "$(wc -l </tmp/err)" -eq 1 ] || fail "$c" "not one line on stderr"
	grep -q "$text" /tmp/err || fail "$c" "stderr lacks '$text'"
	[ "$(vg_state)" = "$before" ] || fail "$c" "the VG metadata changed"
	echo "## ok $c"
}

mode_refuse() {
	step refusals
	refuse unknown_vg "volume group nosuchvg not found" nosuchvg/snap nosuchvg/copy --yes
	refuse no_ext_origin "has no external origin" $VG/u $VG/copy --yes
	L lvcreate -s $VG/u -n usnap
	refuse internal_snapshot "has no external origin" $VG/usnap $VG/copy --yes
	L lvcreate -L 8M -c 64k -T $VG/pool2
	L lvcreate -V 8M -T $VG/pool2 -n copy2
	refuse other_pool "not in $VG/snap's pool" $VG/snap $VG/copy2 --yes
	L lvcreate -V 12M -T $VG/pool -n copy3
	refuse wrong_size "same size" $VG/snap $VG/copy3 --yes
	L lvchange -ay $VG/u
	refuse active_pool "is active" $VG/snap $VG/copy --yes
	L vgchange -an $VG
	L lvchange -ay -K $VG/snap
	refuse active_snap "is active" $VG/snap $VG/copy --yes
	L vgchange -an $VG
	refuse not_thin "is not a thin LV" $VG/src $VG/copy --yes
	# metadata that does not check clean (a byte of the superblock's padding)
	meta_open pool
	put_le32 "$META" 3000 3735928559
	meta_close
	refuse damaged_metadata "does not check clean" $VG/snap $VG/copy --yes
	meta_open pool
	put_le32 "$META" 3000 0
	# a transaction id other than LVM's
	trans=$(od -An -tu4 -j 48 -N4 "$META" | tr -d ' ')
	put_le32 "$META" 48 $((trans + 5))
	put_le32 "$META" 0 "$(sb_csum "$META")"
	meta_close
	refuse transaction "transaction id differs: LVM says $trans, the metadata says $((trans + 5))" $VG/snap $VG/copy --yes
	meta_open pool
	put_le32 "$META" 48 "$trans"
	put_le32 "$META" 0 "$(sb_csum "$META")"
	check_clean restored "$META"
	meta_close
	# fill the VG: no room for the temporary metadata LV
	free=$(vgs --noheadings -o vg_free_count $VG </dev/null | tr -d ' ')
	L lvcreate -l "$free" -n filler $VG
	refuse no_space "no space in $VG for the temporary metadata LV" $VG/snap $VG/copy --yes
	L lvremove -y $VG/filler
	L lvremove -y $VG/copy2 $VG/copy3 $VG/usnap $VG/pool2
	# and then it works
	run $MERGE $VG/snap $VG/copy --yes </dev/null || fail merge "thin_merge_lvm --yes exited $RUN_RC: $(tail -n 1 /tmp/run.out)"
	merged_ok merged
}

scenario_main() {
	step lvm_setup
	lvm_setup pv
	snap_setup
	U_ID=$(lvattr u thin_id)
	"mode_$THINP_MODE"
}
