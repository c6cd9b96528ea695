/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_IO_ENGINE_H
#define PD_IO_ENGINE_H

/*
 * I/O engines: read and write whole 4 KiB metadata blocks of a file or
 * block device.
 *
 * One interface, several implementations that must give identical results:
 *   sync   - pread/pwrite, one block at a time;
 *   uring  - io_uring via liburing, a batch submitted at once;
 *   aio    - Linux native AIO via libaio, a batch submitted at once.
 * IO_ENGINE_ASYNC picks uring and falls back to aio when io_uring cannot be
 * set up (kernel without it, or built --without-liburing).
 *
 * A request is one block, or with nr_blocks > 1 a run of consecutive
 * blocks (at most IO_MAX_REQ_BLOCKS) in one buffer: one large transfer,
 * for copying data rather than metadata (snapshot_merge).  The sync,
 * io_uring and libaio engines take runs; the fault wrapper splits a
 * written run into its blocks (each a write towards its cut), the overlay
 * wrapper (metadata only) refuses runs (-EINVAL).
 *
 * Buffers handed to an engine must be nr_blocks * MD_BLOCK_SIZE bytes and
 * aligned to MD_BLOCK_SIZE (use io_alloc_block()), because a block device is opened
 * with O_DIRECT: the kernel writes a pool's metadata device below the
 * page cache, so a cached copy could be stale.  A regular file is read
 * and written through the page cache (coherent for every writer of a
 * file), which lets the kernel read ahead of a walk: thin_check on a
 * 16M-mapping file took 0.44 s buffered against 0.8 s direct.
 *
 * Batches: read_many()/write_many() take an array of requests and fill in
 * each request's result (0, or a negative errno for that block alone).
 * They return 0 when every request succeeded and -EIO (or the first
 * request's error) otherwise; the other requests are still done.  A
 * request reaching at or beyond nr_blocks (or longer than
 * IO_MAX_REQ_BLOCKS) fails with -EINVAL without touching the device.
 * Cost: one system call round trip per batch for the async engines, one
 * per block for sync.
 */

#include "error.h"

#include <stdbool.h>
#include <stdint.h>

#define MD_BLOCK_SIZE 4096u
#define MD_BLOCK_SHIFT 12

enum io_engine_kind {
	IO_ENGINE_SYNC,
	IO_ENGINE_ASYNC,	/* io_uring, falling back to libaio */
	IO_ENGINE_URING,	/* io_uring only */
	IO_ENGINE_AIO,		/* libaio only */
};

/* flags for io_engine_open() */
#define IO_OPEN_WRITE	0x1	/* open read-write (default read-only) */
#define IO_OPEN_EXCL	0x2	/* O_EXCL on a block device: refuse if in use */
#define IO_OPEN_NO_DIRECT 0x4	/* never use O_DIRECT (tests, fault wrappers) */
#define IO_OPEN_DIRECT	0x8	/* O_DIRECT on a regular file too (tests) */

struct io_req {
	uint64_t block;		/* metadata block number (the first of the run) */
	void *buf;		/* io_req_bytes() bytes, MD_BLOCK_SIZE aligned */
	int result;		/* out: 0 or negative errno */
	uint32_t nr_blocks;	/* blocks in the run; 0 (the default) means 1 */
};

/* The longest run one request may carry: 8 MiB. */
#define IO_MAX_REQ_BLOCKS 2048u

static inline uint32_t io_req_blocks(const struct io_req *r)
{
	return r->nr_blocks ? r->nr_blocks : 1;
}

static inline uint32_t io_req_bytes(const struct io_req *r)
{
	return io_req_blocks(r) << MD_BLOCK_SHIFT;
}

/* Does the request lie inside nr_blocks (and respect IO_MAX_REQ_BLOCKS)? */
static inline bool io_req_fits(const struct io_req *r, uint64_t nr_blocks)
{
	return io_req_blocks(r) <= IO_MAX_REQ_BLOCKS && r->block < nr_blocks &&
	       io_req_blocks(r) <= nr_blocks - r->block;
}

struct io_engine;

struct io_engine_ops {
	int (*read_many)(struct io_engine *e, struct io_req *reqs, unsigned n);
	int (*write_many)(struct io_engine *e, struct io_req *reqs, unsigned n);
	/* make every completed write durable (fdatasync / cache flush) */
	int (*flush)(struct io_engine *e);
	/* closes the file descriptor unless the engine does not own it */
	void (*destroy)(struct io_engine *e);
};

/*
 * The base every implementation embeds (container_of to get back).
 * Fields are read-only for users.
 */
struct io_engine {
	const struct io_engine_ops *ops;
	const char *name;	/* "sync", "io_uring", "libaio", ... */
	int fd;
	bool writable;
	bool direct;		/* opened with O_DIRECT */
	uint64_t nr_blocks;	/* floor(size / MD_BLOCK_SIZE) */
	uint64_t size_bytes;	/* file or device size */
};

/* The most requests an implementation handles at once (larger batches are split). */
#define IO_MAX_BATCH 256u

/*
 * Opens path and returns an engine of the given kind in *out.
 * Errors (with a message naming the problem in *err):
 *   -ENOENT  no such file;  -EISDIR  a directory;  -EBUSY  block device
 *   in use (IO_OPEN_EXCL);  -ENOTSUP  engine not built in or not usable;
 *   other -errno from open/stat.
 * A regular file or a block device is accepted; anything else is -EINVAL.
 */
int io_engine_open(const char *path, enum io_engine_kind kind, unsigned flags,
		   struct io_engine **out, struct pd_err *err);

/*
 * Implementation constructors over an open descriptor.  On success the
 * engine owns fd.  base describes the descriptor (fd, writable, direct,
 * sizes); the constructor copies it.
 */
int io_engine_sync_create(const struct io_engine *base, struct io_engine **out,
			  struct pd_err *err);
int io_engine_uring_create(const struct io_engine *base, struct io_engine **out,
			   struct pd_err *err);
int io_engine_aio_create(const struct io_engine *base, struct io_engine **out,
			 struct pd_err *err);

/* Which engines this build has ("sync", "io_uring", "libaio"). */
bool io_engine_uring_available(void);
bool io_engine_aio_available(void);

/* Parses "sync" / "async" (and "io_uring", "libaio") for --io-engine. */
int io_engine_parse_kind(const char *s, enum io_engine_kind *kind);

static inline int io_read_many(struct io_engine *e, struct io_req *r, unsigned n)
{
	return e->ops->read_many(e, r, n);
}

static inline int io_write_many(struct io_engine *e, struct io_req *r, unsigned n)
{
	return e->ops->write_many(e, r, n);
}

static inline int io_flush(struct io_engine *e)
{
	return e->ops->flush(e);
}

/* Accepts NULL. */
void io_engine_destroy(struct io_engine *e);

/* Single-block helpers built on read_many/write_many. */
int io_read_block(struct io_engine *e, uint64_t block, void *buf);
int io_write_block(struct io_engine *e, uint64_t block, const void *buf);

/* An aligned MD_BLOCK_SIZE buffer (free() it), or NULL. */
void *io_alloc_block(void);

/*
 * The synchronous path (pread/pwrite, runs of consecutive blocks in one
 * preadv/pwritev), for implementations: the async engines use it for a
 * single block, where a trip through a ring costs more than the call.
 */
int io_engine_xfer_sync(struct io_engine *e, struct io_req *reqs, unsigned n, bool write);

/*
 * Fallback for an O_DIRECT descriptor whose file system refuses direct
 * I/O at read time (EINVAL): reopen the same file without O_DIRECT.
 * Implementations call it when a direct transfer fails with -EINVAL.
 */
int io_engine_drop_direct(struct io_engine *e);

#endif
