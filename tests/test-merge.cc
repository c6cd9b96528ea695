/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * merge_walk and merge_count (merge/merge.c) over an origin O and a
 * snapshot S written from a model, against what the model says merging
 * does: every key of S from S, every other key of O from O, every O key
 * under an S key hidden; and tree_copy_thin (thin-provisioning/
 * tree-copy.c), whose counts are checked against counts made by walking
 * the file's raw nodes (a node reached from N places counts N, its
 * children once), and whose copy must hold the bytes of every block it
 * counts and nothing else.
 */
#include <gtest/gtest.h>

extern "C" {
#include "merge/merge.h"
#include "persistent-data/count-map.h"
#include "thin-provisioning/metadata.h"
#include "thin-provisioning/pool.h"
#include "thin-provisioning/thin-disk.h"
#include "thin-provisioning/tree-copy.h"
}

#include "test-files.h"
#include "thin-model.h"

#include <algorithm>
#include <set>
#include <tuple>

using namespace std;
using namespace thin_model;
using test_files::temp_dir;

namespace {

using step = tuple<uint64_t, uint64_t, merge_source>;	/* key, block_time, source */

uint64_t bt(const mapping &m) { return m.data << 24 | m.time; }

/* What merging O and S reports, from the model. */
vector<step> expected_walk(const device &o, const device &s)
{
	set<uint64_t> keys;
	vector<step> v;

	for (auto &[k, m] : o.maps)
		keys.insert(k);
	for (auto &[k, m] : s.maps)
		keys.insert(k);
	for (uint64_t k : keys) {
		auto io = o.maps.find(k), is = s.maps.find(k);

		if (is != s.maps.end()) {
			if (io != o.maps.end())
				v.emplace_back(k, bt(io->second), MERGE_HIDDEN);
			v.emplace_back(k, bt(is->second), MERGE_FROM_SNAPSHOT);
		} else {
			v.emplace_back(k, bt(io->second), MERGE_FROM_ORIGIN);
		}
	}
	return v;
}

struct walk_log {
	vector<step> steps;
	size_t stop_after = SIZE_MAX;
};

extern "C" int log_mapping(void *ctx, uint64_t key, uint64_t block_time, merge_source src)
{
	walk_log *l = static_cast<walk_log *>(ctx);

	l->steps.emplace_back(key, block_time, src);
	return l->steps.size() >= l->stop_after ? 42 : 0;
}

/* O (id 1) and S (id 2) overlapping in part, each over several leaves. */
struct Merge : ::testing::Test {
	temp_dir dir{ test_files::regular_dir() };
	string path = dir.file("md");
	pool_model m;
	md_ptr md;
	thin_device od{}, sd{};

	void build(uint64_t seed, uint64_t o_n, uint64_t s_n, uint64_t span)
	{
		mt19937_64 rng(seed);
		device &o = m.devs[1], &s = m.devs[2];
		pd_err err{};

		o.snap_time = 3;
		s.snap_time = 5;
		s.transaction_id = 8;
		random_mappings(o, rng, o_n, span, m.nr_data_blocks);
		random_mappings(s, rng, s_n, span, m.nr_data_blocks);
		write_pool(path, m);
		md = open_md(path);
		check(thin_find_device(md.get(), 1, &od, &err), err, "origin");
		check(thin_find_device(md.get(), 2, &sd, &err), err, "snapshot");
	}

	vector<step> walk(uint64_t o_root, uint64_t s_root, int *r, size_t stop_after = SIZE_MAX)
	{
		walk_log l;
		merge_visitor v = { log_mapping, &l };
		pd_err err{};

		l.stop_after = stop_after;
		*r = merge_walk(md->bm, o_root, s_root, &v, &err);
		return l.steps;
	}
};

using TreeCopy = Merge;

} // namespace

TEST_F(Merge, walk_reports_every_mapping_of_the_merge_in_key_order)
{
	int r;

	build(1, 3000, 800, 6000);
	vector<step> want = expected_walk(m.devs[1], m.devs[2]), got = walk(od.root, sd.root, &r);

	EXPECT_EQ(r, 0);
	ASSERT_EQ(got.size(), want.size());
	for (size_t i = 0; i < want.size(); i++)
		ASSERT_EQ(got[i], want[i]) << "step " << i;
}

TEST_F(Merge, walk_of_disjoint_and_empty_trees)
{
	int r;

	build(2, 500, 500, 1u << 30);	// almost surely no common key
	EXPECT_EQ(walk(od.root, sd.root, &r), expected_walk(m.devs[1], m.devs[2]));
	EXPECT_EQ(r, 0);

	// S over itself: every key hidden and taken again
	vector<step> self = walk(sd.root, sd.root, &r);
	EXPECT_EQ(self, expected_walk(m.devs[2], m.devs[2]));
	EXPECT_EQ(self.size(), 2 * m.devs[2].maps.size());
}

TEST_F(Merge, a_visitor_error_stops_the_walk_with_its_value)
{
	int r;

	build(3, 1000, 1000, 3000);
	vector<step> got = walk(od.root, sd.root, &r, 700);
	EXPECT_EQ(r, 42);
	EXPECT_EQ(got.size(), 700u);
}

TEST_F(Merge, count_agrees_with_the_model)
{
	merge_stats st;
	pd_err err{};
	uint64_t common = 0;
	device &o = m.devs[1], &s = m.devs[2];

	build(4, 2500, 1200, 4000);
	for (auto &[k, v] : s.maps)
		common += o.maps.count(k);
	ASSERT_GT(common, 0u);
	for (bool rebase : { false, true }) {
		ASSERT_EQ(merge_count(md->bm, &od, &sd, rebase, &st, &err), 0) << err.msg;
		EXPECT_EQ(st.from_snapshot, s.maps.size());
		EXPECT_EQ(st.hidden, common);
		EXPECT_EQ(st.kept_from_origin, o.maps.size() - common);
		EXPECT_EQ(st.merged_mapped, o.maps.size() + s.maps.size() - common);
		EXPECT_EQ(st.kept_id, rebase ? 2u : 1u);
		EXPECT_EQ(st.dropped_id, rebase ? 1u : 2u);
		EXPECT_EQ(st.snap_time, 5u);
	}
}

TEST_F(Merge, count_of_one_tree_under_two_ids_and_of_one_id)
{
	merge_stats st;
	pd_err err{};
	thin_device shared;

	build(5, 300, 200, 1000);
	shared = od;
	shared.dev_id = 2;
	shared.snapshotted_time = 1;
	ASSERT_EQ(merge_count(md->bm, &od, &shared, false, &st, &err), 0);
	EXPECT_EQ(st.from_snapshot, 300u);
	EXPECT_EQ(st.hidden, 300u);
	EXPECT_EQ(st.merged_mapped, 300u);
	EXPECT_EQ(st.kept_from_origin, 0u);

	ASSERT_EQ(merge_count(md->bm, &sd, &sd, true, &st, &err), 0);
	EXPECT_EQ(st.from_snapshot, 0u);
	EXPECT_EQ(st.kept_from_origin, 200u);
	EXPECT_EQ(st.merged_mapped, 200u);
	EXPECT_EQ(st.kept_id, 2u);
	EXPECT_EQ(st.dropped_id, 2u);
}

/*----------------------------------------------------------------
 * tree_copy_thin
 *--------------------------------------------------------------*/

namespace {

struct raw_counts {
	map<uint64_t, uint32_t> md, data;
	set<uint64_t> seen;
};

/* A reference to node b; its children are counted on the first visit only. */
void raw_count(const vector<uint8_t> &f, uint64_t b, bool bottom_values, bool top_values,
	       raw_counts &c)
{
	c.md[b]++;
	if (!c.seen.insert(b).second)
		return;
	raw_node n = read_raw(f, b);
	for (auto &v : n.values) {
		uint64_t x = le64_at(v.data());

		if (!n.leaf)
			raw_count(f, x, bottom_values, top_values, c);
		else if (top_values)
			raw_count(f, x, true, false, c);
		else if (bottom_values)
			c.data[x >> 24]++;
	}
}

} // namespace

TEST_F(TreeCopy, counts_and_copies_every_tree_block)
{
	pd_err err{};
	count_map *mdc = nullptr, *dc = nullptr, *mdc2 = nullptr, *dc2 = nullptr;
	io_engine *out = nullptr;
	string out_path = dir.file("out");

	// a third device whose tree becomes O's: a shared root, counted twice
	m.devs[3].maps[7] = mapping{ 7, 0 };
	build(6, 4000, 900, 9000);
	{
		io_engine *io = nullptr;
		pool *p = nullptr;

		md.reset();
		check(io_engine_open(path.c_str(), IO_ENGINE_SYNC,
				     IO_OPEN_WRITE | IO_OPEN_NO_DIRECT, &io, &err), err, "open");
		check(pool_open(io, 0, &p, &err), err, "pool_open");
		ASSERT_EQ(tm_inc(p->tm, od.root), 0);
		check(pool_set_root(p, 3, od.root, &err), err, "set root");
		check(pool_commit(p, &err), err, "commit");
		pool_destroy(p);
		io_engine_destroy(io);
		md = open_md(path);
	}
	vector<uint8_t> f = test_files::read_file(path);
	raw_counts want;
	raw_count(f, sb_details_root(f), false, false, want);
	raw_count(f, sb_mapping_root(f), false, true, want);

	ASSERT_EQ(cm_create(md->io->nr_blocks, &mdc), 0);
	ASSERT_EQ(cm_create(m.nr_data_blocks, &dc), 0);
	ASSERT_EQ(cm_create(md->io->nr_blocks, &mdc2), 0);
	ASSERT_EQ(cm_create(m.nr_data_blocks, &dc2), 0);
	test_files::write_file(out_path, vector<uint8_t>(f.size()));
	ASSERT_EQ(io_engine_open(out_path.c_str(), IO_ENGINE_SYNC,
				 IO_OPEN_WRITE | IO_OPEN_NO_DIRECT, &out, &err), 0);
	ASSERT_EQ(tree_copy_thin(md->bm, out, md->sb.device_details_root,
				 md->sb.data_mapping_root, mdc, dc, &err), 0) << err.msg;
	io_engine_destroy(out);
	// counting only gives the same counts
	ASSERT_EQ(tree_copy_thin(md->bm, nullptr, md->sb.device_details_root,
				 md->sb.data_mapping_root, mdc2, dc2, &err), 0) << err.msg;

	vector<uint8_t> copy = test_files::read_file(out_path);
	ASSERT_EQ(copy.size(), f.size());
	for (uint64_t b = 0; b < cm_nr_blocks(mdc); b++) {
		uint32_t n = want.md.count(b) ? want.md[b] : 0;
		bool same = !memcmp(copy.data() + b * MD_BLOCK_SIZE, f.data() + b * MD_BLOCK_SIZE,
				    MD_BLOCK_SIZE);
		bool zero = all_of(copy.begin() + b * MD_BLOCK_SIZE,
				   copy.begin() + (b + 1) * MD_BLOCK_SIZE,
				   [](uint8_t x) { return !x; });

		ASSERT_EQ(cm_get(mdc, b), n) << "metadata block " << b;
		ASSERT_EQ(cm_get(mdc2, b), n) << "metadata block " << b << " (counting only)";
		if (n)
			ASSERT_TRUE(same) << "block " << b << " not copied";
		else
			ASSERT_TRUE(zero) << "block " << b << " copied but not in a tree";
	}
	for (uint64_t b = 0; b < m.nr_data_blocks; b++) {
		uint32_t n = want.data.count(b) ? want.data[b] : 0;

		ASSERT_EQ(cm_get(dc, b), n) << "data block " << b;
		ASSERT_EQ(cm_get(dc2, b), n) << "data block " << b << " (counting only)";
	}
	cm_destroy(mdc);
	cm_destroy(dc);
	cm_destroy(mdc2);
	cm_destroy(dc2);
}

TEST_F(TreeCopy, refuses_an_output_too_small)
{
	pd_err err{};
	count_map *mdc = nullptr, *dc = nullptr;
	io_engine *out = nullptr;
	string out_path = dir.file("out");

	build(7, 2000, 10, 5000);
	test_files::write_file(out_path, vector<uint8_t>(8 * MD_BLOCK_SIZE));
	ASSERT_EQ(io_engine_open(out_path.c_str(), IO_ENGINE_SYNC,
				 IO_OPEN_WRITE | IO_OPEN_NO_DIRECT, &out, &err), 0);
	ASSERT_EQ(cm_create(md->io->nr_blocks, &mdc), 0);
	ASSERT_EQ(cm_create(m.nr_data_blocks, &dc), 0);
	EXPECT_EQ(tree_copy_thin(md->bm, out, md->sb.device_details_root,
				 md->sb.data_mapping_root, mdc, dc, &err), -ENOSPC);
	EXPECT_NE(string(err.msg).find("the output is too small"), string::npos) << err.msg;
	io_engine_destroy(out);
	cm_destroy(mdc);
	cm_destroy(dc);
}
