/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * thin_metadata_pack / thin_metadata_unpack: the metadata blocks of a
 * pool in 1.x's compressed pack format, and back.
 */
#include "cli.h"
#include "thin-provisioning/commands.h"
#include "thin-provisioning/pack.h"
#include "persistent-data/checksum.h"
#include "persistent-data/output-file.h"
#include "thin-provisioning/superblock.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void pack_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] -i {device|file} -o {pack file}\n"
		"Produces a compressed file of thin metadata; only the metadata blocks in use are packed.\n"
		"Options:\n"
		"  {-i|--input} <device|file>\n"
		"  {-o|--output} <pack file>\n"
		"  {-f|--force}     overwrite an output that holds metadata\n"
		"  {-q|--quiet}\n"
		"  {-h|--help}\n"
		"  {-V|--version}\n", prog_name);
}

static void unpack_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] -i {pack file} -o {device|file}\n"
		"Unpacks a compressed file of thin metadata.\n"
		"Options:\n"
		"  {-i|--input} <pack file>\n"
		"  {-o|--output} <device|file>\n"
		"  {-f|--force}     overwrite an output that holds metadata\n"
		"  {-q|--quiet}\n"
		"  {-h|--help}\n"
		"  {-V|--version}\n", prog_name);
}

struct args {
	struct cli_io_args io;
	bool force;
};

static int force_opt(void *ctx, int opt, const char *arg)
{
	(void)opt;	/* only -f reaches here */
	(void)arg;
	*(bool *)ctx = true;
	return 0;
}

/* -1: go on; else the exit code (help, version, a bad command line). */
static int parse(int argc, char **argv, void (*usage)(FILE *), struct args *a)
{
	static const struct option longopts[] = {
		CLI_IO_OPTIONS,
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_io_spec spec = {
		.longopts = longopts, .shortopts = "hVi:o:fq", .usage = usage,
		.extra = force_opt, .ctx = &a->force,
	};

	a->force = false;
	return cli_parse_io(argc, argv, &spec, &a->io);
}

/*
 * An existing output that starts with a thin superblock is only
 * overwritten with -f (1.x asks on the terminal; we never prompt, so
 * scripts get an answer).
 */
static int check_overwrite(const char *path, bool force)
{
	void *blk;
	int fd, ret = 0;

	if (force)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	blk = malloc(MD_BLOCK_SIZE);
	if (blk && pread(fd, blk, MD_BLOCK_SIZE, 0) == MD_BLOCK_SIZE &&
	    block_csum_type(blk) == CSUM_XOR_SUPERBLOCK) {
		cli_error("%s already holds thin metadata; use -f to overwrite it", path);
		ret = 1;
	}
	free(blk);
	close(fd);
	return ret;
}

struct prog_ctx {
	struct progress p;
	bool started;
};

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct prog_ctx *pc = ctx;

	(void)total;
	progress_update(&pc->p, done);
}

/*
 * Pack and unpack create their output if need be: it must not be a
 * directory or the input, and metadata in it is kept unless -f.  Returns 0,
 * or 1 after one line on stderr.
 */
static int check_output(const struct args *a)
{
	struct stat st;

	if (!stat(a->io.output, &st) && S_ISDIR(st.st_mode)) {
		cli_error("%s: Is a directory", a->io.output);
		return 1;
	}
	if (same_file(a->io.input, a->io.output)) {
		cli_error("%s: the output is the input; write to another file", a->io.output);
		return 1;
	}
	return check_overwrite(a->io.output, a->force);
}

int thin_metadata_pack_main(int argc, char **argv)
{
	struct args a;
	struct io_engine *in = NULL;
	struct pd_err err = { 0 };
	struct prog_ctx pc;
	struct pack_stats st;
	FILE *out = NULL;
	void *blk = NULL;
	bool created = false;
	int r, ret = 1;

	r = parse(argc, argv, pack_usage, &a);
	if (r >= 0)
		return r;
	r = io_engine_open(a.io.input, IO_ENGINE_SYNC, IO_OPEN_EXCL, &in, &err);
	if (!r && in->nr_blocks < 1)
		r = pd_err_set(&err, -EFBIG, "Metadata device/file too small.  Is this binary metadata?");
	if (!r && !(blk = io_alloc_block()))
		r = pd_err_set(&err, -ENOMEM, "out of memory");
	if (!r && !(r = io_read_block(in, 0, blk)) && block_looks_like_xml(blk, MD_BLOCK_SIZE))
		r = pd_err_set(&err, -EPROTO,
			       "This looks like XML.  This tool only supports the binary metadata format.");
	else if (r < 0 && !err.code)
		r = pd_err_set(&err, r, "%s: read error: %s", a.io.input, strerror(-r));
	free(blk);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (check_output(&a))
		goto out;
	out = fopen(a.io.output, "w");
	if (!out) {
		cli_error("%s: %s", a.io.output, strerror(errno));
		goto out;
	}
	created = true;
	progress_init(&pc.p, "Packing", in->nr_blocks, a.io.quiet);
	r = md_pack(in, out, on_progress, &pc, &st, &err);
	progress_done(&pc.p);
	if (!r && (fflush(out) || fsync(fileno(out))))
		r = pd_err_set(&err, -errno, "%s: %s", a.io.output, strerror(errno));
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	ret = 0;
out:
	if (out && fclose(out) && !ret) {
		cli_error("%s: %s", a.io.output, strerror(errno));
		ret = 1;
	}
	if (ret && created)
		unlink(a.io.output);	/* no half-written pack left behind */
	io_engine_destroy(in);
	return ret;
}

int thin_metadata_unpack_main(int argc, char **argv)
{
	struct args a;
	struct io_engine *out = NULL;
	struct pd_err err = { 0 };
	struct prog_ctx pc;
	struct pack_stats st;
	struct stat sb;
	uint64_t nr_blocks;
	FILE *in = NULL;
	bool wrote = false;
	int r, ret = 1;

	r = parse(argc, argv, unpack_usage, &a);
	if (r >= 0)
		return r;
	if (cli_check_input(a.io.input, &sb))
		return 1;
	in = fopen(a.io.input, "r");
	if (!in) {
		cli_error("%s: %s", a.io.input, strerror(errno));
		return 1;
	}
	if (md_unpack_header(in, &nr_blocks, &err)) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (check_output(&a))
		goto out;
	if (stat(a.io.output, &sb) || S_ISREG(sb.st_mode)) {
		/* a file: created or truncated, then sized to the metadata */
		int fd = open(a.io.output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd < 0) {
			cli_error("%s: %s", a.io.output, strerror(errno));
			goto out;
		}
		wrote = true;
		if (ftruncate(fd, (off_t)(nr_blocks * MD_BLOCK_SIZE))) {
			cli_error("%s: %s", a.io.output, strerror(errno));
			close(fd);
			goto out;
		}
		close(fd);
	}
	r = io_engine_open(a.io.output, IO_ENGINE_SYNC, IO_OPEN_WRITE | IO_OPEN_EXCL, &out, &err);
	if (!r && out->nr_blocks < nr_blocks)
		r = pd_err_set(&err, -ENOSPC, "%s: too small for the %llu blocks of the packed metadata",
			       a.io.output, (unsigned long long)nr_blocks);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	wrote = true;
	progress_init(&pc.p, "Unpacking", (uint64_t)sb.st_size ? (uint64_t)sb.st_size : 1, a.io.quiet);
	r = md_unpack(in, out, nr_blocks, on_progress, &pc, &st, &err);
	progress_done(&pc.p);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	ret = 0;
out:
	io_engine_destroy(out);
	if (ret && wrote)
		output_invalidate(a.io.output);
	fclose(in);
	return ret;
}
