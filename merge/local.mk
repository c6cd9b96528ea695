# SPDX-License-Identifier: GPL-3.0-or-later
# The in-place merge's check of what it reads and changes (issue 10).
libpdata_a_SOURCES += merge/merge-check.c

# Unit tests of merge_walk/merge_count and of the library code merge and
# repair stand on (tree copy, restore emitter, device iterator, salvage).
if HAVE_GTEST
tests_unit_tests_SOURCES += \
	tests/thin-model.h \
	tests/test-merge.cc \
	tests/test-restore.cc \
	tests/test-salvage.cc
endif
