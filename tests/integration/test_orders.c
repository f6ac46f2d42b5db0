/*
 * Orders and payments through the real servers (issue 5): merchants
 * connected with the real pivotactl to the loopback Stripe and Adyen
 * fakes (tests/fakes), catalogs imported, shipping and tax rules set;
 * then search, validate, create, pay (success, decline, 3-D Secure
 * completed by the fake's signed webhook), provider faults (500 then
 * success, charged then hung up) with one PaymentIntent and one
 * Idempotency-Key, webhooks after and twice and forged, money in USD
 * and JPY, bad quantities, tenancy, stock, cancel, idempotent replay.
 *
 * Every test makes its own merchants and agents.  One Stripe fake
 * serves the whole case and is never reset, so its ids stay unique
 * across tests (our payments table keys provider references); each
 * test points its webhooks at its own merchant.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pv_fake.h"
#include "pv_httpc.h"
#include "pv_itshop.h"
#include "pv_proc.h"
#include "pv_test.h"

#define MAX_SERVERS 8
#define FIXTURES    PV_IT_FIXTURES
#define SK          PV_IT_SK
#define WHSEC       PV_IT_WHSEC

static struct pv_httpc_server servers[MAX_SERVERS];
static size_t nservers;
static struct pv_fake *stripe;

static void
start_stripe(void)
{
	stripe = pv_fake_start("tests/fakes/fake_stripe.py", NULL);
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

/* The fake's PaymentIntents made for order (metadata.order_id). */
static int
intents_for(const char *order, char *last, size_t size)
{
	struct json_object *o = pv_fake_call(stripe, "GET", "/__fake/intents",
	                       NULL),
	                   *arr, *pi;
	const char *m;
	size_t i;
	int n = 0;

	ck_assert_ptr_nonnull(o);
	arr = pv_httpc_json_get(o, "intents");
	for (i = 0; i < json_object_array_length(arr); i++) {
		pi = json_object_array_get_idx(arr, i);
		m = pv_httpc_json_str(pi, "metadata.order_id");
		if (m != NULL && strcmp(m, order) == 0) {
			n++;
			if (last != NULL)
				snprintf(last, size, "%s", pv_it_str(pi, "id"));
		}
	}
	json_object_put(o);
	return n;
}

/*
 * The charges sent for order: how many POST /v1/payment_intents, and
 * whether they all carried one Idempotency-Key, copied to key.
 */
static int
charges_for(const char *order, char *key, size_t size, int *same_key)
{
	struct json_object *o = pv_fake_call(stripe, "GET", "/__fake/requests",
	                       NULL),
	                   *arr, *rq;
	char needle[64];
	const char *k, *body;
	size_t i;
	int n = 0;

	ck_assert_ptr_nonnull(o);
	snprintf(needle, sizeof(needle), "metadata[order_id]=%s", order);
	*same_key = 1;
	key[0] = '\0';
	arr = pv_httpc_json_get(o, "requests");
	for (i = 0; i < json_object_array_length(arr); i++) {
		rq = json_object_array_get_idx(arr, i);
		body = pv_httpc_json_str(rq, "body");
		if (strcmp(pv_it_str(rq, "path"), "/v1/payment_intents") != 0 ||
		    body == NULL || strstr(body, needle) == NULL)
			continue;
		k = pv_httpc_json_str(rq, "headers.idempotency-key");
		ck_assert_ptr_nonnull(k);
		if (key[0] == '\0')
			snprintf(key, size, "%s", k);
		else if (strcmp(key, k) != 0)
			*same_key = 0;
		n++;
	}
	json_object_put(o);
	return n;
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

START_TEST(test_orders_search_validate_create_pay)
{
	const struct pv_httpc_server *s = &servers[0];
	struct shop w;
	struct json_object *o, *it;
	char body[1024], order[32], key[128], pi[64], path[128];
	int same;

	shop_make(&w, s);
	snprintf(body, sizeof(body),
	    "{\"merchant_id\": \"%s\", \"items\": [{\"product_id\": \"%s\","
	    " \"quantity\": 3}], \"shipping_country\": \"us\"}",
	    w.m, w.mug);
	o = pv_it_call(s, w.a, NULL, "POST", "/agent/v1/cart/validate", body,
	    200);
	ck_assert(json_object_get_boolean(pv_httpc_json_get(o, "valid")));
	it = json_object_array_get_idx(pv_httpc_json_get(o, "items"), 0);
	ck_assert_str_eq(pv_it_str(it, "unit_price"), "19.99");
	ck_assert_str_eq(pv_it_str(it, "subtotal"), "59.97");
	/* 59.97 + 5.00 shipping + 8.875 % of 59.97 = 5.3223 -> 5.32. */
	ck_assert_str_eq(pv_it_str(o, "pricing.subtotal"), "59.97");
	ck_assert_str_eq(pv_it_str(o, "pricing.shipping_fee"), "5.00");
	ck_assert_str_eq(pv_it_str(o, "pricing.tax"), "5.32");
	ck_assert_str_eq(pv_it_str(o, "pricing.total"), "70.29");
	ck_assert_int_eq(pv_it_num(o, "pricing.total_minor"), 7029);
	ck_assert_str_eq(pv_it_str(o, "pricing.currency"), "USD");
	json_object_put(o);
	o = pv_it_call(s, w.a, NULL, "POST", "/agent/v1/orders/create",
	    pv_it_order_body(w.m, w.mug, "3", "US",
	        ", \"unit_price\": \"19.99\", \"subtotal\": \"59.97\""),
	    200);
	snprintf(order, sizeof(order), "%s", pv_it_str(o, "order_id"));
	ck_assert_int_eq((int)strlen(order), 20);
	ck_assert_str_eq(pv_it_str(o, "total"), "70.29");
	ck_assert_int_eq(pv_it_num(o, "total_minor"), 7029);
	ck_assert_str_eq(pv_it_str(o, "tax"), "5.32");
	ck_assert_str_eq(pv_it_str(o, "payment.psp"), "stripe");
	json_object_put(o);
	o = pv_it_pay(s, w.a, order, "pm_card_visa", 200);
	ck_assert_str_eq(pv_it_str(o, "payment_status"), "succeeded");
	ck_assert_str_eq(pv_it_str(o, "amount"), "70.29");
	ck_assert_str_eq(pv_it_str(o, "psp_used"), "stripe");
	ck_assert_str_eq(pv_it_str(o, "order_id"), order);
	snprintf(path, sizeof(path), "/agent/v1/payments/%s",
	    pv_it_str(o, "payment_id"));
	json_object_put(o);
	o = pv_it_call(s, w.a, NULL, "GET", path, NULL, 200);
	ck_assert_str_eq(pv_it_str(o, "payment.status"), "succeeded");
	ck_assert_str_eq(pv_it_str(o, "payment.amount"), "70.29");
	json_object_put(o);
	o = pv_it_order_get(s, w.a, order);
	ck_assert_str_eq(pv_it_str(o, "order.status"), "paid");
	ck_assert_str_eq(pv_it_str(o, "order.payment_status"), "succeeded");
	ck_assert_ptr_nonnull(pv_httpc_json_str(o, "order.paid_at"));
	ck_assert_int_eq(pv_it_events_of(o, "order.paid"), 1);
	json_object_put(o);
	/* Exactly one PaymentIntent, for the whole amount, keyed by us. */
	ck_assert_int_eq(intents_for(order, pi, sizeof(pi)), 1);
	ck_assert_int_eq(charges_for(order, key, sizeof(key), &same), 1);
	ck_assert_msg(strncmp(key, "pivota-charge-pay_", 18) == 0, "key %s",
	    key);
	/* The same payment again (a retry whose answer was lost) gets the
	 * same answer, charging nothing; another card is refused; so is
	 * cancelling. */
	o = pv_it_pay(s, w.a, order, "pm_card_visa", 200);
	ck_assert_str_eq(pv_it_str(o, "payment_status"), "succeeded");
	ck_assert_str_eq(pv_it_str(o, "payment_intent_id"), pi);
	json_object_put(o);
	o = pv_it_pay(s, w.a, order, "pm_card_mastercard", 409);
	ck_assert_str_eq(pv_it_str(o, "error.code"), "order_already_paid");
	json_object_put(o);
	snprintf(path, sizeof(path), "/agent/v1/orders/%s/cancel", order);
	o = pv_it_call(s, w.a, NULL, "POST", path, "{}", 409);
	ck_assert_str_eq(pv_it_str(o, "error.type"), "conflict");
	json_object_put(o);
	ck_assert_int_eq(intents_for(order, NULL, 0), 1);
}
END_TEST

START_TEST(test_orders_decline_then_success)
{
	const struct pv_httpc_server *s = &servers[1];
	struct shop w;
	struct json_object *o;
	char order[32];

	shop_make(&w, s);
	pv_it_create(s, w.a, w.m, w.mug, "1", "US", order);
	/* A token the provider does not know: 400, the order untouched. */
	o = pv_it_pay(s, w.a, order, "pm_card_nonsense", 400);
	ck_assert_str_eq(pv_it_str(o, "error.param"), "payment_method.token");
	json_object_put(o);
	pv_it_order_is(s, w.a, order, "pending", "unpaid");
	o = pv_it_pay(s, w.a, order, "pm_card_chargeDeclined", 402);
	ck_assert_str_eq(pv_it_str(o, "status"), "error");
	ck_assert_str_eq(pv_it_str(o, "error.type"), "payment_error");
	ck_assert_str_eq(pv_it_str(o, "decline_code"), "generic_decline");
	ck_assert_ptr_nonnull(pv_httpc_json_str(o, "detail"));
	json_object_put(o);
	pv_it_order_is(s, w.a, order, "payment_failed", "failed");
	o = pv_it_pay(s, w.a, order, "pm_card_visa", 200);
	ck_assert_str_eq(pv_it_str(o, "payment_status"), "succeeded");
	json_object_put(o);
	o = pv_it_order_get(s, w.a, order);
	ck_assert_str_eq(pv_it_str(o, "order.status"), "paid");
	ck_assert_int_eq(pv_it_events_of(o, "order.paid"), 1);
	ck_assert_int_eq(pv_it_events_of(o, "order.payment_failed"), 1);
	json_object_put(o);
}
END_TEST

/* Polls the order until it is status (at most about 5 s). */
static void
wait_for(const struct pv_httpc_server *s, const char *header, const char *order,
    const char *status)
{
	struct json_object *o;
	int i, done = 0;

	for (i = 0; i < 100 && !done; i++) {
		o = pv_it_order_get(s, header, order);
		done = strcmp(pv_it_str(o, "order.status"), status) == 0;
		json_object_put(o);
		if (!done)
			usleep(50000);
	}
	ck_assert_msg(done, "order %s never became %s", order, status);
}

START_TEST(test_orders_3ds_completed_by_webhook)
{
	const struct pv_httpc_server *s = &servers[0];
	struct shop w;
	struct json_object *o;
	char order[32], pi[64], body[128];

	shop_make(&w, s);
	pv_it_create(s, w.a, w.m, w.mug, "2", "US", order);
	o = pv_it_pay(s, w.a, order, "pm_card_authenticationRequired", 200);
	ck_assert_str_eq(pv_it_str(o, "payment_status"), "requires_action");
	ck_assert_ptr_nonnull(pv_httpc_json_get(o, "next_action"));
	ck_assert_ptr_nonnull(pv_httpc_json_str(o, "next_action.type"));
	snprintf(pi, sizeof(pi), "%s", pv_it_str(o, "payment_intent_id"));
	json_object_put(o);
	pv_it_order_is(s, w.a, order, "pending", "requires_action");
	/* Another card while the customer authenticates: in progress. */
	o = pv_it_pay(s, w.a, order, "pm_card_visa", 409);
	json_object_put(o);
	snprintf(body, sizeof(body), "{\"id\": \"%s\"}", pi);
	ck_assert_int_eq(pv_fake_do(stripe, "POST", "/__fake/complete_action",
	                     body),
	    0);
	wait_for(s, w.a, order, "paid");
	o = pv_it_order_get(s, w.a, order);
	ck_assert_str_eq(pv_it_str(o, "order.payment_status"), "succeeded");
	ck_assert_int_eq(pv_it_events_of(o, "order.paid"), 1);
	json_object_put(o);
	ck_assert_int_eq(intents_for(order, NULL, 0), 1);
}
END_TEST

START_TEST(test_orders_500_then_success_charges_once)
{
	const struct pv_httpc_server *s = &servers[1];
	struct shop w;
	struct json_object *o;
	char order[32], key[128];
	int same;

	shop_make(&w, s);
	pv_it_create(s, w.a, w.m, w.mug, "1", "US", order);
	ck_assert_int_eq(pv_fake_do(stripe, "POST", "/__fake/faults",
	                     "{\"next\": [500]}"),
	    0);
	o = pv_it_pay(s, w.a, order, "pm_card_visa", 200);
	ck_assert_str_eq(pv_it_str(o, "payment_status"), "succeeded");
	json_object_put(o);
	ck_assert_int_eq(charges_for(order, key, sizeof(key), &same), 2);
	ck_assert_msg(same, "the retry had another Idempotency-Key");
	ck_assert_int_eq(intents_for(order, NULL, 0), 1);
	o = pv_it_order_get(s, w.a, order);
	ck_assert_str_eq(pv_it_str(o, "order.status"), "paid");
	ck_assert_int_eq(pv_it_events_of(o, "order.paid"), 1);
	json_object_put(o);
}
END_TEST

/* POST /agent/v1/payments that must fail with a 5xx; its status. */
static long
pay_5xx(const struct pv_httpc_server *s, const char *header, const char *order,
    const char *token)
{
	char body[512], *url = pv_httpc_url(s->base, "/agent/v1/payments");
	const char *h[] = { header, "Content-Type: application/json", NULL };
	struct pv_httpc_resp r;
	long st;

	snprintf(body, sizeof(body),
	    "{\"order_id\": \"%s\", \"payment_method\": {\"type\": \"card\","
	    " \"token\": \"%s\"}}",
	    order, token);
	ck_assert_int_eq(pv_httpc_request(&r, "POST", url, h, body,
	                     strlen(body)),
	    0);
	free(url);
	st = r.status;
	ck_assert_msg(st / 100 == 5, "%ld: %s", st, r.body);
	pv_httpc_resp_free(&r);
	return st;
}

START_TEST(test_orders_provider_down_then_retry_charges_once)
{
	const struct pv_httpc_server *s = &servers[0];
	struct shop w;
	struct json_object *o;
	char order[32], key[128];
	int same;

	shop_make(&w, s);
	pv_it_create(s, w.a, w.m, w.mug, "1", "US", order);
	/* Every try of the first request fails: outcome unknown. */
	ck_assert_int_eq(pv_fake_do(stripe, "POST", "/__fake/faults",
	                     "{\"next\": [500, 500, 500]}"),
	    0);
	pay_5xx(s, w.a, order, "pm_card_visa");
	pv_it_order_is(s, w.a, order, "pending", "unpaid");
	/* Another card cannot start a second charge meanwhile. */
	o = pv_it_pay(s, w.a, order, "pm_card_mastercard", 409);
	json_object_put(o);
	/* The same card re-drives the same attempt, same key. */
	o = pv_it_pay(s, w.a, order, "pm_card_visa", 200);
	ck_assert_str_eq(pv_it_str(o, "payment_status"), "succeeded");
	json_object_put(o);
	ck_assert_int_eq(charges_for(order, key, sizeof(key), &same), 4);
	ck_assert_msg(same, "a retry had another Idempotency-Key");
	ck_assert_int_eq(intents_for(order, NULL, 0), 1);
	o = pv_it_order_get(s, w.a, order);
	ck_assert_str_eq(pv_it_str(o, "order.status"), "paid");
	ck_assert_int_eq(pv_it_events_of(o, "order.paid"), 1);
	json_object_put(o);
}
END_TEST

static struct json_object *fake_event(const char *type, const char *object,
    const char *flags);

/*
 * Sends the last charge request made for order to the fake again, as
 * our server sent it (same body, same Idempotency-Key): Stripe did the
 * work but our server never saw the answer.
 */
static void
charge_behind_our_back(const char *order)
{
	struct json_object *o = pv_fake_call(stripe, "GET", "/__fake/requests",
	                       NULL),
	                   *arr, *rq, *last = NULL;
	char needle[64], kh[256], *url;
	const char *h[4], *body;
	struct pv_httpc_resp r;
	size_t i;

	ck_assert_ptr_nonnull(o);
	snprintf(needle, sizeof(needle), "metadata[order_id]=%s", order);
	arr = pv_httpc_json_get(o, "requests");
	for (i = 0; i < json_object_array_length(arr); i++) {
		rq = json_object_array_get_idx(arr, i);
		body = pv_httpc_json_str(rq, "body");
		if (body != NULL && strstr(body, needle) != NULL)
			last = rq;
	}
	ck_assert_ptr_nonnull(last);
	snprintf(kh, sizeof(kh), "Idempotency-Key: %s",
	    pv_it_str(last, "headers.idempotency-key"));
	h[0] = "Authorization: Bearer " SK;
	h[1] = kh;
	h[2] = "Content-Type: application/x-www-form-urlencoded";
	h[3] = NULL;
	url = pv_httpc_url(pv_fake_url(stripe), "/v1/payment_intents");
	body = pv_it_str(last, "body");
	ck_assert_int_eq(pv_httpc_request(&r, "POST", url, h, body,
	                     strlen(body)),
	    0);
	ck_assert_msg(r.status == 200, "%ld: %s", r.status, r.body);
	free(url);
	pv_httpc_resp_free(&r);
	json_object_put(o);
}

START_TEST(test_orders_webhook_before_the_answer)
{
	const struct pv_httpc_server *s = &servers[1];
	struct shop w;
	struct json_object *o;
	char order[32], pi[64], obj[96];

	shop_make(&w, s);
	pv_it_create(s, w.a, w.m, w.mug, "1", "US", order);
	ck_assert_int_eq(pv_fake_do(stripe, "POST", "/__fake/faults",
	                     "{\"next\": [500, 500, 500]}"),
	    0);
	pay_5xx(s, w.a, order, "pm_card_visa");
	/* The charge happened; only its webhook tells us. */
	charge_behind_our_back(order);
	wait_for(s, w.a, order, "paid");
	/* The agent's retry gets the answer it missed: nothing more. */
	ck_assert_int_eq(intents_for(order, pi, sizeof(pi)), 1);
	o = pv_it_pay(s, w.a, order, "pm_card_visa", 200);
	ck_assert_str_eq(pv_it_str(o, "payment_status"), "succeeded");
	ck_assert_str_eq(pv_it_str(o, "payment_intent_id"), pi);
	json_object_put(o);
	ck_assert_int_eq(intents_for(order, NULL, 0), 1);
	snprintf(obj, sizeof(obj), "\"%s\"", pi);
	json_object_put(fake_event("payment_intent.succeeded", obj, NULL));
	o = pv_it_order_get(s, w.a, order);
	ck_assert_str_eq(pv_it_str(o, "order.status"), "paid");
	ck_assert_int_eq(pv_it_events_of(o, "order.paid"), 1);
	ck_assert_int_eq(pv_it_events_of(o, "payment.succeeded"), 1);
	json_object_put(o);
}
END_TEST

/* Sends one fake event about pi (a JSON object text) now. */
static struct json_object *
fake_event(const char *type, const char *object, const char *flags)
{
	char body[8192];
	struct json_object *o;

	snprintf(body, sizeof(body), "{\"type\": \"%s\", \"object\": %s%s}",
	    type, object, flags != NULL ? flags : "");
	o = pv_fake_call(stripe, "POST", "/__fake/webhook", body);
	ck_assert_ptr_nonnull(o);
	return o;
}

/* The HTTP status of delivery i of a /__fake/webhook answer. */
static long
delivered(struct json_object *o, size_t i)
{
	struct json_object *d =
	    json_object_array_get_idx(pv_httpc_json_get(o, "deliveries"), i);

	ck_assert_ptr_nonnull(d);
	return (long)pv_it_num(d, "status");
}

/*
 * A signed success that reports another amount than the attempt
 * charged is not applied: the order stays unpaid and gets a flagged
 * event for a human.
 */
START_TEST(test_orders_webhook_amount_mismatch_flagged)
{
	const struct pv_httpc_server *s = &servers[0];
	struct shop w;
	struct json_object *o, *arr, *e;
	char order[32], obj[512];
	size_t i;
	int flagged = 0;

	shop_make(&w, s);
	pv_it_create(s, w.a, w.m, w.mug, "1", "US", order);
	o = pv_it_pay(s, w.a, order, "pm_card_authenticationRequired", 200);
	ck_assert_str_eq(pv_it_str(o, "payment_status"), "requires_action");
	snprintf(obj, sizeof(obj),
	    "{\"id\": \"%s\", \"object\": \"payment_intent\", \"amount\": 1,"
	    " \"currency\": \"usd\", \"status\": \"succeeded\","
	    " \"metadata\": {\"order_id\": \"%s\"}}",
	    pv_it_str(o, "payment_intent_id"), order);
	json_object_put(o);
	o = fake_event("payment_intent.succeeded", obj, NULL);
	ck_assert_int_eq(delivered(o, 0), 200);
	json_object_put(o);
	o = pv_it_order_get(s, w.a, order);
	ck_assert_str_eq(pv_it_str(o, "order.status"), "pending");
	ck_assert_str_eq(pv_it_str(o, "order.payment_status"),
	    "requires_action");
	arr = pv_httpc_json_get(o, "order.events");
	for (i = 0; i < json_object_array_length(arr); i++) {
		e = json_object_array_get_idx(arr, i);
		if (strcmp(pv_it_str(e, "type"), "payment.amount_mismatch") ==
		        0 &&
		    pv_httpc_json_get(e, "flagged") != NULL)
			flagged++;
	}
	ck_assert_int_eq(flagged, 1);
	json_object_put(o);
}
END_TEST

START_TEST(test_orders_hangup_after_charge_and_late_webhooks)
{
	const struct pv_httpc_server *s = &servers[0];
	struct shop w;
	struct json_object *o, *ev;
	char order[32], key[128], pi[64], obj[96];
	int same;

	shop_make(&w, s);
	pv_it_create(s, w.a, w.m, w.mug, "1", "US", order);
	/* Charged, then the connection drops: the retry gets Stripe's
	 * replay.  The fake's own webhooks race the retry (before). */
	ck_assert_int_eq(pv_fake_do(stripe, "POST", "/__fake/faults",
	                     "{\"next\": [\"hangup_after\"]}"),
	    0);
	o = pv_it_pay(s, w.a, order, "pm_card_visa", 200);
	ck_assert_str_eq(pv_it_str(o, "payment_status"), "succeeded");
	json_object_put(o);
	ck_assert_int_eq(charges_for(order, key, sizeof(key), &same), 2);
	ck_assert(same);
	ck_assert_int_eq(intents_for(order, pi, sizeof(pi)), 1);
	/* After, and twice: nothing further. */
	snprintf(obj, sizeof(obj), "\"%s\"", pi);
	ev = fake_event("payment_intent.succeeded", obj,
	    ", \"duplicate\": true");
	ck_assert_int_eq(delivered(ev, 0), 200);
	ck_assert_int_eq(delivered(ev, 1), 200);
	json_object_put(ev);
	ev = fake_event("payment_intent.payment_failed", obj, NULL);
	ck_assert_int_eq(delivered(ev, 0), 200);
	json_object_put(ev);
	o = pv_it_order_get(s, w.a, order);
	ck_assert_str_eq(pv_it_str(o, "order.status"), "paid");
	ck_assert_str_eq(pv_it_str(o, "order.payment_status"), "succeeded");
	ck_assert_int_eq(pv_it_events_of(o, "order.paid"), 1);
	ck_assert_int_eq(pv_it_events_of(o, "payment.succeeded"), 1);
	ck_assert_int_eq(pv_it_events_of(o, "payment.failed"), 0);
	json_object_put(o);
}
END_TEST

START_TEST(test_orders_webhook_held_then_released)
{
	const struct pv_httpc_server *s = &servers[1];
	struct shop w;
	struct json_object *o, *rel;
	char order[32];

	shop_make(&w, s);
	pv_it_stripe_webhooks_to(stripe, s, w.m, 1);
	pv_it_create(s, w.a, w.m, w.mug, "1", "US", order);
	o = pv_it_pay(s, w.a, order, "pm_card_visa", 200);
	json_object_put(o);
	/* The synchronous answer came first; the events now, reversed. */
	rel = pv_fake_call(stripe, "POST", "/__fake/release",
	    "{\"order\": \"reverse\"}");
	ck_assert_ptr_nonnull(rel);
	ck_assert_int_ge(json_object_array_length(
	                     pv_httpc_json_get(rel, "released")),
	    2);
	json_object_put(rel);
	o = pv_it_order_get(s, w.a, order);
	ck_assert_str_eq(pv_it_str(o, "order.status"), "paid");
	ck_assert_int_eq(pv_it_events_of(o, "order.paid"), 1);
	json_object_put(o);
	pv_it_stripe_webhooks_to(stripe, s, w.m, 0);
}
END_TEST

/* POSTs raw to the merchant's Stripe endpoint with a signature. */
static long
post_hook(const struct pv_httpc_server *s, const char *m, const char *raw,
    const char *sig)
{
	char sh[512], path[128];
	const char *h[] = { sh, "Content-Type: application/json", NULL };
	struct pv_httpc_resp r;
	char *url;
	long st;

	snprintf(sh, sizeof(sh), "Stripe-Signature: %s", sig);
	snprintf(path, sizeof(path), "/webhooks/stripe/%s", m);
	url = pv_httpc_url(s->base, path);
	ck_assert_int_eq(pv_httpc_request(&r, "POST", url, h, raw, strlen(raw)),
	    0);
	free(url);
	st = r.status;
	pv_httpc_resp_free(&r);
	return st;
}

START_TEST(test_orders_forged_webhooks_change_nothing)
{
	const struct pv_httpc_server *s = &servers[0];
	struct shop w;
	struct json_object *o, *ev, *intents, *pi = NULL, *arr;
	char order[32], pid[64], *raw, *p;
	const char *obj;
	size_t i;

	shop_make(&w, s);
	pv_it_create(s, w.a, w.m, w.mug, "1", "US", order);
	o = pv_it_pay(s, w.a, order, "pm_card_authenticationRequired", 200);
	snprintf(pid, sizeof(pid), "%s", pv_it_str(o, "payment_intent_id"));
	json_object_put(o);
	/* The intent as if it had succeeded. */
	intents = pv_fake_call(stripe, "GET", "/__fake/intents", NULL);
	arr = pv_httpc_json_get(intents, "intents");
	for (i = 0; i < json_object_array_length(arr); i++)
		if (strcmp(pv_it_str(json_object_array_get_idx(arr, i), "id"),
		        pid) == 0)
			pi = json_object_array_get_idx(arr, i);
	ck_assert_ptr_nonnull(pi);
	json_object_object_add(pi, "status",
	    json_object_new_string("succeeded"));
	json_object_object_del(pi, "next_action");
	obj = json_object_to_json_string_ext(pi, JSON_C_TO_STRING_PLAIN);
	ev = fake_event("payment_intent.succeeded", obj,
	    ", \"bad_signature\": true");
	ck_assert_int_ge(delivered(ev, 0), 400);
	ck_assert_int_lt(delivered(ev, 0), 500);
	json_object_put(ev);
	ev = fake_event("payment_intent.succeeded", obj, ", \"stale\": true");
	ck_assert_int_ge(delivered(ev, 0), 400);
	ck_assert_int_lt(delivered(ev, 0), 500);
	json_object_put(ev);
	pv_it_order_is(s, w.a, order, "pending", "requires_action");
	/* A good one made but not delivered, then one byte changed. */
	ev = fake_event("payment_intent.succeeded", obj,
	    ", \"url\": \"http://127.0.0.1:1/nowhere\"");
	raw = strdup(pv_it_str(ev, "body"));
	ck_assert_ptr_nonnull(raw);
	p = strstr(raw, "\"succeeded\"");
	ck_assert_ptr_nonnull(p);
	p[1] = 'S';
	ck_assert_int_eq(post_hook(s, w.m, raw, pv_it_str(ev, "signature")) /
	        100,
	    4);
	pv_it_order_is(s, w.a, order, "pending", "requires_action");
	/* Unchanged, the same bytes pass. */
	p[1] = 's';
	ck_assert_int_eq(post_hook(s, w.m, raw, pv_it_str(ev, "signature")),
	    200);
	pv_it_order_is(s, w.a, order, "paid", "succeeded");
	/* No signature at all: refused. */
	ck_assert_int_eq(post_hook(s, w.m, raw, "") / 100, 4);
	free(raw);
	json_object_put(ev);
	json_object_put(intents);
	o = pv_it_order_get(s, w.a, order);
	ck_assert_int_eq(pv_it_events_of(o, "order.paid"), 1);
	json_object_put(o);
}
END_TEST

START_TEST(test_orders_money_usd_and_jpy)
{
	const struct pv_httpc_server *s = &servers[1];
	struct shop w;
	struct json_object *o;
	char jp[32], cup[48], key[128], out[4096], list[80];

	shop_make(&w, s);
	/* Free shipping at 100.00: 6 x 19.99 = 119.94, tax 10.644675. */
	o = pv_it_call(s, w.a, NULL, "POST", "/agent/v1/orders",
	    pv_it_order_body(w.m, w.mug, "6", "US", NULL), 200);
	ck_assert_str_eq(pv_it_str(o, "subtotal"), "119.94");
	ck_assert_str_eq(pv_it_str(o, "shipping_fee"), "0.00");
	ck_assert_str_eq(pv_it_str(o, "tax"), "10.64");
	ck_assert_str_eq(pv_it_str(o, "total"), "130.58");
	ck_assert_int_eq(pv_it_num(o, "total_minor"), 13058);
	ck_assert_str_eq(pv_it_str(o, "currency"), "USD");
	json_object_put(o);
	/* JPY: shipping taxed, 10 % of 1235 + 500 = 173.5, half up 174. */
	pv_it_merchant("JPY", "jpy.jsonl", jp, sizeof(jp));
	pv_it_connect_stripe(stripe, jp);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant",
	                     "set-shipping", jp, "--country", "JP", "--rate",
	                     "500", "--json", NULL),
	    0);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "set-tax",
	                     jp, "--country", "JP", "--rate", "10",
	                     "--shipping-taxable", "--json", NULL),
	    0);
	snprintf(list, sizeof(list), "%s,%s", w.m, jp);
	pv_it_agent(list, key, sizeof(key));
	pv_it_find(s, key, jp, "teacup", cup, sizeof(cup));
	o = pv_it_call(s, key, NULL, "POST", "/agent/v1/orders/create",
	    pv_it_order_body(jp, cup, "1", "JP", NULL), 200);
	ck_assert_str_eq(pv_it_str(o, "subtotal"), "1235");
	ck_assert_str_eq(pv_it_str(o, "shipping_fee"), "500");
	ck_assert_str_eq(pv_it_str(o, "tax"), "174");
	ck_assert_str_eq(pv_it_str(o, "total"), "1909");
	ck_assert_int_eq(pv_it_num(o, "total_minor"), 1909);
	ck_assert_str_eq(pv_it_str(o, "currency"), "JPY");
	json_object_put(o);
	/* Not shipped there: no rule for FR. */
	o = pv_it_call(s, key, NULL, "POST", "/agent/v1/orders/create",
	    pv_it_order_body(jp, cup, "1", "FR", NULL), 400);
	json_object_put(o);
}
END_TEST

/* Asserts a 4xx naming param (and, if given, the error code). */
static void
refused(const struct pv_httpc_server *s, const char *header, const char *body,
    long status, const char *param, const char *code)
{
	struct json_object *o = pv_it_call(s, header, NULL, "POST",
	    "/agent/v1/orders/create", body, status);

	ck_assert_str_eq(pv_it_str(o, "status"), "error");
	ck_assert_msg(pv_httpc_json_str(o, "error.param") != NULL &&
	        strcmp(pv_it_str(o, "error.param"), param) == 0,
	    "names %s, want %s: %s", pv_httpc_json_str(o, "error.param"), param,
	    json_object_to_json_string(o));
	if (code != NULL)
		ck_assert_str_eq(pv_it_str(o, "error.code"), code);
	json_object_put(o);
}

START_TEST(test_orders_bad_input)
{
	const struct pv_httpc_server *s = &servers[0];
	static const char *const qty[] = { "0", "-1", "1000000000000", "2.5",
		"\"2\"", "null", "true" };
	struct shop w, other;
	struct json_object *o;
	char body[2048];
	size_t i;

	shop_make(&w, s);
	for (i = 0; i < sizeof(qty) / sizeof(qty[0]); i++)
		refused(s, w.a,
		    pv_it_order_body(w.m, w.mug, qty[i], "US", NULL), 400,
		    "items[0].quantity", NULL);
	refused(s, w.a,
	    pv_it_order_body(w.m, w.mug, "1", "US",
	        ", \"unit_price\": \"19.98\""),
	    409, "items[0].unit_price", "price_changed");
	refused(s, w.a,
	    pv_it_order_body(w.m, w.mug, "2", "US",
	        ", \"subtotal\": \"19.99\""),
	    409, "items[0].subtotal", "price_changed");
	refused(s, w.a,
	    pv_it_order_body(w.m, w.mug, "1", "US", ", \"colour\": \"red\""),
	    400, "items[0].colour", NULL);
	snprintf(body, sizeof(body), "%s",
	    pv_it_order_body(w.m, w.mug, "1", "US", NULL));
	ck_assert_ptr_nonnull(strrchr(body, '}'));
	snprintf(strrchr(body, '}'), 64, ", \"coupon\": \"X\"}");
	refused(s, w.a, body, 400, "coupon", NULL);
	/* A number is a price claim too, read from its text. */
	o = pv_it_call(s, w.a, NULL, "POST", "/agent/v1/orders/create",
	    pv_it_order_body(w.m, w.mug, "1", "US", ", \"unit_price\": 19.99"),
	    200);
	json_object_put(o);
	/* One Idempotency-Key, another body: 422. */
	o = pv_it_call(s, w.a, "Idempotency-Key: bad-input-1", "POST",
	    "/agent/v1/orders/create",
	    pv_it_order_body(w.m, w.mug, "1", "US", NULL), 200);
	json_object_put(o);
	o = pv_it_call(s, w.a, "Idempotency-Key: bad-input-1", "POST",
	    "/agent/v1/orders/create",
	    pv_it_order_body(w.m, w.mug, "2", "US", NULL), 422);
	json_object_put(o);
	/* Another merchant's product, named at this merchant. */
	shop_make(&other, s);
	refused(s, w.a, pv_it_order_body(w.m, other.mug, "1", "US", NULL), 400,
	    "items[0].product_id", NULL);
	/* A merchant this agent may not buy from. */
	refused(s, w.a, pv_it_order_body(other.m, other.mug, "1", "US", NULL),
	    400, "merchant_id", NULL);
}
END_TEST

START_TEST(test_orders_tenancy)
{
	const struct pv_httpc_server *s = &servers[1];
	struct shop w;
	struct json_object *o;
	char order[32], path[128];

	shop_make(&w, s);
	pv_it_create(s, w.a, w.m, w.mug, "1", "US", order);
	snprintf(path, sizeof(path), "/agent/v1/orders/%s", order);
	o = pv_it_call(s, w.b, NULL, "GET", path, NULL, 404);
	ck_assert_str_eq(pv_it_str(o, "error.type"), "not_found");
	json_object_put(o);
	o = pv_it_call(s, w.b, NULL, "GET",
	    "/agent/v1/orders/ORD_0000000000000000", NULL, 404);
	json_object_put(o);
	o = pv_it_pay(s, w.b, order, "pm_card_visa", 404);
	json_object_put(o);
	snprintf(path, sizeof(path), "/agent/v1/orders/%s/cancel", order);
	o = pv_it_call(s, w.b, NULL, "POST", path, "{}", 404);
	json_object_put(o);
	o = pv_it_call(s, w.b, NULL, "GET", "/agent/v1/orders", NULL, 200);
	ck_assert_int_eq(pv_it_num(o, "pagination.total"), 0);
	json_object_put(o);
	pv_it_order_is(s, w.a, order, "pending", "unpaid");
	ck_assert_int_eq(intents_for(order, NULL, 0), 0);
}
END_TEST

START_TEST(test_orders_stock_cancel_and_replay)
{
	const struct pv_httpc_server *s = &servers[0];
	struct shop w;
	struct json_object *o;
	char first[32], second[32], path[128], idem[96];

	shop_make(&w, s);
	pv_it_create(s, w.a, w.m, w.lantern, "1", "US", first);
	refused(s, w.b, pv_it_order_body(w.m, w.lantern, "1", "US", NULL), 409,
	    "items[0]", "out_of_stock");
	snprintf(path, sizeof(path), "/agent/v1/orders/%s/cancel", first);
	o = pv_it_call(s, w.a, NULL, "POST", path,
	    "{\"reason\": \"changed mind\"}", 200);
	ck_assert_str_eq(pv_it_str(o, "order_status"), "cancelled");
	json_object_put(o);
	pv_it_order_is(s, w.a, first, "cancelled", "unpaid");
	o = pv_it_pay(s, w.a, first, "pm_card_visa", 409);
	json_object_put(o);
	/* The released unit, ordered twice with one Idempotency-Key. */
	snprintf(idem, sizeof(idem), "Idempotency-Key: ord-%ld-%s",
	    (long)getpid(), first);
	o = pv_it_call(s, w.b, idem, "POST", "/agent/v1/orders/create",
	    pv_it_order_body(w.m, w.lantern, "1", "US", NULL), 200);
	snprintf(second, sizeof(second), "%s", pv_it_str(o, "order_id"));
	json_object_put(o);
	o = pv_it_call(s, w.b, idem, "POST", "/agent/v1/orders/create",
	    pv_it_order_body(w.m, w.lantern, "1", "US", NULL), 200);
	ck_assert_str_eq(pv_it_str(o, "order_id"), second);
	json_object_put(o);
	o = pv_it_call(s, w.b, NULL, "GET", "/agent/v1/orders", NULL, 200);
	ck_assert_int_eq(pv_it_num(o, "pagination.total"), 1);
	json_object_put(o);
	o = pv_it_pay(s, w.b, second, "pm_card_visa", 200);
	json_object_put(o);
	snprintf(path, sizeof(path), "/agent/v1/orders/%s/cancel", second);
	o = pv_it_call(s, w.b, NULL, "POST", path, "{}", 409);
	json_object_put(o);
	pv_it_order_is(s, w.b, second, "paid", "succeeded");
}
END_TEST

START_TEST(test_orders_adyen)
{
	const struct pv_httpc_server *s = &servers[1];
	struct pv_fake *ady = pv_fake_start("tests/fakes/fake_adyen.py", NULL);
	struct json_object *o, *cfgj, *hook;
	char m[32], mug[48], key[128], out[4096], order[32], body[2048];
	char hmac[160], psp[64], base[128];

	ck_assert_ptr_nonnull(ady);
	cfgj = pv_fake_call(ady, "POST", "/__fake/config", "{}");
	ck_assert_ptr_nonnull(cfgj);
	snprintf(hmac, sizeof(hmac), "%s", pv_it_str(cfgj, "hmac_key"));
	pv_it_merchant("USD", "usd.jsonl", m, sizeof(m));
	/* Adyen's base URL includes the API version (docs/adyen.md). */
	snprintf(base, sizeof(base), "%s/v71", pv_fake_url(ady));
	ck_assert_msg(pv_proc_ctl(out, sizeof(out), "merchant", "connect-adyen",
	                  m, "--api-key", pv_it_str(cfgj, "api_key"),
	                  "--merchant-account",
	                  pv_it_str(cfgj, "merchant_account"), "--hmac-key",
	                  hmac, "--api-base", base, "--json", NULL) == 0,
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
	ck_assert_str_eq(pv_it_str(o, "psp_used"), "adyen");
	snprintf(psp, sizeof(psp), "%s", pv_it_str(o, "payment_intent_id"));
	json_object_put(o);
	pv_it_order_is(s, key, order, "paid", "succeeded");
	/* The AUTHORISATION webhook, signed by the fake, twice. */
	snprintf(body, sizeof(body),
	    "{\"item\": {\"eventCode\": \"AUTHORISATION\", \"success\":"
	    " \"true\", \"pspReference\": \"%s\", \"merchantReference\":"
	    " \"%s\", \"amount\": {\"value\": 2498, \"currency\": \"USD\"}},"
	    " \"duplicate\": true}",
	    psp, order);
	hook = pv_fake_call(ady, "POST", "/__fake/webhook", body);
	ck_assert_ptr_nonnull(hook);
	ck_assert_msg(strstr(json_object_to_json_string(hook), "[accepted]") !=
	        NULL,
	    "not accepted: %s", json_object_to_json_string(hook));
	json_object_put(hook);
	/* Badly signed: refused. */
	snprintf(body, sizeof(body),
	    "{\"item\": {\"eventCode\": \"AUTHORISATION\", \"success\":"
	    " \"false\", \"pspReference\": \"%s\", \"merchantReference\":"
	    " \"%s\", \"reason\": \"Refused\"}, \"bad_hmac\": true}",
	    psp, order);
	hook = pv_fake_call(ady, "POST", "/__fake/webhook", body);
	ck_assert_ptr_nonnull(hook);
	ck_assert_msg(strstr(json_object_to_json_string(hook), "[accepted]") ==
	        NULL,
	    "accepted: %s", json_object_to_json_string(hook));
	json_object_put(hook);
	o = pv_it_order_get(s, key, order);
	ck_assert_str_eq(pv_it_str(o, "order.status"), "paid");
	ck_assert_int_eq(pv_it_events_of(o, "order.paid"), 1);
	json_object_put(o);
	pv_fake_stop(ady);
}
END_TEST

START_TEST(test_orders_sandbox)
{
	const struct pv_httpc_server *s = &servers[0];
	struct json_object *o;
	char m[32], mug[48], key[128], out[4096], order[32];

	pv_it_merchant("USD", "usd.jsonl", m, sizeof(m));
	ck_assert_msg(pv_proc_ctl(out, sizeof(out), "merchant",
	                  "connect-sandbox", m, "--json", NULL) == 0,
	    "connect-sandbox: %s", out);
	pv_it_agent(m, key, sizeof(key));
	pv_it_find(s, key, m, "mug", mug, sizeof(mug));
	pv_it_create(s, key, m, mug, "1", "US", order);
	o = pv_it_pay(s, key, order, "pm_card_chargeDeclined", 402);
	ck_assert_str_eq(pv_it_str(o, "decline_code"), "generic_decline");
	json_object_put(o);
	o = pv_it_pay(s, key, order, "pm_card_visa", 200);
	ck_assert_str_eq(pv_it_str(o, "payment_status"), "succeeded");
	ck_assert_str_eq(pv_it_str(o, "psp_used"), "sandbox");
	json_object_put(o);
	pv_it_order_is(s, key, order, "paid", "succeeded");
}
END_TEST

/*
 * A product whose first variant is sold out: search (in stock only)
 * names the variant that is in stock as the default, and an order line
 * without variant_id buys that one, not the sold-out first.
 */
START_TEST(test_orders_default_variant_is_in_stock)
{
	const struct pv_httpc_server *s = &servers[0];
	struct json_object *o, *p;
	char m[32], a[160], path[256], product[48], variant[48];

	pv_it_merchant("USD", "variants.jsonl", m, sizeof(m));
	ck_assert_int_eq(pv_proc_ctl(path, sizeof(path), "merchant",
	                     "connect-sandbox", m, "--json", NULL),
	    0);
	pv_it_agent(m, a, sizeof(a));
	snprintf(path, sizeof(path),
	    "/agent/v1/products/search?merchant_id=%s&q=blanket"
	    "&in_stock_only=True",
	    m);
	o = pv_it_call(s, a, NULL, "GET", path, NULL, 200);
	p = json_object_array_get_idx(pv_httpc_json_get(o, "products"), 0);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(pv_it_str(p, "sku"), "O-BLK-BLU");
	ck_assert_str_eq(pv_it_str(p, "price"), "62.00");
	snprintf(product, sizeof(product), "%s", pv_it_str(p, "id"));
	snprintf(variant, sizeof(variant), "%s", pv_it_str(p, "variant_id"));
	json_object_put(o);
	o = pv_it_call(s, a, NULL, "POST", "/agent/v1/orders",
	    pv_it_order_body(m, product, "1", "US", NULL), 200);
	ck_assert_str_eq(pv_it_str(o, "subtotal"), "62.00");
	snprintf(path, sizeof(path), "/agent/v1/orders/%s",
	    pv_it_str(o, "order_id"));
	json_object_put(o);
	o = pv_it_call(s, a, NULL, "GET", path, NULL, 200);
	p = json_object_array_get_idx(pv_httpc_json_get(o, "order.items"), 0);
	ck_assert_str_eq(pv_it_str(p, "variant_id"), variant);
	json_object_put(o);
}
END_TEST

/* Runs sql as the database's superuser (test set-up only). */
static void
admin_sql(const char *sql)
{
	const char *argv[] = { "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
		getenv("PV_PG_ADMIN_URL"), "-c", sql, NULL };

	ck_assert_msg(argv[5] != NULL, "PV_PG_ADMIN_URL is not set");
	ck_assert_int_eq(pv_proc_run(argv), 0);
}

/*
 * A database that cannot write (disk full, SQLSTATE 53100) is a 503
 * naming the request, never a silent success or a 200 with nothing
 * behind it, and nothing is half-written.
 */
START_TEST(test_orders_disk_full_is_503)
{
	const struct pv_httpc_server *s = &servers[0];
	struct json_object *o;
	char path[160];
	struct shop w;

	shop_make(&w, s);
	admin_sql("CREATE OR REPLACE FUNCTION pv_test_disk_full() RETURNS"
	          " trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION"
	          " 'could not extend file: No space left on device'"
	          " USING ERRCODE = 'disk_full'; END $$;"
	          " CREATE TRIGGER pv_test_disk_full BEFORE INSERT ON"
	          " order_items FOR EACH ROW EXECUTE FUNCTION"
	          " pv_test_disk_full()");
	o = pv_it_call(s, w.a, NULL, "POST", "/agent/v1/orders",
	    pv_it_order_body(w.m, w.mug, "1", "US", NULL), 503);
	ck_assert_str_eq(pv_it_str(o, "status"), "error");
	ck_assert_ptr_nonnull(strstr(pv_it_str(o, "detail"), "req_"));
	json_object_put(o);
	admin_sql("DROP TRIGGER pv_test_disk_full ON order_items;"
	          " DROP FUNCTION pv_test_disk_full()");
	/* Nothing was half-written; the next order goes through. */
	snprintf(path, sizeof(path), "/agent/v1/orders?merchant_id=%s", w.m);
	o = pv_it_call(s, w.a, NULL, "GET", path, NULL, 200);
	ck_assert_int_eq(pv_it_num(o, "pagination.total"), 0);
	json_object_put(o);
	o = pv_it_call(s, w.a, NULL, "POST", "/agent/v1/orders",
	    pv_it_order_body(w.m, w.mug, "1", "US", NULL), 200);
	json_object_put(o);
}
END_TEST

/*
 * PostgreSQL crashes (immediate stop) and restarts in the middle of a
 * stream of orders (two threads, each retrying a request with its own
 * Idempotency-Key until it is answered): every key ends as exactly one order,
 * none is lost, none doubled, and the programs reconnect by themselves.
 */
#define LOAD_THREADS 2
#define LOAD_ORDERS  15

struct load {
	const struct pv_httpc_server *s;
	const char *header, *m, *product;
	int thread;
	char ids[LOAD_ORDERS][32];
	int retried; /* answers that were not 200 */
	const char *failure;
};

static void *
load_run(void *arg)
{
	struct load *l = arg;
	const char *h[4];
	char key[96], *url = pv_httpc_url(l->s->base, "/agent/v1/orders");
	const char *body = NULL;
	struct pv_httpc_resp r;
	struct json_object *o;
	int i, tries;

	for (i = 0; i < LOAD_ORDERS && l->failure == NULL; i++) {
		snprintf(key, sizeof(key), "Idempotency-Key: restart-%d-%d-%ld",
		    l->thread, i, (long)getpid());
		h[0] = l->header;
		h[1] = key;
		h[2] = "Content-Type: application/json";
		h[3] = NULL;
		body = pv_it_order_body(l->m, l->product, "1", "US", NULL);
		/* Up to 30 s: PostgreSQL's restart on a busy machine. */
		for (tries = 0; tries < 600; tries++) {
			if (pv_httpc_request(&r, "POST", url, h, body,
			        strlen(body)) == 0 &&
			    r.status == 200)
				break;
			l->retried++;
			pv_httpc_resp_free(&r);
			usleep(50000);
		}
		if (tries == 600) {
			l->failure = "an order was never answered 200";
			break;
		}
		o = pv_httpc_json(&r);
		snprintf(l->ids[i], sizeof(l->ids[i]), "%s",
		    o != NULL && pv_httpc_json_str(o, "order_id") != NULL ?
		        pv_httpc_json_str(o, "order_id") :
		        "");
		json_object_put(o);
		pv_httpc_resp_free(&r);
		usleep(20000);
	}
	free(url);
	return NULL;
}

static int
restart_pg(const char *what)
{
	const char *argv[] = { getenv("PV_PG_CTL"), what, NULL };

	return argv[0] == NULL ? -1 : pv_proc_run(argv);
}

START_TEST(test_orders_postgres_restart_mid_load)
{
	const struct pv_httpc_server *s = &servers[0];
	static struct load l[LOAD_THREADS];
	pthread_t t[LOAD_THREADS];
	struct json_object *o;
	char path[160];
	struct shop w;
	int i, j, k, n = 0, retried = 0;

	ck_assert_msg(getenv("PV_PG_CTL") != NULL, "PV_PG_CTL is not set");
	shop_make(&w, s);
	for (i = 0; i < LOAD_THREADS; i++) {
		memset(&l[i], 0, sizeof(l[i]));
		l[i].s = s;
		l[i].header = w.a;
		l[i].m = w.m;
		l[i].product = w.mug;
		l[i].thread = i;
		ck_assert_int_eq(pthread_create(&t[i], NULL, load_run, &l[i]),
		    0);
	}
	usleep(150000);
	ck_assert_int_eq(restart_pg("crash"), 0);
	usleep(300000);
	ck_assert_int_eq(restart_pg("start"), 0);
	for (i = 0; i < LOAD_THREADS; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_msg(l[i].failure == NULL, "%s", l[i].failure);
		retried += l[i].retried;
	}
	/* The restart was felt, and healed. */
	ck_assert_int_gt(retried, 0);
	for (i = 0; i < LOAD_THREADS; i++)
		for (j = 0; j < LOAD_ORDERS; j++) {
			ck_assert_msg(strncmp(l[i].ids[j], "ORD_", 4) == 0,
			    "no order id for key %d-%d", i, j);
			for (k = 0; k < LOAD_THREADS * LOAD_ORDERS; k++)
				if (k != i * LOAD_ORDERS + j)
					ck_assert_str_ne(l[i].ids[j],
					    l[k / LOAD_ORDERS]
					        .ids[k % LOAD_ORDERS]);
			n++;
		}
	snprintf(path, sizeof(path), "/agent/v1/orders?merchant_id=%s&limit=1",
	    w.m);
	o = pv_it_call(s, w.a, NULL, "GET", path, NULL, 200);
	ck_assert_int_eq(pv_it_num(o, "pagination.total"), n);
	json_object_put(o);
}
END_TEST

Suite *
orders_suite(void)
{
	Suite *s = suite_create("orders");
	TCase *tc = tcase_create("orders");

	tcase_add_unchecked_fixture(tc, start_stripe, stop_stripe);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_orders_search_validate_create_pay);
	tcase_add_test(tc, test_orders_decline_then_success);
	tcase_add_test(tc, test_orders_3ds_completed_by_webhook);
	tcase_add_test(tc, test_orders_500_then_success_charges_once);
	tcase_add_test(tc, test_orders_provider_down_then_retry_charges_once);
	tcase_add_test(tc, test_orders_hangup_after_charge_and_late_webhooks);
	tcase_add_test(tc, test_orders_webhook_amount_mismatch_flagged);
	tcase_add_test(tc, test_orders_webhook_before_the_answer);
	tcase_add_test(tc, test_orders_webhook_held_then_released);
	tcase_add_test(tc, test_orders_forged_webhooks_change_nothing);
	tcase_add_test(tc, test_orders_money_usd_and_jpy);
	tcase_add_test(tc, test_orders_bad_input);
	tcase_add_test(tc, test_orders_tenancy);
	tcase_add_test(tc, test_orders_stock_cancel_and_replay);
	tcase_add_test(tc, test_orders_adyen);
	tcase_add_test(tc, test_orders_sandbox);
	tcase_add_test(tc, test_orders_postgres_restart_mid_load);
	tcase_add_test(tc, test_orders_disk_full_is_503);
	tcase_add_test(tc, test_orders_default_variant_is_in_stock);
	suite_add_tcase(s, tc);
	return s;
}
