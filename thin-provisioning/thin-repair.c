/* SPDX-License-Identifier: GPL-3.0-or-later */
/* thin_repair: what can still be read from damaged metadata, to fresh metadata. */
#include "cli.h"
#include "commands.h"
#include "output-file.h"
#include "restore.h"
#include "salvage.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] {device|file}\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-i|--input} <input metadata (binary format)>\n"
		"  {-o|--output} <output metadata (binary format)>\n"
		"  {--transaction-id} <natural>\n"
		"  {--data-block-size} <natural>\n"
		"  {--nr-data-blocks} <natural>\n"
		"  {--io-engine} {sync|async}\n"
		"  {-q|--quiet}\n"
		"  {-V|--version}\n", prog_name);
}

static void print_loss(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "%s: %s\n", prog_name, msg);
}

enum {
	OPT_IO_ENGINE = 256,
};

int thin_repair_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		CLI_SB_OVERRIDE_OPTIONS,
		{ "io-engine", required_argument, NULL, OPT_IO_ENGINE },
		{ NULL, 0, NULL, 0 },
	};
	struct salvage_opts so = { 0 };
	struct salvage_stats st;
	struct restore_estimate est;
	enum io_engine_kind engine = IO_ENGINE_SYNC;
	const char *input = NULL, *output = NULL;
	struct io_engine *in = NULL, *out = NULL;
	struct bm *bm = NULL;
	struct emitter *em = NULL;
	struct pd_err err = { 0 };
	bool quiet = false, written = false;
	struct stat sb;
	uint64_t need;
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
			quiet = true;
			break;
		case OPT_SB_TRANSACTION_ID:
		case OPT_SB_DATA_BLOCK_SIZE:
		case OPT_SB_NR_DATA_BLOCKS:
			if (cli_parse_sb_override(c, optarg, &so.ov))
				return 1;
			break;
		case OPT_IO_ENGINE:
			if (cli_parse_engine(optarg, &engine))
				return 1;
			break;
		default:
			return cli_bad_usage(usage);
		}
	}
	argc = cli_drop_empty_operands(argc, argv);
	if (!input && optind < argc)
		input = argv[optind++];
	if (optind < argc) {
		cli_error("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 1;
	}
	if (!input) {
		fprintf(stderr, "No input file provided.\n");
		usage(stderr);
		return 1;
	}
	if (!output) {
		fprintf(stderr, "No output file provided.\n");
		usage(stderr);
		return 1;
	}
	if (stat(input, &sb)) {
		cli_error("%s: %s", input, strerror(errno));
		return 1;
	}
	if (S_ISDIR(sb.st_mode)) {
		cli_error("%s: Is a directory", input);
		return 1;
	}
	if (output_check(output, input, &err)) {
		cli_error("%s", err.msg);
		return 1;
	}
	r = io_engine_open(input, engine, IO_OPEN_EXCL, &in, &err);
	if (r) {
		cli_error("%s", err.msg);
		return 1;
	}
	if (in->nr_blocks < 1) {
		cli_error("%s: Metadata device/file too small.  Is this binary metadata?", input);
		goto out;
	}
	r = bm_create(in, 0, &bm, &err);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}

	/* first pass: how much room the salvaged metadata needs */
	r = counting_emitter_create(&est, &em);
	if (!r)
		r = thin_salvage(bm, &so, em, &st, &err);
	emitter_destroy(em);
	em = NULL;
	if (r) {
		cli_error("%s: %s", input, err.msg);
		goto out;
	}
	r = io_engine_open(output, engine, IO_OPEN_WRITE | IO_OPEN_EXCL, &out, &err);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	need = restore_blocks_needed(&est, out->nr_blocks);
	if (out->nr_blocks < need) {
		cli_error("%s: output too small: the repaired metadata needs %" PRIu64
			  " blocks of 4 KiB (%" PRIu64 " KiB), but the output holds %" PRIu64,
			  output, need, need * 4, out->nr_blocks);
		goto out;
	}

	/* second pass: write, saying what was lost */
	if (!quiet)
		so.report = print_loss;
	r = restore_emitter_create(out, NULL, &err, &em);
	if (r) {
		cli_error("out of memory");
		goto out;
	}
	written = true;
	r = thin_salvage(bm, &so, em, &st, &err);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (!quiet && (st.lost_ranges || st.dropped_mappings || st.used_scan))
		fprintf(stderr, "%s: salvaged %" PRIu64 " devices with %" PRIu64 " mappings\n",
			prog_name, st.devices, st.mappings);
	ret = 0;
out:
	emitter_destroy(em);
	io_engine_destroy(out);
	bm_destroy(bm);
	io_engine_destroy(in);
	if (ret && written)
		output_invalidate(output);
	return ret;
}
