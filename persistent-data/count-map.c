/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "count-map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct overflow {
	uint64_t block;		/* UINT64_MAX: empty slot */
	uint32_t count;
};

struct count_map {
	uint64_t nr_blocks;
	uint64_t nr_allocated;
	uint64_t *words;	/* 32 entries a word */
	struct overflow *ov;
	uint64_t ov_size;	/* power of two, or 0 */
	uint64_t ov_used;
};

#define EMPTY UINT64_MAX

int cm_create(uint64_t nr_blocks, struct count_map **out)
{
	struct count_map *cm = calloc(1, sizeof(*cm));

	if (!cm)
		return -ENOMEM;
	cm->nr_blocks = nr_blocks;
	cm->words = calloc(nr_blocks / 32 + 1, sizeof(uint64_t));
	if (!cm->words) {
		free(cm);
		return -ENOMEM;
	}
	*out = cm;
	return 0;
}

void cm_destroy(struct count_map *cm)
{
	if (!cm)
		return;
	free(cm->words);
	free(cm->ov);
	free(cm);
}

uint64_t cm_nr_blocks(const struct count_map *cm)
{
	return cm->nr_blocks;
}

static unsigned get2(const struct count_map *cm, uint64_t b)
{
	return (unsigned)(cm->words[b / 32] >> ((b % 32) * 2)) & 3u;
}

static void set2(struct count_map *cm, uint64_t b, unsigned v)
{
	unsigned shift = (unsigned)(b % 32) * 2;

	cm->words[b / 32] = (cm->words[b / 32] & ~(3ull << shift)) |
			    ((uint64_t)v << shift);
}

static uint64_t slot_of(const struct count_map *cm, uint64_t b)
{
	uint64_t h = (b * 0x9E3779B97F4A7C15ull) >> 17;

	for (uint64_t i = h & (cm->ov_size - 1);; i = (i + 1) & (cm->ov_size - 1))
		if (cm->ov[i].block == b || cm->ov[i].block == EMPTY)
			return i;
}

static int ov_grow(struct count_map *cm)
{
	uint64_t old_size = cm->ov_size, nsize = old_size ? old_size * 2 : 1024;
	struct overflow *old = cm->ov, *n = malloc(nsize * sizeof(*n));

	if (!n)
		return -ENOMEM;
	for (uint64_t i = 0; i < nsize; i++)
		n[i].block = EMPTY;
	cm->ov = n;
	cm->ov_size = nsize;
	for (uint64_t i = 0; i < old_size; i++)
		if (old[i].block != EMPTY)
			cm->ov[slot_of(cm, old[i].block)] = old[i];
	free(old);
	return 0;
}

static uint32_t ov_get(const struct count_map *cm, uint64_t b)
{
	if (!cm->ov_size)
		return 3;
	{
		uint64_t s = slot_of(cm, b);

		return cm->ov[s].block == b ? cm->ov[s].count : 3;
	}
}

/* Stores a count >= 3; deletion is not needed: see cm_set. */
static int ov_put(struct count_map *cm, uint64_t b, uint32_t c)
{
	uint64_t s;
	int r;

	if ((cm->ov_used + 1) * 2 > cm->ov_size) {
		r = ov_grow(cm);
		if (r)
			return r;
	}
	s = slot_of(cm, b);
	if (cm->ov[s].block == EMPTY) {
		cm->ov[s].block = b;
		cm->ov_used++;
	}
	cm->ov[s].count = c;
	return 0;
}

uint32_t cm_get(const struct count_map *cm, uint64_t b)
{
	unsigned v = get2(cm, b);

	return v < 3 ? v : ov_get(cm, b);
}

int cm_set(struct count_map *cm, uint64_t b, uint32_t c)
{
	unsigned old = get2(cm, b);

	if (c >= 3) {
		int r = ov_put(cm, b, c);

		if (r)
			return r;
	} else if (old == 3) {
		/*
		 * Keep the slot (open addressing) but mark it stale: a later
		 * count >= 3 overwrites it, cm_get ignores it while the two
		 * bits say < 3.
		 */
		uint64_t s = slot_of(cm, b);

		if (cm->ov[s].block == b)
			cm->ov[s].count = 3;
	}
	if (!old && c)
		cm->nr_allocated++;
	else if (old && !c)
		cm->nr_allocated--;
	set2(cm, b, c >= 3 ? 3u : c);
	return 0;
}

int cm_inc(struct count_map *cm, uint64_t b)
{
	uint32_t c = cm_get(cm, b);

	return cm_set(cm, b, c == UINT32_MAX ? c : c + 1);
}

int cm_dec(struct count_map *cm, uint64_t b)
{
	uint32_t c = cm_get(cm, b);

	if (!c)
		return -EINVAL;
	return cm_set(cm, b, c - 1);
}

uint64_t cm_nr_allocated(const struct count_map *cm)
{
	return cm->nr_allocated;
}

uint64_t cm_find(const struct count_map *cm, uint64_t b, uint32_t c)
{
	unsigned want = c >= 3 ? 3u : c;

	while (b < cm->nr_blocks) {
		uint64_t w = cm->words[b / 32];

		/* skip whole words that cannot hold the wanted value */
		if (b % 32 == 0 && b + 32 <= cm->nr_blocks) {
			const uint64_t lo = 0x5555555555555555ull;

			if ((want == 0 && ((w | (w >> 1)) & lo) == lo) ||
			    (want != 0 && w == 0)) {
				b += 32;
				continue;
			}
		}
		if (get2(cm, b) == want && (want < 3 || cm_get(cm, b) == c))
			return b;
		b++;
	}
	return UINT64_MAX;
}
