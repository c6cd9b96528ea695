/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_COUNT_MAP_H
#define PD_COUNT_MAP_H

/*
 * An in-memory reference count per block: two bits per block (0, 1, 2,
 * "3 or more") plus a hash table for the counts of 3 and more, the same
 * encoding idea as the on-disk space maps.  Memory: nr_blocks / 4 bytes
 * plus 16 bytes per block counted 3 or more.
 */

#include <stdbool.h>
#include <stdint.h>

struct count_map;

int cm_create(uint64_t nr_blocks, struct count_map **out);
void cm_destroy(struct count_map *cm);	/* accepts NULL */

uint64_t cm_nr_blocks(const struct count_map *cm);
uint32_t cm_get(const struct count_map *cm, uint64_t b);
/* 0 or -ENOMEM; b must be < nr_blocks. Counts saturate at UINT32_MAX. */
int cm_set(struct count_map *cm, uint64_t b, uint32_t count);
int cm_inc(struct count_map *cm, uint64_t b);
int cm_dec(struct count_map *cm, uint64_t b);	/* -EINVAL at 0 */

/* Number of blocks with a non-zero count. */
uint64_t cm_nr_allocated(const struct count_map *cm);

/*
 * The next block >= b whose count is c (c in 0..2 fast; any c works),
 * or UINT64_MAX.
 */
uint64_t cm_find(const struct count_map *cm, uint64_t b, uint32_t c);

#endif
