/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef ERA_MD_H
#define ERA_MD_H

/*
 * dm-era metadata (doc/cache-era-format.md section 5): the superblock,
 * the writeset tree (era -> a bitset of the blocks written in that era,
 * archived at each era rollover), the era array (block -> the era it
 * was last written in, as digested from archived writesets) and an
 * optional metadata snapshot (a copy of the superblock whose writeset
 * tree and era array roots hold a reference each).
 */

#include "persistent-data/block-manager.h"
#include "era-disk.h"
#include "persistent-data/error.h"
#include "persistent-data/io-engine.h"
#include "persistent-data/space-map-disk.h"
#include "persistent-data/walk-cap.h"

#include <stdbool.h>
#include <stdint.h>



struct era_writeset {
	uint32_t era;
	uint32_t nr_bits;
	uint64_t root;
};

struct era_sb {
	uint32_t flags;
	uint8_t uuid[16];
	uint32_t version;
	uint8_t metadata_sm_root[SM_ROOT_BLOB_SIZE];
	uint32_t data_block_size;
	uint32_t metadata_block_size;
	uint32_t nr_blocks;
	uint32_t current_era;
	uint32_t current_nr_bits;
	uint64_t current_root;
	uint64_t writeset_tree_root;
	uint64_t era_array_root;
	uint64_t metadata_snap;
};

extern const struct bm_validator era_sb_validator;
void era_sb_decode(const void *block, struct era_sb *sb);
void era_sb_encode(const struct era_sb *sb, void *block, uint64_t location);

struct era_md {
	struct io_engine *io;
	struct bm *bm;
	struct era_sb sb;		/* block 0 */
	uint64_t nr_md_blocks;		/* of the metadata space map */
	struct walk_cap budget;		/* blocks reached by all walks together */
};

/* Opens read-only and checks block 0 (and its fields). */
int era_md_open(const char *path, struct era_md **out, struct pd_err *err);
void era_md_close(struct era_md *md);

/*
 * Reads the metadata snapshot block 0 names: its writeset tree and era
 * array roots replace those of md->sb.  -ENODATA: no snapshot taken.
 */
int era_md_use_snapshot(struct era_md *md, struct pd_err *err);

/* What a dump or a restore carries, in this order. */
struct era_visitor {
	void *ctx;
	int (*begin)(void *ctx, const struct era_sb *sb);
	int (*writeset_begin)(void *ctx, uint32_t era, uint32_t nr_bits);
	int (*writeset_bit)(void *ctx, uint32_t bit, bool value);
	int (*writeset_end)(void *ctx);
	int (*era_array_begin)(void *ctx);
	int (*era)(void *ctx, uint32_t block, uint32_t era);
	int (*era_array_end)(void *ctx);
	int (*end)(void *ctx);
};

/*
 * Streams md to v: every writeset with every bit (unless logical), then
 * the era array; logical: no writesets, and each block's era raised to
 * the newest archived writeset that marks it.  repair: damaged parts are
 * left out instead of ending the walk with -EILSEQ.
 */
int era_md_walk(struct era_md *md, bool logical, bool repair, const struct era_visitor *v,
		struct pd_err *err);

/*
 * The era array combined with the archived writesets, as a logical dump
 * and era_invalidate read it.  open() reads the writeset tree and checks
 * every writeset's bitset; walk() then gives each block of the era array
 * in order: its era there, and the newest archived writeset that marks
 * it (marked false: none).  Memory: the writeset list and one block.
 * repair: as era_md_walk.
 */
typedef int (*era_block_fn)(void *ctx, uint32_t block, uint32_t era, bool marked,
			    uint32_t ws_era);
struct era_marks;
int era_marks_open(struct era_md *md, bool repair, struct era_marks **out, struct pd_err *err);
int era_marks_walk(struct era_marks *m, era_block_fn fn, void *ctx, struct pd_err *err);
void era_marks_close(struct era_marks *m);

/* Builds fresh metadata on io from a visitor stream; end() commits. */
struct era_writer;
int era_writer_create(struct io_engine *io, struct era_writer **out, struct pd_err *err);
void era_writer_visitor(struct era_writer *w, struct era_visitor *v);
struct pd_err *era_writer_err(struct era_writer *w);
void era_writer_destroy(struct era_writer *w);

#endif
