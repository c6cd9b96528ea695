/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_SPACE_MAP_H
#define PD_SPACE_MAP_H

/*
 * Space maps: a reference count per block, and allocation.
 *
 * Polymorphic through an ops table, as in the kernel; implementations
 * embed struct space_map and recover themselves with container_of:
 *   core     - in memory only; no command uses it, the unit tests run
 *              the btree write side over it;
 *   disk     - a data space map on disk (index btree + bitmaps + ref-count
 *              tree), changed copy-on-write and written at commit;
 *   metadata - the metadata space map (index block + bitmaps + ref-count
 *              tree), which also accounts for its own blocks.
 *
 * Allocation policy (kernel's): search on from the last allocation,
 * wrapping once; never hand out a block that was in use at the last
 * commit, nor one freed since (it becomes free for real at commit).
 */

#include "error.h"

#include <stdbool.h>
#include <stdint.h>

struct space_map;

struct space_map_ops {
	void (*destroy)(struct space_map *sm);
	uint64_t (*nr_blocks)(struct space_map *sm);
	/* blocks with a zero count now */
	uint64_t (*nr_free)(struct space_map *sm);
	int (*get_count)(struct space_map *sm, uint64_t b, uint32_t *count);
	int (*set_count)(struct space_map *sm, uint64_t b, uint32_t count);
	int (*inc)(struct space_map *sm, uint64_t b);
	int (*dec)(struct space_map *sm, uint64_t b);
	/* a free block, its count set to 1; -ENOSPC when none */
	int (*new_block)(struct space_map *sm, uint64_t *b);
	/* grows the map by extra blocks (all free) */
	int (*extend)(struct space_map *sm, uint64_t extra);
	/*
	 * Writes what changed (disk maps) and makes freed blocks
	 * allocatable again; fills the 128-byte root blob for the
	 * superblock (core maps: -EOPNOTSUPP unless written by sm_write).
	 */
	int (*commit)(struct space_map *sm, struct pd_err *err);
	int (*copy_root)(struct space_map *sm, void *blob);
	/*
	 * Reads ahead, in one batch, what counting these blocks will read
	 * (may be NULL: nothing to read ahead).
	 */
	void (*prefetch)(struct space_map *sm, const uint64_t *blocks, unsigned n);
	/* inc of n consecutive blocks (may be NULL: one inc each) */
	int (*inc_range)(struct space_map *sm, uint64_t b, uint64_t n);
};

struct space_map {
	const struct space_map_ops *ops;
};

static inline void sm_destroy(struct space_map *sm)
{
	if (sm)
		sm->ops->destroy(sm);
}

static inline uint64_t sm_nr_blocks(struct space_map *sm)
{
	return sm->ops->nr_blocks(sm);
}

static inline uint64_t sm_nr_free(struct space_map *sm)
{
	return sm->ops->nr_free(sm);
}

static inline int sm_get_count(struct space_map *sm, uint64_t b, uint32_t *c)
{
	return sm->ops->get_count(sm, b, c);
}

static inline int sm_set_count(struct space_map *sm, uint64_t b, uint32_t c)
{
	return sm->ops->set_count(sm, b, c);
}

static inline int sm_inc(struct space_map *sm, uint64_t b)
{
	return sm->ops->inc(sm, b);
}

static inline int sm_dec(struct space_map *sm, uint64_t b)
{
	return sm->ops->dec(sm, b);
}

static inline int sm_new_block(struct space_map *sm, uint64_t *b)
{
	return sm->ops->new_block(sm, b);
}

static inline int sm_extend(struct space_map *sm, uint64_t extra)
{
	return sm->ops->extend(sm, extra);
}

static inline int sm_commit(struct space_map *sm, struct pd_err *err)
{
	return sm->ops->commit(sm, err);
}

static inline int sm_copy_root(struct space_map *sm, void *blob)
{
	return sm->ops->copy_root(sm, blob);
}

static inline int sm_inc_range(struct space_map *sm, uint64_t b, uint64_t n)
{
	if (sm->ops->inc_range)
		return sm->ops->inc_range(sm, b, n);
	for (uint64_t i = 0; i < n; i++) {
		int r = sm->ops->inc(sm, b + i);

		if (r)
			return r;
	}
	return 0;
}

static inline void sm_prefetch(struct space_map *sm, const uint64_t *blocks, unsigned n)
{
	if (sm->ops->prefetch)
		sm->ops->prefetch(sm, blocks, n);
}

/* An in-memory space map of nr_blocks free blocks. */
int sm_core_create(uint64_t nr_blocks, struct space_map **out);

/* The on-disk maps (disk, metadata) are made and read by space-map-disk.h. */

/* The counts behind a core space map (not for other kinds). */
struct count_map;
struct count_map *sm_core_counts(struct space_map *sm);

#endif
