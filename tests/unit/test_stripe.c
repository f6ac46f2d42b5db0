/*
 * Unit tests of the Stripe adapter (pv_stripe) against the loopback
 * fake of tests/fakes/fake_stripe.py: the real adapter, the real
 * libcurl path, a fake Stripe that keeps PaymentIntents and refunds,
 * replays idempotent requests, fails on demand, signs webhooks and
 * records what it was sent.  Backoff waits go through a fake sleep, so
 * retries cost no time unless a test asks for a real wait.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pv_arena.h"
#include "pv_config.h"
#include "pv_fake.h"
#include "pv_http.h"
#include "pv_json.h"
#include "pv_psp.h"
#include "pv_sig.h"
#include "pv_stripe.h"
#include "pv_test.h"
#include "pv_testsrv.h"
#include "pv_upstream.h"

#define FAKE     "tests/fakes/fake_stripe.py"
#define KEY      "sk_test_fake_0123456789abcdef"
#define WHSEC    "whsec_fake_0123456789abcdef"
#define NOW      1800000000
#define VEC_BODY "tests/fixtures/stripe/payment_intent.succeeded.json"
#define VEC_SIG  "tests/fixtures/stripe/payment_intent.succeeded.sig"
#define VEC_SEC  "tests/fixtures/stripe/webhook_secret"
#define VEC_T    1700000000
#define VEC_V1 \
	"3588b73292e8e10094ee9c7e2e2e1ef02ae635ca3868f8b5de696853c3ec34aa"
#define VEC_ROT_SECRET "whsec_rotated_secret_fedcba9876543210"
#define VEC_ROT_V1 \
	"bbaca1253a4fde875c99342b3d013ab37d74a1b35d5e26869e76bedc8598305b"

static struct pv_fake *fake;
static struct pv_config cfg;
static struct pv_ctx ctx;
static struct pv_psp_account account;
static int nsleeps;
static long fixed_sleep_ms; /* > 0: every wait really lasts this long */

static void
test_sleep(void *arg, long ms)
{
	struct timespec ts = { fixed_sleep_ms / 1000,
		(fixed_sleep_ms % 1000) * 1000000L };

	(void)arg;
	(void)ms;
	nsleeps++;
	if (fixed_sleep_ms > 0)
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
	char conf[96];

	ck_assert_ptr_nonnull(fake);
	ctl("POST", "/__fake/reset", NULL);
	snprintf(conf, sizeof(conf), "{\"now\": %d}", NOW);
	ctl("POST", "/__fake/config", conf);
	memset(&cfg, 0, sizeof(cfg));
	cfg.env = PV_ENV_TEST;
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = &cfg;
	ctx.now = NOW;
	ctx.arena = pv_arena_new(0);
	ctx.up = pv_upstream_new();
	ck_assert_ptr_nonnull(ctx.arena);
	ck_assert_ptr_nonnull(ctx.up);
	pv_upstream_set_sleep(ctx.up, test_sleep, NULL);
	nsleeps = 0;
	fixed_sleep_ms = 0;
	memset(&account, 0, sizeof(account));
	account.provider = "stripe";
	account.merchant_id = "mer_1";
	account.secret_key = KEY;
	account.merchant_account = "";
	account.api_base = pv_fake_url(fake);
	account.webhook_secret = WHSEC;
}

static void
teardown(void)
{
	pv_upstream_free(ctx.up);
	pv_arena_free(ctx.arena);
}

/* GET /__fake/<what> and the length of its array member what (put). */
static struct json_object *
state(const char *what, size_t *n)
{
	char path[64];
	struct json_object *o, *arr;

	snprintf(path, sizeof(path), "/__fake/%s", what);
	o = pv_fake_call(fake, "GET", path, NULL);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, what, &arr));
	*n = json_object_array_length(arr);
	return o;
}

static size_t
count(const char *what)
{
	size_t n;

	json_object_put(state(what, &n));
	return n;
}

/* The i-th element of log's array member what. */
static struct json_object *
at(struct json_object *log, const char *what, size_t i)
{
	struct json_object *arr;

	ck_assert(json_object_object_get_ex(log, what, &arr));
	return json_object_array_get_idx(arr, i);
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

static void
charge_in(struct pv_psp_charge *in, const char *pay, const char *token)
{
	memset(in, 0, sizeof(*in));
	in->payment_id = pay;
	in->order_id = "ORD_1";
	in->amount_minor = 2000;
	in->currency = "USD";
	in->token = token;
}

/* A charge that must be answered (0), whatever the outcome. */
static void
charge_ok(const char *pay, const char *token, struct pv_psp_result *out)
{
	struct pv_psp_charge in;
	struct pv_err err = { 0 };

	charge_in(&in, pay, token);
	ck_assert_msg(pv_psp_stripe.charge(&ctx, &account, &in, out, &err) == 0,
	    "%s: %s", token, err.msg);
}

/* A charge that must fail with code; returns nothing, err kept. */
static void
charge_err(const char *pay, const char *token, enum pv_errcode code,
    struct pv_err *err)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;

	charge_in(&in, pay, token);
	memset(err, 0, sizeof(*err));
	ck_assert_int_eq(pv_psp_stripe.charge(&ctx, &account, &in, &out, err),
	    -1);
	ck_assert_msg(err->code == code, "%s: got %s (%s)", token,
	    pv_err_name(err->code), err->msg);
}

START_TEST(test_stripe_find_and_ack)
{
	ck_assert_ptr_eq(pv_psp_find("stripe"), &pv_psp_stripe);
	ck_assert_str_eq(pv_psp_stripe.webhook_ack, "{\"received\":true}");
	ck_assert_str_eq(pv_psp_stripe.webhook_ack_type, "application/json");
	ck_assert_ptr_eq(pv_psp_stripe.webhook, pv_stripe_webhook);
}
END_TEST

START_TEST(test_stripe_charge_succeeds_and_sends_form)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };
	struct json_object *log, *r;
	size_t n;

	charge_in(&in, "pay_1", "pm_card_visa");
	in.customer_email = "ann+1@example.com";
	ck_assert_int_eq(pv_psp_stripe.charge(&ctx, &account, &in, &out, &err),
	    0);
	ck_assert_int_eq(out.status, PV_PSP_SUCCEEDED);
	ck_assert_str_eq(out.reference, "pi_fake_000001");
	ck_assert_str_eq(out.client_secret, "pi_fake_000001_secret_fake000001");
	ck_assert_int_eq(out.amount_minor, 2000);
	ck_assert_str_eq(out.currency, "USD");
	ck_assert_ptr_null(out.decline_code);
	ck_assert_ptr_null(out.next_action);
	log = state("requests", &n);
	ck_assert_uint_eq(n, 1);
	r = at(log, "requests", 0);
	ck_assert_str_eq(jstr(r, "method", NULL, NULL), "POST");
	ck_assert_str_eq(jstr(r, "path", NULL, NULL), "/v1/payment_intents");
	ck_assert_str_eq(jstr(r, "headers", "authorization", NULL),
	    "Bearer " KEY);
	ck_assert_str_eq(jstr(r, "headers", "stripe-version", NULL),
	    "2026-07-29.dahlia");
	ck_assert_str_eq(jstr(r, "headers", "idempotency-key", NULL),
	    "pivota-charge-pay_1");
	ck_assert_str_eq(jstr(r, "headers", "content-type", NULL),
	    "application/x-www-form-urlencoded");
	ck_assert_str_eq(jstr(r, "body", NULL, NULL),
	    "amount=2000&currency=usd&payment_method=pm_card_visa"
	    "&confirm=true&automatic_payment_methods[enabled]=true"
	    "&automatic_payment_methods[allow_redirects]=never"
	    "&metadata[order_id]=ORD_1&metadata[payment_id]=pay_1"
	    "&receipt_email=ann%2B1%40example.com");
	ck_assert_str_eq(jstr(r, "form", "receipt_email", NULL),
	    "ann+1@example.com");
	ck_assert_str_eq(jstr(r, "form", "metadata", "payment_id"), "pay_1");
	json_object_put(log);
	log = state("intents", &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(jstr(at(log, "intents", 0), "metadata", "order_id",
	                     NULL),
	    "ORD_1");
	ck_assert_str_eq(jstr(at(log, "intents", 0), "status", NULL, NULL),
	    "succeeded");
	json_object_put(log);
}
END_TEST

START_TEST(test_stripe_charge_uses_configured_base)
{
	struct pv_psp_result out;
	char base[96];

	snprintf(base, sizeof(base), "%s/", pv_fake_url(fake));
	cfg.stripe_api_base = base;
	account.api_base = "";
	charge_ok("pay_1", "pm_card_mastercard", &out);
	ck_assert_int_eq(out.status, PV_PSP_SUCCEEDED);
	ck_assert_uint_eq(count("requests"), 1);
	cfg.stripe_api_base = NULL;
}
END_TEST

static const struct {
	const char *token;
	const char *decline_code;
} declines[] = {
	{ "pm_card_visa_chargeDeclined", "generic_decline" },
	{ "pm_card_chargeDeclined", "generic_decline" },
	{ "pm_card_visa_chargeDeclinedInsufficientFunds",
	    "insufficient_funds" },
	{ "pm_card_visa_chargeDeclinedLostCard", "lost_card" },
	{ "pm_card_visa_chargeDeclinedStolenCard", "stolen_card" },
	{ "pm_card_chargeDeclinedExpiredCard", "expired_card" },
	{ "pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc" },
	{ "pm_card_chargeDeclinedProcessingError", "processing_error" },
};

START_TEST(test_stripe_charge_declines_carry_codes)
{
	struct pv_psp_result out;
	char pay[32], pi[32];

	snprintf(pay, sizeof(pay), "pay_d%d", _i);
	charge_ok(pay, declines[_i].token, &out);
	ck_assert_int_eq(out.status, PV_PSP_FAILED);
	ck_assert_str_eq(out.decline_code, declines[_i].decline_code);
	ck_assert_str_eq(out.reference, "pi_fake_000001");
	ck_assert_int_eq(out.amount_minor, 2000);
	ck_assert_str_eq(out.currency, "USD");
	ck_assert(strlen(out.message) > 0);
	/* Retrying the same payment replays the 402: still one intent. */
	snprintf(pi, sizeof(pi), "%s", out.reference);
	charge_ok(pay, declines[_i].token, &out);
	ck_assert_int_eq(out.status, PV_PSP_FAILED);
	ck_assert_str_eq(out.reference, pi);
	ck_assert_str_eq(out.decline_code, declines[_i].decline_code);
	ck_assert_uint_eq(count("intents"), 1);
	ck_assert_uint_eq(count("requests"), 2);
}
END_TEST

START_TEST(test_stripe_charge_requires_action_returns_next_action)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };
	struct json_object *na, *log;
	const char *url;
	size_t n;

	charge_in(&in, "pay_3ds", "pm_card_authenticationRequired");
	in.return_url = "https://shop.example/back?o=1";
	ck_assert_int_eq(pv_psp_stripe.charge(&ctx, &account, &in, &out, &err),
	    0);
	ck_assert_int_eq(out.status, PV_PSP_REQUIRES_ACTION);
	ck_assert_ptr_nonnull(out.next_action);
	ck_assert_int_eq(pv_json_parse(ctx.arena, out.next_action,
	                     strlen(out.next_action), &na, &err),
	    0);
	ck_assert_str_eq(jstr(na, "type", NULL, NULL), "redirect_to_url");
	ck_assert_str_eq(jstr(na, "redirect_to_url", "return_url", NULL),
	    "https://shop.example/back?o=1");
	url = jstr(na, "redirect_to_url", "url", NULL);
	ck_assert_ptr_nonnull(strstr(url, "/__fake/3ds/pi_fake_000001"));
	/* With a return_url, redirects are allowed: no allow_redirects. */
	log = state("requests", &n);
	ck_assert_str_eq(jstr(at(log, "requests", 0), "form", "return_url",
	                     NULL),
	    "https://shop.example/back?o=1");
	ck_assert_ptr_null(jstr(at(log, "requests", 0), "form",
	    "automatic_payment_methods", "allow_redirects"));
	json_object_put(log);

	/* The customer completes 3DS; a re-read sees the payment. */
	ctl("POST", "/__fake/complete_action", "{\"id\": \"pi_fake_000001\"}");
	ck_assert_int_eq(pv_psp_stripe.retrieve(&ctx, &account,
	                     "pi_fake_000001", &out, &err),
	    0);
	ck_assert_int_eq(out.status, PV_PSP_SUCCEEDED);
	ck_assert_ptr_null(out.next_action);

	charge_ok("pay_3ds2", "pm_card_threeDSecure2Required", &out);
	ck_assert_int_eq(out.status, PV_PSP_REQUIRES_ACTION);
	ck_assert_ptr_nonnull(strstr(out.next_action, "redirect_to_url"));
	charge_ok("pay_3ds3", "pm_card_authenticationRequiredOnSetup", &out);
	ck_assert_int_eq(out.status, PV_PSP_REQUIRES_ACTION);
}
END_TEST

START_TEST(test_stripe_charge_processing)
{
	struct pv_psp_result out;

	charge_ok("pay_p", "pm_fake_processing", &out);
	ck_assert_int_eq(out.status, PV_PSP_PROCESSING);
	ck_assert_ptr_null(out.next_action);
}
END_TEST

START_TEST(test_stripe_charge_unknown_token_is_invalid)
{
	struct pv_err err;

	charge_err("pay_1", "pm_card_nope", PV_E_INVALID, &err);
	ck_assert_str_eq(err.field, "payment_method.token");
	ck_assert_uint_eq(count("requests"), 1); /* 400 is not retried */
	ck_assert_uint_eq(count("intents"), 0);
	charge_err("pay_2", "", PV_E_INVALID, &err);
	ck_assert_uint_eq(count("requests"), 1);
}
END_TEST

START_TEST(test_stripe_charge_bad_key_is_auth)
{
	struct pv_err err;

	account.secret_key = "sk_test_wrong_key_987654321";
	charge_err("pay_1", "pm_card_visa", PV_E_AUTH, &err);
	ck_assert_ptr_null(strstr(err.msg, "987654321"));
	ck_assert_uint_eq(count("requests"), 1);
	ck_assert_uint_eq(count("intents"), 0);
	account.secret_key = "";
	charge_err("pay_1", "pm_card_visa", PV_E_AUTH, &err);
	ck_assert_uint_eq(count("requests"), 1); /* nothing sent */
}
END_TEST

START_TEST(test_stripe_charge_500_then_success_same_key)
{
	struct pv_psp_result out;
	struct json_object *log;
	size_t n;

	ctl("POST", "/__fake/faults", "{\"next\": [500]}");
	charge_ok("pay_1", "pm_card_visa", &out);
	ck_assert_int_eq(out.status, PV_PSP_SUCCEEDED);
	ck_assert_int_eq(nsleeps, 1);
	log = state("requests", &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(jstr(at(log, "requests", 0), "status", NULL, NULL),
	    "500");
	ck_assert_str_eq(jstr(at(log, "requests", 0), "headers",
	                     "idempotency-key", NULL),
	    "pivota-charge-pay_1");
	ck_assert_str_eq(jstr(at(log, "requests", 1), "headers",
	                     "idempotency-key", NULL),
	    "pivota-charge-pay_1");
	ck_assert_str_eq(jstr(at(log, "requests", 0), "body", NULL, NULL),
	    jstr(at(log, "requests", 1), "body", NULL, NULL));
	json_object_put(log);
	ck_assert_uint_eq(count("intents"), 1);
}
END_TEST

START_TEST(test_stripe_charge_hangup_after_gets_replay)
{
	struct pv_psp_result out;
	struct json_object *log;
	size_t n;

	ctl("POST", "/__fake/faults", "{\"next\": [\"hangup_after\"]}");
	charge_ok("pay_1", "pm_card_visa", &out);
	ck_assert_int_eq(out.status, PV_PSP_SUCCEEDED);
	ck_assert_str_eq(out.reference, "pi_fake_000001");
	log = state("requests", &n);
	ck_assert_uint_eq(n, 2);
	ck_assert(!json_object_get_boolean(
	    json_object_object_get(at(log, "requests", 0), "replayed")));
	ck_assert(json_object_get_boolean(
	    json_object_object_get(at(log, "requests", 1), "replayed")));
	json_object_put(log);
	ck_assert_uint_eq(count("intents"), 1);
}
END_TEST

START_TEST(test_stripe_charge_5xx_exhausted_is_upstream)
{
	struct pv_err err;

	ctl("POST", "/__fake/faults", "{\"next\": [500, 502, 503]}");
	charge_err("pay_1", "pm_card_visa", PV_E_UPSTREAM, &err);
	ck_assert_uint_eq(count("requests"), 3);
	ck_assert_uint_eq(count("intents"), 0);
}
END_TEST

START_TEST(test_stripe_charge_should_retry_false_stops)
{
	struct pv_err err;

	ctl("POST", "/__fake/faults",
	    "{\"next\": [{\"status\": 503, \"should_retry\": false}]}");
	charge_err("pay_1", "pm_card_visa", PV_E_UPSTREAM, &err);
	ck_assert_uint_eq(count("requests"), 1);
	ck_assert_int_eq(nsleeps, 0);
}
END_TEST

START_TEST(test_stripe_charge_hangups_exhausted_is_upstream)
{
	struct pv_err err;

	ctl("POST", "/__fake/faults",
	    "{\"next\": [\"hangup\", \"hangup\", \"hangup\"]}");
	charge_err("pay_1", "pm_card_visa", PV_E_UPSTREAM, &err);
	/* Three attempts; libcurl itself re-sends once, silently, when a
	 * reused keep-alive connection closes without an answer, so the
	 * fake may count a fourth request (all with our one key). */
	ck_assert_uint_ge(count("requests"), 3);
	ck_assert_uint_le(count("requests"), 6);
	ck_assert_uint_eq(count("intents"), 0);
}
END_TEST

START_TEST(test_stripe_charge_4xx_reasons)
{
	struct pv_psp_result out;
	struct pv_psp_charge in;
	struct pv_err err;

	ctl("POST", "/__fake/faults", "{\"next\": [429, 429, 429]}");
	charge_err("pay_1", "pm_card_visa", PV_E_UPSTREAM, &err);
	ck_assert_str_eq(err.reason, "rate_limit");
	ck_assert_uint_eq(count("requests"), 3);

	/* Same payment id, other parameters: Stripe refuses the key. */
	charge_ok("pay_2", "pm_card_visa", &out);
	charge_in(&in, "pay_2", "pm_card_visa");
	in.amount_minor = 2500;
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(pv_psp_stripe.charge(&ctx, &account, &in, &out, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_str_eq(err.reason, "idempotency_error");

	ctl("POST", "/__fake/faults", "{\"next\": [403]}");
	charge_err("pay_3", "pm_card_visa", PV_E_FORBIDDEN, &err);

	/* Answers that are not JSON are still mapped by their status. */
	ctl("POST", "/__fake/faults",
	    "{\"next\": [{\"status\": 401, \"body\": \"<html>\"}]}");
	charge_err("pay_4", "pm_card_visa", PV_E_AUTH, &err);
	ctl("POST", "/__fake/faults",
	    "{\"next\": [{\"status\": 502, \"body\": \"<html>\","
	    " \"should_retry\": false}]}");
	charge_err("pay_4", "pm_card_visa", PV_E_UPSTREAM, &err);
	ctl("POST", "/__fake/faults",
	    "{\"next\": [{\"status\": 200, \"body\": \"<html>\"}]}");
	charge_err("pay_4", "pm_card_visa", PV_E_UPSTREAM, &err);
	ck_assert_uint_eq(count("intents"), 1);
}
END_TEST

START_TEST(test_stripe_charge_checks_currency)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };

	charge_in(&in, "pay_1", "pm_card_visa");
	in.currency = "EURO";
	ck_assert_int_eq(pv_psp_stripe.charge(&ctx, &account, &in, &out, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.field, "currency");
	ck_assert_uint_eq(count("requests"), 0);
	charge_in(&in, "pay_1", "pm_card_visa");
	in.currency = "eur";
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(pv_psp_stripe.charge(&ctx, &account, &in, &out, &err),
	    0);
	ck_assert_str_eq(out.currency, "EUR");
}
END_TEST

/* The child of the concurrency test: the same charge, in flight. */
static void
concurrent_child(void)
{
	struct pv_ctx c2 = ctx;
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err = { 0 };

	c2.up = pv_upstream_new();
	c2.arena = pv_arena_new(0);
	if (c2.up == NULL || c2.arena == NULL)
		_exit(2);
	pv_upstream_set_sleep(c2.up, test_sleep, NULL);
	charge_in(&in, "pay_1", "pm_card_visa");
	_exit(pv_psp_stripe.charge(&c2, &account, &in, &out, &err) == 0 &&
	            out.status == PV_PSP_SUCCEEDED ?
	        0 :
	        1);
}

START_TEST(test_stripe_charge_concurrent_duplicate_waits_for_replay)
{
	struct timespec tick = { 0, 20000000L };
	struct pv_psp_result out;
	struct json_object *log;
	int i, status;
	size_t n;
	pid_t pid;

	ctl("POST", "/__fake/faults", "{\"next\": [{\"delay_ms\": 600}]}");
	if ((pid = fork()) == 0)
		concurrent_child();
	ck_assert_int_ne(pid, -1);
	for (i = 0; i < 200 && count("requests") == 0; i++)
		nanosleep(&tick, NULL);
	/* The first holds the key: a 409, then a wait, then the replay. */
	fixed_sleep_ms = 900;
	charge_ok("pay_1", "pm_card_visa", &out);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(out.status, PV_PSP_SUCCEEDED);
	ck_assert_str_eq(out.reference, "pi_fake_000001");
	log = state("requests", &n);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(jstr(at(log, "requests", 1), "status", NULL, NULL),
	    "409");
	ck_assert(json_object_get_boolean(
	    json_object_object_get(at(log, "requests", 2), "replayed")));
	json_object_put(log);
	ck_assert_uint_eq(count("intents"), 1);
}
END_TEST

START_TEST(test_stripe_charge_alloc_failures_are_nomem)
{
	struct pv_psp_charge in;
	struct pv_psp_result out;
	struct pv_err err;
	long n;
	int rc = -1;

	charge_in(&in, "pay_1", "pm_card_visa_chargeDeclined");
	for (n = 0; n < 200 && rc == -1; n++) {
		pv_arena_reset(ctx.arena);
		pv_arena_fail_after(ctx.arena, n);
		memset(&err, 0, sizeof(err));
		rc = pv_psp_stripe.charge(&ctx, &account, &in, &out, &err);
		if (rc == -1)
			ck_assert_msg(err.code == PV_E_NOMEM, "n=%ld: %s (%s)",
			    n, err.msg, pv_err_name(err.code));
	}
	pv_arena_fail_after(ctx.arena, -1);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(out.status, PV_PSP_FAILED);
	ck_assert_str_eq(out.decline_code, "generic_decline");
	ck_assert_uint_eq(count("intents"), 1);
}
END_TEST

static void
refund_in(struct pv_psp_refund *in, const char *ref, const char *pi,
    int64_t amount, const char *reason)
{
	memset(in, 0, sizeof(*in));
	in->refund_id = ref;
	in->reference = pi;
	in->order_id = "ORD_1";
	in->amount_minor = amount;
	in->currency = "USD";
	in->reason = reason;
}

START_TEST(test_stripe_refund_full)
{
	struct pv_psp_result pay;
	struct pv_psp_refund in;
	struct pv_psp_refund_result out;
	struct pv_err err = { 0 };
	struct json_object *log, *r;
	size_t n;

	charge_ok("pay_1", "pm_card_visa", &pay);
	refund_in(&in, "ref_1", pay.reference, 2000,
	    "Customer was charged twice");
	ck_assert_int_eq(pv_psp_stripe.refund(&ctx, &account, &in, &out, &err),
	    0);
	ck_assert_int_eq(out.status, PV_PSP_REFUND_SUCCEEDED);
	ck_assert_str_eq(out.reference, "re_fake_000001");
	ck_assert_str_eq(out.message, "");
	log = state("requests", &n);
	ck_assert_uint_eq(n, 2);
	r = at(log, "requests", 1);
	ck_assert_str_eq(jstr(r, "path", NULL, NULL), "/v1/refunds");
	ck_assert_str_eq(jstr(r, "body", NULL, NULL),
	    "payment_intent=pi_fake_000001&amount=2000&reason=duplicate"
	    "&metadata[refund_id]=ref_1&metadata[order_id]=ORD_1");
	ck_assert_str_eq(jstr(r, "headers", "idempotency-key", NULL),
	    "pivota-refund-ref_1");
	ck_assert_str_eq(jstr(r, "headers", "stripe-version", NULL),
	    PV_STRIPE_API_VERSION);
	json_object_put(log);
	log = state("refunds", &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(jstr(at(log, "refunds", 0), "metadata", "refund_id",
	                     NULL),
	    "ref_1");
	json_object_put(log);

	/* The same refund again is the same refund. */
	ck_assert_int_eq(pv_psp_stripe.refund(&ctx, &account, &in, &out, &err),
	    0);
	ck_assert_str_eq(out.reference, "re_fake_000001");
	ck_assert_uint_eq(count("refunds"), 1);

	/* A new refund of a fully refunded charge. */
	refund_in(&in, "ref_2", pay.reference, 1, NULL);
	ck_assert_int_eq(pv_psp_stripe.refund(&ctx, &account, &in, &out, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_str_eq(err.reason, "charge_already_refunded");
}
END_TEST

START_TEST(test_stripe_refund_partial_and_over)
{
	struct pv_psp_result pay;
	struct pv_psp_refund in;
	struct pv_psp_refund_result out;
	struct pv_err err = { 0 };
	struct json_object *log;
	size_t n;

	charge_ok("pay_1", "pm_card_visa", &pay);
	refund_in(&in, "ref_1", pay.reference, 500, "fraud suspected");
	ck_assert_int_eq(pv_psp_stripe.refund(&ctx, &account, &in, &out, &err),
	    0);
	ck_assert_str_eq(out.reference, "re_fake_000001");
	refund_in(&in, "ref_2", pay.reference, 1600, NULL);
	ck_assert_int_eq(pv_psp_stripe.refund(&ctx, &account, &in, &out, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_str_eq(err.reason, "amount_too_large");
	ck_assert_uint_eq(count("requests"), 3); /* 400 not retried */
	memset(&err, 0, sizeof(err));
	refund_in(&in, "ref_3", pay.reference, 1500, NULL);
	ck_assert_int_eq(pv_psp_stripe.refund(&ctx, &account, &in, &out, &err),
	    0);
	ck_assert_str_eq(out.reference, "re_fake_000002");
	log = state("refunds", &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(jstr(at(log, "refunds", 0), "reason", NULL, NULL),
	    "fraudulent");
	ck_assert_str_eq(jstr(at(log, "refunds", 1), "reason", NULL, NULL),
	    "requested_by_customer");
	json_object_put(log);
}
END_TEST

START_TEST(test_stripe_refund_of_declined_charge_refused)
{
	struct pv_psp_result pay;
	struct pv_psp_refund in;
	struct pv_psp_refund_result out;
	struct pv_err err = { 0 };

	charge_ok("pay_1", "pm_card_chargeDeclined", &pay);
	refund_in(&in, "ref_1", pay.reference, 2000, NULL);
	ck_assert_int_eq(pv_psp_stripe.refund(&ctx, &account, &in, &out, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	memset(&err, 0, sizeof(err));
	refund_in(&in, "ref_2", "pi_../../v1/balance", 2000, NULL);
	ck_assert_int_eq(pv_psp_stripe.refund(&ctx, &account, &in, &out, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_uint_eq(count("requests"), 2);
}
END_TEST

START_TEST(test_stripe_retrieve)
{
	struct pv_psp_result out;
	struct pv_err err = { 0 };
	struct json_object *log, *r;
	size_t n;

	charge_ok("pay_1", "pm_card_visa_chargeDeclinedInsufficientFunds",
	    &out);
	ck_assert_int_eq(pv_psp_stripe.retrieve(&ctx, &account,
	                     "pi_fake_000001", &out, &err),
	    0);
	ck_assert_int_eq(out.status, PV_PSP_FAILED);
	ck_assert_str_eq(out.decline_code, "insufficient_funds");
	ck_assert_str_eq(out.reference, "pi_fake_000001");
	log = state("requests", &n);
	ck_assert_uint_eq(n, 2);
	r = at(log, "requests", 1);
	ck_assert_str_eq(jstr(r, "method", NULL, NULL), "GET");
	ck_assert_str_eq(jstr(r, "path", NULL, NULL),
	    "/v1/payment_intents/pi_fake_000001");
	ck_assert_str_eq(jstr(r, "headers", "stripe-version", NULL),
	    PV_STRIPE_API_VERSION);
	ck_assert_ptr_null(jstr(r, "headers", "idempotency-key", NULL));
	json_object_put(log);

	ck_assert_int_eq(pv_psp_stripe.retrieve(&ctx, &account,
	                     "pi_fake_000404", &out, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_str_eq(err.reason, "resource_missing");
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(pv_psp_stripe.retrieve(&ctx, &account, "pi_1?x=1",
	                     &out, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_uint_eq(count("requests"), 3);
}
END_TEST

START_TEST(test_stripe_verify)
{
	struct pv_err err = { 0 };
	struct json_object *log;
	size_t n;

	ck_assert_int_eq(pv_psp_stripe.verify(&ctx, &account, &err), 0);
	log = state("requests", &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(jstr(at(log, "requests", 0), "path", NULL, NULL),
	    "/v1/balance");
	ck_assert_str_eq(jstr(at(log, "requests", 0), "headers",
	                     "authorization", NULL),
	    "Bearer " KEY);
	json_object_put(log);
	account.secret_key = "sk_test_other";
	ck_assert_int_eq(pv_psp_stripe.verify(&ctx, &account, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	memset(&err, 0, sizeof(err));
	account.secret_key = "sk_live_"
	                     "fake_0123456789abcdef";
	ck_assert_int_eq(pv_psp_stripe.verify(&ctx, &account, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
}
END_TEST

/* A whole fixture file into the arena, NUL-terminated. */
static char *
slurp(const char *path, size_t *len)
{
	struct pv_err err = { 0 };
	char *buf;
	FILE *f = fopen(path, "rb");
	long n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	buf = pv_arena_alloc(ctx.arena, (size_t)n + 1, &err);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static struct pv_kv wh_hdr[2];

/* A webhook request with body and a Stripe-Signature (or none). */
static void
wh_req(struct pv_req *req, const char *body, size_t len, const char *sig)
{
	memset(req, 0, sizeof(*req));
	req->method = PV_POST;
	req->method_name = "POST";
	req->path = "/webhooks/stripe";
	req->query = "";
	wh_hdr[0].name = "content-type";
	wh_hdr[0].value = "application/json";
	wh_hdr[0].valuelen = strlen(wh_hdr[0].value);
	wh_hdr[1].name = "stripe-signature";
	wh_hdr[1].value = sig;
	wh_hdr[1].valuelen = sig != NULL ? strlen(sig) : 0;
	req->hdrs = wh_hdr;
	req->nhdr = sig != NULL ? 2 : 1;
	req->body = body;
	req->bodylen = len;
	req->remote_addr = "127.0.0.1";
}

static int
webhook(const char *body, size_t len, const char *sig, struct pv_psp_event **ev,
    struct pv_err *err)
{
	struct pv_req req;
	size_t n = 9;
	int rc;

	wh_req(&req, body, len, sig);
	memset(err, 0, sizeof(*err));
	rc = pv_stripe_webhook(&ctx, &account, &req, ev, &n, err);
	ck_assert_uint_eq(n, rc == 0 ? 1 : 0);
	return rc;
}

START_TEST(test_stripe_webhook_spec_vector)
{
	struct pv_psp_event *ev;
	struct pv_err err;
	size_t len, slen, klen;
	char *body = slurp(VEC_BODY, &len), *sig = slurp(VEC_SIG, &slen);

	account.webhook_secret = slurp(VEC_SEC, &klen);
	ck_assert_str_eq(sig, "t=1700000000,v1=" VEC_V1);
	ctx.now = VEC_T + 100;
	ck_assert_int_eq(webhook(body, len, sig, &ev, &err), 0);
	ck_assert_str_eq(ev->id, "evt_test_webhook_0001");
	ck_assert_str_eq(ev->type, "payment_intent.succeeded");
	ck_assert_int_eq(ev->kind, PV_PSP_EV_PAYMENT);
	ck_assert_int_eq(ev->status, PV_PSP_SUCCEEDED);
	ck_assert_str_eq(ev->reference, "pi_test_0001");
	ck_assert_str_eq(ev->order_id, "1001");
	ck_assert_int_eq(ev->amount_minor, 2000);
	ck_assert_str_eq(ev->currency, "USD");
	ck_assert_int_eq(ev->created, VEC_T);
	ck_assert_str_eq(ev->decline_code, "");

	/* Stale: t+301 is outside Stripe's 300 s. */
	ctx.now = VEC_T + 301;
	ck_assert_int_eq(webhook(body, len, sig, &ev, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_ptr_null(ev);
	ctx.now = VEC_T + 300;
	ck_assert_int_eq(webhook(body, len, sig, &ev, &err), 0);

	/* One byte changed, one byte added. */
	body[10] ^= 1;
	ck_assert_int_eq(webhook(body, len, sig, &ev, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	body[10] ^= 1;
	ck_assert_int_eq(webhook(body, len - 1, sig, &ev, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_int_eq(webhook(body, len, sig, &ev, &err), 0);

	/* No secret, no header, another merchant's secret. */
	account.webhook_secret = "";
	ck_assert_int_eq(webhook(body, len, sig, &ev, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	account.webhook_secret = NULL;
	ck_assert_int_eq(webhook(body, len, sig, &ev, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	account.webhook_secret = VEC_ROT_SECRET;
	ck_assert_int_eq(webhook(body, len, sig, &ev, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	account.webhook_secret = "whsec_test_secret_0123456789abcdef";
	ck_assert_int_eq(webhook(body, len, NULL, &ev, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
}
END_TEST

START_TEST(test_stripe_webhook_rotated_secret)
{
	static const char rotated[] =
	    "t=1700000000,v1=" VEC_ROT_V1 ",v1=" VEC_V1 ",v0=deadbeef";
	struct pv_psp_event *ev;
	struct pv_err err;
	size_t len;
	char *body = slurp(VEC_BODY, &len);

	ctx.now = VEC_T + 1;
	account.webhook_secret = "whsec_test_secret_0123456789abcdef";
	ck_assert_int_eq(webhook(body, len, rotated, &ev, &err), 0);
	ck_assert_str_eq(ev->reference, "pi_test_0001");
	account.webhook_secret = VEC_ROT_SECRET;
	ck_assert_int_eq(webhook(body, len, rotated, &ev, &err), 0);
	ck_assert_int_eq(webhook(body, len, "t=1700000000,v1=" VEC_V1, &ev,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
}
END_TEST

START_TEST(test_stripe_webhook_signed_garbage_is_invalid)
{
	static const char *const bodies[] = { "not json", "{}",
		"{\"id\":\"evt_1\",\"type\":\"x\"}",
		"{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\","
		"\"data\":{\"object\":{\"id\":\"pi_1\",\"status\":\"odd\"}}}",
		"{\"id\":\"evt_1\",\"type\":\"refund.created\",\"data\":"
		"{\"object\":{\"object\":\"refund\",\"status\":\"odd\"}}}" };
	struct pv_psp_event *ev;
	struct pv_err err = { 0 };
	const char *sig;
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		ck_assert_int_eq(pv_sig_stripe_sign(ctx.arena, WHSEC, NOW,
		                     bodies[i], strlen(bodies[i]), &sig, &err),
		    0);
		ck_assert_int_eq(webhook(bodies[i], strlen(bodies[i]), sig, &ev,
		                     &err),
		    -1);
		ck_assert_msg(err.code == PV_E_INVALID, "%s: %s", bodies[i],
		    pv_err_name(err.code));
	}
}
END_TEST

/* Asks the fake for one signed event; parses it through the adapter. */
static int
fake_event(const char *spec, struct pv_psp_event **ev, struct pv_err *err)
{
	struct json_object *o =
	    pv_fake_call(fake, "POST", "/__fake/webhook", spec);
	const char *body, *sig;
	struct pv_err e2 = { 0 };
	int rc;

	ck_assert_msg(o != NULL, "%s", spec);
	body = pv_arena_strdup(ctx.arena, jstr(o, "body", NULL, NULL), &e2);
	sig = pv_arena_strdup(ctx.arena, jstr(o, "signature", NULL, NULL), &e2);
	json_object_put(o);
	ck_assert_ptr_nonnull(body);
	ck_assert_ptr_nonnull(sig);
	rc = webhook(body, strlen(body), sig, ev, err);
	return rc;
}

START_TEST(test_stripe_webhook_event_kinds)
{
	struct pv_psp_refund rin;
	struct pv_psp_refund_result rout;
	struct pv_psp_result out;
	struct pv_psp_event *ev;
	struct pv_err err = { 0 };

	charge_ok("pay_1", "pm_card_visa_chargeDeclinedStolenCard", &out);
	ck_assert_int_eq(
	    fake_event("{\"type\": \"payment_intent.payment_failed\","
	               " \"object\": \"pi_fake_000001\"}",
	        &ev, &err),
	    0);
	ck_assert_str_eq(ev->id, "evt_fake_000003"); /* after 2 emitted */
	ck_assert_int_eq(ev->kind, PV_PSP_EV_PAYMENT);
	ck_assert_int_eq(ev->status, PV_PSP_FAILED);
	ck_assert_str_eq(ev->decline_code, "stolen_card");
	ck_assert_str_eq(ev->order_id, "ORD_1");
	ck_assert_int_eq(ev->created, NOW);

	charge_ok("pay_2", "pm_card_authenticationRequired", &out);
	ck_assert_int_eq(fake_event("{\"type\": "
	                            "\"payment_intent.requires_action\"}",
	                     &ev, &err),
	    0);
	ck_assert_int_eq(ev->kind, PV_PSP_EV_PAYMENT);
	ck_assert_int_eq(ev->status, PV_PSP_REQUIRES_ACTION);
	ck_assert_str_eq(ev->reference, "pi_fake_000002");

	charge_ok("pay_3", "pm_card_visa", &out);
	refund_in(&rin, "ref_9", out.reference, 700, NULL);
	ck_assert_int_eq(pv_psp_stripe.refund(&ctx, &account, &rin, &rout,
	                     &err),
	    0);
	ck_assert_int_eq(fake_event("{\"type\": \"refund.created\","
	                            " \"object\": \"re_fake_000001\"}",
	                     &ev, &err),
	    0);
	ck_assert_int_eq(ev->kind, PV_PSP_EV_REFUND);
	ck_assert_str_eq(ev->refund_reference, "re_fake_000001");
	ck_assert_str_eq(ev->refund_id, "ref_9");
	ck_assert_str_eq(ev->reference, "pi_fake_000003");
	ck_assert_int_eq(ev->refund_status, PV_PSP_REFUND_SUCCEEDED);
	ck_assert_int_eq(ev->amount_minor, 700);
	ck_assert_str_eq(ev->currency, "USD");
	ck_assert_int_eq(fake_event("{\"type\": \"refund.updated\","
	                            " \"object\": {\"id\": \"re_x\","
	                            " \"object\": \"refund\", \"amount\": 5,"
	                            " \"currency\": \"eur\", \"status\":"
	                            " \"failed\", \"payment_intent\": \"pi_y\","
	                            " \"metadata\": {}}}",
	                     &ev, &err),
	    0);
	ck_assert_int_eq(ev->kind, PV_PSP_EV_REFUND);
	ck_assert_int_eq(ev->refund_status, PV_PSP_REFUND_FAILED);
	ck_assert_str_eq(ev->refund_id, "");
	ck_assert_int_eq(fake_event("{\"type\": \"charge.refunded\","
	                            " \"object\": \"ch_fake_000002\"}",
	                     &ev, &err),
	    0);
	ck_assert_int_eq(ev->kind, PV_PSP_EV_REFUND);
	ck_assert_str_eq(ev->reference, "pi_fake_000003");
	ck_assert_int_eq(ev->amount_minor, 700);

	ck_assert_int_eq(fake_event("{\"type\": \"customer.created\","
	                            " \"object\": {\"id\": \"cus_1\"}}",
	                     &ev, &err),
	    0);
	ck_assert_int_eq(ev->kind, PV_PSP_EV_OTHER);
	ck_assert_str_eq(ev->type, "customer.created");
	/* A fresh intent says nothing about the payment yet. */
	ck_assert_int_eq(
	    fake_event("{\"type\": \"payment_intent.created\","
	               " \"object\": {\"id\": \"pi_z\", \"object\":"
	               " \"payment_intent\", \"status\":"
	               " \"requires_payment_method\"}}",
	        &ev, &err),
	    0);
	ck_assert_int_eq(ev->kind, PV_PSP_EV_OTHER);

	ck_assert_int_eq(fake_event("{\"type\": \"customer.created\","
	                            " \"object\": {}, \"bad_signature\": true}",
	                     &ev, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_int_eq(fake_event("{\"type\": \"customer.created\","
	                            " \"object\": {}, \"stale\": true}",
	                     &ev, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
}
END_TEST

/* Waits until srv has received n requests (or 5 s have passed). */
static void
await(struct pv_testsrv *srv, size_t n)
{
	struct timespec tick = { 0, 10000000L };
	int i;

	for (i = 0; i < 500 && pv_testsrv_nreq(srv) < n; i++)
		nanosleep(&tick, NULL);
	ck_assert_uint_ge(pv_testsrv_nreq(srv), n);
}

/* The i-th delivery at srv through the adapter's webhook. */
static struct pv_psp_event *
delivered(struct pv_testsrv *srv, size_t i)
{
	const struct pv_testsrv_req *r = pv_testsrv_req(srv, i);
	struct pv_psp_event *ev;
	struct pv_err err;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(webhook(r->body, r->bodylen,
	                     pv_testsrv_header(r, "Stripe-Signature"), &ev,
	                     &err),
	    0);
	return ev;
}

START_TEST(test_stripe_webhook_emitter_delivers_in_order)
{
	static const struct pv_testsrv_resp ok = { 200, NULL,
		"{\"received\":true}", 0, 0, 0, 0 };
	struct pv_testsrv *srv = pv_testsrv_start();
	struct pv_psp_result out;
	struct pv_psp_event *ev;
	char conf[160];

	ck_assert_ptr_nonnull(srv);
	pv_testsrv_set_default(srv, &ok);
	snprintf(conf, sizeof(conf),
	    "{\"webhook_url\": \"%s/webhooks/stripe\"}", pv_testsrv_url(srv));
	ctl("POST", "/__fake/config", conf);
	charge_ok("pay_1", "pm_card_visa", &out);
	await(srv, 3);
	ck_assert_str_eq(delivered(srv, 0)->type, "payment_intent.created");
	ck_assert_int_eq(delivered(srv, 0)->kind, PV_PSP_EV_OTHER);
	ck_assert_str_eq(delivered(srv, 1)->type, "charge.succeeded");
	ev = delivered(srv, 2);
	ck_assert_str_eq(ev->type, "payment_intent.succeeded");
	ck_assert_int_eq(ev->kind, PV_PSP_EV_PAYMENT);
	ck_assert_int_eq(ev->status, PV_PSP_SUCCEEDED);
	ck_assert_str_eq(ev->reference, out.reference);

	/* Held, then released backwards: the refund before the payment. */
	ctl("POST", "/__fake/config", "{\"hold_webhooks\": true}");
	charge_ok("pay_2", "pm_card_authenticationRequired", &out);
	ctl("POST", "/__fake/complete_action", "{\"id\": \"pi_fake_000002\"}");
	ck_assert_uint_eq(pv_testsrv_nreq(srv), 3);
	ctl("POST", "/__fake/release", "{\"order\": \"reverse\"}");
	await(srv, 7);
	ck_assert_str_eq(delivered(srv, 3)->type, "payment_intent.succeeded");
	ck_assert_str_eq(delivered(srv, 4)->type, "charge.succeeded");
	ev = delivered(srv, 5);
	ck_assert_str_eq(ev->type, "payment_intent.requires_action");
	ck_assert_int_eq(ev->status, PV_PSP_REQUIRES_ACTION);
	ck_assert_str_eq(delivered(srv, 6)->type, "payment_intent.created");
	pv_testsrv_stop(srv);
}
END_TEST

START_TEST(test_stripe_webhook_refund_failed_later)
{
	static const struct pv_testsrv_resp ok = { 200, NULL,
		"{\"received\":true}", 0, 0, 0, 0 };
	struct pv_testsrv *srv = pv_testsrv_start();
	struct pv_psp_refund rin;
	struct pv_psp_refund_result rout;
	struct pv_psp_result out;
	struct pv_psp_event *ev;
	struct pv_err err = { 0 };
	char conf[160];
	size_t i;

	ck_assert_ptr_nonnull(srv);
	pv_testsrv_set_default(srv, &ok);
	snprintf(conf, sizeof(conf),
	    "{\"webhook_url\": \"%s/webhooks/stripe\"}", pv_testsrv_url(srv));
	ctl("POST", "/__fake/config", conf);
	charge_ok("pay_1", "pm_card_visa", &out);
	refund_in(&rin, "ref_1", out.reference, 2000, NULL);
	ck_assert_int_eq(pv_psp_stripe.refund(&ctx, &account, &rin, &rout,
	                     &err),
	    0);
	ctl("POST", "/__fake/refund_status",
	    "{\"id\": \"re_fake_000001\", \"status\": \"failed\"}");
	await(srv, 8);
	ev = delivered(srv, 3);
	ck_assert_str_eq(ev->type, "refund.created");
	ck_assert_int_eq(ev->refund_status, PV_PSP_REFUND_SUCCEEDED);
	ck_assert_str_eq(delivered(srv, 4)->type, "charge.refunded");
	for (i = 5; i < 8; i++) {
		ev = delivered(srv, i);
		ck_assert_int_eq(ev->kind, PV_PSP_EV_REFUND);
		ck_assert_int_eq(ev->refund_status, PV_PSP_REFUND_FAILED);
		ck_assert_str_eq(ev->refund_id, "ref_1");
		ck_assert_str_eq(ev->refund_reference, "re_fake_000001");
		ck_assert_str_eq(ev->reference, "pi_fake_000001");
	}
	ck_assert_str_eq(delivered(srv, 5)->type, "refund.updated");
	ck_assert_str_eq(delivered(srv, 6)->type, "charge.refund.updated");
	ck_assert_str_eq(delivered(srv, 7)->type, "refund.failed");
	/* The money is back on the charge: a new refund may take it. */
	refund_in(&rin, "ref_2", out.reference, 2000, NULL);
	ck_assert_int_eq(pv_psp_stripe.refund(&ctx, &account, &rin, &rout,
	                     &err),
	    0);
	ck_assert_str_eq(rout.reference, "re_fake_000002");
	pv_testsrv_stop(srv);
}
END_TEST

Suite *
stripe_suite(void)
{
	Suite *s = suite_create("stripe");
	TCase *charge = tcase_create("charge");
	TCase *faults = tcase_create("faults");
	TCase *other = tcase_create("refund_retrieve_verify");
	TCase *wh = tcase_create("webhook");

	tcase_add_unchecked_fixture(charge, start_fake, stop_fake);
	tcase_add_checked_fixture(charge, setup, teardown);
	tcase_set_timeout(charge, 30);
	tcase_add_test(charge, test_stripe_find_and_ack);
	tcase_add_test(charge, test_stripe_charge_succeeds_and_sends_form);
	tcase_add_test(charge, test_stripe_charge_uses_configured_base);
	tcase_add_loop_test(charge, test_stripe_charge_declines_carry_codes, 0,
	    (int)(sizeof(declines) / sizeof(declines[0])));
	tcase_add_test(charge,
	    test_stripe_charge_requires_action_returns_next_action);
	tcase_add_test(charge, test_stripe_charge_processing);
	tcase_add_test(charge, test_stripe_charge_unknown_token_is_invalid);
	tcase_add_test(charge, test_stripe_charge_bad_key_is_auth);
	tcase_add_test(charge, test_stripe_charge_checks_currency);
	tcase_add_test(charge, test_stripe_charge_alloc_failures_are_nomem);
	suite_add_tcase(s, charge);

	tcase_add_unchecked_fixture(faults, start_fake, stop_fake);
	tcase_add_checked_fixture(faults, setup, teardown);
	tcase_set_timeout(faults, 30);
	tcase_add_test(faults, test_stripe_charge_500_then_success_same_key);
	tcase_add_test(faults, test_stripe_charge_hangup_after_gets_replay);
	tcase_add_test(faults, test_stripe_charge_5xx_exhausted_is_upstream);
	tcase_add_test(faults, test_stripe_charge_should_retry_false_stops);
	tcase_add_test(faults,
	    test_stripe_charge_hangups_exhausted_is_upstream);
	tcase_add_test(faults, test_stripe_charge_4xx_reasons);
	tcase_add_test(faults,
	    test_stripe_charge_concurrent_duplicate_waits_for_replay);
	suite_add_tcase(s, faults);

	tcase_add_unchecked_fixture(other, start_fake, stop_fake);
	tcase_add_checked_fixture(other, setup, teardown);
	tcase_set_timeout(other, 30);
	tcase_add_test(other, test_stripe_refund_full);
	tcase_add_test(other, test_stripe_refund_partial_and_over);
	tcase_add_test(other, test_stripe_refund_of_declined_charge_refused);
	tcase_add_test(other, test_stripe_retrieve);
	tcase_add_test(other, test_stripe_verify);
	suite_add_tcase(s, other);

	tcase_add_unchecked_fixture(wh, start_fake, stop_fake);
	tcase_add_checked_fixture(wh, setup, teardown);
	tcase_set_timeout(wh, 30);
	tcase_add_test(wh, test_stripe_webhook_spec_vector);
	tcase_add_test(wh, test_stripe_webhook_rotated_secret);
	tcase_add_test(wh, test_stripe_webhook_signed_garbage_is_invalid);
	tcase_add_test(wh, test_stripe_webhook_event_kinds);
	tcase_add_test(wh, test_stripe_webhook_emitter_delivers_in_order);
	tcase_add_test(wh, test_stripe_webhook_refund_failed_later);
	suite_add_tcase(s, wh);
	return s;
}
