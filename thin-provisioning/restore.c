/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "restore.h"
#include "persistent-data/btree-write.h"
#include "persistent-data/space-map-disk.h"
#include "pool.h"
#include "persistent-data/u64-map.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*----------------------------------------------------------------
 * The restore emitter
 *--------------------------------------------------------------*/

struct def {
	char *name;
	uint64_t root;		/* a tree holding the section's mappings */
	uint64_t nr_mappings;
};

/*
 * The shared sections defined so far, found by name through a hash of
 * it (thin_repair defines one a shared leaf: tens of thousands).  A
 * name defined twice means its latest definition, as in the XML.
 */
struct def_table {
	struct def *defs;
	uint64_t nr, max;
	struct u64_map by_hash;		/* hash -> index of its latest def */
};

static uint64_t name_hash(const char *name)
{
	uint64_t h = 14695981039346656037ull;	/* FNV-1a */

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 1099511628211ull;
	return h;
}

static struct def *def_add(struct def_table *t, const char *name)
{
	struct def *d;

	if (t->nr == t->max) {
		uint64_t max = t->max ? t->max * 2 : 16;
		struct def *n = realloc(t->defs, max * sizeof(*n));

		if (!n)
			return NULL;
		t->defs = n;
		t->max = max;
	}
	d = t->defs + t->nr;
	*d = (struct def) { .name = strdup(name) };
	if (!d->name || u64_map_put(&t->by_hash, name_hash(name), t->nr)) {
		free(d->name);
		return NULL;
	}
	t->nr++;
	return d;
}

static struct def *def_find(const struct def_table *t, const char *name)
{
	uint64_t i;

	if (u64_map_get(&t->by_hash, name_hash(name), &i) && !strcmp(t->defs[i].name, name))
		return t->defs + i;
	/* unknown, or a hash two names share: look at every one, latest first */
	for (i = t->nr; i-- > 0;)
		if (!strcmp(t->defs[i].name, name))
			return t->defs + i;
	return NULL;
}

static void def_table_free(struct def_table *t)
{
	for (uint64_t i = 0; i < t->nr; i++)
		free(t->defs[i].name);
	free(t->defs);
	u64_map_exit(&t->by_hash);
}

struct restore_emitter {
	struct emitter e;
	struct io_engine *io;
	const struct restore_opts *o;
	struct pd_err *err;
	struct pool *p;

	struct thin_device dev;		/* the device being built */
	struct btree_builder *b;
	uint64_t count;
	bool in_def;

	struct def_table defs;
	struct def *cur_def;		/* the section being built */
};

#define to_restore(x) ((struct restore_emitter *)(x))

static int r_begin_superblock(struct emitter *e, const struct emit_superblock *sb)
{
	struct restore_emitter *re = to_restore(e);
	struct pool_create_opts po = {
		.nr_data_blocks = sb->nr_data_blocks,
		.data_block_size = sb->data_block_size,
		.trans_id = sb->trans_id,
		.time = sb->time,
		.flags = 0,		/* as 1.x: a restored pool starts clean */
		.version = re->o && re->o->version ? re->o->version : THIN_SB_VERSION,
	};

	return pool_create(re->io, &po, re->o ? re->o->cache_blocks : 0, &re->p, re->err);
}

static int start_tree(struct restore_emitter *re)
{
	re->count = 0;
	return btree_builder_create(pool_bottom_info(re->p), &re->b, re->err);
}

static int r_begin_device(struct emitter *e, const struct emit_device *d)
{
	struct restore_emitter *re = to_restore(e);

	memset(&re->dev, 0, sizeof(re->dev));
	re->dev.dev_id = d->dev_id;
	re->dev.transaction_id = d->transaction_id;
	re->dev.creation_time = d->creation_time;
	re->dev.snapshotted_time = d->snap_time;
	return start_tree(re);
}

static int r_map_run(struct emitter *e, uint64_t origin, uint64_t data,
		     uint64_t len, uint32_t time)
{
	struct restore_emitter *re = to_restore(e);
	struct space_map *dsm = re->p->data_sm;
	uint8_t v[8];
	int r;

	/* each leaf entry holds a reference to its data block */
	if (data > sm_nr_blocks(dsm) || len > sm_nr_blocks(dsm) - data)
		return pd_err_set(re->err, -EINVAL,
				  "mapping beyond end of data device (%" PRIu64 " >= %" PRIu64 ")",
				  (data + len - 1), sm_nr_blocks(dsm));
	r = sm_inc_range(dsm, data, len);
	if (r)
		return pd_err_set(re->err, r, "data space map: %s", strerror(-r));
	for (uint64_t i = 0; i < len; i++) {
		store_le64(v, block_time_pack(data + i, time));
		r = btree_builder_push(re->b, origin + i, v, re->err);
		if (r)
			return r;
	}
	re->count += len;
	return 0;
}

static int finish_tree(struct restore_emitter *re, uint64_t *root)
{
	int r = btree_builder_finish(re->b, root, re->err);

	btree_builder_destroy(re->b);
	re->b = NULL;
	return r;
}

static int r_end_device(struct emitter *e)
{
	struct restore_emitter *re = to_restore(e);
	uint64_t root;
	int r;

	r = finish_tree(re, &root);
	if (r)
		return r;
	/* v0.9 recomputes mapped_blocks; 1.x's checker compares it */
	re->dev.mapped_blocks = re->count;
	r = pool_set_root(re->p, re->dev.dev_id, root, re->err);
	if (!r)
		r = pool_set_details(re->p, &re->dev, re->err);
	return r;
}

static int r_begin_def(struct emitter *e, const char *name)
{
	struct restore_emitter *re = to_restore(e);

	re->cur_def = def_add(&re->defs, name);
	if (!re->cur_def)
		return pd_err_set(re->err, -ENOMEM, "out of memory");
	re->in_def = true;
	return start_tree(re);
}

static int r_end_def(struct emitter *e)
{
	struct restore_emitter *re = to_restore(e);
	struct def *d = re->cur_def;

	re->in_def = false;
	d->nr_mappings = re->count;
	return finish_tree(re, &d->root);
}

/* Splices every leaf of a shared section into the device being built. */
static int r_ref(struct emitter *e, const char *name)
{
	struct restore_emitter *re = to_restore(e);
	struct def *d = def_find(&re->defs, name);
	struct btree_cursor *c;
	uint64_t count = re->count;
	int r;

	if (!d)
		return pd_err_set(re->err, -EINVAL, "reference to unknown def '%s'", name);
	r = btree_cursor_create(re->p->bm, d->root, THIN_MAPPING_VALUE_SIZE, &c, re->err);
	if (r)
		return r;
	while (!(r = btree_cursor_next_leaf(c, re->err))) {
		uint64_t leaf = btree_cursor_leaf_block(c);

		/* the device's tree holds its own reference to the shared leaf */
		r = tm_inc(re->p->tm, leaf);
		if (!r)
			r = btree_builder_push_leaf(re->b, leaf, re->err);
		if (r)
			break;
	}
	btree_cursor_destroy(c);
	if (r != -ENODATA)
		return r;
	re->count = count + d->nr_mappings;
	return 0;
}

static int r_end_superblock(struct emitter *e)
{
	struct restore_emitter *re = to_restore(e);
	int r;

	/* the sections' own trees go; their leaves live on in the devices */
	for (uint64_t i = 0; i < re->defs.nr; i++) {
		r = btree_delete(pool_bottom_info(re->p), re->defs.defs[i].root, re->err);
		if (r)
			return r;
	}
	return pool_commit(re->p, re->err);
}

static void r_destroy(struct emitter *e)
{
	struct restore_emitter *re = to_restore(e);

	btree_builder_destroy(re->b);
	def_table_free(&re->defs);
	pool_destroy(re->p);
	free(re);
}

static const struct emitter_ops restore_ops = {
	.begin_superblock = r_begin_superblock,
	.end_superblock = r_end_superblock,
	.begin_device = r_begin_device,
	.end_device = r_end_device,
	.map_run = r_map_run,
	.destroy = r_destroy,
	.begin_def = r_begin_def,
	.end_def = r_end_def,
	.ref = r_ref,
};

int restore_emitter_create(struct io_engine *io, const struct restore_opts *o,
			   struct pd_err *err, struct emitter **out)
{
	struct restore_emitter *re = calloc(1, sizeof(*re));

	if (!re)
		return pd_err_set(err, -ENOMEM, "out of memory");
	re->e.ops = &restore_ops;
	re->io = io;
	re->o = o;
	re->err = err;
	*out = &re->e;
	return 0;
}

/*----------------------------------------------------------------
 * Counting
 *--------------------------------------------------------------*/

struct counting_emitter {
	struct emitter e;
	struct restore_estimate *est;
	uint64_t count;			/* the device's (or section's) own mappings */
	uint64_t loose;			/* ... since the last reference */
	uint64_t refs;			/* sections the device refers to */
	uint64_t own_leaves;		/* leaves of its own, references between them */
	uint64_t shared_leaves;		/* the sections' leaves it points at */
	struct def_table defs;		/* nr_mappings: each section's size */
	struct def *cur_def;
};

#define to_counting(x) ((struct counting_emitter *)(x))

/* Entries of a full node: mapping trees (252), details (126), data space map index (168). */
#define MAPPING_MAX btree_max_entries(THIN_MAPPING_VALUE_SIZE)
#define DETAILS_MAX btree_max_entries(THIN_DETAILS_VALUE_SIZE)
#define SM_INDEX_MAX btree_max_entries(SM_INDEX_ENTRY_SIZE)

/* Blocks of a tree of n entries, nodes of max entries, at least half full. */
static uint64_t tree_blocks(uint64_t n, uint64_t max)
{
	return btree_blocks_for(n, max / 2);
}

static int c_begin_superblock(struct emitter *e, const struct emit_superblock *sb)
{
	to_counting(e)->est->nr_data_blocks = sb->nr_data_blocks;
	return 0;
}

static int c_end_superblock(struct emitter *e)
{
	(void)e;
	return 0;
}

static int c_begin_device(struct emitter *e, const struct emit_device *d)
{
	struct counting_emitter *c = to_counting(e);

	(void)d;
	c->count = c->loose = c->refs = c->own_leaves = c->shared_leaves = 0;
	c->est->nr_devices++;
	return 0;
}

/*
 * A device that refers to sections: its own leaves, full from the bulk
 * loader, group by group between the references (with the entries of
 * any section leaf the builder copies rather than shares); then the
 * internal nodes over those and the shared leaves.
 */
static int c_end_device(struct emitter *e)
{
	struct counting_emitter *c = to_counting(e);
	uint64_t ptrs;

	if (!c->refs) {
		c->est->tree_blocks += tree_blocks(c->count, MAPPING_MAX);
		return 0;
	}
	c->own_leaves += (c->loose + MAPPING_MAX - 1) / MAPPING_MAX;
	ptrs = c->own_leaves + c->shared_leaves;
	c->est->tree_blocks += c->own_leaves + (ptrs > 1 ? tree_blocks(ptrs, MAPPING_MAX) : 0);
	return 0;
}

static int c_map_run(struct emitter *e, uint64_t origin, uint64_t data,
		     uint64_t len, uint32_t time)
{
	struct counting_emitter *c = to_counting(e);

	(void)origin;
	(void)data;
	(void)time;
	c->count += len;
	c->loose += len;
	c->est->nr_mappings += len;
	return 0;
}

static int c_begin_def(struct emitter *e, const char *name)
{
	struct counting_emitter *c = to_counting(e);

	c->cur_def = def_add(&c->defs, name);
	if (!c->cur_def)
		return -ENOMEM;
	c->count = 0;
	return 0;
}

static int c_end_def(struct emitter *e)
{
	struct counting_emitter *c = to_counting(e);

	c->cur_def->nr_mappings = c->count;
	c->est->tree_blocks += btree_blocks_for(c->count, MAPPING_MAX);
	return 0;
}

/*
 * A reference splices the section's leaves (full but maybe the last)
 * into the device.  btree_builder_push_leaf copies a leaf that holds
 * under a third of a node: such a section's entries join the device's
 * own.  It may also copy a larger section's first leaf into the few
 * entries of the device's own before it; counting that leaf as shared
 * and the entries before it as a group of their own is still an upper
 * bound (the copy adds at most one leaf to the group).
 */
static int c_ref(struct emitter *e, const char *name)
{
	struct counting_emitter *c = to_counting(e);
	struct def *d = def_find(&c->defs, name);
	uint64_t n = d ? d->nr_mappings : 0;

	if (n < MAPPING_MAX / 3) {
		c->loose += n;
	} else {
		c->own_leaves += (c->loose + MAPPING_MAX - 1) / MAPPING_MAX;
		c->loose = 0;
		c->shared_leaves += (n + MAPPING_MAX - 1) / MAPPING_MAX;
	}
	c->refs++;
	return 0;
}

static void c_destroy(struct emitter *e)
{
	struct counting_emitter *c = to_counting(e);

	def_table_free(&c->defs);
	free(c);
}

static const struct emitter_ops counting_ops = {
	.begin_superblock = c_begin_superblock,
	.end_superblock = c_end_superblock,
	.begin_device = c_begin_device,
	.end_device = c_end_device,
	.map_run = c_map_run,
	.destroy = c_destroy,
	.begin_def = c_begin_def,
	.end_def = c_end_def,
	.ref = c_ref,
};

int counting_emitter_create(struct restore_estimate *est, struct emitter **out)
{
	struct counting_emitter *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	memset(est, 0, sizeof(*est));
	c->e.ops = &counting_ops;
	c->est = est;
	*out = &c->e;
	return 0;
}

static uint64_t blocks_needed(const struct restore_estimate *est, uint64_t nr_md_blocks)
{
	uint64_t data_bitmaps = est->nr_data_blocks / SM_ENTRIES_PER_BITMAP +
				(est->nr_data_blocks % SM_ENTRIES_PER_BITMAP ? 1u : 0u);
	uint64_t md_bitmaps = (nr_md_blocks + SM_ENTRIES_PER_BITMAP - 1) /
			      SM_ENTRIES_PER_BITMAP;
	uint64_t n = 1;					/* superblock */

	n += est->tree_blocks;
	n += tree_blocks(est->nr_devices, DETAILS_MAX);		/* details */
	n += tree_blocks(est->nr_devices, MAPPING_MAX);		/* top level */
	n += data_bitmaps + tree_blocks(data_bitmaps, SM_INDEX_MAX) + 1;
	n += md_bitmaps + 1 + 1;			/* index block, ref-count root */
	/* nodes shadowed again while the trees grow, counts of 3 and more */
	n += n / 64 + 4;
	return n;
}

uint64_t restore_blocks_needed(const struct restore_estimate *est, uint64_t nr_md_blocks)
{
	uint64_t need = blocks_needed(est, nr_md_blocks);

	/*
	 * A smaller device has fewer metadata bitmaps: when this one is too
	 * small, say what a device just big enough needs (a fixed point: the
	 * bitmaps of that size are counted too).
	 */
	if (need > nr_md_blocks) {
		uint64_t n = need;

		while ((need = blocks_needed(est, n)) > n)
			n = need;
		need = n;
	}
	return need;
}
