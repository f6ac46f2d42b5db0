/*
 * GET /health (API.md 2) through every server run.sh started: lighttpd,
 * Apache mod_proxy_fcgi, Apache mod_fcgid and plain CGI.  The same
 * checks hold on each, so each test loops over the servers and names
 * the one that failed.
 *
 * The last case stops PostgreSQL under the running servers: /health
 * must turn 503 with services.database "down", then 200 again once the
 * database is back, without restarting anything.
 */
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
	ck_assert_msg(nservers > 0,
	    "no PV_*_URL set: run these through tests/integration/run.sh");
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void
get(struct pv_httpc_resp *r, const struct pv_httpc_server *s, const char *path,
    const char *const *headers)
{
	char *url = pv_httpc_url(s->base, path);

	ck_assert_ptr_nonnull(url);
	ck_assert_msg(pv_httpc_get(r, url, headers) == 0, "%s: %s", s->name,
	    r->error);
	free(url);
}

/* Content-Type is application/json (parameters allowed). */
static void
assert_json_type(const struct pv_httpc_resp *r, const char *who)
{
	const char *ct = pv_httpc_header(r, "Content-Type");

	ck_assert_msg(ct != NULL && strncmp(ct, "application/json", 16) == 0 &&
	        (ct[16] == '\0' || ct[16] == ';'),
	    "%s: Content-Type %s, want application/json", who,
	    ct != NULL ? ct : "(none)");
}

/* The headers every response of ours carries (API.md 1, STYLE.md 1). */
static void
assert_common_headers(const struct pv_httpc_resp *r, const char *who)
{
	const char *id = pv_httpc_header(r, "X-Request-Id");
	const char *nosniff = pv_httpc_header(r, "X-Content-Type-Options");

	assert_json_type(r, who);
	ck_assert_msg(id != NULL && *id != '\0', "%s: no X-Request-Id", who);
	ck_assert_msg(pv_httpc_header_count(r, "X-Request-Id") == 1,
	    "%s: X-Request-Id sent more than once", who);
	ck_assert_msg(nosniff != NULL && strcmp(nosniff, "nosniff") == 0,
	    "%s: X-Content-Type-Options %s, want nosniff", who,
	    nosniff != NULL ? nosniff : "(none)");
	ck_assert_msg(pv_httpc_header_count(r, "X-Content-Type-Options") == 1,
	    "%s: X-Content-Type-Options sent more than once", who);
}

/*
 * The error shape of API.md 1: {"status":"error","detail":"...",
 * "error":{"type","code","message","param"}} with a known type and
 * param a string or null.
 */
static void
assert_error_body(const struct pv_httpc_resp *r, const char *who)
{
	static const char *const types[] = { "invalid_request_error",
		"authentication_error", "permission_error", "not_found",
		"conflict", "rate_limit_error", "payment_error",
		"upstream_error", "api_error" };
	struct json_object *o = pv_httpc_json(r), *param;
	const char *s, *type;
	size_t i;
	int known = 0;

	ck_assert_msg(o != NULL, "%s: body is not JSON: %.200s", who, r->body);
	s = pv_httpc_json_str(o, "status");
	ck_assert_msg(s != NULL && strcmp(s, "error") == 0,
	    "%s: status %s, want \"error\"", who, s != NULL ? s : "(none)");
	s = pv_httpc_json_str(o, "detail");
	ck_assert_msg(s != NULL && *s != '\0', "%s: no detail string", who);
	type = pv_httpc_json_str(o, "error.type");
	ck_assert_msg(type != NULL, "%s: no error.type", who);
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(type, types[i]) == 0)
			known = 1;
	ck_assert_msg(known, "%s: unknown error.type %s", who, type);
	s = pv_httpc_json_str(o, "error.code");
	ck_assert_msg(s != NULL && *s != '\0', "%s: no error.code", who);
	s = pv_httpc_json_str(o, "error.message");
	ck_assert_msg(s != NULL && *s != '\0', "%s: no error.message", who);
	ck_assert_msg(json_object_object_get_ex(pv_httpc_json_get(o, "error"),
	                  "param", &param),
	    "%s: no error.param", who);
	ck_assert_msg(param == NULL ||
	        json_object_is_type(param, json_type_string),
	    "%s: error.param is neither a string nor null", who);
	json_object_put(o);
}

/* A 200 /health body: status ok, services.database ok, and the rest. */
static void
assert_healthy(const struct pv_httpc_resp *r, const char *who)
{
	struct json_object *o = pv_httpc_json(r);
	const char *s;

	ck_assert_msg(o != NULL, "%s: body is not JSON: %.200s", who, r->body);
	s = pv_httpc_json_str(o, "status");
	ck_assert_msg(s != NULL && strcmp(s, "ok") == 0,
	    "%s: status %s, want \"ok\"", who, s != NULL ? s : "(none)");
	s = pv_httpc_json_str(o, "services.database");
	ck_assert_msg(s != NULL && strcmp(s, "ok") == 0,
	    "%s: services.database %s, want \"ok\"", who,
	    s != NULL ? s : "(none)");
	ck_assert_msg(pv_httpc_json_get(o, "timestamp") != NULL,
	    "%s: no timestamp", who);
	s = pv_httpc_json_str(o, "version");
	ck_assert_msg(s != NULL && *s != '\0', "%s: no version string", who);
	json_object_put(o);
}

START_TEST(test_health_get_ok)
{
	const char *const echo[] = { "X-Request-Id: pvtest-health-0001", NULL };
	struct pv_httpc_resp r;
	size_t i;

	for (i = 0; i < nservers; i++) {
		get(&r, &servers[i], "/health", NULL);
		ck_assert_msg(r.status == 200, "%s: GET /health: %ld %.200s",
		    servers[i].name, r.status, r.body);
		assert_common_headers(&r, servers[i].name);
		assert_healthy(&r, servers[i].name);
		pv_httpc_resp_free(&r);

		/* A sane client request id comes back as is. */
		get(&r, &servers[i], "/health", echo);
		ck_assert_msg(r.status == 200, "%s: %ld", servers[i].name,
		    r.status);
		ck_assert_str_eq(pv_httpc_header(&r, "X-Request-Id") != NULL ?
		        pv_httpc_header(&r, "X-Request-Id") :
		        "(none)",
		    "pvtest-health-0001");
		pv_httpc_resp_free(&r);
	}
}
END_TEST

START_TEST(test_health_post_is_405)
{
	struct pv_httpc_resp r;
	const char *allow;
	char *url;
	size_t i;

	for (i = 0; i < nservers; i++) {
		url = pv_httpc_url(servers[i].base, "/health");
		ck_assert_ptr_nonnull(url);
		ck_assert_msg(pv_httpc_post(&r, url, NULL, "{}") == 0, "%s: %s",
		    servers[i].name, r.error);
		free(url);
		ck_assert_msg(r.status == 405, "%s: POST /health: %ld %.200s",
		    servers[i].name, r.status, r.body);
		assert_common_headers(&r, servers[i].name);
		assert_error_body(&r, servers[i].name);
		/* RFC 9110 15.5.6: a 405 lists the allowed methods. */
		allow = pv_httpc_header(&r, "Allow");
		ck_assert_msg(allow != NULL && strstr(allow, "GET") != NULL,
		    "%s: 405 without Allow: GET", servers[i].name);
		pv_httpc_resp_free(&r);
	}
}
END_TEST

START_TEST(test_health_long_query_is_clean_4xx)
{
	static const size_t len = 20 * 1024;
	struct pv_httpc_resp r;
	char *path;
	size_t i;

	path = malloc(len + 1);
	ck_assert_ptr_nonnull(path);
	memcpy(path, "/health?q=", 10);
	memset(path + 10, 'a', len - 10);
	path[len] = '\0';
	for (i = 0; i < nservers; i++) {
		get(&r, &servers[i], path, NULL);
		ck_assert_msg(r.status >= 400 && r.status <= 499,
		    "%s: 20 KB query: %ld, want 4xx", servers[i].name,
		    r.status);
		assert_json_type(&r, servers[i].name);
		assert_error_body(&r, servers[i].name);
		pv_httpc_resp_free(&r);
	}
	free(path);
}
END_TEST

/*
 * Control bytes cannot be sent (curl refuses them), so: one 64 KB
 * header, odd but legal names, and many headers.  The server or the
 * program may refuse (4xx) or ignore them (200), never fail (5xx), and
 * the server must still be there afterwards.
 */
START_TEST(test_health_junk_headers_no_5xx)
{
	static const size_t big = 64 * 1024;
	const char *odd[] = { "X_Under_Score: 1", "X-Dots.In.Name: 1",
		"X-Tilde~Bang!: 1", "X-Empty;", "X-Latin1: \xe9\xff",
		"X-Request-Id: ../../etc/passwd%00<script>",
		"Content-Length: 0", NULL };
	const char *hv[2] = { NULL, NULL };
	const char *many[201];
	char names[200][24];
	struct pv_httpc_resp r;
	char *h;
	size_t i, k;
	int n;

	h = malloc(big + 1);
	ck_assert_ptr_nonnull(h);
	memcpy(h, "X-Junk: ", 8);
	memset(h + 8, 'x', big - 8);
	h[big] = '\0';
	for (k = 0; k < 200; k++) {
		n = snprintf(names[k], sizeof(names[k]), "X-Many-%zu: %zu", k,
		    k);
		ck_assert(n > 0 && (size_t)n < sizeof(names[k]));
		many[k] = names[k];
	}
	many[200] = NULL;

	for (i = 0; i < nservers; i++) {
		const char *who = servers[i].name;

		hv[0] = h;
		if (pv_httpc_request(&r, "GET", servers[i].base, hv, NULL, 0) ==
		    0)
			ck_assert_msg(r.status < 500, "%s: 64 KB header: %ld",
			    who, r.status);
		/* else: the server hung up on it, which is fine too */
		pv_httpc_resp_free(&r);

		get(&r, &servers[i], "/health", odd);
		ck_assert_msg(r.status < 500 && r.status > 0,
		    "%s: odd headers: %ld", who, r.status);
		if (r.status == 200)
			assert_healthy(&r, who);
		pv_httpc_resp_free(&r);

		get(&r, &servers[i], "/health", many);
		ck_assert_msg(r.status < 500 && r.status > 0,
		    "%s: 200 headers: %ld", who, r.status);
		pv_httpc_resp_free(&r);

		get(&r, &servers[i], "/health", NULL);
		ck_assert_msg(r.status == 200, "%s: after junk: %ld", who,
		    r.status);
		pv_httpc_resp_free(&r);
	}
	free(h);
}
END_TEST

static int
pg_ctl(const char *what)
{
	const char *ctl = getenv("PV_PG_CTL");
	const char *argv[] = { ctl, what, NULL };

	return ctl == NULL ? -1 : pv_proc_run(argv);
}

/* Unchecked teardown: whatever happened, leave PostgreSQL running. */
static void
pg_restart_if_stopped(void)
{
	if (getenv("PV_PG_CTL") != NULL && pg_ctl("status") != 0)
		pg_ctl("start");
}

/*
 * Poll GET /health on S until it answers WANT (or 10 s pass); the
 * last response is left in R.
 */
static void
poll_health(struct pv_httpc_resp *r, const struct pv_httpc_server *s, long want)
{
	int tries;

	for (tries = 0; tries < 100; tries++) {
		get(r, s, "/health", NULL);
		if (r->status == want)
			return;
		pv_httpc_resp_free(r);
		sleep_ms(100);
	}
	get(r, s, "/health", NULL);
}

START_TEST(test_health_follows_database)
{
	struct pv_httpc_resp r;
	struct json_object *o;
	const char *db;
	size_t i;

	ck_assert_msg(getenv("PV_PG_CTL") != NULL, "PV_PG_CTL is not set");
	for (i = 0; i < nservers; i++) {
		poll_health(&r, &servers[i], 200);
		ck_assert_msg(r.status == 200, "%s: before: %ld",
		    servers[i].name, r.status);
		pv_httpc_resp_free(&r);
	}

	ck_assert_int_eq(pg_ctl("stop"), 0);
	for (i = 0; i < nservers; i++) {
		poll_health(&r, &servers[i], 503);
		ck_assert_msg(r.status == 503,
		    "%s: database stopped, /health says %ld %.200s",
		    servers[i].name, r.status, r.body);
		assert_common_headers(&r, servers[i].name);
		o = pv_httpc_json(&r);
		ck_assert_msg(o != NULL, "%s: 503 body is not JSON: %.200s",
		    servers[i].name, r.body);
		db = pv_httpc_json_str(o, "services.database");
		ck_assert_msg(db != NULL && strcmp(db, "down") == 0,
		    "%s: services.database %s, want \"down\"", servers[i].name,
		    db != NULL ? db : "(none)");
		ck_assert_msg(pv_httpc_json_get(o, "status") != NULL &&
		        pv_httpc_json_get(o, "timestamp") != NULL &&
		        pv_httpc_json_get(o, "version") != NULL,
		    "%s: 503 body lacks status/timestamp/version",
		    servers[i].name);
		json_object_put(o);
		pv_httpc_resp_free(&r);
	}

	ck_assert_int_eq(pg_ctl("start"), 0);
	for (i = 0; i < nservers; i++) {
		poll_health(&r, &servers[i], 200);
		ck_assert_msg(r.status == 200,
		    "%s: database back for 10 s, /health still %ld",
		    servers[i].name, r.status);
		assert_healthy(&r, servers[i].name);
		pv_httpc_resp_free(&r);
	}
}
END_TEST

Suite *
health_suite(void)
{
	Suite *s = suite_create("health");
	TCase *tc = tcase_create("http");
	TCase *db = tcase_create("database");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_health_get_ok);
	tcase_add_test(tc, test_health_post_is_405);
	tcase_add_test(tc, test_health_long_query_is_clean_4xx);
	tcase_add_test(tc, test_health_junk_headers_no_5xx);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(db, setup, NULL);
	tcase_add_unchecked_fixture(db, NULL, pg_restart_if_stopped);
	tcase_set_timeout(db, 120);
	tcase_add_test(db, test_health_follows_database);
	suite_add_tcase(s, db);
	return s;
}
