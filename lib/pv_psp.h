#ifndef PV_PSP_H
#define PV_PSP_H

#include <stddef.h>
#include <stdint.h>

#include "pv_err.h"
#include "pv_http.h"

/*
 * Payment service providers: one interface, one adapter per provider
 * (pv_psp_sandbox.c, pv_stripe.c, pv_adyen.c).  An order is paid on its
 * merchant's own provider account, never a process-global key, so
 * every call takes the merchant's struct pv_psp_account.
 *
 * Outcomes are not errors.  A charge the provider answered (succeeded,
 * declined, needs action, still processing) returns 0 with *out
 * filled; -1 means we do not know what happened (transport failure,
 * 5xx after retries, an answer we cannot read): the caller keeps the
 * attempt open and lets a retry with the same idempotency key, or the
 * provider's webhook, settle it.  A provider 401/403 is PV_E_AUTH /
 * PV_E_FORBIDDEN (the merchant's credentials); a provider 4xx about
 * the agent's own input (an unknown payment-method token) is
 * PV_E_INVALID naming "payment_method.token"; other 4xx validation
 * errors are PV_E_UPSTREAM with a reason naming the provider's code.
 *
 * Idempotency: every mutating call carries an Idempotency-Key derived
 * from our own id (the payment's or the refund's public id), the same
 * on every retry, so a retried request can never charge or refund
 * twice.  pv_psp_idem_key() makes it.
 *
 * Strings in results live in ctx->arena.
 */

enum pv_psp_status {
	PV_PSP_SUCCEEDED = 0,   /* money captured (or authorised, Adyen) */
	PV_PSP_REQUIRES_ACTION, /* customer must authenticate: next_action */
	PV_PSP_PROCESSING,      /* outcome comes later by webhook */
	PV_PSP_FAILED,          /* declined or refused: decline_code */
};

/* "succeeded", "requires_action", "processing", "failed". */
const char *pv_psp_status_name(enum pv_psp_status s);

/* A merchant's provider account, secrets unsealed (arena memory). */
struct pv_psp_account {
	const char *provider;         /* "sandbox", "stripe", "adyen" */
	const char *merchant_id;      /* our public merchant id */
	const char *secret_key;       /* Stripe sk_..., Adyen API key; or "" */
	const char *merchant_account; /* Adyen merchantAccount; or "" */
	const char *api_base;         /* NULL or "": the provider default */
	const char *webhook_secret;   /* Stripe whsec_..., Adyen HMAC hex key */
};

/* One charge: an attempt to pay one order. */
struct pv_psp_charge {
	const char *payment_id; /* our pay_ id: the idempotency key root */
	const char *order_id;   /* our ORD_ id: metadata / reference */
	int64_t amount_minor;   /* > 0, minor units of currency */
	const char *currency;   /* ISO 4217, upper case */
	const char *token;      /* payment-method token, e.g. pm_card_visa */
	const char *return_url; /* or NULL */
	const char *customer_email; /* or NULL */
};

struct pv_psp_result {
	enum pv_psp_status status;
	const char *reference;     /* pi_..., Adyen pspReference; never NULL */
	const char *client_secret; /* Stripe client_secret, or "" */
	const char *decline_code;  /* on PV_PSP_FAILED, e.g. generic_decline */
	const char *message;       /* provider's human message, or "" */
	const char *next_action;   /* JSON object text, or NULL */
	int64_t amount_minor;      /* what the provider reports */
	const char *currency;      /* upper case, as reported */
};

/* One refund of a settled charge. */
struct pv_psp_refund {
	const char *refund_id; /* our ref_ id: the idempotency key root */
	const char *reference; /* the charge's provider reference */
	const char *order_id;  /* our ORD_ id */
	int64_t amount_minor;  /* > 0 */
	const char *currency;  /* ISO 4217, upper case */
	const char *reason;    /* free text from the agent, or NULL */
};

enum pv_psp_refund_status {
	PV_PSP_REFUND_SUCCEEDED = 0,
	PV_PSP_REFUND_PENDING, /* completed later by webhook */
	PV_PSP_REFUND_FAILED,
};

struct pv_psp_refund_result {
	enum pv_psp_refund_status status;
	const char *reference; /* re_..., Adyen modification pspReference */
	const char *message;   /* failure reason, or "" */
};

/* What an inbound provider webhook says, normalised. */
enum pv_psp_event_kind {
	PV_PSP_EV_OTHER = 0, /* verified but not one we act on: store, ack */
	PV_PSP_EV_PAYMENT,   /* a charge changed: status */
	PV_PSP_EV_REFUND,    /* a refund changed: refund_status */
};

struct pv_psp_event {
	const char *id; /* dedup key: evt_..., Adyen psp:eventCode:success */
	const char
	    *type; /* provider's name: payment_intent.succeeded, REFUND */
	enum pv_psp_event_kind kind;
	const char *reference; /* the charge's provider reference */
	const char *order_id; /* our ORD_ id if the provider echoes it, or "" */
	enum pv_psp_status status;    /* PV_PSP_EV_PAYMENT */
	const char *decline_code;     /* on a failed payment, or "" */
	const char *refund_reference; /* PV_PSP_EV_REFUND: re_... */
	const char *refund_id;        /* our ref_ id if echoed, or "" */
	enum pv_psp_refund_status refund_status; /* PV_PSP_EV_REFUND */
	int64_t amount_minor;                    /* of the charge or refund */
	const char *currency;                    /* upper case */
	int64_t created;                         /* provider's epoch s, or 0 */
};

/*
 * What an adapter provides.  verify() checks credentials before they
 * are saved (a cheap authenticated read).  charge() creates and
 * confirms in one call.  retrieve() re-reads a charge by reference
 * (NULL when the provider has no such read, e.g. Adyen).  The
 * sandbox's webhook is Stripe's (same events, same signature).
 */
struct pv_psp_ops {
	const char *name; /* "sandbox", "stripe", "adyen" */
	int (*verify)(struct pv_ctx *ctx, const struct pv_psp_account *acct,
	    struct pv_err *err);
	int (*charge)(struct pv_ctx *ctx, const struct pv_psp_account *acct,
	    const struct pv_psp_charge *in, struct pv_psp_result *out,
	    struct pv_err *err);
	int (*retrieve)(struct pv_ctx *ctx, const struct pv_psp_account *acct,
	    const char *reference, struct pv_psp_result *out,
	    struct pv_err *err);
	int (*refund)(struct pv_ctx *ctx, const struct pv_psp_account *acct,
	    const struct pv_psp_refund *in, struct pv_psp_refund_result *out,
	    struct pv_err *err);
	/*
	 * An inbound webhook: verifies req's signature on the raw body with
	 * acct->webhook_secret (none configured = PV_E_AUTH), then parses it
	 * into *evs (arena array, *n entries; Adyen batches several).  Any
	 * bad signature, stale timestamp or malformed body fails the whole
	 * request (PV_E_AUTH / PV_E_INVALID) before anything is parsed
	 * into events, so nothing changes.
	 */
	int (*webhook)(struct pv_ctx *ctx, const struct pv_psp_account *acct,
	    const struct pv_req *req, struct pv_psp_event **evs, size_t *n,
	    struct pv_err *err);
	/* The webhook's success body: Stripe "{\"received\":true}", Adyen
	 * "[accepted]". */
	const char *webhook_ack;
	const char *webhook_ack_type; /* its content type */
};

extern const struct pv_psp_ops pv_psp_sandbox;
extern const struct pv_psp_ops pv_psp_stripe;
extern const struct pv_psp_ops pv_psp_adyen;

/* The adapter called name, or NULL. */
const struct pv_psp_ops *pv_psp_find(const char *name);

/*
 * The Idempotency-Key sent to a provider for our id and an operation
 * ("charge", "refund"): "pivota-" op "-" id.  Stable across retries,
 * processes and nodes.  Arena memory, or NULL with err set.
 */
const char *pv_psp_idem_key(struct pv_ctx *ctx, const char *op, const char *id,
    struct pv_err *err);

/*
 * Maps a free-text refund reason to Stripe's enum (duplicate,
 * fraudulent, requested_by_customer) and Adyen's (DUPLICATE, FRAUD,
 * CUSTOMER REQUEST, RETURN, OTHER).  Default requested_by_customer /
 * CUSTOMER REQUEST.
 */
const char *pv_psp_stripe_reason(const char *text);
const char *pv_psp_adyen_reason(const char *text);

#endif /* PV_PSP_H */
