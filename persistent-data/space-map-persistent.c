/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The on-disk space maps (format doc sections 6 and 9): the data space
 * map (index btree, bitmaps, ref-count tree) and the metadata space map
 * (one index block, bitmaps, ref-count tree).
 *
 * How changes are kept: a bitmap is read when first touched and changed
 * in memory; the committed copy of a changed bitmap is kept beside it,
 * because the allocator must not hand out a block that was in use at the
 * last commit.  Counts of 3 and more live in the ref-count tree; changes
 * to them wait in a map of pending counts.  Nothing on disk changes until
 * commit, which writes each changed bitmap to a newly allocated block
 * (the old one is freed), then the index and the ref-count tree through
 * the transaction manager.  So the committed state is never overwritten,
 * and the cost of a transaction follows what it changed, not the size
 * of the device.
 *
 * The metadata space map accounts for its own blocks.  Its commit
 * allocates (from itself) new homes for its changed bitmaps and index
 * block and applies its pending counts to its ref-count tree, which again
 * changes counts; it repeats until nothing new is dirty, then writes.
 */
#include "btree-write.h"
#include "checksum.h"
#include "container-of.h"
#include "space-map-disk.h"
#include "space-map.h"
#include "transaction-manager.h"
#include "u64-map.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define BITMAP_BYTES (MD_BLOCK_SIZE - SM_BITMAP_HEADER_SIZE)
#define WORDS_PER_BITMAP (BITMAP_BYTES / 8u)

struct bitmap_state {
	uint64_t blocknr;	/* committed home; 0: never written (all free) */
	uint32_t nr_free;	/* entries with count 0 now (kernel convention) */
	uint32_t none_free_before;	/* as committed, for an unchanged bitmap */
	uint8_t *cur;		/* entries now (BITMAP_BYTES), NULL: not loaded */
	uint8_t *old;		/* committed entries while cur differs; NULL: same or all zero */
	bool dirty;		/* must be written at commit */
	uint64_t new_home;	/* metadata commit: where it goes, 0: not chosen */
	uint64_t spill_home;	/* data map: a new block holding cur, written early */
};

struct sm_disk {
	struct space_map sm;
	struct bm *bm;
	struct tm *tm;
	bool metadata;
	uint64_t nr_blocks;
	uint64_t nr_allocated;
	uint64_t nr_bitmaps;
	struct bitmap_state *bitmaps;
	uint64_t index_root;		/* data: index btree; metadata: index block (0: none yet) */
	uint64_t ref_count_root;	/* 0 until attached */
	struct u64_map pending;		/* block -> count (< 3: drop the tree entry) */
	uint64_t cursor;		/* allocation goes on from here */
	bool in_commit;
	/*
	 * Bitmaps held in memory, and the most (0: no limit).  The data map
	 * is as large as the data device: past the limit, clean bitmaps are
	 * dropped and changed ones written early ("spilled") to the block
	 * they will have at commit, so memory stays flat however many
	 * bitmaps a transaction touches.
	 */
	unsigned nr_loaded, max_loaded;
	uint64_t clock;
};

#define DATA_SM_MAX_LOADED 256u

#define to_disk(x) container_of(x, struct sm_disk, sm)

/*----------------------------------------------------------------
 * Bitmaps in memory
 *--------------------------------------------------------------*/

static unsigned entry_get(const uint8_t *entries, unsigned e)
{
	uint64_t w = load_le64(entries + 8u * (e / 32u)) >> ((e % 32u) * 2u);

	return (unsigned)(((w & 1u) << 1) | ((w >> 1) & 1u));
}

static void entry_set(uint8_t *entries, unsigned e, unsigned v)
{
	uint8_t *p = entries + 8u * (e / 32u);
	unsigned shift = (e % 32u) * 2u;
	uint64_t pair = ((uint64_t)((v >> 1) & 1u)) | ((uint64_t)(v & 1u) << 1);
	uint64_t w = load_le64(p);

	store_le64(p, (w & ~(3ull << shift)) | (pair << shift));
}

static unsigned valid_entries(const struct sm_disk *d, uint64_t j)
{
	uint64_t first = j * SM_ENTRIES_PER_BITMAP;
	uint64_t left = d->nr_blocks - first;

	return left < SM_ENTRIES_PER_BITMAP ? (unsigned)left : SM_ENTRIES_PER_BITMAP;
}

static int read_entries(struct sm_disk *d, uint64_t b, uint8_t *dst)
{
	struct bm_block *blk;
	struct pd_err err;
	int r;

	r = bm_read_lock(d->bm, b, &sm_bitmap_validator, &blk, &err);
	if (r)
		return r;
	memcpy(dst, (const uint8_t *)bm_block_data(blk) + SM_BITMAP_HEADER_SIZE,
	       BITMAP_BYTES);
	bm_unlock(blk);
	return 0;
}

/* Writes bitmap j's entries to block b (a block new in this transaction). */
static int write_entries(struct sm_disk *d, uint64_t j, uint64_t b, struct pd_err *err)
{
	struct bm_block *blk;
	int r;

	r = bm_write_lock_zero(d->bm, b, &sm_bitmap_validator, &blk, err);
	if (r)
		return r;
	memcpy((uint8_t *)bm_block_data_rw(blk) + SM_BITMAP_HEADER_SIZE,
	       d->bitmaps[j].cur, BITMAP_BYTES);
	bm_unlock(blk);
	return 0;
}

static void drop_bitmap(struct sm_disk *d, struct bitmap_state *bs)
{
	if (bs->cur)
		d->nr_loaded--;
	free(bs->cur);
	free(bs->old);
	bs->cur = bs->old = NULL;
}

/* Makes room for one more loaded bitmap, keeping bitmap keep. */
static int evict_one(struct sm_disk *d, uint64_t keep)
{
	for (uint64_t n = 0; n < d->nr_bitmaps; n++) {
		uint64_t j = d->clock++ % d->nr_bitmaps;
		struct bitmap_state *bs = d->bitmaps + j;
		struct pd_err err;
		int r;

		if (j == keep || !bs->cur)
			continue;
		if (bs->dirty) {
			if (d->metadata || !d->tm)
				continue;
			if (!bs->spill_home) {
				uint64_t b;

				r = sm_new_block(tm_sm(d->tm), &b);
				if (r)
					return r;
				bs->spill_home = b;
			}
			r = write_entries(d, j, bs->spill_home, &err);
			if (r)
				return r;
		}
		drop_bitmap(d, bs);
		return 0;
	}
	return 0;	/* nothing to drop: go over the limit */
}

static int load_bitmap(struct sm_disk *d, uint64_t j)
{
	struct bitmap_state *bs = d->bitmaps + j;
	uint64_t src = bs->spill_home ? bs->spill_home : bs->blocknr;
	int r;

	if (bs->cur)
		return 0;
	if (d->max_loaded && d->nr_loaded >= d->max_loaded) {
		r = evict_one(d, j);
		if (r)
			return r;
	}
	bs->cur = calloc(1, BITMAP_BYTES);
	if (!bs->cur)
		return -ENOMEM;
	if (src) {
		r = read_entries(d, src, bs->cur);
		if (r) {
			free(bs->cur);
			bs->cur = NULL;
			return r;
		}
	}
	d->nr_loaded++;
	return 0;
}

/*
 * The entries of bitmap j as committed, for the allocator: NULL when they
 * are those of cur (unchanged) or all zero (never written).  The metadata
 * map keeps them from the first change; the data map reads them back
 * from the committed block only when it allocates.
 */
static int committed_entries(struct sm_disk *d, uint64_t j, const uint8_t **out)
{
	struct bitmap_state *bs = d->bitmaps + j;

	*out = NULL;
	if (!bs->dirty || !bs->blocknr)
		return 0;
	if (!bs->old) {
		bs->old = malloc(BITMAP_BYTES);
		if (!bs->old)
			return -ENOMEM;
		if (read_entries(d, bs->blocknr, bs->old)) {
			free(bs->old);
			bs->old = NULL;
			return -EIO;
		}
	}
	*out = bs->old;
	return 0;
}

/* About to change bitmap j (loaded). */
static int make_dirty(struct sm_disk *d, uint64_t j)
{
	struct bitmap_state *bs = d->bitmaps + j;

	if (bs->dirty)
		return 0;
	/* the metadata map allocates all the time: keep the committed entries now */
	if (d->metadata && bs->blocknr && !bs->old) {
		bs->old = malloc(BITMAP_BYTES);
		if (!bs->old)
			return -ENOMEM;
		memcpy(bs->old, bs->cur, BITMAP_BYTES);
	}
	bs->dirty = true;
	return 0;
}

/*----------------------------------------------------------------
 * Counts
 *--------------------------------------------------------------*/

static int disk_get_count(struct space_map *sm, uint64_t b, uint32_t *count)
{
	struct sm_disk *d = to_disk(sm);
	uint64_t j = b / SM_ENTRIES_PER_BITMAP, v64;
	uint8_t le[4];
	struct pd_err err;
	unsigned v;
	int r;

	if (b >= d->nr_blocks)
		return -EINVAL;
	r = load_bitmap(d, j);
	if (r)
		return r;
	v = entry_get(d->bitmaps[j].cur, (unsigned)(b % SM_ENTRIES_PER_BITMAP));
	if (v < 3) {
		*count = v;
		return 0;
	}
	if (u64_map_get(&d->pending, b, &v64) && v64 >= 3) {
		*count = (uint32_t)v64;
		return 0;
	}
	r = btree_lookup(d->bm, d->ref_count_root, SM_REF_COUNT_VALUE_SIZE, b, le, &err);
	if (r == -ENODATA)
		return -EILSEQ;		/* bitmap says 3+, tree has nothing */
	if (r)
		return r;
	*count = load_le32(le);
	return 0;
}

static int disk_set_count(struct space_map *sm, uint64_t b, uint32_t count)
{
	struct sm_disk *d = to_disk(sm);
	uint64_t j = b / SM_ENTRIES_PER_BITMAP;
	struct bitmap_state *bs = d->bitmaps + j;
	uint32_t old;
	int r;

	r = disk_get_count(sm, b, &old);
	if (r)
		return r;
	if (old == count)
		return 0;
	r = make_dirty(d, j);
	if (r)
		return r;
	entry_set(bs->cur, (unsigned)(b % SM_ENTRIES_PER_BITMAP), count >= 3 ? 3u : count);
	if (!old && count) {
		bs->nr_free--;
		d->nr_allocated++;
	} else if (old && !count) {
		bs->nr_free++;
		d->nr_allocated--;
	}
	if (count >= 3 || old >= 3)
		return u64_map_put(&d->pending, b, count);
	return 0;
}

/*
 * The common cases of inc and dec (a count staying under 3, in a bitmap
 * already being changed) touch only the bitmap: restore and merge make
 * millions of them.
 */
static int disk_inc(struct space_map *sm, uint64_t b)
{
	struct sm_disk *d = to_disk(sm);
	uint64_t j = b / SM_ENTRIES_PER_BITMAP;
	uint32_t c;
	int r;

	if (b < d->nr_blocks && d->bitmaps[j].dirty && d->bitmaps[j].cur) {
		struct bitmap_state *bs = d->bitmaps + j;
		unsigned e = (unsigned)(b % SM_ENTRIES_PER_BITMAP);
		unsigned v = entry_get(bs->cur, e);

		if (v < 2) {
			entry_set(bs->cur, e, v + 1);
			if (!v) {
				bs->nr_free--;
				d->nr_allocated++;
			}
			return 0;
		}
	}
	r = disk_get_count(sm, b, &c);
	return r ? r : disk_set_count(sm, b, c + 1);
}

static int disk_dec(struct space_map *sm, uint64_t b)
{
	struct sm_disk *d = to_disk(sm);
	uint64_t j = b / SM_ENTRIES_PER_BITMAP;
	uint32_t c;
	int r;

	if (b < d->nr_blocks && d->bitmaps[j].dirty && d->bitmaps[j].cur) {
		struct bitmap_state *bs = d->bitmaps + j;
		unsigned e = (unsigned)(b % SM_ENTRIES_PER_BITMAP);
		unsigned v = entry_get(bs->cur, e);

		if (v == 1 || v == 2) {
			entry_set(bs->cur, e, v - 1);
			if (v == 1) {
				bs->nr_free++;
				d->nr_allocated--;
			}
			return 0;
		}
	}
	r = disk_get_count(sm, b, &c);
	if (r)
		return r;
	if (!c)
		return -EINVAL;
	return disk_set_count(sm, b, c - 1);
}

static uint64_t disk_nr_blocks(struct space_map *sm)
{
	return to_disk(sm)->nr_blocks;
}

static uint64_t disk_nr_free(struct space_map *sm)
{
	struct sm_disk *d = to_disk(sm);

	return d->nr_blocks - d->nr_allocated;
}

/*----------------------------------------------------------------
 * Allocation
 *--------------------------------------------------------------*/

/* First entry >= e of bitmap j free now and at the last commit, or -1. */
static int find_free(struct sm_disk *d, uint64_t j, unsigned e)
{
	struct bitmap_state *bs = d->bitmaps + j;
	unsigned n = valid_entries(d, j);
	const uint64_t lo = 0x5555555555555555ull;
	const uint8_t *old;

	if (committed_entries(d, j, &old))
		return -1;

	while (e < n) {
		unsigned w = e / 32u;
		uint64_t x = load_le64(bs->cur + 8u * w);
		uint64_t busy;

		if (old)
			x |= load_le64(old + 8u * w);
		busy = (x | (x >> 1)) & lo;	/* a bit per entry in use */
		/* entries before e count as in use (even bits only, like busy) */
		busy |= ((1ull << (2 * (e % 32u))) - 1) & lo;
		if (busy != lo) {
			unsigned k = (unsigned)__builtin_ctzll(~busy & lo) / 2u;
			unsigned found = w * 32u + k;

			return found < n ? (int)found : -1;
		}
		e = (w + 1) * 32u;
	}
	return -1;
}

static int disk_new_block(struct space_map *sm, uint64_t *out)
{
	struct sm_disk *d = to_disk(sm);
	uint64_t start = d->cursor < d->nr_blocks ? d->cursor : 0;
	uint64_t j0 = start / SM_ENTRIES_PER_BITMAP;
	int r;

	for (uint64_t k = 0; k <= d->nr_bitmaps; k++) {
		uint64_t j = (j0 + k) % (d->nr_bitmaps ? d->nr_bitmaps : 1);
		unsigned e = k == 0 ? (unsigned)(start % SM_ENTRIES_PER_BITMAP) : 0;
		int f;

		if (!d->nr_bitmaps)
			break;
		if (!d->bitmaps[j].nr_free)
			continue;
		r = load_bitmap(d, j);
		if (r)
			return r;
		f = find_free(d, j, e);
		if (f < 0)
			continue;
		*out = j * SM_ENTRIES_PER_BITMAP + (uint64_t)f;
		d->cursor = *out + 1;
		return disk_set_count(sm, *out, 1);
	}
	return -ENOSPC;
}

/*----------------------------------------------------------------
 * Growing
 *--------------------------------------------------------------*/

static int resize_bitmaps(struct sm_disk *d, uint64_t nr_blocks)
{
	uint64_t nr_bitmaps = nr_blocks / SM_ENTRIES_PER_BITMAP +
			      (nr_blocks % SM_ENTRIES_PER_BITMAP ? 1u : 0u);
	struct bitmap_state *n;

	if (nr_blocks < d->nr_blocks)
		return -EOVERFLOW;	/* disk_extend wrapped */
	if (d->metadata && nr_bitmaps > SM_MD_MAX_BITMAPS)
		return -ENOSPC;
	/* a bitmap takes a metadata block: no more of them than the device has */
	if (!sm_size_fits(nr_blocks, bm_nr_blocks(d->bm)))
		return -ENOSPC;
	n = realloc(d->bitmaps, (nr_bitmaps ? nr_bitmaps : 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	d->bitmaps = n;
	for (uint64_t j = d->nr_bitmaps; j < nr_bitmaps; j++) {
		memset(n + j, 0, sizeof(*n));
		n[j].nr_free = SM_ENTRIES_PER_BITMAP;
		n[j].dirty = true;	/* a bitmap that has never been written */
	}
	d->nr_bitmaps = nr_bitmaps;
	d->nr_blocks = nr_blocks;
	return 0;
}

static int disk_extend(struct space_map *sm, uint64_t extra)
{
	struct sm_disk *d = to_disk(sm);

	return resize_bitmaps(d, d->nr_blocks + extra);
}

/*----------------------------------------------------------------
 * Commit
 *--------------------------------------------------------------*/

static void index_entry(const struct sm_disk *d, uint64_t j, uint64_t home,
			struct sm_index_entry_disk *ie)
{
	const struct bitmap_state *bs = d->bitmaps + j;
	unsigned n = valid_entries(d, j), nfb = n;

	for (unsigned e = 0; e < n; e++)
		if (!entry_get(bs->cur, e)) {
			nfb = e;
			break;
		}
	ie->blocknr = cpu_to_le64(home);
	ie->nr_free = cpu_to_le32(bs->nr_free);
	ie->none_free_before = cpu_to_le32(nfb);
}

static struct btree_info ref_count_info(struct sm_disk *d)
{
	struct btree_info info = { .tm = d->tm };

	info.vt.size = SM_REF_COUNT_VALUE_SIZE;
	return info;
}

/* Moves the pending counts of 3+ into the ref-count tree.  Returns how many. */
static int apply_pending(struct sm_disk *d, uint64_t *applied, struct pd_err *err)
{
	struct btree_info info = ref_count_info(d);

	*applied = 0;
	while (d->pending.nr) {
		struct u64_map batch = d->pending;
		uint64_t pos = 0, b, c;
		int r = 0;

		/* applying may change counts again: those land in a fresh pending map */
		u64_map_init(&d->pending);
		while (!r && u64_map_next(&batch, &pos, &b, &c)) {
			uint64_t root;

			(*applied)++;
			if (c >= 3) {
				uint8_t le[4];
				bool inserted;

				store_le32(le, (uint32_t)c);
				r = btree_insert(&info, d->ref_count_root, b, le, &root,
						 &inserted, err);
			} else {
				r = btree_remove(&info, d->ref_count_root, b, &root, err);
				if (r == -ENODATA) {
					r = 0;
					root = d->ref_count_root;
				}
			}
			if (!r)
				d->ref_count_root = root;
		}
		u64_map_exit(&batch);
		if (r)
			return r;
	}
	return 0;
}

static void after_commit(struct sm_disk *d)
{
	for (uint64_t j = 0; j < d->nr_bitmaps; j++) {
		struct bitmap_state *bs = d->bitmaps + j;

		bs->dirty = false;
		bs->new_home = 0;
		bs->spill_home = 0;
		/* clean bitmaps are read again when needed: memory stays small */
		drop_bitmap(d, bs);
	}
}

static int data_commit(struct sm_disk *d, struct pd_err *err)
{
	struct btree_info index_info = { .tm = d->tm };
	uint64_t applied;
	int r;

	index_info.vt.size = SM_INDEX_ENTRY_SIZE;
	r = apply_pending(d, &applied, err);
	if (r)
		return r;
	for (uint64_t j = 0; j < d->nr_bitmaps; j++) {
		struct bitmap_state *bs = d->bitmaps + j;
		struct sm_index_entry_disk ie;
		struct bm_block *blk;
		uint64_t root;
		bool inserted;

		if (!bs->dirty)
			continue;
		r = load_bitmap(d, j);
		if (r)
			return pd_err_set(err, r, "data space map: cannot read bitmap %" PRIu64,
					  j);
		if (bs->spill_home) {
			/* written early: its block is new in this transaction, rewrite it */
			r = write_entries(d, j, bs->spill_home, err);
			if (r)
				return r;
			index_entry(d, j, bs->spill_home, &ie);
		} else {
			r = tm_new_block(d->tm, &sm_bitmap_validator, &blk, err);
			if (r)
				return r;
			memcpy((uint8_t *)bm_block_data_rw(blk) + SM_BITMAP_HEADER_SIZE, bs->cur,
			       BITMAP_BYTES);
			index_entry(d, j, bm_block_location(blk), &ie);
			tm_unlock(d->tm, blk);
		}
		bs->none_free_before = le32_to_cpu(ie.none_free_before);
		if (bs->blocknr) {
			r = tm_dec(d->tm, bs->blocknr);
			if (r)
				return pd_err_set(err, r, "data space map: cannot free old bitmap");
		}
		bs->blocknr = le64_to_cpu(ie.blocknr);
		bs->spill_home = 0;
		bs->dirty = false;
		drop_bitmap(d, bs);	/* memory goes back as the commit goes on */
		r = btree_insert(&index_info, d->index_root, j, &ie, &root, &inserted, err);
		if (r)
			return r;
		d->index_root = root;
	}
	after_commit(d);
	return 0;
}

static int metadata_commit(struct sm_disk *d, struct pd_err *err)
{
	struct sm_metadata_index_disk *idx;
	struct bm_block *blk;
	uint64_t new_index = 0;
	bool changed;
	int r;

	d->in_commit = true;
	do {
		uint64_t applied;

		changed = false;
		r = apply_pending(d, &applied, err);
		if (r)
			goto out;
		if (applied)
			changed = true;
		for (uint64_t j = 0; j < d->nr_bitmaps; j++) {
			struct bitmap_state *bs = d->bitmaps + j;
			uint64_t home;

			if (!bs->dirty || bs->new_home)
				continue;
			r = load_bitmap(d, j);
			if (!r)
				r = disk_new_block(&d->sm, &home);
			if (!r && bs->blocknr)
				r = disk_dec(&d->sm, bs->blocknr);
			if (r) {
				pd_err_set(err, r, "metadata space map: no room for its bitmaps");
				goto out;
			}
			bs->new_home = home;
			changed = true;
		}
		if (!new_index) {
			r = disk_new_block(&d->sm, &new_index);
			if (!r && d->index_root)
				r = disk_dec(&d->sm, d->index_root);
			if (r) {
				pd_err_set(err, r, "metadata space map: no room for its index");
				goto out;
			}
			changed = true;
		}
	} while (changed);

	/* nothing changes any more: write the bitmaps and the index */
	r = bm_write_lock_zero(d->bm, new_index, &sm_index_validator, &blk, err);
	if (r)
		goto out;
	idx = bm_block_data_rw(blk);
	for (uint64_t j = 0; j < d->nr_bitmaps; j++) {
		struct bitmap_state *bs = d->bitmaps + j;
		uint64_t home = bs->new_home ? bs->new_home : bs->blocknr;

		if (bs->new_home) {
			r = write_entries(d, j, bs->new_home, err);
			if (r)
				break;
			index_entry(d, j, home, &idx->entry[j]);
		} else {
			/* unchanged: its entry stays as it was */
			idx->entry[j].blocknr = cpu_to_le64(home);
			idx->entry[j].nr_free = cpu_to_le32(bs->nr_free);
			idx->entry[j].none_free_before = cpu_to_le32(bs->none_free_before);
		}
		bs->blocknr = home;
	}
	bm_unlock(blk);
	if (r)
		goto out;
	d->index_root = new_index;
	after_commit(d);
out:
	d->in_commit = false;
	return r;
}

static int disk_commit(struct space_map *sm, struct pd_err *err)
{
	struct sm_disk *d = to_disk(sm);

	if (!d->tm)
		return pd_err_set(err, -EINVAL, "space map has no transaction manager");
	return d->metadata ? metadata_commit(d, err) : data_commit(d, err);
}

static int disk_copy_root(struct space_map *sm, void *blob)
{
	struct sm_disk *d = to_disk(sm);
	struct sm_root root = {
		.nr_blocks = d->nr_blocks,
		.nr_allocated = d->nr_allocated,
		.bitmap_root = d->index_root,
		.ref_count_root = d->ref_count_root,
	};

	sm_root_encode(&root, blob);
	return 0;
}

static void disk_destroy(struct space_map *sm)
{
	struct sm_disk *d = to_disk(sm);

	for (uint64_t j = 0; j < d->nr_bitmaps; j++)
		drop_bitmap(d, d->bitmaps + j);
	free(d->bitmaps);
	u64_map_exit(&d->pending);
	free(d);
}

/*
 * A run of blocks (a restored range mapping): whole words of 32 free
 * entries become count 1 at once; anything else goes one entry at a time.
 */
static int disk_inc_range(struct space_map *sm, uint64_t b, uint64_t n)
{
	struct sm_disk *d = to_disk(sm);
	const uint64_t ones = 0xAAAAAAAAAAAAAAAAull;	/* 32 entries of count 1 */

	if (b > d->nr_blocks || n > d->nr_blocks - b)
		return -EINVAL;
	while (n) {
		uint64_t j = b / SM_ENTRIES_PER_BITMAP;
		unsigned e = (unsigned)(b % SM_ENTRIES_PER_BITMAP);
		struct bitmap_state *bs = d->bitmaps + j;
		uint64_t w;
		int r;

		if (e % 32u || n < 32 || !bs->cur || !bs->dirty ||
		    (w = load_le64(bs->cur + 8u * (e / 32u)))) {
			/* the slow path also loads the bitmap and marks it changed */
			r = disk_inc(sm, b);
			if (r)
				return r;
			b++;
			n--;
			continue;
		}
		store_le64(bs->cur + 8u * (e / 32u), ones);
		bs->nr_free -= 32;
		d->nr_allocated += 32;
		b += 32;
		n -= 32;
	}
	return 0;
}

/* The bitmaps of these blocks that are not in memory, read in one batch. */
static void disk_prefetch(struct space_map *sm, const uint64_t *blocks, unsigned n)
{
	struct sm_disk *d = to_disk(sm);
	uint64_t homes[IO_MAX_BATCH];
	unsigned m = 0;

	for (unsigned i = 0; i < n; i++) {
		struct bitmap_state *bs;
		uint64_t home;

		if (blocks[i] >= d->nr_blocks)
			continue;
		bs = d->bitmaps + blocks[i] / SM_ENTRIES_PER_BITMAP;
		home = bs->spill_home ? bs->spill_home : bs->blocknr;
		if (bs->cur || !home || (m && homes[m - 1] == home))
			continue;
		homes[m++] = home;
		if (m == IO_MAX_BATCH) {
			bm_prefetch(d->bm, homes, m);
			m = 0;
		}
	}
	bm_prefetch(d->bm, homes, m);
}

static const struct space_map_ops disk_ops = {
	.destroy = disk_destroy,
	.nr_blocks = disk_nr_blocks,
	.nr_free = disk_nr_free,
	.get_count = disk_get_count,
	.set_count = disk_set_count,
	.inc = disk_inc,
	.dec = disk_dec,
	.new_block = disk_new_block,
	.extend = disk_extend,
	.commit = disk_commit,
	.copy_root = disk_copy_root,
	.prefetch = disk_prefetch,
	.inc_range = disk_inc_range,
};

/*----------------------------------------------------------------
 * Construction
 *--------------------------------------------------------------*/

static int alloc_disk(struct bm *bm, struct tm *tm, bool metadata, struct sm_disk **out)
{
	struct sm_disk *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->sm.ops = &disk_ops;
	d->bm = bm;
	d->tm = tm;
	d->metadata = metadata;
	d->max_loaded = metadata ? 0 : DATA_SM_MAX_LOADED;
	u64_map_init(&d->pending);
	*out = d;
	return 0;
}

int sm_disk_create(struct tm *tm, uint64_t nr_blocks, struct space_map **out,
		   struct pd_err *err)
{
	struct btree_info info = { .tm = tm };
	struct sm_disk *d = NULL;
	int r;

	if (!sm_size_fits(nr_blocks, bm_nr_blocks(tm_bm(tm))))
		return pd_err_set(err, -ENOSPC,
				  "%" PRIu64 " data blocks need more space map bitmaps than the metadata device has blocks (%" PRIu64 ")",
				  nr_blocks,
				  bm_nr_blocks(tm_bm(tm)));
	r = alloc_disk(tm_bm(tm), tm, false, &d);
	if (!r)
		r = resize_bitmaps(d, nr_blocks);
	if (r) {
		if (d)
			disk_destroy(&d->sm);
		return pd_err_set(err, r, "out of memory");
	}
	info.vt.size = SM_INDEX_ENTRY_SIZE;
	r = btree_empty(&info, &d->index_root, err);
	if (!r) {
		info.vt.size = SM_REF_COUNT_VALUE_SIZE;
		r = btree_empty(&info, &d->ref_count_root, err);
	}
	if (r) {
		disk_destroy(&d->sm);
		return r;
	}
	*out = &d->sm;
	return 0;
}

int sm_disk_open(struct tm *tm, const void *root_blob, struct space_map **out,
		 struct pd_err *err)
{
	struct btree_cursor *c = NULL;
	struct sm_root root;
	struct sm_disk *d = NULL;
	uint64_t next = 0;
	int r;

	sm_root_decode(root_blob, &root);
	if (!sm_size_fits(root.nr_blocks, bm_nr_blocks(tm_bm(tm))))
		return pd_err_set(err, -EILSEQ,
				  "data space map size %" PRIu64 " needs more bitmaps than the metadata device has blocks (%" PRIu64 ")",
				  root.nr_blocks,
				  bm_nr_blocks(tm_bm(tm)));
	r = alloc_disk(tm_bm(tm), tm, false, &d);
	if (!r)
		r = resize_bitmaps(d, root.nr_blocks);
	if (r) {
		if (d)
			disk_destroy(&d->sm);
		return pd_err_set(err, r, "out of memory");
	}
	d->nr_allocated = root.nr_allocated;
	d->index_root = root.bitmap_root;
	d->ref_count_root = root.ref_count_root;

	r = btree_cursor_create(d->bm, d->index_root, SM_INDEX_ENTRY_SIZE, &c, err);
	while (!r && !(r = btree_cursor_next_leaf(c, err))) {
		const void *leaf = btree_cursor_leaf(c);

		for (uint32_t i = 0; i < btree_cursor_nr(c); i++) {
			const struct sm_index_entry_disk *ie =
				node_value_c(leaf, i, SM_INDEX_ENTRY_SIZE);
			uint64_t j = node_key(leaf, i);

			if (j != next || j >= d->nr_bitmaps) {
				r = pd_err_set(err, -EILSEQ,
					       "data space map index is damaged: entry %" PRIu64 " where %" PRIu64 " was expected",
					       j, next);
				break;
			}
			d->bitmaps[j].blocknr = le64_to_cpu(ie->blocknr);
			d->bitmaps[j].nr_free = le32_to_cpu(ie->nr_free);
			d->bitmaps[j].none_free_before = le32_to_cpu(ie->none_free_before);
			d->bitmaps[j].dirty = false;
			next++;
		}
	}
	btree_cursor_destroy(c);
	if (r == -ENODATA && next != d->nr_bitmaps)
		r = pd_err_set(err, -EILSEQ,
			       "data space map index is damaged: %" PRIu64 " of %" PRIu64 " bitmaps listed",
			       next, d->nr_bitmaps);
	if (r == -ENODATA)
		r = 0;
	if (r) {
		pd_err_prefix(err, "data space map");
		disk_destroy(&d->sm);
		return r;
	}
	*out = &d->sm;
	return 0;
}

int sm_metadata_create(struct bm *bm, uint64_t nr_blocks, struct space_map **out,
		       struct pd_err *err)
{
	struct sm_disk *d = NULL;
	int r;

	if (nr_blocks > SM_MD_MAX_BLOCKS)
		nr_blocks = SM_MD_MAX_BLOCKS;
	r = alloc_disk(bm, NULL, true, &d);
	if (!r)
		r = resize_bitmaps(d, nr_blocks);
	if (!r)
		r = disk_set_count(&d->sm, 0, 1);	/* the superblock */
	if (r) {
		if (d)
			disk_destroy(&d->sm);
		return pd_err_set(err, r, "cannot create the metadata space map: %s",
				  strerror(-r));
	}
	d->cursor = 1;
	*out = &d->sm;
	return 0;
}

int sm_metadata_open(struct bm *bm, const void *root_blob, struct space_map **out,
		     struct pd_err *err)
{
	const struct sm_metadata_index_disk *idx;
	struct bm_block *blk;
	struct sm_root root;
	struct sm_disk *d = NULL;
	int r;

	sm_root_decode(root_blob, &root);
	/* a map larger than the device is the caller's to refuse or shrink */
	if (root.nr_blocks > SM_MD_MAX_BLOCKS)
		return pd_err_set(err, -EILSEQ,
				  "metadata space map size %" PRIu64 " is beyond the format's limit",
				  root.nr_blocks);
	r = alloc_disk(bm, NULL, true, &d);
	if (!r)
		r = resize_bitmaps(d, root.nr_blocks);
	if (r) {
		if (d)
			disk_destroy(&d->sm);
		return pd_err_set(err, r, "out of memory");
	}
	d->nr_allocated = root.nr_allocated;
	d->index_root = root.bitmap_root;
	d->ref_count_root = root.ref_count_root;
	r = bm_read_lock(bm, d->index_root, &sm_index_validator, &blk, err);
	if (r) {
		pd_err_prefix(err, "metadata space map");
		disk_destroy(&d->sm);
		return r;
	}
	idx = bm_block_data(blk);
	for (uint64_t j = 0; j < d->nr_bitmaps; j++) {
		uint64_t b = le64_to_cpu(idx->entry[j].blocknr);

		if (!b || b >= bm_nr_blocks(bm)) {
			bm_unlock(blk);
			disk_destroy(&d->sm);
			return pd_err_set(err, -EILSEQ,
					  "metadata space map index entry %" PRIu64 " is damaged (block %" PRIu64 ")",
					  j, b);
		}
		d->bitmaps[j].blocknr = b;
		d->bitmaps[j].nr_free = le32_to_cpu(idx->entry[j].nr_free);
		d->bitmaps[j].none_free_before = le32_to_cpu(idx->entry[j].none_free_before);
		d->bitmaps[j].dirty = false;
	}
	bm_unlock(blk);
	*out = &d->sm;
	return 0;
}

int sm_metadata_shrink(struct space_map *sm, uint64_t nr_blocks, struct pd_err *err)
{
	struct sm_disk *d = to_disk(sm);
	uint64_t nr_bitmaps = (nr_blocks + SM_ENTRIES_PER_BITMAP - 1) / SM_ENTRIES_PER_BITMAP;
	int r;

	if (nr_blocks >= d->nr_blocks)
		return 0;
	for (uint64_t b = nr_blocks; b < d->nr_blocks; b++) {
		uint32_t c;

		r = disk_get_count(sm, b, &c);
		if (r)
			return pd_err_set(err, r, "metadata space map: cannot read the count of block %" PRIu64,
					  b);
		if (c)
			return pd_err_set(err, -ENOSPC,
					  "metadata block %" PRIu64 " is in use: the metadata cannot shrink to %" PRIu64 " blocks",
					  b, nr_blocks);
	}
	/* the bitmaps past the new end go; their blocks are free again */
	for (uint64_t j = nr_bitmaps; j < d->nr_bitmaps; j++) {
		struct bitmap_state *bs = d->bitmaps + j;

		if (bs->blocknr) {
			r = disk_dec(sm, bs->blocknr);
			if (r)
				return pd_err_set(err, r, "metadata space map: cannot free bitmap %" PRIu64,
						  j);
		}
		drop_bitmap(d, bs);
	}
	d->nr_bitmaps = nr_bitmaps;
	d->nr_blocks = nr_blocks;
	if (d->cursor >= nr_blocks)
		d->cursor = 0;
	return 0;
}

int sm_metadata_attach_tm(struct space_map *sm, struct tm *tm, struct pd_err *err)
{
	struct sm_disk *d = to_disk(sm);
	struct btree_info info = { .tm = tm };

	d->tm = tm;
	if (d->ref_count_root)
		return 0;
	info.vt.size = SM_REF_COUNT_VALUE_SIZE;
	return btree_empty(&info, &d->ref_count_root, err);
}
