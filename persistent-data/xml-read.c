/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "xml-read.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void xml_read_fail(struct xml_read *x, int code, const char *fmt, const char *what)
{
	char msg[PD_ERR_MSG_MAX];

	if (x->error)
		return;
	snprintf(msg, sizeof(msg), fmt, what);
	x->error = pd_err_set(x->err, code, "line %lu: %s",
			      (unsigned long)XML_GetCurrentLineNumber(x->xp), msg);
	XML_StopParser(x->xp, XML_FALSE);
}

void xml_read_visitor_failed(struct xml_read *x, int r)
{
	if (!r || x->error)
		return;
	x->error = pd_err_set(x->err, r, "line %lu: %s",
			      (unsigned long)XML_GetCurrentLineNumber(x->xp),
			      x->verr->code ? x->verr->msg : strerror(-r));
	XML_StopParser(x->xp, XML_FALSE);
}

int xml_read_run(struct xml_read *x, FILE *in, XML_StartElementHandler start,
		 XML_EndElementHandler end, int (*finish)(void *ctx), void *ctx)
{
	struct pd_err *err = x->err;
	char *buf = malloc(1 << 20);
	bool first = true;
	int r = 0;

	x->xp = XML_ParserCreate(NULL);
	if (!buf || !x->xp) {
		free(buf);
		if (x->xp)
			XML_ParserFree(x->xp);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	XML_SetUserData(x->xp, x);
	XML_SetElementHandler(x->xp, start, end);
	for (;;) {
		size_t n = fread(buf, 1, 1 << 20, in);
		bool done = n < (1 << 20);

		if (ferror(in)) {
			r = pd_err_set(err, -EIO, "cannot read the input");
			break;
		}
		if (first && n) {
			size_t i = 0;

			while (i < n && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r'))
				i++;
			if (i < n && buf[i] != '<') {
				r = pd_err_set(err, -EINVAL, "the input is not XML");
				break;
			}
		}
		first = false;
		if (!XML_Parse(x->xp, buf, (int)n, done)) {
			r = x->error ? x->error :
			    pd_err_set(err, -EINVAL, "line %lu: %s",
				       (unsigned long)XML_GetCurrentLineNumber(x->xp),
				       XML_ErrorString(XML_GetErrorCode(x->xp)));
			break;
		}
		if (done)
			break;
	}
	if (!r && !x->seen_sb)
		r = pd_err_set(err, -EINVAL, "missing superblock");
	if (!r) {
		r = finish(ctx);
		if (r)
			pd_err_set(err, r, "%s", x->verr->code ? x->verr->msg : strerror(-r));
	}
	XML_ParserFree(x->xp);
	free(buf);
	return r;
}

bool xml_fast_num(const char **p, const char *name, uint64_t *v)
{
	size_t n = strlen(name);
	const char *s = *p;
	uint64_t x = 0;

	if (strncmp(s, name, n) || s[n] != '=' || s[n + 1] != '"')
		return false;
	s += n + 2;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (x > (UINT64_MAX - 9) / 10)
			return false;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	if (*s != '"')
		return false;
	*v = x;
	*p = s + 1;
	return true;
}

bool xml_fast_str(const char **p, const char *name, char *out, size_t max)
{
	size_t n = strlen(name), len;
	const char *s = *p, *e;

	if (strncmp(s, name, n) || s[n] != '=' || s[n + 1] != '"')
		return false;
	s += n + 2;
	e = strchr(s, '"');
	if (!e || (len = (size_t)(e - s)) >= max || memchr(s, '&', len) || memchr(s, '<', len))
		return false;
	memcpy(out, s, len);
	out[len] = 0;
	*p = e + 1;
	return true;
}

bool xml_fast_lit(const char **p, const char *s)
{
	size_t n = strlen(s);

	if (strncmp(*p, s, n))
		return false;
	*p += n;
	return true;
}

int xml_fast_visitor_failed(unsigned long nr, int r, struct pd_err *verr, struct pd_err *err)
{
	return pd_err_set(err, r, "line %lu: %s", nr, verr->code ? verr->msg : strerror(-r));
}

int xml_fast_end(FILE *in, bool complete, int (*finish)(void *ctx), void *ctx,
		 struct pd_err *verr, struct pd_err *err)
{
	int r;

	if (ferror(in))
		return pd_err_set(err, -EIO, "cannot read the input");
	if (!complete)
		return 1;
	r = finish(ctx);
	if (r)
		return pd_err_set(err, r, "%s", verr->code ? verr->msg : strerror(-r));
	return 0;
}
