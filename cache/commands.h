/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef CACHE_COMMANDS_H
#define CACHE_COMMANDS_H

/* Entry points of the cache and era commands of the multi-call binary. */

int cache_check_main(int argc, char **argv);
int cache_dump_main(int argc, char **argv);
int cache_restore_main(int argc, char **argv);
int cache_repair_main(int argc, char **argv);
int cache_metadata_size_main(int argc, char **argv);
int cache_writeback_main(int argc, char **argv);
int era_check_main(int argc, char **argv);
int era_dump_main(int argc, char **argv);
int era_restore_main(int argc, char **argv);
int era_invalidate_main(int argc, char **argv);

#endif
