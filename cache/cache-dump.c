/* SPDX-License-Identifier: GPL-3.0-or-later */
/* cache_dump: cache metadata to XML (the format of 0.9's cache_dump). */
#include "cli.h"
#include "cache/md-cli.h"
#include "cache/cache-md.h"
#include "cache/cache-xml.h"
#include "cache/commands.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] {device|file}\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-o|--output} <xml file>\n"
		"  {-V|--version}\n"
		"  {-r|--repair}\n", prog_name);
}

int cache_dump_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "output", required_argument, NULL, 'o' },
		{ "repair", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *output = NULL;
	struct cache_xml_emitter xe;
	struct cache_visitor v;
	struct cache_md *md = NULL;
	struct pd_err err = { 0 };
	bool repair = false;
	FILE *out = stdout;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hVo:r", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case 'V':
			return cli_help_or_version(c, usage);
		case 'o':
			output = optarg;
			break;
		case 'r':
			repair = true;
			break;
		default:
			return cli_bad_usage(usage);
		}
	}
	if (md_cli_one_input(argc, argv, usage))
		return 1;
	r = cache_md_open(argv[optind], false, &md, &err);
	if (r) {
		cli_error("%s", err.msg);
		return 1;
	}
	if (md_cli_open_output(output, &out)) {
		cache_md_close(md);
		return 1;
	}
	cache_xml_emitter_init(&xe, out, &v);
	r = cache_md_walk(md, repair, &v, &err);
	cache_md_close(md);
	return md_cli_dump_end(out, output, r, &err, repair, "cache_check");
}
