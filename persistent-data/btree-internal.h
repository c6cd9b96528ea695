/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_BTREE_INTERNAL_H
#define PD_BTREE_INTERNAL_H

/*
 * What the btree files share and nobody else needs (the kernel keeps the
 * same in dm-btree-internal.h): the node accessors beyond btree-disk.h's,
 * the one binary search, and the write side's common steps (checking,
 * locking and reference counting of nodes), which btree-write.c defines
 * for btree-insert.c, btree-remove.c and btree-builder.c.
 */

#include "btree.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/*----------------------------------------------------------------
 * Node layout
 *--------------------------------------------------------------*/

static inline void node_set_nr_entries(void *n, uint32_t nr)
{
	node_header(n)->nr_entries = cpu_to_le32(nr);
}

static inline uint32_t node_max_entries(const void *n)
{
	return le32_to_cpu(node_header_c(n)->max_entries);
}

static inline uint32_t node_value_size(const void *n)
{
	return le32_to_cpu(node_header_c(n)->value_size);
}

/* The fill every non-root node keeps. */
static inline uint32_t node_min_entries(const void *n)
{
	return node_max_entries(n) / 3u;
}

/* Value i, writable, at the node's own value size. */
static inline void *node_value(void *n, unsigned i)
{
	return (uint8_t *)node_values(n) + (size_t)i * node_value_size(n);
}

/* Child i of an internal node. */
static inline uint64_t node_child(const void *n, unsigned i)
{
	return load_le64(node_value_c(n, i, 8));
}

static inline void node_set_child(void *n, unsigned i, uint64_t b)
{
	store_le64(node_value(n, i), b);
}

/* An empty node of section 4's layout. */
static inline void node_init(void *n, bool leaf, uint32_t value_size)
{
	struct btree_node_header_disk *h = node_header(n);

	h->flags = cpu_to_le32(leaf ? BTREE_FLAG_LEAF : BTREE_FLAG_INTERNAL);
	h->nr_entries = cpu_to_le32(0);
	h->max_entries = cpu_to_le32(btree_max_entries(value_size));
	h->value_size = cpu_to_le32(value_size);
	h->padding = cpu_to_le32(0);
}

/*
 * Copies count entries between nodes of one layout; src and dst may be
 * the same node (overlap is fine).  nr_entries is the caller's.
 */
static inline void node_move_entries(void *dst, unsigned di, const void *src,
				     unsigned si, unsigned count)
{
	uint32_t vs = node_value_size(dst);

	memmove((uint8_t *)dst + BTREE_NODE_HEADER_SIZE + 8u * di,
		(const uint8_t *)src + BTREE_NODE_HEADER_SIZE + 8u * si, 8u * (size_t)count);
	memmove(node_value(dst, di), node_value_c(src, si, vs), (size_t)vs * count);
}

/* The caller makes sure there is room. */
static inline void node_insert_at(void *n, unsigned i, uint64_t key, const void *value)
{
	uint32_t nr = node_nr_entries(n);

	node_move_entries(n, i + 1, n, i, nr - i);
	node_set_key(n, i, key);
	memcpy(node_value(n, i), value, node_value_size(n));
	node_set_nr_entries(n, nr + 1);
}

static inline void node_delete_at(void *n, unsigned i)
{
	uint32_t nr = node_nr_entries(n);

	node_move_entries(n, i, n, i + 1, nr - i - 1);
	node_set_nr_entries(n, nr - 1);
}

/* Largest i with key[i] <= k, or -1 (keys strictly increasing). */
static inline int node_lower_bound(const void *n, uint64_t k)
{
	int lo = -1, hi = (int)node_nr_entries(n);

	while (hi - lo > 1) {
		int mid = lo + (hi - lo) / 2;

		if (node_key(n, (unsigned)mid) <= k)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* "deeper than BTREE_MAX_DEPTH levels" for the tree at root: -EILSEQ. */
int btree_too_deep(uint64_t root, struct pd_err *err);

/*----------------------------------------------------------------
 * Write side (btree-write.c).  Errors as btree-write.h says.
 *
 * Invariants kept by every write function (and relied upon by them):
 *  - a parent's key[i] is a lower bound of child i's keys, and child i's
 *    keys are below key[i+1];
 *  - every non-root node holds at least max_entries / 3 entries;
 *  - a node we hold write-locked after bw_shadow_node() is ours alone
 *    (count 1), so entries may move between such nodes without touching
 *    any reference count.
 *--------------------------------------------------------------*/

struct btree_info;

/* vt.size gives a layout of at least three entries a node, else -EINVAL. */
int bw_check_value_size(const struct btree_info *info, struct pd_err *err);

/* vt.equal, else memcmp of vt.size bytes. */
bool bw_values_equal(const struct btree_info *info, const void *a, const void *b);

/* vt.dec of one value (a no-op without vt.dec). */
int bw_value_dec(const struct btree_info *info, const void *v, struct pd_err *err);

/* tm_inc / tm_dec of a node, tm_ref that must be non-zero. */
int bw_block_inc(const struct btree_info *info, uint64_t b, struct pd_err *err);
int bw_block_dec(const struct btree_info *info, uint64_t b, struct pd_err *err);
int bw_block_count(const struct btree_info *info, uint64_t b, uint32_t *count,
		   struct pd_err *err);

/*
 * Entries [first, first + count) of n gained a referrer (n itself, next
 * to the node they were copied from): vt.inc of leaf values, tm_inc of
 * children.
 */
int bw_inc_entries(const struct btree_info *info, void *n, unsigned first,
		   unsigned count, struct pd_err *err);

/*
 * Node b read-locked, with the exact layout of section 4 for this tree
 * (the write side moves entries by max_entries slots, so a layout the
 * validator merely tolerates will not do).
 */
int bw_read_node(const struct btree_info *info, uint64_t b, struct bm_block **out,
		 struct pd_err *err);

/* Node b writable and ours alone; a shared original keeps its children. */
int bw_shadow_node(const struct btree_info *info, uint64_t b, struct bm_block **out,
		   struct pd_err *err);

/*
 * Node b, which we hold one reference to, copied into dst (a node of
 * ours): if b stays alive (it is shared) its entries gain dst as a
 * referrer; either way b loses our reference.
 */
int bw_take_node(const struct btree_info *info, uint64_t b, void *dst,
		 struct pd_err *err);

/* Child i of p (ours) shadowed, and p pointing at the shadow. */
int bw_shadow_child(const struct btree_info *info, void *p, unsigned i,
		    struct bm_block **out, struct pd_err *err);

/* tm_unlock of a block that may be NULL. */
void bw_unlock(const struct btree_info *info, struct bm_block *b);

/*
 * A new node of the same kind as like (a leaf of this tree, or internal).
 * Its count is 1 and it is new in this transaction, so it is ours.
 */
int bw_new_node_like(const struct btree_info *info, const void *like,
		     struct bm_block **out, struct pd_err *err);

#endif
