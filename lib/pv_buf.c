/*
 * The bounded string builder.  Growth doubles and copies within the
 * arena (which cannot free), so a buffer of n bytes costs at most 2n.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pv_buf.h"

#define MIN_CAP 256u

/* Starts an empty buffer that may hold at most max - 1 bytes. */
void
pv_buf_init(struct pv_buf *b, struct pv_arena *a, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->arena = a;
	b->max = max;
}

/* Makes room for n more bytes plus the NUL; 0 or -1 (buffer failed). */
static int
grow(struct pv_buf *b, size_t n)
{
	size_t want, cap;
	char *p;

	if (b->err.code != PV_OK)
		return -1;
	if (n >= b->max || b->len >= b->max - n) {
		PV_ERR(&b->err, PV_E_TOOBIG, NULL,
		    "text exceeds its %zu byte limit", b->max - 1);
		return -1;
	}
	want = b->len + n + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap != 0 ? b->cap : MIN_CAP;
	while (cap < want)
		cap = cap > b->max / 2 ? b->max : cap * 2;
	if ((p = pv_arena_alloc(b->arena, cap, &b->err)) == NULL)
		return -1;
	if (b->len != 0)
		memcpy(p, b->data, b->len);
	p[b->len] = '\0';
	b->data = p;
	b->cap = cap;
	return 0;
}

/* Appends len bytes (which may contain NULs). */
void
pv_buf_append(struct pv_buf *b, const void *p, size_t len)
{
	if (grow(b, len) == -1)
		return;
	if (len != 0)
		memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
}

/* Appends a C string. */
void
pv_buf_puts(struct pv_buf *b, const char *s)
{
	pv_buf_append(b, s, strlen(s));
}

/* Appends one byte. */
void
pv_buf_putc(struct pv_buf *b, char c)
{
	pv_buf_append(b, &c, 1);
}

/* Appends formatted text. */
void
pv_buf_printf(struct pv_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err.code != PV_OK)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		PV_ERR(&b->err, PV_E_INTERNAL, NULL, "bad format");
		return;
	}
	if (grow(b, (size_t)n) == -1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		PV_ERR(&b->err, PV_E_INTERNAL, NULL, "bad format");
		return;
	}
	b->len += (size_t)n;
}

/* Appends s HTML-escaped, safe in element text and quoted attributes. */
void
pv_buf_html(struct pv_buf *b, const char *s, size_t len)
{
	size_t i, run;

	for (i = 0; i < len; i = run + 1) {
		run = i;
		while (run < len && strchr("&<>\"'", s[run]) == NULL)
			run++;
		pv_buf_append(b, s + i, run - i);
		if (run == len)
			break;
		switch (s[run]) {
		case '&':
			pv_buf_puts(b, "&amp;");
			break;
		case '<':
			pv_buf_puts(b, "&lt;");
			break;
		case '>':
			pv_buf_puts(b, "&gt;");
			break;
		case '"':
			pv_buf_puts(b, "&quot;");
			break;
		default:
			pv_buf_puts(b, "&#39;");
			break;
		}
	}
}

/* Appends s percent-encoded; only RFC 3986 unreserved bytes pass. */
void
pv_buf_urlenc(struct pv_buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;
	char esc[3];
	size_t i;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			pv_buf_putc(b, (char)c);
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[c >> 4];
		esc[2] = hex[c & 15];
		pv_buf_append(b, esc, 3);
	}
}

/* Appends bytes as lowercase hex. */
void
pv_buf_hex(struct pv_buf *b, const unsigned char *p, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char pair[2];
	size_t i;

	for (i = 0; i < len; i++) {
		pair[0] = hex[p[i] >> 4];
		pair[1] = hex[p[i] & 15];
		pv_buf_append(b, pair, 2);
	}
}

/* Shortens the contents to len bytes (no-op if already shorter). */
void
pv_buf_truncate(struct pv_buf *b, size_t len)
{
	if (b->data == NULL || len >= b->len)
		return;
	b->len = len;
	b->data[len] = '\0';
}

/* Non-zero once an append has failed. */
int
pv_buf_failed(const struct pv_buf *b)
{
	return b->err.code != PV_OK;
}

/* Hands out the contents or reports the first failure into err. */
int
pv_buf_finish(struct pv_buf *b, const char **out, size_t *outlen,
    struct pv_err *err)
{
	if (b->err.code != PV_OK) {
		if (err != NULL && err->code == PV_OK)
			*err = b->err;
		return -1;
	}
	*out = b->data != NULL ? b->data : "";
	if (outlen != NULL)
		*outlen = b->len;
	return 0;
}
