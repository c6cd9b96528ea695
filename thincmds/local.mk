# SPDX-License-Identifier: GPL-3.0-or-later
# thin_delta, thin_rmap, thin_trim, thin_metadata_pack/unpack, thin_migrate
COMMANDS += thin_delta thin_rmap thin_metadata_pack thin_metadata_unpack
libpdata_a_SOURCES += \
	thincmds/delta.c \
	thincmds/rmap.c \
	thincmds/pack.c
pdata_tools_SOURCES += \
	thincmds/thin-delta.c \
	thincmds/thin-rmap.c \
	thincmds/thin-metadata-pack.c
noinst_HEADERS += \
	thincmds/commands.h \
	thincmds/delta.h \
	thincmds/rmap.h \
	thincmds/pack.h
dist_man8_MANS += \
	man8/thin_delta.8 \
	man8/thin_rmap.8 \
	man8/thin_metadata_pack.8 \
	man8/thin_metadata_unpack.8
LDADD_ALL += $(ZLIB_LIBS)
AM_CFLAGS += $(ZLIB_CFLAGS)

if HAVE_GTEST
tests_unit_tests_SOURCES += \
	tests/test-delta.cc
endif
