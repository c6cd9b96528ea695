/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_BITSET_H
#define PD_BITSET_H

/*
 * The kernel's dm-bitset (doc/cache-era-format.md section 3): nr_bits
 * bits over an array (array.h) of little-endian 64-bit words; bit i is
 * bit (i % 64) of word i / 64.  Bits past nr_bits in the last word are
 * written 0 and ignored on reading.  As with the array, the number of
 * bits is kept by the owner, and roots move on every change.
 */

#include "array.h"

#include <stdbool.h>
#include <stdint.h>

#define BITSET_WORD_BITS 64u

static inline uint64_t bitset_nr_words(uint64_t nr_bits)
{
	return (nr_bits + BITSET_WORD_BITS - 1) / BITSET_WORD_BITS;
}

/* Bit `index`: 0 or 1 in *bit; -ENODATA past the array's end. */
int bitset_test(struct bm *bm, uint64_t root, uint64_t index, bool *bit,
		struct pd_err *err);

struct bitset_walk_ops {
	int (*node)(void *ctx, const struct btree_node_info *n);	/* may be NULL */
	int (*ablock)(void *ctx, uint64_t index, uint64_t block);	/* may be NULL */
	/*
	 * nr_bits bits starting at bit `first` (a multiple of 64), packed
	 * in words as on disk (words_le: raw LE 64-bit words).
	 */
	int (*bits)(void *ctx, uint64_t first, uint64_t nr_bits, const void *words_le);
	/* Bits [lo, hi) unreadable (hi = UINT64_MAX: unknown end). */
	void (*damage)(void *ctx, uint64_t lo, uint64_t hi, const char *msg);
};

/* Walks nr_bits bits in order; see array_walk. */
int bitset_walk(struct bm *bm, uint64_t root, uint64_t nr_bits,
		const struct bitset_walk_ops *ops, void *ctx, struct pd_err *err);

/* Write side: an empty bitset, and one bit changed (the path shadowed). */
int bitset_empty(struct tm *tm, uint64_t *root, struct pd_err *err);
int bitset_set(struct tm *tm, uint64_t root, uint64_t index, bool bit,
	       uint64_t *new_root, struct pd_err *err);

/* A new bitset from a stream of bits.  Memory: an array builder. */
struct bitset_builder;
int bitset_builder_create(struct tm *tm, struct bitset_builder **out, struct pd_err *err);
int bitset_builder_push(struct bitset_builder *b, bool bit, struct pd_err *err);
/* nr copies of one bit (whole words at a time where it can). */
int bitset_builder_push_n(struct bitset_builder *b, bool bit, uint64_t nr,
			  struct pd_err *err);
uint64_t bitset_builder_size(const struct bitset_builder *b);
int bitset_builder_finish(struct bitset_builder *b, uint64_t *root, struct pd_err *err);
void bitset_builder_destroy(struct bitset_builder *b);	/* accepts NULL */

static inline int bitset_delete(struct tm *tm, uint64_t root, struct pd_err *err)
{
	return array_delete(tm, root, err);
}

#endif
