/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_OUTPUT_FILE_H
#define PD_OUTPUT_FILE_H

/*
 * Checks shared by the commands that write new metadata (the restores,
 * repairs and merges of every kind; cli.h's cli_check_output): the output
 * must exist, be a regular file or a block device, not be a directory,
 * and not be the input.  Messages are ready to print after the program
 * name.
 */

#include "persistent-data/error.h"

#include <stdbool.h>
#include <stdint.h>

/* 0, or an error naming the problem. input may be NULL. */
int output_check(const char *output, const char *input, struct pd_err *err);

/*
 * The same storage?  The same file (device and inode), the same block
 * device (device number), or a loop device and the file or device behind
 * it (followed through loops over loops).
 */
bool same_file(const char *a, const char *b);

/*
 * After a failed write: zero block 0 so that the kernel will not take
 * the half-written output for metadata (it formats a zeroed device).
 */
void output_invalidate(const char *output);

#endif
