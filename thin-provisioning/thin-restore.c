/* SPDX-License-Identifier: GPL-3.0-or-later */
/* thin_restore: XML (v0.9 or 1.x) to fresh metadata. */
#include "cli.h"
#include "commands.h"
#include "persistent-data/output-file.h"
#include "restore.h"
#include "xml-parser.h"

#include <errno.h>
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
		CLI_SB_OVERRIDE_USAGE
		"  {--io-engine} {sync|async}\n"
		"  {-q|--quiet}\n"
		"  {-V|--version}\n", prog_name);
}

static void on_progress(void *ctx, uint64_t bytes)
{
	progress_update(ctx, bytes);
}

int thin_restore_main(int argc, char **argv)
{
	struct xml_parse_opts po = { 0 };
	struct cli_io_args a;
	struct restore_estimate est;
	struct io_engine *io = NULL;
	struct emitter *em = NULL;
	struct progress prog;
	struct pd_err err = { 0 };
	bool written = false;
	struct stat st;
	FILE *in = NULL;
	int r, ret = 1;

	r = cli_parse_sb_io(argc, argv, usage, 0, &po.ov, &a);
	if (r >= 0)
		return r;
	if (cli_check_input(a.input, &st))
		return 1;
	if (!S_ISREG(st.st_mode)) {
		/* it is read twice: once to check and size, once to write */
		cli_error("%s: not a regular file (a pipe cannot be restored from; save it to a file first)",
			  a.input);
		return 1;
	}
	if (cli_check_output(a.output, a.input))
		return 1;
	in = fopen(a.input, "r");
	if (!in) {
		cli_error("%s: %s", a.input, strerror(errno));
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
		cli_error("%s: %s", a.input, err.msg);
		goto out;
	}

	if (cli_open_restore_output(a.output, a.engine, &est, &io))
		goto out;

	/* second pass: write */
	rewind(in);
	progress_init(&prog, "Restoring", (uint64_t)st.st_size, a.quiet);
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
		output_invalidate(a.output);
	return ret;
}
