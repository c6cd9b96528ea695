/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Space map loading: the checker's loader (sm_disk_load) of both maps
 * the superblock describes, then the pool's (sm_metadata_open,
 * sm_disk_open) with a transaction that allocates, counts and commits on
 * the in-memory device.  Sizes come from the hostile superblock: they
 * must be checked against the device before anything is allocated.
 */
#include "fuzz-common.h"
#include "persistent-data/count-map.h"
#include "thin-provisioning/pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void load(struct bm *bm, const struct sm_root *root, bool metadata, uint64_t nr_md)
{
	struct sm_load_hooks h = { 0 };
	struct count_map *cm = NULL;
	struct pd_err err;

	if (!sm_size_fits(root->nr_blocks, nr_md))
		return;		/* what the checker refuses first */
	if (cm_create(root->nr_blocks, &cm))
		return;
	sm_disk_load(bm, root, metadata, cm, &h, &err);
	cm_destroy(cm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct io_engine *io = NULL;
	struct bm *bm = NULL;
	struct pool *p = NULL;
	struct mem_file m = { .fd = -1 };
	struct pd_err err;
	struct sm_root r;
	size_t nr;
	uint8_t *img = image_from_input(data, size, 2, &nr);

	if (!img)
		return 0;
	if (mem_file_create(&m, img, nr * FUZZ_BLOCK, nr * FUZZ_BLOCK))
		goto out;
	if (io_engine_open(m.path, IO_ENGINE_SYNC, IO_OPEN_NO_DIRECT | IO_OPEN_WRITE, &io, &err))
		goto out;
	if (!bm_create(io, 16, &bm, &err)) {
		sm_root_decode(img + 64, &r);
		load(bm, &r, false, nr);
		sm_root_decode(img + 192, &r);
		load(bm, &r, true, nr);
		bm_destroy(bm);
	}
	/* the pool's space maps: open, a few changes, commit */
	if (!pool_open(io, 16, &p, &err)) {
		uint64_t b;

		for (unsigned i = 0; i < 4; i++) {
			if (sm_new_block(p->data_sm, &b))
				break;
			sm_inc(p->data_sm, b);
			sm_dec(p->data_sm, b);
		}
		if (!sm_new_block(p->md_sm, &b))
			sm_dec(p->md_sm, b);
		pool_commit(p, &err);
		pool_destroy(p);
	}
out:
	io_engine_destroy(io);
	mem_file_destroy(&m);
	free(img);
	return 0;
}
