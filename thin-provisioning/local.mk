# SPDX-License-Identifier: GPL-3.0-or-later
# thin-provisioning commands beyond the first seven: thin_delta, thin_rmap, thin_trim, thin_metadata_pack/unpack, thin_migrate
COMMANDS += thin_delta thin_rmap thin_metadata_pack thin_metadata_unpack thin_trim thin_migrate
libpdata_a_SOURCES += \
	thin-provisioning/delta.c \
	thin-provisioning/rmap.c \
	thin-provisioning/pack.c \
	thin-provisioning/trim.c \
	thin-provisioning/dm-ioctl.c
pdata_tools_SOURCES += \
	thin-provisioning/thin-delta.c \
	thin-provisioning/thin-rmap.c \
	thin-provisioning/thin-metadata-pack.c \
	thin-provisioning/thin-trim.c \
	thin-provisioning/thin-migrate.c
noinst_HEADERS += \
	thin-provisioning/commands.h \
	thin-provisioning/delta.h \
	thin-provisioning/rmap.h \
	thin-provisioning/pack.h \
	thin-provisioning/trim.h \
	thin-provisioning/dm-ioctl.h
dist_man8_MANS += \
	man8/thin_delta.8 \
	man8/thin_rmap.8 \
	man8/thin_metadata_pack.8 \
	man8/thin_metadata_unpack.8 \
	man8/thin_trim.8 \
	man8/thin_migrate.8
LDADD_ALL += $(ZLIB_LIBS)
AM_CFLAGS += $(ZLIB_CFLAGS)

if HAVE_GTEST
tests_unit_tests_SOURCES += \
	tests/test-delta.cc
endif
