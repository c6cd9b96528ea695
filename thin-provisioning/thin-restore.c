/* SPDX-License-Identifier: GPL-3.0-or-later */
/* thin_restore: XML (v0.9 or 1.x) to fresh metadata. */
#include "cli.h"
#include "commands.h"
#include "output-file.h"
#include "restore.h"
#include "xml-parser.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options]\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-i|--input} <input xml file>\n"
		"  {-o|--output} <output device or file>\n"
		"  {--transaction-id} <natural>\n"
		"  {--data-block-size} <natural>\n"
		"  {--nr-data-blocks} <natural>\n"
		"  {--io-engine} {sync|async}\n"
		"  {-q|--quiet}\n"
		"  {-V|--version}\n", prog_name);
}

static void on_progress(void *ctx, uint64_t bytes)
{
	progress_update(ctx, bytes);
}

enum {
	OPT_IO_ENGINE = 256,
};

int thin_restore_main(int argc, char **argv)
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
	struct xml_parse_opts po = { 0 };
	enum io_engine_kind engine = IO_ENGINE_SYNC;
	const char *input = NULL, *output = NULL;
	struct restore_estimate est;
	struct io_engine *io = NULL;
	struct emitter *em = NULL;
	struct progress prog;
	struct pd_err err = { 0 };
	bool quiet = false, written = false;
	uint64_t need;
	struct stat st;
	FILE *in = NULL;
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
			if (cli_parse_sb_override(c, optarg, &po.ov))
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

	if (stat(input, &st)) {
		cli_error("%s: %s", input, strerror(errno));
		return 1;
	}
	if (S_ISDIR(st.st_mode)) {
		cli_error("%s: Is a directory", input);
		return 1;
	}
	if (!S_ISREG(st.st_mode)) {
		/* it is read twice: once to check and size, once to write */
		cli_error("%s: not a regular file (a pipe cannot be restored from; save it to a file first)",
			  input);
		return 1;
	}
	if (output_check(output, input, &err)) {
		cli_error("%s", err.msg);
		return 1;
	}
	in = fopen(input, "r");
	if (!in) {
		cli_error("%s: %s", input, strerror(errno));
		return 1;
	}

	/*
	 * first pass: the whole input is valid, and how much room it needs.
	 * The fast reader takes what thin_dump writes; anything else, and
	 * any input with an error, is read again by expat, whose verdict and
	 * wording are the reference.  The second pass reads as the first.
	 */
	po.reader = XML_READER_FAST_OR_DECLINE;
	for (;;) {
		r = counting_emitter_create(&est, &em);
		if (r) {
			cli_error("out of memory");
			goto out;
		}
		r = thin_xml_parse(in, em, &po, &err);
		emitter_destroy(em);
		em = NULL;
		if (r != XML_PARSE_DECLINED)
			break;
		po.reader = XML_READER_EXPAT;
		rewind(in);
	}
	if (po.reader == XML_READER_FAST_OR_DECLINE)
		po.reader = XML_READER_FAST;
	if (r) {
		cli_error("%s: %s", input, err.msg);
		goto out;
	}

	r = io_engine_open(output, engine, IO_OPEN_WRITE | IO_OPEN_EXCL, &io, &err);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	need = restore_blocks_needed(&est, io->nr_blocks);
	if (io->nr_blocks < need) {
		cli_error("%s: output too small: the metadata needs %llu blocks of 4 KiB (%llu KiB), but the output holds %llu",
			  output, (unsigned long long)need,
			  (unsigned long long)need * 4, (unsigned long long)io->nr_blocks);
		goto out;
	}

	/* second pass: write */
	rewind(in);
	progress_init(&prog, "Restoring", (uint64_t)st.st_size, quiet);
	po.progress = on_progress;
	po.progress_ctx = &prog;
	r = restore_emitter_create(io, NULL, &err, &em);
	if (r) {
		cli_error("out of memory");
		goto out;
	}
	written = true;
	r = thin_xml_parse(in, em, &po, &err);
	progress_done(&prog);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	ret = 0;
out:
	emitter_destroy(em);
	io_engine_destroy(io);
	if (in)
		fclose(in);
	if (ret && written)
		output_invalidate(output);
	return ret;
}
