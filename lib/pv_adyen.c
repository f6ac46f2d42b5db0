/*
 * The Adyen Checkout adapter: charges (POST /payments), refunds (POST
 * /payments/{pspReference}/refunds), a credential check (POST
 * /paymentMethods) and standard notification webhooks, all on the
 * merchant's own API key and merchantAccount.  One function, call(),
 * sends every request and turns each way Adyen can say no into a
 * pv_err; the operations above it build bodies and read answers.
 * external-apis.md 3 is the contract; docs/adyen.md says what we send.
 *
 * Adyen has no read of a payment, so retrieve is NULL: a charge whose
 * outcome we did not learn is settled by retrying it with the same
 * Idempotency-Key (Adyen replays the first answer) or by the
 * AUTHORISATION webhook.  Refunds are always pending here, since Adyen
 * only ever answers "received" and confirms by webhook.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "pv_adyen.h"
#include "pv_arena.h"
#include "pv_config.h"
#include "pv_json.h"
#include "pv_psp.h"
#include "pv_sig.h"
#include "pv_upstream.h"

#define RETURN_PATH "/payments/return"
#define ITEMS_MAX   100 /* Adyen batches far fewer; a cap bounds the work */
#define FIELD_MAX   256 /* longest notification string field we accept */

/* A test card the token "adyen_test_<name>" stands for (3.6). */
struct test_card {
	const char *name;   /* after "adyen_test_" */
	const char *number; /* sent as encryptedCardNumber "test_<number>" */
	const char *holder; /* holderName: Adyen's outcome switch, or NULL */
};

static const struct test_card test_cards[] = {
	{ "APPROVED", "4111111145551142", "APPROVED" },
	{ "DECLINED", "4111111145551142", "DECLINED" },
	{ "REFERRAL", "4111111145551142", "REFERRAL" },
	{ "ERROR", "4111111145551142", "ERROR" },
	{ "BLOCK_CARD", "4111111145551142", "BLOCK_CARD" },
	{ "CARD_EXPIRED", "4111111145551142", "CARD_EXPIRED" },
	{ "INVALID_AMOUNT", "4111111145551142", "INVALID_AMOUNT" },
	{ "NOT_ENOUGH_BALANCE", "4111111145551142", "NOT_ENOUGH_BALANCE" },
	{ "PENDING", "4111111145551142", "PENDING" },
	{ "UNKNOWN", "4111111145551142", "UNKNOWN" },
	{ "CAPTURE_FAILED", "4111111145551142", "capture failed" },
	{ "REFUND_FAILED", "4111111145551142", "refund failed" },
	/* Adyen's 3-D Secure 2 test card: the shopper must authenticate. */
	{ "3DS2", "4212345678901237", NULL },
};

/* How a resultCode maps onto our statuses. */
struct result_map {
	const char *code;
	enum pv_psp_status status;
};

static const struct result_map results[] = {
	{ "Authorised", PV_PSP_SUCCEEDED },
	{ "Refused", PV_PSP_FAILED },
	{ "Error", PV_PSP_FAILED },
	{ "Cancelled", PV_PSP_FAILED },
	{ "RedirectShopper", PV_PSP_REQUIRES_ACTION },
	{ "IdentifyShopper", PV_PSP_REQUIRES_ACTION },
	{ "ChallengeShopper", PV_PSP_REQUIRES_ACTION },
	{ "PresentToShopper", PV_PSP_REQUIRES_ACTION },
	{ "Pending", PV_PSP_PROCESSING },
	{ "Received", PV_PSP_PROCESSING },
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

static int
malformed(struct pv_err *err, const char *what)
{
	PV_ERR(err, PV_E_UPSTREAM, NULL, "Adyen sent an answer without %s",
	    what);
	return -1;
}

/* Does s hold only letters and digits (and is it 1..max long)? */
static int
alnum(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]))
			return 0;
	return i > 0 && i <= max;
}

const char *
pv_adyen_live_base(struct pv_arena *a, const char *prefix, struct pv_err *err)
{
	size_t i;

	for (i = 0; prefix != NULL && prefix[i] != '\0'; i++)
		if (!isalnum((unsigned char)prefix[i]) && prefix[i] != '-')
			break;
	if (prefix == NULL || i == 0 || prefix[i] != '\0' ||
	    i > PV_ADYEN_PREFIX_MAX) {
		PV_ERR(err, PV_E_INVALID, "prefix",
		    "an Adyen live prefix holds only letters, digits and '-'");
		return NULL;
	}
	return pv_arena_printf(a, err,
	    "https://%s-checkout-live.adyenpayments.com/"
	    "checkout/" PV_ADYEN_API_VERSION,
	    prefix);
}

const char *
pv_adyen_decline_code(struct pv_arena *a, const char *reason,
    const char *fallback, struct pv_err *err)
{
	const char *s = reason != NULL && *reason != '\0' ? reason : fallback;
	char *out;
	size_t i, n = 0;

	if (s == NULL)
		s = "";
	if ((out = pv_arena_strdup(a, s, err)) == NULL)
		return NULL;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (isalnum(c))
			out[n++] = (char)tolower(c);
		else if (n > 0 && out[n - 1] != '_')
			out[n++] = '_';
	}
	while (n > 0 && out[n - 1] == '_')
		n--;
	out[n] = '\0';
	return out;
}

/* The merchant's key and account must be there before anything is sent. */
static int
need_account(const struct pv_psp_account *acct, struct pv_err *err)
{
	if (acct->secret_key == NULL || *acct->secret_key == '\0') {
		PV_ERR(err, PV_E_INVALID, "secret_key",
		    "the Adyen account has no API key");
		return -1;
	}
	if (acct->merchant_account == NULL || *acct->merchant_account == '\0') {
		PV_ERR(err, PV_E_INVALID, "merchant_account",
		    "the Adyen account has no merchantAccount");
		return -1;
	}
	return 0;
}

/* The merchant's base, the configured base, or the test platform. */
static const char *
endpoint(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const char *path, struct pv_err *err)
{
	const char *base = acct->api_base;

	if (base == NULL || *base == '\0')
		base = ctx->cfg->adyen_api_base;
	if (base == NULL || *base == '\0')
		base = PV_ADYEN_TEST_BASE;
	return pv_upstream_url(ctx->arena, base, path, err);
}

/*
 * Adyen's ServiceError for a non-2xx answer.  A 4xx about the card
 * number is the agent's token; other 4xx name Adyen's errorCode in
 * err->reason ("adyen_14_030") so support can look it up.
 */
static int
status_error(struct pv_ctx *ctx, const struct pv_upstream_resp *resp,
    struct pv_err *err)
{
	struct json_object *root = NULL;
	struct pv_err perr = { 0 };
	const char *code = NULL, *msg = NULL;
	char reason[sizeof(err->reason)];

	if (pv_json_parse(ctx->arena, resp->body, resp->bodylen, &root,
	        &perr) == 0) {
		code = get_str(root, "errorCode");
		msg = get_str(root, "message");
	}
	if (msg == NULL)
		msg = "(no message)";
	if (resp->status == 401) {
		PV_ERR(err, PV_E_AUTH, NULL,
		    "Adyen refused the API key (HTTP 401)");
		return -1;
	}
	if (resp->status == 403) {
		PV_ERR(err, PV_E_FORBIDDEN, NULL,
		    "the Adyen API key may not use this merchantAccount "
		    "(HTTP 403: %.120s)",
		    msg);
		return -1;
	}
	if (resp->status >= 400 && resp->status < 500 && code != NULL &&
	    strcmp(code, "101") == 0) {
		PV_ERR(err, PV_E_INVALID, "payment_method.token",
		    "Adyen refused the payment method: %.120s", msg);
		return -1;
	}
	PV_ERR(err, PV_E_UPSTREAM, NULL,
	    "Adyen answered HTTP %ld%s%s%s: %.160s", resp->status,
	    code != NULL ? " (" : "", code != NULL ? code : "",
	    code != NULL ? ")" : "", msg);
	if (resp->status < 500 && code != NULL &&
	    snprintf(reason, sizeof(reason), "adyen_%s", code) <
	        (int)sizeof(reason))
		pv_err_reason(err, reason);
	return -1;
}

/*
 * POSTs body to base + path with the merchant's key and, for a
 * mutating call, idem as Idempotency-Key.  Every call may be retried:
 * the mutating ones carry the key (Adyen replays the first answer)
 * and the others only read.  Returns 0 and *out (the answer, arena-
 * owned) on 2xx; -1 otherwise (see status_error()).
 */
static int
call(struct pv_ctx *ctx, const struct pv_psp_account *acct, const char *path,
    struct json_object *body, const char *idem, struct json_object **out,
    struct pv_err *err)
{
	struct pv_upstream_hdr hdrs[4];
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct pv_err perr = { 0 };
	const char *text;
	size_t textlen, n = 0;

	*out = NULL;
	if (idem != NULL && strlen(idem) > PV_ADYEN_IDEM_MAX) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "Idempotency-Key longer than Adyen's %d characters",
		    PV_ADYEN_IDEM_MAX);
		return -1;
	}
	if (pv_json_to_str(ctx->arena, body, &text, &textlen, err) == -1)
		return -1;
	memset(&req, 0, sizeof(req));
	if ((req.url = endpoint(ctx, acct, path, err)) == NULL)
		return -1;
	hdrs[n].name = "X-API-Key";
	hdrs[n++].value = acct->secret_key;
	hdrs[n].name = "Content-Type";
	hdrs[n++].value = "application/json";
	hdrs[n].name = "Accept";
	hdrs[n++].value = "application/json";
	if (idem != NULL) {
		hdrs[n].name = "Idempotency-Key";
		hdrs[n++].value = idem;
	}
	req.method = PV_UPSTREAM_POST;
	req.hdrs = hdrs;
	req.nhdrs = n;
	req.body = text;
	req.bodylen = textlen;
	req.retry_safe = 1;
	if (pv_upstream_do(ctx->up, ctx->arena, &req, &resp, err) == -1)
		return -1;
	if (resp.status < 200 || resp.status > 299)
		return status_error(ctx, &resp, err);
	if (pv_json_parse(ctx->arena, resp.body, resp.bodylen, out, &perr) ==
	    -1) {
		if (perr.code == PV_E_NOMEM || perr.code == PV_E_TOOBIG)
			*err = perr;
		else
			PV_ERR(err, PV_E_UPSTREAM, NULL,
			    "Adyen sent an answer that is not JSON: %s",
			    perr.msg);
		return -1;
	}
	return 0;
}

/* amount {value, currency}: Adyen's money object. */
static struct json_object *
amount_obj(struct pv_ctx *ctx, int64_t minor, const char *currency,
    struct pv_err *err)
{
	struct json_object *o = pv_json_new_obj(ctx->arena, err);

	pv_json_set_int(o, "value", minor, err);
	pv_json_set_str(o, "currency", currency, err);
	return err->code == PV_OK ? o : NULL;
}

/* "adyen_test_<NAME>": Adyen's test card with the 3.6 holderName. */
static struct json_object *
test_method(struct pv_ctx *ctx, const char *name, struct pv_err *err)
{
	const struct test_card *c = NULL;
	struct json_object *pm;
	const char *number;
	size_t i;

	for (i = 0; i < sizeof(test_cards) / sizeof(test_cards[0]); i++)
		if (strcmp(test_cards[i].name, name) == 0)
			c = &test_cards[i];
	if (c == NULL) {
		PV_ERR(err, PV_E_INVALID, "payment_method.token",
		    "No such Adyen test token: use adyen_test_APPROVED, "
		    "adyen_test_DECLINED, adyen_test_3DS2 or another name "
		    "from docs/adyen.md.");
		return NULL;
	}
	if ((number = pv_arena_printf(ctx->arena, err, "test_%s", c->number)) ==
	    NULL)
		return NULL;
	/* Adyen's test platform takes "test_"-prefixed plain values in
	 * the encrypted fields; the live platform refuses them. */
	pm = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(pm, "type", "scheme", err);
	pv_json_set_str(pm, "encryptedCardNumber", number, err);
	pv_json_set_str(pm, "encryptedExpiryMonth", "test_03", err);
	pv_json_set_str(pm, "encryptedExpiryYear", "test_2030", err);
	pv_json_set_str(pm, "encryptedSecurityCode", "test_737", err);
	if (c->holder != NULL)
		pv_json_set_str(pm, "holderName", c->holder, err);
	return err->code == PV_OK ? pm : NULL;
}

/*
 * "stored:<shopperReference>:<storedPaymentMethodId>": a card the
 * shopper saved with the merchant earlier.  The id is the part after
 * the last ':' (Adyen's ids are alphanumeric), so a shopperReference
 * may itself hold ':'.  Sets the body's shopper fields too.
 */
static struct json_object *
stored_method(struct pv_ctx *ctx, const char *rest, struct json_object *body,
    struct pv_err *err)
{
	const char *colon = strrchr(rest, ':');
	const char *shopper;
	struct json_object *pm;

	if (colon == NULL || colon == rest || !alnum(colon + 1, 64) ||
	    (size_t)(colon - rest) > 256) {
		PV_ERR(err, PV_E_INVALID, "payment_method.token",
		    "An Adyen stored token is "
		    "stored:<shopperReference>:<storedPaymentMethodId>.");
		return NULL;
	}
	if ((shopper = pv_arena_strndup(ctx->arena, rest,
	         (size_t)(colon - rest), err)) == NULL)
		return NULL;
	pm = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(pm, "type", "scheme", err);
	pv_json_set_str(pm, "storedPaymentMethodId", colon + 1, err);
	pv_json_set_str(body, "shopperReference", shopper, err);
	/* A merchant-initiated reuse of a card the shopper saved. */
	pv_json_set_str(body, "shopperInteraction", "ContAuth", err);
	pv_json_set_str(body, "recurringProcessingModel", "CardOnFile", err);
	return err->code == PV_OK ? pm : NULL;
}

static struct json_object *
payment_method(struct pv_ctx *ctx, const char *token, struct json_object *body,
    struct pv_err *err)
{
	size_t tp = strlen(PV_ADYEN_TEST_PREFIX);
	size_t sp = strlen(PV_ADYEN_STORED_PREFIX);

	if (token != NULL && strncmp(token, PV_ADYEN_TEST_PREFIX, tp) == 0)
		return test_method(ctx, token + tp, err);
	if (token != NULL && strncmp(token, PV_ADYEN_STORED_PREFIX, sp) == 0)
		return stored_method(ctx, token + sp, body, err);
	PV_ERR(err, PV_E_INVALID, "payment_method.token",
	    "Adyen payment tokens are adyen_test_<OUTCOME> or "
	    "stored:<shopperReference>:<storedPaymentMethodId>.");
	return NULL;
}

/* Where Adyen sends the shopper back after a redirect. */
static const char *
return_url(struct pv_ctx *ctx, const struct pv_psp_charge *in,
    struct pv_err *err)
{
	const char *pub = ctx->cfg->public_url;

	if (in->return_url != NULL && *in->return_url != '\0')
		return in->return_url;
	if (pub == NULL || *pub == '\0') {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "Adyen needs a returnUrl: set PIVOTA_PUBLIC_URL");
		return NULL;
	}
	return pv_upstream_url(ctx->arena, pub, RETURN_PATH, err);
}

static struct json_object *
charge_body(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const struct pv_psp_charge *in, struct pv_err *err)
{
	struct json_object *body, *meta, *pm, *amount;
	const char *ret;

	if (strlen(in->order_id) > PV_ADYEN_REF_MAX) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "order id longer than Adyen's reference");
		return NULL;
	}
	if ((body = pv_json_new_obj(ctx->arena, err)) == NULL ||
	    (pm = payment_method(ctx, in->token, body, err)) == NULL ||
	    (ret = return_url(ctx, in, err)) == NULL ||
	    (amount = amount_obj(ctx, in->amount_minor, in->currency, err)) ==
	        NULL)
		return NULL;
	meta = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(meta, "payment_id", in->payment_id, err);
	pv_json_set(body, "amount", amount, err);
	pv_json_set_str(body, "reference", in->order_id, err);
	pv_json_set_str(body, "merchantAccount", acct->merchant_account, err);
	pv_json_set(body, "paymentMethod", pm, err);
	pv_json_set_str(body, "returnUrl", ret, err);
	pv_json_set_str(body, "channel", "Web", err);
	if (in->customer_email != NULL && *in->customer_email != '\0')
		pv_json_set_str(body, "shopperEmail", in->customer_email, err);
	pv_json_set(body, "metadata", meta, err);
	return err->code == PV_OK ? body : NULL;
}

/* Reads a /payments answer into *out. */
static int
read_payment(struct pv_ctx *ctx, struct json_object *root,
    const struct pv_psp_charge *in, struct pv_psp_result *out,
    struct pv_err *err)
{
	const struct result_map *m = NULL;
	struct json_object *amount = get(root, "amount"), *action, *v;
	const char *code = get_str(root, "resultCode"), *psp, *reason, *cur;
	size_t i, len;

	if (code == NULL)
		return malformed(err, "a resultCode");
	for (i = 0; i < sizeof(results) / sizeof(results[0]); i++)
		if (strcmp(results[i].code, code) == 0)
			m = &results[i];
	if (m == NULL) {
		/* e.g. PartiallyAuthorised: not a state we can act on. */
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "Adyen answered resultCode %.40s, which we do not handle",
		    code);
		return -1;
	}
	psp = get_str(root, "pspReference");
	reason = get_str(root, "refusalReason");
	memset(out, 0, sizeof(*out));
	out->status = m->status;
	out->reference = psp != NULL ? psp : "";
	out->client_secret = "";
	out->message = reason != NULL ? reason : "";
	out->amount_minor = in->amount_minor;
	out->currency = in->currency;
	if ((v = get(amount, "value")) != NULL &&
	    json_object_is_type(v, json_type_int))
		out->amount_minor = json_object_get_int64(v);
	if ((cur = get_str(amount, "currency")) != NULL)
		out->currency = cur;
	if (m->status == PV_PSP_FAILED &&
	    (out->decline_code = pv_adyen_decline_code(ctx->arena, reason, code,
	         err)) == NULL)
		return -1;
	if (m->status == PV_PSP_REQUIRES_ACTION) {
		action = get(root, "action");
		if (action == NULL ||
		    !json_object_is_type(action, json_type_object))
			return malformed(err, "the action to take");
		if (pv_json_to_str(ctx->arena, action, &out->next_action, &len,
		        err) == -1)
			return -1;
	}
	if (m->status != PV_PSP_REQUIRES_ACTION && psp == NULL)
		return malformed(err, "a pspReference");
	return 0;
}

static int
adyen_charge(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const struct pv_psp_charge *in, struct pv_psp_result *out,
    struct pv_err *err)
{
	struct json_object *body, *root;
	const char *idem;

	if (need_account(acct, err) == -1 ||
	    (body = charge_body(ctx, acct, in, err)) == NULL ||
	    (idem = pv_psp_idem_key(ctx, "charge", in->payment_id, err)) ==
	        NULL ||
	    call(ctx, acct, "/payments", body, idem, &root, err) == -1)
		return -1;
	return read_payment(ctx, root, in, out, err);
}

static int
adyen_refund(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const struct pv_psp_refund *in, struct pv_psp_refund_result *out,
    struct pv_err *err)
{
	struct json_object *body, *root, *amount;
	const char *idem, *path, *psp, *status;

	if (need_account(acct, err) == -1)
		return -1;
	/* It goes into the path: only what a pspReference can be. */
	if (in->reference == NULL || !alnum(in->reference, 64)) {
		PV_ERR(err, PV_E_INVALID, "reference",
		    "not an Adyen pspReference");
		return -1;
	}
	if (strlen(in->refund_id) > PV_ADYEN_REF_MAX) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "refund id longer than Adyen's reference");
		return -1;
	}
	if ((amount = amount_obj(ctx, in->amount_minor, in->currency, err)) ==
	        NULL ||
	    (path = pv_arena_printf(ctx->arena, err, "/payments/%s/refunds",
	         in->reference)) == NULL ||
	    (idem = pv_psp_idem_key(ctx, "refund", in->refund_id, err)) == NULL)
		return -1;
	body = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(body, "merchantAccount", acct->merchant_account, err);
	pv_json_set(body, "amount", amount, err);
	pv_json_set_str(body, "reference", in->refund_id, err);
	pv_json_set_str(body, "merchantRefundReason",
	    pv_psp_adyen_reason(in->reason), err);
	if (err->code != PV_OK ||
	    call(ctx, acct, path, body, idem, &root, err) == -1)
		return -1;
	status = get_str(root, "status");
	if ((psp = get_str(root, "pspReference")) == NULL)
		return malformed(err, "a pspReference");
	if (status == NULL || strcmp(status, "received") != 0)
		return malformed(err, "status \"received\"");
	memset(out, 0, sizeof(*out));
	out->status = PV_PSP_REFUND_PENDING;
	out->reference = psp;
	out->message = "";
	return 0;
}

/* Lists the merchant's payment methods: proves key and account. */
static int
adyen_verify(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    struct pv_err *err)
{
	struct json_object *body, *root;

	if (need_account(acct, err) == -1)
		return -1;
	body = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(body, "merchantAccount", acct->merchant_account, err);
	if (err->code != PV_OK ||
	    call(ctx, acct, "/paymentMethods", body, NULL, &root, err) == -1)
		return -1;
	if (get(root, "paymentMethods") == NULL)
		return malformed(err, "paymentMethods");
	return 0;
}

/* One notification item's fields, as sent. */
struct item {
	const char *psp;       /* pspReference */
	const char *original;  /* originalReference, or NULL */
	const char *account;   /* merchantAccountCode */
	const char *reference; /* merchantReference */
	int64_t value;         /* amount.value */
	const char *currency;  /* amount.currency */
	const char *code;      /* eventCode */
	const char *success;   /* "true" or "false" */
	const char *reason;    /* reason, or NULL */
	const char *date;      /* eventDate, or NULL */
	const char *hmac;      /* additionalData.hmacSignature, or NULL */
};

static int
read_item(struct json_object *it, struct item *f, struct pv_err *err)
{
	struct json_object *amount, *extra = NULL;

	memset(f, 0, sizeof(*f));
	if (pv_json_str(it, "pspReference", 1, FIELD_MAX, &f->psp, err) ||
	    pv_json_str_opt(it, "originalReference", 0, FIELD_MAX, &f->original,
	        err) ||
	    pv_json_str(it, "merchantAccountCode", 1, FIELD_MAX, &f->account,
	        err) ||
	    pv_json_str(it, "merchantReference", 0, FIELD_MAX, &f->reference,
	        err) ||
	    pv_json_obj(it, "amount", &amount, err) ||
	    pv_json_int(amount, "value", INT64_MIN, INT64_MAX, &f->value,
	        err) ||
	    pv_json_str(amount, "currency", 1, 3, &f->currency, err) ||
	    pv_json_str(it, "eventCode", 1, 64, &f->code, err) ||
	    pv_json_str(it, "success", 4, 5, &f->success, err) ||
	    pv_json_str_opt(it, "reason", 0, FIELD_MAX, &f->reason, err) ||
	    pv_json_str_opt(it, "eventDate", 0, 64, &f->date, err) ||
	    pv_json_obj_opt(it, "additionalData", &extra, err))
		return -1;
	if (strcmp(f->success, "true") != 0 &&
	    strcmp(f->success, "false") != 0) {
		PV_ERR(err, PV_E_INVALID, "success",
		    "\"success\" must be \"true\" or \"false\"");
		return -1;
	}
	f->hmac = get_str(extra, "hmacSignature");
	return 0;
}

/* Checks one item's hmacSignature with the merchant's hex key. */
static int
verify_item(struct pv_ctx *ctx, const char *hexkey, const struct item *f,
    struct pv_err *err)
{
	struct pv_sig_adyen s;
	const char *text;

	if (f->hmac == NULL) {
		PV_ERR(err, PV_E_AUTH, "hmacSignature",
		    "a notification item is not signed");
		return -1;
	}
	s.psp_reference = f->psp;
	s.original_reference = f->original;
	s.merchant_account = f->account;
	s.merchant_reference = f->reference;
	s.value = f->value;
	s.currency = f->currency;
	s.event_code = f->code;
	s.success = f->success;
	if (pv_sig_adyen_string(ctx->arena, &s, &text, err) == -1)
		return -1;
	return pv_sig_adyen_verify(hexkey, text, f->hmac, err);
}

/* eventDate ("2026-01-15T10:00:00+01:00" or "...Z") as epoch seconds. */
static int64_t
event_time(const char *date)
{
	struct tm tm;
	int y, mo, d, h, mi, s, oh = 0, om = 0, n = 0;
	char sign = 'Z';
	int64_t t;

	if (date == NULL ||
	    sscanf(date, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s,
	        &n) != 6)
		return 0;
	date += n;
	if (*date == '.')
		while (*++date >= '0' && *date <= '9')
			;
	if ((*date == '+' || *date == '-') &&
	    sscanf(date + 1, "%2d:%2d", &oh, &om) == 2)
		sign = *date;
	else if (*date != 'Z')
		return 0;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	t = (int64_t)timegm(&tm);
	if (sign == '+')
		t -= oh * 3600 + om * 60;
	else if (sign == '-')
		t += oh * 3600 + om * 60;
	return t;
}

static int
map_item(struct pv_ctx *ctx, const struct item *f, struct pv_psp_event *ev,
    struct pv_err *err)
{
	int ok = strcmp(f->success, "true") == 0;

	memset(ev, 0, sizeof(*ev));
	/* Adyen resends items; this triple is its documented dedup key. */
	if ((ev->id = pv_arena_printf(ctx->arena, err, "%s:%s:%s", f->psp,
	         f->code, f->success)) == NULL)
		return -1;
	ev->type = f->code;
	ev->kind = PV_PSP_EV_OTHER;
	ev->reference =
	    f->original != NULL && *f->original != '\0' ? f->original : f->psp;
	ev->order_id = f->reference;
	ev->decline_code = "";
	ev->refund_reference = "";
	ev->refund_id = "";
	ev->amount_minor = f->value;
	ev->currency = f->currency;
	ev->created = event_time(f->date);
	if (strcmp(f->code, "AUTHORISATION") == 0) {
		ev->kind = PV_PSP_EV_PAYMENT;
		ev->reference = f->psp;
		ev->status = ok ? PV_PSP_SUCCEEDED : PV_PSP_FAILED;
		if (!ok &&
		    (ev->decline_code = pv_adyen_decline_code(ctx->arena,
		         f->reason, "refused", err)) == NULL)
			return -1;
	} else if (strcmp(f->code, "REFUND") == 0 ||
	    strcmp(f->code, "REFUND_FAILED") == 0 ||
	    strcmp(f->code, "CANCEL_OR_REFUND") == 0) {
		ev->kind = PV_PSP_EV_REFUND;
		ev->order_id = "";
		ev->refund_reference = f->psp;
		ev->refund_id = f->reference;
		/* REFUND_FAILED comes with success "true": the failure is
		 * the event itself. */
		ev->refund_status =
		    ok && strcmp(f->code, "REFUND_FAILED") != 0 ?
		    PV_PSP_REFUND_SUCCEEDED :
		    PV_PSP_REFUND_FAILED;
	}
	return 0;
}

/*
 * A standard notification: every item's HMAC is checked before any is
 * turned into an event, so one forged item rejects the whole batch and
 * Adyen (which signs each item) resends the genuine ones.
 */
static int
adyen_webhook(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const struct pv_req *req, struct pv_psp_event **evs, size_t *n,
    struct pv_err *err)
{
	struct json_object *root, *arr, *wrap, *it;
	struct pv_psp_event *out;
	struct item *items;
	size_t i, count;

	*evs = NULL;
	*n = 0;
	if (acct->webhook_secret == NULL || *acct->webhook_secret == '\0') {
		PV_ERR(err, PV_E_AUTH, NULL,
		    "no Adyen HMAC key is configured for this merchant");
		return -1;
	}
	if (pv_json_parse(ctx->arena, req->body, req->bodylen, &root, err) ||
	    pv_json_arr(root, "notificationItems", 1, ITEMS_MAX, &arr, err))
		return -1;
	count = json_object_array_length(arr);
	if ((items = pv_arena_alloc(ctx->arena, count * sizeof(*items), err)) ==
	        NULL ||
	    (out = pv_arena_alloc(ctx->arena, count * sizeof(*out), err)) ==
	        NULL)
		return -1;
	for (i = 0; i < count; i++)
		if (pv_json_at_obj(arr, i, &wrap, err) == -1 ||
		    pv_json_obj(wrap, "NotificationRequestItem", &it, err) ==
		        -1 ||
		    read_item(it, &items[i], err) == -1)
			return pv_json_err_prefix(err, "notificationItems[%zu]",
			    i);
	for (i = 0; i < count; i++)
		if (verify_item(ctx, acct->webhook_secret, &items[i], err) ==
		    -1)
			return -1;
	for (i = 0; i < count; i++)
		if (map_item(ctx, &items[i], &out[i], err) == -1)
			return -1;
	*evs = out;
	*n = count;
	return 0;
}

const struct pv_psp_ops pv_psp_adyen = {
	.name = "adyen",
	.verify = adyen_verify,
	.charge = adyen_charge,
	.retrieve = NULL,
	.refund = adyen_refund,
	.webhook = adyen_webhook,
	.webhook_ack = "[accepted]",
	.webhook_ack_type = "text/plain",
};
