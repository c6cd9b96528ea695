/* SPDX-License-Identifier: GPL-3.0-or-later */
/* cache_restore: XML to fresh cache metadata (version 2 unless told). */
#include "cli.h"
#include "cache/cache-md.h"
#include "cache/cache-xml.h"
#include "cache/commands.h"
#include "cache/md-cli.h"
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
		"  {-i|--input} <input xml file>\n"
		"  {-o|--output} <output device or file>\n"
		"  {-q|--quiet}\n"
		"  {--metadata-version} <1 or 2>\n"
		"  {--omit-clean-shutdown}\n"
		"  {-V|--version}\n", prog_name);
}

enum { OPT_VERSION = 256, OPT_OMIT_CLEAN };

int cache_restore_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "metadata-version", required_argument, NULL, OPT_VERSION },
		{ "omit-clean-shutdown", no_argument, NULL, OPT_OMIT_CLEAN },
		{ NULL, 0, NULL, 0 },
	};
	struct cache_writer_opts wo = { .version = 2, .clean_shutdown = true };
	const char *input = NULL, *output = NULL;
	struct cache_writer *w = NULL;
	struct io_engine *io = NULL;
	struct cache_visitor v;
	struct pd_err err = { 0 };
	FILE *in = NULL;
	int c, r, ret = 1;
	bool written = false;

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
		case OPT_VERSION:
			if (strcmp(optarg, "1") && strcmp(optarg, "2")) {
				cli_error("--metadata-version must be 1 or 2");
				return 1;
			}
			wo.version = (uint32_t)(optarg[0] - '0');
			break;
		case OPT_OMIT_CLEAN:
			wo.clean_shutdown = false;
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
	if (md_cli_restore_open(input, output, &in, &io))
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
		cli_error("%s: %s", input, err.msg);
		goto out;
	}
	ret = 0;
out:
	cache_writer_destroy(w);
	io_engine_destroy(io);
	fclose(in);
	if (ret && written)
		output_invalidate(output);
	return ret;
}
