/* SPDX-License-Identifier: GPL-3.0-or-later */
/* cache_repair: what can be read of damaged metadata, written afresh. */
#include "cli.h"
#include "cache/cache-md.h"
#include "cache/commands.h"
#include "cache/md-cli.h"
#include "persistent-data/output-file.h"

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
		CLI_IO_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_io_args a;
	struct cache_writer *w = NULL;
	struct io_engine *io = NULL;
	struct cache_md *md = NULL;
	struct cache_visitor v;
	struct pd_err err = { 0 };
	int r, ret;

	const struct cli_io_spec spec = {
		.longopts = longopts, .usage = usage, .flags = CLI_IO_NAMED_MISSING,
	};

	ret = cli_parse_io(argc, argv, &spec, &a);
	if (ret >= 0)
		return ret;
	ret = 1;
	if (cli_check_output(a.output, a.input))
		return 1;
	r = cache_md_open(a.input, false, &md, &err);
	if (r) {
		cli_error("%s", err.msg);
		return 1;
	}
	if (cli_open_output(a.output, IO_ENGINE_SYNC, &io))
		goto out;
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
		output_invalidate(a.output);
		goto out;
	}
	ret = 0;
out:
	cache_writer_destroy(w);
	io_engine_destroy(io);
	cache_md_close(md);
	return ret;
}
