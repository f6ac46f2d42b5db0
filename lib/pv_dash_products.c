/*
 * The dashboard's catalog pages: products (the catalog, its stock and
 * the state of the store sync) and the sync's progress page, with the
 * "Sync now" form both carry.
 *
 * A sync is the durable catalog.sync job of pv_sync.h, run by the
 * worker.  These pages only ask for one (pv_sync_request(), what
 * `pivotactl sync-products` does) and show where it is
 * (pv_sync_status(), pv_sync_ended()).  The progress page reloads
 * itself every SYNC_REFRESH seconds while the run is queued or running
 * (a Refresh header: no JavaScript needed), then shows what the run
 * changed, the products it refused and the store's products now in the
 * catalog.  Every query is scoped by the session's merchant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_dash_int.h"
#include "pv_sync.h"
#include "pv_valid.h"

#define PRODUCTS_PAGE 50  /* products per page, and on the sync page */
#define SYNC_REFRESH  "2" /* seconds between reloads of an open run */
#define SYNC_PATH     "/dashboard/products/sync"

/*
 * A page of the merchant's products (only those from its store if
 * store), PRODUCTS_PAGE from offset, as partials/product_table.html
 * into *table, and *cnt: one row of how many there are and how many
 * are active.
 */
static int
product_list(struct dash *d, int store, int64_t offset, struct pv_html *table,
    PGresult **cnt, struct pv_err *err)
{
	char lim[16], off[24];
	const char *p[4] = { d->s.merchant_id, store ? "t" : "f", lim, off };
	struct pv_html rows;
	struct pv_tmpl_arg a[] = { PV_HTML("rows", &rows), PV_END };
	PGresult *res;

	snprintf(lim, sizeof(lim), "%d", PRODUCTS_PAGE);
	snprintf(off, sizeof(off), "%lld", (long long)offset);
	if (pv_db_exec(d->ctx,
	        PV_SQL("SELECT public_id AS id, title, status, "
	               "coalesce(pv_money_text(price_minor, "
	               "currency_exponent), '') AS price, currency, "
	               "inventory_quantity::text AS stock, variant_count::text "
	               "AS variants, CASE WHEN in_stock THEN 'in stock' ELSE "
	               "'out of stock' END AS availability FROM products "
	               "WHERE merchant_id = $1 AND (NOT $2::boolean OR "
	               "external_id IS NOT NULL) ORDER BY title, id "
	               "LIMIT $3::int OFFSET $4::int"),
	        4, p, &res, err) == -1 ||
	    pv_dash_rows(d, "partials/product_row.html", res, NULL, &rows,
	        err) == -1 ||
	    pv_dash_partial(d, "partials/product_table.html", a, table, err) ==
	        -1)
		return -1;
	return pv_db_exec(d->ctx,
	    PV_SQL("SELECT count(*)::text, count(*) FILTER (WHERE status = "
	           "'active')::text FROM products WHERE merchant_id = $1 AND "
	           "(NOT $2::boolean OR external_id IS NOT NULL)"),
	    2, p, cnt, err);
}

/* "1 page", "3 pages" (arena memory). */
static const char *
count(struct dash *d, long n, const char *noun, struct pv_err *err)
{
	return pv_arena_printf(d->ctx->arena, err, "%ld %s%s", n, noun,
	    n == 1 ? "" : "s");
}

/*
 * The merchant's sync into *st, *have = 1; or *have = 0 if it never
 * connected a store.
 */
static int
sync_load(struct dash *d, struct pv_sync_status *st, int *have,
    struct pv_err *err)
{
	struct pv_err e = { 0 };

	*have = 0;
	if (pv_sync_status(d->ctx, d->s.merchant, st, &e) == 0) {
		*have = 1;
		return 0;
	}
	if (e.code == PV_E_NOTFOUND)
		return 0;
	*err = e;
	return -1;
}

/*
 * Where the run stands, in a sentence (arena memory); *state is the
 * state to show: a run whose job died before it was done is failed.
 */
static const char *
sync_summary(struct dash *d, const struct pv_sync_status *st,
    const char **state, struct pv_err *err)
{
	struct pv_arena *a = d->ctx->arena;
	int failed, ended = pv_sync_ended(st, &failed);
	const char *products = count(d, st->products, "product", err);
	const char *pages = count(d, st->pages, "page", err);

	*state = failed ? "failed" : st->state;
	if (products == NULL || pages == NULL)
		return NULL;
	if (failed)
		return pv_arena_printf(a, err, "The sync failed: %s.",
		    st->error != NULL ? st->error : "its job gave up");
	if (ended)
		return pv_arena_printf(a, err,
		    "Done: %s copied from your store in %s.", products, pages);
	if (strcmp(st->state, "queued") == 0)
		return "Queued: waiting for the worker to start it. This page "
		       "reloads every " SYNC_REFRESH " seconds.";
	if (strcmp(st->state, "running") == 0)
		return pv_arena_printf(a, err,
		    "Running: %s copied so far (%s)%s. This page reloads "
		    "every " SYNC_REFRESH " seconds.",
		    products, pages,
		    st->error != NULL ? ", retrying after an error" : "");
	return "No sync yet.";
}

/* st through the card template tmpl (partials/sync_*.html). */
static int
sync_card(struct dash *d, const struct pv_sync_status *st, const char *tmpl,
    struct pv_html *out, struct pv_err *err)
{
	struct pv_arena *a = d->ctx->arena;
	const char *state, *summary = sync_summary(d, st, &state, err);
	const char *run = pv_arena_printf(a, err, "%ld", st->run);
	const char *products = pv_arena_printf(a, err, "%ld", st->products);
	const char *pages = count(d, st->pages, "page", err);
	const char *skipped = pv_arena_printf(a, err, "%ld", st->skipped);
	const char *attempts = count(d, st->job_attempts, "attempt", err);
	struct pv_tmpl_arg args[] = {
		PV_TEXT("shop", st->shop),
		PV_TEXT("state", state),
		PV_TEXT("summary", summary),
		PV_TEXT("run", run),
		PV_TEXT("products", products),
		PV_TEXT("pages", pages),
		PV_TEXT("skipped", skipped),
		PV_TEXT("job", st->job_state != NULL ? st->job_state : "—"),
		PV_TEXT("attempts", attempts),
		PV_TEXT("started", st->started_at ? st->started_at : "—"),
		PV_TEXT("finished", st->finished_at ? st->finished_at : "—"),
		PV_TEXT("error", st->error ? st->error : "none"),
		PV_TEXT("csrf", d->csrf),
		PV_END,
	};

	if (summary == NULL || run == NULL || products == NULL ||
	    pages == NULL || skipped == NULL || attempts == NULL)
		return -1;
	return pv_dash_partial(d, tmpl, args, out, err);
}

/* The card telling a merchant without a store to connect one. */
static int
sync_none(struct dash *d, struct pv_html *out, struct pv_err *err)
{
	struct pv_tmpl_arg a[] = { PV_END };

	return pv_dash_partial(d, "partials/sync_none.html", a, out, err);
}

/* GET /dashboard/products?page= */
int
pv_dash_products(struct dash *d, struct pv_err *err)
{
	const char *pg = pv_dash_field(d, "page");
	const char *prev = "", *next = "";
	struct pv_sync_status st;
	struct pv_html list, sync;
	int64_t page = 1;
	PGresult *cnt;
	int have;

	if (*pg != '\0' &&
	    pv_valid_int64(pg, 1, 100000, &page, "page", err) == -1)
		return -1;
	if (product_list(d, 0, (page - 1) * PRODUCTS_PAGE, &list, &cnt, err) ==
	        -1 ||
	    sync_load(d, &st, &have, err) == -1 ||
	    (have ? sync_card(d, &st, "partials/sync_status.html", &sync, err) :
	            sync_none(d, &sync, err)) == -1)
		return -1;
	if (page > 1 &&
	    (prev = pv_arena_printf(d->ctx->arena, err, "%lld",
	         (long long)page - 1)) == NULL)
		return -1;
	if (page * PRODUCTS_PAGE < strtoll(PQgetvalue(cnt, 0, 0), NULL, 10) &&
	    (next = pv_arena_printf(d->ctx->arena, err, "%lld",
	         (long long)page + 1)) == NULL)
		return -1;
	{
		struct pv_tmpl_arg a[] = {
			PV_HTML("products", &list),
			PV_HTML("sync", &sync),
			PV_TEXT("total", PQgetvalue(cnt, 0, 0)),
			PV_TEXT("active", PQgetvalue(cnt, 0, 1)),
			PV_TEXT("prev", prev),
			PV_TEXT("next", next),
			PV_END,
		};
		return pv_dash_page(d, 200, "Products", "products.html", a,
		    err);
	}
}

/*
 * GET /dashboard/products/sync: the progress of the merchant's sync,
 * reloading itself until the run ends; then what it changed, what it
 * refused and the store's products in the catalog.
 */
int
pv_dash_sync_page(struct dash *d, struct pv_err *err)
{
	const char *p[1] = { d->s.merchant_id };
	struct pv_sync_status st;
	struct pv_html card, result, problems, list;
	PGresult *res, *probs, *cnt;
	int have, failed;

	if (sync_load(d, &st, &have, err) == -1)
		return -1;
	if (!have) {
		struct pv_tmpl_arg a[] = { PV_END };

		return pv_dash_page(d, 200, "Catalog sync",
		    "partials/sync_none.html", a, err);
	}
	if (sync_card(d, &st, "partials/sync_progress.html", &card, err) ==
	        -1 ||
	    pv_db_exec(d->ctx,
	        PV_SQL("SELECT r.created::text AS created, r.updated::text "
	               "AS updated, r.unchanged::text AS unchanged, "
	               "r.archived::text AS archived FROM merchant_shopify s, "
	               "jsonb_to_record(s.sync_result) AS r(created bigint, "
	               "updated bigint, unchanged bigint, archived bigint) "
	               "WHERE s.merchant_id = $1 AND s.sync_state = 'done'"),
	        1, p, &res, err) == -1 ||
	    pv_dash_rows(d, "partials/sync_result.html", res, NULL, &result,
	        err) == -1 ||
	    pv_db_exec(d->ctx,
	        PV_SQL("SELECT unnest(sync_problems) AS problem FROM "
	               "merchant_shopify WHERE merchant_id = $1"),
	        1, p, &probs, err) == -1 ||
	    pv_dash_rows(d, "partials/problem_row.html", probs, NULL, &problems,
	        err) == -1 ||
	    product_list(d, 1, 0, &list, &cnt, err) == -1)
		return -1;
	if (PQntuples(res) == 0)
		result = PV_HTML_LIT("<p>Shown once a sync is done.</p>");
	if (PQntuples(probs) == 0)
		problems = PV_HTML_LIT("<li>None.</li>");
	/* Until a queued or running run ends, the browser asks again. */
	if ((strcmp(st.state, "queued") == 0 ||
	        strcmp(st.state, "running") == 0) &&
	    !pv_sync_ended(&st, &failed) &&
	    pv_resp_header(d->resp, "Refresh", SYNC_REFRESH "; url=" SYNC_PATH,
	        err) == -1)
		return -1;
	{
		struct pv_tmpl_arg a[] = {
			PV_HTML("card", &card),
			PV_HTML("result", &result),
			PV_HTML("problems", &problems),
			PV_HTML("products", &list),
			PV_TEXT("shop", st.shop),
			PV_TEXT("total", PQgetvalue(cnt, 0, 0)),
			PV_TEXT("active", PQgetvalue(cnt, 0, 1)),
			PV_END,
		};
		return pv_dash_page(d, 200, "Catalog sync", "sync.html", a,
		    err);
	}
}

/*
 * POST /dashboard/products/sync: asks for a sync (unless one is queued
 * or running already) and shows its progress.  404 without a store,
 * 409 once the store was disconnected.
 */
int
pv_dash_sync(struct dash *d, struct pv_err *err)
{
	struct pv_sync_status st;
	struct pv_err e = { 0 };
	int enqueued = 0;

	if (pv_sync_request(d->ctx, d->s.merchant, &enqueued, &st, &e) == -1) {
		/* pv_sync's messages speak to operators. */
		if (e.code == PV_E_NOTFOUND)
			PV_ERR(err, PV_E_NOTFOUND, NULL,
			    "connect your Shopify store first");
		else if (e.code == PV_E_CONFLICT)
			PV_ERR(err, PV_E_CONFLICT, NULL,
			    "your Shopify store is disconnected; connect it "
			    "again first");
		else
			*err = e;
		return -1;
	}
	return pv_dash_redirect(d,
	    enqueued ? SYNC_PATH "?m=sync" : SYNC_PATH "?m=syncing", err);
}
