/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "transaction-manager.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct tm {
	struct bm *bm;
	struct space_map *sm;
	uint8_t *is_new;	/* a bit per metadata block: allocated or shadowed in this transaction */
	uint64_t nr_bits;
};

static bool bit_test(const struct tm *tm, uint64_t b)
{
	return b < tm->nr_bits && (tm->is_new[b >> 3] & (1u << (b & 7)));
}

static void bit_set(struct tm *tm, uint64_t b)
{
	if (b < tm->nr_bits)
		tm->is_new[b >> 3] |= (uint8_t)(1u << (b & 7));
}

int tm_create(struct bm *bm, struct space_map *md_sm, struct tm **out,
	      struct pd_err *err)
{
	struct tm *tm = calloc(1, sizeof(*tm));

	if (!tm)
		return pd_err_set(err, -ENOMEM, "out of memory");
	tm->bm = bm;
	tm->sm = md_sm;
	tm->nr_bits = bm_nr_blocks(bm);
	tm->is_new = calloc(tm->nr_bits / 8 + 1, 1);
	if (!tm->is_new) {
		free(tm);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	*out = tm;
	return 0;
}

void tm_destroy(struct tm *tm)
{
	if (!tm)
		return;
	free(tm->is_new);
	free(tm);
}

struct bm *tm_bm(struct tm *tm)
{
	return tm->bm;
}

struct space_map *tm_sm(struct tm *tm)
{
	return tm->sm;
}

bool tm_is_new(struct tm *tm, uint64_t b)
{
	return bit_test(tm, b);
}

int tm_read_lock(struct tm *tm, uint64_t b, const struct bm_validator *v,
		 struct bm_block **out, struct pd_err *err)
{
	return bm_read_lock(tm->bm, b, v, out, err);
}

int tm_new_block(struct tm *tm, const struct bm_validator *v,
		 struct bm_block **out, struct pd_err *err)
{
	uint64_t b;
	int r;

	r = sm_new_block(tm->sm, &b);
	if (r == -ENOSPC)
		return pd_err_set(err, r, "out of metadata space");
	if (r)
		return pd_err_set(err, r, "metadata space map: %s", strerror(-r));
	if (b >= bm_nr_blocks(tm->bm)) {
		sm_dec(tm->sm, b);
		return pd_err_set(err, -ENOSPC,
				  "metadata space map handed out block %" PRIu64 " beyond the device",
				  b);
	}
	r = bm_write_lock_zero(tm->bm, b, v, out, err);
	if (r) {
		sm_dec(tm->sm, b);
		return r;
	}
	bit_set(tm, b);
	return 0;
}

int tm_shadow(struct tm *tm, uint64_t b, const struct bm_validator *v,
	      struct bm_block **out, bool *inc_children, struct pd_err *err)
{
	struct bm_block *orig, *copy;
	uint32_t count;
	int r;

	r = sm_get_count(tm->sm, b, &count);
	if (r)
		return pd_err_set(err, r, "metadata space map: no count for block %" PRIu64,
				  b);
	if (!count)
		return pd_err_set(err, -EILSEQ,
				  "metadata block %" PRIu64 " is in use but has a reference count of 0",
				  b);
	*inc_children = count > 1;
	if (bit_test(tm, b) && count == 1)
		return bm_write_lock(tm->bm, b, v, out, err);

	r = bm_read_lock(tm->bm, b, v, &orig, err);
	if (r)
		return r;
	r = tm_new_block(tm, v, &copy, err);
	if (r) {
		bm_unlock(orig);
		return r;
	}
	memcpy(bm_block_data_rw(copy), bm_block_data(orig), MD_BLOCK_SIZE);
	bm_unlock(orig);
	r = sm_dec(tm->sm, b);
	if (r) {
		bm_unlock(copy);
		return pd_err_set(err, r, "metadata space map: cannot drop block %" PRIu64,
				  b);
	}
	*out = copy;
	return 0;
}

void tm_unlock(struct tm *tm, struct bm_block *blk)
{
	(void)tm;
	bm_unlock(blk);
}

int tm_inc(struct tm *tm, uint64_t b)
{
	return sm_inc(tm->sm, b);
}

int tm_dec(struct tm *tm, uint64_t b)
{
	return sm_dec(tm->sm, b);
}

int tm_ref(struct tm *tm, uint64_t b, uint32_t *count)
{
	return sm_get_count(tm->sm, b, count);
}

int tm_pre_commit(struct tm *tm, struct pd_err *err)
{
	return bm_flush(tm->bm, err);
}

int tm_commit_superblock(struct tm *tm, const void *sb_block, struct pd_err *err)
{
	struct io_engine *io = bm_io(tm->bm);
	int r;

	bm_forget(tm->bm, 0);
	r = io_write_block(io, 0, sb_block);
	if (r)
		return pd_err_set(err, r, "writing the superblock failed: %s", strerror(-r));
	r = io_flush(io);
	if (r)
		return pd_err_set(err, r, "flushing the metadata device failed: %s",
				  strerror(-r));
	memset(tm->is_new, 0, tm->nr_bits / 8 + 1);
	return 0;
}
