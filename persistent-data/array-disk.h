/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_ARRAY_DISK_H
#define PD_ARRAY_DISK_H

/* dm-array block layout (doc/cache-era-format.md section 2). */

#include "endian.h"

#include <stdint.h>

#define ARRAY_CSUM_XOR 595846735u

struct array_block_disk {
	le32 csum;		/* CRC-32C of bytes 4..4095, XOR ARRAY_CSUM_XOR */
	le32 max_entries;	/* (4096 - 24) / value_size */
	le32 nr_entries;
	le32 value_size;
	le64 blocknr;		/* where the block belongs */
} __attribute__((packed));
PD_STATIC_ASSERT(sizeof(struct array_block_disk) == 24, "array block header");

#define ARRAY_BLOCK_HEADER_SIZE 24u

static inline uint32_t array_max_entries(uint32_t value_size)
{
	return value_size ? (4096u - ARRAY_BLOCK_HEADER_SIZE) / value_size : 0;
}

/* Number of array blocks for nr_entries values. */
static inline uint64_t array_nr_blocks(uint64_t nr_entries, uint32_t value_size)
{
	uint32_t m = array_max_entries(value_size);

	return m ? (nr_entries + m - 1) / m : 0;
}

#endif
