/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * thin_trim: discard the data blocks of an inactive pool that no thin
 * device maps (BLKDISCARD on a block device, a punched hole in a file).
 */
#include "cli.h"
#include "thin-provisioning/commands.h"
#include "thin-provisioning/trim.h"
#include "persistent-data/output-file.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] --metadata-dev {device|file} --data-dev {device|file}\n"
		"Issue discard requests for free pool space (offline tool).\n"
		"Options:\n"
		"  {--metadata-dev} <device|file>\n"
		"  {--data-dev} <device|file>\n"
		"  {-q|--quiet}\n"
		"  {-h|--help}\n"
		"  {-V|--version}\n", prog_name);
}

struct discard_ctx {
	int fd;
	bool blockdev;
	uint64_t block_bytes;
	const char *path;
	struct pd_err *err;
	struct progress prog;
};

static int discard_range(void *ctx, uint64_t begin, uint64_t end)
{
	struct discard_ctx *d = ctx;
	uint64_t off = begin * d->block_bytes, len = (end - begin) * d->block_bytes;

	if (d->blockdev) {
		uint64_t range[2] = { off, len };

		if (ioctl(d->fd, BLKDISCARD, range))
			return pd_err_set(d->err, -errno, "%s: discard of data blocks %llu..%llu failed: %s",
					  d->path, (unsigned long long)begin,
					  (unsigned long long)end, strerror(errno));
		return 0;
	}
	if (fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
		return pd_err_set(d->err, -errno, "%s: punching a hole at data blocks %llu..%llu failed: %s",
				  d->path, (unsigned long long)begin,
				  (unsigned long long)end, strerror(errno));
	return 0;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	(void)total;
	progress_update(&((struct discard_ctx *)ctx)->prog, done);
}

enum { OPT_METADATA_DEV = 256, OPT_DATA_DEV };

int thin_trim_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "metadata-dev", required_argument, NULL, OPT_METADATA_DEV },
		{ "data-dev", required_argument, NULL, OPT_DATA_DEV },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	struct thin_open_opts oo = { .engine = IO_ENGINE_SYNC, .io_flags = IO_OPEN_EXCL };
	const char *meta = NULL, *data = NULL;
	struct thin_metadata *md = NULL;
	struct discard_ctx d = { .fd = -1 };
	struct pd_err err = { 0 };
	struct trim_stats st;
	struct stat sb;
	uint64_t size;
	bool quiet = false;
	int c, r, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hVq", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case 'V':
			return cli_help_or_version(c, usage);
		case OPT_METADATA_DEV:
			meta = optarg;
			break;
		case OPT_DATA_DEV:
			data = optarg;
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
	if (!meta) {
		fprintf(stderr, "No metadata device provided.\n");
		return cli_bad_usage(usage);
	}
	if (!data) {
		fprintf(stderr, "No data device provided.\n");
		return cli_bad_usage(usage);
	}
	if (same_file(meta, data)) {
		cli_error("the data device is the metadata device");
		return 1;
	}
	/* O_EXCL on both: an active pool holds them open */
	r = thin_metadata_open(meta, &oo, &md, &err);
	if (r) {
		cli_error("%s", err.msg);
		return 1;
	}
	if (stat(data, &sb)) {
		cli_error("%s: %s", data, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode) && !S_ISBLK(sb.st_mode)) {
		cli_error("%s: not a block device or regular file", data);
		goto out;
	}
	d.blockdev = S_ISBLK(sb.st_mode);
	d.fd = open(data, O_WRONLY | O_CLOEXEC | (d.blockdev ? O_EXCL : 0));
	if (d.fd < 0) {
		if (errno == EBUSY)
			cli_error("%s: the data device is in use (is the pool active?)", data);
		else
			cli_error("%s: %s", data, strerror(errno));
		goto out;
	}
	if (d.blockdev) {
		if (ioctl(d.fd, BLKGETSIZE64, &size)) {
			cli_error("%s: cannot get its size: %s", data, strerror(errno));
			goto out;
		}
	} else {
		size = (uint64_t)sb.st_size;
	}
	d.block_bytes = (uint64_t)md->sb.data_block_size * 512u;
	if (!d.block_bytes || md->data_sm.nr_blocks > size / d.block_bytes) {
		cli_error("%s: data device too small: the metadata has %llu data blocks of %llu bytes (%llu bytes), the device %llu bytes",
			  data, (unsigned long long)md->data_sm.nr_blocks,
			  (unsigned long long)d.block_bytes,
			  (unsigned long long)(md->data_sm.nr_blocks * d.block_bytes),
			  (unsigned long long)size);
		goto out;
	}
	d.path = data;
	d.err = &err;
	progress_init(&d.prog, "Trimming", md->data_sm.nr_blocks, quiet);
	r = thin_trim_walk(md, discard_range, &d, on_progress, &d, &st, &err);
	progress_done(&d.prog);
	if (!r && !d.blockdev && fsync(d.fd))
		r = pd_err_set(&err, -errno, "%s: %s", data, strerror(errno));
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	ret = 0;
out:
	if (d.fd >= 0)
		close(d.fd);
	thin_metadata_close(md);
	return ret;
}
