# SPDX-License-Identifier: GPL-3.0-or-later
# thin_delta, thin_rmap, thin_trim, thin_metadata_pack/unpack, thin_migrate
COMMANDS += thin_delta thin_rmap
libpdata_a_SOURCES += \
	thincmds/delta.c \
	thincmds/rmap.c
pdata_tools_SOURCES += \
	thincmds/thin-delta.c \
	thincmds/thin-rmap.c
noinst_HEADERS += \
	thincmds/commands.h \
	thincmds/delta.h \
	thincmds/rmap.h
dist_man8_MANS += \
	man8/thin_delta.8 \
	man8/thin_rmap.8
if HAVE_GTEST
tests_unit_tests_SOURCES += \
	tests/test-delta.cc
endif
