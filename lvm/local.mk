# SPDX-License-Identifier: GPL-3.0-or-later
# thin_merge_lvm: a POSIX sh script over LVM and our thin_merge (man 8
# thin_merge_lvm), installed next to the command links.
dist_sbin_SCRIPTS = lvm/thin_merge_lvm
dist_man8_MANS += man8/thin_merge_lvm.8
