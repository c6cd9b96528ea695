/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * thin_xml_parse: both dialects into a recording emitter, every input
 * error with its position, def/ref with and without an emitter that
 * takes shared sections, and bounded memory on large inputs.
 */
/*
 * persistent-data/endian.h defines le16/le32/le64, names that
 * <linux/types.h> (pulled in by gtest through <sys/stat.h>) typedefs to
 * integers: rename the kernel's while the system headers are read (see
 * test-node-validation.cc).
 */
#define le16 linux_uapi_le16
#define le32 linux_uapi_le32
#define le64 linux_uapi_le64
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <vector>
#undef le16
#undef le32
#undef le64

extern "C" {
#include "thin-provisioning/emitter.h"
#include "thin-provisioning/xml-parser.h"
}

using namespace std;

namespace {

//----------------------------------------------------------------
// A recording emitter: every call as a line of text

struct recorder {
	vector<string> calls;
	int fail_at = -1;		/* call number that returns fail_code */
	int fail_code = -ENOSPC;
	struct pd_err *err = nullptr;	/* set: the failing call fills it */
	const char *fail_msg = nullptr;
};

struct rec_emitter {
	struct emitter e;
	recorder *r;
};

recorder *rec(struct emitter *e)
{
	return reinterpret_cast<rec_emitter *>(e)->r;
}

int record(struct emitter *e, const string &s)
{
	recorder *r = rec(e);

	if ((int)r->calls.size() == r->fail_at) {
		if (r->err && r->fail_msg)
			pd_err_set(r->err, r->fail_code, "%s", r->fail_msg);
		return r->fail_code;
	}
	r->calls.push_back(s);
	return 0;
}

string fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
string fmt(const char *f, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	return buf;
}

int r_begin_sb(struct emitter *e, const struct emit_superblock *sb)
{
	char uuid[17] = { 0 };

	memcpy(uuid, sb->uuid, 16);
	return record(e, fmt("sb uuid=%s time=%" PRIu32 " trans=%" PRIu64 " flags=%s%" PRIu32
			     " version=%s%" PRIu32 " dbs=%" PRIu32 " nr=%" PRIu64 " snap=%s%" PRIu64,
			     uuid, sb->time, sb->trans_id, sb->has_flags ? "" : "-",
			     sb->flags, sb->has_version ? "" : "-", sb->version,
			     sb->data_block_size, sb->nr_data_blocks,
			     sb->has_metadata_snap ? "" : "-", sb->metadata_snap));
}

int r_end_sb(struct emitter *e)
{
	return record(e, "end_sb");
}

int r_begin_dev(struct emitter *e, const struct emit_device *d)
{
	return record(e, fmt("dev %" PRIu64 " mapped=%" PRIu64 " trans=%" PRIu64
			     " ctime=%" PRIu32 " stime=%" PRIu32, d->dev_id,
			     d->mapped_blocks, d->transaction_id, d->creation_time,
			     d->snap_time));
}

int r_end_dev(struct emitter *e)
{
	return record(e, "end_dev");
}

int r_map(struct emitter *e, uint64_t origin, uint64_t data, uint64_t len, uint32_t time)
{
	return record(e, fmt("map %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu32,
			     origin, data, len, time));
}

void r_destroy(struct emitter *) {}

int r_begin_def(struct emitter *e, const char *name)
{
	return record(e, fmt("def %s", name));
}

int r_end_def(struct emitter *e)
{
	return record(e, "end_def");
}

int r_ref(struct emitter *e, const char *name)
{
	return record(e, fmt("ref %s", name));
}

const struct emitter_ops plain_ops = {
	r_begin_sb, r_end_sb, r_begin_dev, r_end_dev, r_map, r_destroy,
	nullptr, nullptr, nullptr,
};

const struct emitter_ops def_ops = {
	r_begin_sb, r_end_sb, r_begin_dev, r_end_dev, r_map, r_destroy,
	r_begin_def, r_end_def, r_ref,
};

//----------------------------------------------------------------
// Helpers

struct file_closer {
	void operator()(FILE *f) const { fclose(f); }
};
using file_ptr = unique_ptr<FILE, file_closer>;

file_ptr string_file(const string &s)
{
	FILE *f = tmpfile();

	if (!f)
		throw runtime_error("tmpfile");
	if (!s.empty() && fwrite(s.data(), 1, s.size(), f) != s.size())
		throw runtime_error("fwrite");
	rewind(f);
	return file_ptr(f);
}

struct result {
	int r;
	string msg;
	vector<string> calls;
};

result parse(const string &xml, bool def_aware = false,
	     const struct xml_parse_opts *o = nullptr)
{
	recorder r;
	rec_emitter re = { { def_aware ? &def_ops : &plain_ops }, &r };
	struct pd_err err;
	file_ptr f = string_file(xml);
	result res;

	res.r = thin_xml_parse(f.get(), &re.e, o, &err);
	res.msg = res.r ? err.msg : "";
	res.calls = r.calls;
	return res;
}

string join(const vector<string> &v)
{
	string s;

	for (auto &x : v)
		s += x + "\n";
	return s;
}

const char *const sb_attrs =
	"uuid=\"\" time=\"1\" transaction=\"1\" flags=\"0\" version=\"2\" "
	"data_block_size=\"128\" nr_data_blocks=\"1024\"";

/* A superblock start tag with sb_attrs, then body, then the end tag. */
string doc(const string &body)
{
	return string("<superblock ") + sb_attrs + ">\n" + body + "</superblock>\n";
}

const char *const dev0 =
	"  <device dev_id=\"0\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">\n";

//----------------------------------------------------------------
// v0.9 dialect

const char *const spec_example =
	"<superblock uuid=\"\" time=\"1\" transaction=\"1\" flags=\"0\" version=\"2\" data_block_size=\"128\" nr_data_blocks=\"1024\">\n"
	"  <device dev_id=\"0\" mapped_blocks=\"5\" transaction=\"0\" creation_time=\"0\" snap_time=\"1\">\n"
	"    <range_mapping origin_begin=\"0\" data_begin=\"0\" length=\"4\" time=\"0\"/>\n"
	"    <single_mapping origin_block=\"10\" data_block=\"7\" time=\"0\"/>\n"
	"  </device>\n"
	"</superblock>\n";

TEST(xml_parser, spec_example)
{
	result res = parse(spec_example);

	ASSERT_EQ(res.r, 0) << res.msg;
	EXPECT_EQ(join(res.calls),
		  "sb uuid= time=1 trans=1 flags=0 version=2 dbs=128 nr=1024 snap=-0\n"
		  "dev 0 mapped=5 trans=0 ctime=0 stime=1\n"
		  "map 0 0 4 0\n"
		  "map 10 7 1 0\n"
		  "end_dev\n"
		  "end_sb\n");
}

TEST(xml_parser, spec_example_round_trips_through_the_xml_emitter)
{
	char *out = nullptr;
	size_t len = 0;
	FILE *o = open_memstream(&out, &len);
	struct emitter *e;
	struct pd_err err;
	file_ptr in = string_file(spec_example);

	ASSERT_TRUE(o);
	ASSERT_EQ(emitter_xml_create(o, &e), 0);
	EXPECT_EQ(thin_xml_parse(in.get(), e, nullptr, &err), 0) << err.msg;
	e->ops->destroy(e);
	fclose(o);
	EXPECT_EQ(string(out, len), spec_example);
	free(out);
}

TEST(xml_parser, optional_superblock_attributes_may_be_absent)
{
	result res = parse("<superblock uuid=\"abc\" time=\"5\" transaction=\"6\" "
			   "data_block_size=\"256\" nr_data_blocks=\"9\"/>");

	ASSERT_EQ(res.r, 0) << res.msg;
	EXPECT_EQ(join(res.calls),
		  "sb uuid=abc time=5 trans=6 flags=-0 version=-0 dbs=256 nr=9 snap=-0\n"
		  "end_sb\n");
}

TEST(xml_parser, optional_superblock_attributes_are_passed_on)
{
	result res = parse("<superblock uuid=\"0123456789abcdef\" time=\"4294967295\" "
			   "transaction=\"18446744073709551615\" flags=\"1\" version=\"1\" "
			   "data_block_size=\"2097152\" nr_data_blocks=\"0\" metadata_snap=\"77\"/>");

	ASSERT_EQ(res.r, 0) << res.msg;
	EXPECT_EQ(res.calls.at(0),
		  "sb uuid=0123456789abcdef time=4294967295 trans=18446744073709551615 "
		  "flags=1 version=1 dbs=2097152 nr=0 snap=77");
}

TEST(xml_parser, unknown_attributes_are_ignored)
{
	result res = parse("<superblock uuid=\"\" time=\"1\" transaction=\"1\" colour=\"red\" "
			   "data_block_size=\"128\" nr_data_blocks=\"10\">\n"
			   "  <device dev_id=\"2\" mapped_blocks=\"1\" transaction=\"0\" "
			   "creation_time=\"0\" snap_time=\"0\" x=\"y\">\n"
			   "    <single_mapping origin_block=\"1\" data_block=\"2\" time=\"3\" z=\"\"/>\n"
			   "  </device>\n"
			   "</superblock>\n");

	ASSERT_EQ(res.r, 0) << res.msg;
	EXPECT_EQ(res.calls.size(), 5u);
	EXPECT_EQ(res.calls.at(2), "map 1 2 1 3");
}

TEST(xml_parser, xml_declaration_comments_and_whitespace_are_fine)
{
	result res = parse("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- dumped -->\n" +
			   doc(string(dev0) + "    <!-- x -->\n  </device>\n"));

	ASSERT_EQ(res.r, 0) << res.msg;
	EXPECT_EQ(res.calls.size(), 4u);
}

TEST(xml_parser, devices_and_runs_pass_unmerged)
{
	result res = parse(doc(string(dev0) +
			       "    <single_mapping origin_block=\"0\" data_block=\"0\" time=\"0\"/>\n"
			       "    <single_mapping origin_block=\"1\" data_block=\"1\" time=\"0\"/>\n"
			       "    <range_mapping origin_begin=\"2\" data_begin=\"2\" length=\"1\" time=\"0\"/>\n"
			       "  </device>\n"
			       "  <device dev_id=\"5\" mapped_blocks=\"0\" transaction=\"3\" creation_time=\"4\" snap_time=\"5\">\n"
			       "  </device>\n"));

	ASSERT_EQ(res.r, 0) << res.msg;
	EXPECT_EQ(join(res.calls),
		  "sb uuid= time=1 trans=1 flags=0 version=2 dbs=128 nr=1024 snap=-0\n"
		  "dev 0 mapped=0 trans=0 ctime=0 stime=0\n"
		  "map 0 0 1 0\n"
		  "map 1 1 1 0\n"
		  "map 2 2 1 0\n"
		  "end_dev\n"
		  "dev 5 mapped=0 trans=3 ctime=4 stime=5\n"
		  "end_dev\n"
		  "end_sb\n");
}

TEST(xml_parser, overrides_replace_superblock_values)
{
	struct xml_parse_opts o = {};

	o.ov.set_trans_id = true;
	o.ov.trans_id = 99;
	o.ov.set_data_block_size = true;
	o.ov.data_block_size = 1024;
	o.ov.set_nr_data_blocks = true;
	o.ov.nr_data_blocks = 5000;

	result res = parse(doc(string(dev0) +
			       "    <single_mapping origin_block=\"0\" data_block=\"4000\" time=\"0\"/>\n"
			       "  </device>\n"), false, &o);

	ASSERT_EQ(res.r, 0) << res.msg;
	EXPECT_EQ(res.calls.at(0),
		  "sb uuid= time=1 trans=99 flags=0 version=2 dbs=1024 nr=5000 snap=-0");
}

TEST(xml_parser, nr_data_blocks_override_is_what_mappings_are_checked_against)
{
	struct xml_parse_opts o = {};

	o.ov.set_nr_data_blocks = true;
	o.ov.nr_data_blocks = 10;

	result res = parse(doc(string(dev0) +
			       "    <range_mapping origin_begin=\"0\" data_begin=\"5\" length=\"6\" time=\"0\"/>\n"
			       "  </device>\n"), false, &o);

	EXPECT_EQ(res.r, -EINVAL);
	EXPECT_NE(res.msg.find("mapping beyond end of data device (10 >= 10)"), string::npos)
		<< res.msg;
	EXPECT_NE(res.msg.find("line 3"), string::npos) << res.msg;
}

TEST(xml_parser, a_bad_data_block_size_override_is_rejected)
{
	struct xml_parse_opts o = {};

	o.ov.set_data_block_size = true;
	o.ov.data_block_size = 100;

	result res = parse(doc(""), false, &o);

	EXPECT_EQ(res.r, -EINVAL);
	EXPECT_NE(res.msg.find("invalid data block size"), string::npos) << res.msg;
}

TEST(xml_parser, progress_reports_bytes_read_up_to_the_input_size)
{
	string body;

	body += dev0;
	for (unsigned i = 0; i < 40000; i++)
		body += fmt("    <single_mapping origin_block=\"%u\" data_block=\"%u\" time=\"0\"/>\n",
			    i, i % 1000);
	body += "  </device>\n";
	string xml = doc(body);
	ASSERT_GT(xml.size(), 2u << 20);

	vector<uint64_t> seen;
	struct xml_parse_opts o = {};

	o.progress = [](void *ctx, uint64_t n) {
		static_cast<vector<uint64_t> *>(ctx)->push_back(n);
	};
	o.progress_ctx = &seen;
	result res = parse(xml, false, &o);

	ASSERT_EQ(res.r, 0) << res.msg;
	ASSERT_GE(seen.size(), 3u);
	for (size_t i = 1; i < seen.size(); i++)
		EXPECT_LT(seen[i - 1], seen[i]);
	EXPECT_EQ(seen.back(), xml.size());
}

//----------------------------------------------------------------
// Input errors: the message names the problem and where it is

struct bad_input {
	const char *name;
	string xml;
	const char *expect;
	unsigned line;			/* 0: no position (not XML at all) */
};

void PrintTo(const bad_input &b, ostream *os)
{
	*os << b.name;
}

string dev_with(const string &mappings)
{
	return doc(string(dev0) + mappings + "  </device>\n");
}

string device_tag(unsigned id)
{
	return fmt("  <device dev_id=\"%u\" mapped_blocks=\"0\" transaction=\"0\" "
		   "creation_time=\"0\" snap_time=\"0\">\n  </device>\n", id);
}

string binary_metadata()
{
	/* a superblock: magic 27022010 (little endian) at byte 32 */
	string s(4096, '\0');
	uint64_t magic = 27022010;

	for (unsigned i = 0; i < 8; i++)
		s[32 + i] = (char)(magic >> (8 * i));
	s[0] = '\x5a';	/* some checksum */
	return s;
}

const char *const def_x =
	"  <def name=\"x\">\n"
	"    <range_mapping origin_begin=\"10\" data_begin=\"0\" length=\"5\" time=\"0\"/>\n"
	"  </def>\n";

vector<bad_input> bad_inputs()
{
	return {
		{ "malformed", doc(string(dev0) + "  </superblock>\n"), "XML error: mismatched tag", 3 },
		{ "unclosed", string("<superblock ") + sb_attrs + ">\n" + dev0, "XML error:", 3 },
		{ "junk_after_root", doc("") + "<superblock/>\n", "XML error: junk after document element", 3 },
		{ "empty", "", "empty", 0 },
		{ "binary_metadata", binary_metadata(), "looks like binary metadata, not XML", 0 },
		{ "zeroed_metadata", string(8192, '\0'), "looks like binary metadata, not XML", 0 },
		{ "device_outside_superblock", string(dev0) + "  </device>\n", "missing superblock", 1 },
		{ "def_outside_superblock", "<def name=\"1\"/>", "missing superblock", 1 },
		{ "mapping_outside_device",
		  doc("  <single_mapping origin_block=\"0\" data_block=\"0\" time=\"0\"/>\n"),
		  "not in device", 2 },
		{ "mapping_at_top", "<range_mapping origin_begin=\"0\" data_begin=\"0\" length=\"2\" time=\"0\"/>",
		  "not in device", 1 },
		{ "ref_outside_device", doc(string(def_x) + "  <ref name=\"x\"/>\n"), "not in device", 5 },
		{ "nested_superblock", doc(string("  <superblock ") + sb_attrs + "/>\n"), "nested superblock", 2 },
		{ "nested_device", dev_with(string("  ") + dev0 + "  </device>\n"),
		  "<device> inside <device>", 3 },
		{ "def_inside_device", dev_with(def_x), "<def> inside <device>", 3 },
		{ "ref_inside_def", doc(string(def_x) + "  <def name=\"y\">\n    <ref name=\"x\"/>\n  </def>\n"),
		  "<ref> inside <def>", 6 },
		{ "child_of_mapping",
		  dev_with("    <single_mapping origin_block=\"0\" data_block=\"0\" time=\"0\">"
			   "<single_mapping origin_block=\"1\" data_block=\"1\" time=\"0\"/>"
			   "</single_mapping>\n"),
		  "unexpected <single_mapping> inside <single_mapping>", 3 },
		{ "duplicate_dev_id", doc(device_tag(4) + device_tag(4)), "Device already exists", 4 },
		{ "dev_ids_out_of_order", doc(device_tag(4) + device_tag(2)),
		  "devices must be in ascending dev_id order", 4 },
		{ "unknown_tag", dev_with("    <mapping origin_block=\"0\"/>\n"), "unknown tag type 'mapping'", 3 },
		{ "unknown_root", "<metadata/>", "unknown tag type 'metadata'", 1 },
		{ "not_a_number", dev_with("    <single_mapping origin_block=\"abc\" data_block=\"0\" time=\"0\"/>\n"),
		  "attribute 'origin_block' of <single_mapping>: 'abc' is not an unsigned decimal number", 3 },
		{ "negative", dev_with("    <single_mapping origin_block=\"-1\" data_block=\"0\" time=\"0\"/>\n"),
		  "'-1' is not an unsigned decimal number", 3 },
		{ "empty_number", dev_with("    <single_mapping origin_block=\"\" data_block=\"0\" time=\"0\"/>\n"),
		  "'' is not an unsigned decimal number", 3 },
		{ "hex_number", dev_with("    <single_mapping origin_block=\"0x10\" data_block=\"0\" time=\"0\"/>\n"),
		  "'0x10' is not an unsigned decimal number", 3 },
		{ "space_in_number", dev_with("    <single_mapping origin_block=\" 1\" data_block=\"0\" time=\"0\"/>\n"),
		  "is not an unsigned decimal number", 3 },
		{ "fraction", doc("  <device dev_id=\"1.5\" mapped_blocks=\"0\" transaction=\"0\" "
				  "creation_time=\"0\" snap_time=\"0\"/>\n"),
		  "attribute 'dev_id' of <device>: '1.5' is not", 2 },
		{ "u64_overflow",
		  dev_with("    <single_mapping origin_block=\"18446744073709551616\" data_block=\"0\" time=\"0\"/>\n"),
		  "18446744073709551616 does not fit in 64 bits", 3 },
		{ "u32_overflow_superblock_time",
		  "<superblock uuid=\"\" time=\"4294967296\" transaction=\"1\" data_block_size=\"128\" nr_data_blocks=\"1\"/>",
		  "attribute 'time' of <superblock>: 4294967296 does not fit in 32 bits", 1 },
		{ "u32_overflow_data_block_size",
		  "<superblock uuid=\"\" time=\"1\" transaction=\"1\" data_block_size=\"4294967424\" nr_data_blocks=\"1\"/>",
		  "does not fit in 32 bits", 1 },
		{ "u32_overflow_snap_time",
		  doc("  <device dev_id=\"1\" mapped_blocks=\"0\" transaction=\"0\" "
		      "creation_time=\"0\" snap_time=\"4294967296\"/>\n"),
		  "attribute 'snap_time' of <device>: 4294967296 does not fit in 32 bits", 2 },
		{ "mapping_time_beyond_24_bits",
		  dev_with("    <single_mapping origin_block=\"0\" data_block=\"0\" time=\"16777216\"/>\n"),
		  "does not fit in 24 bits", 3 },
		{ "range_length_0",
		  dev_with("    <range_mapping origin_begin=\"0\" data_begin=\"0\" length=\"0\" time=\"0\"/>\n"),
		  "<range_mapping> of length 0", 3 },
		{ "range_past_u64",
		  dev_with("    <range_mapping origin_begin=\"18446744073709551615\" data_begin=\"0\" length=\"2\" time=\"0\"/>\n"),
		  "runs past the largest block number", 3 },
		{ "mapping_backwards",
		  dev_with("    <single_mapping origin_block=\"5\" data_block=\"0\" time=\"0\"/>\n"
			   "    <single_mapping origin_block=\"4\" data_block=\"1\" time=\"0\"/>\n"),
		  "mapping of origin 4 is not after the previous one, which ends at origin 5: mappings must be in ascending origin order", 4 },
		{ "mapping_repeated",
		  dev_with("    <single_mapping origin_block=\"5\" data_block=\"0\" time=\"0\"/>\n"
			   "    <single_mapping origin_block=\"5\" data_block=\"1\" time=\"0\"/>\n"),
		  "ascending origin order, without overlap", 4 },
		{ "range_overlaps",
		  dev_with("    <range_mapping origin_begin=\"0\" data_begin=\"0\" length=\"10\" time=\"0\"/>\n"
			   "    <single_mapping origin_block=\"9\" data_block=\"20\" time=\"0\"/>\n"),
		  "mapping of origin 9 is not after the previous one, which ends at origin 9", 4 },
		{ "beyond_data_device",
		  dev_with("    <single_mapping origin_block=\"0\" data_block=\"1024\" time=\"0\"/>\n"),
		  "mapping beyond end of data device (1024 >= 1024)", 3 },
		{ "range_beyond_data_device",
		  dev_with("    <range_mapping origin_begin=\"0\" data_begin=\"1000\" length=\"30\" time=\"0\"/>\n"),
		  "mapping beyond end of data device (1029 >= 1024)", 3 },
		{ "beyond_40_bits",
		  "<superblock uuid=\"\" time=\"1\" transaction=\"1\" data_block_size=\"128\" "
		  "nr_data_blocks=\"18446744073709551615\">\n" + string(dev0) +
		  "    <single_mapping origin_block=\"0\" data_block=\"1099511627776\" time=\"0\"/>\n"
		  "  </device>\n</superblock>\n",
		  "beyond the 40-bit limit", 3 },
		{ "def_beyond_data_device",
		  doc("  <def name=\"d\">\n"
		      "    <single_mapping origin_block=\"0\" data_block=\"2000\" time=\"0\"/>\n"
		      "  </def>\n"),
		  "mapping beyond end of data device (2000 >= 1024)", 3 },
		{ "ref_undefined", dev_with("    <ref name=\"nope\"/>\n"), "<ref> to undefined def 'nope'", 3 },
		{ "ref_before_def", dev_with("    <ref name=\"x\"/>\n") + def_x, "undefined def 'x'", 3 },
		{ "duplicate_def", doc(string(def_x) + def_x), "def 'x' is already defined", 5 },
		{ "ref_overlaps_previous_mapping",
		  doc(string(def_x) + dev0 +
		      "    <single_mapping origin_block=\"10\" data_block=\"100\" time=\"0\"/>\n"
		      "    <ref name=\"x\"/>\n  </device>\n"),
		  "ref 'x' (origins 10..14) is not after the previous mapping, which ends at origin 10", 7 },
		{ "mapping_overlaps_previous_ref",
		  doc(string(def_x) + dev0 + "    <ref name=\"x\"/>\n"
		      "    <single_mapping origin_block=\"14\" data_block=\"100\" time=\"0\"/>\n"
		      "  </device>\n"),
		  "mapping of origin 14 is not after the previous one, which ends at origin 14", 7 },
		{ "ref_twice", doc(string(def_x) + dev0 + "    <ref name=\"x\"/>\n    <ref name=\"x\"/>\n  </device>\n"),
		  "ascending origin order", 7 },
		{ "def_out_of_order",
		  doc("  <def name=\"d\">\n"
		      "    <single_mapping origin_block=\"3\" data_block=\"0\" time=\"0\"/>\n"
		      "    <single_mapping origin_block=\"2\" data_block=\"1\" time=\"0\"/>\n"
		      "  </def>\n"),
		  "mapping of origin 2 is not after", 4 },
		{ "data_block_size_too_small",
		  "<superblock uuid=\"\" time=\"1\" transaction=\"1\" data_block_size=\"64\" nr_data_blocks=\"1\"/>",
		  "invalid data block size 64", 1 },
		{ "data_block_size_zero",
		  "<superblock uuid=\"\" time=\"1\" transaction=\"1\" data_block_size=\"0\" nr_data_blocks=\"1\"/>",
		  "invalid data block size", 1 },
		{ "data_block_size_not_multiple",
		  "<superblock uuid=\"\" time=\"1\" transaction=\"1\" data_block_size=\"192\" nr_data_blocks=\"1\"/>",
		  "invalid data block size 192", 1 },
		{ "data_block_size_too_big",
		  "<superblock uuid=\"\" time=\"1\" transaction=\"1\" data_block_size=\"2097280\" nr_data_blocks=\"1\"/>",
		  "invalid data block size 2097280", 1 },
		{ "missing_def_name", doc("  <def>\n  </def>\n"), "missing attribute 'name' in <def>", 2 },
		{ "missing_ref_name", doc(string(def_x) + dev0 + "    <ref/>\n  </device>\n"),
		  "missing attribute 'name' in <ref>", 6 },
	};
}

class bad : public testing::TestWithParam<bad_input> {};

void expect_error(const bad_input &b, bool def_aware)
{
	result res = parse(b.xml, def_aware);

	EXPECT_EQ(res.r, -EINVAL) << res.msg;
	EXPECT_NE(res.msg.find(b.expect), string::npos) << res.msg;
	if (b.line) {
		EXPECT_EQ(res.msg.rfind(fmt("line %u, column ", b.line), 0), 0u) << res.msg;
	} else {
		EXPECT_EQ(res.msg.find("line "), string::npos) << res.msg;
	}
}

TEST_P(bad, is_rejected_with_position)
{
	expect_error(GetParam(), false);
}

TEST_P(bad, is_rejected_the_same_with_a_def_aware_emitter)
{
	expect_error(GetParam(), true);
}

INSTANTIATE_TEST_SUITE_P(xml_parser, bad, testing::ValuesIn(bad_inputs()),
			 [](const testing::TestParamInfo<bad_input> &i) {
				 return string(i.param.name);
			 });

/* Every attribute a v0.9 parser requires, removed in turn. */
struct required_attr {
	const char *tag;
	const char *attr;
};

class missing : public testing::TestWithParam<required_attr> {};

string without(const string &xml, const string &tag, const string &attr)
{
	size_t t = xml.find("<" + tag + " ");
	size_t a = xml.find(" " + attr + "=\"", t);
	size_t end = xml.find('"', a + attr.size() + 3);

	if (t == string::npos || a == string::npos || end == string::npos)
		throw runtime_error("bad fixture");
	return xml.substr(0, a) + xml.substr(end + 1);
}

TEST_P(missing, attribute_is_reported)
{
	const required_attr &ra = GetParam();
	string full = doc(string(def_x) + dev0 +
			  "    <ref name=\"x\"/>\n"
			  "    <range_mapping origin_begin=\"20\" data_begin=\"10\" length=\"4\" time=\"0\"/>\n"
			  "    <single_mapping origin_block=\"30\" data_block=\"7\" time=\"0\"/>\n"
			  "  </device>\n");
	string xml = without(full, ra.tag, ra.attr);
	unsigned line = 1 + (unsigned)count(xml.begin(), xml.begin() + (long)xml.find(string("<") + ra.tag + " "), '\n');

	ASSERT_EQ(parse(full).r, 0);
	result res = parse(xml);
	EXPECT_EQ(res.r, -EINVAL);
	EXPECT_NE(res.msg.find(fmt("missing attribute '%s' in <%s>", ra.attr, ra.tag)), string::npos)
		<< res.msg;
	EXPECT_EQ(res.msg.rfind(fmt("line %u, column ", line), 0), 0u) << res.msg;
}

INSTANTIATE_TEST_SUITE_P(
	xml_parser, missing,
	testing::Values(required_attr { "superblock", "uuid" }, required_attr { "superblock", "time" },
			required_attr { "superblock", "transaction" },
			required_attr { "superblock", "data_block_size" },
			required_attr { "superblock", "nr_data_blocks" },
			required_attr { "device", "dev_id" }, required_attr { "device", "mapped_blocks" },
			required_attr { "device", "transaction" },
			required_attr { "device", "creation_time" }, required_attr { "device", "snap_time" },
			required_attr { "single_mapping", "origin_block" },
			required_attr { "single_mapping", "data_block" },
			required_attr { "single_mapping", "time" },
			required_attr { "range_mapping", "origin_begin" },
			required_attr { "range_mapping", "data_begin" },
			required_attr { "range_mapping", "length" },
			required_attr { "range_mapping", "time" }),
	[](const testing::TestParamInfo<required_attr> &i) {
		return string(i.param.tag) + "_" + i.param.attr;
	});

TEST(xml_parser, error_column_points_at_the_element)
{
	result res = parse(dev_with("    <single_mapping origin_block=\"0\" data_block=\"5000\" time=\"0\"/>\n"));

	EXPECT_EQ(res.msg.rfind("line 3, column 5: ", 0), 0u) << res.msg;
}

//----------------------------------------------------------------
// Emitter failures

TEST(xml_parser, emitter_error_stops_the_parse_with_position_and_strerror)
{
	recorder r;
	rec_emitter re = { { &plain_ops }, &r };
	struct pd_err err;
	file_ptr f = string_file(spec_example);

	r.fail_at = 3;		/* the second map_run */
	EXPECT_EQ(thin_xml_parse(f.get(), &re.e, nullptr, &err), -ENOSPC);
	EXPECT_EQ(err.code, -ENOSPC);
	EXPECT_EQ(string(err.msg), string("line 4, column 5: mapping: ") + strerror(ENOSPC));
	EXPECT_EQ(r.calls.size(), 3u);
}

TEST(xml_parser, emitter_message_is_kept_with_position_in_front)
{
	recorder r;
	rec_emitter re = { { &plain_ops }, &r };
	struct pd_err err;
	file_ptr f = string_file(spec_example);

	r.fail_at = 1;		/* begin_device */
	r.err = &err;
	r.fail_msg = "out of metadata space";
	EXPECT_EQ(thin_xml_parse(f.get(), &re.e, nullptr, &err), -ENOSPC);
	EXPECT_EQ(string(err.msg), "line 2, column 3: out of metadata space");
}

TEST(xml_parser, emitter_with_part_of_the_def_interface_is_refused)
{
	const struct emitter_ops half = {
		r_begin_sb, r_end_sb, r_begin_dev, r_end_dev, r_map, r_destroy,
		r_begin_def, nullptr, nullptr,
	};
	recorder r;
	rec_emitter re = { { &half }, &r };
	struct pd_err err;
	file_ptr f = string_file(spec_example);

	EXPECT_EQ(thin_xml_parse(f.get(), &re.e, nullptr, &err), -EINVAL);
	EXPECT_TRUE(r.calls.empty());
}

//----------------------------------------------------------------
// 1.x dialect: <def>/<ref>

/* Verbatim thin_dump 1.1.0 output of metadata where two devices share leaves. */
const char *const dump_1x =
	"<superblock uuid=\"\" time=\"3\" transaction=\"7\" version=\"2\" data_block_size=\"128\" nr_data_blocks=\"10000\">\n"
	"  <def name=\"1\">\n"
	"    <range_mapping origin_begin=\"0\" data_begin=\"100\" length=\"426\" time=\"1\"/>\n"
	"  </def>\n"
	"  <device dev_id=\"3\" mapped_blocks=\"601\" transaction=\"0\" creation_time=\"0\" snap_time=\"2\">\n"
	"    <ref name=\"1\"/>\n"
	"    <range_mapping origin_begin=\"426\" data_begin=\"526\" length=\"174\" time=\"1\"/>\n"
	"    <single_mapping origin_block=\"5000\" data_block=\"5000\" time=\"2\"/>\n"
	"  </device>\n"
	"  <device dev_id=\"7\" mapped_blocks=\"602\" transaction=\"0\" creation_time=\"2\" snap_time=\"2\">\n"
	"    <ref name=\"1\"/>\n"
	"    <range_mapping origin_begin=\"426\" data_begin=\"526\" length=\"174\" time=\"1\"/>\n"
	"    <range_mapping origin_begin=\"6000\" data_begin=\"6000\" length=\"2\" time=\"3\"/>\n"
	"  </device>\n"
	"</superblock>";

TEST(xml_parser, dump_1x_into_a_def_aware_emitter)
{
	result res = parse(dump_1x, true);

	ASSERT_EQ(res.r, 0) << res.msg;
	EXPECT_EQ(join(res.calls),
		  "sb uuid= time=3 trans=7 flags=-0 version=2 dbs=128 nr=10000 snap=-0\n"
		  "def 1\n"
		  "map 0 100 426 1\n"
		  "end_def\n"
		  "dev 3 mapped=601 trans=0 ctime=0 stime=2\n"
		  "ref 1\n"
		  "map 426 526 174 1\n"
		  "map 5000 5000 1 2\n"
		  "end_dev\n"
		  "dev 7 mapped=602 trans=0 ctime=2 stime=2\n"
		  "ref 1\n"
		  "map 426 526 174 1\n"
		  "map 6000 6000 2 3\n"
		  "end_dev\n"
		  "end_sb\n");
}

TEST(xml_parser, dump_1x_into_a_plain_emitter_expands_refs_in_place)
{
	result res = parse(dump_1x, false);

	ASSERT_EQ(res.r, 0) << res.msg;
	EXPECT_EQ(join(res.calls),
		  "sb uuid= time=3 trans=7 flags=-0 version=2 dbs=128 nr=10000 snap=-0\n"
		  "dev 3 mapped=601 trans=0 ctime=0 stime=2\n"
		  "map 0 100 426 1\n"
		  "map 426 526 174 1\n"
		  "map 5000 5000 1 2\n"
		  "end_dev\n"
		  "dev 7 mapped=602 trans=0 ctime=2 stime=2\n"
		  "map 0 100 426 1\n"
		  "map 426 526 174 1\n"
		  "map 6000 6000 2 3\n"
		  "end_dev\n"
		  "end_sb\n");
}

const char *const several_defs =
	"<superblock uuid=\"\" time=\"1\" transaction=\"1\" data_block_size=\"128\" nr_data_blocks=\"100\">\n"
	"  <def name=\"lo\">\n"
	"    <single_mapping origin_block=\"1\" data_block=\"11\" time=\"0\"/>\n"
	"    <range_mapping origin_begin=\"2\" data_begin=\"20\" length=\"3\" time=\"1\"/>\n"
	"  </def>\n"
	"  <def name=\"empty\">\n"
	"  </def>\n"
	"  <def name=\"hi\">\n"
	"    <single_mapping origin_block=\"50\" data_block=\"50\" time=\"0\"/>\n"
	"  </def>\n"
	"  <device dev_id=\"1\" mapped_blocks=\"7\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">\n"
	"    <single_mapping origin_block=\"0\" data_block=\"0\" time=\"0\"/>\n"
	"    <ref name=\"lo\"/>\n"
	"    <ref name=\"empty\"/>\n"
	"    <single_mapping origin_block=\"10\" data_block=\"1\" time=\"0\"/>\n"
	"    <ref name=\"hi\"/>\n"
	"  </device>\n"
	"  <def name=\"late\">\n"
	"    <single_mapping origin_block=\"3\" data_block=\"3\" time=\"0\"/>\n"
	"  </def>\n"
	"  <device dev_id=\"2\" mapped_blocks=\"2\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">\n"
	"    <ref name=\"late\"/>\n"
	"    <ref name=\"hi\"/>\n"
	"  </device>\n"
	"</superblock>\n";

TEST(xml_parser, several_defs_and_refs_expand_in_order)
{
	result res = parse(several_defs, false);

	ASSERT_EQ(res.r, 0) << res.msg;
	EXPECT_EQ(join(res.calls),
		  "sb uuid= time=1 trans=1 flags=-0 version=-0 dbs=128 nr=100 snap=-0\n"
		  "dev 1 mapped=7 trans=0 ctime=0 stime=0\n"
		  "map 0 0 1 0\n"
		  "map 1 11 1 0\n"
		  "map 2 20 3 1\n"
		  "map 10 1 1 0\n"
		  "map 50 50 1 0\n"
		  "end_dev\n"
		  "dev 2 mapped=2 trans=0 ctime=0 stime=0\n"
		  "map 3 3 1 0\n"
		  "map 50 50 1 0\n"
		  "end_dev\n"
		  "end_sb\n");
}

TEST(xml_parser, several_defs_and_refs_reach_a_def_aware_emitter)
{
	result res = parse(several_defs, true);

	ASSERT_EQ(res.r, 0) << res.msg;
	EXPECT_EQ(join(res.calls),
		  "sb uuid= time=1 trans=1 flags=-0 version=-0 dbs=128 nr=100 snap=-0\n"
		  "def lo\nmap 1 11 1 0\nmap 2 20 3 1\nend_def\n"
		  "def empty\nend_def\n"
		  "def hi\nmap 50 50 1 0\nend_def\n"
		  "dev 1 mapped=7 trans=0 ctime=0 stime=0\n"
		  "map 0 0 1 0\nref lo\nref empty\nmap 10 1 1 0\nref hi\nend_dev\n"
		  "def late\nmap 3 3 1 0\nend_def\n"
		  "dev 2 mapped=2 trans=0 ctime=0 stime=0\n"
		  "ref late\nref hi\nend_dev\n"
		  "end_sb\n");
}

TEST(xml_parser, many_defs_are_all_found)
{
	string body, expect;

	for (unsigned i = 0; i < 300; i++)
		body += fmt("  <def name=\"%u\">\n"
			    "    <single_mapping origin_block=\"%u\" data_block=\"%u\" time=\"0\"/>\n"
			    "  </def>\n", i, 2 * i, 1000 - i);
	body += dev0;
	for (unsigned i = 0; i < 300; i++) {
		body += fmt("    <ref name=\"%u\"/>\n", i);
		expect += fmt("map %u %u 1 0\n", 2 * i, 1000 - i);
	}
	body += "  </device>\n";

	result res = parse(doc(body), false);

	ASSERT_EQ(res.r, 0) << res.msg;
	ASSERT_EQ(res.calls.size(), 304u);	/* sb, dev, 300 maps, end_dev, end_sb */
	res.calls.erase(res.calls.begin(), res.calls.begin() + 2);
	res.calls.resize(300);
	EXPECT_EQ(join(res.calls), expect);
}

//----------------------------------------------------------------
// Large inputs: memory stays bounded

long max_rss_kib()
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool measure_rss = false;	/* shadow memory and quarantine */
#else
constexpr bool measure_rss = true;
#endif

/* Counts and checksums what arrives, keeps nothing. */
struct counter {
	uint64_t runs = 0, blocks = 0, sum = 0, devices = 0;
};

struct count_emitter {
	struct emitter e;
	counter *c;
};

counter *cnt(struct emitter *e)
{
	return reinterpret_cast<count_emitter *>(e)->c;
}

int c_begin_sb(struct emitter *, const struct emit_superblock *) { return 0; }
int c_end(struct emitter *) { return 0; }
int c_begin_dev(struct emitter *e, const struct emit_device *) { cnt(e)->devices++; return 0; }
int c_map(struct emitter *e, uint64_t origin, uint64_t data, uint64_t len, uint32_t time)
{
	counter *c = cnt(e);

	c->runs++;
	c->blocks += len;
	c->sum += origin * 3 + data * 5 + len * 7 + time;
	return 0;
}

const struct emitter_ops count_ops = {
	c_begin_sb, c_end, c_begin_dev, c_end, c_map, r_destroy, nullptr, nullptr, nullptr,
};

/* nr single mappings per device (every other origin, so nothing merges). */
file_ptr big_file(unsigned nr_devs, uint64_t nr, bool shared, uint64_t *sum)
{
	FILE *f = tmpfile();

	if (!f)
		throw runtime_error("tmpfile");
	*sum = 0;
	fprintf(f, "<superblock uuid=\"\" time=\"1\" transaction=\"1\" data_block_size=\"128\" "
		"nr_data_blocks=\"%" PRIu64 "\">\n", nr + 1);
	auto mappings = [&](unsigned times) {
		for (uint64_t i = 0; i < nr; i++) {
			fprintf(f, "    <single_mapping origin_block=\"%" PRIu64
				"\" data_block=\"%" PRIu64 "\" time=\"%u\"/>\n", 2 * i, i, (unsigned)(i & 7));
			*sum += times * (2 * i * 3 + i * 5 + 7 + (i & 7));
		}
	};
	if (shared) {
		fputs("  <def name=\"s\">\n", f);
		mappings(nr_devs);
		fputs("  </def>\n", f);
	}
	for (unsigned d = 0; d < nr_devs; d++) {
		fprintf(f, "  <device dev_id=\"%u\" mapped_blocks=\"%" PRIu64
			"\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">\n", d, nr);
		if (shared)
			fputs("    <ref name=\"s\"/>\n", f);
		else
			mappings(1);
		fputs("  </device>\n", f);
	}
	fputs("</superblock>\n", f);
	if (fflush(f))
		throw runtime_error("write");
	rewind(f);
	return file_ptr(f);
}

void parse_big(unsigned nr_devs, uint64_t nr, bool shared)
{
	uint64_t sum;
	file_ptr f = big_file(nr_devs, nr, shared, &sum);
	counter c;
	count_emitter ce = { { &count_ops }, &c };
	struct pd_err err;
	long before = max_rss_kib();

	ASSERT_EQ(thin_xml_parse(f.get(), &ce.e, nullptr, &err), 0) << err.msg;
	long grew = max_rss_kib() - before;

	EXPECT_EQ(c.devices, nr_devs);
	EXPECT_EQ(c.runs, nr_devs * nr);
	EXPECT_EQ(c.blocks, nr_devs * nr);
	EXPECT_EQ(c.sum, sum);
	if (measure_rss) {
		EXPECT_LT(grew, 16 * 1024) << "max RSS grew by " << grew << " KiB";
	}
}

TEST(xml_parser, a_million_mappings_parse_in_bounded_memory)
{
	parse_big(1, 1000000, false);
}

TEST(xml_parser, a_large_def_expands_from_the_spill_file_in_bounded_memory)
{
	parse_big(3, 400000, true);
}

} // namespace
