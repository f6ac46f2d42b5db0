/*
 * Unit tests of the Adyen adapter (pv_adyen.c) against the loopback
 * fake of tests/fakes/fake_adyen.py: the real adapter, the real libcurl
 * path, a fake Checkout that decides outcomes by holderName, fails on
 * demand, replays idempotent requests and sends signed notifications
 * to a scripted receiver (pv_testsrv).  Webhook verification is also
 * tested on its own with the test vectors of external-apis.md 3.7.
 * Backoff waits are recorded, not slept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pv_adyen.h"
#include "pv_arena.h"
#include "pv_config.h"
#include "pv_fake.h"
#include "pv_http.h"
#include "pv_psp.h"
#include "pv_test.h"
#include "pv_testsrv.h"
#include "pv_upstream.h"

#define FAKE     "tests/fakes/fake_adyen.py"
#define API_KEY  "AQEfake_api_key_0123456789"
#define MERCHANT "PivotaTestMerchant"
#define PUBLIC   "https://pivota.example"
/* external-apis.md 3.7 vectors 2-4 use KEY2; vector 1 uses KEY1. */
#define KEY1 "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00"
#define KEY2 "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
#define PSP1 "8816000000000001" /* the fake's first pspReference */
#define PSP2 "8816000000000002"

static struct pv_fake *fake;
static struct pv_config cfg;
static struct pv_ctx ctx;
static struct pv_psp_account acct;
static int nsleeps;
static char base[96]; /* the fake's URL + "/v71", like Adyen's bases */

static void
test_sleep(void *arg, long ms)
{
	(void)arg;
	(void)ms;
	nsleeps++;
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
setup_ctx(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.env = PV_ENV_TEST;
	cfg.public_url = PUBLIC;
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = &cfg;
	ctx.arena = pv_arena_new(0);
	ctx.up = pv_upstream_new();
	ck_assert_ptr_nonnull(ctx.arena);
	ck_assert_ptr_nonnull(ctx.up);
	pv_upstream_set_sleep(ctx.up, test_sleep, NULL);
	nsleeps = 0;
	memset(&acct, 0, sizeof(acct));
	acct.provider = "adyen";
	acct.merchant_id = "mer_1";
	acct.secret_key = API_KEY;
	acct.merchant_account = MERCHANT;
	acct.webhook_secret = KEY2;
}

static void
setup(void)
{
	ck_assert_ptr_nonnull(fake);
	ctl("POST", "/__fake/reset", NULL);
	setup_ctx();
	acct.api_base = NULL;
	/* The configured base, as a deployment would set it. */
	snprintf(base, sizeof(base), "%s/" PV_ADYEN_API_VERSION,
	    pv_fake_url(fake));
	cfg.adyen_api_base = base;
}

static void
teardown(void)
{
	pv_upstream_free(ctx.up);
	pv_arena_free(ctx.arena);
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

/* The fake's list at path/key (caller puts the returned holder). */
static struct json_object *
fake_list(const char *path, const char *key, struct json_object **arr)
{
	struct json_object *o = pv_fake_call(fake, "GET", path, NULL);

	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, key, arr));
	return o;
}

static size_t
fake_count(const char *path, const char *key)
{
	struct json_object *arr, *o = fake_list(path, key, &arr);
	size_t n = json_object_array_length(arr);

	json_object_put(o);
	return n;
}

/* The i-th request's body, parsed (caller puts). */
static struct json_object *
req_body(size_t i, const char **path, const char **idem)
{
	struct json_object *arr,
	    *o = fake_list("/__fake/requests", "requests", &arr), *r, *body;
	static char pbuf[128], ibuf[128];

	ck_assert_uint_gt(json_object_array_length(arr), i);
	r = json_object_array_get_idx(arr, i);
	snprintf(pbuf, sizeof(pbuf), "%s", jstr(r, "path", NULL, NULL));
	snprintf(ibuf, sizeof(ibuf), "%s",
	    jstr(r, "headers", "idempotency-key", NULL) != NULL ?
	        jstr(r, "headers", "idempotency-key", NULL) :
	        "");
	body = json_tokener_parse(jstr(r, "body", NULL, NULL));
	ck_assert_ptr_nonnull(body);
	if (path != NULL)
		*path = pbuf;
	if (idem != NULL)
		*idem = ibuf;
	json_object_put(o);
	return body;
}

static void
charge_in(struct pv_psp_charge *in, const char *pay, const char *token)
{
	memset(in, 0, sizeof(*in));
	in->payment_id = pay;
	in->order_id = "ORD_1001";
	in->amount_minor = 2000;
	in->currency = "EUR";
	in->token = token;
	in->customer_email = "buyer@example.com";
}

START_TEST(test_adyen_charge_authorised_sends_contract)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };
	struct json_object *b;
	const char *path, *idem;

	charge_in(&in, "pay_1", "adyen_test_APPROVED");
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), 0);
	ck_assert_int_eq(out.status, PV_PSP_SUCCEEDED);
	ck_assert_str_eq(out.reference, PSP1);
	ck_assert_int_eq(out.amount_minor, 2000);
	ck_assert_str_eq(out.currency, "EUR");
	ck_assert_ptr_null(out.next_action);

	b = req_body(0, &path, &idem);
	ck_assert_str_eq(path, "/v71/payments");
	ck_assert_str_eq(idem, "pivota-charge-pay_1");
	ck_assert_str_eq(jstr(b, "reference", NULL, NULL), "ORD_1001");
	ck_assert_str_eq(jstr(b, "merchantAccount", NULL, NULL), MERCHANT);
	ck_assert_str_eq(jstr(b, "amount", "value", NULL), "2000");
	ck_assert_str_eq(jstr(b, "amount", "currency", NULL), "EUR");
	ck_assert_str_eq(jstr(b, "returnUrl", NULL, NULL),
	    PUBLIC "/payments/return");
	ck_assert_str_eq(jstr(b, "shopperEmail", NULL, NULL),
	    "buyer@example.com");
	ck_assert_str_eq(jstr(b, "metadata", "payment_id", NULL), "pay_1");
	ck_assert_str_eq(jstr(b, "paymentMethod", "type", NULL), "scheme");
	ck_assert_str_eq(jstr(b, "paymentMethod", "holderName", NULL),
	    "APPROVED");
	ck_assert_str_eq(jstr(b, "paymentMethod", "encryptedCardNumber", NULL),
	    "test_4111111145551142");
	json_object_put(b);
}
END_TEST

START_TEST(test_adyen_charge_refusals_map_decline_codes)
{
	static const struct {
		const char *token, *decline;
	} cases[] = {
		{ "adyen_test_DECLINED", "refused" },
		{ "adyen_test_REFERRAL", "referral" },
		{ "adyen_test_ERROR", "acquirer_error" },
		{ "adyen_test_BLOCK_CARD", "blocked_card" },
		{ "adyen_test_CARD_EXPIRED", "expired_card" },
		{ "adyen_test_INVALID_AMOUNT", "invalid_amount" },
		{ "adyen_test_NOT_ENOUGH_BALANCE", "not_enough_balance" },
		{ "adyen_test_UNKNOWN", "unknown" },
	};
	struct pv_psp_charge in;
	struct pv_psp_result out;
	char pay[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pv_err err = { 0 };

		snprintf(pay, sizeof(pay), "pay_%zu", i);
		charge_in(&in, pay, cases[i].token);
		ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out,
		                     &err),
		    0);
		ck_assert_int_eq(out.status, PV_PSP_FAILED);
		ck_assert_str_eq(out.decline_code, cases[i].decline);
		ck_assert_str_ne(out.reference, "");
		ck_assert_str_ne(out.message, "");
	}
}
END_TEST

START_TEST(test_adyen_charge_pending_is_processing)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };

	charge_in(&in, "pay_p", "adyen_test_PENDING");
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), 0);
	ck_assert_int_eq(out.status, PV_PSP_PROCESSING);
	ck_assert_str_eq(out.reference, PSP1);
}
END_TEST

START_TEST(test_adyen_charge_redirect_is_action)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };
	struct json_object *a;

	charge_in(&in, "pay_3ds", "adyen_test_3DS2");
	in.return_url = "https://agent.example/back";
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), 0);
	ck_assert_int_eq(out.status, PV_PSP_REQUIRES_ACTION);
	ck_assert_ptr_nonnull(out.next_action);
	a = json_tokener_parse(out.next_action);
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(jstr(a, "type", NULL, NULL), "redirect");
	ck_assert_str_eq(jstr(a, "method", NULL, NULL), "GET");
	ck_assert_ptr_nonnull(
	    strstr(jstr(a, "url", NULL, NULL), "/__fake/3ds"));
	json_object_put(a);
	a = req_body(0, NULL, NULL);
	ck_assert_str_eq(jstr(a, "returnUrl", NULL, NULL),
	    "https://agent.example/back");
	json_object_put(a);
}
END_TEST

START_TEST(test_adyen_charge_bad_key_is_auth)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };

	acct.secret_key = "AQE_wrong";
	charge_in(&in, "pay_1", "adyen_test_APPROVED");
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_ptr_null(strstr(err.msg, "AQE_wrong"));
	ck_assert_uint_eq(fake_count("/__fake/requests", "requests"), 1);
	ck_assert_uint_eq(fake_count("/__fake/payments", "payments"), 0);
}
END_TEST

START_TEST(test_adyen_charge_merchant_account_checked)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 }, err2 = { 0 };

	charge_in(&in, "pay_1", "adyen_test_APPROVED");
	acct.merchant_account = "";
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.field, "merchant_account");
	ck_assert_uint_eq(fake_count("/__fake/requests", "requests"), 0);

	/* An account the key does not own: Adyen's 403. */
	acct.merchant_account = "SomeoneElse";
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err2),
	    -1);
	ck_assert_int_eq(err2.code, PV_E_FORBIDDEN);
	ck_assert_uint_eq(fake_count("/__fake/payments", "payments"), 0);
}
END_TEST

START_TEST(test_adyen_charge_422_names_error_code)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };

	ctl("POST", "/__fake/faults",
	    "{\"next\": [{\"status\": 422, \"body\": {\"status\": 422,"
	    " \"errorCode\": \"14_030\", \"message\": \"Return URL is "
	    "missing.\","
	    " \"errorType\": \"validation\"}}]}");
	charge_in(&in, "pay_1", "adyen_test_APPROVED");
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_str_eq(err.reason, "adyen_14_030");
	ck_assert_ptr_nonnull(strstr(err.msg, "Return URL is missing"));
	/* A 422 is an answer, not a failure to retry. */
	ck_assert_uint_eq(fake_count("/__fake/requests", "requests"), 1);
}
END_TEST

START_TEST(test_adyen_charge_bad_token_is_invalid)
{
	static const char *const bad[] = { "pm_card_visa", "adyen_test_NOPE",
		"adyen_test_", "stored:", "stored:abc", "stored::8415",
		"stored:shopper:id-with-dash", NULL };
	struct pv_psp_charge in;
	struct pv_psp_result out;
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		struct pv_err err = { 0 };

		charge_in(&in, "pay_1", bad[i]);
		ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out,
		                     &err),
		    -1);
		ck_assert_int_eq(err.code, PV_E_INVALID);
		ck_assert_str_eq(err.field, "payment_method.token");
	}
	ck_assert_uint_eq(fake_count("/__fake/requests", "requests"), 0);
}
END_TEST

START_TEST(test_adyen_charge_stored_token)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };
	struct json_object *b;

	charge_in(&in, "pay_s", "stored:shopper:42:8415718415172204");
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), 0);
	ck_assert_int_eq(out.status, PV_PSP_SUCCEEDED);
	b = req_body(0, NULL, NULL);
	ck_assert_str_eq(jstr(b, "paymentMethod", "storedPaymentMethodId",
	                     NULL),
	    "8415718415172204");
	ck_assert_str_eq(jstr(b, "shopperReference", NULL, NULL), "shopper:42");
	ck_assert_str_eq(jstr(b, "shopperInteraction", NULL, NULL), "ContAuth");
	ck_assert_ptr_null(jstr(b, "paymentMethod", "holderName", NULL));
	json_object_put(b);
}
END_TEST

START_TEST(test_adyen_charge_needs_a_return_url)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };

	cfg.public_url = NULL;
	charge_in(&in, "pay_1", "adyen_test_APPROVED");
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	ck_assert_uint_eq(fake_count("/__fake/requests", "requests"), 0);
}
END_TEST

START_TEST(test_adyen_charge_500_retried_with_same_key)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };
	struct json_object *b;
	const char *idem;
	char first[128];

	ctl("POST", "/__fake/faults", "{\"next\": [500]}");
	charge_in(&in, "pay_r", "adyen_test_APPROVED");
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), 0);
	ck_assert_int_eq(out.status, PV_PSP_SUCCEEDED);
	ck_assert_uint_eq(fake_count("/__fake/requests", "requests"), 2);
	ck_assert_uint_eq(fake_count("/__fake/payments", "payments"), 1);
	b = req_body(0, NULL, &idem);
	snprintf(first, sizeof(first), "%s", idem);
	json_object_put(b);
	b = req_body(1, NULL, &idem);
	ck_assert_str_eq(first, "pivota-charge-pay_r");
	ck_assert_str_eq(idem, first);
	json_object_put(b);
	ck_assert_int_eq(nsleeps, 1);
}
END_TEST

START_TEST(test_adyen_charge_hangup_after_charges_once)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };

	ctl("POST", "/__fake/faults", "{\"next\": [\"hangup_after\"]}");
	charge_in(&in, "pay_h", "adyen_test_APPROVED");
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), 0);
	ck_assert_int_eq(out.status, PV_PSP_SUCCEEDED);
	ck_assert_str_eq(out.reference, PSP1);
	ck_assert_uint_eq(fake_count("/__fake/requests", "requests"), 2);
	ck_assert_uint_eq(fake_count("/__fake/payments", "payments"), 1);
}
END_TEST

START_TEST(test_adyen_charge_5xx_after_retries_is_unknown)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };

	ctl("POST", "/__fake/faults", "{\"next\": [500, 429, 503, 500]}");
	charge_in(&in, "pay_x", "adyen_test_APPROVED");
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_uint_eq(fake_count("/__fake/requests", "requests"),
	    PV_UPSTREAM_MAX_ATTEMPTS);
	ck_assert_uint_eq(fake_count("/__fake/payments", "payments"), 0);
}
END_TEST

START_TEST(test_adyen_verify_checks_key_and_account)
{
	struct pv_err err = { 0 }, err2 = { 0 }, err3 = { 0 };
	struct json_object *b;
	const char *path, *idem;

	ck_assert_int_eq(pv_psp_adyen.verify(&ctx, &acct, &err), 0);
	b = req_body(0, &path, &idem);
	ck_assert_str_eq(path, "/v71/paymentMethods");
	ck_assert_str_eq(idem, "");
	ck_assert_str_eq(jstr(b, "merchantAccount", NULL, NULL), MERCHANT);
	json_object_put(b);
	acct.secret_key = "AQE_wrong";
	ck_assert_int_eq(pv_psp_adyen.verify(&ctx, &acct, &err2), -1);
	ck_assert_int_eq(err2.code, PV_E_AUTH);
	acct.secret_key = API_KEY;
	acct.merchant_account = "SomeoneElse";
	ck_assert_int_eq(pv_psp_adyen.verify(&ctx, &acct, &err3), -1);
	ck_assert_int_eq(err3.code, PV_E_FORBIDDEN);
}
END_TEST

START_TEST(test_adyen_account_base_wins)
{
	struct pv_err err = { 0 };

	/* A dead configured base: only the merchant's own base works. */
	cfg.adyen_api_base = "http://127.0.0.1:1/v71";
	acct.api_base = base;
	ck_assert_int_eq(pv_psp_adyen.verify(&ctx, &acct, &err), 0);
}
END_TEST

/* Waits for the receiver to hold n requests (the fake sends async). */
static void
wait_for(struct pv_testsrv *srv, size_t n)
{
	struct timespec ts = { 0, 10 * 1000000L };
	int i;

	for (i = 0; i < 500 && pv_testsrv_nreq(srv) < n; i++)
		nanosleep(&ts, NULL);
	ck_assert_uint_ge(pv_testsrv_nreq(srv), n);
}

static struct pv_testsrv *
receiver(void)
{
	struct pv_testsrv_resp ok = { 0 };
	struct pv_testsrv *srv = pv_testsrv_start();
	char body[256];

	ck_assert_ptr_nonnull(srv);
	ok.status = 200;
	ok.body = "[accepted]";
	pv_testsrv_set_default(srv, &ok);
	snprintf(body, sizeof(body),
	    "{\"webhook_url\": \"%s/webhooks/adyen/mer_1\","
	    " \"webhook_retry_ms\": 1}",
	    pv_testsrv_url(srv));
	ctl("POST", "/__fake/config", body);
	return srv;
}

/* The i-th delivery run through the adapter's webhook. */
static int
deliver(struct pv_testsrv *srv, size_t i, struct pv_psp_event **evs, size_t *n,
    struct pv_err *err)
{
	const struct pv_testsrv_req *r = pv_testsrv_req(srv, i);
	struct pv_req req;

	ck_assert_ptr_nonnull(r);
	memset(&req, 0, sizeof(req));
	req.method = PV_POST;
	req.body = r->body;
	req.bodylen = r->bodylen;
	return pv_psp_adyen.webhook(&ctx, &acct, &req, evs, n, err);
}

static void
refund_in(struct pv_psp_refund *in, const char *id, const char *psp,
    int64_t minor)
{
	memset(in, 0, sizeof(*in));
	in->refund_id = id;
	in->reference = psp;
	in->order_id = "ORD_1001";
	in->amount_minor = minor;
	in->currency = "EUR";
	in->reason = "customer returned the item";
}

START_TEST(test_adyen_refund_pending_then_webhook)
{
	struct pv_testsrv *srv = receiver();
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_psp_refund rin;
	struct pv_psp_refund_result rout;
	struct pv_psp_event *evs;
	struct pv_err err = { 0 };
	struct json_object *b;
	const char *path, *idem;
	size_t n;

	charge_in(&in, "pay_1", "adyen_test_APPROVED");
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), 0);
	refund_in(&rin, "ref_1", out.reference, 500);
	ck_assert_int_eq(pv_psp_adyen.refund(&ctx, &acct, &rin, &rout, &err),
	    0);
	ck_assert_int_eq(rout.status, PV_PSP_REFUND_PENDING);
	ck_assert_str_eq(rout.reference, PSP2);
	b = req_body(1, &path, &idem);
	ck_assert_str_eq(path, "/v71/payments/" PSP1 "/refunds");
	ck_assert_str_eq(idem, "pivota-refund-ref_1");
	ck_assert_str_eq(jstr(b, "reference", NULL, NULL), "ref_1");
	ck_assert_str_eq(jstr(b, "merchantRefundReason", NULL, NULL), "RETURN");
	ck_assert_str_eq(jstr(b, "amount", "value", NULL), "500");
	json_object_put(b);

	wait_for(srv, 2);
	ck_assert_int_eq(deliver(srv, 0, &evs, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(evs[0].kind, PV_PSP_EV_PAYMENT);
	ck_assert_int_eq(evs[0].status, PV_PSP_SUCCEEDED);
	ck_assert_str_eq(evs[0].reference, PSP1);
	ck_assert_str_eq(evs[0].order_id, "ORD_1001");
	ck_assert_str_eq(evs[0].id, PSP1 ":AUTHORISATION:true");
	ck_assert_int_gt(evs[0].created, 0);

	ck_assert_int_eq(deliver(srv, 1, &evs, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(evs[0].kind, PV_PSP_EV_REFUND);
	ck_assert_str_eq(evs[0].type, "REFUND");
	ck_assert_int_eq(evs[0].refund_status, PV_PSP_REFUND_SUCCEEDED);
	ck_assert_str_eq(evs[0].reference, PSP1);
	ck_assert_str_eq(evs[0].refund_reference, PSP2);
	ck_assert_str_eq(evs[0].refund_id, "ref_1");
	ck_assert_int_eq(evs[0].amount_minor, 500);
	ck_assert_str_eq(pv_testsrv_req(srv, 1)->target,
	    "/webhooks/adyen/mer_1");
	pv_testsrv_stop(srv);
}
END_TEST

START_TEST(test_adyen_refund_failures_arrive_by_webhook)
{
	struct pv_testsrv *srv = receiver();
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_psp_refund rin;
	struct pv_psp_refund_result rout;
	struct pv_psp_event *evs;
	struct pv_err err = { 0 };
	size_t n;

	/* More than was captured: received, then REFUND success false. */
	charge_in(&in, "pay_1", "adyen_test_APPROVED");
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), 0);
	refund_in(&rin, "ref_big", out.reference, 2001);
	ck_assert_int_eq(pv_psp_adyen.refund(&ctx, &acct, &rin, &rout, &err),
	    0);
	ck_assert_int_eq(rout.status, PV_PSP_REFUND_PENDING);
	wait_for(srv, 2);
	ck_assert_int_eq(deliver(srv, 1, &evs, &n, &err), 0);
	ck_assert_int_eq(evs[0].kind, PV_PSP_EV_REFUND);
	ck_assert_int_eq(evs[0].refund_status, PV_PSP_REFUND_FAILED);
	ck_assert_str_eq(evs[0].id, PSP2 ":REFUND:false");

	/* "refund failed": REFUND succeeds, REFUND_FAILED follows. */
	charge_in(&in, "pay_2", "adyen_test_REFUND_FAILED");
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), 0);
	refund_in(&rin, "ref_2", out.reference, 100);
	ck_assert_int_eq(pv_psp_adyen.refund(&ctx, &acct, &rin, &rout, &err),
	    0);
	wait_for(srv, 5);
	ck_assert_int_eq(deliver(srv, 3, &evs, &n, &err), 0);
	ck_assert_str_eq(evs[0].type, "REFUND");
	ck_assert_int_eq(evs[0].refund_status, PV_PSP_REFUND_SUCCEEDED);
	ck_assert_int_eq(deliver(srv, 4, &evs, &n, &err), 0);
	ck_assert_str_eq(evs[0].type, "REFUND_FAILED");
	ck_assert_int_eq(evs[0].kind, PV_PSP_EV_REFUND);
	ck_assert_int_eq(evs[0].refund_status, PV_PSP_REFUND_FAILED);
	ck_assert_str_eq(evs[0].refund_id, "ref_2");
	pv_testsrv_stop(srv);
}
END_TEST

START_TEST(test_adyen_refund_checks_reference)
{
	struct pv_psp_refund rin;
	struct pv_psp_refund_result rout;
	struct pv_err err = { 0 }, err2 = { 0 };

	refund_in(&rin, "ref_1", "../payments", 100);
	ck_assert_int_eq(pv_psp_adyen.refund(&ctx, &acct, &rin, &rout, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_uint_eq(fake_count("/__fake/requests", "requests"), 0);
	/* Unknown to Adyen: a 422 with its code. */
	refund_in(&rin, "ref_1", "8816999999999999", 100);
	ck_assert_int_eq(pv_psp_adyen.refund(&ctx, &acct, &rin, &rout, &err2),
	    -1);
	ck_assert_int_eq(err2.code, PV_E_UPSTREAM);
	ck_assert_str_eq(err2.reason, "adyen_167");
}
END_TEST

START_TEST(test_adyen_fake_resends_unacknowledged)
{
	struct pv_testsrv *srv = receiver();
	struct pv_testsrv_resp no = { 0 };
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_psp_event *evs;
	struct pv_err err = { 0 };
	size_t n;

	no.status = 500;
	pv_testsrv_push(srv, &no);
	charge_in(&in, "pay_1", "adyen_test_DECLINED");
	ck_assert_int_eq(pv_psp_adyen.charge(&ctx, &acct, &in, &out, &err), 0);
	wait_for(srv, 2);
	ck_assert_str_eq(pv_testsrv_req(srv, 0)->body,
	    pv_testsrv_req(srv, 1)->body);
	ck_assert_int_eq(deliver(srv, 1, &evs, &n, &err), 0);
	ck_assert_int_eq(evs[0].kind, PV_PSP_EV_PAYMENT);
	ck_assert_int_eq(evs[0].status, PV_PSP_FAILED);
	ck_assert_str_eq(evs[0].decline_code, "refused");
	pv_testsrv_stop(srv);
}
END_TEST

START_TEST(test_adyen_fake_on_demand_batch_and_forgery)
{
	struct pv_testsrv *srv = receiver();
	struct pv_psp_event *evs;
	struct pv_err err = { 0 }, err2 = { 0 };
	size_t n;
	const char *batch = "[{\"eventCode\": \"AUTHORISATION\","
	                    " \"pspReference\": \"7914073381342284\"},"
	                    " {\"eventCode\": \"CHARGEBACK\"}]";
	char body[512];

	snprintf(body, sizeof(body), "{\"batch\": %s, \"duplicate\": true}",
	    batch);
	ctl("POST", "/__fake/webhook", body);
	snprintf(body, sizeof(body), "{\"batch\": %s, \"bad_hmac\": 1}", batch);
	ctl("POST", "/__fake/webhook", body);
	wait_for(srv, 3);
	ck_assert_str_eq(pv_testsrv_req(srv, 0)->body,
	    pv_testsrv_req(srv, 1)->body);
	ck_assert_int_eq(deliver(srv, 0, &evs, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(evs[0].kind, PV_PSP_EV_PAYMENT);
	ck_assert_int_eq(evs[1].kind, PV_PSP_EV_OTHER);
	ck_assert_str_eq(evs[1].type, "CHARGEBACK");
	ck_assert_int_eq(deliver(srv, 2, &evs, &n, &err2), -1);
	ck_assert_int_eq(err2.code, PV_E_AUTH);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(evs);
	pv_testsrv_stop(srv);
}
END_TEST

/* One notification item as Adyen sends it. */
static int
item(char *buf, size_t len, const char *psp, const char *orig, const char *ref,
    int value, const char *code, const char *success, const char *sig)
{
	char origf[64] = "";

	if (orig != NULL)
		snprintf(origf, sizeof(origf), "\"originalReference\":\"%s\",",
		    orig);
	return snprintf(buf, len,
	    "{\"NotificationRequestItem\":{\"additionalData\":"
	    "{\"hmacSignature\":\"%s\"},\"amount\":{\"currency\":\"EUR\","
	    "\"value\":%d},\"eventCode\":\"%s\",\"eventDate\":"
	    "\"2026-01-15T10:00:00+01:00\",\"merchantAccountCode\":"
	    "\"TestMerchant\",\"merchantReference\":\"%s\",%s"
	    "\"pspReference\":\"%s\",\"reason\":\"Not enough balance\","
	    "\"success\":\"%s\"}}",
	    sig, value, code, ref, origf, psp, success);
}

/* Vectors 2, 3 and 4 of external-apis.md 3.7 in one batch. */
static const char *
vectors(const char *sig3)
{
	static char body[4096];
	char a[1024], b[1024], c[1024];

	item(a, sizeof(a), "7914073381342284", NULL, "order-1001", 2000,
	    "AUTHORISATION", "true",
	    "wL/JhgfVpdfitztv4U3ldnq/2IDMO1bUm3EFukVJlYc=");
	item(b, sizeof(b), "8816118280275544", "7914073381342284",
	    "refund-1001-1", 500, "REFUND", "true", sig3);
	item(c, sizeof(c), "8816118280275599", NULL, "order-1002", 2000,
	    "AUTHORISATION", "false",
	    "yFYDpRx0d+msbY8OHGMY56wBLMj6nvRw4At99m9CB8M=");
	snprintf(body, sizeof(body),
	    "{\"live\":\"false\",\"notificationItems\":[%s,%s,%s]}", a, b, c);
	return body;
}

static int
hook(const char *body, struct pv_psp_event **evs, size_t *n, struct pv_err *err)
{
	struct pv_req req;

	memset(&req, 0, sizeof(req));
	req.method = PV_POST;
	req.body = body;
	req.bodylen = strlen(body);
	return pv_psp_adyen.webhook(&ctx, &acct, &req, evs, n, err);
}

START_TEST(test_adyen_webhook_vectors_batch)
{
	struct pv_psp_event *evs;
	struct pv_err err = { 0 };
	size_t n;

	ck_assert_int_eq(hook(vectors("RXRlmGtkpr0XrNsN3JmNBkApDoVbWeqR1Pb+Ly"
	                              "hO9lc="),
	                     &evs, &n, &err),
	    0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(evs[0].kind, PV_PSP_EV_PAYMENT);
	ck_assert_int_eq(evs[0].status, PV_PSP_SUCCEEDED);
	ck_assert_str_eq(evs[0].id, "7914073381342284:AUTHORISATION:true");
	ck_assert_str_eq(evs[0].order_id, "order-1001");
	ck_assert_int_eq(evs[0].created, 1768467600); /* 09:00Z */
	ck_assert_int_eq(evs[1].kind, PV_PSP_EV_REFUND);
	ck_assert_str_eq(evs[1].reference, "7914073381342284");
	ck_assert_str_eq(evs[1].refund_reference, "8816118280275544");
	ck_assert_str_eq(evs[1].refund_id, "refund-1001-1");
	ck_assert_int_eq(evs[1].refund_status, PV_PSP_REFUND_SUCCEEDED);
	ck_assert_int_eq(evs[1].amount_minor, 500);
	ck_assert_int_eq(evs[2].kind, PV_PSP_EV_PAYMENT);
	ck_assert_int_eq(evs[2].status, PV_PSP_FAILED);
	ck_assert_str_eq(evs[2].decline_code, "not_enough_balance");
	ck_assert_str_eq(evs[2].id, "8816118280275599:AUTHORISATION:false");
}
END_TEST

START_TEST(test_adyen_webhook_one_bad_item_rejects_all)
{
	struct pv_psp_event *evs = NULL;
	struct pv_err err = { 0 };
	size_t n = 7;

	/* Vector 3's signature with one character changed. */
	ck_assert_int_eq(hook(vectors("RXRlmGtkpr0XrNsN3JmNBkApDoVbWeqR1Pb+Ly"
	                              "hO9lC="),
	                     &evs, &n, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(evs);
}
END_TEST

START_TEST(test_adyen_webhook_no_key_rejects)
{
	struct pv_psp_event *evs;
	struct pv_err err = { 0 }, err2 = { 0 };
	size_t n;

	acct.webhook_secret = "";
	ck_assert_int_eq(hook(vectors("RXRlmGtkpr0XrNsN3JmNBkApDoVbWeqR1Pb+Ly"
	                              "hO9lc="),
	                     &evs, &n, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	/* The other vector key does not verify these items either. */
	acct.webhook_secret = KEY1;
	ck_assert_int_eq(hook(vectors("RXRlmGtkpr0XrNsN3JmNBkApDoVbWeqR1Pb+Ly"
	                              "hO9lc="),
	                     &evs, &n, &err2),
	    -1);
	ck_assert_int_eq(err2.code, PV_E_AUTH);
}
END_TEST

START_TEST(test_adyen_webhook_unknown_event_is_other)
{
	struct pv_psp_event *evs;
	struct pv_err err = { 0 };
	size_t n;
	const char *body =
	    "{\"live\":\"false\",\"notificationItems\":[{"
	    "\"NotificationRequestItem\":{\"additionalData\":{"
	    "\"hmacSignature\":"
	    "\"ZNBPtI+oDyyRrLyD1XirkKnQgIAlFc07Vj27TeHsDRE=\"},\"amount\":"
	    "{\"currency\":\"EUR\",\"value\":1000},\"eventCode\":"
	    "\"REPORT_AVAILABLE\",\"merchantAccountCode\":\"merchantAccount\","
	    "\"merchantReference\":\"reference\",\"originalReference\":"
	    "\"originalReference\",\"pspReference\":\"pspReference\","
	    "\"success\":\"true\"}}]}";

	acct.webhook_secret = KEY1;
	ck_assert_int_eq(hook(body, &evs, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(evs[0].kind, PV_PSP_EV_OTHER);
	ck_assert_str_eq(evs[0].type, "REPORT_AVAILABLE");
	ck_assert_str_eq(evs[0].id, "pspReference:REPORT_AVAILABLE:true");
	ck_assert_int_eq(evs[0].created, 0);
}
END_TEST

START_TEST(test_adyen_webhook_malformed)
{
	static const char *const bad[] = {
		"[accepted]",
		"{\"live\":\"false\"}",
		"{\"live\":\"false\",\"notificationItems\":[]}",
		"{\"notificationItems\":[{\"NotificationRequestItem\":{}}]}",
		"{\"notificationItems\":[{\"x\":{}}]}",
		NULL,
	};
	struct pv_psp_event *evs;
	size_t n, i;

	for (i = 0; bad[i] != NULL; i++) {
		struct pv_err err = { 0 };

		ck_assert_int_eq(hook(bad[i], &evs, &n, &err), -1);
		ck_assert_int_eq(err.code, PV_E_INVALID);
	}
}
END_TEST

START_TEST(test_adyen_ops_and_helpers)
{
	struct pv_err err = { 0 }, err2 = { 0 };

	ck_assert_ptr_eq(pv_psp_find("adyen"), &pv_psp_adyen);
	ck_assert_ptr_null(pv_psp_adyen.retrieve);
	ck_assert_str_eq(pv_psp_adyen.webhook_ack, "[accepted]");
	ck_assert_str_eq(pv_psp_adyen.webhook_ack_type, "text/plain");
	ck_assert_str_eq(pv_adyen_decline_code(ctx.arena,
	                     " Not enough  balance!", "refused", &err),
	    "not_enough_balance");
	ck_assert_str_eq(pv_adyen_decline_code(ctx.arena, NULL, "Cancelled",
	                     &err),
	    "cancelled");
	ck_assert_str_eq(pv_adyen_live_base(ctx.arena, "1797a841fbb37ca7-Demo",
	                     &err),
	    "https://1797a841fbb37ca7-Demo-checkout-live.adyenpayments.com/"
	    "checkout/v71");
	ck_assert_ptr_null(pv_adyen_live_base(ctx.arena, "evil.com/x", &err2));
	ck_assert_int_eq(err2.code, PV_E_INVALID);
}
END_TEST

Suite *
adyen_suite(void)
{
	Suite *s = suite_create("adyen");
	TCase *charge = tcase_create("charge");
	TCase *refund = tcase_create("refund");
	TCase *hooks = tcase_create("webhook");

	tcase_add_unchecked_fixture(charge, start_fake, stop_fake);
	tcase_add_checked_fixture(charge, setup, teardown);
	tcase_set_timeout(charge, 30);
	tcase_add_test(charge, test_adyen_charge_authorised_sends_contract);
	tcase_add_test(charge, test_adyen_charge_refusals_map_decline_codes);
	tcase_add_test(charge, test_adyen_charge_pending_is_processing);
	tcase_add_test(charge, test_adyen_charge_redirect_is_action);
	tcase_add_test(charge, test_adyen_charge_bad_key_is_auth);
	tcase_add_test(charge, test_adyen_charge_merchant_account_checked);
	tcase_add_test(charge, test_adyen_charge_422_names_error_code);
	tcase_add_test(charge, test_adyen_charge_bad_token_is_invalid);
	tcase_add_test(charge, test_adyen_charge_stored_token);
	tcase_add_test(charge, test_adyen_charge_needs_a_return_url);
	tcase_add_test(charge, test_adyen_charge_500_retried_with_same_key);
	tcase_add_test(charge, test_adyen_charge_hangup_after_charges_once);
	tcase_add_test(charge, test_adyen_charge_5xx_after_retries_is_unknown);
	tcase_add_test(charge, test_adyen_verify_checks_key_and_account);
	tcase_add_test(charge, test_adyen_account_base_wins);
	suite_add_tcase(s, charge);

	tcase_add_unchecked_fixture(refund, start_fake, stop_fake);
	tcase_add_checked_fixture(refund, setup, teardown);
	tcase_set_timeout(refund, 30);
	tcase_add_test(refund, test_adyen_refund_pending_then_webhook);
	tcase_add_test(refund, test_adyen_refund_failures_arrive_by_webhook);
	tcase_add_test(refund, test_adyen_refund_checks_reference);
	tcase_add_test(refund, test_adyen_fake_resends_unacknowledged);
	tcase_add_test(refund, test_adyen_fake_on_demand_batch_and_forgery);
	suite_add_tcase(s, refund);

	tcase_add_checked_fixture(hooks, setup_ctx, teardown);
	tcase_add_test(hooks, test_adyen_webhook_vectors_batch);
	tcase_add_test(hooks, test_adyen_webhook_one_bad_item_rejects_all);
	tcase_add_test(hooks, test_adyen_webhook_no_key_rejects);
	tcase_add_test(hooks, test_adyen_webhook_unknown_event_is_other);
	tcase_add_test(hooks, test_adyen_webhook_malformed);
	tcase_add_test(hooks, test_adyen_ops_and_helpers);
	suite_add_tcase(s, hooks);
	return s;
}
