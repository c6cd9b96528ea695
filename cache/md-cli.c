/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "md-cli.h"
#include "cli.h"
#include "persistent-data/output-file.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

int md_cli_restore_open(const char *input, const char *output, FILE **in,
			struct io_engine **io)
{
	if (cli_check_input(input, NULL) || cli_check_output(output, input))
		return 1;
	*in = fopen(input, "r");
	if (!*in) {
		cli_error("%s: %s", input, strerror(errno));
		return 1;
	}
	if (cli_open_output(output, IO_ENGINE_SYNC, io)) {
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
	return cli_one_input(argc, argv, usage, CLI_IO_NAMED_MISSING) ? 0 : 1;
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
