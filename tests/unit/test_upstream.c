/*
 * Unit tests of pv_upstream against the scripted loopback server of
 * tests/support/pv_testsrv.c: what goes on the wire, retries and their
 * waits, timeouts, caps, the URL policy, keep-alive and allocation
 * failures.  Waits that only need checking, not spending, go through
 * a fake sleep, so the file runs in a few seconds.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pv_arena.h"
#include "pv_buf.h"
#include "pv_test.h"
#include "pv_testsrv.h"
#include "pv_upstream.h"

#define NSLEEPS 16

static struct pv_arena *a;
static struct pv_upstream *up;
static struct pv_testsrv *srv;
static long sleeps[NSLEEPS];
static int nsleeps;

static void
setup(void)
{
	a = pv_arena_new(0);
	ck_assert_ptr_nonnull(a);
	up = pv_upstream_new();
	ck_assert_ptr_nonnull(up);
	srv = pv_testsrv_start();
	ck_assert_ptr_nonnull(srv);
	nsleeps = 0;
}

static void
teardown(void)
{
	pv_testsrv_stop(srv);
	pv_upstream_free(up);
	pv_arena_free(a);
}

/* Records a backoff wait instead of spending it. */
static void
fake_sleep(void *arg, long ms)
{
	(void)arg;
	if (nsleeps < NSLEEPS)
		sleeps[nsleeps] = ms;
	nsleeps++;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The test server's URL for path, in the arena. */
static const char *
url(const char *path)
{
	struct pv_err err = { 0 };
	const char *u;

	u = pv_upstream_url(a, pv_testsrv_url(srv), path, &err);
	ck_assert_ptr_nonnull(u);
	return u;
}

static void
push(int status, const char *headers, const char *body)
{
	struct pv_testsrv_resp r = { 0 };

	r.status = status;
	r.headers = headers;
	r.body = body;
	pv_testsrv_push(srv, &r);
}

/* A POST as a Stripe adapter sends it, with a fixed idempotency key. */
static const struct pv_upstream_hdr stripe_hdrs[] = {
	{ "Authorization", "Bearer sk_test_secret" },
	{ "Stripe-Version", "2026-07-29.dahlia" },
	{ "Idempotency-Key", "7c1e6b0e-4b4f-4d55-9a8e-3f3c5b9d2a10" },
	{ "Content-Type", "application/x-www-form-urlencoded" },
};

static void
stripe_post(struct pv_upstream_req *req, const char *body)
{
	memset(req, 0, sizeof(*req));
	req->method = PV_UPSTREAM_POST;
	req->url = url("/v1/payment_intents");
	req->hdrs = stripe_hdrs;
	req->nhdrs = sizeof(stripe_hdrs) / sizeof(stripe_hdrs[0]);
	req->body = body;
	req->bodylen = strlen(body);
	req->retry_safe = 1;
	req->backoff_base_ms = 1;
	req->backoff_max_ms = 2;
}

START_TEST(test_upstream_do_get_sends_headers_and_reads_reply)
{
	static const struct pv_upstream_hdr hdrs[] = {
		{ "Authorization", "Bearer sk_test_secret" },
		{ "X-Empty", "" },
	};
	struct pv_upstream_req req = { 0 };
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	const struct pv_testsrv_req *r;

	push(200,
	    "Content-Type: application/json\r\n"
	    "Request-Id: req_123\r\n"
	    "Idempotent-Replayed:   true  \r\n",
	    "{\"id\":\"pi_1\"}");
	req.url = url("/v1/payment_intents/pi_1?expand[]=latest_charge");
	req.hdrs = hdrs;
	req.nhdrs = 2;
	req.retry_safe = 1;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_int_eq(resp.attempts, 1);
	ck_assert_str_eq(resp.body, "{\"id\":\"pi_1\"}");
	ck_assert_uint_eq(resp.bodylen, 13);
	ck_assert_str_eq(pv_upstream_resp_header(&resp, "request-id"),
	    "req_123");
	ck_assert_str_eq(pv_upstream_resp_header(&resp, "IDEMPOTENT-REPLAYED"),
	    "true");
	ck_assert_ptr_null(pv_upstream_resp_header(&resp, "Retry-After"));
	ck_assert_int_eq(resp.retry_after_ms, -1);

	ck_assert_uint_eq(pv_testsrv_nreq(srv), 1);
	r = pv_testsrv_req(srv, 0);
	ck_assert_str_eq(r->method, "GET");
	ck_assert_str_eq(r->target,
	    "/v1/payment_intents/pi_1?expand[]=latest_charge");
	ck_assert_str_eq(pv_testsrv_header(r, "Authorization"),
	    "Bearer sk_test_secret");
	ck_assert_str_eq(pv_testsrv_header(r, "X-Empty"), "");
	ck_assert_str_eq(pv_testsrv_header(r, "User-Agent"), "pivota");
	ck_assert_uint_eq(r->bodylen, 0);
}
END_TEST

START_TEST(test_upstream_do_post_body_is_byte_exact)
{
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	const struct pv_testsrv_req *r;
	static char body[3000];
	size_t i;

	/* Over 1 KiB, NULs and high bytes: no Expect, no truncation. */
	for (i = 0; i < sizeof(body); i++)
		body[i] = (char)(i * 7);
	push(201, NULL, "created");
	stripe_post(&req, "");
	req.body = body;
	req.bodylen = sizeof(body);
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.status, 201);
	ck_assert_str_eq(resp.body, "created");

	r = pv_testsrv_req(srv, 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->method, "POST");
	ck_assert_str_eq(r->target, "/v1/payment_intents");
	ck_assert_uint_eq(r->bodylen, sizeof(body));
	ck_assert_mem_eq(r->body, body, sizeof(body));
	ck_assert_str_eq(pv_testsrv_header(r, "Content-Type"),
	    "application/x-www-form-urlencoded");
	ck_assert_str_eq(pv_testsrv_header(r, "Stripe-Version"),
	    "2026-07-29.dahlia");
	ck_assert_str_eq(pv_testsrv_header(r, "Content-Length"), "3000");
	ck_assert_ptr_null(pv_testsrv_header(r, "Expect"));
}
END_TEST

START_TEST(test_upstream_do_methods_on_the_wire)
{
	static const char *const names[] = { "PUT", "PATCH", "DELETE", "HEAD" };
	static const enum pv_upstream_method m[] = { PV_UPSTREAM_PUT,
		PV_UPSTREAM_PATCH, PV_UPSTREAM_DELETE, PV_UPSTREAM_HEAD };
	struct pv_upstream_req req = { 0 };
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	size_t i;

	for (i = 0; i < 4; i++) {
		push(200, NULL, i == 3 ? NULL : "ok");
		memset(&req, 0, sizeof(req));
		req.method = m[i];
		req.url = url("/x");
		if (m[i] == PV_UPSTREAM_PUT) {
			req.body = "a=1";
			req.bodylen = 3;
		}
		ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
		ck_assert_int_eq(resp.status, 200);
		ck_assert_str_eq(pv_testsrv_req(srv, i)->method, names[i]);
	}
	ck_assert_str_eq(pv_testsrv_req(srv, 0)->body, "a=1");
	ck_assert_str_eq(pv_testsrv_header(pv_testsrv_req(srv, 1),
	                     "Content-Length"),
	    "0");
}
END_TEST

START_TEST(test_upstream_do_5xx_retried_with_same_key)
{
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	size_t i;

	push(500, NULL, "{\"error\":{\"type\":\"api_error\"}}");
	push(503, NULL, "unavailable");
	push(200, NULL, "{\"id\":\"pi_1\"}");
	stripe_post(&req, "amount=2000&currency=usd");
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_int_eq(resp.attempts, 3);
	ck_assert_str_eq(resp.body, "{\"id\":\"pi_1\"}");
	ck_assert_uint_eq(pv_testsrv_nreq(srv), 3);
	for (i = 0; i < 3; i++) {
		ck_assert_str_eq(pv_testsrv_header(pv_testsrv_req(srv, i),
		                     "Idempotency-Key"),
		    stripe_hdrs[2].value);
		ck_assert_str_eq(pv_testsrv_req(srv, i)->body,
		    "amount=2000&currency=usd");
	}
}
END_TEST

START_TEST(test_upstream_do_last_5xx_is_returned)
{
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };

	push(500, NULL, "one");
	push(502, NULL, "two");
	push(503, NULL, "three");
	push(200, NULL, "never");
	stripe_post(&req, "a=1");
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(err.code, PV_OK);
	ck_assert_int_eq(resp.status, 503);
	ck_assert_str_eq(resp.body, "three");
	ck_assert_int_eq(resp.attempts, 3);
	ck_assert_uint_eq(pv_testsrv_pending(srv), 1);
}
END_TEST

START_TEST(test_upstream_do_409_is_retried)
{
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };

	push(409, NULL, "{\"error\":{\"type\":\"idempotency_error\"}}");
	push(200, NULL, "ok");
	stripe_post(&req, "a=1");
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_int_eq(resp.attempts, 2);
}
END_TEST

START_TEST(test_upstream_do_retry_after_seconds_waited)
{
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	int64_t t0, ms;

	push(429, "Retry-After: 1\r\n", "{\"errors\":\"Throttled\"}");
	push(200, NULL, "ok");
	stripe_post(&req, "a=1");
	t0 = now_ms();
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ms = now_ms() - t0;
	ck_assert_int_eq(resp.status, 200);
	ck_assert_int_eq(resp.attempts, 2);
	ck_assert_int_ge(ms, 990);
	ck_assert_int_lt(ms, 2500);
}
END_TEST

START_TEST(test_upstream_do_retry_after_fraction_waited)
{
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	int64_t t0, ms;

	push(429, "Retry-After: 0.2\r\n", "{\"errors\":\"Exceeded\"}");
	push(200, NULL, "ok");
	stripe_post(&req, "a=1");
	t0 = now_ms();
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ms = now_ms() - t0;
	ck_assert_int_eq(resp.status, 200);
	ck_assert_int_eq(resp.attempts, 2);
	ck_assert_int_ge(ms, 195);
	ck_assert_int_lt(ms, 900);
}
END_TEST

START_TEST(test_upstream_do_retry_after_forms_parsed)
{
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	char hdr[128];
	struct tm tm;
	time_t t;

	pv_upstream_set_sleep(up, fake_sleep, NULL);
	t = time(NULL) + 3;
	gmtime_r(&t, &tm);
	ck_assert_uint_gt(strftime(hdr, sizeof(hdr),
	                      "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n",
	                      &tm),
	    0);
	push(503, hdr, NULL);
	push(429, "Retry-After: 2.0\r\n", NULL);
	push(429, "Retry-After: 0.125\r\n", NULL);
	push(429, "Retry-After: soon\r\n", NULL);
	push(200, NULL, "ok");
	stripe_post(&req, "a=1");
	req.max_attempts = 5;
	req.backoff_base_ms = 40;
	req.backoff_max_ms = 40;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_int_eq(resp.attempts, 5);
	ck_assert_int_eq(nsleeps, 4);
	ck_assert_int_ge(sleeps[0], 1000); /* the date has 1 s resolution */
	ck_assert_int_le(sleeps[0], 3000);
	ck_assert_int_eq(sleeps[1], 2000);
	ck_assert_int_eq(sleeps[2], 125);
	ck_assert_int_le(sleeps[3], 40); /* unreadable: backoff instead */
}
END_TEST

START_TEST(test_upstream_do_retry_after_past_budget_not_waited)
{
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };

	pv_upstream_set_sleep(up, fake_sleep, NULL);
	push(429, "Retry-After: 30\r\n",
	    "{\"error\":{\"code\":\"rate_limit\"}}");
	push(200, NULL, "ok");
	stripe_post(&req, "a=1");
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.status, 429);
	ck_assert_int_eq(resp.attempts, 1);
	ck_assert_int_eq(resp.retry_after_ms, 30000);
	ck_assert_int_eq(nsleeps, 0);
}
END_TEST

START_TEST(test_upstream_do_backoff_is_full_jitter)
{
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	int i;

	pv_upstream_set_sleep(up, fake_sleep, NULL);
	for (i = 0; i < 6; i++)
		push(500, NULL, NULL);
	stripe_post(&req, "a=1");
	req.max_attempts = 6;
	req.backoff_base_ms = 100;
	req.backoff_max_ms = 250;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.attempts, 6);
	ck_assert_int_eq(nsleeps, 5);
	ck_assert_int_le(sleeps[0], 100);
	ck_assert_int_le(sleeps[1], 200);
	for (i = 0; i < 5; i++) {
		ck_assert_int_ge(sleeps[i], 0);
		ck_assert_int_le(sleeps[i], 250);
	}
}
END_TEST

START_TEST(test_upstream_do_defaults_apply)
{
	struct pv_upstream_req req = { 0 };
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	int i;

	pv_upstream_set_sleep(up, fake_sleep, NULL);
	for (i = 0; i < 4; i++)
		push(500, NULL, NULL);
	req.url = url("/");
	req.retry_safe = 1;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.attempts, PV_UPSTREAM_MAX_ATTEMPTS);
	ck_assert_int_eq(nsleeps, 2);
	ck_assert_int_le(sleeps[0], PV_UPSTREAM_BACKOFF_BASE_MS);
	ck_assert_int_le(sleeps[1], 2 * PV_UPSTREAM_BACKOFF_BASE_MS);
}
END_TEST

START_TEST(test_upstream_do_4xx_not_retried)
{
	static const int codes[] = { 400, 401, 402, 404, 422 };
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		push(codes[i], NULL, "{\"error\":{\"type\":\"card_error\"}}");
		push(200, NULL, "wrong");
		stripe_post(&req, "a=1");
		ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
		ck_assert_int_eq(resp.status, codes[i]);
		ck_assert_int_eq(resp.attempts, 1);
		ck_assert_str_eq(resp.body,
		    "{\"error\":{\"type\":\"card_error\"}}");
		ck_assert_uint_eq(pv_testsrv_nreq(srv), 2 * i + 1);
		/* Use up the 200 so the next round starts clean. */
		req.retry_safe = 0;
		ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	}
}
END_TEST

START_TEST(test_upstream_do_unsafe_post_attempted_once)
{
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };

	push(500, NULL, "boom");
	push(200, NULL, "ok");
	stripe_post(&req, "a=1");
	req.nhdrs = 2; /* no Idempotency-Key */
	req.retry_safe = 0;
	req.max_attempts = 5;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.status, 500);
	ck_assert_int_eq(resp.attempts, 1);
	ck_assert_uint_eq(pv_testsrv_nreq(srv), 1);
}
END_TEST

START_TEST(test_upstream_do_stripe_should_retry_obeyed)
{
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };

	push(500, "Stripe-Should-Retry: false\r\n", "no");
	stripe_post(&req, "a=1");
	req.retry_fn = pv_upstream_stripe_retry;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.status, 500);
	ck_assert_int_eq(resp.attempts, 1);
	ck_assert_uint_eq(pv_testsrv_nreq(srv), 1);

	pv_arena_reset(a);
	req.url = url("/v1/payment_intents");
	push(400, "Stripe-Should-Retry: true\r\n", "lock");
	push(200, NULL, "ok");
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(resp.body, "ok");
	ck_assert_int_eq(resp.attempts, 2);
	ck_assert_uint_eq(pv_testsrv_pending(srv), 0);
}
END_TEST

static int hook_calls;
static enum pv_errcode hook_transport[4];
static long hook_status[4];

static enum pv_upstream_verdict
record_hook(void *arg, const struct pv_upstream_resp *resp,
    enum pv_errcode transport)
{
	ck_assert_ptr_eq(arg, &hook_calls);
	if (hook_calls < 4) {
		hook_transport[hook_calls] = transport;
		hook_status[hook_calls] = resp->status;
	}
	hook_calls++;
	return PV_UPSTREAM_DEFAULT;
}

START_TEST(test_upstream_do_hangup_retried_on_new_connection)
{
	struct pv_testsrv_resp hang = { 0 };
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };

	hang.hangup = 1;
	pv_testsrv_push(srv, &hang);
	push(200, NULL, "ok");
	stripe_post(&req, "a=1");
	req.retry_fn = record_hook;
	req.retry_arg = &hook_calls;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_int_eq(resp.attempts, 2);
	ck_assert_int_eq(pv_testsrv_nconn(srv), 2);
	ck_assert_int_eq(hook_calls, 2);
	ck_assert_int_eq(hook_transport[0], PV_E_UPSTREAM);
	ck_assert_int_eq(hook_status[0], 0);
	ck_assert_int_eq(hook_transport[1], PV_OK);
	ck_assert_int_eq(hook_status[1], 200);
}
END_TEST

START_TEST(test_upstream_do_hangup_unsafe_is_upstream_error)
{
	struct pv_testsrv_resp hang = { 0 };
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };

	hang.hangup = 1;
	pv_testsrv_push(srv, &hang);
	push(200, NULL, "ok");
	stripe_post(&req, "a=1");
	req.retry_safe = 0;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_int_eq(resp.attempts, 1);
	ck_assert_int_eq(resp.status, 0);
	ck_assert_uint_eq(pv_testsrv_nreq(srv), 1);
	ck_assert_ptr_nonnull(strstr(err.msg, "attempts: 1"));
}
END_TEST

START_TEST(test_upstream_do_timeout_is_timeout)
{
	struct pv_testsrv_resp slow = { 0 };
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	int64_t t0, ms;

	slow.delay_ms = 3000;
	pv_testsrv_push(srv, &slow);
	stripe_post(&req, "a=1");
	req.retry_safe = 0;
	req.timeout_ms = 200;
	t0 = now_ms();
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), -1);
	ms = now_ms() - t0;
	ck_assert_int_eq(err.code, PV_E_TIMEOUT);
	ck_assert_int_eq(resp.attempts, 1);
	ck_assert_int_ge(ms, 190);
	ck_assert_int_lt(ms, 1500);
}
END_TEST

START_TEST(test_upstream_do_timeout_then_success)
{
	struct pv_testsrv_resp slow = { 0 };
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };

	slow.delay_ms = 3000;
	pv_testsrv_push(srv, &slow);
	push(200, NULL, "ok");
	stripe_post(&req, "a=1");
	req.timeout_ms = 200;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_int_eq(resp.attempts, 2);
}
END_TEST

START_TEST(test_upstream_do_budget_cuts_attempt)
{
	struct pv_testsrv_resp slow = { 0 };
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	int64_t t0, ms;

	slow.delay_ms = 3000;
	pv_testsrv_push(srv, &slow);
	push(200, NULL, "ok");
	stripe_post(&req, "a=1");
	req.budget_ms = 250; /* the 10 s attempt timeout is cut to this */
	t0 = now_ms();
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), -1);
	ms = now_ms() - t0;
	ck_assert_int_eq(err.code, PV_E_TIMEOUT);
	ck_assert_int_eq(resp.attempts, 1);
	ck_assert_int_lt(ms, 1500);
}
END_TEST

START_TEST(test_upstream_do_refused_connection_retried_then_fails)
{
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	struct pv_testsrv *gone;
	char u[64];
	int n;

	/* A port that was just listening and is now closed. */
	gone = pv_testsrv_start();
	ck_assert_ptr_nonnull(gone);
	n = snprintf(u, sizeof(u), "%s/v1/x", pv_testsrv_url(gone));
	ck_assert(n > 0 && (size_t)n < sizeof(u));
	pv_testsrv_stop(gone);
	stripe_post(&req, "a=1");
	req.url = u;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_UPSTREAM);
	ck_assert_int_eq(resp.attempts, 3);
	ck_assert_ptr_nonnull(strstr(err.msg, "attempts: 3"));
}
END_TEST

START_TEST(test_upstream_do_response_over_cap_refused)
{
	struct pv_testsrv_resp big = { 0 };
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	static char body[5000];
	int streamed;

	memset(body, 'x', sizeof(body));
	big.body = body;
	big.bodylen = sizeof(body);
	/* With Content-Length libcurl stops early; without, we do. */
	for (streamed = 0; streamed < 2; streamed++) {
		pv_err_clear(&err);
		big.no_length = streamed;
		pv_testsrv_push(srv, &big);
		stripe_post(&req, "a=1");
		req.max_resp = 1000;
		ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), -1);
		ck_assert_int_eq(err.code, PV_E_UPSTREAM);
		ck_assert_ptr_nonnull(strstr(err.msg, "too large"));
		ck_assert_int_eq(resp.attempts, 1);
		ck_assert_uint_eq(pv_testsrv_nreq(srv), (size_t)streamed + 1);
	}
}
END_TEST

START_TEST(test_upstream_do_response_at_cap_accepted)
{
	struct pv_testsrv_resp big = { 0 };
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	static char body[1000];
	int streamed;

	memset(body, 'y', sizeof(body));
	big.body = body;
	big.bodylen = sizeof(body);
	for (streamed = 0; streamed < 2; streamed++) {
		big.no_length = streamed;
		pv_testsrv_push(srv, &big);
		stripe_post(&req, "a=1");
		req.max_resp = sizeof(body);
		ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
		ck_assert_uint_eq(resp.bodylen, sizeof(body));
		ck_assert_mem_eq(resp.body, body, sizeof(body));
		ck_assert_int_eq(resp.body[sizeof(body)], '\0');
	}
}
END_TEST

START_TEST(test_upstream_do_url_policy)
{
	static const char *const refused[] = {
		"http://example.com/v1/x",
		"http://127.0.0.1.nip.io/v1/x",
		"http://localhost.example.com/",
		"http://[::ffff:127.0.0.1]/",
		"ftp://127.0.0.1/x",
		"file:///etc/passwd",
		"127.0.0.1/no-scheme",
		"not a url",
	};
	struct pv_upstream_req req = { 0 };
	struct pv_upstream_resp resp;
	struct pv_err err;
	size_t i;

	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		pv_err_clear(&err);
		req.url = refused[i];
		ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), -1);
		ck_assert_int_eq(err.code, PV_E_UPSTREAM);
		ck_assert_int_eq(resp.attempts, 0);
	}
	/* Loopback spellings pass the policy (nothing listens there). */
	pv_err_clear(&err);
	req.url = "http://[::1]:1/";
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), -1);
	ck_assert_int_eq(resp.attempts, 1);
	pv_err_clear(&err);
	req.url = "http://127.9.9.9:1/";
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), -1);
	ck_assert_int_eq(resp.attempts, 1);
	ck_assert_uint_eq(pv_testsrv_nreq(srv), 0);
}
END_TEST

START_TEST(test_upstream_do_localhost_allowed)
{
	struct pv_upstream_req req = { 0 };
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };
	char u[64];
	int n;

	push(200, NULL, "ok");
	n = snprintf(u, sizeof(u), "http://LocalHost:%d/ping",
	    pv_testsrv_port(srv));
	ck_assert(n > 0 && (size_t)n < sizeof(u));
	req.url = u;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(resp.status, 200);
}
END_TEST

START_TEST(test_upstream_do_bad_header_refused_silently)
{
	static const struct pv_upstream_hdr bad[] = {
		{ "Authorization", "Bearer sk_test_secret\r\nX-Evil: 1" },
	};
	static const struct pv_upstream_hdr badname[] = {
		{ "Bad Name", "v" },
	};
	struct pv_upstream_req req = { 0 };
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };

	req.url = url("/");
	req.hdrs = bad;
	req.nhdrs = 1;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	ck_assert_ptr_null(strstr(err.msg, "sk_test"));
	pv_err_clear(&err);
	req.hdrs = badname;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	req.hdrs = NULL;
	req.nhdrs = 0;
	req.body = "x";
	req.bodylen = 1; /* a GET with a body */
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	ck_assert_uint_eq(pv_testsrv_nreq(srv), 0);
}
END_TEST

START_TEST(test_upstream_do_keepalive_reused)
{
	struct pv_upstream_req req = { 0 };
	struct pv_upstream_resp resp;
	struct pv_err err = { 0 };

	push(200, NULL, "one");
	push(200, NULL, "two");
	push(200, NULL, "three");
	req.url = url("/a");
	req.retry_safe = 1;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_str_eq(resp.body, "one");
	pv_arena_reset(a);
	req.url = url("/b");
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_str_eq(resp.body, "two");
	ck_assert_int_eq(pv_testsrv_nconn(srv), 1);
	ck_assert_int_eq(pv_testsrv_req(srv, 0)->conn, 1);
	ck_assert_int_eq(pv_testsrv_req(srv, 1)->conn, 1);
	/* At-most-once requests never ride a connection that may be dead. */
	req.retry_safe = 0;
	ck_assert_int_eq(pv_upstream_do(up, a, &req, &resp, &err), 0);
	ck_assert_int_eq(pv_testsrv_nconn(srv), 2);
}
END_TEST

/* Every arena allocation of a full call fails cleanly in turn. */
START_TEST(test_upstream_do_fail_after_injects_each_step)
{
	struct pv_testsrv_resp ok = { 0 };
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err err;
	static char body[20000];
	const char *u;
	long n;
	int rc;

	memset(body, 'z', sizeof(body));
	ok.headers = "Request-Id: req_1\r\nX-Pad: "
	             "0123456789012345678901234567890123456789\r\n";
	ok.body = body;
	ok.bodylen = sizeof(body);
	pv_testsrv_set_default(srv, &ok);
	for (n = 0; n < 200; n++) {
		pv_err_clear(&err);
		pv_arena_reset(a);
		u = url("/v1/payment_intents");
		stripe_post(&req, "amount=2000");
		req.url = u;
		pv_arena_fail_after(a, n);
		rc = pv_upstream_do(up, a, &req, &resp, &err);
		pv_arena_fail_after(a, -1);
		if (rc == 0)
			break;
		ck_assert_int_eq(rc, -1);
		ck_assert_int_eq(err.code, PV_E_NOMEM);
		ck_assert_int_le(resp.attempts, 1);
	}
	ck_assert_int_ge(n, 3);
	ck_assert_int_lt(n, 200);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_uint_eq(resp.bodylen, sizeof(body));
	ck_assert_str_eq(pv_upstream_resp_header(&resp, "Request-Id"), "req_1");
}
END_TEST

START_TEST(test_upstream_form_add_encodes)
{
	struct pv_err err = { 0 };
	struct pv_buf b;
	const char *s;

	pv_buf_init(&b, a, 1024);
	pv_upstream_form_add_int64(&b, "amount", 2000);
	pv_upstream_form_add(&b, "currency", "usd");
	pv_upstream_form_add(&b, "metadata[order id]", "a&b=c \xc3\xbc+");
	pv_upstream_form_add(&b, "expand[]", "latest_charge");
	pv_upstream_form_add(&b, "description", "");
	pv_upstream_form_add_int64(&b, "n", -9223372036854775807LL - 1);
	pv_upstream_form_addn(&b, "raw", "a\0b", 3);
	ck_assert_int_eq(pv_buf_finish(&b, &s, NULL, &err), 0);
	ck_assert_str_eq(s,
	    "amount=2000&currency=usd"
	    "&metadata[order%20id]=a%26b%3Dc%20%C3%BC%2B"
	    "&expand[]=latest_charge&description="
	    "&n=-9223372036854775808&raw=a%00b");
}
END_TEST

START_TEST(test_upstream_form_add_sticky_cap)
{
	struct pv_err err = { 0 };
	struct pv_buf b;
	const char *s;

	pv_buf_init(&b, a, 16);
	pv_upstream_form_add(&b, "amount", "2000");
	pv_upstream_form_add(&b, "currency", "usd");
	pv_upstream_form_add(&b, "x", "y");
	ck_assert_int_eq(pv_buf_finish(&b, &s, NULL, &err), -1);
	ck_assert_int_eq(err.code, PV_E_TOOBIG);
}
END_TEST

START_TEST(test_upstream_url_joins_one_slash)
{
	struct pv_err err = { 0 };

	ck_assert_str_eq(pv_upstream_url(a, "http://127.0.0.1:12111",
	                     "/v1/payment_intents", &err),
	    "http://127.0.0.1:12111/v1/payment_intents");
	ck_assert_str_eq(pv_upstream_url(a, "http://127.0.0.1:12111/",
	                     "/v1/refunds", &err),
	    "http://127.0.0.1:12111/v1/refunds");
	ck_assert_str_eq(pv_upstream_url(a, "https://api.stripe.com//",
	                     "v1/refunds?limit=3", &err),
	    "https://api.stripe.com/v1/refunds?limit=3");
	ck_assert_str_eq(pv_upstream_url(a, "https://shop.example/admin/api/",
	                     "2025-07/graphql.json", &err),
	    "https://shop.example/admin/api/2025-07/graphql.json");
	ck_assert_str_eq(pv_upstream_url(a, "http://127.0.0.1:1", "", &err),
	    "http://127.0.0.1:1/");
	pv_arena_fail_after(a, 0);
	ck_assert_ptr_null(pv_upstream_url(a, "http://h", "/x", &err));
	ck_assert_int_eq(err.code, PV_E_NOMEM);
}
END_TEST

START_TEST(test_upstream_url_loopback_judges_hosts)
{
	struct pv_err err = { 0 };

	ck_assert_int_eq(pv_upstream_url_loopback(up, "http://127.0.0.1:9/",
	                     "u", &err),
	    1);
	ck_assert_int_eq(pv_upstream_url_loopback(up, "https://localhost", "u",
	                     &err),
	    1);
	ck_assert_int_eq(pv_upstream_url_loopback(up, "http://[::1]:80/x", "u",
	                     &err),
	    1);
	ck_assert_int_eq(pv_upstream_url_loopback(up,
	                     "https://shop.myshopify.com", "u", &err),
	    0);
	ck_assert_int_eq(err.code, PV_OK);
	ck_assert_int_eq(pv_upstream_url_loopback(up, "http://10.0.0.1/",
	                     "--api-base", &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.field, "--api-base");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_upstream_url_loopback(up, "ftp://127.0.0.1/", "u",
	                     &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_upstream_url_loopback(up, "not a url", "u", &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
}
END_TEST

START_TEST(test_upstream_sleep_uses_the_hook)
{
	pv_upstream_set_sleep(up, fake_sleep, NULL);
	pv_upstream_sleep(up, 0);
	pv_upstream_sleep(up, 250);
	ck_assert_int_eq(nsleeps, 1);
	ck_assert_int_eq(sleeps[0], 250);
}
END_TEST

Suite *
upstream_suite(void)
{
	Suite *s = suite_create("upstream");
	TCase *wire = tcase_create("wire");
	TCase *retry = tcase_create("retry");
	TCase *fail = tcase_create("failures");
	TCase *build = tcase_create("build");

	tcase_add_checked_fixture(wire, setup, teardown);
	tcase_add_test(wire,
	    test_upstream_do_get_sends_headers_and_reads_reply);
	tcase_add_test(wire, test_upstream_do_post_body_is_byte_exact);
	tcase_add_test(wire, test_upstream_do_methods_on_the_wire);
	tcase_add_test(wire, test_upstream_do_keepalive_reused);
	tcase_add_test(wire, test_upstream_do_url_policy);
	tcase_add_test(wire, test_upstream_do_localhost_allowed);
	tcase_add_test(wire, test_upstream_do_bad_header_refused_silently);
	suite_add_tcase(s, wire);

	tcase_add_checked_fixture(retry, setup, teardown);
	tcase_add_test(retry, test_upstream_do_5xx_retried_with_same_key);
	tcase_add_test(retry, test_upstream_do_last_5xx_is_returned);
	tcase_add_test(retry, test_upstream_do_409_is_retried);
	tcase_add_test(retry, test_upstream_do_retry_after_seconds_waited);
	tcase_add_test(retry, test_upstream_do_retry_after_fraction_waited);
	tcase_add_test(retry, test_upstream_do_retry_after_forms_parsed);
	tcase_add_test(retry,
	    test_upstream_do_retry_after_past_budget_not_waited);
	tcase_add_test(retry, test_upstream_do_backoff_is_full_jitter);
	tcase_add_test(retry, test_upstream_do_defaults_apply);
	tcase_add_test(retry, test_upstream_do_4xx_not_retried);
	tcase_add_test(retry, test_upstream_do_unsafe_post_attempted_once);
	tcase_add_test(retry, test_upstream_do_stripe_should_retry_obeyed);
	tcase_add_test(retry,
	    test_upstream_do_hangup_retried_on_new_connection);
	suite_add_tcase(s, retry);

	tcase_add_checked_fixture(fail, setup, teardown);
	tcase_add_test(fail, test_upstream_do_hangup_unsafe_is_upstream_error);
	tcase_add_test(fail, test_upstream_do_timeout_is_timeout);
	tcase_add_test(fail, test_upstream_do_timeout_then_success);
	tcase_add_test(fail, test_upstream_do_budget_cuts_attempt);
	tcase_add_test(fail,
	    test_upstream_do_refused_connection_retried_then_fails);
	tcase_add_test(fail, test_upstream_do_response_over_cap_refused);
	tcase_add_test(fail, test_upstream_do_response_at_cap_accepted);
	tcase_add_test(fail, test_upstream_do_fail_after_injects_each_step);
	suite_add_tcase(s, fail);

	tcase_add_checked_fixture(build, setup, teardown);
	tcase_add_test(build, test_upstream_form_add_encodes);
	tcase_add_test(build, test_upstream_form_add_sticky_cap);
	tcase_add_test(build, test_upstream_url_joins_one_slash);
	tcase_add_test(build, test_upstream_url_loopback_judges_hosts);
	tcase_add_test(build, test_upstream_sleep_uses_the_hook);
	suite_add_tcase(s, build);
	return s;
}
