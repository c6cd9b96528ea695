/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

/*
 * Helpers of the libFuzzer harnesses: metadata images in memory files
 * (memfd, named /proc/self/fd/N so that commands and engines open them
 * like any file), and the checksum pass that makes mutated blocks pass
 * validation, so that the fuzzer reaches the code behind the checksums
 * (the hardening campaign's inputs were made the same way).
 */

#include "persistent-data/array-disk.h"
#include "persistent-data/block-manager.h"
#include "persistent-data/btree-disk.h"
#include "persistent-data/checksum.h"
#include "persistent-data/endian.h"
#include "persistent-data/io-engine.h"
#include "persistent-data/space-map-disk.h"

#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_BLOCK 4096u
/* an image is at most this many blocks (a longer input is cut) */
#define FUZZ_MAX_BLOCKS 64u

struct mem_file {
	int fd;
	char path[64];
};

/* A memory file of size bytes holding data (len bytes, the rest zero). */
static inline int mem_file_create(struct mem_file *m, const void *data, size_t len,
				  size_t size)
{
	m->fd = memfd_create("fuzz", 0);
	if (m->fd < 0)
		return -1;
	if (len > size)
		len = size;
	if (ftruncate(m->fd, (off_t)size) ||
	    (len && pwrite(m->fd, data, len, 0) != (ssize_t)len)) {
		close(m->fd);
		return -1;
	}
	snprintf(m->path, sizeof(m->path), "/proc/self/fd/%d", m->fd);
	return 0;
}

static inline void mem_file_destroy(struct mem_file *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

/* A copy of a memory file (for an in-place command). */
static inline int mem_file_copy(struct mem_file *dst, const struct mem_file *src)
{
	off_t size = lseek(src->fd, 0, SEEK_END);
	uint8_t *buf;
	int r;

	if (size < 0)
		return -1;
	buf = malloc((size_t)size ? (size_t)size : 1);
	if (!buf)
		return -1;
	if (pread(src->fd, buf, (size_t)size, 0) != size) {
		free(buf);
		return -1;
	}
	r = mem_file_create(dst, buf, (size_t)size, (size_t)size);
	free(buf);
	return r;
}

/*
 * Stamps the checksum of every block whose header names its own location:
 * block 0 and the held root as superblocks, the metadata space map's
 * index block as such,
 * a block with a node flag as a btree node, others as bitmaps.
 */
/*
 * Restamps block b (at p) by what its header says it is, when the header
 * names b: the space-map index at md_index, a btree node, else a bitmap.
 */
static inline void stamp_pd_block(uint8_t *p, uint64_t b, uint64_t md_index)
{
	if (load_le64(p + 8) != b)
		return;
	if (b == md_index)
		block_set_csum(p, CSUM_XOR_SM_INDEX);
	else if (load_le32(p + 4) & 3u)
		block_set_csum(p, CSUM_XOR_BTREE_NODE);
	else
		block_set_csum(p, CSUM_XOR_SM_BITMAP);
}

static inline void fix_checksums(uint8_t *img, size_t nr_blocks)
{
	uint64_t md_index = 0, held = 0;

	if (nr_blocks) {
		struct sm_root r;

		sm_root_decode(img + 192, &r);	/* metadata space map root */
		md_index = r.bitmap_root;
		held = load_le64(img + 56);	/* a held metadata snapshot */
	}
	for (size_t b = 1; b < nr_blocks; b++) {
		uint8_t *p = img + b * FUZZ_BLOCK;

		if (b == held && load_le64(p + 8) == b)
			block_set_csum(p, CSUM_XOR_SUPERBLOCK);
		else
			stamp_pd_block(p, b, md_index);
	}
	if (nr_blocks)
		block_set_csum(img, CSUM_XOR_SUPERBLOCK);
}

/*
 * The fuzz input as an image of FUZZ_MAX_BLOCKS blocks (zero-padded, a
 * longer input cut) with checksums fixed; *nr_blocks says how many.
 * free() it.
 */
static inline uint8_t *image_from_input(const uint8_t *data, size_t size, size_t min_blocks,
					size_t *nr_blocks)
{
	size_t n;
	uint8_t *img;

	/* the whole device: the seeds' space maps describe 64 blocks */
	n = FUZZ_MAX_BLOCKS;
	(void)min_blocks;
	img = calloc(n ? n : 1, FUZZ_BLOCK);
	if (!img)
		return NULL;
	memcpy(img, data, size < n * FUZZ_BLOCK ? size : n * FUZZ_BLOCK);
	fix_checksums(img, n);
	*nr_blocks = n;
	return img;
}

/*
 * Stamps the checksums of a cache or era metadata image: block 0 as the
 * superblock (sb_xor), the metadata space map's index block (its root at
 * sm_root_offset in the superblock), array blocks (their own location at
 * byte 16 and a max_entries that fits their value size), btree nodes and
 * bitmaps (their location at byte 8).
 */
static inline void fix_md_checksums(uint8_t *img, size_t nr_blocks, uint32_t sb_xor,
				    size_t sm_root_offset)
{
	struct sm_root r;
	uint64_t md_index;

	if (!nr_blocks)
		return;
	sm_root_decode(img + sm_root_offset, &r);
	md_index = r.bitmap_root;
	for (size_t b = 1; b < nr_blocks; b++) {
		uint8_t *p = img + b * FUZZ_BLOCK;
		uint32_t vs = load_le32(p + 12);

		if (load_le64(p + 16) == b && vs && load_le32(p + 4) == (4096u - 24u) / vs)
			block_set_csum(p, ARRAY_CSUM_XOR);
		else
			stamp_pd_block(p, b, md_index);
	}
	block_set_csum(img, sb_xor);
}

/*
 * Before a command's main runs again in the same process: glibc's getopt
 * keeps a pointer into the previous run's argv (inside a "-q" it has not
 * finished), and the commands only set optind = 1, which does not clear
 * it; stale bytes there read as options ('V' exits 0 with nothing
 * written).  optind = 0 and one call make getopt start afresh.
 */
static inline void getopt_forget(void)
{
	char arg0[] = "fuzz", *argv[] = { arg0, NULL };

	optind = 0;
	(void)getopt(1, argv, "");
}

/* Runs a command's main on a NULL-terminated argument list (argv[0] first). */
static inline int run_cmd(int (*fn)(int, char **), const char *arg0, ...)
{
	char *argv[32];
	int n = 0;
	va_list ap;
	const char *a;

	argv[n++] = (char *)arg0;
	va_start(ap, arg0);
	while ((a = va_arg(ap, const char *)) && n < 31)
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	getopt_forget();
	return fn(n, argv);
}

/*
 * The XML restore harnesses: RESTORE runs on the input (as -i) into a 1 MiB
 * memory file, with OPT1 OPT2 added when not NULL.  Oracle: a restore that
 * exits 0 has written metadata CHECK accepts; abort() otherwise.
 */
static inline void restore_then_check(const uint8_t *data, size_t size,
				      int (*restore)(int, char **), const char *restore_name,
				      const char *opt1, const char *opt2,
				      int (*check)(int, char **), const char *check_name)
{
	struct mem_file xml = { .fd = -1 }, out = { .fd = -1 };

	if (!mem_file_create(&xml, data, size, size) &&
	    !mem_file_create(&out, NULL, 0, 1u << 20) &&
	    !run_cmd(restore, restore_name, "-q", "-i", xml.path, "-o", out.path, opt1, opt2,
		     NULL) &&
	    run_cmd(check, check_name, "-q", out.path, NULL)) {
		fprintf(stderr, "%s exited 0 but %s rejects its output\n", restore_name,
			check_name);
		abort();
	}
	mem_file_destroy(&xml);
	mem_file_destroy(&out);
}

#endif
