// SPDX-License-Identifier: GPL-3.0-or-later
//
// The on-disk data space map when a transaction touches more bitmaps than
// it keeps in memory: changed bitmaps are written early to their new
// blocks and read back, clean ones dropped; counts must come out exact
// across commits and reopening, and the allocator must still never hand
// out a block in use now or at the last commit.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <unistd.h>

extern "C" {
#include "persistent-data/io-engine.h"
#include "persistent-data/space-map-disk.h"
#include "persistent-data/space-map.h"
#include "thin-provisioning/pool.h"
}

namespace {

const uint64_t nr_bitmaps = 600;	// well past the in-memory limit (256)
const uint64_t nr_data = nr_bitmaps * SM_ENTRIES_PER_BITMAP;

struct temp_file {
	std::string path;
	explicit temp_file(uint64_t size)
	{
		char tmpl[] = "/tmp/thinp-smdisk-XXXXXX";
		int fd = mkstemp(tmpl);

		path = tmpl;
		EXPECT_GE(fd, 0);
		EXPECT_EQ(0, ftruncate(fd, (off_t)size));
		close(fd);
	}
	~temp_file() { unlink(path.c_str()); }
};

struct open_pool {
	io_engine *io = nullptr;
	pool *p = nullptr;

	open_pool(const std::string &path, bool create)
	{
		pd_err err = {};

		EXPECT_EQ(0, io_engine_open(path.c_str(), IO_ENGINE_SYNC,
					    IO_OPEN_WRITE | IO_OPEN_NO_DIRECT, &io, &err)) << err.msg;
		if (create) {
			pool_create_opts o = {};

			o.nr_data_blocks = nr_data;
			o.data_block_size = 128;
			EXPECT_EQ(0, pool_create(io, &o, 0, &p, &err)) << err.msg;
		} else {
			EXPECT_EQ(0, pool_open(io, 0, &p, &err)) << err.msg;
		}
	}
	~open_pool()
	{
		pool_destroy(p);
		io_engine_destroy(io);
	}
	void commit()
	{
		pd_err err = {};

		ASSERT_EQ(0, pool_commit(p, &err)) << err.msg;
	}
};

void expect_counts(space_map *sm, const std::map<uint64_t, uint32_t> &model)
{
	uint64_t allocated = 0;

	for (auto &kv : model) {
		uint32_t c = 0;

		ASSERT_EQ(0, sm_get_count(sm, kv.first, &c));
		EXPECT_EQ(kv.second, c) << "block " << kv.first;
		allocated += kv.second != 0;
	}
	EXPECT_EQ(nr_data - allocated, sm_nr_free(sm));
}

} // namespace

TEST(space_map_disk, many_bitmaps_in_one_transaction_stay_exact)
{
	temp_file f(64ull << 20);
	std::map<uint64_t, uint32_t> model;
	std::mt19937_64 rng(7);

	{
		open_pool op(f.path, true);

		// touch every bitmap several times, in an order that cycles
		// through them so that each is dropped and read back
		for (int round = 0; round < 4; round++)
			for (uint64_t j = 0; j < nr_bitmaps; j++) {
				uint64_t b = j * SM_ENTRIES_PER_BITMAP + rng() % SM_ENTRIES_PER_BITMAP;
				int times = 1 + (int)(rng() % 4);	// counts 1..4, some into the ref-count tree

				for (int t = 0; t < times; t++)
					ASSERT_EQ(0, sm_inc(op.p->data_sm, b));
				model[b] += times;
			}
		expect_counts(op.p->data_sm, model);
		op.commit();
		expect_counts(op.p->data_sm, model);
	}
	{
		open_pool op(f.path, false);
		std::map<uint64_t, uint32_t> freed;

		expect_counts(op.p->data_sm, model);
		// second transaction: drop some to 0, lower others
		for (auto &kv : model) {
			if (rng() % 3 == 0) {
				while (kv.second) {
					ASSERT_EQ(0, sm_dec(op.p->data_sm, kv.first));
					kv.second--;
				}
				freed[kv.first] = 1;
			} else if (kv.second > 1) {
				ASSERT_EQ(0, sm_dec(op.p->data_sm, kv.first));
				kv.second--;
			}
		}
		// allocations: never a block in use, never one freed in this transaction
		for (int i = 0; i < 2000; i++) {
			uint64_t b;

			ASSERT_EQ(0, sm_new_block(op.p->data_sm, &b));
			ASSERT_LT(b, nr_data);
			EXPECT_FALSE(freed.count(b)) << "block " << b << " was freed in this transaction";
			EXPECT_TRUE(!model.count(b) || model[b] == 0) << "block " << b << " is in use";
			model[b] = 1;
		}
		expect_counts(op.p->data_sm, model);
		op.commit();
	}
	{
		open_pool op(f.path, false);

		expect_counts(op.p->data_sm, model);
	}
	// the metadata space map and every structure check clean; the data
	// counts above belong to no mapping, so they show as leaks (non-fatal)
	const char *dir = getenv("THINP_BUILD_DIR");
	std::string check = std::string(dir ? dir : "/tmp/build") + "/thin_check";

	if (access(check.c_str(), X_OK) == 0) {
		EXPECT_EQ(0, system((check + " -q --ignore-non-fatal-errors " + f.path).c_str()));
		EXPECT_NE(0, system((check + " -q " + f.path).c_str()));
	}
}
