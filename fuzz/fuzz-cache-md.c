/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The cache metadata readers over an in-memory device: the input is a
 * cache metadata image of 64 blocks (checksums fixed: superblock, btree
 * nodes, space map blocks, array blocks of the hints and the bitsets).
 * cache_check, cache_dump (plain and --repair) and cache_repair run on it;
 * they walk the mapping and hint arrays and the dirty and discard bitsets
 * (persistent-data/array.c, bitset.c).  Oracle: a cache_repair that exits
 * 0 has written metadata our cache_check accepts.
 */
#include "fuzz-common.h"
#include "cache/cache-disk.h"
#include "cache/commands.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem_file in = { .fd = -1 }, out = { .fd = -1 }, rep = { .fd = -1 };
	size_t n = FUZZ_MAX_BLOCKS;
	uint8_t *img = calloc(n, FUZZ_BLOCK);

	if (!img)
		return 0;
	memcpy(img, data, size < n * FUZZ_BLOCK ? size : n * FUZZ_BLOCK);
	fix_md_checksums(img, n, CACHE_SB_CSUM_XOR,
			 offsetof(struct cache_sb_disk, metadata_sm_root));
	if (mem_file_create(&in, img, n * FUZZ_BLOCK, n * FUZZ_BLOCK) ||
	    mem_file_create(&out, NULL, 0, 0) ||
	    mem_file_create(&rep, NULL, 0, 2 * n * FUZZ_BLOCK))
		goto out;
	run_cmd(cache_check_main, "cache_check", "-q", in.path, NULL);
	run_cmd(cache_check_main, "cache_check", "-q", "--skip-hints", "--skip-discards",
		in.path, NULL);
	run_cmd(cache_dump_main, "cache_dump", "-o", out.path, in.path, NULL);
	run_cmd(cache_dump_main, "cache_dump", "--repair", "-o", out.path, in.path, NULL);
	if (!run_cmd(cache_repair_main, "cache_repair", "-i", in.path, "-o", rep.path, NULL) &&
	    run_cmd(cache_check_main, "cache_check", "-q", rep.path, NULL)) {
		fprintf(stderr, "cache_repair exited 0 but cache_check rejects its output\n");
		abort();
	}
out:
	mem_file_destroy(&in);
	mem_file_destroy(&out);
	mem_file_destroy(&rep);
	free(img);
	return 0;
}
