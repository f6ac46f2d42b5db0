/*
 * Refunds: POST /agent/v1/orders/{id}/refund, provider refund webhooks,
 * refunds made in the Shopify admin, and the jobs that re-drive an
 * unanswered refund and mirror a refund to Shopify.  A refund is
 * reserved under the order's row lock (pv_refund_reserve in migration
 * 0013) and committed before the provider is called, so the call
 * carries the refund's own id as its idempotency key on every try, in
 * every process; the answer, or the webhook, is recorded by
 * pv_refund_settle().  Contracts in pv_refund.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pv_agent.h"
#include "pv_arena.h"
#include "pv_cart.h"
#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_json.h"
#include "pv_log.h"
#include "pv_money.h"
#include "pv_order.h"
#include "pv_payment.h"
#include "pv_refund.h"
#include "pv_shopify.h"
#include "pv_valid.h"

#define REASON_MAX 500
#define ITEMS_MAX  100
#define NOTE_TAG   "Pivota refund "

/* A refund as the provider call and the reply need it (arena strings). */
struct refund {
	const char *id;           /* refunds.id */
	const char *public_id;    /* ref_... */
	const char *order;        /* orders.id */
	const char *order_pub;    /* ORD_... */
	const char *merchant;     /* merchants.id */
	const char *currency;     /* ISO 4217 */
	const char *reference;    /* the charge's provider reference */
	const char *reason;       /* free text, or "" */
	const char *status;       /* refunds.status after the last step */
	int64_t amount_minor;     /* the refund */
	int64_t left_minor;       /* what is left to refund after it */
	int64_t total_minor;      /* the order's total */
	int64_t refunded_minor;   /* the order's refunded_minor */
	const char *order_status; /* orders.status */
};

/* Loads refund public_id (ref_...) with its order and charge. */
static int
load(struct pv_ctx *ctx, const char *public_id, struct refund *r,
    struct pv_err *err)
{
	const char *p[1] = { public_id };
	PGresult *res;

	if (pv_db_exec_one(ctx,
	        PV_SQL("SELECT r.id, r.public_id, r.order_id, o.public_id,"
	               " r.merchant_id, r.currency, p.reference, r.reason,"
	               " r.status, r.amount_minor, pv_refund_left(o.id),"
	               " o.total_minor, o.refunded_minor, o.status"
	               " FROM refunds r JOIN orders o ON o.id = r.order_id"
	               " LEFT JOIN payments p ON p.id = r.payment_id"
	               " WHERE r.public_id = $1"),
	        1, p, &res, err) == -1)
		return -1;
	r->id = PQgetvalue(res, 0, 0);
	r->public_id = PQgetvalue(res, 0, 1);
	r->order = PQgetvalue(res, 0, 2);
	r->order_pub = PQgetvalue(res, 0, 3);
	r->merchant = PQgetvalue(res, 0, 4);
	r->currency = PQgetvalue(res, 0, 5);
	r->reference = pv_db_get(res, 0, 6);
	r->reason = PQgetvalue(res, 0, 7);
	r->status = PQgetvalue(res, 0, 8);
	r->amount_minor = strtoll(PQgetvalue(res, 0, 9), NULL, 10);
	r->left_minor = strtoll(PQgetvalue(res, 0, 10), NULL, 10);
	r->total_minor = strtoll(PQgetvalue(res, 0, 11), NULL, 10);
	r->refunded_minor = strtoll(PQgetvalue(res, 0, 12), NULL, 10);
	r->order_status = PQgetvalue(res, 0, 13);
	return 0;
}

/*
 * What follows a refund that just succeeded, queued in the transaction
 * that recorded it: the mirror in the merchant's Shopify store, when
 * one is connected and the order was pushed there, unless the refund
 * came from the store.
 */
static int
after_succeeded(struct pv_ctx *ctx, const char *refund, struct pv_err *err)
{
	const char *p[1] = { refund };
	const char *payload, *key;
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT r.public_id FROM refunds r"
	               " JOIN orders o ON o.id = r.order_id"
	               " WHERE r.id = $1::bigint AND r.source <> 'store'"
	               " AND r.store_refund_id IS NULL"
	               " AND o.platform_order_id IS NOT NULL"
	               " AND EXISTS (SELECT 1 FROM merchant_shopify s"
	               "  WHERE s.merchant_id = o.merchant_id"
	               "  AND s.disconnected_at IS NULL)"),
	        1, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1)
		return 0;
	if ((payload = pv_arena_printf(ctx->arena, err,
	         "{\"refund_id\":\"%s\"}", PQgetvalue(res, 0, 0))) == NULL ||
	    (key = pv_arena_printf(ctx->arena, err, "refund.shopify:%s",
	         PQgetvalue(res, 0, 0))) == NULL)
		return -1;
	return pv_job_enqueue(ctx, PV_REFUND_SHOPIFY_KIND, payload, key, 0,
	    err);
}

/* pv_refund_settle() and what follows; inside a transaction. */
static int
settle_in_tx(struct pv_ctx *ctx, const char *refund, const char *status,
    const char *reference, const char *message, const char **outcome,
    struct pv_err *err)
{
	const char *p[4] = { refund, status, reference, message };
	PGresult *res;

	if (reference != NULL && reference[0] == '\0')
		p[2] = NULL;
	if (message != NULL && message[0] == '\0')
		p[3] = NULL;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT pv_refund_settle($1::bigint, $2, $3, $4)"), 4, p,
	        &res, err) == -1)
		return -1;
	*outcome = PQgetvalue(res, 0, 0);
	if (strcmp(*outcome, "reversed") == 0)
		pv_log_msg(PV_LOG_WARN,
		    "refund %s failed after it had succeeded: flagged", refund);
	if (strcmp(*outcome, "succeeded") == 0)
		return after_succeeded(ctx, refund, err);
	return 0;
}

/* One answer to record (settle_tx's argument). */
struct settle {
	const char *refund;    /* refunds.id */
	const char *status;    /* pending, succeeded, failed */
	const char *reference; /* the provider's refund reference, or NULL */
	const char *message;   /* why it failed, or NULL */
	const char *outcome;   /* out: pv_refund_settle()'s verdict */
};

static int
settle_tx(struct pv_ctx *ctx, void *arg, struct pv_err *err)
{
	struct settle *s = arg;

	return settle_in_tx(ctx, s->refund, s->status, s->reference, s->message,
	    &s->outcome, err);
}

static const char *
refund_status_name(enum pv_psp_refund_status s)
{
	switch (s) {
	case PV_PSP_REFUND_SUCCEEDED:
		return "succeeded";
	case PV_PSP_REFUND_FAILED:
		return "failed";
	default:
		return "pending";
	}
}

/*
 * Did the provider refuse the request itself, so that nothing was
 * refunded?  Credentials, our input, or a 4xx the adapter names with
 * the provider's code.  Anything else (a 5xx after retries, a timeout,
 * an unreadable answer) leaves the outcome unknown.
 */
static int
refused(const struct pv_err *e)
{
	switch (e->code) {
	case PV_E_AUTH:
	case PV_E_FORBIDDEN:
	case PV_E_INVALID:
	case PV_E_UNPROCESSABLE:
		return 1;
	case PV_E_UPSTREAM:
		return e->reason[0] != '\0';
	default:
		return 0;
	}
}

/*
 * Sends refund r to the merchant's provider (outside any transaction)
 * and records the answer.  An unknown outcome leaves r pending, with a
 * refund.redrive job queued if requeue is set; *known is 0 then.  r->status is
 * updated. A refusal is recorded as failed and returned as -1 with err saying
 * why (PV_E_UPSTREAM).
 */
static int
drive(struct pv_ctx *ctx, struct refund *r, int requeue, int *known,
    struct pv_err *err)
{
	const struct pv_psp_ops *ops;
	struct pv_psp_account acct;
	struct pv_psp_refund in;
	struct pv_psp_refund_result out;
	struct pv_err e = { 0 };
	struct settle s;
	const char *payload, *key;
	char msg[sizeof(e.msg)];

	*known = 0;
	if (pv_payment_account(ctx, r->merchant, &acct, err) == -1)
		return -1;
	if ((ops = pv_psp_find(acct.provider)) == NULL || ops->refund == NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "no refund for provider %s",
		    acct.provider);
		return -1;
	}
	memset(&in, 0, sizeof(in));
	in.refund_id = r->public_id;
	in.reference = r->reference;
	in.order_id = r->order_pub;
	in.amount_minor = r->amount_minor;
	in.currency = r->currency;
	in.reason = r->reason[0] != '\0' ? r->reason : NULL;
	memset(&out, 0, sizeof(out));
	memset(&s, 0, sizeof(s));
	s.refund = r->id;
	if (ops->refund(ctx, &acct, &in, &out, &e) == 0) {
		s.status = refund_status_name(out.status);
		s.reference = out.reference;
		s.message = out.message;
	} else if (refused(&e)) {
		s.status = "failed";
		s.message = e.msg;
	} else {
		pv_log_msg(PV_LOG_WARN,
		    "refund %s: outcome unknown (%s: %s), re-driven later",
		    r->public_id, pv_err_name(e.code), e.msg);
		r->status = "pending";
		if (!requeue) {
			*err = e;
			return -1;
		}
		if ((payload = pv_arena_printf(ctx->arena, err,
		         "{\"refund_id\":\"%s\"}", r->public_id)) == NULL ||
		    (key = pv_arena_printf(ctx->arena, err, "refund.redrive:%s",
		         r->public_id)) == NULL)
			return -1;
		return pv_job_enqueue(ctx, PV_REFUND_REDRIVE_KIND, payload, key,
		    PV_REFUND_REDRIVE_S, err);
	}
	if (pv_db_tx(ctx, settle_tx, &s, err) == -1)
		return -1;
	*known = 1;
	r->status = s.status;
	if (strcmp(s.status, "failed") == 0) {
		snprintf(msg, sizeof(msg), "%s",
		    s.message != NULL ? s.message : "");
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "The payment provider refused refund %s: %s", r->public_id,
		    msg);
		pv_err_reason(err, "refund_failed");
		return -1;
	}
	return 0;
}

/* The agent's request, read and resolved. */
struct req_in {
	const char *amount;        /* decimal text, or NULL */
	struct json_object *items; /* array, or NULL */
	bool shipping;             /* include_shipping */
	const char *reason;        /* or NULL */
	const char *lines;         /* [{line, quantity}] JSON, or NULL */
};

static int
parse(struct pv_ctx *ctx, const struct pv_req *req, struct req_in *in,
    struct pv_err *err)
{
	static const char *const keys[] = { "amount", "reason", "items",
		"include_shipping", NULL };
	struct json_object *body, *v;

	memset(in, 0, sizeof(*in));
	if (req->bodylen == 0)
		return 0;
	if (pv_json_parse(ctx->arena, req->body, req->bodylen, &body, err) ||
	    pv_json_only_keys(body, keys, err) ||
	    pv_json_str_opt(body, "reason", 0, REASON_MAX, &in->reason, err) ||
	    pv_json_bool_opt(body, "include_shipping", false, &in->shipping,
	        err) ||
	    pv_json_arr_opt(body, "items", 1, ITEMS_MAX, &in->items, err))
		return -1;
	if (in->reason != NULL &&
	    pv_valid_text(in->reason, strlen(in->reason), 0, REASON_MAX,
	        PV_VALID_MULTILINE, "reason", err))
		return -1;
	if (json_object_object_get_ex(body, "amount", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		/* A decimal string; a JSON number is read as its text too. */
		switch (json_object_get_type(v)) {
		case json_type_string:
		case json_type_int:
		case json_type_double:
			in->amount = json_object_get_string(v);
			break;
		default:
			PV_ERR(err, PV_E_INVALID, "amount",
			    "\"amount\" must be a decimal string such as "
			    "\"12.50\"");
			return -1;
		}
	}
	if (in->amount != NULL && in->items != NULL) {
		PV_ERR(err, PV_E_INVALID, "amount",
		    "Give either \"amount\" or \"items\", not both.");
		return -1;
	}
	return 0;
}

/*
 * Resolves items [{product_id, variant_id?, quantity}] to the order's
 * lines as [{line, quantity}] JSON text; several lines of one product
 * take the quantity in line order.
 */
static int
resolve_items(struct pv_ctx *ctx, const char *order, struct req_in *in,
    struct pv_err *err)
{
	static const char *const keys[] = { "product_id", "variant_id",
		"quantity", NULL };
	struct json_object *out = pv_json_new_arr(ctx->arena, err), *it, *l;
	const char *p[3], *txt;
	int64_t qty, take, have;
	PGresult *res;
	size_t i, len;
	int r;

	if (out == NULL)
		return -1;
	for (i = 0; i < json_object_array_length(in->items); i++) {
		p[0] = order;
		p[2] = NULL;
		if (pv_json_at_obj(in->items, i, &it, err) ||
		    pv_json_only_keys(it, keys, err) ||
		    pv_json_str(it, "product_id", 1, 64, &p[1], err) ||
		    pv_json_str_opt(it, "variant_id", 1, 64, &p[2], err) ||
		    pv_json_int(it, "quantity", 1, 10000, &qty, err))
			return pv_json_err_prefix(err, "items[%zu]", i);
		if (pv_db_exec(ctx,
		        PV_SQL(
		            "SELECT line, quantity FROM order_items"
		            " WHERE order_id = $1::bigint"
		            " AND product_public_id = $2"
		            " AND ($3::text IS NULL OR variant_public_id = $3"
		            "  OR external_variant_id = $3)"
		            " ORDER BY line"),
		        3, p, &res, err) == -1)
			return -1;
		if (PQntuples(res) == 0) {
			PV_ERR(err, PV_E_INVALID, "product_id",
			    "The order has no such item.");
			return pv_json_err_prefix(err, "items[%zu]", i);
		}
		for (r = 0; r < PQntuples(res) && qty > 0; r++) {
			have = strtoll(PQgetvalue(res, r, 1), NULL, 10);
			take =
			    r == PQntuples(res) - 1 || qty < have ? qty : have;
			l = pv_json_new_obj(ctx->arena, err);
			pv_json_set_int(l, "line",
			    strtoll(PQgetvalue(res, r, 0), NULL, 10), err);
			pv_json_set_int(l, "quantity", take, err);
			pv_json_push(out, l, err);
			qty -= take;
		}
	}
	if (pv_json_to_str(ctx->arena, out, &txt, &len, err) == -1)
		return -1;
	in->lines = txt;
	return 0;
}

/* Reserves the refund under the order's lock; 4xx verdicts as errors. */
static int
reserve(struct pv_ctx *ctx, const char *order_pub, const char *order,
    const char *agent, const char *source, int64_t amount,
    const struct req_in *in, const char *store_refund_id, struct refund *r,
    struct pv_err *err)
{
	char amt[24], cur[32];
	const char *p[10], *verdict, *pub;
	PGresult *res;

	p[0] = order;
	/* The reason in the enum of the provider the order was paid on. */
	if (pv_crypto_token(ctx->arena, "ref_", 12, &pub, err) ||
	    pv_db_exec_one(ctx,
	        PV_SQL("SELECT psp FROM orders WHERE id = $1::bigint"), 1, p,
	        &res, err) == -1)
		return -1;
	p[8] = strcmp(PQgetvalue(res, 0, 0), "adyen") == 0 ?
	    pv_psp_adyen_reason(in->reason) :
	    pv_psp_stripe_reason(in->reason);
	snprintf(amt, sizeof(amt), "%" PRId64, amount);
	p[1] = pub;
	p[2] = agent;
	p[3] = source;
	p[4] = amount > 0 ? amt : NULL;
	p[5] = in->lines;
	p[6] = in->shipping ? "t" : "f";
	p[7] = in->reason;
	p[9] = store_refund_id;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT verdict, amount_minor, left_minor, bad_line"
	               " FROM pv_refund_reserve($1::bigint, $2, $3::bigint, $4,"
	               " $5::bigint, $6::jsonb, $7::boolean, $8, $9, $10)"),
	        10, p, &res, err) == -1)
		return -1;
	verdict = PQgetvalue(res, 0, 0);
	if (strcmp(verdict, "not_paid") == 0 ||
	    strcmp(verdict, "no_payment") == 0) {
		PV_ERR(err, PV_E_CONFLICT, "order_id",
		    "Order %s has no payment that can be refunded.", order_pub);
		pv_err_reason(err, "order_not_paid");
		return -1;
	}
	if (strcmp(verdict, "item_exceeds") == 0) {
		PV_ERR(err, PV_E_CONFLICT, "items",
		    "More units of order line %s than remain unrefunded.",
		    PQgetvalue(res, 0, 3));
		pv_err_reason(err, "refund_exceeds_remaining");
		return -1;
	}
	if (strcmp(verdict, "exceeds") == 0) {
		int64_t left = strtoll(PQgetvalue(res, 0, 2), NULL, 10);

		if (pv_db_exec_one(ctx,
		        PV_SQL("SELECT currency FROM orders WHERE id = "
		               "$1::bigint"),
		        1, p, &res, err) == -1 ||
		    pv_money_format(left, PQgetvalue(res, 0, 0), cur,
		        sizeof(cur), err) == -1)
			return -1;
		PV_ERR(err, PV_E_CONFLICT, "amount",
		    "That is more than is left to refund on order %s (%s).",
		    order_pub, cur);
		pv_err_reason(err, "refund_exceeds_remaining");
		return -1;
	}
	if (strcmp(verdict, "ok") != 0) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "pv_refund_reserve said %s",
		    verdict);
		return -1;
	}
	return load(ctx, pub, r, err);
}

/* The order's currency (for parsing the amount). */
static int
order_currency(struct pv_ctx *ctx, const char *order, const char **cur,
    struct pv_err *err)
{
	const char *p[1] = { order };
	PGresult *res;

	if (pv_db_exec_one(ctx,
	        PV_SQL("SELECT currency FROM orders WHERE id = $1::bigint"), 1,
	        p, &res, err) == -1)
		return -1;
	*cur = PQgetvalue(res, 0, 0);
	return 0;
}

static int
reply(struct pv_ctx *ctx, struct pv_resp *resp, const char *refund_pub,
    struct pv_err *err)
{
	struct json_object *o;
	struct refund r;
	const char *st;

	if (load(ctx, refund_pub, &r, err) == -1)
		return -1;
	if (strcmp(r.status, "succeeded") == 0)
		st = r.order_status;
	else
		st = r.left_minor == 0 ? "refunded" : "partially_refunded";
	o = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(o, "status", "success", err);
	pv_json_set_str(o, "refund_id", r.public_id, err);
	pv_json_set_str(o, "order_id", r.order_pub, err);
	pv_cart_set_money(o, "refund_amount", r.amount_minor, r.currency, err);
	pv_cart_set_money(o, "refunded_total", r.refunded_minor, r.currency,
	    err);
	pv_cart_set_money(o, "original_amount", r.total_minor, r.currency, err);
	pv_cart_set_money(o, "remaining_refundable", r.left_minor, r.currency,
	    err);
	pv_json_set_str(o, "currency", r.currency, err);
	pv_json_set_bool(o, "is_partial", r.amount_minor < r.total_minor, err);
	pv_json_set_str(o, "new_order_status", st, err);
	pv_json_set_str(o, "refund_status", r.status, err);
	if (err->code != PV_OK)
		return -1;
	return pv_resp_json(ctx, resp, 200, o, err);
}

/*
 * POST /agent/v1/orders/{order_id}/refund {amount?, items?,
 * include_shipping?, reason?}; no body refunds everything left.
 * 200 the refund (refund_status succeeded, or pending when the
 * provider answers later or its answer was lost: it is then re-driven
 * with the same idempotency key); 400 bad input; 404 no such order of
 * this agent; 409 unpaid order or more than is left; 502 the provider
 * refused the refund (it is recorded as failed).
 */
static int
refund_create(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	const char *order, *cur;
	struct req_in in;
	struct refund r;
	int64_t amount = 0;
	int known;

	if (parse(ctx, req, &in, err) ||
	    pv_order_lookup(ctx, req->route[0], &order, err) ||
	    order_currency(ctx, order, &cur, err))
		return -1;
	if (in.amount != NULL) {
		if (pv_money_parse(in.amount, strlen(in.amount), cur, 0,
		        &amount, "amount", err))
			return -1;
		if (amount <= 0) {
			PV_ERR(err, PV_E_INVALID, "amount",
			    "\"amount\" must be greater than zero");
			return -1;
		}
	}
	if (in.items != NULL && resolve_items(ctx, order, &in, err))
		return -1;
	if (reserve(ctx, req->route[0], order, ctx->agent->id, "agent", amount,
	        &in, NULL, &r, err) == -1)
		return -1;
	if (drive(ctx, &r, 1, &known, err) == -1)
		return -1;
	ctx->usage.order_id = req->route[0];
	return reply(ctx, resp, r.public_id, err);
}

int
pv_refund_by_merchant(struct pv_ctx *ctx, const char *order,
    const char *order_pub, int64_t amount_minor, const char *reason,
    const char **refund, const char **status, struct pv_err *err)
{
	struct req_in in;
	struct refund r;
	int known;

	memset(&in, 0, sizeof(in));
	in.reason = reason != NULL && reason[0] != '\0' ? reason : NULL;
	if (amount_minor < 0) {
		PV_ERR(err, PV_E_INVALID, "amount",
		    "The amount must be greater than zero.");
		return -1;
	}
	if (reserve(ctx, order_pub, order, NULL, "merchant", amount_minor, &in,
	        NULL, &r, err) == -1 ||
	    drive(ctx, &r, 1, &known, err) == -1)
		return -1;
	*refund = r.public_id;
	*status = r.status;
	return 0;
}

static const struct pv_route routes[] = {
	{ PV_POST, "/agent/v1/orders/:id/refund", refund_create,
	    PV_ROUTE_AGENT | PV_ROUTE_IDEMPOTENT },
};

int
pv_refund_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	return pv_route_dispatch(ctx, routes,
	    sizeof(routes) / sizeof(routes[0]), req, resp, err);
}

/* Our refund an event is about: by the provider's reference or our id. */
static int
event_refund(struct pv_ctx *ctx, const char *merchant,
    const struct pv_psp_event *ev, const char **refund, struct pv_err *err)
{
	const char *p[3] = { merchant, NULL, NULL };
	PGresult *res;

	*refund = NULL;
	if (ev->refund_reference != NULL && ev->refund_reference[0] != '\0')
		p[1] = ev->refund_reference;
	if (ev->refund_id != NULL && strncmp(ev->refund_id, "ref_", 4) == 0)
		p[2] = ev->refund_id;
	if (p[1] == NULL && p[2] == NULL)
		return 0;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT id FROM refunds WHERE merchant_id = $1::bigint"
	               " AND (provider_reference = $2 OR public_id = $3)"
	               " ORDER BY provider_reference = $2 LIMIT 1"),
	        3, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) == 1)
		*refund = PQgetvalue(res, 0, 0);
	return 0;
}

int
pv_refund_hook(struct pv_ctx *ctx, const char *merchant,
    const struct pv_psp_event *ev, const char **outcome, struct pv_err *err)
{
	const char *refund, *p[5], *pub, *status;
	char amt[24];
	PGresult *res;

	status = refund_status_name(ev->refund_status);
	if (event_refund(ctx, merchant, ev, &refund, err) == -1)
		return -1;
	if (refund != NULL)
		return settle_in_tx(ctx, refund, status, ev->refund_reference,
		    NULL, outcome, err);
	/* Not ours: a refund from the provider's dashboard. */
	p[0] = merchant;
	p[1] = ev->reference;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT id FROM payments WHERE merchant_id = $1::bigint"
	               " AND reference = $2 AND status = 'succeeded'"),
	        2, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		*outcome = "unknown_payment";
		return 0;
	}
	if (strcmp(status, "failed") == 0 || ev->amount_minor <= 0) {
		*outcome = "ignored";
		return 0;
	}
	if (pv_crypto_token(ctx->arena, "ref_", 12, &pub, err))
		return -1;
	snprintf(amt, sizeof(amt), "%" PRId64, ev->amount_minor);
	p[0] = PQgetvalue(res, 0, 0);
	p[1] = pub;
	p[2] = ev->refund_reference != NULL && ev->refund_reference[0] != '\0' ?
	    ev->refund_reference :
	    NULL;
	p[3] = status;
	p[4] = amt;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT outcome, refund_id FROM pv_refund_foreign("
	               "$1::bigint, $2, $3, $4, $5::bigint)"),
	        5, p, &res, err) == -1)
		return -1;
	*outcome = PQgetvalue(res, 0, 0);
	if (!PQgetisnull(res, 0, 1) && strcmp(status, "succeeded") == 0 &&
	    (strcmp(*outcome, "inserted") == 0 ||
	        strcmp(*outcome, "matched") == 0))
		return after_succeeded(ctx, PQgetvalue(res, 0, 1), err);
	return 0;
}

/* The ref_ id a note names ("Pivota refund ref_..."), or NULL. */
static const char *
note_refund(struct pv_ctx *ctx, const char *note, struct pv_err *err)
{
	const char *s;

	if (note == NULL || (s = strstr(note, "ref_")) == NULL ||
	    strlen(s) < 28)
		return NULL;
	return pv_arena_strndup(ctx->arena, s, 28, err);
}

int
pv_refund_from_store(struct pv_ctx *ctx, const char *merchant,
    const char *platform_order_id, int64_t amount_minor,
    const char *store_refund_id, const char *note, const char **outcome,
    struct pv_err *err)
{
	const char *p[3], *order, *order_pub, *ours;
	struct req_in in;
	struct refund r;
	PGresult *res;
	int known;

	p[0] = merchant;
	p[1] = platform_order_id;
	if (pv_db_exec(ctx,
	        PV_SQL(
	            "SELECT o.id, o.public_id FROM orders o"
	            " JOIN merchants m ON m.id = o.merchant_id"
	            " WHERE m.public_id = $1 AND (o.platform_order_id = $2"
	            "  OR o.platform_order_id = 'gid://shopify/Order/' || $2)"),
	        2, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "order_id",
		    "No order of merchant %s is Shopify order %s.", merchant,
		    platform_order_id);
		return -1;
	}
	order = PQgetvalue(res, 0, 0);
	order_pub = PQgetvalue(res, 0, 1);
	p[0] = order;
	p[1] = store_refund_id;
	p[2] = NULL;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT 1 FROM refunds WHERE store_refund_id = $1"
	               " OR store_refund_id = 'gid://shopify/Refund/' || $1"),
	        1, &p[1], &res, err) == -1)
		return -1;
	if (PQntuples(res) > 0) {
		*outcome = "duplicate";
		return 0;
	}
	/* Our own refund.shopify mirror, seen before the job recorded it. */
	if ((ours = note_refund(ctx, note, err)) != NULL) {
		p[2] = ours;
		if (pv_db_exec(ctx,
		        PV_SQL(
		            "UPDATE refunds SET store_refund_id = $2,"
		            " updated_at = now() WHERE order_id = $1::bigint"
		            " AND public_id = $3 AND store_refund_id IS NULL"),
		        3, p, &res, err) == -1)
			return -1;
		if (strcmp(PQcmdTuples(res), "1") == 0) {
			*outcome = "matched";
			return 0;
		}
	} else if (err->code != PV_OK)
		return -1;
	memset(&in, 0, sizeof(in));
	in.reason = "refunded in the Shopify admin";
	if (reserve(ctx, order_pub, order, NULL, "store", amount_minor, &in,
	        store_refund_id, &r, err) == -1) {
		if (err->code == PV_E_CONFLICT) {
			const char *q[2] = { order, err->msg };

			if (pv_db_exec(ctx,
			        PV_SQL(
			            "SELECT pv_order_event($1::bigint,"
			            " 'refund.store_unapplied',"
			            " jsonb_build_object('message', $2::text),"
			            " true)"),
			        2, q, NULL, &(struct pv_err){ 0 }) == -1)
				pv_log_msg(PV_LOG_ERROR,
				    "could not flag order %s", order_pub);
		}
		return -1;
	}
	if (drive(ctx, &r, 1, &known, err) == -1) {
		if (known) {
			pv_err_clear(err);
			*outcome = "failed";
			return 0;
		}
		return -1;
	}
	*outcome = r.status;
	return 0;
}

int
pv_refund_redrive(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err)
{
	const char *pub;
	struct refund r;
	int known;

	if (pv_json_str(job->args, "refund_id", 1, 64, &pub, err) == -1)
		return PV_JOB_PERMANENT;
	if (load(ctx, pub, &r, err) == -1)
		return err->code == PV_E_NOTFOUND ? PV_JOB_PERMANENT : -1;
	if (strcmp(r.status, "pending") != 0)
		return 0;
	/* Still unknown: this job tries again later, with the same key. */
	if (drive(ctx, &r, 0, &known, err) == -1) {
		if (known) {
			pv_log_msg(PV_LOG_WARN, "refund %s: %s", pub, err->msg);
			pv_err_clear(err);
			return 0;
		}
		return -1;
	}
	return 0;
}

/* The mirror's view of a refund and its order. */
struct mirror {
	const char *id;              /* refunds.id */
	const char *public_id;       /* ref_... */
	const char *order;           /* orders.id */
	const char *platform;        /* the Shopify order gid, or NULL */
	const char *merchant;        /* the merchant's public id */
	const char *psp;             /* the order's provider: the gateway */
	const char *currency;        /* ISO 4217 */
	const char *status;          /* refunds.status */
	const char *store_refund_id; /* Shopify's refund, or NULL */
	int64_t amount_minor;        /* the refund */
	int64_t shipping_minor;      /* of which shipping */
	int restock;                 /* merchant_shopify.refund_restock */
};

static int
mirror_load(struct pv_ctx *ctx, const char *pub, struct mirror *m,
    struct pv_err *err)
{
	const char *p[1] = { pub };
	PGresult *res;

	if (pv_db_exec_one(ctx,
	        PV_SQL("SELECT r.id, r.public_id, r.order_id,"
	               " o.platform_order_id, mer.public_id, o.psp, r.currency,"
	               " r.status, r.store_refund_id, r.amount_minor,"
	               " r.shipping_minor, coalesce(s.refund_restock, false)"
	               " FROM refunds r JOIN orders o ON o.id = r.order_id"
	               " JOIN merchants mer ON mer.id = o.merchant_id"
	               " LEFT JOIN merchant_shopify s"
	               "  ON s.merchant_id = o.merchant_id"
	               " WHERE r.public_id = $1"),
	        1, p, &res, err) == -1)
		return -1;
	m->id = PQgetvalue(res, 0, 0);
	m->public_id = PQgetvalue(res, 0, 1);
	m->order = PQgetvalue(res, 0, 2);
	m->platform = pv_db_get(res, 0, 3);
	m->merchant = PQgetvalue(res, 0, 4);
	m->psp = PQgetvalue(res, 0, 5);
	m->currency = PQgetvalue(res, 0, 6);
	m->status = PQgetvalue(res, 0, 7);
	m->store_refund_id = pv_db_get(res, 0, 8);
	m->amount_minor = strtoll(PQgetvalue(res, 0, 9), NULL, 10);
	m->shipping_minor = strtoll(PQgetvalue(res, 0, 10), NULL, 10);
	m->restock = PQgetvalue(res, 0, 11)[0] == 't';
	return 0;
}

static const char ORDER_REFUNDS[] =
    "query OrderRefunds($id: ID!) { order(id: $id) { id"
    " lineItems(first: 250) { nodes { id quantity variant { id } } }"
    " refunds(first: 50) { id note } } }";

static const char REFUND_CREATE[] =
    "mutation RefundCreate($input: RefundInput!) {"
    " refundCreate(input: $input) { refund { id"
    " totalRefundedSet { shopMoney { amount currencyCode } } }"
    " userErrors { field message } } }";

static const char *
jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The Shopify line item of variant among the order's nodes, or NULL. */
static const char *
line_item(struct json_object *nodes, const char *variant)
{
	struct json_object *n, *v;
	size_t i;

	for (i = 0; nodes != NULL && i < json_object_array_length(nodes); i++) {
		n = json_object_array_get_idx(nodes, i);
		if (json_object_object_get_ex(n, "variant", &v) &&
		    jstr(v, "id") != NULL &&
		    strcmp(jstr(v, "id"), variant) == 0)
			return jstr(n, "id");
	}
	return NULL;
}

/* The RefundInput for m against the order's line items. */
static struct json_object *
refund_input(struct pv_ctx *ctx, const struct mirror *m,
    struct json_object *nodes, struct pv_err *err)
{
	struct json_object *in = pv_json_new_obj(ctx->arena, err), *arr, *li,
	                   *tx, *ship;
	const char *p[1] = { m->id }, *note, *gid;
	char amount[32];
	PGresult *res;
	int r;

	if ((note = pv_arena_printf(ctx->arena, err, NOTE_TAG "%s",
	         m->public_id)) == NULL ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT i.external_variant_id, ri.quantity"
	               " FROM refund_items ri JOIN order_items i"
	               " ON i.order_id = ri.order_id AND i.line = ri.line"
	               " WHERE ri.refund_id = $1::bigint ORDER BY ri.line"),
	        1, p, &res, err) == -1)
		return NULL;
	pv_json_set_str(in, "orderId", m->platform, err);
	pv_json_set_str(in, "note", note, err);
	pv_json_set_bool(in, "notify", false, err);
	arr = pv_json_new_arr(ctx->arena, err);
	for (r = 0; r < PQntuples(res); r++) {
		gid = PQgetisnull(res, r, 0) ?
		    NULL :
		    line_item(nodes, PQgetvalue(res, r, 0));
		if (gid == NULL) {
			PV_ERR(err, PV_E_UNPROCESSABLE, "items",
			    "refunded line %d has no line item in the Shopify "
			    "order",
			    r + 1);
			return NULL;
		}
		li = pv_json_new_obj(ctx->arena, err);
		pv_json_set_str(li, "lineItemId", gid, err);
		pv_json_set_int(li, "quantity",
		    strtoll(PQgetvalue(res, r, 1), NULL, 10), err);
		pv_json_set_str(li, "restockType",
		    m->restock ? "RETURN" : "NO_RESTOCK", err);
		pv_json_push(arr, li, err);
	}
	pv_json_set(in, "refundLineItems", arr, err);
	if (m->shipping_minor > 0) {
		if (pv_money_format(m->shipping_minor, m->currency, amount,
		        sizeof(amount), err) == -1)
			return NULL;
		ship = pv_json_new_obj(ctx->arena, err);
		pv_json_set_str(ship, "amount", amount, err);
		pv_json_set(in, "shipping", ship, err);
	}
	if (pv_money_format(m->amount_minor, m->currency, amount,
	        sizeof(amount), err) == -1)
		return NULL;
	tx = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(tx, "orderId", m->platform, err);
	pv_json_set_str(tx, "amount", amount, err);
	pv_json_set_str(tx, "gateway", m->psp, err);
	pv_json_set_str(tx, "kind", "REFUND", err);
	arr = pv_json_new_arr(ctx->arena, err);
	pv_json_push(arr, tx, err);
	pv_json_set(in, "transactions", arr, err);
	return err->code == PV_OK ? in : NULL;
}

/* Stores Shopify's refund id (once). */
static int
mirror_record(struct pv_ctx *ctx, const struct mirror *m, const char *gid,
    const char *how, struct pv_err *err)
{
	const char *p[2] = { m->id, gid };

	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE refunds SET store_refund_id = $2,"
	               " updated_at = now() WHERE id = $1::bigint"
	               " AND store_refund_id IS NULL"),
	        2, p, NULL, err) == -1)
		return -1;
	pv_log_msg(PV_LOG_INFO, "refund.shopify %s: Shopify refund %s (%s)",
	    m->public_id, gid, how);
	return 0;
}

/* A failure of the mirror: permanent ones are flagged on the order. */
static int
mirror_failed(struct pv_ctx *ctx, const struct mirror *m, struct pv_err *err)
{
	const char *p[3] = { m->order, m->public_id, err->msg };

	switch (err->code) {
	case PV_E_AUTH:
	case PV_E_FORBIDDEN:
	case PV_E_NOTFOUND:
	case PV_E_UNPROCESSABLE:
	case PV_E_INVALID:
		break;
	default:
		return -1;
	}
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT pv_order_event($1::bigint,"
	               " 'shopify.refund_failed', jsonb_build_object("
	               " 'refund_id', $2::text, 'message', $3::text), true)"),
	        3, p, NULL, &(struct pv_err){ 0 }) == -1)
		return -1;
	return PV_JOB_PERMANENT;
}

int
pv_refund_shopify(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err)
{
	struct json_object *vars, *data, *order, *refunds, *nodes, *payload,
	    *input;
	struct pv_shopify_conn conn;
	const char *pub, *note, *gid;
	struct mirror m;
	size_t i;

	if (pv_json_str(job->args, "refund_id", 1, 64, &pub, err) == -1)
		return PV_JOB_PERMANENT;
	if (mirror_load(ctx, pub, &m, err) == -1)
		return err->code == PV_E_NOTFOUND ? PV_JOB_PERMANENT : -1;
	if (m.store_refund_id != NULL || strcmp(m.status, "succeeded") != 0 ||
	    m.platform == NULL)
		return 0;
	if (pv_shopify_conn_load(ctx, m.merchant, &conn, err) == -1)
		return mirror_failed(ctx, &m, err);
	/* 1. Made by an earlier run whose record never committed? */
	vars = pv_json_new_obj(ctx->arena, err);
	if (pv_json_set_str(vars, "id", m.platform, err) == -1 ||
	    pv_shopify_graphql(ctx, &conn, ORDER_REFUNDS, vars, 0, &data,
	        err) == -1)
		return mirror_failed(ctx, &m, err);
	if (!json_object_object_get_ex(data, "order", &order) ||
	    !json_object_is_type(order, json_type_object)) {
		PV_ERR(err, PV_E_NOTFOUND, NULL, "Shopify has no order %s",
		    m.platform);
		return mirror_failed(ctx, &m, err);
	}
	if (json_object_object_get_ex(order, "refunds", &refunds))
		for (i = 0; json_object_is_type(refunds, json_type_array) &&
		     i < json_object_array_length(refunds);
		     i++) {
			struct json_object *rf =
			    json_object_array_get_idx(refunds, i);

			note = jstr(rf, "note");
			if (note != NULL && strstr(note, m.public_id) != NULL &&
			    (gid = jstr(rf, "id")) != NULL)
				return mirror_record(ctx, &m, gid, "found",
				    err);
		}
	nodes = NULL;
	if (json_object_object_get_ex(order, "lineItems", &nodes))
		json_object_object_get_ex(nodes, "nodes", &nodes);
	/* 2. Create it, holding the lease while it is on the wire. */
	if ((input = refund_input(ctx, &m, nodes, err)) == NULL)
		return mirror_failed(ctx, &m, err);
	if (pv_job_touch(ctx, job,
	        job->lease_s > 0 ? job->lease_s : PV_JOB_LEASE_S, err) == -1)
		return -1;
	vars = pv_json_new_obj(ctx->arena, err);
	if (pv_json_set(vars, "input", input, err) == -1 ||
	    pv_shopify_graphql(ctx, &conn, REFUND_CREATE, vars, 1, &data,
	        err) == -1)
		return mirror_failed(ctx, &m, err);
	if (!json_object_object_get_ex(data, "refundCreate", &payload)) {
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "Shopify answered without a refundCreate result");
		return -1;
	}
	if (pv_shopify_user_errors(payload, err) == -1)
		return mirror_failed(ctx, &m, err);
	if (!json_object_object_get_ex(payload, "refund", &order) ||
	    (gid = jstr(order, "id")) == NULL) {
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "refundCreate answered without a refund id");
		return -1;
	}
	return mirror_record(ctx, &m, gid, "created", err);
}
