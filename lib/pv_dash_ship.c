/*
 * The order page's forms: "mark shipped / mark delivered" and refund.
 *
 * "Mark shipped / mark delivered" on the order page, for merchants
 * without a store platform (merchants.platform = 'custom').  The form
 * goes through pv_shipment_apply() (migration 0011), the same SQL a
 * Shopify fulfillment webhook uses (lib/pv_shopify_hooks.c), so the
 * shipment row, the order's fulfillment status and tracking columns,
 * and the order events agents receive follow the same rules: forward
 * only, delivered is final.  One dashboard shipment per order
 * (fulfillment id "dashboard") with every unit of the order: marking
 * it delivered updates it.
 */
#include <string.h>

#include "pv_dash_int.h"
#include "pv_money.h"
#include "pv_refund.h"
#include "pv_valid.h"

/*
 * The merchant's order named by the path's :id, or PV_E_NOTFOUND (an
 * id of another merchant's order looks missing).  Columns: id,
 * platform, paid (t/f), status, public_id, currency.
 */
int
pv_dash_own_order(struct dash *d, PGresult **o, struct pv_err *err)
{
	const char *p[2];

	p[0] = d->s.merchant_id;
	if ((p[1] = pv_arena_strndup(d->ctx->arena, d->param[0], d->paramlen[0],
	         err)) == NULL)
		return -1;
	if (strspn(p[1],
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	        "0123456789_") != strlen(p[1])) {
		PV_ERR(err, PV_E_NOTFOUND, NULL, "no such order");
		return -1;
	}
	if (pv_db_exec(d->ctx,
	        PV_SQL("SELECT o.id, m.platform, o.paid_at IS NOT NULL, "
	               "o.status, o.public_id, o.currency FROM orders o "
	               "JOIN merchants m ON m.id = o.merchant_id "
	               "WHERE o.merchant_id = $1 AND o.public_id = $2"),
	        2, p, o, err) == -1)
		return -1;
	if (PQntuples(*o) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, NULL, "no such order");
		return -1;
	}
	return 0;
}

/* POST /dashboard/orders/:id/ship: status, carrier, tracking_number,
 * tracking_url. */
int
pv_dash_ship(struct dash *d, struct pv_err *err)
{
	static const char *const statuses[] = { "in_transit", "delivered",
		NULL };
	const char *carrier = pv_dash_field(d, "carrier");
	const char *number = pv_dash_field(d, "tracking_number");
	const char *url = pv_dash_field(d, "tracking_url");
	const char *p[6], *path;
	PGresult *o, *res;
	size_t idx;

	if (pv_dash_own_order(d, &o, err) == -1)
		return -1;
	if (strcmp(PQgetvalue(o, 0, 1), "custom") != 0) {
		PV_ERR(err, PV_E_CONFLICT, NULL,
		    "this store's shipments come from its platform");
		return -1;
	}
	if (strcmp(PQgetvalue(o, 0, 2), "t") != 0 ||
	    strcmp(PQgetvalue(o, 0, 3), "cancelled") == 0) {
		PV_ERR(err, PV_E_CONFLICT, NULL,
		    "only a paid order that is not cancelled can ship");
		return -1;
	}
	if (pv_valid_enum(pv_dash_field(d, "status"), statuses, &idx, "status",
	        err) == -1 ||
	    pv_valid_text(carrier, strlen(carrier), 0, 255, 0, "carrier",
	        err) == -1 ||
	    pv_valid_text(number, strlen(number), 0, 255, 0, "tracking_number",
	        err) == -1 ||
	    pv_valid_text(url, strlen(url), 0, 2000, 0, "tracking_url", err) ==
	        -1)
		return -1;
	if (*url != '\0' && strncmp(url, "https://", 8) != 0 &&
	    strncmp(url, "http://", 7) != 0) {
		PV_ERR(err, PV_E_INVALID, "tracking_url",
		    "the tracking URL starts with https://");
		return -1;
	}
	p[0] = PQgetvalue(o, 0, 0);
	p[1] = statuses[idx];
	p[2] = carrier;
	p[3] = number;
	p[4] = url;
	if (pv_db_exec(d->ctx,
	        PV_SQL("SELECT pv_shipment_apply($1::bigint, 'dashboard', "
	               "'Shipment', $2, nullif($3, ''), nullif($4, ''), "
	               "nullif($5, ''), (SELECT coalesce(sum(quantity), 0)"
	               "::integer FROM order_items WHERE order_id = "
	               "$1::bigint), NULL, clock_timestamp(), NULL)"),
	        5, p, &res, err) == -1 ||
	    (path = pv_arena_printf(d->ctx->arena, err,
	         "/dashboard/orders/%s?m=shipped", PQgetvalue(o, 0, 4))) ==
	        NULL)
		return -1;
	return pv_dash_redirect(d, path, err);
}

/*
 * POST /dashboard/orders/:id/refund: amount (blank = everything left)
 * and reason.  The same reservation and provider call as an agent's
 * refund (pv_refund_by_merchant), so the remainder holds under
 * concurrency and the store mirror follows.
 */
int
pv_dash_refund(struct dash *d, struct pv_err *err)
{
	const char *amount = pv_dash_field(d, "amount");
	const char *reason = pv_dash_field(d, "reason");
	const char *refund, *status, *path;
	int64_t minor = 0;
	PGresult *o;

	if (pv_dash_own_order(d, &o, err) == -1 ||
	    pv_valid_text(reason, strlen(reason), 0, 500, 0, "reason", err) ==
	        -1)
		return -1;
	if (*amount != '\0' &&
	    pv_money_parse(amount, strlen(amount), PQgetvalue(o, 0, 5), 0,
	        &minor, "amount", err) == -1)
		return -1;
	if (*amount != '\0' && minor <= 0) {
		PV_ERR(err, PV_E_INVALID, "amount",
		    "The amount must be greater than zero.");
		return -1;
	}
	if (pv_refund_by_merchant(d->ctx, PQgetvalue(o, 0, 0),
	        PQgetvalue(o, 0, 4), minor, reason, &refund, &status,
	        err) == -1 ||
	    (path = pv_arena_printf(d->ctx->arena, err,
	         "/dashboard/orders/%s?m=%s", PQgetvalue(o, 0, 4),
	         strcmp(status, "succeeded") == 0 ? "refunded" :
	                                            "refund_pending")) == NULL)
		return -1;
	return pv_dash_redirect(d, path, err);
}
