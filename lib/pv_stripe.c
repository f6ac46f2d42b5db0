/*
 * The Stripe adapter: pv_psp_stripe and its webhook.  One function,
 * request(), makes every request (key, version, idempotency, retries) and
 * parses the answer; refusal() turns the answers that are not outcomes
 * into a pv_err.  A decline is an outcome, not an error: Stripe answers
 * 402 with the PaymentIntent inside the error, and charge() reads it
 * as it reads a 200.
 */
#include <ctype.h>
#include <string.h>

#include <json-c/json.h>

#include "pv_arena.h"
#include "pv_buf.h"
#include "pv_config.h"
#include "pv_json.h"
#include "pv_psp.h"
#include "pv_sig.h"
#include "pv_stripe.h"
#include "pv_upstream.h"

#define FORM_MAX 8192 /* a charge's form body is well under 1 KiB */
#define ID_MAX   255  /* longest Stripe id we put in a path */

/* One Stripe request and what came back. */
struct call {
	enum pv_upstream_method method; /* GET or POST */
	const char *path;               /* e.g. "/v1/payment_intents" */
	const char *form;               /* POST body, or NULL */
	size_t formlen;                 /* bytes in form */
	const char *idem_key;           /* Idempotency-Key, or NULL */
	long status;                    /* HTTP status of the answer */
	struct json_object *root;       /* its parsed body, in the arena */
};

/* The member key of o if o is an object holding it (non-null). */
static struct json_object *
get(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

static const char *
get_str(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	return v != NULL && json_object_is_type(v, json_type_string) ?
	    json_object_get_string(v) :
	    NULL;
}

static int64_t
get_int(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	return v != NULL && json_object_is_type(v, json_type_int) ?
	    json_object_get_int64(v) :
	    0;
}

/* s, or "" for NULL: result strings are never NULL unless documented. */
static const char *
nz(const char *s)
{
	return s != NULL ? s : "";
}

/* Stripe's lower-case currency in upper case, as pv_psp reports it. */
static const char *
upper(struct pv_ctx *ctx, const char *s, struct pv_err *err)
{
	char *u;
	size_t i;

	if (s == NULL)
		return "";
	if ((u = pv_arena_strdup(ctx->arena, s, err)) == NULL)
		return NULL;
	for (i = 0; u[i] != '\0'; i++)
		u[i] = (char)toupper((unsigned char)u[i]);
	return u;
}

/* Stripe ids go into paths, so only the characters ids are made of. */
static int
check_id(const char *id, const char *field, struct pv_err *err)
{
	size_t len = id != NULL ? strlen(id) : 0;

	if (len == 0 || len > ID_MAX ||
	    strspn(id,
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	        "0123456789_") != len) {
		PV_ERR(err, PV_E_INVALID, field, "not a Stripe id");
		return -1;
	}
	return 0;
}

static const char *
base_url(struct pv_ctx *ctx, const struct pv_psp_account *acct)
{
	if (acct->api_base != NULL && *acct->api_base != '\0')
		return acct->api_base;
	if (ctx->cfg != NULL && ctx->cfg->stripe_api_base != NULL &&
	    *ctx->cfg->stripe_api_base != '\0')
		return ctx->cfg->stripe_api_base;
	return PV_STRIPE_API_BASE;
}

/*
 * Sends c with the merchant's key and parses the JSON answer into
 * c->root, whatever its status.  A POST always carries its
 * Idempotency-Key, so both methods are retry-safe: pv_upstream retries
 * connection failures, timeouts, 409 and 5xx with the same key, and
 * Stripe-Should-Retry overrides that.  -1 when no answer arrived (after
 * the retries) or a 2xx is not JSON; an error status without JSON
 * leaves c->root NULL for refusal() to map by status alone.
 */
static int
request(struct pv_ctx *ctx, const struct pv_psp_account *acct, struct call *c,
    struct pv_err *err)
{
	struct pv_upstream_hdr hdrs[5];
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err perr;
	size_t n = 0;

	if (acct->secret_key == NULL || *acct->secret_key == '\0') {
		PV_ERR(err, PV_E_AUTH, NULL,
		    "no Stripe secret key is configured for this merchant");
		return -1;
	}
	hdrs[n].name = "Authorization";
	if ((hdrs[n++].value = pv_arena_printf(ctx->arena, err, "Bearer %s",
	         acct->secret_key)) == NULL)
		return -1;
	hdrs[n].name = "Stripe-Version";
	hdrs[n++].value = PV_STRIPE_API_VERSION;
	hdrs[n].name = "Accept";
	hdrs[n++].value = "application/json";
	if (c->method == PV_UPSTREAM_POST) {
		hdrs[n].name = "Content-Type";
		hdrs[n++].value = "application/x-www-form-urlencoded";
	}
	if (c->idem_key != NULL) {
		hdrs[n].name = "Idempotency-Key";
		hdrs[n++].value = c->idem_key;
	}
	memset(&req, 0, sizeof(req));
	req.method = c->method;
	if ((req.url = pv_upstream_url(ctx->arena, base_url(ctx, acct), c->path,
	         err)) == NULL)
		return -1;
	req.hdrs = hdrs;
	req.nhdrs = n;
	req.body = c->form;
	req.bodylen = c->formlen;
	req.retry_safe = c->method == PV_UPSTREAM_GET || c->idem_key != NULL;
	req.retry_fn = pv_upstream_stripe_retry;
	if (pv_upstream_do(ctx->up, ctx->arena, &req, &resp, err) == -1)
		return -1;
	c->status = resp.status;
	memset(&perr, 0, sizeof(perr));
	if (pv_json_parse(ctx->arena, resp.body, resp.bodylen, &c->root,
	        &perr) == 0)
		return 0;
	c->root = NULL;
	if (perr.code == PV_E_NOMEM || perr.code == PV_E_TOOBIG) {
		*err = perr;
		return -1;
	}
	/* A proxy's HTML error page still has a status worth mapping. */
	if (c->status < 200 || c->status > 299)
		return 0;
	PV_ERR(err, PV_E_UPSTREAM, NULL,
	    "Stripe answered HTTP %ld without a JSON object", c->status);
	return -1;
}

/*
 * An answer that is not an outcome.  The merchant's credentials are
 * PV_E_AUTH / PV_E_FORBIDDEN; an unknown payment method is the agent's
 * input; everything else is the provider's refusal, its code kept as
 * the reason so the caller can tell amount_too_large from rate_limit.
 * Always returns -1.
 */
static int
refusal(const struct call *c, struct pv_err *err)
{
	struct json_object *e = get(c->root, "error");
	const char *code = get_str(e, "code"), *param = get_str(e, "param");
	const char *msg = nz(get_str(e, "message"));

	if (c->status == 401) {
		PV_ERR(err, PV_E_AUTH, NULL,
		    "Stripe refused the secret key (HTTP 401)");
		return -1;
	}
	if (c->status == 403) {
		PV_ERR(err, PV_E_FORBIDDEN, NULL,
		    "the Stripe key lacks a permission this needs (HTTP 403)");
		return -1;
	}
	if (c->status == 400 && code != NULL && param != NULL &&
	    strcmp(code, "resource_missing") == 0 &&
	    strcmp(param, "payment_method") == 0) {
		PV_ERR(err, PV_E_INVALID, "payment_method.token",
		    "Stripe knows no such payment method");
		return -1;
	}
	if (c->status >= 500 || c->status < 400) {
		PV_ERR(err, PV_E_UPSTREAM, NULL, "Stripe answered HTTP %ld",
		    c->status);
		return -1;
	}
	if (code == NULL)
		code = nz(get_str(e, "type"));
	PV_ERR(err, PV_E_UPSTREAM, NULL,
	    "Stripe refused (HTTP %ld%s%s): %.160s", c->status,
	    *code != '\0' ? ", " : "", code, msg);
	if (*code != '\0')
		pv_err_reason(err, code);
	return -1;
}

/* The decline code Stripe gives a failed attempt: decline_code, else code. */
static const char *
decline_of(struct json_object *e)
{
	const char *d = get_str(e, "decline_code");

	return d != NULL ? d : get_str(e, "code");
}

/*
 * Maps a PaymentIntent's status.  requires_capture is money authorised
 * on a manual-capture intent: as good as paid for an order.  An intent
 * back in requires_payment_method, or canceled, has failed.  Returns 0
 * and sets *s, or -1 for a status this adapter does not know.
 */
static int
map_status(const char *status, enum pv_psp_status *s)
{
	static const struct {
		const char *name;
		enum pv_psp_status status;
	} map[] = {
		{ "succeeded", PV_PSP_SUCCEEDED },
		{ "requires_capture", PV_PSP_SUCCEEDED },
		{ "requires_action", PV_PSP_REQUIRES_ACTION },
		{ "processing", PV_PSP_PROCESSING },
		{ "requires_payment_method", PV_PSP_FAILED },
		{ "requires_confirmation", PV_PSP_FAILED },
		{ "canceled", PV_PSP_FAILED },
	};
	size_t i;

	for (i = 0; status != NULL && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].name, status) == 0) {
			*s = map[i].status;
			return 0;
		}
	return -1;
}

/* Fills out from a PaymentIntent object (a 200 or a 402's copy). */
static int
read_intent(struct pv_ctx *ctx, struct json_object *pi,
    struct pv_psp_result *out, struct pv_err *err)
{
	struct json_object *na = get(pi, "next_action");
	struct json_object *lpe = get(pi, "last_payment_error");
	const char *id = get_str(pi, "id"), *status = get_str(pi, "status");
	size_t len;

	memset(out, 0, sizeof(*out));
	if (id == NULL || map_status(status, &out->status) == -1) {
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "Stripe sent a PaymentIntent without an id or a known "
		    "status");
		return -1;
	}
	out->reference = id;
	out->client_secret = nz(get_str(pi, "client_secret"));
	out->amount_minor = get_int(pi, "amount");
	out->message = nz(get_str(lpe, "message"));
	if ((out->currency = upper(ctx, get_str(pi, "currency"), err)) == NULL)
		return -1;
	if (out->status == PV_PSP_FAILED)
		out->decline_code = lpe != NULL ? decline_of(lpe) : status;
	if (out->status == PV_PSP_REQUIRES_ACTION && na != NULL &&
	    pv_json_to_str(ctx->arena, na, &out->next_action, &len, err) == -1)
		return -1;
	return 0;
}

/*
 * A 402 card_error: the attempt failed and Stripe says why.  The
 * intent in error.payment_intent is the reference the caller keeps.
 */
static int
read_decline(struct pv_ctx *ctx, const struct call *c,
    struct pv_psp_result *out, struct pv_err *err)
{
	struct json_object *e = get(c->root, "error");
	struct json_object *pi = get(e, "payment_intent");

	if (pi == NULL)
		return refusal(c, err);
	if (read_intent(ctx, pi, out, err) == -1)
		return -1;
	out->status = PV_PSP_FAILED;
	out->decline_code = decline_of(e);
	out->message = nz(get_str(e, "message"));
	return 0;
}

static int
stripe_verify(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    struct pv_err *err)
{
	struct call c = { .method = PV_UPSTREAM_GET, .path = "/v1/balance" };
	const char *obj;

	if (request(ctx, acct, &c, err) == -1)
		return -1;
	if (c.status != 200)
		return refusal(&c, err);
	if ((obj = get_str(c.root, "object")) == NULL ||
	    strcmp(obj, "balance") != 0) {
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "Stripe answered the balance read with something else");
		return -1;
	}
	return 0;
}

/* Three ASCII letters, lower-cased into cur[4]. */
static int
lower_currency(const char *in, char cur[4], struct pv_err *err)
{
	size_t i;

	for (i = 0; i < 3; i++) {
		if (in == NULL || !isalpha((unsigned char)in[i])) {
			PV_ERR(err, PV_E_INVALID, "currency",
			    "currency must be a three-letter ISO 4217 code");
			return -1;
		}
		cur[i] = (char)tolower((unsigned char)in[i]);
	}
	cur[3] = '\0';
	if (in[3] != '\0') {
		PV_ERR(err, PV_E_INVALID, "currency",
		    "currency must be a three-letter ISO 4217 code");
		return -1;
	}
	return 0;
}

/*
 * The create-and-confirm form.  Redirect-based methods need a page to
 * come back to; without one we tell Stripe not to offer them, or
 * confirming would fail with a 400 about return_url.
 */
static int
charge_form(struct pv_ctx *ctx, const struct pv_psp_charge *in, struct call *c,
    struct pv_err *err)
{
	struct pv_buf b;
	char cur[4];

	if (lower_currency(in->currency, cur, err) == -1)
		return -1;
	pv_buf_init(&b, ctx->arena, FORM_MAX);
	pv_upstream_form_add_int64(&b, "amount", in->amount_minor);
	pv_upstream_form_add(&b, "currency", cur);
	pv_upstream_form_add(&b, "payment_method", in->token);
	pv_upstream_form_add(&b, "confirm", "true");
	pv_upstream_form_add(&b, "automatic_payment_methods[enabled]", "true");
	if (in->return_url != NULL && *in->return_url != '\0')
		pv_upstream_form_add(&b, "return_url", in->return_url);
	else
		pv_upstream_form_add(&b,
		    "automatic_payment_methods[allow_redirects]", "never");
	pv_upstream_form_add(&b, "metadata[order_id]", nz(in->order_id));
	pv_upstream_form_add(&b, "metadata[payment_id]", in->payment_id);
	if (in->customer_email != NULL && *in->customer_email != '\0')
		pv_upstream_form_add(&b, "receipt_email", in->customer_email);
	return pv_buf_finish(&b, &c->form, &c->formlen, err);
}

static int
stripe_charge(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const struct pv_psp_charge *in, struct pv_psp_result *out,
    struct pv_err *err)
{
	struct call c = { .method = PV_UPSTREAM_POST,
		.path = "/v1/payment_intents" };
	const char *type;

	if (in->token == NULL || *in->token == '\0') {
		PV_ERR(err, PV_E_INVALID, "payment_method.token",
		    "a payment-method token is required");
		return -1;
	}
	if (charge_form(ctx, in, &c, err) == -1 ||
	    (c.idem_key = pv_psp_idem_key(ctx, "charge", in->payment_id,
	         err)) == NULL ||
	    request(ctx, acct, &c, err) == -1)
		return -1;
	if (c.status == 200)
		return read_intent(ctx, c.root, out, err);
	type = get_str(get(c.root, "error"), "type");
	if (c.status == 402 && type != NULL && strcmp(type, "card_error") == 0)
		return read_decline(ctx, &c, out, err);
	return refusal(&c, err);
}

static int
stripe_retrieve(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const char *reference, struct pv_psp_result *out, struct pv_err *err)
{
	struct call c = { .method = PV_UPSTREAM_GET };

	if (check_id(reference, "reference", err) == -1 ||
	    (c.path = pv_arena_printf(ctx->arena, err, "/v1/payment_intents/%s",
	         reference)) == NULL ||
	    request(ctx, acct, &c, err) == -1)
		return -1;
	if (c.status != 200)
		return refusal(&c, err);
	return read_intent(ctx, c.root, out, err);
}

/* pending and requires_action finish later; canceled never will. */
static int
map_refund(const char *status, enum pv_psp_refund_status *s)
{
	if (status == NULL)
		return -1;
	if (strcmp(status, "succeeded") == 0)
		*s = PV_PSP_REFUND_SUCCEEDED;
	else if (strcmp(status, "pending") == 0 ||
	    strcmp(status, "requires_action") == 0)
		*s = PV_PSP_REFUND_PENDING;
	else if (strcmp(status, "failed") == 0 ||
	    strcmp(status, "canceled") == 0)
		*s = PV_PSP_REFUND_FAILED;
	else
		return -1;
	return 0;
}

static int
refund_form(struct pv_ctx *ctx, const struct pv_psp_refund *in, struct call *c,
    struct pv_err *err)
{
	struct pv_buf b;

	if (check_id(in->reference, "reference", err) == -1)
		return -1;
	pv_buf_init(&b, ctx->arena, FORM_MAX);
	pv_upstream_form_add(&b, "payment_intent", in->reference);
	pv_upstream_form_add_int64(&b, "amount", in->amount_minor);
	pv_upstream_form_add(&b, "reason", pv_psp_stripe_reason(in->reason));
	pv_upstream_form_add(&b, "metadata[refund_id]", in->refund_id);
	pv_upstream_form_add(&b, "metadata[order_id]", nz(in->order_id));
	return pv_buf_finish(&b, &c->form, &c->formlen, err);
}

static int
stripe_refund(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const struct pv_psp_refund *in, struct pv_psp_refund_result *out,
    struct pv_err *err)
{
	struct call c = { .method = PV_UPSTREAM_POST, .path = "/v1/refunds" };

	if (refund_form(ctx, in, &c, err) == -1 ||
	    (c.idem_key = pv_psp_idem_key(ctx, "refund", in->refund_id, err)) ==
	        NULL ||
	    request(ctx, acct, &c, err) == -1)
		return -1;
	if (c.status != 200)
		return refusal(&c, err);
	memset(out, 0, sizeof(*out));
	if ((out->reference = get_str(c.root, "id")) == NULL ||
	    map_refund(get_str(c.root, "status"), &out->status) == -1) {
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "Stripe sent a refund without an id or a known status");
		return -1;
	}
	out->message = nz(get_str(c.root, "failure_reason"));
	return 0;
}

/* Does the event type start with prefix? */
static int
is(const char *type, const char *prefix)
{
	return strncmp(type, prefix, strlen(prefix)) == 0;
}

/*
 * A payment_intent.* event.  An intent that has not been tried yet
 * (payment_intent.created, requires_payment_method without an error)
 * says nothing about the order, so it is PV_PSP_EV_OTHER rather than
 * a failure.
 */
static int
payment_event(struct pv_ctx *ctx, struct json_object *obj,
    struct pv_psp_event *ev, struct pv_err *err)
{
	struct json_object *lpe = get(obj, "last_payment_error");
	const char *status = get_str(obj, "status");

	if ((ev->reference = get_str(obj, "id")) == NULL)
		return -1;
	if (map_status(status, &ev->status) == -1)
		return -1;
	if (ev->status == PV_PSP_FAILED && strcmp(status, "canceled") != 0 &&
	    lpe == NULL) {
		ev->kind = PV_PSP_EV_OTHER;
		return 0;
	}
	ev->kind = PV_PSP_EV_PAYMENT;
	ev->order_id = nz(get_str(get(obj, "metadata"), "order_id"));
	ev->amount_minor = get_int(obj, "amount");
	if (ev->status == PV_PSP_FAILED)
		ev->decline_code = nz(lpe != NULL ? decline_of(lpe) : status);
	ev->currency = upper(ctx, get_str(obj, "currency"), err);
	return ev->currency != NULL ? 0 : -1;
}

/*
 * A refund event: the object is a refund, or for charge.refunded the
 * charge, which (API versions since 2022-11) no longer lists its
 * refunds; then only the charge and the refunded total are known.
 */
static int
refund_event(struct pv_ctx *ctx, struct json_object *obj,
    struct pv_psp_event *ev, struct pv_err *err)
{
	const char *kind = nz(get_str(obj, "object"));

	ev->kind = PV_PSP_EV_REFUND;
	ev->reference = nz(get_str(obj, "payment_intent"));
	ev->order_id = nz(get_str(get(obj, "metadata"), "order_id"));
	if (strcmp(kind, "refund") == 0) {
		ev->refund_reference = get_str(obj, "id");
		ev->refund_id = nz(get_str(get(obj, "metadata"), "refund_id"));
		ev->amount_minor = get_int(obj, "amount");
		if (ev->refund_reference == NULL ||
		    map_refund(get_str(obj, "status"), &ev->refund_status) ==
		        -1)
			return -1;
	} else if (strcmp(kind, "charge") == 0) {
		ev->refund_reference = "";
		ev->refund_id = "";
		ev->refund_status = PV_PSP_REFUND_SUCCEEDED;
		ev->amount_minor = get_int(obj, "amount_refunded");
	} else
		return -1;
	ev->currency = upper(ctx, get_str(obj, "currency"), err);
	return ev->currency != NULL ? 0 : -1;
}

/* Reads a verified event body into ev. */
static int
parse_event(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_psp_event *ev, struct pv_err *err)
{
	struct json_object *root, *obj;
	int rc = 0;

	if (pv_json_parse(ctx->arena, req->body, req->bodylen, &root, err) ==
	    -1)
		return -1;
	memset(ev, 0, sizeof(*ev));
	ev->id = get_str(root, "id");
	ev->type = get_str(root, "type");
	obj = get(get(root, "data"), "object");
	if (ev->id == NULL || ev->type == NULL || obj == NULL ||
	    !json_object_is_type(obj, json_type_object)) {
		PV_ERR(err, PV_E_INVALID, NULL,
		    "not a Stripe event: id, type or data.object is missing");
		return -1;
	}
	ev->created = get_int(root, "created");
	ev->kind = PV_PSP_EV_OTHER;
	ev->reference = ev->order_id = ev->decline_code = "";
	ev->refund_reference = ev->refund_id = ev->currency = "";
	if (is(ev->type, "payment_intent."))
		rc = payment_event(ctx, obj, ev, err);
	else if (strcmp(ev->type, "charge.refunded") == 0 ||
	    strcmp(ev->type, "charge.refund.updated") == 0 ||
	    strcmp(ev->type, "refund.created") == 0 ||
	    strcmp(ev->type, "refund.updated") == 0 ||
	    strcmp(ev->type, "refund.failed") == 0)
		rc = refund_event(ctx, obj, ev, err);
	if (rc == -1 && err->code == PV_OK)
		PV_ERR(err, PV_E_INVALID, NULL,
		    "Stripe event %.64s has a malformed %.64s object", ev->id,
		    ev->type);
	return rc;
}

/*
 * The contract is in pv_stripe.h.  The body is parsed only once the
 * signature holds, and one event makes one arena entry.
 */
int
pv_stripe_webhook(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const struct pv_req *req, struct pv_psp_event **evs, size_t *n,
    struct pv_err *err)
{
	const char *secrets[2] = { NULL, NULL };
	const char *sig;
	struct pv_psp_event *ev;

	*evs = NULL;
	*n = 0;
	if (acct->webhook_secret == NULL || *acct->webhook_secret == '\0') {
		PV_ERR(err, PV_E_AUTH, NULL,
		    "no Stripe webhook secret is configured for this merchant");
		return -1;
	}
	if ((sig = pv_req_header(req, "stripe-signature")) == NULL) {
		PV_ERR(err, PV_E_AUTH, NULL, "no Stripe-Signature header");
		return -1;
	}
	secrets[0] = acct->webhook_secret;
	if (pv_sig_stripe_verify(sig, secrets, req->body, req->bodylen,
	        (int64_t)ctx->now, PV_SIG_STRIPE_TOLERANCE, err) == -1)
		return -1;
	if ((ev = pv_arena_alloc(ctx->arena, sizeof(*ev), err)) == NULL ||
	    parse_event(ctx, req, ev, err) == -1)
		return -1;
	*evs = ev;
	*n = 1;
	return 0;
}

const struct pv_psp_ops pv_psp_stripe = {
	.name = "stripe",
	.verify = stripe_verify,
	.charge = stripe_charge,
	.retrieve = stripe_retrieve,
	.refund = stripe_refund,
	.webhook = pv_stripe_webhook,
	.webhook_ack = "{\"received\":true}",
	.webhook_ack_type = "application/json",
};
