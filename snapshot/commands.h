/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef SNAP_COMMANDS_H
#define SNAP_COMMANDS_H

/* Entry points of the snapshot commands of the multi-call binary. */

int snapshot_check_main(int argc, char **argv);
int snapshot_dump_main(int argc, char **argv);
int snapshot_merge_main(int argc, char **argv);
int dm_merge_main(int argc, char **argv);	/* the dm-merge name */

#endif
