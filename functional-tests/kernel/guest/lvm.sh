# SPDX-License-Identifier: GPL-3.0-or-later
#
# LVM in the test guest: Debian's lvm2, unpacked by the host into the image,
# configured to run our tools, with no udev and no daemons.  Sourced by the
# lvm_* scenarios after lib.sh.
#
# Every run of our tools by LVM goes through a wrapper that appends one line
# to $LVM_TOOLS_LOG ("thin_check '-q' '--clear-needs-check-flag' '/dev/...'",
# each argument quoted, empty ones included) and then execs our binary, so
# a scenario proves which of our commands LVM ran, with which arguments.

LVM_TOOLS_LOG=/tmp/lvm-tools.log
LVM_WRAP=/thinp/lvmwrap
VG=vg

# lvm_setup DISK...: writes /etc/lvm/lvm.conf (LVM's defaults apart from
# the device filter, no udev, no monitoring, and our tools) for the
# host-attached disks named.
lvm_setup() {
	mkdir -p /etc/lvm/backup /etc/lvm/archive /run/lock/lvm /run/lvm "$LVM_WRAP"
	: >"$LVM_TOOLS_LOG"
	for c in thin_check thin_dump thin_repair thin_restore cache_check cache_dump cache_repair; do
		cat >"$LVM_WRAP/$c" <<EOF
#!/bin/sh
{ printf '%s' $c; for a in "\$@"; do printf " '%s'" "\$a"; done; echo; } >>$LVM_TOOLS_LOG
exec $OURS/$c "\$@"
EOF
		chmod 755 "$LVM_WRAP/$c"
	done
	filter=
	for d in "$@"; do
		filter="$filter\"a|^$(disk "$d")\$|\", "
	done
	cat >/etc/lvm/lvm.conf <<EOF
devices {
	filter = [ $filter"r|.*|" ]
}
activation {
	udev_sync = 0
	udev_rules = 0
	monitoring = 0
}
global {
	thin_check_executable = "$LVM_WRAP/thin_check"
	thin_dump_executable = "$LVM_WRAP/thin_dump"
	thin_repair_executable = "$LVM_WRAP/thin_repair"
	cache_check_executable = "$LVM_WRAP/cache_check"
	cache_dump_executable = "$LVM_WRAP/cache_dump"
	cache_repair_executable = "$LVM_WRAP/cache_repair"
EOF
	# thin_restore_executable only where this LVM knows the key
	if lvmconfig --type default global/thin_restore_executable </dev/null >/dev/null 2>&1; then
		echo "	thin_restore_executable = \"$LVM_WRAP/thin_restore\"" >>/etc/lvm/lvm.conf
	fi
	echo "}" >>/etc/lvm/lvm.conf
	echo "## lvm.conf:"; cat /etc/lvm/lvm.conf
	info "lvm=$(lvm version </dev/null 2>&1 | head -n 1 | tr -s ' ')"
	must lvm_setup lvmconfig --type diff
	must lvm_setup lvmconfig --type default global/thin_check_options global/thin_repair_options \
		global/cache_check_options global/cache_repair_options
}

# L CMD...: an LVM command (stdin from /dev/null: LVM never waits for an
# answer); fails the step named by $CHECK (default: lvm) when it fails.
L() {
	echo "+ $*"
	"$@" </dev/null >/tmp/run.out 2>&1
	RUN_RC=$?
	cat /tmp/run.out
	[ $RUN_RC -eq 0 ] || fail "${CHECK:-lvm}" "'$*' exited $RUN_RC: $(grep -v WARNING /tmp/run.out | tail -n 2 | tr '\n' ' ')"
}

# L_fail CMD...: an LVM command that must fail.
L_fail() {
	echo "+ $* (must fail)"
	"$@" </dev/null >/tmp/run.out 2>&1
	RUN_RC=$?
	cat /tmp/run.out
	[ $RUN_RC -ne 0 ] || fail "${CHECK:-lvm}" "'$*' succeeded but must fail"
}

# lvattr LV FIELD: one lvs field of VG/LV, trimmed ("" when there is none).
lvattr() {
	lvs -a --noheadings --nosuffix --units s -o "$2" "$VG/$1" </dev/null 2>/dev/null | tr -d ' '
}

# tools_log_reset / tools_ran PATTERN: what LVM ran since the reset.
tools_log_reset() { : >"$LVM_TOOLS_LOG"; }
tools_log_show() { echo "## our tools as LVM ran them:"; sed 's/^/##   /' "$LVM_TOOLS_LOG"; }

# expect_ran CHECK LINE: LVM ran exactly that command line (from the log).
expect_ran() {
	grep -qxF "$2" "$LVM_TOOLS_LOG" || { tools_log_show; fail "$1" "LVM did not run: $2"; }
	echo "## ok $1: LVM ran $2"
}

# expect_ran_none CHECK: LVM ran none of our tools since the reset.
expect_ran_none() {
	[ ! -s "$LVM_TOOLS_LOG" ] || { tools_log_show; fail "$1" "LVM ran our tools unexpectedly"; }
}

# lv_hashes LV...: a line "LV md5" for each LV of $VG, read through the kernel.
lv_hashes() {
	for lv in "$@"; do
		echo "$lv $(dev_hash "$(dm_node $VG $lv)")"
	done
}

# expect_repair_ran CHECK: `lvconvert --repair` ran our thin_repair with
# LVM's empty default option from the pool's metadata into its spare,
# whose device is then in $SPARE.
expect_repair_ran() {
	SPARE=$(sed -n "s|^thin_repair '' '-i' '/dev/mapper/$VG-pool_tmeta' '-o' '\(/dev/mapper/$VG-[a-z0-9_]*pmspare\)'\$|\1|p" "$LVM_TOOLS_LOG")
	[ -n "$SPARE" ] || fail "$1" "LVM did not run thin_repair '' -i <tmeta> -o <spare>"
	echo "## ok $1: our thin_repair, with LVM's empty default option, into $SPARE"
}

# dm_node VG LV: /dev/mapper name of an LV (dashes doubled).
dm_node() { echo "/dev/mapper/$(echo "$1" | sed 's/-/--/g')-$(echo "$2" | sed 's/-/--/g')"; }

# Direct access to a pool's metadata with the pool inactive: the table of
# its _tmeta device, recorded while the pool is active, gives a writable
# device-mapper device over the same extents.
meta_table_save() { dmsetup table "$VG-${1}_tmeta" >/tmp/tmeta.$1.table || fail meta_table "no $VG-${1}_tmeta"; }
# meta_open POOL: $META is then a writable device over POOL's metadata.
meta_open() {
	must meta_open dmsetup create tmeta_direct --table "$(cat /tmp/tmeta.$1.table)"
	dmsetup mknodes
	META=/dev/mapper/tmeta_direct
}
meta_close() { must meta_close dmsetup remove tmeta_direct; }

# sb_csum DEV: the checksum a thin superblock (block 0 of DEV) must have.
sb_csum() {
	dd if="$1" bs=4096 count=1 status=none | od -An -v -tu1 | awk '
	BEGIN {
		for (i = 0; i < 256; i++) {
			c = i
			for (k = 0; k < 8; k++) c = and(c, 1) ? xor(rshift(c, 1), 2197175160) : rshift(c, 1)
			T[i] = c
		}
		crc = 4294967295
	}
	{ for (f = 1; f <= NF; f++) { if (n >= 4) crc = xor(T[and(xor(crc, $f), 255)], rshift(crc, 8)); n++ } }
	END { print xor(crc, 160774) }'
}

# put_le32 DEV OFFSET VALUE
put_le32() {
	v=$3
	printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((v & 255)) $(((v >> 8) & 255)) $(((v >> 16) & 255)) $(((v >> 24) & 255)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
get_le32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }

# sb_set_flags DEV FLAGS: the superblock's flags field, re-checksummed
# (flag 1 is NEEDS_CHECK).
sb_set_flags() {
	put_le32 "$1" 4 "$2"
	put_le32 "$1" 0 "$(sb_csum "$1")"
	sync
}

# lvm_new_vg: LVM set up on disk pv alone, and the volume group $VG on it
# (for the scenarios that build their LVs from nothing).
lvm_new_vg() {
	step lvm_setup
	lvm_setup pv
	CHECK=lvm_build
	L pvcreate "$(disk pv)"
	L vgcreate $VG "$(disk pv)"
}
