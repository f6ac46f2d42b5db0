/*
 * Helpers the order and refund integration suites share: merchants on
 * the orders fixtures connected to the Stripe fake, agents, HTTP calls
 * with an asserted status, and order creation and payment through the
 * servers.  Test code: failures abort the test (Check assertions).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "pv_itshop.h"
#include "pv_proc.h"

/* The string member key of pivotactl's --json output, copied to dst. */
void
pv_it_json_field(const char *out, const char *key, char *dst, size_t size)
{
	struct json_object *o = json_tokener_parse(out);

	ck_assert_msg(o != NULL, "pivotactl printed: %s", out);
	ck_assert_msg(pv_httpc_json_str(o, key) != NULL, "no %s in %s", key,
	    out);
	ck_assert_int_lt(snprintf(dst, size, "%s", pv_httpc_json_str(o, key)),
	    (int)size);
	json_object_put(o);
}

int64_t
pv_it_num(struct json_object *o, const char *path)
{
	struct json_object *v = pv_httpc_json_get(o, path);

	ck_assert_msg(v != NULL, "no %s", path);
	return json_object_get_int64(v);
}

const char *
pv_it_str(struct json_object *o, const char *path)
{
	const char *s = pv_httpc_json_str(o, path);

	ck_assert_msg(s != NULL, "no string %s in %s", path,
	    json_object_to_json_string(o));
	return s;
}

/* A merchant with the fixture's catalog; its public id in id. */
void
pv_it_merchant(const char *currency, const char *fixture, char *id, size_t size)
{
	static int seq;
	char email[96], out[4096], file[256];

	snprintf(email, sizeof(email), "it-%ld-%d-%s@test.example",
	    (long)getpid(), seq++, currency);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "create",
	                     "--name", "Test Shop", "--email", email,
	                     "--currency", currency, "--json", NULL),
	    0);
	pv_it_json_field(out, "merchant_id", id, size);
	snprintf(file, sizeof(file), PV_IT_FIXTURES "%s", fixture);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "products", "import", id,
	                     file, "--json", NULL),
	    0);
}

/* Connects merchant id to the Stripe fake (verified against it). */
void
pv_it_connect_stripe(struct pv_fake *stripe, const char *id)
{
	char out[4096];

	ck_assert_msg(pv_proc_ctl(out, sizeof(out), "merchant",
	                  "connect-stripe", id, "--secret-key", PV_IT_SK,
	                  "--webhook-secret", PV_IT_WHSEC, "--api-base",
	                  pv_fake_url(stripe), "--json", NULL) == 0,
	    "connect-stripe: %s", out);
}

/* The fake's webhooks go to merchant id's endpoint on server s. */
void
pv_it_stripe_webhooks_to(struct pv_fake *stripe,
    const struct pv_httpc_server *s, const char *id, int hold)
{
	char body[512];

	snprintf(body, sizeof(body),
	    "{\"webhook_url\": \"%s/webhooks/stripe/%s\","
	    " \"webhook_secret\": \"" PV_IT_WHSEC "\", \"hold_webhooks\": %s}",
	    s->base, id, hold ? "true" : "false");
	ck_assert_int_eq(pv_fake_do(stripe, "POST", "/__fake/config", body), 0);
}

void
pv_it_agent(const char *merchants, char *header, size_t size)
{
	char out[4096], key[128];

	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "agent", "create",
	                     "--name", "orders test", "--per-minute", "100000",
	                     "--merchants", merchants, "--json", NULL),
	    0);
	pv_it_json_field(out, "api_key", key, sizeof(key));
	snprintf(header, size, "X-API-Key: %s", key);
}

/*
 * method path (no body for GET) on server s as the agent of header,
 * with an optional extra header line; asserts the status; the parsed
 * body (caller puts it).
 */
struct json_object *
pv_it_call(const struct pv_httpc_server *s, const char *header,
    const char *extra, const char *method, const char *path, const char *body,
    long status)
{
	const char *h[4] = { header, extra, NULL, NULL };
	struct pv_httpc_resp r;
	struct json_object *o;
	char *url = pv_httpc_url(s->base, path);

	if (body != NULL && extra == NULL)
		h[1] = "Content-Type: application/json";
	else if (body != NULL)
		h[2] = "Content-Type: application/json";
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

/* The first product of a search at merchant m for q: its id in id. */
void
pv_it_find(const struct pv_httpc_server *s, const char *header, const char *m,
    const char *q, char *id, size_t size)
{
	char path[256];
	struct json_object *o, *p;

	snprintf(path, sizeof(path),
	    "/agent/v1/products/search?merchant_id=%s&q=%s", m, q);
	o = pv_it_call(s, header, NULL, "GET", path, NULL, 200);
	p = json_object_array_get_idx(pv_httpc_json_get(o, "products"), 0);
	ck_assert_msg(p != NULL, "no %s at %s", q, m);
	ck_assert_int_lt(snprintf(id, size, "%s", pv_it_str(p, "id")),
	    (int)size);
	json_object_put(o);
}

/* The body of an order for qty (JSON text) of product at m to cc. */
const char *
pv_it_order_body(const char *m, const char *product, const char *qty,
    const char *cc, const char *extra)
{
	static char b[2048];

	snprintf(b, sizeof(b),
	    "{\"merchant_id\": \"%s\", \"customer_email\": \"b@test.example\","
	    " \"items\": [{\"product_id\": \"%s\", \"quantity\": %s%s}],"
	    " \"shipping_address\": {\"name\": \"Buyer\", \"address_line1\":"
	    " \"1 Main St\", \"city\": \"Town\", \"postal_code\": \"12345\","
	    " \"country\": \"%s\"}}",
	    m, product, qty, extra != NULL ? extra : "", cc);
	return b;
}

/* Creates an order; its id in id (size 32). */
void
pv_it_create(const struct pv_httpc_server *s, const char *header, const char *m,
    const char *product, const char *qty, const char *cc, char *id)
{
	struct json_object *o =
	    pv_it_call(s, header, NULL, "POST", "/agent/v1/orders/create",
	        pv_it_order_body(m, product, qty, cc, NULL), 200);

	ck_assert_str_eq(pv_it_str(o, "order_status"), "pending");
	snprintf(id, 32, "%s", pv_it_str(o, "order_id"));
	json_object_put(o);
}

/* POST /agent/v1/payments for order with token; expects status. */
struct json_object *
pv_it_pay(const struct pv_httpc_server *s, const char *header,
    const char *order, const char *token, long status)
{
	char body[512];

	snprintf(body, sizeof(body),
	    "{\"order_id\": \"%s\", \"payment_method\": {\"type\": \"card\","
	    " \"token\": \"%s\"}}",
	    order, token);
	return pv_it_call(s, header, NULL, "POST", "/agent/v1/payments", body,
	    status);
}

struct json_object *
pv_it_order_get(const struct pv_httpc_server *s, const char *header,
    const char *order)
{
	char path[128];

	snprintf(path, sizeof(path), "/agent/v1/orders/%s", order);
	return pv_it_call(s, header, NULL, "GET", path, NULL, 200);
}

/* How many events of type the order has. */
int
pv_it_events_of(struct json_object *o, const char *type)
{
	struct json_object *arr = pv_httpc_json_get(o, "order.events");
	size_t i;
	int n = 0;

	ck_assert_ptr_nonnull(arr);
	for (i = 0; i < json_object_array_length(arr); i++)
		if (strcmp(pv_it_str(json_object_array_get_idx(arr, i), "type"),
		        type) == 0)
			n++;
	return n;
}

/* Asserts the order's status and payment status. */
void
pv_it_order_is(const struct pv_httpc_server *s, const char *header,
    const char *order, const char *status, const char *payment)
{
	struct json_object *o = pv_it_order_get(s, header, order);

	ck_assert_str_eq(pv_it_str(o, "order.status"), status);
	ck_assert_str_eq(pv_it_str(o, "order.payment_status"), payment);
	json_object_put(o);
}
