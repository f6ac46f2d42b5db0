#ifndef PV_DASH_INT_H
#define PV_DASH_INT_H

#include <stddef.h>

#include "pv_dash.h"
#include "pv_db.h"
#include "pv_tmpl.h"

/*
 * Inside the dashboard: the per-request state the pages share and the
 * helpers of pv_dash.c they use.  Not for other modules.
 */
#define PV_DASH_PAGE_MAX (4 * 1024 * 1024) /* largest page, bytes */

struct dash {
	struct pv_ctx *ctx;       /* borrowed */
	const struct pv_req *req; /* borrowed */
	struct pv_resp *resp;     /* filled by the page */
	const struct pv_kv *form; /* POST fields, or the query for GET */
	size_t nform;             /* entries in form */
	const char *param[2];     /* ":id" path segments (not NUL-ended) */
	size_t paramlen[2];       /* their lengths */
	size_t nparam;            /* entries in param */
	int have_session;         /* s is valid */
	struct pv_dash_session s; /* who is logged in */
	char csrf[PV_DASH_CSRF_LEN + 1]; /* the session's form token */
};

/* The form field (query parameter for GET) name, or "". */
const char *pv_dash_field(const struct dash *d, const char *name);
/* Renders tmpl with args inside the layout as a status response. */
int pv_dash_page(struct dash *d, int status, const char *title,
    const char *tmpl, const struct pv_tmpl_arg *args, struct pv_err *err);
/* 303 See Other to path. */
int pv_dash_redirect(struct dash *d, const char *path, struct pv_err *err);
/* Set-Cookie with HttpOnly, SameSite=Lax, and Secure off loopback. */
int pv_dash_set_cookie(struct dash *d, const char *name, const char *value,
    long max_age, struct pv_err *err);
/*
 * Every row of res through partial tmpl, each column bound by name,
 * then extra (may be NULL); no rows → empty.
 */
int pv_dash_rows(struct dash *d, const char *tmpl, const PGresult *res,
    const struct pv_tmpl_arg *extra, struct pv_html *out, struct pv_err *err);
/* Partial tmpl rendered with args into *out (arena memory). */
int pv_dash_partial(struct dash *d, const char *tmpl,
    const struct pv_tmpl_arg *args, struct pv_html *out, struct pv_err *err);

/* Pages (pv_dash_pages.c), all for the logged-in merchant only. */
int pv_dash_overview(struct dash *d, struct pv_err *err);
int pv_dash_orders(struct dash *d, struct pv_err *err);
int pv_dash_orders_csv(struct dash *d, struct pv_err *err);
int pv_dash_order(struct dash *d, struct pv_err *err);
int pv_dash_connections(struct dash *d, struct pv_err *err);
int pv_dash_connect_psp(struct dash *d, struct pv_err *err);
int pv_dash_connect_shopify(struct dash *d, struct pv_err *err);
int pv_dash_settings(struct dash *d, struct pv_err *err);
int pv_dash_password(struct dash *d, struct pv_err *err);
int pv_dash_shipping(struct dash *d, struct pv_err *err);
int pv_dash_tax(struct dash *d, struct pv_err *err);
/* pv_dash_ship.c: the order page's forms, and the order lookup. */
int pv_dash_own_order(struct dash *d, PGresult **o, struct pv_err *err);
int pv_dash_refund(struct dash *d, struct pv_err *err);
/* pv_dash_products.c: products, the catalog sync's progress, sync now. */
int pv_dash_products(struct dash *d, struct pv_err *err);
int pv_dash_sync_page(struct dash *d, struct pv_err *err);
int pv_dash_sync(struct dash *d, struct pv_err *err);
/* pv_dash_agents.c */
int pv_dash_agents(struct dash *d, struct pv_err *err);
int pv_dash_agent_block(struct dash *d, struct pv_err *err);
/* pv_dash_ship.c */
int pv_dash_ship(struct dash *d, struct pv_err *err);

#endif /* PV_DASH_INT_H */
