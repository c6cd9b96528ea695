/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THINCMDS_PACK_H
#define THINCMDS_PACK_H

/*
 * The metadata pack format of thin-provisioning-tools 1.x
 * (thin_metadata_pack / thin_metadata_unpack).
 *
 * A pack file is a header of four little-endian u64s (magic
 * 0xa537a0aa6309ef77, format version 3, block size 4096, number of blocks
 * of the packed device), then chunks: a little-endian u64 length and that
 * many bytes of one zlib stream.  Inflated, a chunk is a sequence of
 * blocks, each a little-endian u64 block number and the block's 4096
 * bytes encoded for a small byte-code machine (pack_vm_decode()).  Only
 * blocks whose checksum matches one of the metadata block types (thin,
 * cache or era superblock, btree node, space map bitmap or index, array
 * block) are packed; unpacking leaves every other block zero.
 *
 * We write each block as one literal instruction and let zlib compress;
 * we read every instruction 1.x writes.  Memory is bounded by a chunk
 * (1024 blocks).
 */

#include "persistent-data/error.h"
#include "persistent-data/io-engine.h"

#include <stdint.h>
#include <stdio.h>

#define PACK_MAGIC		0xa537a0aa6309ef77ull
#define PACK_VERSION		3u
#define PACK_BLOCKS_PER_CHUNK	1024u

/* Is this 4096-byte block one of the metadata block types 1.x packs? */
bool pack_block_is_metadata(const void *block);

/*
 * Decodes one block's byte code from in[0..len): 0 and *used (bytes
 * consumed) with out filled, or -EILSEQ with a message.
 */
int pack_vm_decode(const uint8_t *in, size_t len, uint8_t out[MD_BLOCK_SIZE],
		   size_t *used, struct pd_err *err);

typedef void (*pack_progress_fn)(void *ctx, uint64_t done, uint64_t total);

struct pack_stats {
	uint64_t nr_blocks;	/* of the input */
	uint64_t packed;	/* metadata blocks written */
};

/* Packs every metadata block of in to out (positioned at its start). */
int md_pack(struct io_engine *in, FILE *out, pack_progress_fn progress, void *ctx,
	    struct pack_stats *st, struct pd_err *err);

/*
 * Reads a pack's header: 0 and *nr_blocks, or -EILSEQ ("Not a pack
 * file", unsupported version or block size).
 */
int md_unpack_header(FILE *in, uint64_t *nr_blocks, struct pd_err *err);

/*
 * Unpacks the chunks that follow the header into out, whose size must be
 * at least nr_blocks blocks (the caller sizes a regular file).  Blocks
 * not in the pack are not written.
 */
int md_unpack(FILE *in, struct io_engine *out, uint64_t nr_blocks,
	      pack_progress_fn progress, void *ctx, struct pack_stats *st,
	      struct pd_err *err);

#endif
