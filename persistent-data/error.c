/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "error.h"

#include <stdio.h>
#include <string.h>

int pd_err_set(struct pd_err *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
		e->code = code;
	}
	return code;
}

void pd_err_prefix(struct pd_err *e, const char *fmt, ...)
{
	char old[PD_ERR_MSG_MAX];
	size_t n;
	va_list ap;

	if (!e)
		return;
	memcpy(old, e->msg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	if (n + 2 < sizeof(e->msg)) {
		size_t room = sizeof(e->msg) - n - 3, len = strlen(old);

		memcpy(e->msg + n, ": ", 2);
		n += 2;
		if (len > room)
			len = room;
		memcpy(e->msg + n, old, len);
		e->msg[n + len] = '\0';
	}
}

void pd_err_clear(struct pd_err *e)
{
	if (e) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}
