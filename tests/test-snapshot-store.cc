/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The dm-snapshot store reader, sorter, plan and copy over hand-built
 * stores.  The stores are laid out here from the format's rules
 * (doc/snapshot-format.md), not with the code under test.
 */
extern "C" {
#include "persistent-data/io-engine-fault.h"
#include "snapshot/snap-merge.h"
}

#include "test-files.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

using namespace test_files;

namespace {

// little endian by hand, not through the code under test
void put32(uint8_t *p, uint32_t x)
{
	for (int i = 0; i < 4; i++)
		p[i] = uint8_t(x >> (8 * i));
}

void put64(uint8_t *p, uint64_t x)
{
	for (int i = 0; i < 8; i++)
		p[i] = uint8_t(x >> (8 * i));
}

struct hand_store {
	uint32_t chunk_sectors = 8;
	uint32_t magic = 0x70416e53, valid = 1, version = 1;
	int64_t header_chunk = -1;		// -1: chunk_sectors
	vector<snap_entry> table;		// written in order from area 0
	uint64_t cow_chunks = 0;		// 0: just enough (and the next area when full)
	bool zero_next_area = true;

	uint64_t cb() const { return uint64_t(chunk_sectors) * 512; }
	uint64_t epa() const { return cb() / 16; }
	uint64_t area_chunk(uint64_t a) const { return 1 + a * (epa() + 1); }

	// new chunks as the kernel hands them out: 2, 3, ... skipping areas
	static vector<snap_entry> kernel_table(uint32_t chunk_sectors, const vector<uint64_t> &olds)
	{
		uint64_t epa = uint64_t(chunk_sectors) * 512 / 16, next = 2;
		vector<snap_entry> t;

		for (uint64_t o : olds) {
			t.push_back(snap_entry{ o, next });
			next++;
			if ((next - 1) % (epa + 1) == 0)
				next++;
		}
		return t;
	}

	uint64_t needed_chunks() const
	{
		uint64_t n = 2;

		for (auto &e : table)
			n = std::max(n, e.new_chunk + 1);
		uint64_t areas = table.size() / epa() + 1;	// the area holding the end (or the next)
		if (zero_next_area || table.size() % epa())
			n = std::max(n, area_chunk(areas - 1) + 1);
		return n;
	}

	void write(const string &path) const
	{
		uint64_t chunks = cow_chunks ? cow_chunks : needed_chunks();
		int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd < 0 || ftruncate(fd, off_t(chunks * cb())))
			throw runtime_error("create " + path);
		uint8_t hdr[16];
		put32(hdr, magic);
		put32(hdr + 4, valid);
		put32(hdr + 8, version);
		put32(hdr + 12, header_chunk >= 0 ? uint32_t(header_chunk) : chunk_sectors);
		if (pwrite(fd, hdr, 16, 0) != 16)
			throw runtime_error("write header");
		for (size_t i = 0; i < table.size(); i++) {
			uint8_t de[16];
			uint64_t a = i / epa(), k = i % epa();

			put64(de, table[i].old_chunk);
			put64(de + 8, table[i].new_chunk);
			if (pwrite(fd, de, 16, off_t(area_chunk(a) * cb() + k * 16)) != 16)
				throw runtime_error("write entry");
		}
		close(fd);
	}

	// the kernel's snapshot-merge target after merging the last n entries
	void clear_tail(const string &path, size_t n) const
	{
		int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
		uint8_t zero[16] = { 0 };

		for (size_t i = table.size() - n; i < table.size(); i++)
			if (pwrite(fd, zero, 16, off_t(area_chunk(i / epa()) * cb() + (i % epa()) * 16)) != 16)
				throw runtime_error("clear");
		close(fd);
	}
};

struct store_ptr_deleter {
	void operator()(snap_store *s) const { snap_store_close(s); }
};
using store_ptr = unique_ptr<snap_store, store_ptr_deleter>;

store_ptr open_store(const string &path, int *rc = nullptr)
{
	snap_store *s = nullptr;
	pd_err err{};
	int r = snap_store_open(path.c_str(), IO_ENGINE_SYNC, 0, &s, &err);

	if (!r)
		r = snap_header_check(s, &err);
	if (rc)
		*rc = r;
	return store_ptr(s);
}

int collect(void *ctx, uint64_t index, const snap_entry *e)
{
	auto *v = static_cast<vector<snap_entry> *>(ctx);

	EXPECT_EQ(index, v->size());
	v->push_back(*e);
	return 0;
}

struct walked {
	int r;
	vector<snap_entry> entries;
	snap_table_info info;
};

walked walk(const string &path)
{
	walked w{};
	int rc;
	store_ptr s = open_store(path, &rc);
	pd_err err{};

	if (rc) {
		w.r = rc;
		return w;
	}
	w.r = snap_walk(s.get(), collect, &w.entries, &w.info, &err);
	return w;
}

bool same(const vector<snap_entry> &a, const vector<snap_entry> &b)
{
	return a.size() == b.size() &&
	       std::equal(a.begin(), a.end(), b.begin(), [](const snap_entry &x, const snap_entry &y) {
		       return x.old_chunk == y.old_chunk && x.new_chunk == y.new_chunk;
	       });
}

vector<uint64_t> olds(size_t n, uint64_t seed, uint64_t range)
{
	mt19937_64 rng(seed);
	vector<uint64_t> v;

	for (size_t i = 0; i < n; i++)
		v.push_back(rng() % range);
	return v;
}

class SnapStoreTests : public ::testing::Test {
protected:
	temp_dir dir{ regular_dir() };
	string cow = dir.file("cow");
};

} // namespace

/*----------------------------------------------------------------
 * The table
 *--------------------------------------------------------------*/

TEST_F(SnapStoreTests, one_area)
{
	hand_store h;
	h.table = hand_store::kernel_table(8, olds(10, 1, 1000));
	h.write(cow);

	walked w = walk(cow);
	ASSERT_EQ(w.r, 0);
	EXPECT_TRUE(same(w.entries, h.table));
	EXPECT_EQ(w.info.nr_areas, 1u);
	EXPECT_EQ(w.info.end, SNAP_END_MARKER);
	EXPECT_EQ(w.info.end_area, 0u);
	EXPECT_EQ(w.info.end_index, 10u);
	EXPECT_EQ(w.info.after_end, 0u);
}

TEST_F(SnapStoreTests, many_areas)
{
	hand_store h;
	h.table = hand_store::kernel_table(8, olds(256 * 5 + 17, 2, 100000));
	h.write(cow);

	walked w = walk(cow);
	ASSERT_EQ(w.r, 0);
	EXPECT_TRUE(same(w.entries, h.table));
	EXPECT_EQ(w.info.nr_areas, 6u);
	EXPECT_EQ(w.info.end_area, 5u);
	EXPECT_EQ(w.info.end_index, 17u);
	// the kernel's allocation skipped every area's chunk
	for (auto &e : w.entries)
		EXPECT_NE((e.new_chunk - 1) % 257, 0u) << e.new_chunk;
}

TEST_F(SnapStoreTests, end_marker_at_an_area_boundary)
{
	hand_store h;
	h.table = hand_store::kernel_table(8, olds(512, 3, 100000));
	h.write(cow);		// area 2 exists and is zero, as the kernel leaves it

	walked w = walk(cow);
	ASSERT_EQ(w.r, 0);
	EXPECT_TRUE(same(w.entries, h.table));
	EXPECT_EQ(w.info.nr_areas, 3u);
	EXPECT_EQ(w.info.end, SNAP_END_MARKER);
	EXPECT_EQ(w.info.end_area, 2u);
	EXPECT_EQ(w.info.end_index, 0u);
}

TEST_F(SnapStoreTests, full_last_area_without_a_next_area_is_reported)
{
	hand_store h;
	h.table = hand_store::kernel_table(8, olds(256, 4, 100000));
	h.zero_next_area = false;
	h.cow_chunks = 1 + 257;		// header, area 0 and its data: area 1 is past the end
	h.write(cow);

	walked w = walk(cow);
	ASSERT_EQ(w.r, 0);
	EXPECT_TRUE(same(w.entries, h.table));
	EXPECT_EQ(w.info.end, SNAP_END_DEVICE);
	EXPECT_EQ(w.info.end_area, 1u);
}

TEST_F(SnapStoreTests, partly_merged_store_is_a_shorter_table)
{
	hand_store h;
	h.table = hand_store::kernel_table(8, olds(700, 5, 100000));

	for (size_t cleared : { size_t(1), size_t(100), size_t(700 - 512), size_t(700 - 256),
				size_t(699), size_t(700) }) {
		h.write(cow);
		h.clear_tail(cow, cleared);
		walked w = walk(cow);
		vector<snap_entry> left(h.table.begin(), h.table.end() - long(cleared));

		ASSERT_EQ(w.r, 0) << cleared;
		EXPECT_TRUE(same(w.entries, left)) << cleared;
		EXPECT_EQ(w.info.end_area, left.size() / 256) << cleared;
		EXPECT_EQ(w.info.end_index, left.size() % 256) << cleared;
		EXPECT_EQ(w.info.after_end, 0u) << cleared;
	}
}

TEST_F(SnapStoreTests, po_store_filled_to_the_cow_end_stays_readable)
{
	// A PO (overflow) snapshot whose COW filled: the header stays valid and
	// every chunk up to the COW's end is used; the format is that of P.
	hand_store h;
	h.table = hand_store::kernel_table(8, olds(300, 6, 100000));
	h.cow_chunks = h.table.back().new_chunk + 1;
	h.zero_next_area = false;
	h.write(cow);

	walked w = walk(cow);
	ASSERT_EQ(w.r, 0);
	EXPECT_TRUE(same(w.entries, h.table));
	EXPECT_EQ(w.info.end, SNAP_END_MARKER);

	store_ptr s = open_store(cow);
	EXPECT_EQ(s->hdr.valid, 1u);
	EXPECT_EQ(s->geo.cow_chunks, h.table.back().new_chunk + 1);
}

TEST_F(SnapStoreTests, every_chunk_size_from_8_sectors_to_1_MiB)
{
	for (uint32_t cs = 8; cs <= 2048; cs *= 2) {
		hand_store h;
		uint64_t epa = uint64_t(cs) * 512 / 16;

		h.chunk_sectors = cs;
		// one full area and 3 entries in the next: crosses a boundary
		h.table = hand_store::kernel_table(cs, olds(epa + 3, cs, 1u << 30));
		h.write(cow);		// sparse: the data chunks are holes

		walked w = walk(cow);
		ASSERT_EQ(w.r, 0) << cs;
		EXPECT_TRUE(same(w.entries, h.table)) << cs;
		EXPECT_EQ(w.info.nr_areas, 2u) << cs;
		EXPECT_EQ(w.info.end_index, 3u) << cs;

		store_ptr s = open_store(cow);
		EXPECT_EQ(s->geo.chunk_bytes, uint64_t(cs) * 512);
		EXPECT_EQ(s->geo.exceptions_per_area, epa);
		EXPECT_EQ(snap_area_chunk(&s->geo, 1), 2 + epa);
		EXPECT_TRUE(snap_is_metadata_chunk(&s->geo, 2 + epa));
		EXPECT_FALSE(snap_is_metadata_chunk(&s->geo, 3 + epa));
	}
}

TEST_F(SnapStoreTests, nonzero_entries_after_the_end_are_counted_not_read)
{
	hand_store h;
	h.table = hand_store::kernel_table(8, olds(20, 7, 1000));
	h.table.push_back(snap_entry{ 0, 0 });		// the end
	h.table.push_back(snap_entry{ 5, 99 });		// ignored
	h.write(cow);

	walked w = walk(cow);
	ASSERT_EQ(w.r, 0);
	EXPECT_EQ(w.entries.size(), 20u);
	EXPECT_EQ(w.info.after_end, 1u);
}

/*----------------------------------------------------------------
 * The header
 *--------------------------------------------------------------*/

TEST_F(SnapStoreTests, header_refusals)
{
	struct {
		const char *what;
		uint32_t magic, version, chunk;
		int expect;
	} cases[] = {
		{ "never used", 0, 1, 8, -ENODATA },
		{ "bad magic", 0x12345678, 1, 8, -EILSEQ },
		{ "version 2", 0x70416e53, 2, 8, -EPROTO },
		{ "chunk 0", 0x70416e53, 1, 0, -EINVAL },
		{ "chunk 4", 0x70416e53, 1, 4, -EINVAL },
		{ "chunk 24", 0x70416e53, 1, 24, -EINVAL },
		{ "chunk 2^22", 0x70416e53, 1, 1u << 22, -EINVAL },
		{ "good", 0x70416e53, 1, 8, 0 },
	};

	for (auto &c : cases) {
		hand_store h;
		h.magic = c.magic;
		h.version = c.version;
		h.header_chunk = c.chunk;
		h.write(cow);
		int rc;
		store_ptr s = open_store(cow, &rc);
		EXPECT_EQ(rc, c.expect) << c.what;
	}
}

TEST_F(SnapStoreTests, too_small_stores)
{
	int rc;
	vector<uint8_t> small(4095, 1);

	write_file(cow, small);
	open_store(cow, &rc);
	EXPECT_EQ(rc, -ENOSPC);

	hand_store h;
	h.cow_chunks = 1;		// a header and no area
	h.write(cow);
	open_store(cow, &rc);
	EXPECT_EQ(rc, -ENOSPC);
}

TEST_F(SnapStoreTests, opening_for_writing_is_refused)
{
	hand_store h;
	h.write(cow);
	snap_store *s = nullptr;
	pd_err err{};
	EXPECT_EQ(snap_store_open(cow.c_str(), IO_ENGINE_SYNC, IO_OPEN_WRITE, &s, &err), -EINVAL);
}

/*----------------------------------------------------------------
 * Sort and plan
 *--------------------------------------------------------------*/

namespace {

struct sorter_deleter {
	void operator()(snap_sorter *s) const { snap_sorter_destroy(s); }
};

vector<snap_sorted> sorted_by_sorter(const vector<snap_sorted> &in, uint64_t run, uint64_t *spilled)
{
	snap_sorter *raw = nullptr;
	pd_err err{};
	vector<snap_sorted> out;

	EXPECT_EQ(snap_sorter_create(run, &raw, &err), 0);
	unique_ptr<snap_sorter, sorter_deleter> s(raw);
	for (auto &e : in)
		EXPECT_EQ(snap_sorter_add(s.get(), &e, &err), 0);
	EXPECT_EQ(snap_sorter_finish(s.get(), &err), 0);
	*spilled = snap_sorter_spilled_runs(s.get());
	for (int pass = 0; pass < 2; pass++) {		// reading twice gives the same order
		vector<snap_sorted> v;
		snap_sorted e;
		int r;

		EXPECT_EQ(snap_sorter_rewind(s.get(), &err), 0);
		while ((r = snap_sorter_next(s.get(), &e, &err)) > 0)
			v.push_back(e);
		EXPECT_EQ(r, 0);
		if (pass) {
			EXPECT_EQ(v.size(), out.size());
		}
		out = v;
	}
	return out;
}

} // namespace

TEST(SnapSortTests, bounded_runs_give_the_order_of_a_stable_sort)
{
	vector<snap_sorted> in;
	mt19937_64 rng(11);

	for (uint64_t i = 0; i < 5000; i++)
		in.push_back(snap_sorted{ rng() % 1500, 10 + i, i });
	vector<snap_sorted> expect = in;
	std::stable_sort(expect.begin(), expect.end(), [](const snap_sorted &a, const snap_sorted &b) {
		return a.old_chunk < b.old_chunk;
	});

	for (uint64_t run : { uint64_t(0), uint64_t(1), uint64_t(7), uint64_t(100), uint64_t(4999),
			      uint64_t(5000) }) {
		uint64_t spilled;
		vector<snap_sorted> got = sorted_by_sorter(in, run, &spilled);

		ASSERT_EQ(got.size(), expect.size()) << run;
		for (size_t i = 0; i < got.size(); i++)
			ASSERT_TRUE(got[i].old_chunk == expect[i].old_chunk &&
				    got[i].seq == expect[i].seq) << "run " << run << " at " << i;
		if (run && run < 5000)
			EXPECT_EQ(spilled, (5000 + run - 1) / run) << run;
		else
			EXPECT_EQ(spilled, 0u) << run;
	}
}

TEST_F(SnapStoreTests, plan_keeps_the_last_entry_and_coalesces_runs)
{
	hand_store h;
	// table order: 10->2, 11->3, 12->4 (a run), 50->5, 51->6 (a run), 11->7 (overrides 11)
	h.table = { { 10, 2 }, { 11, 3 }, { 12, 4 }, { 50, 5 }, { 51, 6 }, { 11, 7 } };
	h.write(cow);
	store_ptr s = open_store(cow);
	snap_scan_opts so{};
	snap_scan sc;
	pd_err err{};

	ASSERT_EQ(snap_scan_table(s.get(), &so, &sc, &err), 0) << err.msg;
	EXPECT_EQ(sc.nr_problems, 0u);
	EXPECT_EQ(sc.duplicates, 1u);
	EXPECT_EQ(sc.distinct_chunks, 5u);
	EXPECT_EQ(sc.max_old_chunk, 51u);

	snap_plan p;
	snap_extent x;
	vector<snap_extent> got;
	ASSERT_EQ(snap_plan_begin(&p, sc.sorter, &err), 0);
	while (snap_plan_next(&p, &x, &err) > 0)
		got.push_back(x);
	snap_scan_release(&sc);

	ASSERT_EQ(got.size(), 4u);
	EXPECT_EQ(got[0].old_chunk, 10u); EXPECT_EQ(got[0].new_chunk, 2u); EXPECT_EQ(got[0].nr_chunks, 1u);
	EXPECT_EQ(got[1].old_chunk, 11u); EXPECT_EQ(got[1].new_chunk, 7u); EXPECT_EQ(got[1].nr_chunks, 1u);
	EXPECT_EQ(got[2].old_chunk, 12u); EXPECT_EQ(got[2].new_chunk, 4u); EXPECT_EQ(got[2].nr_chunks, 1u);
	EXPECT_EQ(got[3].old_chunk, 50u); EXPECT_EQ(got[3].new_chunk, 5u); EXPECT_EQ(got[3].nr_chunks, 2u);
}

namespace {

struct reports {
	vector<string> fatal, warn;
};

void on_report(void *ctx, bool fatal, const char *msg)
{
	auto *r = static_cast<reports *>(ctx);

	(fatal ? r->fatal : r->warn).push_back(msg);
}

} // namespace

TEST_F(SnapStoreTests, scan_reports_each_damaged_entry)
{
	hand_store h;
	// cow: 2 + 256 chunks = area 0 and its data (chunks 2..257), area 1 at 258
	h.table = { { 1, 2 }, { 2, 900 }, { 3, 258 }, { 4, 2 }, { 5, 0x100000000ull }, { 6, 0 } };
	h.cow_chunks = 300;
	h.write(cow);
	store_ptr s = open_store(cow);
	reports rep;
	snap_scan_opts so{};
	so.report = on_report;
	so.ctx = &rep;
	so.origin_bytes = 4096 * 4;		// chunks 0..3 only
	snap_scan sc;
	pd_err err{};

	ASSERT_EQ(snap_scan_table(s.get(), &so, &sc, &err), 0) << err.msg;
	snap_scan_release(&sc);
	// 900 past the end, 258 metadata, 2 shared, 4 past the origin (entry 3),
	// 5 past the origin (entry 4, and its COW chunk past the end)
	ASSERT_EQ(rep.fatal.size(), 6u);
	EXPECT_NE(rep.fatal[0].find("past the COW's end"), string::npos) << rep.fatal[0];
	EXPECT_NE(rep.fatal[1].find("metadata area"), string::npos) << rep.fatal[1];
	EXPECT_NE(rep.fatal[2].find("already used"), string::npos) << rep.fatal[2];
	EXPECT_NE(rep.fatal[3].find("origin's end"), string::npos) << rep.fatal[3];
	EXPECT_EQ(sc.nr_problems, 6u);
}

/*----------------------------------------------------------------
 * The copy: interrupted at every point, then run again
 *--------------------------------------------------------------*/

TEST_F(SnapStoreTests, an_interrupted_copy_finishes_when_run_again)
{
	const uint64_t origin_blocks = 64;
	hand_store h;
	h.chunk_sectors = 16;			// 2 blocks per chunk
	h.table = hand_store::kernel_table(16, { 3, 4, 5, 20, 9, 4, 30, 31, 0, 7 });
	h.write(cow);
	// data chunks: recognisable contents
	vector<uint8_t> cowdata = read_file(cow);
	vector<uint8_t> fill = random_content(cowdata.size() / MD_BLOCK_SIZE, 5);
	for (auto &e : h.table)
		memcpy(cowdata.data() + e.new_chunk * 8192, fill.data() + e.new_chunk * 8192, 8192);
	write_file(cow, cowdata);

	vector<uint8_t> orig = random_content(origin_blocks, 9);
	vector<uint8_t> expect = orig;
	for (auto &e : h.table)		// table order: the last entry wins
		memcpy(expect.data() + e.old_chunk * 8192, cowdata.data() + e.new_chunk * 8192, 8192);

	string origin = dir.file("origin");
	store_ptr s = open_store(cow);
	for (uint64_t cut = 0; cut <= 20; cut++) {
		write_file(origin, orig);
		pd_err err{};
		snap_scan_opts so{};
		snap_scan sc;
		snap_copy_opts co{};
		snap_copy_stats st;
		io_engine *raw = nullptr, *fault = nullptr;

		ASSERT_EQ(snap_scan_table(s.get(), &so, &sc, &err), 0);
		ASSERT_EQ(io_engine_open(origin.c_str(), IO_ENGINE_SYNC, IO_OPEN_WRITE, &raw, &err), 0);
		engine_ptr inner(raw);
		ASSERT_EQ(io_engine_fault_create(inner.get(), cut, &fault), 0);
		io_engine_fault_set_flags(fault, IO_FAULT_FAIL);
		engine_ptr f(fault);
		int r = snap_copy(s.get(), &sc, f.get(), &co, &st, &err);
		if (cut < 18)
			EXPECT_NE(r, 0) << cut;		// 9 chunks of 2 blocks
		else
			EXPECT_EQ(r, 0) << cut;
		f.reset();
		inner.reset();

		// run again with a plain engine, then verify
		ASSERT_EQ(io_engine_open(origin.c_str(), IO_ENGINE_SYNC, IO_OPEN_WRITE, &raw, &err), 0);
		engine_ptr again(raw);
		ASSERT_EQ(snap_copy(s.get(), &sc, again.get(), &co, &st, &err), 0) << err.msg;
		EXPECT_EQ(st.bytes, 9u * 8192);
		co.verify_only = true;
		EXPECT_EQ(snap_copy(s.get(), &sc, again.get(), &co, &st, &err), 0) << err.msg;
		co.verify_only = false;
		again.reset();
		snap_scan_release(&sc);
		EXPECT_TRUE(read_file(origin) == expect) << "cut after " << cut << " writes";
	}
}

TEST_F(SnapStoreTests, verify_finds_a_difference)
{
	hand_store h;
	h.table = hand_store::kernel_table(8, { 1, 2 });
	h.write(cow);
	string origin = dir.file("origin");
	vector<uint8_t> orig = random_content(8, 3);
	write_file(origin, orig);		// the COW's data chunks are zero: differs
	store_ptr s = open_store(cow);
	pd_err err{};
	snap_scan_opts so{};
	snap_scan sc;
	snap_copy_opts co{};
	snap_copy_stats st;
	io_engine *raw = nullptr;

	ASSERT_EQ(snap_scan_table(s.get(), &so, &sc, &err), 0);
	ASSERT_EQ(io_engine_open(origin.c_str(), IO_ENGINE_SYNC, 0, &raw, &err), 0);
	engine_ptr e(raw);
	co.verify_only = true;
	EXPECT_EQ(snap_copy(s.get(), &sc, e.get(), &co, &st, &err), -EILSEQ);
	EXPECT_EQ(st.mismatches, 2u);
	EXPECT_EQ(st.first_mismatch_block, 1u);
	snap_scan_release(&sc);
	EXPECT_TRUE(read_file(origin) == orig);
}
