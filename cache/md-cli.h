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

#include <stdio.h>

/*
 * The input XML exists, is not a directory, and is not the output; the
 * output is usable (thin-provisioning/output-file.h).  Opens the input
 * in *in and the output (read-write, exclusive) in *io.
 */
int md_cli_restore_open(const char *input, const char *output, FILE **in,
			struct io_engine **io);

/* *out = stdout, or output opened for writing when given (not "-"). */
int md_cli_open_output(const char *output, FILE **out);

#endif
