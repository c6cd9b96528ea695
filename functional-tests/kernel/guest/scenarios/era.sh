# SPDX-License-Identifier: GPL-3.0-or-later
#
# Scenario "era": era_invalidate lists exactly the blocks written after
# a chosen era.  The kernel's era target tracks writes; after a
# checkpoint the current era E is read from its status, more blocks are
# written, a metadata snapshot is taken (archiving the writeset), and our
# era_invalidate --metadata-snapshot --written-since E on the live
# metadata must list exactly those blocks.  After removal our era_check
# is clean, our era_dump equals 0.9's, and our era_restore of it gives
# metadata the kernel activates.
#
# Disks: emeta, emeta2 (16 MiB), edata (32 MiB), pat.

MiB=1048576
EBS=128				# era block: 64 KiB

era_up() {
	must era_activate dmsetup create era --table "0 $(sectors "$EDATA") era $1 $EDATA $EBS"
	dmsetup mknodes
}

era_now() { dmsetup status era | awk '{ print $6 }'; }

scenario_main() {
	EMETA=$(disk emeta) EMETA2=$(disk emeta2) EDATA=$(disk edata)

	step build_with_kernel
	must zero_meta dd if=/dev/zero of="$EMETA" bs=4096 count=1 status=none
	era_up "$EMETA"
	put_direct /dev/mapper/era 0 $((1 * MiB)) 0
	put_direct /dev/mapper/era $((10 * MiB)) 65536 $MiB
	must checkpoint dmsetup message era 0 checkpoint
	E=$(era_now)
	info "status $(dmsetup status era); era after checkpoint $E"
	# blocks 3, 4..5 (a write straddling them), 40, 100..103; not 1 or 2
	put_direct /dev/mapper/era $((3 * 65536)) 65536 0
	put_direct /dev/mapper/era $((4 * 65536 + 512)) 65536 $MiB
	put_direct /dev/mapper/era $((40 * 65536)) 4096 0
	put_direct /dev/mapper/era $((100 * 65536)) 262144 $((2 * MiB))
	must snapshot dmsetup message era 0 take_metadata_snap
	info "status $(dmsetup status era)"
	must invalidate $OURS/era_invalidate --metadata-snapshot --written-since "$E" -o /tmp/inv.xml "$EMETA"
	cat /tmp/inv.xml
	expected='<blocks>
  <range begin="3" end = "6"/>
  <block block="40"/>
  <range begin="100" end = "104"/>
</blocks>'
	expect_eq invalidate_list "era_invalidate --written-since $E" "$(cat /tmp/inv.xml)" "$expected"
	must drop_snapshot dmsetup message era 0 drop_metadata_snap
	dm_down era

	step check_and_dump
	must era_check $OURS/era_check "$EMETA"
	[ ! -s /tmp/run.out ] || fail era_check "our era_check said: $(head -n 2 /tmp/run.out | tr '\n' '|')"
	must era_check $DEBIAN/pdata_tools era_check "$EMETA"
	must dump $OURS/era_dump -o /tmp/e.xml "$EMETA"
	expect_eq dump_vs_debian "our era_dump vs 0.9's" "$($DEBIAN/pdata_tools era_dump "$EMETA" | md5sum)" "$(md5sum </tmp/e.xml)"

	step restore
	must restore $OURS/era_restore -i /tmp/e.xml -o "$EMETA2"
	must era_check $OURS/era_check "$EMETA2"
	must era_check $DEBIAN/pdata_tools era_check "$EMETA2"
	era_up "$EMETA2"
	info "restored: $(dmsetup status era)"
	dm_down era
	must era_check $OURS/era_check "$EMETA2"
}
