/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_CONTAINER_OF_H
#define PD_CONTAINER_OF_H

#include <stddef.h>

/* The struct that embeds member at ptr. */
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#endif
