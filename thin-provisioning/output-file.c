/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "output-file.h"
#include "persistent-data/io-engine.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (stat(a, &sa) || stat(b, &sb))
		return false;
	if (S_ISBLK(sa.st_mode) && S_ISBLK(sb.st_mode))
		return sa.st_rdev == sb.st_rdev;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
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
