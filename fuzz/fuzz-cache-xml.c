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
	struct mem_file xml = { .fd = -1 }, out = { .fd = -1 };
	int r;

	if (mem_file_create(&xml, data, size, size) ||
	    mem_file_create(&out, NULL, 0, 1u << 20))
		goto out;
	if (size && (data[size - 1] & 1)) {
		/* the last byte picks the metadata version */
		r = run_cmd(cache_restore_main, "cache_restore", "-q", "--metadata-version", "2",
			    "-i", xml.path, "-o", out.path, NULL);
	} else
	r = run_cmd(cache_restore_main, "cache_restore", "-q", "-i", xml.path, "-o", out.path,
		    NULL);
	if (!r && run_cmd(cache_check_main, "cache_check", "-q", out.path, NULL)) {
		fprintf(stderr, "cache_restore exited 0 but cache_check rejects its output\n");
		abort();
	}
out:
	mem_file_destroy(&xml);
	mem_file_destroy(&out);
	return 0;
}
