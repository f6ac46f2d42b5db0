/*
 * The catalog through the real servers (issue 4): catalogs imported
 * with the real pivotactl for three merchants (USD from CSV, EUR from
 * JSON, JPY from JSON Lines), an agent limited to two of them and one
 * that may buy from all; search with typos, plurals, several words,
 * price and stock filters in both spellings, cursor paging, bad
 * filters, SQL-looking input, merchants and product lookup.  Every
 * test makes its own merchants, so tests share nothing but the
 * database and other suites' merchants may appear for the unrestricted
 * agent: assertions about it only ever look for this test's products.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pv_httpc.h"
#include "pv_proc.h"
#include "pv_test.h"

#define MAX_SERVERS 8
#define FIXTURES    "tests/fixtures/catalog/"

static struct pv_httpc_server servers[MAX_SERVERS];
static size_t nservers;

static void
setup(void)
{
	nservers = pv_httpc_servers(servers, MAX_SERVERS);
	ck_assert_msg(nservers >= 2,
	    "need the servers: run these through tests/integration/run.sh");
}

/* The string member key of pivotactl's --json output, copied to dst. */
static void
json_field(const char *out, const char *key, char *dst, size_t size)
{
	struct json_object *o = json_tokener_parse(out);

	ck_assert_msg(o != NULL, "pivotactl printed: %s", out);
	ck_assert_msg(pv_httpc_json_str(o, key) != NULL, "no %s in %s", key,
	    out);
	ck_assert_int_lt(snprintf(dst, size, "%s", pv_httpc_json_str(o, key)),
	    (int)size);
	json_object_put(o);
}

struct world {
	char a[32], b[32], c[32]; /* merchants: USD, EUR (hidden), JPY */
	char restricted[128];     /* X-API-Key of an agent for a and c */
	char open[128];           /* X-API-Key of an agent for everyone */
};

static void
merchant(const char *name, const char *currency, const char *fixture, char *id,
    size_t size)
{
	static int seq;
	char email[96], out[2048], file[256];

	snprintf(email, sizeof(email), "cat-%ld-%d-%s@test.example",
	    (long)getpid(), seq++, currency);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "create",
	                     "--name", name, "--email", email, "--currency",
	                     currency, "--json", NULL),
	    0);
	json_field(out, "merchant_id", id, size);
	snprintf(file, sizeof(file), FIXTURES "%s", fixture);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "products", "import", id,
	                     file, "--json", NULL),
	    0);
}

static void
agent(const char *merchants, char *header, size_t size)
{
	char out[2048], key[128];

	if (merchants != NULL)
		ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "agent",
		                     "create", "--name", "catalog test",
		                     "--per-minute", "100000", "--merchants",
		                     merchants, "--json", NULL),
		    0);
	else
		ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "agent",
		                     "create", "--name", "catalog test",
		                     "--per-minute", "100000", "--json", NULL),
		    0);
	json_field(out, "api_key", key, sizeof(key));
	snprintf(header, size, "X-API-Key: %s", key);
}

static void
world_make(struct world *w)
{
	char list[80];

	merchant("Store A", "USD", "store_a.csv", w->a, sizeof(w->a));
	merchant("Store B", "EUR", "store_b.json", w->b, sizeof(w->b));
	merchant("Store C", "JPY", "store_c.jsonl", w->c, sizeof(w->c));
	snprintf(list, sizeof(list), "%s,%s", w->a, w->c);
	agent(list, w->restricted, sizeof(w->restricted));
	agent(NULL, w->open, sizeof(w->open));
}

/* Percent-encodes s for a query string (static buffer). */
static const char *
enc(const char *s)
{
	static char buf[1024];
	static const char hexd[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s != '\0' && o + 4 < sizeof(buf); s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-_.~", ch) != NULL) {
			buf[o++] = (char)ch;
		} else {
			buf[o++] = '%';
			buf[o++] = hexd[ch >> 4];
			buf[o++] = hexd[ch & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}

/*
 * GET path (printf-style) on server s as the agent of header; the
 * parsed body (caller puts it), asserting the status.
 */
static struct json_object *get(const struct pv_httpc_server *s,
    const char *header, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static struct json_object *
get(const struct pv_httpc_server *s, const char *header, long status,
    const char *fmt, ...)
{
	const char *h[] = { header, NULL };
	struct pv_httpc_resp r;
	struct json_object *o;
	char path[2048];
	char *url;
	va_list ap;

	va_start(ap, fmt);
	ck_assert_int_lt(vsnprintf(path, sizeof(path), fmt, ap),
	    (int)sizeof(path));
	va_end(ap);
	url = pv_httpc_url(s->base, path);
	ck_assert_msg(pv_httpc_get(&r, url, h) == 0, "%s: %s", s->name,
	    r.error);
	free(url);
	ck_assert_msg(r.status == status, "%s GET %s: %ld, want %ld: %s",
	    s->name, path, r.status, status, r.body);
	o = pv_httpc_json(&r);
	ck_assert_msg(o != NULL, "%s GET %s: not JSON: %s", s->name, path,
	    r.body);
	pv_httpc_resp_free(&r);
	return o;
}

/* Asserts a 400 naming param. */
static void
bad(const struct pv_httpc_server *s, const char *header, const char *param,
    const char *query)
{
	struct json_object *o =
	    get(s, header, 400, "/agent/v1/products/search?%s", query);

	ck_assert_str_eq(pv_httpc_json_str(o, "status"), "error");
	ck_assert_str_eq(pv_httpc_json_str(o, "error.type"),
	    "invalid_request_error");
	ck_assert_msg(pv_httpc_json_str(o, "error.param") != NULL &&
	        strcmp(pv_httpc_json_str(o, "error.param"), param) == 0,
	    "%s: ?%s names %s, want %s", s->name, query,
	    pv_httpc_json_str(o, "error.param"), param);
	ck_assert_ptr_nonnull(pv_httpc_json_str(o, "detail"));
	json_object_put(o);
}

static struct json_object *
products(struct json_object *o)
{
	struct json_object *arr = pv_httpc_json_get(o, "products");

	ck_assert_ptr_nonnull(arr);
	ck_assert(json_object_is_type(arr, json_type_array));
	return arr;
}

/* How many results have this title (and, if given, this merchant). */
static int
count_title(struct json_object *o, const char *title, const char *merchant)
{
	struct json_object *arr = products(o), *p;
	size_t i;
	int n = 0;

	for (i = 0; i < json_object_array_length(arr); i++) {
		p = json_object_array_get_idx(arr, i);
		if (strcmp(pv_httpc_json_str(p, "title"), title) == 0 &&
		    (merchant == NULL ||
		        strcmp(pv_httpc_json_str(p, "merchant_id"), merchant) ==
		            0))
			n++;
	}
	return n;
}

/* Fails if any result belongs to merchant. */
static void
assert_no_merchant(struct json_object *o, const char *merchant)
{
	struct json_object *arr = products(o);
	size_t i;

	for (i = 0; i < json_object_array_length(arr); i++)
		ck_assert_str_ne(
		    pv_httpc_json_str(json_object_array_get_idx(arr, i),
		        "merchant_id"),
		    merchant);
}

static long
num(struct json_object *o, const char *path)
{
	struct json_object *v = pv_httpc_json_get(o, path);

	ck_assert_msg(v != NULL && json_object_is_type(v, json_type_int),
	    "%s is not an integer", path);
	return (long)json_object_get_int64(v);
}

/* Search as the restricted agent (stores A and C only) on server s. */
static struct json_object *
search(const struct world *w, const struct pv_httpc_server *s,
    const char *query)
{
	return get(s, w->restricted, 200, "/agent/v1/products/search?%s",
	    query);
}

START_TEST(test_products_search_typo_plural_multiword)
{
	struct world w;
	struct json_object *o;
	size_t i;

	world_make(&w);
	for (i = 0; i < nservers; i++) {
		/* "hoody" finds hoodies (the stemmer and the vocabulary). */
		o = search(&w, &servers[i], "query=hoody&limit=50");
		ck_assert_int_eq(count_title(o, "Classic Pullover Hoodie", w.a),
		    1);
		ck_assert_int_eq(count_title(o, "Organic Zip Hoodie", w.a), 1);
		ck_assert_int_eq(count_title(o, "Yukata Hoodie", w.c), 1);
		ck_assert_int_eq(num(o, "pagination.total"), 3);
		assert_no_merchant(o, w.b);
		json_object_put(o);
	}
	/* A misspelling is corrected against the catalog's words. */
	o = search(&w, &servers[0], "q=jakcet");
	ck_assert_str_eq(pv_httpc_json_str(o, "corrected_query"), "jacket");
	ck_assert_int_eq(count_title(o, "Packable Rain Jacket", w.a), 1);
	ck_assert_int_eq(count_title(o, "Recycled Puffer Jacket", w.a), 1);
	json_object_put(o);
	o = search(&w, &servers[1], "q=hodie");
	ck_assert_int_eq(num(o, "pagination.total"), 3);
	json_object_put(o);
	/* Plurals and singulars meet at the stem. */
	o = search(&w, &servers[0], "q=jackets");
	ck_assert_int_eq(num(o, "pagination.total"), 2);
	ck_assert_ptr_null(pv_httpc_json_get(o, "corrected_query"));
	json_object_put(o);
	o = search(&w, &servers[0], "q=shoe");
	ck_assert_int_eq(count_title(o, "Trail Running Shoes", w.a), 1);
	json_object_put(o);
	/* Several words: all must match, in any field. */
	o = search(&w, &servers[0], "q=wool%20socks");
	ck_assert_int_eq(num(o, "pagination.total"), 1);
	ck_assert_int_eq(count_title(o, "Merino Wool Socks", w.a), 1);
	json_object_put(o);
	o = search(&w, &servers[0], "q=red%20cotton%20shirts");
	ck_assert_int_eq(num(o, "pagination.total"), 1);
	ck_assert_int_eq(count_title(o, "Red Cotton T-Shirt", w.a), 1);
	json_object_put(o);
	/* Description words match; a SKU finds its product. */
	o = search(&w, &servers[0], "q=waterproof");
	ck_assert_int_eq(count_title(o, "Packable Rain Jacket", w.a), 1);
	assert_no_merchant(o, w.b);
	json_object_put(o);
	o = search(&w, &servers[0], "q=A-TRS-10");
	ck_assert_int_eq(num(o, "pagination.total"), 1);
	ck_assert_int_eq(count_title(o, "Trail Running Shoes", w.a), 1);
	json_object_put(o);
	/* One merchant only. */
	o = get(&servers[0], w.restricted, 200,
	    "/agent/v1/products/search?q=cotton&merchant_id=%s", w.a);
	ck_assert_str_eq(pv_httpc_json_str(json_object_array_get_idx(products(
	                                                                 o),
	                                       0),
	                     "merchant_id"),
	    w.a);
	json_object_put(o);
}
END_TEST

START_TEST(test_products_price_and_stock_filters)
{
	struct world w;
	struct json_object *o;
	size_t i;

	world_make(&w);
	/* Prices are major units of each product's own currency. */
	o = search(&w, &servers[0], "q=hoodie&min_price=40&max_price=50.00");
	ck_assert_int_eq(num(o, "pagination.total"), 1);
	ck_assert_int_eq(count_title(o, "Classic Pullover Hoodie", w.a), 1);
	json_object_put(o);
	o = search(&w, &servers[0], "q=hoodie&min_price=1000");
	ck_assert_int_eq(num(o, "pagination.total"), 1);
	ck_assert_int_eq(count_title(o, "Yukata Hoodie", w.c), 1);
	json_object_put(o);
	o = search(&w, &servers[1], "q=hoodie&max_price=48");
	ck_assert_int_eq(num(o, "pagination.total"), 1);
	json_object_put(o);
	o = search(&w, &servers[0], "q=hoodie&min_price=48.0001");
	ck_assert_int_eq(count_title(o, "Classic Pullover Hoodie", w.a), 0);
	json_object_put(o);
	/* Category is the product type, any case. */
	o = search(&w, &servers[0], "category=jackets&limit=50");
	ck_assert_int_eq(num(o, "pagination.total"), 2);
	json_object_put(o);
	/* Stock: both spellings, Python's True/False too. */
	for (i = 0; i < nservers; i++) {
		o = search(&w, &servers[i], "q=hoodie&in_stock_only=True");
		ck_assert_int_eq(count_title(o, "Organic Zip Hoodie", w.a), 0);
		ck_assert_int_eq(count_title(o, "Classic Pullover Hoodie", w.a),
		    1);
		json_object_put(o);
	}
	o = search(&w, &servers[0], "q=hoodie&in_stock=true");
	ck_assert_int_eq(num(o, "pagination.total"), 2);
	json_object_put(o);
	o = search(&w, &servers[0], "q=hoodie&in_stock=1");
	ck_assert_int_eq(num(o, "pagination.total"), 2);
	json_object_put(o);
	o = search(&w, &servers[1], "q=hoodie&in_stock=false");
	ck_assert_int_eq(num(o, "pagination.total"), 3);
	json_object_put(o);
	o = search(&w, &servers[1], "q=hoodie&in_stock_only=False&in_stock=0");
	ck_assert_int_eq(count_title(o, "Organic Zip Hoodie", w.a), 1);
	json_object_put(o);
}
END_TEST

START_TEST(test_products_hidden_merchant_never_appears)
{
	struct world w;
	struct json_object *o, *arr;
	size_t i, k;
	int seen_a, seen_b;

	world_make(&w);
	for (i = 0; i < nservers; i++) {
		o = search(&w, &servers[i], "q=rain%20jacket&limit=100");
		assert_no_merchant(o, w.b);
		ck_assert_int_eq(count_title(o, "Packable Rain Jacket", w.a),
		    1);
		json_object_put(o);
		/* Naming it is as naming a merchant that does not exist. */
		o = get(&servers[i], w.restricted, 404,
		    "/agent/v1/products/search?q=jacket&merchant_id=%s", w.b);
		ck_assert_str_eq(pv_httpc_json_str(o, "error.param"),
		    "merchant_id");
		json_object_put(o);
		o = get(&servers[i], w.restricted, 200,
		    "/agent/v1/merchants?limit=100");
		arr = pv_httpc_json_get(o, "merchants");
		ck_assert_int_eq(num(o, "pagination.total"), 2);
		ck_assert_int_eq(json_object_array_length(arr), 2);
		for (k = 0; k < 2; k++)
			ck_assert_str_ne(
			    pv_httpc_json_str(json_object_array_get_idx(arr, k),
			        "merchant_id"),
			    w.b);
		json_object_put(o);
		o = get(&servers[i], w.restricted, 404,
		    "/agent/v1/products/%s/9002", w.b);
		json_object_put(o);
	}
	/* Browsing without a query hides it too. */
	o = search(&w, &servers[0], "limit=100");
	assert_no_merchant(o, w.b);
	ck_assert_int_eq(num(o, "pagination.total"), 12);
	json_object_put(o);
	/* The agent without an allow-list sees every store. */
	o = get(&servers[1], w.open, 200,
	    "/agent/v1/products/search?q=rain%%20jacket&limit=100");
	seen_a = seen_b = 0;
	arr = products(o);
	for (k = 0; k < json_object_array_length(arr); k++) {
		const char *m =
		    pv_httpc_json_str(json_object_array_get_idx(arr, k),
		        "merchant_id");

		seen_a += strcmp(m, w.a) == 0;
		seen_b += strcmp(m, w.b) == 0;
	}
	ck_assert_int_eq(seen_a, 1);
	ck_assert_int_eq(seen_b, 1);
	json_object_put(o);
	o = get(&servers[0], w.open, 200, "/agent/v1/products/%s/9002", w.b);
	ck_assert_str_eq(pv_httpc_json_str(o, "product.title"),
	    "Secret Rain Jacket");
	ck_assert_str_eq(pv_httpc_json_str(o, "product.currency"), "EUR");
	json_object_put(o);
}
END_TEST

/* Follows next_cursor from first until the end; ids go to seen. */
static int
walk(const struct world *w, const char *filters, char seen[][32], int max,
    long *total)
{
	struct json_object *o, *arr;
	char cursor[512] = "";
	const char *next;
	size_t i;
	int n = 0, pages = 0;

	for (;;) {
		o = get(&servers[pages % nservers], w->restricted, 200,
		    "/agent/v1/products/search?%s&limit=3%s%s", filters,
		    cursor[0] != '\0' ? "&cursor=" : "", cursor);
		arr = products(o);
		*total = num(o, "pagination.total");
		ck_assert_int_le(json_object_array_length(arr), 3);
		for (i = 0; i < json_object_array_length(arr); i++) {
			ck_assert_int_lt(n, max);
			snprintf(seen[n++], 32, "%s",
			    pv_httpc_json_str(json_object_array_get_idx(arr, i),
			        "id"));
		}
		next = pv_httpc_json_str(o, "pagination.next_cursor");
		pages++;
		if (next == NULL) {
			ck_assert(!json_object_get_boolean(
			    pv_httpc_json_get(o, "pagination.has_more")));
			json_object_put(o);
			return n;
		}
		ck_assert_int_eq(num(o, "pagination.offset"), n - (int)i);
		snprintf(cursor, sizeof(cursor), "%s", next);
		json_object_put(o);
		ck_assert_int_lt(pages, 50);
	}
}

static void
assert_distinct(char seen[][32], int n)
{
	int i, j;

	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			ck_assert_str_ne(seen[i], seen[j]);
}

START_TEST(test_products_cursor_paging_stable_and_complete)
{
	char seen[64][32], again[64][32], out[2048];
	struct json_object *o;
	struct world w;
	long total;
	int n, m, i, j, found;

	world_make(&w);
	/* Browse and search, each walked to the end: all, once each. */
	n = walk(&w, "category=accessories", seen, 64, &total);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(total, 3);
	assert_distinct(seen, n);
	n = walk(&w, "q=cotton", seen, 64, &total);
	ck_assert_int_eq(n, total);
	ck_assert_int_ge(n, 4);
	assert_distinct(seen, n);
	/* The same pages again give the same order. */
	m = walk(&w, "q=cotton", again, 64, &total);
	ck_assert_int_eq(m, n);
	for (i = 0; i < n; i++)
		ck_assert_str_eq(seen[i], again[i]);
	/* Offsets agree with the cursor's order. */
	o = search(&w, &servers[0], "q=cotton&limit=2&offset=2");
	ck_assert_str_eq(
	    pv_httpc_json_str(json_object_array_get_idx(products(o), 0), "id"),
	    seen[2]);
	json_object_put(o);
	/*
	 * The catalog changes while an agent pages: nothing is repeated,
	 * nothing that stayed is lost.
	 */
	o = search(&w, &servers[0], "q=cotton&limit=3");
	{
		char cursor[512];

		snprintf(cursor, sizeof(cursor), "%s",
		    pv_httpc_json_str(o, "pagination.next_cursor"));
		json_object_put(o);
		ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "products",
		                     "import", w.a, FIXTURES "store_a_more.csv",
		                     "--json", NULL),
		    0);
		o = get(&servers[1], w.restricted, 200,
		    "/agent/v1/products/search?q=cotton&limit=100&cursor=%s",
		    cursor);
	}
	for (i = 3; i < n; i++) {
		found = 0;
		for (j = 0; j < (int)json_object_array_length(products(o)); j++)
			found +=
			    strcmp(pv_httpc_json_str(
			               json_object_array_get_idx(products(o),
			                   (size_t)j),
			               "id"),
			        seen[i]) == 0;
		ck_assert_msg(found == 1, "%s lost or repeated", seen[i]);
	}
	for (i = 0; i < 3; i++)
		for (j = 0; j < (int)json_object_array_length(products(o)); j++)
			ck_assert_str_ne(pv_httpc_json_str(
			                     json_object_array_get_idx(products(
			                                                   o),
			                         (size_t)j),
			                     "id"),
			    seen[i]);
	json_object_put(o);
}
END_TEST

START_TEST(test_products_bad_filters_name_the_parameter)
{
	struct world w;
	struct json_object *o;
	char q[1024];
	size_t i;

	world_make(&w);
	for (i = 0; i < nservers; i++) {
		bad(&servers[i], w.restricted, "min_price", "min_price=abc");
		bad(&servers[i], w.restricted, "limit", "limit=100000");
	}
	bad(&servers[0], w.restricted, "limit", "limit=0");
	bad(&servers[0], w.restricted, "limit", "limit=ten");
	bad(&servers[0], w.restricted, "offset", "offset=-1");
	bad(&servers[0], w.restricted, "offset", "offset=10001");
	bad(&servers[0], w.restricted, "max_price", "max_price=-5");
	bad(&servers[0], w.restricted, "max_price", "max_price=1.00001");
	bad(&servers[0], w.restricted, "max_price", "min_price=10&max_price=5");
	bad(&servers[0], w.restricted, "merchant_id", "merchant_id=acme");
	bad(&servers[0], w.restricted, "merchant_id",
	    "merchant_id=mer_ZZZZZZZZZZZZZZZZ");
	bad(&servers[1], w.restricted, "in_stock", "in_stock=maybe");
	bad(&servers[1], w.restricted, "in_stock_only", "in_stock_only=yes");
	bad(&servers[1], w.restricted, "in_stock",
	    "in_stock_only=true&in_stock=false");
	bad(&servers[1], w.restricted, "q", "query=a&q=b");
	bad(&servers[1], w.restricted, "sort", "q=hoodie&sort=price");
	bad(&servers[1], w.restricted, "cursor", "cursor=zzzz");
	bad(&servers[1], w.restricted, "cursor", "cursor=00");
	/* A cursor is tied to its search and excludes offset. */
	o = search(&w, &servers[0], "q=cotton&limit=1");
	snprintf(q, sizeof(q), "q=hoodie&cursor=%s",
	    pv_httpc_json_str(o, "pagination.next_cursor"));
	bad(&servers[0], w.restricted, "cursor", q);
	snprintf(q, sizeof(q), "q=cotton&offset=1&cursor=%s",
	    pv_httpc_json_str(o, "pagination.next_cursor"));
	bad(&servers[0], w.restricted, "offset", q);
	json_object_put(o);
	/* The merchants list has its own parameters. */
	o = get(&servers[0], w.restricted, 400,
	    "/agent/v1/merchants?limit=101");
	ck_assert_str_eq(pv_httpc_json_str(o, "error.param"), "limit");
	json_object_put(o);
	o = get(&servers[0], w.restricted, 400,
	    "/agent/v1/merchants?status=closed");
	ck_assert_str_eq(pv_httpc_json_str(o, "error.param"), "status");
	json_object_put(o);
}
END_TEST

START_TEST(test_products_injection_is_data)
{
	static const char *const evil[] = { "'; DROP TABLE products; --",
		"hoodie' OR '1'='1", "\") OR 1=1 --", "%' OR 1=1 --",
		"hoodie & !jacket | (socks", "\\'", "$1", NULL };
	struct world w;
	struct json_object *o;
	size_t i;

	world_make(&w);
	for (i = 0; evil[i] != NULL; i++) {
		o = get(&servers[i % nservers], w.restricted, 200,
		    "/agent/v1/products/search?q=%s", enc(evil[i]));
		ck_assert_str_eq(pv_httpc_json_str(o, "status"), "success");
		json_object_put(o);
		o = get(&servers[0], w.restricted, 200,
		    "/agent/v1/products/search?category=%s", enc(evil[i]));
		ck_assert_int_eq(num(o, "pagination.total"), 0);
		json_object_put(o);
		o = get(&servers[0], w.restricted, 404,
		    "/agent/v1/products/%s/%s", w.a, enc(evil[i]));
		json_object_put(o);
	}
	/* The catalog is all still there. */
	o = search(&w, &servers[0], "limit=1");
	ck_assert_int_eq(num(o, "pagination.total"), 12);
	json_object_put(o);
}
END_TEST

START_TEST(test_products_lookup_has_every_field)
{
	static const char *const fields[] = { "id", "product_id", "merchant_id",
		"merchant_name", "title", "name", "description", "vendor",
		"product_type", "tags", "price", "price_minor", "currency",
		"compare_at_price", "in_stock", "inventory_quantity",
		"variant_id", "sku", "image_url", "images", "url", "variants",
		"platform", "updated_at", NULL };
	struct world w;
	struct json_object *o, *p, *v, *arr;
	char id[32];
	size_t i, k;

	world_make(&w);
	o = search(&w, &servers[0], "q=classic%20pullover");
	p = json_object_array_get_idx(products(o), 0);
	ck_assert_ptr_nonnull(p);
	snprintf(id, sizeof(id), "%s", pv_httpc_json_str(p, "id"));
	ck_assert_ptr_nonnull(pv_httpc_json_get(p, "relevance_score"));
	json_object_put(o);
	for (i = 0; i < nservers; i++) {
		o = get(&servers[i], w.restricted, 200,
		    "/agent/v1/products/%s/%s", w.a, id);
		p = pv_httpc_json_get(o, "product");
		for (k = 0; fields[k] != NULL; k++)
			ck_assert_msg(json_object_object_get_ex(p, fields[k],
			                  NULL),
			    "%s: no %s", servers[i].name, fields[k]);
		ck_assert_str_eq(pv_httpc_json_str(p, "title"),
		    "Classic Pullover Hoodie");
		ck_assert_str_eq(pv_httpc_json_str(p, "price"), "48.00");
		ck_assert_int_eq(num(p, "price_minor"), 4800);
		ck_assert_str_eq(pv_httpc_json_str(p, "compare_at_price"),
		    "60.00");
		ck_assert_str_eq(pv_httpc_json_str(p, "currency"), "USD");
		ck_assert_str_eq(pv_httpc_json_str(p, "sku"), "A-HOO-S");
		ck_assert_int_eq(num(p, "inventory_quantity"), 8);
		ck_assert(
		    json_object_get_boolean(pv_httpc_json_get(p, "in_stock")));
		ck_assert_str_eq(pv_httpc_json_str(p, "image_url"),
		    "https://a.test/img/classic-hoodie.jpg");
		ck_assert_int_eq(json_object_array_length(
		                     pv_httpc_json_get(p, "images")),
		    2);
		ck_assert_str_eq(pv_httpc_json_str(p, "platform"), "custom");
		arr = pv_httpc_json_get(p, "variants");
		ck_assert_int_eq(json_object_array_length(arr), 3);
		v = json_object_array_get_idx(arr, 1);
		ck_assert_str_eq(pv_httpc_json_str(v, "sku"), "A-HOO-M");
		ck_assert_str_eq(pv_httpc_json_str(v, "options.Size"), "M");
		ck_assert(
		    !json_object_get_boolean(pv_httpc_json_get(v, "in_stock")));
		ck_assert_str_eq(pv_httpc_json_str(p, "variant_id"),
		    pv_httpc_json_str(json_object_array_get_idx(arr, 0),
		        "variant_id"));
		json_object_put(o);
	}
	/* Zero-decimal currencies keep their exponent. */
	o = search(&w, &servers[0], "q=yukata");
	p = json_object_array_get_idx(products(o), 0);
	ck_assert_str_eq(pv_httpc_json_str(p, "price"), "4800");
	ck_assert_int_eq(num(p, "price_minor"), 4800);
	ck_assert_str_eq(pv_httpc_json_str(p, "currency"), "JPY");
	json_object_put(o);
	/* Unknown product; the product of another merchant. */
	o = get(&servers[0], w.restricted, 404,
	    "/agent/v1/products/%s/prod_0000000000000000", w.a);
	ck_assert_str_eq(pv_httpc_json_str(o, "error.code"),
	    "product_not_found");
	json_object_put(o);
	o = get(&servers[1], w.restricted, 404, "/agent/v1/products/%s/%s", w.c,
	    id);
	json_object_put(o);
	o = get(&servers[1], w.restricted, 404, "/agent/v1/products/nobody/%s",
	    id);
	json_object_put(o);
	/* A platform's id finds the product too. */
	o = get(&servers[0], w.open, 200, "/agent/v1/products/%s/%s", w.b,
	    enc("gid://shopify/Product/9001"));
	ck_assert_str_eq(pv_httpc_json_str(o, "product.platform_product_id"),
	    "gid://shopify/Product/9001");
	json_object_put(o);
}
END_TEST

START_TEST(test_products_merchants_list)
{
	struct world w;
	struct json_object *o, *m;

	world_make(&w);
	o = get(&servers[0], w.restricted, 200,
	    "/agent/v1/merchants?limit=1&offset=0&status=active");
	ck_assert_int_eq(num(o, "pagination.total"), 2);
	ck_assert(json_object_get_boolean(
	    pv_httpc_json_get(o, "pagination.has_more")));
	m = json_object_array_get_idx(pv_httpc_json_get(o, "merchants"), 0);
	ck_assert_str_eq(pv_httpc_json_str(m, "merchant_id"), w.a);
	ck_assert_str_eq(pv_httpc_json_str(m, "business_name"), "Store A");
	ck_assert_str_eq(pv_httpc_json_str(m, "status"), "active");
	ck_assert_str_eq(pv_httpc_json_str(m, "platform"), "custom");
	ck_assert_str_eq(pv_httpc_json_str(m, "currency"), "USD");
	ck_assert_int_eq(num(m, "product_count"), 10);
	ck_assert(
	    !json_object_get_boolean(pv_httpc_json_get(m, "psp_connected")));
	ck_assert(json_object_object_get_ex(m, "psp_type", NULL));
	ck_assert(json_object_object_get_ex(m, "store_url", NULL));
	ck_assert(json_object_object_get_ex(m, "region", NULL));
	ck_assert(json_object_object_get_ex(m, "created_at", NULL));
	json_object_put(o);
	o = get(&servers[1], w.restricted, 200,
	    "/agent/v1/merchants?limit=1&offset=1");
	m = json_object_array_get_idx(pv_httpc_json_get(o, "merchants"), 0);
	ck_assert_str_eq(pv_httpc_json_str(m, "merchant_id"), w.c);
	ck_assert_int_eq(num(m, "product_count"), 2);
	ck_assert(!json_object_get_boolean(
	    pv_httpc_json_get(o, "pagination.has_more")));
	json_object_put(o);
	/* Pending merchants are never listed; "approved" is "active". */
	o = get(&servers[0], w.restricted, 200,
	    "/agent/v1/merchants?status=pending");
	ck_assert_int_eq(num(o, "pagination.total"), 0);
	json_object_put(o);
	o = get(&servers[0], w.restricted, 200,
	    "/agent/v1/merchants?status=approved");
	ck_assert_int_eq(num(o, "pagination.total"), 2);
	json_object_put(o);
}
END_TEST

START_TEST(test_products_reimport_and_bad_file)
{
	struct world w;
	struct json_object *o;
	char out[2048];

	world_make(&w);
	/* The same file again changes nothing. */
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "products", "import",
	                     w.a, FIXTURES "store_a.csv", "--json", NULL),
	    0);
	o = json_tokener_parse(out);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(num(o, "created"), 0);
	ck_assert_int_eq(num(o, "updated"), 0);
	ck_assert_int_eq(num(o, "unchanged"), 10);
	json_object_put(o);
	/* A file with a bad row imports nothing at all. */
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "products", "import",
	                     w.a, FIXTURES "store_a_bad.csv", NULL),
	    1);
	o = search(&w, &servers[0], "q=sandals");
	ck_assert_int_eq(num(o, "pagination.total"), 0);
	json_object_put(o);
	o = search(&w, &servers[0], "q=hoodie&min_price=48&max_price=48");
	ck_assert_int_eq(num(o, "pagination.total"), 1);
	json_object_put(o);
	/* --replace archives what the file no longer lists. */
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "products", "import",
	                     w.c, FIXTURES "store_c_replace.jsonl", "--replace",
	                     "--json", NULL),
	    0);
	o = json_tokener_parse(out);
	ck_assert_int_eq(num(o, "archived"), 1);
	ck_assert_int_eq(num(o, "updated"), 1);
	json_object_put(o);
	o = search(&w, &servers[1], "q=notebook");
	ck_assert_int_eq(num(o, "pagination.total"), 0);
	json_object_put(o);
	o = search(&w, &servers[1], "q=yukata&in_stock=true");
	ck_assert_int_eq(num(o, "pagination.total"), 0);
	json_object_put(o);
}
END_TEST

Suite *
products_suite(void)
{
	Suite *s = suite_create("products");
	TCase *tc = tcase_create("catalog");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_products_search_typo_plural_multiword);
	tcase_add_test(tc, test_products_price_and_stock_filters);
	tcase_add_test(tc, test_products_hidden_merchant_never_appears);
	tcase_add_test(tc, test_products_cursor_paging_stable_and_complete);
	tcase_add_test(tc, test_products_bad_filters_name_the_parameter);
	tcase_add_test(tc, test_products_injection_is_data);
	tcase_add_test(tc, test_products_lookup_has_every_field);
	tcase_add_test(tc, test_products_merchants_list);
	tcase_add_test(tc, test_products_reimport_and_bad_file);
	suite_add_tcase(s, tc);
	return s;
}
