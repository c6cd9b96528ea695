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

#endif
