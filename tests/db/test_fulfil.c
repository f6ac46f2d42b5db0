/*
 * Inbound Shopify webhooks applied to the database (issue 6): the
 * handler of the webhooks-shopify program called with requests built
 * in memory and signed like Shopify, against a merchant whose store is
 * connected to the loopback fake (tests/fakes/fake_shopify.py) with a
 * webhook secret, and an order paid through the one settle path and
 * pushed (platform_order_id set).  Fulfilments in and out of order,
 * duplicates, forged and foreign deliveries, partial shipments, store
 * cancels, products and the uninstall.  Everything commits (the
 * handler runs its own transactions), so each test makes its own
 * merchant, shop and order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "pv_config.h"
#include "pv_db.h"
#include "pv_fake.h"
#include "pv_payment.h"
#include "pv_shopify.h"
#include "pv_shopify_hooks.h"
#include "pv_sig.h"
#include "pv_test.h"

#define FAKE   "tests/fakes/fake_shopify.py"
#define TOKEN  "shpat_fake_0123456789abcdef"
#define SECRET "fulfil_test_webhook_secret"
#define KEY    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

#define T0 "2026-03-01T10:00:00Z"
#define T1 "2026-03-01T11:00:00-01:00" /* 12:00Z */
#define T2 "2026-03-02T09:00:00Z"
#define T3 "2026-03-03T09:00:00Z"

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
	long shopify_id;   /* the Shopify order's numeric id */
};

/* What a delivery answered. */
struct answer {
	int status;       /* HTTP status */
	char outcome[64]; /* outcome of a 200, else "" */
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

static PGresult *
run(const char *sql, int n, const char *const *params)
{
	struct pv_err err = { 0 };
	PGresult *res;

	ck_assert_msg(pv_db_exec(&ctx, sql, n, params, &res, &err) == 0,
	    "%s: %s", sql, err.msg);
	return res;
}

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
}

static void
teardown(void)
{
	run(PV_SQL("DELETE FROM jobs"), 0, NULL);
	pv_ctx_close(&ctx, &cfg);
}

/* A merchant, an agent and the store connected with SECRET. */
static void
world_new(struct world *w)
{
	struct pv_shopify_conn conn;
	struct pv_shopify_shop sh;
	struct pv_err err = { 0 };
	const char *params[3], *at;
	char name[64], email[96], agent[32], body[128];

	memset(w, 0, sizeof(*w));
	seq++;
	snprintf(w->merchant, sizeof(w->merchant), "mer_%08x%08x",
	    (unsigned)getpid(), (unsigned)seq + 0x5000u);
	snprintf(agent, sizeof(agent), "agt_%08x%08x", (unsigned)getpid(),
	    (unsigned)seq + 0x5000u);
	snprintf(name, sizeof(name), "Fulfil test %d", seq);
	snprintf(email, sizeof(email), "fulfil-%d-%ld@example.com", seq,
	    (long)getpid());
	snprintf(w->shop, sizeof(w->shop), "f%s.myshopify.com",
	    w->merchant + 4);
	params[0] = w->merchant;
	params[1] = name;
	params[2] = email;
	snprintf(w->mid, sizeof(w->mid), "%s",
	    one(run(PV_SQL("INSERT INTO merchants (public_id, business_name,"
	                   " email, platform) VALUES ($1, $2, $3, 'shopify')"
	                   " RETURNING id"),
	        3, params)));
	params[0] = agent;
	snprintf(w->aid, sizeof(w->aid), "%s",
	    one(run(PV_SQL("INSERT INTO agents (public_id, name)"
	                   " VALUES ($1, 'fulfil agent') RETURNING id"),
	        1, params)));
	snprintf(body, sizeof(body), "{\"shop\": \"%s\"}", w->shop);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/config", body), 0);
	conn.shop = w->shop;
	conn.token = TOKEN;
	conn.api_base = pv_fake_url(fake);
	ck_assert_msg(pv_shopify_connect(&ctx, w->merchant, &conn, SECRET, &sh,
	                  &at, &err) == 0,
	    "%s", err.msg);
}

/*
 * A paid order of quantities q1 and q2 (0: no second line) of two
 * products, paid through pv_payment_settle() and marked pushed as the
 * order.push job would (processing, platform_order_id).
 */
static void
order_new(struct world *w, int q1, int q2)
{
	struct pv_psp_result r;
	struct pv_err err = { 0 };
	const char *params[5], *outcome;
	char items[1024], pay[32], ref[48], sub[24], a[8], b[8], gid[64];
	PGresult *res;

	snprintf(w->order, sizeof(w->order), "ORD_%08X%08X", (unsigned)getpid(),
	    (unsigned)seq + 0x5000u);
	snprintf(a, sizeof(a), "%d", q1);
	snprintf(b, sizeof(b), "%d", q2);
	params[0] = w->mid;
	params[1] = a;
	params[2] = b;
	snprintf(items, sizeof(items), "%s",
	    one(run(PV_SQL(
	                "WITH pr AS (INSERT INTO products (public_id,"
	                "  merchant_id, handle, title, currency,"
	                "  currency_exponent)"
	                " SELECT 'prod_' || substr(md5(random()::text), 1, 16),"
	                "  $1::bigint, 'p-' || substr(md5(random()::text), 1,"
	                "  12), 'Tee', 'USD', 2 FROM generate_series(1, 2)"
	                "  RETURNING id, public_id),"
	                " v AS (INSERT INTO variants (public_id, product_id,"
	                "  merchant_id, sku, title, price_minor,"
	                "  inventory_quantity)"
	                " SELECT 'var_' || substr(md5(random()::text), 1, 16),"
	                "  pr.id, $1::bigint, 'SKU', 'M', 1000, 50 FROM pr"
	                " RETURNING id, public_id, product_id),"
	                " l AS (SELECT v.*, pr.public_id AS ppub,"
	                "  row_number() OVER (ORDER BY v.id) AS n"
	                "  FROM v JOIN pr ON pr.id = v.product_id)"
	                " SELECT jsonb_agg(jsonb_build_object('variant_id',"
	                "  l.id, 'product_id', l.product_id,"
	                "  'product_public_id', l.ppub, 'variant_public_id',"
	                "  l.public_id, 'title', 'Tee', 'variant_title', 'M',"
	                "  'sku', 'SKU', 'quantity', CASE WHEN l.n = 1 THEN"
	                "  $2::int ELSE $3::int END, 'unit_price_minor', 1000)"
	                "  ORDER BY l.n) FILTER (WHERE l.n = 1 OR $3::int > 0)"
	                "  ::text FROM l"),
	        3, params)));
	snprintf(sub, sizeof(sub), "%d", (q1 + q2) * 1000);
	params[0] = w->order;
	params[1] = w->mid;
	params[2] = w->aid;
	params[3] = sub;
	params[4] = items;
	res = run(PV_SQL("SELECT result, order_id FROM pv_order_insert($1,"
	                 " $2::bigint, $3::bigint, 'USD', 2::smallint,"
	                 " $4::bigint, 500, 0, 'ada@example.com',"
	                 " '{\"name\": \"Ada\", \"address_line1\": \"1 Main\","
	                 " \"city\": \"Ottawa\", \"postal_code\": \"K1A\","
	                 " \"country\": \"CA\"}', '{}', '', 'stripe', 3600,"
	                 " $5::jsonb)"),
	    5, params);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "ok");
	snprintf(w->oid, sizeof(w->oid), "%s", PQgetvalue(res, 0, 1));
	snprintf(pay, sizeof(pay), "pay_%08x%08x%08x", (unsigned)getpid(),
	    (unsigned)seq, 0xf00du);
	params[0] = w->oid;
	params[1] = pay;
	res = run(PV_SQL("SELECT verdict, payment_id FROM pv_payment_begin("
	                 "$1::bigint, $2, 'tok_visa', NULL)"),
	    2, params);
	memset(&r, 0, sizeof(r));
	r.status = PV_PSP_SUCCEEDED;
	snprintf(ref, sizeof(ref), "pi_fulfil_%s", pay + 4);
	r.reference = ref;
	ck_assert_msg(pv_payment_settle(&ctx, PQgetvalue(res, 0, 1), &r,
	                  &outcome, &err) == 0,
	    "%s", err.msg);
	ck_assert_str_eq(outcome, "paid");
	w->shopify_id = 5000000L + seq;
	snprintf(gid, sizeof(gid), "gid://shopify/Order/%ld", w->shopify_id);
	params[0] = w->oid;
	params[1] = gid;
	run(PV_SQL("UPDATE orders SET status = 'processing',"
	           " fulfillment_status = 'processing',"
	           " platform_order_id = $2 WHERE id = $1::bigint"),
	    2, params);
}

/* Delivers body as topic with webhook id to w's endpoint. */
static struct answer
deliver_as(const struct world *w, const char *topic, const char *id,
    const char *body, const char *secret, const char *shop)
{
	struct pv_kv hdrs[6];
	struct pv_req req;
	struct pv_resp resp;
	struct pv_err err = { 0 };
	struct answer a;
	struct json_object *o, *v;
	const char *mac;
	char path[96];

	memset(&a, 0, sizeof(a));
	ck_assert_int_eq(pv_sig_shopify_sign(ctx.arena, secret, body,
	                     strlen(body), &mac, &err),
	    0);
	hdrs[0] = (struct pv_kv){ "x-shopify-topic", topic, strlen(topic) };
	hdrs[1] = (struct pv_kv){ "x-shopify-hmac-sha256", mac, strlen(mac) };
	hdrs[2] = (struct pv_kv){ "x-shopify-shop-domain", shop, strlen(shop) };
	hdrs[3] = (struct pv_kv){ "x-shopify-webhook-id", id, strlen(id) };
	hdrs[4] = (struct pv_kv){ "x-shopify-api-version", "2026-07", 7 };
	hdrs[5] = (struct pv_kv){ "x-shopify-triggered-at", T2, strlen(T2) };
	snprintf(path, sizeof(path), "/webhooks/shopify/%s", w->merchant);
	memset(&req, 0, sizeof(req));
	req.method = PV_POST;
	req.method_name = "POST";
	req.path = path;
	req.query = "";
	req.hdrs = hdrs;
	req.nhdr = 6;
	req.body = body;
	req.bodylen = strlen(body);
	req.remote_addr = "127.0.0.1";
	memset(&resp, 0, sizeof(resp));
	if (pv_shopify_hooks_handle(&ctx, &req, &resp, &err) == -1) {
		a.status = pv_err_status(err.code);
	} else {
		a.status = resp.status;
		o = json_tokener_parse(resp.body);
		ck_assert_ptr_nonnull(o);
		if (json_object_object_get_ex(o, "outcome", &v))
			snprintf(a.outcome, sizeof(a.outcome), "%s",
			    json_object_get_string(v));
		json_object_put(o);
	}
	pv_arena_reset(ctx.arena);
	return a;
}

static struct answer
deliver(const struct world *w, const char *topic, const char *id,
    const char *body)
{
	return deliver_as(w, topic, id, body, SECRET, w->shop);
}

/* A fulfillment payload for w's order. */
static const char *
fulfillment(const struct world *w, long fid, const char *status,
    const char *shipment, const char *number, int qty, const char *updated)
{
	static char b[2048];

	snprintf(b, sizeof(b),
	    "{\"id\": %ld, \"order_id\": %ld, \"status\": \"%s\","
	    " \"shipment_status\": %s%s%s, \"created_at\": \"" T0 "\","
	    " \"updated_at\": \"%s\", \"tracking_company\": \"UPS\","
	    " \"tracking_number\": \"%s\", \"tracking_url\":"
	    " \"https://ups.example/t/%s\", \"name\": \"#1001.%ld\","
	    " \"admin_graphql_api_id\": \"gid://shopify/Fulfillment/%ld\","
	    " \"line_items\": [{\"id\": 1, \"quantity\": %d}]}",
	    fid, w->shopify_id, status, shipment ? "\"" : "",
	    shipment ? shipment : "null", shipment ? "\"" : "", updated, number,
	    number, fid, fid, qty);
	return b;
}

/* The order's column col as text ("" for NULL). */
static const char *
col(const struct world *w, const char *c)
{
	const char *params[2] = { w->oid, c };

	return one(run(PV_SQL("SELECT to_jsonb(o) ->> $2 FROM orders o"
	                      " WHERE id = $1::bigint"),
	    2, params));
}

static long
count(const char *sql_kind, const struct world *w, const char *arg)
{
	const char *params[2] = { w->oid, arg };

	if (strcmp(sql_kind, "events") == 0)
		return strtol(one(run(PV_SQL("SELECT count(*) FROM order_events"
		                             " WHERE order_id = $1::bigint"
		                             " AND type = $2"),
		                  2, params)),
		    NULL, 10);
	if (strcmp(sql_kind, "flagged") == 0)
		return strtol(one(run(PV_SQL("SELECT count(*) FROM order_events"
		                             " WHERE order_id = $1::bigint"
		                             " AND type = $2 AND flagged"),
		                  2, params)),
		    NULL, 10);
	params[0] = w->mid;
	return strtol(one(run(PV_SQL(
	                          "SELECT count(*) FROM provider_events"
	                          " WHERE provider = 'shopify'"
	                          " AND merchant_id = $1::bigint"
	                          " AND ($2::text IS NULL OR event_id = $2)"),
	                  2, params)),
	    NULL, 10);
}

START_TEST(test_fulfil_create_update_in_any_order)
{
	struct world w;
	struct answer a;

	world_new(&w);
	order_new(&w, 1, 0);
	a = deliver(&w, "fulfillments/create", "wh-1",
	    fulfillment(&w, 71, "success", "in_transit", "1Z1", 1, T1));
	ck_assert_int_eq(a.status, 200);
	ck_assert_str_eq(a.outcome, "created");
	ck_assert_str_eq(col(&w, "fulfillment_status"), "shipped");
	ck_assert_str_eq(col(&w, "status"), "shipped");
	ck_assert_str_eq(col(&w, "carrier"), "UPS");
	ck_assert_str_eq(col(&w, "tracking_number"), "1Z1");
	ck_assert_str_eq(col(&w, "tracking_url"), "https://ups.example/t/1Z1");
	ck_assert_str_ne(col(&w, "shipped_at"), "");
	ck_assert_int_eq(count("events", &w, "fulfillment.shipped"), 1);
	ck_assert_int_eq(count("events", &w, "shipment.created"), 1);

	/* The same delivery again: stored once, nothing changes. */
	a = deliver(&w, "fulfillments/create", "wh-1",
	    fulfillment(&w, 71, "success", "in_transit", "1Z1", 1, T1));
	ck_assert_int_eq(a.status, 200);
	ck_assert_str_eq(a.outcome, "duplicate");
	ck_assert_int_eq(count("events", &w, "shipment.created"), 1);
	ck_assert_int_eq(count("provider", &w, "wh-1"), 1);

	/* Older than what we have (T0 < T1): nothing, even "delivered". */
	a = deliver(&w, "fulfillments/update", "wh-2",
	    fulfillment(&w, 71, "success", "delivered", "1Z1", 1, T0));
	ck_assert_str_eq(a.outcome, "stale");
	ck_assert_str_eq(col(&w, "fulfillment_status"), "shipped");
	ck_assert_int_eq(count("events", &w, "shipment.updated"), 0);

	/* Newer and delivered. */
	a = deliver(&w, "fulfillments/update", "wh-3",
	    fulfillment(&w, 71, "success", "delivered", "1Z1", 1, T2));
	ck_assert_str_eq(a.outcome, "updated");
	ck_assert_str_eq(col(&w, "fulfillment_status"), "delivered");
	ck_assert_str_eq(col(&w, "status"), "delivered");
	ck_assert_str_ne(col(&w, "delivered_at"), "");
	ck_assert_int_eq(count("events", &w, "order.delivered"), 1);

	/* Newer but back to in transit: delivered stays delivered. */
	a = deliver(&w, "fulfillments/update", "wh-4",
	    fulfillment(&w, 71, "success", "in_transit", "1Z1", 1, T3));
	ck_assert_int_eq(a.status, 200);
	ck_assert_str_eq(col(&w, "fulfillment_status"), "delivered");
	ck_assert_str_eq(col(&w, "status"), "delivered");
	ck_assert_str_eq(
	    one(run(PV_SQL("SELECT status FROM shipments WHERE order_id ="
	                   " $1::bigint"),
	        1, (const char *const[]){ w.oid })),
	    "delivered");
}
END_TEST

START_TEST(test_fulfil_forged_or_foreign_changes_nothing)
{
	struct world w;
	struct answer a;
	const char *body;

	world_new(&w);
	order_new(&w, 1, 0);
	body = fulfillment(&w, 72, "success", "in_transit", "1Z2", 1, T1);
	a = deliver_as(&w, "fulfillments/create", "wh-bad", body,
	    SECRET "-wrong", w.shop);
	ck_assert_int_eq(a.status, 401);
	a = deliver_as(&w, "fulfillments/create", "wh-shop", body, SECRET,
	    "someone-else.myshopify.com");
	ck_assert_int_eq(a.status, 401);
	ck_assert_int_eq(count("provider", &w, NULL), 0);
	ck_assert_str_eq(col(&w, "fulfillment_status"), "processing");
	ck_assert_str_eq(col(&w, "tracking_number"), "");
	/* A signed delivery of a topic we do not handle: stored, 200. */
	a = deliver(&w, "orders/edited", "wh-unknown", "{\"id\": 1}");
	ck_assert_int_eq(a.status, 200);
	ck_assert_str_eq(a.outcome, "ignored");
	ck_assert_int_eq(count("provider", &w, "wh-unknown"), 1);
	/* Another merchant's order id: not ours, nothing happens. */
	w.shopify_id += 1000;
	a = deliver(&w, "fulfillments/create", "wh-other",
	    fulfillment(&w, 72, "success", "in_transit", "1Z2", 1, T1));
	w.shopify_id -= 1000;
	ck_assert_int_eq(a.status, 200);
	ck_assert_str_eq(a.outcome, "unknown_order");
	ck_assert_int_eq(count("events", &w, "shipment.created"), 0);
}
END_TEST

START_TEST(test_fulfil_partial_shipments)
{
	struct world w;
	struct answer a;

	world_new(&w);
	order_new(&w, 2, 1);
	a = deliver(&w, "fulfillments/create", "wh-p1",
	    fulfillment(&w, 81, "success", NULL, "1ZA", 2, T1));
	ck_assert_str_eq(a.outcome, "created");
	ck_assert_str_eq(col(&w, "fulfillment_status"), "partially_shipped");
	ck_assert_str_eq(col(&w, "status"), "shipped");
	a = deliver(&w, "fulfillments/create", "wh-p2",
	    fulfillment(&w, 82, "success", "out_for_delivery", "1ZB", 1, T2));
	ck_assert_str_eq(col(&w, "fulfillment_status"), "shipped");
	ck_assert_str_eq(col(&w, "tracking_number"), "1ZB");
	/* One delivered of two: still shipped. */
	deliver(&w, "fulfillments/update", "wh-p3",
	    fulfillment(&w, 81, "success", "delivered", "1ZA", 2, T2));
	ck_assert_str_eq(col(&w, "fulfillment_status"), "shipped");
	deliver(&w, "fulfillments/update", "wh-p4",
	    fulfillment(&w, 82, "success", "delivered", "1ZB", 1, T3));
	ck_assert_str_eq(col(&w, "fulfillment_status"), "delivered");
	ck_assert_str_eq(col(&w, "status"), "delivered");
	ck_assert_int_eq(count("events", &w, "fulfillment.partially_shipped"),
	    1);
	ck_assert_int_eq(count("events", &w, "fulfillment.shipped"), 1);
}
END_TEST

START_TEST(test_fulfil_store_cancel_flags_or_queues_refund)
{
	struct world w;
	struct answer a;
	char body[128];

	world_new(&w);
	order_new(&w, 1, 0);
	snprintf(body, sizeof(body),
	    "{\"id\": %ld, \"cancel_reason\": \"customer\"}", w.shopify_id);
	a = deliver(&w, "orders/cancelled", "wh-c1", body);
	ck_assert_str_eq(a.outcome, "flagged");
	ck_assert_int_eq(count("flagged", &w, "store.cancelled"), 1);
	ck_assert_str_eq(col(&w, "status"), "processing");
	ck_assert_str_eq(one(run(PV_SQL("SELECT count(*) FROM jobs WHERE"
	                                " kind = 'refund.store_cancel'"
	                                " AND payload ->> 'order_id' = $1"),
	                     1, (const char *const[]){ w.order })),
	    "0");

	run(PV_SQL("UPDATE merchants SET refund_on_store_cancel = true"
	           " WHERE id = $1::bigint"),
	    1, (const char *const[]){ w.mid });
	a = deliver(&w, "orders/cancelled", "wh-c2", body);
	ck_assert_str_eq(a.outcome, "refund_queued");
	ck_assert_str_eq(one(run(PV_SQL("SELECT count(*) FROM jobs WHERE"
	                                " kind = 'refund.store_cancel'"
	                                " AND payload ->> 'order_id' = $1"),
	                     1, (const char *const[]){ w.order })),
	    "1");

	/* A store refund is recorded and flagged; nothing is queued. */
	snprintf(body, sizeof(body),
	    "{\"id\": 9, \"order_id\": %ld, \"transactions\": [{\"kind\":"
	    " \"refund\", \"amount\": \"15.00\", \"currency\": \"USD\"}]}",
	    w.shopify_id);
	a = deliver(&w, "refunds/create", "wh-r1", body);
	ck_assert_str_eq(a.outcome, "recorded");
	ck_assert_int_eq(count("flagged", &w, "store.refund"), 1);
	ck_assert_str_eq(col(&w, "refunded_minor"), "0");
}
END_TEST

/* A products/update payload of product 777 with one variant. */
static void
product_body(char *b, size_t size, const char *title, const char *updated,
    const char *price)
{
	ck_assert_int_lt(
	    snprintf(b, size,
	        "{\"id\": 777, \"title\": \"%s\", \"handle\":"
	        " \"hook-tee\", \"body_html\": \"<p>Soft</p>\","
	        " \"vendor\": \"V\", \"status\": \"active\","
	        " \"tags\": \"a, b\", \"updated_at\": \"%s\","
	        " \"options\": [{\"name\": \"Size\"}],"
	        " \"variants\": [{\"id\": 7771, \"title\": \"M\","
	        " \"sku\": \"HT-M\", \"price\": \"%s\","
	        " \"option1\": \"M\", \"inventory_quantity\": 5}]}",
	        title, updated, price),
	    (int)size);
}

START_TEST(test_fulfil_products_update_and_delete)
{
	struct world w;
	struct answer a;
	const char *p[1];
	char body[1024];

	world_new(&w);
	p[0] = w.mid;
	product_body(body, sizeof(body), "Hook Tee", T1, "20.00");
	a = deliver(&w, "products/update", "wh-u1", body);
	ck_assert_str_eq(a.outcome, "created");
#define PRODUCT_SQL \
	PV_SQL("SELECT p.title || '|' || p.status || '|' || v.price_minor" \
	       " || '|' || v.inventory_quantity FROM products p" \
	       " JOIN variants v ON v.product_id = p.id" \
	       " WHERE p.merchant_id = $1::bigint" \
	       " AND p.external_id = 'gid://shopify/Product/777'")
	ck_assert_str_eq(one(run(PRODUCT_SQL, 1, p)), "Hook Tee|active|2000|5");
	/* Older update after it: nothing. */
	product_body(body, sizeof(body), "Old Tee", T0, "10.00");
	a = deliver(&w, "products/update", "wh-u2", body);
	ck_assert_str_eq(a.outcome, "stale");
	ck_assert_str_eq(one(run(PRODUCT_SQL, 1, p)), "Hook Tee|active|2000|5");
	product_body(body, sizeof(body), "New Tee", T3, "25.00");
	a = deliver(&w, "products/update", "wh-u3", body);
	ck_assert_str_eq(a.outcome, "updated");
	ck_assert_str_eq(one(run(PRODUCT_SQL, 1, p)), "New Tee|active|2500|5");
	/* Deleted in the store: archived here, variants kept. */
	a = deliver(&w, "products/delete", "wh-d1", "{\"id\": 777}");
	ck_assert_str_eq(a.outcome, "archived");
	ck_assert_str_eq(one(run(PRODUCT_SQL, 1, p)),
	    "New Tee|archived|2500|5");
	/* A late update never brings it back. */
	product_body(body, sizeof(body), "Zombie Tee", "2027-01-01T00:00:00Z",
	    "1.00");
	a = deliver(&w, "products/update", "wh-u4", body);
	ck_assert_str_eq(a.outcome, "stale");
	ck_assert_str_eq(one(run(PRODUCT_SQL, 1, p)),
	    "New Tee|archived|2500|5");
#undef PRODUCT_SQL
}
END_TEST

START_TEST(test_fulfil_app_uninstalled_disconnects)
{
	struct world w;
	struct answer a;

	world_new(&w);
	a = deliver(&w, "app/uninstalled", "wh-x1", "{\"id\": 1}");
	ck_assert_str_eq(a.outcome, "disconnected");
	ck_assert_str_eq(
	    one(run(PV_SQL("SELECT (disconnected_at IS NOT NULL)::text ||"
	                   " (token_sealed IS NULL)::text FROM merchant_shopify"
	                   " WHERE merchant_id = $1::bigint"),
	        1, (const char *const[]){ w.mid })),
	    "truetrue");
	/* No secret any more: nothing can be verified. */
	a = deliver(&w, "app/uninstalled", "wh-x2", "{\"id\": 1}");
	ck_assert_int_eq(a.status, 401);
}
END_TEST

Suite *
fulfil_suite(void)
{
	Suite *s = suite_create("fulfil");
	TCase *tc = tcase_create("webhooks");

	tcase_add_unchecked_fixture(tc, start_fake, stop_fake);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fulfil_create_update_in_any_order);
	tcase_add_test(tc, test_fulfil_forged_or_foreign_changes_nothing);
	tcase_add_test(tc, test_fulfil_partial_shipments);
	tcase_add_test(tc, test_fulfil_store_cancel_flags_or_queues_refund);
	tcase_add_test(tc, test_fulfil_products_update_and_delete);
	tcase_add_test(tc, test_fulfil_app_uninstalled_disconnects);
	suite_add_tcase(s, tc);
	return s;
}
