/*
 * Unit tests of the Shopify client (pv_shopify) against the loopback
 * fake of tests/fakes/fake_shopify.py: the real client, the real
 * libcurl path, a fake store that paginates, throttles, fails on
 * demand and records what it was sent.  Waits go through a fake sleep
 * that records them; tests that need the fake's bucket to refill sleep
 * for real, with restore rates high enough to keep that short.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pv_arena.h"
#include "pv_config.h"
#include "pv_fake.h"
#include "pv_http.h"
#include "pv_shopify.h"
#include "pv_sig.h"
#include "pv_test.h"
#include "pv_testsrv.h"
#include "pv_upstream.h"

#define FAKE   "tests/fakes/fake_shopify.py"
#define TOKEN  "shpat_fake_0123456789abcdef"
#define SHOP   "pivota-fake.myshopify.com"
#define NSLEEP 64

static struct pv_fake *fake;
static struct pv_config cfg;
static struct pv_ctx ctx;
static struct pv_shopify_conn conn;
static long sleeps[NSLEEP];
static int nsleeps;
static int real_sleep;

/* Records a wait, and spends it when a test needs the bucket to refill. */
static void
test_sleep(void *arg, long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	(void)arg;
	if (nsleeps < NSLEEP)
		sleeps[nsleeps] = ms;
	nsleeps++;
	if (real_sleep)
		nanosleep(&ts, NULL);
}

static void
start_fake(void)
{
	fake = pv_fake_start(FAKE, NULL);
	ck_assert_msg(fake != NULL, "cannot start " FAKE);
}

static void
stop_fake(void)
{
	pv_fake_stop(fake);
	fake = NULL;
}

static void
ctl(const char *method, const char *path, const char *body)
{
	ck_assert_msg(pv_fake_do(fake, method, path, body) == 0, "%s %s",
	    method, path);
}

static void
setup(void)
{
	ck_assert_ptr_nonnull(fake);
	ctl("POST", "/__fake/reset", NULL);
	/* Plenty of points: only the tests that want throttling get it. */
	ctl("POST", "/__fake/config", "{\"restore_rate\": 1000000.0}");
	memset(&cfg, 0, sizeof(cfg));
	cfg.env = PV_ENV_TEST;
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = &cfg;
	ctx.arena = pv_arena_new(0);
	ctx.up = pv_upstream_new();
	ck_assert_ptr_nonnull(ctx.arena);
	ck_assert_ptr_nonnull(ctx.up);
	pv_upstream_set_sleep(ctx.up, test_sleep, NULL);
	nsleeps = 0;
	real_sleep = 0;
	conn.shop = SHOP;
	conn.token = TOKEN;
	conn.api_base = pv_fake_url(fake);
}

static void
teardown(void)
{
	pv_upstream_free(ctx.up);
	pv_arena_free(ctx.arena);
}

/* The fake's request log (caller puts) and its length. */
static struct json_object *
requests(size_t *n)
{
	struct json_object *o = pv_fake_call(fake, "GET", "/__fake/requests",
	                       NULL),
	                   *arr;

	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "requests", &arr));
	*n = json_object_array_length(arr);
	return o;
}

static size_t
nrequests(void)
{
	size_t n;

	json_object_put(requests(&n));
	return n;
}

/* Member path a.b.c of o as a string, or NULL. */
static const char *
jstr(struct json_object *o, const char *a, const char *b, const char *c)
{
	const char *k[3] = { a, b, c };
	int i;

	for (i = 0; i < 3 && k[i] != NULL; i++)
		if (!json_object_object_get_ex(o, k[i], &o))
			return NULL;
	return o != NULL ? json_object_get_string(o) : NULL;
}

/* The i-th recorded request. */
static struct json_object *
req_at(struct json_object *log, size_t i)
{
	struct json_object *arr;

	ck_assert(json_object_object_get_ex(log, "requests", &arr));
	return json_object_array_get_idx(arr, i);
}

START_TEST(test_shopify_shop_reads_the_shop)
{
	struct pv_shopify_shop shop;
	struct pv_err err = { 0 };
	struct json_object *log, *r;
	size_t n;

	ck_assert_int_eq(pv_shopify_shop(&ctx, &conn, &shop, &err), 0);
	ck_assert_str_eq(shop.name, "Pivota Fake Outfitters");
	ck_assert_str_eq(shop.domain, SHOP);
	ck_assert_str_eq(shop.currency, "USD");
	ck_assert_str_eq(shop.api_version, PV_SHOPIFY_API_VERSION);
	log = requests(&n);
	ck_assert_uint_eq(n, 1);
	r = req_at(log, 0);
	ck_assert_str_eq(jstr(r, "path", NULL, NULL),
	    "/admin/api/" PV_SHOPIFY_API_VERSION "/graphql.json");
	ck_assert_str_eq(jstr(r, "headers", "x-shopify-access-token", NULL),
	    TOKEN);
	ck_assert_str_eq(jstr(r, "headers", "content-type", NULL),
	    "application/json");
	ck_assert_str_eq(jstr(r, "root", NULL, NULL), "shop");
	json_object_put(log);
}
END_TEST

START_TEST(test_shopify_shop_uses_configured_base)
{
	struct pv_shopify_shop shop;
	struct pv_err err = { 0 };
	char base[80];

	snprintf(base, sizeof(base), "%s/", pv_fake_url(fake));
	cfg.shopify_api_base = base;
	conn.api_base = NULL;
	ck_assert_int_eq(pv_shopify_shop(&ctx, &conn, &shop, &err), 0);
	ck_assert_str_eq(shop.domain, SHOP);
	cfg.shopify_api_base = NULL;
}
END_TEST

START_TEST(test_shopify_shop_wrong_token_is_auth)
{
	struct pv_shopify_shop shop;
	struct pv_err err = { 0 };

	conn.token = "shpat_wrong";
	ck_assert_int_eq(pv_shopify_shop(&ctx, &conn, &shop, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_msg(strstr(err.msg, "access token") != NULL, "%s", err.msg);
	ck_assert_ptr_null(strstr(err.msg, "shpat_wrong"));
	ck_assert_uint_eq(nrequests(), 1); /* 401 is not retried */

	pv_err_clear(&err);
	conn.token = "";
	ck_assert_int_eq(pv_shopify_shop(&ctx, &conn, &shop, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	ck_assert_uint_eq(nrequests(), 1); /* nothing sent */
}
END_TEST

START_TEST(test_shopify_fake_refuses_missing_token)
{
	struct pv_upstream_req req = { 0 };
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	char url[128];

	snprintf(url, sizeof(url), "%s/admin/api/2026-07/graphql.json",
	    pv_fake_url(fake));
	req.method = PV_UPSTREAM_POST;
	req.url = url;
	req.body = "{\"query\":\"{ shop { name } }\"}";
	req.bodylen = strlen(req.body);
	ck_assert_int_eq(pv_upstream_do(ctx.up, ctx.arena, &req, &resp, &err),
	    0);
	ck_assert_int_eq(resp.status, 401);
	ck_assert_ptr_nonnull(strstr(resp.body, "Invalid API key"));
	ck_assert_str_eq(pv_upstream_resp_header(&resp,
	                     "X-Shopify-API-Version"),
	    "2026-07");
	/* An old but well-formed version falls forward to the oldest. */
	snprintf(url, sizeof(url), "%s/admin/api/2023-01/graphql.json",
	    pv_fake_url(fake));
	ck_assert_int_eq(pv_upstream_do(ctx.up, ctx.arena, &req, &resp, &err),
	    0);
	ck_assert_str_eq(pv_upstream_resp_header(&resp,
	                     "X-Shopify-API-Version"),
	    "2025-10");
}
END_TEST

START_TEST(test_shopify_shop_http_errors_are_clear)
{
	static const struct {
		int status;
		enum pv_errcode code;
		const char *reason;
	} t[] = {
		{ 402, PV_E_UPSTREAM, "shopify_frozen" },
		{ 403, PV_E_FORBIDDEN, "" },
		{ 404, PV_E_NOTFOUND, "" },
		{ 423, PV_E_UPSTREAM, "shopify_locked" },
		{ 400, PV_E_UPSTREAM, "" },
	};
	struct pv_shopify_shop shop;
	struct pv_err err;
	char body[64];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(body, sizeof(body), "{\"next\": [%d]}", t[i].status);
		ctl("POST", "/__fake/faults", body);
		memset(&err, 0, sizeof(err));
		ck_assert_int_eq(pv_shopify_shop(&ctx, &conn, &shop, &err), -1);
		ck_assert_msg(err.code == t[i].code, "%d: %s", t[i].status,
		    err.msg);
		ck_assert_str_eq(err.reason, t[i].reason);
		ck_assert_uint_eq(nrequests(), i + 1); /* never retried */
	}
}
END_TEST

START_TEST(test_shopify_shop_5xx_and_429_retried)
{
	struct pv_shopify_shop shop;
	struct pv_err err = { 0 };
	int i, saw = 0;

	/* pv_upstream makes 3 attempts; the 3rd 429 is left to us. */
	ctl("POST", "/__fake/faults",
	    "{\"next\": [500, 503, {\"status\": 429,"
	    " \"retry_after\": \"0.25\"}]}");
	ck_assert_int_eq(pv_shopify_shop(&ctx, &conn, &shop, &err), 0);
	ck_assert_str_eq(shop.currency, "USD");
	ck_assert_uint_eq(nrequests(), 4);
	/* pv_upstream honours Retry-After, and so do we after it gives up. */
	for (i = 0; i < nsleeps && i < NSLEEP; i++)
		saw += sleeps[i] == 250;
	ck_assert_int_ge(saw, 1);
}
END_TEST

START_TEST(test_shopify_shop_throttled_waits_for_deficit)
{
	struct pv_shopify_shop shop;
	struct pv_err err = { 0 };

	ctl("POST", "/__fake/config", "{\"restore_rate\": 500.0}");
	ctl("POST", "/__fake/faults",
	    "{\"next\": [{\"kind\": \"throttle\", \"requested\": 150,"
	    " \"available\": 50.0}]}");
	ck_assert_int_eq(pv_shopify_shop(&ctx, &conn, &shop, &err), 0);
	ck_assert_uint_eq(nrequests(), 2);
	ck_assert_int_eq(nsleeps, 1);
	ck_assert_int_eq(sleeps[0], 200); /* 100 points at 500 per second */
}
END_TEST

START_TEST(test_shopify_shop_throttled_gives_up)
{
	struct pv_shopify_shop shop;
	struct pv_err err = { 0 };

	ctl("POST", "/__fake/faults",
	    "{\"next\": [\"throttle\", \"throttle\", \"throttle\","
	    " \"throttle\", \"throttle\", \"throttle\", \"throttle\"]}");
	ck_assert_int_eq(pv_shopify_shop(&ctx, &conn, &shop, &err), -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_str_eq(err.reason, "shopify_throttled");
	ck_assert_uint_eq(nrequests(), PV_SHOPIFY_THROTTLE_TRIES);
}
END_TEST

START_TEST(test_shopify_shop_graphql_errors_surfaced)
{
	struct pv_shopify_shop shop;
	struct pv_err err = { 0 };

	ctl("POST", "/__fake/faults",
	    "{\"next\": [{\"kind\": \"graphql_error\", \"message\":"
	    " \"boom\", \"code\": \"INTERNAL_SERVER_ERROR\"}]}");
	ck_assert_int_eq(pv_shopify_shop(&ctx, &conn, &shop, &err), -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_msg(strstr(err.msg, "INTERNAL_SERVER_ERROR") != NULL &&
	        strstr(err.msg, "boom") != NULL,
	    "%s", err.msg);

	pv_err_clear(&err);
	ctl("POST", "/__fake/faults",
	    "{\"next\": [{\"kind\": \"graphql_error\", \"message\":"
	    " \"no\", \"code\": \"ACCESS_DENIED\"}]}");
	ck_assert_int_eq(pv_shopify_shop(&ctx, &conn, &shop, &err), -1);
	ck_assert_int_eq(err.code, PV_E_FORBIDDEN);

	pv_err_clear(&err);
	ctl("POST", "/__fake/faults", "{\"next\": [\"max_cost\"]}");
	ck_assert_int_eq(pv_shopify_shop(&ctx, &conn, &shop, &err), -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_ptr_nonnull(strstr(err.msg, "MAX_COST_EXCEEDED"));

	pv_err_clear(&err);
	ctl("POST", "/__fake/faults",
	    "{\"next\": [{\"status\": 200, \"body\": \"not json\"}]}");
	ck_assert_int_eq(pv_shopify_shop(&ctx, &conn, &shop, &err), -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_ptr_nonnull(strstr(err.msg, "malformed"));
}
END_TEST

START_TEST(test_shopify_shop_alloc_failures_are_nomem)
{
	struct pv_shopify_shop shop;
	struct pv_err err;
	long n;
	int rc = -1;

	for (n = 0; n < 200 && rc == -1; n++) {
		pv_arena_reset(ctx.arena);
		pv_arena_fail_after(ctx.arena, n);
		memset(&err, 0, sizeof(err));
		rc = pv_shopify_shop(&ctx, &conn, &shop, &err);
		if (rc == -1)
			ck_assert_msg(err.code == PV_E_NOMEM, "n=%ld: %s (%s)",
			    n, err.msg, pv_err_name(err.code));
	}
	pv_arena_fail_after(ctx.arena, -1);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(shop.name, "Pivota Fake Outfitters");
}
END_TEST

/* What the walk callbacks saw. */
struct seen {
	long next;         /* the product number expected next */
	long count;        /* product() calls */
	long variants;     /* variants over all products */
	long big;          /* variants of product 7 */
	int pages;         /* page() calls */
	int dup;           /* a product out of order or seen twice */
	long fault_at;     /* queue faults when this product comes */
	long fail_at;      /* make product() fail here */
	char last[1024];   /* the last checkpoint */
	char variant0[64]; /* first variant id of product 7 */
	int variant_dup;   /* a variant id repeated within product 7 */
};

static long
product_number(struct json_object *p)
{
	const char *id = jstr(p, "id", NULL, NULL);

	ck_assert_ptr_nonnull(id);
	ck_assert(strncmp(id, "gid://shopify/Product/", 22) == 0);
	return strtol(id + 22, NULL, 10);
}

static int
on_product(void *arg, struct json_object *p, struct pv_err *err)
{
	struct seen *s = arg;
	struct json_object *v, *nodes;
	long num = product_number(p);
	size_t n, i, j;

	if (num == s->fail_at) {
		PV_ERR(err, PV_E_DB, NULL, "the catalog is on fire");
		return -1;
	}
	if (num != s->next)
		s->dup = 1;
	s->next = num + 1;
	s->count++;
	ck_assert_ptr_nonnull(jstr(p, "title", NULL, NULL));
	ck_assert_ptr_nonnull(jstr(p, "handle", NULL, NULL));
	ck_assert(json_object_object_get_ex(p, "variants", &v));
	ck_assert(json_object_object_get_ex(v, "nodes", &nodes));
	n = json_object_array_length(nodes);
	ck_assert_uint_ge(n, 1);
	s->variants += (long)n;
	if (num == 7) {
		s->big = (long)n;
		for (i = 0; i < n; i++)
			for (j = i + 1; j < n; j++)
				if (strcmp(jstr(json_object_array_get_idx(nodes,
				                    i),
				               "id", NULL, NULL),
				        jstr(json_object_array_get_idx(nodes,
				                 j),
				            "id", NULL, NULL)) == 0)
					s->variant_dup = 1;
	}
	ck_assert_ptr_nonnull(
	    jstr(json_object_array_get_idx(nodes, 0), "sku", NULL, NULL));
	if (num == s->fault_at)
		ctl("POST", "/__fake/faults",
		    "{\"next\": [\"throttle\", 500, \"hangup\"]}");
	return 0;
}

static int
on_page(void *arg, const char *cursor, size_t n, int has_next,
    struct pv_err *err)
{
	struct seen *s = arg;

	(void)err;
	(void)has_next;
	ck_assert_uint_ge(n, 1);
	ck_assert_uint_lt(strlen(cursor), sizeof(s->last));
	memcpy(s->last, cursor, strlen(cursor) + 1);
	s->pages++;
	return 0;
}

static void
walk_init(struct pv_shopify_walk *w, struct seen *s, long first)
{
	memset(w, 0, sizeof(*w));
	memset(s, 0, sizeof(*s));
	s->next = first;
	s->fault_at = -1;
	s->fail_at = -1;
	w->product = on_product;
	w->page = on_page;
	w->arg = s;
}

START_TEST(test_shopify_products_each_1000_with_faults)
{
	struct pv_shopify_walk w;
	struct pv_err err = { 0 };
	struct json_object *o, *v;
	struct seen s;
	long variants;
	size_t n;
	int i, throttle_wait = 0;

	o = pv_fake_call(fake, "POST", "/__fake/catalog",
	    "{\"count\": 1000, \"big\": {\"7\": 60}}");
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "variants", &v));
	variants = (long)json_object_get_int64(v);
	json_object_put(o);
	walk_init(&w, &s, 1);
	s.fault_at = 480; /* mid-way: throttle, 500, hang-up */
	ck_assert_msg(pv_shopify_products_each(&ctx, &conn, &w, &err) == 0,
	    "%s", err.msg);
	ck_assert_int_eq(s.dup, 0);
	ck_assert_int_eq(s.count, 1000);
	ck_assert_int_eq(s.next, 1001);
	ck_assert_int_eq(s.variants, variants);
	ck_assert_int_eq(s.big, 60);
	ck_assert_int_eq(s.variant_dup, 0);
	ck_assert_int_eq(s.pages, 40);
	ck_assert_uint_eq(w.pages, 40);
	ck_assert_uint_eq(w.products, 1000);
	ck_assert_int_eq(w.done, 1);
	ck_assert_str_eq(w.cursor, s.last);
	/* 40 pages, the rest of product 7's variants, 3 faults. */
	ck_assert_uint_eq(nrequests(), 40 + 1 + 3);
	/* Throttle, 500, hang-up (libcurl may resend that one itself). */
	ck_assert_int_ge(nsleeps, 2);
	for (i = 0; i < nsleeps && i < NSLEEP; i++)
		throttle_wait += sleeps[i] == PV_SHOPIFY_THROTTLE_MIN_MS;
	ck_assert_int_ge(throttle_wait, 1);
	o = requests(&n);
	ck_assert_ptr_nonnull(
	    strstr(jstr(req_at(o, 0), "body", NULL, NULL), "\"first\":25"));
	json_object_put(o);
}
END_TEST

START_TEST(test_shopify_products_each_resumes_from_cursor)
{
	struct pv_shopify_walk w;
	struct pv_err err = { 0 };
	char saved[PV_SHOPIFY_CURSOR_MAX];
	struct seen s;

	ctl("POST", "/__fake/catalog", "{\"count\": 130}");
	walk_init(&w, &s, 1);
	w.page_size = 20;
	w.max_pages = 2;
	ck_assert_int_eq(pv_shopify_products_each(&ctx, &conn, &w, &err), 0);
	ck_assert_int_eq(s.count, 40);
	ck_assert_int_eq(w.done, 0);
	ck_assert_str_eq(w.cursor, s.last);
	memcpy(saved, w.cursor, sizeof(saved));

	/* A job picks the cursor up later: product 41 comes next. */
	walk_init(&w, &s, 41);
	w.page_size = 20;
	w.after = saved;
	s.fail_at = 95; /* dies on the 3rd page of this run */
	ck_assert_int_eq(pv_shopify_products_each(&ctx, &conn, &w, &err), -1);
	ck_assert_int_eq(err.code, PV_E_DB);
	ck_assert_int_eq(s.count, 40 + 14);
	ck_assert_uint_eq(w.pages, 2);
	ck_assert_str_eq(w.cursor, s.last); /* after product 80 */

	/* Resuming with the walk's own cursor repeats only that page. */
	pv_err_clear(&err);
	s.next = 81;
	s.fail_at = -1;
	w.after = w.cursor;
	ck_assert_int_eq(pv_shopify_products_each(&ctx, &conn, &w, &err), 0);
	ck_assert_int_eq(s.dup, 0);
	ck_assert_int_eq(s.next, 131);
	ck_assert_uint_eq(w.products, 50);
	ck_assert_int_eq(w.done, 1);

	/* At the end, a walk from the last cursor finds nothing. */
	memcpy(saved, w.cursor, sizeof(saved));
	walk_init(&w, &s, 131);
	w.after = saved;
	ck_assert_int_eq(pv_shopify_products_each(&ctx, &conn, &w, &err), 0);
	ck_assert_int_eq(s.count, 0);
	ck_assert_int_eq(s.pages, 0);
	ck_assert_int_eq(w.done, 1);
	ck_assert_str_eq(w.cursor, saved);
}
END_TEST

START_TEST(test_shopify_products_each_waits_for_real_bucket)
{
	struct pv_shopify_walk w;
	struct pv_err err = { 0 };
	struct seen s;

	/*
	 * An empty bucket refilling at 5,000 points a second, and a page
	 * that asks for 902: throttled, then waited for (under 181 ms,
	 * spent for real), then served.
	 */
	real_sleep = 1;
	ctl("POST", "/__fake/config",
	    "{\"bucket_max\": 1000.0, \"restore_rate\": 5000.0,"
	    " \"bucket_available\": 0.0}");
	walk_init(&w, &s, 1);
	ck_assert_msg(pv_shopify_products_each(&ctx, &conn, &w, &err) == 0,
	    "%s", err.msg);
	ck_assert_int_eq(s.count, 7);
	ck_assert_uint_ge(nrequests(), 2);
	ck_assert_int_ge(nsleeps, 1);
	ck_assert_int_ge(sleeps[0], PV_SHOPIFY_THROTTLE_MIN_MS);
	ck_assert_int_le(sleeps[0], 181);
}
END_TEST

START_TEST(test_shopify_products_each_bad_input)
{
	struct pv_shopify_walk w;
	struct pv_err err = { 0 };
	struct seen s;

	walk_init(&w, &s, 1);
	w.page_size = PV_SHOPIFY_PAGE_MAX + 1;
	ck_assert_int_eq(pv_shopify_products_each(&ctx, &conn, &w, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);

	pv_err_clear(&err);
	walk_init(&w, &s, 1);
	w.after = "bm90IGEgY3Vyc29y";
	ck_assert_int_eq(pv_shopify_products_each(&ctx, &conn, &w, &err), -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_ptr_nonnull(strstr(err.msg, "Invalid cursor"));
	ck_assert_str_eq(w.cursor, "bm90IGEgY3Vyc29y");
	ck_assert_int_eq(s.count, 0);
}
END_TEST

static const struct pv_shopify_line lines[] = {
	{ "gid://shopify/ProductVariant/1001", 2 },
	{ "gid://shopify/ProductVariant/2002", 1 },
};

static const struct pv_shopify_address ada = { "Ada", "Lovelace", NULL,
	"1 Main St", NULL, "Ottawa", "ON", "CA", "K1A0B1", NULL };

static void
order_in(struct pv_shopify_order_in *in, const char *tag)
{
	memset(in, 0, sizeof(*in));
	in->tag = tag;
	in->email = "buyer@example.com";
	in->currency = "USD";
	in->lines = lines;
	in->nlines = 2;
	in->shipping = &ada;
	in->paid_minor = 3598;
	in->gateway = "stripe";
	in->send_receipt = 1;
}

/* The fake's stored orders (caller puts) and their count. */
static struct json_object *
orders(size_t *n)
{
	struct json_object *o = pv_fake_call(fake, "GET", "/__fake/orders",
	                       NULL),
	                   *arr;

	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "orders", &arr));
	*n = json_object_array_length(arr);
	return o;
}

START_TEST(test_shopify_order_create_then_find_by_tag)
{
	struct pv_shopify_order_in in;
	struct pv_shopify_order o, f;
	struct pv_err err = { 0 };
	struct json_object *log, *arr, *stored, *input, *x;
	size_t n;
	int found;

	order_in(&in, "pivota-ord_0123456789abcdef");
	ck_assert_msg(pv_shopify_order_create(&ctx, &conn, &in, &o, &err) == 0,
	    "%s", err.msg);
	ck_assert_str_eq(o.id, "gid://shopify/Order/1001");
	ck_assert_str_eq(o.name, "#1001");
	ck_assert_str_eq(o.financial_status, "PAID");
	ck_assert_str_eq(o.currency, "USD");
	ck_assert_ptr_nonnull(o.total);

	log = orders(&n);
	ck_assert_uint_eq(n, 1);
	ck_assert(json_object_object_get_ex(log, "orders", &arr));
	stored = json_object_array_get_idx(arr, 0);
	ck_assert(json_object_object_get_ex(stored, "input", &input));
	ck_assert_str_eq(jstr(input, "email", NULL, NULL), "buyer@example.com");
	ck_assert_str_eq(jstr(input, "financialStatus", NULL, NULL), "PAID");
	ck_assert_str_eq(jstr(input, "shippingAddress", "firstName", NULL),
	    "Ada");
	ck_assert_str_eq(jstr(input, "shippingAddress", "provinceCode", NULL),
	    "ON");
	ck_assert_str_eq(jstr(input, "shippingAddress", "countryCode", NULL),
	    "CA");
	ck_assert(json_object_object_get_ex(input, "shippingAddress", &x));
	ck_assert(!json_object_object_get_ex(x, "company", NULL));
	ck_assert(json_object_object_get_ex(input, "lineItems", &x));
	ck_assert_uint_eq(json_object_array_length(x), 2);
	ck_assert_str_eq(jstr(json_object_array_get_idx(x, 0), "variantId",
	                     NULL, NULL),
	    "gid://shopify/ProductVariant/1001");
	ck_assert_int_eq(json_object_get_int(
	                     json_object_object_get(json_object_array_get_idx(x,
	                                                0),
	                         "quantity")),
	    2);
	ck_assert(json_object_object_get_ex(input, "transactions", &x));
	x = json_object_array_get_idx(x, 0);
	ck_assert_str_eq(jstr(x, "gateway", NULL, NULL), "stripe");
	ck_assert_str_eq(jstr(x, "kind", NULL, NULL), "SALE");
	ck_assert_str_eq(jstr(x, "amountSet", "shopMoney", "amount"), "35.98");
	ck_assert_str_eq(jstr(x, "amountSet", "shopMoney", "currencyCode"),
	    "USD");
	ck_assert(json_object_object_get_ex(input, "tags", &x));
	ck_assert_str_eq(json_object_get_string(
	                     json_object_array_get_idx(x, 0)),
	    "pivota-ord_0123456789abcdef");
	ck_assert_str_eq(jstr(stored, "options", "sendReceipt", NULL), "true");
	ck_assert_str_eq(jstr(stored, "options", "inventoryBehaviour", NULL),
	    "DECREMENT_OBEYING_POLICY");
	json_object_put(log);

	ck_assert_int_eq(pv_shopify_order_find_by_tag(&ctx, &conn,
	                     "pivota-ord_0123456789abcdef", &f, &found, &err),
	    0);
	ck_assert_int_eq(found, 1);
	ck_assert_str_eq(f.id, o.id);
	ck_assert_str_eq(f.name, "#1001");
	ck_assert_int_eq(pv_shopify_order_find_by_tag(&ctx, &conn,
	                     "pivota-ord_ffffffffffffffff", &f, &found, &err),
	    0);
	ck_assert_int_eq(found, 0);
	ck_assert_ptr_null(f.id);
	log = requests(&n);
	ck_assert_ptr_nonnull(
	    strstr(jstr(req_at(log, n - 1), "body", NULL, NULL),
	        "tag:\\\"pivota-ord_ffffffffffffffff\\\""));
	json_object_put(log);
}
END_TEST

START_TEST(test_shopify_order_create_user_errors_surfaced)
{
	static const struct pv_shopify_line bad[] = {
		{ "gid://shopify/ProductVariant/1001", 1 },
		{ "gid://shopify/ProductVariant/999999", 1 },
	};
	struct pv_shopify_order_in in;
	struct pv_shopify_order o;
	struct pv_err err = { 0 };
	size_t n;

	order_in(&in, "pivota-ord_1");
	in.lines = bad;
	ck_assert_int_eq(pv_shopify_order_create(&ctx, &conn, &in, &o, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_UNPROCESSABLE);
	ck_assert_str_eq(err.field, "order.lineItems.1.variantId");
	ck_assert_str_eq(err.reason, "shopify_user_error");
	ck_assert_msg(strstr(err.msg, "does not exist") != NULL, "%s", err.msg);
	ck_assert_ptr_null(o.id);
	json_object_put(orders(&n));
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_shopify_order_create_sent_once)
{
	struct pv_shopify_order_in in;
	struct pv_shopify_order o, f;
	struct pv_err err = { 0 };
	size_t n;
	int found;

	/* A 500 may have created the order: never resent blindly. */
	order_in(&in, "pivota-ord_2");
	ctl("POST", "/__fake/faults",
	    "{\"next\": [{\"status\": 500, \"field\": \"orderCreate\"}]}");
	ck_assert_int_eq(pv_shopify_order_create(&ctx, &conn, &in, &o, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_uint_eq(nrequests(), 1);

	/* Shopify did the work and the answer was lost: find it by tag. */
	pv_err_clear(&err);
	ctl("POST", "/__fake/faults",
	    "{\"next\": [{\"kind\": \"hangup_after\","
	    " \"field\": \"orderCreate\"}]}");
	ck_assert_int_eq(pv_shopify_order_create(&ctx, &conn, &in, &o, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_uint_eq(nrequests(), 2);
	json_object_put(orders(&n));
	ck_assert_uint_eq(n, 1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_shopify_order_find_by_tag(&ctx, &conn,
	                     "pivota-ord_2", &f, &found, &err),
	    0);
	ck_assert_int_eq(found, 1);
	ck_assert_str_eq(f.id, "gid://shopify/Order/1001");
}
END_TEST

START_TEST(test_shopify_order_create_waits_out_throttle)
{
	struct pv_shopify_order_in in;
	struct pv_shopify_order o;
	struct pv_err err = { 0 };
	size_t n;

	ctl("POST", "/__fake/faults",
	    "{\"next\": [{\"kind\": \"throttle\", \"field\": \"orderCreate\"},"
	    " {\"status\": 429, \"retry_after\": \"0.1\"}]}");
	order_in(&in, "pivota-ord_3");
	ck_assert_msg(pv_shopify_order_create(&ctx, &conn, &in, &o, &err) == 0,
	    "%s", err.msg);
	ck_assert_uint_eq(nrequests(), 3);
	ck_assert_int_eq(nsleeps, 2);
	ck_assert_int_eq(sleeps[1], 100);
	json_object_put(orders(&n));
	ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(test_shopify_order_create_checks_input)
{
	static const struct pv_shopify_line zero[] = {
		{ "gid://shopify/ProductVariant/1001", 0 },
	};
	static const struct pv_shopify_line notgid[] = {
		{ "1001", 1 },
	};
	struct pv_shopify_order_in in;
	struct pv_shopify_order o;
	struct pv_err err = { 0 };

	order_in(&in, "pivota ord");
	ck_assert_int_eq(pv_shopify_order_create(&ctx, &conn, &in, &o, &err),
	    -1);
	ck_assert_str_eq(err.field, "tag");
	pv_err_clear(&err);
	order_in(&in, "pivota-ord_4");
	in.currency = "XYZ";
	ck_assert_int_eq(pv_shopify_order_create(&ctx, &conn, &in, &o, &err),
	    -1);
	ck_assert_str_eq(err.field, "currency");
	pv_err_clear(&err);
	order_in(&in, "pivota-ord_4");
	in.lines = zero;
	in.nlines = 1;
	ck_assert_int_eq(pv_shopify_order_create(&ctx, &conn, &in, &o, &err),
	    -1);
	ck_assert_str_eq(err.field, "quantity");
	pv_err_clear(&err);
	in.lines = notgid;
	ck_assert_int_eq(pv_shopify_order_create(&ctx, &conn, &in, &o, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	pv_err_clear(&err);
	order_in(&in, "pivota-ord_4");
	in.nlines = 0;
	ck_assert_int_eq(pv_shopify_order_create(&ctx, &conn, &in, &o, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_uint_eq(nrequests(), 0);
}
END_TEST

START_TEST(test_shopify_order_create_alloc_failures_are_nomem)
{
	struct pv_shopify_order_in in;
	struct pv_shopify_order o;
	struct pv_err err;
	size_t n;
	long i;
	int rc = -1;

	order_in(&in, "pivota-ord_5");
	for (i = 0; i < 400 && rc == -1; i++) {
		pv_arena_reset(ctx.arena);
		pv_arena_fail_after(ctx.arena, i);
		memset(&err, 0, sizeof(err));
		rc = pv_shopify_order_create(&ctx, &conn, &in, &o, &err);
		if (rc == -1)
			ck_assert_msg(err.code == PV_E_NOMEM, "i=%ld: %s (%s)",
			    i, err.msg, pv_err_name(err.code));
	}
	pv_arena_fail_after(ctx.arena, -1);
	ck_assert_int_eq(rc, 0);
	/* A failure while reading the answer leaves a made order behind. */
	json_object_put(orders(&n));
	ck_assert_uint_ge(n, 1);
}
END_TEST

START_TEST(test_shopify_check_shop_domains)
{
	static const char *const good[] = { "acme.myshopify.com",
		"ACME-2.MyShopify.com", "a.myshopify.com", NULL };
	static const char *const bad[] = { "", "acme.com", "myshopify.com",
		".myshopify.com", "-acme.myshopify.com", "acme-.myshopify.com",
		"a.b.myshopify.com", "acme.myshopify.com.evil.com",
		"ac me.myshopify.com", "127.0.0.1", "localhost", NULL };
	struct pv_err err = { 0 };
	const char *out;
	size_t i;

	for (i = 0; good[i] != NULL; i++)
		ck_assert_msg(pv_shopify_check_shop(&ctx, good[i], NULL, &out,
		                  &err) == 0,
		    "%s: %s", good[i], err.msg);
	ck_assert_str_eq(out, "a.myshopify.com");
	ck_assert_int_eq(pv_shopify_check_shop(&ctx, "ACME-2.MyShopify.com",
	                     NULL, &out, &err),
	    0);
	ck_assert_str_eq(out, "acme-2.myshopify.com");
	for (i = 0; bad[i] != NULL; i++) {
		pv_err_clear(&err);
		ck_assert_msg(pv_shopify_check_shop(&ctx, bad[i], NULL, &out,
		                  &err) == -1,
		    "%s accepted", bad[i]);
		ck_assert_str_eq(err.field, "shop");
	}
	/* A loopback shop only with a loopback api base, outside prod. */
	ck_assert_int_eq(pv_shopify_check_shop(&ctx, "127.0.0.1",
	                     "http://127.0.0.1:9", &out, &err),
	    0);
	ck_assert_int_eq(pv_shopify_check_shop(&ctx, "localhost:8080",
	                     "http://localhost:8080", &out, &err),
	    0);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_shopify_check_shop(&ctx, "127.0.0.1",
	                     "https://proxy.example", &out, &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_shopify_check_shop(&ctx, "acme.myshopify.com",
	                     "http://proxy.example", &out, &err),
	    -1);
	ck_assert_str_eq(err.field, "api_base");
	pv_err_clear(&err);
	cfg.env = PV_ENV_PROD;
	ck_assert_int_eq(pv_shopify_check_shop(&ctx, "acme.myshopify.com",
	                     "http://127.0.0.1:9", &out, &err),
	    -1);
	ck_assert_str_eq(err.field, "api_base");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_shopify_check_shop(&ctx, "acme.myshopify.com",
	                     "https://proxy.example", &out, &err),
	    0);
}
END_TEST

/* The fake's webhook sender signs exactly as our verifier expects. */
START_TEST(test_shopify_fake_webhook_signatures_verify)
{
	struct pv_testsrv_resp ok = { 0 };
	struct pv_shopify_order_in in;
	struct pv_shopify_order o;
	struct pv_err err = { 0 };
	const struct pv_testsrv_req *r;
	struct pv_testsrv *srv;
	char body[512];

	srv = pv_testsrv_start();
	ck_assert_ptr_nonnull(srv);
	ok.status = 200;
	ok.body = "ok";
	pv_testsrv_set_default(srv, &ok);

	snprintf(body, sizeof(body),
	    "{\"url\": \"%s/webhooks/shopify/mer_1\", \"topic\":"
	    " \"products/update\", \"secret\": \"hush\", \"body\":"
	    " \"{\\\"id\\\":1,\\\"title\\\":\\\"T-Shirt\\\"}\","
	    " \"duplicate\": true}",
	    pv_testsrv_url(srv));
	ctl("POST", "/__fake/webhook", body);
	ck_assert_uint_eq(pv_testsrv_nreq(srv), 2);
	r = pv_testsrv_req(srv, 0);
	ck_assert_str_eq(r->target, "/webhooks/shopify/mer_1");
	ck_assert_str_eq(r->body, "{\"id\":1,\"title\":\"T-Shirt\"}");
	ck_assert_str_eq(pv_testsrv_header(r, "X-Shopify-Hmac-Sha256"),
	    "OWWnLO1BDOT8iD5FTumnKMKmYTXRkY+TDlDEtkWOnUs=");
	ck_assert_str_eq(pv_testsrv_header(r, "X-Shopify-Topic"),
	    "products/update");
	ck_assert_str_eq(pv_testsrv_header(r, "X-Shopify-Shop-Domain"), SHOP);
	ck_assert_ptr_nonnull(pv_testsrv_header(r, "X-Shopify-API-Version"));
	ck_assert_ptr_nonnull(pv_testsrv_header(r, "X-Shopify-Triggered-At"));
	ck_assert_str_eq(pv_testsrv_header(r, "X-Shopify-Webhook-Id"),
	    pv_testsrv_header(pv_testsrv_req(srv, 1), "X-Shopify-Webhook-Id"));

	/* A body built from an order the fake holds, signed, then forged. */
	order_in(&in, "pivota-ord_6");
	ck_assert_int_eq(pv_shopify_order_create(&ctx, &conn, &in, &o, &err),
	    0);
	snprintf(body, sizeof(body),
	    "{\"url\": \"%s/wh\", \"topic\": \"fulfillments/create\","
	    " \"order\": \"%s\", \"fulfillment\": {\"tracking_company\":"
	    " \"DHL\"}}",
	    pv_testsrv_url(srv), o.id);
	ctl("POST", "/__fake/webhook", body);
	snprintf(body, sizeof(body),
	    "{\"url\": \"%s/wh\", \"topic\": \"fulfillments/update\","
	    " \"order\": \"%s\", \"bad_hmac\": true}",
	    pv_testsrv_url(srv), o.id);
	ctl("POST", "/__fake/webhook", body);
	ck_assert_uint_eq(pv_testsrv_nreq(srv), 4);
	r = pv_testsrv_req(srv, 2);
	ck_assert_ptr_nonnull(strstr(r->body, "\"tracking_company\":\"DHL\""));
	ck_assert_ptr_nonnull(strstr(r->body, "\"order_id\":1001"));
	ck_assert_int_eq(pv_sig_shopify_verify(pv_testsrv_header(r,
	                                           "X-Shopify-Hmac-Sha256"),
	                     "fake_app_client_secret", r->body, r->bodylen,
	                     &err),
	    0);
	r = pv_testsrv_req(srv, 3);
	ck_assert_int_eq(pv_sig_shopify_verify(pv_testsrv_header(r,
	                                           "X-Shopify-Hmac-Sha256"),
	                     "fake_app_client_secret", r->body, r->bodylen,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	pv_testsrv_stop(srv);
}
END_TEST

Suite *
shopify_suite(void)
{
	Suite *s = suite_create("shopify");
	TCase *shop = tcase_create("shop");
	TCase *walk = tcase_create("products");
	TCase *order = tcase_create("orders");
	TCase *conf = tcase_create("connect");

	tcase_add_unchecked_fixture(shop, start_fake, stop_fake);
	tcase_add_checked_fixture(shop, setup, teardown);
	tcase_set_timeout(shop, 30);
	tcase_add_test(shop, test_shopify_shop_reads_the_shop);
	tcase_add_test(shop, test_shopify_shop_uses_configured_base);
	tcase_add_test(shop, test_shopify_shop_wrong_token_is_auth);
	tcase_add_test(shop, test_shopify_fake_refuses_missing_token);
	tcase_add_test(shop, test_shopify_shop_http_errors_are_clear);
	tcase_add_test(shop, test_shopify_shop_5xx_and_429_retried);
	tcase_add_test(shop, test_shopify_shop_throttled_waits_for_deficit);
	tcase_add_test(shop, test_shopify_shop_throttled_gives_up);
	tcase_add_test(shop, test_shopify_shop_graphql_errors_surfaced);
	tcase_add_test(shop, test_shopify_shop_alloc_failures_are_nomem);
	suite_add_tcase(s, shop);

	tcase_add_unchecked_fixture(walk, start_fake, stop_fake);
	tcase_add_checked_fixture(walk, setup, teardown);
	tcase_set_timeout(walk, 60);
	tcase_add_test(walk, test_shopify_products_each_1000_with_faults);
	tcase_add_test(walk, test_shopify_products_each_resumes_from_cursor);
	tcase_add_test(walk, test_shopify_products_each_waits_for_real_bucket);
	tcase_add_test(walk, test_shopify_products_each_bad_input);
	suite_add_tcase(s, walk);

	tcase_add_unchecked_fixture(order, start_fake, stop_fake);
	tcase_add_checked_fixture(order, setup, teardown);
	tcase_set_timeout(order, 30);
	tcase_add_test(order, test_shopify_order_create_then_find_by_tag);
	tcase_add_test(order, test_shopify_order_create_user_errors_surfaced);
	tcase_add_test(order, test_shopify_order_create_sent_once);
	tcase_add_test(order, test_shopify_order_create_waits_out_throttle);
	tcase_add_test(order, test_shopify_order_create_checks_input);
	tcase_add_test(order,
	    test_shopify_order_create_alloc_failures_are_nomem);
	tcase_add_test(order, test_shopify_fake_webhook_signatures_verify);
	suite_add_tcase(s, order);

	tcase_add_unchecked_fixture(conf, start_fake, stop_fake);
	tcase_add_checked_fixture(conf, setup, teardown);
	tcase_add_test(conf, test_shopify_check_shop_domains);
	suite_add_tcase(s, conf);
	return s;
}
