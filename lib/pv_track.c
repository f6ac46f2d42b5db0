/*
 * Tracking: GET /agent/v1/fulfillment/track/{order_id} (and its alias
 * under /agent/v1/orders), GET /agent/v1/fulfillment/orders/in-transit.
 * Everything is read from orders, shipments and order_events; the
 * timeline is the order's events in sequence, followed by the
 * milestones still to come.  Contract in pv_track.h and docs/api.md.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pv_agent.h"
#include "pv_cart.h"
#include "pv_db.h"
#include "pv_json.h"
#include "pv_track.h"
#include "pv_valid.h"

#define LIST_LIMIT_DEFAULT 20
#define LIST_LIMIT_MAX     100

/* Columns of the order head query. */
enum {
	H_ID,
	H_PUBLIC,
	H_FULFILLMENT,
	H_STATUS,
	H_NUMBER,
	H_CARRIER,
	H_URL,
	H_SHIPPED,
	H_DELIVERED,
	H_ESTIMATE,
	H_MAX_DAYS,
	H_MERCHANT
};

/* Columns of the shipments query. */
enum {
	S_FULFILLMENT,
	S_NAME,
	S_STATUS,
	S_CARRIER,
	S_NUMBER,
	S_URL,
	S_SHIPPED,
	S_DELIVERED,
	S_ESTIMATE,
	S_UPDATED
};

/* A nullable column: its text or JSON null. */
static void
set_col(struct json_object *o, const char *key, const PGresult *res, int r,
    int c, struct pv_err *err)
{
	pv_json_set_str(o, key, pv_db_get(res, r, c), err);
}

/*
 * The delivery status of an order from its shipments (cancelled ones
 * do not count): not_shipped without any, delivered when all are,
 * failed when all failed, else the furthest of the rest.
 */
static const char *
delivery_status(const PGresult *sr)
{
	int r, live = 0, delivered = 0, failed = 0, out = 0;
	const char *st;

	for (r = 0; r < PQntuples(sr); r++) {
		st = PQgetvalue(sr, r, S_STATUS);
		if (strcmp(st, "cancelled") == 0)
			continue;
		live++;
		delivered += strcmp(st, "delivered") == 0;
		failed += strcmp(st, "failed") == 0;
		out += strcmp(st, "out_for_delivery") == 0;
	}
	if (live == 0)
		return "not_shipped";
	if (delivered == live)
		return "delivered";
	if (failed == live)
		return "failed";
	return out > 0 ? "out_for_delivery" : "in_transit";
}

/* What a shipment event says, in words ("UPS 1Z999: in transit"). */
static const char *
shipment_words(struct pv_ctx *ctx, struct json_object *d, struct pv_err *err)
{
	struct json_object *v;
	const char *carrier = NULL, *number = NULL, *status = "in_transit";

	if (json_object_object_get_ex(d, "carrier", &v))
		carrier = json_object_get_string(v);
	if (json_object_object_get_ex(d, "tracking_number", &v))
		number = json_object_get_string(v);
	if (json_object_object_get_ex(d, "status", &v))
		status = json_object_get_string(v);
	return pv_arena_printf(ctx->arena, err, "%s%s%s%s%s",
	    carrier != NULL ? carrier : "", carrier != NULL ? " " : "",
	    number != NULL ? number : "",
	    carrier != NULL || number != NULL ? ": " : "", status);
}

/* One timeline entry. */
static void
entry(struct pv_ctx *ctx, struct json_object *arr, const char *status,
    const char *at, bool completed, const char *description, struct pv_err *err)
{
	struct json_object *e = pv_json_new_obj(ctx->arena, err);

	pv_json_set_str(e, "status", status, err);
	pv_json_set_str(e, "timestamp", at, err);
	pv_json_set_bool(e, "completed", completed, err);
	if (description != NULL)
		pv_json_set_str(e, "description", description, err);
	pv_json_push(arr, e, err);
}

/* Order events that mean something to a buyer, and what they say. */
static const struct {
	const char *type, *status, *description;
} milestones[] = {
	{ "order.created", "order_placed", "Order placed" },
	{ "order.paid", "paid", "Payment received" },
	{ "order.processing", "processing", "Sent to the merchant's store" },
	{ "fulfillment.partially_shipped", "partially_shipped",
	    "Part of the order has shipped" },
	{ "fulfillment.shipped", "shipped", "Shipped" },
	{ "fulfillment.failed", "failed", "Delivery failed" },
	{ "fulfillment.delivered", "delivered", "Delivered" },
	{ "order.cancelled", "cancelled", "Order cancelled" },
	{ "order.partially_refunded", "partially_refunded",
	    "Partially refunded" },
	{ "order.refunded", "refunded", "Refunded" },
};

/*
 * The timeline: the order's events in sequence (shipment events say
 * their carrier, number and status), then shipped and delivered as
 * pending entries while they have not happened.
 */
static struct json_object *
timeline(struct pv_ctx *ctx, const PGresult *head, struct pv_err *err)
{
	const char *p[1] = { PQgetvalue(head, 0, H_ID) };
	struct json_object *arr = pv_json_new_arr(ctx->arena, err), *d, *v;
	const char *type, *at, *fs = PQgetvalue(head, 0, H_FULFILLMENT);
	const char *st = PQgetvalue(head, 0, H_STATUS);
	PGresult *er;
	size_t k;
	int r;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT type, pv_ts(created_at), detail::text"
	               " FROM order_events WHERE order_id = $1::bigint"
	               " ORDER BY seq"),
	        1, p, &er, err) == -1)
		return NULL;
	for (r = 0; r < PQntuples(er); r++) {
		type = PQgetvalue(er, r, 0);
		at = PQgetvalue(er, r, 1);
		if (strncmp(type, "shipment.", 9) == 0) {
			if (pv_json_parse(ctx->arena, PQgetvalue(er, r, 2),
			        (size_t)PQgetlength(er, r, 2), &d, err) == -1)
				return NULL;
			if (json_object_object_get_ex(d, "at", &v))
				at = json_object_get_string(v);
			entry(ctx, arr,
			    strcmp(type, "shipment.created") == 0 ?
			        "shipment_created" :
			        "shipment_updated",
			    at, true, shipment_words(ctx, d, err), err);
			continue;
		}
		for (k = 0; k < sizeof(milestones) / sizeof(milestones[0]); k++)
			if (strcmp(type, milestones[k].type) == 0)
				entry(ctx, arr, milestones[k].status, at, true,
				    milestones[k].description, err);
	}
	if (strcmp(st, "cancelled") != 0 && strcmp(st, "refunded") != 0 &&
	    strcmp(fs, "delivered") != 0) {
		if (strcmp(fs, "shipped") != 0 &&
		    strcmp(fs, "partially_shipped") != 0 &&
		    strcmp(fs, "failed") != 0)
			entry(ctx, arr, "shipped", NULL, false, NULL, err);
		entry(ctx, arr, "delivered", pv_db_get(head, 0, H_ESTIMATE),
		    false, "Estimated delivery", err);
	}
	return err->code == PV_OK ? arr : NULL;
}

/* GET .../track/{order_id}: 200 {status, tracking}; 404 not the agent's. */
static int
track(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	const char *p[2] = { req->route[0], ctx->agent->id };
	struct json_object *o, *t, *arr, *s, *tl;
	PGresult *head, *sr;
	int r;

	if (pv_db_exec(ctx,
	        PV_SQL(
	            "SELECT o.id, o.public_id, o.fulfillment_status, o.status,"
	            " o.tracking_number, o.carrier, o.tracking_url,"
	            " pv_ts(o.shipped_at), pv_ts(o.delivered_at),"
	            " CASE WHEN o.fulfillment_status <> 'delivered' THEN"
	            "  pv_ts(coalesce((SELECT max(coalesce("
	            "   s.estimated_delivery, s.shipped_at +"
	            "   make_interval(days => r.max_days)))"
	            "   FROM shipments s WHERE s.order_id = o.id"
	            "   AND s.status NOT IN ('delivered', 'cancelled')),"
	            "  CASE WHEN o.status IN ('paid', 'processing') THEN"
	            "   coalesce(o.paid_at, o.created_at) +"
	            "   make_interval(days => r.max_days) END)) END,"
	            " r.max_days, o.merchant_id"
	            " FROM orders o LEFT JOIN LATERAL (SELECT max_days FROM"
	            "  merchant_shipping_rates x WHERE x.merchant_id ="
	            "  o.merchant_id AND x.country IN (o.ship_country, '*')"
	            "  ORDER BY x.country = '*' LIMIT 1) r ON true"
	            " WHERE o.public_id = $1 AND o.agent_id = $2::bigint"),
	        2, p, &head, err) == -1)
		return -1;
	if (PQntuples(head) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "order_id", "No such order: %s.",
		    req->route[0]);
		return -1;
	}
	ctx->usage.order_id = PQgetvalue(head, 0, H_PUBLIC);
	ctx->usage.merchant_id = PQgetvalue(head, 0, H_MERCHANT);
	p[0] = PQgetvalue(head, 0, H_ID);
	p[1] = pv_db_get(head, 0, H_MAX_DAYS);
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT fulfillment_id, name, status, carrier,"
	               " tracking_number, tracking_url, pv_ts(shipped_at),"
	               " pv_ts(delivered_at), pv_ts(coalesce("
	               " estimated_delivery, shipped_at +"
	               " make_interval(days => $2::integer))),"
	               " pv_ts(source_updated_at)"
	               " FROM shipments WHERE order_id = $1::bigint"
	               " ORDER BY shipped_at, id"),
	        2, p, &sr, err) == -1 ||
	    (tl = timeline(ctx, head, err)) == NULL)
		return -1;
	t = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(t, "order_id", PQgetvalue(head, 0, H_PUBLIC), err);
	pv_json_set_str(t, "order_status", PQgetvalue(head, 0, H_STATUS), err);
	pv_json_set_str(t, "fulfillment_status",
	    PQgetvalue(head, 0, H_FULFILLMENT), err);
	pv_json_set_str(t, "delivery_status", delivery_status(sr), err);
	set_col(t, "tracking_number", head, 0, H_NUMBER, err);
	set_col(t, "carrier", head, 0, H_CARRIER, err);
	set_col(t, "tracking_url", head, 0, H_URL, err);
	set_col(t, "shipped_at", head, 0, H_SHIPPED, err);
	set_col(t, "delivered_at", head, 0, H_DELIVERED, err);
	set_col(t, "estimated_delivery", head, 0, H_ESTIMATE, err);
	arr = pv_json_new_arr(ctx->arena, err);
	for (r = 0; r < PQntuples(sr); r++) {
		s = pv_json_new_obj(ctx->arena, err);
		set_col(s, "fulfillment_id", sr, r, S_FULFILLMENT, err);
		set_col(s, "name", sr, r, S_NAME, err);
		set_col(s, "status", sr, r, S_STATUS, err);
		set_col(s, "carrier", sr, r, S_CARRIER, err);
		set_col(s, "tracking_number", sr, r, S_NUMBER, err);
		set_col(s, "tracking_url", sr, r, S_URL, err);
		set_col(s, "shipped_at", sr, r, S_SHIPPED, err);
		set_col(s, "delivered_at", sr, r, S_DELIVERED, err);
		set_col(s, "estimated_delivery", sr, r, S_ESTIMATE, err);
		set_col(s, "updated_at", sr, r, S_UPDATED, err);
		pv_json_push(arr, s, err);
	}
	pv_json_set(t, "shipments", arr, err);
	pv_json_set(t, "timeline", tl, err);
	o = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(o, "status", "success", err);
	pv_json_set(o, "tracking", t, err);
	if (err->code != PV_OK)
		return -1;
	return pv_resp_json(ctx, resp, 200, o, err);
}

/*
 * GET /agent/v1/fulfillment/orders/in-transit ?merchant_id limit
 * offset: this agent's orders that have shipped and are not yet
 * delivered, most recently shipped first.  200 {status, total, orders,
 * pagination}; 400 for an unknown or bad parameter.
 */
static int
in_transit(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	static const char *const known[] = { "merchant_id", "limit", "offset",
		NULL };
	struct json_object *o, *arr, *e, *pg;
	int64_t limit = LIST_LIMIT_DEFAULT, offset = 0, total;
	char lim[24], off[24];
	const char *p[4], *s, *cur;
	PGresult *res, *cnt;
	size_t i, k;
	int r;

	for (i = 0; i < req->nparam; i++)
		if (pv_valid_enum(req->params[i].name, known, &k,
		        req->params[i].name, err) == -1)
			return -1;
	if (((s = pv_req_param(req, "limit")) != NULL &&
	        pv_valid_int64(s, 1, LIST_LIMIT_MAX, &limit, "limit", err) ==
	            -1) ||
	    ((s = pv_req_param(req, "offset")) != NULL &&
	        pv_valid_int64(s, 0, 1000000, &offset, "offset", err) == -1))
		return -1;
	snprintf(lim, sizeof(lim), "%" PRId64, limit);
	snprintf(off, sizeof(off), "%" PRId64, offset);
	p[0] = ctx->agent->id;
	p[1] = pv_req_param(req, "merchant_id");
	p[2] = lim;
	p[3] = off;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT o.public_id, m.public_id, o.customer_email,"
	               " o.tracking_number, o.carrier, o.tracking_url,"
	               " pv_ts(o.shipped_at), o.total_minor, o.currency,"
	               " o.fulfillment_status"
	               " FROM orders o JOIN merchants m ON m.id = o.merchant_id"
	               " WHERE o.agent_id = $1::bigint"
	               " AND o.fulfillment_status IN ('partially_shipped',"
	               " 'shipped')"
	               " AND ($2::text IS NULL OR m.public_id = $2)"
	               " ORDER BY o.shipped_at DESC NULLS LAST, o.id DESC"
	               " LIMIT $3::bigint OFFSET $4::bigint"),
	        4, p, &res, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT count(*) FROM orders o"
	               " JOIN merchants m ON m.id = o.merchant_id"
	               " WHERE o.agent_id = $1::bigint"
	               " AND o.fulfillment_status IN ('partially_shipped',"
	               " 'shipped')"
	               " AND ($2::text IS NULL OR m.public_id = $2)"),
	        2, p, &cnt, err) == -1)
		return -1;
	total = strtoll(PQgetvalue(cnt, 0, 0), NULL, 10);
	arr = pv_json_new_arr(ctx->arena, err);
	for (r = 0; r < PQntuples(res); r++) {
		cur = PQgetvalue(res, r, 8);
		e = pv_json_new_obj(ctx->arena, err);
		set_col(e, "order_id", res, r, 0, err);
		set_col(e, "merchant_id", res, r, 1, err);
		set_col(e, "customer_email", res, r, 2, err);
		set_col(e, "tracking_number", res, r, 3, err);
		set_col(e, "carrier", res, r, 4, err);
		set_col(e, "tracking_url", res, r, 5, err);
		set_col(e, "shipped_at", res, r, 6, err);
		pv_cart_set_money(e, "total",
		    strtoll(PQgetvalue(res, r, 7), NULL, 10), cur, err);
		pv_json_set_str(e, "currency", cur, err);
		set_col(e, "fulfillment_status", res, r, 9, err);
		pv_json_push(arr, e, err);
	}
	pg = pv_json_new_obj(ctx->arena, err);
	pv_json_set_int(pg, "total", total, err);
	pv_json_set_int(pg, "limit", limit, err);
	pv_json_set_int(pg, "offset", offset, err);
	pv_json_set_bool(pg, "has_more", offset + PQntuples(res) < total, err);
	o = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(o, "status", "success", err);
	pv_json_set_int(o, "total", total, err);
	pv_json_set(o, "orders", arr, err);
	pv_json_set(o, "pagination", pg, err);
	if (err->code != PV_OK)
		return -1;
	return pv_resp_json(ctx, resp, 200, o, err);
}

static const struct pv_route routes[] = {
	{ PV_GET, "/agent/v1/fulfillment/orders/in-transit", in_transit,
	    PV_ROUTE_AGENT },
	{ PV_GET, "/agent/v1/fulfillment/track/:id", track, PV_ROUTE_AGENT },
	{ PV_GET, "/agent/v1/orders/:id/track", track, PV_ROUTE_AGENT },
};

/* Routes the track program's requests; see pv_track.h. */
int
pv_track_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	return pv_route_dispatch(ctx, routes,
	    sizeof(routes) / sizeof(routes[0]), req, resp, err);
}
