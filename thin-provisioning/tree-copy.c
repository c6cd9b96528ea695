/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "tree-copy.h"
#include "persistent-data/btree.h"
#include "thin-disk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*----------------------------------------------------------------
 * Batched writes of copied blocks
 *--------------------------------------------------------------*/

struct writer {
	struct io_engine *out;
	uint8_t *bufs;			/* IO_MAX_BATCH aligned blocks */
	struct io_req reqs[IO_MAX_BATCH];
	unsigned n;
};

static int writer_init(struct writer *w, struct io_engine *out)
{
	w->out = out;
	w->n = 0;
	if (posix_memalign((void **)&w->bufs, MD_BLOCK_SIZE,
			   (size_t)IO_MAX_BATCH * MD_BLOCK_SIZE))
		return -ENOMEM;
	return 0;
}

static int writer_flush(struct writer *w, struct pd_err *err)
{
	int r = 0;

	if (!w->out)
		return 0;
	if (w->n && io_write_many(w->out, w->reqs, w->n)) {
		for (unsigned i = 0; i < w->n; i++)
			if (w->reqs[i].result) {
				r = pd_err_set(err, w->reqs[i].result,
					       "write error on output block %" PRIu64 ": %s",
					       w->reqs[i].block,
					       strerror(-w->reqs[i].result));
				break;
			}
	}
	w->n = 0;
	return r;
}

static int writer_add(struct writer *w, uint64_t block, const void *data,
		      struct pd_err *err)
{
	uint8_t *buf;

	if (!w->out)
		return 0;	/* counting only */
	if (block >= w->out->nr_blocks)
		return pd_err_set(err, -ENOSPC,
				  "the output is too small: block %" PRIu64 " is in use but the output has %" PRIu64 " blocks",
				  block, w->out->nr_blocks);
	buf = w->bufs + (size_t)w->n * MD_BLOCK_SIZE;
	memcpy(buf, data, MD_BLOCK_SIZE);
	w->reqs[w->n] = (struct io_req) { .block = block, .buf = buf };
	if (++w->n == IO_MAX_BATCH)
		return writer_flush(w, err);
	return 0;
}

/*----------------------------------------------------------------
 * Trees
 *--------------------------------------------------------------*/

struct copier {
	struct bm *bm;
	struct writer w;
	struct count_map *md, *data;
	uint8_t *seen;
	struct pd_err *err;
	int error;
};

static int ref_md(struct copier *c, uint64_t b)
{
	if (b >= cm_nr_blocks(c->md))
		return pd_err_set(c->err, -EILSEQ,
				  "reference to metadata block %" PRIu64 " beyond the device",
				  b);
	return cm_inc(c->md, b) ? pd_err_set(c->err, -ENOMEM, "out of memory") : 0;
}

/* First visit: copy the node and count its children; later visits: skip. */
static int copy_node(void *ctx, const struct btree_node_info *n)
{
	struct copier *c = ctx;
	uint8_t bit = (uint8_t)(1u << (n->block & 7));
	int r;

	if (c->seen[n->block >> 3] & bit)
		return BTREE_WALK_SKIP;
	c->seen[n->block >> 3] |= bit;
	r = writer_add(&c->w, n->block, n->data, c->err);
	if (r)
		return r;
	if (!n->leaf)
		for (uint32_t i = 0; i < n->nr_entries; i++) {
			r = ref_md(c, load_le64(node_value_c(n->data, i, 8)));
			if (r)
				return r;
		}
	return BTREE_WALK_CONTINUE;
}

static void copy_damage(void *ctx, const struct btree_damage *d)
{
	struct copier *c = ctx;

	if (!c->error)
		c->error = pd_err_set(c->err, -EILSEQ, "%s", d->msg);
}

static int bottom_leaf(void *ctx, const struct btree_node_info *n)
{
	struct copier *c = ctx;
	const uint8_t *vals = node_values_c(n->data);

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t d = block_time_block(load_le64(vals + 8u * i));

		if (d >= cm_nr_blocks(c->data))
			return pd_err_set(c->err, -EILSEQ,
					  "mapping to data block %" PRIu64 " beyond the end of the data device (%" PRIu64 " blocks)",
					  d, cm_nr_blocks(c->data));
		if (cm_inc(c->data, d))
			return pd_err_set(c->err, -ENOMEM, "out of memory");
	}
	return 0;
}

static int walk(struct copier *c, uint64_t root, uint32_t vs,
		int (*leaf)(void *, const struct btree_node_info *))
{
	struct btree_walk_opts wo = { .shape = { .value_size = vs }, .prefetch = true };
	struct btree_walk_ops ops = { .node = copy_node, .leaf = leaf, .damage = copy_damage };
	int r;

	r = ref_md(c, root);
	if (!r)
		r = btree_walk(c->bm, root, &wo, &ops, c, c->err);
	return r ? r : c->error;
}

static int top_leaf(void *ctx, const struct btree_node_info *n)
{
	struct copier *c = ctx;
	uint8_t node[MD_BLOCK_SIZE];
	int r = 0;

	/* walking the devices reuses the cache this node lives in */
	memcpy(node, n->data, MD_BLOCK_SIZE);
	for (uint32_t i = 0; i < n->nr_entries && !r; i++)
		r = walk(c, load_le64(node_value_c(node, i, 8)), THIN_MAPPING_VALUE_SIZE,
			 bottom_leaf);
	return r;
}

int tree_copy_thin(struct bm *in, struct io_engine *out, uint64_t details_root,
		   uint64_t mapping_root, struct count_map *md_counts,
		   struct count_map *data_counts, struct pd_err *err)
{
	struct copier c = { .bm = in, .md = md_counts, .data = data_counts, .err = err };
	int r;

	c.seen = calloc(bm_nr_blocks(in) / 8 + 1, 1);
	if (!c.seen || writer_init(&c.w, out)) {
		free(c.seen);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	r = walk(&c, details_root, THIN_DETAILS_VALUE_SIZE, NULL);
	if (!r)
		r = walk(&c, mapping_root, THIN_MAPPING_VALUE_SIZE, top_leaf);
	if (!r)
		r = writer_flush(&c.w, err);
	free(c.w.bufs);
	free(c.seen);
	return r;
}
