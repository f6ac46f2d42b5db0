/*
 * Dashboard people and sessions (see pv_dash.h): sign-up, operator
 * logins, password checks behind a throttle kept in PostgreSQL (so it
 * holds across every process and node), sessions stored by the hash of
 * their token, and per-session CSRF tokens.
 */
#include <stdio.h>
#include <string.h>

#include "pv_crypto.h"
#include "pv_dash.h"
#include "pv_db.h"
#include "pv_valid.h"

static int
check_password(const char *pw, struct pv_err *err)
{
	size_t len = strlen(pw);

	if (len < PV_DASH_PASSWORD_MIN || len > 256) {
		PV_ERR(err, PV_E_INVALID, "password",
		    "the password must be %d to 256 characters",
		    PV_DASH_PASSWORD_MIN);
		return -1;
	}
	return pv_valid_text(pw, len, 1, 256, 0, "password", err);
}

static int
check_email(const char *email, struct pv_err *err)
{
	return pv_valid_email(email, strlen(email), "email", err);
}

struct signup {
	const char *business, *store_url, *email, *hash, *pub;
};

static int
signup_tx(struct pv_ctx *ctx, void *arg, struct pv_err *err)
{
	struct signup *s = arg;
	const char *p[4] = { s->pub, s->business, s->email, s->store_url };
	const char *q[3] = { NULL, s->email, s->hash };
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("INSERT INTO merchants (public_id, business_name, "
	               "email, store_url) VALUES ($1, $2, $3, $4) "
	               "RETURNING id"),
	        4, p, &res, err) == -1)
		return -1;
	q[0] = PQgetvalue(res, 0, 0);
	return pv_db_exec(ctx,
	    PV_SQL("INSERT INTO merchant_users (merchant_id, email, "
	           "password_hash) VALUES ($1, $2, $3)"),
	    3, q, NULL, err);
}

/* Registers a merchant and its first login; see pv_dash.h. */
int
pv_dash_signup(struct pv_ctx *ctx, const char *business, const char *store_url,
    const char *email, const char *password, const char **merchant,
    struct pv_err *err)
{
	struct signup s = { business, store_url, email, NULL, NULL };
	unsigned char rnd[8];
	const char *hex;

	if (pv_valid_text(business, strlen(business), 1, 200, 0,
	        "business_name", err) == -1 ||
	    pv_valid_text(store_url, strlen(store_url), 0, 500, 0, "store_url",
	        err) == -1 ||
	    check_email(email, err) == -1 ||
	    check_password(password, err) == -1)
		return -1;
	if (store_url[0] != '\0' && strncmp(store_url, "https://", 8) != 0 &&
	    strncmp(store_url, "http://", 7) != 0) {
		PV_ERR(err, PV_E_INVALID, "store_url",
		    "the store URL must start with https://");
		return -1;
	}
	if (pv_crypto_random(rnd, sizeof(rnd), err) == -1 ||
	    pv_crypto_hex_encode(ctx->arena, rnd, sizeof(rnd), &hex, err) ==
	        -1 ||
	    (s.pub = pv_arena_printf(ctx->arena, err, "mer_%s", hex)) == NULL ||
	    pv_crypto_password_hash(ctx->arena, password, strlen(password),
	        &s.hash, err) == -1)
		return -1;
	if (pv_db_tx(ctx, signup_tx, &s, err) == -1) {
		if (err->code == PV_E_CONFLICT) {
			pv_err_clear(err);
			PV_ERR(err, PV_E_CONFLICT, "email",
			    "an account with this email already exists");
		}
		return -1;
	}
	*merchant = s.pub;
	return 0;
}

/* Adds or updates an operator-made login; see pv_dash.h. */
int
pv_dash_user_set(struct pv_ctx *ctx, const char *merchant, const char *email,
    const char *password, struct pv_err *err)
{
	const char *p[3] = { merchant, email, NULL };
	PGresult *res;

	if (check_email(email, err) == -1 ||
	    check_password(password, err) == -1 ||
	    pv_crypto_password_hash(ctx->arena, password, strlen(password),
	        &p[2], err) == -1)
		return -1;
	if (pv_db_exec(ctx,
	        PV_SQL(
	            "WITH m AS (SELECT id FROM merchants WHERE "
	            "public_id = $1) "
	            "INSERT INTO merchant_users (merchant_id, email, "
	            "password_hash) SELECT id, $2, $3 FROM m "
	            "ON CONFLICT (email) DO UPDATE SET "
	            "password_hash = EXCLUDED.password_hash, "
	            "password_changed_at = now() "
	            "WHERE merchant_users.merchant_id = EXCLUDED.merchant_id "
	            "RETURNING id"),
	        3, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) == 1)
		return 0;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT 1 FROM merchants WHERE public_id = $1"), 1, p,
	        &res, err) == -1)
		return -1;
	if (PQntuples(res) == 0)
		PV_ERR(err, PV_E_NOTFOUND, "merchant", "no merchant %s",
		    merchant);
	else
		PV_ERR(err, PV_E_CONFLICT, "email",
		    "%s logs in for another merchant", email);
	return -1;
}

/* Is key over limit in the current window?  *over is 1 if so. */
static int
throttled(struct pv_ctx *ctx, const char *key, int limit, int *over,
    struct pv_err *err)
{
	char lim[16], win[16];
	const char *p[3] = { key, lim, win };
	PGresult *res;

	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(win, sizeof(win), "%d", PV_DASH_THROTTLE_SECS);
	if (pv_db_exec(ctx,
	        PV_SQL(
	            "SELECT failures >= $2::int FROM dashboard_login_failures "
	            "WHERE key = $1 AND window_start > "
	            "now() - make_interval(secs => $3::int)"),
	        3, p, &res, err) == -1)
		return -1;
	*over = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	return 0;
}

static int
count_failure(struct pv_ctx *ctx, const char *key, struct pv_err *err)
{
	char win[16];
	const char *p[2] = { key, win };

	snprintf(win, sizeof(win), "%d", PV_DASH_THROTTLE_SECS);
	return pv_db_exec(ctx,
	    PV_SQL("INSERT INTO dashboard_login_failures AS f (key, "
	           "window_start, failures) VALUES ($1, now(), 1) "
	           "ON CONFLICT (key) DO UPDATE SET "
	           "failures = CASE WHEN f.window_start > now() - "
	           "make_interval(secs => $2::int) THEN f.failures + 1 ELSE 1 "
	           "END, window_start = CASE WHEN f.window_start > now() - "
	           "make_interval(secs => $2::int) THEN f.window_start "
	           "ELSE now() END"),
	    2, p, NULL, err);
}

/* Opens a session row for user; *token is the cookie value. */
static int
session_open(struct pv_ctx *ctx, const char *user, const char *remote,
    const char **token, struct pv_err *err)
{
	unsigned char raw[32], hash[PV_CRYPTO_SHA256_LEN], csrf[32];
	const char *hex_hash, *hex_csrf, *tok;
	char ttl[16];
	const char *p[5];

	snprintf(ttl, sizeof(ttl), "%d", PV_DASH_SESSION_TTL);
	if (pv_crypto_random(raw, sizeof(raw), err) == -1 ||
	    pv_crypto_random(csrf, sizeof(csrf), err) == -1 ||
	    pv_crypto_hex_encode(ctx->arena, raw, sizeof(raw), &tok, err) ==
	        -1 ||
	    pv_crypto_sha256(tok, strlen(tok), hash, err) == -1 ||
	    pv_crypto_hex_encode(ctx->arena, hash, sizeof(hash), &hex_hash,
	        err) == -1 ||
	    pv_crypto_hex_encode(ctx->arena, csrf, sizeof(csrf), &hex_csrf,
	        err) == -1)
		return -1;
	p[0] = hex_hash;
	p[1] = user;
	p[2] = hex_csrf;
	p[3] = ttl;
	p[4] = remote != NULL ? remote : "";
	if (pv_db_exec(ctx,
	        PV_SQL("INSERT INTO dashboard_sessions (token_hash, user_id, "
	               "csrf_secret, expires_at, remote_addr) VALUES "
	               "(decode($1, 'hex'), $2, decode($3, 'hex'), "
	               "now() + make_interval(secs => $4::int), left($5, 64))"),
	        5, p, NULL, err) == -1)
		return -1;
	*token = tok;
	return 0;
}

/* Checks a password and opens a session; see pv_dash.h. */
int
pv_dash_login(struct pv_ctx *ctx, const char *email, const char *password,
    const char *remote, const char **token, struct pv_err *err)
{
	const char *ekey, *ikey, *p[1] = { email };
	struct pv_err vf = { 0 };
	PGresult *res;
	int over_e = 0, over_i = 0;

	if (strlen(email) > 254 || strlen(password) > 256) {
		PV_ERR(err, PV_E_AUTH, NULL, "wrong email or password");
		return -1;
	}
	if ((ekey = pv_arena_printf(ctx->arena, err, "email:%s", email)) ==
	        NULL ||
	    (ikey = pv_arena_printf(ctx->arena, err, "ip:%s",
	         remote != NULL ? remote : "")) == NULL)
		return -1;
	if (throttled(ctx, ekey, PV_DASH_THROTTLE_MAX, &over_e, err) == -1 ||
	    throttled(ctx, ikey, PV_DASH_THROTTLE_IP, &over_i, err) == -1)
		return -1;
	if (over_e || over_i) {
		PV_ERR(err, PV_E_RATELIMIT, NULL,
		    "too many failed logins; try again in %d minutes",
		    PV_DASH_THROTTLE_SECS / 60);
		err->retry_after = PV_DASH_THROTTLE_SECS;
		return -1;
	}
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT u.id, u.password_hash FROM merchant_users u "
	               "JOIN merchants m ON m.id = u.merchant_id "
	               "WHERE u.email = $1 AND m.status = 'active'"),
	        1, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		const char *dummy;

		/* As slow as a wrong password: no probing for accounts. */
		(void)pv_crypto_password_hash(ctx->arena, password,
		    strlen(password), &dummy, &vf);
		vf.code = PV_E_AUTH;
	}
	if (vf.code != PV_OK ||
	    pv_crypto_password_verify(password, strlen(password),
	        PQgetvalue(res, 0, 1), &vf) == -1) {
		if (count_failure(ctx, ekey, err) == -1 ||
		    count_failure(ctx, ikey, err) == -1)
			return -1;
		PV_ERR(err, PV_E_AUTH, NULL, "wrong email or password");
		return -1;
	}
	return session_open(ctx, PQgetvalue(res, 0, 0), remote, token, err);
}

/* Loads a live session; see pv_dash.h. */
int
pv_dash_session_load(struct pv_ctx *ctx, const char *token,
    struct pv_dash_session *s, struct pv_err *err)
{
	unsigned char hash[PV_CRYPTO_SHA256_LEN];
	const char *hex, *p[1];
	size_t n;
	PGresult *res;

	memset(s, 0, sizeof(*s));
	if (token == NULL || strlen(token) != 64) {
		PV_ERR(err, PV_E_AUTH, NULL, "not logged in");
		return -1;
	}
	if (pv_crypto_sha256(token, 64, hash, err) == -1 ||
	    pv_crypto_hex_encode(ctx->arena, hash, sizeof(hash), &hex, err) ==
	        -1)
		return -1;
	p[0] = hex;
	/*
	 * last_seen moves at most once a minute: a write on every page
	 * would cost each one a durable commit, and the pages of one
	 * browser would queue on the session's row.  An UPDATE of no row
	 * writes nothing, so the statement is then a plain read.
	 */
	if (pv_db_exec(ctx,
	        PV_SQL("WITH s AS (SELECT s.id, u.id AS user_id, u.email, "
	               "m.id AS merchant_id, m.public_id, m.business_name, "
	               "encode(s.csrf_secret, 'hex') AS csrf, s.last_seen "
	               "FROM dashboard_sessions s JOIN merchant_users u "
	               "ON u.id = s.user_id JOIN merchants m "
	               "ON m.id = u.merchant_id "
	               "WHERE s.token_hash = decode($1, 'hex') "
	               "AND s.revoked_at IS NULL AND s.expires_at > now() "
	               "AND m.status = 'active'), "
	               "touch AS (UPDATE dashboard_sessions SET last_seen = "
	               "now() WHERE id = (SELECT id FROM s WHERE last_seen < "
	               "now() - interval '1 minute')) "
	               "SELECT id, user_id, email, merchant_id, public_id, "
	               "business_name, csrf FROM s"),
	        1, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_AUTH, NULL, "not logged in");
		return -1;
	}
	s->session_id = PQgetvalue(res, 0, 0);
	s->user_id = PQgetvalue(res, 0, 1);
	s->email = PQgetvalue(res, 0, 2);
	s->merchant_id = PQgetvalue(res, 0, 3);
	s->merchant = PQgetvalue(res, 0, 4);
	s->business = PQgetvalue(res, 0, 5);
	return pv_crypto_hex_decode_buf(PQgetvalue(res, 0, 6), 64,
	    s->csrf_secret, sizeof(s->csrf_secret), &n, "csrf", err);
}

/* Revokes one or all sessions; see pv_dash.h. */
int
pv_dash_logout(struct pv_ctx *ctx, const struct pv_dash_session *s, int all,
    struct pv_err *err)
{
	const char *p[2] = { s->session_id, s->user_id };

	if (all)
		return pv_db_exec(ctx,
		    PV_SQL("UPDATE dashboard_sessions SET revoked_at = now() "
		           "WHERE user_id = $2 AND revoked_at IS NULL "
		           "AND $1::bigint IS NOT NULL"),
		    2, p, NULL, err);
	return pv_db_exec(ctx,
	    PV_SQL("UPDATE dashboard_sessions SET revoked_at = now() "
	           "WHERE id = $1 AND revoked_at IS NULL"),
	    1, p, NULL, err);
}

/* Changes the password; see pv_dash.h. */
int
pv_dash_password_change(struct pv_ctx *ctx, const struct pv_dash_session *s,
    const char *current, const char *next, struct pv_err *err)
{
	const char *p[2] = { s->user_id, NULL }, *q[2];
	PGresult *res;

	if (pv_db_exec_one(ctx,
	        PV_SQL(
	            "SELECT password_hash FROM merchant_users WHERE id = $1"),
	        1, p, &res, err) == -1)
		return -1;
	if (pv_crypto_password_verify(current, strlen(current),
	        PQgetvalue(res, 0, 0), err) == -1) {
		pv_err_clear(err);
		PV_ERR(err, PV_E_AUTH, "current_password",
		    "the current password is wrong");
		return -1;
	}
	if (check_password(next, err) == -1 ||
	    pv_crypto_password_hash(ctx->arena, next, strlen(next), &p[1],
	        err) == -1)
		return -1;
	if (pv_db_begin(ctx, err) == -1)
		return -1;
	q[0] = s->user_id;
	q[1] = s->session_id;
	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE merchant_users SET password_hash = $2, "
	               "password_changed_at = now() WHERE id = $1"),
	        2, p, NULL, err) == 0)
		(void)pv_db_exec(ctx,
		    PV_SQL("UPDATE dashboard_sessions SET revoked_at = now() "
		           "WHERE user_id = $1 AND id <> $2 "
		           "AND revoked_at IS NULL"),
		    2, q, NULL, err);
	/* A failure above is recorded in err, so this rolls back. */
	if (pv_db_end(ctx, 1, err) == -1 || err->code != PV_OK)
		return -1;
	return 0;
}

/* The session's CSRF token; see pv_dash.h. */
int
pv_dash_csrf_token(const struct pv_dash_session *s, char *out,
    struct pv_err *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[PV_CRYPTO_SHA256_LEN];
	struct pv_iov iov = { "csrf", 4 };
	size_t i;

	if (pv_crypto_hmac_sha256(s->csrf_secret, sizeof(s->csrf_secret), &iov,
	        1, mac, err) == -1)
		return -1;
	for (i = 0; i < sizeof(mac); i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[PV_DASH_CSRF_LEN] = '\0';
	return 0;
}

/* Checks a CSRF token in constant time; see pv_dash.h. */
int
pv_dash_csrf_ok(const struct pv_dash_session *s, const char *token)
{
	char want[PV_DASH_CSRF_LEN + 1];
	struct pv_err err = { 0 };

	if (token == NULL || strlen(token) != PV_DASH_CSRF_LEN ||
	    pv_dash_csrf_token(s, want, &err) == -1)
		return 0;
	return pv_crypto_memeq(want, token, PV_DASH_CSRF_LEN);
}
