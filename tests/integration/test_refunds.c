/*
 * Refunds through the real servers (issue 7): merchants connected to
 * the loopback Stripe fake with the real pivotactl, orders paid
 * through lighttpd and Apache, then refunded: 30 % + 30 % + 40 %
 * (three refunds at Stripe, the order refunded, a fourth 409), two
 * concurrent refunds of 60 % (exactly one), Stripe failing with 500
 * before it succeeds (one refund at Stripe, one Idempotency-Key),
 * Stripe's webhooks for our own refunds (matched, not counted again)
 * and for a refund made in its dashboard (counted once), refunds by
 * items with shipping, bad requests that change nothing, cancel
 * before and after payment; and, with a store connected to the
 * Shopify fake, each refund mirrored there once by the worker.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pv_fake.h"
#include "pv_httpc.h"
#include "pv_itshop.h"
#include "pv_proc.h"
#include "pv_test.h"

#define MAX_SERVERS 8
#define FIXTURES    PV_IT_FIXTURES
#define SK          PV_IT_SK
#define WHSEC       PV_IT_WHSEC
#define SHOP_TOKEN  "shpat_fake_refunds_0123456789"

static struct pv_httpc_server servers[MAX_SERVERS];
static size_t nservers;
static struct pv_fake *stripe;

static void
start_stripe(void)
{
	/* Its own ids: the orders suite's fake used the plain ones. */
	stripe = pv_fake_start("tests/fakes/fake_stripe.py",
	    (const char *const[]){ "--id-tag", "rf", NULL });
}

static void
stop_stripe(void)
{
	pv_fake_stop(stripe);
	stripe = NULL;
}

static void
setup(void)
{
	nservers = pv_httpc_servers(servers, MAX_SERVERS);
	ck_assert_msg(nservers >= 2,
	    "need the servers: run these through tests/integration/run.sh");
	ck_assert_msg(stripe != NULL, "the Stripe fake did not start");
	ck_assert_int_eq(pv_fake_do(stripe, "POST", "/__fake/faults",
	                     "{\"clear\": true}"),
	    0);
}

/* A Stripe-connected USD shop, with rules, and agents A and B for it. */
struct shop {
	char m[32], mug[48], lantern[48];
	char a[128], b[128];
};

static void
shop_make(struct shop *w, const struct pv_httpc_server *s)
{
	char out[4096];

	pv_it_merchant("USD", "usd.jsonl", w->m, sizeof(w->m));
	pv_it_connect_stripe(stripe, w->m);
	pv_it_stripe_webhooks_to(stripe, s, w->m, 0);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant",
	                     "set-shipping", w->m, "--country", "US", "--rate",
	                     "5.00", "--free-over", "100.00", "--json", NULL),
	    0);
	ck_assert_msg(pv_proc_ctl(out, sizeof(out), "merchant", "set-tax", w->m,
	                  "--country", "US", "--rate", "8.875", "--json",
	                  NULL) == 0,
	    "set-tax: %s", out);
	pv_it_agent(w->m, w->a, sizeof(w->a));
	pv_it_agent(w->m, w->b, sizeof(w->b));
	pv_it_find(s, w->a, w->m, "mug", w->mug, sizeof(w->mug));
	pv_it_find(s, w->a, w->m, "lantern", w->lantern, sizeof(w->lantern));
}

/* POST /agent/v1/orders/{order}/refund with body (NULL: empty). */
static struct json_object *
refund(const struct pv_httpc_server *s, const char *header, const char *order,
    const char *body, long status)
{
	char path[128];

	/* No body is an empty one, as HTTP clients send it. */
	snprintf(path, sizeof(path), "/agent/v1/orders/%s/refund", order);
	return pv_it_call(s, header, NULL, "POST", path,
	    body != NULL ? body : "", status);
}

/* A refund of amount (decimal text) that must succeed at once. */
static void
refund_ok(const struct pv_httpc_server *s, const char *header,
    const char *order, const char *amount, const char *refunded,
    const char *state)
{
	char body[128];
	struct json_object *o;

	snprintf(body, sizeof(body),
	    "{\"amount\": \"%s\", \"reason\": \"the customer sent it back, "
	    "unopened\"}",
	    amount);
	o = refund(s, header, order, body, 200);
	ck_assert_str_eq(pv_it_str(o, "status"), "success");
	ck_assert_str_eq(pv_it_str(o, "order_id"), order);
	ck_assert_str_eq(pv_it_str(o, "refund_amount"), amount);
	ck_assert_str_eq(pv_it_str(o, "refunded_total"), refunded);
	ck_assert_str_eq(pv_it_str(o, "refund_status"), "succeeded");
	ck_assert_str_eq(pv_it_str(o, "new_order_status"), state);
	ck_assert_int_eq((int)strlen(pv_it_str(o, "refund_id")), 28);
	json_object_put(o);
}

/* The PaymentIntent of order's payment. */
static void
intent_of(const struct pv_httpc_server *s, const char *header,
    const char *order, char *pi, size_t size)
{
	struct json_object *p;

	(void)s;
	(void)header;
	p = pv_fake_call(stripe, "GET", "/__fake/intents", NULL);
	ck_assert_ptr_nonnull(p);
	pi[0] = '\0';
	for (size_t i = 0;
	     i < json_object_array_length(pv_httpc_json_get(p, "intents"));
	     i++) {
		struct json_object *it =
		    json_object_array_get_idx(pv_httpc_json_get(p, "intents"),
		        i);
		const char *m = pv_httpc_json_str(it, "metadata.order_id");

		if (m != NULL && strcmp(m, order) == 0)
			snprintf(pi, size, "%s", pv_it_str(it, "id"));
	}
	json_object_put(p);
	ck_assert_msg(pi[0] != '\0', "no PaymentIntent for %s", order);
}

/* The refunds the fake made for PaymentIntent pi; their sum in *sum. */
static int
stripe_refunds(const char *pi, long *sum)
{
	struct json_object *o = pv_fake_call(stripe, "GET", "/__fake/refunds",
	                       NULL),
	                   *arr, *r;
	const char *p;
	size_t i;
	int n = 0;

	ck_assert_ptr_nonnull(o);
	arr = pv_httpc_json_get(o, "refunds");
	ck_assert_ptr_nonnull(arr);
	if (sum != NULL)
		*sum = 0;
	for (i = 0; i < json_object_array_length(arr); i++) {
		r = json_object_array_get_idx(arr, i);
		p = pv_httpc_json_str(r, "payment_intent");
		if (p != NULL && strcmp(p, pi) == 0) {
			n++;
			if (sum != NULL)
				*sum += (long)pv_it_num(r, "amount");
		}
	}
	json_object_put(o);
	return n;
}

/*
 * The POST /v1/refunds requests sent for order: how many, and whether
 * each carried the key pivota-refund-<its metadata[refund_id]>.
 */
static int
refund_requests(const char *order, int *keyed)
{
	struct json_object *o = pv_fake_call(stripe, "GET", "/__fake/requests",
	                       NULL),
	                   *arr, *rq;
	const char *k, *id;
	char want[96];
	size_t i;
	int n = 0;

	ck_assert_ptr_nonnull(o);
	*keyed = 1;
	arr = pv_httpc_json_get(o, "requests");
	for (i = 0; i < json_object_array_length(arr); i++) {
		rq = json_object_array_get_idx(arr, i);
		id = pv_httpc_json_str(rq, "form.metadata.order_id");
		if (strcmp(pv_it_str(rq, "path"), "/v1/refunds") != 0 ||
		    id == NULL || strcmp(id, order) != 0)
			continue;
		k = pv_httpc_json_str(rq, "headers.idempotency-key");
		snprintf(want, sizeof(want), "pivota-refund-%s",
		    pv_it_str(rq, "form.metadata.refund_id"));
		if (k == NULL || strcmp(k, want) != 0)
			*keyed = 0;
		n++;
	}
	json_object_put(o);
	return n;
}

/* Waits until every event the Stripe fake made has been delivered. */
static void
webhooks_drained(void)
{
	struct json_object *o, *arr, *ev;
	size_t i;
	int tries, pending = 1;

	for (tries = 0; tries < 200 && pending; tries++) {
		o = pv_fake_call(stripe, "GET", "/__fake/events", NULL);
		ck_assert_ptr_nonnull(o);
		arr = pv_httpc_json_get(o, "events");
		pending = 0;
		for (i = 0; arr != NULL && i < json_object_array_length(arr);
		     i++) {
			ev = json_object_array_get_idx(arr, i);
			if (json_object_array_length(
			        pv_httpc_json_get(ev, "deliveries")) == 0)
				pending = 1;
		}
		json_object_put(o);
		if (pending)
			usleep(25000);
	}
}

/* "refunded_total status payment_status" of an order. */
static const char *
money_state(const struct pv_httpc_server *s, const char *header,
    const char *order)
{
	static char buf[128];
	struct json_object *o = pv_it_order_get(s, header, order);

	snprintf(buf, sizeof(buf), "%s %s %s",
	    pv_it_str(o, "order.refunded_total"), pv_it_str(o, "order.status"),
	    pv_it_str(o, "order.payment_status"));
	json_object_put(o);
	return buf;
}

static int
refund_events(const struct pv_httpc_server *s, const char *header,
    const char *order, const char *type)
{
	struct json_object *o = pv_it_order_get(s, header, order);
	int n = pv_it_events_of(o, type);

	json_object_put(o);
	return n;
}

/* A paid order of qty mugs at w (19.99 each, $5 shipping, 8.875 % tax). */
static void
paid(const struct pv_httpc_server *s, struct shop *w, const char *qty,
    char *order)
{
	struct json_object *o;

	pv_it_create(s, w->a, w->m, w->mug, qty, "US", order);
	o = pv_it_pay(s, w->a, order, "pm_card_visa", 200);
	ck_assert_str_eq(pv_it_str(o, "payment_status"), "succeeded");
	json_object_put(o);
}

START_TEST(test_refunds_30_30_40_then_409)
{
	struct shop w;
	struct json_object *o;
	char order[32], pi[64];
	long sum;
	int keyed;

	for (size_t k = 0; k < 2; k++) {
		const struct pv_httpc_server *s = &servers[k];

		shop_make(&w, s);
		/* 5 mugs: 99.95 + 5.00 + 8.87 tax = 113.82. */
		paid(s, &w, "5", order);
		intent_of(s, w.a, order, pi, sizeof(pi));
		refund_ok(s, w.a, order, "34.15", "34.15",
		    "partially_refunded");
		refund_ok(s, w.a, order, "34.15", "68.30",
		    "partially_refunded");
		ck_assert_str_eq(money_state(s, w.a, order),
		    "68.30 partially_refunded partially_refunded");
		refund_ok(s, w.a, order, "45.52", "113.82", "refunded");
		ck_assert_str_eq(money_state(s, w.a, order),
		    "113.82 refunded refunded");
		ck_assert_int_eq(stripe_refunds(pi, &sum), 3);
		ck_assert_int_eq(sum, 11382);
		ck_assert_int_eq(refund_requests(order, &keyed), 3);
		ck_assert_msg(keyed, "a refund without its own key");
		/* A fourth, of anything: 409, nothing sent. */
		o = refund(s, w.a, order, "{\"amount\": \"0.01\"}", 409);
		ck_assert_str_eq(pv_it_str(o, "error.type"), "conflict");
		json_object_put(o);
		o = refund(s, w.a, order, NULL, 409);
		json_object_put(o);
		ck_assert_int_eq(stripe_refunds(pi, NULL), 3);
		/* Stripe's webhooks for our refunds: matched, not added. */
		webhooks_drained();
		ck_assert_str_eq(money_state(s, w.a, order),
		    "113.82 refunded refunded");
		ck_assert_int_eq(refund_events(s, w.a, order, "refund.created"),
		    3);
		ck_assert_int_eq(refund_events(s, w.a, order,
		                     "refund.succeeded"),
		    3);
		ck_assert_int_eq(refund_events(s, w.a, order, "order.refunded"),
		    1);
	}
}
END_TEST

struct racer {
	const struct pv_httpc_server *s;
	const char *header, *order;
	long status;
};

static void *
race(void *arg)
{
	struct racer *r = arg;
	char path[128], *url;
	const char *h[3] = { r->header, "Content-Type: application/json",
		NULL };
	const char *body = "{\"amount\": \"42.00\"}";
	struct pv_httpc_resp resp;

	snprintf(path, sizeof(path), "/agent/v1/orders/%s/refund", r->order);
	url = pv_httpc_url(r->s->base, path);
	r->status =
	    pv_httpc_request(&resp, "POST", url, h, body, strlen(body)) == 0 ?
	    resp.status :
	    -1;
	free(url);
	pv_httpc_resp_free(&resp);
	return NULL;
}

START_TEST(test_refunds_two_concurrent_60_percent)
{
	struct shop w;
	struct racer r[2];
	pthread_t t[2];
	char order[32], pi[64];
	long sum;
	int i;

	shop_make(&w, &servers[0]);
	/* 3 mugs: 59.97 + 5.00 + 5.32 = 70.29; 42.00 is 60 %. */
	paid(&servers[0], &w, "3", order);
	intent_of(&servers[0], w.a, order, pi, sizeof(pi));
	for (i = 0; i < 2; i++) {
		r[i].s = &servers[i];
		r[i].header = w.a;
		r[i].order = order;
		r[i].status = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_msg((r[0].status == 200 && r[1].status == 409) ||
	        (r[0].status == 409 && r[1].status == 200),
	    "statuses %ld and %ld", r[0].status, r[1].status);
	ck_assert_int_eq(stripe_refunds(pi, &sum), 1);
	ck_assert_int_eq(sum, 4200);
	ck_assert_str_eq(money_state(&servers[0], w.a, order),
	    "42.00 partially_refunded partially_refunded");
}
END_TEST

START_TEST(test_refunds_500_then_success_refunds_once)
{
	const struct pv_httpc_server *s = &servers[1];
	struct shop w;
	struct json_object *o;
	char order[32], pi[64];
	int keyed;

	shop_make(&w, s);
	paid(s, &w, "1", order);
	intent_of(s, w.a, order, pi, sizeof(pi));
	ck_assert_int_eq(pv_fake_do(stripe, "POST", "/__fake/faults",
	                     "{\"next\": [{\"status\": 500, \"path\":"
	                     " \"/v1/refunds\"}]}"),
	    0);
	/* No body: everything (19.99 + 5.00 + 1.77). */
	o = refund(s, w.a, order, NULL, 200);
	ck_assert_str_eq(pv_it_str(o, "refund_amount"), "26.76");
	ck_assert_int_eq(pv_it_num(o, "refund_amount_minor"), 2676);
	ck_assert_str_eq(pv_it_str(o, "original_amount"), "26.76");
	ck_assert(!json_object_get_boolean(pv_httpc_json_get(o, "is_partial")));
	ck_assert_str_eq(pv_it_str(o, "refund_status"), "succeeded");
	ck_assert_str_eq(pv_it_str(o, "new_order_status"), "refunded");
	json_object_put(o);
	ck_assert_int_eq(refund_requests(order, &keyed), 2);
	ck_assert_msg(keyed, "the retry had another Idempotency-Key");
	ck_assert_int_eq(stripe_refunds(pi, NULL), 1);
	webhooks_drained();
	ck_assert_str_eq(money_state(s, w.a, order), "26.76 refunded refunded");
}
END_TEST

START_TEST(test_refunds_dashboard_refund_counted_once)
{
	const struct pv_httpc_server *s = &servers[0];
	struct shop w;
	struct pv_httpc_resp r;
	char order[32], pi[64], form[256], *url;
	const char *h[3] = { "Authorization: Bearer " SK,
		"Content-Type: application/x-www-form-urlencoded", NULL };
	int i;

	shop_make(&w, s);
	paid(s, &w, "3", order);
	intent_of(s, w.a, order, pi, sizeof(pi));
	refund_ok(s, w.a, order, "10.00", "10.00", "partially_refunded");
	/* The merchant refunds 5.29 in Stripe's dashboard. */
	snprintf(form, sizeof(form), "payment_intent=%s&amount=529", pi);
	url = pv_httpc_url(pv_fake_url(stripe), "/v1/refunds");
	ck_assert_int_eq(pv_httpc_request(&r, "POST", url, h, form,
	                     strlen(form)),
	    0);
	free(url);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	pv_httpc_resp_free(&r);
	webhooks_drained();
	for (i = 0; i < 100 &&
	     strcmp(money_state(s, w.a, order),
	         "15.29 partially_refunded "
	         "partially_refunded") != 0;
	     i++)
		usleep(20000);
	ck_assert_str_eq(money_state(s, w.a, order),
	    "15.29 partially_refunded partially_refunded");
	ck_assert_int_eq(refund_events(s, w.a, order, "refund.created"), 2);
	/* What is left is what the agent can still refund. */
	refund_ok(s, w.a, order, "55.00", "70.29", "refunded");
	webhooks_drained();
	ck_assert_str_eq(money_state(s, w.a, order), "70.29 refunded refunded");
	ck_assert_int_eq(stripe_refunds(pi, NULL), 3);
}
END_TEST

START_TEST(test_refunds_by_items_and_shipping)
{
	const struct pv_httpc_server *s = &servers[1];
	struct shop w;
	struct json_object *o;
	char order[32], body[256];

	shop_make(&w, s);
	paid(s, &w, "3", order);
	/* One mug with its tax share (19.99 + 1.77) and the shipping. */
	snprintf(body, sizeof(body),
	    "{\"items\": [{\"product_id\": \"%s\", \"quantity\": 1}],"
	    " \"include_shipping\": true, \"reason\": \"arrived broken\"}",
	    w.mug);
	o = refund(s, w.a, order, body, 200);
	ck_assert_str_eq(pv_it_str(o, "refund_amount"), "26.76");
	ck_assert(json_object_get_boolean(pv_httpc_json_get(o, "is_partial")));
	json_object_put(o);
	/* Three more mugs than are left: 409. */
	snprintf(body, sizeof(body),
	    "{\"items\": [{\"product_id\": \"%s\", \"quantity\": 3}]}", w.mug);
	o = refund(s, w.a, order, body, 409);
	json_object_put(o);
	snprintf(body, sizeof(body),
	    "{\"items\": [{\"product_id\": \"%s\", \"quantity\": 2}]}", w.mug);
	o = refund(s, w.a, order, body, 200);
	ck_assert_str_eq(pv_it_str(o, "refunded_total"), "70.29");
	ck_assert_str_eq(pv_it_str(o, "new_order_status"), "refunded");
	json_object_put(o);
	snprintf(body, sizeof(body),
	    "{\"items\": [{\"product_id\": \"prod_nope\", \"quantity\": 1}]}");
	o = refund(s, w.a, order, body, 400);
	ck_assert_str_eq(pv_it_str(o, "error.param"), "items[0].product_id");
	json_object_put(o);
}
END_TEST

START_TEST(test_refunds_bad_requests_change_nothing)
{
	const struct pv_httpc_server *s = &servers[0];
	static const char *const bad[] = { "{\"amount\": \"-5.00\"}",
		"{\"amount\": \"abc\"}", "{\"amount\": \"0\"}",
		"{\"amount\": \"0.00\"}", "{\"amount\": \"1.001\"}",
		"{\"amount\": true}", "{\"amount\": \"5\", \"items\": []}",
		"{\"amount\": \"1.00\", \"colour\": \"red\"}", "[1]",
		"{\"reason\": 5}", NULL };
	struct shop w;
	struct json_object *o;
	char unpaid[32], order[32], pi[64];
	int i, keyed;

	shop_make(&w, s);
	pv_it_create(s, w.a, w.m, w.mug, "1", "US", unpaid);
	o = refund(s, w.a, unpaid, NULL, 409);
	ck_assert_str_eq(pv_it_str(o, "error.type"), "conflict");
	json_object_put(o);
	o = refund(s, w.a, unpaid, "{\"amount\": \"1.00\"}", 409);
	json_object_put(o);
	pv_it_order_is(s, w.a, unpaid, "pending", "unpaid");
	paid(s, &w, "1", order);
	intent_of(s, w.a, order, pi, sizeof(pi));
	/* Another agent's order, and a missing one: 404 alike. */
	o = refund(s, w.b, order, NULL, 404);
	ck_assert_str_eq(pv_it_str(o, "error.type"), "not_found");
	json_object_put(o);
	o = refund(s, w.b, "ORD_0000000000000000", NULL, 404);
	json_object_put(o);
	for (i = 0; bad[i] != NULL; i++) {
		o = refund(s, w.a, order, bad[i], 400);
		ck_assert_str_eq(pv_it_str(o, "error.type"),
		    "invalid_request_error");
		json_object_put(o);
	}
	o = refund(s, w.a, order, "{\"amount\": \"26.77\"}", 409);
	json_object_put(o);
	ck_assert_str_eq(money_state(s, w.a, order), "0.00 paid succeeded");
	ck_assert_int_eq(refund_requests(order, &keyed), 0);
	ck_assert_int_eq(stripe_refunds(pi, NULL), 0);
}
END_TEST

START_TEST(test_refunds_cancel_before_and_after_payment)
{
	const struct pv_httpc_server *s = &servers[1];
	struct shop w;
	struct json_object *o;
	char first[32], second[32], path[128];

	shop_make(&w, s);
	/* The one lantern, held by A; B cannot have it until A cancels. */
	pv_it_create(s, w.a, w.m, w.lantern, "1", "US", first);
	o = pv_it_call(s, w.b, NULL, "POST", "/agent/v1/orders/create",
	    pv_it_order_body(w.m, w.lantern, "1", "US", NULL), 409);
	json_object_put(o);
	snprintf(path, sizeof(path), "/agent/v1/orders/%s/cancel", first);
	o = pv_it_call(s, w.a, NULL, "POST", path, "", 200);
	ck_assert_str_eq(pv_it_str(o, "order_status"), "cancelled");
	json_object_put(o);
	pv_it_create(s, w.b, w.m, w.lantern, "1", "US", second);
	o = pv_it_pay(s, w.b, second, "pm_card_visa", 200);
	json_object_put(o);
	snprintf(path, sizeof(path), "/agent/v1/orders/%s/cancel", second);
	o = pv_it_call(s, w.b, NULL, "POST", path, "", 409);
	ck_assert_msg(strstr(pv_it_str(o, "detail"), "/refund") != NULL,
	    "the 409 does not point to refund: %s", pv_it_str(o, "detail"));
	json_object_put(o);
	o = refund(s, w.a, first, NULL, 409);
	json_object_put(o);
	pv_it_order_is(s, w.b, second, "paid", "succeeded");
}
END_TEST

/* Runs pivota-worker --once with retries due at once; its status. */
static int
worker_once(void)
{
	char path[512];
	const char *argv[] = { path, "--once", "--id", "refund-test",
		"--backoff-base", "1", "--backoff-cap", "1", NULL };

	ck_assert_int_lt(snprintf(path, sizeof(path), "%s/bin/pivota-worker",
	                     getenv("PV_BUILD_DIR")),
	    (int)sizeof(path));
	return pv_proc_run(argv);
}

/* The Shopify fake's refunds of order gid (NULL: all); JSON, caller puts. */
static struct json_object *
shopify_refunds(struct pv_fake *shop, const char *gid)
{
	char path[160];

	snprintf(path, sizeof(path), "/__fake/refunds%s%s",
	    gid != NULL ? "?order=" : "", gid != NULL ? gid : "");
	return pv_fake_call(shop, "GET", path, NULL);
}

static size_t
count_of(struct json_object *o, const char *path)
{
	struct json_object *a = pv_httpc_json_get(o, path);

	ck_assert_ptr_nonnull(a);
	return json_object_array_length(a);
}

/* Runs the worker until the fake holds n refunds of gid (or gives up). */
static void
worker_until(struct pv_fake *shop, const char *gid, size_t n)
{
	struct json_object *o;
	size_t have = 0;
	int i;

	for (i = 0; i < 20; i++) {
		ck_assert_int_eq(worker_once(), 0);
		o = shopify_refunds(shop, gid);
		have = count_of(o, "refunds");
		json_object_put(o);
		if (have >= n)
			break;
		usleep(100000);
	}
	ck_assert_int_eq(have, n);
}

/*
 * Makes the queued jobs of kind due now, as if their delay had passed
 * (the test's only use of the database behind the servers).
 */
static void
jobs_due(const char *kind)
{
	const char *p[1] = { kind };
	PGconn *db = PQconnectdb(getenv("PIVOTA_DATABASE_URL"));
	PGresult *res;

	ck_assert_msg(PQstatus(db) == CONNECTION_OK, "%s", PQerrorMessage(db));
	res = PQexecParams(db,
	    "UPDATE jobs SET run_at = now() WHERE kind = $1"
	    " AND state = 'queued'",
	    1, NULL, p, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s",
	    PQerrorMessage(db));
	ck_assert_str_eq(PQcmdTuples(res), "1");
	PQclear(res);
	PQfinish(db);
}

START_TEST(test_refunds_unknown_outcome_redriven_once)
{
	const struct pv_httpc_server *s = &servers[1];
	struct shop w;
	struct json_object *o;
	char order[32], pi[64];
	int keyed;

	shop_make(&w, s);
	paid(s, &w, "1", order);
	intent_of(s, w.a, order, pi, sizeof(pi));
	/* Refunded, the answer lost: the retry gets Stripe's replay. */
	ck_assert_int_eq(
	    pv_fake_do(stripe, "POST", "/__fake/faults",
	        "{\"next\": [{\"kind\": \"hangup_after\", \"path\":"
	        " \"/v1/refunds\"}]}"),
	    0);
	refund_ok(s, w.a, order, "6.76", "6.76", "partially_refunded");
	ck_assert_int_eq(refund_requests(order, &keyed), 2);
	ck_assert_int_eq(stripe_refunds(pi, NULL), 1);
	/* Stripe down for every try: the outcome is unknown. */
	ck_assert_int_eq(pv_fake_do(stripe, "POST", "/__fake/faults",
	                     "{\"next\": [{\"status\": 500, \"path\":"
	                     " \"/v1/refunds\"}, {\"status\": 500, \"path\":"
	                     " \"/v1/refunds\"}, {\"status\": 500, \"path\":"
	                     " \"/v1/refunds\"}]}"),
	    0);
	o = refund(s, w.a, order, "{\"amount\": \"5.00\"}", 200);
	ck_assert_str_eq(pv_it_str(o, "refund_status"), "pending");
	ck_assert_str_eq(pv_it_str(o, "refunded_total"), "6.76");
	json_object_put(o);
	ck_assert_int_eq(pv_fake_do(stripe, "POST", "/__fake/faults",
	                     "{\"clear\": true}"),
	    0);
	ck_assert_int_eq(stripe_refunds(pi, NULL), 1);
	ck_assert_str_eq(money_state(s, w.a, order),
	    "6.76 partially_refunded partially_refunded");
	/* The pending refund holds its amount meanwhile. */
	o = refund(s, w.a, order, "{\"amount\": \"15.01\"}", 409);
	json_object_put(o);
	/* The worker asks again with the same key. */
	jobs_due("refund.redrive");
	ck_assert_int_eq(worker_once(), 0);
	ck_assert_str_eq(money_state(s, w.a, order),
	    "11.76 partially_refunded partially_refunded");
	ck_assert_int_eq(refund_requests(order, &keyed), 6);
	ck_assert_msg(keyed, "a retry had another Idempotency-Key");
	ck_assert_int_eq(stripe_refunds(pi, NULL), 2);
	/* Stripe's webhooks for both: matched, nothing more. */
	webhooks_drained();
	ck_assert_str_eq(money_state(s, w.a, order),
	    "11.76 partially_refunded partially_refunded");
	ck_assert_int_eq(refund_events(s, w.a, order, "refund.created"), 2);
	ck_assert_int_eq(refund_events(s, w.a, order, "refund.succeeded"), 2);
}
END_TEST

/* Polls the order until money_state() is want (or gives up). */
static void
money_state_becomes(const struct pv_httpc_server *s, const char *header,
    const char *order, const char *want)
{
	int i;

	for (i = 0; i < 200 && strcmp(money_state(s, header, order), want) != 0;
	     i++)
		usleep(25000);
	ck_assert_str_eq(money_state(s, header, order), want);
}

/*
 * An Adyen refund's answer: pending with nothing counted yet, or, when
 * the webhook came first, succeeded with refunded_total total.
 */
static void
settled_or_pending(struct json_object *o, const char *total)
{
	const char *st = pv_it_str(o, "refund_status");

	if (strcmp(st, "pending") == 0)
		ck_assert_str_ne(pv_it_str(o, "refunded_total"), total);
	else {
		ck_assert_str_eq(st, "succeeded");
		ck_assert_str_eq(pv_it_str(o, "refunded_total"), total);
	}
}

START_TEST(test_refunds_adyen_pending_then_webhook)
{
	const struct pv_httpc_server *s = &servers[0];
	/* Its own pspReferences: the orders suite's fake used the first. */
	struct pv_fake *ady = pv_fake_start("tests/fakes/fake_adyen.py",
	    (const char *const[]){ "--psp-base", "8816700000000000", NULL });
	struct json_object *o, *cfgj;
	char m[32], mug[48], key[128], out[4096], order[32], body[512];
	char base[128];

	ck_assert_ptr_nonnull(ady);
	cfgj = pv_fake_call(ady, "POST", "/__fake/config", "{}");
	ck_assert_ptr_nonnull(cfgj);
	pv_it_merchant("USD", "usd.jsonl", m, sizeof(m));
	snprintf(base, sizeof(base), "%s/v71", pv_fake_url(ady));
	ck_assert_msg(pv_proc_ctl(out, sizeof(out), "merchant", "connect-adyen",
	                  m, "--api-key", pv_it_str(cfgj, "api_key"),
	                  "--merchant-account",
	                  pv_it_str(cfgj, "merchant_account"), "--hmac-key",
	                  pv_it_str(cfgj, "hmac_key"), "--api-base", base,
	                  "--json", NULL) == 0,
	    "connect-adyen: %s", out);
	json_object_put(cfgj);
	snprintf(body, sizeof(body),
	    "{\"webhook_url\": \"%s/webhooks/adyen/%s\"}", s->base, m);
	ck_assert_int_eq(pv_fake_do(ady, "POST", "/__fake/config", body), 0);
	pv_it_agent(m, key, sizeof(key));
	pv_it_find(s, key, m, "mug", mug, sizeof(mug));
	pv_it_create(s, key, m, mug, "1", "US", order);
	o = pv_it_pay(s, key, order, "adyen_test_APPROVED", 200);
	ck_assert_str_eq(pv_it_str(o, "payment_status"), "succeeded");
	json_object_put(o);
	/*
	 * Adyen answers "received": pending until its REFUND webhook, which
	 * the fake sends at once, so it may beat our own answer.
	 */
	o = refund(s, key, order,
	    "{\"amount\": \"10.00\", \"reason\": \"fraud on the card\"}", 200);
	settled_or_pending(o, "10.00");
	json_object_put(o);
	money_state_becomes(s, key, order,
	    "10.00 partially_refunded partially_refunded");
	o = refund(s, key, order, NULL, 200);
	ck_assert_str_eq(pv_it_str(o, "refund_amount"), "9.99");
	settled_or_pending(o, "19.99");
	ck_assert_str_eq(pv_it_str(o, "new_order_status"), "refunded");
	json_object_put(o);
	money_state_becomes(s, key, order, "19.99 refunded refunded");
	ck_assert_int_eq(refund_events(s, key, order, "refund.created"), 2);
	ck_assert_int_eq(refund_events(s, key, order, "refund.succeeded"), 2);
	pv_fake_stop(ady);
}
END_TEST

START_TEST(test_refunds_idempotent_replay)
{
	const struct pv_httpc_server *s = &servers[0];
	struct shop w;
	struct json_object *o;
	char order[32], pi[64], idem[96], path[128], first[40];

	shop_make(&w, s);
	paid(s, &w, "1", order);
	intent_of(s, w.a, order, pi, sizeof(pi));
	snprintf(idem, sizeof(idem), "Idempotency-Key: rf-%ld-%s",
	    (long)getpid(), order);
	snprintf(path, sizeof(path), "/agent/v1/orders/%s/refund", order);
	o = pv_it_call(s, w.a, idem, "POST", path, "{\"amount\": \"2.00\"}",
	    200);
	snprintf(first, sizeof(first), "%s", pv_it_str(o, "refund_id"));
	json_object_put(o);
	/* The same key again, on the other server: the same refund. */
	o = pv_it_call(&servers[1], w.a, idem, "POST", path,
	    "{\"amount\": \"2.00\"}", 200);
	ck_assert_str_eq(pv_it_str(o, "refund_id"), first);
	json_object_put(o);
	/* The same key with another body: 422. */
	o = pv_it_call(s, w.a, idem, "POST", path, "{\"amount\": \"3.00\"}",
	    422);
	json_object_put(o);
	ck_assert_int_eq(stripe_refunds(pi, NULL), 1);
	ck_assert_str_eq(money_state(s, w.a, order),
	    "2.00 partially_refunded partially_refunded");
}
END_TEST

START_TEST(test_refunds_mirrored_to_shopify_once)
{
	const struct pv_httpc_server *s = &servers[0];
	struct pv_fake *shop;
	struct json_object *o, *r, *li;
	char out[8192], m[32], domain[64], body[256], a[128], order[32];
	char product[48], gid[64];
	int i;

	shop = pv_fake_start("tests/fakes/fake_shopify.py",
	    (const char *const[]){ "--token", SHOP_TOKEN, "--count", "3",
	        NULL });
	ck_assert_msg(shop != NULL, "the Shopify fake did not start");
	pv_it_merchant("USD", "usd.jsonl", m, sizeof(m));
	snprintf(domain, sizeof(domain), "r%s.myshopify.com", m + 4);
	snprintf(body, sizeof(body), "{\"shop\": \"%s\"}", domain);
	ck_assert_int_eq(pv_fake_do(shop, "POST", "/__fake/config", body), 0);
	ck_assert_msg(pv_proc_ctl(out, sizeof(out), "merchant",
	                  "connect-shopify", m, "--shop", domain, "--token",
	                  SHOP_TOKEN, "--api-base", pv_fake_url(shop), "--json",
	                  NULL) == 0,
	    "connect-shopify: %s", out);
	pv_it_connect_stripe(stripe, m);
	pv_it_stripe_webhooks_to(stripe, s, m, 0);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "sync-products", m,
	                     "--json", NULL),
	    0);
	for (i = 0; i < 10; i++) {
		ck_assert_int_eq(worker_once(), 0);
		ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "sync-products",
		                     m, "--status", "--json", NULL),
		    0);
		if (strstr(out, "\"done\"") != NULL)
			break;
	}
	ck_assert_msg(strstr(out, "\"done\"") != NULL, "sync: %s", out);
	pv_it_agent(m, a, sizeof(a));
	/* "No. 3": the synced product with Shopify variant ids. */
	pv_it_find(s, a, m, "3", product, sizeof(product));
	pv_it_create(s, a, m, product, "2", "US", order);
	o = pv_it_pay(s, a, order, "pm_card_visa", 200);
	json_object_put(o);
	/* The worker pushes the order to the store. */
	for (i = 0; i < 10; i++) {
		ck_assert_int_eq(worker_once(), 0);
		o = pv_it_order_get(s, a, order);
		if (pv_httpc_json_str(o, "order.platform_order_id") != NULL) {
			snprintf(gid, sizeof(gid), "%s",
			    pv_it_str(o, "order.platform_order_id"));
			json_object_put(o);
			break;
		}
		json_object_put(o);
	}
	ck_assert_msg(i < 10, "the order was never pushed");
	pv_it_order_is(s, a, order, "processing", "succeeded");
	/* One unit by items, then an amount, then the rest. */
	snprintf(body, sizeof(body),
	    "{\"items\": [{\"product_id\": \"%s\", \"quantity\": 1}]}",
	    product);
	o = refund(s, a, order, body, 200);
	ck_assert_str_eq(pv_it_str(o, "new_order_status"),
	    "partially_refunded");
	json_object_put(o);
	worker_until(shop, gid, 1);
	o = refund(s, a, order, "{\"amount\": \"1.00\"}", 200);
	json_object_put(o);
	o = refund(s, a, order, NULL, 200);
	ck_assert_str_eq(pv_it_str(o, "new_order_status"), "refunded");
	json_object_put(o);
	worker_until(shop, gid, 3);
	/* More worker runs mirror nothing twice. */
	ck_assert_int_eq(worker_once(), 0);
	ck_assert_int_eq(worker_once(), 0);
	o = shopify_refunds(shop, gid);
	ck_assert_int_eq(count_of(o, "refunds"), 3);
	r = json_object_array_get_idx(pv_httpc_json_get(o, "refunds"), 0);
	ck_assert_int_eq(count_of(r, "refundLineItems"), 1);
	li = json_object_array_get_idx(pv_httpc_json_get(r, "refundLineItems"),
	    0);
	ck_assert_int_eq(pv_it_num(li, "quantity"), 1);
	ck_assert_str_eq(pv_it_str(li, "restockType"), "NO_RESTOCK");
	ck_assert(strstr(pv_it_str(r, "note"), "ref_") != NULL);
	r = json_object_array_get_idx(pv_httpc_json_get(o, "refunds"), 1);
	ck_assert_int_eq(pv_it_num(r, "amountMinor"), 100);
	ck_assert_int_eq(count_of(r, "refundLineItems"), 0);
	json_object_put(o);
	o = pv_it_order_get(s, a, order);
	ck_assert_str_eq(pv_it_str(o, "order.status"), "refunded");
	ck_assert_str_eq(pv_it_str(o, "order.refunded_total"),
	    pv_it_str(o, "order.total"));
	json_object_put(o);
	pv_fake_stop(shop);
}
END_TEST

Suite *
refunds_suite(void)
{
	Suite *s = suite_create("refunds");
	TCase *tc = tcase_create("refunds");

	tcase_add_unchecked_fixture(tc, start_stripe, stop_stripe);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_refunds_30_30_40_then_409);
	tcase_add_test(tc, test_refunds_two_concurrent_60_percent);
	tcase_add_test(tc, test_refunds_500_then_success_refunds_once);
	tcase_add_test(tc, test_refunds_dashboard_refund_counted_once);
	tcase_add_test(tc, test_refunds_by_items_and_shipping);
	tcase_add_test(tc, test_refunds_bad_requests_change_nothing);
	tcase_add_test(tc, test_refunds_cancel_before_and_after_payment);
	tcase_add_test(tc, test_refunds_unknown_outcome_redriven_once);
	tcase_add_test(tc, test_refunds_adyen_pending_then_webhook);
	tcase_add_test(tc, test_refunds_idempotent_replay);
	tcase_add_test(tc, test_refunds_mirrored_to_shopify_once);
	suite_add_tcase(s, tc);
	return s;
}
