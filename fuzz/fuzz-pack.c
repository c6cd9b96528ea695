/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The thin_metadata_unpack decoder (thin-provisioning/pack.c): the input
 * is decoded three ways: as one block's byte code (pack_vm_decode()); as
 * the inflated content of a pack's one chunk (a pack of that chunk is
 * built around it: header, then the input compressed by zlib, so that
 * the fuzzer reaches the block records behind the compression); and as a
 * whole pack file.  thin_metadata_unpack writes into a memory file.
 */
#include "fuzz-common.h"
#include "thin-provisioning/commands.h"
#include "thin-provisioning/pack.h"

#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void unpack(const uint8_t *pack, size_t len)
{
	struct mem_file in = { .fd = -1 }, out = { .fd = -1 };

	if (!mem_file_create(&in, pack, len, len) && !mem_file_create(&out, NULL, 0, 0))
		run_cmd(thin_metadata_unpack_main, "thin_metadata_unpack", "-q", "-f",
			"-i", in.path, "-o", out.path, NULL);
	mem_file_destroy(&in);
	mem_file_destroy(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t block[MD_BLOCK_SIZE];
	struct pd_err err;
	size_t used;
	uLongf zlen;
	uint8_t *pack;

	pack_vm_decode(data, size, block, &used, &err);
	unpack(data, size);
	if (!size)
		return 0;
	/* the first byte: the packed device's size in blocks (1 to 256) */
	zlen = compressBound(size - 1);
	pack = malloc(40 + zlen);
	if (!pack)
		return 0;
	store_le64(pack, PACK_MAGIC);
	store_le64(pack + 8, PACK_VERSION);
	store_le64(pack + 16, MD_BLOCK_SIZE);
	store_le64(pack + 24, 1u + data[0]);
	if (compress(pack + 40, &zlen, data + 1, size - 1) == Z_OK) {
		store_le64(pack + 32, zlen);
		unpack(pack, 40 + zlen);
	}
	free(pack);
	return 0;
}
