/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "pool.h"
#include "persistent-data/count-map.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*----------------------------------------------------------------
 * Value types of the thin trees
 *--------------------------------------------------------------*/

/* Bottom level: a mapping holds a reference to its data block. */
static int data_inc(void *context, const void *value_le)
{
	struct pool *p = context;

	return sm_inc(p->data_sm, block_time_block(load_le64(value_le)));
}

static int data_dec(void *context, const void *value_le)
{
	struct pool *p = context;

	return sm_dec(p->data_sm, block_time_block(load_le64(value_le)));
}

/* Top level: an entry holds a reference to a device's bottom tree. */
static int subtree_inc(void *context, const void *value_le)
{
	struct pool *p = context;

	return tm_inc(p->tm, load_le64(value_le));
}

static int subtree_dec(void *context, const void *value_le)
{
	struct pool *p = context;
	struct pd_err err;

	return btree_delete(&p->bottom_info, load_le64(value_le), &err);
}

static void init_infos(struct pool *p)
{
	p->details_info = (struct btree_info) { .tm = p->tm };
	p->details_info.vt.size = THIN_DETAILS_VALUE_SIZE;

	p->top_info = (struct btree_info) { .tm = p->tm };
	p->top_info.vt.size = THIN_MAPPING_VALUE_SIZE;
	p->top_info.vt.context = p;
	p->top_info.vt.inc = subtree_inc;
	p->top_info.vt.dec = subtree_dec;

	p->bottom_info = (struct btree_info) { .tm = p->tm };
	p->bottom_info.vt.size = THIN_MAPPING_VALUE_SIZE;
	p->bottom_info.vt.context = p;
	p->bottom_info.vt.inc = data_inc;
	p->bottom_info.vt.dec = data_dec;
}

/*----------------------------------------------------------------
 * Opening and creating
 *--------------------------------------------------------------*/

static int pool_alloc(struct io_engine *io, unsigned cache_blocks, struct pool **out,
		      struct pd_err *err)
{
	struct pool *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return pd_err_set(err, -ENOMEM, "out of memory");
	p->io = io;
	r = bm_create(io, cache_blocks ? cache_blocks : BM_DEFAULT_CACHE_BLOCKS, &p->bm, err);
	if (r) {
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

static int open_pool(struct io_engine *io, unsigned cache_blocks, bool resize,
		     struct pool **out, struct pd_err *err)
{
	struct bm_block *blk;
	struct pool *p;
	int r;

	r = pool_alloc(io, cache_blocks, &p, err);
	if (r)
		return r;
	r = bm_read_lock(p->bm, 0, &thin_sb_validator, &blk, err);
	if (r)
		goto bad;
	thin_sb_decode(bm_block_data(blk), 0, &p->sb);
	bm_unlock(blk);
	bm_forget(p->bm, 0);
	/* roots must lie on the device; the space map may be resized below */
	r = thin_sb_check_fields(&p->sb, resize ? UINT64_MAX : io->nr_blocks, false, err);
	if (!r && resize && (p->sb.data_mapping_root >= io->nr_blocks ||
			     p->sb.device_details_root >= io->nr_blocks))
		r = pd_err_set(err, -ENOSPC, "the output is too small for the metadata's trees");
	if (r)
		goto bad;
	r = sm_metadata_open(p->bm, p->sb.metadata_sm_root, &p->md_sm, err);
	if (r)
		goto bad;
	r = tm_create(p->bm, p->md_sm, &p->tm, err);
	if (r)
		goto bad;
	r = sm_metadata_attach_tm(p->md_sm, p->tm, err);
	if (r)
		goto bad;
	r = sm_disk_open(p->tm, p->sb.data_sm_root, &p->data_sm, err);
	if (r)
		goto bad;
	init_infos(p);
	if (resize) {
		r = pool_resize_metadata(p, io->nr_blocks, err);
		if (r)
			goto bad;
	}
	*out = p;
	return 0;
bad:
	pool_destroy(p);
	return r;
}

int pool_open(struct io_engine *io, unsigned cache_blocks, struct pool **out,
	      struct pd_err *err)
{
	return open_pool(io, cache_blocks, false, out, err);
}

int pool_open_resized(struct io_engine *io, unsigned cache_blocks, struct pool **out,
		      struct pd_err *err)
{
	return open_pool(io, cache_blocks, true, out, err);
}

int pool_create(struct io_engine *io, const struct pool_create_opts *o,
		unsigned cache_blocks, struct pool **out, struct pd_err *err)
{
	uint64_t nr_md = o->nr_metadata_blocks ? o->nr_metadata_blocks : io->nr_blocks;
	struct pool *p;
	int r;

	if (nr_md > io->nr_blocks)
		nr_md = io->nr_blocks;
	if (nr_md > SM_MD_MAX_BLOCKS)
		nr_md = SM_MD_MAX_BLOCKS;
	r = pool_alloc(io, cache_blocks, &p, err);
	if (r)
		return r;
	r = sm_metadata_create(p->bm, nr_md, &p->md_sm, err);
	if (r)
		goto bad;
	r = tm_create(p->bm, p->md_sm, &p->tm, err);
	if (r)
		goto bad;
	r = sm_metadata_attach_tm(p->md_sm, p->tm, err);
	if (r)
		goto bad;
	r = sm_disk_create(p->tm, o->nr_data_blocks, &p->data_sm, err);
	if (r)
		goto bad;
	init_infos(p);

	memset(&p->sb, 0, sizeof(p->sb));
	p->sb.flags = o->flags;
	p->sb.magic = THIN_SB_MAGIC;
	p->sb.version = o->version ? o->version : THIN_SB_VERSION;
	p->sb.time = o->time;
	p->sb.trans_id = o->trans_id;
	p->sb.data_block_size = o->data_block_size;
	p->sb.metadata_block_size = THIN_METADATA_BLOCK_SECTORS;
	p->sb.metadata_nr_blocks = nr_md;
	r = btree_empty(&p->details_info, &p->sb.device_details_root, err);
	if (!r)
		r = btree_empty(&p->top_info, &p->sb.data_mapping_root, err);
	if (r)
		goto bad;
	*out = p;
	return 0;
bad:
	pool_destroy(p);
	return r;
}

int pool_create_from_counts(struct io_engine *io, const struct thin_sb *sb,
			    struct count_map *md_counts, struct count_map *data_counts,
			    unsigned cache_blocks, struct pool **out, struct pd_err *err)
{
	uint64_t nr_md = io->nr_blocks < SM_MD_MAX_BLOCKS ? io->nr_blocks : SM_MD_MAX_BLOCKS;
	struct pool *p;
	int r;

	r = pool_alloc(io, cache_blocks, &p, err);
	if (r)
		return r;
	r = sm_metadata_create(p->bm, nr_md, &p->md_sm, err);
	for (uint64_t b = 1; !r && b < cm_nr_blocks(md_counts); b++) {
		uint32_t c = cm_get(md_counts, b);

		if (!c)
			continue;
		if (b >= nr_md)
			r = pd_err_set(err, -ENOSPC,
				       "metadata block %" PRIu64 " does not fit in %" PRIu64 " blocks",
				       b, nr_md);
		else if ((r = sm_set_count(p->md_sm, b, c)))
			pd_err_set(err, r, "out of memory");
	}
	if (!r)
		r = tm_create(p->bm, p->md_sm, &p->tm, err);
	if (!r)
		r = sm_metadata_attach_tm(p->md_sm, p->tm, err);
	if (!r)
		r = sm_disk_create(p->tm, cm_nr_blocks(data_counts), &p->data_sm, err);
	for (uint64_t b = 0; !r && b < cm_nr_blocks(data_counts); b++) {
		uint32_t c = cm_get(data_counts, b);

		if (c && (r = sm_set_count(p->data_sm, b, c)))
			pd_err_set(err, r, "out of memory");
	}
	if (r) {
		pool_destroy(p);
		return r;
	}
	init_infos(p);
	p->sb = *sb;
	p->sb.location = 0;
	p->sb.metadata_snap = 0;
	p->sb.magic = THIN_SB_MAGIC;
	p->sb.metadata_block_size = THIN_METADATA_BLOCK_SECTORS;
	p->sb.metadata_nr_blocks = nr_md;
	/* fresh metadata written by us uses no feature (a held copy's may be anything) */
	p->sb.compat_ro_flags = 0;
	p->sb.incompat_flags = 0;
	*out = p;
	return 0;
}

int pool_lower_counts(struct pool *p, bool metadata, const struct count_map *expected,
		      const struct count_map *ondisk, uint64_t *fixed, struct pd_err *err)
{
	struct space_map *sm = metadata ? p->md_sm : p->data_sm;
	uint64_t n = cm_nr_blocks(ondisk);

	if (cm_nr_blocks(expected) < n)
		n = cm_nr_blocks(expected);
	if (sm_nr_blocks(sm) < n)
		n = sm_nr_blocks(sm);
	for (uint64_t b = 0; b < n; b++) {
		uint32_t e = cm_get(expected, b), a = cm_get(ondisk, b);
		int r;

		if (a <= e)
			continue;
		r = sm_set_count(sm, b, e);
		if (r)
			return pd_err_set(err, r, "setting the count of %s block %" PRIu64 ": %s",
					  metadata ? "metadata" : "data",
					  b, strerror(-r));
		(*fixed)++;
	}
	return 0;
}

int pool_resize_metadata(struct pool *p, uint64_t nr_blocks, struct pd_err *err)
{
	uint64_t cur = sm_nr_blocks(p->md_sm);
	int r;

	if (nr_blocks > SM_MD_MAX_BLOCKS)
		nr_blocks = SM_MD_MAX_BLOCKS;
	if (nr_blocks > bm_nr_blocks(p->bm))
		nr_blocks = bm_nr_blocks(p->bm);
	if (nr_blocks == cur)
		return 0;
	if (nr_blocks > cur) {
		r = sm_extend(p->md_sm, nr_blocks - cur);
		if (r)
			return pd_err_set(err, r, "cannot grow the metadata space map: %s",
					  strerror(-r));
	} else {
		r = sm_metadata_shrink(p->md_sm, nr_blocks, err);
		if (r)
			return r;
	}
	p->sb.metadata_nr_blocks = nr_blocks;
	return 0;
}

void pool_destroy(struct pool *p)
{
	if (!p)
		return;
	sm_destroy(p->data_sm);
	tm_destroy(p->tm);
	sm_destroy(p->md_sm);
	bm_destroy(p->bm);		/* dirty blocks are dropped: nothing committed */
	free(p);
}

int pool_commit(struct pool *p, struct pd_err *err)
{
	uint8_t *block;
	int r;

	r = sm_commit(p->data_sm, err);
	if (r) {
		pd_err_prefix(err, "committing the data space map");
		return r;
	}
	r = sm_commit(p->md_sm, err);
	if (r) {
		pd_err_prefix(err, "committing the metadata space map");
		return r;
	}
	r = tm_pre_commit(p->tm, err);
	if (r)
		return r;

	sm_copy_root(p->data_sm, p->sb.data_sm_root);
	sm_copy_root(p->md_sm, p->sb.metadata_sm_root);
	p->sb.location = 0;
	block = io_alloc_block();
	if (!block)
		return pd_err_set(err, -ENOMEM, "out of memory");
	thin_sb_encode(&p->sb, block);
	r = tm_commit_superblock(p->tm, block, err);
	free(block);
	return r;
}

/*----------------------------------------------------------------
 * Devices
 *--------------------------------------------------------------*/

int pool_get_device(struct pool *p, uint64_t dev_id, struct thin_device *dev,
		    struct pd_err *err)
{
	/* the trees as this transaction has them so far */
	return thin_lookup_device(p->bm, p->sb.device_details_root,
				  p->sb.data_mapping_root, dev_id, dev, err);
}

int pool_set_details(struct pool *p, const struct thin_device *dev, struct pd_err *err)
{
	uint8_t value[THIN_DETAILS_VALUE_SIZE];
	bool inserted;

	thin_details_encode(dev, value);
	return btree_insert(&p->details_info, p->sb.device_details_root, dev->dev_id,
			    value, &p->sb.device_details_root, &inserted, err);
}

int pool_set_root(struct pool *p, uint64_t dev_id, uint64_t root, struct pd_err *err)
{
	uint8_t value[8];
	bool inserted;

	store_le64(value, root);
	return btree_insert(&p->top_info, p->sb.data_mapping_root, dev_id, value,
			    &p->sb.data_mapping_root, &inserted, err);
}

static bool never_equal(void *context, const void *a, const void *b)
{
	(void)context;
	(void)a;
	(void)b;
	return false;
}

static int write_root(struct pool *p, uint64_t dev_id, uint64_t root, struct pd_err *err)
{
	struct btree_info info = p->top_info;
	uint8_t value[8];
	bool inserted;
	int r;

	/* overwrite in place: the reference moves, nothing is released */
	info.vt.dec = NULL;
	info.vt.equal = never_equal;	/* always rewrite, so the path is shadowed */
	store_le64(value, root);
	r = btree_insert(&info, p->sb.data_mapping_root, dev_id, value,
			 &p->sb.data_mapping_root, &inserted, err);
	if (!r && inserted)
		return pd_err_set(err, -EILSEQ, "device %" PRIu64 " has no mapping tree",
				  dev_id);
	return r;
}

int pool_touch_root(struct pool *p, uint64_t dev_id, struct pd_err *err)
{
	uint8_t value[8];
	int r;

	r = btree_lookup(p->bm, p->sb.data_mapping_root, THIN_MAPPING_VALUE_SIZE,
			 dev_id, value, err);
	if (r == -ENODATA)
		return pd_err_set(err, r, "device %" PRIu64 " not found", dev_id);
	if (r)
		return r;
	return write_root(p, dev_id, load_le64(value), err);
}

int pool_update_root(struct pool *p, uint64_t dev_id, uint64_t root, struct pd_err *err)
{
	return write_root(p, dev_id, root, err);
}

int pool_remove_details(struct pool *p, uint64_t dev_id, struct pd_err *err)
{
	int r = btree_remove(&p->details_info, p->sb.device_details_root, dev_id,
			     &p->sb.device_details_root, err);

	if (r == -ENODATA)
		return pd_err_set(err, r, "device %" PRIu64 " not found", dev_id);
	return r;
}

int pool_take_root(struct pool *p, uint64_t dev_id, uint64_t *root, struct pd_err *err)
{
	uint8_t value[8];
	struct btree_info info = p->top_info;
	int r;

	r = btree_lookup(p->bm, p->sb.data_mapping_root, THIN_MAPPING_VALUE_SIZE,
			 dev_id, value, err);
	if (r == -ENODATA)
		return pd_err_set(err, r, "device %" PRIu64 " not found", dev_id);
	if (r)
		return r;
	*root = load_le64(value);
	/* remove the entry without dropping the reference it held */
	info.vt.dec = NULL;
	return btree_remove(&info, p->sb.data_mapping_root, dev_id,
			    &p->sb.data_mapping_root, err);
}

int pool_delete_device(struct pool *p, uint64_t dev_id, struct pd_err *err)
{
	int r;

	r = btree_remove(&p->top_info, p->sb.data_mapping_root, dev_id,
			 &p->sb.data_mapping_root, err);
	if (r == -ENODATA)
		return pd_err_set(err, r, "device %" PRIu64 " not found", dev_id);
	if (r)
		return r;
	r = btree_remove(&p->details_info, p->sb.device_details_root, dev_id,
			 &p->sb.device_details_root, err);
	if (r == -ENODATA)
		return pd_err_set(err, -EILSEQ, "device %" PRIu64 " has a mapping tree but no details",
				  dev_id);
	return r;
}
