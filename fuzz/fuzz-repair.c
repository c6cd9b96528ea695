/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * thin_repair and thin_dump --repair on an in-memory pool: the input is
 * a metadata image (checksums fixed, so the salvage meets the structure
 * behind them: wrong roots, cycles, leaves several devices share, keys
 * out of order, mappings past the data device).
 * Oracle: thin_repair never exits 0 having written metadata thin_check
 * rejects.
 */
#include "fuzz-common.h"
#include "thin-provisioning/check.h"
#include "thin-provisioning/commands.h"

static const struct thin_check_opts check_opts = { .engine = IO_ENGINE_SYNC };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem_file in = { .fd = -1 }, out = { .fd = -1 };
	size_t nr;
	uint8_t *img = image_from_input(data, size, 2, &nr);

	if (!img)
		return 0;
	if (!mem_file_create(&in, img, nr * FUZZ_BLOCK, nr * FUZZ_BLOCK) &&
	    !mem_file_create(&out, NULL, 0, 1024u * FUZZ_BLOCK)) {
		if (!run_cmd(thin_repair_main, "thin_repair", "-q", "-i", in.path, "-o", out.path,
			     NULL) &&
		    thin_check(out.path, &check_opts, NULL, NULL)) {
			fprintf(stderr, "thin_repair exited 0 but thin_check rejects what it wrote\n");
			abort();
		}
		run_cmd(thin_dump_main, "thin_dump", "--repair", "-o", out.path, in.path, NULL);
	}
	mem_file_destroy(&in);
	mem_file_destroy(&out);
	free(img);
	return 0;
}
