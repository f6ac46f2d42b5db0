/*
 * Catalog import: the CSV, JSON and JSON Lines readers, the checks
 * every product passes whatever its source, and the import itself,
 * which stages the records in chunks (one INSERT of a JSON array per
 * chunk) and lets catalog_apply() merge them into the catalog.  The
 * rules a file must follow are the database's CHECKs, tested here
 * first so that an operator gets row numbers instead of a constraint
 * name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "pv_buf.h"
#include "pv_catalog.h"
#include "pv_db.h"
#include "pv_json.h"
#include "pv_money.h"
#include "pv_valid.h"

#define TITLE_MAX       500
#define TEXT_MAX        255 /* vendor, type, tag, SKU, ids, options */
#define DESCRIPTION_MAX 65535
#define URL_MAX         2000
#define LIST_MAX        250              /* tags, images */
#define OPTIONS_MAX     10               /* option pairs per variant */
#define PRICE_MAX       10000000000000LL /* CHECK of variants */
#define QTY_MAX         1000000000LL
#define CSV_COLS_MAX    128
#define CHUNK_PRODUCTS  500 /* products staged per statement */
#define DEFAULT_TITLE   "Default Title"

/* A string set with a value per key (open addressing, arena memory). */
struct smap {
	const char **keys; /* NULL = empty slot */
	size_t *vals;      /* value of each key */
	size_t cap;        /* slots, a power of two */
	size_t n;          /* keys */
};

struct pv_catalog_index {
	struct smap handles;  /* handle -> product index */
	struct smap products; /* product external id -> product index */
	struct smap variants; /* variant external id -> product index */
};

static size_t
hash(const char *s)
{
	size_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/*
 * Finds key; if absent adds it with val.  Returns 1 and the stored
 * value in *found when it was there, 0 when added, -1 on no memory.
 */
static int
smap_put(struct pv_arena *a, struct smap *m, const char *key, size_t val,
    size_t *found, struct pv_err *err)
{
	const char **keys;
	size_t *vals, cap, i, j;

	if (m->cap == 0 || 2 * (m->n + 1) > m->cap) {
		cap = m->cap == 0 ? 64 : 2 * m->cap;
		if ((keys = pv_arena_calloc(a, cap, sizeof(*keys), err)) ==
		        NULL ||
		    (vals = pv_arena_calloc(a, cap, sizeof(*vals), err)) ==
		        NULL)
			return -1;
		for (i = 0; i < m->cap; i++) {
			if (m->keys[i] == NULL)
				continue;
			for (j = hash(m->keys[i]) & (cap - 1); keys[j] != NULL;
			     j = (j + 1) & (cap - 1))
				;
			keys[j] = m->keys[i];
			vals[j] = m->vals[i];
		}
		m->keys = keys;
		m->vals = vals;
		m->cap = cap;
	}
	for (i = hash(key) & (m->cap - 1); m->keys[i] != NULL;
	     i = (i + 1) & (m->cap - 1)) {
		if (strcmp(m->keys[i], key) == 0) {
			*found = m->vals[i];
			return 1;
		}
	}
	m->keys[i] = key;
	m->vals[i] = val;
	m->n++;
	return 0;
}

/* Sets up an empty catalog; see pv_catalog.h. */
int
pv_catalog_init(struct pv_catalog *c, struct pv_arena *a, const char *currency,
    struct pv_err *err)
{
	memset(c, 0, sizeof(*c));
	c->arena = a;
	c->currency = currency;
	if (pv_money_currency_check(currency, "currency", err) == -1)
		return -1;
	c->index = pv_arena_calloc(a, 1, sizeof(*c->index), err);
	return c->index == NULL ? -1 : 0;
}

/* Records "where: msg"; see pv_catalog.h. */
int
pv_catalog_problem(struct pv_catalog *c, const char *where, const char *msg,
    struct pv_err *err)
{
	const char **e;
	size_t cap;

	c->errors_total++;
	if (c->nerrors == PV_CATALOG_ERRORS_KEPT)
		return 0;
	if (c->errors == NULL || (c->nerrors & (c->nerrors - 1)) == 0) {
		cap = c->nerrors == 0 ? 8 : 2 * c->nerrors;
		if ((e = pv_arena_calloc(c->arena, cap, sizeof(*e), err)) ==
		    NULL)
			return -1;
		if (c->nerrors > 0)
			memcpy(e, c->errors, c->nerrors * sizeof(*e));
		c->errors = e;
	}
	if ((c->errors[c->nerrors] = pv_arena_printf(c->arena, err, "%s: %s",
	         where, msg)) == NULL)
		return -1;
	c->nerrors++;
	return 0;
}

/*
 * Records the validation failure in verr (if any) against where and
 * marks p bad.  Returns -1 only when memory ran out.
 */
static int
problem(struct pv_catalog *c, struct pv_catalog_product *p, const char *where,
    struct pv_err *verr, struct pv_err *err)
{
	if (verr->code == PV_OK)
		return 0;
	if (verr->code == PV_E_NOMEM || verr->code == PV_E_TOOBIG) {
		PV_ERR(err, verr->code, NULL, "%s", verr->msg);
		return -1;
	}
	if (p != NULL)
		p->bad = true;
	if (pv_catalog_problem(c, where, verr->msg, err) == -1)
		return -1;
	pv_err_clear(verr);
	return 0;
}

/* A new product; see pv_catalog.h. */
struct pv_catalog_product *
pv_catalog_add_product(struct pv_catalog *c, const char *where,
    struct pv_err *err)
{
	struct pv_catalog_product *p, *np;
	size_t cap;

	if (c->n == c->cap) {
		cap = c->cap == 0 ? 64 : 2 * c->cap;
		if ((np = pv_arena_calloc(c->arena, cap, sizeof(*np), err)) ==
		    NULL)
			return NULL;
		if (c->n > 0)
			memcpy(np, c->products, c->n * sizeof(*np));
		c->products = np;
		c->cap = cap;
	}
	p = &c->products[c->n++];
	memset(p, 0, sizeof(*p));
	p->handle = p->title = p->description = p->vendor = "";
	p->product_type = p->url = "";
	p->where = where;
	return p;
}

/* A new variant of p; see pv_catalog.h. */
struct pv_catalog_variant *
pv_catalog_add_variant(struct pv_catalog *c, struct pv_catalog_product *p,
    const char *where, struct pv_err *err)
{
	struct pv_catalog_variant *v, *nv;
	size_t cap;

	if (p->nvariants == p->capvariants) {
		cap = p->capvariants == 0 ? 4 : 2 * p->capvariants;
		if ((nv = pv_arena_calloc(c->arena, cap, sizeof(*nv), err)) ==
		    NULL)
			return NULL;
		if (p->nvariants > 0)
			memcpy(nv, p->variants, p->nvariants * sizeof(*nv));
		p->variants = nv;
		p->capvariants = cap;
	}
	v = &p->variants[p->nvariants++];
	memset(v, 0, sizeof(*v));
	v->sku = v->title = v->image_url = "";
	v->options = "{}";
	v->compare_minor = -1;
	v->tracked = true;
	v->where = where;
	return v;
}

/* A URL-safe handle; see pv_catalog.h. */
const char *
pv_catalog_slug(struct pv_arena *a, const char *title, struct pv_err *err)
{
	size_t i, o = 0, len = strlen(title);
	char *s;
	char ch;

	if ((s = pv_arena_alloc(a, (len < 200 ? len : 200) + 24, err)) == NULL)
		return NULL;
	for (i = 0; i < len && o < 200; i++) {
		ch = title[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
			s[o++] = ch;
		else if (o > 0 && s[o - 1] != '-')
			s[o++] = '-';
	}
	while (o > 0 && s[o - 1] == '-')
		o--;
	if (o == 0) /* nothing ASCII in the title: a stable hash of it */
		o = (size_t)snprintf(s, 24, "product-%08lx",
		    (unsigned long)(hash(title) & 0xffffffffu));
	s[o] = '\0';
	return s;
}

/* True for [a-z0-9]([a-z0-9-]*[a-z0-9])?, at most 255 bytes. */
static bool
is_handle(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= TEXT_MAX &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == len &&
	    s[0] != '-' && s[len - 1] != '-';
}

/* One-line text of up to max bytes (min 0 or 1). */
static int
text(const char *s, size_t min, size_t max, const char *field,
    struct pv_err *err)
{
	return pv_valid_text(s, strlen(s), min, max, 0, field, err);
}

/* "" or an http(s) URL without spaces. */
static int
url(const char *s, const char *field, struct pv_err *err)
{
	if (*s == '\0')
		return 0;
	if (text(s, 1, URL_MAX, field, err) == -1)
		return -1;
	if ((strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0) ||
	    strpbrk(s, " \t") != NULL) {
		PV_ERR_INVALID(err, field, "must be an http(s) URL");
		return -1;
	}
	return 0;
}

/* The variant's options as "a / b" for its title. */
static const char *
options_title(struct pv_arena *a, const char *options, struct pv_err *err)
{
	struct json_object *o;
	struct pv_buf b;
	const char *out;
	int n = 0;

	if (pv_json_parse(a, options, strlen(options), &o, err) == -1)
		return NULL;
	pv_buf_init(&b, a, 4096);
	json_object_object_foreach (o, k, v) {
		(void)k;
		pv_buf_printf(&b, "%s%s", n++ > 0 ? " / " : "",
		    json_object_get_string(v));
	}
	if (pv_buf_finish(&b, &out, NULL, err) == -1)
		return NULL;
	return *out != '\0' ? out : DEFAULT_TITLE;
}

static int
check_variant(struct pv_catalog *c, struct pv_catalog_product *p,
    struct pv_catalog_variant *v, size_t vi, struct pv_err *err)
{
	struct pv_err verr = { 0 };
	const char *t;
	size_t i, found;
	int rc;

	if (*v->title == '\0') {
		if ((t = options_title(c->arena, v->options, &verr)) == NULL)
			return problem(c, p, v->where, &verr, err);
		v->title = t;
	}
	if ((v->external_id != NULL &&
	        text(v->external_id, 1, TEXT_MAX, "variant_external_id",
	            &verr) == -1) ||
	    text(v->sku, 0, TEXT_MAX, "sku", &verr) == -1 ||
	    text(v->title, 1, TITLE_MAX, "variant_title", &verr) == -1 ||
	    url(v->image_url, "variant_image_url", &verr) == -1 ||
	    pv_valid_range(v->price_minor, 0, PRICE_MAX, "price", &verr) ==
	        -1 ||
	    pv_valid_range(v->compare_minor, -1, PRICE_MAX, "compare_at_price",
	        &verr) == -1 ||
	    pv_valid_range(v->inventory, -QTY_MAX, QTY_MAX,
	        "inventory_quantity", &verr) == -1)
		return problem(c, p, v->where, &verr, err);
	for (i = 0; i < vi; i++) {
		if (*v->sku != '\0' && strcmp(p->variants[i].sku, v->sku) == 0)
			PV_ERR_INVALID(&verr, "sku",
			    "repeats the SKU of %s in the same product",
			    p->variants[i].where);
		else if (strcmp(p->variants[i].title, v->title) == 0)
			PV_ERR_INVALID(&verr, "variant_title",
			    "\"%s\" repeats %s: give each variant its own "
			    "options or title",
			    v->title, p->variants[i].where);
		if (verr.code != PV_OK)
			return problem(c, p, v->where, &verr, err);
	}
	if (v->external_id != NULL) {
		if ((rc = smap_put(c->arena, &c->index->variants,
		         v->external_id, (size_t)(p - c->products), &found,
		         err)) == -1)
			return -1;
		if (rc == 1) {
			PV_ERR_INVALID(&verr, "variant_external_id",
			    "\"%s\" is used twice", v->external_id);
			return problem(c, p, v->where, &verr, err);
		}
	}
	return 0;
}

/* Validates a finished product and its variants; see pv_catalog.h. */
int
pv_catalog_finish(struct pv_catalog *c, struct pv_catalog_product *p,
    struct pv_err *err)
{
	struct pv_err verr = { 0 };
	size_t i, found, idx = (size_t)(p - c->products);
	int rc;

	if (*p->handle == '\0' && *p->title != '\0' &&
	    (p->handle = pv_catalog_slug(c->arena, p->title, err)) == NULL)
		return -1;
	if (!is_handle(p->handle))
		PV_ERR_INVALID(&verr, "handle",
		    "must be lowercase letters, digits and inner hyphens");
	if (verr.code != PV_OK ||
	    text(p->title, 1, TITLE_MAX, "title", &verr) == -1 ||
	    (p->external_id != NULL &&
	        text(p->external_id, 1, TEXT_MAX, "external_id", &verr) ==
	            -1) ||
	    pv_valid_text(p->description, strlen(p->description), 0,
	        DESCRIPTION_MAX, PV_VALID_MULTILINE, "description",
	        &verr) == -1 ||
	    text(p->vendor, 0, TEXT_MAX, "vendor", &verr) == -1 ||
	    text(p->product_type, 0, TEXT_MAX, "product_type", &verr) == -1 ||
	    url(p->url, "url", &verr) == -1)
		return problem(c, p, p->where, &verr, err);
	if (p->ntags > LIST_MAX || p->nimages > LIST_MAX) {
		PV_ERR_INVALID(&verr, p->ntags > LIST_MAX ? "tags" : "images",
		    "has more than %d entries", LIST_MAX);
		return problem(c, p, p->where, &verr, err);
	}
	for (i = 0; i < p->ntags; i++)
		if (text(p->tags[i], 1, TEXT_MAX, "tags", &verr) == -1)
			return problem(c, p, p->where, &verr, err);
	for (i = 0; i < p->nimages; i++)
		if (url(p->images[i], "images", &verr) == -1)
			return problem(c, p, p->where, &verr, err);
	if ((rc = smap_put(c->arena, &c->index->handles, p->handle, idx, &found,
	         err)) == -1)
		return -1;
	if (rc == 1 && found != idx) {
		PV_ERR_INVALID(&verr, "handle",
		    "\"%s\" is already the handle of %s", p->handle,
		    c->products[found].where);
		return problem(c, p, p->where, &verr, err);
	}
	if (p->external_id != NULL) {
		if ((rc = smap_put(c->arena, &c->index->products,
		         p->external_id, idx, &found, err)) == -1)
			return -1;
		if (rc == 1 && found != idx) {
			PV_ERR_INVALID(&verr, "external_id",
			    "\"%s\" is already the id of %s", p->external_id,
			    c->products[found].where);
			return problem(c, p, p->where, &verr, err);
		}
	}
	if (p->nvariants == 0 || p->nvariants > PV_CATALOG_VARIANTS_MAX) {
		PV_ERR_INVALID(&verr, "price",
		    p->nvariants == 0 ?
		        "is missing: a product needs at least one variant "
		        "with a price" :
		        "has too many variants (at most %d)",
		    PV_CATALOG_VARIANTS_MAX);
		return problem(c, p, p->where, &verr, err);
	}
	for (i = 0; i < p->nvariants; i++)
		if (check_variant(c, p, &p->variants[i], i, err) == -1)
			return -1;
	return 0;
}

/* ---- CSV --------------------------------------------------------- */

enum col {
	C_HANDLE,
	C_EXTERNAL_ID,
	C_TITLE,
	C_DESCRIPTION,
	C_VENDOR,
	C_TYPE,
	C_TAGS,
	C_URL,
	C_IMAGE,
	C_STATUS,
	C_VARIANT_EXTERNAL_ID,
	C_SKU,
	C_VARIANT_TITLE,
	C_PRICE,
	C_COMPARE_AT,
	C_QTY,
	C_TRACKED,
	C_OPT1_NAME,
	C_OPT1_VALUE,
	C_OPT2_NAME,
	C_OPT2_VALUE,
	C_OPT3_NAME,
	C_OPT3_VALUE,
	C_VARIANT_IMAGE,
	C_CURRENCY,
	C__MAX
};

/* Column names, canonical first, then aliases (normalised). */
static const char *const col_names[C__MAX][5] = {
	{ "handle", NULL },                             /* C_HANDLE */
	{ "external_id", "platform_product_id", NULL }, /* C_EXTERNAL_ID */
	{ "title", "name", NULL },                      /* C_TITLE */
	{ "description", "body_html", "body", NULL },   /* C_DESCRIPTION */
	{ "vendor", "brand", NULL },                    /* C_VENDOR */
	{ "product_type", "type", "category", NULL },   /* C_TYPE */
	{ "tags", NULL },                               /* C_TAGS */
	{ "url", "product_url", NULL },                 /* C_URL */
	{ "image_url", "image_src", "image", NULL },    /* C_IMAGE */
	{ "status", NULL },                             /* C_STATUS */
	{ "variant_external_id", "platform_variant_id",
	    NULL },                         /* C_VARIANT_... */
	{ "sku", "variant_sku", NULL },     /* C_SKU */
	{ "variant_title", NULL },          /* C_VARIANT_TITLE */
	{ "price", "variant_price", NULL }, /* C_PRICE */
	{ "compare_at_price", "variant_compare_at_price",
	    NULL }, /* C_COMPARE_AT */
	{ "inventory_quantity", "variant_inventory_qty", "inventory", "stock",
	    NULL },                                     /* C_QTY */
	{ "inventory_tracked", NULL },                  /* C_TRACKED */
	{ "option1_name", NULL },                       /* C_OPT1_NAME */
	{ "option1_value", NULL },                      /* C_OPT1_VALUE */
	{ "option2_name", NULL },                       /* C_OPT2_NAME */
	{ "option2_value", NULL },                      /* C_OPT2_VALUE */
	{ "option3_name", NULL },                       /* C_OPT3_NAME */
	{ "option3_value", NULL },                      /* C_OPT3_VALUE */
	{ "variant_image_url", "variant_image", NULL }, /* C_VARIANT_IMAGE */
	{ "currency", NULL },                           /* C_CURRENCY */
};

/* Reads CSV records (RFC 4180: quotes, "" escapes, CRLF or LF). */
struct csv {
	const char *p;   /* next byte */
	const char *end; /* end of input */
	long line;       /* line of p */
};

/*
 * Reads one record into fields (arena copies).  Returns 1 with *n
 * fields and the record's first line in *line, 0 at the end, -1 with
 * verr set for a malformed record (the reader then skips to the next
 * line) or with err set when memory runs out.
 */
static int
csv_record(struct pv_arena *a, struct csv *r, const char **fields, size_t *n,
    long *line, struct pv_err *verr, struct pv_err *err)
{
	struct pv_buf b;
	bool quoted;

	*n = 0;
	while (r->p < r->end && (*r->p == '\n' || *r->p == '\r')) {
		if (*r->p == '\n')
			r->line++;
		r->p++; /* blank lines */
	}
	if (r->p >= r->end)
		return 0;
	*line = r->line;
	for (;;) {
		pv_buf_init(&b, a, DESCRIPTION_MAX + 2);
		quoted = r->p < r->end && *r->p == '"';
		if (quoted)
			r->p++;
		for (; r->p < r->end; r->p++) {
			if (quoted && *r->p == '"') {
				if (r->p + 1 < r->end && r->p[1] == '"') {
					pv_buf_putc(&b, '"');
					r->p++;
					continue;
				}
				quoted = false;
				r->p++;
				if (r->p < r->end && *r->p != ',' &&
				    *r->p != '\n' && *r->p != '\r') {
					PV_ERR(verr, PV_E_INVALID, NULL,
					    "has text after a closing quote");
					goto skip;
				}
				break;
			}
			if (!quoted &&
			    (*r->p == ',' || *r->p == '\n' || *r->p == '\r'))
				break;
			if (!quoted && *r->p == '"') {
				PV_ERR(verr, PV_E_INVALID, NULL,
				    "has a quote inside an unquoted field");
				goto skip;
			}
			if (*r->p == '\n')
				r->line++;
			if (b.len == DESCRIPTION_MAX) {
				PV_ERR(verr, PV_E_INVALID, NULL,
				    "has a field longer than %d bytes",
				    DESCRIPTION_MAX);
				goto skip;
			}
			pv_buf_putc(&b, *r->p);
		}
		if (quoted) {
			PV_ERR(verr, PV_E_INVALID, NULL,
			    "opens a quote that is never closed");
			return -1;
		}
		if (*n == CSV_COLS_MAX) {
			PV_ERR(verr, PV_E_INVALID, NULL,
			    "has more than %d fields", CSV_COLS_MAX);
			goto skip;
		}
		if (pv_buf_finish(&b, &fields[*n], NULL, err) == -1)
			return -1;
		(*n)++;
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == '\r')
			r->p++;
		if (r->p < r->end && *r->p == '\n') {
			r->p++;
			r->line++;
		}
		return 1;
	}
skip:
	while (r->p < r->end && *r->p != '\n')
		r->p++;
	return -1;
}

/* A header cell normalised: lowercase, non-alphanumerics as one '_'. */
static const char *
normalise(struct pv_arena *a, const char *s, struct pv_err *err)
{
	size_t i, o = 0, len = strlen(s);
	char *d;

	if ((d = pv_arena_alloc(a, len + 1, err)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
			d[o++] = ch;
		else if (o > 0 && d[o - 1] != '_')
			d[o++] = '_';
	}
	while (o > 0 && d[o - 1] == '_')
		o--;
	d[o] = '\0';
	return d;
}

/* Maps header cells to columns: map[col] = cell index or -1. */
static int
csv_header(struct pv_catalog *c, const char **cells, size_t n, int *map,
    struct pv_err *err)
{
	struct pv_err verr = { 0 };
	const char *name;
	size_t i;
	int k, a;

	for (k = 0; k < C__MAX; k++)
		map[k] = -1;
	for (i = 0; i < n; i++) {
		if ((name = normalise(c->arena, cells[i], err)) == NULL)
			return -1;
		for (k = 0; k < C__MAX; k++)
			for (a = 0; col_names[k][a] != NULL; a++)
				if (strcmp(name, col_names[k][a]) == 0)
					goto found;
		PV_ERR(&verr, PV_E_INVALID, NULL,
		    "column \"%s\" is unknown (see docs/catalog.md for the "
		    "columns)",
		    cells[i]);
		if (problem(c, NULL, "line 1", &verr, err) == -1)
			return -1;
		continue;
	found:
		if (map[k] != -1) {
			PV_ERR(&verr, PV_E_INVALID, NULL,
			    "columns \"%s\" and \"%s\" are the same column",
			    cells[map[k]], cells[i]);
			if (problem(c, NULL, "line 1", &verr, err) == -1)
				return -1;
		}
		map[k] = (int)i;
	}
	if (map[C_PRICE] == -1 || (map[C_TITLE] == -1 && map[C_HANDLE] == -1)) {
		PV_ERR(&verr, PV_E_INVALID, NULL,
		    "the header needs a price column and a title or handle "
		    "column");
		if (problem(c, NULL, "line 1", &verr, err) == -1)
			return -1;
	}
	return 0;
}

/* The cell of column k in this row, "" when absent. */
static const char *
cell(const char **cells, size_t n, const int *map, enum col k)
{
	return map[k] >= 0 && (size_t)map[k] < n ? cells[map[k]] : "";
}

/* Splits "a, b,c" into trimmed, non-empty, distinct tags. */
static int
split_tags(struct pv_arena *a, const char *s, const char ***out, size_t *n,
    struct pv_err *err)
{
	const char **t, *e, *b;
	size_t cap = 1, i, k;

	for (b = s; *b != '\0'; b++)
		if (*b == ',')
			cap++;
	if ((t = pv_arena_calloc(a, cap, sizeof(*t), err)) == NULL)
		return -1;
	*n = 0;
	for (b = s;; b = e + 1) {
		e = b + strcspn(b, ",");
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		for (k = (size_t)(e - b);
		     k > 0 && (b[k - 1] == ' ' || b[k - 1] == '\t'); k--)
			;
		if (k > 0) {
			if ((t[*n] = pv_arena_strndup(a, b, k, err)) == NULL)
				return -1;
			for (i = 0; i < *n && strcmp(t[i], t[*n]) != 0; i++)
				;
			if (i == *n)
				(*n)++;
		}
		if (*e == '\0')
			break;
	}
	*out = t;
	return 0;
}

/* Appends url to p's images unless it is there already. */
static int
add_image(struct pv_arena *a, struct pv_catalog_product *p, const char *url_s,
    struct pv_err *err)
{
	const char **im;
	size_t i;

	for (i = 0; i < p->nimages; i++)
		if (strcmp(p->images[i], url_s) == 0)
			return 0;
	if ((p->nimages & (p->nimages - 1)) == 0 || p->nimages == 0) {
		if ((im = pv_arena_calloc(a,
		         p->nimages == 0 ? 4 : 2 * p->nimages, sizeof(*im),
		         err)) == NULL)
			return -1;
		if (p->nimages > 0)
			memcpy(im, p->images, p->nimages * sizeof(*im));
		p->images = im;
	}
	p->images[p->nimages++] = url_s;
	return 0;
}

/* Parses active / archived / draft (archived). */
static int
status(const char *s, bool *archived, struct pv_err *err)
{
	if (*s == '\0' || strcasecmp(s, "active") == 0) {
		*archived = false;
		return 0;
	}
	if (strcasecmp(s, "archived") == 0 || strcasecmp(s, "draft") == 0) {
		*archived = true;
		return 0;
	}
	PV_ERR_INVALID(err, "status", "must be active, archived or draft");
	return -1;
}

/* The money cell s in the catalog's currency ("" = absent: -1). */
static int
money(const struct pv_catalog *c, const char *s, const char *field,
    int64_t *out, struct pv_err *err)
{
	if (*s == '\0') {
		*out = -1;
		return 0;
	}
	return pv_money_parse(s, strlen(s), c->currency, 0, out, field, err);
}

/*
 * Product fields of a CSV row: sets them on a new product, or checks
 * a continuation row agrees with the product's first row.
 */
static int
csv_product_fields(struct pv_catalog *c, struct pv_catalog_product *p,
    bool fresh, const char **cells, size_t n, const int *map,
    struct pv_err *verr, struct pv_err *err)
{
	static const enum col same[] = { C_EXTERNAL_ID, C_TITLE, C_DESCRIPTION,
		C_VENDOR, C_TYPE, C_URL };
	const char **fieldp[6];
	const char *v;
	size_t i;

	fieldp[0] = &p->external_id;
	fieldp[1] = &p->title;
	fieldp[2] = &p->description;
	fieldp[3] = &p->vendor;
	fieldp[4] = &p->product_type;
	fieldp[5] = &p->url;
	for (i = 0; i < 6; i++) {
		v = cell(cells, n, map, same[i]);
		if (*v == '\0')
			continue;
		if (fresh || *fieldp[i] == NULL || **fieldp[i] == '\0') {
			*fieldp[i] = v;
			continue;
		}
		if (strcmp(*fieldp[i], v) != 0) {
			PV_ERR_INVALID(verr, col_names[same[i]][0],
			    "differs from %s, the first row of this product",
			    p->where);
			return -1;
		}
	}
	v = cell(cells, n, map, C_STATUS);
	if (*v != '\0' && status(v, &p->archived, verr) == -1)
		return -1;
	v = cell(cells, n, map, C_TAGS);
	if (*v != '\0' && p->ntags == 0 &&
	    split_tags(c->arena, v, &p->tags, &p->ntags, err) == -1)
		return -1;
	v = cell(cells, n, map, C_IMAGE);
	if (*v != '\0' && add_image(c->arena, p, v, err) == -1)
		return -1;
	for (i = 0; i < 3; i++) {
		v = cell(cells, n, map, (enum col)(C_OPT1_NAME + 2 * i));
		if (*v != '\0' && p->option_names[i] == NULL)
			p->option_names[i] = v;
	}
	v = cell(cells, n, map, C_CURRENCY);
	if (*v != '\0' && strcmp(v, c->currency) != 0) {
		PV_ERR_INVALID(verr, "currency",
		    "is %s but the merchant sells in %s", v, c->currency);
		return -1;
	}
	return 0;
}

/* The options JSON of a CSV row, from its values and p's names. */
static const char *
csv_options(struct pv_catalog *c, struct pv_catalog_product *p,
    const char **cells, size_t n, const int *map, struct pv_err *verr,
    struct pv_err *err)
{
	struct json_object *o = pv_json_new_obj(c->arena, err);
	const char *v, *name, *out;
	size_t i;

	for (i = 0; i < 3; i++) {
		v = cell(cells, n, map, (enum col)(C_OPT1_VALUE + 2 * i));
		if (*v == '\0')
			continue;
		name = cell(cells, n, map, (enum col)(C_OPT1_NAME + 2 * i));
		if (*name == '\0')
			name = p->option_names[i];
		if (name == NULL) {
			PV_ERR_INVALID(verr, col_names[C_OPT1_NAME + 2 * i][0],
			    "is needed for option%zu_value", i + 1);
			return NULL;
		}
		if (text(name, 1, TEXT_MAX, col_names[C_OPT1_NAME + 2 * i][0],
		        verr) == -1 ||
		    text(v, 1, TEXT_MAX, col_names[C_OPT1_VALUE + 2 * i][0],
		        verr) == -1)
			return NULL;
		pv_json_set_str(o, name, v, err);
	}
	if (pv_json_to_str(c->arena, o, &out, NULL, err) == -1)
		return NULL;
	return out;
}

/* The variant columns of a CSV row; *none when they are all empty. */
static int
csv_variant(struct pv_catalog *c, struct pv_catalog_product *p,
    const char **cells, size_t n, const int *map, const char *where, bool *none,
    struct pv_err *verr, struct pv_err *err)
{
	static const enum col vcols[] = { C_VARIANT_EXTERNAL_ID, C_SKU,
		C_VARIANT_TITLE, C_PRICE, C_COMPARE_AT, C_QTY, C_TRACKED,
		C_OPT1_VALUE, C_OPT2_VALUE, C_OPT3_VALUE, C_VARIANT_IMAGE };
	struct pv_catalog_variant *v;
	const char *s;
	size_t i;

	*none = true;
	for (i = 0; i < sizeof(vcols) / sizeof(vcols[0]); i++)
		if (*cell(cells, n, map, vcols[i]) != '\0')
			*none = false;
	if (*none)
		return 0;
	if ((v = pv_catalog_add_variant(c, p, where, err)) == NULL)
		return -1;
	s = cell(cells, n, map, C_VARIANT_EXTERNAL_ID);
	v->external_id = *s != '\0' ? s : NULL;
	v->sku = cell(cells, n, map, C_SKU);
	v->title = cell(cells, n, map, C_VARIANT_TITLE);
	v->image_url = cell(cells, n, map, C_VARIANT_IMAGE);
	s = cell(cells, n, map, C_PRICE);
	if (*s == '\0') {
		PV_ERR_INVALID(verr, "price", "is required for a variant");
		return -1;
	}
	if (money(c, s, "price", &v->price_minor, verr) == -1 ||
	    money(c, cell(cells, n, map, C_COMPARE_AT), "compare_at_price",
	        &v->compare_minor, verr) == -1)
		return -1;
	s = cell(cells, n, map, C_QTY);
	if (*s != '\0' &&
	    pv_valid_int64(s, -QTY_MAX, QTY_MAX, &v->inventory,
	        "inventory_quantity", verr) == -1)
		return -1;
	s = cell(cells, n, map, C_TRACKED);
	if (*s != '\0' &&
	    pv_valid_bool(s, &v->tracked, "inventory_tracked", verr) == -1)
		return -1;
	if ((v->options = csv_options(c, p, cells, n, map, verr, err)) == NULL)
		return -1;
	return 0;
}

/* One data row of a CSV file. */
static int
csv_row(struct pv_catalog *c, const char **cells, size_t n, const int *map,
    long line, struct pv_err *err)
{
	struct pv_err verr = { 0 };
	struct pv_catalog_product *p;
	const char *where, *key;
	size_t found;
	bool fresh, none;
	int rc;

	if ((where = pv_arena_printf(c->arena, err, "line %ld", line)) == NULL)
		return -1;
	key = cell(cells, n, map, C_HANDLE);
	if (*key == '\0') {
		key = cell(cells, n, map, C_TITLE);
		if (*key == '\0') {
			PV_ERR_INVALID(&verr, "title",
			    "is required (or a handle)");
			return problem(c, NULL, where, &verr, err);
		}
		if ((key = pv_catalog_slug(c->arena, key, err)) == NULL)
			return -1;
	}
	/* Rows group by handle: the index holds first rows' handles. */
	if ((rc = smap_put(c->arena, &c->index->handles, key, c->n, &found,
	         err)) == -1)
		return -1;
	fresh = rc == 0;
	if (fresh) {
		if ((p = pv_catalog_add_product(c, where, err)) == NULL)
			return -1;
		p->handle = key;
	} else {
		p = &c->products[found];
	}
	if (csv_product_fields(c, p, fresh, cells, n, map, &verr, err) == -1 ||
	    csv_variant(c, p, cells, n, map, where, &none, &verr, err) == -1)
		return err->code != PV_OK ? -1 :
		                            problem(c, p, where, &verr, err);
	return 0;
}

/* Parses a CSV file; see pv_catalog.h. */
int
pv_catalog_parse_csv(struct pv_catalog *c, const char *data, size_t len,
    struct pv_err *err)
{
	struct pv_err verr = { 0 };
	const char **cells;
	struct csv r;
	int map[C__MAX], rc;
	size_t n, i, first = c->n;
	long line;

	if ((cells = pv_arena_calloc(c->arena, CSV_COLS_MAX, sizeof(*cells),
	         err)) == NULL)
		return -1;
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
		data += 3; /* byte order mark */
		len -= 3;
	}
	r.p = data;
	r.end = data + len;
	r.line = 1;
	if ((rc = csv_record(c->arena, &r, cells, &n, &line, &verr, err)) ==
	    0) {
		PV_ERR(&verr, PV_E_INVALID, NULL, "the file is empty");
		return problem(c, NULL, "line 1", &verr, err);
	}
	if (rc == -1)
		return err->code != PV_OK ?
		    -1 :
		    problem(c, NULL, "line 1", &verr, err);
	if (csv_header(c, cells, n, map, err) == -1)
		return -1;
	if (c->errors_total > 0)
		return 0; /* rows would only repeat the header's problem */
	for (;;) {
		rc = csv_record(c->arena, &r, cells, &n, &line, &verr, err);
		if (rc == 0)
			break;
		if (rc == -1) {
			const char *where;

			if (err->code != PV_OK ||
			    (where = pv_arena_printf(c->arena, err, "line %ld",
			         line)) == NULL ||
			    problem(c, NULL, where, &verr, err) == -1)
				return -1;
			if (r.p >= r.end)
				break;
			continue;
		}
		if (csv_row(c, cells, n, map, line, err) == -1)
			return -1;
	}
	for (i = first; i < c->n; i++) {
		/* The grouping index holds first-row handles: reset it so
		 * pv_catalog_finish() checks every product afresh. */
		if (i == first)
			memset(&c->index->handles, 0,
			    sizeof(c->index->handles));
		if (!c->products[i].bad &&
		    pv_catalog_finish(c, &c->products[i], err) == -1)
			return -1;
	}
	return 0;
}

/* ---- JSON -------------------------------------------------------- */

/*
 * A money field given as a string ("48.00"); absent or null leaves
 * *out alone.  Numbers are refused: they round.
 */
static int
json_money(const struct pv_catalog *c, struct json_object *o, const char *key,
    bool required, int64_t *out, struct pv_err *err)
{
	struct json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL) {
		if (required)
			PV_ERR_INVALID(err, key, "is required");
		return required ? -1 : 0;
	}
	if (!json_object_is_type(v, json_type_string)) {
		PV_ERR_INVALID(err, key,
		    "must be a decimal string such as \"48.00\" (numbers "
		    "are refused: they round)");
		return -1;
	}
	s = json_object_get_string(v);
	return pv_money_parse(s, (size_t)json_object_get_string_len(v),
	    c->currency, 0, out, key, err);
}

/* An optional string array (tags, images). */
static int
json_strings(struct pv_arena *a, struct json_object *o, const char *key,
    const char ***out, size_t *n, struct pv_err *err)
{
	struct json_object *arr;
	size_t i;

	*n = 0;
	if (pv_json_arr_opt(o, key, 0, LIST_MAX, &arr, err) == -1)
		return -1;
	if (arr == NULL)
		return 0;
	*n = json_object_array_length(arr);
	if ((*out = pv_arena_calloc(a, *n + 1, sizeof(**out), err)) == NULL)
		return -1;
	for (i = 0; i < *n; i++)
		if (pv_json_at_str(arr, i, 1, URL_MAX, &(*out)[i], err) == -1)
			return pv_json_err_prefix(err, "%s[%zu]", key, i);
	return 0;
}

/* An optional string field: *out is left alone when absent or null. */
static int
opt_str(struct json_object *o, const char *key, size_t max, const char **out,
    struct pv_err *err)
{
	const char *s = NULL;

	if (pv_json_str_opt(o, key, 0, max, &s, err) == -1)
		return -1;
	if (s != NULL)
		*out = s;
	return 0;
}

/* A variant object (or the product itself, for the shorthand). */
static int
json_variant(struct pv_catalog *c, struct pv_catalog_product *p,
    struct json_object *o, const char *where, struct pv_err *verr,
    struct pv_err *err)
{
	static const char *const keys[] = { "external_id", "sku", "title",
		"price", "compare_at_price", "inventory_quantity",
		"inventory_tracked", "options", "image_url", NULL };
	struct pv_catalog_variant *v;
	struct json_object *opts = NULL, *vo;
	int64_t q = 0;

	if ((v = pv_catalog_add_variant(c, p, where, err)) == NULL)
		return -1;
	if (pv_json_only_keys(o, keys, verr) == -1 ||
	    pv_json_str_opt(o, "external_id", 1, TEXT_MAX, &v->external_id,
	        verr) == -1 ||
	    opt_str(o, "sku", TEXT_MAX, &v->sku, verr) == -1 ||
	    opt_str(o, "title", TITLE_MAX, &v->title, verr) == -1 ||
	    opt_str(o, "image_url", URL_MAX, &v->image_url, verr) == -1 ||
	    json_money(c, o, "price", true, &v->price_minor, verr) == -1 ||
	    json_money(c, o, "compare_at_price", false, &v->compare_minor,
	        verr) == -1 ||
	    pv_json_int_opt(o, "inventory_quantity", -QTY_MAX, QTY_MAX, 0, &q,
	        verr) == -1 ||
	    pv_json_bool_opt(o, "inventory_tracked", true, &v->tracked, verr) ==
	        -1 ||
	    pv_json_obj_opt(o, "options", &opts, verr) == -1)
		return -1;
	v->inventory = q;
	if (opts == NULL)
		return 0;
	if (json_object_object_length(opts) > OPTIONS_MAX) {
		PV_ERR_INVALID(verr, "options", "has more than %d entries",
		    OPTIONS_MAX);
		return -1;
	}
	vo = pv_json_new_obj(c->arena, err);
	json_object_object_foreach (opts, k, val) {
		if (val == NULL ||
		    !json_object_is_type(val, json_type_string) ||
		    text(k, 1, TEXT_MAX, "options", verr) == -1 ||
		    text(json_object_get_string(val), 1, TEXT_MAX, "options",
		        verr) == -1) {
			if (verr->code == PV_OK)
				PV_ERR_INVALID(verr, "options",
				    "values must be strings");
			return -1;
		}
		pv_json_set_str(vo, k, json_object_get_string(val), err);
	}
	return pv_json_to_str(c->arena, vo, &v->options, NULL, err);
}

/* One product object of a JSON or JSON Lines file. */
static int
json_product(struct pv_catalog *c, struct json_object *o, const char *where,
    struct pv_err *err)
{
	static const char *const keys[] = { "external_id", "handle", "title",
		"description", "vendor", "product_type", "tags", "images",
		"image_url", "url", "status", "variants", "price",
		"compare_at_price", "sku", "inventory_quantity",
		"inventory_tracked", NULL };
	static const char *const vkeys[] = { "price", "compare_at_price", "sku",
		"inventory_quantity", "inventory_tracked", NULL };
	struct pv_err verr = { 0 };
	struct pv_catalog_product *p;
	struct json_object *vars = NULL, *vo;
	const char *s, *vwhere, *image = NULL;
	size_t i, k;

	if ((p = pv_catalog_add_product(c, where, err)) == NULL)
		return -1;
	if (pv_json_only_keys(o, keys, &verr) == -1 ||
	    pv_json_str_opt(o, "external_id", 1, TEXT_MAX, &p->external_id,
	        &verr) == -1 ||
	    pv_json_str(o, "title", 1, TITLE_MAX, &p->title, &verr) == -1 ||
	    json_strings(c->arena, o, "tags", &p->tags, &p->ntags, &verr) ==
	        -1 ||
	    json_strings(c->arena, o, "images", &p->images, &p->nimages,
	        &verr) == -1 ||
	    pv_json_str_opt(o, "image_url", 1, URL_MAX, &image, &verr) == -1 ||
	    pv_json_arr_opt(o, "variants", 1, PV_CATALOG_VARIANTS_MAX, &vars,
	        &verr) == -1)
		return problem(c, p, where, &verr, err);
	s = NULL;
	if (opt_str(o, "handle", TEXT_MAX, &p->handle, &verr) == -1 ||
	    opt_str(o, "description", DESCRIPTION_MAX, &p->description,
	        &verr) == -1 ||
	    opt_str(o, "vendor", TEXT_MAX, &p->vendor, &verr) == -1 ||
	    opt_str(o, "product_type", TEXT_MAX, &p->product_type, &verr) ==
	        -1 ||
	    opt_str(o, "url", URL_MAX, &p->url, &verr) == -1 ||
	    opt_str(o, "status", 20, &s, &verr) == -1 ||
	    (s != NULL && status(s, &p->archived, &verr) == -1))
		return problem(c, p, where, &verr, err);
	if (image != NULL) {
		/* image_url is the main image: first, then the others. */
		const char **im;

		if ((im = pv_arena_calloc(c->arena, p->nimages + 1, sizeof(*im),
		         err)) == NULL)
			return -1;
		im[0] = image;
		for (i = 0, k = 1; i < p->nimages; i++)
			if (strcmp(p->images[i], image) != 0)
				im[k++] = p->images[i];
		p->images = im;
		p->nimages = k;
	}
	if (vars == NULL) {
		/* Shorthand: a product with one variant. */
		struct json_object *one = pv_json_new_obj(c->arena, err);

		for (i = 0; vkeys[i] != NULL; i++)
			if (json_object_object_get_ex(o, vkeys[i], &vo))
				pv_json_set(one, vkeys[i], vo, err);
		if (err->code != PV_OK)
			return -1;
		if (json_variant(c, p, one, where, &verr, err) == -1)
			return err->code != PV_OK ?
			    -1 :
			    problem(c, p, where, &verr, err);
	} else {
		for (i = 0; vkeys[i] != NULL; i++) {
			if (json_object_object_get_ex(o, vkeys[i], &vo)) {
				PV_ERR_INVALID(&verr, vkeys[i],
				    "belongs in each variant when the product "
				    "has variants");
				return problem(c, p, where, &verr, err);
			}
		}
		for (i = 0; i < json_object_array_length(vars); i++) {
			if ((vwhere = pv_arena_printf(c->arena, err,
			         "%s.variants[%zu]", where, i)) == NULL)
				return -1;
			if (pv_json_at_obj(vars, i, &vo, &verr) == -1 ||
			    json_variant(c, p, vo, vwhere, &verr, err) == -1) {
				if (err->code != PV_OK ||
				    problem(c, p, vwhere, &verr, err) == -1)
					return -1;
			}
		}
	}
	if (p->bad)
		return 0;
	return pv_catalog_finish(c, p, err);
}

/* Parses a {"products": [...]} file; see pv_catalog.h. */
int
pv_catalog_parse_json(struct pv_catalog *c, const char *data, size_t len,
    struct pv_err *err)
{
	static const char *const keys[] = { "products", "currency", NULL };
	struct pv_err verr = { 0 };
	struct json_object *root, *arr, *o;
	const char *cur, *where;
	size_t i;

	if (pv_json_parse(c->arena, data, len, &root, &verr) == -1) {
		if (verr.code == PV_E_TOOBIG) {
			pv_err_clear(&verr);
			PV_ERR(&verr, PV_E_INVALID, NULL,
			    "is too big for one JSON document: write one "
			    "product per line (JSON Lines, .jsonl)");
		}
		return problem(c, NULL, "file", &verr, err);
	}
	if (pv_json_only_keys(root, keys, &verr) == -1 ||
	    pv_json_arr(root, "products", 0, SIZE_MAX, &arr, &verr) == -1 ||
	    pv_json_str_opt(root, "currency", 3, 3, &cur, &verr) == -1)
		return problem(c, NULL, "file", &verr, err);
	if (cur != NULL && strcmp(cur, c->currency) != 0) {
		PV_ERR_INVALID(&verr, "currency",
		    "is %s but the merchant sells in %s", cur, c->currency);
		return problem(c, NULL, "file", &verr, err);
	}
	for (i = 0; i < json_object_array_length(arr); i++) {
		if ((where = pv_arena_printf(c->arena, err, "products[%zu]",
		         i)) == NULL)
			return -1;
		if (pv_json_at_obj(arr, i, &o, &verr) == -1) {
			if (problem(c, NULL, where, &verr, err) == -1)
				return -1;
			continue;
		}
		if (json_product(c, o, where, err) == -1)
			return -1;
	}
	return 0;
}

/* Parses one product object per line; see pv_catalog.h. */
int
pv_catalog_parse_jsonl(struct pv_catalog *c, const char *data, size_t len,
    struct pv_err *err)
{
	struct pv_err verr = { 0 };
	struct json_object *o;
	const char *p = data, *end = data + len, *nl, *where;
	long line = 1;
	size_t n;

	for (; p < end; p = nl + 1, line++) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n = (size_t)(nl - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0 || strspn(p, " \t") >= n)
			continue;
		if ((where = pv_arena_printf(c->arena, err, "line %ld",
		         line)) == NULL)
			return -1;
		if (pv_json_parse(c->arena, p, n, &o, &verr) == -1) {
			if (problem(c, NULL, where, &verr, err) == -1)
				return -1;
			continue;
		}
		if (json_product(c, o, where, err) == -1)
			return -1;
		if (nl == end)
			break;
	}
	return 0;
}

/* Reads and parses a file by its extension; see pv_catalog.h. */
int
pv_catalog_parse_file(struct pv_catalog *c, const char *path,
    const char *format, struct pv_err *err)
{
	const char *dot = strrchr(path, '.');
	struct stat st;
	char *data;
	size_t got;
	FILE *f;
	int rc;

	if (format == NULL)
		format = dot != NULL ? dot + 1 : "";
	if (strcmp(format, "ndjson") == 0)
		format = "jsonl";
	if (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0 &&
	    strcmp(format, "jsonl") != 0) {
		PV_ERR(err, PV_E_INVALID, "FILE",
		    "%s: name a .csv, .json or .jsonl file (or use --format)",
		    path);
		return -1;
	}
	if ((f = fopen(path, "rb")) == NULL) {
		PV_ERR(err, PV_E_INVALID, "FILE", "%s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > PV_CATALOG_FILE_MAX) {
		PV_ERR(err, PV_E_INVALID, "FILE",
		    "%s: not a regular file of at most %u bytes", path,
		    PV_CATALOG_FILE_MAX);
		fclose(f);
		return -1;
	}
	if ((data = pv_arena_alloc(c->arena, (size_t)st.st_size + 1, err)) ==
	    NULL) {
		fclose(f);
		return -1;
	}
	got = fread(data, 1, (size_t)st.st_size, f);
	rc = ferror(f);
	fclose(f);
	if (rc != 0 || got != (size_t)st.st_size) {
		PV_ERR(err, PV_E_INVALID, "FILE", "%s: read error", path);
		return -1;
	}
	data[got] = '\0';
	if (strcmp(format, "csv") == 0)
		return pv_catalog_parse_csv(c, data, got, err);
	if (strcmp(format, "json") == 0)
		return pv_catalog_parse_json(c, data, got, err);
	return pv_catalog_parse_jsonl(c, data, got, err);
}

/* ---- Import ------------------------------------------------------ */

/* Merchant id and currency by public id; see pv_catalog.h. */
int
pv_catalog_merchant(struct pv_ctx *ctx, const char *public_id, const char **id,
    const char **currency, struct pv_err *err)
{
	const char *p[1] = { public_id };
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT id, currency FROM merchants"
	               " WHERE public_id = $1"),
	        1, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "MERCHANT", "no merchant %s",
		    public_id);
		return -1;
	}
	*id = PQgetvalue(res, 0, 0);
	*currency = PQgetvalue(res, 0, 1);
	return 0;
}

/* arr gets a JSON array of the strings. */
static struct json_object *
str_array(struct pv_arena *a, const char *const *s, size_t n,
    struct pv_err *err)
{
	struct json_object *arr = pv_json_new_arr(a, err);
	size_t i;

	for (i = 0; i < n; i++)
		pv_json_push_str(arr, s[i], err);
	return arr;
}

/*
 * Stages products [from, to) of c in batch, numbered seq0 + index + 1,
 * leaving out products with problems: two statements, each one JSON
 * array.  The JSON lives in the scratch arena a.
 */
static int
stage(struct pv_ctx *ctx, struct pv_arena *a, const struct pv_catalog *c,
    size_t from, size_t to, const char *batch, int64_t seq0, struct pv_err *err)
{
	struct json_object *prods = pv_json_new_arr(a, err);
	struct json_object *vars = pv_json_new_arr(a, err);
	struct json_object *o, *opts = NULL;
	const struct pv_catalog_product *p;
	const struct pv_catalog_variant *v;
	const char *prm[2];
	size_t i, k;

	for (i = from; i < to; i++) {
		p = &c->products[i];
		if (p->bad)
			continue;
		o = pv_json_new_obj(a, err);
		pv_json_set_int(o, "seq", seq0 + (int64_t)i + 1, err);
		pv_json_set_str(o, "external_id", p->external_id, err);
		pv_json_set_str(o, "handle", p->handle, err);
		pv_json_set_str(o, "title", p->title, err);
		pv_json_set_str(o, "description", p->description, err);
		pv_json_set_str(o, "vendor", p->vendor, err);
		pv_json_set_str(o, "product_type", p->product_type, err);
		pv_json_set(o, "tags", str_array(a, p->tags, p->ntags, err),
		    err);
		pv_json_set_str(o, "url", p->url, err);
		pv_json_set(o, "images",
		    str_array(a, p->images, p->nimages, err), err);
		pv_json_set_str(o, "status",
		    p->archived ? "archived" : "active", err);
		pv_json_push(prods, o, err);
		for (k = 0; k < p->nvariants; k++) {
			v = &p->variants[k];
			o = pv_json_new_obj(a, err);
			pv_json_set_int(o, "product_seq", seq0 + (int64_t)i + 1,
			    err);
			pv_json_set_int(o, "position", (int64_t)k + 1, err);
			pv_json_set_str(o, "external_id", v->external_id, err);
			pv_json_set_str(o, "sku", v->sku, err);
			pv_json_set_str(o, "title", v->title, err);
			pv_json_set_int(o, "price_minor", v->price_minor, err);
			if (v->compare_minor >= 0)
				pv_json_set_int(o, "compare_at_price_minor",
				    v->compare_minor, err);
			pv_json_set_int(o, "inventory_quantity", v->inventory,
			    err);
			pv_json_set_bool(o, "inventory_tracked", v->tracked,
			    err);
			if (err->code == PV_OK &&
			    pv_json_parse(a, v->options, strlen(v->options),
			        &opts, err) == -1)
				return -1;
			pv_json_set(o, "options", opts, err);
			pv_json_set_str(o, "image_url", v->image_url, err);
			pv_json_push(vars, o, err);
		}
	}
	prm[0] = batch;
	if (pv_json_to_str(a, prods, &prm[1], NULL, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("INSERT INTO catalog_staged_products (batch_id, seq,"
	               " external_id, handle, title, description, vendor,"
	               " product_type, tags, url, images, status)"
	               " SELECT $1::bigint, r.seq, r.external_id, r.handle,"
	               "  r.title, r.description, r.vendor, r.product_type,"
	               "  r.tags, r.url, r.images, r.status"
	               " FROM jsonb_to_recordset($2::jsonb) AS r (seq int,"
	               "  external_id text, handle text, title text,"
	               "  description text, vendor text, product_type text,"
	               "  tags text[], url text, images text[], status text)"),
	        2, prm, NULL, err) == -1 ||
	    pv_json_to_str(a, vars, &prm[1], NULL, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("INSERT INTO catalog_staged_variants (batch_id,"
	               " product_seq, position, external_id, sku, title,"
	               " price_minor, compare_at_price_minor,"
	               " inventory_quantity, inventory_tracked, options,"
	               " image_url)"
	               " SELECT $1::bigint, r.product_seq, r.position,"
	               "  r.external_id, r.sku, r.title, r.price_minor,"
	               "  r.compare_at_price_minor, r.inventory_quantity,"
	               "  r.inventory_tracked, r.options, r.image_url"
	               " FROM jsonb_to_recordset($2::jsonb) AS r ("
	               "  product_seq int, position int, external_id text,"
	               "  sku text, title text, price_minor bigint,"
	               "  compare_at_price_minor bigint,"
	               "  inventory_quantity int, inventory_tracked boolean,"
	               "  options jsonb, image_url text)"),
	        2, prm, NULL, err) == -1)
		return -1;
	return 0;
}

/* A new batch in state staging; see pv_catalog.h. */
int
pv_catalog_batch_new(struct pv_ctx *ctx, const char *merchant_id,
    const char *source, bool replace, const char *currency, const char **batch,
    struct pv_err *err)
{
	const char *prm[5];
	char exp[8];
	PGresult *res;

	if (snprintf(exp, sizeof(exp), "%d", pv_money_exponent(currency)) < 0) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "snprintf failed");
		return -1;
	}
	prm[0] = merchant_id;
	prm[1] = source;
	prm[2] = replace ? "t" : "f";
	prm[3] = currency;
	prm[4] = exp;
	if (pv_db_exec(ctx,
	        PV_SQL("INSERT INTO catalog_batches (merchant_id, source,"
	               " replace, currency, currency_exponent)"
	               " VALUES ($1::bigint, $2, $3::boolean, $4,"
	               " $5::smallint) RETURNING id"),
	        5, prm, &res, err) == -1)
		return -1;
	*batch = PQgetvalue(res, 0, 0);
	return 0;
}

/* Stages the products of c without problems; see pv_catalog.h. */
int
pv_catalog_stage(struct pv_ctx *ctx, const struct pv_catalog *c,
    const char *batch, int64_t seq0, struct pv_err *err)
{
	struct pv_arena *scratch;
	size_t i;
	int rc = -1;

	if ((scratch = pv_arena_new(PV_ARENA_CAP * 8)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	for (i = 0; i < c->n; i += CHUNK_PRODUCTS) {
		if (stage(ctx, scratch, c, i,
		        i + CHUNK_PRODUCTS < c->n ? i + CHUNK_PRODUCTS : c->n,
		        batch, seq0, err) == -1)
			goto out;
		pv_arena_reset(scratch);
	}
	rc = 0;
out:
	pv_arena_free(scratch);
	return rc;
}

/* Applies a staged batch and updates the vocabulary; see pv_catalog.h. */
int
pv_catalog_apply(struct pv_ctx *ctx, const char *batch, bool refresh_words,
    struct pv_catalog_result *out, struct pv_err *err)
{
	const char *prm[1] = { batch };
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT created, updated, unchanged, archived"
	               " FROM catalog_apply($1::bigint)"),
	        1, prm, &res, err) == -1)
		return -1;
	out->created = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	out->updated = strtol(PQgetvalue(res, 0, 1), NULL, 10);
	out->unchanged = strtol(PQgetvalue(res, 0, 2), NULL, 10);
	out->archived = strtol(PQgetvalue(res, 0, 3), NULL, 10);
	/* A replace may archive: rebuild.  Else learn the batch's words. */
	if ((refresh_words ?
	            pv_db_exec(ctx, PV_SQL("SELECT catalog_refresh_words()"), 0,
	                NULL, &res, err) :
	            pv_db_exec(ctx,
	                PV_SQL("SELECT catalog_learn_words($1::bigint)"), 1,
	                prm, &res, err)) == -1)
		return -1;
	out->words = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	return 0;
}

/* Stages, applies and refreshes words; see pv_catalog.h. */
int
pv_catalog_import(struct pv_ctx *ctx, const struct pv_catalog *c,
    const char *merchant_id, const char *source, bool replace,
    struct pv_catalog_result *out, struct pv_err *err)
{
	const char *batch;
	size_t i, nv = 0;

	memset(out, 0, sizeof(*out));
	if (c->errors_total > 0) {
		PV_ERR(err, PV_E_INVALID, NULL,
		    "the catalog has %zu problems; nothing was imported",
		    c->errors_total);
		return -1;
	}
	if (!pv_db_in_tx(ctx->db)) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "pv_catalog_import needs a transaction");
		return -1;
	}
	if (pv_catalog_batch_new(ctx, merchant_id, source, replace, c->currency,
	        &batch, err) == -1 ||
	    pv_catalog_stage(ctx, c, batch, 0, err) == -1 ||
	    pv_catalog_apply(ctx, batch, replace, out, err) == -1)
		return -1;
	for (i = 0; i < c->n; i++)
		nv += c->products[i].nvariants;
	out->products = (long)c->n;
	out->variants = (long)nv;
	return 0;
}
