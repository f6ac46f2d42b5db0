/*
 * Agent access through the real servers (issue 3): authentication,
 * rate limits and quotas that hold across two web servers on one
 * database, idempotency under concurrency, and analytics that count
 * exactly the requests sent.  Agents are made with the real pivotactl.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pv_httpc.h"
#include "pv_proc.h"
#include "pv_test.h"

#define MAX_SERVERS 8

static struct pv_httpc_server servers[MAX_SERVERS];
static size_t nservers;

static void
setup(void)
{
	nservers = pv_httpc_servers(servers, MAX_SERVERS);
	ck_assert_msg(nservers >= 2,
	    "need two servers: run these through tests/integration/run.sh");
}

struct agent {
	char id[64];   /* agt_... */
	char key[128]; /* ak_live_... */
};

/* Creates an agent with the given limits through pivotactl --json. */
static void
make_agent(struct agent *a, const char *per_minute, const char *daily)
{
	char out[1024];
	struct json_object *o;

	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "agent", "create",
	                     "--name", "test agent", "--per-minute", per_minute,
	                     "--json", NULL),
	    0);
	o = json_tokener_parse(out);
	ck_assert_msg(o != NULL, "pivotactl printed: %s", out);
	ck_assert_int_gt(snprintf(a->id, sizeof(a->id), "%s",
	                     pv_httpc_json_str(o, "agent_id")),
	    0);
	ck_assert_int_gt(snprintf(a->key, sizeof(a->key), "%s",
	                     pv_httpc_json_str(o, "api_key")),
	    0);
	json_object_put(o);
	ck_assert(strncmp(a->key, "ak_live_", 8) == 0);
	ck_assert_uint_eq(strlen(a->key), 72);
	if (daily != NULL)
		ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "agent",
		                     "set-limits", a->id, "--daily", daily,
		                     NULL),
		    0);
}

static void
request(struct pv_httpc_resp *r, const struct pv_httpc_server *s,
    const char *method, const char *path, const char *const *headers,
    const char *body)
{
	char *url = pv_httpc_url(s->base, path);

	ck_assert_ptr_nonnull(url);
	ck_assert_msg(pv_httpc_request(r, method, url, headers, body,
	                  body != NULL ? strlen(body) : 0) == 0,
	    "%s: %s", s->name, r->error);
	free(url);
}

/* Asserts the API.md error shape with the given status and code. */
static void
assert_error(const struct pv_httpc_resp *r, long status, const char *code,
    const char *who)
{
	struct json_object *o = pv_httpc_json(r);

	ck_assert_msg(r->status == status, "%s: status %ld, want %ld: %s", who,
	    r->status, status, r->body);
	ck_assert_msg(o != NULL, "%s: body is not JSON: %s", who, r->body);
	ck_assert_str_eq(pv_httpc_json_str(o, "status"), "error");
	ck_assert_ptr_nonnull(pv_httpc_json_str(o, "detail"));
	ck_assert_ptr_nonnull(pv_httpc_json_str(o, "error.type"));
	ck_assert_str_eq(pv_httpc_json_str(o, "error.code"), code);
	json_object_put(o);
}

START_TEST(test_agent_auth_failures_and_both_headers)
{
	struct pv_httpc_resp r;
	struct agent a, b;
	char hk[160], hb[170], out[512];
	const char *none[] = { NULL };
	const char *bad[] = { "X-API-Key: ak_live_123", NULL };
	const char *unknown[] = { "X-API-Key: ak_live_"
		                  "00000000000000000000000000000000"
		                  "00000000000000000000000000000000",
		NULL };
	const char *hdr_key[] = { hk, NULL };
	const char *hdr_bearer[] = { hb, NULL };
	size_t i;

	make_agent(&a, "1000", NULL);
	make_agent(&b, "1000", NULL);
	snprintf(hk, sizeof(hk), "X-API-Key: %s", a.key);
	snprintf(hb, sizeof(hb), "Authorization: Bearer %s", a.key);
	for (i = 0; i < nservers; i++) {
		request(&r, &servers[i], "GET", "/agent/v1/rate-limits", none,
		    NULL);
		assert_error(&r, 401, "missing_api_key", servers[i].name);
		pv_httpc_resp_free(&r);
		request(&r, &servers[i], "GET", "/agent/v1/rate-limits", bad,
		    NULL);
		assert_error(&r, 401, "invalid_api_key", servers[i].name);
		pv_httpc_resp_free(&r);
		request(&r, &servers[i], "GET", "/agent/v1/rate-limits",
		    unknown, NULL);
		assert_error(&r, 401, "invalid_api_key", servers[i].name);
		pv_httpc_resp_free(&r);

		request(&r, &servers[i], "GET", "/agent/v1/rate-limits",
		    hdr_key, NULL);
		ck_assert_msg(r.status == 200, "%s: %s", servers[i].name,
		    r.body);
		ck_assert_ptr_nonnull(pv_httpc_header(&r, "X-RateLimit-Limit"));
		ck_assert_str_eq(pv_httpc_header(&r, "X-RateLimit-Limit"),
		    "1000");
		ck_assert_ptr_nonnull(pv_httpc_header(&r, "X-Quota-Remaining"));
		ck_assert_ptr_nonnull(pv_httpc_header(&r, "X-RateLimit-Reset"));
		pv_httpc_resp_free(&r);
		request(&r, &servers[i], "GET", "/agent/v1/rate-limits",
		    hdr_bearer, NULL);
		ck_assert_msg(r.status == 200, "%s: %s", servers[i].name,
		    r.body);
		pv_httpc_resp_free(&r);
	}

	/* Suspended: 403.  Revoked: 401.  Another agent is untouched. */
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "agent", "suspend", a.id,
	                     NULL),
	    0);
	request(&r, &servers[0], "GET", "/agent/v1/rate-limits", hdr_key, NULL);
	assert_error(&r, 403, "agent_suspended", "suspended");
	pv_httpc_resp_free(&r);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "agent", "activate",
	                     a.id, NULL),
	    0);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "agent", "revoke-key",
	                     a.id, "--all", NULL),
	    0);
	request(&r, &servers[1], "GET", "/agent/v1/rate-limits", hdr_bearer,
	    NULL);
	assert_error(&r, 401, "invalid_api_key", "revoked");
	pv_httpc_resp_free(&r);
	snprintf(hk, sizeof(hk), "X-API-Key: %s", b.key);
	request(&r, &servers[1], "GET", "/agent/v1/rate-limits", hdr_key, NULL);
	ck_assert_int_eq(r.status, 200);
	pv_httpc_resp_free(&r);
}
END_TEST

/* A rotated key keeps working through its grace period only. */
START_TEST(test_agent_rotate_key_grace)
{
	struct pv_httpc_resp r;
	struct json_object *o;
	struct agent a;
	char out[1024], h_old[160], h_new[160];
	const char *old_hdr[] = { h_old, NULL }, *new_hdr[] = { h_new, NULL };

	make_agent(&a, "1000", NULL);
	snprintf(h_old, sizeof(h_old), "X-API-Key: %s", a.key);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "agent", "rotate-key",
	                     a.id, "--grace", "0", "--json", NULL),
	    0);
	o = json_tokener_parse(out);
	ck_assert_ptr_nonnull(o);
	snprintf(h_new, sizeof(h_new), "X-API-Key: %s",
	    pv_httpc_json_str(o, "api_key"));
	json_object_put(o);
	request(&r, &servers[0], "GET", "/agent/v1/rate-limits", new_hdr, NULL);
	ck_assert_int_eq(r.status, 200);
	pv_httpc_resp_free(&r);
	request(&r, &servers[0], "GET", "/agent/v1/rate-limits", old_hdr, NULL);
	assert_error(&r, 401, "invalid_api_key", "expired");
	pv_httpc_resp_free(&r);
}
END_TEST

struct burst {
	const struct pv_httpc_server *server; /* where this thread sends */
	const char *header;                   /* X-API-Key: ... */
	int n;                                /* requests to send */
	int ok, limited, other;               /* what came back */
	int retry_after;                      /* every 429 had one */
};

static void *
fire(void *arg)
{
	struct burst *b = arg;
	const char *h[] = { b->header, NULL };
	struct pv_httpc_resp r;
	char *url = pv_httpc_url(b->server->base, "/agent/v1/rate-limits");
	int i;

	b->retry_after = 1;
	for (i = 0; i < b->n; i++) {
		if (pv_httpc_get(&r, url, h) != 0) {
			b->other++;
			continue;
		}
		if (r.status == 200)
			b->ok++;
		else if (r.status == 429) {
			b->limited++;
			if (pv_httpc_header(&r, "Retry-After") == NULL ||
			    atoi(pv_httpc_header(&r, "Retry-After")) < 1)
				b->retry_after = 0;
		} else
			b->other++;
		pv_httpc_resp_free(&r);
	}
	free(url);
	return NULL;
}

/* Waits out the end of a minute so a burst stays in one window. */
static void
avoid_minute_edge(void)
{
	time_t now = time(NULL);
	struct timespec ts = { 0, 0 };

	if (now % 60 >= 50) {
		ts.tv_sec = 61 - now % 60;
		nanosleep(&ts, NULL);
	}
}

/* 3N requests from 6 threads over two servers: exactly N pass. */
static void
burst(const char *per_minute, const char *daily, int n)
{
	struct burst b[6];
	pthread_t t[6];
	struct agent a;
	char h[160];
	int i, ok = 0, limited = 0, other = 0;

	make_agent(&a, per_minute, daily);
	snprintf(h, sizeof(h), "X-API-Key: %s", a.key);
	avoid_minute_edge();
	for (i = 0; i < 6; i++) {
		memset(&b[i], 0, sizeof(b[i]));
		b[i].server = &servers[i % 2];
		b[i].header = h;
		b[i].n = n / 2;
		ck_assert_int_eq(pthread_create(&t[i], NULL, fire, &b[i]), 0);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		ok += b[i].ok;
		limited += b[i].limited;
		other += b[i].other;
		ck_assert_msg(b[i].retry_after, "a 429 without Retry-After");
	}
	ck_assert_int_eq(other, 0);
	ck_assert_int_eq(ok, n);
	ck_assert_int_eq(limited, 2 * n);
}

START_TEST(test_agent_rate_limit_exact_across_servers)
{
	burst("20", NULL, 20);
}
END_TEST

START_TEST(test_agent_daily_quota_exact_across_servers)
{
	burst("1000", "16", 16);
}
END_TEST

struct idem {
	const struct pv_httpc_server *server; /* where to send */
	const char *const *headers;           /* key + Idempotency-Key */
	const char *body;                     /* the request */
	long status;                          /* what came back */
	int replayed;                         /* Idempotent-Replayed: true */
	char webhook_id[64];                  /* from a 200 */
};

static void *
post_once(void *arg)
{
	struct idem *d = arg;
	struct pv_httpc_resp r;
	struct json_object *o;
	char *url = pv_httpc_url(d->server->base, "/agent/v1/webhooks");
	const char *v;

	if (pv_httpc_post(&r, url, d->headers, d->body) == 0) {
		d->status = r.status;
		d->replayed =
		    (v = pv_httpc_header(&r, "Idempotent-Replayed")) != NULL &&
		    strcmp(v, "true") == 0;
		if (r.status == 200 && (o = pv_httpc_json(&r)) != NULL) {
			snprintf(d->webhook_id, sizeof(d->webhook_id), "%s",
			    pv_httpc_json_str(o, "webhook.id"));
			json_object_put(o);
		}
		pv_httpc_resp_free(&r);
	}
	free(url);
	return NULL;
}

/* 20 concurrent POSTs, one key, one body: one webhook is created. */
START_TEST(test_agent_idempotency_concurrent_posts)
{
	static const char body[] = "{\"url\":\"https://agent.example/hook\","
	                           "\"events\":[\"order.paid\"]}";
	struct pv_httpc_resp r;
	struct json_object *o;
	struct idem d[20];
	pthread_t t[20];
	struct agent a;
	char h[160], ik[80];
	const char *headers[] = { h, ik, "Content-Type: application/json",
		NULL };
	const char *first = NULL;
	int i, created = 0, replays = 0;

	make_agent(&a, "1000", NULL);
	snprintf(h, sizeof(h), "X-API-Key: %s", a.key);
	snprintf(ik, sizeof(ik), "Idempotency-Key: idem-%ld", (long)time(NULL));
	for (i = 0; i < 20; i++) {
		memset(&d[i], 0, sizeof(d[i]));
		d[i].server = &servers[i % 2];
		d[i].headers = headers;
		d[i].body = body;
		ck_assert_int_eq(pthread_create(&t[i], NULL, post_once, &d[i]),
		    0);
	}
	for (i = 0; i < 20; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < 20; i++) {
		ck_assert_msg(d[i].status == 200 || d[i].status == 409,
		    "status %ld", d[i].status);
		if (d[i].status != 200)
			continue;
		if (d[i].replayed)
			replays++;
		else
			created++;
		if (first == NULL)
			first = d[i].webhook_id;
		ck_assert_str_eq(d[i].webhook_id, first);
	}
	ck_assert_int_le(created, 1);

	/* Afterwards: a replay, and exactly one webhook exists. */
	request(&r, &servers[0], "POST", "/agent/v1/webhooks", headers, body);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(pv_httpc_header(&r, "Idempotent-Replayed"), "true");
	pv_httpc_resp_free(&r);
	request(&r, &servers[1], "GET", "/agent/v1/webhooks", headers, NULL);
	o = pv_httpc_json(&r);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(json_object_array_length(
	                      pv_httpc_json_get(o, "webhooks")),
	    1);
	json_object_put(o);
	pv_httpc_resp_free(&r);

	/* Same key, another body: 422, nothing created. */
	request(&r, &servers[1], "POST", "/agent/v1/webhooks", headers,
	    "{\"url\":\"https://agent.example/other\"}");
	assert_error(&r, 422, "idempotency_conflict", "conflict");
	pv_httpc_resp_free(&r);
	(void)replays;
}
END_TEST

START_TEST(test_agent_bad_input_changes_nothing)
{
	struct pv_httpc_resp r;
	struct agent a;
	char h[160];
	const char *headers[] = { h, NULL };
	static const char *const bodies[] = {
		"{\"url\":\"https://a.example/x\"", /* truncated */
		"{\"url\":\"https://a.example/x\",\"colour\":1}", /* unknown */
		"{\"url\":42}",                    /* wrong type */
		"{\"url\":\"ftp://a.example/x\"}", /* scheme */
		"{\"url\":\"https://a.example/x\",\"events\":[\"order.x\"]}",
		"{\"url\":\"https://a.example/x'); DROP TABLE agents; --\","
		"\"events\":[\"order.paid'; --\"]}",
		"[]",
	};
	size_t i;

	make_agent(&a, "1000", NULL);
	snprintf(h, sizeof(h), "X-API-Key: %s", a.key);
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		request(&r, &servers[i % nservers], "POST",
		    "/agent/v1/webhooks", headers, bodies[i]);
		ck_assert_msg(r.status == 400, "body %zu: %ld %s", i, r.status,
		    r.body);
		pv_httpc_resp_free(&r);
	}
	request(&r, &servers[0], "GET", "/agent/v1/webhooks", headers, NULL);
	ck_assert_ptr_nonnull(strstr(r.body, "\"webhooks\":[]"));
	pv_httpc_resp_free(&r);
	request(&r, &servers[0], "GET", "/agent/v1/analytics/summary?days=0",
	    headers, NULL);
	assert_error(&r, 400, "invalid_request", "days=0");
	pv_httpc_resp_free(&r);
}
END_TEST

/* The analytics of a fresh agent count exactly what it sent. */
START_TEST(test_agent_analytics_match_requests)
{
	struct pv_httpc_resp r;
	struct json_object *o = NULL;
	struct agent a;
	char h[160];
	const char *headers[] = { h, NULL };
	long total = -1, errors = -1;
	int i, polls;

	make_agent(&a, "1000", NULL);
	snprintf(h, sizeof(h), "X-API-Key: %s", a.key);
	for (i = 0; i < 7; i++) { /* 7 successes */
		request(&r, &servers[i % nservers], "GET",
		    "/agent/v1/rate-limits", headers, NULL);
		ck_assert_int_eq(r.status, 200);
		pv_httpc_resp_free(&r);
	}
	for (i = 0; i < 3; i++) { /* 3 client errors */
		request(&r, &servers[i % nservers], "DELETE",
		    "/agent/v1/webhooks/wh_0000000000000000", headers, NULL);
		ck_assert_int_eq(r.status, 404);
		pv_httpc_resp_free(&r);
	}
	/*
	 * Usage rows are written just after each response, so allow them a
	 * moment.  Each poll is itself a request the next poll must count.
	 */
	for (polls = 0; polls < 50; polls++) {
		request(&r, &servers[0], "GET", "/agent/v1/analytics/summary",
		    headers, NULL);
		ck_assert_int_eq(r.status, 200);
		o = pv_httpc_json(&r);
		pv_httpc_resp_free(&r);
		total = json_object_get_int64(
		    pv_httpc_json_get(o, "analytics.summary.total_requests"));
		errors = json_object_get_int64(
		    pv_httpc_json_get(o, "analytics.summary.error_count"));
		if (total == 10 + polls && errors == 3)
			break;
		json_object_put(o);
		o = NULL;
		nanosleep(&(struct timespec){ 0, 20000000 }, NULL);
	}
	ck_assert_msg(o != NULL, "total %ld errors %ld after %d polls", total,
	    errors, polls);
	ck_assert_str_eq(pv_httpc_json_str(o, "agent_id"), a.id);
	ck_assert_uint_eq(json_object_array_length(
	                      pv_httpc_json_get(o, "analytics.daily_stats")),
	    30);
	ck_assert_uint_ge(json_object_array_length(
	                      pv_httpc_json_get(o, "analytics.top_endpoints")),
	    2);
	json_object_put(o);
}
END_TEST

static int
pg_ctl(const char *what)
{
	const char *argv[] = { getenv("PV_PG_CTL"), what, NULL };

	return argv[0] == NULL ? -1 : pv_proc_run(argv);
}

/* With the database down the API refuses (503); it never fails open. */
START_TEST(test_agent_database_down_is_503)
{
	struct pv_httpc_resp r;
	struct agent a;
	char h[160];
	const char *headers[] = { h, NULL };
	size_t i;
	int tries;

	ck_assert_msg(getenv("PV_PG_CTL") != NULL, "PV_PG_CTL is not set");
	make_agent(&a, "1000", NULL);
	snprintf(h, sizeof(h), "X-API-Key: %s", a.key);
	ck_assert_int_eq(pg_ctl("stop"), 0);
	for (i = 0; i < nservers; i++) {
		request(&r, &servers[i], "GET", "/agent/v1/rate-limits",
		    headers, NULL);
		assert_error(&r, 503, "service_unavailable", servers[i].name);
		ck_assert_ptr_null(strstr(r.body, "PGSQL"));
		pv_httpc_resp_free(&r);
	}
	ck_assert_int_eq(pg_ctl("start"), 0);
	for (i = 0; i < nservers; i++) {
		for (tries = 0; tries < 50; tries++) {
			request(&r, &servers[i], "GET", "/agent/v1/rate-limits",
			    headers, NULL);
			if (r.status == 200)
				break;
			pv_httpc_resp_free(&r);
			nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
		}
		ck_assert_msg(r.status == 200, "%s did not recover",
		    servers[i].name);
		pv_httpc_resp_free(&r);
	}
}
END_TEST

Suite *
agent_suite(void)
{
	Suite *s = suite_create("agent");
	TCase *tc = tcase_create("access");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_agent_auth_failures_and_both_headers);
	tcase_add_test(tc, test_agent_rotate_key_grace);
	tcase_add_test(tc, test_agent_rate_limit_exact_across_servers);
	tcase_add_test(tc, test_agent_daily_quota_exact_across_servers);
	tcase_add_test(tc, test_agent_idempotency_concurrent_posts);
	tcase_add_test(tc, test_agent_bad_input_changes_nothing);
	tcase_add_test(tc, test_agent_analytics_match_requests);
	tcase_add_test(tc, test_agent_database_down_is_503);
	suite_add_tcase(s, tc);
	return s;
}
