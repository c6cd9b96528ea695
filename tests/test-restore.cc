/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The restore emitter (thin-provisioning/restore.c) and the device
 * iterator (thin_dev_iter, metadata.c): a model pool is written through
 * the emitter, then read back from the file's bytes by the raw node
 * reader of thin-model.h and compared with the model: devices, details,
 * every mapping, the data space map's counts (one per mapping), and
 * shared sections (<def>/<ref>) spliced into each device that refers to
 * them.  thin_dev_iter must list the model's devices in id order with
 * their details, and name the device whose details or mapping tree is
 * missing.
 */
#include <gtest/gtest.h>

extern "C" {
#include "persistent-data/count-map.h"
#include "persistent-data/space-map-disk.h"
#include "thin-provisioning/metadata.h"
#include "thin-provisioning/pool.h"
#include "thin-provisioning/thin-disk.h"
}

#include "test-files.h"
#include "thin-model.h"

using namespace std;
using namespace thin_model;
using test_files::temp_dir;

namespace {

/* Every entry of the tree at root, decoded from the file's bytes. */
void raw_entries(const vector<uint8_t> &f, uint64_t root, map<uint64_t, vector<uint8_t>> &out)
{
	raw_node n = read_raw(f, root);

	for (size_t i = 0; i < n.keys.size(); i++) {
		if (n.leaf)
			out[n.keys[i]] = n.values[i];
		else
			raw_entries(f, le64_at(n.values[i].data()), out);
	}
}

/* The pool in file, decoded without the library's readers. */
pool_model raw_pool(const string &path)
{
	vector<uint8_t> f = test_files::read_file(path);
	map<uint64_t, vector<uint8_t>> details, top;
	pool_model m;

	raw_entries(f, sb_details_root(f), details);
	raw_entries(f, sb_mapping_root(f), top);
	for (auto &[id, v] : details) {
		device &d = m.devs[id];
		map<uint64_t, vector<uint8_t>> maps;

		EXPECT_EQ(v.size(), 24u);
		d.transaction_id = le64_at(v.data() + 8);
		d.creation_time = le32_at(v.data() + 16);
		d.snap_time = le32_at(v.data() + 20);
		if (!top.count(id))
			continue;
		raw_entries(f, le64_at(top[id].data()), maps);
		for (auto &[k, bt] : maps) {
			uint64_t x = le64_at(bt.data());

			d.maps[k] = mapping{ x >> 24, uint32_t(x & 0xffffff) };
		}
		EXPECT_EQ(le64_at(v.data()), d.maps.size()) << "mapped_blocks of device " << id;
	}
	EXPECT_EQ(details.size(), top.size());
	return m;
}

pool_model random_pool(uint64_t seed, unsigned nr_devs, uint64_t per_dev)
{
	mt19937_64 rng(seed);
	pool_model m;

	for (unsigned i = 0; i < nr_devs; i++) {
		device &d = m.devs[rng() % 1000];

		d.transaction_id = rng() % 100;
		d.creation_time = uint32_t(rng() % 9);
		d.snap_time = uint32_t(rng() % 9);
		random_mappings(d, rng, per_dev / (i + 1), per_dev * 3, m.nr_data_blocks);
		// and runs, which reach the emitter as one call each
		add_run(d, per_dev * 3 + i * 1000, rng() % (m.nr_data_blocks - 1000), 1 + rng() % 700, 1);
	}
	return m;
}

} // namespace

TEST(Restore, writes_every_device_detail_and_mapping)
{
	temp_dir dir(test_files::regular_dir());
	string path = dir.file("md");
	pool_model m = random_pool(1, 6, 3000);

	write_pool(path, m);
	pool_model back = raw_pool(path);
	ASSERT_EQ(back.devs.size(), m.devs.size());
	for (auto &[id, d] : m.devs) {
		ASSERT_TRUE(back.devs.count(id)) << "device " << id;
		EXPECT_TRUE(back.devs[id] == d) << "device " << id;
	}
}

TEST(Restore, data_space_map_counts_one_reference_per_mapping)
{
	temp_dir dir(test_files::regular_dir());
	string path = dir.file("md");
	pool_model m = random_pool(2, 4, 2000);
	map<uint64_t, uint32_t> expect;

	for (auto &[id, d] : m.devs)
		for (auto &[k, v] : d.maps)
			expect[v.data]++;
	write_pool(path, m);
	md_ptr md = open_md(path);
	count_map *cm = nullptr;
	sm_load_hooks hooks{};
	pd_err err{};

	ASSERT_EQ(cm_create(md->data_sm.nr_blocks, &cm), 0);
	ASSERT_EQ(sm_disk_load(md->bm, &md->data_sm, false, cm, &hooks, &err), 0) << err.msg;
	for (uint64_t b = 0; b < m.nr_data_blocks; b++) {
		uint32_t want = expect.count(b) ? expect[b] : 0;

		ASSERT_EQ(cm_get(cm, b), want) << "data block " << b;
	}
	cm_destroy(cm);
}

TEST(Restore, a_shared_section_is_spliced_into_each_device_that_refers_to_it)
{
	temp_dir dir(test_files::regular_dir());
	string path = dir.file("md");
	test_files::engine_ptr owner;
	pd_err err{};
	pool_model m;
	mt19937_64 rng(3);
	device def;

	// the section: origins 1000..2999 (several leaves); devices add their own around it
	for (uint64_t k = 1000; k < 3000; k++)
		def.maps[k] = mapping{ rng() % m.nr_data_blocks, 1 };
	for (uint64_t id : { 1, 2 }) {
		device &d = m.devs[id];

		d.transaction_id = id;
		for (uint64_t k = 0; k < 300; k++)
			d.maps[k * 3 + id] = mapping{ rng() % m.nr_data_blocks, 2 };
		for (uint64_t k = 5000; k < 5100; k += id)
			d.maps[k] = mapping{ rng() % m.nr_data_blocks, 3 };
	}
	emitter *e = restore_to(path, 4096, owner, err);
	emit_superblock sb = sb_of(m);
	ASSERT_EQ(e->ops->begin_superblock(e, &sb), 0) << err.msg;
	ASSERT_EQ(e->ops->begin_def(e, "shared"), 0) << err.msg;
	emit_mappings(e, def);
	ASSERT_EQ(e->ops->end_def(e), 0) << err.msg;
	for (auto &[id, d] : m.devs) {
		emit_device ed = dev_of(id, d);
		device before, after;

		for (auto &[k, v] : d.maps)
			(k < 1000 ? before : after).maps[k] = v;
		ASSERT_EQ(e->ops->begin_device(e, &ed), 0) << err.msg;
		emit_mappings(e, before);
		ASSERT_EQ(e->ops->ref(e, "shared"), 0) << err.msg;
		emit_mappings(e, after);
		ASSERT_EQ(e->ops->end_device(e), 0) << err.msg;
	}
	ASSERT_EQ(e->ops->ref(e, "no such"), -EINVAL);
	ASSERT_EQ(e->ops->end_superblock(e), 0) << err.msg;
	emitter_destroy(e);
	owner.reset();

	for (auto &[id, d] : m.devs)
		d.maps.insert(def.maps.begin(), def.maps.end());
	pool_model back = raw_pool(path);
	ASSERT_EQ(back.devs.size(), 2u);
	for (auto &[id, d] : m.devs)
		EXPECT_TRUE(back.devs[id] == d) << "device " << id;
}

TEST(Restore, a_mapping_beyond_the_data_device_is_refused)
{
	temp_dir dir(test_files::regular_dir());
	string path = dir.file("md");
	test_files::engine_ptr owner;
	pd_err err{};
	pool_model m;
	device d;

	m.nr_data_blocks = 100;
	emitter *e = restore_to(path, 1024, owner, err);
	emit_superblock sb = sb_of(m);
	emit_device ed = dev_of(0, d);
	ASSERT_EQ(e->ops->begin_superblock(e, &sb), 0);
	ASSERT_EQ(e->ops->begin_device(e, &ed), 0);
	EXPECT_EQ(e->ops->map_run(e, 0, 90, 10, 0), 0);		// 90..99: the last ten
	EXPECT_EQ(e->ops->map_run(e, 10, 95, 6, 0), -EINVAL);	// 95..100
	EXPECT_STREQ(err.msg, "mapping beyond end of data device (100 >= 100)");
	emitter_destroy(e);
}

TEST(DevIter, lists_the_devices_in_id_order_with_their_details)
{
	temp_dir dir(test_files::regular_dir());
	string path = dir.file("md");
	pool_model m = random_pool(4, 40, 30);
	thin_dev_iter *it = nullptr;
	thin_device dev;
	pd_err err{};
	auto want = m.devs.begin();
	int r;

	write_pool(path, m);
	md_ptr md = open_md(path);
	ASSERT_EQ(thin_dev_iter_create(md.get(), &it, &err), 0) << err.msg;
	while (!(r = thin_dev_iter_next(it, &dev, &err))) {
		ASSERT_NE(want, m.devs.end()) << "device " << dev.dev_id << " beyond the model";
		EXPECT_EQ(dev.dev_id, want->first);
		EXPECT_EQ(dev.mapped_blocks, want->second.maps.size());
		EXPECT_EQ(dev.transaction_id, want->second.transaction_id);
		EXPECT_EQ(dev.creation_time, want->second.creation_time);
		EXPECT_EQ(dev.snapshotted_time, want->second.snap_time);
		++want;
	}
	EXPECT_EQ(r, -ENODATA);
	EXPECT_EQ(want, m.devs.end());
	EXPECT_EQ(thin_dev_iter_next(it, &dev, &err), -ENODATA);
	thin_dev_iter_destroy(it);
}

/* A pool whose trees disagree: details without a tree, or a tree without details. */
static string iter_error(bool details_only)
{
	temp_dir dir(test_files::regular_dir());
	string path = dir.file("md");
	pool_model m;
	io_engine *io = nullptr;
	pool *p = nullptr;
	thin_dev_iter *it = nullptr;
	thin_device dev{};
	pd_err err{};
	uint64_t root;
	int r;

	for (uint64_t id : { 1, 3, 5 })
		m.devs[id].maps[id] = mapping{ id, 0 };
	write_pool(path, m);
	check(io_engine_open(path.c_str(), IO_ENGINE_SYNC, IO_OPEN_WRITE | IO_OPEN_NO_DIRECT,
			     &io, &err), err, "open");
	check(pool_open(io, 0, &p, &err), err, "pool_open");
	if (details_only) {
		dev.dev_id = 4;
		check(pool_set_details(p, &dev, &err), err, "set details");
	} else {
		// device 3's tree moves to id 4: 4 has a tree, no details; 3 the reverse
		check(pool_take_root(p, 3, &root, &err), err, "take");
		check(pool_set_root(p, 4, root, &err), err, "set root");
		check(pool_remove_details(p, 3, &err), err, "remove details");
	}
	check(pool_commit(p, &err), err, "commit");
	pool_destroy(p);
	io_engine_destroy(io);

	md_ptr md = open_md(path);
	check(thin_dev_iter_create(md.get(), &it, &err), err, "iter");
	vector<uint64_t> seen;
	while (!(r = thin_dev_iter_next(it, &dev, &err)))
		seen.push_back(dev.dev_id);
	EXPECT_EQ(r, -EILSEQ);
	// the devices before the first disagreement come out whole
	EXPECT_EQ(seen, (details_only ? vector<uint64_t>{ 1, 3 } : vector<uint64_t>{ 1 }));
	thin_dev_iter_destroy(it);
	return r ? err.msg : "no error";
}

TEST(DevIter, names_a_device_with_details_but_no_mapping_tree)
{
	EXPECT_EQ(iter_error(true), "no mappings for device 4");
}

TEST(DevIter, names_a_device_with_a_mapping_tree_but_no_details)
{
	EXPECT_EQ(iter_error(false),
		  "mappings present for device 4, but it isn't present in device tree");
}
