/* SPDX-License-Identifier: GPL-3.0-or-later */
/* thin_rmap: which devices and virtual blocks map some data blocks. */
#include "cli.h"
#include "thin-provisioning/commands.h"
#include "thin-provisioning/rmap.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] {device|file}\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-V|--version}\n"
		"  {--region <block range>}*\n"
		"  {--io-engine} {sync|async}\n"
		"Where:\n"
		"  <block range> is of the form <begin>..<one-past-the-end>\n"
		"  for example 5..45 denotes blocks 5 to 44 inclusive, but not block 45\n",
		prog_name);
}

/* "B..E" with E > B; the messages are v0.9's. */
static int parse_region(const char *s, struct rmap_region *r)
{
	const char *dots = strstr(s, "..");
	char *b;

	if (!dots) {
		cli_error("badly formed region (no dots): '%s'", s);
		return -EINVAL;
	}
	b = strndup(s, (size_t)(dots - s));
	if (!b) {
		cli_error("out of memory");
		return -ENOMEM;
	}
	if (cli_parse_u64(b, &r->begin) || cli_parse_u64(dots + 2, &r->end)) {
		free(b);
		cli_error("badly formed region (couldn't parse numbers): '%s'", s);
		return -EINVAL;
	}
	free(b);
	if (r->end <= r->begin) {
		cli_error("badly formed region (end <= begin): '%s'", s);
		return -EINVAL;
	}
	return 0;
}

static int print_run(void *ctx, const struct rmap_run *r)
{
	FILE *out = ctx;

	fprintf(out, "data %" PRIu64 "..%" PRIu64 " -> thin(%" PRIu64 ") %" PRIu64 "..%" PRIu64 "\n",
		r->data_begin, r->data_end, r->dev_id, r->thin_begin,
		r->thin_begin + (r->data_end - r->data_begin));
	return 0;
}

enum { OPT_REGION = 256, OPT_IO_ENGINE };

int thin_rmap_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "region", required_argument, NULL, OPT_REGION },
		{ "io-engine", required_argument, NULL, OPT_IO_ENGINE },
		{ NULL, 0, NULL, 0 },
	};
	struct thin_open_opts oo = { .engine = IO_ENGINE_SYNC };
	struct rmap_region *regions = NULL;
	struct thin_metadata *md = NULL;
	struct pd_err err = { 0 };
	unsigned nr = 0;
	size_t chunk = 0;
	const char *env;
	int c, r, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			free(regions);
			usage(stdout);
			return 0;
		case 'V':
			free(regions);
			cli_version();
			return 0;
		case OPT_REGION: {
			struct rmap_region *n = realloc(regions, (nr + 1) * sizeof(*n));

			if (!n) {
				cli_error("out of memory");
				goto out;
			}
			regions = n;
			if (parse_region(optarg, regions + nr))
				goto out;
			nr++;
			break;
		}
		case OPT_IO_ENGINE:
			if (cli_parse_engine(optarg, &oo.engine))
				goto out;
			break;
		default:
			free(regions);
			return cli_bad_usage(usage);
		}
	}
	if (!cli_one_input(argc, argv, usage, 0)) {
		free(regions);
		return 1;
	}
	if (!nr) {
		fprintf(stderr, "No regions provided.\n");
		return cli_bad_usage(usage);
	}
	/* for tests: how many runs are sorted in memory before spilling */
	env = getenv("THINP_RMAP_CHUNK_RUNS");
	if (env) {
		uint64_t v;

		if (!cli_parse_u64(env, &v) && v)
			chunk = (size_t)v;
	}
	r = thin_metadata_open(argv[optind], &oo, &md, &err);
	if (!r)
		r = thin_rmap_walk(md, regions, nr, chunk, print_run, stdout, &err);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	ret = 0;
out:
	thin_metadata_close(md);
	free(regions);
	return ret;
}
