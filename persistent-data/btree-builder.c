/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "btree-internal.h"
#include "btree-write.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*
 * Each level has the node being filled (cur) and the node before it
 * (pending), which is held back until the level ends or moves on, so
 * that an underfull last node can share entries with it.  A pending node
 * is either a full node in memory or a spliced leaf we hold a reference
 * to.  When cur fills up and another entry comes, the old pending node is
 * written and its (first key, block) goes up one level.
 */
enum pending_kind { PEND_NONE, PEND_MEM, PEND_BLOCK };

struct bl_level {
	uint8_t *cur;
	uint8_t *pend;
	enum pending_kind kind;
	uint64_t pend_block;	/* PEND_BLOCK */
	uint64_t pend_key;	/* PEND_BLOCK: its first key */
};

struct btree_builder {
	struct btree_info info;
	struct bl_level levels[BTREE_MAX_DEPTH];
	unsigned nr_levels;	/* levels that have received entries */
	bool have_last;
	uint64_t last_key;
	uint8_t *scratch;	/* a spliced leaf being copied */
};

/* A node produced by finishing a level: written, or a spliced leaf. */
struct bl_out {
	uint64_t key;
	uint64_t block;
};

static int level_get(struct btree_builder *b, unsigned l, struct bl_level **out,
		     struct pd_err *err)
{
	struct bl_level *lv;

	if (l >= BTREE_MAX_DEPTH)
		return pd_err_set(err, -EOVERFLOW, "btree builder: more than %u levels",
				  BTREE_MAX_DEPTH);
	lv = b->levels + l;
	if (!lv->cur) {
		lv->cur = calloc(1, MD_BLOCK_SIZE);
		lv->pend = calloc(1, MD_BLOCK_SIZE);
		if (!lv->cur || !lv->pend)
			return pd_err_set(err, -ENOMEM, "out of memory");
		node_init(lv->cur, l == 0, l == 0 ? b->info.vt.size : 8);
	}
	if (l >= b->nr_levels)
		b->nr_levels = l + 1;
	*out = lv;
	return 0;
}

static int write_node(struct btree_builder *b, const void *node, uint64_t *block,
		      struct pd_err *err)
{
	struct bm_block *blk;
	int r;

	r = tm_new_block(b->info.tm, &btree_node_validator, &blk, err);
	if (r)
		return r;
	memcpy(bm_block_data_rw(blk), node, MD_BLOCK_SIZE);
	*block = bm_block_location(blk);
	tm_unlock(b->info.tm, blk);
	return 0;
}

static void swap_buffers(struct bl_level *lv)
{
	uint8_t *t = lv->cur;

	lv->cur = lv->pend;
	lv->pend = t;
	memcpy(lv->cur, lv->pend, BTREE_NODE_HEADER_SIZE);
	node_set_nr_entries(lv->cur, 0);
}

/* Appends an entry at level l, pushing completed nodes upwards (a loop, not recursion). */
static int add_entry(struct btree_builder *b, unsigned l, uint64_t key,
		     const void *value, struct pd_err *err)
{
	uint8_t up_value[8];

	for (;; l++) {
		struct bl_level *lv;
		uint64_t up_key, up_block;
		int r;

		r = level_get(b, l, &lv, err);
		if (r)
			return r;
		if (node_nr_entries(lv->cur) < node_max_entries(lv->cur)) {
			/* appending: no entries to move */
			uint32_t nr = node_nr_entries(lv->cur);

			node_set_key(lv->cur, nr, key);
			memcpy(node_value(lv->cur, nr), value, node_value_size(lv->cur));
			node_set_nr_entries(lv->cur, nr + 1);
			return 0;
		}
		if (lv->kind == PEND_NONE) {
			swap_buffers(lv);
			lv->kind = PEND_MEM;
			node_insert_at(lv->cur, 0, key, value);
			return 0;
		}
		if (lv->kind == PEND_MEM) {
			r = write_node(b, lv->pend, &up_block, err);
			if (r)
				return r;
			up_key = node_key(lv->pend, 0);
		} else {
			up_block = lv->pend_block;
			up_key = lv->pend_key;
		}
		swap_buffers(lv);
		lv->kind = PEND_MEM;
		node_insert_at(lv->cur, 0, key, value);

		key = up_key;
		store_le64(up_value, up_block);
		value = up_value;
	}
}

/*
 * Closes level l: produces its remaining nodes (at most two, in order) and
 * leaves the level empty.  The caller has made sure that a cur without a
 * pending node before it is at least min full or is the root.
 */
static int close_level(struct btree_builder *b, unsigned l, struct bl_out *outs,
		       unsigned *nr_out, struct pd_err *err)
{
	struct bl_level *lv = b->levels + l;
	uint32_t nc = node_nr_entries(lv->cur), t = node_min_entries(lv->cur);
	int r;

	*nr_out = 0;
	if (lv->kind == PEND_BLOCK && nc && nc < t) {
		/* too few to stand next to the spliced leaf: share its entries */
		r = bw_take_node(&b->info, lv->pend_block, lv->pend, err);
		if (r)
			return r;
		lv->kind = PEND_MEM;
	}

	if (lv->kind == PEND_MEM && nc) {
		uint32_t np = node_nr_entries(lv->pend), total = np + nc;

		if (total <= node_max_entries(lv->cur)) {
			/* (a spliced leaf copied above) one node holds both */
			node_move_entries(lv->pend, np, lv->cur, 0, nc);
			node_set_nr_entries(lv->pend, total);
			node_set_nr_entries(lv->cur, 0);
			nc = 0;
		} else {
			/* 1.x: the remainder spread evenly over the last two */
			uint32_t k = np - total / 2;

			node_move_entries(lv->cur, k, lv->cur, 0, nc);
			node_move_entries(lv->cur, 0, lv->pend, np - k, k);
			node_set_nr_entries(lv->cur, nc + k);
			node_set_nr_entries(lv->pend, np - k);
			nc += k;
		}
	}

	if (lv->kind == PEND_MEM) {
		r = write_node(b, lv->pend, &outs[*nr_out].block, err);
		if (r)
			return r;
		outs[(*nr_out)++].key = node_key(lv->pend, 0);
	} else if (lv->kind == PEND_BLOCK) {
		outs[*nr_out].block = lv->pend_block;
		outs[(*nr_out)++].key = lv->pend_key;
	}
	lv->kind = PEND_NONE;

	if (nc) {
		r = write_node(b, lv->cur, &outs[*nr_out].block, err);
		if (r)
			return r;
		outs[(*nr_out)++].key = node_key(lv->cur, 0);
		node_set_nr_entries(lv->cur, 0);
	}
	return 0;
}

static int push_outs(struct btree_builder *b, unsigned l, const struct bl_out *outs,
		     unsigned n, struct pd_err *err)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t v[8];
		int r;

		store_le64(v, outs[i].block);
		r = add_entry(b, l, outs[i].key, v, err);
		if (r)
			return r;
	}
	return 0;
}

int btree_builder_create(struct btree_info *info, struct btree_builder **out,
			 struct pd_err *err)
{
	struct btree_builder *b;
	struct bl_level *lv;
	int r;

	r = bw_check_value_size(info, err);
	if (r)
		return r;
	b = calloc(1, sizeof(*b));
	if (!b)
		return pd_err_set(err, -ENOMEM, "out of memory");
	b->info = *info;
	b->scratch = malloc(MD_BLOCK_SIZE);
	if (!b->scratch) {
		btree_builder_destroy(b);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	r = level_get(b, 0, &lv, err);
	if (r) {
		btree_builder_destroy(b);
		return r;
	}
	*out = b;
	return 0;
}

void btree_builder_destroy(struct btree_builder *b)
{
	if (!b)
		return;
	for (unsigned i = 0; i < BTREE_MAX_DEPTH; i++) {
		free(b->levels[i].cur);
		free(b->levels[i].pend);
	}
	free(b->scratch);
	free(b);
}

int btree_builder_push(struct btree_builder *b, uint64_t key, const void *value_le,
		       struct pd_err *err)
{
	struct bl_level *lv = b->levels;
	int r;

	if (b->have_last && key <= b->last_key)
		return pd_err_set(err, -EINVAL,
				  "btree builder: key %" PRIu64 " does not follow %" PRIu64,
				  key,
				  b->last_key);
	/* the common case, a leaf with room: append in place */
	if (lv->cur && node_nr_entries(lv->cur) < node_max_entries(lv->cur)) {
		uint8_t *n = lv->cur;
		uint32_t nr = node_nr_entries(n);
		void *v = node_value(n, nr);

		b->have_last = true;
		b->last_key = key;
		node_set_key(n, nr, key);
		/* a constant size is a move, not a call (the mapping trees' 8) */
		if (b->info.vt.size == 8)
			memcpy(v, value_le, 8);
		else
			memcpy(v, value_le, b->info.vt.size);
		node_set_nr_entries(n, nr + 1);
		return 0;
	}
	r = add_entry(b, 0, key, value_le, err);
	if (r)
		return r;
	b->have_last = true;
	b->last_key = key;
	return 0;
}

int btree_builder_push_leaf(struct btree_builder *b, uint64_t leaf_block,
			    struct pd_err *err)
{
	struct btree_shape_opts so = { .value_size = b->info.vt.size };
	struct bl_level *lv = b->levels;
	struct bl_out outs[2];
	struct bm_block *blk;
	uint32_t nr, nc, t;
	uint64_t first = 0, last = 0;
	unsigned n;
	const void *leaf;
	int r;

	r = tm_read_lock(b->info.tm, leaf_block, &btree_node_validator, &blk, err);
	if (r)
		return r;
	leaf = bm_block_data(blk);
	if (le32_to_cpu(node_header_c(leaf)->flags) != BTREE_FLAG_LEAF ||
	    node_value_size(leaf) != b->info.vt.size ||
	    node_max_entries(leaf) != btree_max_entries(b->info.vt.size)) {
		tm_unlock(b->info.tm, blk);
		return pd_err_set(err, -EINVAL,
				  "btree builder: block %" PRIu64 " is not a leaf of values of %u bytes",
				  leaf_block, b->info.vt.size);
	}
	r = btree_node_check_shape(leaf, leaf_block, &so, err);
	nr = node_nr_entries(leaf);
	if (nr) {
		first = node_key(leaf, 0);
		last = node_key(leaf, nr - 1);
	}
	tm_unlock(b->info.tm, blk);
	if (r)
		return r;
	if (nr && b->have_last && first <= b->last_key)
		return pd_err_set(err, -EINVAL,
				  "btree builder: spliced leaf %" PRIu64 " starts at key %" PRIu64 ", not after %" PRIu64,
				  leaf_block,
				  first,
				  b->last_key);

	nc = node_nr_entries(lv->cur);
	t = node_min_entries(lv->cur);
	if (nr < t || (nc && nc < t && lv->kind == PEND_NONE)) {
		/* sharing it would leave a node under the minimum: copy it */
		r = bw_take_node(&b->info, leaf_block, b->scratch, err);
		for (uint32_t i = 0; !r && i < nr; i++)
			r = add_entry(b, 0, node_key(b->scratch, i),
				      node_value(b->scratch, i), err);
	} else {
		r = close_level(b, 0, outs, &n, err);
		if (!r)
			r = push_outs(b, 1, outs, n, err);
		if (!r) {
			lv->kind = PEND_BLOCK;
			lv->pend_block = leaf_block;
			lv->pend_key = first;
		}
	}
	if (r)
		return r;
	if (nr) {
		b->have_last = true;
		b->last_key = last;
	}
	return 0;
}

int btree_builder_finish(struct btree_builder *b, uint64_t *root, struct pd_err *err)
{
	for (unsigned l = 0; l < b->nr_levels; l++) {
		struct bl_level *lv = b->levels + l;
		bool top = l + 1 == b->nr_levels;
		struct bl_out outs[2];
		unsigned n;
		int r;

		if (!top && lv->kind == PEND_NONE && node_nr_entries(lv->cur) < node_min_entries(lv->cur))
			return pd_err_set(err, -EILSEQ,
					  "btree builder: underfull node at level %u", l);
		if (top && (lv->kind == PEND_NONE || !node_nr_entries(lv->cur))) {
			/* the level's only node is the root (an empty leaf at worst) */
			if (lv->kind == PEND_BLOCK) {
				*root = lv->pend_block;
			} else {
				r = write_node(b, lv->kind == PEND_MEM ? lv->pend : lv->cur,
					       root, err);
				if (r)
					return r;
			}
			lv->kind = PEND_NONE;
			node_set_nr_entries(lv->cur, 0);
			return 0;
		}
		r = close_level(b, l, outs, &n, err);
		if (r)
			return r;
		if (top && n == 1) {
			*root = outs[0].block;
			return 0;
		}
		r = push_outs(b, l + 1, outs, n, err);
		if (r)
			return r;
	}
	return pd_err_set(err, -EILSEQ, "btree builder: no root");
}
