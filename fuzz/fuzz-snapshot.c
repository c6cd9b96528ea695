/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The dm-snapshot exception store reader (snapshot/snap-store.c) and the
 * external sort behind its checks (snap-sort.c): the input is a COW
 * device, as is (its size is the input's).  snapshot_check (with and
 * without an origin size) and snapshot_dump (plain and --dd) run on it.
 */
#include "fuzz-common.h"
#include "snapshot/commands.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem_file cow = { .fd = -1 };

	if (mem_file_create(&cow, data, size, size))
		return 0;
	run_cmd(snapshot_check_main, "snapshot_check", "-q", cow.path, NULL);
	run_cmd(snapshot_check_main, "snapshot_check", "-q", "--origin-size", "65536",
		cow.path, NULL);
	run_cmd(snapshot_dump_main, "snapshot_dump", cow.path, NULL);
	run_cmd(snapshot_dump_main, "snapshot_dump", "--dd", "--origin", "/dev/null",
		cow.path, NULL);
	mem_file_destroy(&cow);
	return 0;
}
