/* SPDX-License-Identifier: GPL-3.0-or-later */
/* thin_repair: what can still be read from damaged metadata, to fresh metadata. */
#include "cli.h"
#include "commands.h"
#include "persistent-data/output-file.h"
#include "restore.h"
#include "salvage.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] {device|file}\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-i|--input} <input metadata (binary format)>\n"
		"  {-o|--output} <output metadata (binary format)>\n"
		CLI_SB_OVERRIDE_USAGE
		"  {--io-engine} {sync|async}\n"
		"  {-q|--quiet}\n"
		"  {-V|--version}\n", prog_name);
}

int thin_repair_main(int argc, char **argv)
{
	struct salvage_opts so = { 0 };
	struct salvage_stats st;
	struct restore_estimate est;
	struct cli_io_args a;
	struct io_engine *in = NULL, *out = NULL;
	struct bm *bm = NULL;
	struct emitter *em = NULL;
	struct pd_err err = { 0 };
	bool written = false;
	int r, ret = 1;

	r = cli_parse_sb_io(argc, argv, usage, CLI_IO_INPUT_OPERAND, &so.ov, &a);
	if (r >= 0)
		return r;
	if (cli_check_input(a.input, NULL) || cli_check_output(a.output, a.input))
		return 1;
	r = io_engine_open(a.input, a.engine, IO_OPEN_EXCL, &in, &err);
	if (r) {
		cli_error("%s", err.msg);
		return 1;
	}
	if (in->nr_blocks < 1) {
		cli_error("%s: Metadata device/file too small.  Is this binary metadata?", a.input);
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
		cli_error("%s: %s", a.input, err.msg);
		goto out;
	}
	if (cli_open_restore_output(a.output, a.engine, &est, &out))
		goto out;

	/* second pass: write, saying what was lost */
	if (!a.quiet)
		so.report = cli_report;
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
	if (!a.quiet && (st.lost_ranges || st.dropped_mappings || st.used_scan))
		fprintf(stderr, "%s: salvaged %" PRIu64 " devices with %" PRIu64 " mappings\n",
			prog_name, st.devices, st.mappings);
	ret = 0;
out:
	emitter_destroy(em);
	io_engine_destroy(out);
	bm_destroy(bm);
	io_engine_destroy(in);
	if (ret && written)
		output_invalidate(a.output);
	return ret;
}
