/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "block-manager.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/*----------------------------------------------------------------
 * Cache entries
 *--------------------------------------------------------------*/

struct bm_block {
	struct bm *bm;
	uint64_t location;
	void *data;
	const struct bm_validator *validated;	/* NULL: not checked yet */
	unsigned read_locks;
	bool write_locked;
	bool dirty;
	bool in_use;		/* holds a block (in the hash) */
	uint32_t aux;		/* the user's note on this content; 0 when it changes */
	struct bm_block *hash_next;
	struct bm_block *lru_prev, *lru_next;	/* on the LRU while unlocked */
};

struct bm {
	struct io_engine *io;
	unsigned capacity;
	unsigned nr_allocated;	/* entries with a buffer */
	struct bm_block *entries;
	uint8_t *slab;		/* the buffers, one aligned allocation (pages used on demand) */
	struct bm_block **buckets;
	unsigned nr_buckets;	/* power of two */
	struct bm_block lru;	/* sentinel: lru.lru_next is the oldest */
	struct bm_stats stats;
};

static unsigned hash_block(const struct bm *bm, uint64_t b)
{
	return (unsigned)((b * 0x9E3779B97F4A7C15ull) >> 32) & (bm->nr_buckets - 1);
}

static void lru_del(struct bm_block *e)
{
	if (e->lru_next) {
		e->lru_prev->lru_next = e->lru_next;
		e->lru_next->lru_prev = e->lru_prev;
		e->lru_next = e->lru_prev = NULL;
	}
}

static void lru_add_tail(struct bm *bm, struct bm_block *e)
{
	e->lru_prev = bm->lru.lru_prev;
	e->lru_next = &bm->lru;
	bm->lru.lru_prev->lru_next = e;
	bm->lru.lru_prev = e;
}

static struct bm_block *hash_find(struct bm *bm, uint64_t b)
{
	struct bm_block *e = bm->buckets[hash_block(bm, b)];

	while (e && e->location != b)
		e = e->hash_next;
	return e;
}

static void hash_insert(struct bm *bm, struct bm_block *e)
{
	unsigned h = hash_block(bm, e->location);

	e->hash_next = bm->buckets[h];
	bm->buckets[h] = e;
	e->in_use = true;
}

static void hash_remove(struct bm *bm, struct bm_block *e)
{
	struct bm_block **pp = &bm->buckets[hash_block(bm, e->location)];

	while (*pp != e)
		pp = &(*pp)->hash_next;
	*pp = e->hash_next;
	e->hash_next = NULL;
	e->in_use = false;
	e->validated = NULL;
}

/*----------------------------------------------------------------
 * Writing back
 *--------------------------------------------------------------*/

static void prepare(struct bm_block *e)
{
	if (e->validated && e->validated->prepare_for_write)
		e->validated->prepare_for_write(e->validated, e->data, e->location);
}

static int write_entries(struct bm *bm, struct bm_block **v, unsigned n,
			 struct pd_err *err)
{
	struct io_req reqs[IO_MAX_BATCH];

	while (n) {
		unsigned k = n < IO_MAX_BATCH ? n : IO_MAX_BATCH;

		for (unsigned i = 0; i < k; i++) {
			prepare(v[i]);
			reqs[i].block = v[i]->location;
			reqs[i].buf = v[i]->data;
			reqs[i].result = 0;
			reqs[i].nr_blocks = 0;
		}
		if (io_write_many(bm->io, reqs, k)) {
			for (unsigned i = 0; i < k; i++)
				if (reqs[i].result)
					return pd_err_set(err, reqs[i].result,
						"write error on metadata block %" PRIu64 ": %s",
						reqs[i].block, strerror(-reqs[i].result));
		}
		for (unsigned i = 0; i < k; i++)
			v[i]->dirty = false;
		bm->stats.writes += k;
		v += k;
		n -= k;
	}
	return 0;
}

static int cmp_location(const void *a, const void *b);

/*
 * The oldest unlocked block is dirty: write it back together with the
 * other dirty blocks near the old end of the LRU, in block order, so that
 * evictions cost one batched write rather than one write each.
 */
static int write_back_oldest(struct bm *bm, struct pd_err *err)
{
	struct bm_block *v[IO_MAX_BATCH];
	unsigned n = 0, scanned = 0;

	for (struct bm_block *e = bm->lru.lru_next;
	     e != &bm->lru && n < IO_MAX_BATCH && scanned < 4 * IO_MAX_BATCH;
	     e = e->lru_next, scanned++)
		if (e->dirty)
			v[n++] = e;
	qsort(v, n, sizeof(v[0]), cmp_location);
	return write_entries(bm, v, n, err);
}

/*
 * A free entry: one never used, or the least recently used unlocked one
 * (written back first if dirty).
 */
static int get_free_entry(struct bm *bm, struct bm_block **out, struct pd_err *err)
{
	struct bm_block *e;

	if (bm->nr_allocated < bm->capacity) {
		/* one slab, not an aligned allocation per block: no per-block overhead */
		e = bm->entries + bm->nr_allocated;
		e->data = bm->slab + (size_t)bm->nr_allocated * MD_BLOCK_SIZE;
		e->bm = bm;
		bm->nr_allocated++;
		*out = e;
		return 0;
	}
	e = bm->lru.lru_next;
	if (e == &bm->lru)
		return pd_err_set(err, -ENOMEM,
				  "block cache exhausted: %u blocks locked at once",
				  bm->capacity);
	if (e->dirty) {
		int r = write_back_oldest(bm, err);

		if (r)
			return r;
	}
	lru_del(e);
	hash_remove(bm, e);
	*out = e;
	return 0;
}

/*----------------------------------------------------------------
 * Public interface
 *--------------------------------------------------------------*/

/*
 * The buffers, in one allocation.  2 MiB aligned and marked for huge pages
 * when it is that large: a cold start touches hundreds of buffers, and a
 * 4 KiB page fault each cost about 8 ms of a 40 ms in-place merge.
 */
#define HUGE_PAGE_SIZE (2u << 20)

static uint8_t *alloc_slab(size_t size)
{
	void *p;

	if (size >= HUGE_PAGE_SIZE) {
		size = (size + HUGE_PAGE_SIZE - 1) / HUGE_PAGE_SIZE * HUGE_PAGE_SIZE;
		if (posix_memalign(&p, HUGE_PAGE_SIZE, size))
			return NULL;
		(void)madvise(p, size, MADV_HUGEPAGE);
		return p;
	}
	return posix_memalign(&p, MD_BLOCK_SIZE, size) ? NULL : p;
}

int bm_create(struct io_engine *io, unsigned cache_blocks, struct bm **out,
	      struct pd_err *err)
{
	struct bm *bm;

	if (cache_blocks < 16)
		cache_blocks = 16;
	bm = calloc(1, sizeof(*bm));
	if (!bm)
		return pd_err_set(err, -ENOMEM, "out of memory");
	bm->io = io;
	bm->capacity = cache_blocks;
	bm->nr_buckets = 1;
	while (bm->nr_buckets < cache_blocks * 2)
		bm->nr_buckets <<= 1;
	bm->entries = calloc(cache_blocks, sizeof(*bm->entries));
	bm->buckets = calloc(bm->nr_buckets, sizeof(*bm->buckets));
	bm->slab = alloc_slab((size_t)cache_blocks * MD_BLOCK_SIZE);
	if (!bm->entries || !bm->buckets || !bm->slab) {
		free(bm->entries);
		free(bm->buckets);
		free(bm->slab);
		free(bm);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	bm->lru.lru_next = bm->lru.lru_prev = &bm->lru;
	*out = bm;
	return 0;
}

void bm_destroy(struct bm *bm)
{
	if (!bm)
		return;
	free(bm->slab);
	free(bm->entries);
	free(bm->buckets);
	free(bm);
}

struct io_engine *bm_io(struct bm *bm)
{
	return bm->io;
}

uint64_t bm_nr_blocks(struct bm *bm)
{
	return bm->io->nr_blocks;
}

static int read_entry(struct bm *bm, uint64_t b, struct bm_block **out,
		      struct pd_err *err)
{
	struct bm_block *e;
	int r;

	if (b >= bm->io->nr_blocks)
		return pd_err_set(err, -EINVAL,
				  "block %" PRIu64 " is beyond the end of the metadata device (%" PRIu64 " blocks)",
				  b, bm->io->nr_blocks);
	r = get_free_entry(bm, &e, err);
	if (r)
		return r;
	e->location = b;
	e->aux = 0;
	r = io_read_block(bm->io, b, e->data);
	if (r) {
		/* give the entry back: it is the newest free one */
		e->location = UINT64_MAX;
		lru_add_tail(bm, e);
		hash_insert(bm, e);
		return pd_err_set(err, r, "io error reading metadata block %" PRIu64 ": %s",
				  b, strerror(-r));
	}
	bm->stats.reads++;
	hash_insert(bm, e);
	*out = e;
	return 0;
}

static int lock(struct bm *bm, uint64_t b, const struct bm_validator *v,
		bool write, bool zero, struct bm_block **out, struct pd_err *err)
{
	struct bm_block *e = hash_find(bm, b);
	int r;

	if (e) {
		if (e->write_locked || (write && e->read_locks))
			return pd_err_set(err, -EBUSY, "metadata block %" PRIu64 " is already locked",
					  b);
		bm->stats.hits++;
		lru_del(e);
	} else if (zero) {
		if (b >= bm->io->nr_blocks)
			return pd_err_set(err, -EINVAL,
					  "block %" PRIu64 " is beyond the end of the metadata device (%" PRIu64 " blocks)",
					  b, bm->io->nr_blocks);
		r = get_free_entry(bm, &e, err);
		if (r)
			return r;
		e->location = b;
		hash_insert(bm, e);
	} else {
		r = read_entry(bm, b, &e, err);
		if (r)
			return r;
	}

	if (zero) {
		memset(e->data, 0, MD_BLOCK_SIZE);
		e->aux = 0;
		e->validated = v;
	} else if (v && e->validated != v) {
		r = v->check(v, e->data, b, err);
		if (r) {
			e->validated = NULL;
			/* others may hold it: it goes back on the LRU only when free */
			if (!e->read_locks && !e->write_locked)
				lru_add_tail(bm, e);
			return r;
		}
		e->validated = v;
	}

	if (write) {
		e->write_locked = true;
		e->dirty = true;
		e->aux = 0;	/* the holder may change the content */
		if (v)
			e->validated = v;
	} else {
		e->read_locks++;
	}
	*out = e;
	return 0;
}

int bm_read_lock(struct bm *bm, uint64_t b, const struct bm_validator *v,
		 struct bm_block **out, struct pd_err *err)
{
	return lock(bm, b, v, false, false, out, err);
}

int bm_write_lock(struct bm *bm, uint64_t b, const struct bm_validator *v,
		  struct bm_block **out, struct pd_err *err)
{
	return lock(bm, b, v, true, false, out, err);
}

int bm_write_lock_zero(struct bm *bm, uint64_t b, const struct bm_validator *v,
		       struct bm_block **out, struct pd_err *err)
{
	return lock(bm, b, v, true, true, out, err);
}

void bm_unlock(struct bm_block *e)
{
	if (e->write_locked)
		e->write_locked = false;
	else
		e->read_locks--;
	if (!e->read_locks && !e->write_locked)
		lru_add_tail(e->bm, e);
}

const void *bm_block_data(const struct bm_block *e)
{
	return e->data;
}

void *bm_block_data_rw(struct bm_block *e)
{
	return e->data;
}

uint64_t bm_block_location(const struct bm_block *e)
{
	return e->location;
}

uint32_t *bm_block_aux(struct bm_block *e)
{
	return &e->aux;
}

void bm_prefetch(struct bm *bm, const uint64_t *blocks, unsigned n)
{
	struct io_req reqs[IO_MAX_BATCH];
	struct bm_block *ents[IO_MAX_BATCH];
	unsigned limit = bm->capacity / 2, done = 0;

	while (n && done < limit) {
		unsigned k = 0;

		while (n && k < IO_MAX_BATCH && done + k < limit) {
			uint64_t b = *blocks++;
			struct bm_block *e;

			n--;
			/* hashed at once (off the LRU until read): a repeat in blocks is found */
			if (b >= bm->io->nr_blocks || hash_find(bm, b) || get_free_entry(bm, &e, NULL))
				continue;
			e->location = b;
			e->aux = 0;
			hash_insert(bm, e);
			ents[k] = e;
			reqs[k].block = b;
			reqs[k].buf = e->data;
			reqs[k].result = 0;
			reqs[k].nr_blocks = 0;
			k++;
		}
		if (!k)
			continue;
		io_read_many(bm->io, reqs, k);
		for (unsigned i = 0; i < k; i++) {
			struct bm_block *e = ents[i];

			if (reqs[i].result) {
				/* not cached: hashed under a location no lookup asks for */
				hash_remove(bm, e);
				e->location = UINT64_MAX;
				hash_insert(bm, e);
			} else {
				bm->stats.reads++;
			}
			lru_add_tail(bm, e);
		}
		done += k;
	}
}

static int cmp_location(const void *a, const void *b)
{
	uint64_t x = (*(struct bm_block * const *)a)->location;
	uint64_t y = (*(struct bm_block * const *)b)->location;

	return x < y ? -1 : x > y;
}

int bm_flush(struct bm *bm, struct pd_err *err)
{
	struct bm_block **v;
	unsigned n = 0;
	int r;

	v = malloc(sizeof(*v) * (bm->nr_allocated + 1));
	if (!v)
		return pd_err_set(err, -ENOMEM, "out of memory");
	for (unsigned i = 0; i < bm->nr_allocated; i++)
		if (bm->entries[i].in_use && bm->entries[i].dirty)
			v[n++] = bm->entries + i;
	qsort(v, n, sizeof(*v), cmp_location);
	r = write_entries(bm, v, n, err);
	free(v);
	if (r)
		return r;
	r = io_flush(bm->io);
	if (r)
		return pd_err_set(err, r, "flushing the metadata device failed: %s",
				  strerror(-r));
	return 0;
}

void bm_forget(struct bm *bm, uint64_t b)
{
	struct bm_block *e = hash_find(bm, b);

	if (e && !e->read_locks && !e->write_locked) {
		/* keep it hashed under a location no lookup asks for */
		hash_remove(bm, e);
		e->dirty = false;
		e->location = UINT64_MAX;
		hash_insert(bm, e);
	}
}

void bm_get_stats(struct bm *bm, struct bm_stats *st)
{
	*st = bm->stats;
}
