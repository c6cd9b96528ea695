/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * era_invalidate: the blocks written since a given era - those whose
 * era in the era array, or in an archived writeset that marks them, is
 * at least that era - as 0.9's XML list of blocks and runs.  Streams
 * over the era array (era_marks); memory: the writeset list and one block.
 */
#include "cli.h"
#include "cache/md-cli.h"
#include "cache/commands.h"
#include "era/era-md.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] --written-since <era> {device|file}\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-o|--output} <xml file>\n"
		"  {--metadata-snapshot}\n"
		"  {-V|--version}\n", prog_name);
}

struct inval {
	FILE *out;
	uint32_t since;
	bool in_run;
	uint64_t run_b, run_e;
};

static void flush_run(struct inval *v)
{
	if (!v->in_run)
		return;
	if (v->run_e - v->run_b == 1)
		fprintf(v->out, "  <block block=\"%llu\"/>\n", (unsigned long long)v->run_b);
	else
		fprintf(v->out, "  <range begin=\"%llu\" end = \"%llu\"/>\n",
			(unsigned long long)v->run_b, (unsigned long long)v->run_e);
	v->in_run = false;
}

static void mark(struct inval *v, uint64_t b)
{
	if (v->in_run && v->run_e == b) {
		v->run_e++;
		return;
	}
	flush_run(v);
	v->in_run = true;
	v->run_b = b;
	v->run_e = b + 1;
}

/* Written since: the era array says so, or an archived writeset of that era or later. */
static int block_era(void *ctx, uint32_t block, uint32_t era, bool marked, uint32_t ws_era)
{
	struct inval *v = ctx;

	if (era >= v->since || (marked && ws_era >= v->since))
		mark(v, block);
	return 0;
}

enum { OPT_SNAP = 256, OPT_SINCE };

int era_invalidate_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "output", required_argument, NULL, 'o' },
		{ "metadata-snapshot", no_argument, NULL, OPT_SNAP },
		{ "written-since", required_argument, NULL, OPT_SINCE },
		{ NULL, 0, NULL, 0 },
	};
	struct inval v = { 0 };
	struct era_md *md = NULL;
	struct era_marks *marks = NULL;
	struct pd_err err = { 0 };
	const char *output = NULL;
	bool snap = false, have_since = false;
	int c, r, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hVo:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case 'V':
			return cli_help_or_version(c, usage);
		case 'o':
			output = optarg;
			break;
		case OPT_SNAP:
			snap = true;
			break;
		case OPT_SINCE:
			if (cli_parse_u32(optarg, &v.since)) {
				cli_error("--written-since: not an era: '%s'", optarg);
				return 1;
			}
			have_since = true;
			break;
		default:
			return cli_bad_usage(usage);
		}
	}
	if (md_cli_one_input(argc, argv, usage))
		return 1;
	if (!have_since) {
		cli_error("Please specify --written-since");
		usage(stderr);
		return 1;
	}
	r = era_md_open(argv[optind], &md, &err);
	if (!r && snap)
		r = era_md_use_snapshot(md, &err);
	if (!r)
		r = era_marks_open(md, false, &marks, &err);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (md_cli_open_output(output, &v.out))
		goto out;
	fputs("<blocks>\n", v.out);
	r = era_marks_walk(marks, block_era, &v, &err);
	flush_run(&v);
	fputs("</blocks>\n", v.out);
	if (v.out != stdout && fclose(v.out) && !r)
		r = pd_err_set(&err, -EIO, "%s: write error", output);
	if (r) {
		cli_error("metadata contains errors (run era_check for details): %s", err.msg);
		goto out;
	}
	ret = 0;
out:
	era_marks_close(marks);
	era_md_close(md);
	return ret;
}
