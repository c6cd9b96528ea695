# SPDX-License-Identifier: GPL-3.0-or-later
# dm-cache metadata: library and commands
libpdata_a_SOURCES += cache/cache-md.c cache/cache-xml.c cache/data-copy.c
noinst_HEADERS += cache/md-cli.h cache/cache-disk.h cache/cache-md.h cache/cache-xml.h cache/commands.h cache/data-copy.h
pdata_tools_SOURCES += \
	cache/md-cli.c \
	cache/cache-check.c \
	cache/cache-dump.c \
	cache/cache-restore.c \
	cache/cache-repair.c \
	cache/cache-metadata-size.c \
	cache/cache-writeback.c
COMMANDS += cache_check cache_dump cache_restore cache_repair cache_metadata_size cache_writeback
dist_man8_MANS += man8/cache_check.8 man8/cache_dump.8 man8/cache_restore.8 \
	man8/cache_repair.8 man8/cache_metadata_size.8 man8/cache_writeback.8
EXTRA_DIST += doc/cache-era-format.md

# The cache and era benchmark against 1.x (bench/cache-era-bench.sh)
.PHONY: bench-cache-era
bench-cache-era: all
	$(top_srcdir)/bench/cache-era-bench.sh '$(abs_top_builddir)'
