# SPDX-License-Identifier: GPL-3.0-or-later
# dm-era metadata: library and commands
libpdata_a_SOURCES += era/era-md.c era/era-xml.c
noinst_HEADERS += era/era-disk.h era/era-md.h era/era-xml.h
pdata_tools_SOURCES += \
	era/era-check.c \
	era/era-dump.c \
	era/era-restore.c \
	era/era-invalidate.c
COMMANDS += era_check era_dump era_restore era_invalidate
dist_man8_MANS += man8/era_check.8 man8/era_dump.8 man8/era_restore.8 man8/era_invalidate.8
