/* SPDX-License-Identifier: GPL-3.0-or-later */
/* cache_repair: what can be read of damaged metadata, written afresh. */
#include "cli.h"
#include "cache/cache-md.h"
#include "cache/commands.h"
#include "thin-provisioning/output-file.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options]\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-i|--input} <input metadata (binary format)>\n"
		"  {-o|--output} <output metadata (binary format)>\n"
		"  {-q|--quiet}\n"
		"  {-V|--version}\n", prog_name);
}

int cache_repair_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	const char *input = NULL, *output = NULL;
	struct cache_writer *w = NULL;
	struct io_engine *io = NULL;
	struct cache_md *md = NULL;
	struct cache_visitor v;
	struct pd_err err = { 0 };
	int c, r, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hVi:o:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			cli_version();
			return 0;
		case 'i':
			input = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'q':
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
	if (!input || !output) {
		cli_error(!input ? "No input file provided." : "No output file provided.");
		usage(stderr);
		return 1;
	}
	if (output_check(output, input, &err)) {
		cli_error("%s", err.msg);
		return 1;
	}
	r = cache_md_open(input, false, &md, &err);
	if (r) {
		cli_error("%s", err.msg);
		return 1;
	}
	r = io_engine_open(output, IO_ENGINE_SYNC, IO_OPEN_WRITE | IO_OPEN_EXCL, &io, &err);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	{
		struct cache_writer_opts wo = {
			.version = md->sb.version,
			.clean_shutdown = md->sb.flags & CACHE_SB_CLEAN_SHUTDOWN,
		};

		r = cache_writer_create(io, &wo, &w, &err);
	}
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	cache_writer_visitor(w, &v);
	r = cache_md_walk(md, true, &v, &err);
	if (r) {
		struct pd_err *we = cache_writer_err(w);

		cli_error("%s", we->code ? we->msg : err.code ? err.msg : strerror(-r));
		output_invalidate(output);
		goto out;
	}
	ret = 0;
out:
	cache_writer_destroy(w);
	io_engine_destroy(io);
	cache_md_close(md);
	return ret;
}
