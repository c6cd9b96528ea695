/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The cache XML reader (cache/cache-xml.c over persistent-data/xml-read.c):
 * cache_restore runs on the input into a 1 MiB memory file.  Oracle: a
 * restore that exits 0 has written metadata our cache_check accepts.
 */
#include "fuzz-common.h"
#include "cache/commands.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the last byte picks the metadata version */
	int v2 = size && (data[size - 1] & 1);

	restore_then_check(data, size, cache_restore_main, "cache_restore",
			   v2 ? "--metadata-version" : NULL, "2", cache_check_main, "cache_check");
	return 0;
}
