/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The era XML reader (era/era-xml.c over persistent-data/xml-read.c):
 * era_restore runs on the input into a 1 MiB memory file.  Oracle: a
 * restore that exits 0 has written metadata our era_check accepts.
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
	r = run_cmd(era_restore_main, "era_restore", "-q", "-i", xml.path, "-o", out.path,
		    NULL);
	if (!r && run_cmd(era_check_main, "era_check", "-q", out.path, NULL)) {
		fprintf(stderr, "era_restore exited 0 but era_check rejects its output\n");
		abort();
	}
out:
	mem_file_destroy(&xml);
	mem_file_destroy(&out);
	return 0;
}
