/*
 * The order.push job end to end: a merchant with a Shopify-synced
 * catalog and a connected store (the loopback fake of
 * tests/fakes/fake_shopify.py), an order paid through the one settle
 * path (pv_payment_settle(), which enqueues the job), and the job run
 * by the queue with the worker's own handler table.  Everything
 * commits (the connection, the settle and the job each run their own
 * transactions), so each test makes its own merchant, shop and order,
 * and setup empties the jobs table as the queue tests do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "pv_config.h"
#include "pv_db.h"
#include "pv_fake.h"
#include "pv_job.h"
#include "pv_order_push.h"
#include "pv_payment.h"
#include "pv_shopify.h"
#include "pv_test.h"
#include "pv_worker.h"

#define FAKE  "tests/fakes/fake_shopify.py"
#define TOKEN "shpat_fake_0123456789abcdef"
#define KEY   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

/* Variants of the fake's default catalogue, and one it does not know. */
#define V1001    "gid://shopify/ProductVariant/1001"
#define V2002    "gid://shopify/ProductVariant/2002"
#define VUNKNOWN "gid://shopify/ProductVariant/999999"

static struct pv_fake *fake;
static struct pv_config cfg;
static struct pv_ctx ctx;
static int seq;

/* One test's world: ids are internal ids (decimal text) unless said. */
struct world {
	char merchant[32]; /* mer_... */
	char mid[24];      /* merchants.id */
	char aid[24];      /* agents.id */
	char shop[64];     /* the shop domain */
	char order[24];    /* ORD_... */
	char oid[24];      /* orders.id */
	long total;        /* orders.total_minor */
};

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

/* Runs sql with params; fails the test if it fails. */
static PGresult *
run(const char *sql, int n, const char *const *params)
{
	struct pv_err err = { 0 };
	PGresult *res;

	ck_assert_msg(pv_db_exec(&ctx, sql, n, params, &res, &err) == 0,
	    "%s: %s", sql, err.msg);
	return res;
}

/* The one value of a one-row result, or "" for NULL. */
static const char *
one(PGresult *res)
{
	ck_assert_int_eq(PQntuples(res), 1);
	return PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0);
}

static void
setup(void)
{
	struct pv_err err = { 0 };

	ck_assert_ptr_nonnull(fake);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/reset", NULL), 0);
	setenv("PIVOTA_MASTER_KEY", KEY, 1);
	setenv("PIVOTA_ENV", "test", 1);
	unsetenv("PIVOTA_SHOPIFY_API_BASE");
	ck_assert_msg(pv_ctx_open(&ctx, "db_tests", &cfg, &err) == 0, "%s",
	    err.msg);
	run(PV_SQL("DELETE FROM jobs"), 0, NULL);
}

static void
teardown(void)
{
	run(PV_SQL("DELETE FROM jobs"), 0, NULL);
	pv_ctx_close(&ctx, &cfg);
}

/* A merchant and an agent of their own, and the store connected. */
static void
world_new(struct world *w)
{
	struct pv_shopify_conn conn;
	struct pv_shopify_shop sh;
	struct pv_err err = { 0 };
	const char *params[3], *at;
	char name[64], email[96], agent[32], body[128];
	PGresult *res;

	memset(w, 0, sizeof(*w));
	seq++;
	snprintf(w->merchant, sizeof(w->merchant), "mer_%08x%08x",
	    (unsigned)getpid(), (unsigned)seq);
	snprintf(agent, sizeof(agent), "agt_%08x%08x", (unsigned)getpid(),
	    (unsigned)seq);
	snprintf(name, sizeof(name), "Push test %d", seq);
	snprintf(email, sizeof(email), "push-%d-%ld@example.com", seq,
	    (long)getpid());
	snprintf(w->shop, sizeof(w->shop), "p%s.myshopify.com",
	    w->merchant + 4);
	params[0] = w->merchant;
	params[1] = name;
	params[2] = email;
	res = run(PV_SQL("INSERT INTO merchants (public_id, business_name,"
	                 " email, platform) VALUES ($1, $2, $3, 'shopify')"
	                 " RETURNING id"),
	    3, params);
	snprintf(w->mid, sizeof(w->mid), "%s", one(res));
	params[0] = agent;
	res = run(PV_SQL("INSERT INTO agents (public_id, name)"
	                 " VALUES ($1, 'push agent') RETURNING id"),
	    1, params);
	snprintf(w->aid, sizeof(w->aid), "%s", one(res));

	snprintf(body, sizeof(body), "{\"shop\": \"%s\"}", w->shop);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/config", body), 0);
	conn.shop = w->shop;
	conn.token = TOKEN;
	conn.api_base = pv_fake_url(fake);
	ck_assert_msg(pv_shopify_connect(&ctx, w->merchant, &conn, NULL, &sh,
	                  &at, &err) == 0,
	    "%s", err.msg);
}

/*
 * A synced product with one variant: external ids as the catalogue
 * sync stores them (ext NULL: a variant that never came from the
 * store).  Returns the order line's JSON for quantity qty.
 */
static const char *
variant(struct world *w, const char *ext, long price, int qty)
{
	const char *params[4];
	char p[24], q[24];
	PGresult *res;

	snprintf(p, sizeof(p), "%ld", price);
	snprintf(q, sizeof(q), "%d", qty);
	params[0] = w->mid;
	params[1] = ext;
	params[2] = p;
	params[3] = q;
	res =
	    run(PV_SQL("WITH pr AS (INSERT INTO products (public_id,"
	               "  merchant_id, external_id, handle, title, currency,"
	               "  currency_exponent)"
	               " SELECT 'prod_' || substr(md5(random()::text), 1, 16),"
	               "  $1::bigint, replace($2, 'ProductVariant', 'Product'),"
	               "  'p-' || substr(md5(random()::text), 1, 12),"
	               "  'Fake tee', 'USD', 2 RETURNING id, public_id),"
	               " v AS (INSERT INTO variants (public_id, product_id,"
	               "  merchant_id, external_id, sku, title, price_minor,"
	               "  inventory_quantity)"
	               " SELECT 'var_' || substr(md5(random()::text), 1, 16),"
	               "  pr.id, $1::bigint, $2, 'SKU-T', 'M / Red',"
	               "  $3::bigint, 50 FROM pr"
	               " RETURNING id, public_id, product_id, external_id)"
	               " SELECT jsonb_build_object('variant_id', v.id,"
	               "  'product_id', v.product_id, 'product_public_id',"
	               "  pr.public_id, 'variant_public_id', v.public_id,"
	               "  'external_variant_id', v.external_id, 'title',"
	               "  'Fake tee', 'variant_title', 'M / Red', 'sku',"
	               "  'SKU-T', 'quantity', $4::int, 'unit_price_minor',"
	               "  $3::bigint)::text FROM v, pr"),
	        4, params);
	return one(res);
}

/*
 * An order of the lines (a JSON array's text) with shipping 500 and
 * tax 0, paid through pv_payment_settle() like a provider's answer:
 * the job is enqueued by the settle path itself.
 */
static void
order_paid(struct world *w, const char *items, long subtotal)
{
	struct pv_psp_result r;
	struct pv_err err = { 0 };
	const char *params[6], *outcome;
	char sub[24], pay[32], ref[48];
	PGresult *res;

	snprintf(w->order, sizeof(w->order), "ORD_%08X%08X", (unsigned)getpid(),
	    (unsigned)seq);
	snprintf(sub, sizeof(sub), "%ld", subtotal);
	w->total = subtotal + 500;
	params[0] = w->order;
	params[1] = w->mid;
	params[2] = w->aid;
	params[3] = sub;
	params[4] = items;
	res =
	    run(PV_SQL("SELECT result, order_id FROM pv_order_insert($1,"
	               " $2::bigint, $3::bigint, 'USD', 2::smallint,"
	               " $4::bigint, 500, 0, 'ada@example.com',"
	               " '{\"name\": \" Ada King Lovelace \","
	               " \"address_line1\": \"1 Main St\","
	               " \"address_line2\": \"Apt 4\", \"city\": \"Ottawa\","
	               " \"state\": \"on\", \"postal_code\": \"K1A 0B1\","
	               " \"country\": \"CA\", \"phone\": \"+1 613 555 0100\"}',"
	               " '{}', '', 'stripe', 3600, $5::jsonb)"),
	        5, params);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "ok");
	snprintf(w->oid, sizeof(w->oid), "%s", PQgetvalue(res, 0, 1));
	snprintf(pay, sizeof(pay), "pay_%08x%08x%08x", (unsigned)getpid(),
	    (unsigned)seq, 0xabcdefu);
	params[0] = w->oid;
	params[1] = pay;
	res = run(PV_SQL("SELECT verdict, payment_id FROM pv_payment_begin("
	                 "$1::bigint, $2, 'tok_visa', NULL)"),
	    2, params);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "new");
	memset(&r, 0, sizeof(r));
	r.status = PV_PSP_SUCCEEDED;
	snprintf(ref, sizeof(ref), "pi_push_%s", pay + 4);
	r.reference = ref;
	r.client_secret = "";
	r.message = "";
	r.amount_minor = w->total;
	r.currency = "USD";
	ck_assert_msg(pv_payment_settle(&ctx, PQgetvalue(res, 0, 1), &r,
	                  &outcome, &err) == 0,
	    "%s", err.msg);
	ck_assert_str_eq(outcome, "paid");
}

/* A paid order of two catalogue lines: 2 x 1001 at 12.50, 1 x 2002. */
static void
standard_order(struct world *w)
{
	char items[2048];

	world_new(w);
	snprintf(items, sizeof(items), "[%s, %s]", variant(w, V1001, 1250, 2),
	    variant(w, V2002, 1999, 1));
	order_paid(w, items, 2 * 1250 + 1999);
}

/* The column col of the order (text; "" for NULL). */
static const char *
order_col(const struct world *w, const char *col)
{
	const char *params[2] = { w->oid, col };

	return one(run(PV_SQL("SELECT to_jsonb(o) ->> $2 FROM orders o"
	                      " WHERE id = $1::bigint"),
	    2, params));
}

/* The column col of the order's push job. */
static const char *
job_col(const struct world *w, const char *col)
{
	const char *params[2] = { w->order, col };

	return one(run(PV_SQL("SELECT to_jsonb(j) ->> $2 FROM jobs j"
	                      " WHERE dedup_key = 'order.push:' || $1"),
	    2, params));
}

/* Events of the order of type (flagged ones only if flagged). */
static long
events(const struct world *w, const char *type, int flagged)
{
	const char *params[3] = { w->oid, type, flagged ? "t" : "f" };

	return strtol(one(run(PV_SQL("SELECT count(*) FROM order_events"
	                             " WHERE order_id = $1::bigint"
	                             " AND type = $2"
	                             " AND (flagged OR NOT $3::boolean)"),
	                  3, params)),
	    NULL, 10);
}

/* detail ->> key of the order's one event of type. */
static const char *
detail(const struct world *w, const char *type, const char *key)
{
	const char *params[3] = { w->oid, type, key };

	return one(run(PV_SQL("SELECT detail ->> $3 FROM order_events"
	                      " WHERE order_id = $1::bigint AND type = $2"),
	    3, params));
}

/* Runs one due job with the worker's table; it must be there. */
static void
run_job(void)
{
	struct pv_err err = { 0 };
	struct pv_job_opts o;
	int did;

	pv_job_opts_init(&o);
	o.worker_id = "push-test";
	/* The merchant notices a paid order queues (0015) are not ours. */
	run(PV_SQL("DELETE FROM jobs WHERE kind = 'mail.send'"), 0, NULL);
	ck_assert_msg(pv_job_run_once(&ctx, pv_worker_handlers,
	                  pv_worker_nhandlers, &o, &did, &err) == 0,
	    "%s", err.msg);
	ck_assert_int_eq(did, 1);
}

/* Makes a queued (retrying) job due now. */
static void
due_now(void)
{
	run(PV_SQL("UPDATE jobs SET run_at = now() WHERE state = 'queued'"), 0,
	    NULL);
}

/* The fake's orders (caller puts), and how many. */
static struct json_object *
fake_orders(size_t *n)
{
	struct json_object *o = pv_fake_call(fake, "GET", "/__fake/orders",
	                       NULL),
	                   *arr;

	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "orders", &arr));
	*n = json_object_array_length(arr);
	return o;
}

static size_t
n_fake_orders(void)
{
	size_t n;

	json_object_put(fake_orders(&n));
	return n;
}

/* GraphQL requests the fake saw with root field root (NULL: all). */
static size_t
fake_requests(const char *root)
{
	struct json_object *o = pv_fake_call(fake, "GET", "/__fake/requests",
	                       NULL),
	                   *arr, *r;
	size_t i, n = 0;

	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "requests", &arr));
	for (i = 0; i < json_object_array_length(arr); i++) {
		r = json_object_array_get_idx(arr, i);
		if (root == NULL ||
		    strcmp(json_object_get_string(
		               json_object_object_get(r, "root")),
		        root) == 0)
			n++;
	}
	json_object_put(o);
	return n;
}

/* The string at a dotted path of o ("a.b.0.c"), or NULL. */
static const char *
at(struct json_object *o, const char *path)
{
	const char *p = path, *dot;
	char key[64];
	size_t len;

	while (o != NULL && *p != '\0') {
		dot = strchr(p, '.');
		len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		ck_assert_uint_lt(len, sizeof(key));
		memcpy(key, p, len);
		key[len] = '\0';
		if (json_object_is_type(o, json_type_array))
			o = json_object_array_get_idx(o,
			    (size_t)strtoul(key, NULL, 10));
		else if (!json_object_object_get_ex(o, key, &o))
			o = NULL;
		p += len + (dot != NULL);
	}
	return o != NULL ? json_object_get_string(o) : NULL;
}

static void
assert_at(struct json_object *o, const char *path, const char *want)
{
	const char *got = at(o, path);

	ck_assert_msg(got != NULL && strcmp(got, want) == 0,
	    "%s: got %s, want %s", path, got != NULL ? got : "(none)", want);
}

/* The order reaches Shopify once, with every field, and goes processing. */
START_TEST(test_order_push_creates_order_and_goes_processing)
{
	struct json_object *all, *o;
	struct world w;
	char amount[32];
	size_t n;

	standard_order(&w);
	ck_assert_str_eq(job_col(&w, "kind"), "order.push");
	ck_assert_str_eq(order_col(&w, "status"), "paid");
	run_job();
	ck_assert_str_eq(job_col(&w, "state"), "done");

	all = fake_orders(&n);
	ck_assert_uint_eq(n, 1);
	o = json_object_array_get_idx(json_object_object_get(all, "orders"), 0);
	assert_at(o, "input.email", "ada@example.com");
	assert_at(o, "input.currency", "USD");
	assert_at(o, "input.lineItems.0.variantId", V1001);
	assert_at(o, "input.lineItems.0.quantity", "2");
	assert_at(o, "input.lineItems.1.variantId", V2002);
	assert_at(o, "input.lineItems.1.quantity", "1");
	ck_assert_ptr_null(at(o, "input.lineItems.2.variantId"));
	assert_at(o, "input.shippingAddress.firstName", "Ada");
	assert_at(o, "input.shippingAddress.lastName", "King Lovelace");
	assert_at(o, "input.shippingAddress.address1", "1 Main St");
	assert_at(o, "input.shippingAddress.address2", "Apt 4");
	assert_at(o, "input.shippingAddress.city", "Ottawa");
	assert_at(o, "input.shippingAddress.provinceCode", "ON");
	assert_at(o, "input.shippingAddress.countryCode", "CA");
	assert_at(o, "input.shippingAddress.zip", "K1A 0B1");
	assert_at(o, "input.shippingAddress.phone", "+1 613 555 0100");
	assert_at(o, "input.financialStatus", "PAID");
	assert_at(o, "input.transactions.0.kind", "SALE");
	assert_at(o, "input.transactions.0.status", "SUCCESS");
	assert_at(o, "input.transactions.0.gateway", "stripe");
	snprintf(amount, sizeof(amount), "%ld.%02ld", w.total / 100,
	    w.total % 100);
	ck_assert_str_eq(amount, "49.99");
	assert_at(o, "input.transactions.0.amountSet.shopMoney.amount", amount);
	assert_at(o, "input.transactions.0.amountSet.shopMoney.currencyCode",
	    "USD");
	assert_at(o, "tags.0", w.order);
	ck_assert_ptr_null(at(o, "tags.1"));
	assert_at(o, "options.sendReceipt", "true");
	assert_at(o, "displayFinancialStatus", "PAID");

	ck_assert_str_eq(order_col(&w, "platform_order_id"), at(o, "id"));
	ck_assert_str_eq(order_col(&w, "status"), "processing");
	ck_assert_str_eq(order_col(&w, "fulfillment_status"), "processing");
	ck_assert_int_eq(events(&w, "order.processing", 0), 1);
	ck_assert_int_eq(events(&w, "fulfillment.processing", 0), 1);
	ck_assert_int_eq(events(&w, "shopify.pushed", 0), 1);
	ck_assert_int_eq(events(&w, "shopify.pushed", 1), 0);
	ck_assert_uint_eq(fake_requests("orderCreate"), 1);
	json_object_put(all);
}
END_TEST

/* A second run after success asks nobody and changes nothing. */
START_TEST(test_order_push_rerun_after_success_changes_nothing)
{
	const char *before, *seq_before, *after;
	struct world w;
	size_t reqs;

	standard_order(&w);
	run_job();
	ck_assert_str_eq(order_col(&w, "status"), "processing");
	before = order_col(&w, "updated_at");
	seq_before = order_col(&w, "event_seq");
	reqs = fake_requests(NULL);

	run(PV_SQL("UPDATE jobs SET state = 'queued', run_at = now()"), 0,
	    NULL);
	run_job();
	ck_assert_str_eq(job_col(&w, "state"), "done");
	after = order_col(&w, "updated_at");
	ck_assert_str_eq(after, before);
	ck_assert_str_eq(order_col(&w, "event_seq"), seq_before);
	ck_assert_uint_eq(fake_requests(NULL), reqs);
	ck_assert_uint_eq(n_fake_orders(), 1);
}
END_TEST

/*
 * Shopify creates the order but the answer is lost (the worker might
 * as well have died before its commit): the retry finds it by tag.
 */
START_TEST(test_order_push_lost_answer_found_by_tag)
{
	struct json_object *all;
	struct world w;
	size_t n;

	standard_order(&w);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/faults",
	                     "{\"next\": [{\"kind\": \"hangup_after\","
	                     " \"field\": \"orderCreate\"}]}"),
	    0);
	run_job();
	ck_assert_uint_eq(n_fake_orders(), 1);
	ck_assert_str_eq(job_col(&w, "state"), "queued");
	ck_assert_str_eq(job_col(&w, "attempts"), "1");
	ck_assert_str_eq(order_col(&w, "status"), "paid");
	ck_assert_str_eq(order_col(&w, "platform_order_id"), "");
	/* The retry leaves Shopify's search time to index the order. */
	ck_assert_str_eq(one(run(PV_SQL("SELECT run_at >= now() +"
	                                " interval '9 s' FROM jobs"),
	                     0, NULL)),
	    "t");

	due_now();
	run_job();
	ck_assert_str_eq(job_col(&w, "state"), "done");
	ck_assert_uint_eq(n_fake_orders(), 1);
	ck_assert_uint_eq(fake_requests("orderCreate"), 1);
	all = fake_orders(&n);
	ck_assert_str_eq(order_col(&w, "platform_order_id"),
	    at(json_object_object_get(all, "orders"), "0.id"));
	json_object_put(all);
	ck_assert_str_eq(order_col(&w, "status"), "processing");
	ck_assert_str_eq(detail(&w, "shopify.pushed", "found_by_tag"), "true");
}
END_TEST

/* Two 500s and a throttle on the create: retried, one order. */
START_TEST(test_order_push_server_errors_then_success)
{
	struct world w;

	standard_order(&w);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/faults",
	                     "{\"next\": [{\"status\": 500,"
	                     " \"field\": \"orderCreate\"},"
	                     " {\"status\": 500, \"field\": \"orderCreate\"},"
	                     " {\"kind\": \"throttle\", \"field\":"
	                     " \"orderCreate\", \"requested\": 20,"
	                     " \"available\": 15}]}"),
	    0);
	run_job();
	ck_assert_str_eq(job_col(&w, "state"), "queued");
	ck_assert_ptr_nonnull(
	    strstr(job_col(&w, "last_error"), "PV_E_UPSTREAM"));
	ck_assert_uint_eq(n_fake_orders(), 0);
	due_now();
	run_job();
	ck_assert_str_eq(job_col(&w, "state"), "queued");
	ck_assert_str_eq(job_col(&w, "attempts"), "2");
	ck_assert_uint_eq(n_fake_orders(), 0);
	due_now();
	run_job();
	ck_assert_str_eq(job_col(&w, "state"), "done");
	ck_assert_str_eq(job_col(&w, "attempts"), "3");
	ck_assert_uint_eq(n_fake_orders(), 1);
	/* Two 500s, a throttled one and the one that worked. */
	ck_assert_uint_eq(fake_requests("orderCreate"), 4);
	ck_assert_str_eq(order_col(&w, "status"), "processing");
	/* Transient failures are not flagged. */
	ck_assert_int_eq(events(&w, "shopify.push_failed", 0), 0);
}
END_TEST

/* A variant the store does not know: dead at once, flagged. */
START_TEST(test_order_push_unknown_variant_is_permanent)
{
	char items[2048];
	struct world w;

	world_new(&w);
	snprintf(items, sizeof(items), "[%s, %s]", variant(&w, V1001, 1250, 1),
	    variant(&w, VUNKNOWN, 800, 1));
	order_paid(&w, items, 1250 + 800);
	run_job();
	ck_assert_str_eq(job_col(&w, "state"), "dead");
	ck_assert_str_eq(job_col(&w, "attempts"), "1");
	ck_assert_uint_eq(n_fake_orders(), 0);
	ck_assert_str_eq(order_col(&w, "status"), "paid");
	ck_assert_str_eq(order_col(&w, "platform_order_id"), "");
	ck_assert_int_eq(events(&w, "shopify.push_failed", 1), 1);
	ck_assert_str_eq(detail(&w, "shopify.push_failed", "code"),
	    "PV_E_UNPROCESSABLE");
	ck_assert_str_eq(detail(&w, "shopify.push_failed", "reason"),
	    "shopify_user_error");
	ck_assert_str_eq(detail(&w, "shopify.push_failed", "field"),
	    "order.lineItems.1.variantId");
}
END_TEST

/* A line with no Shopify variant id never reaches the store. */
START_TEST(test_order_push_line_without_variant_id_is_permanent)
{
	char items[2048];
	struct world w;

	world_new(&w);
	snprintf(items, sizeof(items), "[%s, %s]", variant(&w, V1001, 1250, 1),
	    variant(&w, NULL, 800, 3));
	order_paid(&w, items, 1250 + 2400);
	run_job();
	ck_assert_str_eq(job_col(&w, "state"), "dead");
	ck_assert_uint_eq(fake_requests("orderCreate"), 0);
	ck_assert_uint_eq(fake_requests("orders"), 0);
	ck_assert_int_eq(events(&w, "shopify.push_failed", 1), 1);
	ck_assert_str_eq(detail(&w, "shopify.push_failed", "reason"),
	    "no_variant_id");
	ck_assert_str_eq(order_col(&w, "status"), "paid");
}
END_TEST

/* A refunded order is skipped with one event and no Shopify order. */
START_TEST(test_order_push_refunded_order_is_skipped)
{
	struct world w;
	const char *params[1];

	standard_order(&w);
	params[0] = w.oid;
	run(PV_SQL("UPDATE orders SET status = 'refunded', payment_status ="
	           " 'refunded', refunded_minor = total_minor"
	           " WHERE id = $1::bigint"),
	    1, params);
	run_job();
	ck_assert_str_eq(job_col(&w, "state"), "done");
	ck_assert_uint_eq(fake_requests("orderCreate"), 0);
	ck_assert_uint_eq(n_fake_orders(), 0);
	ck_assert_str_eq(order_col(&w, "status"), "refunded");
	ck_assert_int_eq(events(&w, "shopify.push_skipped", 0), 1);
	ck_assert_int_eq(events(&w, "shopify.push_skipped", 1), 0);
	/* Run again: still one event. */
	run(PV_SQL("UPDATE jobs SET state = 'queued', run_at = now()"), 0,
	    NULL);
	run_job();
	ck_assert_int_eq(events(&w, "shopify.push_skipped", 0), 1);
}
END_TEST

/* A second settle or enqueue of the same order adds no job. */
START_TEST(test_order_push_job_deduplicated)
{
	struct pv_err err = { 0 };
	struct world w;
	char payload[64], key[64];
	const char *params[1];

	standard_order(&w);
	snprintf(payload, sizeof(payload), "{\"order_id\":\"%s\"}", w.order);
	snprintf(key, sizeof(key), "order.push:%s", w.order);
	ck_assert_int_eq(pv_job_enqueue(&ctx, PV_ORDER_PUSH_KIND, payload, key,
	                     0, &err),
	    0);
	ck_assert_int_eq(pv_job_enqueue(&ctx, PV_ORDER_PUSH_KIND, payload, key,
	                     0, &err),
	    0);
	params[0] = key;
	ck_assert_str_eq(one(run(PV_SQL("SELECT count(*) FROM jobs WHERE"
	                                " kind = 'order.push'"),
	                     0, NULL)),
	    "1");
	ck_assert_str_eq(one(run(PV_SQL("SELECT count(*) FROM jobs WHERE"
	                                " dedup_key = $1"),
	                     1, params)),
	    "1");
	run_job();
	ck_assert_uint_eq(n_fake_orders(), 1);
}
END_TEST

Suite *
order_push_suite(void)
{
	Suite *s = suite_create("order_push");
	TCase *tc = tcase_create("push");

	tcase_add_unchecked_fixture(tc, start_fake, stop_fake);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_order_push_creates_order_and_goes_processing);
	tcase_add_test(tc, test_order_push_rerun_after_success_changes_nothing);
	tcase_add_test(tc, test_order_push_lost_answer_found_by_tag);
	tcase_add_test(tc, test_order_push_server_errors_then_success);
	tcase_add_test(tc, test_order_push_unknown_variant_is_permanent);
	tcase_add_test(tc,
	    test_order_push_line_without_variant_id_is_permanent);
	tcase_add_test(tc, test_order_push_refunded_order_is_skipped);
	tcase_add_test(tc, test_order_push_job_deduplicated);
	suite_add_tcase(s, tc);
	return s;
}
