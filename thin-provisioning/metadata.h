/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_METADATA_H
#define THIN_METADATA_H

/*
 * Read access to a pool's thin metadata: the superblock in use (live, or
 * the held metadata snapshot with the live data space map root patched
 * in), the device details tree and the two-level mapping tree.
 */

#include "persistent-data/block-manager.h"
#include "persistent-data/btree.h"
#include "persistent-data/io-engine.h"
#include "persistent-data/space-map-disk.h"
#include "superblock.h"

#include <stdbool.h>

struct thin_open_opts {
	enum io_engine_kind engine;
	unsigned io_flags;		/* IO_OPEN_* */
	bool metadata_snap;		/* read the held root instead of the live trees */
	uint64_t snap_block;		/* with metadata_snap: 0 = the one block 0 names */
	unsigned cache_blocks;		/* 0 = default */
};

struct thin_metadata {
	struct io_engine *io;
	struct bm *bm;
	struct thin_sb live;		/* block 0 */
	struct thin_sb sb;		/* the superblock in use */
	bool held;			/* sb is the held metadata snapshot */
	struct sm_root data_sm;		/* from the live superblock */
	struct sm_root metadata_sm;	/* live; zero for a held root */
};

/*
 * Opens path.  Errors come with a message in the reference tools' words:
 * too small ("Metadata device/file too small.  Is this binary metadata?",
 * -EFBIG), XML ("This looks like XML. ...", -EPROTO), bad superblock,
 * "no current metadata snap" (-ENODATA with metadata_snap), and the
 * I/O engine's open errors.
 */
int thin_metadata_open(const char *path, const struct thin_open_opts *o,
		       struct thin_metadata **out, struct pd_err *err);
void thin_metadata_close(struct thin_metadata *md);	/* accepts NULL */

/*
 * The first steps of thin_metadata_open only: the I/O engine (too small:
 * -EFBIG with the message above) and the block manager, no superblock
 * read (live, sb, data_sm and metadata_sm are zero).  For thin_check,
 * which examines the superblock itself and reports each fault its way.
 */
int thin_metadata_open_device(const char *path, const struct thin_open_opts *o,
			      struct thin_metadata **out, struct pd_err *err);

/* A thin device: its details and the root of its mapping tree. */
struct thin_device {
	uint64_t dev_id;
	uint64_t mapped_blocks;
	uint64_t transaction_id;
	uint32_t creation_time;
	uint32_t snapshotted_time;
	uint64_t root;			/* bottom-level tree */
};

void thin_details_decode(const void *value, struct thin_device *dev);
void thin_details_encode(const struct thin_device *dev, void *value);

/*
 * Iterates over the devices in id order, joining the details tree with the
 * top level of the mapping tree.  A key present in one tree only is an
 * error with v0.9's message.
 */
struct thin_dev_iter;
int thin_dev_iter_create(struct thin_metadata *md, struct thin_dev_iter **out,
			 struct pd_err *err);
/* 0 and *dev filled, -ENODATA after the last, or an error. */
int thin_dev_iter_next(struct thin_dev_iter *it, struct thin_device *dev,
		       struct pd_err *err);
void thin_dev_iter_destroy(struct thin_dev_iter *it);

/* One device by id: -ENODATA with "device N not found". */
int thin_lookup_device(struct bm *bm, uint64_t details_root, uint64_t mapping_root,
		       uint64_t dev_id, struct thin_device *dev, struct pd_err *err);
int thin_find_device(struct thin_metadata *md, uint64_t dev_id,
		     struct thin_device *dev, struct pd_err *err);

/* Counts the mappings of a bottom tree (strict walk). */
int thin_count_mappings(struct thin_metadata *md, uint64_t root, uint64_t *count,
			struct pd_err *err);

#endif
