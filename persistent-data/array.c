/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "array.h"
#include "btree-write.h"
#include "btree.h"
#include "checksum.h"
#include "walk-cap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*----------------------------------------------------------------
 * Validator and shape
 *--------------------------------------------------------------*/

static int ablock_check(const struct bm_validator *v, const void *data,
			uint64_t location, struct pd_err *err)
{
	const struct array_block_disk *h = data;

	(void)v;
	if (le64_to_cpu(h->blocknr) != location)
		return pd_err_set(err, -EILSEQ, "array block %" PRIu64 ": blocknr mismatch (%" PRIu64 ")",
				  location, le64_to_cpu(h->blocknr));
	if (block_csum(data, ARRAY_CSUM_XOR) != block_stored_csum(data))
		return pd_err_set(err, -EILSEQ, "array block %" PRIu64 ": bad checksum", location);
	return 0;
}

static void ablock_prepare(const struct bm_validator *v, void *data, uint64_t location)
{
	struct array_block_disk *h = data;

	(void)v;
	h->blocknr = cpu_to_le64(location);
	block_set_csum(data, ARRAY_CSUM_XOR);
}

const struct bm_validator array_block_validator = {
	.name = "array block",
	.check = ablock_check,
	.prepare_for_write = ablock_prepare,
};

int array_block_check_shape(const void *block, uint32_t value_size, uint64_t index,
			    uint64_t nr_entries, struct pd_err *err)
{
	const struct array_block_disk *h = block;
	uint32_t max = array_max_entries(value_size);
	uint64_t first = index * max, expect;

	if (le32_to_cpu(h->value_size) != value_size)
		return pd_err_set(err, -EILSEQ, "array block %" PRIu64 ": value size %u, expected %u",
				  le64_to_cpu(h->blocknr), le32_to_cpu(h->value_size), value_size);
	if (le32_to_cpu(h->max_entries) != max)
		return pd_err_set(err, -EILSEQ, "array block %" PRIu64 ": max entries %u, expected %u",
				  le64_to_cpu(h->blocknr), le32_to_cpu(h->max_entries), max);
	expect = first >= nr_entries ? 0 : nr_entries - first < max ? nr_entries - first : max;
	if (le32_to_cpu(h->nr_entries) != expect)
		return pd_err_set(err, -EILSEQ, "array block %" PRIu64 ": %u entries, expected %" PRIu64,
				  le64_to_cpu(h->blocknr), le32_to_cpu(h->nr_entries), expect);
	return 0;
}

static inline uint8_t *ablock_values(void *block)
{
	return (uint8_t *)block + ARRAY_BLOCK_HEADER_SIZE;
}

/*----------------------------------------------------------------
 * Read side
 *--------------------------------------------------------------*/

int array_get(struct bm *bm, uint64_t root, uint32_t value_size, uint64_t index,
	      void *value_out, struct pd_err *err)
{
	uint32_t max = array_max_entries(value_size);
	struct bm_block *blk;
	uint8_t le[8];
	const struct array_block_disk *h;
	int r;

	if (!max)
		return pd_err_set(err, -EINVAL, "bad array value size %u", value_size);
	r = btree_lookup(bm, root, 8, index / max, le, err);
	if (r)
		return r;
	r = bm_read_lock(bm, load_le64(le), &array_block_validator, &blk, err);
	if (r)
		return r;
	h = bm_block_data(blk);
	if (le32_to_cpu(h->value_size) != value_size || le32_to_cpu(h->max_entries) != max) {
		bm_unlock(blk);
		return pd_err_set(err, -EILSEQ, "array block %" PRIu64 ": wrong value size",
				  bm_block_location(blk));
	}
	if (index % max >= le32_to_cpu(h->nr_entries)) {
		bm_unlock(blk);
		return pd_err_set(err, -ENODATA, "array index %" PRIu64 " out of bounds", index);
	}
	memcpy(value_out, (const uint8_t *)bm_block_data(blk) + ARRAY_BLOCK_HEADER_SIZE +
	       (size_t)(index % max) * value_size, value_size);
	bm_unlock(blk);
	return 0;
}

struct array_reader {
	struct bm *bm;
	uint64_t root;
	uint32_t value_size;
	uint32_t max;
	uint64_t bi;		/* block index held, UINT64_MAX: none */
	uint32_t nr;		/* entries in it */
	uint8_t *values;
};

int array_reader_create(struct bm *bm, uint64_t root, uint32_t value_size,
			struct array_reader **out, struct pd_err *err)
{
	struct array_reader *r;

	if (!value_size || value_size > 4096 - ARRAY_BLOCK_HEADER_SIZE)
		return pd_err_set(err, -EINVAL, "bad array value size %u", value_size);
	r = calloc(1, sizeof(*r));
	if (!r || !(r->values = malloc(4096))) {
		free(r);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	r->bm = bm;
	r->root = root;
	r->value_size = value_size;
	r->max = array_max_entries(value_size);
	r->bi = UINT64_MAX;
	*out = r;
	return 0;
}

int array_reader_get(struct array_reader *r, uint64_t index, void *value_out,
		     struct pd_err *err)
{
	uint64_t bi = index / r->max;

	if (bi != r->bi) {
		struct bm_block *blk;
		const struct array_block_disk *h;
		uint8_t le[8];
		int ret;

		r->bi = UINT64_MAX;
		ret = btree_lookup(r->bm, r->root, 8, bi, le, err);
		if (ret)
			return ret;
		ret = bm_read_lock(r->bm, load_le64(le), &array_block_validator, &blk, err);
		if (ret)
			return ret;
		h = bm_block_data(blk);
		if (le32_to_cpu(h->value_size) != r->value_size ||
		    le32_to_cpu(h->max_entries) != r->max ||
		    le32_to_cpu(h->nr_entries) > r->max) {
			bm_unlock(blk);
			return pd_err_set(err, -EILSEQ, "array block %" PRIu64 ": bad header",
					  load_le64(le));
		}
		r->nr = le32_to_cpu(h->nr_entries);
		memcpy(r->values, (const uint8_t *)h + ARRAY_BLOCK_HEADER_SIZE,
		       (size_t)r->nr * r->value_size);
		bm_unlock(blk);
		r->bi = bi;
	}
	if (index % r->max >= r->nr)
		return pd_err_set(err, -ENODATA, "array index %" PRIu64 " out of bounds", index);
	memcpy(value_out, r->values + (size_t)(index % r->max) * r->value_size, r->value_size);
	return 0;
}

void array_reader_reset(struct array_reader *r, uint64_t root)
{
	r->root = root;
	r->bi = UINT64_MAX;
}

void array_reader_destroy(struct array_reader *r)
{
	if (!r)
		return;
	free(r->values);
	free(r);
}

struct walker {
	struct bm *bm;
	uint32_t value_size;
	uint32_t max;
	uint64_t nr_entries;
	uint64_t nr_blocks;
	uint64_t next;		/* next block index expected */
	const struct array_walk_ops *ops;
	void *ctx;
	struct pd_err *err;
	struct walk_cap cap;	/* array blocks read */
};

static uint64_t entry_of(const struct walker *w, uint64_t bi)
{
	if (bi >= w->nr_blocks)
		return w->nr_entries;
	return bi * w->max;
}

static void damage(struct walker *w, uint64_t lo_block, uint64_t hi_block, const char *msg)
{
	if (w->ops->damage)
		w->ops->damage(w->ctx, entry_of(w, lo_block),
			       hi_block == UINT64_MAX ? UINT64_MAX : entry_of(w, hi_block), msg);
}

static int walk_node(void *ctx, const struct btree_node_info *n)
{
	struct walker *w = ctx;
	int r = w->ops->node ? w->ops->node(w->ctx, n) : 0;

	/* a subtree the caller skips (already seen) is not missing */
	if (r == BTREE_WALK_SKIP && n->lo <= w->next) {
		uint64_t end = n->has_hi ? n->hi : UINT64_MAX;

		if (end > w->next)
			w->next = end;
	}
	return r;
}

static void walk_damage(void *ctx, const struct btree_damage *d)
{
	struct walker *w = ctx;

	if (!d->lost)
		return;
	if (d->lo > w->next) {
		damage(w, w->next, d->lo, "array blocks missing");
		w->next = d->lo;
	}
	damage(w, d->lo, d->has_hi ? d->hi : UINT64_MAX, d->msg);
	if (d->has_hi && d->hi > w->next)
		w->next = d->hi;
	else if (!d->has_hi)
		w->next = UINT64_MAX;
}

static int walk_leaf(void *ctx, const struct btree_node_info *n)
{
	struct walker *w = ctx;
	uint64_t blocks[256] = { 0 };
	unsigned nr = n->nr_entries < 256 ? n->nr_entries : 256;
	int r;

	for (unsigned i = 0; i < nr; i++)
		blocks[i] = load_le64(node_value_c(n->data, i, 8));
	bm_prefetch(w->bm, blocks, nr);
	for (unsigned i = 0; i < nr; i++) {
		uint64_t k = node_key(n->data, i);
		struct bm_block *blk;
		struct pd_err e;
		char msg[PD_ERR_MSG_MAX + 64];

		if (k >= w->nr_blocks) {
			snprintf(msg, sizeof(msg), "array has a block beyond its end (index %" PRIu64 ")", k);
			damage(w, w->nr_blocks, w->nr_blocks, msg);
			continue;
		}
		if (k < w->next)
			continue;	/* covered by earlier damage */
		if (k > w->next)
			damage(w, w->next, k, "array blocks missing");
		w->next = k + 1;
		r = walk_cap_visit(&w->cap, "array", blocks[i], w->err);
		if (r)
			return r;
		r = bm_read_lock(w->bm, blocks[i], &array_block_validator, &blk, &e);
		if (!r) {
			r = array_block_check_shape(bm_block_data(blk), w->value_size, k,
						    w->nr_entries, &e);
			if (r)
				bm_unlock(blk);
		}
		if (r == -ENOMEM)
			return pd_err_set(w->err, r, "out of memory");
		if (r) {
			damage(w, k, k + 1, e.msg);
			continue;
		}
		r = w->ops->ablock ? w->ops->ablock(w->ctx, k, blocks[i]) : 0;
		if (!r && w->ops->values)
			r = w->ops->values(w->ctx, k * w->max,
					   le32_to_cpu(((const struct array_block_disk *)
							bm_block_data(blk))->nr_entries),
					   ablock_values((void *)bm_block_data(blk)));
		bm_unlock(blk);
		if (r)
			return r;
	}
	return 0;
}

int array_walk(struct bm *bm, uint64_t root, uint32_t value_size, uint64_t nr_entries,
	       const struct array_walk_ops *ops, void *ctx, struct pd_err *err)
{
	struct walker w = {
		.bm = bm, .value_size = value_size, .max = array_max_entries(value_size),
		.nr_entries = nr_entries, .ops = ops, .ctx = ctx, .err = err,
	};
	struct btree_walk_opts o = { .shape = { .value_size = 8 }, .prefetch = true };

	if (!w.max)
		return pd_err_set(err, -EINVAL, "bad array value size %u", value_size);
	struct btree_walk_ops bo = {
		.node = walk_node, .leaf = walk_leaf, .damage = walk_damage,
	};
	int r;

	w.nr_blocks = array_nr_blocks(nr_entries, value_size);
	walk_cap_init(&w.cap, bm_nr_blocks(bm));
	r = btree_walk(bm, root, &o, &bo, &w, err);
	if (r)
		return r;
	if (w.next < w.nr_blocks)
		damage(&w, w.next, w.nr_blocks, "array blocks missing");
	return 0;
}

/*----------------------------------------------------------------
 * Write side
 *--------------------------------------------------------------*/

/* The array's btree: values are array blocks, each one a reference. */
static int ablock_inc(void *context, const void *value_le)
{
	return tm_inc(context, load_le64(value_le));
}

static int ablock_dec(void *context, const void *value_le)
{
	return tm_dec(context, load_le64(value_le));
}

static void init_info(struct btree_info *info, struct tm *tm)
{
	*info = (struct btree_info) { .tm = tm };
	info->vt.context = tm;
	info->vt.size = 8;
	info->vt.inc = ablock_inc;
	info->vt.dec = ablock_dec;
}

int array_empty(struct tm *tm, uint64_t *root, struct pd_err *err)
{
	struct btree_info info;

	init_info(&info, tm);
	return btree_empty(&info, root, err);
}

int array_delete(struct tm *tm, uint64_t root, struct pd_err *err)
{
	struct btree_info info;

	init_info(&info, tm);
	return btree_delete(&info, root, err);
}

int array_set(struct tm *tm, uint64_t root, uint32_t value_size, uint64_t index,
	      const void *value_le, uint64_t *new_root, struct pd_err *err)
{
	uint32_t max;
	struct btree_info info;
	struct bm_block *blk;
	struct array_block_disk *h;
	uint64_t b, nb;
	uint8_t le[8];
	bool inc;
	int r;

	if (!value_size || value_size > 4096 - ARRAY_BLOCK_HEADER_SIZE)
		return pd_err_set(err, -EINVAL, "bad array value size %u", value_size);
	max = array_max_entries(value_size);
	r = btree_lookup(tm_bm(tm), root, 8, index / max, le, err);
	if (r)
		return r;
	b = load_le64(le);
	/* read first: an index past the end must leave everything as it was */
	r = tm_read_lock(tm, b, &array_block_validator, &blk, err);
	if (r)
		return r;
	h = (struct array_block_disk *)bm_block_data(blk);
	if (le32_to_cpu(h->value_size) != value_size || le32_to_cpu(h->max_entries) != max) {
		tm_unlock(tm, blk);
		return pd_err_set(err, -EILSEQ, "array block %" PRIu64 ": wrong value size", b);
	}
	if (index % max >= le32_to_cpu(h->nr_entries)) {
		tm_unlock(tm, blk);
		return pd_err_set(err, -ENODATA, "array index %" PRIu64 " out of bounds", index);
	}
	tm_unlock(tm, blk);

	r = tm_shadow(tm, b, &array_block_validator, &blk, &inc, err);
	if (r)
		return r;
	memcpy(ablock_values(bm_block_data_rw(blk)) + (size_t)(index % max) * value_size,
	       value_le, value_size);
	nb = bm_block_location(blk);
	tm_unlock(tm, blk);
	*new_root = root;
	if (nb == b)
		return 0;
	/*
	 * The shadow dropped the old block's count, but the btree still
	 * refers to it: give that reference back for the overwrite to drop.
	 */
	r = tm_inc(tm, b);
	if (r)
		return pd_err_set(err, r, "array: cannot count block %" PRIu64, b);
	init_info(&info, tm);
	store_le64(le, nb);
	return btree_insert(&info, root, index / max, le, new_root, NULL, err);
}

struct array_builder {
	struct tm *tm;
	struct btree_info info;
	struct btree_builder *bb;
	uint32_t value_size;
	uint32_t max;
	uint32_t nr;		/* values in buf */
	uint64_t size;		/* values pushed */
	uint8_t *buf;		/* values of the block being filled */
};

int array_builder_create(struct tm *tm, uint32_t value_size, struct array_builder **out,
			 struct pd_err *err)
{
	struct array_builder *b;
	int r;

	if (!value_size || value_size > 4096 - ARRAY_BLOCK_HEADER_SIZE)
		return pd_err_set(err, -EINVAL, "bad array value size %u", value_size);
	b = calloc(1, sizeof(*b));
	if (!b || !(b->buf = malloc(4096))) {
		free(b);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	b->tm = tm;
	b->value_size = value_size;
	b->max = array_max_entries(value_size);
	init_info(&b->info, tm);
	r = btree_builder_create(&b->info, &b->bb, err);
	if (r) {
		array_builder_destroy(b);
		return r;
	}
	*out = b;
	return 0;
}

static int flush_block(struct array_builder *b, struct pd_err *err)
{
	struct bm_block *blk;
	struct array_block_disk *h;
	uint8_t le[8];
	int r;

	r = tm_new_block(b->tm, &array_block_validator, &blk, err);
	if (r)
		return r;
	h = bm_block_data_rw(blk);
	h->max_entries = cpu_to_le32(b->max);
	h->nr_entries = cpu_to_le32(b->nr);
	h->value_size = cpu_to_le32(b->value_size);
	memcpy(ablock_values(h), b->buf, (size_t)b->nr * b->value_size);
	store_le64(le, bm_block_location(blk));
	tm_unlock(b->tm, blk);
	r = btree_builder_push(b->bb, (b->size - 1) / b->max, le, err);
	b->nr = 0;
	return r;
}

int array_builder_push(struct array_builder *b, const void *value_le, struct pd_err *err)
{
	memcpy(b->buf + (size_t)b->nr * b->value_size, value_le, b->value_size);
	b->nr++;
	b->size++;
	return b->nr == b->max ? flush_block(b, err) : 0;
}

int array_builder_push_n(struct array_builder *b, const void *value_le, uint64_t nr,
			 struct pd_err *err)
{
	while (nr--) {
		int r = array_builder_push(b, value_le, err);

		if (r)
			return r;
	}
	return 0;
}

uint64_t array_builder_size(const struct array_builder *b)
{
	return b->size;
}

int array_builder_finish(struct array_builder *b, uint64_t *root, struct pd_err *err)
{
	int r = 0;

	if (b->nr)
		r = flush_block(b, err);
	if (!r)
		r = btree_builder_finish(b->bb, root, err);
	return r;
}

void array_builder_destroy(struct array_builder *b)
{
	if (!b)
		return;
	btree_builder_destroy(b->bb);
	free(b->buf);
	free(b);
}
