/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The in-memory space map: counts in a count map, allocation from a
 * cursor.  It has no on-disk form (commit only makes freed blocks
 * reusable).  No command uses it: the unit tests run the btree write side
 * and the transaction manager over it.
 */
#include "container-of.h"
#include "count-map.h"
#include "space-map.h"

#include <errno.h>
#include <stdlib.h>

struct sm_core {
	struct space_map sm;
	struct count_map *counts;
	struct count_map *freed;	/* freed since the last commit: not reusable yet */
	uint64_t cursor;
};

#define to_core(x) container_of(x, struct sm_core, sm)

static void core_destroy(struct space_map *sm)
{
	struct sm_core *c = to_core(sm);

	cm_destroy(c->counts);
	cm_destroy(c->freed);
	free(c);
}

static uint64_t core_nr_blocks(struct space_map *sm)
{
	return cm_nr_blocks(to_core(sm)->counts);
}

static uint64_t core_nr_free(struct space_map *sm)
{
	struct sm_core *c = to_core(sm);

	return cm_nr_blocks(c->counts) - cm_nr_allocated(c->counts);
}

static int core_get_count(struct space_map *sm, uint64_t b, uint32_t *count)
{
	struct sm_core *c = to_core(sm);

	if (b >= cm_nr_blocks(c->counts))
		return -EINVAL;
	*count = cm_get(c->counts, b);
	return 0;
}

static int core_set_count(struct space_map *sm, uint64_t b, uint32_t count)
{
	struct sm_core *c = to_core(sm);

	if (b >= cm_nr_blocks(c->counts))
		return -EINVAL;
	if (!count && cm_get(c->counts, b) && cm_set(c->freed, b, 1))
		return -ENOMEM;
	return cm_set(c->counts, b, count);
}

static int core_inc(struct space_map *sm, uint64_t b)
{
	struct sm_core *c = to_core(sm);

	if (b >= cm_nr_blocks(c->counts))
		return -EINVAL;
	return cm_inc(c->counts, b);
}

static int core_dec(struct space_map *sm, uint64_t b)
{
	struct sm_core *c = to_core(sm);
	uint32_t n;

	if (b >= cm_nr_blocks(c->counts))
		return -EINVAL;
	n = cm_get(c->counts, b);
	if (!n)
		return -EINVAL;
	return core_set_count(sm, b, n - 1);
}

static int core_new_block(struct space_map *sm, uint64_t *out)
{
	struct sm_core *c = to_core(sm);
	uint64_t nr = cm_nr_blocks(c->counts);

	for (int pass = 0; pass < 2; pass++) {
		uint64_t b = pass ? 0 : c->cursor;

		while ((b = cm_find(c->counts, b, 0)) < nr) {
			if (!cm_get(c->freed, b)) {
				*out = b;
				c->cursor = b + 1;
				return cm_set(c->counts, b, 1);
			}
			b++;
		}
	}
	return -ENOSPC;
}

static int core_extend(struct space_map *sm, uint64_t extra)
{
	struct sm_core *c = to_core(sm);
	uint64_t nr = cm_nr_blocks(c->counts) + extra;
	struct count_map *n, *f;
	int r;

	r = cm_create(nr, &n);
	if (r)
		return r;
	r = cm_create(nr, &f);
	if (r) {
		cm_destroy(n);
		return r;
	}
	for (uint64_t b = 0; b < cm_nr_blocks(c->counts); b++) {
		if ((r = cm_set(n, b, cm_get(c->counts, b))) ||
		    (r = cm_set(f, b, cm_get(c->freed, b)))) {
			cm_destroy(n);
			cm_destroy(f);
			return r;
		}
	}
	cm_destroy(c->counts);
	cm_destroy(c->freed);
	c->counts = n;
	c->freed = f;
	return 0;
}

static int core_commit(struct space_map *sm, struct pd_err *err)
{
	struct sm_core *c = to_core(sm);
	struct count_map *f;
	int r;

	r = cm_create(cm_nr_blocks(c->counts), &f);
	if (r)
		return pd_err_set(err, r, "out of memory");
	cm_destroy(c->freed);
	c->freed = f;
	return 0;
}

static int core_copy_root(struct space_map *sm, void *blob)
{
	(void)sm;
	(void)blob;
	return -EOPNOTSUPP;
}

static const struct space_map_ops core_ops = {
	.destroy = core_destroy,
	.nr_blocks = core_nr_blocks,
	.nr_free = core_nr_free,
	.get_count = core_get_count,
	.set_count = core_set_count,
	.inc = core_inc,
	.dec = core_dec,
	.new_block = core_new_block,
	.extend = core_extend,
	.commit = core_commit,
	.copy_root = core_copy_root,
};

int sm_core_create(uint64_t nr_blocks, struct space_map **out)
{
	struct sm_core *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	if (cm_create(nr_blocks, &c->counts) || cm_create(nr_blocks, &c->freed)) {
		cm_destroy(c->counts);
		free(c);
		return -ENOMEM;
	}
	c->sm.ops = &core_ops;
	*out = &c->sm;
	return 0;
}

/* Access for code that wants the counts of a core map (checker, writers). */
struct count_map *sm_core_counts(struct space_map *sm)
{
	return to_core(sm)->counts;
}
