/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "btree-internal.h"
#include "walk-cap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Both the walk and the cursor keep copies of the internal nodes on the
 * path from the root (at most BTREE_MAX_DEPTH of them), so no block stays
 * locked while the caller works and memory is bounded.
 *
 * Why cycles cannot make them loop: a child reached through key[i] must
 * hold keys in [key[i], key[i+1]).  A node with two or more keys can never
 * satisfy that range as its own descendant, and a chain of one-key nodes
 * ends at BTREE_MAX_DEPTH.  Whatever the shape, one walk or one cursor
 * visits at most as many nodes as the device has blocks (walk-cap.h).
 */

struct frame {
	uint8_t *node;		/* copy of an internal node */
	uint64_t block;
	uint32_t nr;
	uint32_t idx;		/* next child to visit */
	uint64_t lo, hi;
	bool has_hi;
};

static void child_range(const struct frame *f, unsigned i, uint64_t *lo,
			uint64_t *hi, bool *has_hi)
{
	*lo = node_key(f->node, i);
	if (i + 1 < f->nr) {
		*hi = node_key(f->node, i + 1);
		*has_hi = true;
	} else {
		*hi = f->hi;
		*has_hi = f->has_hi;
	}
}

static void prefetch_children(struct bm *bm, const struct frame *f)
{
	uint64_t blocks[256];
	unsigned n = f->nr < 256 ? f->nr : 256;

	for (unsigned i = 0; i < n; i++)
		blocks[i] = node_child(f->node, i);
	bm_prefetch(bm, blocks, n);
}

/* Keys of a node lie in [lo, hi)?  Message in v0.9's words if not. */
static int check_range(const void *n, uint64_t block, uint64_t lo, uint64_t hi,
		       bool has_hi, struct pd_err *err)
{
	uint32_t nr = node_nr_entries(n);

	if (!nr)
		return 0;
	if (node_key(n, 0) < lo)
		return pd_err_set(err, -EILSEQ,
				  "parent key mismatch: parent was %" PRIu64 ", but lowest in node was %" PRIu64 " (block %" PRIu64 ")",
				  lo, node_key(n, 0), block);
	if (has_hi && node_key(n, nr - 1) >= hi)
		return pd_err_set(err, -EILSEQ,
				  "parent key mismatch: next parent key was %" PRIu64 ", but highest in node was %" PRIu64 " (block %" PRIu64 ")",
				  hi, node_key(n, nr - 1), block);
	return 0;
}

static int alloc_frames(struct frame *frames, struct pd_err *err)
{
	for (unsigned i = 0; i < BTREE_MAX_DEPTH; i++) {
		frames[i].node = malloc(MD_BLOCK_SIZE);
		if (!frames[i].node) {
			for (unsigned j = 0; j < i; j++)
				free(frames[j].node);
			return pd_err_set(err, -ENOMEM, "out of memory");
		}
	}
	return 0;
}

static void free_frames(struct frame *frames)
{
	for (unsigned i = 0; i < BTREE_MAX_DEPTH; i++)
		free(frames[i].node);
}

/*----------------------------------------------------------------
 * Walk
 *--------------------------------------------------------------*/

struct walker {
	struct bm *bm;
	const struct btree_walk_opts *o;
	const struct btree_walk_ops *ops;
	void *ctx;
	struct frame frames[BTREE_MAX_DEPTH];
	unsigned sp;
	int leaf_depth;
	bool have_last_key;
	uint64_t last_key;
	bool stop;
	struct walk_cap cap;
};

static void damage(struct walker *w, uint64_t block, uint64_t lo, uint64_t hi,
		   bool has_hi, bool lost, const char *msg)
{
	struct btree_damage d = {
		.block = block, .lo = lo, .hi = hi, .has_hi = has_hi,
		.lost = lost, .msg = msg,
	};

	if (w->ops->damage)
		w->ops->damage(w->ctx, &d);
}

/* Visits one node; pushes it when it is internal.  <0: callback error. */
static int visit(struct walker *w, uint64_t block, unsigned depth, uint64_t lo,
		 uint64_t hi, bool has_hi)
{
	struct btree_node_info info;
	struct bm_block *blk;
	struct pd_err e;
	const void *n;
	int r;

	if (depth >= BTREE_MAX_DEPTH) {
		char msg[128];

		snprintf(msg, sizeof(msg),
			 "btree deeper than %u levels at block %" PRIu64 " (cycle?)",
			 BTREE_MAX_DEPTH, block);
		damage(w, block, lo, hi, has_hi, true, msg);
		return 0;
	}
	if (walk_cap_visit(&w->cap, "btree", block, &e)) {
		damage(w, block, lo, hi, has_hi, true, e.msg);
		w->stop = true;
		return 0;
	}
	r = bm_read_lock(w->bm, block, &btree_node_validator, &blk, &e);
	if (r) {
		damage(w, block, lo, hi, has_hi, true, e.msg);
		return 0;
	}
	n = bm_block_data(blk);
	if (btree_node_check_shape(n, block, &w->o->shape, &e) ||
	    check_range(n, block, lo, hi, has_hi, &e)) {
		bm_unlock(blk);
		damage(w, block, lo, hi, has_hi, true, e.msg);
		return 0;
	}

	info = (struct btree_node_info) {
		.block = block, .data = n, .depth = depth, .leaf = node_is_leaf(n),
		.nr_entries = node_nr_entries(n), .lo = lo, .hi = hi, .has_hi = has_hi,
	};

	if (info.leaf) {
		if (w->leaf_depth < 0) {
			w->leaf_depth = (int)depth;
		} else if (w->leaf_depth != (int)depth) {
			char msg[160];

			snprintf(msg, sizeof(msg),
				 "leaf at depth %u, but other leaves are at depth %d (block %" PRIu64 ")",
				 depth, w->leaf_depth, block);
			bm_unlock(blk);
			damage(w, block, lo, hi, has_hi, true, msg);
			return 0;
		}
		if (info.nr_entries && w->have_last_key &&
		    node_key(n, 0) <= w->last_key) {
			char msg[200];

			snprintf(msg, sizeof(msg),
				 "the last key of the previous leaf was %" PRIu64 " and the first key of this leaf is %" PRIu64 " (block %" PRIu64 ")",
				 w->last_key, node_key(n, 0), block);
			bm_unlock(blk);
			damage(w, block, lo, hi, has_hi, true, msg);
			return 0;
		}
	} else if (!info.nr_entries && depth) {
		bm_unlock(blk);
		damage(w, block, lo, hi, has_hi, true, "internal node with no entries");
		return 0;
	}

	if (w->o->check_fill && depth) {
		uint32_t max = node_max_entries(n);

		if (info.nr_entries < max / 3) {
			char msg[200];

			snprintf(msg, sizeof(msg),
				 "too few entries in btree_node: %u, expected at least %u (block %" PRIu64 ", max_entries = %u)",
				 info.nr_entries, max / 3, block, max);
			damage(w, block, lo, hi, has_hi, false, msg);
		}
	}

	r = w->ops->node ? w->ops->node(w->ctx, &info) : BTREE_WALK_CONTINUE;
	if (r < 0 || r == BTREE_WALK_STOP || r == BTREE_WALK_SKIP) {
		bm_unlock(blk);
		if (r == BTREE_WALK_STOP)
			w->stop = true;
		return r < 0 ? r : 0;
	}

	if (info.leaf) {
		if (info.nr_entries) {
			w->have_last_key = true;
			w->last_key = node_key(n, info.nr_entries - 1);
		}
		r = w->ops->leaf ? w->ops->leaf(w->ctx, &info) : 0;
		bm_unlock(blk);
		if (r == BTREE_WALK_STOP)
			w->stop = true;
		return r < 0 ? r : 0;
	}

	{
		struct frame *f = w->frames + w->sp++;

		memcpy(f->node, n, MD_BLOCK_SIZE);
		bm_unlock(blk);
		f->block = block;
		f->nr = info.nr_entries;
		f->idx = 0;
		f->lo = lo;
		f->hi = hi;
		f->has_hi = has_hi;
		if (w->o->prefetch)
			prefetch_children(w->bm, f);
	}
	return 0;
}

int btree_walk(struct bm *bm, uint64_t root, const struct btree_walk_opts *o,
	       const struct btree_walk_ops *ops, void *ctx, struct pd_err *err)
{
	struct walker w = {
		.bm = bm, .o = o, .ops = ops, .ctx = ctx, .leaf_depth = -1,
	};
	int r;

	r = alloc_frames(w.frames, err);
	if (r)
		return r;
	walk_cap_init(&w.cap, bm_nr_blocks(bm));

	r = visit(&w, root, 0, 0, 0, false);
	while (!r && !w.stop && w.sp) {
		struct frame *f = w.frames + w.sp - 1;
		uint64_t lo, hi;
		bool has_hi;
		unsigned i;

		if (f->idx == f->nr) {
			w.sp--;
			if (ops->node_exit) {
				r = ops->node_exit(ctx, f->block);
				if (r == BTREE_WALK_STOP)
					w.stop = true;
				if (r > 0)
					r = 0;
			}
			continue;
		}
		i = f->idx++;
		child_range(f, i, &lo, &hi, &has_hi);
		r = visit(&w, node_child(f->node, i), w.sp, lo, hi, has_hi);
	}
	free_frames(w.frames);
	/* a callback that failed usually said why: keep its message */
	if (r < 0 && err && !err->msg[0])
		return pd_err_set(err, r, "btree walk stopped: %s", strerror(-r));
	return r < 0 ? r : 0;
}

/*----------------------------------------------------------------
 * Cursor
 *--------------------------------------------------------------*/

struct btree_cursor {
	struct bm *bm;
	uint64_t root;
	struct btree_shape_opts shape;
	struct frame frames[BTREE_MAX_DEPTH];
	unsigned sp;
	bool started;
	int leaf_depth;
	uint8_t *leaf;
	uint64_t leaf_block;
	uint32_t leaf_nr;
	uint32_t entry;		/* the current entry of the leaf */
	uint64_t last_key;
	bool have_last_key;
	struct walk_cap cap;
};

int btree_cursor_create(struct bm *bm, uint64_t root, uint32_t value_size,
			struct btree_cursor **out, struct pd_err *err)
{
	struct btree_cursor *c = calloc(1, sizeof(*c));

	if (!c)
		return pd_err_set(err, -ENOMEM, "out of memory");
	c->leaf = malloc(MD_BLOCK_SIZE);
	if (!c->leaf || alloc_frames(c->frames, err)) {
		free(c->leaf);
		free(c);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	c->bm = bm;
	c->root = root;
	c->shape.value_size = value_size;
	c->leaf_depth = -1;
	walk_cap_init(&c->cap, bm_nr_blocks(bm));
	*out = c;
	return 0;
}

void btree_cursor_destroy(struct btree_cursor *c)
{
	if (!c)
		return;
	free_frames(c->frames);
	free(c->leaf);
	free(c);
}

/* Loads a node; a leaf becomes the current leaf (returns 1), an internal node is pushed. */
static int cursor_load(struct btree_cursor *c, uint64_t block, uint64_t lo,
		       uint64_t hi, bool has_hi, struct pd_err *err)
{
	struct bm_block *blk;
	const void *n;
	unsigned depth = c->sp;
	int r;

	if (depth >= BTREE_MAX_DEPTH)
		return pd_err_set(err, -EILSEQ,
				  "btree deeper than %u levels at block %" PRIu64 " (cycle?)",
				  BTREE_MAX_DEPTH, block);
	r = walk_cap_visit(&c->cap, "btree", block, err);
	if (r)
		return r;
	r = bm_read_lock(c->bm, block, &btree_node_validator, &blk, err);
	if (r)
		return r;
	n = bm_block_data(blk);
	r = btree_node_check_shape(n, block, &c->shape, err);
	if (!r)
		r = check_range(n, block, lo, hi, has_hi, err);
	if (r) {
		bm_unlock(blk);
		return r;
	}
	if (node_is_leaf(n)) {
		if (c->leaf_depth < 0)
			c->leaf_depth = (int)depth;
		if (c->leaf_depth != (int)depth) {
			bm_unlock(blk);
			return pd_err_set(err, -EILSEQ,
					  "leaves at different depths in the btree (block %" PRIu64 ")",
					  block);
		}
		memcpy(c->leaf, n, MD_BLOCK_SIZE);
		bm_unlock(blk);
		c->leaf_block = block;
		c->leaf_nr = node_nr_entries(c->leaf);
		if (c->leaf_nr) {
			if (c->have_last_key && node_key(c->leaf, 0) <= c->last_key)
				return pd_err_set(err, -EILSEQ,
						  "the last key of the previous leaf was %" PRIu64 " and the first key of this leaf is %" PRIu64 " (block %" PRIu64 ")",
						  c->last_key, node_key(c->leaf, 0),
						  block);
			c->have_last_key = true;
			c->last_key = node_key(c->leaf, c->leaf_nr - 1);
		}
		return 1;
	}
	if (!node_nr_entries(n) && depth) {
		bm_unlock(blk);
		return pd_err_set(err, -EILSEQ, "internal node with no entries (block %" PRIu64 ")",
				  block);
	}
	{
		struct frame *f = c->frames + c->sp++;

		memcpy(f->node, n, MD_BLOCK_SIZE);
		bm_unlock(blk);
		f->block = block;
		f->nr = node_nr_entries(f->node);
		f->idx = 0;
		f->lo = lo;
		f->hi = hi;
		f->has_hi = has_hi;
		prefetch_children(c->bm, f);
	}
	return 0;
}

int btree_cursor_next_leaf(struct btree_cursor *c, struct pd_err *err)
{
	int r;

	c->entry = 0;
	if (!c->started) {
		c->started = true;
		r = cursor_load(c, c->root, 0, 0, false, err);
		if (r < 0)
			return r;
		if (r == 1 && c->leaf_nr)
			return 0;
	}
	while (c->sp) {
		struct frame *f = c->frames + c->sp - 1;
		uint64_t lo, hi;
		bool has_hi;
		unsigned i;

		if (f->idx == f->nr) {
			c->sp--;
			continue;
		}
		i = f->idx++;
		child_range(f, i, &lo, &hi, &has_hi);
		r = cursor_load(c, node_child(f->node, i), lo, hi, has_hi, err);
		if (r < 0)
			return r;
		if (r == 1 && c->leaf_nr)
			return 0;
	}
	c->leaf_nr = 0;
	return -ENODATA;
}

const void *btree_cursor_leaf(const struct btree_cursor *c)
{
	return c->leaf;
}

uint64_t btree_cursor_leaf_block(const struct btree_cursor *c)
{
	return c->leaf_block;
}

uint32_t btree_cursor_nr(const struct btree_cursor *c)
{
	return c->leaf_nr;
}

int btree_cursor_peek_entry(struct btree_cursor *c, uint64_t *key, const void **value,
			    struct pd_err *err)
{
	if (c->entry >= c->leaf_nr) {
		int r = btree_cursor_next_leaf(c, err);

		if (r)
			return r;
	}
	*key = node_key(c->leaf, c->entry);
	if (value)
		*value = node_value_c(c->leaf, c->entry, c->shape.value_size);
	return 0;
}

void btree_cursor_next_entry(struct btree_cursor *c)
{
	c->entry++;
}
