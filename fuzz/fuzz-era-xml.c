/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The era XML reader (era/era-xml.c over persistent-data/xml-read.c):
 * era_restore runs on the input into a 1 MiB memory file.  Oracle: a
 * restore that exits 0 has written metadata our era_check accepts.
 */
#include "fuzz-common.h"
#include "cache/commands.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	restore_then_check(data, size, era_restore_main, "era_restore", NULL, NULL,
			   era_check_main, "era_check");
	return 0;
}
