/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef TESTS_TEST_FILES_H
#define TESTS_TEST_FILES_H
/*
 * Scratch files for unit tests: a temporary directory removed with its
 * contents, whole-file reads and writes, random block contents, owning
 * pointers for aligned block buffers and I/O engines, and request
 * batches.  Errors throw std::runtime_error (std::bad_alloc for memory).
 */

extern "C" {
#include "persistent-data/io-engine.h"
}

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace test_files {

using std::bad_alloc;
using std::error_code;
using std::unique_ptr;
using std::mt19937_64;
using std::runtime_error;
using std::string;
using std::vector;
namespace filesystem = std::filesystem;

// A directory of scratch files, removed with everything in it.
class temp_dir {
public:
	explicit temp_dir(const string &parent)
	{
		string tmpl = parent + "/thinp-unit-test.XXXXXX";
		vector<char> buf(tmpl.begin(), tmpl.end());

		buf.push_back('\0');
		if (!mkdtemp(buf.data()))
			throw runtime_error("mkdtemp in " + parent + ": " + strerror(errno));
		path_ = buf.data();
	}

	~temp_dir()
	{
		error_code ec;

		filesystem::remove_all(path_, ec);
	}

	temp_dir(const temp_dir &) = delete;
	temp_dir &operator=(const temp_dir &) = delete;

	string file(const string &name) const { return path_ + "/" + name; }

private:
	string path_;
};

// Where "a regular file" lives: $TMPDIR, else /var/tmp (disk backed on
// most systems, unlike /tmp), so that O_DIRECT is usually supported.
inline string regular_dir()
{
	const char *t = getenv("TMPDIR");

	return t && *t ? t : "/var/tmp";
}

inline vector<uint8_t> random_content(uint64_t nr_blocks, uint64_t seed)
{
	mt19937_64 rng(seed);
	vector<uint8_t> v(nr_blocks * MD_BLOCK_SIZE);

	for (size_t i = 0; i < v.size(); i += sizeof(uint64_t)) {
		uint64_t x = rng();

		memcpy(v.data() + i, &x, sizeof(x));
	}
	// Block numbers up front make a wrong-block read obvious.
	for (uint64_t b = 0; b < nr_blocks; b++)
		memcpy(v.data() + b * MD_BLOCK_SIZE, &b, sizeof(b));
	return v;
}

inline void write_file(const string &path, const uint8_t *data, size_t len)
{
	int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		throw runtime_error("open " + path + ": " + strerror(errno));
	for (size_t done = 0; done < len;) {
		ssize_t k = write(fd, data + done, len - done);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			close(fd);
			throw runtime_error("write " + path + ": " + strerror(errno));
		}
		done += size_t(k);
	}
	close(fd);
}

inline void write_file(const string &path, const vector<uint8_t> &v)
{
	write_file(path, v.data(), v.size());
}

inline vector<uint8_t> read_file(const string &path)
{
	int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
	vector<uint8_t> v;
	uint8_t buf[65536];

	if (fd < 0)
		throw runtime_error("open " + path + ": " + strerror(errno));
	for (;;) {
		ssize_t k = read(fd, buf, sizeof(buf));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			close(fd);
			throw runtime_error("read " + path + ": " + strerror(errno));
		}
		if (k == 0)
			break;
		v.insert(v.end(), buf, buf + k);
	}
	close(fd);
	return v;
}

struct free_deleter {
	void operator()(void *p) const { free(p); }
};
using block_buf = unique_ptr<void, free_deleter>;

/* An aligned MD_BLOCK_SIZE buffer, as the engines want. */
inline block_buf alloc_block()
{
	void *p = io_alloc_block();

	if (!p)
		throw bad_alloc();
	return block_buf(p);
}

struct engine_deleter {
	void operator()(io_engine *e) const { io_engine_destroy(e); }
};
using engine_ptr = unique_ptr<io_engine, engine_deleter>;

/*
 * Requests for blocks, each with its own aligned buffer, filled with 0xee
 * beforehand so that a request the engine did not serve shows.
 */
struct batch {
	vector<io_req> reqs;
	vector<block_buf> bufs;

	explicit batch(const vector<uint64_t> &blocks)
	{
		for (uint64_t b : blocks) {
			bufs.push_back(alloc_block());
			memset(bufs.back().get(), 0xee, MD_BLOCK_SIZE);
			reqs.push_back(io_req{ b, bufs.back().get(), 1, 0 });
		}
	}

	unsigned size() const { return unsigned(reqs.size()); }
	const uint8_t *data(size_t i) const { return static_cast<const uint8_t *>(reqs[i].buf); }
	uint8_t *data(size_t i) { return static_cast<uint8_t *>(reqs[i].buf); }
};

} // namespace test_files

#endif
