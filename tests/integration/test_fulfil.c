/*
 * Fulfilment through the real servers (issue 6 acceptance): on each
 * server (lighttpd, Apache), a merchant connected with the real
 * pivotactl to the loopback Shopify fake (catalogue synced, sandbox
 * payments), an order created and paid by an agent and pushed to the
 * fake store by the real pivota-worker; then the fake sends signed
 * fulfilment webhooks (/__fake/webhook) to the server: tracking shows
 * in_transit with carrier and URL, a duplicate delivery and an older
 * event after a newer one change nothing, a bad HMAC is 401 and
 * changes nothing, a newer delivered event delivers it, and the
 * in-transit list shows only the agent's own orders.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pv_fake.h"
#include "pv_httpc.h"
#include "pv_proc.h"
#include "pv_test.h"

#define MAX_SERVERS 8
#define FAKE        "tests/fakes/fake_shopify.py"
#define TOKEN       "shpat_fake_fulfil_0123456789"
#define SECRET      "fake_app_client_secret" /* the fake's default */

static struct pv_httpc_server servers[MAX_SERVERS];
static size_t nservers;
static struct pv_fake *fake;

static void
setup(void)
{
	nservers = pv_httpc_servers(servers, MAX_SERVERS);
	ck_assert_msg(nservers >= 2,
	    "need the servers: run these through tests/integration/run.sh");
	fake = pv_fake_start(FAKE,
	    (const char *const[]){ "--token", TOKEN, NULL });
	ck_assert_msg(fake != NULL, "cannot start " FAKE);
}

static void
teardown(void)
{
	pv_fake_stop(fake);
	fake = NULL;
}

/* The member at path as text (any type); NULL if absent or null. */
static const char *
jstr(struct json_object *o, const char *path)
{
	return json_object_get_string(pv_httpc_json_get(o, path));
}

static void
json_field(const char *out, const char *path, char *dst, size_t size)
{
	struct json_object *o = json_tokener_parse(out);

	ck_assert_msg(o != NULL, "pivotactl printed: %s", out);
	ck_assert_msg(jstr(o, path) != NULL, "no %s in %s", path, out);
	ck_assert_int_lt(snprintf(dst, size, "%s", jstr(o, path)), (int)size);
	json_object_put(o);
}

static int
worker_once(void)
{
	char path[512];
	const char *argv[] = { path, "--once", "--id", "fulfil-test",
		"--backoff-base", "1", "--backoff-cap", "1", NULL };

	ck_assert_int_lt(snprintf(path, sizeof(path), "%s/bin/pivota-worker",
	                     getenv("PV_BUILD_DIR")),
	    (int)sizeof(path));
	return pv_proc_run(argv);
}

/* GET or POST path on s as the agent of header; asserts the status. */
static struct json_object *
call(const struct pv_httpc_server *s, const char *header, const char *method,
    const char *path, const char *body, long status)
{
	const char *h[3] = { header, "Content-Type: application/json", NULL };
	struct pv_httpc_resp r;
	struct json_object *o;
	char *url = pv_httpc_url(s->base, path);

	ck_assert_msg(pv_httpc_request(&r, method, url, h, body,
	                  body != NULL ? strlen(body) : 0) == 0,
	    "%s: %s", s->name, r.error);
	free(url);
	ck_assert_msg(r.status == status, "%s %s %s: %ld, want %ld: %s",
	    s->name, method, path, r.status, status, r.body);
	o = pv_httpc_json(&r);
	ck_assert_msg(o != NULL, "%s %s: not JSON: %s", s->name, path, r.body);
	pv_httpc_resp_free(&r);
	return o;
}

static void
agent(const char *merchant, char *header, size_t size)
{
	char out[4096], key[128];

	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "agent", "create",
	                     "--name", "fulfil test", "--per-minute", "100000",
	                     "--merchants", merchant, "--json", NULL),
	    0);
	json_field(out, "api_key", key, sizeof(key));
	snprintf(header, size, "X-API-Key: %s", key);
}

/* A merchant with its store connected to the fake, catalogue synced. */
static void
merchant(const struct pv_httpc_server *s, char *id, size_t size)
{
	char out[4096], shop[96], body[160], state[32], email[96];
	int i;

	snprintf(email, sizeof(email), "fulfil-%ld-%s@test.example",
	    (long)getpid(), s->name);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "create",
	                     "--name", "Fulfil Store", "--email", email,
	                     "--json", NULL),
	    0);
	json_field(out, "merchant_id", id, size);
	snprintf(shop, sizeof(shop), "f%s.myshopify.com", id + 4);
	snprintf(body, sizeof(body), "{\"shop\": \"%s\"}", shop);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/config", body), 0);
	ck_assert_msg(pv_proc_ctl(out, sizeof(out), "merchant",
	                  "connect-shopify", id, "--shop", shop, "--token",
	                  TOKEN, "--api-base", pv_fake_url(fake),
	                  "--webhook-secret", SECRET, "--json", NULL) == 0,
	    "connect-shopify: %s", out);
	ck_assert_msg(pv_proc_ctl(out, sizeof(out), "merchant",
	                  "connect-sandbox", id, "--json", NULL) == 0,
	    "connect-sandbox: %s", out);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "sync-products", id,
	                     "--json", NULL),
	    0);
	for (i = 0; i < 10; i++) {
		ck_assert_int_eq(worker_once(), 0);
		ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "sync-products",
		                     id, "--status", "--json", NULL),
		    0);
		json_field(out, "state", state, sizeof(state));
		if (strcmp(state, "done") == 0)
			return;
	}
	ck_abort_msg("the sync did not finish: %s", out);
}

/*
 * The fake sends topic for order gid to merchant m on s with the
 * fulfillment fields given (JSON members, no braces) and flags (JSON
 * members or ""); the statuses of its deliveries in st[0..n).
 */
static int
send_hook(const struct pv_httpc_server *s, const char *m, const char *topic,
    const char *gid, const char *fields, const char *flags, long *st,
    char *outcome, size_t size)
{
	struct json_object *o, *d, *arr, *b;
	char body[1024];
	size_t i, n;

	snprintf(body, sizeof(body),
	    "{\"url\": \"%s/webhooks/shopify/%s\", \"topic\": \"%s\","
	    " \"order\": \"%s\", \"fulfillment\": {%s}%s%s}",
	    s->base, m, topic, gid, fields, *flags ? ", " : "", flags);
	o = pv_fake_call(fake, "POST", "/__fake/webhook", body);
	ck_assert_msg(o != NULL, "the fake did not send %s", body);
	arr = pv_httpc_json_get(o, "deliveries");
	n = json_object_array_length(arr);
	outcome[0] = '\0';
	for (i = 0; i < n; i++) {
		d = json_object_array_get_idx(arr, i);
		st[i] = json_object_get_int64(pv_httpc_json_get(d, "status"));
		b = json_tokener_parse(jstr(d, "body"));
		if (b != NULL && jstr(b, "outcome") != NULL)
			snprintf(outcome, size, "%s", jstr(b, "outcome"));
		json_object_put(b);
	}
	json_object_put(o);
	return (int)n;
}

/* GET track (alias or not) of order as header; the tracking object. */
static struct json_object *
track(const struct pv_httpc_server *s, const char *header, const char *order,
    int alias)
{
	char path[128];

	snprintf(path, sizeof(path),
	    alias ? "/agent/v1/orders/%s/track" :
	            "/agent/v1/fulfillment/track/%s",
	    order);
	return call(s, header, "GET", path, NULL, 200);
}

/* The tracking member at path must be want. */
static void
tracking_is(const struct pv_httpc_server *s, const char *header,
    const char *order, const char *path, const char *want)
{
	struct json_object *o = track(s, header, order, 0);
	char full[96];

	snprintf(full, sizeof(full), "tracking.%s", path);
	ck_assert_msg(jstr(o, full) != NULL && strcmp(jstr(o, full), want) == 0,
	    "%s: %s is %s, want %s", s->name, full,
	    jstr(o, full) ? jstr(o, full) : "null", want);
	json_object_put(o);
}

/* Total of the in-transit list as header (optionally for merchant m). */
static long
in_transit(const struct pv_httpc_server *s, const char *header,
    const char *order, int *found)
{
	struct json_object *o = call(s, header, "GET",
	    "/agent/v1/fulfillment/orders/in-transit?limit=100", NULL, 200);
	struct json_object *arr = pv_httpc_json_get(o, "orders");
	long total = (long)json_object_get_int64(pv_httpc_json_get(o, "total"));
	size_t i;

	*found = 0;
	for (i = 0; i < json_object_array_length(arr); i++)
		if (strcmp(jstr(json_object_array_get_idx(arr, i), "order_id"),
		        order) == 0) {
			*found = 1;
			ck_assert_str_eq(jstr(json_object_array_get_idx(arr, i),
			                     "carrier"),
			    "UPS");
		}
	json_object_put(o);
	return total;
}

static void
flow(const struct pv_httpc_server *s, long fid)
{
	struct json_object *o, *p;
	char m[32], a[160], b[160], product[48], order[32], gid[64], body[1024];
	char fields[256], outcome[64];
	long st[4];
	int found;

	merchant(s, m, sizeof(m));
	agent(m, a, sizeof(a));
	agent(m, b, sizeof(b));
	snprintf(body, sizeof(body),
	    "/agent/v1/products/search?merchant_id=%s&q=fake", m);
	o = call(s, a, "GET", body, NULL, 200);
	p = json_object_array_get_idx(pv_httpc_json_get(o, "products"), 0);
	ck_assert_msg(p != NULL, "%s: no synced product", s->name);
	snprintf(product, sizeof(product), "%s", jstr(p, "id"));
	json_object_put(o);
	snprintf(body, sizeof(body),
	    "{\"merchant_id\": \"%s\", \"customer_email\": \"b@test.example\","
	    " \"items\": [{\"product_id\": \"%s\", \"quantity\": 1}],"
	    " \"shipping_address\": {\"name\": \"Buyer\", \"address_line1\":"
	    " \"1 Main St\", \"city\": \"Town\", \"postal_code\": \"12345\","
	    " \"country\": \"US\"}}",
	    m, product);
	o = call(s, a, "POST", "/agent/v1/orders/create", body, 200);
	snprintf(order, sizeof(order), "%s", jstr(o, "order_id"));
	json_object_put(o);
	snprintf(body, sizeof(body),
	    "{\"order_id\": \"%s\", \"payment_method\": {\"type\": \"card\","
	    " \"token\": \"pm_card_visa\"}}",
	    order);
	o = call(s, a, "POST", "/agent/v1/payments", body, 200);
	ck_assert_str_eq(jstr(o, "payment_status"), "succeeded");
	json_object_put(o);
	/* The worker pushes it to the fake store. */
	ck_assert_int_eq(worker_once(), 0);
	snprintf(body, sizeof(body), "/agent/v1/orders/%s", order);
	o = call(s, a, "GET", body, NULL, 200);
	ck_assert_str_eq(jstr(o, "order.status"), "processing");
	ck_assert_msg(jstr(o, "order.platform_order_id") != NULL,
	    "%s: not pushed", s->name);
	snprintf(gid, sizeof(gid), "%s", jstr(o, "order.platform_order_id"));
	json_object_put(o);
	tracking_is(s, a, order, "delivery_status", "not_shipped");

	/* Shipped: in transit with carrier and URL; sent twice. */
	snprintf(fields, sizeof(fields),
	    "\"id\": %ld, \"admin_graphql_api_id\":"
	    " \"gid://shopify/Fulfillment/%ld\","
	    " \"updated_at\": \"2026-05-02T10:00:00Z\"",
	    fid, fid);
	ck_assert_int_eq(send_hook(s, m, "fulfillments/create", gid, fields,
	                     "\"duplicate\": true", st, outcome,
	                     sizeof(outcome)),
	    2);
	ck_assert_int_eq(st[0], 200);
	ck_assert_int_eq(st[1], 200);
	ck_assert_str_eq(outcome, "duplicate");
	o = track(s, a, order, 1);
	ck_assert_str_eq(jstr(o, "tracking.delivery_status"), "in_transit");
	ck_assert_str_eq(jstr(o, "tracking.fulfillment_status"), "shipped");
	ck_assert_str_eq(jstr(o, "tracking.carrier"), "UPS");
	ck_assert_msg(strncmp(jstr(o, "tracking.tracking_url"),
	                  "https://www.ups.com/track?tracknum=1Z", 37) == 0,
	    "%s", jstr(o, "tracking.tracking_url"));
	ck_assert_int_eq(json_object_array_length(
	                     pv_httpc_json_get(o, "tracking.shipments")),
	    1);
	json_object_put(o);

	/* An older event after the newer one: nothing changes. */
	snprintf(fields, sizeof(fields),
	    "\"id\": %ld, \"admin_graphql_api_id\":"
	    " \"gid://shopify/Fulfillment/%ld\", \"shipment_status\":"
	    " \"delivered\", \"updated_at\": \"2026-05-01T10:00:00Z\"",
	    fid, fid);
	send_hook(s, m, "fulfillments/update", gid, fields, "", st, outcome,
	    sizeof(outcome));
	ck_assert_int_eq(st[0], 200);
	ck_assert_str_eq(outcome, "stale");
	tracking_is(s, a, order, "delivery_status", "in_transit");

	/* A forged one (bad HMAC): 401, nothing changes. */
	snprintf(fields, sizeof(fields),
	    "\"id\": %ld, \"admin_graphql_api_id\":"
	    " \"gid://shopify/Fulfillment/%ld\", \"shipment_status\":"
	    " \"delivered\", \"updated_at\": \"2026-05-03T10:00:00Z\"",
	    fid, fid);
	send_hook(s, m, "fulfillments/update", gid, fields,
	    "\"bad_hmac\": true", st, outcome, sizeof(outcome));
	ck_assert_int_eq(st[0], 401);
	tracking_is(s, a, order, "delivery_status", "in_transit");

	/* Only the agent's own orders are in transit for it. */
	ck_assert_int_ge(in_transit(s, a, order, &found), 1);
	ck_assert_int_eq(found, 1);
	ck_assert_int_eq(in_transit(s, b, order, &found), 0);
	ck_assert_int_eq(found, 0);
	snprintf(body, sizeof(body), "/agent/v1/fulfillment/track/%s", order);
	json_object_put(call(s, b, "GET", body, NULL, 404));
	snprintf(body, sizeof(body), "/agent/v1/orders/%s/track", order);
	json_object_put(call(s, b, "GET", body, NULL, 404));

	/* The real delivered event, newer: delivered. */
	send_hook(s, m, "fulfillments/update", gid, fields, "", st, outcome,
	    sizeof(outcome));
	ck_assert_int_eq(st[0], 200);
	ck_assert_str_eq(outcome, "updated");
	o = track(s, a, order, 0);
	ck_assert_str_eq(jstr(o, "tracking.delivery_status"), "delivered");
	ck_assert_str_eq(jstr(o, "tracking.fulfillment_status"), "delivered");
	ck_assert_ptr_nonnull(jstr(o, "tracking.delivered_at"));
	json_object_put(o);
	ck_assert_int_eq(in_transit(s, a, order, &found), 0);
	snprintf(body, sizeof(body), "/agent/v1/orders/%s", order);
	o = call(s, a, "GET", body, NULL, 200);
	ck_assert_str_eq(jstr(o, "order.status"), "delivered");
	json_object_put(o);
}

START_TEST(test_fulfil_webhooks_and_tracking)
{
	size_t i;

	for (i = 0; i < nservers && i < 2; i++)
		flow(&servers[i], 880000L + (long)i);
}
END_TEST

Suite *
fulfil_suite(void)
{
	Suite *s = suite_create("fulfil");
	TCase *tc = tcase_create("fulfil");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fulfil_webhooks_and_tracking);
	suite_add_tcase(s, tc);
	return s;
}
