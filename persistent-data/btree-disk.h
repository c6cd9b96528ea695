/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_BTREE_DISK_H
#define PD_BTREE_DISK_H

/* On-disk btree node layout (format doc section 4). */

#include "endian.h"
#include "io-engine.h"

#define BTREE_FLAG_INTERNAL	1u
#define BTREE_FLAG_LEAF		2u
#define BTREE_NODE_HEADER_SIZE	32u

struct btree_node_header_disk {
	le32 csum;
	le32 flags;
	le64 blocknr;
	le32 nr_entries;
	le32 max_entries;
	le32 value_size;
	le32 padding;
} __attribute__((packed));
PD_STATIC_ASSERT(sizeof(struct btree_node_header_disk) == 32, "node header");

/* As many key+value pairs as fit, rounded down to a multiple of 3. */
static inline uint32_t btree_max_entries(uint32_t value_size)
{
	uint32_t n = (MD_BLOCK_SIZE - BTREE_NODE_HEADER_SIZE) / (8u + value_size);

	return n / 3u * 3u;
}

/*
 * Blocks of a btree of n entries (an empty tree: its root leaf) whose
 * every node holds per entries: the size estimates use max entries for
 * what the bulk loader builds, max / 2 as a bound for any other tree.
 */
static inline uint64_t btree_blocks_for(uint64_t n, uint64_t per)
{
	uint64_t level = n ? (n + per - 1) / per : 1, total = 0;

	for (;;) {
		total += level;
		if (level <= 1)
			return total;
		level = (level + per - 1) / per;
	}
}

static inline struct btree_node_header_disk *node_header(void *block)
{
	return (struct btree_node_header_disk *)block;
}

static inline const struct btree_node_header_disk *node_header_c(const void *block)
{
	return (const struct btree_node_header_disk *)block;
}

/* Key i of a node (the keys start right after the header). */
static inline uint64_t node_key(const void *block, unsigned i)
{
	return load_le64((const uint8_t *)block + BTREE_NODE_HEADER_SIZE + 8u * i);
}

static inline void node_set_key(void *block, unsigned i, uint64_t k)
{
	store_le64((uint8_t *)block + BTREE_NODE_HEADER_SIZE + 8u * i, k);
}

/* The value area starts after all max_entries key slots. */
static inline void *node_values(void *block)
{
	uint32_t max = le32_to_cpu(node_header(block)->max_entries);

	return (uint8_t *)block + BTREE_NODE_HEADER_SIZE + 8u * max;
}

static inline const void *node_values_c(const void *block)
{
	uint32_t max = le32_to_cpu(node_header_c(block)->max_entries);

	return (const uint8_t *)block + BTREE_NODE_HEADER_SIZE + 8u * max;
}

static inline const void *node_value_c(const void *block, unsigned i, uint32_t vs)
{
	return (const uint8_t *)node_values_c(block) + (size_t)i * vs;
}

static inline uint32_t node_nr_entries(const void *block)
{
	return le32_to_cpu(node_header_c(block)->nr_entries);
}

static inline int node_is_leaf(const void *block)
{
	return le32_to_cpu(node_header_c(block)->flags) & BTREE_FLAG_LEAF;
}

#endif
