/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "output-file.h"
#include "persistent-data/io-engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/*
 * Where a path's bytes live, as a few identities: the file or device node
 * itself (device and inode), a block device's number, and, for a loop
 * device, the same for the file or device behind it (followed through
 * loops over loops).  Two paths are the same storage when any identity of
 * one is an identity of the other.
 */
#define MAX_IDENTITIES 16

struct identity {
	bool blockdev;		/* then rdev; else dev and ino */
	dev_t rdev, dev;
	ino_t ino;
};

struct identities {
	unsigned nr;
	struct identity id[MAX_IDENTITIES];
};

static void add_identity(struct identities *ids, struct identity id)
{
	if (ids->nr < MAX_IDENTITIES)
		ids->id[ids->nr++] = id;
}

static void collect(const char *path, struct identities *ids, unsigned depth)
{
	char sys[64], backing[4096];
	struct loop_info64 info;
	struct stat st;
	ssize_t n;
	int fd;

	if (depth > 4 || stat(path, &st))
		return;
	add_identity(ids, (struct identity) { .dev = st.st_dev, .ino = st.st_ino });
	if (!S_ISBLK(st.st_mode))
		return;
	add_identity(ids, (struct identity) { .blockdev = true, .rdev = st.st_rdev });

	/* a loop device: the backing file by number (even if renamed or deleted) ... */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0) {
		if (!ioctl(fd, LOOP_GET_STATUS64, &info))
			add_identity(ids, (struct identity) {
				.dev = (dev_t)info.lo_device, .ino = (ino_t)info.lo_inode });
		close(fd);
	}
	/* ... and by path, to follow a loop over a block device or another loop */
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/loop/backing_file",
		 major(st.st_rdev), minor(st.st_rdev));
	fd = open(sys, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, backing, sizeof(backing) - 1);
	close(fd);
	if (n <= 0)
		return;
	backing[n] = '\0';
	if (backing[n - 1] == '\n')
		backing[n - 1] = '\0';
	collect(backing, ids, depth + 1);
}

static bool same_identity(const struct identity *x, const struct identity *y)
{
	if (x->blockdev != y->blockdev)
		return false;
	return x->blockdev ? x->rdev == y->rdev : x->dev == y->dev && x->ino == y->ino;
}

bool same_file(const char *a, const char *b)
{
	struct identities ia = { 0 }, ib = { 0 };

	collect(a, &ia, 0);
	collect(b, &ib, 0);
	for (unsigned i = 0; i < ia.nr; i++)
		for (unsigned j = 0; j < ib.nr; j++)
			if (same_identity(&ia.id[i], &ib.id[j]))
				return true;
	return false;
}

int output_check(const char *output, const char *input, struct pd_err *err)
{
	struct stat st;

	if (stat(output, &st)) {
		if (errno == ENOENT)
			return pd_err_set(err, -ENOENT,
					  "%s: Output file does not exist.  The output file should either be a block device, or an existing file.  The file needs to be large enough to hold the metadata.",
					  output);
		return pd_err_set(err, -errno, "%s: %s", output, strerror(errno));
	}
	if (S_ISDIR(st.st_mode))
		return pd_err_set(err, -EISDIR, "%s: Is a directory", output);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return pd_err_set(err, -EINVAL, "%s: not a block device or regular file", output);
	if (input && same_file(input, output))
		return pd_err_set(err, -EINVAL,
				  "%s: the output is the input; write to another device or file",
				  output);
	return 0;
}

void output_invalidate(const char *output)
{
	static const char zero[MD_BLOCK_SIZE];
	int fd = open(output, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (pwrite(fd, zero, sizeof(zero), 0) == (ssize_t)sizeof(zero))
		(void)fdatasync(fd);
	close(fd);
}
