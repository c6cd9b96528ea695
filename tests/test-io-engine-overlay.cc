/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The copy-on-write overlay engine (io-engine-overlay.h), against its
 * header: reads from lower until a block is written, writes to upper,
 * block 0 held until io_overlay_finish(), which copies the needed
 * blocks that were never written, flushes, writes block 0 and flushes.
 *
 * Every expectation comes from a model kept here (lower's content, the
 * writes made, the needed counts), compared with what the overlay reads
 * and with the files' bytes; the overlay is never asked what it should
 * have done.  Lower's file is compared with a copy taken before each
 * test, and is opened writable so that a stray write would land.  The
 * ordering of finish is observed through the fault engine: a cut after
 * N writes, for N around every interesting point.
 */
#include <gtest/gtest.h>

extern "C" {
#include "persistent-data/count-map.h"
#include "persistent-data/io-engine.h"
#include "persistent-data/io-engine-fault.h"
#include "persistent-data/io-engine-overlay.h"
}

#include "test-files.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

using namespace std;
using namespace test_files;

namespace {

constexpr uint64_t nr_test_blocks = 600;	/* more than two batches */
constexpr size_t block_size = MD_BLOCK_SIZE;

//----------------------------------------------------------------
// Helpers

struct cm_deleter {
	void operator()(count_map *cm) const { cm_destroy(cm); }
};
using cm_ptr = unique_ptr<count_map, cm_deleter>;

// Content for block b written through the overlay in generation gen:
// random, stamped with both, so that every write is told apart from
// lower's content and from other writes of the same block.
vector<uint8_t> fresh_block(uint64_t b, uint64_t gen)
{
	vector<uint8_t> v = random_content(1, b * 0x9e3779b97f4a7c15ull ^ (gen + 1));

	memcpy(v.data(), &b, sizeof(b));
	memcpy(v.data() + sizeof(b), &gen, sizeof(gen));
	return v;
}

engine_ptr open_rw(const string &path)
{
	pd_err err{};
	io_engine *e = nullptr;

	if (io_engine_open(path.c_str(), IO_ENGINE_SYNC, IO_OPEN_WRITE | IO_OPEN_NO_DIRECT,
			   &e, &err))
		throw runtime_error("cannot open " + path + ": " + err.msg);
	return engine_ptr(e);
}

// n blocks in [lo, hi), distinct, in random order.
vector<uint64_t> distinct_blocks(size_t n, uint64_t lo, uint64_t hi, mt19937_64 &rng)
{
	vector<uint64_t> all(hi - lo);

	iota(all.begin(), all.end(), lo);
	shuffle(all.begin(), all.end(), rng);
	all.resize(min(n, all.size()));
	return all;
}

// n blocks in [lo, hi), duplicates allowed.
vector<uint64_t> any_blocks(size_t n, uint64_t lo, uint64_t hi, mt19937_64 &rng)
{
	uniform_int_distribution<uint64_t> pick(lo, hi - 1);
	vector<uint64_t> v(n);

	for (auto &b : v)
		b = pick(rng);
	return v;
}

const uint8_t *block_of(const vector<uint8_t> &v, uint64_t b)
{
	return v.data() + b * block_size;
}

bool is_zero(const uint8_t *p)
{
	return all_of(p, p + block_size, [](uint8_t c) { return c == 0; });
}

void record_progress(void *ctx, uint64_t done)
{
	static_cast<vector<uint64_t> *>(ctx)->push_back(done);
}

// Progress reports never go back, never pass the total, and end on it.
void expect_progress(const vector<uint64_t> &calls, uint64_t copies)
{
	for (size_t i = 0; i < calls.size(); i++) {
		EXPECT_LE(calls[i], copies) << "report " << i;
		if (i) {
			EXPECT_GE(calls[i], calls[i - 1]) << "report " << i;
		}
	}
	if (copies) {
		ASSERT_FALSE(calls.empty()) << "no progress reported";
		EXPECT_EQ(copies, calls.back());
	}
}

//----------------------------------------------------------------
// Fixture: lower (random), upper (zero), the overlay, and a model of
// what was written through it.

class IoEngineOverlayTests : public ::testing::Test {
protected:
	void SetUp() override
	{
		dir_ = make_unique<temp_dir>(regular_dir());
		lower_path_ = dir_->file("lower");
		lower_copy_ = dir_->file("lower.orig");
		upper_path_ = dir_->file("upper");
	}

	void TearDown() override
	{
		close_engines();
		lower_.reset();
		if (nr_lower_) {
			EXPECT_EQ(read_file(lower_copy_), read_file(lower_path_))
				<< "lower's file was written";
		}
	}

	void close_engines()
	{
		/* the overlay owns neither engine: it goes first */
		overlay_.reset();
		fault_.reset();
		upper_.reset();
	}

	// Lower's file, a copy of it, its engine, then a fresh upper.
	void start(uint64_t nr_lower, uint64_t nr_upper, bool fault = false,
		   unsigned fault_flags = 0)
	{
		nr_lower_ = nr_lower;
		lower_content_ = random_content(nr_lower, 0x6c6f776572ull);
		write_file(lower_path_, lower_content_);
		filesystem::copy_file(lower_path_, lower_copy_,
				      filesystem::copy_options::overwrite_existing);
		lower_ = open_rw(lower_path_);
		start_upper(nr_upper, fault, fault_flags);
	}

	// A zeroed upper file and a new overlay over lower and it (through
	// a fault engine that never cuts until told, if asked); the model
	// forgets every write.
	void start_upper(uint64_t nr_upper, bool fault = false, unsigned fault_flags = 0)
	{
		pd_err err{};
		io_engine *o = nullptr, *f = nullptr;

		close_engines();
		nr_upper_ = nr_upper;
		write_file(upper_path_, vector<uint8_t>(nr_upper * block_size, 0));
		written_.assign(nr_upper, false);
		written_content_.assign(nr_upper * block_size, 0);
		upper_ = open_rw(upper_path_);
		if (fault) {
			ASSERT_EQ(0, io_engine_fault_create(upper_.get(), UINT64_MAX, &f));
			fault_.reset(f);
			ASSERT_EQ(0, io_engine_fault_set_flags(f, fault_flags));
		}
		ASSERT_EQ(0, io_overlay_create(lower_.get(), fault ? f : upper_.get(), &o, &err))
			<< err.msg;
		overlay_.reset(o);
	}

	// Writes the blocks (distinct, in range) through the overlay in one
	// batch, each with fresh content of generation gen.
	void write_blocks(const vector<uint64_t> &blocks, uint64_t gen)
	{
		batch bt(blocks);

		for (unsigned i = 0; i < bt.size(); i++)
			memcpy(bt.data(i), fresh_block(blocks[i], gen).data(), block_size);
		ASSERT_EQ(0, io_write_many(overlay_.get(), bt.reqs.data(), bt.size()));
		for (unsigned i = 0; i < bt.size(); i++) {
			ASSERT_EQ(0, bt.reqs[i].result) << "block " << blocks[i];
			written_[blocks[i]] = true;
			memcpy(written_content_.data() + blocks[i] * block_size, bt.data(i),
			       block_size);
		}
	}

	// What a read of b through the overlay must give, or nullptr where
	// it must fail with -EINVAL (past the overlay's end, or past lower's
	// end and never written).
	const uint8_t *expected_read(uint64_t b) const
	{
		if (b >= nr_upper_)
			return nullptr;
		if (written_[b])
			return block_of(written_content_, b);
		if (b < nr_lower_)
			return block_of(lower_content_, b);
		return nullptr;
	}

	// Reads the blocks through the overlay in one call and checks every
	// request against the model.
	void check_reads(const vector<uint64_t> &blocks)
	{
		batch bt(blocks);
		bool any_bad = false;
		int r = io_read_many(overlay_.get(), bt.reqs.data(), bt.size());

		for (unsigned i = 0; i < bt.size(); i++) {
			const uint8_t *want = expected_read(blocks[i]);

			if (!want) {
				any_bad = true;
				EXPECT_EQ(-EINVAL, bt.reqs[i].result)
					<< "request " << i << ", block " << blocks[i];
				continue;
			}
			EXPECT_EQ(0, bt.reqs[i].result)
				<< "request " << i << ", block " << blocks[i];
			EXPECT_EQ(0, memcmp(bt.data(i), want, block_size))
				<< "request " << i << ", block " << blocks[i]
				<< (written_[blocks[i]] ? " (written)" : " (from lower)");
		}
		/* io-engine.h: -EIO or the first request's error */
		if (any_bad) {
			EXPECT_TRUE(r == -EIO || r == -EINVAL) << r;
		} else {
			EXPECT_EQ(0, r);
		}
	}

	void check_reads_all()
	{
		vector<uint64_t> all(nr_upper_);

		iota(all.begin(), all.end(), 0);
		check_reads(all);
	}

	// Calls finish with a count map built from needed (counts as given).
	int finish(const vector<uint32_t> &needed, vector<uint64_t> *progress, pd_err *err)
	{
		count_map *cm = nullptr;

		if (cm_create(needed.size(), &cm))
			throw bad_alloc();
		cm_ptr holder(cm);
		for (uint64_t b = 0; b < needed.size(); b++)
			if (needed[b] && cm_set(cm, b, needed[b]))
				throw bad_alloc();
		return io_overlay_finish(overlay_.get(), cm, progress ? record_progress : nullptr,
					 progress, err);
	}

	// Upper's file after a complete finish: written blocks (block 0 the
	// held one), lower's content for needed blocks never written, zero
	// (untouched) for the rest.
	vector<uint8_t> expected_upper(const vector<uint32_t> &needed) const
	{
		vector<uint8_t> v(nr_upper_ * block_size, 0);

		for (uint64_t b = 0; b < nr_upper_; b++) {
			const uint8_t *src = nullptr;

			if (written_[b])
				src = block_of(written_content_, b);
			else if (b < needed.size() && needed[b])
				src = block_of(lower_content_, b);
			if (src)
				memcpy(v.data() + b * block_size, src, block_size);
		}
		return v;
	}

	// Needed blocks >= 1 never written: what finish copies.
	uint64_t nr_copies(const vector<uint32_t> &needed) const
	{
		uint64_t n = 0;

		for (uint64_t b = 1; b < needed.size() && b < nr_upper_; b++)
			n += needed[b] && !written_[b];
		return n;
	}

	uint64_t nr_written_in_model() const
	{
		return uint64_t(count(written_.begin(), written_.end(), true));
	}

	// Compares upper's file block by block, naming the first few that differ.
	void expect_upper_file(const vector<uint8_t> &want)
	{
		vector<uint8_t> got = read_file(upper_path_);
		unsigned reported = 0;

		ASSERT_EQ(want.size(), got.size()) << "upper's size changed";
		for (uint64_t b = 0; b < want.size() / block_size && reported < 10; b++) {
			if (memcmp(block_of(got, b), block_of(want, b), block_size)) {
				ADD_FAILURE() << "upper block " << b << " differs"
					      << (is_zero(block_of(got, b)) ? " (zero)" : "")
					      << (b < nr_lower_ &&
							  !memcmp(block_of(got, b),
								  block_of(lower_content_, b),
								  block_size)
						  ? " (lower's)" : "");
				reported++;
			}
		}
	}

	unique_ptr<temp_dir> dir_;
	string lower_path_, lower_copy_, upper_path_;
	uint64_t nr_lower_ = 0, nr_upper_ = 0;
	vector<uint8_t> lower_content_;
	vector<bool> written_;
	vector<uint8_t> written_content_;
	engine_ptr lower_, upper_, fault_, overlay_;
};

//----------------------------------------------------------------
// Reading and writing

TEST_F(IoEngineOverlayTests, fresh_overlay_reads_every_block_from_lower)
{
	mt19937_64 rng(1);

	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks));
	EXPECT_EQ(nr_test_blocks, overlay_->nr_blocks);
	EXPECT_EQ(0u, io_overlay_nr_written(overlay_.get()));
	check_reads_all();
	for (size_t n : { 1u, 7u, 255u, 256u, 257u, 600u, 1000u }) {
		SCOPED_TRACE("batch of " + to_string(n));
		check_reads(any_blocks(n, 0, nr_test_blocks, rng));
	}
	expect_upper_file(vector<uint8_t>(nr_test_blocks * block_size, 0));
}

TEST_F(IoEngineOverlayTests, written_blocks_read_from_upper_and_the_rest_from_lower)
{
	mt19937_64 rng(2);

	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks));
	/* one batch larger than IO_MAX_BATCH, then a few singles */
	ASSERT_NO_FATAL_FAILURE(write_blocks(distinct_blocks(300, 1, nr_test_blocks, rng), 1));
	for (uint64_t b : { 1u, 2u, 599u, 300u })
		ASSERT_NO_FATAL_FAILURE(write_blocks({ b }, 2));
	check_reads_all();
	for (size_t n : { 1u, 7u, 256u, 257u, 700u }) {
		SCOPED_TRACE("batch of " + to_string(n));
		check_reads(any_blocks(n, 0, nr_test_blocks, rng));
	}

	/* writes other than block 0 went to upper's file */
	ASSERT_EQ(0, io_flush(overlay_.get()));
	expect_upper_file(expected_upper({}));
}

TEST_F(IoEngineOverlayTests, rewritten_block_reads_its_newest_content)
{
	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks));
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 10, 11, 0 }, 1));
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 11, 0 }, 2));
	check_reads({ 10, 11, 12, 0, 11, 9 });
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 10 }, 3));
	check_reads({ 0, 10, 11, 12 });
}

//----------------------------------------------------------------
// Block 0

TEST_F(IoEngineOverlayTests, block_0_is_held_until_finish)
{
	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks));
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 0, 1, 2 }, 1));
	ASSERT_EQ(0, io_flush(overlay_.get()));
	check_reads({ 0 });
	check_reads({ 3, 0, 1, 4, 0, 2 });
	EXPECT_TRUE(is_zero(block_of(read_file(upper_path_), 0))) << "block 0 reached upper";

	/* a second write of block 0 is held too, and read back */
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 0 }, 2));
	ASSERT_EQ(0, io_flush(overlay_.get()));
	check_reads({ 0, 1 });

	/* upper now: blocks 1 and 2 written, block 0 untouched */
	vector<uint8_t> want = expected_upper({});

	memset(want.data(), 0, block_size);
	expect_upper_file(want);

	/* without finish, block 0 is never written */
	close_engines();
	expect_upper_file(want);
}

TEST_F(IoEngineOverlayTests, finish_writes_the_held_block_0)
{
	vector<uint64_t> progress;
	pd_err err{};

	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks));
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 0, 5 }, 1));
	ASSERT_EQ(0, finish({}, &progress, &err)) << err.msg;
	expect_progress(progress, 0);
	expect_upper_file(expected_upper({}));
}

//----------------------------------------------------------------
// Finish

TEST_F(IoEngineOverlayTests, finish_completes_upper_with_written_needed_and_held_blocks)
{
	mt19937_64 rng(3);
	vector<uint32_t> needed(nr_test_blocks, 0);
	const uint32_t counts[] = { 1, 2, 3, 7 };	/* 2-bit and overflow counts */
	vector<uint64_t> progress;
	pd_err err{};

	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks));
	for (uint64_t b : distinct_blocks(400, 0, nr_test_blocks, rng))
		needed[b] = counts[rng() % 4];
	needed[0] = 1;
	vector<uint64_t> w = distinct_blocks(150, 1, nr_test_blocks, rng);

	w.push_back(0);
	ASSERT_NO_FATAL_FAILURE(write_blocks(w, 1));
	ASSERT_NO_FATAL_FAILURE(write_blocks(distinct_blocks(20, 1, nr_test_blocks, rng), 2));

	uint64_t copies = nr_copies(needed);

	ASSERT_GT(copies, IO_MAX_BATCH) << "the test wants more than one batch of copies";
	ASSERT_EQ(0, finish(needed, &progress, &err)) << err.msg;
	expect_progress(progress, copies);
	EXPECT_GE(progress.size(), 2u) << "copies of more than a batch reported once";
	expect_upper_file(expected_upper(needed));
}

TEST_F(IoEngineOverlayTests, finish_copies_needed_block_0_from_lower_when_never_written)
{
	vector<uint32_t> needed(nr_test_blocks, 0);
	vector<uint64_t> progress;
	pd_err err{};

	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks));
	needed[0] = needed[3] = needed[4] = needed[599] = 1;
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 4, 8 }, 1));
	ASSERT_EQ(0, finish(needed, &progress, &err)) << err.msg;
	expect_progress(progress, 2);	/* 3 and 599; block 0 is not counted */
	vector<uint8_t> want = expected_upper(needed);

	ASSERT_EQ(0, memcmp(want.data(), lower_content_.data(), block_size));
	expect_upper_file(want);
}

TEST_F(IoEngineOverlayTests, finish_leaves_block_0_alone_when_neither_written_nor_needed)
{
	vector<uint32_t> needed(nr_test_blocks, 0);
	vector<uint64_t> progress;
	pd_err err{};

	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks));
	needed[1] = needed[2] = 2;
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 2, 9 }, 1));
	ASSERT_EQ(0, finish(needed, &progress, &err)) << err.msg;
	expect_progress(progress, 1);
	expect_upper_file(expected_upper(needed));
}

TEST_F(IoEngineOverlayTests, finish_without_progress_callback)
{
	mt19937_64 rng(4);
	vector<uint32_t> needed(nr_test_blocks, 0);
	pd_err err{};

	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks));
	for (uint64_t b : distinct_blocks(100, 0, nr_test_blocks, rng))
		needed[b] = 1;
	ASSERT_NO_FATAL_FAILURE(write_blocks(distinct_blocks(50, 0, nr_test_blocks, rng), 1));
	ASSERT_EQ(0, finish(needed, nullptr, &err)) << err.msg;
	expect_upper_file(expected_upper(needed));
}

//----------------------------------------------------------------
// Counting

TEST_F(IoEngineOverlayTests, nr_written_counts_distinct_blocks)
{
	mt19937_64 rng(5);
	batch bad({ 7, nr_test_blocks, UINT64_MAX });

	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks));
	EXPECT_EQ(0u, io_overlay_nr_written(overlay_.get()));
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 5 }, 1));
	EXPECT_EQ(1u, io_overlay_nr_written(overlay_.get()));
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 5 }, 2));
	EXPECT_EQ(1u, io_overlay_nr_written(overlay_.get()));
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 0 }, 1));
	EXPECT_EQ(2u, io_overlay_nr_written(overlay_.get()));
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 0 }, 2));
	EXPECT_EQ(2u, io_overlay_nr_written(overlay_.get()));
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 7, 8, 9, 5, 0 }, 3));
	EXPECT_EQ(5u, io_overlay_nr_written(overlay_.get()));

	/* a batch larger than IO_MAX_BATCH, half of it already written */
	vector<uint64_t> big = distinct_blocks(300, 10, nr_test_blocks, rng);

	ASSERT_NO_FATAL_FAILURE(write_blocks(vector<uint64_t>(big.begin(), big.begin() + 150), 4));
	ASSERT_NO_FATAL_FAILURE(write_blocks(big, 5));
	EXPECT_EQ(305u, io_overlay_nr_written(overlay_.get()));
	EXPECT_EQ(nr_written_in_model(), io_overlay_nr_written(overlay_.get()));

	/* failed requests write nothing */
	for (unsigned i = 0; i < bad.size(); i++)
		memset(bad.data(i), 0x77, block_size);
	EXPECT_NE(0, io_write_many(overlay_.get(), bad.reqs.data(), bad.size()));
	memcpy(written_content_.data() + 7 * block_size, bad.data(0), block_size);
	EXPECT_EQ(305u, io_overlay_nr_written(overlay_.get()));
	check_reads_all();
}

// The overlay serves metadata block by block: a run of blocks in one
// request (nr_blocks > 1, io-engine.h) is refused alone, nothing written.
TEST_F(IoEngineOverlayTests, a_run_of_blocks_is_refused)
{
	batch b({ 20, 40, 41 });
	unique_ptr<void, decltype(&free)> run(aligned_alloc(block_size, 2 * block_size), &free);

	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks));
	memset(run.get(), 0x5a, 2 * block_size);
	b.reqs[1].buf = run.get();
	b.reqs[1].nr_blocks = 2;
	memset(b.data(0), 0x33, block_size);
	memcpy(written_content_.data() + 20 * block_size, b.data(0), block_size);
	written_[20] = true;
	EXPECT_NE(0, io_write_many(overlay_.get(), b.reqs.data(), 2));
	EXPECT_EQ(0, b.reqs[0].result);
	EXPECT_EQ(-EINVAL, b.reqs[1].result);
	EXPECT_EQ(1u, io_overlay_nr_written(overlay_.get()));
	EXPECT_NE(0, io_read_many(overlay_.get(), b.reqs.data(), 2));
	EXPECT_EQ(-EINVAL, b.reqs[1].result);
	check_reads_all();
}

// A write that upper refuses has not been written through the overlay:
// it is not counted and the block still reads from lower.
TEST_F(IoEngineOverlayTests, write_failed_by_upper_is_not_written)
{
	const vector<uint64_t> blocks = { 11, 12, 13, 14, 15, 16 };

	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks, true, IO_FAULT_FAIL));
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 0, 20, 21 }, 1));
	ASSERT_EQ(0, io_engine_fault_set_limit(fault_.get(), 3));

	batch bt(blocks);

	for (unsigned i = 0; i < bt.size(); i++)
		memcpy(bt.data(i), fresh_block(blocks[i], 2).data(), block_size);
	EXPECT_NE(0, io_write_many(overlay_.get(), bt.reqs.data(), bt.size()));
	for (unsigned i = 0; i < bt.size(); i++) {
		if (i < 3) {
			EXPECT_EQ(0, bt.reqs[i].result) << "request " << i;
			written_[blocks[i]] = true;
			memcpy(written_content_.data() + blocks[i] * block_size, bt.data(i),
			       block_size);
		} else {
			EXPECT_EQ(-EIO, bt.reqs[i].result) << "request " << i;
		}
	}
	EXPECT_EQ(nr_written_in_model(), io_overlay_nr_written(overlay_.get()));
	check_reads({ 0, 10, 11, 12, 13, 14, 15, 16, 17, 20, 21 });
}

//----------------------------------------------------------------
// Requests out of range

TEST_F(IoEngineOverlayTests, reads_beyond_end_fail_only_that_request)
{
	mt19937_64 rng(6);

	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks));
	ASSERT_NO_FATAL_FAILURE(write_blocks(distinct_blocks(200, 0, nr_test_blocks, rng), 1));
	for (size_t n : { 10u, 300u, 600u }) {
		SCOPED_TRACE("batch of " + to_string(n));
		vector<uint64_t> blocks = any_blocks(n, 0, nr_test_blocks, rng);

		/* a bad block in each chunk of IO_MAX_BATCH */
		blocks[3] = nr_test_blocks;
		blocks[n - 2] = UINT64_MAX;
		blocks[n / 2] = nr_test_blocks + 1000;
		check_reads(blocks);
	}
}

TEST_F(IoEngineOverlayTests, writes_beyond_end_fail_only_that_request)
{
	mt19937_64 rng(7);
	vector<uint64_t> blocks = distinct_blocks(300, 0, nr_test_blocks, rng);

	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks));
	blocks[3] = nr_test_blocks;
	blocks[150] = UINT64_MAX;
	blocks[298] = nr_test_blocks + 1000;

	batch bt(blocks);

	for (unsigned i = 0; i < bt.size(); i++)
		memcpy(bt.data(i), fresh_block(blocks[i], 1).data(), block_size);
	int r = io_write_many(overlay_.get(), bt.reqs.data(), bt.size());

	EXPECT_TRUE(r == -EIO || r == -EINVAL) << r;
	for (unsigned i = 0; i < bt.size(); i++) {
		if (blocks[i] >= nr_test_blocks) {
			EXPECT_EQ(-EINVAL, bt.reqs[i].result) << "request " << i;
			continue;
		}
		EXPECT_EQ(0, bt.reqs[i].result) << "request " << i;
		written_[blocks[i]] = true;
		memcpy(written_content_.data() + blocks[i] * block_size, bt.data(i), block_size);
	}
	EXPECT_EQ(nr_written_in_model(), io_overlay_nr_written(overlay_.get()));
	check_reads_all();
	ASSERT_EQ(0, io_flush(overlay_.get()));

	/* nothing past the end, and block 0 still held */
	vector<uint8_t> want = expected_upper({});

	memset(want.data(), 0, block_size);
	expect_upper_file(want);
}

//----------------------------------------------------------------
// Sizes: the overlay has upper's

TEST_F(IoEngineOverlayTests, lower_smaller_than_upper_fails_reads_past_its_end_until_written)
{
	vector<uint32_t> needed(200, 0);
	pd_err err{};

	ASSERT_NO_FATAL_FAILURE(start(100, 200));
	EXPECT_EQ(200u, overlay_->nr_blocks);
	check_reads({ 5, 99, 100, 150, 199, 200, 0 });
	ASSERT_NO_FATAL_FAILURE(write_blocks({ 150, 100, 7 }, 1));
	check_reads({ 5, 99, 100, 150, 199, 200, 0, 7, 101 });
	check_reads_all();

	/* a needed block past lower's end that was written is fine */
	needed[5] = needed[150] = needed[0] = 1;
	ASSERT_EQ(0, finish(needed, nullptr, &err)) << err.msg;
	expect_upper_file(expected_upper(needed));
}

TEST_F(IoEngineOverlayTests, lower_larger_than_upper_is_cut_to_uppers_size)
{
	ASSERT_NO_FATAL_FAILURE(start(300, 200));
	EXPECT_EQ(200u, overlay_->nr_blocks);
	check_reads({ 0, 199, 200, 250, 299, 300 });
	check_reads_all();
}

//----------------------------------------------------------------
// Ordering: block 0 after everything it points at

/*
 * For cut points N around the batches and the end of the copies, finish
 * runs with only its first N writes reaching upper.  Upper's block 0 is
 * then zero or the held block; when it is the held block every copied
 * and written block is in place.  Block 0 is the last of copies + 1
 * writes, so it lands exactly when N > copies.  With silent cuts the
 * flush counts show a flush between the last copy and block 0 and one
 * after block 0; with failing writes finish reports the failure.
 */
TEST_F(IoEngineOverlayTests, block_0_reaches_upper_only_after_every_copied_block)
{
	mt19937_64 rng(8);
	vector<uint32_t> needed(nr_test_blocks, 0);

	ASSERT_NO_FATAL_FAILURE(start(nr_test_blocks, nr_test_blocks, true, 0));
	for (uint64_t b : distinct_blocks(450, 1, nr_test_blocks, rng))
		needed[b] = 1;
	vector<uint64_t> w = distinct_blocks(100, 1, nr_test_blocks, rng);

	w.push_back(0);
	for (uint64_t b : w)
		written_[b] = true;	/* for nr_copies only; start_upper resets */
	const uint64_t copies = nr_copies(needed);

	ASSERT_GT(copies, IO_MAX_BATCH + 2) << "the cut points must be distinct";
	const vector<uint64_t> cuts = {
		0, 1, IO_MAX_BATCH - 1, IO_MAX_BATCH, IO_MAX_BATCH + 1,
		copies - 1, copies, copies + 1, copies + 2, copies + 100,
	};

	for (unsigned flags : { 0u, IO_FAULT_FAIL }) {
		map<uint64_t, uint64_t> flushes_done;

		for (uint64_t n : cuts) {
			SCOPED_TRACE(string(flags ? "failing" : "silent") + " cut after " +
				     to_string(n) + " of " + to_string(copies) + " copies");
			io_fault_stats before{}, after{};
			pd_err err{};

			ASSERT_NO_FATAL_FAILURE(start_upper(nr_test_blocks, true, flags));
			ASSERT_NO_FATAL_FAILURE(write_blocks(w, 1));
			ASSERT_EQ(0, io_engine_fault_get_stats(fault_.get(), &before));
			ASSERT_EQ(0, io_engine_fault_set_limit(fault_.get(), n));
			int r = finish(needed, nullptr, &err);

			ASSERT_EQ(0, io_engine_fault_get_stats(fault_.get(), &after));
			close_engines();

			vector<uint8_t> got = read_file(upper_path_);
			vector<uint8_t> want = expected_upper(needed);
			bool has_sb = !memcmp(got.data(), want.data(), block_size);

			EXPECT_TRUE(has_sb || is_zero(got.data()))
				<< "upper's block 0 is neither untouched nor the held block";
			EXPECT_EQ(n > copies, has_sb);
			if (has_sb)
				expect_upper_file(want);
			if (flags & IO_FAULT_FAIL) {
				EXPECT_EQ(n > copies, r == 0) << r << " " << err.msg;
			} else {
				EXPECT_EQ(0, r) << err.msg;
			}
			if (n > copies) {
				EXPECT_EQ(copies + 1, after.writes_seen - before.writes_seen)
					<< "finish writes each copy once, then block 0";
				EXPECT_FALSE(after.cut);
			}
			flushes_done[n] = after.flushes_done - before.flushes_done;
		}
		if (!flags) {
			EXPECT_GT(flushes_done[copies], flushes_done[copies - 1])
				<< "no flush between the last copy and block 0";
			EXPECT_GT(flushes_done[copies + 1], flushes_done[copies])
				<< "no flush after block 0";
		}
	}
}

}	// namespace
