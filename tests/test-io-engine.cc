/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * I/O engines: the same tests run against every implementation (sync,
 * io_uring, libaio), which must give identical results.  An engine that
 * this build or this kernel lacks is skipped, nothing else is.
 */
#include <gtest/gtest.h>

extern "C" {
#include "persistent-data/io-engine.h"
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
#include <functional>
#include <initializer_list>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace std;
using namespace test_files;

namespace {

constexpr uint64_t nr_test_blocks = 1000;
constexpr size_t block_size = MD_BLOCK_SIZE;

//----------------------------------------------------------------
// Helpers

const char *kind_name(io_engine_kind k)
{
	switch (k) {
	case IO_ENGINE_SYNC:
		return "sync";
	case IO_ENGINE_ASYNC:
		return "async";
	case IO_ENGINE_URING:
		return "io_uring";
	case IO_ENGINE_AIO:
		return "libaio";
	}
	return "unknown";
}

const io_engine_kind all_kinds[] = { IO_ENGINE_SYNC, IO_ENGINE_URING, IO_ENGINE_AIO };

int open_engine(const string &path, io_engine_kind kind, unsigned flags,
		engine_ptr &out, pd_err *err = nullptr)
{
	pd_err local{};
	io_engine *e = nullptr;
	int r = io_engine_open(path.c_str(), kind, flags, &e, err ? err : &local);

	out.reset(r ? nullptr : e);
	return r;
}

::testing::AssertionResult block_matches(const uint8_t *buf, const vector<uint8_t> &content,
					 uint64_t block)
{
	if ((block + 1) * block_size > content.size())
		return ::testing::AssertionFailure() << "block " << block << " is past the content";
	if (memcmp(buf, content.data() + block * block_size, block_size))
		return ::testing::AssertionFailure() << "block " << block << " differs";
	return ::testing::AssertionSuccess();
}

// Reads every block of the file in one batch with the given engine.
void expect_engine_reads(io_engine *e, const vector<uint8_t> &content)
{
	uint64_t nr = content.size() / block_size;
	vector<uint64_t> blocks(nr);

	iota(blocks.begin(), blocks.end(), 0);
	batch b(blocks);

	ASSERT_EQ(0, io_read_many(e, b.reqs.data(), b.size())) << e->name;
	for (unsigned i = 0; i < b.size(); i++) {
		EXPECT_EQ(0, b.reqs[i].result) << e->name << " block " << i;
		EXPECT_TRUE(block_matches(b.data(i), content, i)) << e->name;
	}
}

//----------------------------------------------------------------
// Fixtures

class IoEngineFixture : public ::testing::Test {
protected:
	void SetUp() override
	{
		dir_ = make_unique<temp_dir>(regular_dir());
		path_ = dir_->file("metadata");
		content_ = random_content(nr_test_blocks, 0x7468696e70ull);
		write_file(path_, content_);
	}

	unique_ptr<temp_dir> dir_;
	string path_;
	vector<uint8_t> content_;
};

class IoEngineTests : public IoEngineFixture,
		      public ::testing::WithParamInterface<io_engine_kind> {
protected:
	void SetUp() override
	{
		IoEngineFixture::SetUp();

		pd_err err{};
		engine_ptr e;
		int r = open_engine(path_, GetParam(), 0, e, &err);

		if (r == -ENOTSUP)
			GTEST_SKIP() << kind_name(GetParam()) << " engine unavailable: " << err.msg;
		ASSERT_EQ(0, r) << err.msg;
	}

	int open(const string &path, unsigned flags, engine_ptr &e, pd_err *err = nullptr)
	{
		return open_engine(path, GetParam(), flags, e, err);
	}

	// Sets up a file of nr random blocks in dir, opened with O_DIRECT
	// where the file system allows it, and checks that reads and writes
	// through the engine come out right either way.
	void check_round_trip_in(const string &dir, uint64_t seed);

	// Makes a direct transfer fail with EINVAL and checks that the
	// engine falls back to buffered I/O.
	void check_refused_direct_transfer_in(const string &dir);
};

//----------------------------------------------------------------
// Reading

TEST_P(IoEngineTests, reports_its_name_and_size)
{
	engine_ptr e;

	ASSERT_EQ(0, open(path_, 0, e));
	EXPECT_STREQ(kind_name(GetParam()), e->name);
	EXPECT_EQ(nr_test_blocks, e->nr_blocks);
	EXPECT_EQ(nr_test_blocks * block_size, e->size_bytes);
	EXPECT_FALSE(e->writable);
}

TEST_P(IoEngineTests, reads_match_file_contents_in_random_batches)
{
	mt19937_64 rng(42);
	uniform_int_distribution<uint64_t> pick(0, nr_test_blocks - 1);
	engine_ptr e;

	ASSERT_EQ(0, open(path_, 0, e));
	for (unsigned n : { 1u, 7u, 256u, 300u }) {
		for (int round = 0; round < 4; round++) {
			vector<uint64_t> blocks(n);

			for (auto &b : blocks)
				b = pick(rng);	/* duplicates allowed */
			if (n > 1)
				blocks[n - 1] = blocks[0];
			batch bt(blocks);

			ASSERT_EQ(0, io_read_many(e.get(), bt.reqs.data(), bt.size()))
				<< "batch of " << n;
			for (unsigned i = 0; i < n; i++) {
				EXPECT_EQ(0, bt.reqs[i].result);
				EXPECT_TRUE(block_matches(bt.data(i), content_, blocks[i]))
					<< "batch of " << n << ", request " << i;
			}
		}
	}
}

TEST_P(IoEngineTests, reads_whole_file_in_one_batch)
{
	engine_ptr e;

	ASSERT_EQ(0, open(path_, 0, e));
	expect_engine_reads(e.get(), content_);
}

TEST_P(IoEngineTests, empty_batch_does_nothing)
{
	engine_ptr e;

	ASSERT_EQ(0, open(path_, 0, e));
	EXPECT_EQ(0, io_read_many(e.get(), nullptr, 0));
	EXPECT_EQ(0, io_write_many(e.get(), nullptr, 0));
}

TEST_P(IoEngineTests, block_helpers_read_and_write_one_block)
{
	engine_ptr e;
	block_buf buf = alloc_block();
	vector<uint8_t> fresh = random_content(1, 99);

	ASSERT_EQ(0, open(path_, IO_OPEN_WRITE, e));
	ASSERT_EQ(0, io_read_block(e.get(), 123, buf.get()));
	EXPECT_TRUE(block_matches(static_cast<uint8_t *>(buf.get()), content_, 123));

	memcpy(buf.get(), fresh.data(), block_size);
	ASSERT_EQ(0, io_write_block(e.get(), 124, buf.get()));
	memset(buf.get(), 0, block_size);
	ASSERT_EQ(0, io_read_block(e.get(), 124, buf.get()));
	EXPECT_EQ(0, memcmp(buf.get(), fresh.data(), block_size));

	EXPECT_EQ(-EINVAL, io_read_block(e.get(), nr_test_blocks, buf.get()));
	EXPECT_EQ(-EINVAL, io_write_block(e.get(), nr_test_blocks, buf.get()));
}

//----------------------------------------------------------------
// Writing

TEST_P(IoEngineTests, writes_are_read_back_by_every_engine)
{
	mt19937_64 rng(7);
	vector<uint64_t> all(nr_test_blocks);

	iota(all.begin(), all.end(), 0);
	shuffle(all.begin(), all.end(), rng);
	vector<uint64_t> blocks(all.begin(), all.begin() + 300);	/* distinct */
	vector<uint8_t> fresh = random_content(blocks.size(), 1234);
	vector<uint8_t> expected = content_;
	batch bt(blocks);

	for (unsigned i = 0; i < bt.size(); i++) {
		memcpy(bt.data(i), fresh.data() + i * block_size, block_size);
		memcpy(expected.data() + blocks[i] * block_size, bt.data(i), block_size);
	}

	{
		engine_ptr w;

		ASSERT_EQ(0, open(path_, IO_OPEN_WRITE, w));
		EXPECT_TRUE(w->writable);
		ASSERT_EQ(0, io_write_many(w.get(), bt.reqs.data(), bt.size()));
		for (auto &r : bt.reqs)
			EXPECT_EQ(0, r.result);
		ASSERT_EQ(0, io_flush(w.get()));
	}

	EXPECT_EQ(expected, read_file(path_)) << "file differs from what was written";
	for (io_engine_kind k : all_kinds) {
		engine_ptr r;
		pd_err err{};
		int ret = open_engine(path_, k, 0, r, &err);

		if (ret == -ENOTSUP)
			continue;	/* that reader is unavailable, not this writer */
		ASSERT_EQ(0, ret) << kind_name(k) << ": " << err.msg;
		expect_engine_reads(r.get(), expected);
	}
}

TEST_P(IoEngineTests, write_to_read_only_engine_fails_per_request)
{
	engine_ptr e;
	batch bt({ 1, 2, 3 });

	for (unsigned i = 0; i < bt.size(); i++)
		memset(bt.data(i), 0xaa, block_size);
	ASSERT_EQ(0, open(path_, 0, e));
	EXPECT_EQ(-EBADF, io_write_many(e.get(), bt.reqs.data(), bt.size()));
	for (auto &r : bt.reqs)
		EXPECT_EQ(-EBADF, r.result);
	EXPECT_EQ(content_, read_file(path_));
}

//----------------------------------------------------------------
// Per-request errors

TEST_P(IoEngineTests, block_beyond_end_fails_only_that_request)
{
	engine_ptr e;
	mt19937_64 rng(3);
	uniform_int_distribution<uint64_t> pick(0, nr_test_blocks - 1);

	ASSERT_EQ(0, open(path_, 0, e));
	for (unsigned n : { 10u, 300u }) {
		vector<uint64_t> blocks(n);

		for (auto &b : blocks)
			b = pick(rng);
		/* one bad block in each chunk of IO_MAX_BATCH */
		blocks[3] = nr_test_blocks;
		blocks[n - 2] = UINT64_MAX;
		batch bt(blocks);

		EXPECT_EQ(-EINVAL, io_read_many(e.get(), bt.reqs.data(), bt.size()));
		for (unsigned i = 0; i < n; i++) {
			if (blocks[i] >= nr_test_blocks) {
				EXPECT_EQ(-EINVAL, bt.reqs[i].result) << "request " << i;
			} else {
				EXPECT_EQ(0, bt.reqs[i].result) << "request " << i;
				EXPECT_TRUE(block_matches(bt.data(i), content_, blocks[i]));
			}
		}
	}
}

TEST_P(IoEngineTests, write_beyond_end_fails_only_that_request)
{
	engine_ptr e;
	batch bt({ 5, nr_test_blocks, 6, nr_test_blocks + 1000 });
	vector<uint8_t> expected = content_;

	for (unsigned i = 0; i < bt.size(); i++)
		memset(bt.data(i), 0x50 + int(i), block_size);
	memcpy(expected.data() + 5 * block_size, bt.data(0), block_size);
	memcpy(expected.data() + 6 * block_size, bt.data(2), block_size);

	ASSERT_EQ(0, open(path_, IO_OPEN_WRITE, e));
	EXPECT_EQ(-EINVAL, io_write_many(e.get(), bt.reqs.data(), bt.size()));
	EXPECT_EQ(0, bt.reqs[0].result);
	EXPECT_EQ(-EINVAL, bt.reqs[1].result);
	EXPECT_EQ(0, bt.reqs[2].result);
	EXPECT_EQ(-EINVAL, bt.reqs[3].result);
	ASSERT_EQ(0, io_flush(e.get()));
	e.reset();
	/* same size: nothing was written past the end */
	EXPECT_EQ(expected, read_file(path_));
}

// A file that shrinks under an open engine: a block cut in half gives a
// short read, then end of file on the rest; both must end in -EIO.
TEST_P(IoEngineTests, file_shrunk_after_open_fails_with_eio)
{
	engine_ptr e;
	batch bt({ 5, 10, 20, 9 });

	ASSERT_EQ(0, open(path_, IO_OPEN_NO_DIRECT, e));
	ASSERT_EQ(0, truncate(path_.c_str(), off_t(10 * block_size + block_size / 2)));
	EXPECT_EQ(-EIO, io_read_many(e.get(), bt.reqs.data(), bt.size()));
	EXPECT_EQ(0, bt.reqs[0].result);
	EXPECT_TRUE(block_matches(bt.data(0), content_, 5));
	EXPECT_EQ(-EIO, bt.reqs[1].result);
	EXPECT_EQ(-EIO, bt.reqs[2].result);
	EXPECT_EQ(0, bt.reqs[3].result);
	EXPECT_TRUE(block_matches(bt.data(3), content_, 9));
}

//----------------------------------------------------------------
// O_DIRECT, and falling back from it

void IoEngineTests::check_round_trip_in(const string &dir, uint64_t seed)
{
	temp_dir td(dir);
	string path = td.file("metadata");
	vector<uint8_t> content = random_content(64, seed);
	vector<uint8_t> fresh = random_content(64, seed + 1);
	vector<uint64_t> blocks(64);
	engine_ptr e;
	pd_err err{};

	write_file(path, content);
	ASSERT_EQ(0, open(path, IO_OPEN_WRITE | IO_OPEN_DIRECT, e, &err)) << err.msg;
	RecordProperty("direct_" + to_string(seed), e->direct ? "yes" : "no");
	expect_engine_reads(e.get(), content);

	iota(blocks.begin(), blocks.end(), 0);
	reverse(blocks.begin(), blocks.end());
	batch bt(blocks);

	for (unsigned i = 0; i < bt.size(); i++)
		memcpy(bt.data(i), fresh.data() + blocks[i] * block_size, block_size);
	ASSERT_EQ(0, io_write_many(e.get(), bt.reqs.data(), bt.size()));
	ASSERT_EQ(0, io_flush(e.get()));
	expect_engine_reads(e.get(), fresh);
	e.reset();

	EXPECT_EQ(fresh, read_file(path));
	ASSERT_EQ(0, open_engine(path, IO_ENGINE_SYNC, IO_OPEN_NO_DIRECT, e));
	expect_engine_reads(e.get(), fresh);
}

TEST_P(IoEngineTests, direct_io_or_fallback_works_on_tmpfs)
{
	check_round_trip_in("/dev/shm", 100);
}

TEST_P(IoEngineTests, direct_io_or_fallback_works_on_regular_file)
{
	check_round_trip_in(regular_dir(), 200);
}

// A regular file goes through the page cache unless O_DIRECT is asked
// for (block devices get it by default; none is at hand in a unit test).
TEST_P(IoEngineTests, regular_file_is_buffered_unless_direct_is_asked)
{
	temp_dir td(regular_dir());
	string path = td.file("metadata");
	engine_ptr e;

	write_file(path, random_content(4, 400));
	ASSERT_EQ(0, open(path, 0, e));
	EXPECT_FALSE(e->direct);
	e.reset();
	ASSERT_EQ(0, open(path, IO_OPEN_DIRECT | IO_OPEN_NO_DIRECT, e));
	EXPECT_FALSE(e->direct);
	e.reset();
	ASSERT_EQ(0, open(path, IO_OPEN_DIRECT, e));
	{
		int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);

		/* where the file system takes O_DIRECT, the engine has it */
		if (fd >= 0) {
			EXPECT_TRUE(e->direct);
			close(fd);
		}
	}
}

// Does this file system refuse a direct transfer into buf with EINVAL?
bool fs_refuses_direct_read(const string &path, void *buf)
{
	int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
	bool refused;

	if (fd < 0)
		return false;	/* no O_DIRECT at all: the engine opens without */
	refused = pread(fd, buf, block_size, 0) < 0 && errno == EINVAL;
	close(fd);
	return refused;
}

/*
 * The contract asks for aligned buffers; a misaligned one is the portable
 * way to make a file system that took O_DIRECT at open refuse the transfer
 * with EINVAL, which is the fallback under test.  Whether a file system
 * refuses it is asked of the kernel directly, then the engine must have
 * dropped O_DIRECT and still got the right data.
 */
void IoEngineTests::check_refused_direct_transfer_in(const string &dir)
{
	temp_dir td(dir);
	string path = td.file("metadata");
	vector<uint8_t> content = random_content(16, 300);
	void *raw = nullptr;

	ASSERT_EQ(0, posix_memalign(&raw, block_size, 2 * block_size));
	block_buf holder(raw);
	uint8_t *misaligned = static_cast<uint8_t *>(raw) + 8;

	write_file(path, content);
	bool refuses = fs_refuses_direct_read(path, misaligned);

	RecordProperty("refuses_misaligned_direct_" + dir, refuses ? "yes" : "no");

	/* reading */
	{
		engine_ptr e;
		io_req r = { 3, misaligned, 1, 0 };

		ASSERT_EQ(0, open(path, IO_OPEN_DIRECT, e));
		ASSERT_EQ(0, io_read_many(e.get(), &r, 1));
		EXPECT_EQ(0, r.result);
		EXPECT_TRUE(block_matches(misaligned, content, 3));
		if (refuses) {
			EXPECT_FALSE(e->direct) << "the engine kept O_DIRECT after EINVAL";
		}
	}

	/* writing, in a batch where every request hits the refusal */
	{
		engine_ptr e;
		vector<uint8_t> fresh = random_content(2, 301);
		vector<uint8_t> expected = content;
		void *raw2 = nullptr;

		ASSERT_EQ(0, posix_memalign(&raw2, block_size, 2 * block_size));
		block_buf holder2(raw2);
		uint8_t *misaligned2 = static_cast<uint8_t *>(raw2) + 8;

		memcpy(misaligned, fresh.data(), block_size);
		memcpy(misaligned2, fresh.data() + block_size, block_size);
		memcpy(expected.data() + 4 * block_size, misaligned, block_size);
		memcpy(expected.data() + 9 * block_size, misaligned2, block_size);
		io_req w[2] = { { 4, misaligned, 1, 0 }, { 9, misaligned2, 1, 0 } };

		ASSERT_EQ(0, open(path, IO_OPEN_WRITE | IO_OPEN_DIRECT, e));
		ASSERT_EQ(0, io_write_many(e.get(), w, 2));
		EXPECT_EQ(0, w[0].result);
		EXPECT_EQ(0, w[1].result);
		ASSERT_EQ(0, io_flush(e.get()));
		if (refuses) {
			EXPECT_FALSE(e->direct) << "the engine kept O_DIRECT after EINVAL";
		}
		e.reset();
		EXPECT_EQ(expected, read_file(path));
	}
}

TEST_P(IoEngineTests, refused_direct_transfer_falls_back_on_regular_file)
{
	check_refused_direct_transfer_in(regular_dir());
}

TEST_P(IoEngineTests, refused_direct_transfer_falls_back_on_tmpfs)
{
	check_refused_direct_transfer_in("/dev/shm");
}

//----------------------------------------------------------------
// Opening

TEST_P(IoEngineTests, open_missing_file_is_enoent)
{
	engine_ptr e;
	pd_err err{};

	EXPECT_EQ(-ENOENT, open(dir_->file("no-such-file"), 0, e, &err));
	EXPECT_EQ(-ENOENT, err.code);
	EXPECT_NE(nullptr, strstr(err.msg, "no-such-file")) << err.msg;
	EXPECT_FALSE(e);
}

TEST_P(IoEngineTests, open_directory_is_eisdir)
{
	temp_dir sub(regular_dir());
	engine_ptr e;
	pd_err err{};

	EXPECT_EQ(-EISDIR, open(sub.file("."), 0, e, &err));
	EXPECT_EQ(-EISDIR, err.code);
	EXPECT_NE('\0', err.msg[0]);
	EXPECT_FALSE(e);
}

TEST_P(IoEngineTests, open_fifo_is_einval)
{
	string fifo = dir_->file("fifo");
	engine_ptr e;
	pd_err err{};

	ASSERT_EQ(0, mkfifo(fifo.c_str(), 0600)) << strerror(errno);
	EXPECT_EQ(-EINVAL, open(fifo, 0, e, &err));
	EXPECT_EQ(-EINVAL, err.code);
	EXPECT_NE('\0', err.msg[0]);
	EXPECT_FALSE(e);
}

TEST_P(IoEngineTests, nr_blocks_rounds_size_down)
{
	string odd = dir_->file("odd-size");
	engine_ptr e;
	block_buf buf = alloc_block();

	write_file(odd, content_.data(), 10 * block_size + 100);
	ASSERT_EQ(0, open(odd, 0, e));
	EXPECT_EQ(10u, e->nr_blocks);
	EXPECT_EQ(10 * block_size + 100, e->size_bytes);
	ASSERT_EQ(0, io_read_block(e.get(), 9, buf.get()));
	EXPECT_TRUE(block_matches(static_cast<uint8_t *>(buf.get()), content_, 9));
	EXPECT_EQ(-EINVAL, io_read_block(e.get(), 10, buf.get()));
}

TEST_P(IoEngineTests, small_file_has_no_blocks)
{
	string tiny = dir_->file("tiny");
	engine_ptr e;
	block_buf buf = alloc_block();

	write_file(tiny, content_.data(), 100);
	ASSERT_EQ(0, open(tiny, 0, e));
	EXPECT_EQ(0u, e->nr_blocks);
	EXPECT_EQ(-EINVAL, io_read_block(e.get(), 0, buf.get()));
}

//----------------------------------------------------------------
// Runs of blocks in one request (nr_blocks > 1: data copies)

// Requests of various lengths, some adjacent (merged by the sync engine),
// read and written back, buffered and O_DIRECT.
TEST_P(IoEngineTests, multi_block_requests_read_and_write_runs)
{
	struct run { uint64_t block; uint32_t n; };
	const vector<run> runs = { { 0, 1 }, { 1, 7 }, { 8, 256 }, { 300, 3 }, { 303, 500 },
				   { 900, 0 }, { 950, 50 } };	/* ends exactly at the end */

	for (unsigned flags : { 0u, unsigned(IO_OPEN_DIRECT) }) {
		vector<uint8_t> expected = content_;
		vector<io_req> reqs;
		vector<unique_ptr<void, decltype(&free)>> bufs;
		engine_ptr e;

		for (const run &r : runs) {
			size_t bytes = size_t(r.n ? r.n : 1) * block_size;

			bufs.emplace_back(aligned_alloc(block_size, bytes), &free);
			reqs.push_back(io_req{ r.block, bufs.back().get(), 1, r.n });
		}
		ASSERT_EQ(0, open(path_, IO_OPEN_WRITE | flags, e));
		ASSERT_EQ(0, io_read_many(e.get(), reqs.data(), unsigned(reqs.size())));
		for (size_t i = 0; i < reqs.size(); i++) {
			ASSERT_EQ(0, reqs[i].result) << "run " << i;
			EXPECT_EQ(0, memcmp(reqs[i].buf, content_.data() + runs[i].block * block_size,
					    io_req_bytes(&reqs[i]))) << "run " << i << " reads other data";
		}

		mt19937_64 rng(flags + 11);
		for (size_t i = 0; i < reqs.size(); i++) {
			uint8_t *p = static_cast<uint8_t *>(reqs[i].buf);

			for (size_t k = 0; k < io_req_bytes(&reqs[i]); k++)
				p[k] = uint8_t(rng());
			memcpy(expected.data() + runs[i].block * block_size, p, io_req_bytes(&reqs[i]));
			reqs[i].result = 1;
		}
		ASSERT_EQ(0, io_write_many(e.get(), reqs.data(), unsigned(reqs.size())));
		for (auto &r : reqs)
			EXPECT_EQ(0, r.result);
		ASSERT_EQ(0, io_flush(e.get()));
		e.reset();
		EXPECT_EQ(expected, read_file(path_)) << "flags " << flags;
		content_ = expected;
	}
}

TEST_P(IoEngineTests, multi_block_request_past_the_end_or_too_long_fails_alone)
{
	engine_ptr e;
	unique_ptr<void, decltype(&free)> big(aligned_alloc(block_size,
							    size_t(IO_MAX_REQ_BLOCKS + 1) * block_size), &free);
	block_buf one = alloc_block();
	vector<io_req> reqs = {
		{ nr_test_blocks - 4, big.get(), 1, 5 },	/* one block past the end */
		{ 10, one.get(), 1, 0 },
		{ 0, big.get(), 1, IO_MAX_REQ_BLOCKS + 1 },	/* longer than allowed */
	};

	ASSERT_EQ(0, open(path_, IO_OPEN_WRITE, e));
	EXPECT_EQ(-EINVAL, io_read_many(e.get(), reqs.data(), 3));
	EXPECT_EQ(-EINVAL, reqs[0].result);
	EXPECT_EQ(0, reqs[1].result);
	EXPECT_TRUE(block_matches(static_cast<uint8_t *>(one.get()), content_, 10));
	EXPECT_EQ(-EINVAL, reqs[2].result);
	EXPECT_EQ(-EINVAL, io_write_many(e.get(), reqs.data(), 3));
	EXPECT_EQ(-EINVAL, reqs[0].result);
	EXPECT_EQ(-EINVAL, reqs[2].result);
	ASSERT_EQ(0, io_flush(e.get()));
	e.reset();
	EXPECT_EQ(content_, read_file(path_)) << "a refused run wrote something";
}

INSTANTIATE_TEST_SUITE_P(every_engine, IoEngineTests, ::testing::ValuesIn(all_kinds),
			 [](const ::testing::TestParamInfo<io_engine_kind> &info) {
				 return string(kind_name(info.param));
			 });

//----------------------------------------------------------------
// The async choice and the option parser

using IoEngineAsyncTests = IoEngineFixture;

TEST_F(IoEngineAsyncTests, async_returns_a_working_engine)
{
	engine_ptr e, uring;
	pd_err err{};
	int r = open_engine(path_, IO_ENGINE_ASYNC, 0, e, &err);

	if (r == -ENOTSUP)
		GTEST_SKIP() << "no async engine available: " << err.msg;
	ASSERT_EQ(0, r) << err.msg;
	ASSERT_TRUE(e->name);
	EXPECT_TRUE(!strcmp(e->name, "io_uring") || !strcmp(e->name, "libaio")) << e->name;
	/* io_uring is preferred whenever it works */
	if (open_engine(path_, IO_ENGINE_URING, 0, uring) == 0) {
		EXPECT_STREQ("io_uring", e->name);
	}
	expect_engine_reads(e.get(), content_);
}

//----------------------------------------------------------------
// Engines the kernel refuses at run time

constexpr int no_seccomp = 77;

// Makes the given system calls fail with ENOSYS in this process, as on a
// kernel without them or under a container's seccomp policy.
bool refuse_syscalls(initializer_list<long> nrs)
{
	vector<sock_filter> f;

	f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, uint32_t(offsetof(seccomp_data, nr))));
	for (long nr : nrs) {
		f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, uint32_t(nr), 0, 1));
		f.push_back(BPF_STMT(BPF_RET | BPF_K, uint32_t(SECCOMP_RET_ERRNO | ENOSYS)));
	}
	f.push_back(BPF_STMT(BPF_RET | BPF_K, uint32_t(SECCOMP_RET_ALLOW)));

	sock_fprog prog = { (unsigned short)f.size(), f.data() };

	return !prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) &&
	       !prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

// Runs body in a child process under refuse_syscalls(nrs); returns its
// exit status (0 for success), or no_seccomp.
int run_refusing(initializer_list<long> nrs, const function<int()> &body)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (!pid)
		_exit(refuse_syscalls(nrs) ? body() : no_seccomp);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// In the child: no gtest assertions, a message on stderr and an exit code.
int child_fail(int code, const string &why)
{
	fprintf(stderr, "child: %s\n", why.c_str());
	return code;
}

int child_reads_all(io_engine *e, const vector<uint8_t> &content)
{
	block_buf buf = alloc_block();

	for (uint64_t b = 0; b < e->nr_blocks; b++)
		if (io_read_block(e, b, buf.get()) ||
		    memcmp(buf.get(), content.data() + b * block_size, block_size))
			return child_fail(20, "wrong data for block " + to_string(b));
	return 0;
}

TEST_F(IoEngineAsyncTests, refused_io_uring_fails_cleanly_and_async_falls_back)
{
	int status = run_refusing({ __NR_io_uring_setup }, [&] {
		engine_ptr e;
		pd_err err{};
		int r = open_engine(path_, IO_ENGINE_URING, 0, e, &err);

		if (r != -ENOTSUP)
			return child_fail(10, "io_uring open gave " + to_string(r));
		if (!strstr(err.msg, "io_uring"))
			return child_fail(11, string("message: ") + err.msg);

		r = open_engine(path_, IO_ENGINE_ASYNC, 0, e, &err);
		if (!io_engine_aio_available())
			return r == -ENOTSUP ? 0 : child_fail(12, "async without engines gave " + to_string(r));
		if (r)
			return child_fail(13, string("async open: ") + err.msg);
		if (strcmp(e->name, "libaio"))
			return child_fail(14, string("async chose ") + e->name);
		return child_reads_all(e.get(), content_);
	});

	if (status == no_seccomp)
		GTEST_SKIP() << "cannot install a seccomp filter here";
	EXPECT_EQ(0, status) << "see the child's message above";
}

TEST_F(IoEngineAsyncTests, refused_native_aio_fails_cleanly)
{
	int status = run_refusing({ __NR_io_setup }, [&] {
		engine_ptr e;
		pd_err err{};
		int r = open_engine(path_, IO_ENGINE_AIO, 0, e, &err);

		if (r != -ENOTSUP)
			return child_fail(10, "libaio open gave " + to_string(r));
		if (!err.msg[0])
			return child_fail(11, "no message");
		return 0;
	});

	if (status == no_seccomp)
		GTEST_SKIP() << "cannot install a seccomp filter here";
	EXPECT_EQ(0, status) << "see the child's message above";
}

TEST_F(IoEngineAsyncTests, async_without_any_usable_engine_is_enotsup)
{
	int status = run_refusing({ __NR_io_uring_setup, __NR_io_setup }, [&] {
		engine_ptr e;
		pd_err err{};
		int r = open_engine(path_, IO_ENGINE_ASYNC, 0, e, &err);

		if (r != -ENOTSUP)
			return child_fail(10, "async open gave " + to_string(r));
		if (!err.msg[0])
			return child_fail(11, "no message");
		/* the sync engine is unaffected */
		r = open_engine(path_, IO_ENGINE_SYNC, 0, e, &err);
		if (r)
			return child_fail(12, string("sync open: ") + err.msg);
		return child_reads_all(e.get(), content_);
	});

	if (status == no_seccomp)
		GTEST_SKIP() << "cannot install a seccomp filter here";
	EXPECT_EQ(0, status) << "see the child's message above";
}

TEST(IoEngineParseTests, parses_engine_names)
{
	io_engine_kind k = IO_ENGINE_AIO;

	EXPECT_EQ(0, io_engine_parse_kind("sync", &k));
	EXPECT_EQ(IO_ENGINE_SYNC, k);
	EXPECT_EQ(0, io_engine_parse_kind("async", &k));
	EXPECT_EQ(IO_ENGINE_ASYNC, k);
	EXPECT_EQ(0, io_engine_parse_kind("io_uring", &k));
	EXPECT_EQ(IO_ENGINE_URING, k);
	EXPECT_EQ(0, io_engine_parse_kind("libaio", &k));
	EXPECT_EQ(IO_ENGINE_AIO, k);
	EXPECT_EQ(-EINVAL, io_engine_parse_kind("fast", &k));
	EXPECT_EQ(-EINVAL, io_engine_parse_kind("", &k));
}

}	// namespace
