/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_U64_MAP_H
#define PD_U64_MAP_H

/*
 * A hash map from u64 keys to u64 values (open addressing).  Used for
 * sparse per-block facts: pending reference counts of 3 and more, subtree
 * sizes of shared nodes.  Memory grows with the entries actually stored.
 */

#include <stdbool.h>
#include <stdint.h>

struct u64_map {
	uint64_t *keys;
	uint64_t *vals;
	uint8_t *used;
	uint64_t size;		/* slots, a power of two, or 0 */
	uint64_t nr;
};

static inline void u64_map_init(struct u64_map *m)
{
	m->keys = m->vals = 0;
	m->used = 0;
	m->size = m->nr = 0;
}

void u64_map_exit(struct u64_map *m);
/* 0 or -ENOMEM */
int u64_map_put(struct u64_map *m, uint64_t key, uint64_t val);
bool u64_map_get(const struct u64_map *m, uint64_t key, uint64_t *val);

/* Iteration: for (i = 0; u64_map_next(m, &i, &k, &v); ) ... (no changes meanwhile) */
bool u64_map_next(const struct u64_map *m, uint64_t *pos, uint64_t *key, uint64_t *val);

#endif
