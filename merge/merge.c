/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "merge.h"
#include "persistent-data/btree-write.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void merge_details(const struct thin_device *o, const struct thin_device *s,
		   bool rebase, struct thin_device *m)
{
	*m = rebase ? *s : *o;
	m->snapshotted_time = o->snapshotted_time > s->snapshotted_time ?
			      o->snapshotted_time : s->snapshotted_time;
}

/*----------------------------------------------------------------
 * In a pool transaction
 *--------------------------------------------------------------*/

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Both ids name the same tree: M is that tree; the other id goes. */
static int merge_same_tree(struct pool *p, const struct merge_opts *o,
			   const struct thin_device *od, const struct thin_device *sd,
			   struct merge_stats *st, struct pd_err *err)
{
	struct thin_device m;
	int r;

	merge_details(od, sd, o->rebase, &m);
	m.mapped_blocks = sd->mapped_blocks;
	st->from_snapshot = sd->mapped_blocks;
	st->hidden = od->mapped_blocks;
	st->merged_mapped = m.mapped_blocks;
	r = pool_delete_device(p, st->dropped_id, err);
	if (!r)
		r = pool_set_details(p, &m, err);
	return r;
}

/*
 * A small S (an in-place merge of a few hot spots) touches O nodes spread
 * over the whole tree, each behind the node above it: read the paths to
 * all of S's keys level by level, a level in large batches, so that an
 * async engine overlaps the reads instead of waiting for each in turn.
 */
#define SMALL_SNAPSHOT (64u * 1024u)

static void prefetch_small_snapshot(struct pool *p, uint64_t s_root, uint64_t o_root,
				    uint64_t s_mapped)
{
	struct btree_cursor *c;
	uint64_t *keys, n = 0;
	struct pd_err err;

	if (!s_mapped || s_mapped > SMALL_SNAPSHOT)
		return;
	keys = malloc(s_mapped * sizeof(*keys));
	if (!keys)
		return;
	if (!btree_cursor_create(p->bm, s_root, THIN_MAPPING_VALUE_SIZE, &c, &err)) {
		while (!btree_cursor_next_leaf(c, &err))
			for (uint32_t i = 0; i < btree_cursor_nr(c) && n < s_mapped; i++)
				keys[n++] = btree_cursor_key(c, i);
		btree_cursor_destroy(c);
	}
	btree_prefetch_keys(p->bm, o_root, keys, (unsigned)n);
	free(keys);

	/* then the data space map bitmaps of S's blocks and of the O blocks S hides */
	{
		uint64_t *data = malloc(2 * s_mapped * sizeof(*data)), nd = 0;

		if (!data)
			return;
		if (!btree_cursor_create(p->bm, s_root, THIN_MAPPING_VALUE_SIZE, &c, &err)) {
			while (!btree_cursor_next_leaf(c, &err)) {
				const void *leaf = btree_cursor_leaf(c);

				for (uint32_t i = 0; i < btree_cursor_nr(c) && nd + 2 <= 2 * s_mapped; i++) {
					uint8_t ov[8];

					data[nd++] = block_time_block(load_le64(node_value_c(leaf, i, 8)));
					if (!btree_lookup(p->bm, o_root, THIN_MAPPING_VALUE_SIZE,
							  node_key(leaf, i), ov, NULL))
						data[nd++] = block_time_block(load_le64(ov));
				}
			}
			btree_cursor_destroy(c);
		}
		qsort(data, nd, sizeof(*data), cmp_u64);
		for (uint64_t i = 0; i < nd; i += 4096)
			sm_prefetch(p->data_sm, data + i, (unsigned)(nd - i < 4096 ? nd - i : 4096));
		free(data);
	}
}

int merge_in_pool(struct pool *p, const struct merge_opts *o,
		  struct merge_stats *st, struct pd_err *err)
{
	struct btree_info *info = pool_bottom_info(p);
	struct btree_cursor *c = NULL;
	struct thin_device od, sd, m;
	uint64_t root, added = 0, seen = 0, leaf_added;
	uint64_t keys[256], data[256];
	int r;

	memset(st, 0, sizeof(*st));
	r = pool_get_device(p, o->origin, &od, err);
	if (r)
		return r;
	st->kept_id = o->origin;
	if (o->snapshot == o->origin) {
		st->kept_from_origin = st->merged_mapped = od.mapped_blocks;
		st->dropped_id = o->origin;
		st->snap_time = od.snapshotted_time;
		return 0;
	}
	r = pool_get_device(p, o->snapshot, &sd, err);
	if (r)
		return r;
	st->kept_id = o->rebase ? o->snapshot : o->origin;
	st->dropped_id = o->rebase ? o->origin : o->snapshot;
	merge_details(&od, &sd, o->rebase, &m);
	st->snap_time = m.snapshotted_time;
	if (od.root == sd.root)
		return merge_same_tree(p, o, &od, &sd, st, err);

	/* top-down: O's top-level path first, then O's tree */
	r = pool_touch_root(p, o->origin, err);
	if (r)
		return r;
	root = od.root;

	prefetch_small_snapshot(p, sd.root, root, sd.mapped_blocks);
	r = btree_cursor_create(p->bm, sd.root, THIN_MAPPING_VALUE_SIZE, &c, err);
	if (r)
		return r;
	while (!(r = btree_cursor_next_leaf(c, err))) {
		const void *leaf = btree_cursor_leaf(c);
		const uint8_t *vals = node_values_c(leaf);
		uint32_t nr = btree_cursor_nr(c);

		/*
		 * What this S leaf will touch, read in batches rather than one
		 * block at a time: the O leaves its keys land in, and the data
		 * space map bitmaps of S's blocks (a small S has had the
		 * bitmaps of the O blocks it hides read ahead as well).
		 */
		for (uint32_t i = 0; i < nr; i++) {
			keys[i] = node_key(leaf, i);
			data[i] = block_time_block(load_le64(vals + 8u * i));
		}
		btree_prefetch_keys(p->bm, root, keys, nr);
		qsort(data, nr, sizeof(data[0]), cmp_u64);
		sm_prefetch(p->data_sm, data, nr);

		for (uint32_t i = 0; i < nr; i++) {
			uint64_t block = block_time_block(load_le64(vals + 8u * i));

			/* M's leaf will hold a reference to S's data block */
			r = sm_inc(p->data_sm, block);
			if (r) {
				pd_err_set(err, r, "data block %" PRIu64 " of device %" PRIu64 " is beyond the data device",
					   block, o->snapshot);
				goto out;
			}
		}
		/*
		 * One pass per O leaf: an O mapping S overwrites drops its
		 * data block (or, the very same block, the reference just
		 * taken).
		 */
		r = btree_insert_many(info, root, keys, vals, nr, &root, &leaf_added, err);
		if (r)
			goto out;
		added += leaf_added;
		st->hidden += nr - leaf_added;
		seen += nr;
		if (o->progress)
			o->progress(o->progress_ctx, seen, sd.mapped_blocks);
	}
	if (r != -ENODATA)
		goto out;
	r = 0;

	st->from_snapshot = seen;
	if (seen != sd.mapped_blocks) {
		r = pd_err_set(err, -EILSEQ,
			       "device %" PRIu64 ": its details say %" PRIu64 " mappings but its tree holds %" PRIu64,
			       o->snapshot,
			       sd.mapped_blocks,
			       seen);
		goto out;
	}
	if (st->hidden > od.mapped_blocks) {
		r = pd_err_set(err, -EILSEQ,
			       "device %" PRIu64 ": its details say %" PRIu64 " mappings but more than that are overwritten",
			       o->origin, od.mapped_blocks);
		goto out;
	}
	st->kept_from_origin = od.mapped_blocks - st->hidden;
	st->merged_mapped = od.mapped_blocks + added;
	m.mapped_blocks = st->merged_mapped;

	r = pool_update_root(p, o->origin, root, err);
	if (r)
		goto out;
	if (!o->rebase) {
		r = pool_delete_device(p, o->snapshot, err);
	} else {
		/* M moves to S's id: O's entry gives its reference to S's */
		r = pool_take_root(p, o->origin, &root, err);
		if (!r)
			r = pool_set_root(p, o->snapshot, root, err);
		if (!r)
			r = pool_remove_details(p, o->origin, err);
	}
	if (!r)
		r = pool_set_details(p, &m, err);
out:
	btree_cursor_destroy(c);
	return r;
}

/*----------------------------------------------------------------
 * Read-only walk
 *--------------------------------------------------------------*/

/* The cursor's current mapping; *end past its last one. */
static int peek(struct btree_cursor *c, uint64_t *key, uint64_t *value, bool *end,
		struct pd_err *err)
{
	const void *v;
	int r = btree_cursor_peek_entry(c, key, &v, err);

	*end = r == -ENODATA;
	if (*end) {
		*key = UINT64_MAX;
		return 0;
	}
	if (!r)
		*value = load_le64(v);
	return r;
}

int merge_walk(struct bm *bm, uint64_t origin_root, uint64_t snapshot_root,
	       const struct merge_visitor *v, struct pd_err *err)
{
	struct btree_cursor *o = NULL, *s = NULL;
	int r;

	r = btree_cursor_create(bm, origin_root, THIN_MAPPING_VALUE_SIZE, &o, err);
	if (!r)
		r = btree_cursor_create(bm, snapshot_root, THIN_MAPPING_VALUE_SIZE, &s, err);
	while (!r) {
		uint64_t ko, ks, vo = 0, vs = 0;
		bool oend, send;

		r = peek(o, &ko, &vo, &oend, err);
		if (!r)
			r = peek(s, &ks, &vs, &send, err);
		if (r || (oend && send))
			break;
		if (!send && (oend || ks <= ko)) {
			if (!oend && ks == ko) {
				r = v->mapping(v->ctx, ko, vo, MERGE_HIDDEN);
				btree_cursor_next_entry(o);
				if (r)
					break;
			}
			r = v->mapping(v->ctx, ks, vs, MERGE_FROM_SNAPSHOT);
			btree_cursor_next_entry(s);
		} else {
			r = v->mapping(v->ctx, ko, vo, MERGE_FROM_ORIGIN);
			btree_cursor_next_entry(o);
		}
	}
	btree_cursor_destroy(o);
	btree_cursor_destroy(s);
	return r;
}

/*----------------------------------------------------------------
 * Counting (dry run)
 *--------------------------------------------------------------*/

int merge_count(struct bm *bm, const struct thin_device *o, const struct thin_device *s,
		bool rebase, struct merge_stats *st, struct pd_err *err)
{
	struct btree_cursor *c;
	struct thin_device m;
	uint64_t seen = 0;
	int r;

	memset(st, 0, sizeof(*st));
	st->kept_id = rebase ? s->dev_id : o->dev_id;
	st->dropped_id = rebase ? o->dev_id : s->dev_id;
	merge_details(o, s, rebase, &m);
	st->snap_time = m.snapshotted_time;
	if (o->dev_id == s->dev_id) {
		st->kept_from_origin = st->merged_mapped = o->mapped_blocks;
		st->kept_id = st->dropped_id = o->dev_id;
		st->snap_time = o->snapshotted_time;
		return 0;
	}
	if (o->root == s->root) {
		st->from_snapshot = st->merged_mapped = s->mapped_blocks;
		st->hidden = o->mapped_blocks;
		return 0;
	}
	r = btree_cursor_create(bm, s->root, THIN_MAPPING_VALUE_SIZE, &c, err);
	if (r)
		return r;
	while (!(r = btree_cursor_next_leaf(c, err))) {
		const void *leaf = btree_cursor_leaf(c);

		for (uint32_t i = 0; i < btree_cursor_nr(c); i++) {
			r = btree_lookup(bm, o->root, THIN_MAPPING_VALUE_SIZE,
					 node_key(leaf, i), NULL, err);
			if (!r)
				st->hidden++;
			else if (r != -ENODATA)
				goto out;
		}
		seen += btree_cursor_nr(c);
	}
	if (r == -ENODATA)
		r = 0;
out:
	btree_cursor_destroy(c);
	if (r)
		return r;
	st->from_snapshot = seen;
	st->kept_from_origin = o->mapped_blocks > st->hidden ? o->mapped_blocks - st->hidden : 0;
	st->merged_mapped = st->from_snapshot + st->kept_from_origin;
	return 0;
}
