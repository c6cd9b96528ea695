/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_ERROR_H
#define PD_ERROR_H

/*
 * A small error record: a negative errno and a message for the user.
 * Library code fills it and returns the code; the command prints the
 * message with its own name in front.  Library code never prints.
 */

#include <stdarg.h>

#define PD_ERR_MSG_MAX 512

struct pd_err {
	int code;			/* negative errno, 0 when clear */
	char msg[PD_ERR_MSG_MAX];
};

/* Sets *e (if e is not NULL) and returns code, which must be negative. */
int pd_err_set(struct pd_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "<prefix>: <old message>". */
void pd_err_prefix(struct pd_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void pd_err_clear(struct pd_err *e);

#endif
