/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The XML readers: the input is read by expat and by the fast reader
 * (counting only), then thin_restore runs on it in full into a 1 MiB
 * memory file.  Oracle: a restore that exits 0 has written metadata our
 * thin_check accepts.
 */
#include "fuzz-common.h"
#include "thin-provisioning/check.h"
#include "thin-provisioning/commands.h"
#include "thin-provisioning/restore.h"
#include "thin-provisioning/xml-parser.h"

/* thin_check's default: the full check of the live metadata */
static const struct thin_check_opts check_opts = { .engine = IO_ENGINE_SYNC };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse(const uint8_t *data, size_t size, enum xml_reader reader)
{
	struct xml_parse_opts po = { .reader = reader };
	struct restore_estimate est;
	struct emitter *em;
	struct pd_err err;
	FILE *in;

	in = fmemopen((void *)data, size, "r");
	if (!in)
		return;
	if (!counting_emitter_create(&est, &em)) {
		thin_xml_parse(in, em, &po, &err);
		emitter_destroy(em);
	}
	fclose(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem_file xml = { .fd = -1 }, out = { .fd = -1 };
	char arg0[] = "thin_restore", i[] = "-i", o[] = "-o", q[] = "-q";

	if (!size)
		return 0;
	parse(data, size, XML_READER_EXPAT);
	parse(data, size, XML_READER_FAST);
	if (mem_file_create(&xml, data, size, size) ||
	    mem_file_create(&out, NULL, 0, 1u << 20))
		goto out;
	{
		char *argv[] = { arg0, i, xml.path, o, out.path, q, NULL };

		getopt_forget();
		if (!thin_restore_main(6, argv) &&
		    thin_check(out.path, &check_opts, NULL, NULL)) {
			fprintf(stderr, "thin_restore exited 0 but thin_check rejects its output\n");
			abort();
		}
	}
out:
	mem_file_destroy(&xml);
	mem_file_destroy(&out);
	return 0;
}
