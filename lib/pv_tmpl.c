/*
 * The template engine (see pv_tmpl.h): files parsed once into runs of
 * literal text and slots, with the HTML context of every slot checked
 * at load time, and rendering that escapes by slot kind.  The parsed
 * set is plain malloc memory that lives as long as the process.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pv_tmpl.h"

enum filter {
	F_TEXT, /* {{name}} */
	F_URL,  /* {{name|url}} */
	F_HTML, /* {{name|html}} */
};

struct seg {
	int slot;           /* 0: literal text, 1: a slot */
	enum filter filter; /* slots only */
	const char *s;      /* literal bytes or the slot name (in text) */
	size_t len;         /* bytes of s */
};

struct tpl {
	char *name;       /* relative path */
	int plain;        /* a .txt template: no HTML escaping */
	char *text;       /* the source, which segs point into */
	struct seg *segs; /* in order */
	size_t nseg;      /* entries in segs */
};

struct pv_tmpl {
	struct tpl *v; /* templates */
	size_t n;      /* used */
	size_t cap;    /* allocated */
};

/* Where the scanner is in the markup between slots. */
enum ctx {
	C_TEXT,    /* element content */
	C_TAG,     /* inside <...> */
	C_COMMENT, /* inside <!-- ... --> */
	C_RAW,     /* inside <script> or <style> content */
};

struct scan {
	enum ctx ctx;    /* current context */
	char quote;      /* in C_TAG: the open quote, or 0 */
	char tag[16];    /* current or raw element name, lowercase */
	char attr[32];   /* in C_TAG: the last attribute name, lowercase */
	int value_start; /* in a quoted value, nothing inserted yet */
	int closing;     /* the tag is </...> */
	int line;        /* for messages */
};

/* Markup from a literal; see pv_tmpl.h. */
struct pv_html
pv_html_literal(const char *lit)
{
	struct pv_html h = { lit, strlen(lit) };

	return h;
}

/* Makes an empty set; see pv_tmpl.h. */
struct pv_tmpl *
pv_tmpl_new(void)
{
	return calloc(1, sizeof(struct pv_tmpl));
}

/* Frees a set and everything in it; NULL is allowed. */
void
pv_tmpl_free(struct pv_tmpl *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++) {
		free(set->v[i].name);
		free(set->v[i].text);
		free(set->v[i].segs);
	}
	free(set->v);
	free(set);
}

static const struct tpl *
find(const struct pv_tmpl *set, const char *name)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (strcmp(set->v[i].name, name) == 0)
			return &set->v[i];
	return NULL;
}

/* 1 if the set holds name. */
int
pv_tmpl_has(const struct pv_tmpl *set, const char *name)
{
	return find(set, name) != NULL;
}

static int
is_name(int c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == ':';
}

/* Advances the markup scanner over literal text p[0..len). */
static void
scan_text(struct scan *sc, const char *p, size_t len)
{
	size_t i, k, n;

	for (i = 0; i < len; i++) {
		char c = p[i];

		if (c == '\n')
			sc->line++;
		switch (sc->ctx) {
		case C_TEXT:
			if (c != '<')
				break;
			if (len - i >= 4 && memcmp(p + i, "<!--", 4) == 0) {
				sc->ctx = C_COMMENT;
				i += 3;
				break;
			}
			sc->ctx = C_TAG;
			sc->quote = 0;
			sc->attr[0] = '\0';
			sc->closing = i + 1 < len && p[i + 1] == '/';
			k = i + 1 + (size_t)sc->closing;
			for (n = 0; k < len && is_name(p[k]) &&
			     n + 1 < sizeof(sc->tag);
			     k++)
				sc->tag[n++] =
				    (char)tolower((unsigned char)p[k]);
			sc->tag[n] = '\0';
			i = k - 1;
			break;
		case C_COMMENT:
			if (len - i >= 3 && memcmp(p + i, "-->", 3) == 0) {
				sc->ctx = C_TEXT;
				i += 2;
			}
			break;
		case C_RAW:
			n = strlen(sc->tag);
			if (c == '<' && len - i >= n + 2 && p[i + 1] == '/' &&
			    strncasecmp(p + i + 2, sc->tag, n) == 0)
				sc->ctx = C_TEXT;
			break;
		case C_TAG:
			if (sc->quote != 0) {
				if (c == sc->quote)
					sc->quote = 0;
				sc->value_start = 0;
				break;
			}
			if (c == '"' || c == '\'') {
				sc->quote = c;
				sc->value_start = 1;
			} else if (c == '>') {
				sc->ctx = C_TEXT;
				if (!sc->closing &&
				    (strcmp(sc->tag, "script") == 0 ||
				        strcmp(sc->tag, "style") == 0))
					sc->ctx = C_RAW;
			} else if (is_name(c) &&
			    (i == 0 || isspace((unsigned char)p[i - 1]))) {
				for (n = 0; i < len && is_name(p[i]) &&
				     n + 1 < sizeof(sc->attr);
				     i++)
					sc->attr[n++] =
					    (char)tolower((unsigned char)p[i]);
				sc->attr[n] = '\0';
				i--;
			}
			break;
		}
	}
}

/* Is a slot with filter f allowed where sc is?  NULL if so, else why. */
static const char *
slot_unsafe(const struct scan *sc, enum filter f)
{
	switch (sc->ctx) {
	case C_TEXT:
		return NULL;
	case C_COMMENT:
		return "inside an HTML comment";
	case C_RAW:
		return "inside <script> or <style>";
	case C_TAG:
		break;
	}
	if (sc->quote == 0)
		return "outside a quoted attribute value";
	if (strncmp(sc->attr, "on", 2) == 0)
		return "in an on* event attribute";
	if (strcmp(sc->attr, "style") == 0)
		return "in a style attribute";
	if (f != F_URL && sc->value_start &&
	    (strcmp(sc->attr, "href") == 0 || strcmp(sc->attr, "src") == 0 ||
	        strcmp(sc->attr, "action") == 0 ||
	        strcmp(sc->attr, "formaction") == 0))
		return "at the start of a URL attribute (it could be "
		       "javascript:); start it with literal text or use |url";
	return NULL;
}

static int
push(struct tpl *t, size_t *cap, const struct seg *s, struct pv_err *err)
{
	struct seg *v;

	if (t->nseg == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		if ((v = realloc(t->segs, *cap * sizeof(*v))) == NULL) {
			PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
			return -1;
		}
		t->segs = v;
	}
	t->segs[t->nseg++] = *s;
	return 0;
}

/* Splits t->text into segments, checking every slot's place. */
static int
parse(struct tpl *t, size_t len, struct pv_err *err)
{
	struct scan sc = { C_TEXT, 0, "", "", 0, 0, 1 };
	const char *p = t->text, *end = t->text + len, *open, *close, *bar;
	size_t cap = 0;
	struct seg s;
	const char *why;

	while (p < end) {
		open = strstr(p, "{{");
		if (open == NULL || open >= end)
			open = end;
		if (open > p) {
			s = (struct seg){ 0, F_TEXT, p, (size_t)(open - p) };
			if (push(t, &cap, &s, err) == -1)
				return -1;
			if (!t->plain)
				scan_text(&sc, p, (size_t)(open - p));
		}
		if (open == end)
			break;
		if ((close = strstr(open + 2, "}}")) == NULL) {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "template %s:%d: unclosed {{", t->name, sc.line);
			return -1;
		}
		s = (struct seg){ 1, F_TEXT, open + 2,
			(size_t)(close - open - 2) };
		bar = memchr(s.s, '|', s.len);
		if (bar != NULL) {
			size_t flen = s.len - (size_t)(bar - s.s) - 1;

			if (flen == 3 && memcmp(bar + 1, "url", 3) == 0)
				s.filter = F_URL;
			else if (flen == 4 && memcmp(bar + 1, "html", 4) == 0)
				s.filter = F_HTML;
			else {
				PV_ERR(err, PV_E_INTERNAL, NULL,
				    "template %s:%d: unknown filter", t->name,
				    sc.line);
				return -1;
			}
			s.len = (size_t)(bar - s.s);
		}
		if (s.len == 0 || s.len > 64) {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "template %s:%d: bad slot name", t->name, sc.line);
			return -1;
		}
		for (size_t i = 0; i < s.len; i++) {
			if (!islower((unsigned char)s.s[i]) &&
			    !isdigit((unsigned char)s.s[i]) && s.s[i] != '_') {
				PV_ERR(err, PV_E_INTERNAL, NULL,
				    "template %s:%d: bad slot name", t->name,
				    sc.line);
				return -1;
			}
		}
		if (t->plain && s.filter == F_HTML) {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "template %s:%d: |html in a text template", t->name,
			    sc.line);
			return -1;
		}
		if (!t->plain && (why = slot_unsafe(&sc, s.filter)) != NULL) {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "template %s:%d: slot %.*s %s", t->name, sc.line,
			    (int)s.len, s.s, why);
			return -1;
		}
		sc.value_start = 0;
		if (push(t, &cap, &s, err) == -1)
			return -1;
		p = close + 2;
	}
	return 0;
}

/* Parses text as template name into set; see pv_tmpl.h. */
int
pv_tmpl_add(struct pv_tmpl *set, const char *name, const char *text, size_t len,
    struct pv_err *err)
{
	struct tpl t = { 0 }, *v;
	size_t nlen = strlen(name);

	if (nlen == 0 || nlen > PV_TMPL_NAME_MAX || find(set, name) != NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "template %s: bad or repeated "
		    "name",
		    name);
		return -1;
	}
	if (memchr(text, '\0', len) != NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "template %s: NUL byte", name);
		return -1;
	}
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 32;

		if ((v = realloc(set->v, cap * sizeof(*v))) == NULL) {
			PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
			return -1;
		}
		set->v = v;
		set->cap = cap;
	}
	t.plain = nlen > 4 && strcmp(name + nlen - 4, ".txt") == 0;
	t.name = strdup(name);
	t.text = malloc(len + 1);
	if (t.name == NULL || t.text == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		goto fail;
	}
	memcpy(t.text, text, len);
	t.text[len] = '\0';
	if (parse(&t, len, err) == -1)
		goto fail;
	set->v[set->n++] = t;
	return 0;
fail:
	free(t.name);
	free(t.text);
	free(t.segs);
	return -1;
}

static int
load_file(struct pv_tmpl *set, const char *path, const char *name,
    struct pv_err *err)
{
	FILE *f;
	char *buf = NULL;
	size_t n;
	int rc = -1;

	if ((f = fopen(path, "rb")) == NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "template %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if ((buf = malloc(PV_TMPL_FILE_MAX + 1)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	n = fread(buf, 1, PV_TMPL_FILE_MAX + 1, f);
	if (ferror(f) || n > PV_TMPL_FILE_MAX) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "template %s: unreadable or "
		    "too big",
		    path);
		goto out;
	}
	rc = pv_tmpl_add(set, name, buf, n, err);
out:
	free(buf);
	fclose(f);
	return rc;
}

/* Loads dir/rel (rel "" at the top) recursively. */
static int
load_dir(struct pv_tmpl *set, const char *dir, const char *rel, int depth,
    struct pv_err *err)
{
	char path[4096], name[PV_TMPL_NAME_MAX + 1];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc = 0, n;

	n = snprintf(path, sizeof(path), "%s%s%s", dir, *rel ? "/" : "", rel);
	if (n < 0 || (size_t)n >= sizeof(path) || depth > 8) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "template path too long");
		return -1;
	}
	if ((d = opendir(path)) == NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "template directory %s: %s",
		    path, strerror(errno));
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		n = snprintf(name, sizeof(name), "%s%s%s", rel, *rel ? "/" : "",
		    de->d_name);
		if (n < 0 || (size_t)n >= sizeof(name)) {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "template name too "
			    "long in %s",
			    path);
			rc = -1;
			break;
		}
		n = snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (n < 0 || (size_t)n >= sizeof(path) ||
		    stat(path, &st) == -1) {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "template %s: cannot "
			    "stat",
			    name);
			rc = -1;
			break;
		}
		if (S_ISDIR(st.st_mode))
			rc = load_dir(set, dir, name, depth + 1, err);
		else if (S_ISREG(st.st_mode))
			rc = load_file(set, path, name, err);
	}
	closedir(d);
	return rc;
}

/* Loads a directory of templates; see pv_tmpl.h. */
struct pv_tmpl *
pv_tmpl_load(const char *dir, struct pv_err *err)
{
	struct pv_tmpl *set;

	if ((set = pv_tmpl_new()) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return NULL;
	}
	if (load_dir(set, dir, "", 0, err) == -1) {
		pv_tmpl_free(set);
		return NULL;
	}
	return set;
}

static const struct pv_tmpl_arg *
arg(const struct pv_tmpl_arg *args, const struct seg *s)
{
	for (; args->name != NULL; args++)
		if (strlen(args->name) == s->len &&
		    memcmp(args->name, s->s, s->len) == 0)
			return args;
	return NULL;
}

/* Renders a template onto b; see pv_tmpl.h. */
int
pv_tmpl_render(const struct pv_tmpl *set, const char *name,
    const struct pv_tmpl_arg *args, struct pv_buf *b, struct pv_err *err)
{
	const struct tpl *t;
	const struct pv_tmpl_arg *a;
	const struct seg *s;
	size_t i;

	if ((t = find(set, name)) == NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "no template %s", name);
		return -1;
	}
	for (i = 0; i < t->nseg; i++) {
		s = &t->segs[i];
		if (!s->slot) {
			pv_buf_append(b, s->s, s->len);
			continue;
		}
		a = arg(args, s);
		if (a == NULL) {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "template %s: slot %.*s is unbound", name,
			    (int)s->len, s->s);
			return -1;
		}
		if ((s->filter == F_HTML) != (a->kind == PV_TMPL_HTML) ||
		    (a->kind == PV_TMPL_HTML && a->html == NULL) ||
		    (a->kind == PV_TMPL_TEXT && a->s == NULL)) {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "template %s: slot %.*s is bound with the wrong "
			    "kind",
			    name, (int)s->len, s->s);
			return -1;
		}
		switch (s->filter) {
		case F_HTML:
			pv_buf_append(b, a->html->s, a->html->len);
			break;
		case F_URL:
			/* Percent-encoding leaves nothing to HTML-escape. */
			pv_buf_urlenc(b, a->s, strlen(a->s));
			break;
		case F_TEXT:
			if (t->plain)
				pv_buf_puts(b, a->s);
			else
				pv_buf_html(b, a->s, strlen(a->s));
			break;
		}
	}
	if (pv_buf_failed(b)) {
		*err = b->err;
		return -1;
	}
	return 0;
}

/* Ends a markup buffer; see pv_tmpl.h. */
int
pv_tmpl_finish_html(struct pv_buf *b, struct pv_html *out, struct pv_err *err)
{
	return pv_buf_finish(b, &out->s, &out->len, err);
}

/* Renders into new arena memory; see pv_tmpl.h. */
int
pv_tmpl_render_html(const struct pv_tmpl *set, const char *name,
    const struct pv_tmpl_arg *args, struct pv_arena *a, size_t max,
    struct pv_html *out, struct pv_err *err)
{
	struct pv_buf b;

	pv_buf_init(&b, a, max);
	if (pv_tmpl_render(set, name, args, &b, err) == -1)
		return -1;
	return pv_tmpl_finish_html(&b, out, err);
}

/* Appends markup; see pv_tmpl.h. */
void
pv_tmpl_append_html(struct pv_buf *b, const struct pv_html *h)
{
	pv_buf_append(b, h->s, h->len);
}
