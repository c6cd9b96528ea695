/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "pd-store.h"
#include "space-map-disk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int store_alloc(struct io_engine *io, unsigned cache_blocks, struct pd_store **out,
		       struct pd_err *err)
{
	struct pd_store *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return pd_err_set(err, -ENOMEM, "out of memory");
	s->io = io;
	r = bm_create(io, cache_blocks ? cache_blocks : BM_DEFAULT_CACHE_BLOCKS, &s->bm, err);
	if (r) {
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

static int attach(struct pd_store *s, struct pd_err *err)
{
	int r = tm_create(s->bm, s->md_sm, &s->tm, err);

	return r ? r : sm_metadata_attach_tm(s->md_sm, s->tm, err);
}

int pd_store_create(struct io_engine *io, uint64_t nr_blocks, unsigned cache_blocks,
		    struct pd_store **out, struct pd_err *err)
{
	struct pd_store *s;
	int r;

	if (nr_blocks > io->nr_blocks)
		nr_blocks = io->nr_blocks;
	if (nr_blocks > SM_MD_MAX_BLOCKS)
		nr_blocks = SM_MD_MAX_BLOCKS;
	r = store_alloc(io, cache_blocks, &s, err);
	if (r)
		return r;
	r = sm_metadata_create(s->bm, nr_blocks, &s->md_sm, err);
	if (!r)
		r = attach(s, err);
	if (r) {
		pd_store_destroy(s);
		return r;
	}
	*out = s;
	return 0;
}

int pd_store_open(struct io_engine *io, const void *sm_root_blob, unsigned cache_blocks,
		  struct pd_store **out, struct pd_err *err)
{
	struct pd_store *s;
	int r;

	r = store_alloc(io, cache_blocks, &s, err);
	if (r)
		return r;
	r = sm_metadata_open(s->bm, sm_root_blob, &s->md_sm, err);
	if (!r)
		r = attach(s, err);
	if (r) {
		pd_store_destroy(s);
		return r;
	}
	*out = s;
	return 0;
}

int pd_store_commit(struct pd_store *s,
		    void (*encode)(void *ctx, void *block, const void *sm_root_blob),
		    void *ctx, struct pd_err *err)
{
	uint8_t blob[SM_ROOT_BLOB_SIZE];
	uint8_t *block;
	int r;

	r = sm_commit(s->md_sm, err);
	if (r) {
		pd_err_prefix(err, "committing the metadata space map");
		return r;
	}
	r = tm_pre_commit(s->tm, err);
	if (r)
		return r;
	r = sm_copy_root(s->md_sm, blob);
	if (r)
		return pd_err_set(err, r, "cannot save the space map root");
	block = io_alloc_block();
	if (!block)
		return pd_err_set(err, -ENOMEM, "out of memory");
	memset(block, 0, MD_BLOCK_SIZE);
	encode(ctx, block, blob);
	r = tm_commit_superblock(s->tm, block, err);
	free(block);
	return r;
}

void pd_store_destroy(struct pd_store *s)
{
	if (!s)
		return;
	tm_destroy(s->tm);
	sm_destroy(s->md_sm);
	bm_destroy(s->bm);
	free(s);
}

int pd_store_read_sb(const char *path, bool write, bool xml_decl,
		     const struct bm_validator *sb_v, struct io_engine **io, struct bm **bm,
		     void *sb_block, struct pd_err *err)
{
	unsigned flags = write ? IO_OPEN_WRITE | IO_OPEN_EXCL : 0;
	struct bm_block *blk;
	const uint8_t *data;
	int r;

	*io = NULL;
	*bm = NULL;
	r = io_engine_open(path, IO_ENGINE_ASYNC, flags, io, err);
	if (r == -ENOTSUP)
		r = io_engine_open(path, IO_ENGINE_SYNC, flags, io, err);
	if (r)
		goto bad;
	if ((*io)->nr_blocks < 1) {
		r = pd_err_set(err, -EFBIG, "Metadata device/file too small.  Is this binary metadata?");
		goto bad;
	}
	r = bm_create(*io, BM_DEFAULT_CACHE_BLOCKS, bm, err);
	if (r)
		goto bad;
	r = bm_read_lock(*bm, 0, NULL, &blk, err);
	if (r)
		goto bad;
	data = bm_block_data(blk);
	if (!memcmp(data, "<superblock", 11) || (xml_decl && !memcmp(data, "<?xml", 5)))
		r = pd_err_set(err, -EPROTO, "This looks like XML.  This tool only checks the binary metadata format.");
	else
		r = sb_v->check(sb_v, data, 0, err);
	if (!r)
		memcpy(sb_block, data, MD_BLOCK_SIZE);
	bm_unlock(blk);
	if (!r)
		return 0;
bad:
	bm_destroy(*bm);
	io_engine_destroy(*io);
	*bm = NULL;
	*io = NULL;
	return r;
}
