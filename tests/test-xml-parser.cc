/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * thin_xml_parse: both dialects into a recording emitter, every input
 * error with its position, def/ref with and without an emitter that
 * takes shared sections, and bounded memory on large inputs.
 *
 * The fast reader (xml_reader in xml-parser.h) is held to expat: parse()
 * runs each input through expat, the reference the tests check, and on
 * the way checks both fast modes against it, so every case here is a case
 * for them too.  At the end: the edges of the subset, elements cut by the
 * end of the fast reader's buffer, and a seeded differential over mutated
 * dumps.
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
#include <functional>
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
	int code;			/* err.code: 0 when clear */
	string msg;			/* err.msg */
	vector<string> calls;
};

/* One parse of f, from its start, by reader rd; fail_at as in recorder. */
result run(FILE *f, enum xml_reader rd, bool def_aware = false,
	   const struct xml_parse_opts *o = nullptr, int fail_at = -1)
{
	recorder r;
	rec_emitter re = { { def_aware ? &def_ops : &plain_ops }, &r };
	struct xml_parse_opts opts = {};
	struct pd_err err;
	result res;

	if (o)
		opts = *o;
	opts.reader = rd;
	r.fail_at = fail_at;
	/* stale, so that a decline which leaves err alone shows */
	err.code = -EBADMSG;
	snprintf(err.msg, sizeof(err.msg), "stale message");
	rewind(f);
	res.r = thin_xml_parse(f, &re.e, &opts, &err);
	res.code = err.code;
	res.msg = err.msg;
	res.calls = r.calls;
	return res;
}

/* thin_restore's first pass: the fast reader, and expat when it declines. */
result first_pass(FILE *f, bool def_aware = false)
{
	result res = run(f, XML_READER_FAST_OR_DECLINE, def_aware);

	if (res.r == XML_PARSE_DECLINED)
		res = run(f, XML_READER_EXPAT, def_aware);
	return res;
}

const enum xml_reader all_readers[] = {
	XML_READER_EXPAT, XML_READER_FAST_OR_DECLINE, XML_READER_FAST,
};

const char *reader_name(enum xml_reader rd)
{
	switch (rd) {
	case XML_READER_EXPAT:
		return "expat";
	case XML_READER_FAST_OR_DECLINE:
		return "fast or decline";
	case XML_READER_FAST:
		return "fast";
	}
	return "?";
}

string join(const vector<string> &v)
{
	string s;

	for (auto &x : v)
		s += x + "\n";
	return s;
}

/* s as a C string literal, cut after max bytes: for failure messages. */
string c_literal(const string &s, size_t max = 3000)
{
	string q = "\"";

	for (size_t i = 0; i < s.size() && i < max; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n')
			q += "\\n\"\n\"";
		else if (c == '"' || c == '\\')
			q += string("\\") + (char)c;
		else if (c < 0x20 || c > 0x7e)
			q += fmt("\\x%02x\"\"", c);
		else
			q += (char)c;
	}
	q += "\"";
	if (s.size() > max)
		q += fmt(" ... (%zu bytes in all)", s.size());
	return q;
}

string show(const result &res)
{
	string s = fmt("r=%d code=%d msg=\"%s\", %zu calls", res.r, res.code,
		       res.msg.c_str(), res.calls.size());

	if (!res.calls.empty())
		s += ", the last: " + res.calls.back();
	return s;
}

bool same(const result &a, const result &b)
{
	return a.r == b.r && a.msg == b.msg && a.calls == b.calls;
}

/* Where the calls first differ, for failure messages. */
string first_difference(const result &a, const result &b)
{
	size_t i = 0;

	while (i < a.calls.size() && i < b.calls.size() && a.calls[i] == b.calls[i])
		i++;
	if (i == a.calls.size() && i == b.calls.size())
		return "the same calls";
	return fmt("calls first differ at #%zu: \"%s\" vs \"%s\"", i,
		   i < a.calls.size() ? a.calls[i].c_str() : "(none)",
		   i < b.calls.size() ? b.calls[i].c_str() : "(none)");
}

bool not_thin_dump(const result &res)
{
	return res.r == -EINVAL &&
	       res.msg.find(": XML error: not as thin_dump writes it") != string::npos;
}

/* An error in expat's words: the input is not well-formed XML. */
bool xml_error(const result &res)
{
	return res.r && res.msg.find(": XML error: ") != string::npos;
}

enum subset {
	thin_dump_subset,	/* as thin_dump writes it, but for the error a case is about */
	any_xml,		/* maybe outside: the fast reader may decline */
};

/* FAST_OR_DECLINE's result d against expat's ref: what is wrong, or NULL. */
const char *decline_problem(const result &d, const result &ref, subset s)
{
	if (d.r == 0)
		return same(d, ref) ? nullptr :
		       "FAST_OR_DECLINE took it, but expat did not, or called otherwise";
	if (d.r != XML_PARSE_DECLINED)
		return same(d, ref) ? nullptr : "FAST_OR_DECLINE's error is not expat's";
	if (d.code || !d.msg.empty())
		return "FAST_OR_DECLINE declined with err set";
	if (s == thin_dump_subset && !ref.r)
		return "FAST_OR_DECLINE declined an input in the subset that expat takes";
	return nullptr;
}

/* FAST's result fa, given FAST_OR_DECLINE's d and expat's ref. */
const char *fast_problem(const result &fa, const result &d, const result &ref, subset s)
{
	if (fa.r == 0) {
		if (!same(fa, ref))
			return "FAST took it, but expat did not, or called otherwise";
		return d.r ? "FAST took what FAST_OR_DECLINE did not" : nullptr;
	}
	if (fa.r == XML_PARSE_DECLINED)
		return "FAST declined";
	if (!not_thin_dump(fa))
		return same(fa, ref) ? nullptr : "FAST's error is not expat's";
	if (d.r != XML_PARSE_DECLINED)
		return "FAST found it outside the subset, FAST_OR_DECLINE did not decline";
	if (s == thin_dump_subset && !xml_error(ref))
		return "FAST turned down an input in the subset";
	return nullptr;
}

/*
 * The fast reader's contract on the input in f, against expat's result
 * ref (same def_aware, o and fail_at).  FAST_OR_DECLINE takes it with
 * expat's calls, or reports expat's error word for word (an emitter's,
 * or not XML at all), or declines with err clear.  FAST takes it the
 * same way, reports expat's error word for word, or says "not as
 * thin_dump writes it", and then FAST_OR_DECLINE declined.  Neither
 * takes what expat rejects.  In the subset, neither turns down what
 * expat takes, and FAST words every error as expat does but for XML
 * that is not well-formed.  Returns "" or what is wrong; the results
 * go to *d_out and *fa_out if given.
 */
string fast_divergence(FILE *f, const result &ref, subset s, bool def_aware = false,
		       const struct xml_parse_opts *o = nullptr, int fail_at = -1,
		       result *d_out = nullptr, result *fa_out = nullptr)
{
	result d = run(f, XML_READER_FAST_OR_DECLINE, def_aware, o, fail_at);
	result fa = run(f, XML_READER_FAST, def_aware, o, fail_at);
	const char *why = decline_problem(d, ref, s);

	if (!why)
		why = fast_problem(fa, d, ref, s);
	if (d_out)
		*d_out = d;
	if (fa_out)
		*fa_out = fa;
	if (!why)
		return "";
	return string(why) + "\n  expat:           " + show(ref) +
	       "\n  fast or decline: " + show(d) +
	       "\n  fast:            " + show(fa) +
	       "\n  " + first_difference(ref, d.r ? fa : d);
}

/*
 * Expat's result, the reference for the tests (o's reader is not used);
 * both fast modes are checked against it on the way (fast_divergence).
 */
result parse(const string &xml, bool def_aware = false,
	     const struct xml_parse_opts *o = nullptr, subset s = thin_dump_subset)
{
	file_ptr f = string_file(xml);
	struct xml_parse_opts opts = {};
	result ref;

	if (o)
		opts = *o;
	ref = run(f.get(), XML_READER_EXPAT, def_aware, &opts);
	opts.progress = nullptr;	/* the caller counts expat's */
	EXPECT_EQ(fast_divergence(f.get(), ref, s, def_aware, &opts), "")
		<< "input: " << c_literal(xml);
	return ref;
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
	file_ptr in = string_file(spec_example);

	for (enum xml_reader rd : all_readers) {
		char *out = nullptr;
		size_t len = 0;
		FILE *o = open_memstream(&out, &len);
		struct xml_parse_opts opts = {};
		struct emitter *e;
		struct pd_err err;

		SCOPED_TRACE(reader_name(rd));
		ASSERT_TRUE(o);
		ASSERT_EQ(emitter_xml_create(o, &e), 0);
		opts.reader = rd;
		EXPECT_EQ(thin_xml_parse(in.get(), e, &opts, &err), 0) << err.msg;
		e->ops->destroy(e);
		fclose(o);
		EXPECT_EQ(string(out, len), spec_example);
		free(out);
		rewind(in.get());
	}
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
			   doc(string(dev0) + "    <!-- x -->\n  </device>\n"),
			   false, nullptr, any_xml);

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

	file_ptr f = string_file(xml);

	for (enum xml_reader rd : all_readers) {
		vector<uint64_t> seen;
		struct xml_parse_opts o = {};

		SCOPED_TRACE(reader_name(rd));
		o.progress = [](void *ctx, uint64_t n) {
			static_cast<vector<uint64_t> *>(ctx)->push_back(n);
		};
		o.progress_ctx = &seen;
		result res = run(f.get(), rd, false, &o);

		ASSERT_EQ(res.r, 0) << res.msg;
		ASSERT_GE(seen.size(), 3u);
		for (size_t i = 1; i < seen.size(); i++)
			EXPECT_LT(seen[i - 1], seen[i]);
		EXPECT_EQ(seen.back(), xml.size());
	}
}

//----------------------------------------------------------------
// Input errors: the message names the problem and where it is

struct bad_input {
	const char *name;
	string xml;
	const char *expect;
	unsigned line;			/* 0: no position (not XML at all) */
	subset s = thin_dump_subset;
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
		{ "unknown_tag", dev_with("    <mapping origin_block=\"0\"/>\n"), "unknown tag type 'mapping'", 3,
		  any_xml },
		{ "unknown_root", "<metadata/>", "unknown tag type 'metadata'", 1, any_xml },
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
	result res = parse(b.xml, def_aware, nullptr, b.s);

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

/* The fast reader words the error as expat, or declines and expat does. */
TEST_P(bad, is_rejected_in_expats_words_after_the_fast_readers_first_pass)
{
	file_ptr f = string_file(GetParam().xml);

	for (bool def_aware : { false, true }) {
		result ref = run(f.get(), XML_READER_EXPAT, def_aware);
		result d = run(f.get(), XML_READER_FAST_OR_DECLINE, def_aware);

		ASSERT_EQ(ref.r, -EINVAL) << ref.msg;
		if (d.r == XML_PARSE_DECLINED) {
			EXPECT_EQ(d.code, 0);
			EXPECT_EQ(d.msg, "");
		} else {
			EXPECT_EQ(d.r, ref.r);
			EXPECT_EQ(d.msg, ref.msg);
		}
		result tr = first_pass(f.get(), def_aware);
		EXPECT_EQ(tr.r, ref.r);
		EXPECT_EQ(tr.msg, ref.msg);
		EXPECT_EQ(tr.calls, ref.calls);
	}
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

/* An emitter's error is no input error: no reader declines it. */
TEST(xml_parser, emitter_error_stops_the_parse_with_position_and_strerror)
{
	file_ptr f = string_file(spec_example);

	for (enum xml_reader rd : all_readers) {
		/* the second map_run */
		result res = run(f.get(), rd, false, nullptr, 3);

		SCOPED_TRACE(reader_name(rd));
		EXPECT_EQ(res.r, -ENOSPC);
		EXPECT_EQ(res.code, -ENOSPC);
		EXPECT_EQ(res.msg, string("line 4, column 5: mapping: ") + strerror(ENOSPC));
		EXPECT_EQ(res.calls.size(), 3u);
	}
}

TEST(xml_parser, emitter_error_at_an_end_tag_has_the_end_tags_position)
{
	file_ptr f = string_file(spec_example);

	for (enum xml_reader rd : all_readers) {
		result dev = run(f.get(), rd, false, nullptr, 4);	/* end_device */
		result sb = run(f.get(), rd, false, nullptr, 5);	/* end_superblock */

		SCOPED_TRACE(reader_name(rd));
		EXPECT_EQ(dev.msg, string("line 5, column 3: end of device: ") + strerror(ENOSPC));
		EXPECT_EQ(sb.msg, string("line 6, column 1: end of superblock: ") + strerror(ENOSPC));
	}
}

/*
 * expat places the end of an empty element after its tag (it moves the
 * event to the token's end before the end handler): the fast reader must
 * too.
 */
TEST(xml_parser, emitter_error_at_the_end_of_an_empty_element_has_expats_position)
{
	const string dev = "  <device dev_id=\"0\" mapped_blocks=\"0\" transaction=\"0\" "
			   "creation_time=\"0\" snap_time=\"0\"/>";
	const string sb = string("<superblock ") + sb_attrs + "/>";
	struct {
		string xml;
		bool def_aware;
		int fail_at;
		string expect;
	} cases[] = {
		{ doc(dev + "\n"), false, 2,
		  fmt("line 2, column %zu: end of device: ", dev.size() + 1) + strerror(ENOSPC) },
		{ sb + "\n", false, 1,
		  fmt("line 1, column %zu: end of superblock: ", sb.size() + 1) + strerror(ENOSPC) },
		{ doc("  <def name=\"x\"/>\n"), true, 2,
		  string("line 2, column 18: end of def: ") + strerror(ENOSPC) },
	};

	for (auto &c : cases) {
		file_ptr f = string_file(c.xml);

		for (enum xml_reader rd : all_readers) {
			result res = run(f.get(), rd, c.def_aware, nullptr, c.fail_at);

			SCOPED_TRACE(string(reader_name(rd)) + ": " + c_literal(c.xml));
			EXPECT_EQ(res.r, -ENOSPC);
			EXPECT_EQ(res.msg, c.expect);
		}
	}
}

TEST(xml_parser, emitter_message_is_kept_with_position_in_front)
{
	file_ptr f = string_file(spec_example);

	for (enum xml_reader rd : all_readers) {
		recorder r;
		rec_emitter re = { { &plain_ops }, &r };
		struct xml_parse_opts opts = {};
		struct pd_err err;

		SCOPED_TRACE(reader_name(rd));
		r.fail_at = 1;		/* begin_device */
		r.err = &err;
		r.fail_msg = "out of metadata space";
		opts.reader = rd;
		rewind(f.get());
		EXPECT_EQ(thin_xml_parse(f.get(), &re.e, &opts, &err), -ENOSPC);
		EXPECT_EQ(string(err.msg), "line 2, column 3: out of metadata space");
	}
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
	long before = max_rss_kib();

	for (enum xml_reader rd : all_readers) {
		counter c;
		count_emitter ce = { { &count_ops }, &c };
		struct xml_parse_opts opts = {};
		struct pd_err err;

		SCOPED_TRACE(reader_name(rd));
		opts.reader = rd;
		rewind(f.get());
		ASSERT_EQ(thin_xml_parse(f.get(), &ce.e, &opts, &err), 0) << err.msg;
		long grew = max_rss_kib() - before;

		EXPECT_EQ(c.devices, nr_devs);
		EXPECT_EQ(c.runs, nr_devs * nr);
		EXPECT_EQ(c.blocks, nr_devs * nr);
		EXPECT_EQ(c.sum, sum);
		if (measure_rss) {
			EXPECT_LT(grew, 16 * 1024) << "max RSS grew by " << grew << " KiB";
		}
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

//----------------------------------------------------------------
// The fast reader: the edges of the subset

/* xml with the first from replaced by to. */
string replaced(string xml, const string &from, const string &to)
{
	size_t at = xml.find(from);

	if (at == string::npos)
		throw runtime_error("bad fixture: no " + from);
	return xml.replace(at, from.size(), to);
}

/* xml with every from replaced by to. */
string replaced_all(string xml, const string &from, const string &to)
{
	for (size_t at = 0; (at = xml.find(from, at)) != string::npos; at += to.size())
		xml.replace(at, from.size(), to);
	return xml;
}

/* "line N, column M: " of byte off of xml, counted as the parser does. */
string position_of(const string &xml, size_t off)
{
	size_t line = 1 + (size_t)count(xml.begin(), xml.begin() + (long)off, '\n');
	size_t nl = off ? xml.rfind('\n', off - 1) : string::npos;

	return fmt("line %zu, column %zu: ", line, nl == string::npos ? off + 1 : off - nl);
}

const char *const mapping0 =
	"    <single_mapping origin_block=\"0\" data_block=\"0\" time=\"0\"/>\n";

/* One thing thin_dump never writes, and where FAST says it is. */
struct outside {
	const char *name;
	string xml;
	string at;		/* the first of these bytes; "": the end of the input */
};

void PrintTo(const outside &o, ostream *os)
{
	*os << o.name;
}

vector<outside> outside_inputs()
{
	const string base = dev_with(mapping0);
	string late_nul, many_attrs, long_element;

	for (unsigned i = 0; i < 100; i++)
		late_nul += fmt("    <single_mapping origin_block=\"%u\" data_block=\"%u\" time=\"0\"/>\n",
				i, i);
	late_nul = dev_with(late_nul + string(1, '\0') + "\n");
	for (char c = 'a'; c < 'a' + 10; c++)
		many_attrs += fmt("%c=\"%c\" ", c, c);
	many_attrs = replaced(base, "<superblock ", "<superblock " + many_attrs);
	long_element = replaced(base, "<superblock ",
				"<superblock pad=\"" + string(1u << 20, 'x') + "\" ");

	return {
		/* not elements */
		{ "xml_declaration", "<?xml version=\"1.0\"?>\n" + base, "<?xml" },
		{ "processing_instruction", dev_with(string("    <?thin x?>\n") + mapping0), "<?thin" },
		{ "comment_before_the_root", "<!-- dumped -->\n" + base, "<!--" },
		{ "comment_in_a_device", dev_with(string(mapping0) + "    <!-- c -->\n"), "<!--" },
		{ "comment_after_the_root", base + "<!-- end -->\n", "<!--" },
		{ "doctype", "<!DOCTYPE superblock>\n" + base, "<!DOCTYPE" },
		{ "cdata", dev_with("    <![CDATA[x]]>\n"), "<![CDATA[" },
		{ "entity_reference_in_text", dev_with(string("    &amp;\n") + mapping0), "&amp;" },
		{ "character_reference_in_text", dev_with("    &#65;\n"), "&#65;" },
		{ "text_in_a_device", dev_with("    hello\n"), "hello" },
		{ "text_in_a_mapping",
		  dev_with("    <single_mapping origin_block=\"0\" data_block=\"0\" time=\"0\">hello</single_mapping>\n"),
		  "hello" },
		{ "text_after_the_root", base + "trailer\n", "trailer" },
		{ "second_root", base + "<def name=\"late\"/>\n", "<def" },

		/* bytes */
		{ "entity_reference_in_a_value", replaced(base, "uuid=\"\"", "uuid=\"&amp;\""), "<superblock" },
		{ "character_reference_in_a_value", replaced(base, "dev_id=\"0\"", "dev_id=\"&#48;\""),
		  "<device" },
		{ "non_ascii_in_a_value", replaced(base, "uuid=\"\"", "uuid=\"\xc3\xa9\""), "<superblock" },
		{ "non_ascii_in_a_tag_name", dev_with("    <d\xc3\xa9vice/>\n"), "<d\xc3\xa9" },
		{ "invalid_utf8_between_elements", dev_with("    \xff\n"), "\xff" },
		{ "byte_order_mark", "\xef\xbb\xbf" + base, "\xef" },
		{ "del_in_a_value", replaced(base, "uuid=\"\"", "uuid=\"\x7f\""), "<superblock" },
		{ "tab_in_a_value", replaced(base, "uuid=\"\"", "uuid=\"a\tb\""), "<superblock" },
		{ "newline_in_a_value", replaced(base, "uuid=\"\"", "uuid=\"a\nb\""), "<superblock" },
		{ "less_than_in_a_value", replaced(base, "uuid=\"\"", "uuid=\"a<b\""), "<superblock" },
		{ "crlf_line_ends", replaced_all(base, "\n", "\r\n"), "\r" },
		{ "cr_between_attributes", replaced(base, "\" time=\"0\"/>", "\"\rtime=\"0\"/>"),
		  "<single_mapping" },
		{ "nul_between_elements_after_the_binary_probe", late_nul, string(1, '\0') },

		/* tags */
		{ "unknown_tag", dev_with("    <mapping origin_block=\"0\"/>\n"), "<mapping" },
		{ "tag_with_a_known_prefix",
		  dev_with("    <single_mappings origin_block=\"0\" data_block=\"0\" time=\"0\"/>\n"),
		  "<single_mappings" },
		{ "tag_in_upper_case", replaced(base, "<single_mapping", "<SINGLE_MAPPING"), "<SINGLE" },
		{ "tag_with_a_namespace_prefix", replaced(base, "<single_mapping", "<thin:single_mapping"),
		  "<thin:" },
		{ "space_after_the_lt", replaced(base, "<single_mapping", "< single_mapping"), "< single" },
		{ "end_tag_of_another_element", doc(string(dev0) + "  </def>\n"), "</def>" },
		{ "end_tag_with_a_longer_name", doc(string(dev0) + "  </devices>\n"), "</devices>" },
		{ "space_between_slash_and_gt", replaced(base, "\"0\"/>", "\"0\"/ >"), "<single_mapping" },

		/* attributes */
		{ "xmlns_attribute", replaced(base, "uuid=", "xmlns=\"urn:x\" uuid="), "<superblock" },
		{ "xml_prefixed_attribute", replaced(base, "uuid=", "xml:lang=\"en\" uuid="), "<superblock" },
		{ "xml_attribute_in_upper_case", replaced(base, "uuid=", "XMLfoo=\"1\" uuid="), "<superblock" },
		{ "repeated_attribute", replaced(base, " time=\"0\"/>", " time=\"0\" time=\"0\"/>"),
		  "<single_mapping" },
		{ "repeated_unknown_attribute", replaced(base, "uuid=", "x=\"1\" x=\"2\" uuid="), "<superblock" },
		{ "seventeen_attributes", many_attrs, "<superblock" },
		{ "attributes_not_apart", replaced(base, "data_block=\"0\" time=", "data_block=\"0\"time="),
		  "<single_mapping" },
		{ "unquoted_value", replaced(base, "time=\"0\"/>", "time=0/>"), "<single_mapping" },
		{ "attribute_without_value", replaced(base, "<single_mapping ", "<single_mapping flag "),
		  "<single_mapping" },
		{ "attribute_name_starting_with_a_digit",
		  replaced(base, "<single_mapping ", "<single_mapping 1x=\"1\" "), "<single_mapping" },

		/* ends and sizes */
		{ "element_longer_than_the_buffer", long_element, "<superblock" },
		{ "truncated_in_an_element", base.substr(0, base.find("data_block=\"0\"")), "<single_mapping" },
		{ "truncated_between_elements", base.substr(0, base.find("</superblock>")), "" },
		{ "whitespace_only", " \n\t\n ", "" },
	};
}

class fast_outside : public testing::TestWithParam<outside> {};

/*
 * FAST_OR_DECLINE declines, FAST says where; expat's verdict is whatever
 * it is, and it is what thin_restore's first pass ends with.
 */
TEST_P(fast_outside, is_declined_and_is_an_input_error_for_fast)
{
	const outside &o = GetParam();
	size_t at = o.at.empty() ? o.xml.size() : o.xml.find(o.at);
	file_ptr f = string_file(o.xml);

	ASSERT_NE(at, string::npos) << "bad fixture";
	for (bool def_aware : { false, true }) {
		result ref = run(f.get(), XML_READER_EXPAT, def_aware);
		result d = run(f.get(), XML_READER_FAST_OR_DECLINE, def_aware);
		result fa = run(f.get(), XML_READER_FAST, def_aware);
		result tr = first_pass(f.get(), def_aware);

		SCOPED_TRACE(string("expat: ") + show(ref));
		EXPECT_EQ(d.r, XML_PARSE_DECLINED) << show(d);
		EXPECT_EQ(d.code, 0);
		EXPECT_EQ(d.msg, "");
		EXPECT_EQ(fa.r, -EINVAL);
		EXPECT_EQ(fa.code, -EINVAL);
		EXPECT_TRUE(not_thin_dump(fa)) << fa.msg;
		EXPECT_EQ(fa.msg.rfind(position_of(o.xml, at), 0), 0u)
			<< fa.msg << "\n  expected at " << position_of(o.xml, at);
		EXPECT_TRUE(same(tr, ref)) << show(tr);
	}
}

INSTANTIATE_TEST_SUITE_P(xml_parser, fast_outside, testing::ValuesIn(outside_inputs()),
			 [](const testing::TestParamInfo<outside> &i) {
				 return string(i.param.name);
			 });

/* Forms thin_dump does not write but the subset has: taken as by expat. */
struct inside {
	const char *name;
	string xml;
};

void PrintTo(const inside &i, ostream *os)
{
	*os << i.name;
}

/* Every kind of element, shared sections, an empty device in both forms. */
const char *const edge_dump =
	"<superblock uuid=\"\" time=\"1\" transaction=\"1\" data_block_size=\"128\" nr_data_blocks=\"1000\">\n"
	"  <def name=\"x\">\n"
	"    <range_mapping origin_begin=\"10\" data_begin=\"0\" length=\"5\" time=\"0\"/>\n"
	"  </def>\n"
	"  <device dev_id=\"0\" mapped_blocks=\"7\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">\n"
	"    <single_mapping origin_block=\"1\" data_block=\"100\" time=\"2\"/>\n"
	"    <ref name=\"x\"/>\n"
	"    <range_mapping origin_begin=\"20\" data_begin=\"200\" length=\"2\" time=\"1\"/>\n"
	"  </device>\n"
	"  <device dev_id=\"1\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">\n"
	"  </device>\n"
	"  <device dev_id=\"2\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\"/>\n"
	"</superblock>\n";

vector<inside> inside_inputs()
{
	const string e = edge_dump;
	string printable, attrs16;

	for (char c = 0x20; c < 0x7f; c++)
		if (c != '<' && c != '&' && c != '"')
			printable += c;
	for (char c = 'a'; c < 'a' + 9; c++)
		attrs16 += fmt("%c=\"%c\" ", c, c);

	return {
		{ "as_thin_dump_writes_it", e },
		{ "tabs_for_spaces", replaced_all(e, " ", "\t") },
		{ "attributes_on_lines_of_their_own", replaced_all(e, "\" ", "\"\n      ") },
		{ "whitespace_around_the_equals_sign", replaced_all(e, "=", " =\n\t") },
		{ "single_quoted_values", replaced_all(e, "\"", "'") },
		{ "quote_and_gt_in_a_value", replaced(e, "uuid=\"\"", "uuid='a\"b>c'") },
		{ "every_byte_a_value_may_hold", replaced(e, "uuid=", "x=\"" + printable + "\" uuid=") },
		{ "space_before_the_end_of_a_tag",
		  replaced_all(replaced_all(e, "/>", " \n />"), "</device>", "</device \n >") },
		{ "whitespace_around_the_root", "\n\t \n" + e + "\t\n  \n" },
		{ "no_newline_at_the_end", e.substr(0, e.size() - 1) },
		{ "empty_elements_as_start_and_end_tags",
		  replaced(replaced(e, "time=\"2\"/>", "time=\"2\"></single_mapping>"),
			   "<ref name=\"x\"/>", "<ref name=\"x\">\n    </ref>") },
		{ "sixteen_attributes", replaced(e, "<superblock ", "<superblock " + attrs16) },
		{ "names_with_digits_dots_dashes_underscores",
		  replaced(e, "uuid=", "a-b.c_9=\"1\" _x=\"\" uuid=") },
		{ "leading_zeros", replaced(e, "origin_block=\"1\"", "origin_block=\"0001\"") },
	};
}

/* A device out of order just before the end: an error after everything. */
string with_late_error(const string &xml)
{
	size_t at = xml.rfind("</superblock");

	return xml.substr(0, at) +
	       "<device dev_id=\"1\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\"/>\n" +
	       xml.substr(at);
}

class fast_inside : public testing::TestWithParam<inside> {};

TEST_P(fast_inside, is_taken_with_expats_calls)
{
	file_ptr f = string_file(GetParam().xml);

	for (bool def_aware : { false, true }) {
		result ref = run(f.get(), XML_READER_EXPAT, def_aware);

		ASSERT_EQ(ref.r, 0) << ref.msg;
		EXPECT_EQ(fast_divergence(f.get(), ref, thin_dump_subset, def_aware), "");
	}
}

/* ... and the lines and columns counted through it are expat's. */
TEST_P(fast_inside, an_error_after_it_has_expats_position)
{
	string xml = with_late_error(GetParam().xml);
	file_ptr f = string_file(xml);

	for (bool def_aware : { false, true }) {
		result ref = run(f.get(), XML_READER_EXPAT, def_aware);
		result fa = run(f.get(), XML_READER_FAST, def_aware);

		ASSERT_EQ(ref.r, -EINVAL);
		EXPECT_NE(ref.msg.find("device 1 comes after device 2"), string::npos) << ref.msg;
		EXPECT_EQ(fa.msg, ref.msg);
		EXPECT_EQ(fast_divergence(f.get(), ref, thin_dump_subset, def_aware), "");
	}
}

INSTANTIATE_TEST_SUITE_P(xml_parser, fast_inside, testing::ValuesIn(inside_inputs()),
			 [](const testing::TestParamInfo<inside> &i) {
				 return string(i.param.name);
			 });

//----------------------------------------------------------------
// The fast reader: elements cut by the end of its buffer

constexpr size_t chunk_size = 1u << 20;	/* the reads of xml-parser.c */

enum piece {
	SINGLE, RANGE, DEVICE, END_DEVICE, DEF, END_DEF, REF, END_SUPERBLOCK,
	BAD_MAPPING,		/* beyond the data device */
	COMMENT,		/* outside the subset */
};

/*
 * A dump laid out so that the fast reader's reads end where a test wants
 * them.  Its first read ends at 1 MiB; an element cut by the end of a
 * read is kept from its '<' and the next read ends 1 MiB after that '<'
 * (1 MiB after the cut when it falls between elements).  The progress
 * callback reports where each read ended: the tests check that the cuts
 * fell as planned.  Between the cuts: mappings whose spacing, numbers,
 * leading zeros and lines vary, in devices of a few thousand that ref a
 * shared def half-way, apart by runs of whitespace (cheaper for expat
 * than elements, and lines to count).
 */
class cut_dump {
public:
	cut_dump();

	/*
	 * The next element is a what, placed so that a read ends into(el)
	 * bytes into its text el (< 0: in the whitespace before it).
	 */
	void place(piece what, const function<long(const string &)> &into);
	/* The next element is a what, wherever it falls. */
	void then(piece what, bool same_line);
	const string &finish();

	const string &xml() const { return xml_; }
	const vector<uint64_t> &cuts() const { return cuts_; }
	size_t last_start() const { return last_start_; }

private:
	static constexpr uint64_t nr_data_blocks = 1000000000;
	static constexpr uint64_t shared_first = 1000000000000ull;

	string element(piece what, bool placed);
	void add(piece what);
	void enter(piece what);
	void filler();
	void pad(size_t n);

	string xml_;
	vector<uint64_t> cuts_;
	size_t last_start_ = 0;
	uint64_t next_cut_ = chunk_size;
	enum { TOP, IN_DEVICE, IN_DEF, DONE } where_ = TOP;
	uint64_t next_dev_ = 0, origin_ = 0;
	unsigned nr_ = 0;		/* elements made: to vary them */
	unsigned in_device_ = 0;	/* mappings in the open device or def */
	unsigned nr_defs_ = 0;
	bool ref_done_ = false;		/* in the open device */
};

cut_dump::cut_dump()
{
	xml_ = fmt("<superblock uuid=\"cut\" time=\"1\" transaction=\"1\" data_block_size=\"128\" "
		   "nr_data_blocks=\"%" PRIu64 "\">\n", nr_data_blocks);
	xml_ += fmt("  <def name=\"shared\">\n"
		    "    <single_mapping origin_block=\"%" PRIu64 "\" data_block=\"1\" time=\"0\"/>\n"
		    "    <range_mapping origin_begin=\"%" PRIu64 "\" data_begin=\"2\" length=\"2\" time=\"0\"/>\n"
		    "  </def>", shared_first, shared_first + 1);
}

string cut_dump::element(piece what, bool placed)
{
	unsigned v = nr_++;
	string sp(1 + v % 3, ' ');
	string data = to_string(v * 7919ull % (nr_data_blocks - 100));
	uint64_t o = origin_;

	switch (what) {
	case SINGLE:
		origin_++;
		return "<single_mapping" + sp + "origin_block=\"" + string(v % 4, '0') + to_string(o) +
		       "\"" + sp + "data_block=\"" + data + "\"" + sp + "time=\"" +
		       to_string(v % 1000) + "\"/>";
	case RANGE: {
		unsigned len = 1 + v % 50;
		string gap = placed || v % 2 ? "\n      " : sp;

		origin_ += len;
		return "<range_mapping" + sp + "origin_begin=\"" + to_string(o) + "\"" + gap +
		       "data_begin=\"" + data + "\"" + sp + "length=\"" + to_string(len) + "\"" + gap +
		       "time=\"" + to_string(v % 16777216) + "\"/>";
	}
	case BAD_MAPPING:
		origin_++;
		return fmt("<single_mapping origin_block=\"%" PRIu64 "\" data_block=\"%" PRIu64
			   "\" time=\"0\"/>", o, nr_data_blocks);
	case DEVICE:
		where_ = IN_DEVICE;
		origin_ = 0;
		in_device_ = 0;
		ref_done_ = false;
		next_dev_ += 1 + v % 3;
		return fmt("<device dev_id=\"%" PRIu64 "\" mapped_blocks=\"%u\" transaction=\"%u\" "
			   "creation_time=\"%u\" snap_time=\"%u\">", next_dev_, v, v % 7, v % 5, v % 3);
	case END_DEVICE:
		where_ = TOP;
		return "</device>";
	case DEF:
		where_ = IN_DEF;
		origin_ = 0;
		in_device_ = 0;
		return "<def name=\"d" + to_string(nr_defs_++) + "\">";
	case END_DEF:
		where_ = TOP;
		return "</def>";
	case REF:
		ref_done_ = true;
		origin_ = shared_first + 3;
		return "<ref name=\"shared\"/>";
	case END_SUPERBLOCK:
		where_ = DONE;
		return "</superblock>";
	case COMMENT:
		return "<!-- a comment -->";
	}
	throw logic_error("piece");
}

void cut_dump::add(piece what)
{
	bool inner = what == SINGLE || what == RANGE || what == BAD_MAPPING || what == REF;

	xml_ += inner ? "\n    " : "\n  ";
	last_start_ = xml_.size();
	xml_ += element(what, false);
}

/* Whatever closes and opens so that a what may come next. */
void cut_dump::enter(piece what)
{
	if (where_ == DONE)
		throw logic_error("cut_dump: past the end");
	switch (what) {
	case SINGLE:
	case RANGE:
	case BAD_MAPPING:
		if (where_ == TOP)
			add(DEVICE);
		break;
	case REF:
		if (where_ == IN_DEF)
			add(END_DEF);
		if (where_ == IN_DEVICE && ref_done_)
			add(END_DEVICE);
		if (where_ == TOP)
			add(DEVICE);
		break;
	case END_DEVICE:
		if (where_ == IN_DEF)
			add(END_DEF);
		if (where_ == TOP)
			add(DEVICE);
		break;
	case END_DEF:
		if (where_ == IN_DEVICE)
			add(END_DEVICE);
		if (where_ == TOP)
			add(DEF);
		break;
	case DEVICE:
	case DEF:
	case END_SUPERBLOCK:
		if (where_ == IN_DEVICE)
			add(END_DEVICE);
		if (where_ == IN_DEF)
			add(END_DEF);
		break;
	case COMMENT:
		break;
	}
}

/* n bytes of spaces, newlines and tabs. */
void cut_dump::pad(size_t n)
{
	for (size_t i = 0; i < n; i++)
		xml_ += i % 37 == 0 ? '\n' : i % 11 == 5 ? '\t' : ' ';
}

void cut_dump::filler()
{
	if (where_ == TOP)
		add(DEVICE);
	if (where_ == IN_DEVICE && in_device_ == 2000) {
		add(END_DEVICE);
		add(DEVICE);
	}
	if (where_ == IN_DEVICE && in_device_ == 1000 && !ref_done_)
		add(REF);
	pad(nr_ * 37 % 700);
	add(nr_ % 5 ? SINGLE : RANGE);
	in_device_++;
}

void cut_dump::place(piece what, const function<long(const string &)> &into)
{
	uint64_t cut = next_cut_;
	string el;
	long in;
	size_t start;

	/* room for the way in, the element and some whitespace */
	while (xml_.size() + 1000 < cut)
		filler();
	enter(what);
	el = element(what, true);
	in = into(el);
	start = (size_t)((long)cut - in);
	if (in > (long)el.size() || start <= xml_.size())
		throw logic_error("cut_dump: bad cut");
	pad(start - xml_.size());
	last_start_ = start;
	xml_ += el;
	cuts_.push_back(cut);
	next_cut_ = (in > 0 && in < (long)el.size() ? start : cut) + chunk_size;
}

void cut_dump::then(piece what, bool same_line)
{
	enter(what);
	if (!same_line) {
		add(what);
		return;
	}
	xml_ += ' ';
	last_start_ = xml_.size();
	xml_ += element(what, false);
}

const string &cut_dump::finish()
{
	if (where_ == IN_DEVICE)
		add(END_DEVICE);
	if (where_ == IN_DEF)
		add(END_DEF);
	if (where_ != DONE)
		xml_ += "\n</superblock>";
	xml_ += "\n";
	return xml_;
}

/* Where in an element a read ends. */
struct cut_at {
	piece what;
	string where;
	function<long(const string &)> into;
};

/* Offset of the n-th (from 1) c in el. */
long nth(const string &el, char c, unsigned n)
{
	size_t at = string::npos;

	do
		at = el.find(c, at + 1);
	while (--n && at != string::npos);
	if (at == string::npos)
		throw logic_error("cut_at: no such byte");
	return (long)at;
}

long name_end(const string &el)
{
	return (long)el.find_first_of(" \t\n/>", 1);
}

cut_at at_offset(piece what, long into)
{
	return { what, fmt("%ld bytes in", into), [into](const string &) { return into; } };
}

vector<cut_at> start_tag_cuts(piece what)
{
	return {
		{ what, "in the whitespace before it", [](const string &) { return -6L; } },
		{ what, "just before it", [](const string &) { return -1L; } },
		{ what, "before the <", [](const string &) { return 0L; } },
		{ what, "after the <", [](const string &) { return 1L; } },
		{ what, "in the tag name", [](const string &) { return 4L; } },
		{ what, "after the tag name", name_end },
		{ what, "after a space after the tag name", [](const string &el) { return name_end(el) + 1; } },
		{ what, "in an attribute name", [](const string &el) { return nth(el, '=', 1) - 2; } },
		{ what, "at an =", [](const string &el) { return nth(el, '=', 2); } },
		{ what, "after an =", [](const string &el) { return nth(el, '=', 2) + 1; } },
		{ what, "after an opening quote", [](const string &el) { return nth(el, '"', 3) + 1; } },
		{ what, "at a closing quote", [](const string &el) { return nth(el, '"', 4); } },
		{ what, "between attributes", [](const string &el) { return nth(el, '"', 4) + 1; } },
		{ what, "at the last attribute", [](const string &el) { return (long)el.rfind(' ') + 1; } },
		{ what, "at the last byte", [](const string &el) { return (long)el.size() - 1; } },
		{ what, "right after it", [](const string &el) { return (long)el.size(); } },
	};
}

enum follow { ALONE, NEXT_LINE, SAME_LINE };

struct cut_case {
	const char *name;
	vector<cut_at> cuts;
	follow how = ALONE;		/* then what follows the last cut element, */
	piece then = BAD_MAPPING;	/* on the next line or on its last line */
};

void PrintTo(const cut_case &c, ostream *os)
{
	*os << c.name;
}

vector<cut_case> valid_cut_cases()
{
	vector<cut_at> end_device, defs, end;

	for (long i = 0; i <= 9; i++)
		end_device.push_back(at_offset(END_DEVICE, i));
	defs = {
		{ DEF, "after the <", [](const string &) { return 1L; } },
		{ DEF, "in the name", [](const string &el) { return nth(el, '"', 1) + 2; } },
		{ DEF, "at the >", [](const string &el) { return (long)el.size() - 1; } },
		at_offset(END_DEF, 1), at_offset(END_DEF, 2), at_offset(END_DEF, 4), at_offset(END_DEF, 5),
		{ REF, "in the tag name", [](const string &) { return 3L; } },
		{ REF, "in the name", [](const string &el) { return nth(el, '"', 1) + 3; } },
		{ REF, "at the /", [](const string &el) { return (long)el.size() - 2; } },
	};
	end = { at_offset(SINGLE, 20), at_offset(RANGE, 30), at_offset(END_SUPERBLOCK, 7) };

	vector<cut_at> device = start_tag_cuts(DEVICE);
	device.erase(device.begin() + 6, device.begin() + 12);

	return {
		{ "single_mapping", start_tag_cuts(SINGLE) },
		{ "range_mapping_over_lines", {
			{ RANGE, "before a newline", [](const string &el) { return nth(el, '\n', 1); } },
			{ RANGE, "after a newline", [](const string &el) { return nth(el, '\n', 1) + 1; } },
			{ RANGE, "in the indentation", [](const string &el) { return nth(el, '\n', 1) + 3; } },
			{ RANGE, "in a value after a newline", [](const string &el) { return nth(el, '"', 3) + 1; } },
			{ RANGE, "after the second newline", [](const string &el) { return nth(el, '\n', 2) + 1; } },
			{ RANGE, "at the /", [](const string &el) { return (long)el.size() - 2; } },
			{ RANGE, "at the >", [](const string &el) { return (long)el.size() - 1; } },
		} },
		{ "device_start_tag", device },
		{ "device_end_tag", end_device },
		{ "def_and_ref", defs },
		{ "superblock_end_tag", end },
	};
}

/* Builds c's dump; the start of the element at the last cut (or after it) in *last. */
string build(const cut_case &c, vector<uint64_t> *cuts, size_t *last = nullptr)
{
	cut_dump d;

	for (const cut_at &a : c.cuts)
		d.place(a.what, a.into);
	if (c.how != ALONE)
		d.then(c.then, c.how == SAME_LINE);
	if (last)
		*last = d.last_start();
	*cuts = d.cuts();
	return d.finish();
}

/* Where the reads of reader rd over f end (the progress callback). */
result run_counting_reads(FILE *f, enum xml_reader rd, vector<uint64_t> *reads)
{
	struct xml_parse_opts o = {};

	o.progress = [](void *ctx, uint64_t n) {
		static_cast<vector<uint64_t> *>(ctx)->push_back(n);
	};
	o.progress_ctx = reads;
	return run(f, rd, false, &o);
}

/* The cuts of c with their lines and columns, for failure messages. */
string describe_cuts(const cut_case &c, const string &xml, const vector<uint64_t> &cuts)
{
	size_t line = 1, line_start = 0, from = 0;
	string s;

	for (size_t i = 0; i < cuts.size(); i++) {
		for (; from < cuts[i]; from++)
			if (xml[from] == '\n') {
				line++;
				line_start = from + 1;
			}
		s += fmt("\n  cut %zu at byte %" PRIu64 " (line %zu, column %zu), %s: %s", i + 1,
			 cuts[i], line, (size_t)cuts[i] - line_start + 1, c.cuts[i].where.c_str(),
			 c_literal(xml.substr(cuts[i] - 20, 40)).c_str());
	}
	return s;
}

class fast_cut : public testing::TestWithParam<cut_case> {};

TEST_P(fast_cut, elements_cut_by_a_read_reach_the_emitter_as_through_expat)
{
	const cut_case &c = GetParam();
	vector<uint64_t> cuts, reads[2];
	string xml = build(c, &cuts);
	file_ptr f = string_file(xml);
	result ref = run(f.get(), XML_READER_EXPAT);
	result d = run_counting_reads(f.get(), XML_READER_FAST_OR_DECLINE, &reads[0]);
	result fa = run_counting_reads(f.get(), XML_READER_FAST, &reads[1]);

	SCOPED_TRACE(describe_cuts(c, xml, cuts));
	ASSERT_GT(xml.size(), 2 * chunk_size);
	ASSERT_EQ(ref.r, 0) << ref.msg;
	ASSERT_GT(ref.calls.size(), 1000 * cuts.size());
	EXPECT_TRUE(same(d, ref)) << show(d) << "\n" << first_difference(ref, d);
	EXPECT_TRUE(same(fa, ref)) << show(fa) << "\n" << first_difference(ref, fa);

	/* the reads ended where planned, then at the end */
	cuts.push_back(xml.size());
	EXPECT_EQ(reads[0], cuts) << "the reads did not end where cut_dump meant them to";
	EXPECT_EQ(reads[1], cuts);
}

INSTANTIATE_TEST_SUITE_P(xml_parser, fast_cut, testing::ValuesIn(valid_cut_cases()),
			 [](const testing::TestParamInfo<cut_case> &i) {
				 return string(i.param.name);
			 });

vector<cut_case> error_cut_cases()
{
	const vector<cut_at> before = {
		{ RANGE, "after a newline", [](const string &el) { return nth(el, '\n', 1) + 1; } },
	};
	const cut_at range_2nd_line = {
		RANGE, "after the second newline", [](const string &el) { return nth(el, '\n', 2) + 1; }
	};
	auto with = [&](cut_at last) {
		vector<cut_at> v = before;

		v.push_back(last);
		return v;
	};

	return {
		{ "mapping_error_starting_at_a_cut", with(at_offset(BAD_MAPPING, 0)) },
		{ "mapping_error_a_byte_after_a_cut", with(at_offset(BAD_MAPPING, -1)) },
		{ "mapping_error_cut_in_its_tag_name", with(at_offset(BAD_MAPPING, 5)) },
		{ "mapping_error_cut_in_the_bad_value",
		  with({ BAD_MAPPING, "in the bad value", [](const string &el) { return nth(el, '"', 3) + 4; } }) },
		{ "mapping_error_right_after_a_mapping_cut_over_lines", with(range_2nd_line), NEXT_LINE },
		/* columns count from the last newline inside the cut element */
		{ "mapping_error_on_the_line_a_cut_element_ends", with(range_2nd_line), SAME_LINE },
		{ "mapping_error_right_after_a_cut_end_tag", with(at_offset(END_DEVICE, 3)), NEXT_LINE },
		{ "comment_at_a_cut", with(at_offset(COMMENT, 0)) },
		{ "comment_cut_in_two", with(at_offset(COMMENT, 5)) },
		{ "comment_on_the_line_a_cut_element_ends", with(range_2nd_line), SAME_LINE, COMMENT },
	};
}

class fast_cut_error : public testing::TestWithParam<cut_case> {};

/* FAST words it as expat, line and column included; or says where it left the subset. */
TEST_P(fast_cut_error, right_after_a_cut_has_expats_position)
{
	const cut_case &c = GetParam();
	piece last = c.how == ALONE ? c.cuts.back().what : c.then;
	vector<uint64_t> cuts, reads;
	size_t at;
	string xml = build(c, &cuts, &at);
	file_ptr f = string_file(xml);
	result ref = run(f.get(), XML_READER_EXPAT);
	result d = run(f.get(), XML_READER_FAST_OR_DECLINE);
	result fa = run_counting_reads(f.get(), XML_READER_FAST, &reads);

	SCOPED_TRACE(describe_cuts(c, xml, cuts));
	if (last == COMMENT) {
		ASSERT_EQ(ref.r, 0) << ref.msg;
		EXPECT_TRUE(not_thin_dump(fa)) << show(fa);
		EXPECT_EQ(fa.msg.rfind(position_of(xml, at), 0), 0u)
			<< fa.msg << "\n  expected at " << position_of(xml, at);
	} else {
		ASSERT_EQ(ref.r, -EINVAL);
		EXPECT_EQ(ref.msg, position_of(xml, at) +
			  "mapping beyond end of data device (1000000000 >= 1000000000)");
		EXPECT_TRUE(same(fa, ref)) << show(fa) << "\n  expat: " << show(ref);
	}
	/* and so thin_restore's first pass ends with expat's ref */
	EXPECT_EQ(d.r, XML_PARSE_DECLINED) << show(d);
	EXPECT_EQ(d.code, 0);

	/* "<!" is out at once: the rest of a comment cut in two need not be read */
	if (c.how == ALONE && last == COMMENT && reads.size() + 1 == cuts.size())
		cuts.pop_back();
	EXPECT_EQ(reads, cuts) << "the reads did not end where cut_dump meant them to";
}

INSTANTIATE_TEST_SUITE_P(xml_parser, fast_cut_error, testing::ValuesIn(error_cut_cases()),
			 [](const testing::TestParamInfo<cut_case> &i) {
				 return string(i.param.name);
			 });

//----------------------------------------------------------------
// The fast reader against expat on mutated dumps

/* xorshift64: the same cases on every run and every machine. */
struct xorshift {
	uint64_t s;

	unsigned below(size_t n)
	{
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		return n ? (unsigned)(s % n) : 0;
	}
};

/*
 * One to three byte-level changes: most break XML's syntax, some only the
 * numbers, some (whitespace beside whitespace) nothing.
 */
string mutate(const string &dump, xorshift &rng)
{
	static const char syntax[] = "<>\"/= \n\t'&";
	string s = dump;

	for (unsigned n = 1 + rng.below(3); n; n--) {
		size_t at = rng.below(s.size() + 1), d;

		switch (rng.below(13)) {
		case 0:		/* flip a bit */
			if (at < s.size())
				s[at] = (char)(s[at] ^ (1 << rng.below(8)));
			break;
		case 1:		/* any byte */
			if (at < s.size())
				s[at] = (char)rng.below(256);
			break;
		case 2:
		case 3:
			s.erase(at, 1 + rng.below(4));
			break;
		case 4:
		case 5:
		case 6:
			s.insert(at, 1, syntax[rng.below(sizeof(syntax) - 1)]);
			break;
		case 7:
			s.resize(at);
			break;
		case 8:		/* a number changes: order, range, overflow */
			d = s.find_first_of("0123456789", at);
			if (d != string::npos)
				s.insert(d, 1, (char)('0' + rng.below(10)));
			break;
		case 9:		/* a span repeated: attributes, elements, half of each */
			s.insert(at, s.substr(rng.below(s.size()), 1 + rng.below(60)));
			break;
		case 10:
			d = s.find_first_of("0123456789", at);
			if (d != string::npos)
				s[d] = (char)('0' + rng.below(10));
			break;
		case 11:
		case 12:
			d = s.find_first_of(" \n", at);
			if (d != string::npos)
				s.insert(d, 1 + rng.below(3), " \n\t"[rng.below(3)]);
			break;
		}
	}
	return s;
}

TEST(xml_parser, fast_reader_agrees_with_expat_on_mutated_dumps)
{
	const string dumps[] = { spec_example, dump_1x, edge_dump, several_defs };
	const unsigned nr_cases = 6000;
	xorshift rng = { 0x7468696e5f786d6cull };	/* "thin_xml" */
	unsigned taken = 0, declined = 0, worded_as_expat = 0, reported = 0, failures = 0;

	for (unsigned i = 0; i < nr_cases && failures < 3; i++) {
		string xml = mutate(dumps[i % 4], rng);
		bool def_aware = rng.below(2);
		int fail_at = rng.below(5) ? -1 : (int)rng.below(12);
		file_ptr f = string_file(xml);
		result ref = run(f.get(), XML_READER_EXPAT, def_aware, nullptr, fail_at);
		result d, fa;
		string why = fast_divergence(f.get(), ref, any_xml, def_aware, nullptr, fail_at,
					     &d, &fa);

		if (!why.empty()) {
			ADD_FAILURE() << "case " << i << " (def_aware " << def_aware << ", emitter fails at call "
				      << fail_at << "): " << why << "\n  input: " << c_literal(xml);
			failures++;
		}
		if (d.r == 0)
			taken++;
		else if (d.r != XML_PARSE_DECLINED)
			reported++;
		else if (declined++, fa.r && !not_thin_dump(fa))
			worded_as_expat++;
	}

	/* the cases reach every outcome */
	RecordProperty("taken", (int)taken);
	RecordProperty("declined", (int)declined);
	RecordProperty("worded_as_expat", (int)worded_as_expat);
	RecordProperty("reported", (int)reported);
	EXPECT_GT(taken, nr_cases / 20);
	EXPECT_GT(declined, nr_cases / 4);
	EXPECT_GT(worded_as_expat, nr_cases / 40);
	EXPECT_GT(reported, nr_cases / 100);
}

} // namespace
