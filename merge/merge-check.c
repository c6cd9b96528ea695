/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * What an in-place merge checks before its first write (see merge.h and
 * the IN-PLACE CHECKS section of thin_merge(8)).  The in-place merge
 * reads and changes only S's tree, the O nodes on the paths to S's keys,
 * the details and top-level paths of O and S, and the space map entries
 * of the blocks those hold: each of them is validated here, at a cost
 * that follows S.  Everything else is trusted, as a pool the kernel
 * activated has passed thin_check.
 */
#include "merge.h"
#include "persistent-data/u64-map.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct vnode {
	uint8_t node[MD_BLOCK_SIZE];
	uint64_t block, lo, hi;
	bool has_hi;
	unsigned idx;			/* child taken (internal nodes) */
};

struct vctx {
	struct pool *p;
	struct pd_err *err;
	struct vnode path[BTREE_MAX_DEPTH];
	struct vnode side;		/* a neighbour being read */
	uint64_t o_root;
	uint64_t s_id, o_id;
	uint64_t s_count;		/* S's mappings seen */
	uint64_t last_o_leaf;		/* its neighbours are checked already */
	struct u64_map s_nodes;		/* S's nodes seen: a second visit is damage */
	int r;				/* first damage (negative) */
};

static int md_in_use(struct vctx *v, uint64_t b, const char *what)
{
	uint32_t c;
	int r;

	if (b >= sm_nr_blocks(v->p->md_sm))
		return pd_err_set(v->err, -EILSEQ,
				  "%s block %" PRIu64 " is beyond the metadata space map", what, b);
	r = sm_get_count(v->p->md_sm, b, &c);
	if (r)
		return pd_err_set(v->err, -EILSEQ,
				  "the metadata space map entry of %s block %" PRIu64
				  " cannot be read: %s", what, b, strerror(-r));
	if (!c)
		return pd_err_set(v->err, -EILSEQ,
				  "%s block %" PRIu64 " is in use but the metadata space map counts it free",
				  what, b);
	return 0;
}

static int data_in_use(struct vctx *v, uint64_t dev, uint64_t key, uint64_t b)
{
	uint32_t c;
	int r;

	if (b >= sm_nr_blocks(v->p->data_sm))
		return pd_err_set(v->err, -EILSEQ,
				  "device %" PRIu64 " maps block %" PRIu64 " to data block %" PRIu64
				  ", beyond the data device (%" PRIu64 " blocks)",
				  dev, key, b, sm_nr_blocks(v->p->data_sm));
	r = sm_get_count(v->p->data_sm, b, &c);
	if (r)
		return pd_err_set(v->err, -EILSEQ,
				  "the data space map entry of block %" PRIu64 " cannot be read: %s",
				  b, strerror(-r));
	if (!c)
		return pd_err_set(v->err, -EILSEQ,
				  "device %" PRIu64 " maps block %" PRIu64 " to data block %" PRIu64
				  ", which the data space map counts free", dev, key, b);
	return 0;
}

/* Reads and validates node b, whose keys must lie in [lo, hi), into vn. */
static int read_node(struct vctx *v, struct vnode *vn, uint64_t b, uint32_t value_size,
		     uint64_t lo, uint64_t hi, bool has_hi, const char *what)
{
	struct btree_shape_opts so = { .value_size = value_size };
	struct bm_block *blk;
	uint32_t nr;
	int r;

	r = md_in_use(v, b, what);
	if (r)
		return r;
	r = bm_read_lock(v->p->bm, b, &btree_node_validator, &blk, v->err);
	if (r)
		return r;
	memcpy(vn->node, bm_block_data(blk), MD_BLOCK_SIZE);
	bm_unlock(blk);
	r = btree_node_check_shape(vn->node, b, &so, v->err);
	if (r)
		return r;
	vn->block = b;
	vn->lo = lo;
	vn->hi = hi;
	vn->has_hi = has_hi;
	nr = node_nr_entries(vn->node);
	if (!nr && !node_is_leaf(vn->node))
		return pd_err_set(v->err, -EILSEQ, "%s: internal node %" PRIu64 " has no entries",
				  what, b);
	if (nr && (node_key(vn->node, 0) < lo ||
		   (has_hi && node_key(vn->node, nr - 1) >= hi)))
		return pd_err_set(v->err, -EILSEQ,
				  "%s: the keys of node %" PRIu64 " (%" PRIu64 " to %" PRIu64
				  ") lie outside the range its parent gives it (%" PRIu64 " to %s%" PRIu64 ")",
				  what, b, node_key(vn->node, 0), node_key(vn->node, nr - 1), lo,
				  has_hi ? "" : "at least ", has_hi ? hi - 1 : lo);
	return 0;
}

static void child_range(const struct vnode *f, unsigned i, uint64_t *lo, uint64_t *hi,
			bool *has_hi)
{
	*lo = node_key(f->node, i);
	if (i + 1 < node_nr_entries(f->node)) {
		*hi = node_key(f->node, i + 1);
		*has_hi = true;
	} else {
		*hi = f->hi;
		*has_hi = f->has_hi;
	}
}

static uint64_t child_block(const struct vnode *f, unsigned i)
{
	return load_le64(node_value_c(f->node, i, 8));
}

/* Largest i with key[i] <= k, or -1. */
static int lower_bound(const void *node, uint64_t k)
{
	int lo = -1, hi = (int)node_nr_entries(node);

	while (hi - lo > 1) {
		int mid = lo + (hi - lo) / 2;

		if (node_key(node, (unsigned)mid) <= k)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The leaf next to path[leaf_depth] on one side (left: the one before),
 * read down from the deepest ancestor that has a child on that side,
 * every node validated against its range: no key of the neighbour may
 * stray into the range of the leaf the merge changes.
 */
static int check_neighbour(struct vctx *v, unsigned leaf_depth, uint32_t value_size,
			   bool left, const char *what)
{
	int d;

	for (d = (int)leaf_depth - 1; d >= 0; d--) {
		const struct vnode *f = v->path + d;

		if (left ? f->idx > 0 : f->idx + 1 < node_nr_entries(f->node))
			break;
	}
	if (d < 0)
		return 0;	/* the leaf is the first (last) one */
	{
		const struct vnode *f = v->path + d;
		unsigned i = left ? f->idx - 1 : f->idx + 1;
		uint64_t b = child_block(f, i), lo, hi;
		bool has_hi;

		child_range(f, i, &lo, &hi, &has_hi);
		for (unsigned depth = (unsigned)d + 1; depth <= leaf_depth; depth++) {
			struct vnode *n = &v->side;
			uint32_t nr;
			int r;

			r = read_node(v, n, b, depth == leaf_depth ? value_size : 8,
				      lo, hi, has_hi, what);
			if (r)
				return r;
			if (!!node_is_leaf(n->node) != (depth == leaf_depth))
				return pd_err_set(v->err, -EILSEQ,
						  "%s: leaves at different depths (block %" PRIu64 ")",
						  what, b);
			if (depth == leaf_depth)
				break;
			nr = node_nr_entries(n->node);
			i = left ? nr - 1 : 0;
			b = child_block(n, i);
			child_range(n, i, &lo, &hi, &has_hi);
		}
	}
	return 0;
}

/*
 * Looks key up in the tree at root the way a change to it goes down
 * (below the first key: into child 0), validating every node on the way
 * and, once per leaf, the neighbouring leaves.  *found and value_out
 * (value_size bytes, may be NULL) say what the leaf holds.
 */
static int checked_path(struct vctx *v, uint64_t root, uint32_t value_size, uint64_t key,
			bool *found, void *value_out, uint64_t *leaf_out, const char *what)
{
	uint64_t b = root, lo = 0, hi = 0;
	bool has_hi = false;

	for (unsigned depth = 0; depth < BTREE_MAX_DEPTH; depth++) {
		struct vnode *f = v->path + depth;
		int i, r;

		r = read_node(v, f, b, value_size, lo, hi, has_hi, what);
		if (r)
			return r;
		i = lower_bound(f->node, key);
		if (node_is_leaf(f->node)) {
			*found = i >= 0 && node_key(f->node, (unsigned)i) == key;
			if (*found && value_out)
				memcpy(value_out, node_value_c(f->node, (unsigned)i, value_size),
				       value_size);
			if (leaf_out)
				*leaf_out = b;
			if (leaf_out && b == v->last_o_leaf)
				return 0;
			r = check_neighbour(v, depth, value_size, true, what);
			if (!r)
				r = check_neighbour(v, depth, value_size, false, what);
			return r;
		}
		f->idx = i < 0 ? 0 : (unsigned)i;
		b = child_block(f, f->idx);
		child_range(f, f->idx, &lo, &hi, &has_hi);
		/* a node below must not repeat one above (a cycle) */
		for (unsigned up = 0; up <= depth; up++)
			if (v->path[up].block == b)
				return pd_err_set(v->err, -EILSEQ,
						  "%s: node %" PRIu64 " is its own descendant", what, b);
	}
	return pd_err_set(v->err, -EILSEQ, "%s: deeper than %u levels", what, BTREE_MAX_DEPTH);
}

/*----------------------------------------------------------------
 * S's tree
 *--------------------------------------------------------------*/

static int s_node(void *ctx, const struct btree_node_info *n)
{
	struct vctx *v = ctx;
	uint64_t dummy;
	int r;

	if (u64_map_get(&v->s_nodes, n->block, &dummy)) {
		v->r = pd_err_set(v->err, -EILSEQ,
				  "device %" PRIu64 ": node %" PRIu64 " is reached twice in its tree",
				  v->s_id, n->block);
		return BTREE_WALK_STOP;
	}
	r = u64_map_put(&v->s_nodes, n->block, 1);
	if (r)
		return r;
	r = md_in_use(v, n->block, "snapshot tree");
	if (r) {
		v->r = r;
		return BTREE_WALK_STOP;
	}
	return BTREE_WALK_CONTINUE;
}

static int s_leaf(void *ctx, const struct btree_node_info *n)
{
	struct vctx *v = ctx;
	int r;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t key = node_key(n->data, i), leaf;
		uint8_t ov[8];
		bool found;

		r = data_in_use(v, v->s_id, key,
				block_time_block(load_le64(node_value_c(n->data, i, 8))));
		if (!r)
			r = checked_path(v, v->o_root, THIN_MAPPING_VALUE_SIZE, key, &found, ov,
					 &leaf, "origin tree");
		if (!r && found)
			r = data_in_use(v, v->o_id, key, block_time_block(load_le64(ov)));
		if (r) {
			v->r = r;
			return BTREE_WALK_STOP;
		}
		v->last_o_leaf = leaf;
		v->s_count++;
	}
	return 0;
}

static void s_damage(void *ctx, const struct btree_damage *d)
{
	struct vctx *v = ctx;

	if (!v->r)
		v->r = pd_err_set(v->err, -EILSEQ, "device %" PRIu64 ": %s", v->s_id, d->msg);
}

/* The details and top-level entries of dev_id, every node on their paths validated. */
static int check_device_paths(struct vctx *v, uint64_t dev_id, struct thin_device *dev)
{
	const struct thin_sb *sb = &v->p->sb;
	uint8_t value[THIN_DETAILS_VALUE_SIZE];
	bool found;
	int r;

	r = checked_path(v, sb->device_details_root, THIN_DETAILS_VALUE_SIZE, dev_id, &found,
			 value, NULL, "device details tree");
	if (r)
		return r;
	if (!found)
		return pd_err_set(v->err, -ENODATA, "device %" PRIu64 " not found", dev_id);
	thin_details_decode(value, dev);
	dev->dev_id = dev_id;
	r = checked_path(v, sb->data_mapping_root, 8, dev_id, &found, value, NULL,
			 "top level of the mapping tree");
	if (r)
		return r;
	if (!found)
		return pd_err_set(v->err, -EILSEQ,
				  "device %" PRIu64 " has details but no mapping tree", dev_id);
	dev->root = load_le64(value);
	return md_in_use(v, dev->root, "device root");
}

int merge_validate_in_place(struct pool *p, const struct merge_opts *o, struct pd_err *err)
{
	struct vctx *v;
	struct thin_device od, sd;
	int r;

	if (o->origin == o->snapshot)
		return 0;
	v = calloc(1, sizeof(*v));
	if (!v)
		return pd_err_set(err, -ENOMEM, "out of memory");
	v->p = p;
	v->err = err;
	v->o_id = o->origin;
	v->s_id = o->snapshot;
	v->last_o_leaf = UINT64_MAX;
	u64_map_init(&v->s_nodes);

	r = check_device_paths(v, o->origin, &od);
	if (!r)
		r = check_device_paths(v, o->snapshot, &sd);
	if (!r && od.root != sd.root) {
		struct btree_walk_opts wo = { .shape.value_size = THIN_MAPPING_VALUE_SIZE };
		struct btree_walk_ops ops = { .node = s_node, .leaf = s_leaf, .damage = s_damage };

		v->o_root = od.root;
		r = btree_walk(p->bm, sd.root, &wo, &ops, v, err);
		if (!r)
			r = v->r;
		if (!r && v->s_count != sd.mapped_blocks)
			r = pd_err_set(err, -EILSEQ,
				       "device %" PRIu64 ": its details say %" PRIu64
				       " mappings but its tree holds %" PRIu64,
				       sd.dev_id, sd.mapped_blocks, v->s_count);
	}
	if (r)
		pd_err_prefix(err, "%s", "in-place check (run thin_check)");
	u64_map_exit(&v->s_nodes);
	free(v);
	return r;
}
