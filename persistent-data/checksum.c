/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "checksum.h"
#include "crc32c.h"
#include "endian.h"
#include "io-engine.h"

uint32_t block_csum(const void *block, uint32_t xor_const)
{
	return crc32c(0xFFFFFFFFu, (const uint8_t *)block + 4, MD_BLOCK_SIZE - 4) ^ xor_const;
}

uint32_t block_stored_csum(const void *block)
{
	return load_le32(block);
}

void block_set_csum(void *block, uint32_t xor_const)
{
	store_le32(block, block_csum(block, xor_const));
}

uint32_t block_csum_type(const void *block)
{
	static const uint32_t types[] = {
		CSUM_XOR_SUPERBLOCK, CSUM_XOR_BTREE_NODE,
		CSUM_XOR_SM_BITMAP, CSUM_XOR_SM_INDEX,
	};
	uint32_t raw = crc32c(0xFFFFFFFFu, (const uint8_t *)block + 4, MD_BLOCK_SIZE - 4);
	uint32_t stored = block_stored_csum(block);

	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if ((raw ^ types[i]) == stored)
			return types[i];
	return 0;
}
