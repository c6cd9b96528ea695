# SPDX-License-Identifier: GPL-3.0-or-later
# dm-cache metadata: library and commands
libpdata_a_SOURCES += cache/cache-md.c cache/cache-xml.c
noinst_HEADERS += cache/cache-md.h cache/cache-xml.h cache/commands.h
pdata_tools_SOURCES += \
	cache/cache-check.c \
	cache/cache-dump.c \
	cache/cache-restore.c \
	cache/cache-repair.c \
	cache/cache-metadata-size.c
COMMANDS += cache_check cache_dump cache_restore cache_repair cache_metadata_size
dist_man8_MANS += man8/cache_check.8 man8/cache_dump.8 man8/cache_restore.8 \
	man8/cache_repair.8 man8/cache_metadata_size.8
