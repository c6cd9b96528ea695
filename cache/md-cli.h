/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef CACHE_MD_CLI_H
#define CACHE_MD_CLI_H

/*
 * What the cache and era commands share beyond cli.h: the input and
 * output checks of a restore, and the output file of a dump.  Each
 * prints its own message (one line, command name first) and returns 1
 * on error, 0 when done.
 */

#include "persistent-data/io-engine.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

/*
 * cli.h's checks of the input XML and the output, then opens the input
 * in *in and the output (read-write, exclusive) in *io.
 */
int md_cli_restore_open(const char *input, const char *output, FILE **in,
			struct io_engine **io);

/* *out = stdout, or output opened for writing when given (not "-"). */
int md_cli_open_output(const char *output, FILE **out);

/*
 * The operands of a check or a dump: empty ones dropped, then exactly
 * one, argv[optind].  0, or 1 after the message and usage on stderr.
 */
int md_cli_one_input(int argc, char **argv, void (*usage)(FILE *));

/*
 * The end of a dump: closes out (unless stdout) and reports r, the
 * walk's result with its message in err ("metadata contains errors (run
 * check_cmd for details)" for damage without repair).  The exit code.
 */
int md_cli_dump_end(FILE *out, const char *output, int r, struct pd_err *err, bool repair,
		    const char *check_cmd);

#endif
