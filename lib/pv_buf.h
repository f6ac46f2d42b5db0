#ifndef PV_BUF_H
#define PV_BUF_H

#include <stddef.h>

#include "pv_arena.h"
#include "pv_err.h"

/*
 * Bounded string builder backed by the arena (curl's dynbuf).
 *
 * Invariants: data[len] == '\0' whenever data != NULL; len < max; once
 * an append fails (cap or memory) the buffer is "failed" and every
 * later append does nothing, so a page built from many appends needs
 * one check, at pv_buf_finish(), which reports the first failure.
 * Callers allocate struct pv_buf (usually on the stack); its memory
 * belongs to the arena.
 */
struct pv_buf {
	struct pv_arena *arena; /* where the bytes live (borrowed) */
	char *data;             /* NUL-terminated contents, or NULL */
	size_t len;             /* bytes used, excluding the NUL */
	size_t cap;             /* bytes allocated */
	size_t max;             /* hard maximum of len + 1 */
	struct pv_err err;      /* first failure, sticky */
};

void pv_buf_init(struct pv_buf *b, struct pv_arena *a, size_t max);
void pv_buf_append(struct pv_buf *b, const void *p, size_t len);
void pv_buf_puts(struct pv_buf *b, const char *s);
void pv_buf_putc(struct pv_buf *b, char c);
void pv_buf_printf(struct pv_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s with & < > " ' replaced by entities. */
void pv_buf_html(struct pv_buf *b, const char *s, size_t len);
/* Appends s percent-encoded (RFC 3986 unreserved bytes kept). */
void pv_buf_urlenc(struct pv_buf *b, const char *s, size_t len);
/* Appends len bytes as lowercase hex. */
void pv_buf_hex(struct pv_buf *b, const unsigned char *p, size_t len);
void pv_buf_truncate(struct pv_buf *b, size_t len);
int pv_buf_failed(const struct pv_buf *b);

/*
 * Returns 0 and the contents (arena memory, NUL-terminated, "" when
 * empty), or -1 with the first failure copied into err.
 */
int pv_buf_finish(struct pv_buf *b, const char **out, size_t *outlen,
    struct pv_err *err);

#endif /* PV_BUF_H */
