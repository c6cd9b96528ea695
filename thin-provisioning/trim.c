/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "thin-provisioning/trim.h"
#include "persistent-data/btree.h"
#include "thin-provisioning/thin-disk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int mark_device(struct thin_metadata *md, const struct thin_device *dev,
		       uint64_t *bits, uint64_t nr, uint64_t *mapped, struct pd_err *err)
{
	struct btree_cursor *c;
	int r;

	r = btree_cursor_create(md->bm, dev->root, THIN_MAPPING_VALUE_SIZE, &c, err);
	if (r)
		return r;
	while (!(r = btree_cursor_next_leaf(c, err))) {
		const uint8_t *vals = node_values_c(btree_cursor_leaf(c));
		uint32_t n = btree_cursor_nr(c);

		for (uint32_t i = 0; i < n; i++) {
			uint64_t d = block_time_block(load_le64(vals + 8u * i));

			if (d >= nr) {
				r = pd_err_set(err, -ERANGE,
					       "device %" PRIu64 " maps data block %" PRIu64 ", beyond the %" PRIu64 " blocks of the pool",
					       dev->dev_id, d,
					       nr);
				break;
			}
			if (!(bits[d / 64] & (1ull << (d % 64)))) {
				bits[d / 64] |= 1ull << (d % 64);
				(*mapped)++;
			}
		}
		if (r)
			break;
	}
	btree_cursor_destroy(c);
	return r == -ENODATA ? 0 : r;
}

int thin_trim_walk(struct thin_metadata *md, trim_range_fn fn, void *ctx,
		   trim_progress_fn progress, void *pctx, struct trim_stats *st,
		   struct pd_err *err)
{
	uint64_t nr = md->data_sm.nr_blocks, words = (nr + 63) / 64, mapped = 0, done = 0;
	uint64_t ranges = 0, unmapped = 0;
	struct thin_dev_iter *it = NULL;
	struct thin_device dev;
	uint64_t *bits;
	int r;

	bits = calloc(words ? words : 1, sizeof(*bits));
	if (!bits)
		return pd_err_set(err, -ENOMEM, "out of memory (%" PRIu64 " data blocks)",
				  nr);
	r = thin_dev_iter_create(md, &it, err);
	while (!r && !(r = thin_dev_iter_next(it, &dev, err)))
		r = mark_device(md, &dev, bits, nr, &mapped, err);
	thin_dev_iter_destroy(it);
	if (r != -ENODATA)
		goto out;
	r = 0;
	/* unmapped runs, whole words of 64 blocks at a time where possible */
	for (uint64_t b = 0; b < nr && !r;) {
		uint64_t begin;

		while (b < nr && (bits[b / 64] & (1ull << (b % 64))))
			b += !(b % 64) && bits[b / 64] == ~0ull && b + 64 <= nr ? 64 : 1;
		if (b >= nr)
			break;
		begin = b;
		while (b < nr && !(bits[b / 64] & (1ull << (b % 64))))
			b += !(b % 64) && !bits[b / 64] && b + 64 <= nr ? 64 : 1;
		ranges++;
		unmapped += b - begin;
		r = fn(ctx, begin, b);
		if (progress && b - done > 65536) {
			progress(pctx, b, nr);
			done = b;
		}
	}
	if (progress)
		progress(pctx, nr, nr);
out:
	if (st) {
		st->nr_data_blocks = nr;
		st->mapped = mapped;
		st->ranges = ranges;
		st->unmapped = unmapped;
	}
	free(bits);
	return r;
}
