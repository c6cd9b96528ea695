/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli.h's parser of the superblock override options, here because it
 * fills a thin struct (superblock.h): cli.c needs no thin header.
 */
#include "cli.h"
#include "superblock.h"

int cli_parse_sb_override(int opt, const char *arg, struct sb_overrides *ov)
{
	switch (opt) {
	case OPT_SB_TRANSACTION_ID:
		ov->set_trans_id = true;
		if (!cli_parse_u64(arg, &ov->trans_id))
			return 0;
		cli_error("bad transaction id '%s'", arg);
		return 1;
	case OPT_SB_DATA_BLOCK_SIZE:
		ov->set_data_block_size = true;
		if (!cli_parse_u32(arg, &ov->data_block_size))
			return 0;
		cli_error("bad data block size '%s'", arg);
		return 1;
	case OPT_SB_NR_DATA_BLOCKS:
		ov->set_nr_data_blocks = true;
		if (!cli_parse_u64(arg, &ov->nr_data_blocks))
			return 0;
		cli_error("bad number of data blocks '%s'", arg);
		return 1;
	}
	return 1;
}
