/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * thin_salvage (thin-provisioning/salvage.c): a model pool is written,
 * damaged on purpose, salvaged into a recording emitter, and what was
 * emitted is compared with the model less what the damage destroyed: a
 * zeroed leaf loses exactly its own mappings (read from the file's bytes
 * before the damage); a zeroed superblock loses nothing, its values
 * rebuilt as salvage.h says (highest mapped block + 1, highest device
 * transaction + 1, the latest time in use); a smaller data device drops
 * the mappings beyond it.
 */
#include <gtest/gtest.h>

extern "C" {
#include "persistent-data/block-manager.h"
#include "thin-provisioning/salvage.h"
}

#include "test-files.h"
#include "thin-model.h"

#include <algorithm>

using namespace std;
using namespace thin_model;
using test_files::temp_dir;

namespace {

void report_line(void *ctx, const char *msg)
{
	static_cast<vector<string> *>(ctx)->push_back(msg);
}

struct salvage_result {
	int r;
	string msg;
	recording rec;
	salvage_stats st{};
	vector<string> reports;
};

void salvage(const string &path, const sb_overrides &ov, salvage_result &res)
{
	io_engine *io = nullptr;
	bm *b = nullptr;
	pd_err err{};
	salvage_opts o{};
	recorder r;

	check(io_engine_open(path.c_str(), IO_ENGINE_SYNC, IO_OPEN_NO_DIRECT, &io, &err), err,
	      "open");
	test_files::engine_ptr owner(io);
	check(bm_create(io, 0, &b, &err), err, "bm");
	o.ov = ov;
	o.report = report_line;
	o.ctx = &res.reports;
	res.r = thin_salvage(b, &o, recorder_init(r, res.rec), &res.st, &err);
	res.msg = res.r ? err.msg : "";
	bm_destroy(b);
}

pool_model three_devices(uint64_t seed)
{
	mt19937_64 rng(seed);
	pool_model m;

	m.nr_data_blocks = 50000;
	for (uint64_t id : { 0, 4, 9 }) {
		device &d = m.devs[id];

		d.transaction_id = id + 1;
		d.creation_time = uint32_t(id);
		d.snap_time = uint32_t(id + 1);
		random_mappings(d, rng, 1500 + 200 * id, 20000, m.nr_data_blocks);
	}
	return m;
}

void expect_same_devices(const pool_model &want, const recording &got)
{
	ASSERT_EQ(got.m.devs.size(), want.devs.size());
	for (auto &[id, d] : want.devs) {
		auto it = got.m.devs.find(id);

		ASSERT_NE(it, got.m.devs.end()) << "device " << id;
		EXPECT_EQ(it->second.transaction_id, d.transaction_id) << "device " << id;
		EXPECT_EQ(it->second.creation_time, d.creation_time) << "device " << id;
		EXPECT_EQ(it->second.snap_time, d.snap_time) << "device " << id;
		EXPECT_TRUE(it->second.maps == d.maps) << "device " << id << ": "
			<< it->second.maps.size() << " mappings, " << d.maps.size() << " expected";
	}
}

void zero_block(const string &path, uint64_t b)
{
	vector<uint8_t> f = test_files::read_file(path);

	fill(f.begin() + b * MD_BLOCK_SIZE, f.begin() + (b + 1) * MD_BLOCK_SIZE, 0);
	test_files::write_file(path, f);
}

} // namespace

TEST(Salvage, intact_metadata_comes_out_whole)
{
	temp_dir dir(test_files::regular_dir());
	string path = dir.file("md");
	pool_model m = three_devices(1);
	salvage_result res;
	uint64_t total = 0;

	write_pool(path, m);
	salvage(path, sb_overrides{}, res);
	ASSERT_EQ(res.r, 0) << res.msg;
	expect_same_devices(m, res.rec);
	EXPECT_EQ(res.rec.order, (vector<uint64_t>{ 0, 4, 9 }));
	EXPECT_TRUE(res.rec.ended);
	EXPECT_EQ(res.rec.m.nr_data_blocks, m.nr_data_blocks);
	EXPECT_EQ(res.rec.m.data_block_size, m.data_block_size);
	EXPECT_EQ(res.rec.m.trans_id, m.trans_id);
	EXPECT_EQ(res.rec.m.time, m.time);
	for (auto &[id, d] : m.devs)
		total += d.maps.size();
	EXPECT_EQ(res.st.devices, 3u);
	EXPECT_EQ(res.st.mappings, total);
	EXPECT_EQ(res.st.lost_ranges, 0u);
	EXPECT_FALSE(res.st.used_scan);
	EXPECT_TRUE(res.reports.empty()) << res.reports.front();
}

TEST(Salvage, a_damaged_leaf_loses_its_own_mappings_only)
{
	temp_dir dir(test_files::regular_dir());
	string path = dir.file("md");
	pool_model m = three_devices(2);
	salvage_result res;

	write_pool(path, m);
	// device 4's tree: its root is internal (1,300 mappings); zero its second leaf
	vector<uint8_t> f = test_files::read_file(path);
	raw_node top = read_raw(f, sb_mapping_root(f));
	auto pos = find(top.keys.begin(), top.keys.end(), 4u);
	ASSERT_NE(pos, top.keys.end());
	raw_node root = read_raw(f, le64_at(top.values[size_t(pos - top.keys.begin())].data()));
	ASSERT_FALSE(root.leaf);
	uint64_t victim = le64_at(root.values[1].data());
	raw_node leaf = read_raw(f, victim);
	ASSERT_TRUE(leaf.leaf);
	ASSERT_GT(leaf.keys.size(), 0u);
	for (uint64_t k : leaf.keys)
		m.devs[4].maps.erase(k);
	zero_block(path, victim);

	salvage(path, sb_overrides{}, res);
	ASSERT_EQ(res.r, 0) << res.msg;
	expect_same_devices(m, res.rec);
	EXPECT_EQ(res.st.lost_ranges, 1u);
	EXPECT_EQ(res.st.devices, 3u);
	bool named = any_of(res.reports.begin(), res.reports.end(), [](const string &s) {
		return s.rfind("device 4: mappings [", 0) == 0 && s.find("lost") != string::npos;
	});
	EXPECT_TRUE(named) << "no report of device 4's lost range";
}

TEST(Salvage, a_lost_superblock_is_rebuilt_from_the_trees_found_by_scanning)
{
	temp_dir dir(test_files::regular_dir());
	string path = dir.file("md");
	pool_model m = three_devices(3);
	salvage_result res;
	sb_overrides ov{};
	uint64_t data_end = 0;
	uint32_t time = 0;

	// the latest time is a mapping's, later than any device's
	m.devs[4].maps[100000] = mapping{ 77, 30 };
	write_pool(path, m);
	zero_block(path, 0);
	for (auto &[id, d] : m.devs) {
		time = max({ time, d.creation_time, d.snap_time });
		for (auto &[k, v] : d.maps) {
			data_end = max(data_end, v.data + 1);
			time = max(time, v.time);
		}
	}
	ov.set_data_block_size = true;
	ov.data_block_size = 256;
	salvage(path, ov, res);
	ASSERT_EQ(res.r, 0) << res.msg;
	expect_same_devices(m, res.rec);
	EXPECT_TRUE(res.st.used_scan);
	EXPECT_EQ(res.rec.m.data_block_size, 256u);
	EXPECT_EQ(res.rec.m.nr_data_blocks, data_end);
	EXPECT_EQ(res.rec.m.trans_id, 9u + 1 + 1);	// device 9's transaction is 10
	EXPECT_EQ(res.rec.m.time, time);
}

TEST(Salvage, a_lost_superblock_without_a_data_block_size_is_refused)
{
	temp_dir dir(test_files::regular_dir());
	string path = dir.file("md");
	salvage_result res;

	write_pool(path, three_devices(4));
	zero_block(path, 0);
	salvage(path, sb_overrides{}, res);
	EXPECT_EQ(res.r, -EINVAL);
	EXPECT_NE(res.msg.find("give --data-block-size"), string::npos) << res.msg;
}

TEST(Salvage, mappings_beyond_a_smaller_data_device_are_dropped)
{
	temp_dir dir(test_files::regular_dir());
	string path = dir.file("md");
	pool_model m = three_devices(5);
	salvage_result res;
	sb_overrides ov{};
	uint64_t dropped = 0;

	// the last block kept and the first dropped
	m.devs[0].maps[30000] = mapping{ 19999, 0 };
	m.devs[0].maps[30001] = mapping{ 20000, 0 };
	write_pool(path, m);
	ov.set_nr_data_blocks = true;
	ov.nr_data_blocks = 20000;
	for (auto &[id, d] : m.devs)
		for (auto it = d.maps.begin(); it != d.maps.end();)
			if (it->second.data >= 20000) {
				it = d.maps.erase(it);
				dropped++;
			} else {
				++it;
			}
	ASSERT_GT(dropped, 0u);
	salvage(path, ov, res);
	ASSERT_EQ(res.r, 0) << res.msg;
	expect_same_devices(m, res.rec);
	EXPECT_EQ(res.st.dropped_mappings, dropped);
	EXPECT_EQ(res.rec.m.nr_data_blocks, 20000u);
}
