/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "count-map.h"
#include "u64-map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct count_map {
	uint64_t nr_blocks;
	uint64_t nr_allocated;
	uint64_t *words;	/* 32 entries a word */
	struct u64_map ov;	/* counts of 3 and more */
};

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
	u64_map_init(&cm->ov);
	*out = cm;
	return 0;
}

void cm_destroy(struct count_map *cm)
{
	if (!cm)
		return;
	free(cm->words);
	u64_map_exit(&cm->ov);
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

static uint32_t ov_get(const struct count_map *cm, uint64_t b)
{
	uint64_t v;

	return u64_map_get(&cm->ov, b, &v) ? (uint32_t)v : 3;
}

uint32_t cm_get(const struct count_map *cm, uint64_t b)
{
	unsigned v = get2(cm, b);

	return v < 3 ? v : ov_get(cm, b);
}

int cm_set(struct count_map *cm, uint64_t b, uint32_t c)
{
	unsigned old = get2(cm, b);

	/* a stale entry left when a count drops below 3 is ignored by cm_get */
	if (c >= 3 && u64_map_put(&cm->ov, b, c))
		return -ENOMEM;
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
