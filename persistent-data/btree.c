/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "btree-internal.h"
#include "checksum.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*----------------------------------------------------------------
 * Node validation
 *--------------------------------------------------------------*/

static int node_check(const struct bm_validator *v, const void *data,
		      uint64_t location, struct pd_err *err)
{
	const struct btree_node_header_disk *h = data;
	uint64_t blocknr = le64_to_cpu(h->blocknr);
	uint32_t flags = le32_to_cpu(h->flags);
	uint32_t max = le32_to_cpu(h->max_entries);
	uint32_t nr = le32_to_cpu(h->nr_entries);
	uint32_t vs = le32_to_cpu(h->value_size);
	uint32_t want;

	(void)v;
	if (blocknr != location)
		return pd_err_set(err, -EILSEQ,
				  "block number mismatch: actually %" PRIu64 ", claims %" PRIu64,
				  location,
				  blocknr);
	want = block_csum(data, CSUM_XOR_BTREE_NODE);
	if (want != block_stored_csum(data)) {
		if (block_csum_type(data))
			return pd_err_set(err, -EILSEQ,
					  "not a btree node (block %" PRIu64 ")",
					  location);
		return pd_err_set(err, -EILSEQ,
				  "bad checksum in btree node (block %" PRIu64 ")",
				  location);
	}
	if (vs > MD_BLOCK_SIZE ||
	    (uint64_t)BTREE_NODE_HEADER_SIZE + (8ull + vs) * max > MD_BLOCK_SIZE)
		return pd_err_set(err, -EILSEQ, "max entries too large: %u (block %" PRIu64 ")",
				  max, location);
	if (nr > max)
		return pd_err_set(err, -EILSEQ, "bad nr_entries: %u < %u (block %" PRIu64 ")",
				  nr, max, location);
	if ((flags & (BTREE_FLAG_INTERNAL | BTREE_FLAG_LEAF)) ==
	    (BTREE_FLAG_INTERNAL | BTREE_FLAG_LEAF))
		return pd_err_set(err, -EILSEQ,
				  "btree node is both internal and leaf (block %" PRIu64 ")",
				  location);
	if (!(flags & (BTREE_FLAG_INTERNAL | BTREE_FLAG_LEAF)))
		return pd_err_set(err, -EILSEQ, "unknown node type (block %" PRIu64 ")",
				  location);
	return 0;
}

void btree_node_prepare(void *node, uint64_t location)
{
	node_header(node)->blocknr = cpu_to_le64(location);
	block_set_csum(node, CSUM_XOR_BTREE_NODE);
}

static void node_prepare(const struct bm_validator *v, void *data, uint64_t location)
{
	(void)v;
	btree_node_prepare(data, location);
}

const struct bm_validator btree_node_validator = {
	.name = "btree_node",
	.check = node_check,
	.prepare_for_write = node_prepare,
};

int btree_node_check_shape(const void *node, uint64_t location,
			   const struct btree_shape_opts *o, struct pd_err *err)
{
	const struct btree_node_header_disk *h = node;
	uint32_t flags = le32_to_cpu(h->flags);
	uint32_t max = le32_to_cpu(h->max_entries);
	uint32_t nr = le32_to_cpu(h->nr_entries);
	uint32_t vs = le32_to_cpu(h->value_size);
	uint32_t want_vs = (flags & BTREE_FLAG_LEAF) ? o->value_size : 8u;
	uint64_t b = location;

	if (flags & ~(BTREE_FLAG_INTERNAL | BTREE_FLAG_LEAF) || !flags)
		return pd_err_set(err, -EILSEQ, "unknown node type (block %" PRIu64 ")", b);
	if (flags == (BTREE_FLAG_INTERNAL | BTREE_FLAG_LEAF))
		return pd_err_set(err, -EILSEQ,
				  "btree node is both internal and leaf (block %" PRIu64 ")", b);
	if (vs != want_vs)
		return pd_err_set(err, -EILSEQ,
				  "value size mismatch: expected %u, but got %u (block %" PRIu64 ").",
				  want_vs, vs, b);
	if (max % 3 && !o->allow_max_not_div3)
		return pd_err_set(err, -EILSEQ,
				  "max entries is not divisible by 3: %u (block %" PRIu64 ")", max, b);
	/* lax (1.x --ignore-non-fatal-errors): anything that fits the block */
	if (o->allow_max_not_div3 ?
	    (uint64_t)BTREE_NODE_HEADER_SIZE + (8ull + vs) * max > MD_BLOCK_SIZE :
	    max > btree_max_entries(vs))
		return pd_err_set(err, -EILSEQ, "max entries too large: %u (block %" PRIu64 ")",
				  max, b);
	if (o->exact_max && max != btree_max_entries(vs))
		return pd_err_set(err, -EILSEQ,
				  "max entries is %u, not the format's %u (block %" PRIu64 ")",
				  max, btree_max_entries(vs), b);
	for (uint32_t i = 1; i < nr; i++) {
		uint64_t prev = node_key(node, i - 1), k = node_key(node, i);

		if (k <= prev)
			return pd_err_set(err, -EILSEQ,
					  "keys are out of order, %" PRIu64 " <= %" PRIu64 " (block %" PRIu64 ")",
					  k, prev, b);
	}
	return 0;
}

/*----------------------------------------------------------------
 * Lookup
 *--------------------------------------------------------------*/

int btree_too_deep(uint64_t root, struct pd_err *err)
{
	return pd_err_set(err, -EILSEQ,
			  "btree rooted at block %" PRIu64 " is deeper than %u levels (cycle?)",
			  root, BTREE_MAX_DEPTH);
}

int btree_lookup(struct bm *bm, uint64_t root, uint32_t value_size,
		 uint64_t key, void *value_out, struct pd_err *err)
{
	struct btree_shape_opts so = { .value_size = value_size };
	uint64_t b = root;

	for (unsigned depth = 0; depth < BTREE_MAX_DEPTH; depth++) {
		struct bm_block *blk;
		const void *n;
		int r, i;

		r = bm_read_lock(bm, b, &btree_node_validator, &blk, err);
		if (r)
			return r;
		n = bm_block_data(blk);
		/* a node is checked once while its content stays in the cache */
		if (*bm_block_aux(blk) != (value_size << 1 | 1)) {
			r = btree_node_check_shape(n, b, &so, err);
			if (r) {
				bm_unlock(blk);
				return r;
			}
			*bm_block_aux(blk) = value_size << 1 | 1;
		}
		i = node_lower_bound(n, key);
		if (i < 0) {
			bm_unlock(blk);
			return -ENODATA;
		}
		if (node_is_leaf(n)) {
			bool found = node_key(n, (unsigned)i) == key;

			if (found && value_out)
				memcpy(value_out, node_value_c(n, (unsigned)i, value_size),
				       value_size);
			bm_unlock(blk);
			return found ? 0 : -ENODATA;
		}
		b = node_child(n, (unsigned)i);
		bm_unlock(blk);
	}
	return btree_too_deep(root, err);
}

/*----------------------------------------------------------------
 * Read-ahead of a key range
 *--------------------------------------------------------------*/

void btree_prefetch_keys(struct bm *bm, uint64_t root, const uint64_t *keys, unsigned nr_keys)
{
	enum { MAX_LEVEL = 1024 };
	/* the nodes of a level, and the key each one's range ends before */
	uint64_t *buf = malloc(4 * MAX_LEVEL * sizeof(uint64_t));
	uint64_t *level, *level_hi, *next, *next_hi;
	unsigned n = 1;

	if (!buf)
		return;
	level = buf;
	level_hi = buf + MAX_LEVEL;
	next = buf + 2 * MAX_LEVEL;
	next_hi = buf + 3 * MAX_LEVEL;
	level[0] = root;
	level_hi[0] = UINT64_MAX;
	for (unsigned depth = 0; depth < BTREE_MAX_DEPTH && n && nr_keys; depth++) {
		unsigned m = 0, k = 0;
		uint64_t *t;

		for (unsigned done = 0; done < n; done += IO_MAX_BATCH)
			bm_prefetch(bm, level + done, n - done < IO_MAX_BATCH ? n - done : IO_MAX_BATCH);
		for (unsigned l = 0; l < n && k < nr_keys; l++) {
			struct bm_block *blk;
			const void *node;
			uint32_t nr;

			if (bm_read_lock(bm, level[l], &btree_node_validator, &blk, NULL)) {
				while (k < nr_keys && keys[k] < level_hi[l])
					k++;
				continue;
			}
			node = bm_block_data(blk);
			nr = node_nr_entries(node);
			if (node_is_leaf(node) || le32_to_cpu(node_header_c(node)->value_size) != 8) {
				bm_unlock(blk);
				goto out;	/* the leaves are in the cache now */
			}
			/* child i holds [key[i], key[i+1]), the last one up to the node's end */
			for (uint32_t i = 0; i < nr && m < MAX_LEVEL && k < nr_keys &&
			     keys[k] < level_hi[l]; i++) {
				uint64_t end = i + 1 < nr ? node_key(node, i + 1) : level_hi[l];

				if (keys[k] >= end)
					continue;
				next[m] = node_child(node, i);
				next_hi[m++] = end;
				while (k < nr_keys && keys[k] < end)
					k++;
			}
			bm_unlock(blk);
		}
		t = level;
		level = next;
		next = t;
		t = level_hi;
		level_hi = next_hi;
		next_hi = t;
		n = m;
	}
out:
	free(buf);
}
