/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The era metadata readers over an in-memory device: the input is an era
 * metadata image of 64 blocks (checksums fixed: superblock, btree nodes,
 * space map blocks, array blocks of the era array and the writeset
 * bitsets).  era_check, era_dump (plain, --logical, --repair) and
 * era_invalidate run on it; they walk the writeset tree, the writesets'
 * bitsets and the era array (persistent-data/array.c, bitset.c).
 */
#include "fuzz-common.h"
#include "cache/commands.h"
#include "era/era-disk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem_file in = { .fd = -1 }, out = { .fd = -1 };
	size_t n = FUZZ_MAX_BLOCKS;
	uint8_t *img = calloc(n, FUZZ_BLOCK);

	if (!img)
		return 0;
	memcpy(img, data, size < n * FUZZ_BLOCK ? size : n * FUZZ_BLOCK);
	fix_md_checksums(img, n, ERA_SB_CSUM_XOR,
			 offsetof(struct era_sb_disk, metadata_sm_root));
	if (mem_file_create(&in, img, n * FUZZ_BLOCK, n * FUZZ_BLOCK) ||
	    mem_file_create(&out, NULL, 0, 0))
		goto out;
	run_cmd(era_check_main, "era_check", "-q", in.path, NULL);
	run_cmd(era_dump_main, "era_dump", "-o", out.path, in.path, NULL);
	run_cmd(era_dump_main, "era_dump", "--logical", "-o", out.path, in.path, NULL);
	run_cmd(era_dump_main, "era_dump", "--repair", "-o", out.path, in.path, NULL);
	run_cmd(era_invalidate_main, "era_invalidate", "--written-since", "3", "-o", out.path,
		in.path, NULL);
out:
	mem_file_destroy(&in);
	mem_file_destroy(&out);
	free(img);
	return 0;
}
