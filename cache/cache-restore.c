/* SPDX-License-Identifier: GPL-3.0-or-later */
/* cache_restore: XML to fresh cache metadata (version 2 unless told). */
#include "cli.h"
#include "cache/cache-md.h"
#include "cache/cache-xml.h"
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
		"  {-i|--input} <input xml file>\n"
		"  {-o|--output} <output device or file>\n"
		"  {-q|--quiet}\n"
		"  {--metadata-version} <1 or 2>\n"
		"  {--omit-clean-shutdown}\n"
		"  {-V|--version}\n", prog_name);
}

enum { OPT_VERSION = 256, OPT_OMIT_CLEAN };

static int restore_opt(void *ctx, int opt, const char *arg)
{
	struct cache_writer_opts *wo = ctx;

	if (opt == OPT_VERSION) {
		if (strcmp(arg, "1") && strcmp(arg, "2")) {
			cli_error("--metadata-version must be 1 or 2");
			return 1;
		}
		wo->version = (uint32_t)(arg[0] - '0');
	} else {
		wo->clean_shutdown = false;
	}
	return 0;
}

int cache_restore_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "metadata-version", required_argument, NULL, OPT_VERSION },
		{ "omit-clean-shutdown", no_argument, NULL, OPT_OMIT_CLEAN },
		CLI_IO_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cache_writer_opts wo = { .version = 2, .clean_shutdown = true };
	struct cli_io_args a;
	struct cache_writer *w = NULL;
	struct io_engine *io = NULL;
	struct cache_visitor v;
	struct pd_err err = { 0 };
	FILE *in = NULL;
	int r, ret;
	bool written = false;

	const struct cli_io_spec spec = {
		.longopts = longopts, .usage = usage, .flags = CLI_IO_NAMED_MISSING,
		.extra = restore_opt, .ctx = &wo,
	};

	ret = cli_parse_io(argc, argv, &spec, &a);
	if (ret >= 0)
		return ret;
	ret = 1;
	if (md_cli_restore_open(a.input, a.output, &in, &io))
		return 1;
	r = cache_writer_create(io, &wo, &w, &err);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	cache_writer_visitor(w, &v);
	written = true;
	r = cache_xml_parse_fast(in, &v, cache_writer_err(w), &err);
	if (r == XML_PARSE_DECLINED) {
		/* not as cache_dump writes it: start again with expat */
		cache_writer_destroy(w);
		w = NULL;
		rewind(in);
		r = cache_writer_create(io, &wo, &w, &err);
		if (r) {
			cli_error("%s", err.msg);
			goto out;
		}
		cache_writer_visitor(w, &v);
		r = cache_xml_parse(in, &v, cache_writer_err(w), &err);
	}
	if (r) {
		cli_error("%s: %s", a.input, err.msg);
		goto out;
	}
	ret = 0;
out:
	cache_writer_destroy(w);
	io_engine_destroy(io);
	fclose(in);
	if (ret && written)
		output_invalidate(a.output);
	return ret;
}
