/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "thin-provisioning/dm-ioctl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define DM_BUF 16384u

static struct dm_ioctl *dm_alloc(dev_t dev, size_t extra)
{
	struct dm_ioctl *io = calloc(1, DM_BUF + extra);

	if (!io)
		return NULL;
	io->version[0] = DM_VERSION_MAJOR;
	io->version[1] = 0;
	io->version[2] = 0;
	io->data_size = (uint32_t)(DM_BUF + extra);
	io->data_start = sizeof(*io);
	io->dev = (uint64_t)makedev(major(dev), minor(dev));
	return io;
}

static int dm_call(unsigned long cmd, struct dm_ioctl *io, const char *what, struct pd_err *err)
{
	int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return pd_err_set(err, -errno, "/dev/mapper/control: %s", strerror(errno));
	if (ioctl(fd, cmd, io)) {
		int e = errno;

		r = pd_err_set(err, -e, "%s: %s", what, strerror(e));
	}
	close(fd);
	return r;
}

int dm_table(dev_t dev, char *type, size_t type_len, char *params, size_t params_len,
	     struct pd_err *err)
{
	struct dm_ioctl *io = dm_alloc(dev, 0);
	struct dm_target_spec *t;
	int r;

	if (!io)
		return pd_err_set(err, -ENOMEM, "out of memory");
	io->flags = DM_STATUS_TABLE_FLAG;
	r = dm_call(DM_TABLE_STATUS, io, "reading the device-mapper table", err);
	if (!r && (io->flags & DM_BUFFER_FULL_FLAG))
		r = pd_err_set(err, -E2BIG, "device-mapper table too large");
	if (!r && !io->target_count)
		r = pd_err_set(err, -ENXIO, "device %u:%u has no device-mapper table",
			       major(dev), minor(dev));
	if (!r) {
		t = (struct dm_target_spec *)((char *)io + io->data_start);
		snprintf(type, type_len, "%.*s", (int)sizeof(t->target_type), t->target_type);
		snprintf(params, params_len, "%s", (char *)(t + 1));
	}
	if (r == -ENXIO || r == -ENODEV)
		r = pd_err_set(err, -ENXIO, "device %u:%u is not a device-mapper device",
			       major(dev), minor(dev));
	free(io);
	return r;
}

int dm_message(dev_t dev, const char *message, struct pd_err *err)
{
	size_t len = strlen(message) + 1;
	struct dm_ioctl *io = dm_alloc(dev, len);
	struct dm_target_msg *m;
	char what[128];
	int r;

	if (!io)
		return pd_err_set(err, -ENOMEM, "out of memory");
	m = (struct dm_target_msg *)((char *)io + io->data_start);
	m->sector = 0;
	memcpy(m->message, message, len);
	snprintf(what, sizeof(what), "message '%s' to the pool", message);
	r = dm_call(DM_TARGET_MSG, io, what, err);
	free(io);
	return r;
}

static int scan(const char *dir, dev_t dev, char *path, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		struct stat st;
		char p[512];

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (!stat(p, &st) && S_ISBLK(st.st_mode) && st.st_rdev == dev) {
			snprintf(path, len, "%s", p);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

int dm_find_node(dev_t dev, char *path, size_t len, struct pd_err *err)
{
	char p[64];
	struct stat st;

	snprintf(p, sizeof(p), "/dev/block/%u:%u", major(dev), minor(dev));
	if (!stat(p, &st) && S_ISBLK(st.st_mode) && st.st_rdev == dev) {
		snprintf(path, len, "%s", p);
		return 0;
	}
	if (scan("/dev", dev, path, len) || scan("/dev/mapper", dev, path, len))
		return 0;
	return pd_err_set(err, -ENOENT, "no device node for %u:%u under /dev", major(dev), minor(dev));
}
