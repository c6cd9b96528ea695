/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "era-md.h"
#include "persistent-data/array.h"
#include "persistent-data/bitset.h"
#include "persistent-data/btree-write.h"
#include "persistent-data/checksum.h"
#include "persistent-data/pd-store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*----------------------------------------------------------------
 * Superblock
 *--------------------------------------------------------------*/

static int sb_check(const struct bm_validator *v, const void *data, uint64_t location,
		    struct pd_err *err)
{
	const struct era_sb_disk *d = data;

	(void)v;
	if (block_csum(data, ERA_SB_CSUM_XOR) != block_stored_csum(data))
		return pd_err_set(err, -EILSEQ, "bad checksum in superblock");
	if (le64_to_cpu(d->blocknr) != location)
		return pd_err_set(err, -EILSEQ, "superblock has the wrong blocknr (%" PRIu64 ")",
				  le64_to_cpu(d->blocknr));
	if (le64_to_cpu(d->magic) != ERA_SB_MAGIC)
		return pd_err_set(err, -EILSEQ, "bad magic in superblock");
	if (le32_to_cpu(d->version) != 1)
		return pd_err_set(err, -EILSEQ, "unknown metadata version %u", le32_to_cpu(d->version));
	return 0;
}

static void sb_prepare(const struct bm_validator *v, void *data, uint64_t location)
{
	struct era_sb_disk *d = data;

	(void)v;
	d->blocknr = cpu_to_le64(location);
	block_set_csum(data, ERA_SB_CSUM_XOR);
}

const struct bm_validator era_sb_validator = {
	.name = "era superblock", .check = sb_check, .prepare_for_write = sb_prepare,
};

void era_sb_decode(const void *block, struct era_sb *sb)
{
	const struct era_sb_disk *d = block;

	memset(sb, 0, sizeof(*sb));
	sb->flags = le32_to_cpu(d->flags);
	memcpy(sb->uuid, d->uuid, 16);
	sb->version = le32_to_cpu(d->version);
	memcpy(sb->metadata_sm_root, d->metadata_sm_root, SM_ROOT_BLOB_SIZE);
	sb->data_block_size = le32_to_cpu(d->data_block_size);
	sb->metadata_block_size = le32_to_cpu(d->metadata_block_size);
	sb->nr_blocks = le32_to_cpu(d->nr_blocks);
	sb->current_era = le32_to_cpu(d->current_era);
	sb->current_nr_bits = le32_to_cpu(d->current_writeset.nr_bits);
	sb->current_root = le64_to_cpu(d->current_writeset.root);
	sb->writeset_tree_root = le64_to_cpu(d->writeset_tree_root);
	sb->era_array_root = le64_to_cpu(d->era_array_root);
	sb->metadata_snap = le64_to_cpu(d->metadata_snap);
}

void era_sb_encode(const struct era_sb *sb, void *block, uint64_t location)
{
	struct era_sb_disk *d = block;

	memset(block, 0, MD_BLOCK_SIZE);
	d->flags = cpu_to_le32(sb->flags);
	memcpy(d->uuid, sb->uuid, 16);
	d->magic = cpu_to_le64(ERA_SB_MAGIC);
	d->version = cpu_to_le32(1);
	memcpy(d->metadata_sm_root, sb->metadata_sm_root, SM_ROOT_BLOB_SIZE);
	d->data_block_size = cpu_to_le32(sb->data_block_size);
	d->metadata_block_size = cpu_to_le32(ERA_METADATA_BLOCK_SECTORS);
	d->nr_blocks = cpu_to_le32(sb->nr_blocks);
	d->current_era = cpu_to_le32(sb->current_era);
	d->current_writeset.nr_bits = cpu_to_le32(sb->current_nr_bits);
	d->current_writeset.root = cpu_to_le64(sb->current_root);
	d->writeset_tree_root = cpu_to_le64(sb->writeset_tree_root);
	d->era_array_root = cpu_to_le64(sb->era_array_root);
	d->metadata_snap = cpu_to_le64(sb->metadata_snap);
	sb_prepare(NULL, block, location);
}

static int check_fields(const struct era_sb *sb, uint64_t nr_md, bool snapshot,
			struct pd_err *err)
{
	if (sb->writeset_tree_root >= nr_md || !sb->writeset_tree_root)
		return pd_err_set(err, -EILSEQ, "writeset tree root %" PRIu64 " out of bounds",
				  sb->writeset_tree_root);
	if (sb->era_array_root >= nr_md || !sb->era_array_root)
		return pd_err_set(err, -EILSEQ, "era array root %" PRIu64 " out of bounds",
				  sb->era_array_root);
	if (snapshot)
		return 0;
	if (sb->metadata_block_size != ERA_METADATA_BLOCK_SECTORS)
		return pd_err_set(err, -EILSEQ, "bad metadata block size %u", sb->metadata_block_size);
	if (sb->current_root >= nr_md)
		return pd_err_set(err, -EILSEQ, "current writeset root %" PRIu64 " out of bounds",
				  sb->current_root);
	if (sb->metadata_snap >= nr_md)
		return pd_err_set(err, -EILSEQ, "metadata snapshot %" PRIu64 " out of bounds",
				  sb->metadata_snap);
	if (!sb->data_block_size)
		return pd_err_set(err, -EILSEQ, "data block size is 0");
	return 0;
}

int era_md_open(const char *path, struct era_md **out, struct pd_err *err)
{
	struct era_md *md = calloc(1, sizeof(*md));
	uint8_t *block = io_alloc_block();
	struct sm_root smr;
	int r;

	if (!md || !block) {
		free(md);
		free(block);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	r = pd_store_read_sb(path, false, false, &era_sb_validator, &md->io, &md->bm, block, err);
	if (!r)
		era_sb_decode(block, &md->sb);
	free(block);
	if (r)
		goto bad;
	sm_root_decode(md->sb.metadata_sm_root, &smr);
	if (smr.nr_blocks > md->io->nr_blocks || !smr.nr_blocks ||
	    smr.bitmap_root >= smr.nr_blocks || smr.ref_count_root >= smr.nr_blocks) {
		r = pd_err_set(err, -EILSEQ, "bad metadata space map root");
		goto bad;
	}
	md->nr_md_blocks = smr.nr_blocks;
	walk_cap_init(&md->budget, bm_nr_blocks(md->bm));
	r = check_fields(&md->sb, md->nr_md_blocks, false, err);
	if (r)
		goto bad;
	*out = md;
	return 0;
bad:
	era_md_close(md);
	return r;
}

void era_md_close(struct era_md *md)
{
	if (!md)
		return;
	bm_destroy(md->bm);
	io_engine_destroy(md->io);
	free(md);
}

int era_md_use_snapshot(struct era_md *md, struct pd_err *err)
{
	struct bm_block *blk;
	struct era_sb snap;
	int r;

	if (!md->sb.metadata_snap)
		return pd_err_set(err, -ENODATA, "no metadata snapshot taken.");
	r = bm_read_lock(md->bm, md->sb.metadata_snap, &era_sb_validator, &blk, err);
	if (r)
		return r;
	era_sb_decode(bm_block_data(blk), &snap);
	bm_unlock(blk);
	r = check_fields(&snap, md->nr_md_blocks, true, err);
	if (r)
		return r;
	md->sb.writeset_tree_root = snap.writeset_tree_root;
	md->sb.era_array_root = snap.era_array_root;
	return 0;
}

/*----------------------------------------------------------------
 * Walks
 *
 * The walks of one command share md->budget: the structures of one
 * era metadata view (the writeset tree, each writeset's bitset, the
 * era array) never share a block, so together they reach at most the
 * device's blocks.  Reaching more means a block reached twice (many
 * writesets naming one bitset, say), and ends the command instead of
 * letting its cost grow as the writeset count times the bitset size.
 *--------------------------------------------------------------*/

static int budget_visit(struct era_md *md, uint64_t block, struct pd_err *err)
{
	return walk_cap_visit(&md->budget, "era metadata", block, err);
}

struct ws_collect {
	struct era_md *md;
	struct era_writeset *ws;
	uint64_t nr, cap;
	int damaged;
	struct pd_err *err;
};

static int ws_node(void *ctx, const struct btree_node_info *n)
{
	struct ws_collect *c = ctx;

	return budget_visit(c->md, n->block, c->err);
}

static int ws_leaf(void *ctx, const struct btree_node_info *n)
{
	struct ws_collect *c = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		const struct era_writeset_disk *d = node_value_c(n->data, i, 12);
		uint64_t era = node_key(n->data, i);

		if (c->nr == c->cap) {
			uint64_t cap = c->cap ? c->cap * 2 : 16;
			struct era_writeset *ws = realloc(c->ws, cap * sizeof(*ws));

			if (!ws)
				return pd_err_set(c->err, -ENOMEM, "out of memory");
			c->ws = ws;
			c->cap = cap;
		}
		if (era > UINT32_MAX) {
			if (!c->damaged++)
				pd_err_set(c->err, -EILSEQ, "writeset tree: era %" PRIu64 " too large", era);
			continue;
		}
		c->ws[c->nr++] = (struct era_writeset) {
			.era = (uint32_t)era,
			.nr_bits = le32_to_cpu(d->nr_bits),
			.root = le64_to_cpu(d->root),
		};
	}
	return 0;
}

static void ws_damage(void *ctx, const struct btree_damage *d)
{
	struct ws_collect *c = ctx;

	if (!c->damaged++)
		pd_err_set(c->err, -EILSEQ, "writeset tree: %s", d->msg);
}

static int collect_writesets(struct era_md *md, bool repair, struct era_writeset **out,
			     uint64_t *nr, struct pd_err *err)
{
	struct ws_collect c = { .md = md, .err = err };
	struct btree_walk_opts o = { .shape = { .value_size = 12 } };
	struct btree_walk_ops ops = { .node = ws_node, .leaf = ws_leaf, .damage = ws_damage };
	int r;

	r = btree_walk(md->bm, md->sb.writeset_tree_root, &o, &ops, &c, err);
	if (!r && c.damaged && !repair)
		r = -EILSEQ;
	if (r) {
		free(c.ws);
		return r;
	}
	*out = c.ws;
	*nr = c.nr;
	return 0;
}

/*
 * One walk of a bitset or of the era array: its blocks count against
 * the command's budget; in strict mode the first damage is the error.
 */
struct ewalk {
	struct era_md *md;
	bool repair;
	bool damaged;
	struct pd_err *err;
	const struct era_visitor *v;	/* the physical dump */
	struct era_marks *marks;	/* the era array, combined */
};

static int ew_node(void *ctx, const struct btree_node_info *n)
{
	struct ewalk *w = ctx;

	return budget_visit(w->md, n->block, w->err);
}

static int ew_ablock(void *ctx, uint64_t index, uint64_t block)
{
	struct ewalk *w = ctx;

	(void)index;
	return budget_visit(w->md, block, w->err);
}

static void ew_damage(void *ctx, uint64_t lo, uint64_t hi, const char *msg)
{
	struct ewalk *w = ctx;

	(void)lo;
	(void)hi;
	if (!w->damaged && !w->repair)
		pd_err_set(w->err, -EILSEQ, "%s", msg);
	w->damaged = true;
}

static int ew_bits(void *ctx, uint64_t first, uint64_t nr, const void *words)
{
	struct ewalk *w = ctx;

	if (w->damaged && !w->repair)
		return -EILSEQ;
	if (!w->v)
		return 0;
	for (uint64_t i = 0; i < nr; i++) {
		bool bit = (load_le64((const uint8_t *)words + 8 * (i / 64)) >> (i % 64)) & 1;
		int r = w->v->writeset_bit(w->v->ctx, (uint32_t)(first + i), bit);

		if (r)
			return r;
	}
	return 0;
}

/*
 * One writeset's bitset, its bits to w->v (if any).  count: its blocks
 * count against the budget (the first walk of each writeset).
 */
static int walk_writeset(struct ewalk *w, const struct era_writeset *ws, bool count)
{
	struct bitset_walk_ops bo = {
		.node = count ? ew_node : NULL, .ablock = count ? ew_ablock : NULL,
		.bits = ew_bits, .damage = ew_damage,
	};
	int r;

	w->damaged = false;
	r = bitset_walk(w->md->bm, ws->root, ws->nr_bits, &bo, w, w->err);
	if (!r && w->damaged && !w->repair)
		r = -EILSEQ;
	return r;
}

/*
 * The archived writesets, each bitset checked and counted against the
 * budget before any output depends on them: a hostile tree ends here,
 * in time bounded by the device size, with nothing written.
 */
static int open_writesets(struct era_md *md, bool repair, struct era_writeset **out,
			  uint64_t *nr, struct pd_err *err)
{
	struct ewalk w = { .md = md, .repair = repair, .err = err };
	int r = collect_writesets(md, repair, out, nr, err);

	for (uint64_t k = 0; !r && k < *nr; k++)
		r = walk_writeset(&w, &(*out)[k], true);
	if (r && *out) {
		free(*out);
		*out = NULL;
	}
	return r;
}

/*----------------------------------------------------------------
 * The era array combined with the archived writesets
 *--------------------------------------------------------------*/

struct era_marks {
	struct era_md *md;
	bool repair;
	struct era_writeset *ws;	/* most bits first */
	uint64_t nr_ws;
	struct array_reader *reader;	/* one, pointed at each writeset in turn */
	uint64_t *newest;		/* per entry of an array block: 0, or 1 + an era */
	era_block_fn fn;
	void *ctx;
};

static int most_bits_first(const void *a, const void *b)
{
	const struct era_writeset *x = a, *y = b;

	return x->nr_bits < y->nr_bits ? 1 : x->nr_bits > y->nr_bits ? -1 : 0;
}

void era_marks_close(struct era_marks *m)
{
	if (!m)
		return;
	array_reader_destroy(m->reader);
	free(m->newest);
	free(m->ws);
	free(m);
}

int era_marks_open(struct era_md *md, bool repair, struct era_marks **out, struct pd_err *err)
{
	struct era_marks *m = calloc(1, sizeof(*m));
	int r;

	pd_err_clear(err);
	if (!m || !(m->newest = calloc(array_max_entries(4), sizeof(*m->newest)))) {
		era_marks_close(m);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	m->md = md;
	m->repair = repair;
	r = open_writesets(md, repair, &m->ws, &m->nr_ws, err);
	if (!r)
		r = array_reader_create(md->bm, 0, 8, &m->reader, err);
	if (r) {
		era_marks_close(m);
		return r;
	}
	if (m->nr_ws)
		qsort(m->ws, m->nr_ws, sizeof(*m->ws), most_bits_first);
	*out = m;
	return 0;
}

/* Raises newest[] by the bits of ws in [first, end). */
static int mark_writeset(struct era_marks *m, const struct era_writeset *ws, uint64_t first,
			 uint64_t end, struct pd_err *err)
{
	array_reader_reset(m->reader, ws->root);
	for (uint64_t base = first & ~63ull; base < end; base += 64) {
		uint8_t le[8];
		struct pd_err e;
		uint64_t word;

		if (array_reader_get(m->reader, base / 64, le, &e)) {
			if (!m->repair) {
				*err = e;
				return -EILSEQ;
			}
			continue;
		}
		word = load_le64(le);
		if (base < first)
			word &= ~0ull << (first - base);
		if (end - base < 64)
			word &= (1ull << (end - base)) - 1;
		for (; word; word &= word - 1) {
			uint64_t *n = &m->newest[base + (uint64_t)__builtin_ctzll(word) - first];

			if (*n < ws->era + 1ull)
				*n = ws->era + 1ull;
		}
	}
	return 0;
}

static int marks_values(void *ctx, uint64_t first, uint32_t nr, const void *values)
{
	struct ewalk *w = ctx;
	struct era_marks *m = w->marks;
	int r = 0;

	if (w->damaged && !w->repair)
		return -EILSEQ;
	memset(m->newest, 0, nr * sizeof(*m->newest));
	/* only the writesets long enough to reach this block */
	for (uint64_t k = 0; !r && k < m->nr_ws && m->ws[k].nr_bits > first; k++)
		r = mark_writeset(m, &m->ws[k], first,
				  first + nr < m->ws[k].nr_bits ? first + nr : m->ws[k].nr_bits, w->err);
	for (uint32_t i = 0; !r && i < nr; i++)
		r = m->fn(m->ctx, (uint32_t)(first + i), load_le32((const uint8_t *)values + 4u * i),
			  m->newest[i] != 0, m->newest[i] ? (uint32_t)(m->newest[i] - 1) : 0);
	return r;
}

int era_marks_walk(struct era_marks *m, era_block_fn fn, void *ctx, struct pd_err *err)
{
	struct ewalk w = { .md = m->md, .repair = m->repair, .err = err, .marks = m };
	struct array_walk_ops ao = {
		.node = ew_node, .ablock = ew_ablock, .values = marks_values, .damage = ew_damage,
	};
	int r;

	m->fn = fn;
	m->ctx = ctx;
	r = array_walk(m->md->bm, m->md->sb.era_array_root, 4, m->md->sb.nr_blocks, &ao, &w, err);
	if (!r && w.damaged && !m->repair)
		r = -EILSEQ;
	return r;
}

/*----------------------------------------------------------------
 * Dumps
 *--------------------------------------------------------------*/

static int logical_era(void *ctx, uint32_t block, uint32_t era, bool marked, uint32_t ws_era)
{
	const struct era_visitor *v = ctx;

	return v->era(v->ctx, block, marked && ws_era > era ? ws_era : era);
}

static int walk_logical(struct era_md *md, bool repair, const struct era_visitor *v,
			struct pd_err *err)
{
	struct era_marks *m;
	int r = era_marks_open(md, repair, &m, err);

	if (r)
		return r;
	r = v->begin(v->ctx, &md->sb);
	if (!r)
		r = v->era_array_begin(v->ctx);
	if (!r)
		r = era_marks_walk(m, logical_era, (void *)v, err);
	if (!r)
		r = v->era_array_end(v->ctx);
	if (!r)
		r = v->end(v->ctx);
	era_marks_close(m);
	return r;
}

static int ew_eras(void *ctx, uint64_t first, uint32_t nr, const void *values)
{
	struct ewalk *w = ctx;

	if (w->damaged && !w->repair)
		return -EILSEQ;
	for (uint32_t i = 0; i < nr; i++) {
		int r = w->v->era(w->v->ctx, (uint32_t)(first + i),
				  load_le32((const uint8_t *)values + 4u * i));

		if (r)
			return r;
	}
	return 0;
}

static int walk_physical(struct era_md *md, bool repair, const struct era_visitor *v,
			 struct pd_err *err)
{
	struct ewalk w = { .md = md, .repair = repair, .err = err, .v = v };
	struct array_walk_ops ao = {
		.node = ew_node, .ablock = ew_ablock, .values = ew_eras, .damage = ew_damage,
	};
	struct era_writeset *ws = NULL;
	uint64_t nr_ws = 0;
	int r;

	r = open_writesets(md, repair, &ws, &nr_ws, err);
	if (r)
		return r;
	r = v->begin(v->ctx, &md->sb);
	for (uint64_t k = 0; !r && k < nr_ws; k++) {
		r = v->writeset_begin(v->ctx, ws[k].era, ws[k].nr_bits);
		if (!r)
			r = walk_writeset(&w, &ws[k], false);
		if (!r)
			r = v->writeset_end(v->ctx);
	}
	if (!r)
		r = v->era_array_begin(v->ctx);
	if (!r) {
		w.damaged = false;
		r = array_walk(md->bm, md->sb.era_array_root, 4, md->sb.nr_blocks, &ao, &w, err);
		if (!r && w.damaged && !repair)
			r = -EILSEQ;
	}
	if (!r)
		r = v->era_array_end(v->ctx);
	if (!r)
		r = v->end(v->ctx);
	free(ws);
	return r;
}

int era_md_walk(struct era_md *md, bool logical, bool repair, const struct era_visitor *v,
		struct pd_err *err)
{
	pd_err_clear(err);
	return logical ? walk_logical(md, repair, v, err) : walk_physical(md, repair, v, err);
}

/*----------------------------------------------------------------
 * Writer
 *--------------------------------------------------------------*/

struct era_writer {
	struct pd_store *store;
	struct era_sb sb;
	struct btree_info ws_info;
	struct btree_builder *ws_tree;
	struct bitset_builder *bits;
	struct array_builder *eras;
	uint32_t ws_era, ws_nr_bits;
	bool have_ws;
	bool in_ws;
	struct pd_err own_err;
	struct pd_err *err;
};

int era_writer_create(struct io_engine *io, struct era_writer **out, struct pd_err *err)
{
	struct era_writer *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return pd_err_set(err, -ENOMEM, "out of memory");
	w->err = &w->own_err;
	r = pd_store_create(io, io->nr_blocks, 0, &w->store, err);
	if (!r) {
		w->ws_info = (struct btree_info) { .tm = w->store->tm };
		w->ws_info.vt.size = 12;
		r = btree_builder_create(&w->ws_info, &w->ws_tree, err);
	}
	if (!r)
		r = array_builder_create(w->store->tm, 4, &w->eras, err);
	if (r) {
		era_writer_destroy(w);
		return r;
	}
	*out = w;
	return 0;
}

void era_writer_destroy(struct era_writer *w)
{
	if (!w)
		return;
	btree_builder_destroy(w->ws_tree);
	bitset_builder_destroy(w->bits);
	array_builder_destroy(w->eras);
	pd_store_destroy(w->store);
	free(w);
}

struct pd_err *era_writer_err(struct era_writer *w)
{
	return w->err;
}

static int wr_begin(void *ctx, const struct era_sb *sb)
{
	struct era_writer *w = ctx;

	if (!sb->data_block_size)
		return pd_err_set(w->err, -EINVAL, "invalid block size");
	w->sb = *sb;
	return 0;
}

static int wr_ws_begin(void *ctx, uint32_t era, uint32_t nr_bits)
{
	struct era_writer *w = ctx;

	if (w->in_ws)
		return pd_err_set(w->err, -EINVAL, "writeset inside a writeset");
	if (w->have_ws && era <= w->ws_era)
		return pd_err_set(w->err, -EINVAL, "writeset of era %u out of order", era);
	/* the kernel archives a writeset as the era moves on: never a later one */
	if (era > w->sb.current_era)
		return pd_err_set(w->err, -EINVAL, "writeset of era %u is past the current era %u",
				  era, w->sb.current_era);
	if (nr_bits > w->sb.nr_blocks)
		return pd_err_set(w->err, -EINVAL, "writeset has more bits (%u) than blocks (%u)",
				  nr_bits, w->sb.nr_blocks);
	w->ws_era = era;
	w->ws_nr_bits = nr_bits;
	w->have_ws = w->in_ws = true;
	return bitset_builder_create(w->store->tm, &w->bits, w->err);
}

static int wr_ws_bit(void *ctx, uint32_t bit, bool value)
{
	struct era_writer *w = ctx;
	uint64_t have;
	int r;

	if (!w->in_ws)
		return pd_err_set(w->err, -EINVAL, "bit outside a writeset");
	have = bitset_builder_size(w->bits);
	if (bit >= w->ws_nr_bits)
		return pd_err_set(w->err, -EINVAL, "bit %u beyond the writeset (%u bits)", bit,
				  w->ws_nr_bits);
	if (bit < have)
		return pd_err_set(w->err, -EINVAL, "bit %u out of order", bit);
	r = bitset_builder_push_n(w->bits, false, bit - have, w->err);
	return r ? r : bitset_builder_push(w->bits, value, w->err);
}

static int wr_ws_end(void *ctx)
{
	struct era_writer *w = ctx;
	struct era_writeset_disk d;
	uint64_t root;
	int r;

	r = bitset_builder_push_n(w->bits, false, w->ws_nr_bits - bitset_builder_size(w->bits),
				  w->err);
	if (!r)
		r = bitset_builder_finish(w->bits, &root, w->err);
	bitset_builder_destroy(w->bits);
	w->bits = NULL;
	w->in_ws = false;
	if (r)
		return r;
	d.nr_bits = cpu_to_le32(w->ws_nr_bits);
	d.root = cpu_to_le64(root);
	return btree_builder_push(w->ws_tree, w->ws_era, &d, w->err);
}

static int wr_array_begin(void *ctx)
{
	(void)ctx;
	return 0;
}

static int wr_era(void *ctx, uint32_t block, uint32_t era)
{
	struct era_writer *w = ctx;
	uint8_t le[4] = { 0 };
	uint64_t have = array_builder_size(w->eras);
	int r;

	if (block >= w->sb.nr_blocks)
		return pd_err_set(w->err, -EINVAL, "block %u beyond the end (%u blocks)", block,
				  w->sb.nr_blocks);
	if (block < have)
		return pd_err_set(w->err, -EINVAL, "era of block %u out of order", block);
	if (era > w->sb.current_era)
		return pd_err_set(w->err, -EINVAL, "block %u has era %u, past the current era %u",
				  block, era, w->sb.current_era);
	r = array_builder_push_n(w->eras, le, block - have, w->err);
	store_le32(le, era);
	return r ? r : array_builder_push(w->eras, le, w->err);
}

static void wr_encode(void *ctx, void *block, const void *blob)
{
	struct era_writer *w = ctx;

	memcpy(w->sb.metadata_sm_root, blob, SM_ROOT_BLOB_SIZE);
	era_sb_encode(&w->sb, block, 0);
}

static int wr_end(void *ctx)
{
	struct era_writer *w = ctx;
	uint8_t zero[4] = { 0 };
	int r;

	if (w->in_ws)
		return pd_err_set(w->err, -EINVAL, "unterminated writeset");
	r = array_builder_push_n(w->eras, zero, w->sb.nr_blocks - array_builder_size(w->eras),
				 w->err);
	if (!r)
		r = array_builder_finish(w->eras, &w->sb.era_array_root, w->err);
	if (!r)
		r = btree_builder_finish(w->ws_tree, &w->sb.writeset_tree_root, w->err);
	if (r)
		return r;
	w->sb.flags = 0;
	w->sb.current_nr_bits = 0;
	w->sb.current_root = 0;
	w->sb.metadata_snap = 0;
	w->sb.metadata_block_size = ERA_METADATA_BLOCK_SECTORS;
	return pd_store_commit(w->store, wr_encode, w, w->err);
}

void era_writer_visitor(struct era_writer *w, struct era_visitor *v)
{
	v->ctx = w;
	v->begin = wr_begin;
	v->writeset_begin = wr_ws_begin;
	v->writeset_bit = wr_ws_bit;
	v->writeset_end = wr_ws_end;
	v->era_array_begin = wr_array_begin;
	v->era = wr_era;
	v->era_array_end = wr_array_begin;
	v->end = wr_end;
}
