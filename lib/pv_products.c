/*
 * The catalog endpoints: merchants, product search and product lookup.
 * Each request is the prologue plus one statement (pv_products_sql.h);
 * this file validates the query string into typed values, picks the
 * statement and turns its rows (one per variant) into Product objects.
 * Money leaves as decimal strings in the currency's exponent with an
 * integer _minor twin, never as a float.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "pv_agent.h"
#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_json.h"
#include "pv_money.h"
#include "pv_products.h"
#include "pv_products_sql.h"
#include "pv_valid.h"

#define LIMIT_DEFAULT 20
#define LIMIT_MAX     100
#define OFFSET_MAX    10000              /* deeper pages: use the cursor */
#define QUERY_MAX     200                /* bytes of search text */
#define CURSOR_MAX    200                /* bytes of an encoded cursor */
#define PRICE_E4_MAX  1000000000000000LL /* 10^11 major units */
#define CURSOR_TAG    "c1"

/* Columns of a product in a result row, from its first product column. */
enum pcol {
	P_ID,          /* public id */
	P_MERCHANT,    /* merchant public id */
	P_MERCHANT_NM, /* business name */
	P_PLATFORM,    /* merchant's store platform */
	P_TITLE,
	P_DESCRIPTION,
	P_VENDOR,
	P_TYPE,     /* product type (the category) */
	P_TAGS,     /* tags joined by U+001F */
	P_IMAGES,   /* image URLs joined by U+001F */
	P_CURRENCY, /* ISO 4217 */
	P_IN_STOCK, /* active and some variant available */
	P_INVENTORY,
	P_URL,
	P_EXTERNAL, /* platform product id, or NULL */
	P_UPDATED,  /* epoch seconds */
	P_STATUS,   /* active or archived */
	P_MERCHANT_INTERNAL,
	V_ID, /* the variant columns follow */
	V_TITLE,
	V_SKU,
	V_PRICE,
	V_COMPARE_AT,
	V_IN_STOCK,
	V_QTY,
	V_TRACKED,
	V_OPTIONS, /* name U+001E value pairs joined by U+001F, or NULL */
	V_IMAGE,
	V_EXTERNAL,
	P__MAX
};

/* Leading columns of a search result, before the product columns. */
enum scol {
	S_TOTAL,     /* every match */
	S_BEFORE,    /* matches before the cursor */
	S_NSCOPE,    /* merchants in scope */
	S_CORRECTED, /* corrected query text, or NULL */
	S_RANK,      /* the product's rank */
	S__MAX
};

/* Leading columns of the merchants result. */
enum mcol {
	M_TOTAL,
	M_ID,
	M_NAME,
	M_STATUS,
	M_STORE_URL,
	M_REGION,
	M_PSP_CONNECTED,
	M_PSP_TYPE,
	M_PLATFORM,
	M_PRODUCT_COUNT,
	M_CURRENCY,
	M_CREATED,
	M__MAX
};

static struct json_object *
success(struct pv_ctx *ctx, struct pv_err *err)
{
	struct json_object *o = pv_json_new_obj(ctx->arena, err);

	pv_json_set_str(o, "status", "success", err);
	return o;
}

static int
reply(struct pv_ctx *ctx, struct pv_resp *resp, struct json_object *o,
    struct pv_err *err)
{
	if (err->code != PV_OK)
		return -1;
	return pv_resp_json(ctx, resp, 200, o, err);
}

/* Refuses query parameters outside the NULL-terminated names. */
static int
only_params(const struct pv_req *req, const char *const *names,
    struct pv_err *err)
{
	size_t i, j;

	for (i = 0; i < req->nparam; i++) {
		for (j = 0; names[j] != NULL; j++)
			if (strcmp(req->params[i].name, names[j]) == 0)
				break;
		if (names[j] == NULL) {
			PV_ERR_INVALID(err, req->params[i].name,
			    "is not a parameter of this endpoint");
			return -1;
		}
	}
	return 0;
}

/* An optional parameter; "" counts as absent. */
static const char *
param(const struct pv_req *req, const char *name)
{
	const char *v = pv_req_param(req, name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* limit and offset, with the API.md defaults and caps. */
static int
paging(const struct pv_req *req, int64_t *limit, int64_t *offset,
    struct pv_err *err)
{
	const char *l = param(req, "limit"), *o = param(req, "offset");

	*limit = LIMIT_DEFAULT;
	*offset = 0;
	if (l != NULL && pv_valid_int64(l, 1, LIMIT_MAX, limit, "limit", err))
		return -1;
	if (o != NULL &&
	    pv_valid_int64(o, 0, INT64_MAX, offset, "offset", err) == -1)
		return -1;
	if (*offset > OFFSET_MAX) {
		PV_ERR_INVALID(err, "offset",
		    "must be at most %d; page deeper with cursor", OFFSET_MAX);
		return -1;
	}
	return 0;
}

/* "mer_" + 16 lowercase hex digits. */
static bool
is_merchant_id(const char *s)
{
	return strncmp(s, "mer_", 4) == 0 && strlen(s) == 20 &&
	    strspn(s + 4, "0123456789abcdef") == 16;
}

/* "prod_" + 16 lowercase hex digits. */
static bool
is_product_id(const char *s)
{
	return strncmp(s, "prod_", 5) == 0 && strlen(s) == 21 &&
	    strspn(s + 5, "0123456789abcdef") == 16;
}

static long long
num(const PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ?
	    0 :
	    strtoll(PQgetvalue(res, r, c), NULL, 10);
}

static bool
yes(const PGresult *res, int r, int c)
{
	return !PQgetisnull(res, r, c) && PQgetvalue(res, r, c)[0] == 't';
}

/* obj[key] = the column's text, or null when it is NULL or "". */
static void
set_text(struct json_object *o, const char *key, const PGresult *res, int r,
    int c, struct pv_err *err)
{
	const char *v = pv_db_get(res, r, c);

	pv_json_set_str(o, key, v != NULL && *v != '\0' ? v : NULL, err);
}

/* obj[key] = the epoch seconds of column c as RFC 3339 UTC. */
static void
set_time(struct json_object *o, const char *key, const PGresult *res, int r,
    int c, struct pv_err *err)
{
	char buf[32];

	pv_json_set_str(o, key,
	    pv_http_time(buf, sizeof(buf), (time_t)num(res, r, c)), err);
}

/*
 * obj[key] and obj[key_minor] for the amount in column c (NULL: both
 * null), formatted in currency.
 */
static void
set_money(struct json_object *o, const char *key, const char *key_minor,
    const PGresult *res, int r, int c, const char *currency, struct pv_err *err)
{
	char amount[PV_MONEY_FORMAT_SIZE];
	long long minor;

	if (err->code != PV_OK)
		return;
	if (PQgetisnull(res, r, c)) {
		pv_json_set(o, key, NULL, err);
		pv_json_set(o, key_minor, NULL, err);
		return;
	}
	minor = num(res, r, c);
	if (pv_money_format(minor, currency, amount, sizeof(amount), err) == -1)
		return;
	pv_json_set_str(o, key, amount, err);
	pv_json_set_int(o, key_minor, minor, err);
}

/* An array of the U+001F-separated strings of column c ("" = []). */
static struct json_object *
split_array(struct pv_ctx *ctx, const PGresult *res, int r, int c,
    struct pv_err *err)
{
	struct json_object *arr = pv_json_new_arr(ctx->arena, err);
	const char *s = PQgetvalue(res, r, c), *e;

	for (; *s != '\0'; s = *e != '\0' ? e + 1 : e) {
		e = s + strcspn(s, "\x1f");
		pv_json_push_str(arr,
		    pv_arena_strndup(ctx->arena, s, (size_t)(e - s), err), err);
	}
	return arr;
}

/* The options {name: value} of column c (name U+001E value pairs). */
static struct json_object *
options(struct pv_ctx *ctx, const PGresult *res, int r, int c,
    struct pv_err *err)
{
	struct json_object *o = pv_json_new_obj(ctx->arena, err);
	const char *s = PQgetvalue(res, r, c), *e, *sep;
	char *name;

	for (; *s != '\0'; s = *e != '\0' ? e + 1 : e) {
		e = s + strcspn(s, "\x1f");
		if ((sep = memchr(s, '\x1e', (size_t)(e - s))) == NULL)
			continue;
		if ((name = pv_arena_strndup(ctx->arena, s, (size_t)(sep - s),
		         err)) == NULL)
			break;
		pv_json_set_strn(o, name, sep + 1, (size_t)(e - sep - 1), err);
	}
	return o;
}

/* The variant in row r as JSON, in the product's currency. */
static struct json_object *
variant_json(struct pv_ctx *ctx, const PGresult *res, int r, int b,
    const char *currency, struct pv_err *err)
{
	struct json_object *v = pv_json_new_obj(ctx->arena, err);

	pv_json_set_str(v, "id", PQgetvalue(res, r, b + V_ID), err);
	pv_json_set_str(v, "variant_id", PQgetvalue(res, r, b + V_ID), err);
	pv_json_set_str(v, "title", PQgetvalue(res, r, b + V_TITLE), err);
	set_text(v, "sku", res, r, b + V_SKU, err);
	set_money(v, "price", "price_minor", res, r, b + V_PRICE, currency,
	    err);
	set_money(v, "compare_at_price", "compare_at_price_minor", res, r,
	    b + V_COMPARE_AT, currency, err);
	pv_json_set_str(v, "currency", currency, err);
	pv_json_set_bool(v, "in_stock", yes(res, r, b + V_IN_STOCK), err);
	pv_json_set_int(v, "inventory_quantity", num(res, r, b + V_QTY), err);
	pv_json_set_bool(v, "inventory_tracked", yes(res, r, b + V_TRACKED),
	    err);
	pv_json_set(v, "options", options(ctx, res, r, b + V_OPTIONS, err),
	    err);
	set_text(v, "image_url", res, r, b + V_IMAGE, err);
	set_text(v, "platform_variant_id", res, r, b + V_EXTERNAL, err);
	return v;
}

/*
 * The default variant of rows r0..r1-1: the first in stock, else the
 * first.  An order line without variant_id buys the same one
 * (pv_cart.c), so a product found with in_stock_only can be ordered
 * as found.
 */
static int
default_row(const PGresult *res, int r0, int r1, int b)
{
	int r;

	for (r = r0; r < r1; r++)
		if (!PQgetisnull(res, r, b + V_ID) &&
		    yes(res, r, b + V_IN_STOCK))
			return r;
	return r0;
}

/*
 * The product of rows r0..r1-1 (one per variant, by position) as the
 * API.md Product, columns from b on.
 */
static struct json_object *
product_json(struct pv_ctx *ctx, const PGresult *res, int r0, int r1, int b,
    struct pv_err *err)
{
	struct json_object *p = pv_json_new_obj(ctx->arena, err);
	struct json_object *vars = pv_json_new_arr(ctx->arena, err);
	struct json_object *images =
	    split_array(ctx, res, r0, b + P_IMAGES, err);
	const char *currency = PQgetvalue(res, r0, b + P_CURRENCY);
	bool has_variant = !PQgetisnull(res, r0, b + V_ID);
	int r, d = default_row(res, r0, r1, b);

	pv_json_set_str(p, "id", PQgetvalue(res, r0, b + P_ID), err);
	pv_json_set_str(p, "product_id", PQgetvalue(res, r0, b + P_ID), err);
	pv_json_set_str(p, "merchant_id", PQgetvalue(res, r0, b + P_MERCHANT),
	    err);
	pv_json_set_str(p, "merchant_name",
	    PQgetvalue(res, r0, b + P_MERCHANT_NM), err);
	pv_json_set_str(p, "title", PQgetvalue(res, r0, b + P_TITLE), err);
	pv_json_set_str(p, "name", PQgetvalue(res, r0, b + P_TITLE), err);
	pv_json_set_str(p, "description",
	    PQgetvalue(res, r0, b + P_DESCRIPTION), err);
	pv_json_set_str(p, "vendor", PQgetvalue(res, r0, b + P_VENDOR), err);
	pv_json_set_str(p, "product_type", PQgetvalue(res, r0, b + P_TYPE),
	    err);
	pv_json_set_str(p, "category", PQgetvalue(res, r0, b + P_TYPE), err);
	pv_json_set(p, "tags", split_array(ctx, res, r0, b + P_TAGS, err), err);
	pv_json_set_str(p, "currency", currency, err);
	if (has_variant) {
		set_money(p, "price", "price_minor", res, d, b + V_PRICE,
		    currency, err);
		set_money(p, "compare_at_price", "compare_at_price_minor", res,
		    d, b + V_COMPARE_AT, currency, err);
		pv_json_set_str(p, "variant_id", PQgetvalue(res, d, b + V_ID),
		    err);
		set_text(p, "sku", res, d, b + V_SKU, err);
	} else {
		pv_json_set(p, "price", NULL, err);
		pv_json_set(p, "price_minor", NULL, err);
		pv_json_set(p, "compare_at_price", NULL, err);
		pv_json_set(p, "compare_at_price_minor", NULL, err);
		pv_json_set(p, "variant_id", NULL, err);
		pv_json_set(p, "sku", NULL, err);
	}
	pv_json_set_bool(p, "in_stock", yes(res, r0, b + P_IN_STOCK), err);
	pv_json_set_int(p, "inventory_quantity", num(res, r0, b + P_INVENTORY),
	    err);
	pv_json_set(p, "image_url",
	    images != NULL && json_object_array_length(images) > 0 ?
	        json_object_array_get_idx(images, 0) :
	        NULL,
	    err);
	pv_json_set(p, "images", images, err);
	set_text(p, "url", res, r0, b + P_URL, err);
	for (r = r0; has_variant && r < r1; r++)
		pv_json_push(vars, variant_json(ctx, res, r, b, currency, err),
		    err);
	pv_json_set(p, "variants", vars, err);
	pv_json_set_str(p, "platform", PQgetvalue(res, r0, b + P_PLATFORM),
	    err);
	set_text(p, "platform_product_id", res, r0, b + P_EXTERNAL, err);
	pv_json_set_str(p, "status", PQgetvalue(res, r0, b + P_STATUS), err);
	set_time(p, "updated_at", res, r0, b + P_UPDATED, err);
	return p;
}

/* The row after the last one of the product that starts at r. */
static int
product_end(const PGresult *res, int r, int b)
{
	const char *id = PQgetvalue(res, r, b + P_ID);
	int n = PQntuples(res);

	while (++r < n && strcmp(PQgetvalue(res, r, b + P_ID), id) == 0)
		;
	return r;
}

/*
 * The rank as a JSON number, keeping PostgreSQL's shortest exact text
 * (json-c would print 17 digits); 0 for anything unexpected.
 */
static void
set_score(struct json_object *o, const char *rank, struct pv_err *err)
{
	struct json_object *d;
	char *end;
	double v;

	if (err->code != PV_OK)
		return;
	v = strtod(rank, &end);
	if (*rank == '\0' || *end != '\0' ||
	    strspn(rank, "0123456789.eE+-") != strlen(rank)) {
		pv_json_set_double(o, "relevance_score", 0.0, err);
		return;
	}
	if ((d = json_object_new_double_s(v, rank)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return;
	}
	pv_json_set(o, "relevance_score", d, err);
	json_object_put(d);
}

/* Parses a price filter; see pv_products.h. */
int
pv_products_parse_price(const char *s, const char *field, int64_t *e4,
    struct pv_err *err)
{
	struct pv_err perr = { 0 };

	/* CLF has 4 decimals: the strictest parser we have, at e4. */
	if (pv_money_parse(s, strlen(s), "CLF", 0, e4, field, &perr) == -1 ||
	    *e4 > PRICE_E4_MAX) {
		PV_ERR_INVALID(err, field,
		    "must be a non-negative decimal amount in major units with "
		    "at most 4 decimals, such as \"25\" or \"25.00\"");
		return -1;
	}
	return 0;
}

/* FNV-1a over the parts; see pv_products.h. */
void
pv_products_fingerprint(const char *const *parts, size_t n,
    char fp[PV_PRODUCTS_FP_SIZE])
{
	static const char hexd[] = "0123456789abcdef";
	unsigned long h = 2166136261UL;
	const unsigned char *p;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		/* A NULL part and "" differ; parts are separated. */
		h = ((h ^ (parts[i] == NULL ? 0x01u : 0x02u)) * 16777619UL) &
		    0xffffffffUL;
		for (p = (const unsigned char *)parts[i]; p != NULL && *p != 0;
		     p++)
			h = ((h ^ *p) * 16777619UL) & 0xffffffffUL;
		h = ((h ^ 0xffu) * 16777619UL) & 0xffffffffUL;
	}
	for (k = 0; k < 8; k++)
		fp[k] = hexd[(h >> (28 - 4 * k)) & 0xfu];
	fp[8] = '\0';
}

/* "c1:<fp>:<rank>:<id>", hex-encoded; see pv_products.h. */
int
pv_products_cursor_encode(struct pv_arena *a, const char *fp, const char *rank,
    const char *id, const char **out, struct pv_err *err)
{
	const char *plain;

	if ((plain = pv_arena_printf(a, err, CURSOR_TAG ":%s:%s:%s", fp, rank,
	         id)) == NULL)
		return -1;
	return pv_crypto_hex_encode(a, plain, strlen(plain), out, err);
}

/* Splits and checks a cursor; see pv_products.h. */
int
pv_products_cursor_decode(struct pv_arena *a, const char *cursor,
    const char *fp, const char **rank, const char **id, struct pv_err *err)
{
	struct pv_err herr = { 0 };
	unsigned char *raw;
	const char *s, *r, *i;
	size_t n, len = strlen(cursor);
	char *e;

	if (len > CURSOR_MAX || len % 2 != 0 ||
	    pv_crypto_hex_decode(a, cursor, len, &raw, &n, "cursor", &herr) ==
	        -1 ||
	    (s = pv_arena_strndup(a, (const char *)raw, n, &herr)) == NULL ||
	    strlen(s) != n || strncmp(s, CURSOR_TAG ":", 3) != 0)
		goto bad;
	if (strncmp(s + 3, fp, 8) != 0 || s[11] != ':') {
		PV_ERR_INVALID(err, "cursor",
		    "belongs to another search; repeat the query and filters "
		    "of the search that returned it");
		return -1;
	}
	r = s + 12;
	if ((i = strchr(r, ':')) == NULL || i == r ||
	    strspn(r, "0123456789.eE+-") != (size_t)(i - r))
		goto bad;
	*rank = pv_arena_strndup(a, r, (size_t)(i - r), err);
	strtod(*rank != NULL ? *rank : "x", &e);
	if (*rank == NULL || *e != '\0' || !is_product_id(i + 1))
		goto bad;
	*id = i + 1;
	return 0;
bad:
	if (err->code == PV_OK)
		PV_ERR_INVALID(err, "cursor",
		    "is not a cursor this API returned (use next_cursor as "
		    "is)");
	return -1;
}

/* The validated parameters of a search. */
struct search_in {
	const char *query;            /* search text, or NULL to browse */
	const char *merchant;         /* merchant public id, or NULL */
	const char *category;         /* product type, or NULL */
	char min[24];                 /* min price e4 as text, or "" */
	char max[24];                 /* max price e4 as text, or "" */
	bool in_stock;                /* only products in stock */
	int64_t limit;                /* page size */
	int64_t offset;               /* rows to skip (no cursor) */
	const char *rank;             /* cursor rank, or NULL */
	const char *after;            /* cursor public id, or NULL */
	char fp[PV_PRODUCTS_FP_SIZE]; /* fingerprint of the filters */
};

/* in_stock_only and in_stock (both spellings, API.md [compat]). */
static int
stock_filter(const struct pv_req *req, bool *out, struct pv_err *err)
{
	const char *a = param(req, "in_stock_only"),
	           *b = param(req, "in_stock");
	bool va = false, vb = false;

	if ((a != NULL && pv_valid_bool(a, &va, "in_stock_only", err) == -1) ||
	    (b != NULL && pv_valid_bool(b, &vb, "in_stock", err) == -1))
		return -1;
	if (a != NULL && b != NULL && va != vb) {
		PV_ERR_INVALID(err, "in_stock",
		    "contradicts in_stock_only; send one of them");
		return -1;
	}
	*out = va || vb;
	return 0;
}

static int
price_filters(const struct pv_req *req, struct search_in *in,
    struct pv_err *err)
{
	const char *lo = param(req, "min_price"), *hi = param(req, "max_price");
	int64_t min = 0, max = 0;

	in->min[0] = in->max[0] = '\0';
	if ((lo != NULL &&
	        pv_products_parse_price(lo, "min_price", &min, err) == -1) ||
	    (hi != NULL &&
	        pv_products_parse_price(hi, "max_price", &max, err) == -1))
		return -1;
	if (lo != NULL && hi != NULL && max < min) {
		PV_ERR_INVALID(err, "max_price", "is less than min_price");
		return -1;
	}
	if ((lo != NULL &&
	        snprintf(in->min, sizeof(in->min), "%lld", (long long)min) <
	            0) ||
	    (hi != NULL &&
	        snprintf(in->max, sizeof(in->max), "%lld", (long long)max) <
	            0)) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "snprintf failed");
		return -1;
	}
	return 0;
}

static int
search_params(struct pv_ctx *ctx, const struct pv_req *req,
    struct search_in *in, struct pv_err *err)
{
	static const char *const names[] = { "query", "q", "merchant_id",
		"category", "min_price", "max_price", "in_stock_only",
		"in_stock", "limit", "offset", "cursor", NULL };
	const char *q1, *q2, *cursor, *parts[6];

	memset(in, 0, sizeof(*in));
	if (only_params(req, names, err) == -1)
		return -1;
	q1 = param(req, "query");
	q2 = param(req, "q");
	if (q1 != NULL && q2 != NULL && strcmp(q1, q2) != 0) {
		PV_ERR_INVALID(err, "q", "contradicts query; send one of them");
		return -1;
	}
	in->query = q1 != NULL ? q1 : q2;
	if (in->query != NULL &&
	    pv_valid_text(in->query, strlen(in->query), 0, QUERY_MAX, 0,
	        q1 != NULL ? "query" : "q", err) == -1)
		return -1;
	if (in->query != NULL && in->query[strspn(in->query, " ")] == '\0')
		in->query = NULL;
	in->merchant = param(req, "merchant_id");
	if (in->merchant != NULL && !is_merchant_id(in->merchant)) {
		PV_ERR_INVALID(err, "merchant_id",
		    "must be mer_ followed by 16 lowercase hex digits");
		return -1;
	}
	in->category = param(req, "category");
	if ((in->category != NULL &&
	        pv_valid_text(in->category, strlen(in->category), 1, 255, 0,
	            "category", err) == -1) ||
	    price_filters(req, in, err) == -1 ||
	    stock_filter(req, &in->in_stock, err) == -1 ||
	    paging(req, &in->limit, &in->offset, err) == -1)
		return -1;
	parts[0] = in->query;
	parts[1] = in->merchant;
	parts[2] = in->category;
	parts[3] = in->min;
	parts[4] = in->max;
	parts[5] = in->in_stock ? "1" : "0";
	pv_products_fingerprint(parts, 6, in->fp);
	if ((cursor = param(req, "cursor")) == NULL)
		return 0;
	if (in->offset != 0) {
		PV_ERR_INVALID(err, "offset", "cannot be combined with cursor");
		return -1;
	}
	return pv_products_cursor_decode(ctx->arena, cursor, in->fp, &in->rank,
	    &in->after, err);
}

/*
 * GET /agent/v1/products/search.
 * 200 {status, query, corrected_query, products:[Product],
 *      pagination:{total, limit, offset, has_more, next_cursor}};
 * 400 a bad parameter (named); 404 merchant_id not in the agent's scope.
 */
static int
search(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	struct search_in in;
	struct json_object *o, *arr, *pg, *p;
	const char *prm[12], *next = NULL, *last_rank = NULL, *last_id = NULL;
	char lim[24], off[24];
	long long total, offset;
	PGresult *res;
	int r, end, n = 0;

	if (search_params(ctx, req, &in, err) == -1)
		return -1;
	if (snprintf(lim, sizeof(lim), "%lld", (long long)in.limit) < 0 ||
	    snprintf(off, sizeof(off), "%lld", (long long)in.offset) < 0)
		return -1;
	prm[0] = ctx->agent->id;
	prm[1] = ctx->agent->restricted ? "t" : "f";
	prm[2] = in.merchant;
	prm[3] = in.query;
	prm[4] = in.category;
	prm[5] = in.min[0] != '\0' ? in.min : NULL;
	prm[6] = in.max[0] != '\0' ? in.max : NULL;
	prm[7] = in.in_stock ? "t" : "f";
	prm[8] = lim;
	prm[9] = off;
	prm[10] = in.rank;
	prm[11] = in.after;
	if (in.query != NULL ? pv_db_exec(ctx, PV_SQL(PV_PRODUCTS_SQL_SEARCH),
	                           12, prm, &res, err) == -1 :
	                       pv_db_exec(ctx, PV_SQL(PV_PRODUCTS_SQL_BROWSE),
	                           12, prm, &res, err) == -1)
		return -1;
	if (in.merchant != NULL && num(res, 0, S_NSCOPE) == 0) {
		PV_ERR(err, PV_E_NOTFOUND, "merchant_id",
		    "No merchant %s that this agent may buy from.",
		    in.merchant);
		pv_err_reason(err, "merchant_not_found");
		return -1;
	}
	o = success(ctx, err);
	arr = pv_json_new_arr(ctx->arena, err);
	for (r = 0; r < PQntuples(res) && !PQgetisnull(res, r, S__MAX + P_ID);
	     r = end, n++) {
		end = product_end(res, r, S__MAX);
		p = product_json(ctx, res, r, end, S__MAX, err);
		set_score(p, PQgetvalue(res, r, S_RANK), err);
		pv_json_push(arr, p, err);
		last_rank = PQgetvalue(res, r, S_RANK);
		last_id = PQgetvalue(res, r, S__MAX + P_ID);
		if (in.merchant != NULL)
			ctx->usage.merchant_id =
			    PQgetvalue(res, r, S__MAX + P_MERCHANT_INTERNAL);
	}
	total = num(res, 0, S_TOTAL);
	offset = in.rank != NULL ? num(res, 0, S_BEFORE) : in.offset;
	if (offset + n < total && last_id != NULL &&
	    pv_products_cursor_encode(ctx->arena, in.fp, last_rank, last_id,
	        &next, err) == -1)
		return -1;
	pg = pv_json_new_obj(ctx->arena, err);
	pv_json_set_int(pg, "total", total, err);
	pv_json_set_int(pg, "limit", in.limit, err);
	pv_json_set_int(pg, "offset", offset, err);
	pv_json_set_bool(pg, "has_more", offset + n < total, err);
	pv_json_set_str(pg, "next_cursor", next, err);
	pv_json_set_str(o, "query", in.query, err);
	set_text(o, "corrected_query", res, 0, S_CORRECTED, err);
	pv_json_set(o, "products", arr, err);
	pv_json_set(o, "pagination", pg, err);
	return reply(ctx, resp, o, err);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * A path segment, percent-decoded (a platform's product id may need
 * escaping), as arena memory; NULL if it is malformed, empty, longer
 * than 255 bytes or not text.  '+' is a plus sign in a path.
 */
static const char *
segment(struct pv_ctx *ctx, const char *s, struct pv_err *err)
{
	struct pv_err verr = { 0 };
	size_t i, o = 0, len = strlen(s);
	char *d;
	int hi, lo;

	if ((d = pv_arena_alloc(ctx->arena, len + 1, err)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] != '%') {
			d[o++] = s[i];
			continue;
		}
		if (i + 2 >= len || (hi = hexval(s[i + 1])) < 0 ||
		    (lo = hexval(s[i + 2])) < 0)
			return NULL;
		d[o++] = (char)(hi * 16 + lo);
		i += 2;
	}
	d[o] = '\0';
	if (pv_valid_text(d, o, 1, 255, 0, NULL, &verr) == -1)
		return NULL;
	return d;
}

/*
 * GET /agent/v1/products/{merchant_id}/{product_id}: product_id is
 * our prod_ id or the store platform's id for the product.
 * 200 {status, product:Product}; 404 unknown product, or a merchant
 * that is unknown or outside the agent's scope.
 */
static int
lookup(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	static const char *const names[] = { NULL };
	const char *prm[2], *pid = NULL;
	struct pv_err bad = { 0 };
	struct json_object *o;
	PGresult *res;
	const int b = PV_AGENT_PROLOGUE_NCOLS;
	int rc;

	/* A bad request is still authenticated first: 401 before 400. */
	if (only_params(req, names, &bad) == 0)
		pid = segment(ctx, req->route[1], &bad);
	if (bad.code == PV_OK &&
	    (!is_merchant_id(req->route[0]) || pid == NULL)) {
		PV_ERR(&bad, PV_E_NOTFOUND, "product_id", "No such product.");
		pv_err_reason(&bad, "product_not_found");
	}
	if (bad.code != PV_OK) {
		if (pv_agent_authenticate(ctx, req, resp, err) == -1)
			return -1;
		*err = bad;
		return -1;
	}
	prm[0] = req->route[0];
	prm[1] = pid;
	rc = is_product_id(pid) ?
	    pv_agent_authenticate_with(ctx, req, resp,
	        PV_PRODUCTS_SQL_LOOKUP_FOLD_BY_ID, 2, prm, &res, err) :
	    pv_agent_authenticate_with(ctx, req, resp,
	        PV_PRODUCTS_SQL_LOOKUP_FOLD_BY_EXTERNAL, 2, prm, &res, err);
	if (rc == -1)
		return -1;
	if (PQgetisnull(res, 0, b + P_ID)) {
		PV_ERR(err, PV_E_NOTFOUND, "product_id", "No such product.");
		pv_err_reason(err, "product_not_found");
		return -1;
	}
	ctx->usage.merchant_id = PQgetvalue(res, 0, b + P_MERCHANT_INTERNAL);
	o = success(ctx, err);
	pv_json_set(o, "product",
	    product_json(ctx, res, 0, PQntuples(res), b, err), err);
	return reply(ctx, resp, o, err);
}

static const char *const merchant_statuses[] = { "active", "approved",
	"pending", "suspended", NULL };

/*
 * GET /agent/v1/merchants?limit&offset&status.
 * 200 {status, merchants:[{merchant_id, business_name, status,
 *      store_url, region, psp_connected, psp_type, platform,
 *      product_count, currency, created_at}], pagination:{total, limit,
 *      offset, has_more}}: the merchants this agent may buy from (status
 *      "approved" is the old name of active; pending or suspended
 *      merchants are never listed); 400 a bad parameter.
 */
static int
merchants(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	static const char *const names[] = { "limit", "offset", "status",
		NULL };
	struct json_object *o, *arr, *m, *pg;
	const char *prm[5], *status = param(req, "status");
	int64_t limit, offset;
	char lim[24], off[24];
	size_t st = 0;
	PGresult *res;
	int r, n = 0;

	if (only_params(req, names, err) == -1 ||
	    paging(req, &limit, &offset, err) == -1 ||
	    (status != NULL &&
	        pv_valid_enum(status, merchant_statuses, &st, "status", err) ==
	            -1))
		return -1;
	if (snprintf(lim, sizeof(lim), "%lld", (long long)limit) < 0 ||
	    snprintf(off, sizeof(off), "%lld", (long long)offset) < 0)
		return -1;
	prm[0] = ctx->agent->id;
	prm[1] = ctx->agent->restricted ? "t" : "f";
	prm[2] = lim;
	prm[3] = off;
	prm[4] = st <= 1 ? "t" : "f";
	if (pv_db_exec(ctx, PV_SQL(PV_PRODUCTS_SQL_MERCHANTS), 5, prm, &res,
	        err) == -1)
		return -1;
	o = success(ctx, err);
	arr = pv_json_new_arr(ctx->arena, err);
	for (r = 0; r < PQntuples(res) && !PQgetisnull(res, r, M_ID); r++) {
		m = pv_json_new_obj(ctx->arena, err);
		pv_json_set_str(m, "merchant_id", PQgetvalue(res, r, M_ID),
		    err);
		pv_json_set_str(m, "business_name", PQgetvalue(res, r, M_NAME),
		    err);
		pv_json_set_str(m, "status", PQgetvalue(res, r, M_STATUS), err);
		set_text(m, "store_url", res, r, M_STORE_URL, err);
		pv_json_set_str(m, "region", PQgetvalue(res, r, M_REGION), err);
		pv_json_set_bool(m, "psp_connected",
		    yes(res, r, M_PSP_CONNECTED), err);
		set_text(m, "psp_type", res, r, M_PSP_TYPE, err);
		pv_json_set_str(m, "platform", PQgetvalue(res, r, M_PLATFORM),
		    err);
		pv_json_set_int(m, "product_count",
		    num(res, r, M_PRODUCT_COUNT), err);
		pv_json_set_str(m, "currency", PQgetvalue(res, r, M_CURRENCY),
		    err);
		set_time(m, "created_at", res, r, M_CREATED, err);
		pv_json_push(arr, m, err);
		n++;
	}
	pg = pv_json_new_obj(ctx->arena, err);
	pv_json_set_int(pg, "total", num(res, 0, M_TOTAL), err);
	pv_json_set_int(pg, "limit", limit, err);
	pv_json_set_int(pg, "offset", offset, err);
	pv_json_set_bool(pg, "has_more", offset + n < num(res, 0, M_TOTAL),
	    err);
	pv_json_set(o, "merchants", arr, err);
	pv_json_set(o, "pagination", pg, err);
	return reply(ctx, resp, o, err);
}

static const struct pv_route routes[] = {
	{ PV_GET, "/agent/v1/merchants", merchants, PV_ROUTE_AGENT },
	{ PV_GET, "/agent/v1/products/search", search, PV_ROUTE_AGENT },
	{ PV_GET, "/agent/v1/products/:merchant_id/:product_id", lookup,
	    PV_ROUTE_AGENT_SELF },
};

/* Routes the products program's requests; see pv_products.h. */
int
pv_products_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	return pv_route_dispatch(ctx, routes,
	    sizeof(routes) / sizeof(routes[0]), req, resp, err);
}
