/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "thin-provisioning/rmap.h"
#include "persistent-data/btree.h"
#include "thin-provisioning/thin-disk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHUNK_RUNS (1u << 19)

/*----------------------------------------------------------------
 * Regions: sorted and merged, then a binary search per data block
 *--------------------------------------------------------------*/

static int cmp_region(const void *a, const void *b)
{
	const struct rmap_region *x = a, *y = b;

	return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static unsigned merge_regions(struct rmap_region *r, unsigned n)
{
	unsigned out = 0;

	qsort(r, n, sizeof(*r), cmp_region);
	for (unsigned i = 0; i < n; i++) {
		if (out && r[i].begin <= r[out - 1].end) {
			if (r[i].end > r[out - 1].end)
				r[out - 1].end = r[i].end;
		} else {
			r[out++] = r[i];
		}
	}
	return out;
}

static bool in_regions(const struct rmap_region *r, unsigned n, uint64_t b)
{
	unsigned lo = 0, hi = n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (b < r[mid].begin)
			hi = mid;
		else if (b >= r[mid].end)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/*----------------------------------------------------------------
 * Sorting in chunks, spilled to temporary files
 *--------------------------------------------------------------*/

struct sorter {
	struct rmap_run *runs;
	size_t nr, max;
	FILE **spills;
	size_t nr_spills;
};

static int cmp_run(const void *a, const void *b)
{
	const struct rmap_run *x = a, *y = b;

	if (x->data_begin != y->data_begin)
		return x->data_begin < y->data_begin ? -1 : 1;
	if (x->data_end != y->data_end)
		return x->data_end < y->data_end ? -1 : 1;
	if (x->dev_id != y->dev_id)
		return x->dev_id < y->dev_id ? -1 : 1;
	if (x->thin_begin != y->thin_begin)
		return x->thin_begin < y->thin_begin ? -1 : 1;
	return 0;
}

static int spill(struct sorter *s, struct pd_err *err)
{
	FILE **n, *f;

	qsort(s->runs, s->nr, sizeof(*s->runs), cmp_run);
	f = tmpfile();
	if (!f)
		return pd_err_set(err, -errno, "temporary file: %s", strerror(errno));
	if (fwrite(s->runs, sizeof(*s->runs), s->nr, f) != s->nr || fflush(f) ||
	    fseek(f, 0, SEEK_SET)) {
		int e = errno ? errno : EIO;

		fclose(f);
		return pd_err_set(err, -e, "temporary file: %s", strerror(e));
	}
	n = realloc(s->spills, (s->nr_spills + 1) * sizeof(*n));
	if (!n) {
		fclose(f);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	s->spills = n;
	s->spills[s->nr_spills++] = f;
	s->nr = 0;
	return 0;
}

static int sorter_add(struct sorter *s, const struct rmap_run *r, struct pd_err *err)
{
	if (s->nr == s->max) {
		int ret = spill(s, err);

		if (ret)
			return ret;
	}
	s->runs[s->nr++] = *r;
	return 0;
}

/* Emits everything in order: the chunk in memory, or a merge of the spills. */
static int sorter_finish(struct sorter *s, rmap_fn fn, void *ctx, struct pd_err *err)
{
	struct rmap_run *heads;
	bool *live;
	int ret = 0;

	if (!s->nr_spills) {
		qsort(s->runs, s->nr, sizeof(*s->runs), cmp_run);
		for (size_t i = 0; i < s->nr && !ret; i++)
			ret = fn(ctx, s->runs + i);
		return ret;
	}
	if (s->nr && (ret = spill(s, err)))
		return ret;
	heads = calloc(s->nr_spills, sizeof(*heads));
	live = calloc(s->nr_spills, sizeof(*live));
	if (!heads || !live) {
		free(heads);
		free(live);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < s->nr_spills; i++)
		live[i] = fread(heads + i, sizeof(*heads), 1, s->spills[i]) == 1;
	for (;;) {
		size_t best = s->nr_spills;

		for (size_t i = 0; i < s->nr_spills; i++)
			if (live[i] && (best == s->nr_spills || cmp_run(heads + i, heads + best) < 0))
				best = i;
		if (best == s->nr_spills)
			break;
		ret = fn(ctx, heads + best);
		if (ret)
			break;
		live[best] = fread(heads + best, sizeof(*heads), 1, s->spills[best]) == 1;
	}
	for (size_t i = 0; i < s->nr_spills && !ret; i++)
		if (ferror(s->spills[i]))
			ret = pd_err_set(err, -EIO, "temporary file: read error");
	free(heads);
	free(live);
	return ret;
}

static void sorter_destroy(struct sorter *s)
{
	for (size_t i = 0; i < s->nr_spills; i++)
		fclose(s->spills[i]);
	free(s->spills);
	free(s->runs);
}

/*----------------------------------------------------------------
 * The walk
 *--------------------------------------------------------------*/

static int walk_device(struct thin_metadata *md, const struct thin_device *dev,
		       const struct rmap_region *reg, unsigned nr_reg, struct sorter *s,
		       struct pd_err *err)
{
	struct btree_cursor *c;
	struct rmap_run cur = { 0 };
	bool have = false;
	uint64_t last = 0;
	bool has_last = false;
	int r;

	r = btree_cursor_create(md->bm, dev->root, THIN_MAPPING_VALUE_SIZE, &c, err);
	if (r)
		return r;
	while (!(r = btree_cursor_next_leaf(c, err))) {
		const void *leaf = btree_cursor_leaf(c);
		const uint8_t *vals = node_values_c(leaf);
		uint32_t n = btree_cursor_nr(c);

		for (uint32_t i = 0; i < n && !r; i++) {
			uint64_t k = node_key(leaf, i);
			uint64_t d = block_time_block(load_le64(vals + 8u * i));

			if (has_last && k <= last) {
				r = pd_err_set(err, -EILSEQ, "device %" PRIu64 ": mapping tree keys out of order at block %" PRIu64,
					       dev->dev_id,
					       btree_cursor_leaf_block(c));
				break;
			}
			last = k;
			has_last = true;
			if (!in_regions(reg, nr_reg, d))
				continue;
			if (have && d == cur.data_end && k == cur.thin_begin + (cur.data_end - cur.data_begin)) {
				cur.data_end++;
				continue;
			}
			if (have && (r = sorter_add(s, &cur, err)))
				break;
			have = true;
			cur.data_begin = d;
			cur.data_end = d + 1;
			cur.dev_id = dev->dev_id;
			cur.thin_begin = k;
		}
		if (r)
			break;
	}
	btree_cursor_destroy(c);
	if (r != -ENODATA)
		return r;
	return have ? sorter_add(s, &cur, err) : 0;
}

int thin_rmap_walk(struct thin_metadata *md, const struct rmap_region *regions,
		   unsigned nr_regions, size_t chunk_runs, rmap_fn fn, void *ctx,
		   struct pd_err *err)
{
	struct sorter s = { 0 };
	struct rmap_region *reg;
	struct thin_dev_iter *it = NULL;
	struct thin_device dev;
	unsigned nr;
	int r;

	reg = malloc((nr_regions ? nr_regions : 1) * sizeof(*reg));
	s.max = chunk_runs ? chunk_runs : DEFAULT_CHUNK_RUNS;
	s.runs = malloc(s.max * sizeof(*s.runs));
	if (!reg || !s.runs) {
		free(reg);
		free(s.runs);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	memcpy(reg, regions, nr_regions * sizeof(*reg));
	nr = merge_regions(reg, nr_regions);
	r = thin_dev_iter_create(md, &it, err);
	while (!r && !(r = thin_dev_iter_next(it, &dev, err)))
		r = walk_device(md, &dev, reg, nr, &s, err);
	if (r == -ENODATA)
		r = sorter_finish(&s, fn, ctx, err);
	thin_dev_iter_destroy(it);
	sorter_destroy(&s);
	free(reg);
	return r;
}
