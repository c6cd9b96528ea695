/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The btree walk, cursor and lookup over an in-memory device: the input
 * is a metadata image (checksums fixed); the trees walked are those the
 * superblock names, both levels of the mapping tree, as every reader
 * does.  The walk must end (bounded depth, no endless revisits) and read
 * only inside the device.
 */
#include "fuzz-common.h"
#include "persistent-data/btree.h"
#include "thin-provisioning/superblock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct walk_ctx {
	struct bm *bm;
	uint64_t nodes, leaves, entries;
	uint64_t bottoms[16];
	unsigned nr_bottoms;
};

static int node_cb(void *ctx, const struct btree_node_info *n)
{
	struct walk_ctx *w = ctx;

	/* a generous bound: the walk must stay far below it */
	if (++w->nodes > 1000000)
		abort();
	(void)n;
	return BTREE_WALK_CONTINUE;
}

static int leaf_cb(void *ctx, const struct btree_node_info *n)
{
	struct walk_ctx *w = ctx;

	w->leaves++;
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		w->entries++;
		if (w->nr_bottoms < 16)
			w->bottoms[w->nr_bottoms++] =
				load_le64(node_value_c(n->data, i, 8));
	}
	return 0;
}

static void damage_cb(void *ctx, const struct btree_damage *d)
{
	(void)ctx;
	(void)d;
}

static void walk(struct walk_ctx *w, uint64_t root, uint32_t vs, bool collect)
{
	struct btree_walk_opts o = { .shape.value_size = vs, .check_fill = true, .prefetch = true };
	struct btree_walk_ops ops = { .node = node_cb, .leaf = collect ? leaf_cb : NULL,
				      .damage = damage_cb };
	struct btree_cursor *c;
	struct pd_err err;

	btree_walk(w->bm, root, &o, &ops, w, &err);
	if (!btree_cursor_create(w->bm, root, vs, &c, &err)) {
		uint64_t n = 0;

		while (!btree_cursor_next_leaf(c, &err)) {
			for (uint32_t i = 0; i < btree_cursor_nr(c); i++)
				(void)btree_cursor_key(c, i);
			if (++n > 1000000)
				abort();
		}
		btree_cursor_destroy(c);
	}
	for (uint64_t k = 0; k < 4; k++) {
		uint8_t v[256];

		btree_lookup(w->bm, root, vs, k * 1000, vs <= sizeof(v) ? v : NULL, &err);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct io_engine *io = NULL;
	struct walk_ctx w = { 0 };
	struct mem_file m = { .fd = -1 };
	struct thin_sb sb;
	struct pd_err err;
	size_t nr;
	uint8_t *img = image_from_input(data, size, 2, &nr);

	if (!img)
		return 0;
	if (mem_file_create(&m, img, nr * FUZZ_BLOCK, nr * FUZZ_BLOCK))
		goto out;
	if (io_engine_open(m.path, IO_ENGINE_SYNC, IO_OPEN_NO_DIRECT, &io, &err))
		goto out;
	if (bm_create(io, 16, &w.bm, &err))	/* a small cache: evictions too */
		goto out;
	thin_sb_decode(img, 0, &sb);
	walk(&w, sb.device_details_root, 24, false);
	walk(&w, sb.data_mapping_root, 8, true);
	for (unsigned i = 0; i < w.nr_bottoms; i++)
		walk(&w, w.bottoms[i], 8, false);
	{
		struct sm_root r;

		sm_root_decode(sb.data_sm_root, &r);
		walk(&w, r.bitmap_root, SM_INDEX_ENTRY_SIZE, false);
		walk(&w, r.ref_count_root, SM_REF_COUNT_VALUE_SIZE, false);
	}
out:
	bm_destroy(w.bm);
	io_engine_destroy(io);
	mem_file_destroy(&m);
	free(img);
	return 0;
}
