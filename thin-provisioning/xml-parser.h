/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_XML_PARSER_H
#define THIN_XML_PARSER_H

/*
 * The reading side of thin_restore: streams thin_dump XML (v0.9, or 1.x
 * with <def>/<ref> shared sections, format doc section 11.1) into an
 * emitter.  The input is read in 1 MiB chunks and never held whole.
 *
 * What the emitter is promised (beyond emitter.h):
 *  - begin_superblock gets the overrides applied and data_block_size
 *    validated (128 ... 2097152, multiple of 128);
 *  - devices come in strictly ascending dev_id order (an out-of-order or
 *    repeated dev_id is an input error, so the writer can stream);
 *  - within a device, and within a def, origins strictly ascend, refs
 *    included; every run is non-empty, fits in u64 and has
 *    data + len <= nr_data_blocks, data + len <= 2^40 and time < 2^24;
 *  - each <single_mapping> / <range_mapping> is one map_run (len 1 /
 *    length); runs are not merged;
 *  - every ref names a def that has ended; a def holds no ref.
 * mapped_blocks is passed on as the XML has it: it is not checked
 * against the mappings.
 *
 * Memory: O(number of defs) for the def index (name, origin bounds,
 * place in the spill file); mappings are never kept.  For an emitter
 * without begin_def the runs of each def go to a tmpfile() and are read
 * back at each ref.
 */

#include "emitter.h"
#include "superblock.h"
#include "persistent-data/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Which reader turns the bytes into elements.  The elements then go
 * through the same checks either way.
 *
 * XML_READER_EXPAT reads any XML.  The fast reader reads only the plain
 * subset thin_dump writes, about ten times faster: printable ASCII, '\n'
 * line ends, no XML declaration, comment, processing instruction,
 * DOCTYPE, CDATA, entity or character reference, no text but whitespace
 * between elements, only the tags thin_restore knows.  Whatever it takes
 * is well-formed XML and reaches the emitter exactly as through expat,
 * positions included.  It reads in the same 1 MiB chunks.
 *
 * XML_READER_FAST_OR_DECLINE: at anything outside the subset, and at any
 * error in the XML, stops and returns XML_PARSE_DECLINED with err clear
 * (the emitter mid-stream): parse again with expat for the verdict and
 * expat's wording.  An emitter's error, a read error and an input that
 * is not XML at all are reported as usual.
 *
 * XML_READER_FAST: anything outside the subset is an input error
 * ("line N, column M: ... not as thin_dump writes it"); for a second
 * pass over an input the fast reader took whole in the first.
 */
enum xml_reader {
	XML_READER_EXPAT,
	XML_READER_FAST_OR_DECLINE,
	XML_READER_FAST,
};

#define XML_PARSE_DECLINED	1

struct xml_parse_opts {
	struct sb_overrides ov;		/* thin_restore's overrides */
	enum xml_reader reader;

	/*
	 * Called after each chunk (1 MiB, the last one shorter) is parsed,
	 * with the bytes read so far: compare with the input size for a
	 * progress bar.  NULL: none.
	 */
	void (*progress)(void *ctx, uint64_t bytes_consumed);
	void *progress_ctx;
};

/*
 * Parses all of in into e (o may be NULL: no overrides, no progress,
 * expat).  Returns 0, XML_PARSE_DECLINED (see xml_reader), or a negative
 * errno with a message in err:
 *  -EINVAL  the input is wrong: "line N, column M: <what>" (column counts
 *           from 1), e.g. malformed XML (expat's words), "missing
 *           superblock", "not in device", "Device already exists",
 *           "unknown tag type", "missing attribute 'x'", a bad number,
 *           mappings out of order, "mapping beyond end of data device
 *           (%llu >= %llu)", "invalid data block size"; or the input is
 *           not XML at all ("looks like binary metadata, not XML");
 *  -EIO     reading in failed;
 *  other    tmpfile or memory trouble, or an emitter call failed.
 * An emitter call that fails ends the parse with its code.  If the
 * emitter itself filled err (it may hold a pointer to the same struct
 * pd_err), that message is kept with the position put in front;
 * otherwise the message is the position and strerror.
 * On error the emitter is left mid-stream (no end calls); the caller
 * destroys it and discards its output.
 */
int thin_xml_parse(FILE *in, struct emitter *e, const struct xml_parse_opts *o,
		   struct pd_err *err);

#endif
