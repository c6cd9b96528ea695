# SPDX-License-Identifier: GPL-3.0-or-later
# thin_delta, thin_rmap, thin_trim, thin_metadata_pack/unpack, thin_migrate
COMMANDS += thin_delta
libpdata_a_SOURCES += \
	thincmds/delta.c
pdata_tools_SOURCES += \
	thincmds/thin-delta.c
noinst_HEADERS += \
	thincmds/commands.h \
	thincmds/delta.h
dist_man8_MANS += \
	man8/thin_delta.8
if HAVE_GTEST
tests_unit_tests_SOURCES += \
	tests/test-delta.cc
endif
