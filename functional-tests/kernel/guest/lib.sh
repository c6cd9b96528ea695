# SPDX-License-Identifier: GPL-3.0-or-later
#
# Helpers for the scenario scripts that run inside the test guest (busybox
# ash, dmsetup, our pdata_tools, Debian's 0.9.0 pdata_tools and, when the
# host has it, the upstream 1.x pdata_tools).
#
# Protocol with the host (lines on the console):
#   @@THINP STEP <name>            a scenario step begins (timing, context)
#   @@THINP INFO <key>=<value>     a measurement the host copies to its log
#   @@THINP FAIL <check>: <why>    the scenario failed at <check>; it stops
#   @@THINP PASS                   printed by init when scenario_main returned 0
#   @@THINP END                    last line before power-off
# Anything else is the scenario's own log (commands run, their output).

OURS=/thinp/ours		# our pdata_tools and its command links
DEBIAN=/thinp/debian		# Debian's thin-provisioning-tools 0.9.0
UPSTREAM=/thinp/upstream	# upstream 1.x, when the host has it
BS=128				# data block size of every pool, sectors (64 KiB)
BS_BYTES=65536
POOL=/dev/mapper/pool

#----------------------------------------------------------------
# Protocol and command running

step() { echo "@@THINP STEP $*"; }
info() { echo "@@THINP INFO $*"; }
say() { echo "## $*"; }

# fail CHECK WHY: the scenario stops here.
fail() {
	echo "@@THINP FAIL $1: $2"
	exit 1
}

# run CMD...: echo the command, run it with its output logged; returns its
# status; the output stays in /tmp/run.out.
run() {
	echo "+ $*"
	"$@" >/tmp/run.out 2>&1
	RUN_RC=$?
	cat /tmp/run.out
	return $RUN_RC
}

# must CHECK CMD...: run, and fail CHECK if the command fails.
must() {
	c=$1; shift
	run "$@" || fail "$c" "'$*' exited $RUN_RC: $(tail -n 2 /tmp/run.out | tr '\n' ' ')"
}

# must_fail CHECK CMD...: the command must fail.
must_fail() {
	c=$1; shift
	run "$@" && fail "$c" "'$*' succeeded but must fail"
	return 0
}

#----------------------------------------------------------------
# Setup (called by init)

# Disks: the host names them in thinp_disks=a,b,c, in the order it attached
# them.  user-mode-linux: /dev/ubda, /dev/ubdb, ... in that order.  qemu:
# virtio disks whose serial is the name; they appear asynchronously, so we
# wait for them and never rely on their order.
find_disks() {
	letters="a b c d e f g h i j"
	i=0
	for name in $(echo "$THINP_DISKS" | tr , ' '); do
		i=$((i + 1))
		dev=
		if [ -e /sys/block/ubda ]; then
			l=$(echo $letters | cut -d' ' -f$i)
			dev=/dev/ubd$l
		else
			tries=0
			while [ -z "$dev" ] && [ $tries -lt 200 ]; do
				for s in /sys/block/vd*/serial; do
					[ -f "$s" ] || continue
					if [ "$(cat "$s")" = "$name" ]; then
						b=${s%/serial}
						dev=/dev/${b##*/}
					fi
				done
				[ -n "$dev" ] || { usleep 50000; tries=$((tries + 1)); }
			done
		fi
		[ -n "$dev" ] && [ -b "$dev" ] || { SETUP_ERROR="disk $name not found"; return 1; }
		echo "$name $dev" >>/tmp/disks
		echo "## disk $name = $dev ($(blockdev --getsize64 "$dev") bytes)"
	done
}

# disk NAME: the device node of a disk the host attached.
disk() {
	awk -v n="$1" '$1 == n { print $2 }' /tmp/disks
}

guest_setup() {
	: >/tmp/disks
	while read -r m; do
		[ -n "$m" ] || continue
		insmod "/thinp/modules/$m" || { SETUP_ERROR="insmod $m failed"; return 1; }
	done </thinp/modules/order
	find_disks || return 1
	dmsetup version >/dev/null 2>&1 || { SETUP_ERROR="dmsetup cannot talk to device-mapper: $(dmsetup version 2>&1 | tail -n 1)"; return 1; }
	dmsetup targets | grep -q '^thin-pool' || { SETUP_ERROR="no thin-pool target: $(dmsetup targets | tr '\n' ' ')"; return 1; }
	echo "## kernel $(uname -r); $(dmsetup targets | grep thin | tr '\n' ' ')"
	echo "## ours: $($OURS/pdata_tools thin_dump -V 2>&1); debian: $($DEBIAN/thin_dump -V 2>&1); upstream: $([ -x $UPSTREAM/thin_check ] && $UPSTREAM/thin_check -V 2>&1 || echo none)"
	return 0
}

# The kernel must not have complained about any metadata it read.
kernel_log_check() {
	bad=$(dmesg | grep -E 'device-mapper: (thin metadata|space map|btree|block manager|transaction manager|persistent data|bufio)|device-mapper: thin: .*([Ff]ail|[Ee]rror|abort|switching pool|needs_check|corrupt|[Uu]nable|[Cc]ould ?n)|check failed|Buffer I/O error|I/O error, dev' | head -n 5)
	[ -z "$bad" ] || fail kernel_log "dm-thin complained: $(echo "$bad" | tr '\n' '|')"
}

#----------------------------------------------------------------
# Device-mapper

sectors() { blockdev --getsz "$1"; }

# pool_up METADEV DATADEV: activates /dev/mapper/pool; it must come up
# read-write without needs_check.
pool_up() {
	must pool_activate dmsetup create pool --table "0 $(sectors "$2") thin-pool $1 $2 $BS 0 1 error_if_no_space"
	dmsetup mknodes
	pool_healthy pool_activate
}

# pool_healthy CHECK: the pool is not failed, read-only or needing a check.
pool_healthy() {
	hc=$1
	st=$(dmsetup status pool)
	echo "## pool status: $st"
	set -- $st
	[ "$3" = thin-pool ] && [ "$4" != Fail ] || fail "$hc" "pool failed: $st"
	case $8 in rw|out_of_data_space) ;; *) fail "$hc" "pool is $8: $st" ;; esac
	[ "${11}" = - ] || fail "$hc" "pool says ${11}: $st"
}

pool_msg() { must "${CHECK:-pool_message}" dmsetup message pool 0 "$*"; }

# pool_data_used / pool_data_total: data blocks, from the kernel's status.
pool_data_used() { dmsetup status pool | awk '{ split($6, a, "/"); print a[1] }'; }
pool_data_total() { dmsetup status pool | awk '{ split($6, a, "/"); print a[2] }'; }

# thin_up NAME ID SECTORS [EXTERNAL-ORIGIN]
thin_up() {
	must "${CHECK:-thin_activate}" dmsetup create "$1" --table "0 $3 thin $POOL $2${4:+ $4}"
	dmsetup mknodes
}

# thin_mapped NAME: mapped data blocks of an active thin device, as the
# kernel reports them (from the device details' mapped_blocks).
thin_mapped() { dmsetup status "$1" | awk -v bs=$BS '{ print $4 / bs }'; }

# snap ACTIVE-NAME NEW-ID ORIGIN-ID: internal snapshot of an active device.
snap() {
	must create_snap dmsetup suspend "$1"
	pool_msg create_snap "$2" "$3"
	must create_snap dmsetup resume "$1"
}

# dm_down NAME...: removes devices; the pool commits its metadata on
# suspend/remove, so metadata is read only after the pool is removed.
dm_down() {
	for n in "$@"; do
		must deactivate dmsetup remove "$n"
	done
}

#----------------------------------------------------------------
# Data: a read-only pattern disk ("pat", seeded by the host) is the source
# of every write, so runs are reproducible.

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# put DEV OFFSET LEN PATOFF: LEN bytes of the pattern at PATOFF to DEV at
# byte OFFSET (buffered: sub-page pieces are read-modify-written).
put() {
	must write dd if="$(disk pat)" of="$1" bs=65536 iflag=skip_bytes,count_bytes,fullblock \
		oflag=seek_bytes skip="$4" seek="$2" count="$3" conv=notrunc status=none
}

# put_direct DEV OFFSET LEN PATOFF: the same with O_DIRECT, so dm-thin sees
# exactly that I/O (OFFSET and LEN multiples of 512).
put_direct() {
	must write dd if="$(disk pat)" of="$1" bs="$3" iflag=skip_bytes,count_bytes,fullblock \
		oflag=seek_bytes,direct skip="$4" seek="$2" count="$3" conv=notrunc status=none
}

# dev_hash DEV: md5 of the whole device, read through the kernel after the
# page cache is dropped.  (Large reads: under user-mode-linux every system
# call is costly, and md5sum alone reads 4 KiB at a time.)
dev_hash() {
	drop_caches
	dd if="$1" bs=1M status=none | md5sum | cut -d' ' -f1
}

# save DEV OFFSET LEN FILE: a copy of a byte range of DEV.
save() {
	must save dd if="$1" of="$4" bs=65536 iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none
}

# put_file FILE DEV OFFSET [direct]: FILE back to DEV at byte OFFSET.
put_file() {
	must write dd if="$1" of="$2" bs=$(stat -c %s "$1") oflag=seek_bytes${4:+,direct} seek="$3" conv=notrunc status=none
}

# range_hash DEV OFFSET LEN (bytes, multiples of 512)
range_hash() {
	drop_caches
	dd if="$1" bs=65536 iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none | md5sum | cut -d' ' -f1
}

#----------------------------------------------------------------
# Metadata, read with our tools after the pool is removed

# check_clean CHECK METADEV: our thin_check must be clean (exit 0 and no
# diagnostic), and so must Debian's 0.9.0 and upstream 1.x where present.
check_clean() {
	c=$1 m=$2
	must "$c" $OURS/thin_check "$m"
	extra=$(grep -vE '^(examining (superblock|devices tree|mapping tree)|checking space map counts|TRANSACTION_ID=[0-9]+|METADATA_FREE_BLOCKS=[0-9]+)$' /tmp/run.out)
	[ -z "$extra" ] || fail "$c" "our thin_check said: $(echo "$extra" | head -n 3 | tr '\n' '|')"
	must "$c" $DEBIAN/thin_check "$m"
	if [ -x $UPSTREAM/thin_check ]; then
		must "$c" $UPSTREAM/thin_check "$m"
	fi
}

# cache_clean CHECK METADEV: our cache_check must be clean (exit 0, nothing
# said), and so must 0.9.0's and, where present, 1.x's.
cache_clean() {
	c=$1 m=$2
	must "$c" $OURS/cache_check "$m"
	[ ! -s /tmp/run.out ] || fail "$c" "our cache_check said: $(head -n 2 /tmp/run.out | tr '\n' '|')"
	must "$c" $DEBIAN/pdata_tools cache_check "$m"
	if [ -x $UPSTREAM/pdata_tools ]; then
		must "$c" $UPSTREAM/pdata_tools cache_check "$m"
	fi
}

# dump XMLFILE METADEV: our thin_dump.
dump() {
	echo "+ thin_dump $2 >$1"
	$OURS/thin_dump "$2" >"$1" 2>/tmp/run.out || fail dump "our thin_dump $2 failed: $(tail -n 2 /tmp/run.out | tr '\n' ' ')"
}

# xml_summary XMLFILE: one line per device "dev ID MAPPINGS DETAILS_MAPPED",
# then "used N" (distinct data blocks over all devices) and "devices N".
xml_summary() {
	awk '
	function attr(n,   r) {
		if (!match($0, " " n "=\"[0-9]+\"")) return -1
		r = substr($0, RSTART + length(n) + 3, RLENGTH - length(n) - 4)
		return r + 0
	}
	/<device / { d = attr("dev_id"); devs[d] = 0; det[d] = attr("mapped_blocks"); nd++ }
	/<single_mapping / { used[attr("data_block")] = 1; devs[d]++ }
	/<range_mapping / {
		b = attr("data_begin"); l = attr("length")
		for (i = 0; i < l; i++) used[b + i] = 1
		devs[d] += l
	}
	END {
		for (d in devs) print "dev", d, devs[d], det[d]
		n = 0; for (b in used) n++
		print "used", n
		print "devices", nd + 0
	}' "$1"
}

# xml_devices XMLFILE: the device ids, one a line, ascending.
xml_devices() { xml_summary "$1" | awk '$1 == "dev" { print $2 }' | sort -n; }
xml_used() { xml_summary "$1" | awk '$1 == "used" { print $2 }'; }
# xml_mappings XMLFILE ID: the mappings the tree of device ID holds.
xml_mappings() { xml_summary "$1" | awk -v d="$2" '$1 == "dev" && $2 == d { print $3 }'; }
# xml_details_mapped XMLFILE ID: the mapped_blocks its details claim.
xml_details_mapped() { xml_summary "$1" | awk -v d="$2" '$1 == "dev" && $2 == d { print $4 }'; }

# restore_with WRITER XMLFILE METADEV: thin_restore by WRITER (ours|debian).
restore_with() {
	case $1 in
	ours) must restore $OURS/thin_restore -i "$2" -o "$3" ;;
	debian) must restore $DEBIAN/thin_restore -i "$2" -o "$3" ;;
	esac
}

# restore_writer: ours when it was built, else Debian's 0.9.0 (labelled).
restore_writer() {
	if [ -e $OURS/thin_restore ]; then echo ours; else echo debian; fi
}

# expect_eq CHECK WHAT GOT WANT
expect_eq() {
	[ "$3" = "$4" ] || fail "$1" "$2: got $3, expected $4"
	echo "## ok $1: $2 = $3"
}
