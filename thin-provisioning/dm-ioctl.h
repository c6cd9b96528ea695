/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_DM_IOCTL_H
#define THIN_DM_IOCTL_H

/*
 * The few device-mapper ioctls thin_migrate needs, raw (linux/dm-ioctl.h,
 * through /dev/mapper/control): a device's table, and a message to a
 * target.  Devices are named by device number.
 */

#include "persistent-data/error.h"

#include <stddef.h>
#include <sys/types.h>

/*
 * The first target of dev's live table: its type and parameters.
 * -ENXIO when dev is not a device-mapper device.
 */
int dm_table(dev_t dev, char *type, size_t type_len, char *params, size_t params_len,
	     struct pd_err *err);

/* Sends message to the target at sector 0 of dev. */
int dm_message(dev_t dev, const char *message, struct pd_err *err);

/* A block device node for dev under /dev or /dev/mapper, or -ENOENT. */
int dm_find_node(dev_t dev, char *path, size_t len, struct pd_err *err);

#endif
