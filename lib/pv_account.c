/*
 * Account endpoints.  Rate limits are answered from what the prologue
 * already read (no further query); analytics aggregate the agent's
 * usage events through a covering index, zero-filled over the period
 * so charts need no gaps logic.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "pv_account.h"
#include "pv_agent.h"
#include "pv_agent_events.h"
#include "pv_buf.h"
#include "pv_config.h"
#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_json.h"
#include "pv_money.h"
#include "pv_valid.h"

#define WEBHOOKS_MAX 20 /* endpoints per agent */
#define XSTR(x)      STR(x)
#define STR(x)       #x

/* The events an agent may subscribe to (API.md §4). */
static const char *const event_names[] = {
	"order.created",
	"order.paid",
	"order.payment_failed",
	"order.processing",
	"order.shipped",
	"order.delivered",
	"order.cancelled",
	"order.refunded",
	NULL,
};

static struct json_object *
success(struct pv_ctx *ctx, struct pv_err *err)
{
	struct json_object *o = pv_json_new_obj(ctx->arena, err);

	pv_json_set_str(o, "status", "success", err);
	return o;
}

static int
reply(struct pv_ctx *ctx, struct pv_resp *resp, struct json_object *o,
    struct pv_err *err)
{
	if (err->code != PV_OK)
		return -1;
	return pv_resp_json(ctx, resp, 200, o, err);
}

/*
 * GET /agent/v1/rate-limits.
 * 200 {status, agent_id, limits:{per_minute, daily},
 *      usage:{minute, today}, reset:{minute, daily}} (epoch seconds).
 */
static int
rate_limits(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	const struct pv_agent *a = ctx->agent;
	struct json_object *o, *lim, *use, *rst;

	(void)req;
	o = success(ctx, err);
	lim = pv_json_new_obj(ctx->arena, err);
	use = pv_json_new_obj(ctx->arena, err);
	rst = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(o, "agent_id", a->public_id, err);
	pv_json_set_int(lim, "per_minute", a->per_minute, err);
	pv_json_set_int(lim, "daily", a->daily, err);
	pv_json_set_int(use, "minute", a->minute_count, err);
	pv_json_set_int(use, "today", a->day_count, err);
	pv_json_set_int(rst, "minute", a->minute_reset, err);
	pv_json_set_int(rst, "daily", a->day_reset, err);
	pv_json_set(o, "limits", lim, err);
	pv_json_set(o, "usage", use, err);
	pv_json_set(o, "reset", rst, err);
	return reply(ctx, resp, o, err);
}

static long long
num(const PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ?
	    0 :
	    strtoll(PQgetvalue(res, r, c), NULL, 10);
}

/* Milliseconds with one decimal from a microsecond total and a count. */
static double
avg_ms(long long total_us, long long n)
{
	return n == 0 ? 0.0 : (double)(total_us / n / 100) / 10.0;
}

/*
 * Adds {currency, amount, amount_minor} of GMV to arr and returns the
 * formatted amount (arena memory), or NULL after an error.
 */
static const char *
push_gmv(struct pv_ctx *ctx, struct json_object *arr, const char *currency,
    long long minor, struct pv_err *err)
{
	struct json_object *g = pv_json_new_obj(ctx->arena, err);
	char amount[PV_MONEY_FORMAT_SIZE];

	if (err->code != PV_OK ||
	    pv_money_format(minor, currency, amount, sizeof(amount), err) == -1)
		return NULL;
	pv_json_set_str(g, "currency", currency, err);
	pv_json_set_str(g, "amount", amount, err);
	pv_json_set_int(g, "amount_minor", minor, err);
	pv_json_push(arr, g, err);
	return pv_arena_strdup(ctx->arena, amount, err);
}

/*
 * GET /agent/v1/analytics/summary?days=N (1..365, default 30).
 * 200 {status, agent_id, agent_name, analytics:{period:{start, end},
 *      summary:{total_requests, total_orders, total_gmv, gmv:[...],
 *      avg_response_time, error_count}, daily_stats:[{date, requests,
 *      errors, orders}], top_endpoints:[{endpoint, count, avg_time}],
 *      success_rate}}; 400 bad days.
 */
static int
analytics(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	struct json_object *o, *an, *period, *sum, *daily, *top, *gmv, *d;
	const char *ds = pv_req_param(req, "days"), *p[2], *total, *amount;
	long long reqs = 0, errs = 0, lat = 0, orders = 0;
	PGresult *days_res, *top_res, *gmv_res;
	char days[16];
	int64_t n = 30;
	int r;

	if (ds != NULL && pv_valid_int64(ds, 1, 365, &n, "days", err) == -1)
		return -1;
	if (snprintf(days, sizeof(days), "%lld", (long long)n) < 0)
		return -1;
	p[0] = ctx->agent->id;
	p[1] = days;
	if (pv_db_exec(ctx,
	        PV_SQL("WITH period AS (SELECT generate_series("
	               "  (now() AT TIME ZONE 'UTC')::date - ($2::int - 1),"
	               "  (now() AT TIME ZONE 'UTC')::date, '1 day')::date"
	               "  AS day),"
	               " u AS (SELECT (at AT TIME ZONE 'UTC')::date AS day,"
	               "  count(*) AS requests,"
	               "  count(*) FILTER (WHERE status >= 400) AS errors,"
	               "  sum(latency_us) AS latency_us,"
	               "  count(*) FILTER (WHERE order_id IS NOT NULL"
	               "   AND status = 200) AS orders"
	               "  FROM usage_events WHERE agent_id = $1::bigint"
	               "  AND at >= (SELECT min(day) FROM period)::timestamp"
	               "   AT TIME ZONE 'UTC'"
	               "  GROUP BY 1)"
	               " SELECT to_char(p.day, 'YYYY-MM-DD'), u.requests,"
	               "  u.errors, u.latency_us, u.orders"
	               " FROM period p LEFT JOIN u USING (day) ORDER BY p.day"),
	        2, p, &days_res, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT endpoint, count(*), sum(latency_us)"
	               " FROM usage_events WHERE agent_id = $1::bigint"
	               " AND at >= ((now() AT TIME ZONE 'UTC')::date"
	               "  - ($2::int - 1))::timestamp AT TIME ZONE 'UTC'"
	               " GROUP BY endpoint ORDER BY 2 DESC, 1 LIMIT 10"),
	        2, p, &top_res, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT currency, sum(gmv_minor) FROM usage_events"
	               " WHERE agent_id = $1::bigint AND order_id IS NOT NULL"
	               " AND status = 200 AND currency IS NOT NULL"
	               " AND at >= ((now() AT TIME ZONE 'UTC')::date"
	               "  - ($2::int - 1))::timestamp AT TIME ZONE 'UTC'"
	               " GROUP BY currency ORDER BY currency"),
	        2, p, &gmv_res, err) == -1)
		return -1;

	o = success(ctx, err);
	an = pv_json_new_obj(ctx->arena, err);
	period = pv_json_new_obj(ctx->arena, err);
	sum = pv_json_new_obj(ctx->arena, err);
	daily = pv_json_new_arr(ctx->arena, err);
	top = pv_json_new_arr(ctx->arena, err);
	gmv = pv_json_new_arr(ctx->arena, err);
	for (r = 0; r < PQntuples(days_res); r++) {
		d = pv_json_new_obj(ctx->arena, err);
		pv_json_set_str(d, "date", PQgetvalue(days_res, r, 0), err);
		pv_json_set_int(d, "requests", num(days_res, r, 1), err);
		pv_json_set_int(d, "errors", num(days_res, r, 2), err);
		pv_json_set_int(d, "orders", num(days_res, r, 4), err);
		pv_json_push(daily, d, err);
		reqs += num(days_res, r, 1);
		errs += num(days_res, r, 2);
		lat += num(days_res, r, 3);
		orders += num(days_res, r, 4);
	}
	for (r = 0; r < PQntuples(top_res); r++) {
		d = pv_json_new_obj(ctx->arena, err);
		pv_json_set_str(d, "endpoint", PQgetvalue(top_res, r, 0), err);
		pv_json_set_int(d, "count", num(top_res, r, 1), err);
		pv_json_set_double(d, "avg_time",
		    avg_ms(num(top_res, r, 2), num(top_res, r, 1)), err);
		pv_json_push(top, d, err);
	}
	/* One currency: total_gmv is its amount; several: null, see gmv. */
	total = PQntuples(gmv_res) == 0 ? "0" : NULL;
	for (r = 0; r < PQntuples(gmv_res); r++) {
		amount = push_gmv(ctx, gmv, PQgetvalue(gmv_res, r, 0),
		    num(gmv_res, r, 1), err);
		if (PQntuples(gmv_res) == 1)
			total = amount;
	}
	if (PQntuples(days_res) > 0) {
		pv_json_set_str(period, "start", PQgetvalue(days_res, 0, 0),
		    err);
		pv_json_set_str(period, "end",
		    PQgetvalue(days_res, PQntuples(days_res) - 1, 0), err);
	}
	pv_json_set_int(sum, "total_requests", reqs, err);
	pv_json_set_int(sum, "total_orders", orders, err);
	pv_json_set_str(sum, "total_gmv", total, err);
	pv_json_set(sum, "gmv", gmv, err);
	pv_json_set_double(sum, "avg_response_time", avg_ms(lat, reqs), err);
	pv_json_set_int(sum, "error_count", errs, err);
	pv_json_set(an, "period", period, err);
	pv_json_set(an, "summary", sum, err);
	pv_json_set(an, "daily_stats", daily, err);
	pv_json_set(an, "top_endpoints", top, err);
	pv_json_set_double(an, "success_rate",
	    reqs == 0 ? 100.0 : (double)((reqs - errs) * 1000 / reqs) / 10.0,
	    err);
	pv_json_set_str(o, "agent_id", ctx->agent->public_id, err);
	pv_json_set_str(o, "agent_name", ctx->agent->name, err);
	pv_json_set(o, "analytics", an, err);
	return reply(ctx, resp, o, err);
}

/* The events[] of a registration, validated; all events when absent. */
static int
parse_events(struct json_object *body, struct pv_buf *lit, struct pv_err *err)
{
	struct json_object *arr;
	const char *ev;
	size_t i, n, idx;

	if (pv_json_arr_opt(body, "events", 1, 8, &arr, err) == -1)
		return -1;
	n = arr != NULL ? json_object_array_length(arr) : 8;
	pv_buf_putc(lit, '{');
	for (i = 0; i < n; i++) {
		if (arr == NULL) {
			ev = event_names[i];
		} else if (pv_json_at_str(arr, i, 1, 64, &ev, err) == -1 ||
		    pv_valid_enum(ev, event_names, &idx, "events", err) == -1) {
			return pv_json_err_prefix(err, "events[%zu]", i);
		}
		pv_buf_printf(lit, "%s\"%s\"", i > 0 ? "," : "", ev);
	}
	pv_buf_putc(lit, '}');
	return 0;
}

/* Only https, except plain http to loopback outside production. */
static int
check_url(struct pv_ctx *ctx, const char *url, struct pv_err *err)
{
	if (strncmp(url, "https://", 8) == 0 && strlen(url) > 8)
		return 0;
	if (ctx->cfg->env != PV_ENV_PROD &&
	    (strncmp(url, "http://127.0.0.1:", 17) == 0 ||
	        strncmp(url, "http://localhost:", 17) == 0))
		return 0;
	PV_ERR(err, PV_E_INVALID, "url", "url must be an https:// URL.");
	return -1;
}

#define WEBHOOK_COLS \
	"public_id, url, array_to_string(events, ','), to_char(created_at" \
	" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* A webhook row (WEBHOOK_COLS) as JSON. */
static struct json_object *
webhook_json(struct pv_ctx *ctx, const PGresult *res, int r, struct pv_err *err)
{
	struct json_object *w = pv_json_new_obj(ctx->arena, err);
	struct json_object *ev = pv_json_new_arr(ctx->arena, err);
	const char *s, *e;

	for (s = PQgetvalue(res, r, 2); *s != '\0';
	     s = *e != '\0' ? e + 1 : e) {
		e = s + strcspn(s, ",");
		pv_json_push_str(ev,
		    pv_arena_strndup(ctx->arena, s, (size_t)(e - s), err), err);
	}
	pv_json_set_str(w, "id", PQgetvalue(res, r, 0), err);
	pv_json_set_str(w, "url", PQgetvalue(res, r, 1), err);
	pv_json_set(w, "events", ev, err);
	pv_json_set_str(w, "created_at", PQgetvalue(res, r, 3), err);
	return w;
}

/*
 * POST /agent/v1/webhooks {url, events?[]}.
 * 200 {status, webhook:{id, url, events, created_at}, secret} with the
 * whsec_ signing secret shown only here; 400 bad url or event; 409 the
 * agent already has WEBHOOKS_MAX endpoints.
 */
static int
webhook_create(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	static const char *const keys[] = { "url", "events", NULL };
	struct json_object *body, *o;
	const char *url, *secret, *sealed, *evlit, *p[6];
	struct pv_buf lit;
	PGresult *res;

	pv_buf_init(&lit, ctx->arena, 1024);
	if (pv_json_parse(ctx->arena, req->body, req->bodylen, &body, err) ||
	    pv_json_only_keys(body, keys, err) ||
	    pv_json_str(body, "url", 8, 2000, &url, err) ||
	    check_url(ctx, url, err) || parse_events(body, &lit, err) ||
	    pv_buf_finish(&lit, &evlit, NULL, err) ||
	    pv_config_require_master_key(ctx->cfg, err) ||
	    pv_crypto_token(ctx->arena, "wh_", 8, &p[0], err) ||
	    pv_crypto_token(ctx->arena, "whsec_", 32, &secret, err) ||
	    pv_crypto_seal(ctx->arena, ctx->cfg->master_key, p[0], strlen(p[0]),
	        secret, strlen(secret), &sealed, err))
		return -1;
	p[1] = ctx->agent->id;
	p[2] = url;
	p[3] = evlit;
	p[4] = sealed;
	p[5] = XSTR(WEBHOOKS_MAX);
	if (pv_db_exec(ctx,
	        PV_SQL("INSERT INTO agent_webhooks (public_id, agent_id, url,"
	               " events, secret_sealed)"
	               " SELECT $1, $2::bigint, $3, $4::text[], $5"
	               " WHERE (SELECT count(*) FROM agent_webhooks WHERE"
	               "  agent_id = $2::bigint AND deleted_at IS NULL)"
	               "  < $6::int"
	               " RETURNING " WEBHOOK_COLS),
	        6, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_CONFLICT, NULL,
		    "An agent may register at most %d webhook endpoints.",
		    WEBHOOKS_MAX);
		return -1;
	}
	o = success(ctx, err);
	pv_json_set(o, "webhook", webhook_json(ctx, res, 0, err), err);
	pv_json_set_str(o, "secret", secret, err);
	return reply(ctx, resp, o, err);
}

/* GET /agent/v1/webhooks: 200 {status, webhooks:[...]}. */
static int
webhook_list(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	const char *p[1] = { ctx->agent->id };
	struct json_object *o, *arr;
	PGresult *res;
	int r;

	(void)req;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT " WEBHOOK_COLS " FROM agent_webhooks"
	               " WHERE agent_id = $1::bigint AND deleted_at IS NULL"
	               " ORDER BY id"),
	        1, p, &res, err) == -1)
		return -1;
	o = success(ctx, err);
	arr = pv_json_new_arr(ctx->arena, err);
	for (r = 0; r < PQntuples(res); r++)
		pv_json_push(arr, webhook_json(ctx, res, r, err), err);
	pv_json_set(o, "webhooks", arr, err);
	return reply(ctx, resp, o, err);
}

/*
 * DELETE /agent/v1/webhooks/{id}: 200 {status, id, deleted:true};
 * 404 unknown, already deleted or another agent's.
 */
static int
webhook_delete(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	const char *p[2] = { req->route[0], ctx->agent->id };
	struct json_object *o;
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE agent_webhooks SET deleted_at = now()"
	               " WHERE public_id = $1 AND agent_id = $2::bigint"
	               " AND deleted_at IS NULL"),
	        2, p, &res, err) == -1)
		return -1;
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		PV_ERR(err, PV_E_NOTFOUND, "id", "No such webhook endpoint.");
		return -1;
	}
	o = success(ctx, err);
	pv_json_set_str(o, "id", req->route[0], err);
	pv_json_set_bool(o, "deleted", true, err);
	return reply(ctx, resp, o, err);
}

static const struct pv_route routes[] = {
	{ PV_GET, "/agent/v1/rate-limits", rate_limits, PV_ROUTE_AGENT },
	{ PV_GET, "/agent/v1/analytics/summary", analytics, PV_ROUTE_AGENT },
	{ PV_POST, "/agent/v1/webhooks", webhook_create,
	    PV_ROUTE_AGENT | PV_ROUTE_IDEMPOTENT },
	{ PV_GET, "/agent/v1/webhooks", webhook_list, PV_ROUTE_AGENT },
	{ PV_DELETE, "/agent/v1/webhooks/:id", webhook_delete, PV_ROUTE_AGENT },
	{ PV_GET, "/agent/v1/events", pv_agent_events_list, PV_ROUTE_AGENT },
};

/* Routes the account program's requests; see pv_account.h. */
int
pv_account_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	return pv_route_dispatch(ctx, routes,
	    sizeof(routes) / sizeof(routes[0]), req, resp, err);
}
