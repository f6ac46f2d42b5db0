#ifndef PV_DASH_H
#define PV_DASH_H

#include <stddef.h>

#include "pv_err.h"
#include "pv_http.h"

/*
 * The merchant dashboard (issue 8, API.md 5): server-rendered HTML
 * under /dashboard/, served by the dashboard program.  pv_dash.c routes
 * and renders pages, pv_dash_auth.c owns people, sessions, the login
 * throttle and CSRF tokens (migration 0014).
 *
 * A session is a random token in the pv_session cookie; PostgreSQL
 * keeps its SHA-256, the user, a CSRF secret, the expiry and whether it
 * was revoked.  Forms carry HMAC-SHA256(csrf_secret, "csrf") in hex.
 * Strings returned live in ctx->arena.
 */

#define PV_DASH_SESSION_TTL   (14 * 24 * 3600) /* seconds a session lives */
#define PV_DASH_PASSWORD_MIN  10               /* shortest password */
#define PV_DASH_THROTTLE_MAX  5   /* failed logins per email per window */
#define PV_DASH_THROTTLE_IP   30  /* failed logins per address per window */
#define PV_DASH_THROTTLE_SECS 900 /* the window */
#define PV_DASH_CSRF_LEN      64  /* hex characters of a CSRF token */

/* Who is logged in. */
struct pv_dash_session {
	const char *session_id;        /* dashboard_sessions.id */
	const char *user_id;           /* merchant_users.id */
	const char *email;             /* the user's */
	const char *merchant_id;       /* merchants.id (internal, for joins) */
	const char *merchant;          /* public id, mer_... */
	const char *business;          /* business name */
	unsigned char csrf_secret[32]; /* the session's CSRF key */
};

/* The dashboard program's handler; statuses are listed in pv_dash.c. */
int pv_dash_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

/*
 * Registers a merchant and its first user in one transaction.  Checks
 * the input (PV_E_INVALID naming the field; a password shorter than
 * PV_DASH_PASSWORD_MIN is "password").  An email already in use is
 * PV_E_CONFLICT.  Fills *merchant (public id).
 */
int pv_dash_signup(struct pv_ctx *ctx, const char *business,
    const char *store_url, const char *email, const char *password,
    const char **merchant, struct pv_err *err);

/*
 * Adds a login to an existing merchant (public id), or sets the
 * password of an existing login with that email of the same merchant.
 * For operators (pivotactl) and the demo.  PV_E_NOTFOUND for an
 * unknown merchant, PV_E_CONFLICT if the email belongs to another one.
 */
int pv_dash_user_set(struct pv_ctx *ctx, const char *merchant,
    const char *email, const char *password, struct pv_err *err);

/*
 * Checks an email and password and opens a session.  Throttled: after
 * PV_DASH_THROTTLE_MAX failures for the email (or PV_DASH_THROTTLE_IP
 * for remote) within the window, every attempt is PV_E_RATELIMIT until
 * the window ends.  A wrong email or password is PV_E_AUTH (the same
 * message for both) and counts as a failure.  *token is the cookie
 * value (arena).
 */
int pv_dash_login(struct pv_ctx *ctx, const char *email, const char *password,
    const char *remote, const char **token, struct pv_err *err);

/*
 * The live session of a cookie token: PV_E_AUTH if unknown, expired or
 * revoked.
 */
int pv_dash_session_load(struct pv_ctx *ctx, const char *token,
    struct pv_dash_session *s, struct pv_err *err);

/* Revokes this session, or (all) every session of its user. */
int pv_dash_logout(struct pv_ctx *ctx, const struct pv_dash_session *s, int all,
    struct pv_err *err);

/*
 * Changes the user's password after checking the current one
 * (PV_E_AUTH), and revokes every other session of the user.
 */
int pv_dash_password_change(struct pv_ctx *ctx, const struct pv_dash_session *s,
    const char *current, const char *next, struct pv_err *err);

/* The session's CSRF token into out[PV_DASH_CSRF_LEN + 1]. */
int pv_dash_csrf_token(const struct pv_dash_session *s, char *out,
    struct pv_err *err);

/* 1 if token (may be NULL) is the session's CSRF token, else 0. */
int pv_dash_csrf_ok(const struct pv_dash_session *s, const char *token);

#endif /* PV_DASH_H */
