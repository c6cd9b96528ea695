/* SPDX-License-Identifier: GPL-3.0-or-later */
/* era_restore: XML to fresh era metadata. */
#include "cli.h"
#include "cache/commands.h"
#include "era/era-md.h"
#include "era/era-xml.h"
#include "cache/md-cli.h"
#include "persistent-data/output-file.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options]\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-i|--input} <input xml file>\n"
		"  {-o|--output} <output device or file>\n"
		"  {-q|--quiet}\n"
		"  {-V|--version}\n", prog_name);
}

int era_restore_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_IO_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_io_args a;
	struct era_writer *w = NULL;
	struct io_engine *io = NULL;
	struct era_visitor v;
	struct pd_err err = { 0 };
	FILE *in = NULL;
	int r, ret;
	bool written = false;

	const struct cli_io_spec spec = {
		.longopts = longopts, .usage = usage, .flags = CLI_IO_NAMED_MISSING,
	};

	ret = cli_parse_io(argc, argv, &spec, &a);
	if (ret >= 0)
		return ret;
	ret = 1;
	if (md_cli_restore_open(a.input, a.output, &in, &io))
		return 1;
	r = era_writer_create(io, &w, &err);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	era_writer_visitor(w, &v);
	written = true;
	r = era_xml_parse_fast(in, &v, era_writer_err(w), &err);
	if (r == ERA_XML_DECLINED) {
		/* not as era_dump writes it: start again with expat */
		era_writer_destroy(w);
		w = NULL;
		rewind(in);
		r = era_writer_create(io, &w, &err);
		if (r) {
			cli_error("%s", err.msg);
			goto out;
		}
		era_writer_visitor(w, &v);
		r = era_xml_parse(in, &v, era_writer_err(w), &err);
	}
	if (r) {
		cli_error("%s: %s", a.input, err.msg);
		goto out;
	}
	ret = 0;
out:
	era_writer_destroy(w);
	io_engine_destroy(io);
	fclose(in);
	if (ret && written)
		output_invalidate(a.output);
	return ret;
}
