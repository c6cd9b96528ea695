/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "cache-md.h"
#include "persistent-data/array.h"
#include "persistent-data/bitset.h"
#include "persistent-data/checksum.h"

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
	const struct cache_sb_disk *d = data;
	uint32_t version;

	(void)v;
	if (block_csum(data, CACHE_SB_CSUM_XOR) != block_stored_csum(data))
		return pd_err_set(err, -EILSEQ, "bad checksum in superblock");
	if (le64_to_cpu(d->blocknr) != location)
		return pd_err_set(err, -EILSEQ, "superblock has the wrong blocknr (%" PRIu64 ")",
				  le64_to_cpu(d->blocknr));
	if (le64_to_cpu(d->magic) != CACHE_SB_MAGIC)
		return pd_err_set(err, -EILSEQ, "bad magic in superblock (%" PRIu64 ")",
				  le64_to_cpu(d->magic));
	version = le32_to_cpu(d->version);
	if (version < 1 || version > 2)
		return pd_err_set(err, -EILSEQ, "unknown metadata version %u", version);
	return 0;
}

static void sb_prepare(const struct bm_validator *v, void *data, uint64_t location)
{
	struct cache_sb_disk *d = data;

	(void)v;
	d->blocknr = cpu_to_le64(location);
	block_set_csum(data, CACHE_SB_CSUM_XOR);
}

const struct bm_validator cache_sb_validator = {
	.name = "cache superblock", .check = sb_check, .prepare_for_write = sb_prepare,
};

void cache_sb_decode(const void *block, struct cache_sb *sb)
{
	const struct cache_sb_disk *d = block;

	memset(sb, 0, sizeof(*sb));
	sb->flags = le32_to_cpu(d->flags);
	memcpy(sb->uuid, d->uuid, 16);
	sb->magic = le64_to_cpu(d->magic);
	sb->version = le32_to_cpu(d->version);
	memcpy(sb->policy_name, d->policy_name, CACHE_POLICY_NAME_SIZE);
	sb->policy_hint_size = le32_to_cpu(d->policy_hint_size);
	memcpy(sb->metadata_sm_root, d->metadata_sm_root, SM_ROOT_BLOB_SIZE);
	sb->mapping_root = le64_to_cpu(d->mapping_root);
	sb->hint_root = le64_to_cpu(d->hint_root);
	sb->discard_root = le64_to_cpu(d->discard_root);
	sb->discard_block_size = le64_to_cpu(d->discard_block_size);
	sb->discard_nr_blocks = le64_to_cpu(d->discard_nr_blocks);
	sb->data_block_size = le32_to_cpu(d->data_block_size);
	sb->metadata_block_size = le32_to_cpu(d->metadata_block_size);
	sb->cache_blocks = le32_to_cpu(d->cache_blocks);
	sb->compat_flags = le32_to_cpu(d->compat_flags);
	sb->compat_ro_flags = le32_to_cpu(d->compat_ro_flags);
	sb->incompat_flags = le32_to_cpu(d->incompat_flags);
	sb->read_hits = le32_to_cpu(d->read_hits);
	sb->read_misses = le32_to_cpu(d->read_misses);
	sb->write_hits = le32_to_cpu(d->write_hits);
	sb->write_misses = le32_to_cpu(d->write_misses);
	for (int i = 0; i < 3; i++)
		sb->policy_version[i] = le32_to_cpu(d->policy_version[i]);
	if (sb->version >= 2)
		sb->dirty_root = le64_to_cpu(d->dirty_root);
}

void cache_sb_encode(const struct cache_sb *sb, void *block)
{
	struct cache_sb_disk *d = block;

	memset(block, 0, MD_BLOCK_SIZE);
	d->flags = cpu_to_le32(sb->flags);
	memcpy(d->uuid, sb->uuid, 16);
	d->magic = cpu_to_le64(CACHE_SB_MAGIC);
	d->version = cpu_to_le32(sb->version);
	memcpy(d->policy_name, sb->policy_name, CACHE_POLICY_NAME_SIZE);
	d->policy_hint_size = cpu_to_le32(sb->policy_hint_size);
	memcpy(d->metadata_sm_root, sb->metadata_sm_root, SM_ROOT_BLOB_SIZE);
	d->mapping_root = cpu_to_le64(sb->mapping_root);
	d->hint_root = cpu_to_le64(sb->hint_root);
	d->discard_root = cpu_to_le64(sb->discard_root);
	d->discard_block_size = cpu_to_le64(sb->discard_block_size);
	d->discard_nr_blocks = cpu_to_le64(sb->discard_nr_blocks);
	d->data_block_size = cpu_to_le32(sb->data_block_size);
	d->metadata_block_size = cpu_to_le32(sb->metadata_block_size);
	d->cache_blocks = cpu_to_le32(sb->cache_blocks);
	d->compat_flags = cpu_to_le32(sb->compat_flags);
	d->compat_ro_flags = cpu_to_le32(sb->compat_ro_flags);
	d->incompat_flags = cpu_to_le32(sb->incompat_flags);
	d->read_hits = cpu_to_le32(sb->read_hits);
	d->read_misses = cpu_to_le32(sb->read_misses);
	d->write_hits = cpu_to_le32(sb->write_hits);
	d->write_misses = cpu_to_le32(sb->write_misses);
	for (int i = 0; i < 3; i++)
		d->policy_version[i] = cpu_to_le32(sb->policy_version[i]);
	if (sb->version >= 2)
		d->dirty_root = cpu_to_le64(sb->dirty_root);
	sb_prepare(NULL, block, 0);
}

int cache_sb_check_fields(const struct cache_sb *sb, uint64_t nr_md_blocks,
			  struct pd_err *err)
{
	struct sm_root smr;

	sm_root_decode(sb->metadata_sm_root, &smr);
	if (sb->incompat_flags)
		return pd_err_set(err, -EILSEQ, "unsupported incompatible features (%#x)",
				  sb->incompat_flags);
	if (sb->metadata_block_size != CACHE_METADATA_BLOCK_SECTORS)
		return pd_err_set(err, -EILSEQ, "bad metadata block size %u",
				  sb->metadata_block_size);
	if (smr.nr_blocks > nr_md_blocks || smr.bitmap_root >= smr.nr_blocks ||
	    smr.ref_count_root >= smr.nr_blocks || !smr.nr_blocks)
		return pd_err_set(err, -EILSEQ, "bad metadata space map root");
	if (sb->mapping_root >= smr.nr_blocks || !sb->mapping_root)
		return pd_err_set(err, -EILSEQ, "mapping root %" PRIu64 " out of bounds",
				  sb->mapping_root);
	if (sb->hint_root >= smr.nr_blocks)
		return pd_err_set(err, -EILSEQ, "hint root %" PRIu64 " out of bounds", sb->hint_root);
	if (sb->discard_root >= smr.nr_blocks)
		return pd_err_set(err, -EILSEQ, "discard root %" PRIu64 " out of bounds",
				  sb->discard_root);
	if (sb->version >= 2 && (sb->dirty_root >= smr.nr_blocks || !sb->dirty_root))
		return pd_err_set(err, -EILSEQ, "dirty root %" PRIu64 " out of bounds",
				  sb->dirty_root);
	if (sb->policy_hint_size % 4 || sb->policy_hint_size > 128)
		return pd_err_set(err, -EILSEQ, "invalid hint width %u", sb->policy_hint_size);
	if (!memchr(sb->policy_name, 0, CACHE_POLICY_NAME_SIZE))
		return pd_err_set(err, -EILSEQ, "policy name is not terminated");
	return 0;
}

/*----------------------------------------------------------------
 * Reading
 *--------------------------------------------------------------*/

int cache_md_open(const char *path, bool write, struct cache_md **out, struct pd_err *err)
{
	struct cache_md *md = calloc(1, sizeof(*md));
	uint8_t *block = io_alloc_block();
	int r;

	if (!md || !block) {
		free(md);
		free(block);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	r = pd_store_read_sb(path, write, true, &cache_sb_validator, &md->io, &md->bm, block, err);
	if (!r) {
		cache_sb_decode(block, &md->sb);
		r = cache_sb_check_fields(&md->sb, md->io->nr_blocks, err);
	}
	free(block);
	if (r) {
		cache_md_close(md);
		return r;
	}
	*out = md;
	return 0;
}

void cache_md_close(struct cache_md *md)
{
	if (!md)
		return;
	bm_destroy(md->bm);
	io_engine_destroy(md->io);
	free(md);
}

struct walk {
	struct cache_md *md;
	const struct cache_visitor *v;
	bool repair;
	bool damaged;
	struct pd_err *err;
	struct array_reader *dirty;	/* v2 */
	struct array_reader *maps;	/* for the hints */
	uint32_t hint_width;
};

static void walk_damage(void *ctx, uint64_t lo, uint64_t hi, const char *msg)
{
	struct walk *w = ctx;

	(void)lo;
	(void)hi;
	if (!w->damaged && !w->repair)
		pd_err_set(w->err, -EILSEQ, "%s", msg);
	w->damaged = true;
}

static int map_values(void *ctx, uint64_t first, uint32_t nr, const void *values)
{
	struct walk *w = ctx;
	int r;

	if (w->damaged && !w->repair)
		return -EILSEQ;
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t v = load_le64((const uint8_t *)values + 8u * i), cb = first + i;
		bool dirty;

		if (!(cache_mapping_flags(v) & CACHE_M_VALID))
			continue;
		if (w->dirty) {
			uint8_t le[8];
			struct pd_err e;

			r = array_reader_get(w->dirty, cb / 64, le, &e);
			if (r) {
				if (!w->repair) {
					*w->err = e;
					return r;
				}
				dirty = true;	/* unknown: the safe answer */
			} else {
				dirty = (load_le64(le) >> (cb % 64)) & 1;
			}
		} else {
			dirty = cache_mapping_flags(v) & CACHE_M_DIRTY;
		}
		r = w->v->mapping(w->v->ctx, cb, cache_mapping_oblock(v), dirty);
		if (r)
			return r;
	}
	return 0;
}

static int hint_values(void *ctx, uint64_t first, uint32_t nr, const void *values)
{
	struct walk *w = ctx;
	int r;

	if (w->damaged && !w->repair)
		return -EILSEQ;
	for (uint32_t i = 0; i < nr; i++) {
		uint8_t le[8];
		struct pd_err e;

		r = array_reader_get(w->maps, first + i, le, &e);
		if (r || !(cache_mapping_flags(load_le64(le)) & CACHE_M_VALID))
			continue;
		r = w->v->hint(w->v->ctx, first + i,
			       (const uint8_t *)values + (size_t)i * w->hint_width, w->hint_width);
		if (r)
			return r;
	}
	return 0;
}

int cache_md_walk(struct cache_md *md, bool repair, const struct cache_visitor *v,
		  struct pd_err *err)
{
	struct walk w = { .md = md, .v = v, .repair = repair, .err = err };
	struct array_walk_ops mo = { .values = map_values, .damage = walk_damage };
	int r;

	pd_err_clear(err);
	w.hint_width = md->sb.policy_hint_size ? md->sb.policy_hint_size : 4;
	r = v->begin(v->ctx, &md->sb, w.hint_width);
	if (r)
		return r;
	if (md->sb.version >= 2) {
		r = array_reader_create(md->bm, md->sb.dirty_root, 8, &w.dirty, err);
		if (r)
			return r;
	}
	r = array_walk(md->bm, md->sb.mapping_root, 8, md->sb.cache_blocks, &mo, &w, err);
	array_reader_destroy(w.dirty);
	if (!r && w.damaged && !repair)
		r = -EILSEQ;
	if (r)
		return r;
	if (md->sb.hint_root) {
		struct array_walk_ops ho = { .values = hint_values, .damage = walk_damage };

		r = array_reader_create(md->bm, md->sb.mapping_root, 8, &w.maps, err);
		if (r)
			return r;
		r = array_walk(md->bm, md->sb.hint_root, w.hint_width, md->sb.cache_blocks,
			       &ho, &w, err);
		array_reader_destroy(w.maps);
		if (!r && w.damaged && !repair)
			r = -EILSEQ;
		if (r)
			return r;
	}
	return v->end(v->ctx);
}

/*----------------------------------------------------------------
 * Writing
 *--------------------------------------------------------------*/

struct cache_writer {
	struct io_engine *io;
	struct pd_store *store;
	struct cache_writer_opts o;
	struct cache_sb sb;
	struct array_builder *maps;
	struct array_builder *hints;
	struct bitset_builder *dirty;
	bool in_hints;
	uint64_t next_hint;
	struct pd_err *err;
	struct pd_err own_err;
};

int cache_writer_create(struct io_engine *io, const struct cache_writer_opts *o,
			struct cache_writer **out, struct pd_err *err)
{
	struct cache_writer *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return pd_err_set(err, -ENOMEM, "out of memory");
	w->io = io;
	w->o = *o;
	if (w->o.version < 1 || w->o.version > 2) {
		free(w);
		return pd_err_set(err, -EINVAL, "unsupported metadata version %u", o->version);
	}
	w->err = &w->own_err;
	r = pd_store_create(io, io->nr_blocks, 0, &w->store, err);
	if (!r)
		r = array_builder_create(w->store->tm, 8, &w->maps, err);
	if (!r && w->o.version >= 2)
		r = bitset_builder_create(w->store->tm, &w->dirty, err);
	if (r) {
		cache_writer_destroy(w);
		return r;
	}
	*out = w;
	return 0;
}

void cache_writer_destroy(struct cache_writer *w)
{
	if (!w)
		return;
	array_builder_destroy(w->maps);
	array_builder_destroy(w->hints);
	bitset_builder_destroy(w->dirty);
	pd_store_destroy(w->store);
	free(w);
}

static int w_begin(void *ctx, const struct cache_sb *sb, uint32_t hint_width)
{
	struct cache_writer *w = ctx;

	if (!sb->data_block_size)
		return pd_err_set(w->err, -EINVAL, "invalid block size");
	/*
	 * 0 is what 1.x's dump shows of 0.9's restores (policy_hint_size 0
	 * over 4-byte hints): read as 4, as we read such metadata, and
	 * written as 4 so that the kernel keeps the hints and 1.x's check
	 * walks them.
	 */
	if (hint_width != CACHE_HINT_BYTES && hint_width != 0)
		return pd_err_set(w->err, -EINVAL, "invalid hint width %u (only 4, or 0, are supported)",
				  hint_width);
	w->sb = *sb;
	w->sb.version = w->o.version;
	w->sb.policy_hint_size = CACHE_HINT_BYTES;
	return 0;
}

static uint8_t zero_value[128];

static int fill_mappings(struct cache_writer *w, uint64_t upto)
{
	uint64_t have = array_builder_size(w->maps);
	int r = 0;

	if (upto > have) {
		r = array_builder_push_n(w->maps, zero_value, upto - have, w->err);
		if (!r && w->dirty)
			r = bitset_builder_push_n(w->dirty, false, upto - have, w->err);
	}
	return r;
}

static int w_mapping(void *ctx, uint64_t cblock, uint64_t oblock, bool dirty)
{
	struct cache_writer *w = ctx;
	uint8_t le[8];
	int r;

	if (w->in_hints)
		return pd_err_set(w->err, -EINVAL, "mapping after the hints");
	if (cblock >= w->sb.cache_blocks)
		return pd_err_set(w->err, -EINVAL, "cache block %" PRIu64 " out of bounds (%u)",
				  cblock, w->sb.cache_blocks);
	if (cblock < array_builder_size(w->maps))
		return pd_err_set(w->err, -EINVAL, "cache block %" PRIu64 " out of order", cblock);
	if (oblock >= (1ull << 48))
		return pd_err_set(w->err, -EINVAL, "origin block %" PRIu64 " too large", oblock);
	r = fill_mappings(w, cblock);
	if (r)
		return r;
	store_le64(le, oblock << 16 | CACHE_M_VALID |
		   (w->o.version == 1 && dirty ? CACHE_M_DIRTY : 0));
	r = array_builder_push(w->maps, le, w->err);
	if (!r && w->dirty)
		r = bitset_builder_push(w->dirty, dirty, w->err);
	return r;
}

static int end_mappings(struct cache_writer *w)
{
	int r;

	if (w->in_hints)
		return 0;
	w->in_hints = true;
	r = fill_mappings(w, w->sb.cache_blocks);
	if (!r)
		r = array_builder_finish(w->maps, &w->sb.mapping_root, w->err);
	if (!r && w->dirty)
		r = bitset_builder_finish(w->dirty, &w->sb.dirty_root, w->err);
	if (!r)
		r = array_builder_create(w->store->tm, CACHE_HINT_BYTES, &w->hints, w->err);
	return r;
}

static int w_hint(void *ctx, uint64_t cblock, const uint8_t *data, uint32_t len)
{
	struct cache_writer *w = ctx;
	int r = end_mappings(w);

	if (r)
		return r;
	if (len != CACHE_HINT_BYTES)
		return pd_err_set(w->err, -EINVAL, "hint of cache block %" PRIu64 " has %u bytes, not %u",
				  cblock, len, CACHE_HINT_BYTES);
	if (cblock >= w->sb.cache_blocks)
		return pd_err_set(w->err, -EINVAL, "cache block %" PRIu64 " out of bounds (%u)",
				  cblock, w->sb.cache_blocks);
	if (cblock < array_builder_size(w->hints))
		return pd_err_set(w->err, -EINVAL, "hint of cache block %" PRIu64 " out of order", cblock);
	r = array_builder_push_n(w->hints, zero_value, cblock - array_builder_size(w->hints), w->err);
	return r ? r : array_builder_push(w->hints, data, w->err);
}

static void w_encode(void *ctx, void *block, const void *blob)
{
	struct cache_writer *w = ctx;

	memcpy(w->sb.metadata_sm_root, blob, SM_ROOT_BLOB_SIZE);
	cache_sb_encode(&w->sb, block);
}

static int w_end(void *ctx)
{
	struct cache_writer *w = ctx;
	int r = end_mappings(w);
	uint64_t have;

	if (r)
		return r;
	have = array_builder_size(w->hints);
	r = array_builder_push_n(w->hints, zero_value, w->sb.cache_blocks - have, w->err);
	if (!r)
		r = array_builder_finish(w->hints, &w->sb.hint_root, w->err);
	if (!r)
		r = bitset_empty(w->store->tm, &w->sb.discard_root, w->err);
	if (r)
		return r;
	w->sb.flags = w->o.clean_shutdown ? CACHE_SB_CLEAN_SHUTDOWN : 0;
	w->sb.magic = CACHE_SB_MAGIC;
	w->sb.metadata_block_size = CACHE_METADATA_BLOCK_SECTORS;
	w->sb.discard_block_size = 0;
	w->sb.discard_nr_blocks = 0;
	w->sb.compat_flags = w->sb.compat_ro_flags = w->sb.incompat_flags = 0;
	w->sb.read_hits = w->sb.read_misses = w->sb.write_hits = w->sb.write_misses = 0;
	/* the version smq reports: the kernel keeps hints of an unchanged policy */
	w->sb.policy_version[0] = 2;
	w->sb.policy_version[1] = 0;
	w->sb.policy_version[2] = 0;
	return pd_store_commit(w->store, w_encode, w, w->err);
}

void cache_writer_visitor(struct cache_writer *w, struct cache_visitor *v)
{
	v->ctx = w;
	v->begin = w_begin;
	v->mapping = w_mapping;
	v->hint = w_hint;
	v->end = w_end;
}

/* Where the writer's callbacks put their messages. */
struct pd_err *cache_writer_err(struct cache_writer *w)
{
	return w->err;
}
