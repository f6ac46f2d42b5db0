/*
 * Database tests of dashboard accounts (migration 0014, pv_dash_auth.c):
 * sign-up makes a merchant and its login, sessions are found by their
 * token only while live, logout and logout everywhere revoke, the
 * throttle refuses even the right password after too many failures,
 * CSRF tokens are per session, a password change revokes the other
 * sessions, and a login never crosses to another merchant.
 *
 * Rows are committed (sign-up runs its own transaction), so every
 * test uses e-mail addresses and client addresses of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pv_config.h"
#include "pv_dash.h"
#include "pv_db.h"
#include "pv_test.h"

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
	ctx.cfg = &cfg;
	ctx.arena = pv_arena_new(0);
	ctx.db = pv_db_new(u, "db_tests");
	ctx.now = time(NULL);
}

static void
teardown(void)
{
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
	suite_add_tcase(s, tc);
	return s;
}
