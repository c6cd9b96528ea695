/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THINCMDS_COMMANDS_H
#define THINCMDS_COMMANDS_H

/* Entry points of thin_delta, thin_rmap, thin_trim, the pack pair, thin_migrate. */

int thin_delta_main(int argc, char **argv);
int thin_rmap_main(int argc, char **argv);
int thin_trim_main(int argc, char **argv);
int thin_metadata_pack_main(int argc, char **argv);
int thin_metadata_unpack_main(int argc, char **argv);
int thin_migrate_main(int argc, char **argv);

#endif
