/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cache_writeback: copies the dirty blocks of an inactive cache from the
 * fast device to the origin, then marks them clean in the metadata (one
 * transaction at the end), so that the origin alone holds the data.
 * Copies are asynchronous (cache/data-copy.h), up to --buffer-size-meg
 * of blocks in flight; a failed copy is retried --retry-count times and
 * otherwise left dirty.  Memory: the copy buffers plus a bit per cache
 * block.
 */
#include "cli.h"
#include "cache/cache-md.h"
#include "cache/commands.h"
#include "cache/data-copy.h"
#include "persistent-data/array.h"
#include "persistent-data/bitset.h"
#include "persistent-data/pd-store.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] --metadata-device <dev> --origin-device <dev> --fast-device <dev>\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-V|--version}\n"
		"  {-q|--quiet}\n"
		"  {--metadata-device} <dev>\n"
		"  {--origin-device} <dev>\n"
		"  {--fast-device} <dev>\n"
		"  {--origin-device-offset} <sectors>\n"
		"  {--fast-device-offset} <sectors>\n"
		"  {--buffer-size-meg} <size>\n"
		"  {--list-failed-blocks}\n"
		"  {--no-metadata-update}\n"
		"  {--retry-count} <count>\n", prog_name);
}

struct wb {
	struct data_copier *copier;
	struct progress prog;
	uint8_t *cleaned;		/* a bit per cache block */
	uint32_t retries;
	uint64_t done, copied, failed, nr_dirty;
	bool list_failed;
	/* retry bookkeeping: tag = cblock, a count per in-flight retry */
	struct retry { uint64_t cblock, oblock; uint32_t left; } *pending;
	uint64_t nr_pending, cap_pending;
	int error;
};

static struct retry *find_pending(struct wb *w, uint64_t cblock)
{
	for (uint64_t i = 0; i < w->nr_pending; i++)
		if (w->pending[i].cblock == cblock)
			return &w->pending[i];
	return NULL;
}

static void drop_pending(struct wb *w, struct retry *p)
{
	*p = w->pending[--w->nr_pending];
}

static void copy_done(void *ctx, uint64_t cblock, int result)
{
	struct wb *w = ctx;
	struct retry *p = find_pending(w, cblock);

	if (result && p && p->left) {
		p->left--;
		if (data_copier_copy(w->copier, cblock, p->oblock, cblock))
			w->error = -EIO;
		return;
	}
	if (p)
		drop_pending(w, p);
	if (result) {
		w->failed++;
		if (w->list_failed)
			fprintf(stderr, "%s: failed to write back cache block %" PRIu64 ": %s\n",
				prog_name, cblock, strerror(-result));
	} else {
		w->copied++;
		w->cleaned[cblock / 8] |= (uint8_t)(1u << (cblock % 8));
	}
	progress_update(&w->prog, ++w->done);
}

static int count_begin(void *ctx, const struct cache_sb *sb, uint32_t hw)
{
	(void)ctx;
	(void)sb;
	(void)hw;
	return 0;
}

static int count_mapping(void *ctx, uint64_t cb, uint64_t ob, bool dirty)
{
	(void)cb;
	(void)ob;
	if (dirty)
		((struct wb *)ctx)->nr_dirty++;
	return 0;
}

static int no_hint(void *ctx, uint64_t cb, const uint8_t *d, uint32_t len)
{
	(void)ctx;
	(void)cb;
	(void)d;
	(void)len;
	return 0;
}

static int no_end(void *ctx)
{
	(void)ctx;
	return 0;
}

static int copy_mapping(void *ctx, uint64_t cb, uint64_t ob, bool dirty)
{
	struct wb *w = ctx;

	if (!dirty)
		return 0;
	if (w->retries) {
		if (w->nr_pending == w->cap_pending) {
			uint64_t cap = w->cap_pending ? w->cap_pending * 2 : 64;
			struct retry *n = realloc(w->pending, cap * sizeof(*n));

			if (!n)
				return -ENOMEM;
			w->pending = n;
			w->cap_pending = cap;
		}
		w->pending[w->nr_pending++] = (struct retry) { cb, ob, w->retries };
	}
	if (data_copier_copy(w->copier, cb, ob, cb))
		return -EIO;
	return w->error;
}

static void sb_encode(void *ctx, void *block, const void *blob)
{
	struct cache_sb *sb = ctx;

	memcpy(sb->metadata_sm_root, blob, SM_ROOT_BLOB_SIZE);
	cache_sb_encode(sb, block);
}

/* Clears the dirty state of every cleaned block, in one transaction. */
static int mark_clean(struct cache_md *md, const struct wb *w, struct pd_err *err)
{
	struct cache_sb sb = md->sb;
	struct pd_store *s;
	int r;

	r = pd_store_open(md->io, sb.metadata_sm_root, 0, &s, err);
	if (r)
		return r;
	for (uint64_t cb = 0; !r && cb < sb.cache_blocks; cb++) {
		uint8_t le[8];

		if (!(w->cleaned[cb / 8] & (1u << (cb % 8))))
			continue;
		if (sb.version >= 2) {
			r = bitset_set(s->tm, sb.dirty_root, cb, false, &sb.dirty_root, err);
			continue;
		}
		r = array_get(tm_bm(s->tm), sb.mapping_root, 8, cb, le, err);
		if (!r) {
			store_le64(le, load_le64(le) & ~(uint64_t)CACHE_M_DIRTY);
			r = array_set(s->tm, sb.mapping_root, 8, cb, le, &sb.mapping_root, err);
		}
	}
	if (!r)
		r = pd_store_commit(s, sb_encode, &sb, err);
	pd_store_destroy(s);
	return r;
}

static int open_data(const char *path, int flags, uint64_t *size)
{
	struct stat st;
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0) {
		cli_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || S_ISDIR(st.st_mode)) {
		cli_error("%s: %s", path, S_ISDIR(st.st_mode) ? "Is a directory" : strerror(errno));
		close(fd);
		return -1;
	}
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(fd, 0, SEEK_END);

		*size = end < 0 ? 0 : (uint64_t)end;
	} else {
		*size = (uint64_t)st.st_size;
	}
	return fd;
}

enum {
	OPT_META = 256, OPT_ORIGIN, OPT_FAST, OPT_ORIGIN_OFF, OPT_FAST_OFF, OPT_BUFFER,
	OPT_LIST_FAILED, OPT_NO_UPDATE, OPT_RETRY,
};

int cache_writeback_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "metadata-device", required_argument, NULL, OPT_META },
		{ "origin-device", required_argument, NULL, OPT_ORIGIN },
		{ "fast-device", required_argument, NULL, OPT_FAST },
		{ "origin-device-offset", required_argument, NULL, OPT_ORIGIN_OFF },
		{ "fast-device-offset", required_argument, NULL, OPT_FAST_OFF },
		{ "buffer-size-meg", required_argument, NULL, OPT_BUFFER },
		{ "list-failed-blocks", no_argument, NULL, OPT_LIST_FAILED },
		{ "no-metadata-update", no_argument, NULL, OPT_NO_UPDATE },
		{ "retry-count", required_argument, NULL, OPT_RETRY },
		{ NULL, 0, NULL, 0 },
	};
	const char *meta = NULL, *origin = NULL, *fast = NULL;
	uint64_t origin_off = 0, fast_off = 0, buffer_meg = 128, osize = 0, fsize = 0;
	bool quiet = false, no_update = false;
	struct wb w = { 0 };
	struct cache_md *md = NULL;
	struct cache_visitor v = { .begin = count_begin, .hint = no_hint, .end = no_end };
	struct pd_err err = { 0 };
	int c, r, ofd = -1, ffd = -1, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hVq", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case 'V':
			return cli_help_or_version(c, usage);
		case 'q':
			quiet = true;
			break;
		case OPT_META:
			meta = optarg;
			break;
		case OPT_ORIGIN:
			origin = optarg;
			break;
		case OPT_FAST:
			fast = optarg;
			break;
		case OPT_ORIGIN_OFF:
		case OPT_FAST_OFF:
		case OPT_BUFFER:
		{
			uint64_t x;

			if (cli_parse_u64(optarg, &x) || x > (UINT64_MAX >> 20)) {
				cli_error("invalid number '%s'", optarg);
				return 1;
			}
			if (c == OPT_ORIGIN_OFF)
				origin_off = x;
			else if (c == OPT_FAST_OFF)
				fast_off = x;
			else
				buffer_meg = x;
			break;
		}
		case OPT_LIST_FAILED:
			w.list_failed = true;
			break;
		case OPT_NO_UPDATE:
			no_update = true;
			break;
		case OPT_RETRY:
			if (cli_parse_u32(optarg, &w.retries)) {
				cli_error("invalid retry count '%s'", optarg);
				return 1;
			}
			break;
		default:
			return cli_bad_usage(usage);
		}
	}
	argc = cli_drop_empty_operands(argc, argv);
	if (optind < argc) {
		cli_error("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 1;
	}
	if (!meta || !origin || !fast) {
		cli_error("%s", !meta ? "No metadata device provided." :
			  !origin ? "No origin device provided." : "No fast device provided.");
		usage(stderr);
		return 1;
	}
	if (!buffer_meg) {
		cli_error("--buffer-size-meg must be at least 1");
		return 1;
	}
	r = cache_md_open(meta, !no_update, &md, &err);
	if (r) {
		cli_error("%s", err.msg);
		return 1;
	}
	if ((ffd = open_data(fast, O_RDONLY, &fsize)) < 0 ||
	    (ofd = open_data(origin, O_RDWR, &osize)) < 0)
		goto out;

	/* pass 1: count the dirty blocks, check they lie on the devices */
	v.ctx = &w;
	v.mapping = count_mapping;
	r = cache_md_walk(md, false, &v, &err);
	if (r) {
		cli_error("%s", err.code ? err.msg : strerror(-r));
		goto out;
	}
	{
		uint64_t bytes = (uint64_t)md->sb.data_block_size * 512;

		if (fsize < fast_off * 512 + (uint64_t)md->sb.cache_blocks * bytes) {
			cli_error("%s: the fast device is smaller than the cache (%u blocks of %" PRIu64 " bytes)",
				  fast, md->sb.cache_blocks, bytes);
			goto out;
		}
		w.cleaned = calloc((size_t)md->sb.cache_blocks / 8 + 1, 1);
		if (!w.cleaned) {
			cli_error("out of memory");
			goto out;
		}
		r = data_copier_create(ffd, fast_off * 512, ofd, origin_off * 512, (uint32_t)bytes,
				       (unsigned)((buffer_meg << 20) / bytes), copy_done, &w,
				       &w.copier, &err);
		if (r) {
			cli_error("%s", err.msg);
			goto out;
		}
	}

	/* pass 2: copy */
	progress_init(&w.prog, "Writing back", w.nr_dirty, quiet);
	v.mapping = copy_mapping;
	r = cache_md_walk(md, false, &v, &err);
	if (!r)
		r = data_copier_drain(w.copier);
	progress_done(&w.prog);
	if (r) {
		cli_error("%s", err.code ? err.msg : strerror(-r));
		goto out;
	}
	if (fdatasync(ofd)) {
		cli_error("%s: %s", origin, strerror(errno));
		goto out;
	}
	if (!no_update && w.copied && mark_clean(md, &w, &err)) {
		cli_error("updating the metadata: %s", err.msg);
		goto out;
	}
	if (w.failed) {
		cli_error("%" PRIu64 " of %" PRIu64 " dirty blocks could not be written back",
			  w.failed, w.nr_dirty);
		goto out;
	}
	ret = 0;
out:
	data_copier_destroy(w.copier);
	free(w.cleaned);
	free(w.pending);
	if (ofd >= 0)
		close(ofd);
	if (ffd >= 0)
		close(ffd);
	cache_md_close(md);
	return ret;
}
