/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef SNAP_STORE_H
#define SNAP_STORE_H

/*
 * Reading a dm-snapshot persistent exception store (snap-disk.h,
 * doc/snapshot-format.md).  The store is only ever read: it is opened
 * read-only and nothing here writes.
 *
 * Opening reads the header (chunk 0) and decodes it; it does not judge
 * it.  snap_header_check() says whether a header describes a store the
 * tools can read (magic, version, chunk size, a size holding at least the
 * header and the first area); `valid` is reported, not judged: the caller
 * decides what an invalidated store means for it.
 *
 * The table.  snap_walk() streams the exception table in table order
 * (area 0 entry 0 first) and hands each entry to a visitor, as the kernel
 * reads it at activation: an area's entries until the first whose
 * new_chunk is 0 (the end of the table), and the next area only when an
 * area was full.  A store partly merged by the kernel's snapshot-merge
 * target needs no special case: that target clears entries from the end
 * of the table, so the table simply ends earlier (possibly at entry 0 of
 * an area, or of area 0: an empty table).
 *
 * Memory: one area at a time, read in pieces of at most SNAP_IO_BYTES;
 * nothing grows with the table.  Cost: one read per piece of each area
 * up to the end.
 *
 * Errors: negative errno with a message in *err (the path in front).
 * The visitor's non-zero return stops the walk and is returned as is.
 */

#include "persistent-data/error.h"
#include "persistent-data/io-engine.h"

#include <stdbool.h>
#include <stdint.h>

/* The largest read or write the snapshot code issues: one engine batch. */
#define SNAP_IO_BYTES (IO_MAX_BATCH * MD_BLOCK_SIZE)

struct snap_header {
	uint32_t magic, valid, version, chunk_sectors;
};

/* The store's shape, derived from the header and the COW's size. */
struct snap_geometry {
	uint32_t chunk_sectors;
	uint64_t chunk_bytes;
	uint32_t blocks_per_chunk;	/* 4 KiB blocks per chunk */
	uint64_t exceptions_per_area;	/* chunk_bytes / 16 */
	uint64_t cow_bytes;
	uint64_t cow_chunks;		/* whole chunks in the COW */
};

struct snap_store {
	const char *path;
	struct io_engine *io;
	struct snap_header hdr;
	struct snap_geometry geo;	/* filled by snap_header_check() */
};

struct snap_entry {
	uint64_t old_chunk, new_chunk;
};

/* COW chunk of metadata area `area`. */
static inline uint64_t snap_area_chunk(const struct snap_geometry *g, uint64_t area)
{
	return 1 + area * (g->exceptions_per_area + 1);
}

/* Is COW chunk c the header or a metadata area (never a data chunk)? */
static inline bool snap_is_metadata_chunk(const struct snap_geometry *g, uint64_t c)
{
	return c == 0 || (c - 1) % (g->exceptions_per_area + 1) == 0;
}

/*
 * Opens path read-only with the given engine and io_engine_open() flags
 * (IO_OPEN_WRITE is refused), reads and decodes the header.  -ENOSPC
 * "too small" when the COW cannot hold a 4 KiB header block.  On success
 * *out must go to snap_store_close().
 */
int snap_store_open(const char *path, enum io_engine_kind kind, unsigned flags,
		    struct snap_store **out, struct pd_err *err);
void snap_store_close(struct snap_store *s);

/*
 * Judges s->hdr and fills s->geo.  0, or:
 *   -ENODATA  magic 0: never activated (or a transient store's data);
 *   -EILSEQ   another magic: not a persistent snapshot store;
 *   -EPROTO   a version other than 1;
 *   -EINVAL   a chunk size that is not a power of two in [8, 2^21] sectors;
 *   -ENOSPC   a COW too small for its header chunk and first area.
 */
int snap_header_check(struct snap_store *s, struct pd_err *err);

/* Decodes a raw header (for tests and the checker). */
void snap_header_decode(const void *block, struct snap_header *h);

/* Fills g from a chunk size and a COW size (no checks). */
void snap_geometry_init(struct snap_geometry *g, uint32_t chunk_sectors, uint64_t cow_bytes);

enum snap_table_end {
	SNAP_END_MARKER,	/* an entry with new_chunk 0 */
	SNAP_END_DEVICE,	/* an area was full and the next lies past the COW's end */
};

struct snap_table_info {
	uint64_t nr_entries;	/* entries handed to the visitor */
	uint64_t nr_areas;	/* areas read */
	enum snap_table_end end;
	uint64_t end_area;	/* the area holding the end marker, or the missing one */
	uint64_t end_index;	/* the marker's index in that area */
	/* non-zero entries after the end marker in its area (damage; the kernel ignores them) */
	uint64_t after_end;
};

/* index: the entry's position in the whole table, from 0. */
typedef int (*snap_visit_fn)(void *ctx, uint64_t index, const struct snap_entry *e);

/* Needs a header that passed snap_header_check(). */
int snap_walk(struct snap_store *s, snap_visit_fn visit, void *ctx,
	      struct snap_table_info *info, struct pd_err *err);

#endif
