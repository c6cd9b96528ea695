/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * thin_migrate: copies a thin device of an active pool to another device
 * or a file, reading only its mapped ranges.  The mappings come from a
 * metadata snapshot that thin_migrate reserves in the pool itself and
 * releases when done (also on errors and on SIGINT/SIGTERM).
 */
#include "cli.h"
#include "thin-provisioning/commands.h"
#include "thin-provisioning/dm-ioctl.h"
#include "persistent-data/btree.h"
#include "thin-provisioning/metadata.h"
#include "persistent-data/output-file.h"
#include "thin-provisioning/thin-disk.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] --source-dev <thin device> {--dest-dev <device> | --dest-file <file>}\n"
		"Copies the mapped ranges of an active thin device to another device or a file.\n"
		"Options:\n"
		"  {--source-dev} <thin device>\n"
		"  {--dest-dev} <device>\n"
		"  {--dest-file} <file>\n"
		"  {--buffer-size-meg} <MiB>   size of the copy buffer (default 16)\n"
		"  {-q|--quiet}\n"
		"  {-h|--help}\n"
		"  {-V|--version}\n", prog_name);
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/*
 * The copy is a pipeline of two buffers: this thread reads a piece into
 * one while a writer thread writes the previous piece from the other, so
 * reads of the source and writes of the destination overlap.
 */
#define NR_SLOTS 2

struct slot {
	uint8_t *buf;
	uint64_t off;
	size_t len;
	bool full;
};

struct copier {
	int in, out;
	size_t buf_len;			/* per slot */
	uint64_t block_bytes, size;	/* of the source */
	struct progress prog;
	uint64_t done;			/* blocks read */
	const char *src, *dst;
	struct pd_err *err;

	pthread_t writer;
	bool writer_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct slot slots[NR_SLOTS];
	unsigned next;			/* slot the reader fills next */
	bool finished;			/* no more pieces */
	int write_error;		/* errno of a failed write */
	uint64_t write_error_off;
};

static void *writer_main(void *arg)
{
	struct copier *c = arg;
	uint64_t failed_off = 0;
	unsigned i = 0;
	int failed = 0;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct slot *s = &c->slots[i];

		while (!s->full && !c->finished)
			pthread_cond_wait(&c->cond, &c->lock);
		if (!s->full)
			break;
		pthread_mutex_unlock(&c->lock);
		if (!failed) {
			ssize_t put = pwrite(c->out, s->buf, s->len, (off_t)s->off);

			if (put != (ssize_t)s->len) {
				failed = put < 0 ? errno : EIO;
				failed_off = s->off;
			}
		}
		pthread_mutex_lock(&c->lock);
		if (failed && !c->write_error) {
			c->write_error = failed;
			c->write_error_off = failed_off;
		}
		s->full = false;
		pthread_cond_broadcast(&c->cond);
		i = (i + 1) % NR_SLOTS;
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static int copier_write_error(struct copier *c)
{
	return pd_err_set(c->err, -c->write_error, "%s: write error at byte %" PRIu64 ": %s",
			  c->dst, c->write_error_off, strerror(c->write_error));
}

/* Reads one piece into the next free slot and hands it to the writer. */
static int copier_piece(struct copier *c, uint64_t off, size_t n)
{
	struct slot *s = &c->slots[c->next];
	ssize_t got;

	pthread_mutex_lock(&c->lock);
	while (s->full)
		pthread_cond_wait(&c->cond, &c->lock);
	if (c->write_error) {
		pthread_mutex_unlock(&c->lock);
		return copier_write_error(c);
	}
	pthread_mutex_unlock(&c->lock);
	got = pread(c->in, s->buf, n, (off_t)off);
	if (got <= 0)
		return pd_err_set(c->err, got ? -errno : -EIO, "%s: read error at byte %" PRIu64 ": %s",
				  c->src, off, got ? strerror(errno) : "end of device");
	pthread_mutex_lock(&c->lock);
	s->off = off;
	s->len = (size_t)got;
	s->full = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	c->next = (c->next + 1) % NR_SLOTS;
	return 0;
}

/* Waits for the writer to drain and stop; the first error wins. */
static int copier_finish(struct copier *c, int r)
{
	if (!c->writer_started)
		return r;
	pthread_mutex_lock(&c->lock);
	c->finished = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->writer, NULL);
	c->writer_started = false;
	if (!r && c->write_error)
		r = copier_write_error(c);
	return r;
}

/* Copies virtual blocks [begin, end) of the source, clipped to its size. */
static int copy_run(struct copier *c, uint64_t begin, uint64_t end)
{
	uint64_t off = begin * c->block_bytes, stop = end * c->block_bytes;
	int r;

	if (stop > c->size)
		stop = c->size;
	while (off < stop) {
		size_t n = stop - off < c->buf_len ? (size_t)(stop - off) : c->buf_len;

		if (interrupted)
			return pd_err_set(c->err, -EINTR, "interrupted");
		r = copier_piece(c, off, n);
		if (r)
			return r;
		off += n;
	}
	c->done += end - begin;
	progress_update(&c->prog, c->done);
	return 0;
}

/* Every run of consecutive mapped virtual blocks of the tree at root. */
static int copy_mapped(struct thin_metadata *md, uint64_t root, struct copier *c,
		       struct pd_err *err)
{
	struct btree_cursor *cur;
	uint64_t begin = 0, end = 0;
	bool have = false;
	int r;

	r = btree_cursor_create(md->bm, root, THIN_MAPPING_VALUE_SIZE, &cur, err);
	if (r)
		return r;
	while (!(r = btree_cursor_next_leaf(cur, err))) {
		uint32_t n = btree_cursor_nr(cur);

		for (uint32_t i = 0; i < n && !r; i++) {
			uint64_t k = btree_cursor_key(cur, i);

			if (have && k == end) {
				end++;
				continue;
			}
			if (have && k < end) {
				r = pd_err_set(err, -EILSEQ, "mapping tree keys out of order");
				break;
			}
			if (have)
				r = copy_run(c, begin, end);
			have = true;
			begin = k;
			end = k + 1;
		}
		if (r)
			break;
	}
	btree_cursor_destroy(cur);
	if (r != -ENODATA)
		return r;
	return have ? copy_run(c, begin, end) : 0;
}

static int parse_devno(const char *s, dev_t *dev)
{
	unsigned ma, mi;
	char extra;

	if (sscanf(s, "%u:%u%c", &ma, &mi, &extra) != 2)
		return -EINVAL;
	*dev = makedev(ma, mi);
	return 0;
}

static int blockdev_size(int fd, uint64_t *size)
{
	return ioctl(fd, BLKGETSIZE64, size) ? -errno : 0;
}

enum { OPT_SOURCE = 256, OPT_DEST_DEV, OPT_DEST_FILE, OPT_BUFFER };

/*
 * The source is an active thin target: its table names the pool and the
 * device id, and the pool's table names the metadata device, found in
 * /dev as meta_path.  Returns 0, or 1 after one line on stderr.
 */
static int find_pool(const char *src, uint64_t *dev_id_out, dev_t *pool_dev_out,
		     char *meta_path, size_t meta_len)
{
	char type[32], params[1024], pool_type[32], pool_params[1024];
	struct pd_err err = { 0 };
	uint64_t dev_id;
	dev_t pool_dev, meta_dev;
	struct stat st;

	if (stat(src, &st)) {
		cli_error("%s: %s", src, strerror(errno));
		return 1;
	}
	if (!S_ISBLK(st.st_mode)) {
		cli_error("%s: not a block device (the source is an active thin device)", src);
		return 1;
	}
	if (dm_table(st.st_rdev, type, sizeof(type), params, sizeof(params), &err)) {
		cli_error("%s: %s", src, err.msg);
		return 1;
	}
	{
		char pool_s[64];

		if (strcmp(type, "thin") || sscanf(params, "%63s %" SCNu64, pool_s, &dev_id) != 2 ||
		    parse_devno(pool_s, &pool_dev)) {
			cli_error("%s: not a thin device (its target is '%s')", src, type);
			return 1;
		}
	}
	if (dm_table(pool_dev, pool_type, sizeof(pool_type), pool_params, sizeof(pool_params), &err)) {
		cli_error("the pool of %s: %s", src, err.msg);
		return 1;
	}
	{
		char meta_s[64];

		if (strcmp(pool_type, "thin-pool") || sscanf(pool_params, "%63s", meta_s) != 1 ||
		    parse_devno(meta_s, &meta_dev)) {
			cli_error("the pool of %s is not a thin-pool target ('%s')", src, pool_type);
			return 1;
		}
	}
	if (dm_find_node(meta_dev, meta_path, meta_len, &err)) {
		cli_error("the pool's metadata device: %s", err.msg);
		return 1;
	}
	*dev_id_out = dev_id;
	*pool_dev_out = pool_dev;
	return 0;
}

/*
 * Opens the destination: a block device, exclusively and at least as
 * large as the source, or a file, created or truncated to the source's
 * size (*created then says to remove it on failure).  c->in and c->size
 * are the source's.  Returns 0, or 1 after one line on stderr.
 */
static int open_destination(struct copier *c, const char *src, const char *dest_dev,
			    const char *dest_file, bool *created)
{
	uint64_t dsize;
	struct stat st;

	if (dest_dev) {
		if (stat(dest_dev, &st) || !S_ISBLK(st.st_mode)) {
			cli_error("%s: %s", dest_dev, errno && !S_ISBLK(st.st_mode) ? strerror(errno) :
				  "not a block device (use --dest-file for a file)");
			return 1;
		}
		if (same_file(src, dest_dev)) {
			cli_error("%s: the destination is the source", dest_dev);
			return 1;
		}
		c->out = open(dest_dev, O_WRONLY | O_EXCL | O_CLOEXEC);
		if (c->out < 0) {
			cli_error("%s: %s", dest_dev, errno == EBUSY ? "the destination is in use" : strerror(errno));
			return 1;
		}
		if (blockdev_size(c->out, &dsize) || dsize < c->size) {
			cli_error("%s: destination too small: %" PRIu64 " bytes, the source has %" PRIu64,
				  dest_dev, dsize, c->size);
			return 1;
		}
	} else {
		if (!stat(dest_file, &st) && !S_ISREG(st.st_mode)) {
			cli_error("%s: not a regular file (use --dest-dev for a device)", dest_file);
			return 1;
		}
		c->out = open(dest_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (c->out < 0) {
			cli_error("%s: %s", dest_file, strerror(errno));
			return 1;
		}
		*created = true;
		if (ftruncate(c->out, (off_t)c->size)) {
			cli_error("%s: %s", dest_file, strerror(errno));
			return 1;
		}
	}
	return 0;
}

/* The copy buffers (buf_mib in all) and the writer thread.  Returns 0, or 1 after one line. */
static int start_copier(struct copier *c, uint64_t buf_mib)
{
	/* the buffer size is split between the two pieces in flight */
	c->buf_len = (size_t)(buf_mib << 20) / NR_SLOTS;
	for (unsigned i = 0; i < NR_SLOTS; i++)
		if (posix_memalign((void **)&c->slots[i].buf, 4096, c->buf_len)) {
			cli_error("out of memory (a %" PRIu64 " MiB buffer)", buf_mib);
			return 1;
		}
	if (pthread_create(&c->writer, NULL, writer_main, c)) {
		cli_error("cannot start the writer thread");
		return 1;
	}
	c->writer_started = true;
	return 0;
}

int thin_migrate_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "source-dev", required_argument, NULL, OPT_SOURCE },
		{ "dest-dev", required_argument, NULL, OPT_DEST_DEV },
		{ "dest-file", required_argument, NULL, OPT_DEST_FILE },
		{ "buffer-size-meg", required_argument, NULL, OPT_BUFFER },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	const char *src = NULL, *dest_dev = NULL, *dest_file = NULL;
	struct thin_open_opts oo = { .engine = IO_ENGINE_SYNC, .metadata_snap = true };
	char meta_path[512];
	struct thin_metadata *md = NULL;
	struct copier c = { .in = -1, .out = -1, .lock = PTHREAD_MUTEX_INITIALIZER,
			    .cond = PTHREAD_COND_INITIALIZER };
	struct thin_device dev;
	struct pd_err err = { 0 };
	struct sigaction sa;
	uint64_t dev_id, buf_mib = 16;
	dev_t pool_dev;
	bool quiet = false, reserved = false, created = false;
	int opt, r, ret = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "hVq", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
		case 'V':
			return cli_help_or_version(opt, usage);
		case OPT_SOURCE:
			src = optarg;
			break;
		case OPT_DEST_DEV:
			dest_dev = optarg;
			break;
		case OPT_DEST_FILE:
			dest_file = optarg;
			break;
		case OPT_BUFFER:
			if (cli_parse_u64(optarg, &buf_mib) || !buf_mib || buf_mib > 4096) {
				cli_error("bad buffer size '%s' (1 to 4096 MiB)", optarg);
				return 1;
			}
			break;
		case 'q':
			quiet = true;
			break;
		default:
			return cli_bad_usage(usage);
		}
	}
	argc = cli_drop_empty_operands(argc, argv);
	if (optind < argc) {
		cli_error("unexpected argument '%s'", argv[optind]);
		return cli_bad_usage(usage);
	}
	if (!src) {
		fprintf(stderr, "No source device provided.\n");
		return cli_bad_usage(usage);
	}
	if (!dest_dev == !dest_file) {
		fprintf(stderr, "Give exactly one of --dest-dev and --dest-file.\n");
		return cli_bad_usage(usage);
	}
	c.src = src;
	c.dst = dest_dev ? dest_dev : dest_file;
	c.err = &err;

	if (find_pool(src, &dev_id, &pool_dev, meta_path, sizeof(meta_path)))
		return 1;

	c.in = open(src, O_RDONLY | O_CLOEXEC);
	if (c.in < 0 || blockdev_size(c.in, &c.size)) {
		cli_error("%s: %s", src, strerror(errno));
		goto out;
	}
	if (open_destination(&c, src, dest_dev, dest_file, &created))
		goto out;
	if (start_copier(&c, buf_mib))
		goto out;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (dm_message(pool_dev, "reserve_metadata_snap", &err)) {
		cli_error("%s (does the pool hold a metadata snapshot already?)", err.msg);
		goto out;
	}
	reserved = true;
	r = thin_metadata_open(meta_path, &oo, &md, &err);
	if (!r)
		r = thin_lookup_device(md->bm, md->sb.device_details_root, md->sb.data_mapping_root,
				       dev_id, &dev, &err);
	if (r) {
		cli_error("the metadata snapshot: %s", err.msg);
		goto out;
	}
	c.block_bytes = (uint64_t)md->sb.data_block_size * 512u;
	progress_init(&c.prog, "Copying", dev.mapped_blocks, quiet);
	r = copy_mapped(md, dev.root, &c, &err);
	r = copier_finish(&c, r);
	progress_done(&c.prog);
	if (!r && fsync(c.out))
		r = pd_err_set(&err, -errno, "%s: %s", c.dst, strerror(errno));
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	ret = 0;
out:
	copier_finish(&c, 0);
	thin_metadata_close(md);
	if (reserved && dm_message(pool_dev, "release_metadata_snap", &err)) {
		cli_error("%s", err.msg);
		ret = 1;
	}
	if (c.in >= 0)
		close(c.in);
	if (c.out >= 0)
		close(c.out);
	if (ret && created)
		unlink(dest_file);
	for (unsigned i = 0; i < NR_SLOTS; i++)
		free(c.slots[i].buf);
	return ret;
}
