/*
 * The order.push job: a paid order becomes an order in the merchant's
 * Shopify store exactly once, and ours goes processing.  The store is
 * asked for our tag before anything is created, so a worker that died
 * between Shopify's answer and our commit (or whose answer was lost on
 * the wire) never creates a second order: the retry finds the first
 * and records it.  See pv_order_push.h and docs/shopify.md.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pv_db.h"
#include "pv_json.h"
#include "pv_log.h"
#include "pv_order_push.h"
#include "pv_shopify.h"
#include "pv_valid.h"

/* Columns of ORDER_SQL. */
enum ocol {
	OC_ID,
	OC_STATUS,
	OC_PLATFORM,
	OC_MERCHANT,
	OC_EMAIL,
	OC_CURRENCY,
	OC_TOTAL,
	OC_PSP,
	OC_NAME,
	OC_LINE1,
	OC_LINE2,
	OC_CITY,
	OC_STATE,
	OC_ZIP,
	OC_COUNTRY,
	OC_PHONE,
	OC__MAX
};

#define ORDER_SQL \
	PV_SQL("SELECT o.id, o.status, o.platform_order_id, m.public_id," \
	       " o.customer_email::text, o.currency, o.total_minor, o.psp," \
	       " o.ship_name, o.ship_line1, o.ship_line2, o.ship_city," \
	       " o.ship_state, o.ship_postal_code, o.ship_country," \
	       " o.ship_phone" \
	       " FROM orders o JOIN merchants m ON m.id = o.merchant_id" \
	       " WHERE o.public_id = $1")

/* The order as the push needs it.  Strings live in ctx->arena. */
struct push {
	const char *job_id;    /* the job, for logs */
	int attempt;           /* the job's attempt, 1 on the first */
	int last_attempt;      /* 1 if the job goes dead when this one fails */
	const char *id;        /* orders.id (decimal text) */
	const char *public_id; /* ORD_...: also the Shopify tag */
	const char *status;    /* orders.status when loaded */
	const char *platform;  /* platform_order_id, or NULL */
	const char *merchant;  /* the merchant's public id */
	const char *email;     /* customer_email */
	const char *currency;  /* ISO 4217 */
	int64_t total_minor;   /* what the customer paid */
	const char *psp;       /* the payment provider: the gateway */
	const char *note;      /* a state that is not a code, or NULL */
	struct pv_shopify_address ship; /* mapped shipping address */
	struct pv_shopify_line *lines;  /* order_items in line order */
	size_t nlines;                  /* how many */
	int missing_line;               /* first line without a variant id */
};

/* s, or NULL when it is empty. */
static const char *
nonempty(const char *s)
{
	return s != NULL && *s != '\0' ? s : NULL;
}

/* s without leading and trailing blanks (arena memory), or NULL. */
static const char *
trimmed(struct pv_arena *a, const char *s, struct pv_err *err)
{
	size_t len;

	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return pv_arena_strndup(a, s, len, err);
}

/*
 * Splits a full name at its first blank: "Ada King Lovelace" gives
 * firstName "Ada", lastName "King Lovelace".  A single word is the
 * last name, which Shopify's address forms require.
 */
static int
split_name(struct pv_arena *a, const char *name,
    struct pv_shopify_address *ship, struct pv_err *err)
{
	const char *t, *sp;

	if ((t = trimmed(a, name, err)) == NULL)
		return -1;
	sp = strpbrk(t, " \t");
	if (sp == NULL) {
		ship->first_name = NULL;
		ship->last_name = nonempty(t);
		return 0;
	}
	if ((ship->first_name =
	            pv_arena_strndup(a, t, (size_t)(sp - t), err)) == NULL ||
	    (ship->last_name = trimmed(a, sp, err)) == NULL)
		return -1;
	return 0;
}

/*
 * Shopify takes a province code ("ON", "CA", "NSW"), not a name.  A
 * state of one to three letters or digits is sent upper-cased as the
 * code; a longer one (a name such as "Bavaria") cannot be, so it goes
 * into the order note where the merchant sees it.
 */
static int
map_state(struct pv_arena *a, const char *state, struct push *p,
    struct pv_err *err)
{
	const char *t;
	char *code;
	size_t i, len;

	if ((t = trimmed(a, state, err)) == NULL)
		return -1;
	len = strlen(t);
	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)t[i]))
			break;
	if (len <= 3 && i == len) {
		if ((code = pv_arena_strdup(a, t, err)) == NULL)
			return -1;
		for (i = 0; i < len; i++)
			code[i] = (char)toupper((unsigned char)code[i]);
		p->ship.province_code = code;
		return 0;
	}
	p->note = pv_arena_printf(a, err, "Shipping state/province: %s", t);
	return p->note != NULL ? 0 : -1;
}

/* Loads the order public_id into p.  PV_E_NOTFOUND, PV_E_DB. */
static int
load_order(struct pv_ctx *ctx, const char *public_id, struct push *p,
    struct pv_err *err)
{
	const char *params[1] = { public_id };
	struct pv_arena *a = ctx->arena;
	PGresult *res;

	if (pv_db_exec_one(ctx, ORDER_SQL, 1, params, &res, err) == -1)
		return -1;
	p->public_id = public_id;
	p->id = PQgetvalue(res, 0, OC_ID);
	p->status = PQgetvalue(res, 0, OC_STATUS);
	p->platform = pv_db_get(res, 0, OC_PLATFORM);
	p->merchant = PQgetvalue(res, 0, OC_MERCHANT);
	p->email = PQgetvalue(res, 0, OC_EMAIL);
	p->currency = PQgetvalue(res, 0, OC_CURRENCY);
	p->psp = PQgetvalue(res, 0, OC_PSP);
	if (pv_valid_int64(PQgetvalue(res, 0, OC_TOTAL), 1, INT64_MAX / 2,
	        &p->total_minor, "total_minor", err) == -1)
		return -1;
	memset(&p->ship, 0, sizeof(p->ship));
	p->ship.address1 = PQgetvalue(res, 0, OC_LINE1);
	p->ship.address2 = nonempty(PQgetvalue(res, 0, OC_LINE2));
	p->ship.city = PQgetvalue(res, 0, OC_CITY);
	p->ship.zip = PQgetvalue(res, 0, OC_ZIP);
	p->ship.country_code = PQgetvalue(res, 0, OC_COUNTRY);
	p->ship.phone = nonempty(PQgetvalue(res, 0, OC_PHONE));
	p->note = NULL;
	if (split_name(a, PQgetvalue(res, 0, OC_NAME), &p->ship, err) == -1 ||
	    map_state(a, PQgetvalue(res, 0, OC_STATE), p, err) == -1)
		return -1;
	return 0;
}

/*
 * Loads the order's lines.  p->missing_line is the first line with no
 * Shopify variant id (a product not from the store, or one whose
 * variant was never synced), 0 if every line has one.
 */
static int
load_lines(struct pv_ctx *ctx, struct push *p, struct pv_err *err)
{
	const char *params[1] = { p->id };
	const char *v;
	PGresult *res;
	size_t i, n;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT line, external_variant_id, quantity"
	               " FROM order_items WHERE order_id = $1::bigint"
	               " ORDER BY line"),
	        1, params, &res, err) == -1)
		return -1;
	n = (size_t)PQntuples(res);
	p->missing_line = 0;
	p->nlines = n;
	if (n == 0) {
		PV_ERR(err, PV_E_INVALID, "items", "order %s has no lines",
		    p->public_id);
		return -1;
	}
	if ((p->lines = pv_arena_calloc(ctx->arena, n, sizeof(*p->lines),
	         err)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		v = pv_db_get(res, (int)i, 1);
		if ((v == NULL || *v == '\0') && p->missing_line == 0)
			p->missing_line =
			    (int)strtol(PQgetvalue(res, (int)i, 0), NULL, 10);
		p->lines[i].variant_id = v;
		if (pv_valid_int64(PQgetvalue(res, (int)i, 2), 1, 1000000,
		        &p->lines[i].quantity, "quantity", err) == -1)
			return -1;
	}
	return 0;
}

/*
 * Appends an order event (pv_order_event() in SQL) of type with the
 * JSON detail; flagged asks a human to look.
 */
static int
order_event(struct pv_ctx *ctx, const struct push *p, const char *type,
    struct json_object *detail, int flagged, struct pv_err *err)
{
	const char *params[4] = { p->id, type, NULL, flagged ? "t" : "f" };
	size_t len;

	if (pv_json_to_str(ctx->arena, detail, &params[2], &len, err) == -1)
		return -1;
	return pv_db_exec(ctx,
	    PV_SQL("SELECT pv_order_event($1::bigint, $2, $3::jsonb,"
	           " $4::boolean)"),
	    4, params, NULL, err);
}

/* The codes a retry cannot mend. */
static int
permanent(enum pv_errcode code)
{
	switch (code) {
	case PV_E_AUTH:
	case PV_E_FORBIDDEN:
	case PV_E_NOTFOUND:
	case PV_E_UNPROCESSABLE:
	case PV_E_INVALID:
	case PV_E_TOOBIG:
		return 1;
	default:
		return 0;
	}
}

/*
 * The push failed with err.  A permanent failure, or any failure on
 * the job's last attempt, is recorded as a flagged order event; the
 * job then goes dead (PV_JOB_PERMANENT) or is retried (-1).  err is
 * handed back as it came, unless recording the event failed: then
 * that database error is returned with -1, and the retry fails again.
 */
static int
failed(struct pv_ctx *ctx, const struct push *p, const char *stage,
    struct pv_err *err)
{
	int perm = permanent(err->code);
	struct pv_err cause = *err, e = { 0 };
	struct json_object *d;

	pv_log_msg(perm ? PV_LOG_WARN : PV_LOG_INFO,
	    "order.push %s (job %s, attempt %d): %s at %s: %s %s", p->public_id,
	    p->job_id, p->attempt, perm ? "gave up" : "failed", stage,
	    pv_err_name(err->code), err->msg);
	if (!perm && !p->last_attempt)
		return -1;
	d = pv_json_new_obj(ctx->arena, &e);
	pv_json_set_str(d, "stage", stage, &e);
	pv_json_set_str(d, "code", pv_err_name(cause.code), &e);
	if (cause.reason[0] != '\0')
		pv_json_set_str(d, "reason", cause.reason, &e);
	if (cause.field[0] != '\0')
		pv_json_set_str(d, "field", cause.field, &e);
	pv_json_set_str(d, "message", cause.msg, &e);
	pv_json_set_int(d, "attempt", p->attempt, &e);
	pv_json_set_bool(d, "permanent", perm != 0, &e);
	if (e.code != PV_OK ||
	    order_event(ctx, p, "shopify.push_failed", d, 1, &e) == -1) {
		*err = e;
		return -1;
	}
	return perm ? PV_JOB_PERMANENT : -1;
}

struct record {
	const struct push *p;
	const struct pv_shopify_order *so; /* the Shopify order */
	int found;                         /* found by tag, not created */
	const char *outcome;               /* what happened, for the log */
};

/*
 * Inside a transaction: stores the Shopify order id and moves a paid
 * order to processing.  The row is locked and read again, so a refund
 * or a second worker since we loaded it is seen: an id stored already
 * means a re-run (nothing changes); an order no longer paid keeps its
 * status and the event is flagged.
 */
static int
record_tx(struct pv_ctx *ctx, void *arg, struct pv_err *err)
{
	struct record *r = arg;
	const struct push *p = r->p;
	const char *params[2] = { p->id, r->so->id };
	const char *stored, *status;
	struct json_object *d;
	PGresult *res;
	int paid;

	if (pv_db_exec_one(ctx,
	        PV_SQL("SELECT status, platform_order_id FROM orders"
	               " WHERE id = $1::bigint FOR UPDATE"),
	        1, params, &res, err) == -1)
		return -1;
	status = PQgetvalue(res, 0, 0);
	stored = pv_db_get(res, 0, 1);
	d = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(d, "platform_order_id", r->so->id, err);
	if (r->so->name != NULL)
		pv_json_set_str(d, "platform_order_name", r->so->name, err);
	pv_json_set_bool(d, "found_by_tag", r->found != 0, err);
	if (err->code != PV_OK)
		return -1;
	if (stored != NULL) {
		if (strcmp(stored, r->so->id) == 0) {
			r->outcome = "already recorded";
			return 0;
		}
		r->outcome = "conflicting id flagged";
		pv_json_set_str(d, "stored_platform_order_id", stored, err);
		return order_event(ctx, p, "shopify.push_conflict", d, 1, err);
	}
	paid = strcmp(status, "paid") == 0;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT set_config('pivota.reason', 'shopify_push',"
	               " true)"),
	        0, NULL, NULL, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("UPDATE orders SET platform_order_id = $2,"
	               " status = CASE WHEN status = 'paid'"
	               "  THEN 'processing' ELSE status END,"
	               " fulfillment_status = CASE WHEN status = 'paid'"
	               "  AND fulfillment_status = 'unfulfilled'"
	               "  THEN 'processing' ELSE fulfillment_status END"
	               " WHERE id = $1::bigint"),
	        2, params, NULL, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT set_config('pivota.reason', '', true)"), 0, NULL,
	        NULL, err) == -1)
		return -1;
	if (!paid)
		pv_json_set_str(d, "order_status", status, err);
	r->outcome = paid ? "processing" : "recorded, order not paid: flagged";
	return order_event(ctx, p, "shopify.pushed", d, !paid, err);
}

static int
record(struct pv_ctx *ctx, const struct push *p,
    const struct pv_shopify_order *so, int found, struct pv_err *err)
{
	struct record r = { p, so, found, NULL };

	if (pv_db_tx(ctx, record_tx, &r, err) == -1)
		return failed(ctx, p, "commit", err);
	pv_log_msg(PV_LOG_INFO, "order.push %s: Shopify order %s (%s), %s",
	    p->public_id, so->id, found ? "found by tag" : "created",
	    r.outcome);
	return 0;
}

/*
 * An order that is no longer paid (refunded, cancelled) is not
 * created in the store.  An earlier attempt may have created it before
 * the refund, though, so the store is asked: a Shopify order found is
 * recorded and flagged (someone must cancel it there before it ships).
 * Otherwise the skip is an event, flagged unless the order was wholly
 * refunded or cancelled (a partial refund needs a human's call).
 */
static int
not_paid(struct pv_ctx *ctx, const struct push *p,
    const struct pv_shopify_conn *conn, struct pv_err *err)
{
	struct pv_shopify_order so;
	struct json_object *d;
	const char *params[3] = { p->id, NULL, NULL };
	size_t len;
	int found, quiet;

	if (pv_shopify_order_find_by_tag(ctx, conn, p->public_id, &so, &found,
	        err) == -1)
		return failed(ctx, p, "find", err);
	if (found)
		return record(ctx, p, &so, 1, err);
	quiet = strcmp(p->status, "refunded") == 0 ||
	    strcmp(p->status, "cancelled") == 0;
	params[2] = quiet ? "f" : "t";
	d = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(d, "order_status", p->status, err);
	if (err->code != PV_OK ||
	    pv_json_to_str(ctx->arena, d, &params[1], &len, err) == -1)
		return -1;
	/* One skip event however often the job runs. */
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT pv_order_event(id, 'shopify.push_skipped',"
	               " $2::jsonb, $3::boolean) FROM orders"
	               " WHERE id = $1::bigint AND NOT EXISTS (SELECT 1"
	               " FROM order_events e WHERE e.order_id = $1::bigint"
	               " AND e.type = 'shopify.push_skipped')"),
	        3, params, NULL, err) == -1)
		return -1;
	pv_log_msg(PV_LOG_INFO, "order.push %s: skipped, order is %s",
	    p->public_id, p->status);
	return 0;
}

/* The orderCreate input for p (borrows p). */
static void
order_in(const struct push *p, struct pv_shopify_order_in *in)
{
	memset(in, 0, sizeof(*in));
	in->tag = p->public_id;
	in->email = p->email;
	in->currency = p->currency;
	in->lines = p->lines;
	in->nlines = p->nlines;
	in->shipping = &p->ship;
	in->paid_minor = p->total_minor;
	in->gateway = p->psp;
	in->note = p->note;
	in->send_receipt = 1;
}

/* The order.push handler; see pv_order_push.h. */
int
pv_order_push(struct pv_ctx *ctx, const struct pv_job *job, struct pv_err *err)
{
	struct pv_shopify_order_in in;
	struct pv_shopify_conn conn;
	struct pv_shopify_order so;
	const char *public_id;
	struct push p;
	int found;

	memset(&p, 0, sizeof(p));
	if (pv_json_str(job->args, "order_id", 1, 64, &public_id, err) == -1)
		return PV_JOB_PERMANENT;
	p.job_id = pv_arena_printf(ctx->arena, err, "%" PRId64, job->id);
	if (p.job_id == NULL)
		return -1;
	p.attempt = job->attempt;
	p.last_attempt = job->attempt >= job->max_attempts;
	if (load_order(ctx, public_id, &p, err) == -1)
		return err->code == PV_E_NOTFOUND ? PV_JOB_PERMANENT : -1;
	if (p.platform != NULL) {
		pv_log_msg(PV_LOG_INFO, "order.push %s: pushed already as %s",
		    p.public_id, p.platform);
		return 0;
	}
	if (pv_shopify_conn_load(ctx, p.merchant, &conn, err) == -1)
		return failed(ctx, &p, "connection", err);
	if (strcmp(p.status, "paid") != 0)
		return not_paid(ctx, &p, &conn, err);
	if (load_lines(ctx, &p, err) == -1)
		return failed(ctx, &p, "lines", err);
	if (p.missing_line != 0) {
		PV_ERR(err, PV_E_UNPROCESSABLE, "items",
		    "line %d has no Shopify variant id", p.missing_line);
		pv_err_reason(err, "no_variant_id");
		return failed(ctx, &p, "lines", err);
	}

	/* 1. Created by an earlier attempt whose commit never happened? */
	if (pv_shopify_order_find_by_tag(ctx, &conn, p.public_id, &so, &found,
	        err) == -1)
		return failed(ctx, &p, "find", err);
	if (found)
		return record(ctx, &p, &so, 1, err);

	/*
	 * 2. Create it.  The lease is renewed first, so no other worker can
	 * take this job over while the create is on the wire; a worker
	 * that has lost it stops here.
	 */
	if (pv_job_touch(ctx, job,
	        job->lease_s > 0 ? job->lease_s : PV_JOB_LEASE_S, err) == -1)
		return -1;
	order_in(&p, &in);
	if (pv_shopify_order_create(ctx, &conn, &in, &so, err) == -1) {
		/* Outcome unknown: let the search catch up before asking. */
		if (err->code == PV_E_UPSTREAM || err->code == PV_E_TIMEOUT)
			if (err->retry_after < PV_ORDER_PUSH_INDEX_LAG_S)
				err->retry_after = PV_ORDER_PUSH_INDEX_LAG_S;
		return failed(ctx, &p, "create", err);
	}
	return record(ctx, &p, &so, 0, err);
}
