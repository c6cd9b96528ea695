# SPDX-License-Identifier: GPL-3.0-or-later
# dm-array and dm-bitset (persistent-data/array.h, bitset.h)
libpdata_a_SOURCES += persistent-data/array.c persistent-data/bitset.c persistent-data/pd-store.c persistent-data/ref-check.c persistent-data/xml-read.c
noinst_HEADERS += persistent-data/array.h persistent-data/array-disk.h persistent-data/bitset.h persistent-data/pd-store.h persistent-data/ref-check.h persistent-data/xml-read.h persistent-data/walk-cap.h
if HAVE_GTEST
tests_unit_tests_SOURCES += tests/test-array.cc
endif
