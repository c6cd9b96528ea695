/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef SNAP_DISK_H
#define SNAP_DISK_H

/*
 * The on-disk layout of a device-mapper persistent snapshot exception
 * store (the COW device of a "snapshot <origin> <cow> P|PO <chunk>"
 * target).  doc/snapshot-format.md describes it byte by byte; the kernel's
 * drivers/md/dm-snap-persistent.c is the authority.
 *
 * Chunk 0 holds the header; metadata areas of one chunk each follow at
 * chunk 1 + a * (exceptions_per_area + 1), each followed by the
 * exceptions_per_area data chunks it describes.  Every field is little
 * endian.
 */

#include "persistent-data/endian.h"

#define SNAP_MAGIC		0x70416e53u	/* "SnAp" read as a le32 */
#define SNAP_VERSION		1u
#define SNAP_SECTOR_SHIFT	9
/* Chunk sizes this suite accepts, in 512-byte sectors: powers of two. */
#define SNAP_MIN_CHUNK_SECTORS	8u		/* 4 KiB: one I/O block */
#define SNAP_MAX_CHUNK_SECTORS	(1u << 21)	/* 1 GiB: the kernel's limit, INT_MAX >> 9 */

/* The first 16 bytes of chunk 0; the rest of the chunk is zero. */
struct snap_disk_header {
	le32 magic;		/* SNAP_MAGIC; 0 on a store never activated */
	le32 valid;		/* 1; 0 once the snapshot overflowed or was dropped */
	le32 version;		/* SNAP_VERSION */
	le32 chunk_size;	/* in 512-byte sectors */
} __attribute__((packed));

PD_STATIC_ASSERT(sizeof(struct snap_disk_header) == 16, "snap_disk_header");

/*
 * One entry of a metadata area: origin chunk old_chunk is held at COW
 * chunk new_chunk.  new_chunk == 0 (the header's chunk) ends the table.
 */
struct snap_disk_exception {
	le64 old_chunk;
	le64 new_chunk;
} __attribute__((packed));

PD_STATIC_ASSERT(sizeof(struct snap_disk_exception) == 16, "snap_disk_exception");

#endif
