/*
 * Payments: attempts, the merchant's provider account, the one settle
 * path and inbound provider webhooks.  Contracts in pv_payment.h; the
 * SQL halves (pv_payment_begin, pv_payment_settle) are in migration
 * 0009, where the locks are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "pv_agent.h"
#include "pv_arena.h"
#include "pv_cart.h"
#include "pv_config.h"
#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_job.h"
#include "pv_json.h"
#include "pv_log.h"
#include "pv_order.h"
#include "pv_payment.h"
#include "pv_valid.h"

#define AAD_SECRET  "/psp_secret"
#define AAD_WEBHOOK "/psp_webhook_secret"
#define SECRET_MAX  512

/* Opens a secret sealed with the merchant's public id + suffix. */
static int
open_secret(struct pv_ctx *ctx, const char *merchant, const char *suffix,
    const char *sealed, const char **out, struct pv_err *err)
{
	unsigned char *plain;
	const char *aad;
	size_t len;

	*out = NULL;
	if (sealed == NULL)
		return 0;
	if (pv_config_require_master_key(ctx->cfg, err) ||
	    (aad = pv_arena_printf(ctx->arena, err, "%s%s", merchant,
	         suffix)) == NULL ||
	    pv_crypto_open(ctx->arena, ctx->cfg->master_key, aad, strlen(aad),
	        sealed, strlen(sealed), &plain, &len, err))
		return -1;
	*out = pv_arena_strndup(ctx->arena, (const char *)plain, len, err);
	return *out != NULL ? 0 : -1;
}

static int
seal_secret(struct pv_ctx *ctx, const char *merchant, const char *suffix,
    const char *plain, const char **out, struct pv_err *err)
{
	const char *aad;

	*out = NULL;
	if (plain == NULL)
		return 0;
	if ((aad = pv_arena_printf(ctx->arena, err, "%s%s", merchant,
	         suffix)) == NULL)
		return -1;
	return pv_crypto_seal(ctx->arena, ctx->cfg->master_key, aad,
	    strlen(aad), plain, strlen(plain), out, err);
}

int
pv_payment_account(struct pv_ctx *ctx, const char *merchant,
    struct pv_psp_account *acct, struct pv_err *err)
{
	const char *p[1] = { merchant };
	PGresult *res;

	memset(acct, 0, sizeof(*acct));
	if (pv_db_exec(ctx,
	        PV_SQL(
	            "SELECT m.public_id, p.provider, p.secret_sealed,"
	            " p.merchant_account, p.api_base, p.webhook_secret_sealed"
	            " FROM merchant_psp p JOIN merchants m"
	            " ON m.id = p.merchant_id WHERE p.merchant_id = "
	            "$1::bigint"),
	        1, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "merchant_id",
		    "The merchant has no payment provider connected.");
		return -1;
	}
	acct->merchant_id = PQgetvalue(res, 0, 0);
	acct->provider = PQgetvalue(res, 0, 1);
	acct->merchant_account =
	    PQgetisnull(res, 0, 3) ? "" : PQgetvalue(res, 0, 3);
	acct->api_base = pv_db_get(res, 0, 4);
	if (open_secret(ctx, acct->merchant_id, AAD_SECRET,
	        pv_db_get(res, 0, 2), &acct->secret_key, err) ||
	    open_secret(ctx, acct->merchant_id, AAD_WEBHOOK,
	        pv_db_get(res, 0, 5), &acct->webhook_secret, err))
		return -1;
	if (acct->secret_key == NULL)
		acct->secret_key = "";
	return 0;
}

int
pv_payment_connect(struct pv_ctx *ctx, const char *merchant,
    const struct pv_psp_account *in, const char **webhook_secret,
    struct pv_err *err)
{
	const struct pv_psp_ops *ops = pv_psp_find(in->provider);
	struct pv_psp_account acct = *in;
	const char *p[6], *secret;
	PGresult *res;

	if (ops == NULL) {
		PV_ERR(err, PV_E_INVALID, "provider",
		    "Unknown payment provider %s.", in->provider);
		return -1;
	}
	if (acct.api_base != NULL && acct.api_base[0] == '\0')
		acct.api_base = NULL;
	acct.merchant_id = merchant;
	if (pv_config_require_master_key(ctx->cfg, err) ||
	    ops->verify(ctx, &acct, err))
		return -1;
	secret = acct.webhook_secret;
	if (secret == NULL &&
	    pv_crypto_token(ctx->arena, "whsec_", 24, &secret, err))
		return -1;
	if (strlen(secret) > SECRET_MAX) {
		PV_ERR(err, PV_E_INVALID, "webhook_secret", "Too long.");
		return -1;
	}
	p[0] = merchant;
	p[1] = acct.provider;
	p[3] =
	    acct.merchant_account != NULL && acct.merchant_account[0] != '\0' ?
	    acct.merchant_account :
	    NULL;
	p[4] = acct.api_base;
	if (seal_secret(ctx, merchant, AAD_SECRET,
	        acct.secret_key != NULL && acct.secret_key[0] != '\0' ?
	            acct.secret_key :
	            NULL,
	        &p[2], err) ||
	    seal_secret(ctx, merchant, AAD_WEBHOOK, secret, &p[5], err))
		return -1;
	if (pv_db_exec(ctx,
	        PV_SQL(
	            "INSERT INTO merchant_psp (merchant_id, provider,"
	            " secret_sealed, merchant_account, api_base,"
	            " webhook_secret_sealed)"
	            " SELECT id, $2, $3, $4, $5, $6 FROM merchants"
	            " WHERE public_id = $1"
	            " ON CONFLICT (merchant_id) DO UPDATE SET"
	            " provider = EXCLUDED.provider,"
	            " secret_sealed = EXCLUDED.secret_sealed,"
	            " merchant_account = EXCLUDED.merchant_account,"
	            " api_base = EXCLUDED.api_base,"
	            " webhook_secret_sealed = EXCLUDED.webhook_secret_sealed,"
	            " connected_at = now(), updated_at = now()"),
	        6, p, &res, err) == -1)
		return -1;
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		PV_ERR(err, PV_E_NOTFOUND, "merchant", "No such merchant: %s.",
		    merchant);
		return -1;
	}
	*webhook_secret = secret;
	return 0;
}

/*
 * What follows a payment, queued in the transaction that marked the
 * order paid: pushing it to the merchant's store, if one is connected.
 */
static int
after_paid(struct pv_ctx *ctx, const char *payment_id, struct pv_err *err)
{
	const char *p[1] = { payment_id };
	const char *payload, *key;
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT o.public_id, EXISTS (SELECT 1 FROM"
	               " merchant_shopify s WHERE s.merchant_id = o.merchant_id"
	               " AND s.disconnected_at IS NULL)"
	               " FROM payments p JOIN orders o ON o.id = p.order_id"
	               " WHERE p.id = $1::bigint"),
	        1, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1 || PQgetvalue(res, 0, 1)[0] != 't')
		return 0;
	if ((payload = pv_arena_printf(ctx->arena, err, "{\"order_id\":\"%s\"}",
	         PQgetvalue(res, 0, 0))) == NULL ||
	    (key = pv_arena_printf(ctx->arena, err, "order.push:%s",
	         PQgetvalue(res, 0, 0))) == NULL)
		return -1;
	return pv_job_enqueue(ctx, "order.push", payload, key, 0, err);
}

struct settle {
	const char *payment_id;
	const struct pv_psp_result *r;
	const char *outcome;
};

/* pv_payment_settle() in the SQL and what follows; inside a transaction. */
static int
settle_in_tx(struct pv_ctx *ctx, struct settle *s, struct pv_err *err)
{
	const struct pv_psp_result *r = s->r;
	const char *p[7];
	PGresult *res;

	p[0] = s->payment_id;
	p[1] = pv_psp_status_name(r->status);
	p[2] = r->reference != NULL && r->reference[0] != '\0' ? r->reference :
	                                                         NULL;
	p[3] = r->client_secret != NULL && r->client_secret[0] != '\0' ?
	    r->client_secret :
	    NULL;
	p[4] = r->status == PV_PSP_FAILED && r->decline_code != NULL &&
	        r->decline_code[0] != '\0' ?
	    r->decline_code :
	    NULL;
	p[5] = r->message != NULL && r->message[0] != '\0' ? r->message : NULL;
	p[6] = r->status == PV_PSP_REQUIRES_ACTION ? r->next_action : NULL;
	if (pv_db_exec(ctx,
	        PV_SQL(
	            "SELECT pv_payment_settle($1::bigint, $2, $3, $4, $5, $6,"
	            " $7::jsonb)"),
	        7, p, &res, err) == -1)
		return -1;
	s->outcome = pv_arena_strdup(ctx->arena, PQgetvalue(res, 0, 0), err);
	if (s->outcome == NULL)
		return -1;
	if (strcmp(s->outcome, "flagged") == 0)
		pv_log_msg(PV_LOG_WARN,
		    "payment %s succeeded for an order no "
		    "longer payable: flagged for refund",
		    s->payment_id);
	if (strcmp(s->outcome, "paid") == 0)
		return after_paid(ctx, s->payment_id, err);
	return 0;
}

static int
settle_tx(struct pv_ctx *ctx, void *arg, struct pv_err *err)
{
	return settle_in_tx(ctx, arg, err);
}

int
pv_payment_settle(struct pv_ctx *ctx, const char *payment_id,
    const struct pv_psp_result *r, const char **outcome, struct pv_err *err)
{
	struct settle s = { payment_id, r, NULL };

	if (pv_db_tx(ctx, settle_tx, &s, err))
		return -1;
	*outcome = s.outcome;
	return 0;
}

/* The wire name of a payments.status: an unanswered attempt is processing. */
static const char *
wire_status(const char *status)
{
	return strcmp(status, "created") == 0 ? "processing" : status;
}

struct attempt {
	const char *order_public, *order_id;
	const char *id, *public_id, *status;
	const char *merchant, *email, *currency, *token, *return_url;
	const char *reference, *client_secret, *provider; /* a settled one */
	int64_t amount_minor;
};

static int
parse_payment(struct pv_ctx *ctx, const struct pv_req *req, struct attempt *at,
    struct pv_err *err)
{
	static const char *const keys[] = { "order_id", "payment_method",
		"return_url", NULL };
	static const char *const pm_keys[] = { "type", "token", NULL };
	static const char *const types[] = { "card", NULL };
	struct json_object *body, *pm;
	const char *type;
	size_t k;

	if (pv_json_parse(ctx->arena, req->body, req->bodylen, &body, err) ||
	    pv_json_only_keys(body, keys, err) ||
	    pv_json_str(body, "order_id", 1, 64, &at->order_public, err) ||
	    pv_json_obj(body, "payment_method", &pm, err) ||
	    pv_json_str_opt(body, "return_url", 1, 2000, &at->return_url, err))
		return -1;
	if (pv_json_only_keys(pm, pm_keys, err) ||
	    pv_json_str(pm, "type", 1, 32, &type, err) ||
	    pv_valid_enum(type, types, &k, "type", err) ||
	    pv_json_str(pm, "token", 1, 255, &at->token, err) ||
	    pv_valid_text(at->token, strlen(at->token), 1, 255, 0, "token",
	        err))
		return pv_json_err_prefix(err, "payment_method");
	if (at->return_url != NULL && strncmp(at->return_url, "https://", 8) &&
	    strncmp(at->return_url, "http://", 7)) {
		PV_ERR(err, PV_E_INVALID, "return_url",
		    "Must be an http or https URL.");
		return -1;
	}
	return 0;
}

/*
 * The order is paid.  If it was paid by an attempt with this very
 * payment method, the request is a retry whose answer was lost (or
 * that the webhook beat): answer as that attempt did, 1.  Otherwise
 * 409.
 */
static int
already_paid(struct pv_ctx *ctx, struct attempt *at, struct pv_err *err)
{
	const char *p[2] = { at->order_id, at->token };
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT id, public_id, amount_minor, currency,"
	               " coalesce(reference, ''), coalesce(client_secret, ''),"
	               " provider FROM payments WHERE order_id = $1::bigint"
	               " AND status = 'succeeded' AND token = $2"),
	        2, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_CONFLICT, "order_id",
		    "Order %s is already paid.", at->order_public);
		pv_err_reason(err, "order_already_paid");
		return -1;
	}
	at->id = PQgetvalue(res, 0, 0);
	at->public_id = PQgetvalue(res, 0, 1);
	at->status = "succeeded";
	at->amount_minor = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	at->currency = PQgetvalue(res, 0, 3);
	at->reference = PQgetvalue(res, 0, 4);
	at->client_secret = PQgetvalue(res, 0, 5);
	at->provider = PQgetvalue(res, 0, 6);
	return 1;
}

/*
 * Opens (or finds) the attempt: pv_payment_begin() and the amounts.
 * 0: charge it; 1: the order was paid by this payment method already
 * (at describes that attempt); -1: err.
 */
static int
begin_attempt(struct pv_ctx *ctx, struct attempt *at, struct pv_err *err)
{
	const char *p[4], *verdict;
	PGresult *res;

	if (pv_crypto_token(ctx->arena, "pay_", 12, &p[1], err))
		return -1;
	p[0] = at->order_id;
	p[2] = at->token;
	p[3] = at->return_url;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT b.verdict, b.payment_id, b.payment_public_id,"
	               " b.payment_status, b.amount_minor, b.currency,"
	               " o.merchant_id, o.customer_email, b.token, b.return_url"
	               " FROM pv_payment_begin($1::bigint, $2, $3, $4) b"
	               " JOIN orders o ON o.id = $1::bigint"),
	        4, p, &res, err) == -1)
		return -1;
	verdict = PQgetvalue(res, 0, 0);
	if (strcmp(verdict, "paid") == 0)
		return already_paid(ctx, at, err);
	if (strcmp(verdict, "cancelled") == 0) {
		PV_ERR(err, PV_E_CONFLICT, "order_id",
		    "Order %s is cancelled; create a new order.",
		    at->order_public);
		pv_err_reason(err, "order_cancelled");
		return -1;
	}
	if (strcmp(verdict, "in_progress") == 0) {
		PV_ERR(err, PV_E_CONFLICT, "order_id",
		    "Payment %s for order %s is %s; wait for its outcome (GET "
		    "/agent/v1/payments/%s), or retry it with the same payment "
		    "method.",
		    PQgetvalue(res, 0, 2), at->order_public,
		    wire_status(PQgetvalue(res, 0, 3)), PQgetvalue(res, 0, 2));
		pv_err_reason(err, "payment_in_progress");
		return -1;
	}
	at->id = PQgetvalue(res, 0, 1);
	at->public_id = PQgetvalue(res, 0, 2);
	at->status = PQgetvalue(res, 0, 3);
	at->amount_minor = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
	at->currency = PQgetvalue(res, 0, 5);
	at->merchant = PQgetvalue(res, 0, 6);
	at->email = PQgetvalue(res, 0, 7);
	at->return_url = pv_db_get(res, 0, 9);
	return 0;
}

/*
 * The provider refused the request itself (bad token, the merchant's
 * credentials): nothing was charged, so the attempt closes as failed
 * without touching the order.  Other failures leave it open: their
 * outcome is unknown, and a retry re-drives it with the same key.
 */
static void
close_refused(struct pv_ctx *ctx, const struct attempt *at,
    const struct pv_err *why)
{
	const char *p[2] = { at->id, why->msg };
	struct pv_err err2 = { 0 };

	switch (why->code) {
	case PV_E_INVALID:
	case PV_E_AUTH:
	case PV_E_FORBIDDEN:
	case PV_E_UNPROCESSABLE:
		break;
	default:
		return;
	}
	if (pv_db_exec(ctx,
	        PV_SQL(
	            "UPDATE payments SET status = 'failed',"
	            " decline_code = 'request_refused', failure_message = $2,"
	            " updated_at = now()"
	            " WHERE id = $1::bigint AND status = 'created'"),
	        2, p, NULL, &err2) == -1)
		pv_log_msg(PV_LOG_ERROR, "closing payment %s: %s", at->id,
		    err2.msg);
}

/* A provider error as the agent should see it. */
static void
provider_error(const struct attempt *at, struct pv_err *err)
{
	char msg[sizeof(err->msg)];

	if (err->code != PV_E_AUTH && err->code != PV_E_FORBIDDEN)
		return;
	snprintf(msg, sizeof(msg), "%s", err->msg);
	pv_err_clear(err);
	PV_ERR(err, PV_E_UPSTREAM, NULL,
	    "The merchant's payment provider refused our credentials for "
	    "payment %s: %s",
	    at->public_id, msg);
}

static struct json_object *
result_json(struct pv_ctx *ctx, const struct attempt *at,
    const struct pv_psp_result *r, const char *psp, struct pv_err *err)
{
	struct json_object *o = pv_json_new_obj(ctx->arena, err), *na;

	pv_json_set_str(o, "status", "success", err);
	pv_json_set_str(o, "payment_id", at->public_id, err);
	pv_json_set_str(o, "order_id", at->order_public, err);
	pv_json_set_str(o, "payment_intent_id", r->reference, err);
	pv_json_set_str(o, "payment_status", pv_psp_status_name(r->status),
	    err);
	pv_cart_set_money(o, "amount", at->amount_minor, at->currency, err);
	pv_json_set_str(o, "currency", at->currency, err);
	pv_json_set_str(o, "psp_used", psp, err);
	pv_json_set_str(o, "client_secret",
	    r->client_secret != NULL ? r->client_secret : "", err);
	if (r->status == PV_PSP_REQUIRES_ACTION && r->next_action != NULL &&
	    pv_json_parse(ctx->arena, r->next_action, strlen(r->next_action),
	        &na, err) == 0)
		pv_json_set(o, "next_action", na, err);
	if (r->status == PV_PSP_FAILED)
		pv_json_set_str(o, "decline_code",
		    r->decline_code != NULL ? r->decline_code : "", err);
	return o;
}

/* A declined attempt: 402 payment_error carrying the decline code. */
static int
declined(struct pv_ctx *ctx, struct pv_resp *resp, const struct attempt *at,
    const struct pv_psp_result *r, struct pv_err *err)
{
	struct pv_err why = { 0 };
	struct json_object *extra;
	const char *code = r->decline_code != NULL && r->decline_code[0] ?
	    r->decline_code :
	    "generic_decline";

	PV_ERR(&why, PV_E_PAYMENT, "payment_method.token",
	    "The payment was declined (%s)%s%s", code,
	    r->message != NULL && r->message[0] != '\0' ? ": " : ".",
	    r->message != NULL ? r->message : "");
	pv_err_reason(&why, "card_declined");
	extra = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(extra, "decline_code", code, err);
	pv_json_set_str(extra, "payment_id", at->public_id, err);
	pv_json_set_str(extra, "order_id", at->order_public, err);
	pv_json_set_str(extra, "payment_status", "failed", err);
	if (err->code != PV_OK)
		return -1;
	pv_resp_error_extra(ctx, resp, &why, extra);
	return 0;
}

/*
 * POST /agent/v1/payments {order_id, payment_method:{type, token},
 * return_url?}: charges the order's total on its merchant's provider.
 */
int
pv_payment_create(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	const struct pv_psp_ops *ops;
	struct pv_psp_account acct;
	struct pv_psp_charge in;
	struct pv_psp_result r;
	struct json_object *o;
	struct attempt at;
	const char *outcome;
	int paid;

	memset(&at, 0, sizeof(at));
	if (parse_payment(ctx, req, &at, err) ||
	    pv_order_lookup(ctx, at.order_public, &at.order_id, err) ||
	    (paid = begin_attempt(ctx, &at, err)) == -1)
		return -1;
	if (paid == 1) {
		memset(&r, 0, sizeof(r));
		r.status = PV_PSP_SUCCEEDED;
		r.reference = at.reference;
		r.client_secret = at.client_secret;
		o = result_json(ctx, &at, &r, at.provider, err);
		return pv_resp_json(ctx, resp, 200, o, err);
	}
	if (pv_payment_account(ctx, at.merchant, &acct, err))
		return -1;
	if ((ops = pv_psp_find(acct.provider)) == NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "no adapter for provider %s",
		    acct.provider);
		return -1;
	}
	memset(&in, 0, sizeof(in));
	in.payment_id = at.public_id;
	in.order_id = at.order_public;
	in.amount_minor = at.amount_minor;
	in.currency = at.currency;
	in.token = at.token;
	in.return_url = at.return_url;
	in.customer_email = at.email;
	memset(&r, 0, sizeof(r));
	if (ops->charge(ctx, &acct, &in, &r, err)) {
		close_refused(ctx, &at, err);
		provider_error(&at, err);
		return -1;
	}
	if (pv_payment_settle(ctx, at.id, &r, &outcome, err))
		return -1;
	ctx->usage.gmv_minor =
	    r.status == PV_PSP_SUCCEEDED ? at.amount_minor : 0;
	ctx->usage.currency = at.currency;
	if (r.status == PV_PSP_FAILED)
		return declined(ctx, resp, &at, &r, err);
	o = result_json(ctx, &at, &r, acct.provider, err);
	if (err->code != PV_OK)
		return -1;
	return pv_resp_json(ctx, resp, 200, o, err);
}

/* GET /agent/v1/payments/{payment_id}: 200 {status, payment}. */
int
pv_payment_get(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	const char *p[2] = { req->route[0], ctx->agent->id };
	struct json_object *o, *pay, *na;
	const char *cur;
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT p.public_id, o.public_id, p.status,"
	               " p.amount_minor, p.currency, p.provider,"
	               " pv_ts(p.created_at), pv_ts(p.updated_at), p.reference,"
	               " p.decline_code, p.next_action, "
	               "p.failure_message"
	               " FROM payments p JOIN orders o ON "
	               "o.id = p.order_id"
	               " WHERE p.public_id = $1 AND "
	               "p.agent_id = $2::bigint"),
	        2, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "payment_id", "No such payment: %s.",
		    req->route[0]);
		return -1;
	}
	cur = PQgetvalue(res, 0, 4);
	pay = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(pay, "payment_id", PQgetvalue(res, 0, 0), err);
	pv_json_set_str(pay, "order_id", PQgetvalue(res, 0, 1), err);
	pv_json_set_str(pay, "status", wire_status(PQgetvalue(res, 0, 2)), err);
	pv_cart_set_money(pay, "amount",
	    strtoll(PQgetvalue(res, 0, 3), NULL, 10), cur, err);
	pv_json_set_str(pay, "currency", cur, err);
	pv_json_set_str(pay, "psp_used", PQgetvalue(res, 0, 5), err);
	pv_json_set_str(pay, "created_at", PQgetvalue(res, 0, 6), err);
	pv_json_set_str(pay, "updated_at", PQgetvalue(res, 0, 7), err);
	pv_json_set_str(pay, "payment_intent_id", PQgetvalue(res, 0, 8), err);
	if (!PQgetisnull(res, 0, 9))
		pv_json_set_str(pay, "decline_code", PQgetvalue(res, 0, 9),
		    err);
	if (!PQgetisnull(res, 0, 10) &&
	    strcmp(PQgetvalue(res, 0, 2), "requires_action") == 0 &&
	    pv_json_parse(ctx->arena, PQgetvalue(res, 0, 10),
	        (size_t)PQgetlength(res, 0, 10), &na, err) == 0)
		pv_json_set(pay, "next_action", na, err);
	ctx->usage.order_id = PQgetvalue(res, 0, 1);
	o = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(o, "status", "success", err);
	pv_json_set(o, "payment", pay, err);
	if (err->code != PV_OK)
		return -1;
	return pv_resp_json(ctx, resp, 200, o, err);
}

struct hook {
	const char *merchant; /* internal id */
	const struct pv_psp_account *acct;
	const struct pv_psp_event *ev;
	const char *payload;
	const char *outcome;
};

/* The attempt an event is about: by reference, else the order's open one. */
static int
event_payment(struct pv_ctx *ctx, struct hook *h, PGresult **res,
    struct pv_err *err)
{
	const char *p[4];

	p[0] = h->merchant;
	p[1] = h->acct->provider;
	p[2] = h->ev->reference;
	p[3] = h->ev->order_id;
	return pv_db_exec(ctx,
	    PV_SQL("SELECT id, amount_minor, currency, order_id FROM payments"
	           " WHERE merchant_id = $1::bigint"
	           " AND ((provider = $2 AND reference = $3)"
	           "  OR (reference IS NULL AND status = 'created'"
	           "   AND order_id = (SELECT id FROM orders"
	           "    WHERE public_id = $4 AND merchant_id = $1::bigint)))"
	           " ORDER BY reference IS NULL LIMIT 1"),
	    4, p, res, err);
}

/*
 * A payment event: settled through the one path, unless it reports
 * another amount or currency than the attempt charged (a provider bug
 * or a forged-but-signed event): then nothing is applied and the order
 * gets a flagged event for a human.
 */
static int
apply_payment_event(struct pv_ctx *ctx, struct hook *h, struct pv_err *err)
{
	const struct pv_psp_event *ev = h->ev;
	struct pv_psp_result r;
	struct settle s;
	const char *p[3];
	PGresult *res;

	if (event_payment(ctx, h, &res, err))
		return -1;
	if (PQntuples(res) != 1) {
		h->outcome = "unknown_payment";
		return 0;
	}
	if (ev->status == PV_PSP_SUCCEEDED && ev->amount_minor > 0 &&
	    (strtoll(PQgetvalue(res, 0, 1), NULL, 10) != ev->amount_minor ||
	        ev->currency == NULL ||
	        strcasecmp(PQgetvalue(res, 0, 2), ev->currency) != 0)) {
		h->outcome = "amount_mismatch";
		p[0] = PQgetvalue(res, 0, 3);
		p[1] = ev->id;
		p[2] = ev->currency != NULL ? ev->currency : "";
		return pv_db_exec(ctx,
		    PV_SQL(
		        "SELECT pv_order_event($1::bigint,"
		        " 'payment.amount_mismatch', jsonb_build_object("
		        "'event_id', $2::text, 'currency', $3::text), true)"),
		    3, p, NULL, err);
	}
	memset(&r, 0, sizeof(r));
	r.status = ev->status;
	r.reference = ev->reference;
	r.decline_code = ev->decline_code;
	s.payment_id = PQgetvalue(res, 0, 0);
	s.r = &r;
	if (settle_in_tx(ctx, &s, err))
		return -1;
	h->outcome = s.outcome;
	return 0;
}

/* Stores one event (once) and applies it; inside a transaction. */
static int
hook_tx(struct pv_ctx *ctx, void *arg, struct pv_err *err)
{
	struct hook *h = arg;
	const struct pv_psp_event *ev = h->ev;
	const char *p[5];
	PGresult *res;

	p[0] = h->acct->provider;
	p[1] = ev->id;
	p[2] = h->merchant;
	p[3] = ev->type;
	p[4] = h->payload;
	if (pv_db_exec(ctx,
	        PV_SQL(
	            "INSERT INTO provider_events (provider, event_id,"
	            " merchant_id, type, payload) VALUES ($1, $2, $3::bigint,"
	            " $4, $5) ON CONFLICT DO NOTHING"),
	        5, p, &res, err) == -1)
		return -1;
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		h->outcome = "duplicate";
		return 0;
	}
	h->outcome = "ignored";
	if (ev->kind == PV_PSP_EV_PAYMENT && apply_payment_event(ctx, h, err))
		return -1;
	p[2] = h->outcome;
	return pv_db_exec(ctx,
	    PV_SQL("UPDATE provider_events SET outcome = $3"
	           " WHERE provider = $1 AND event_id = $2"),
	    3, p, NULL, err);
}

/* The merchant (public id) whose provider family matches the path's. */
static int
hook_account(struct pv_ctx *ctx, const char *family, const char *merchant,
    const char **internal, struct pv_psp_account *acct, struct pv_err *err)
{
	const char *p[1] = { merchant };
	PGresult *res;

	if (pv_valid_text(merchant, strlen(merchant), 1, 64, 0, "merchant_id",
	        err) ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT id FROM merchants WHERE public_id = $1"), 1, p,
	        &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "merchant_id", "No such merchant.");
		return -1;
	}
	*internal = PQgetvalue(res, 0, 0);
	if (pv_payment_account(ctx, *internal, acct, err))
		return -1;
	/* The sandbox speaks Stripe's webhook dialect. */
	if (strcmp(acct->provider, family) != 0 &&
	    !(strcmp(family, "stripe") == 0 &&
	        strcmp(acct->provider, "sandbox") == 0)) {
		PV_ERR(err, PV_E_INVALID, NULL,
		    "This merchant's payment provider is %s, not %s.",
		    acct->provider, family);
		return -1;
	}
	return 0;
}

/*
 * POST /webhooks/{family}/{merchant_id}: verify on the raw body, store
 * each event once, apply it, acknowledge in the provider's dialect.
 */
static int
webhook(struct pv_ctx *ctx, const char *family, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	const struct pv_psp_ops *ops;
	struct pv_psp_account acct;
	struct pv_psp_event *evs;
	const char *merchant = req->route[0];
	struct hook h;
	size_t n, i;

	if (hook_account(ctx, family, merchant, &h.merchant, &acct, err))
		return -1;
	ops = pv_psp_find(
	    strcmp(acct.provider, "sandbox") == 0 ? "stripe" : acct.provider);
	if (ops == NULL || ops->webhook == NULL) {
		PV_ERR(err, PV_E_NOTFOUND, NULL,
		    "No webhook endpoint for provider %s.", acct.provider);
		return -1;
	}
	if (ops->webhook(ctx, &acct, req, &evs, &n, err))
		return -1;
	h.acct = &acct;
	h.payload = req->body;
	for (i = 0; i < n; i++) {
		h.ev = &evs[i];
		if (pv_db_tx(ctx, hook_tx, &h, err))
			return -1;
		pv_log_msg(PV_LOG_INFO, "%s webhook %s (%s) for %s: %s",
		    acct.provider, evs[i].id, evs[i].type, merchant, h.outcome);
	}
	pv_resp_set(resp, 200, ops->webhook_ack_type, ops->webhook_ack,
	    strlen(ops->webhook_ack));
	return 0;
}

static int
stripe_webhook(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	return webhook(ctx, "stripe", req, resp, err);
}

static int
adyen_webhook(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	return webhook(ctx, "adyen", req, resp, err);
}

static const struct pv_route stripe_routes[] = {
	{ PV_POST, "/webhooks/stripe/:merchant", stripe_webhook, 0 },
};

static const struct pv_route adyen_routes[] = {
	{ PV_POST, "/webhooks/adyen/:merchant", adyen_webhook, 0 },
};

int
pv_payment_stripe_webhook(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	return pv_route_dispatch(ctx, stripe_routes,
	    sizeof(stripe_routes) / sizeof(stripe_routes[0]), req, resp, err);
}

int
pv_payment_adyen_webhook(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	return pv_route_dispatch(ctx, adyen_routes,
	    sizeof(adyen_routes) / sizeof(adyen_routes[0]), req, resp, err);
}
