/* SPDX-License-Identifier: GPL-3.0-or-later */
/* era_dump: era metadata to XML (the format of 0.9's era_dump). */
#include "cli.h"
#include "cache/md-cli.h"
#include "cache/commands.h"
#include "era/era-md.h"
#include "era/era-xml.h"

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
		"  {-r|--repair}\n"
		"  {--logical}\n", prog_name);
}

enum { OPT_LOGICAL = 256 };

int era_dump_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "output", required_argument, NULL, 'o' },
		{ "repair", no_argument, NULL, 'r' },
		{ "logical", no_argument, NULL, OPT_LOGICAL },
		{ NULL, 0, NULL, 0 },
	};
	const char *output = NULL;
	struct era_visitor v;
	struct era_md *md = NULL;
	struct pd_err err = { 0 };
	bool repair = false, logical = false;
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
		case OPT_LOGICAL:
			logical = true;
			break;
		default:
			return cli_bad_usage(usage);
		}
	}
	if (md_cli_one_input(argc, argv, usage))
		return 1;
	r = era_md_open(argv[optind], &md, &err);
	if (r) {
		cli_error("%s", err.msg);
		return 1;
	}
	if (md_cli_open_output(output, &out)) {
		era_md_close(md);
		return 1;
	}
	era_xml_emitter_init(out, &v);
	r = era_md_walk(md, logical, repair, &v, &err);
	era_md_close(md);
	return md_cli_dump_end(out, output, r, &err, repair, "era_check");
}
