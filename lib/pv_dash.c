/*
 * The dashboard program's front: one routing table whose flags name the
 * preconditions (a session, a CSRF token) that run before a handler,
 * the page layout, HTML error pages and the sign-up and login pages.
 * The pages themselves are in pv_dash_pages.c; the shared helpers are
 * declared in pv_dash_int.h.
 *
 * Statuses: 200 pages, 303 after a successful form and to the login
 * page without a session, 400 bad input, 401 wrong login, 403 a POST
 * without a valid CSRF token or session (nothing changes), 404 unknown
 * paths and other merchants' objects, 405, 409, 429 throttled logins,
 * 502/504 a provider refusing or failing on connect, 500.
 */
#include <stdlib.h>
#include <string.h>

#include "pv_crypto.h"
#include "pv_config.h"
#include "pv_dash.h"
#include "pv_dash_int.h"
#include "pv_log.h"

/* Static fixed messages shown after a redirect (?m=...). */
static const struct {
	const char *code, *text;
} flashes[] = {
	{ "welcome",
	    "Welcome to Pivota. Connect a payment provider to start "
	    "selling." },
	{ "saved", "Saved." },
	{ "psp", "Payment provider connected and verified." },
	{ "shop",
	    "Shopify store connected and verified. Sync your catalog to "
	    "copy its products." },
	{ "sync", "Catalog sync queued." },
	{ "syncing", "A catalog sync is already queued or running." },
	{ "password",
	    "Password changed. Your other sessions were signed out." },
	{ "out", "You are signed out." },
	{ "blocked", "Agent blocked: it can no longer buy from you." },
	{ "allowed", "Agent allowed again." },
	{ "shipped", "Shipment saved; the agent is told." },
	{ "refunded", "Refund sent; the customer gets the money back." },
	{ "refund_pending", "Refund sent; the provider confirms it later." },
};

/* A cookie's value copied into the arena, or NULL. */
static const char *
cookie_dup(struct dash *d, const char *name)
{
	struct pv_err err = { 0 };
	const char *v;
	size_t n;

	if ((v = pv_req_cookie(d->req, name, &n)) == NULL || n > 128)
		return NULL;
	return pv_arena_strndup(d->ctx->arena, v, n, &err);
}

/* Loopback over plain HTTP is the one place a cookie may lack Secure. */
static int
secure_cookies(const struct pv_req *req)
{
	const char *ra = req->remote_addr;

	return req->https ||
	    !(strncmp(ra, "127.", 4) == 0 || strcmp(ra, "::1") == 0);
}

/* Adds Set-Cookie name=value with our attributes; max_age 0 deletes. */
int
pv_dash_set_cookie(struct dash *d, const char *name, const char *value,
    long max_age, struct pv_err *err)
{
	const char *c = pv_arena_printf(d->ctx->arena, err,
	    "%s=%s; Path=/dashboard; Max-Age=%ld; HttpOnly%s; SameSite=Lax",
	    name, value, max_age, secure_cookies(d->req) ? "; Secure" : "");

	return c == NULL ? -1 : pv_resp_header(d->resp, "Set-Cookie", c, err);
}

/* A form field (or query parameter for GET), "" when absent. */
const char *
pv_dash_field(const struct dash *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->nform; i++)
		if (strcmp(d->form[i].name, name) == 0)
			return strlen(d->form[i].value) == d->form[i].valuelen ?
			    d->form[i].value :
			    "";
	return "";
}

/* 303 to path (a literal or our own URL). */
int
pv_dash_redirect(struct dash *d, const char *path, struct pv_err *err)
{
	if (pv_resp_header(d->resp, "Location", path, err) == -1)
		return -1;
	pv_resp_set(d->resp, 303, "text/plain; charset=utf-8", "", 0);
	return 0;
}

static int
render_nav(struct dash *d, struct pv_html *out, struct pv_err *err)
{
	struct pv_tmpl_arg args[] = {
		PV_TEXT("business", d->s.business),
		PV_TEXT("email", d->s.email),
		PV_TEXT("csrf", d->csrf),
		PV_END,
	};

	if (!d->have_session) {
		*out = PV_HTML_LIT("");
		return 0;
	}
	return pv_tmpl_render_html(d->ctx->tmpl, "partials/nav.html", args,
	    d->ctx->arena, PV_DASH_PAGE_MAX, out, err);
}

/* Renders body into the layout as the response; see pv_dash_int.h. */
int
pv_dash_page(struct dash *d, int status, const char *title, const char *tmpl,
    const struct pv_tmpl_arg *args, struct pv_err *err)
{
	struct pv_html body, nav, flash = PV_HTML_LIT("");
	const char *m = pv_req_param(d->req, "m");
	struct pv_buf b;
	size_t i;

	if (pv_tmpl_render_html(d->ctx->tmpl, tmpl, args, d->ctx->arena,
	        PV_DASH_PAGE_MAX, &body, err) == -1 ||
	    render_nav(d, &nav, err) == -1)
		return -1;
	for (i = 0; m != NULL && i < sizeof(flashes) / sizeof(flashes[0]);
	     i++) {
		if (strcmp(m, flashes[i].code) == 0) {
			struct pv_tmpl_arg fa[] = {
				PV_TEXT("kind", "ok"),
				PV_TEXT("msg", flashes[i].text),
				PV_END,
			};
			if (pv_tmpl_render_html(d->ctx->tmpl,
			        "partials/flash.html", fa, d->ctx->arena, 4096,
			        &flash, err) == -1)
				return -1;
		}
	}
	{
		struct pv_tmpl_arg la[] = {
			PV_TEXT("title", title),
			PV_HTML("nav", &nav),
			PV_HTML("flash", &flash),
			PV_HTML("body", &body),
			PV_END,
		};
		const char *out;
		size_t len;

		pv_buf_init(&b, d->ctx->arena, PV_DASH_PAGE_MAX);
		if (pv_tmpl_render(d->ctx->tmpl, "layout.html", la, &b, err) ==
		        -1 ||
		    pv_buf_finish(&b, &out, &len, err) == -1)
			return -1;
		pv_resp_set(d->resp, status, "text/html; charset=utf-8", out,
		    len);
	}
	return pv_resp_header(d->resp, "Cache-Control", "no-store", err);
}

/* A 4xx as a page: the message is ours (escaped like any text). */
static int
error_page(struct dash *d, const struct pv_err *e, struct pv_err *err)
{
	struct pv_tmpl_arg args[] = {
		PV_TEXT("msg",
		    e->msg[0] ? e->msg :
		                pv_http_reason(pv_err_status(e->code))),
		PV_END,
	};
	int status = pv_err_status(e->code);

	if (pv_dash_page(d, status, pv_http_reason(status), "error.html", args,
	        err) == -1)
		return -1;
	if (e->retry_after > 0) {
		char ra[24];

		snprintf(ra, sizeof(ra), "%d", e->retry_after);
		return pv_resp_header(d->resp, "Retry-After", ra, err);
	}
	return 0;
}

/* ---- Sign-up and login ------------------------------------------- */

/*
 * Before there is a session, forms carry a token that must equal the
 * pv_csrf cookie (double submit); a cross-site page can neither read
 * nor set that cookie.
 */
static int
pre_csrf(struct dash *d, const char **tok, struct pv_err *err)
{
	const char *c = cookie_dup(d, "pv_csrf");

	if (c != NULL && strlen(c) == 32) {
		*tok = c;
		return 0;
	}
	if (pv_crypto_token(d->ctx->arena, "", 16, tok, err) == -1)
		return -1;
	return pv_dash_set_cookie(d, "pv_csrf", *tok, 3600, err);
}

static int
pre_csrf_ok(struct dash *d)
{
	const char *c = cookie_dup(d, "pv_csrf");
	const char *f = pv_dash_field(d, "csrf");

	return c != NULL && strlen(c) == 32 && strlen(f) == 32 &&
	    pv_crypto_memeq(c, f, 32);
}

static int
login_form(struct dash *d, int status, const char *msg, struct pv_err *err)
{
	const char *tok;
	struct pv_html m = PV_HTML_LIT("");

	if (pre_csrf(d, &tok, err) == -1)
		return -1;
	if (msg != NULL) {
		struct pv_tmpl_arg fa[] = { PV_TEXT("kind", "error"),
			PV_TEXT("msg", msg), PV_END };
		if (pv_tmpl_render_html(d->ctx->tmpl, "partials/flash.html", fa,
		        d->ctx->arena, 4096, &m, err) == -1)
			return -1;
	}
	{
		struct pv_tmpl_arg args[] = {
			PV_TEXT("csrf", tok),
			PV_TEXT("email", pv_dash_field(d, "email")),
			PV_HTML("error", &m),
			PV_END,
		};
		return pv_dash_page(d, status, "Sign in", "login.html", args,
		    err);
	}
}

static int
page_login(struct dash *d, struct pv_err *err)
{
	return login_form(d, 200, NULL, err);
}

static int
form_login(struct dash *d, struct pv_err *err)
{
	struct pv_err e = { 0 };
	const char *token;

	if (pv_dash_login(d->ctx, pv_dash_field(d, "email"),
	        pv_dash_field(d, "password"), d->req->remote_addr, &token,
	        &e) == -1) {
		if (e.code == PV_E_AUTH || e.code == PV_E_RATELIMIT)
			return login_form(d, pv_err_status(e.code), e.msg, err);
		*err = e;
		return -1;
	}
	if (pv_dash_set_cookie(d, "pv_session", token, PV_DASH_SESSION_TTL,
	        err) == -1)
		return -1;
	return pv_dash_redirect(d, "/dashboard/", err);
}

static int
signup_form(struct dash *d, int status, const char *msg, struct pv_err *err)
{
	const char *tok;
	struct pv_html m = PV_HTML_LIT("");

	if (pre_csrf(d, &tok, err) == -1)
		return -1;
	if (msg != NULL) {
		struct pv_tmpl_arg fa[] = { PV_TEXT("kind", "error"),
			PV_TEXT("msg", msg), PV_END };
		if (pv_tmpl_render_html(d->ctx->tmpl, "partials/flash.html", fa,
		        d->ctx->arena, 4096, &m, err) == -1)
			return -1;
	}
	{
		struct pv_tmpl_arg args[] = {
			PV_TEXT("csrf", tok),
			PV_TEXT("business", pv_dash_field(d, "business_name")),
			PV_TEXT("store_url", pv_dash_field(d, "store_url")),
			PV_TEXT("email", pv_dash_field(d, "email")),
			PV_HTML("error", &m),
			PV_END,
		};
		return pv_dash_page(d, status, "Create your account",
		    "signup.html", args, err);
	}
}

static int
page_signup(struct dash *d, struct pv_err *err)
{
	return signup_form(d, 200, NULL, err);
}

static int
form_signup(struct dash *d, struct pv_err *err)
{
	struct pv_err e = { 0 };
	const char *merchant, *token;

	if (pv_dash_signup(d->ctx, pv_dash_field(d, "business_name"),
	        pv_dash_field(d, "store_url"), pv_dash_field(d, "email"),
	        pv_dash_field(d, "password"), &merchant, &e) == -1) {
		if (e.code == PV_E_INVALID || e.code == PV_E_CONFLICT)
			return signup_form(d, pv_err_status(e.code), e.msg,
			    err);
		*err = e;
		return -1;
	}
	pv_log_msg(PV_LOG_INFO, "signup: merchant %s", merchant);
	if (pv_dash_login(d->ctx, pv_dash_field(d, "email"),
	        pv_dash_field(d, "password"), d->req->remote_addr, &token,
	        err) == -1 ||
	    pv_dash_set_cookie(d, "pv_session", token, PV_DASH_SESSION_TTL,
	        err) == -1)
		return -1;
	return pv_dash_redirect(d, "/dashboard/?m=welcome", err);
}

static int
form_logout(struct dash *d, struct pv_err *err)
{
	int all = strcmp(pv_dash_field(d, "everywhere"), "1") == 0;

	if (pv_dash_logout(d->ctx, &d->s, all, err) == -1 ||
	    pv_dash_set_cookie(d, "pv_session", "", 0, err) == -1)
		return -1;
	return pv_dash_redirect(d, "/dashboard/login?m=out", err);
}

/* ---- Routing ------------------------------------------------------ */

enum {
	NEED_SESSION = 1 << 0, /* a live session, else login (GET) or 403 */
	NEED_CSRF = 1 << 1,    /* the session's CSRF token in the form */
	PRE_CSRF = 1 << 2,     /* the pre-session double-submit token */
};

struct route {
	unsigned methods;                          /* PV_GET, PV_POST */
	const char *pattern;                       /* below /dashboard */
	int (*fn)(struct dash *, struct pv_err *); /* the handler */
	unsigned flags;                            /* preconditions */
};

static const struct route routes[] = {
	{ PV_GET, "/", pv_dash_overview, NEED_SESSION },
	{ PV_GET, "/login", page_login, 0 },
	{ PV_POST, "/login", form_login, PRE_CSRF },
	{ PV_GET, "/signup", page_signup, 0 },
	{ PV_POST, "/signup", form_signup, PRE_CSRF },
	{ PV_POST, "/logout", form_logout, NEED_SESSION | NEED_CSRF },
	{ PV_GET, "/orders", pv_dash_orders, NEED_SESSION },
	{ PV_GET, "/orders.csv", pv_dash_orders_csv, NEED_SESSION },
	{ PV_GET, "/orders/:id", pv_dash_order, NEED_SESSION },
	{ PV_POST, "/orders/:id/ship", pv_dash_ship, NEED_SESSION | NEED_CSRF },
	{ PV_POST, "/orders/:id/refund", pv_dash_refund,
	    NEED_SESSION | NEED_CSRF },
	{ PV_GET, "/products", pv_dash_products, NEED_SESSION },
	{ PV_GET, "/products/sync", pv_dash_sync_page, NEED_SESSION },
	{ PV_POST, "/products/sync", pv_dash_sync, NEED_SESSION | NEED_CSRF },
	{ PV_GET, "/connections", pv_dash_connections, NEED_SESSION },
	{ PV_POST, "/connections/psp", pv_dash_connect_psp,
	    NEED_SESSION | NEED_CSRF },
	{ PV_POST, "/connections/shopify", pv_dash_connect_shopify,
	    NEED_SESSION | NEED_CSRF },
	{ PV_GET, "/agents", pv_dash_agents, NEED_SESSION },
	{ PV_POST, "/agents/block", pv_dash_agent_block,
	    NEED_SESSION | NEED_CSRF },
	{ PV_GET, "/settings", pv_dash_settings, NEED_SESSION },
	{ PV_POST, "/settings/password", pv_dash_password,
	    NEED_SESSION | NEED_CSRF },
	{ PV_POST, "/settings/shipping", pv_dash_shipping,
	    NEED_SESSION | NEED_CSRF },
	{ PV_POST, "/settings/tax", pv_dash_tax, NEED_SESSION | NEED_CSRF },
};

/* Matches path against pattern, capturing ":x" segments into d. */
static int
match(const char *pattern, const char *path, struct dash *d)
{
	const char *p = pattern, *q = path;
	size_t n;

	d->nparam = 0;
	while (*p != '\0' && *q != '\0') {
		if (*p == ':') {
			n = strcspn(q, "/");
			if (n == 0 || n > 64 || d->nparam == 2)
				return 0;
			d->param[d->nparam++] = q;
			d->paramlen[d->nparam - 1] = n;
			p += strcspn(p, "/");
			q += n;
			continue;
		}
		if (*p != *q)
			return 0;
		p++;
		q++;
	}
	return *p == '\0' && *q == '\0';
}

static int
load_templates(struct pv_ctx *ctx, struct pv_err *err)
{
	if (ctx->tmpl != NULL)
		return 0;
	ctx->tmpl = pv_tmpl_load(ctx->cfg->template_dir, err);
	return ctx->tmpl == NULL ? -1 : 0;
}

static int
run(struct dash *d, struct pv_err *err)
{
	const struct pv_req *req = d->req;
	const char *path = req->path, *tok;
	const struct route *r = NULL;
	unsigned allowed = 0;
	size_t i;

	if (strcmp(path, "/dashboard") == 0)
		return pv_dash_redirect(d, "/dashboard/", err);
	if (strncmp(path, "/dashboard/", 11) != 0) {
		PV_ERR(err, PV_E_NOTFOUND, NULL, "no such page");
		return -1;
	}
	path += 10;
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!match(routes[i].pattern, path, d))
			continue;
		allowed |= routes[i].methods;
		if (routes[i].methods &
		    (req->method == PV_HEAD ? PV_GET : req->method)) {
			r = &routes[i];
			break;
		}
	}
	if (r == NULL) {
		if (allowed == 0) {
			PV_ERR(err, PV_E_NOTFOUND, NULL, "no such page");
			return -1;
		}
		if (pv_resp_header(d->resp, "Allow",
		        allowed & PV_POST ? "POST" : "GET, HEAD", err) == -1)
			return -1;
		PV_ERR(err, PV_E_METHOD, NULL, "method not allowed");
		return -1;
	}
	if (req->method == PV_POST) {
		const char *ct = pv_req_header(req, "content-type");

		if (ct == NULL ||
		    strncmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
			PV_ERR(err, PV_E_INVALID, NULL, "forms only");
			return -1;
		}
		struct pv_kv *kv;

		if (pv_http_parse_form(d->ctx->arena, req->body, req->bodylen,
		        64, &kv, &d->nform, err) == -1)
			return -1;
		d->form = kv;
	} else {
		d->form = req->params;
		d->nform = req->nparam;
	}
	if ((tok = cookie_dup(d, "pv_session")) != NULL) {
		struct pv_err e = { 0 };

		if (pv_dash_session_load(d->ctx, tok, &d->s, &e) == 0) {
			d->have_session = 1;
			if (pv_dash_csrf_token(&d->s, d->csrf, err) == -1)
				return -1;
		} else if (e.code != PV_E_AUTH) {
			*err = e;
			return -1;
		}
	}
	if ((r->flags & NEED_SESSION) && !d->have_session) {
		if (req->method == PV_POST) {
			PV_ERR(err, PV_E_FORBIDDEN, NULL,
			    "your session has ended; sign in again");
			return -1;
		}
		return pv_dash_redirect(d, "/dashboard/login", err);
	}
	if ((r->flags & NEED_CSRF) &&
	    !pv_dash_csrf_ok(&d->s, pv_dash_field(d, "csrf"))) {
		PV_ERR(err, PV_E_FORBIDDEN, "csrf",
		    "the form is out of date (missing or wrong CSRF token); "
		    "reload the page and try again");
		return -1;
	}
	if ((r->flags & PRE_CSRF) && !pre_csrf_ok(d)) {
		PV_ERR(err, PV_E_FORBIDDEN, "csrf",
		    "the form is out of date (missing or wrong CSRF token); "
		    "reload the page and try again");
		return -1;
	}
	return r->fn(d, err);
}

/* The dashboard program's handler; see pv_dash.h. */
int
pv_dash_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	struct dash d;
	struct pv_err e = { 0 };
	int status;

	memset(&d, 0, sizeof(d));
	d.ctx = ctx;
	d.req = req;
	d.resp = resp;
	if (load_templates(ctx, err) == -1)
		return -1;
	if (run(&d, &e) == 0)
		return 0;
	status = pv_err_status(e.code);
	if (status >= 500 || status == 413) {
		*err = e;
		return -1;
	}
	/* Keep the headers already set (Allow, a cleared cookie). */
	return error_page(&d, &e, err);
}
