/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * era_invalidate: the blocks written since a given era - those whose
 * era in the era array, or in an archived writeset that marks them, is
 * at least that era - as 0.9's XML list of blocks and runs.  Streams
 * over the era array; memory: one block reader per writeset considered.
 */
#include "cli.h"
#include "cache/md-cli.h"
#include "cache/commands.h"
#include "era/era-md.h"
#include "persistent-data/array.h"

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
	struct era_writeset *ws;
	struct array_reader **readers;
	uint64_t nr_ws;
	bool in_run;
	uint64_t run_b, run_e;
	bool damaged;
	struct pd_err *err;
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

static void damage(void *ctx, uint64_t lo, uint64_t hi, const char *msg)
{
	struct inval *v = ctx;

	(void)lo;
	(void)hi;
	if (!v->damaged)
		pd_err_set(v->err, -EILSEQ, "%s", msg);
	v->damaged = true;
}

static int eras(void *ctx, uint64_t first, uint32_t nr, const void *values)
{
	struct inval *v = ctx;

	if (v->damaged)
		return -EILSEQ;
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t b = first + i;
		bool written = load_le32((const uint8_t *)values + 4u * i) >= v->since;

		for (uint64_t k = 0; !written && k < v->nr_ws; k++) {
			uint8_t le[8];
			int r;

			if (!v->readers[k] || b >= v->ws[k].nr_bits)
				continue;
			r = array_reader_get(v->readers[k], b / 64, le, v->err);
			if (r)
				return r;
			written = (load_le64(le) >> (b % 64)) & 1;
		}
		if (written)
			mark(v, b);
	}
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
	v.err = &err;
	r = era_md_open(argv[optind], &md, &err);
	if (!r && snap)
		r = era_md_use_snapshot(md, &err);
	if (!r)
		r = era_md_writesets(md, &v.ws, &v.nr_ws, &err);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	v.readers = calloc(v.nr_ws + 1, sizeof(*v.readers));
	if (!v.readers) {
		cli_error("out of memory");
		goto out;
	}
	for (uint64_t k = 0; k < v.nr_ws; k++)
		if (v.ws[k].era >= v.since &&
		    array_reader_create(md->bm, v.ws[k].root, 8, &v.readers[k], &err)) {
			cli_error("%s", err.msg);
			goto out;
		}
	if (md_cli_open_output(output, &v.out))
		goto out;
	fputs("<blocks>\n", v.out);
	{
		struct array_walk_ops ao = { .values = eras, .damage = damage };

		r = array_walk(md->bm, md->sb.era_array_root, 4, md->sb.nr_blocks, &ao, &v, &err);
		if (!r && v.damaged)
			r = -EILSEQ;
	}
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
	if (v.readers)
		for (uint64_t k = 0; k < v.nr_ws; k++)
			array_reader_destroy(v.readers[k]);
	free(v.readers);
	free(v.ws);
	era_md_close(md);
	return ret;
}
