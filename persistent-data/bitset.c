/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "bitset.h"

#include <errno.h>
#include <stdlib.h>

int bitset_test(struct bm *bm, uint64_t root, uint64_t index, bool *bit,
		struct pd_err *err)
{
	uint8_t le[8];
	int r = array_get(bm, root, 8, index / 64, le, err);

	if (!r)
		*bit = (load_le64(le) >> (index % 64)) & 1;
	return r;
}

struct bwalk {
	uint64_t nr_bits;
	const struct bitset_walk_ops *ops;
	void *ctx;
};

static int bw_node(void *ctx, const struct btree_node_info *n)
{
	struct bwalk *w = ctx;

	return w->ops->node ? w->ops->node(w->ctx, n) : 0;
}

static int bw_ablock(void *ctx, uint64_t index, uint64_t block)
{
	struct bwalk *w = ctx;

	return w->ops->ablock ? w->ops->ablock(w->ctx, index, block) : 0;
}

static int bw_values(void *ctx, uint64_t first, uint32_t nr, const void *values)
{
	struct bwalk *w = ctx;
	uint64_t lo = first * 64, n = (uint64_t)nr * 64;

	if (lo >= w->nr_bits)
		return 0;
	if (n > w->nr_bits - lo)
		n = w->nr_bits - lo;
	return w->ops->bits ? w->ops->bits(w->ctx, lo, n, values) : 0;
}

static uint64_t bit_of(const struct bwalk *w, uint64_t word)
{
	if (word == UINT64_MAX)
		return UINT64_MAX;
	if (word > w->nr_bits / 64)
		return w->nr_bits;
	return word * 64 < w->nr_bits ? word * 64 : w->nr_bits;
}

static void bw_damage(void *ctx, uint64_t lo, uint64_t hi, const char *msg)
{
	struct bwalk *w = ctx;

	if (w->ops->damage)
		w->ops->damage(w->ctx, bit_of(w, lo), bit_of(w, hi), msg);
}

int bitset_walk(struct bm *bm, uint64_t root, uint64_t nr_bits,
		const struct bitset_walk_ops *ops, void *ctx, struct pd_err *err)
{
	struct bwalk w = { .nr_bits = nr_bits, .ops = ops, .ctx = ctx };
	struct array_walk_ops ao = {
		.node = bw_node, .ablock = bw_ablock, .values = bw_values, .damage = bw_damage,
	};

	return array_walk(bm, root, 8, bitset_nr_words(nr_bits), &ao, &w, err);
}

int bitset_empty(struct tm *tm, uint64_t *root, struct pd_err *err)
{
	return array_empty(tm, root, err);
}

int bitset_set(struct tm *tm, uint64_t root, uint64_t index, bool bit,
	       uint64_t *new_root, struct pd_err *err)
{
	uint8_t le[8];
	uint64_t w, nw;
	int r = array_get(tm_bm(tm), root, 8, index / 64, le, err);

	if (r)
		return r;
	w = load_le64(le);
	nw = bit ? w | 1ull << (index % 64) : w & ~(1ull << (index % 64));
	if (nw == w) {
		*new_root = root;
		return 0;
	}
	store_le64(le, nw);
	return array_set(tm, root, 8, index / 64, le, new_root, err);
}

struct bitset_builder {
	struct array_builder *ab;
	uint64_t word;
	unsigned nr;		/* bits in word */
	uint64_t size;
};

int bitset_builder_create(struct tm *tm, struct bitset_builder **out, struct pd_err *err)
{
	struct bitset_builder *b = calloc(1, sizeof(*b));
	int r;

	if (!b)
		return pd_err_set(err, -ENOMEM, "out of memory");
	r = array_builder_create(tm, 8, &b->ab, err);
	if (r) {
		free(b);
		return r;
	}
	*out = b;
	return 0;
}

static int push_word(struct bitset_builder *b, struct pd_err *err)
{
	uint8_t le[8];

	store_le64(le, b->word);
	b->word = 0;
	b->nr = 0;
	return array_builder_push(b->ab, le, err);
}

int bitset_builder_push(struct bitset_builder *b, bool bit, struct pd_err *err)
{
	if (bit)
		b->word |= 1ull << b->nr;
	b->nr++;
	b->size++;
	return b->nr == 64 ? push_word(b, err) : 0;
}

int bitset_builder_push_n(struct bitset_builder *b, bool bit, uint64_t nr,
			  struct pd_err *err)
{
	int r;

	while (nr && b->nr) {
		r = bitset_builder_push(b, bit, err);
		if (r)
			return r;
		nr--;
	}
	if (nr >= 64) {
		uint8_t le[8];

		store_le64(le, bit ? UINT64_MAX : 0);
		r = array_builder_push_n(b->ab, le, nr / 64, err);
		if (r)
			return r;
		b->size += nr / 64 * 64;
		nr %= 64;
	}
	while (nr--) {
		r = bitset_builder_push(b, bit, err);
		if (r)
			return r;
	}
	return 0;
}

uint64_t bitset_builder_size(const struct bitset_builder *b)
{
	return b->size;
}

int bitset_builder_finish(struct bitset_builder *b, uint64_t *root, struct pd_err *err)
{
	int r = 0;

	if (b->nr)
		r = push_word(b, err);
	return r ? r : array_builder_finish(b->ab, root, err);
}

void bitset_builder_destroy(struct bitset_builder *b)
{
	if (!b)
		return;
	array_builder_destroy(b->ab);
	free(b);
}
