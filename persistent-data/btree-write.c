/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "btree-internal.h"
#include "btree-write.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*
 * The write side's common steps (declared in btree-internal.h), the
 * empty tree and btree_delete().  Insert, remove and the bulk loader
 * have files of their own.
 */

bool bw_values_equal(const struct btree_info *info, const void *a, const void *b)
{
	if (info->vt.equal)
		return info->vt.equal(info->vt.context, a, b);
	return !memcmp(a, b, info->vt.size);
}

int bw_check_value_size(const struct btree_info *info, struct pd_err *err)
{
	if (!info->vt.size || btree_max_entries(info->vt.size) < 3)
		return pd_err_set(err, -EINVAL, "btree value size %u is not supported",
				  info->vt.size);
	return 0;
}

/*
 * The write side moves entries by max_entries slots and mixes nodes of
 * one tree, so it needs the exact layout of section 4 (the read side's
 * shape check with exact_max), and an internal node with children.
 */
static int check_node(const struct btree_info *info, const void *n, uint64_t b,
		      struct pd_err *err)
{
	struct btree_shape_opts so = { .value_size = info->vt.size, .exact_max = true };
	int r = btree_node_check_shape(n, b, &so, err);

	if (!r && !node_is_leaf(n) && !node_nr_entries(n))
		return pd_err_set(err, -EILSEQ, "internal node with no entries (block %" PRIu64 ")",
				  b);
	return r;
}

/*----------------------------------------------------------------
 * Reference counting
 *--------------------------------------------------------------*/

int bw_value_dec(const struct btree_info *info, const void *v, struct pd_err *err)
{
	int r;

	if (!info->vt.dec)
		return 0;
	r = info->vt.dec(info->vt.context, v);
	if (r)
		return pd_err_set(err, r, "btree value type: dropping a reference failed");
	return 0;
}

int bw_block_inc(const struct btree_info *info, uint64_t b, struct pd_err *err)
{
	int r = tm_inc(info->tm, b);

	if (r)
		return pd_err_set(err, r, "metadata space map: cannot increment block %" PRIu64,
				  b);
	return 0;
}

int bw_block_dec(const struct btree_info *info, uint64_t b, struct pd_err *err)
{
	int r = tm_dec(info->tm, b);

	if (r)
		return pd_err_set(err, r, "metadata space map: cannot decrement block %" PRIu64,
				  b);
	return 0;
}

int bw_block_count(const struct btree_info *info, uint64_t b, uint32_t *count,
		   struct pd_err *err)
{
	int r = tm_ref(info->tm, b, count);

	if (r)
		return pd_err_set(err, r, "metadata space map: no count for block %" PRIu64,
				  b);
	if (!*count)
		return pd_err_set(err, -EILSEQ,
				  "metadata block %" PRIu64 " is in use but has a reference count of 0",
				  b);
	return 0;
}

/*
 * Entries [first, first + count) of n gained a referrer: n itself, next
 * to the node they were copied from.
 */
int bw_inc_entries(const struct btree_info *info, void *n, unsigned first,
		   unsigned count, struct pd_err *err)
{
	int r;

	for (unsigned i = first; i < first + count; i++) {
		if (node_is_leaf(n)) {
			if (!info->vt.inc)
				return 0;
			r = info->vt.inc(info->vt.context, node_value(n, i));
			if (r)
				return pd_err_set(err, r,
						  "btree value type: taking a reference failed");
		} else {
			r = bw_block_inc(info, node_child(n, i), err);
			if (r)
				return r;
		}
	}
	return 0;
}

/*----------------------------------------------------------------
 * Locking nodes
 *--------------------------------------------------------------*/

int bw_read_node(const struct btree_info *info, uint64_t b,
		 struct bm_block **out, struct pd_err *err)
{
	int r = tm_read_lock(info->tm, b, &btree_node_validator, out, err);

	if (r)
		return r;
	r = check_node(info, bm_block_data(*out), b, err);
	if (r) {
		tm_unlock(info->tm, *out);
		return r;
	}
	return 0;
}

/* A writable node that is ours alone; a shared original keeps its children. */
int bw_shadow_node(const struct btree_info *info, uint64_t b,
		   struct bm_block **out, struct pd_err *err)
{
	bool inc;
	void *n;
	int r;

	r = tm_shadow(info->tm, b, &btree_node_validator, out, &inc, err);
	if (r)
		return r;
	n = bm_block_data_rw(*out);
	r = check_node(info, n, b, err);
	if (!r && inc)
		r = bw_inc_entries(info, n, 0, node_nr_entries(n), err);
	if (r)
		tm_unlock(info->tm, *out);
	return r;
}

int bw_take_node(const struct btree_info *info, uint64_t b, void *dst,
		 struct pd_err *err)
{
	struct bm_block *blk;
	uint32_t count;
	int r;

	r = bw_block_count(info, b, &count, err);
	if (r)
		return r;
	r = bw_read_node(info, b, &blk, err);
	if (r)
		return r;
	memcpy(dst, bm_block_data(blk), MD_BLOCK_SIZE);
	tm_unlock(info->tm, blk);
	if (count > 1) {
		r = bw_inc_entries(info, dst, 0, node_nr_entries(dst), err);
		if (r)
			return r;
	}
	return bw_block_dec(info, b, err);
}

int bw_shadow_child(const struct btree_info *info, void *p, unsigned i,
		    struct bm_block **out, struct pd_err *err)
{
	int r = bw_shadow_node(info, node_child(p, i), out, err);

	if (!r)
		node_set_child(p, i, bm_block_location(*out));
	return r;
}

void bw_unlock(const struct btree_info *info, struct bm_block *b)
{
	if (b)
		tm_unlock(info->tm, b);
}

/*
 * A new node of the same kind as like (a leaf of this tree, or internal).
 * Its count is 1 and it is new in this transaction, so it is ours.
 */
int bw_new_node_like(const struct btree_info *info, const void *like,
		     struct bm_block **out, struct pd_err *err)
{
	int r = tm_new_block(info->tm, &btree_node_validator, out, err);

	if (r)
		return r;
	node_init(bm_block_data_rw(*out), node_is_leaf(like), node_value_size(like));
	return 0;
}

/*----------------------------------------------------------------
 * Empty tree
 *--------------------------------------------------------------*/

int btree_empty(struct btree_info *info, uint64_t *root, struct pd_err *err)
{
	struct bm_block *blk;
	int r;

	r = bw_check_value_size(info, err);
	if (r)
		return r;
	r = tm_new_block(info->tm, &btree_node_validator, &blk, err);
	if (r)
		return r;
	node_init(bm_block_data_rw(blk), true, info->vt.size);
	*root = bm_block_location(blk);
	tm_unlock(info->tm, blk);
	return 0;
}

/*----------------------------------------------------------------
 * Delete
 *--------------------------------------------------------------*/

struct del_frame {
	uint8_t *node;		/* copy of an internal node being freed */
	uint32_t nr;
	uint32_t idx;		/* next child to drop */
};

struct deleter {
	const struct btree_info *info;
	struct del_frame frames[BTREE_MAX_DEPTH];
	unsigned sp;
	int leaf_depth;		/* -1 until a leaf is seen: all leaves share it */
	uint64_t root;
};

/*
 * Drops one reference to node b at depth sp.  A node that stays alive
 * keeps its children; a freed internal node is pushed so that its
 * children lose its reference in turn.
 */
static int drop_node(struct deleter *d, uint64_t b, struct pd_err *err)
{
	const struct btree_info *info = d->info;
	struct bm_block *blk;
	const void *n;
	uint32_t count;
	int r;

	r = bw_block_count(info, b, &count, err);
	if (r)
		return r;
	if (count > 1 || (!info->vt.dec && (int)d->sp == d->leaf_depth))
		return bw_block_dec(info, b, err);	/* nothing to do inside */

	if (d->sp >= BTREE_MAX_DEPTH)
		return btree_too_deep(d->root, err);
	r = bw_read_node(info, b, &blk, err);
	if (r)
		return r;
	n = bm_block_data(blk);
	if (node_is_leaf(n)) {
		d->leaf_depth = (int)d->sp;
		for (unsigned i = 0; i < node_nr_entries(n) && !r; i++)
			r = bw_value_dec(info, node_value_c(n, i, info->vt.size), err);
	} else {
		struct del_frame *f = d->frames + d->sp;

		if (!f->node)
			f->node = malloc(MD_BLOCK_SIZE);
		if (!f->node) {
			r = pd_err_set(err, -ENOMEM, "out of memory");
		} else {
			memcpy(f->node, n, MD_BLOCK_SIZE);
			f->nr = node_nr_entries(n);
			f->idx = 0;
			d->sp++;
		}
	}
	tm_unlock(info->tm, blk);
	if (r)
		return r;
	return bw_block_dec(info, b, err);
}

int btree_delete(struct btree_info *info, uint64_t root, struct pd_err *err)
{
	struct deleter d = { .info = info, .leaf_depth = -1, .root = root };
	int r;

	r = drop_node(&d, root, err);
	while (!r && d.sp) {
		struct del_frame *f = d.frames + d.sp - 1;

		if (f->idx == f->nr) {
			d.sp--;
			continue;
		}
		r = drop_node(&d, node_child(f->node, f->idx++), err);
	}
	for (unsigned i = 0; i < BTREE_MAX_DEPTH; i++)
		free(d.frames[i].node);
	return r;
}
