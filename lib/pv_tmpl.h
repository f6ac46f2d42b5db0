#ifndef PV_TMPL_H
#define PV_TMPL_H

#include <stddef.h>

#include "pv_arena.h"
#include "pv_buf.h"
#include "pv_err.h"

/*
 * Templates without logic (STYLE.md 8).  A template set is every file
 * below a directory (PIVOTA_TEMPLATE_DIR), read and parsed once per
 * process by pv_tmpl_load() and named by its path relative to that
 * directory ("orders.html", "partials/order_row.html",
 * "email/receipt.txt").  The set is process memory, owned by the
 * caller and freed by pv_tmpl_free().
 *
 * A template is text with slots:
 *
 *   {{name}}       text, HTML-escaped (& < > " '): safe in element text
 *                  and in quoted attribute values
 *   {{name|url}}   text, percent-encoded, then HTML-escaped
 *   {{name|html}}  a struct pv_html, inserted as is
 *
 * Templates whose name ends in ".txt" are plain text (e-mail bodies):
 * {{name}} is inserted verbatim, |url percent-encodes, |html is refused.
 *
 * Loops and conditionals are written in C: render a partial once per
 * row (or not at all) into a buffer and bind the result as html.  The
 * only ways to get a struct pv_html are rendering a template and
 * PV_HTML_LIT("a string literal"), so request data cannot reach a page
 * unescaped.
 *
 * Rendering fails (PV_E_INTERNAL) when a slot is unbound or bound with
 * the wrong kind: a template never renders a silent empty string.
 * Loading fails when a slot sits where escaping cannot make it safe in
 * an HTML template: inside <script> or <style>, in an on* event
 * attribute, in an unquoted attribute value or as an attribute name.
 */
struct pv_tmpl; /* opaque: a loaded template set */

/*
 * Markup that is safe to insert as is.  Only pv_tmpl_render_html(),
 * pv_tmpl_finish_html() and PV_HTML_LIT() make one; never fill it in
 * from anything else.
 */
struct pv_html {
	const char *s; /* the markup (arena or static), NUL-terminated */
	size_t len;    /* bytes in s */
};

enum pv_tmpl_kind {
	PV_TMPL_TEXT, /* s: escaped on insertion */
	PV_TMPL_HTML, /* html: inserted as is */
};

/* One binding; an array of them ends with PV_END. */
struct pv_tmpl_arg {
	const char *name;           /* slot name; NULL ends the array */
	enum pv_tmpl_kind kind;     /* what is bound */
	const char *s;              /* PV_TMPL_TEXT: NUL-terminated text */
	const struct pv_html *html; /* PV_TMPL_HTML: borrowed */
};

#define PV_TEXT(n, v) \
	{ \
		(n), PV_TMPL_TEXT, (v), NULL \
	}
#define PV_HTML(n, h) \
	{ \
		(n), PV_TMPL_HTML, NULL, (h) \
	}
#define PV_END \
	{ \
		NULL, PV_TMPL_TEXT, NULL, NULL \
	}

/* Markup from a string literal (a variable does not compile). */
#define PV_HTML_LIT(lit) pv_html_literal("" lit "")
struct pv_html pv_html_literal(const char *lit);

/* Names longer than this, and templates over PV_TMPL_FILE_MAX, fail. */
#define PV_TMPL_NAME_MAX 128
#define PV_TMPL_FILE_MAX (1024 * 1024)

/*
 * Reads and parses every regular file below dir (dot files skipped).
 * Returns the set (caller frees with pv_tmpl_free), or NULL with
 * PV_E_INTERNAL naming the file and line of the first problem
 * (unreadable file, unclosed or malformed slot, slot in an unsafe
 * place), or PV_E_NOMEM.
 */
struct pv_tmpl *pv_tmpl_load(const char *dir, struct pv_err *err);

/* Parses one template from memory into set (tests, generated text). */
int pv_tmpl_add(struct pv_tmpl *set, const char *name, const char *text,
    size_t len, struct pv_err *err);

/* An empty set for pv_tmpl_add(); NULL if out of memory. */
struct pv_tmpl *pv_tmpl_new(void);

void pv_tmpl_free(struct pv_tmpl *set);

/* 1 if the set holds a template called name. */
int pv_tmpl_has(const struct pv_tmpl *set, const char *name);

/*
 * Renders template name with args (PV_END-terminated) onto b.  Returns
 * 0, or -1 with PV_E_INTERNAL (unknown template, unbound slot, wrong
 * kind) or the buffer's failure (PV_E_NOMEM, PV_E_TOOBIG).
 */
int pv_tmpl_render(const struct pv_tmpl *set, const char *name,
    const struct pv_tmpl_arg *args, struct pv_buf *b, struct pv_err *err);

/*
 * Renders name into fresh arena memory (at most max bytes) as markup.
 */
int pv_tmpl_render_html(const struct pv_tmpl *set, const char *name,
    const struct pv_tmpl_arg *args, struct pv_arena *a, size_t max,
    struct pv_html *out, struct pv_err *err);

/*
 * Ends a buffer that only templates (and PV_HTML_LIT) wrote to, as
 * markup: what pv_buf_finish() reports, plus the result in *out.
 */
int pv_tmpl_finish_html(struct pv_buf *b, struct pv_html *out,
    struct pv_err *err);

/* Appends markup to b (a buffer that is itself markup). */
void pv_tmpl_append_html(struct pv_buf *b, const struct pv_html *h);

#endif /* PV_TMPL_H */
