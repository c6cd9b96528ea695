/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "u64-map.h"

#include <errno.h>
#include <stdlib.h>

static uint64_t slot(const struct u64_map *m, uint64_t key)
{
	uint64_t i = ((key * 0x9E3779B97F4A7C15ull) >> 21) & (m->size - 1);

	while (m->used[i] && m->keys[i] != key)
		i = (i + 1) & (m->size - 1);
	return i;
}

void u64_map_exit(struct u64_map *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	u64_map_init(m);
}

static int grow(struct u64_map *m)
{
	struct u64_map n;

	n.size = m->size ? m->size * 2 : 64;
	n.nr = 0;
	n.keys = malloc(n.size * sizeof(uint64_t));
	n.vals = malloc(n.size * sizeof(uint64_t));
	n.used = calloc(n.size, 1);
	if (!n.keys || !n.vals || !n.used) {
		free(n.keys);
		free(n.vals);
		free(n.used);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < m->size; i++)
		if (m->used[i]) {
			uint64_t s = slot(&n, m->keys[i]);

			n.used[s] = 1;
			n.keys[s] = m->keys[i];
			n.vals[s] = m->vals[i];
			n.nr++;
		}
	u64_map_exit(m);
	*m = n;
	return 0;
}

int u64_map_put(struct u64_map *m, uint64_t key, uint64_t val)
{
	uint64_t s;

	if ((m->nr + 1) * 2 > m->size && grow(m))
		return -ENOMEM;
	s = slot(m, key);
	if (!m->used[s]) {
		m->used[s] = 1;
		m->keys[s] = key;
		m->nr++;
	}
	m->vals[s] = val;
	return 0;
}

bool u64_map_get(const struct u64_map *m, uint64_t key, uint64_t *val)
{
	uint64_t s;

	if (!m->size)
		return false;
	s = slot(m, key);
	if (!m->used[s])
		return false;
	if (val)
		*val = m->vals[s];
	return true;
}

bool u64_map_next(const struct u64_map *m, uint64_t *pos, uint64_t *key, uint64_t *val)
{
	while (*pos < m->size) {
		uint64_t i = (*pos)++;

		if (m->used[i]) {
			*key = m->keys[i];
			*val = m->vals[i];
			return true;
		}
	}
	return false;
}
