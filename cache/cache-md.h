/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef CACHE_MD_H
#define CACHE_MD_H

/*
 * dm-cache metadata, versions 1 and 2 (doc/cache-era-format.md section
 * 4): the superblock, the mapping array (cache block -> origin block and
 * flags), the hint array, the discard bitset and (v2) the dirty bitset.
 *
 * Reading: cache_md_open() reads and checks block 0; cache_md_walk()
 * streams the mappings, then the hints of the mapped blocks, to a
 * visitor, in cache block order, with bounded memory (an array block
 * at a time plus the block cache).  Writing: a cache_writer takes the
 * same stream (mappings in ascending cache block order, then hints in
 * ascending order) and builds fresh metadata, committed at the end.
 */

#include "persistent-data/block-manager.h"
#include "cache-disk.h"
#include "persistent-data/error.h"
#include "persistent-data/io-engine.h"
#include "persistent-data/pd-store.h"
#include "persistent-data/space-map-disk.h"

#include <stdbool.h>
#include <stdint.h>



struct cache_sb {
	uint32_t flags;
	uint8_t uuid[16];
	uint64_t magic;
	uint32_t version;
	char policy_name[CACHE_POLICY_NAME_SIZE + 1];
	uint32_t policy_hint_size;
	uint8_t metadata_sm_root[SM_ROOT_BLOB_SIZE];
	uint64_t mapping_root;
	uint64_t hint_root;
	uint64_t discard_root;
	uint64_t discard_block_size;
	uint64_t discard_nr_blocks;
	uint32_t data_block_size;
	uint32_t metadata_block_size;
	uint32_t cache_blocks;
	uint32_t compat_flags;
	uint32_t compat_ro_flags;
	uint32_t incompat_flags;
	uint32_t read_hits, read_misses, write_hits, write_misses;
	uint32_t policy_version[3];
	uint64_t dirty_root;
};

/* blocknr, checksum, magic and version 1 or 2, as the kernel. */
extern const struct bm_validator cache_sb_validator;

void cache_sb_decode(const void *block, struct cache_sb *sb);
/* Encodes at block 0 with blocknr and checksum. */
void cache_sb_encode(const struct cache_sb *sb, void *block);

/*
 * The tools' checks of the fields: roots inside the metadata, sizes
 * sane, hint size a multiple of 4 up to 128, no unknown feature.
 */
int cache_sb_check_fields(const struct cache_sb *sb, uint64_t nr_md_blocks,
			  struct pd_err *err);

static inline uint64_t cache_mapping_oblock(uint64_t v)
{
	return v >> 16;
}

static inline uint32_t cache_mapping_flags(uint64_t v)
{
	return (uint32_t)(v & CACHE_M_FLAGS_MASK);
}

/*----------------------------------------------------------------
 * Reading
 *--------------------------------------------------------------*/

struct cache_md {
	struct io_engine *io;
	struct bm *bm;
	struct cache_sb sb;
};

/*
 * Opens path read-only (write: read-write) and checks its superblock.
 * Errors: too small, "bad checksum in superblock", bad magic or version,
 * bad fields; the engine's open errors.
 */
int cache_md_open(const char *path, bool write, struct cache_md **out, struct pd_err *err);
void cache_md_close(struct cache_md *md);	/* accepts NULL */

/* What a dump or a restore carries. */
struct cache_visitor {
	void *ctx;
	/* uuid as text ("" for none), the rest from the superblock */
	int (*begin)(void *ctx, const struct cache_sb *sb, uint32_t hint_width);
	int (*mapping)(void *ctx, uint64_t cblock, uint64_t oblock, bool dirty);
	int (*hint)(void *ctx, uint64_t cblock, const uint8_t *data, uint32_t len);
	int (*end)(void *ctx);
};

/*
 * Streams the metadata to v: begin, each valid mapping, each hint of a
 * valid mapping, end.  Dirty comes from the mapping's flag (v1) or the
 * dirty bitset (v2).  Without repair, damage ends the walk with -EILSEQ
 * and the reason; with repair, damaged parts are left out.
 */
int cache_md_walk(struct cache_md *md, bool repair, const struct cache_visitor *v,
		  struct pd_err *err);

/*----------------------------------------------------------------
 * Writing fresh metadata
 *--------------------------------------------------------------*/

struct cache_writer_opts {
	uint32_t version;		/* 1 or 2 */
	bool clean_shutdown;		/* set CLEAN_SHUTDOWN */
};

struct cache_writer;
/* Formats the device behind io (which the writer does not own). */
int cache_writer_create(struct io_engine *io, const struct cache_writer_opts *o,
			struct cache_writer **out, struct pd_err *err);
/* A visitor feeding the writer; its end() commits. */
void cache_writer_visitor(struct cache_writer *w, struct cache_visitor *v);
void cache_writer_destroy(struct cache_writer *w);	/* accepts NULL; aborts */
/* The message of the visitor's last error. */
struct pd_err *cache_writer_err(struct cache_writer *w);

#endif
