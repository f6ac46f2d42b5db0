/*
 * The dashboard's pages: overview with server-drawn SVG charts, orders
 * (filters, search, pages, CSV), one order, connections and settings
 * (products and the catalog sync are in pv_dash_products.c).  Every
 * query is scoped by the session's merchant id, so another merchant's
 * object is simply not found (404).
 * Query results are bound to templates by column name: the SQL names
 * its columns after the slots, and formats money (pv_money_text) and
 * times (pv_ts) itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_config.h"
#include "pv_dash_int.h"
#include "pv_money.h"
#include "pv_payment.h"
#include "pv_shopify.h"
#include "pv_valid.h"

#define ORDERS_PAGE 50     /* orders per page */
#define CSV_MAX     100000 /* rows in one export */
#define CHART_W     640    /* SVG chart width */
#define CHART_H     180    /* SVG chart plot height */

/* Arguments binding each column of row r by its name, then extra. */
static struct pv_tmpl_arg *
row_args(struct dash *d, const PGresult *res, int r,
    const struct pv_tmpl_arg *extra, struct pv_err *err)
{
	int nf = PQnfields(res), i, ne = 0;
	struct pv_tmpl_arg *a;

	while (extra != NULL && extra[ne].name != NULL)
		ne++;
	a = pv_arena_alloc(d->ctx->arena, sizeof(*a) * (size_t)(nf + ne + 1),
	    err);
	if (a == NULL)
		return NULL;
	for (i = 0; i < nf; i++) {
		a[i].name = PQfname(res, i);
		a[i].kind = PV_TMPL_TEXT;
		a[i].s = PQgetisnull(res, r, i) ? "" : PQgetvalue(res, r, i);
		a[i].html = NULL;
	}
	for (i = 0; i < ne; i++)
		a[nf + i] = extra[i];
	a[nf + ne] = (struct pv_tmpl_arg)PV_END;
	return a;
}

/* Rows r0 to r1 - 1 of res through partial tmpl (none: empty). */
static int
rows_range(struct dash *d, const char *tmpl, const PGresult *res, int r0,
    int r1, const struct pv_tmpl_arg *extra, struct pv_html *out,
    struct pv_err *err)
{
	struct pv_tmpl_arg *a;
	struct pv_buf b;
	int r;

	pv_buf_init(&b, d->ctx->arena, PV_DASH_PAGE_MAX);
	for (r = r0; r < r1; r++) {
		if ((a = row_args(d, res, r, extra, err)) == NULL ||
		    pv_tmpl_render(d->ctx->tmpl, tmpl, a, &b, err) == -1)
			return -1;
	}
	return pv_tmpl_finish_html(&b, out, err);
}

/* Every row of res through partial tmpl; empty (if no rows) → empty. */
static int
rows(struct dash *d, const char *tmpl, const PGresult *res,
    const struct pv_tmpl_arg *extra, struct pv_html *out, struct pv_err *err)
{
	return rows_range(d, tmpl, res, 0, PQntuples(res), extra, out, err);
}

int
pv_dash_rows(struct dash *d, const char *tmpl, const PGresult *res,
    const struct pv_tmpl_arg *extra, struct pv_html *out, struct pv_err *err)
{
	return rows(d, tmpl, res, extra, out, err);
}

static int
partial(struct dash *d, const char *tmpl, const struct pv_tmpl_arg *args,
    struct pv_html *out, struct pv_err *err)
{
	return pv_tmpl_render_html(d->ctx->tmpl, tmpl, args, d->ctx->arena,
	    PV_DASH_PAGE_MAX, out, err);
}

int
pv_dash_partial(struct dash *d, const char *tmpl,
    const struct pv_tmpl_arg *args, struct pv_html *out, struct pv_err *err)
{
	return partial(d, tmpl, args, out, err);
}

static const char *
num(struct dash *d, long long v, struct pv_err *err)
{
	return pv_arena_printf(d->ctx->arena, err, "%lld", v);
}

/* ---- Overview ----------------------------------------------------- */

struct series {
	const char *label[92]; /* day labels */
	double v[92];          /* values */
	double v2[92];         /* second series, or all 0 */
	int n;                 /* days */
	int two;               /* draw v2 beside v */
};

/* A bar chart as SVG (partials/chart.svg.html + bar partials). */
static int
chart(struct dash *d, const char *title, const char *unit,
    const struct series *s, struct pv_html *out, struct pv_err *err)
{
	struct pv_buf b;
	struct pv_html bars;
	double max = 0;
	int i, k;
	double slot = (double)CHART_W / (s->n > 0 ? s->n : 1);

	for (i = 0; i < s->n; i++) {
		if (s->v[i] > max)
			max = s->v[i];
		if (s->two && s->v2[i] > max)
			max = s->v2[i];
	}
	pv_buf_init(&b, d->ctx->arena, PV_DASH_PAGE_MAX);
	for (i = 0; i < s->n; i++) {
		for (k = 0; k < (s->two ? 2 : 1); k++) {
			double v = k ? s->v2[i] : s->v[i];
			double h = max > 0 ? v / max * CHART_H : 0;
			double w = slot * (s->two ? 0.4 : 0.8);
			double x = i * slot + slot * 0.1 + k * w;
			char xs[32], ys[32], ws[32], hs[32], ls[160];
			struct pv_tmpl_arg a[] = {
				PV_TEXT("x", xs),
				PV_TEXT("y", ys),
				PV_TEXT("w", ws),
				PV_TEXT("h", hs),
				PV_TEXT("cls", k ? "bar2" : "bar"),
				PV_TEXT("label", ls),
				PV_END,
			};

			snprintf(xs, sizeof(xs), "%.1f", x);
			snprintf(ys, sizeof(ys), "%.1f", CHART_H - h);
			snprintf(ws, sizeof(ws), "%.1f", w);
			snprintf(hs, sizeof(hs), "%.1f", h);
			snprintf(ls, sizeof(ls), "%s: %.2f %s", s->label[i], v,
			    k ? "paid" : unit);
			if (pv_tmpl_render(d->ctx->tmpl, "partials/bar.html", a,
			        &b, err) == -1)
				return -1;
		}
	}
	if (pv_tmpl_finish_html(&b, &bars, err) == -1)
		return -1;
	{
		char maxs[32], vb[32];
		struct pv_tmpl_arg a[] = {
			PV_TEXT("title", title),
			PV_TEXT("max", maxs),
			PV_TEXT("viewbox", vb),
			PV_TEXT("first", s->n > 0 ? s->label[0] : ""),
			PV_TEXT("last", s->n > 0 ? s->label[s->n - 1] : ""),
			PV_HTML("bars", &bars),
			PV_END,
		};

		snprintf(maxs, sizeof(maxs), "%.2f", max);
		snprintf(vb, sizeof(vb), "0 0 %d %d", CHART_W, CHART_H + 4);
		return partial(d, "partials/chart.html", a, out, err);
	}
}

/*
 * The overview in one statement, from one pass over the window's
 * orders (the covering index orders_merchant_created, migration 0020)
 * grouped by UTC day, agent and currency; the three parts are summed
 * from those groups.  Rows are ordered by part, then ord:
 *   1: totals per currency, most orders first (the stats);
 *   2: one row per day of the window for the top currency (the
 *      charts), days without orders included;
 *   3: per agent and currency, most orders first, at most 50.
 * Columns are named after the slots of partials/stats.html and
 * partials/agent_row.html; a part leaves the others empty.
 */
#define OVERVIEW_SQL \
	"WITH g AS MATERIALIZED (SELECT (created_at AT TIME ZONE " \
	"'UTC')::date " \
	"  AS day, agent_id, currency, max(currency_exponent) AS e, " \
	"  count(*) AS n, count(paid_at) AS paid, coalesce(sum(total_minor) " \
	"  FILTER (WHERE paid_at IS NOT NULL), 0) AS gmv, " \
	"  sum(refunded_minor) AS refunded FROM orders WHERE merchant_id = " \
	"$1 " \
	"  AND created_at > now() - make_interval(days => $2::int) " \
	"  GROUP BY 1, 2, 3), " \
	" s AS (SELECT currency, sum(n) AS n, sum(paid) AS paid, " \
	"  sum(gmv) AS gmv, sum(refunded) AS refunded, max(e) AS e FROM g " \
	"  GROUP BY currency), " \
	" top AS (SELECT coalesce((SELECT currency FROM s " \
	"  ORDER BY n DESC, currency LIMIT 1), 'USD') AS currency), " \
	" d AS (SELECT day, sum(n) AS n, sum(paid) AS paid, sum(gmv) AS gmv, " \
	"  max(e) AS e FROM g WHERE currency = (SELECT currency FROM top) " \
	"  GROUP BY day), " \
	" ag AS (SELECT agent_id, currency, sum(n) AS n, sum(paid) AS paid, " \
	"  sum(gmv) AS gmv, sum(refunded) AS refunded, max(e) AS e FROM g " \
	"  GROUP BY agent_id, currency) " \
	"SELECT 1 AS part, row_number() OVER (ORDER BY n DESC, currency) " \
	" AS ord, currency, '' AS day, '' AS agent, '' AS agent_id, " \
	" n::text AS created, paid::text AS paid, pv_money_text(gmv::bigint, " \
	" e) AS gmv, pv_money_text(gmv::bigint / greatest(paid::bigint, 1), " \
	" e) AS aov, pv_money_text(refunded::bigint, e) AS refunds, " \
	" round(100.0 * paid / n, 1)::text AS conversion FROM s " \
	"UNION ALL SELECT 2, row_number() OVER (ORDER BY x.day), t.currency, " \
	" to_char(x.day, 'YYYY-MM-DD'), '', '', coalesce(d.n, 0)::text, " \
	" coalesce(d.paid, 0)::text, coalesce(pv_money_text(d.gmv::bigint, " \
	" d.e), '0'), '', '', '' FROM top t CROSS JOIN generate_series(" \
	" (now() AT TIME ZONE 'UTC')::date - ($2::int - 1), " \
	" (now() AT TIME ZONE 'UTC')::date, interval '1 day') AS x(day) " \
	" LEFT JOIN d ON d.day = x.day::date " \
	"UNION ALL (SELECT 3, row_number() OVER (ORDER BY ag.n DESC, " \
	" a.public_id, ag.currency), ag.currency, '', a.name, a.public_id, " \
	" ag.n::text, ag.paid::text, pv_money_text(ag.gmv::bigint, ag.e), " \
	" '', pv_money_text(ag.refunded::bigint, ag.e), '' FROM ag " \
	" JOIN agents a ON a.id = ag.agent_id ORDER BY 2 LIMIT 50) " \
	"ORDER BY 1, 2"

/* The first row at or after r whose part (column 0) is not part. */
static int
part_end(const PGresult *res, int r, const char *part)
{
	while (r < PQntuples(res) && strcmp(PQgetvalue(res, r, 0), part) == 0)
		r++;
	return r;
}

/* GET /dashboard/?days=7|30|90 */
int
pv_dash_overview(struct dash *d, struct pv_err *err)
{
	const char *days = pv_dash_field(d, "days");
	const char *p[2] = { d->s.merchant_id, NULL };
	const char *unit;
	PGresult *res;
	struct pv_html stats, gmv_chart, ord_chart, agent_rows;
	static struct series gs, os;
	int i, n, s_end, d_end, created, paid, gmv;

	if (strcmp(days, "7") != 0 && strcmp(days, "90") != 0)
		days = "30";
	p[1] = days;
	if (pv_db_exec(d->ctx, PV_SQL(OVERVIEW_SQL), 2, p, &res, err) == -1)
		return -1;
	s_end = part_end(res, 0, "1");
	d_end = part_end(res, s_end, "2");
	if (s_end == 0) {
		struct pv_tmpl_arg a[] = { PV_TEXT("currency", ""),
			PV_TEXT("created", "0"), PV_TEXT("paid", "0"),
			PV_TEXT("gmv", "0"), PV_TEXT("aov", "0"),
			PV_TEXT("refunds", "0"), PV_TEXT("conversion", "0"),
			PV_END };
		if (partial(d, "partials/stats.html", a, &stats, err) == -1)
			return -1;
	} else if (rows_range(d, "partials/stats.html", res, 0, s_end, NULL,
	               &stats, err) == -1)
		return -1;
	created = PQfnumber(res, "created");
	paid = PQfnumber(res, "paid");
	gmv = PQfnumber(res, "gmv");
	unit = d_end > s_end ?
	    PQgetvalue(res, s_end, PQfnumber(res, "currency")) :
	    "USD";
	memset(&gs, 0, sizeof(gs));
	memset(&os, 0, sizeof(os));
	n = d_end - s_end;
	gs.n = os.n = n > 92 ? 92 : n;
	os.two = 1;
	for (i = 0; i < gs.n; i++) {
		int r = s_end + i;

		gs.label[i] = os.label[i] =
		    PQgetvalue(res, r, PQfnumber(res, "day"));
		os.v[i] = strtod(PQgetvalue(res, r, created), NULL);
		os.v2[i] = strtod(PQgetvalue(res, r, paid), NULL);
		gs.v[i] = strtod(PQgetvalue(res, r, gmv), NULL);
	}
	if (chart(d, "GMV per day", unit, &gs, &gmv_chart, err) == -1 ||
	    chart(d, "Orders created and paid per day", "created", &os,
	        &ord_chart, err) == -1 ||
	    rows_range(d, "partials/agent_row.html", res, d_end, PQntuples(res),
	        NULL, &agent_rows, err) == -1)
		return -1;
	{
		struct pv_tmpl_arg a[] = {
			PV_TEXT("days", days),
			PV_TEXT("sel7",
			    strcmp(days, "7") == 0 ? "page" : "false"),
			PV_TEXT("sel30",
			    strcmp(days, "30") == 0 ? "page" : "false"),
			PV_TEXT("sel90",
			    strcmp(days, "90") == 0 ? "page" : "false"),
			PV_HTML("stats", &stats),
			PV_HTML("gmv_chart", &gmv_chart),
			PV_HTML("orders_chart", &ord_chart),
			PV_HTML("agents", &agent_rows),
			PV_END,
		};
		return pv_dash_page(d, 200, "Overview", "overview.html", a,
		    err);
	}
}

/* ---- Orders ------------------------------------------------------- */

static const char *const statuses[] = { "pending", "paid", "processing",
	"shipped", "delivered", "payment_failed", "cancelled",
	"partially_refunded", "refunded", NULL };

static int
valid_date(const char *s)
{
	int i;

	if (*s == '\0')
		return 1;
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return 0;
	return 1;
}

/* The filter inputs, checked: p[1..5]. */
static int
order_filters(struct dash *d, const char **p, struct pv_err *err)
{
	size_t idx;

	p[0] = d->s.merchant_id;
	p[1] = pv_dash_field(d, "status");
	p[2] = pv_dash_field(d, "agent");
	p[3] = pv_dash_field(d, "from");
	p[4] = pv_dash_field(d, "to");
	p[5] = pv_dash_field(d, "q");
	if (*p[1] != '\0' &&
	    pv_valid_enum(p[1], statuses, &idx, "status", err) == -1)
		return -1;
	if (!valid_date(p[3]) || !valid_date(p[4])) {
		PV_ERR(err, PV_E_INVALID, "from", "dates are YYYY-MM-DD");
		return -1;
	}
	if (strlen(p[2]) > 64 || strlen(p[5]) > 254) {
		PV_ERR(err, PV_E_INVALID, "q", "search text is too long");
		return -1;
	}
	return 0;
}

/*
 * The filters of the orders list, its count and the CSV export: $1
 * merchant, $2 status, $3 agent (public id), $4 and $5 dates, $6 an
 * order id or an e-mail; '' is no filter.  Planned for its values, an
 * empty filter folds away and the others find their index (migration
 * 0020): status orders_merchant_status, agent orders_merchant_agent,
 * dates orders_merchant_created, e-mail orders_merchant_email.
 */
#define ORDER_FILTER \
	"o.merchant_id = $1 AND ($2 = '' OR o.status = $2) " \
	"AND ($3 = '' OR o.agent_id = (SELECT id FROM agents " \
	"WHERE public_id = $3)) " \
	"AND (nullif($4, '') IS NULL OR o.created_at >= " \
	"nullif($4, '')::date) " \
	"AND (nullif($5, '') IS NULL OR o.created_at < " \
	"nullif($5, '')::date + 1) " \
	"AND ($6 = '' OR o.public_id = upper($6) " \
	"OR o.customer_email = $6::citext) "
#define ORDER_QUERY_WHERE \
	"FROM orders o JOIN agents a ON a.id = o.agent_id WHERE " ORDER_FILTER

static int
options(struct dash *d, const char *const *vals, const char *sel,
    struct pv_html *out, struct pv_err *err)
{
	struct pv_buf b;
	size_t i;

	pv_buf_init(&b, d->ctx->arena, 65536);
	for (i = 0; vals[i] != NULL; i += 2) {
		struct pv_tmpl_arg a[] = { PV_TEXT("value", vals[i]),
			PV_TEXT("label", vals[i + 1]), PV_END };
		if (pv_tmpl_render(d->ctx->tmpl,
		        strcmp(vals[i], sel) == 0 ? "partials/option_sel.html" :
		                                    "partials/option.html",
		        a, &b, err) == -1)
			return -1;
	}
	return pv_tmpl_finish_html(&b, out, err);
}

/* GET /dashboard/orders?status&agent&from&to&q&page */
int
pv_dash_orders(struct dash *d, struct pv_err *err)
{
	const char *p[8];
	const char *pg = pv_dash_field(d, "page");
	int64_t page = 1, total = 0;
	char lim[16], off[24];
	PGresult *res, *cnt, *ag;
	struct pv_html list, status_opts, agent_opts, pager;
	const char **sv, **av;
	size_t i;
	int r;

	if (order_filters(d, p, err) == -1)
		return -1;
	if (*pg != '\0' &&
	    pv_valid_int64(pg, 1, 100000, &page, "page", err) == -1)
		return -1;
	snprintf(lim, sizeof(lim), "%d", ORDERS_PAGE);
	snprintf(off, sizeof(off), "%lld", (long long)(page - 1) * ORDERS_PAGE);
	p[6] = lim;
	p[7] = off;
	/* The page, then the count: a window count over the page's
	 * query would read every matching order with its agent. */
	if (pv_db_exec(d->ctx,
	        PV_SQL("SELECT o.public_id AS id, pv_ts(o.created_at) AS "
	               "created, o.customer_email AS email, a.name AS agent, "
	               "o.status, pv_money_text(o.total_minor, "
	               "o.currency_exponent) AS total, "
	               "o.currency " ORDER_QUERY_WHERE
	               "ORDER BY o.id DESC LIMIT $7::int OFFSET $8::int"),
	        8, p, &res, err) == -1 ||
	    rows(d, "partials/order_row.html", res, NULL, &list, err) == -1 ||
	    pv_db_exec(d->ctx,
	        PV_SQL("SELECT count(*) FROM orders o WHERE " ORDER_FILTER), 6,
	        p, &cnt, err) == -1)
		return -1;
	total = strtoll(PQgetvalue(cnt, 0, 0), NULL, 10);
	/* Status and agent choices: value, label pairs. */
	sv = pv_arena_alloc(d->ctx->arena, sizeof(*sv) * 22, err);
	if (sv == NULL)
		return -1;
	sv[0] = "";
	sv[1] = "Any status";
	for (i = 0; statuses[i] != NULL; i++)
		sv[2 + 2 * i] = sv[3 + 2 * i] = statuses[i];
	sv[2 + 2 * i] = NULL;
	if (options(d, sv, p[1], &status_opts, err) == -1)
		return -1;
	/* The agents with orders here: one probe of orders_merchant_agent
	 * per agent (a skip scan), not a pass over every order. */
	if (pv_db_exec(d->ctx,
	        PV_SQL("WITH RECURSIVE ids (agent_id) AS ((SELECT agent_id "
	               "FROM orders WHERE merchant_id = $1 ORDER BY agent_id "
	               "LIMIT 1) UNION ALL SELECT (SELECT o.agent_id FROM "
	               "orders o WHERE o.merchant_id = $1 AND o.agent_id > "
	               "ids.agent_id ORDER BY o.agent_id LIMIT 1) FROM ids "
	               "WHERE ids.agent_id IS NOT NULL) "
	               "SELECT a.public_id, a.name FROM ids JOIN agents a ON "
	               "a.id = ids.agent_id ORDER BY a.name, a.public_id "
	               "LIMIT 100"),
	        1, p, &ag, err) == -1)
		return -1;
	av = pv_arena_alloc(d->ctx->arena,
	    sizeof(*av) * (size_t)(2 * PQntuples(ag) + 3), err);
	if (av == NULL)
		return -1;
	av[0] = "";
	av[1] = "Any agent";
	for (r = 0; r < PQntuples(ag); r++) {
		av[2 + 2 * r] = PQgetvalue(ag, r, 0);
		av[3 + 2 * r] = PQgetvalue(ag, r, 1);
	}
	av[2 + 2 * r] = NULL;
	if (options(d, av, p[2], &agent_opts, err) == -1)
		return -1;
	{
		const char *prev = page > 1 ? num(d, page - 1, err) : "";
		const char *next =
		    page * ORDERS_PAGE < total ? num(d, page + 1, err) : "";
		struct pv_tmpl_arg a[] = {
			PV_TEXT("status", p[1]),
			PV_TEXT("agent", p[2]),
			PV_TEXT("from", p[3]),
			PV_TEXT("to", p[4]),
			PV_TEXT("q", p[5]),
			PV_TEXT("prev", prev != NULL ? prev : ""),
			PV_TEXT("next", next != NULL ? next : ""),
			PV_TEXT("page", num(d, page, err)),
			PV_TEXT("total", num(d, total, err)),
			PV_END,
		};
		const char *tp = *a[5].s && *a[6].s ?
		    "partials/pager_both.html" :
		    *a[5].s ? "partials/pager_prev.html" :
		    *a[6].s ? "partials/pager_next.html" :
		              "partials/pager_none.html";

		if (a[7].s == NULL || a[8].s == NULL ||
		    partial(d, tp, a, &pager, err) == -1)
			return -1;
	}
	{
		struct pv_tmpl_arg a[] = {
			PV_TEXT("from", p[3]),
			PV_TEXT("to", p[4]),
			PV_TEXT("q", p[5]),
			PV_TEXT("status", p[1]),
			PV_TEXT("agent", p[2]),
			PV_HTML("status_options", &status_opts),
			PV_HTML("agent_options", &agent_opts),
			PV_HTML("rows", &list),
			PV_HTML("pager", &pager),
			PV_TEXT("count", num(d, total, err)),
			PV_END,
		};
		if (a[9].s == NULL)
			return -1;
		return pv_dash_page(d, 200, "Orders", "orders.html", a, err);
	}
}

/* One CSV field: quoted, and defused if a spreadsheet would run it. */
static void
csv_field(struct pv_buf *b, const char *s, int last)
{
	pv_buf_putc(b, '"');
	if (*s == '=' || *s == '+' || *s == '-' || *s == '@' || *s == '\t')
		pv_buf_putc(b, '\'');
	for (; *s != '\0'; s++) {
		if (*s == '"')
			pv_buf_putc(b, '"');
		pv_buf_putc(b, *s);
	}
	pv_buf_puts(b, last ? "\"\r\n" : "\",");
}

/* GET /dashboard/orders.csv with the same filters. */
int
pv_dash_orders_csv(struct dash *d, struct pv_err *err)
{
	const char *p[7];
	char lim[16];
	PGresult *res;
	struct pv_buf b;
	const char *out;
	size_t len;
	int r, c, nf;

	if (order_filters(d, p, err) == -1)
		return -1;
	snprintf(lim, sizeof(lim), "%d", CSV_MAX);
	p[6] = lim;
	if (pv_db_exec(d->ctx,
	        PV_SQL("SELECT o.public_id AS order_id, pv_ts(o.created_at) "
	               "AS created_at, o.status, o.payment_status, "
	               "o.fulfillment_status, o.customer_email, a.public_id "
	               "AS agent_id, a.name AS agent_name, o.currency, "
	               "pv_money_text(o.subtotal_minor, o.currency_exponent) "
	               "AS subtotal, pv_money_text(o.shipping_minor, "
	               "o.currency_exponent) AS shipping, "
	               "pv_money_text(o.tax_minor, o.currency_exponent) AS "
	               "tax, pv_money_text(o.total_minor, "
	               "o.currency_exponent) AS total, "
	               "pv_money_text(o.refunded_minor, o.currency_exponent) "
	               "AS refunded, coalesce(pv_ts(o.paid_at), '') AS "
	               "paid_at " ORDER_QUERY_WHERE
	               "ORDER BY o.id DESC LIMIT $7::int"),
	        7, p, &res, err) == -1)
		return -1;
	nf = PQnfields(res);
	pv_buf_init(&b, d->ctx->arena, 64 * 1024 * 1024 / 16);
	for (c = 0; c < nf; c++)
		csv_field(&b, PQfname(res, c), c == nf - 1);
	for (r = 0; r < PQntuples(res); r++)
		for (c = 0; c < nf; c++)
			csv_field(&b, PQgetvalue(res, r, c), c == nf - 1);
	if (pv_buf_finish(&b, &out, &len, err) == -1)
		return -1;
	pv_resp_set(d->resp, 200, "text/csv; charset=utf-8", out, len);
	return pv_resp_header(d->resp, "Content-Disposition",
	           "attachment; filename=\"orders.csv\"", err) == -1 ||
	        pv_resp_header(d->resp, "Cache-Control", "no-store", err) ==
	            -1 ?
	    -1 :
	    0;
}

/* GET /dashboard/orders/:id: 404 unless it is this merchant's. */
int
pv_dash_order(struct dash *d, struct pv_err *err)
{
	const char *p[2] = { d->s.merchant_id, NULL };
	PGresult *o, *items, *pays, *events, *push;
	struct pv_html item_rows, pay_rows, event_rows,
	    ship_form = PV_HTML_LIT("");
	struct pv_tmpl_arg *a;
	const char *q[1];

	if ((p[1] = pv_arena_strndup(d->ctx->arena, d->param[0], d->paramlen[0],
	         err)) == NULL)
		return -1;
	if (pv_db_exec(d->ctx,
	        PV_SQL("SELECT o.id AS internal, o.public_id AS id, o.status, "
	               "o.payment_status, o.fulfillment_status, "
	               "o.customer_email AS email, o.ship_name, o.ship_line1, "
	               "o.ship_line2, o.ship_city, o.ship_state, "
	               "o.ship_postal_code, o.ship_country, o.currency, "
	               "pv_money_text(o.subtotal_minor, o.currency_exponent) "
	               "AS subtotal, pv_money_text(o.shipping_minor, "
	               "o.currency_exponent) AS shipping, "
	               "pv_money_text(o.tax_minor, o.currency_exponent) AS "
	               "tax, pv_money_text(o.total_minor, "
	               "o.currency_exponent) AS total, "
	               "pv_money_text(o.refunded_minor, o.currency_exponent) "
	               "AS refunded, coalesce(o.platform_order_id, "
	               "'not pushed') AS platform_order_id, "
	               "coalesce(o.tracking_number, '') AS tracking, "
	               "coalesce(o.carrier, '') AS carrier, "
	               "pv_ts(o.created_at) AS created, "
	               "coalesce(pv_ts(o.paid_at), '') AS paid, a.name AS "
	               "agent, o.psp, m.platform = 'custom' AND o.paid_at IS "
	               "NOT NULL AND o.status <> 'cancelled' AS can_ship "
	               "FROM orders o JOIN agents a ON a.id = o.agent_id "
	               "JOIN merchants m ON m.id = o.merchant_id "
	               "WHERE o.merchant_id = $1 AND o.public_id = $2"),
	        2, p, &o, err) == -1)
		return -1;
	if (PQntuples(o) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, NULL, "no such order");
		return -1;
	}
	q[0] = PQgetvalue(o, 0, 0);
	if (pv_db_exec(d->ctx,
	        PV_SQL("SELECT i.title, i.variant_title, i.sku, "
	               "i.quantity::text AS quantity, "
	               "pv_money_text(i.unit_price_minor, o.currency_exponent) "
	               "AS unit_price, pv_money_text(i.subtotal_minor, "
	               "o.currency_exponent) AS subtotal "
	               "FROM order_items i JOIN orders o ON o.id = i.order_id "
	               "WHERE i.order_id = $1 ORDER BY i.line"),
	        1, q, &items, err) == -1 ||
	    rows(d, "partials/item_row.html", items, NULL, &item_rows, err) ==
	        -1)
		return -1;
	if (pv_db_exec(d->ctx,
	        PV_SQL("SELECT p.public_id AS id, p.provider, p.status, "
	               "pv_money_text(p.amount_minor, o.currency_exponent) AS "
	               "amount, coalesce(p.decline_code, '') AS decline, "
	               "pv_ts(p.created_at) AS created "
	               "FROM payments p JOIN orders o ON o.id = p.order_id "
	               "WHERE p.order_id = $1 ORDER BY p.id"),
	        1, q, &pays, err) == -1 ||
	    rows(d, "partials/payment_row.html", pays, NULL, &pay_rows, err) ==
	        -1)
		return -1;
	if (pv_db_exec(d->ctx,
	        PV_SQL("SELECT seq::text AS seq, type, detail::text AS detail, "
	               "CASE WHEN flagged THEN 'needs a look' ELSE '' END AS "
	               "flag, pv_ts(created_at) AS at FROM order_events "
	               "WHERE order_id = $1 ORDER BY order_events.seq"),
	        1, q, &events, err) == -1 ||
	    rows(d, "partials/event_row.html", events, NULL, &event_rows,
	        err) == -1)
		return -1;
	q[0] = PQgetvalue(o, 0, 1);
	if (pv_db_exec(d->ctx,
	        PV_SQL("SELECT state, attempts::text, coalesce(last_error, '') "
	               "FROM jobs WHERE dedup_key = 'order.push:' || $1"),
	        1, q, &push, err) == -1)
		return -1;
	if (strcmp(PQgetvalue(o, 0, PQfnumber(o, "can_ship")), "t") == 0) {
		struct pv_tmpl_arg sa[] = { PV_TEXT("id", PQgetvalue(o, 0, 1)),
			PV_TEXT("csrf", d->csrf), PV_END };

		if (partial(d, "partials/ship_form.html", sa, &ship_form,
		        err) == -1)
			return -1;
	}
	{
		struct pv_tmpl_arg extra[] = {
			PV_HTML("ship_form", &ship_form),
			PV_TEXT("csrf", d->csrf),
			PV_HTML("items", &item_rows),
			PV_HTML("payments", &pay_rows),
			PV_HTML("events", &event_rows),
			PV_TEXT("push_state",
			    PQntuples(push) ? PQgetvalue(push, 0, 0) :
			                      "no store push queued"),
			PV_TEXT("push_attempts",
			    PQntuples(push) ? PQgetvalue(push, 0, 1) : "0"),
			PV_TEXT("push_error",
			    PQntuples(push) ? PQgetvalue(push, 0, 2) : ""),
			PV_END,
		};
		const char *title;

		if ((a = row_args(d, o, 0, extra, err)) == NULL ||
		    (title = pv_arena_printf(d->ctx->arena, err, "Order %s",
		         PQgetvalue(o, 0, 1))) == NULL)
			return -1;
		return pv_dash_page(d, 200, title, "order.html", a, err);
	}
}

/* ---- Connections -------------------------------------------------- */

/* GET /dashboard/connections */
int
pv_dash_connections(struct dash *d, struct pv_err *err)
{
	const char *p[1] = { d->s.merchant_id };
	const char *base = d->ctx->cfg->public_url;
	PGresult *psp, *shop, *ev;
	struct pv_html events;
	const char *stripe_url, *shopify_url, *adyen_url;

	if (base == NULL)
		base = "";
	if (pv_db_exec(d->ctx,
	        PV_SQL("SELECT provider, pv_ts(connected_at), "
	               "coalesce(merchant_account, '') FROM merchant_psp "
	               "WHERE merchant_id = $1"),
	        1, p, &psp, err) == -1 ||
	    pv_db_exec(d->ctx,
	        PV_SQL("SELECT shop_domain, shop_name, "
	               "coalesce(pv_ts(connected_at), ''), sync_state, "
	               "disconnected_at IS NULL FROM merchant_shopify "
	               "WHERE merchant_id = $1"),
	        1, p, &shop, err) == -1 ||
	    pv_db_exec(d->ctx,
	        PV_SQL("SELECT provider, type, pv_ts(received_at) AS at, "
	               "CASE WHEN outcome = '' THEN 'received' ELSE outcome "
	               "END AS outcome FROM provider_events "
	               "WHERE merchant_id = $1 ORDER BY received_at DESC "
	               "LIMIT 5"),
	        1, p, &ev, err) == -1 ||
	    rows(d, "partials/webhook_row.html", ev, NULL, &events, err) == -1)
		return -1;
	if ((stripe_url = pv_arena_printf(d->ctx->arena, err,
	         "%s/webhooks/stripe/%s", base, d->s.merchant)) == NULL ||
	    (adyen_url = pv_arena_printf(d->ctx->arena, err,
	         "%s/webhooks/adyen/%s", base, d->s.merchant)) == NULL ||
	    (shopify_url = pv_arena_printf(d->ctx->arena, err,
	         "%s/webhooks/shopify/%s", base, d->s.merchant)) == NULL)
		return -1;
	{
		int hp = PQntuples(psp) == 1,
		    hs = PQntuples(shop) == 1 &&
		    PQgetvalue(shop, 0, 4)[0] == 't';
		struct pv_html shop_sync = PV_HTML_LIT("");
		struct pv_tmpl_arg sa[] = { PV_TEXT("csrf", d->csrf), PV_END };
		struct pv_tmpl_arg a[] = {
			PV_TEXT("csrf", d->csrf),
			PV_TEXT("psp_status",
			    hp ? "Connected" : "No payment provider connected"),
			PV_TEXT("psp_provider",
			    hp ? PQgetvalue(psp, 0, 0) : "—"),
			PV_TEXT("psp_since", hp ? PQgetvalue(psp, 0, 1) : "—"),
			PV_TEXT("shop_status",
			    hs ? "Connected" : "No store connected"),
			PV_TEXT("shop_domain",
			    hs ? PQgetvalue(shop, 0, 0) : "—"),
			PV_TEXT("shop_name", hs ? PQgetvalue(shop, 0, 1) : "—"),
			PV_TEXT("shop_since",
			    hs ? PQgetvalue(shop, 0, 2) : "—"),
			PV_TEXT("stripe_url", stripe_url),
			PV_TEXT("adyen_url", adyen_url),
			PV_TEXT("shopify_url", shopify_url),
			PV_HTML("events", &events),
			PV_HTML("shop_sync", &shop_sync),
			PV_END,
		};

		/* Onboarding: a connected store's catalog is one click away. */
		if (hs &&
		    partial(d, "partials/shop_sync.html", sa, &shop_sync,
		        err) == -1)
			return -1;
		return pv_dash_page(d, 200, "Connections", "connections.html",
		    a, err);
	}
}

/* POST /dashboard/connections/psp: verified live before it is stored. */
int
pv_dash_connect_psp(struct dash *d, struct pv_err *err)
{
	static const char *const providers[] = { "stripe", "adyen", NULL };
	struct pv_psp_account acct;
	const char *wh;
	size_t idx;

	memset(&acct, 0, sizeof(acct));
	acct.provider = pv_dash_field(d, "provider");
	acct.merchant_id = d->s.merchant;
	acct.secret_key = pv_dash_field(d, "secret_key");
	acct.merchant_account = pv_dash_field(d, "merchant_account");
	acct.webhook_secret = pv_dash_field(d, "webhook_secret");
	if (*acct.webhook_secret == '\0')
		acct.webhook_secret = NULL;
	if (pv_valid_enum(acct.provider, providers, &idx, "provider", err) ==
	        -1 ||
	    pv_valid_text(acct.secret_key, strlen(acct.secret_key), 1, 500, 0,
	        "secret_key", err) == -1)
		return -1;
	if (idx == 1 && *acct.merchant_account == '\0') {
		PV_ERR(err, PV_E_INVALID, "merchant_account",
		    "Adyen needs the merchant account");
		return -1;
	}
	if (pv_payment_connect(d->ctx, d->s.merchant, &acct, &wh, err) == -1) {
		/* The provider's refusal is the merchant's input: show it. */
		if (err->code == PV_E_AUTH || err->code == PV_E_FORBIDDEN)
			err->code = PV_E_INVALID;
		return -1;
	}
	return pv_dash_redirect(d, "/dashboard/connections?m=psp", err);
}

/* POST /dashboard/connections/shopify: token verified with the shop. */
int
pv_dash_connect_shopify(struct dash *d, struct pv_err *err)
{
	struct pv_shopify_conn conn;
	struct pv_shopify_shop shop;
	const char *at, *domain;

	conn.shop = pv_dash_field(d, "shop");
	conn.token = pv_dash_field(d, "token");
	conn.api_base = NULL;
	if (pv_valid_text(conn.token, strlen(conn.token), 1,
	        PV_SHOPIFY_TOKEN_MAX, 0, "token", err) == -1 ||
	    pv_shopify_check_shop(d->ctx, conn.shop, NULL, &domain, err) == -1)
		return -1;
	conn.shop = domain;
	if (pv_shopify_connect(d->ctx, d->s.merchant, &conn, NULL, &shop, &at,
	        err) == -1) {
		if (err->code == PV_E_AUTH || err->code == PV_E_FORBIDDEN)
			err->code = PV_E_INVALID;
		return -1;
	}
	return pv_dash_redirect(d, "/dashboard/connections?m=shop", err);
}

/* ---- Settings ----------------------------------------------------- */

/* GET /dashboard/settings */
int
pv_dash_settings(struct dash *d, struct pv_err *err)
{
	const char *p[1] = { d->s.merchant_id };
	PGresult *ship, *tax;
	struct pv_html ship_rows, tax_rows;

	if (pv_db_exec(d->ctx,
	        PV_SQL("SELECT country, currency, pv_money_text(rate_minor, "
	               "pv_currency_exponent(currency)) AS rate, "
	               "coalesce(pv_money_text(free_over_minor, "
	               "pv_currency_exponent(currency)), '') AS free_over, "
	               "min_days::text AS min_days, max_days::text AS max_days "
	               "FROM merchant_shipping_rates WHERE merchant_id = $1 "
	               "ORDER BY country = '*', country"),
	        1, p, &ship, err) == -1 ||
	    rows(d, "partials/ship_row.html", ship, NULL, &ship_rows, err) ==
	        -1 ||
	    pv_db_exec(d->ctx,
	        PV_SQL("SELECT country, region, round(rate_ppm / 10000.0, 4)"
	               "::text AS rate, CASE WHEN shipping_taxable THEN 'yes' "
	               "ELSE 'no' END AS on_shipping "
	               "FROM merchant_tax_rates WHERE merchant_id = $1 "
	               "ORDER BY country, region"),
	        1, p, &tax, err) == -1 ||
	    rows(d, "partials/tax_row.html", tax, NULL, &tax_rows, err) == -1)
		return -1;
	{
		struct pv_tmpl_arg a[] = {
			PV_TEXT("csrf", d->csrf),
			PV_TEXT("email", d->s.email),
			PV_HTML("shipping", &ship_rows),
			PV_HTML("tax", &tax_rows),
			PV_END,
		};
		return pv_dash_page(d, 200, "Settings", "settings.html", a,
		    err);
	}
}

/* POST /dashboard/settings/password */
int
pv_dash_password(struct dash *d, struct pv_err *err)
{
	if (strcmp(pv_dash_field(d, "new_password"),
	        pv_dash_field(d, "confirm")) != 0) {
		PV_ERR(err, PV_E_INVALID, "confirm",
		    "the new passwords do not match");
		return -1;
	}
	if (pv_dash_password_change(d->ctx, &d->s,
	        pv_dash_field(d, "current_password"),
	        pv_dash_field(d, "new_password"), err) == -1)
		return -1;
	return pv_dash_redirect(d, "/dashboard/settings?m=password", err);
}

/* POST /dashboard/settings/shipping: add or replace one country's rate. */
int
pv_dash_shipping(struct dash *d, struct pv_err *err)
{
	const char *country = pv_dash_field(d, "country");
	const char *currency = pv_dash_field(d, "currency");
	const char *free_over = pv_dash_field(d, "free_over");
	int64_t rate, free_minor = 0, lo, hi;
	char r[24], f[24], l[16], h[16];
	const char *p[7];

	if (strcmp(country, "*") != 0 && !pv_valid_country(country)) {
		PV_ERR(err, PV_E_INVALID, "country",
		    "country is a two-letter code or *");
		return -1;
	}
	if (pv_money_currency_check(currency, "currency", err) == -1 ||
	    pv_money_parse(pv_dash_field(d, "rate"),
	        strlen(pv_dash_field(d, "rate")), currency, 0, &rate, "rate",
	        err) == -1 ||
	    (*free_over != '\0' &&
	        pv_money_parse(free_over, strlen(free_over), currency, 0,
	            &free_minor, "free_over", err) == -1) ||
	    pv_valid_int64(pv_dash_field(d, "min_days"), 0, 365, &lo,
	        "min_days", err) == -1 ||
	    pv_valid_int64(pv_dash_field(d, "max_days"), lo, 365, &hi,
	        "max_days", err) == -1)
		return -1;
	snprintf(r, sizeof(r), "%lld", (long long)rate);
	snprintf(f, sizeof(f), "%lld", (long long)free_minor);
	snprintf(l, sizeof(l), "%lld", (long long)lo);
	snprintf(h, sizeof(h), "%lld", (long long)hi);
	p[0] = d->s.merchant_id;
	p[1] = country;
	p[2] = currency;
	p[3] = r;
	p[4] = *free_over != '\0' ? f : NULL;
	p[5] = l;
	p[6] = h;
	if (pv_db_exec(d->ctx,
	        PV_SQL("INSERT INTO merchant_shipping_rates (merchant_id, "
	               "country, currency, rate_minor, free_over_minor, "
	               "min_days, max_days) VALUES ($1, $2, $3, $4, $5, $6, "
	               "$7) ON CONFLICT (merchant_id, country) DO UPDATE SET "
	               "currency = EXCLUDED.currency, rate_minor = "
	               "EXCLUDED.rate_minor, free_over_minor = "
	               "EXCLUDED.free_over_minor, min_days = "
	               "EXCLUDED.min_days, max_days = EXCLUDED.max_days"),
	        7, p, NULL, err) == -1)
		return -1;
	return pv_dash_redirect(d, "/dashboard/settings?m=saved", err);
}

/* POST /dashboard/settings/tax: add or replace one region's rate. */
int
pv_dash_tax(struct dash *d, struct pv_err *err)
{
	const char *country = pv_dash_field(d, "country");
	const char *region = pv_dash_field(d, "region");
	const char *pct = pv_dash_field(d, "rate");
	int64_t ppm;
	char ps[24];
	const char *p[5];
	size_t i;

	if (!pv_valid_country(country)) {
		PV_ERR(err, PV_E_INVALID, "country",
		    "country is a two-letter code");
		return -1;
	}
	for (i = 0; region[i] != '\0'; i++)
		if (i >= 3 ||
		    !((region[i] >= 'A' && region[i] <= 'Z') ||
		        (region[i] >= '0' && region[i] <= '9'))) {
			PV_ERR(err, PV_E_INVALID, "region",
			    "region is up to 3 capital letters or digits");
			return -1;
		}
	/* A percentage with up to 4 decimals: 8.875 -> 88750 ppm. */
	{
		int frac = -1;

		ppm = 0;
		for (i = 0; pct[i] != '\0'; i++) {
			if (pct[i] == '.' && frac < 0 && i > 0) {
				frac = 0;
				continue;
			}
			if (pct[i] < '0' || pct[i] > '9' || frac == 4 ||
			    ppm > 10000000) {
				ppm = -1;
				break;
			}
			ppm = ppm * 10 + (pct[i] - '0');
			if (frac >= 0)
				frac++;
		}
		for (; ppm >= 0 && frac < 4; frac = frac < 0 ? 1 : frac + 1)
			ppm *= 10;
		if (i == 0 || ppm < 0 || ppm > 1000000) {
			PV_ERR(err, PV_E_INVALID, "rate",
			    "the tax rate is a percentage from 0 to 100");
			return -1;
		}
	}
	snprintf(ps, sizeof(ps), "%lld", (long long)ppm);
	p[0] = d->s.merchant_id;
	p[1] = country;
	p[2] = region;
	p[3] = ps;
	p[4] = strcmp(pv_dash_field(d, "on_shipping"), "1") == 0 ? "true" :
	                                                           "false";
	if (pv_db_exec(d->ctx,
	        PV_SQL("INSERT INTO merchant_tax_rates (merchant_id, country, "
	               "region, rate_ppm, shipping_taxable) VALUES ($1, $2, "
	               "$3, $4, $5) ON CONFLICT (merchant_id, country, region) "
	               "DO UPDATE SET rate_ppm = EXCLUDED.rate_ppm, "
	               "shipping_taxable = EXCLUDED.shipping_taxable"),
	        5, p, NULL, err) == -1)
		return -1;
	return pv_dash_redirect(d, "/dashboard/settings?m=saved", err);
}
