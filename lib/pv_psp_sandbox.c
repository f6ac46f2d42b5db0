/*
 * The sandbox provider: built in, no credentials, no network.  It is
 * the default for `make run`'s demo merchant, so the whole order flow
 * works out of the box, and it answers like Stripe's test mode:
 *
 *   pm_card_visa, pm_card_mastercard, tok_visa   succeeded
 *   pm_card_visa_chargeDeclined, pm_card_chargeDeclined
 *                                                failed, generic_decline
 *   ...InsufficientFunds, ...LostCard, ...StolenCard, ...ExpiredCard,
 *   ...IncorrectCvc, ...ProcessingError          failed, Stripe's code
 *   pm_card_authenticationRequired, pm_card_threeDSecure2Required,
 *   pm_card_authenticationRequiredOnSetup        requires_action
 *   anything else                                400 on the token
 *
 * References are derived from our ids (pi_sandbox_<hex of pay_ id>),
 * so a retried charge is the same charge, as an Idempotency-Key makes
 * it at Stripe.  A charge needing action is completed when the
 * customer opens next_action's URL (the sandbox authentication page),
 * which delivers a Stripe-shaped, Stripe-signed payment_intent.succeeded
 * webhook through the same path real Stripe events take.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "pv_arena.h"
#include "pv_buf.h"
#include "pv_config.h"
#include "pv_db.h"
#include "pv_json.h"
#include "pv_money.h"
#include "pv_payment.h"
#include "pv_psp.h"
#include "pv_psp_sandbox.h"
#include "pv_sig.h"
#include "pv_upstream.h"
#include "pv_valid.h"

struct outcome {
	const char *token;
	enum pv_psp_status status;
	const char *decline_code; /* Stripe's decline_code or code */
	const char *message;
};

static const struct outcome outcomes[] = {
	{ "pm_card_visa", PV_PSP_SUCCEEDED, NULL, NULL },
	{ "pm_card_mastercard", PV_PSP_SUCCEEDED, NULL, NULL },
	{ "pm_card_amex", PV_PSP_SUCCEEDED, NULL, NULL },
	{ "tok_visa", PV_PSP_SUCCEEDED, NULL, NULL },
	{ "pm_card_visa_chargeDeclined", PV_PSP_FAILED, "generic_decline",
	    "Your card was declined." },
	{ "pm_card_chargeDeclined", PV_PSP_FAILED, "generic_decline",
	    "Your card was declined." },
	{ "pm_card_visa_chargeDeclinedInsufficientFunds", PV_PSP_FAILED,
	    "insufficient_funds", "Your card has insufficient funds." },
	{ "pm_card_visa_chargeDeclinedLostCard", PV_PSP_FAILED, "lost_card",
	    "Your card was declined." },
	{ "pm_card_visa_chargeDeclinedStolenCard", PV_PSP_FAILED, "stolen_card",
	    "Your card was declined." },
	{ "pm_card_chargeDeclinedExpiredCard", PV_PSP_FAILED, "expired_card",
	    "Your card has expired." },
	{ "pm_card_chargeDeclinedIncorrectCvc", PV_PSP_FAILED, "incorrect_cvc",
	    "Your card's security code is incorrect." },
	{ "pm_card_chargeDeclinedProcessingError", PV_PSP_FAILED,
	    "processing_error",
	    "An error occurred while processing your card." },
	{ "pm_card_authenticationRequired", PV_PSP_REQUIRES_ACTION, NULL,
	    NULL },
	{ "pm_card_threeDSecure2Required", PV_PSP_REQUIRES_ACTION, NULL, NULL },
	{ "pm_card_authenticationRequiredOnSetup", PV_PSP_REQUIRES_ACTION, NULL,
	    NULL },
};

/* "pi_sandbox_<hex>" from "pay_<hex>": prefix + the id after its '_'. */
static const char *
reference(struct pv_ctx *ctx, const char *prefix, const char *id,
    struct pv_err *err)
{
	const char *us = strchr(id, '_');

	return pv_arena_printf(ctx->arena, err, "%s%s", prefix,
	    us != NULL ? us + 1 : id);
}

static int
sandbox_verify(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    struct pv_err *err)
{
	(void)ctx;
	(void)acct;
	(void)err;
	return 0;
}

static int
sandbox_charge(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const struct pv_psp_charge *in, struct pv_psp_result *out,
    struct pv_err *err)
{
	const struct outcome *o = NULL;
	const char *base;
	size_t i;

	(void)acct;
	for (i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		if (strcmp(outcomes[i].token, in->token) == 0)
			o = &outcomes[i];
	if (o == NULL) {
		PV_ERR(err, PV_E_INVALID, "payment_method.token",
		    "No such payment method: the sandbox knows pm_card_visa, "
		    "pm_card_chargeDeclined, pm_card_authenticationRequired "
		    "and Stripe's other test tokens.");
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->status = o->status;
	out->amount_minor = in->amount_minor;
	out->currency = in->currency;
	out->message = o->message != NULL ? o->message : "";
	out->decline_code = o->decline_code;
	if ((out->reference =
	            reference(ctx, "pi_sandbox_", in->payment_id, err)) == NULL)
		return -1;
	if ((out->client_secret = pv_arena_printf(ctx->arena, err,
	         "%s_secret_sandbox", out->reference)) == NULL)
		return -1;
	if (o->status == PV_PSP_REQUIRES_ACTION) {
		base = ctx->cfg->public_url != NULL ? ctx->cfg->public_url : "";
		out->next_action = pv_arena_printf(ctx->arena, err,
		    "{\"type\":\"redirect_to_url\",\"redirect_to_url\":"
		    "{\"url\":\"%s/sandbox/authenticate/%s\",\"return_url\":"
		    "null}}",
		    base, in->payment_id);
		if (out->next_action == NULL)
			return -1;
	}
	return 0;
}

static int
sandbox_refund(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const struct pv_psp_refund *in, struct pv_psp_refund_result *out,
    struct pv_err *err)
{
	(void)acct;
	memset(out, 0, sizeof(*out));
	out->status = PV_PSP_REFUND_SUCCEEDED;
	out->message = "";
	out->reference = reference(ctx, "re_sandbox_", in->refund_id, err);
	return out->reference != NULL ? 0 : -1;
}

const struct pv_psp_ops pv_psp_sandbox = {
	.name = "sandbox",
	.verify = sandbox_verify,
	.charge = sandbox_charge,
	.retrieve = NULL,
	.refund = sandbox_refund,
};

/* The customer side: the authentication page and its webhook. */

#define PAYMENT_COLS \
	"p.public_id, p.status, p.reference, p.amount_minor, p.currency," \
	" o.public_id, m.public_id, m.business_name, p.merchant_id," \
	" p.return_url"

enum {
	S_PAY,
	S_STATUS,
	S_REF,
	S_AMOUNT,
	S_CURRENCY,
	S_ORDER,
	S_MERCHANT,
	S_MERCHANT_NAME,
	S_MERCHANT_INTERNAL,
	S_RETURN_URL
};

/* A sandbox payment by public id; PV_E_NOTFOUND if there is none. */
static int
load_payment(struct pv_ctx *ctx, const char *payment, PGresult **res,
    struct pv_err *err)
{
	const char *p[1] = { payment };

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT " PAYMENT_COLS " FROM payments p"
	               " JOIN orders o ON o.id = p.order_id"
	               " JOIN merchants m ON m.id = p.merchant_id"
	               " WHERE p.public_id = $1 AND p.provider = 'sandbox'"),
	        1, p, res, err) == -1)
		return -1;
	if (PQntuples(*res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "payment_id",
		    "No such sandbox payment.");
		return -1;
	}
	return 0;
}

static int
page(struct pv_ctx *ctx, struct pv_resp *resp, int status, const char *title,
    const char *html_body, struct pv_err *err)
{
	struct pv_buf b;
	const char *out;
	size_t len;

	pv_buf_init(&b, ctx->arena, 64 * 1024);
	pv_buf_puts(&b,
	    "<!doctype html><html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\"><meta name=\"viewport\" "
	    "content=\"width=device-width\"><title>");
	pv_buf_html(&b, title, strlen(title));
	pv_buf_puts(&b,
	    "</title><style>body{font:16px system-ui;max-width:"
	    "32em;margin:3em auto}button{font:inherit;padding:.5em 1em;"
	    "margin-right:1em}</style></head><body><h1>");
	pv_buf_html(&b, title, strlen(title));
	pv_buf_puts(&b, "</h1>");
	pv_buf_puts(&b, html_body);
	pv_buf_puts(&b, "</body></html>\n");
	if (pv_buf_finish(&b, &out, &len, err))
		return -1;
	pv_resp_set(resp, status, "text/html; charset=utf-8", out, len);
	return pv_resp_header(resp, "Cache-Control", "no-store", err);
}

/* GET: what is being paid, and the two answers a customer can give. */
static int
auth_page(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	char amount[PV_MONEY_FORMAT_SIZE];
	const char *id = req->route[0];
	PGresult *res;
	struct pv_buf b;
	const char *body;

	if (load_payment(ctx, id, &res, err) ||
	    pv_money_format(strtoll(PQgetvalue(res, 0, S_AMOUNT), NULL, 10),
	        PQgetvalue(res, 0, S_CURRENCY), amount, sizeof(amount), err))
		return -1;
	pv_buf_init(&b, ctx->arena, 16 * 1024);
	pv_buf_puts(&b, "<p>Sandbox 3-D Secure check for ");
	pv_buf_html(&b, amount, strlen(amount));
	pv_buf_putc(&b, ' ');
	pv_buf_puts(&b, PQgetvalue(res, 0, S_CURRENCY));
	pv_buf_puts(&b, " at ");
	pv_buf_html(&b, PQgetvalue(res, 0, S_MERCHANT_NAME),
	    strlen(PQgetvalue(res, 0, S_MERCHANT_NAME)));
	pv_buf_puts(&b, " (order ");
	pv_buf_html(&b, PQgetvalue(res, 0, S_ORDER),
	    strlen(PQgetvalue(res, 0, S_ORDER)));
	pv_buf_puts(&b, ").  No real bank is involved.</p>");
	if (strcmp(PQgetvalue(res, 0, S_STATUS), "requires_action") != 0) {
		pv_buf_puts(&b,
		    "<p>This payment no longer waits for "
		    "authentication.</p>");
	} else {
		pv_buf_puts(&b,
		    "<form method=\"post\"><button name=\"outcome\" "
		    "value=\"succeeded\">Complete authentication</button>"
		    "<button name=\"outcome\" value=\"failed\">Fail "
		    "authentication</button></form>");
	}
	if (pv_buf_finish(&b, &body, NULL, err))
		return -1;
	return page(ctx, resp, 200, "Authenticate payment", body, err);
}

/* POST outcome=succeeded|failed: queue the provider's webhook. */
static int
auth_answer(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	static const char *const answers[] = { "succeeded", "failed", NULL };
	const char *id = req->route[0], *outcome = NULL, *payload, *key;
	struct pv_kv *kv;
	size_t n, i, k;
	PGresult *res;

	if (pv_http_parse_form(ctx->arena, req->body, req->bodylen, 8, &kv, &n,
	        err))
		return -1;
	for (i = 0; i < n; i++)
		if (strcmp(kv[i].name, "outcome") == 0)
			outcome = kv[i].value;
	if (outcome == NULL ||
	    pv_valid_enum(outcome, answers, &k, "outcome", err) ||
	    load_payment(ctx, id, &res, err))
		return -1;
	if (strcmp(PQgetvalue(res, 0, S_STATUS), "requires_action") != 0) {
		PV_ERR(err, PV_E_CONFLICT, "payment_id",
		    "This payment no longer waits for authentication.");
		return -1;
	}
	if ((payload = pv_arena_printf(ctx->arena, err,
	         "{\"payment_id\":\"%s\",\"outcome\":\"%s\"}", id, outcome)) ==
	        NULL ||
	    (key = pv_arena_printf(ctx->arena, err, "sandbox.webhook:%s",
	         id)) == NULL ||
	    pv_job_enqueue(ctx, "sandbox.webhook", payload, key, 0, err))
		return -1;
	if (!PQgetisnull(res, 0, S_RETURN_URL)) {
		pv_resp_set(resp, 303, "text/plain", "", 0);
		return pv_resp_header(resp, "Location",
		    PQgetvalue(res, 0, S_RETURN_URL), err);
	}
	return page(ctx, resp, 200, "Authentication sent",
	    strcmp(outcome, "succeeded") == 0 ?
	        "<p>Authentication completed.  The merchant is told in a "
	        "moment; "
	        "you may close this page.</p>" :
	        "<p>Authentication failed.  The payment will be declined.</p>",
	    err);
}

static const struct pv_route sandbox_routes[] = {
	{ PV_GET, "/sandbox/authenticate/:payment", auth_page, 0 },
	{ PV_POST, "/sandbox/authenticate/:payment", auth_answer, 0 },
};

int
pv_sandbox_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	return pv_route_dispatch(ctx, sandbox_routes,
	    sizeof(sandbox_routes) / sizeof(sandbox_routes[0]), req, resp, err);
}

/* The Stripe-shaped event for a payment's authentication outcome. */
static int
event_body(struct pv_ctx *ctx, const PGresult *res, int ok, const char **out,
    size_t *len, struct pv_err *err)
{
	struct json_object *ev, *data, *pi, *meta, *lpe;
	char cur[PV_MONEY_CURRENCY_SIZE];
	const char *pay = PQgetvalue(res, 0, S_PAY);

	if (pv_money_currency_to_lower(PQgetvalue(res, 0, S_CURRENCY), cur,
	        err))
		return -1;
	ev = pv_json_new_obj(ctx->arena, err);
	data = pv_json_new_obj(ctx->arena, err);
	pi = pv_json_new_obj(ctx->arena, err);
	meta = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(ev, "id",
	    pv_arena_printf(ctx->arena, err, "evt_sandbox_%s_%s",
	        strchr(pay, '_') + 1, ok ? "ok" : "fail"),
	    err);
	pv_json_set_str(ev, "object", "event", err);
	pv_json_set_str(ev, "api_version", "2026-07-29.dahlia", err);
	pv_json_set_int(ev, "created", (int64_t)time(NULL), err);
	pv_json_set_str(ev, "type",
	    ok ? "payment_intent.succeeded" : "payment_intent.payment_failed",
	    err);
	pv_json_set_bool(ev, "livemode", false, err);
	pv_json_set_str(pi, "id", PQgetvalue(res, 0, S_REF), err);
	pv_json_set_str(pi, "object", "payment_intent", err);
	pv_json_set_int(pi, "amount",
	    strtoll(PQgetvalue(res, 0, S_AMOUNT), NULL, 10), err);
	pv_json_set_str(pi, "currency", cur, err);
	pv_json_set_str(pi, "status",
	    ok ? "succeeded" : "requires_payment_method", err);
	pv_json_set_str(meta, "order_id", PQgetvalue(res, 0, S_ORDER), err);
	pv_json_set_str(meta, "payment_id", pay, err);
	pv_json_set(pi, "metadata", meta, err);
	if (!ok) {
		lpe = pv_json_new_obj(ctx->arena, err);
		pv_json_set_str(lpe, "type", "card_error", err);
		pv_json_set_str(lpe, "code", "authentication_required", err);
		pv_json_set_str(lpe, "decline_code", "authentication_required",
		    err);
		pv_json_set_str(lpe, "message",
		    "The customer failed authentication.", err);
		pv_json_set(pi, "last_payment_error", lpe, err);
	}
	pv_json_set(data, "object", pi, err);
	pv_json_set(ev, "data", data, err);
	if (err->code != PV_OK)
		return -1;
	return pv_json_to_str(ctx->arena, ev, out, len, err);
}

int
pv_sandbox_webhook_job(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err)
{
	struct pv_upstream_hdr hdrs[2];
	struct pv_upstream_req rq;
	struct pv_upstream_resp rs;
	struct pv_psp_account acct;
	const char *pay, *outcome, *body, *sig, *url, *base;
	size_t len;
	PGresult *res;

	if (pv_json_str(job->args, "payment_id", 1, 64, &pay, err) ||
	    pv_json_str(job->args, "outcome", 1, 16, &outcome, err))
		return PV_JOB_PERMANENT;
	if (load_payment(ctx, pay, &res, err))
		return err->code == PV_E_NOTFOUND ? PV_JOB_PERMANENT : -1;
	base = ctx->cfg->public_url;
	if (base == NULL || base[0] == '\0') {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "PIVOTA_PUBLIC_URL is not set: nowhere to send the sandbox "
		    "webhook");
		return PV_JOB_PERMANENT;
	}
	if (pv_payment_account(ctx, PQgetvalue(res, 0, S_MERCHANT_INTERNAL),
	        &acct, err) ||
	    event_body(ctx, res, strcmp(outcome, "succeeded") == 0, &body, &len,
	        err) ||
	    pv_sig_stripe_sign(ctx->arena,
	        acct.webhook_secret != NULL ? acct.webhook_secret : "",
	        (int64_t)time(NULL), body, len, &sig, err) ||
	    (url = pv_arena_printf(ctx->arena, err, "%s/webhooks/stripe/%s",
	         base, PQgetvalue(res, 0, S_MERCHANT))) == NULL)
		return -1;
	hdrs[0].name = "Content-Type";
	hdrs[0].value = "application/json; charset=utf-8";
	hdrs[1].name = "Stripe-Signature";
	hdrs[1].value = sig;
	memset(&rq, 0, sizeof(rq));
	rq.method = PV_UPSTREAM_POST;
	rq.url = url;
	rq.hdrs = hdrs;
	rq.nhdrs = 2;
	rq.body = body;
	rq.bodylen = len;
	rq.max_attempts = 1; /* the job retries, with a fresh signature */
	if (pv_upstream_do(ctx->up, ctx->arena, &rq, &rs, err))
		return -1;
	if (rs.status < 200 || rs.status > 299) {
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "the webhook endpoint answered %ld", rs.status);
		return -1;
	}
	return 0;
}
