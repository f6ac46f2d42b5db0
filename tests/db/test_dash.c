/*
 * Database tests of dashboard accounts (migration 0014, pv_dash_auth.c):
 * sign-up makes a merchant and its login, sessions are found by their
 * token only while live, logout and logout everywhere revoke, the
 * throttle refuses even the right password after too many failures,
 * CSRF tokens are per session, a password change revokes the other
 * sessions, and a login never crosses to another merchant.  A session
 * is touched at most once a minute.  The overview's numbers (one
 * statement since migration 0020) and the orders list's filters and
 * counts, through the handler with a request built in memory.
 *
 * Rows are committed (sign-up runs its own transaction), so every
 * test uses e-mail addresses and client addresses of its own.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pv_config.h"
#include "pv_dash.h"
#include "pv_db.h"
#include "pv_test.h"
#include "pv_tmpl.h"

#define PW "correct horse 42"

static struct pv_config cfg;
static struct pv_ctx ctx;

static void
setup(void)
{
	const char *u = getenv("PIVOTA_DATABASE_URL");

	ck_assert_msg(u != NULL, "PIVOTA_DATABASE_URL is not set");
	memset(&cfg, 0, sizeof(cfg));
	memset(&ctx, 0, sizeof(ctx));
	cfg.template_dir = (char *)"templates"; /* tests run at the root */
	ctx.cfg = &cfg;
	ctx.arena = pv_arena_new(0);
	ctx.db = pv_db_new(u, "db_tests");
	ctx.now = time(NULL);
}

static void
teardown(void)
{
	pv_tmpl_free(ctx.tmpl);
	pv_db_free(ctx.db);
	pv_arena_free(ctx.arena);
}

/* A fresh e-mail address (and client address) for this test. */
static const char *
fresh(char *buf, size_t size, const char *what)
{
	static int seq;

	snprintf(buf, size, "%s-%ld-%d@dash.example", what, (long)getpid(),
	    seq++);
	return buf;
}

static void
signup(const char *email, const char **merchant)
{
	struct pv_err err = { 0 };

	ck_assert_msg(pv_dash_signup(&ctx, "Shop", "https://shop.example",
	                  email, PW, merchant, &err) == 0,
	    "%s", err.msg);
}

static const char *
login(const char *email, const char *pw, const char *ip, struct pv_err *err)
{
	const char *tok = NULL;

	memset(err, 0, sizeof(*err));
	if (pv_dash_login(&ctx, email, pw, ip, &tok, err) == -1)
		return NULL;
	return tok;
}

START_TEST(test_dash_session_lifecycle)
{
	struct pv_dash_session s, s2;
	struct pv_err err = { 0 };
	const char *merchant, *t1, *t2;
	char email[96], t1c[80];

	signup(fresh(email, sizeof(email), "life"), &merchant);
	ck_assert_ptr_nonnull(t1 = login(email, PW, "10.1.0.1", &err));
	snprintf(t1c, sizeof(t1c), "%s", t1);
	ck_assert_ptr_nonnull(t2 = login(email, PW, "10.1.0.1", &err));
	ck_assert_str_ne(t1c, t2);
	ck_assert_int_eq(pv_dash_session_load(&ctx, t1c, &s, &err), 0);
	ck_assert_str_eq(s.merchant, merchant);
	ck_assert_str_eq(s.email, email);
	ck_assert_str_eq(s.business, "Shop");
	/* Only the token's hash is stored: the token itself is no row. */
	{
		const char *p[1] = { t1c };
		PGresult *res;

		ck_assert_int_eq(pv_db_exec(&ctx,
		                     PV_SQL("SELECT 1 FROM dashboard_sessions "
		                            "WHERE encode(token_hash, 'hex') = "
		                            "$1"),
		                     1, p, &res, &err),
		    0);
		ck_assert_int_eq(PQntuples(res), 0);
	}
	/* Logout ends this session only; everywhere ends the rest. */
	ck_assert_int_eq(pv_dash_logout(&ctx, &s, 0, &err), 0);
	ck_assert_int_eq(pv_dash_session_load(&ctx, t1c, &s2, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(pv_dash_session_load(&ctx, t2, &s2, &err), 0);
	ck_assert_int_eq(pv_dash_logout(&ctx, &s2, 1, &err), 0);
	ck_assert_int_eq(pv_dash_session_load(&ctx, t2, &s2, &err), -1);
	/* Expired sessions are dead too. */
	memset(&err, 0, sizeof(err));
	ck_assert_ptr_nonnull(t1 = login(email, PW, "10.1.0.1", &err));
	snprintf(t1c, sizeof(t1c), "%s", t1);
	ck_assert_int_eq(pv_dash_session_load(&ctx, t1c, &s, &err), 0);
	{
		const char *p[1] = { s.session_id };

		ck_assert_int_eq(pv_db_exec(&ctx,
		                     PV_SQL(
		                         "UPDATE dashboard_sessions SET "
		                         "expires_at = now() - interval '1 s' "
		                         "WHERE id = $1"),
		                     1, p, NULL, &err),
		    0);
	}
	ck_assert_int_eq(pv_dash_session_load(&ctx, t1c, &s, &err), -1);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(pv_dash_session_load(&ctx, "nope", &s, &err), -1);
}
END_TEST

START_TEST(test_dash_login_throttled)
{
	struct pv_err err;
	const char *merchant;
	char email[96];
	int i;

	signup(fresh(email, sizeof(email), "thr"), &merchant);
	for (i = 0; i < PV_DASH_THROTTLE_MAX; i++) {
		ck_assert_ptr_null(
		    login(email, "wrong password!", "10.2.0.1", &err));
		ck_assert_int_eq(err.code, PV_E_AUTH);
	}
	ck_assert_ptr_null(login(email, PW, "10.2.0.2", &err));
	ck_assert_int_eq(err.code, PV_E_RATELIMIT);
	ck_assert_int_gt(err.retry_after, 0);
	/* An unknown address counts against the client address as well. */
	for (i = 0; i < PV_DASH_THROTTLE_IP; i++) {
		char other[96];

		ck_assert_ptr_null(login(fresh(other, sizeof(other), "ghost"),
		    "whatever pw", "10.2.0.3", &err));
		ck_assert_int_eq(err.code, PV_E_AUTH);
	}
	{
		const char *m2;
		char e2[96];

		signup(fresh(e2, sizeof(e2), "thr2"), &m2);
		ck_assert_ptr_null(login(e2, PW, "10.2.0.3", &err));
		ck_assert_int_eq(err.code, PV_E_RATELIMIT);
		ck_assert_ptr_nonnull(login(e2, PW, "10.2.0.4", &err));
	}
	/* An old window no longer counts. */
	{
		const char *p[1] = { email };
		char key[128];

		snprintf(key, sizeof(key), "email:%s", email);
		p[0] = key;
		ck_assert_int_eq(pv_db_exec(&ctx,
		                     PV_SQL(
		                         "UPDATE dashboard_login_failures SET "
		                         "window_start = now() - interval "
		                         "'1 day' WHERE key = $1"),
		                     1, p, NULL, &err),
		    0);
	}
	ck_assert_ptr_nonnull(login(email, PW, "10.2.0.2", &err));
}
END_TEST

START_TEST(test_dash_csrf_per_session)
{
	struct pv_dash_session a, b;
	struct pv_err err = { 0 };
	const char *merchant, *t;
	char email[96], ta[80], tok_a[PV_DASH_CSRF_LEN + 1],
	    tok_b[PV_DASH_CSRF_LEN + 1];

	signup(fresh(email, sizeof(email), "csrf"), &merchant);
	ck_assert_ptr_nonnull(t = login(email, PW, "10.3.0.1", &err));
	snprintf(ta, sizeof(ta), "%s", t);
	ck_assert_ptr_nonnull(t = login(email, PW, "10.3.0.1", &err));
	ck_assert_int_eq(pv_dash_session_load(&ctx, t, &b, &err), 0);
	ck_assert_int_eq(pv_dash_session_load(&ctx, ta, &a, &err), 0);
	ck_assert_int_eq(pv_dash_csrf_token(&a, tok_a, &err), 0);
	ck_assert_int_eq(pv_dash_csrf_token(&b, tok_b, &err), 0);
	ck_assert_uint_eq(strlen(tok_a), PV_DASH_CSRF_LEN);
	ck_assert_str_ne(tok_a, tok_b);
	ck_assert(pv_dash_csrf_ok(&a, tok_a));
	ck_assert(!pv_dash_csrf_ok(&a, tok_b));
	ck_assert(!pv_dash_csrf_ok(&a, NULL));
	ck_assert(!pv_dash_csrf_ok(&a, ""));
	tok_a[0] = tok_a[0] == '0' ? '1' : '0';
	ck_assert(!pv_dash_csrf_ok(&a, tok_a));
}
END_TEST

START_TEST(test_dash_password_change_and_tenancy)
{
	struct pv_dash_session s;
	struct pv_err err = { 0 };
	const char *m1, *m2, *t;
	char e1[96], e2[96], keep[80], other[80];

	signup(fresh(e1, sizeof(e1), "pwc"), &m1);
	signup(fresh(e2, sizeof(e2), "pwc"), &m2);
	ck_assert_ptr_nonnull(t = login(e1, PW, "10.4.0.1", &err));
	snprintf(other, sizeof(other), "%s", t);
	ck_assert_ptr_nonnull(t = login(e1, PW, "10.4.0.1", &err));
	snprintf(keep, sizeof(keep), "%s", t);
	ck_assert_int_eq(pv_dash_session_load(&ctx, keep, &s, &err), 0);
	ck_assert_int_eq(pv_dash_password_change(&ctx, &s, "not it at all",
	                     "another pass 9", &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(pv_dash_password_change(&ctx, &s, PW, "short", &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(pv_dash_password_change(&ctx, &s, PW, "another pass 9",
	                     &err),
	    0);
	ck_assert_int_eq(pv_dash_session_load(&ctx, keep, &s, &err), 0);
	ck_assert_int_eq(pv_dash_session_load(&ctx, other, &s, &err), -1);
	ck_assert_ptr_null(login(e1, PW, "10.4.0.2", &err));
	ck_assert_ptr_nonnull(login(e1, "another pass 9", "10.4.0.2", &err));
	/* Signing up twice, or taking another merchant's login, fails. */
	ck_assert_int_eq(pv_dash_signup(&ctx, "Again", "", e1, PW, &m2, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_CONFLICT);
	memset(&err, 0, sizeof(err));
	signup(fresh(e2, sizeof(e2), "pwc"), &m2);
	ck_assert_int_eq(pv_dash_user_set(&ctx, m2, e1, "hijacked pass", &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_CONFLICT);
	ck_assert_ptr_nonnull(login(e1, "another pass 9", "10.4.0.2", &err));
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(pv_dash_user_set(&ctx, "mer_0000000000000000", e1,
	                     "whatever pass", &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_NOTFOUND);
	/* An operator can add a second login to a merchant. */
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(pv_dash_user_set(&ctx, m1, fresh(e2, sizeof(e2), "op"),
	                     "operator pass 1", &err),
	    0);
	ck_assert_ptr_nonnull(
	    t = login(e2, "operator pass 1", "10.4.0.3", &err));
	ck_assert_int_eq(pv_dash_session_load(&ctx, t, &s, &err), 0);
	ck_assert_str_eq(s.merchant, m1);
}
END_TEST

START_TEST(test_dash_session_touched_once_a_minute)
{
	/* Last seen this long ago; does loading a page move it to now? */
	static const struct {
		const char *age;
		const char *moved;
	} cases[] = { { "30 years", "t" }, { "30 s", "f" }, { "2 min", "t" } };
	struct pv_dash_session s;
	struct pv_err err = { 0 };
	const char *merchant, *t, *p[2];
	char email[96], tok[80];
	PGresult *res;
	size_t i;

	signup(fresh(email, sizeof(email), "touch"), &merchant);
	ck_assert_ptr_nonnull(t = login(email, PW, "10.5.0.1", &err));
	snprintf(tok, sizeof(tok), "%s", t);
	ck_assert_int_eq(pv_dash_session_load(&ctx, tok, &s, &err), 0);
	p[0] = s.session_id;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p[1] = cases[i].age;
		ck_assert_int_eq(pv_db_exec(&ctx,
		                     PV_SQL("UPDATE dashboard_sessions SET "
		                            "last_seen = now() - $2::interval "
		                            "WHERE id = $1"),
		                     2, p, NULL, &err),
		    0);
		ck_assert_int_eq(pv_dash_session_load(&ctx, tok, &s, &err), 0);
		ck_assert_str_eq(s.merchant, merchant);
		ck_assert_int_eq(pv_db_exec(&ctx,
		                     PV_SQL(
		                         "SELECT last_seen > now() - interval "
		                         "'10 s' FROM dashboard_sessions "
		                         "WHERE id = $1"),
		                     1, p, &res, &err),
		    0);
		ck_assert_msg(strcmp(PQgetvalue(res, 0, 0), cases[i].moved) ==
		        0,
		    "seen %s ago: moved %s", cases[i].age,
		    PQgetvalue(res, 0, 0));
	}
}
END_TEST

/*
 * GET path?name=value (name NULL: no query) through the dashboard's
 * handler with the session cookie tok; the page (ctx arena), which
 * must be a 200.
 */
static const char *
page(const char *tok, const char *path, const char *name, const char *value)
{
	struct pv_err err = { 0 };
	struct pv_resp resp;
	struct pv_req req;
	struct pv_kv hdr, param;
	char cookie[100];
	char *body;

	snprintf(cookie, sizeof(cookie), "pv_session=%s", tok);
	hdr = (struct pv_kv){ "cookie", cookie, strlen(cookie) };
	if (name != NULL)
		param = (struct pv_kv){ name, value, strlen(value) };
	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.method = PV_GET;
	req.method_name = "GET";
	req.path = path;
	req.query = "";
	req.hdrs = &hdr;
	req.nhdr = 1;
	req.params = name != NULL ? &param : NULL;
	req.nparam = name != NULL ? 1 : 0;
	req.body = "";
	req.remote_addr = "127.0.0.1";
	ck_assert_msg(pv_dash_handle(&ctx, &req, &resp, &err) == 0, "%s: %s",
	    path, err.msg);
	ck_assert_msg(resp.status == 200, "%s: %d", path, resp.status);
	body = pv_arena_alloc(ctx.arena, resp.bodylen + 1, &err);
	ck_assert_ptr_nonnull(body);
	memcpy(body, resp.body, resp.bodylen);
	body[resp.bodylen] = '\0';
	return body;
}

/* Fails unless the page holds each NULL-ended string. */
static void
holds(const char *body, ...)
{
	va_list ap;
	const char *s;

	va_start(ap, body);
	while ((s = va_arg(ap, const char *)) != NULL)
		ck_assert_msg(strstr(body, s) != NULL, "no \"%s\" in %s", s,
		    body);
	va_end(ap);
}

/* Fails unless a and b are on the page, a first. */
static void
before(const char *body, const char *a, const char *b)
{
	const char *pa = strstr(body, a), *pb = strstr(body, b);

	ck_assert_msg(pa != NULL && pb != NULL && pa < pb,
	    "\"%s\" does not come before \"%s\" in %s", a, b, body);
}

START_TEST(test_dash_overview_and_orders_filters)
{
	struct pv_err err = { 0 };
	const char *merchant, *t, *p[1], *body;
	char email[96], tok[80], today[16], first[16], agent_b[32], row[300];
	PGresult *res;

	signup(fresh(email, sizeof(email), "overview"), &merchant);
	ck_assert_ptr_nonnull(t = login(email, PW, "10.6.0.1", &err));
	snprintf(tok, sizeof(tok), "%s", t);
	/*
	 * Two agents; orders now (USD: paid 10.00 by A, paid 20.00 by B
	 * with 5.00 refunded, unpaid 99.00 by A; EUR: paid 7.00 by B), 5
	 * days ago (USD paid 30.00 by A), 10 days ago (USD paid 40.00 by
	 * B) and 100 days ago (USD paid 50.00 by A).
	 */
	p[0] = merchant;
	ck_assert_int_eq(
	    pv_db_exec(&ctx,
	        PV_SQL("WITH m AS (SELECT id FROM merchants WHERE "
	               "public_id = $1), "
	               "ag AS (INSERT INTO agents (public_id, name) "
	               "SELECT 'agt_' || left(md5(random()::text), "
	               "16), n FROM unnest(ARRAY['Agent A', "
	               "'Agent B']) AS n RETURNING id, name) "
	               "INSERT INTO orders (public_id, merchant_id, "
	               "agent_id, status, payment_status, currency, "
	               "currency_exponent, subtotal_minor, "
	               "shipping_minor, tax_minor, total_minor, "
	               "refunded_minor, customer_email, ship_name, "
	               "ship_line1, ship_city, ship_postal_code, "
	               "ship_country, psp, expires_at, paid_at, "
	               "created_at) SELECT 'ORD_' || "
	               "upper(left(md5(random()::text), 16)), m.id, "
	               "ag.id, o.status, CASE WHEN o.paid THEN "
	               "'succeeded' ELSE 'unpaid' END, o.cur, 2, "
	               "o.total, 0, 0, o.total, o.refunded, o.email, "
	               "'N', 'L', 'C', '1', 'US', 'sandbox', now(), "
	               "CASE WHEN o.paid THEN o.at END, o.at "
	               "FROM m, (VALUES "
	               "('Agent A', 'paid', true, 'USD', 1000, 0, "
	               "'a@x.example', now() - interval '1 min'), "
	               "('Agent B', 'partially_refunded', true, "
	               "'USD', 2000, 500, 'b@x.example', "
	               "now() - interval '1 min'), "
	               "('Agent A', 'pending', false, 'USD', 9900, 0, "
	               "'Someone@Example.com', now() - interval "
	               "'1 min'), "
	               "('Agent B', 'paid', true, 'EUR', 700, 0, "
	               "'c@x.example', now() - interval '1 min'), "
	               "('Agent A', 'paid', true, 'USD', 3000, 0, "
	               "'d@x.example', now() - interval '5 days'), "
	               "('Agent B', 'paid', true, 'USD', 4000, 0, "
	               "'e@x.example', now() - interval '10 days'), "
	               "('Agent A', 'paid', true, 'USD', 5000, 0, "
	               "'f@x.example', now() - interval '100 days')) "
	               "AS o (agent, status, paid, cur, total, "
	               "refunded, email, at) JOIN ag ON ag.name = "
	               "o.agent"),
	        1, p, NULL, &err),
	    0);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL(
	                         "SELECT to_char((now() AT TIME ZONE 'UTC')"
	                         "::date, 'YYYY-MM-DD'), to_char((now() AT "
	                         "TIME ZONE 'UTC')::date - 6, 'YYYY-MM-DD'), "
	                         "(SELECT a.public_id FROM orders o JOIN "
	                         "agents a ON a.id = o.agent_id JOIN "
	                         "merchants m ON m.id = o.merchant_id WHERE "
	                         "m.public_id = $1 AND a.name = 'Agent B' "
	                         "LIMIT 1)"),
	                     1, p, &res, &err),
	    0);
	snprintf(today, sizeof(today), "%s", PQgetvalue(res, 0, 0));
	snprintf(first, sizeof(first), "%s", PQgetvalue(res, 0, 1));
	snprintf(agent_b, sizeof(agent_b), "%s", PQgetvalue(res, 0, 2));

	/* 7 days: USD first (more orders), then EUR; charts in USD. */
	body = page(tok, "/dashboard/", "days", "7");
	holds(body, "<dd>60.00 <small>USD</small>", "<dd>3</dd>",
	    "<dd>20.00 <small>USD</small>", "<dd>5.00 <small>USD</small>",
	    "<dd>75.0% <small>of 4 created</small>",
	    "<dd>7.00 <small>EUR</small>", "<dd>100.0% <small>of 1 created",
	    "GMV per day <small>(max 30.00)</small>",
	    "Orders created and paid per day <small>(max 3.00)</small>", NULL);
	before(body, "of 4 created", "of 1 created");
	snprintf(row, sizeof(row), "<title>%s: 30.00 USD</title>", today);
	holds(body, row, NULL);
	snprintf(row, sizeof(row), "<title>%s: 3.00 created</title>", today);
	holds(body, row, NULL);
	snprintf(row, sizeof(row), "<title>%s: 2.00 paid</title>", today);
	holds(body, row, NULL);
	snprintf(row, sizeof(row), "<span>%s</span><span>%s</span>", first,
	    today);
	holds(body, row, NULL);
	/* Per agent: A's 3 USD orders first, then B's EUR and USD. */
	holds(body,
	    "<td>USD</td><td class=\"num\">3</td><td class=\"num\">2</td>"
	    "<td class=\"num\">40.00</td><td class=\"num\">0.00</td>",
	    "<td>EUR</td><td class=\"num\">1</td><td class=\"num\">1</td>"
	    "<td class=\"num\">7.00</td><td class=\"num\">0.00</td>",
	    "<td>USD</td><td class=\"num\">1</td><td class=\"num\">1</td>"
	    "<td class=\"num\">20.00</td><td class=\"num\">5.00</td>",
	    NULL);
	before(body, "<td>EUR</td>", "<td class=\"num\">20.00</td>");
	pv_arena_reset(ctx.arena);
	/* 30 days adds the order of 10 days ago; 90 days no more. */
	body = page(tok, "/dashboard/", "days", "30");
	holds(body, "<dd>100.00 <small>USD</small>",
	    "<dd>25.00 <small>USD</small>",
	    "<dd>80.0% <small>of 5 created</small>",
	    "GMV per day <small>(max 40.00)</small>", NULL);
	pv_arena_reset(ctx.arena);
	body = page(tok, "/dashboard/", "days", "90");
	holds(body, "<dd>80.0% <small>of 5 created</small>", NULL);
	pv_arena_reset(ctx.arena);

	/* The orders list: counts and rows per filter. */
	body = page(tok, "/dashboard/orders", NULL, NULL);
	holds(body, "<p>7 orders</p>", "Agent A</option>", "Agent B</option>",
	    NULL);
	before(body, "Agent A</option>", "Agent B</option>");
	pv_arena_reset(ctx.arena);
	body = page(tok, "/dashboard/orders", "status", "paid");
	holds(body, "<p>5 orders</p>", NULL);
	ck_assert_ptr_null(strstr(body, "b@x.example"));
	pv_arena_reset(ctx.arena);
	body = page(tok, "/dashboard/orders", "agent", agent_b);
	holds(body, "<p>3 orders</p>", "b@x.example", "c@x.example",
	    "e@x.example", NULL);
	ck_assert_ptr_null(strstr(body, "a@x.example"));
	pv_arena_reset(ctx.arena);
	body = page(tok, "/dashboard/orders", "q", "someone@example.COM");
	holds(body, "<p>1 orders</p>", "Someone@Example.com", NULL);
	pv_arena_reset(ctx.arena);
	body = page(tok, "/dashboard/orders", "q", "nobody@x.example");
	holds(body, "<p>0 orders</p>", NULL);
}
END_TEST

Suite *
dash_suite(void)
{
	Suite *s = suite_create("dash");
	TCase *tc = tcase_create("accounts");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_dash_session_lifecycle);
	tcase_add_test(tc, test_dash_login_throttled);
	tcase_add_test(tc, test_dash_csrf_per_session);
	tcase_add_test(tc, test_dash_password_change_and_tenancy);
	tcase_add_test(tc, test_dash_session_touched_once_a_minute);
	tcase_add_test(tc, test_dash_overview_and_orders_filters);
	suite_add_tcase(s, tc);
	return s;
}
