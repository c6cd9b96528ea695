/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "space-map-disk.h"
#include "checksum.h"

#include <errno.h>
#include <inttypes.h>

static int check_blocknr_csum(const void *data, uint64_t location, uint32_t xor,
			      const char *what, struct pd_err *err)
{
	uint64_t blocknr = load_le64((const uint8_t *)data + 8);

	if (blocknr != location)
		return pd_err_set(err, -EILSEQ, "bad block nr in %s (block %" PRIu64 ")",
				  what, location);
	if (block_csum(data, xor) != block_stored_csum(data))
		return pd_err_set(err, -EILSEQ, "bad checksum in %s (block %" PRIu64 ")",
				  what, location);
	return 0;
}

static int bitmap_check(const struct bm_validator *v, const void *data,
			uint64_t location, struct pd_err *err)
{
	(void)v;
	return check_blocknr_csum(data, location, CSUM_XOR_SM_BITMAP,
				  "space map bitmap", err);
}

static void bitmap_prepare(const struct bm_validator *v, void *data, uint64_t location)
{
	(void)v;
	store_le64((uint8_t *)data + 8, location);
	block_set_csum(data, CSUM_XOR_SM_BITMAP);
}

const struct bm_validator sm_bitmap_validator = {
	.name = "sm_bitmap",
	.check = bitmap_check,
	.prepare_for_write = bitmap_prepare,
};

static int index_check(const struct bm_validator *v, const void *data,
		       uint64_t location, struct pd_err *err)
{
	(void)v;
	return check_blocknr_csum(data, location, CSUM_XOR_SM_INDEX,
				  "metadata index block", err);
}

static void index_prepare(const struct bm_validator *v, void *data, uint64_t location)
{
	(void)v;
	store_le64((uint8_t *)data + 8, location);
	block_set_csum(data, CSUM_XOR_SM_INDEX);
}

const struct bm_validator sm_index_validator = {
	.name = "sm_index",
	.check = index_check,
	.prepare_for_write = index_prepare,
};

/*----------------------------------------------------------------
 * Loading counts
 *--------------------------------------------------------------*/

#include "count-map.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct loader {
	struct bm *bm;
	const struct sm_root *root;
	struct count_map *counts;
	const struct sm_load_hooks *h;
	int nr_damage;
	uint64_t nr_overflow;		/* bitmap entries of 3 */
	uint64_t nr_tree_entries;	/* matching ref-count tree entries */
	uint64_t next_index;		/* data: next expected bitmap index */
	int error;			/* negative errno from a hook or memory */
};

static void ldamage(struct loader *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void ldamage(struct loader *l, const char *fmt, ...)
{
	char msg[PD_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	l->nr_damage++;
	if (l->h->damage)
		l->h->damage(l->h->ctx, msg);
}

static int lref(struct loader *l, uint64_t b)
{
	return l->h->ref ? l->h->ref(l->h->ctx, b) : 0;
}

static void load_bitmap(struct loader *l, uint64_t index, uint64_t blocknr)
{
	uint64_t first = index * SM_ENTRIES_PER_BITMAP;
	struct bm_block *blk;
	struct pd_err e;
	int r;

	r = lref(l, blocknr);
	if (r) {
		l->error = r;
		return;
	}
	r = bm_read_lock(l->bm, blocknr, &sm_bitmap_validator, &blk, &e);
	if (r) {
		ldamage(l, "%s", e.msg);
		return;
	}
	for (unsigned i = 0; i < SM_ENTRIES_PER_BITMAP; i++) {
		uint64_t b = first + i;
		unsigned v;

		if (b >= l->root->nr_blocks)
			break;
		v = sm_bitmap_get(bm_block_data(blk), i);
		if (!v)
			continue;
		if (v == 3)
			l->nr_overflow++;
		if (cm_set(l->counts, b, v)) {
			l->error = -ENOMEM;
			break;
		}
	}
	bm_unlock(blk);
}

static int index_node(void *ctx, const struct btree_node_info *n)
{
	struct loader *l = ctx;
	int r;

	r = l->h->node ? l->h->node(l->h->ctx, n) : BTREE_WALK_CONTINUE;
	if (r)
		return r;
	return 0;
}

static int index_leaf(void *ctx, const struct btree_node_info *n)
{
	struct loader *l = ctx;
	uint64_t nr_bitmaps = (l->root->nr_blocks + SM_ENTRIES_PER_BITMAP - 1) /
			      SM_ENTRIES_PER_BITMAP;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t k = node_key(n->data, i);
		const struct sm_index_entry_disk *ie = node_value_c(n->data, i, SM_INDEX_ENTRY_SIZE);

		if (k >= nr_bitmaps) {
			ldamage(l, "data space map index entry %" PRIu64 " is beyond the last bitmap (%" PRIu64 " bitmaps)",
				k, nr_bitmaps);
			continue;
		}
		if (k != l->next_index)
			ldamage(l, "data space map index entries %" PRIu64 " to %" PRIu64 " are missing",
				l->next_index, k - 1);
		l->next_index = k + 1;
		load_bitmap(l, k, le64_to_cpu(ie->blocknr));
		if (l->error)
			return l->error;
	}
	return 0;
}

static void tree_damage(void *ctx, const struct btree_damage *d)
{
	ldamage(ctx, "%s", d->msg);
}

static int refcount_leaf(void *ctx, const struct btree_node_info *n)
{
	struct loader *l = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t b = node_key(n->data, i);
		uint32_t c = load_le32(node_value_c(n->data, i, SM_REF_COUNT_VALUE_SIZE));

		if (b >= l->root->nr_blocks) {
			ldamage(l, "ref count tree entry for block %" PRIu64 " beyond the end of the space map (%" PRIu64 " blocks)",
				b, l->root->nr_blocks);
			continue;
		}
		if (cm_get(l->counts, b) < 3) {
			ldamage(l, "ref count tree holds block %" PRIu64 " (count %u) but its bitmap entry is %u",
				b, c, cm_get(l->counts, b));
			continue;
		}
		if (c < 3)
			ldamage(l, "ref count tree holds count %u for block %" PRIu64 " (it should hold counts of 3 or more only)",
				c, b);
		l->nr_tree_entries++;
		if (cm_set(l->counts, b, c)) {
			l->error = -ENOMEM;
			return -ENOMEM;
		}
	}
	return 0;
}

int sm_disk_load(struct bm *bm, const struct sm_root *root, bool metadata,
		 struct count_map *counts, const struct sm_load_hooks *hooks,
		 struct pd_err *err)
{
	struct loader l = {
		.bm = bm, .root = root, .counts = counts, .h = hooks,
	};
	struct btree_walk_opts wo = { .check_fill = true, .prefetch = true };
	struct btree_walk_ops ops = { .node = index_node, .damage = tree_damage };
	uint64_t nr_bitmaps = (root->nr_blocks + SM_ENTRIES_PER_BITMAP - 1) /
			      SM_ENTRIES_PER_BITMAP;
	int r;

	if (cm_nr_blocks(counts) < root->nr_blocks)
		return pd_err_set(err, -EINVAL, "count map too small for the space map");

	/* bitmaps */
	if (metadata) {
		const struct sm_metadata_index_disk *idx;
		struct bm_block *blk;
		struct pd_err e;

		if (nr_bitmaps > SM_MD_MAX_BITMAPS) {
			ldamage(&l, "metadata space map has %" PRIu64 " blocks, more than one index block can describe",
				root->nr_blocks);
			nr_bitmaps = SM_MD_MAX_BITMAPS;
		}
		r = lref(&l, root->bitmap_root);
		if (r)
			return pd_err_set(err, r, "space map check stopped");
		r = bm_read_lock(bm, root->bitmap_root, &sm_index_validator, &blk, &e);
		if (r) {
			ldamage(&l, "%s", e.msg);
		} else {
			idx = bm_block_data(blk);
			for (uint64_t j = 0; j < nr_bitmaps && !l.error; j++) {
				uint64_t b = le64_to_cpu(idx->entry[j].blocknr);

				if (!b || b >= bm_nr_blocks(bm)) {
					ldamage(&l, "metadata space map index entry %" PRIu64 " points at block %" PRIu64 ", outside the metadata device",
						j, b);
					continue;
				}
				load_bitmap(&l, j, b);
			}
			bm_unlock(blk);
		}
	} else {
		wo.shape.value_size = SM_INDEX_ENTRY_SIZE;
		ops.leaf = index_leaf;
		ops.node = index_node;
		r = lref(&l, root->bitmap_root);
		if (!r)
			r = btree_walk(bm, root->bitmap_root, &wo, &ops, &l, err);
		if (r)
			return r;
		if (!l.error && l.next_index < nr_bitmaps)
			ldamage(&l, "data space map index entries %" PRIu64 " to %" PRIu64 " are missing",
				l.next_index, nr_bitmaps - 1);
	}
	if (l.error)
		return pd_err_set(err, l.error, "space map check stopped: %s",
				  strerror(-l.error));

	/* counts of 3 and more */
	wo.shape.value_size = SM_REF_COUNT_VALUE_SIZE;
	ops.leaf = refcount_leaf;
	r = lref(&l, root->ref_count_root);
	if (!r)
		r = btree_walk(bm, root->ref_count_root, &wo, &ops, &l, err);
	if (r)
		return r;
	if (l.error)
		return pd_err_set(err, l.error, "space map check stopped: %s",
				  strerror(-l.error));
	if (l.nr_tree_entries < l.nr_overflow)
		ldamage(&l, "%" PRIu64 " blocks have a bitmap entry of 3 but no ref count tree entry",
			(l.nr_overflow - l.nr_tree_entries));
	return l.nr_damage;
}
