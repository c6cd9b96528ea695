# SPDX-License-Identifier: GPL-3.0-or-later
# dm-snapshot exception stores: snapshot_check, snapshot_dump,
# snapshot_merge and its dm-merge name (included from Makefile.am).

COMMANDS += snapshot_check snapshot_dump snapshot_merge dm-merge

libpdata_a_SOURCES += \
	snapshot/snap-store.c \
	snapshot/snap-sort.c \
	snapshot/snap-merge.c

noinst_HEADERS += \
	snapshot/snap-disk.h \
	snapshot/snap-store.h \
	snapshot/snap-sort.h \
	snapshot/snap-merge.h \
	snapshot/snap-cli.h \
	snapshot/commands.h

pdata_tools_SOURCES += \
	snapshot/snap-cli.c \
	snapshot/snapshot-check.c \
	snapshot/snapshot-dump.c \
	snapshot/snapshot-merge.c

dist_man8_MANS += \
	man8/snapshot_check.8 \
	man8/snapshot_dump.8 \
	man8/snapshot_merge.8 \
	man8/dm-merge.8

if HAVE_GTEST
tests_unit_tests_SOURCES += tests/test-snapshot-store.cc
endif

EXTRA_DIST += doc/snapshot-format.md
