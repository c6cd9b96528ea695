/* SPDX-License-Identifier: GPL-3.0-or-later */
/* thin_dump: metadata to XML or a human-readable listing. */
#include "cli.h"
#include "commands.h"
#include "dumper.h"
#include "metadata.h"
#include "salvage.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] {device|file}\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-f|--format} {xml|human_readable}\n"
		"  {-r|--repair}\n"
		"  {-m|--metadata-snap} [block#]\n"
		"  {-o <xml file>}\n"
		"  {--dev-id} <dev-id>\n"
		"  {--skip-mappings}\n"
		CLI_SB_OVERRIDE_USAGE
		"  {--io-engine} {sync|async}\n"
		"  {-q|--quiet}\n"
		"  {-V|--version}\n", prog_name);
}

/* --repair: what can still be read, with damage tolerated and reported. */
static int dump_repair(const char *input, const struct thin_open_opts *oo,
		       const struct sb_overrides *ov, bool human, const char *output)
{
	struct salvage_opts so = {
		.ov = *ov,
		.report = cli_report,
	};
	static char buf[1 << 20];
	struct salvage_stats st;
	struct io_engine *io = NULL;
	struct emitter *em = NULL;
	struct pd_err err = { 0 };
	struct bm *bm = NULL;
	FILE *out = stdout;
	int r, ret = 1;

	if (oo->metadata_snap) {
		cli_error("--repair reads the live metadata: it cannot be combined with -m");
		return 1;
	}
	r = io_engine_open(input, oo->engine, 0, &io, &err);
	if (!r && io->nr_blocks < 1)
		r = pd_err_set(&err, -EFBIG, "Metadata device/file too small.  Is this binary metadata?");
	if (!r)
		r = bm_create(io, 0, &bm, &err);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (output && !(out = fopen(output, "w"))) {
		cli_error("%s: %s", output, strerror(errno));
		out = stdout;
		goto out;
	}
	setvbuf(out, buf, _IOFBF, sizeof(buf));
	if (human ? emitter_human_create(out, &em) : emitter_xml_create(out, &em)) {
		cli_error("out of memory");
		goto out;
	}
	r = thin_salvage(bm, &so, em, &st, &err);
	if (r) {
		fflush(out);
		cli_error("%s", err.msg);
		goto out;
	}
	ret = 0;
out:
	if (out != stdout && fclose(out) && !ret) {
		cli_error("%s: write error: %s", output, strerror(errno));
		ret = 1;
	}
	emitter_destroy(em);
	bm_destroy(bm);
	io_engine_destroy(io);
	return ret;
}

enum {
	OPT_DEV_ID = 256,
	OPT_SKIP_MAPPINGS,
	OPT_IO_ENGINE,
};

int thin_dump_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "format", required_argument, NULL, 'f' },
		{ "repair", no_argument, NULL, 'r' },
		{ "output", required_argument, NULL, 'o' },
		{ "metadata-snap", optional_argument, NULL, 'm' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "dev-id", required_argument, NULL, OPT_DEV_ID },
		{ "skip-mappings", no_argument, NULL, OPT_SKIP_MAPPINGS },
		CLI_SB_OVERRIDE_OPTIONS,
		{ "io-engine", required_argument, NULL, OPT_IO_ENGINE },
		{ NULL, 0, NULL, 0 },
	};
	struct thin_open_opts oo = { .engine = IO_ENGINE_SYNC };
	struct thin_emit_opts eo = { 0 };
	struct sb_overrides ov = { 0 };
	struct sb_override_emitter ove;
	struct thin_metadata *md = NULL;
	struct emitter *em = NULL;
	uint64_t *dev_ids = NULL;
	const char *output = NULL;
	bool human = false, repair = false;
	FILE *out = stdout;
	struct pd_err err = { 0 };
	static char outbuf[1 << 20];
	int c, r, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hVf:o:m::qr", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case 'V':
			return cli_help_or_version(c, usage);
		case 'f':
			if (!strcmp(optarg, "xml"))
				human = false;
			else if (!strcmp(optarg, "human_readable"))
				human = true;
			else {
				cli_error("unknown format '%s' (use xml or human_readable)", optarg);
				return cli_bad_usage(usage);
			}
			break;
		case 'o':
			output = optarg;
			break;
		case 'm':
			oo.metadata_snap = true;
			if (optarg && cli_parse_u64(optarg, &oo.snap_block)) {
				cli_error("bad metadata snapshot block '%s'", optarg);
				return 1;
			}
			break;
		case 'q':
			break;
		case 'r':
			repair = true;
			break;
		case OPT_DEV_ID: {
			uint64_t id, *n;

			if (cli_parse_u64(optarg, &id)) {
				cli_error("bad device id '%s'", optarg);
				free(dev_ids);
				return 1;
			}
			n = realloc(dev_ids, sizeof(*n) * (eo.nr_dev_ids + 1));
			if (!n) {
				free(dev_ids);
				cli_error("out of memory");
				return 1;
			}
			dev_ids = n;
			dev_ids[eo.nr_dev_ids++] = id;
			break;
		}
		case OPT_SKIP_MAPPINGS:
			eo.skip_mappings = true;
			break;
		case OPT_SB_TRANSACTION_ID:
		case OPT_SB_DATA_BLOCK_SIZE:
		case OPT_SB_NR_DATA_BLOCKS:
			if (cli_parse_sb_override(c, optarg, &ov))
				goto out;
			break;
		case OPT_IO_ENGINE:
			if (cli_parse_engine(optarg, &oo.engine))
				goto out;
			break;
		default:
			free(dev_ids);
			return cli_bad_usage(usage);
		}
	}
	eo.dev_ids = dev_ids;
	if (!cli_one_input(argc, argv, usage, 0))
		goto out;

	if (repair) {
		ret = dump_repair(argv[optind], &oo, &ov, human, output);
		goto out;
	}
	r = thin_metadata_open(argv[optind], &oo, &md, &err);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}

	if (output) {
		out = fopen(output, "w");
		if (!out) {
			cli_error("%s: %s", output, strerror(errno));
			out = stdout;
			goto out;
		}
	}
	setvbuf(out, outbuf, _IOFBF, sizeof(outbuf));
	r = human ? emitter_human_create(out, &em) : emitter_xml_create(out, &em);
	if (r) {
		cli_error("out of memory");
		goto out;
	}
	r = thin_emit_metadata(md, &eo, sb_override_emitter_init(&ove, em, &ov), &err);
	if (r) {
		fflush(out);
		cli_error("%s", err.msg);
		fprintf(stderr, "metadata contains errors (run thin_check for details).\n");
		goto out;
	}
	ret = 0;

out:
	if (out != stdout) {
		if (fclose(out) && !ret) {
			cli_error("%s: write error: %s", output, strerror(errno));
			ret = 1;
		}
	} else if (fflush(stdout) && !ret) {
		ret = 1;
	}
	emitter_destroy(em);
	thin_metadata_close(md);
	free(dev_ids);
	return ret;
}
