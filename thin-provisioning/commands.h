/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_COMMANDS_H
#define THIN_COMMANDS_H

/* Entry points of the commands of the multi-call binary. */

int thin_check_main(int argc, char **argv);
int thin_dump_main(int argc, char **argv);
int thin_ls_main(int argc, char **argv);
int thin_restore_main(int argc, char **argv);
int thin_repair_main(int argc, char **argv);
int thin_merge_main(int argc, char **argv);
int thin_metadata_size_main(int argc, char **argv);
int thin_delta_main(int argc, char **argv);
int thin_rmap_main(int argc, char **argv);
int thin_trim_main(int argc, char **argv);
int thin_metadata_pack_main(int argc, char **argv);
int thin_metadata_unpack_main(int argc, char **argv);
int thin_migrate_main(int argc, char **argv);

/*
 * thin_check's whole check of path, run from another command with
 * nothing printed (thin_merge checks its input and its output with it).
 * Returns 0 when thin_check would exit 0, else 1.  report (may be NULL)
 * gets each line thin_check would print: indent 0 names a part being
 * examined ("examining mapping tree"), deeper lines the damage found in
 * it.  Errors outside the check itself (out of memory) still go to
 * stderr.
 */
#include "persistent-data/io-engine.h"
#include <stdbool.h>
int thin_check_quietly(const char *path, enum io_engine_kind engine, bool metadata_snap,
		       void (*report)(void *ctx, int indent, const char *line), void *ctx);

#endif
