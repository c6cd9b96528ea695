/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Which engines this build has; the missing ones refuse with -ENOTSUP. */
#include "config.h"
#include "io-engine.h"

#include <errno.h>

#ifndef HAVE_LIBURING
bool io_engine_uring_available(void)
{
	return false;
}

int io_engine_uring_create(const struct io_engine *base, struct io_engine **out,
			   struct pd_err *err)
{
	(void)base;
	(void)out;
	return pd_err_set(err, -ENOTSUP,
			  "this build has no io_uring engine (built --without-liburing)");
}
#endif

#ifndef HAVE_LIBAIO
bool io_engine_aio_available(void)
{
	return false;
}

int io_engine_aio_create(const struct io_engine *base, struct io_engine **out,
			 struct pd_err *err)
{
	(void)base;
	(void)out;
	return pd_err_set(err, -ENOTSUP,
			  "this build has no libaio engine (built --without-libaio)");
}
#endif
