# SPDX-License-Identifier: GPL-3.0-or-later
# libFuzzer harnesses: opt-in, built by fuzz/Makefile with clang (never
# part of all/check/distcheck).  `make fuzz` runs each harness for
# FUZZ_TIME seconds (default 3600) and lists crash and timeout inputs.
EXTRA_DIST += fuzz/Makefile fuzz/local.mk fuzz/make-seeds.sh fuzz/fuzz-common.h \
	fuzz/fuzz-validators.c fuzz/fuzz-btree-walk.c fuzz/fuzz-space-map.c \
	fuzz/fuzz-xml.c fuzz/fuzz-merge.c fuzz/fuzz-repair.c fuzz/fuzz-cache-md.c fuzz/fuzz-era-md.c \
	fuzz/fuzz-cache-xml.c fuzz/fuzz-era-xml.c fuzz/fuzz-snapshot.c fuzz/fuzz-pack.c \
	fuzz/corpus

.PHONY: fuzz
fuzz:
	@command -v clang >/dev/null || { echo "make fuzz needs clang and libFuzzer (clang-14, libclang-rt-14-dev)"; exit 1; }
	$(MAKE) -C $(top_srcdir)/fuzz OUT='$(abs_top_builddir)/fuzz-build' run
