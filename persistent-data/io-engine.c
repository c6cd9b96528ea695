/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "io-engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/*----------------------------------------------------------------*/

void *io_alloc_block(void)
{
	void *p = NULL;

	if (posix_memalign(&p, MD_BLOCK_SIZE, MD_BLOCK_SIZE))
		return NULL;
	return p;
}

int io_engine_parse_kind(const char *s, enum io_engine_kind *kind)
{
	if (!strcmp(s, "sync"))
		*kind = IO_ENGINE_SYNC;
	else if (!strcmp(s, "async"))
		*kind = IO_ENGINE_ASYNC;
	else if (!strcmp(s, "io_uring") || !strcmp(s, "uring"))
		*kind = IO_ENGINE_URING;
	else if (!strcmp(s, "libaio") || !strcmp(s, "aio"))
		*kind = IO_ENGINE_AIO;
	else
		return -EINVAL;
	return 0;
}

int io_engine_drop_direct(struct io_engine *e)
{
	int fl;

	if (!e->direct)
		return -EINVAL;
	fl = fcntl(e->fd, F_GETFL);
	if (fl < 0 || fcntl(e->fd, F_SETFL, fl & ~O_DIRECT) < 0)
		return -errno;
	e->direct = false;
	return 0;
}

void io_engine_destroy(struct io_engine *e)
{
	if (e)
		e->ops->destroy(e);
}

int io_read_block(struct io_engine *e, uint64_t block, void *buf)
{
	struct io_req r = { .block = block, .buf = buf };
	int ret = io_read_many(e, &r, 1);

	return ret ? (r.result ? r.result : ret) : 0;
}

int io_write_block(struct io_engine *e, uint64_t block, const void *buf)
{
	struct io_req r = { .block = block, .buf = (void *)buf };
	int ret = io_write_many(e, &r, 1);

	return ret ? (r.result ? r.result : ret) : 0;
}

/*----------------------------------------------------------------
 * Opening
 *--------------------------------------------------------------*/

static int open_fd(const char *path, unsigned flags, struct io_engine *base,
		   struct pd_err *err)
{
	struct stat st;
	int oflags, fd;
	bool blockdev;

	if (stat(path, &st) < 0) {
		int r = -errno;

		if (r == -ENOENT)
			return pd_err_set(err, r, "%s: No such file or directory", path);
		return pd_err_set(err, r, "%s: %s", path, strerror(errno));
	}
	if (S_ISDIR(st.st_mode))
		return pd_err_set(err, -EISDIR, "%s: Is a directory", path);
	blockdev = S_ISBLK(st.st_mode);
	if (!blockdev && !S_ISREG(st.st_mode))
		return pd_err_set(err, -EINVAL,
				  "%s: Not a block device or regular file", path);

	oflags = (flags & IO_OPEN_WRITE) ? O_RDWR : O_RDONLY;
	oflags |= O_CLOEXEC;
	if (blockdev && (flags & IO_OPEN_EXCL))
		oflags |= O_EXCL;

	base->direct = false;
	fd = -1;
	if (!(flags & IO_OPEN_NO_DIRECT) && (blockdev || (flags & IO_OPEN_DIRECT))) {
		fd = open(path, oflags | O_DIRECT);
		if (fd >= 0)
			base->direct = true;
	}
	if (fd < 0)
		fd = open(path, oflags);
	if (fd < 0) {
		int r = -errno;

		if (r == -EBUSY)
			return pd_err_set(err, r, "%s: Device or resource busy (in use?)", path);
		return pd_err_set(err, r, "%s: %s", path, strerror(errno));
	}

	if (blockdev) {
		uint64_t size;

		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			int r = -errno;

			close(fd);
			return pd_err_set(err, r, "%s: cannot get device size: %s",
					  path, strerror(-r));
		}
		base->size_bytes = size;
		/*
		 * Read through the page cache: pages cached while dm-thin
		 * wrote the device below it may be stale, so drop them.
		 */
		if (!base->direct)
			(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	} else {
		base->size_bytes = (uint64_t)st.st_size;
	}
	base->fd = fd;
	base->writable = flags & IO_OPEN_WRITE;
	base->nr_blocks = base->size_bytes >> MD_BLOCK_SHIFT;
	return 0;
}

int io_engine_open(const char *path, enum io_engine_kind kind, unsigned flags,
		   struct io_engine **out, struct pd_err *err)
{
	struct io_engine base = { 0 };
	int r;

	if (kind == IO_ENGINE_URING && !io_engine_uring_available())
		return pd_err_set(err, -ENOTSUP,
				  "the io_uring engine is not available in this build");
	if (kind == IO_ENGINE_AIO && !io_engine_aio_available())
		return pd_err_set(err, -ENOTSUP,
				  "the libaio engine is not available in this build");
	if (kind == IO_ENGINE_ASYNC && !io_engine_uring_available() &&
	    !io_engine_aio_available())
		return pd_err_set(err, -ENOTSUP,
				  "no async I/O engine in this build (built without liburing and libaio); use --io-engine sync");

	r = open_fd(path, flags, &base, err);
	if (r)
		return r;

	switch (kind) {
	case IO_ENGINE_SYNC:
		r = io_engine_sync_create(&base, out, err);
		break;
	case IO_ENGINE_URING:
		r = io_engine_uring_create(&base, out, err);
		break;
	case IO_ENGINE_AIO:
		r = io_engine_aio_create(&base, out, err);
		break;
	case IO_ENGINE_ASYNC:
		r = -ENOTSUP;
		if (io_engine_uring_available())
			r = io_engine_uring_create(&base, out, err);
		if (r && io_engine_aio_available())
			r = io_engine_aio_create(&base, out, err);
		break;
	default:
		r = pd_err_set(err, -EINVAL, "unknown I/O engine");
	}
	if (r)
		close(base.fd);
	else
		pd_err_clear(err);	/* a fallback may have left a message */
	return r;
}

/*----------------------------------------------------------------
 * The sync engine
 *--------------------------------------------------------------*/

struct sync_engine {
	struct io_engine e;
};

/* One request at a time: where a run failed, to give each request its own result. */
static int sync_xfer_one(struct io_engine *e, struct io_req *r, bool write)
{
	off_t off = (off_t)(r->block << MD_BLOCK_SHIFT);
	size_t done = 0, len = io_req_bytes(r);

	r->result = 0;
	while (done < len) {
		ssize_t k = write ?
			pwrite(e->fd, (char *)r->buf + done, len - done, off + (off_t)done) :
			pread(e->fd, (char *)r->buf + done, len - done, off + (off_t)done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EINVAL && e->direct && !io_engine_drop_direct(e))
			continue;
		if (k <= 0) {
			r->result = k < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)k;
	}
	return r->result;
}

static int cmp_req(const void *a, const void *b)
{
	uint64_t x = (*(struct io_req * const *)a)->block;
	uint64_t y = (*(struct io_req * const *)b)->block;

	return x < y ? -1 : x > y;
}

/*
 * Requests whose blocks follow each other go in one preadv/pwritev:
 * restore writes, and the leaves of a tree, are mostly laid out in order.
 */
int io_engine_xfer_sync(struct io_engine *e, struct io_req *reqs, unsigned n, bool write)
{
	struct io_req *order[IO_MAX_BATCH];
	struct iovec iov[IO_MAX_BATCH];
	struct io_req *all = reqs;
	unsigned total = n;
	int ret = 0;

	while (n) {
		unsigned k = n < IO_MAX_BATCH ? n : IO_MAX_BATCH, i = 0;

		for (unsigned j = 0; j < k; j++)
			order[j] = reqs + j;
		qsort(order, k, sizeof(order[0]), cmp_req);
		while (i < k) {
			unsigned run = 1;
			size_t want;
			ssize_t got;

			if (!io_req_fits(order[i], e->nr_blocks)) {
				order[i]->result = -EINVAL;
				if (!ret)
					ret = -EINVAL;
				i++;
				continue;
			}
			iov[0].iov_base = order[i]->buf;
			iov[0].iov_len = io_req_bytes(order[i]);
			want = iov[0].iov_len;
			while (i + run < k &&
			       order[i + run]->block == order[i + run - 1]->block +
							io_req_blocks(order[i + run - 1]) &&
			       io_req_fits(order[i + run], e->nr_blocks)) {
				iov[run].iov_base = order[i + run]->buf;
				iov[run].iov_len = io_req_bytes(order[i + run]);
				want += iov[run].iov_len;
				run++;
			}
			do {
				off_t off = (off_t)(order[i]->block << MD_BLOCK_SHIFT);

				got = write ? pwritev(e->fd, iov, (int)run, off) :
					      preadv(e->fd, iov, (int)run, off);
			} while (got < 0 && errno == EINTR);
			if (got == (ssize_t)want) {
				for (unsigned j = 0; j < run; j++)
					order[i + j]->result = 0;
			} else {
				/* short or failed: block by block, each with its own result */
				for (unsigned j = 0; j < run; j++)
					if (sync_xfer_one(e, order[i + j], write) && !ret)
						ret = order[i + j]->result;
			}
			i += run;
		}
		reqs += k;
		n -= k;
	}
	if (ret)
		/* the first failing request in request order, as the other engines say */
		for (unsigned j = 0; j < total; j++)
			if (all[j].result)
				return all[j].result;
	return 0;
}

static int sync_read_many(struct io_engine *e, struct io_req *reqs, unsigned n)
{
	return io_engine_xfer_sync(e, reqs, n, false);
}

static int sync_write_many(struct io_engine *e, struct io_req *reqs, unsigned n)
{
	return io_engine_xfer_sync(e, reqs, n, true);
}

static int sync_flush(struct io_engine *e)
{
	return fdatasync(e->fd) < 0 ? -errno : 0;
}

static void sync_destroy(struct io_engine *e)
{
	close(e->fd);
	free(e);
}

static const struct io_engine_ops sync_ops = {
	.read_many = sync_read_many,
	.write_many = sync_write_many,
	.flush = sync_flush,
	.destroy = sync_destroy,
};

int io_engine_sync_create(const struct io_engine *base, struct io_engine **out,
			  struct pd_err *err)
{
	struct sync_engine *s = calloc(1, sizeof(*s));

	if (!s)
		return pd_err_set(err, -ENOMEM, "out of memory");
	s->e = *base;
	s->e.ops = &sync_ops;
	s->e.name = "sync";
	*out = &s->e;
	return 0;
}
