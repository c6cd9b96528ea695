/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli.h's helpers that need thin structs (the superblock overrides of
 * superblock.h, restore.h's estimate): here, so that cli.c needs no thin
 * header.
 */
#include "cli.h"
#include "restore.h"
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

static int sb_override(void *ctx, int opt, const char *arg)
{
	return cli_parse_sb_override(opt, arg, ctx);
}

int cli_parse_sb_io(int argc, char **argv, void (*usage)(FILE *), unsigned flags,
		    struct sb_overrides *ov, struct cli_io_args *a)
{
	static const struct option longopts[] = {
		CLI_IO_OPTIONS,
		CLI_SB_OVERRIDE_OPTIONS,
		CLI_IO_ENGINE_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_io_spec spec = {
		.longopts = longopts, .usage = usage, .flags = flags,
		.extra = sb_override, .ctx = ov,
	};

	return cli_parse_io(argc, argv, &spec, a);
}

int cli_open_restore_output(const char *output, enum io_engine_kind engine,
			    const struct restore_estimate *est, struct io_engine **io)
{
	struct pd_err err = { 0 };
	uint64_t need;

	if (cli_open_output(output, engine, io))
		return 1;
	need = restore_blocks_needed(est, (*io)->nr_blocks);
	if ((*io)->nr_blocks >= need)
		return 0;
	cli_output_too_small(&err, output, need, (*io)->nr_blocks);
	cli_error("%s", err.msg);
	io_engine_destroy(*io);
	*io = NULL;
	return 1;
}
