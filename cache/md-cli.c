/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "md-cli.h"
#include "cli.h"
#include "thin-provisioning/output-file.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

int md_cli_parse_io(int argc, char **argv, const struct option *longopts,
		    void (*usage)(FILE *), int (*extra)(void *ctx, int opt, const char *arg),
		    void *ctx, const char **input, const char **output)
{
	int c, r;

	*input = *output = NULL;
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
			*input = optarg;
			break;
		case 'o':
			*output = optarg;
			break;
		case 'q':
			break;
		default:
			if (c == '?' || c == ':' || !extra)
				return cli_bad_usage(usage);
			r = extra(ctx, c, optarg);
			if (r)
				return r;
		}
	}
	argc = cli_drop_empty_operands(argc, argv);
	if (optind < argc) {
		cli_error("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 1;
	}
	if (!*input || !*output) {
		cli_error(!*input ? "No input file provided." : "No output file provided.");
		usage(stderr);
		return 1;
	}
	return -1;
}

int md_cli_restore_open(const char *input, const char *output, FILE **in,
			struct io_engine **io)
{
	struct pd_err err = { 0 };
	struct stat st;

	if (stat(input, &st)) {
		cli_error("%s: %s", input, strerror(errno));
		return 1;
	}
	if (S_ISDIR(st.st_mode)) {
		cli_error("%s: Is a directory", input);
		return 1;
	}
	if (output_check(output, input, &err)) {
		cli_error("%s", err.msg);
		return 1;
	}
	*in = fopen(input, "r");
	if (!*in) {
		cli_error("%s: %s", input, strerror(errno));
		return 1;
	}
	if (io_engine_open(output, IO_ENGINE_SYNC, IO_OPEN_WRITE | IO_OPEN_EXCL, io, &err)) {
		cli_error("%s", err.msg);
		fclose(*in);
		*in = NULL;
		return 1;
	}
	return 0;
}

int md_cli_open_output(const char *output, FILE **out)
{
	*out = stdout;
	if (!output || !strcmp(output, "-"))
		return 0;
	*out = fopen(output, "w");
	if (!*out) {
		cli_error("%s: %s", output, strerror(errno));
		return 1;
	}
	return 0;
}

int md_cli_one_input(int argc, char **argv, void (*usage)(FILE *))
{
	argc = cli_drop_empty_operands(argc, argv);
	if (optind + 1 != argc) {
		cli_error(optind >= argc ? "No input file provided." : "too many arguments");
		usage(stderr);
		return 1;
	}
	return 0;
}

int md_cli_dump_end(FILE *out, const char *output, int r, struct pd_err *err, bool repair,
		    const char *check_cmd)
{
	if (out != stdout && fclose(out) && !r)
		r = pd_err_set(err, -EIO, "%s: write error", output);
	if (!r)
		return 0;
	if (r == -EILSEQ && !repair)
		cli_error("metadata contains errors (run %s for details): %s", check_cmd, err->msg);
	else
		cli_error("%s", err->code ? err->msg : strerror(-r));
	return 1;
}
