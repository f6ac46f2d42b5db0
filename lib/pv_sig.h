#ifndef PV_SIG_H
#define PV_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "pv_arena.h"
#include "pv_err.h"

/*
 * Webhook signatures: Stripe's "Stripe-Signature" (which we also use
 * to sign our own outbound agent webhooks), Shopify's
 * "X-Shopify-Hmac-Sha256" and Adyen's per-item "hmacSignature".  Each
 * verifier works on the raw body bytes, before anything parses them,
 * compares in constant time and fails with PV_E_AUTH (401), so a
 * handler can return the error as it is.  Secrets are borrowed, never
 * copied into error messages; lists of secrets end with NULL so a
 * secret can be rotated by configuring the new one next to the old.
 * The rules and test vectors are in external-apis.md 1.9, 2.6 and 3.7.
 */

#define PV_SIG_STRIPE_TOLERANCE  300  /* seconds, Stripe's default */
#define PV_SIG_STRIPE_HEADER_MAX 4096 /* longest Stripe-Signature accepted */
#define PV_SIG_STRIPE_V1_MAX     8    /* most v1 entries accepted */

/* The fields of an Adyen notification item that its HMAC covers. */
struct pv_sig_adyen {
	const char *psp_reference;      /* pspReference */
	const char *original_reference; /* originalReference, or NULL */
	const char *merchant_account;   /* merchantAccountCode */
	const char *merchant_reference; /* merchantReference */
	int64_t value;                  /* amount.value, minor units */
	const char *currency;           /* amount.currency */
	const char *event_code;         /* eventCode */
	const char *success;            /* "true" or "false", as sent */
};

/* Stripe: "t=<unix>,v1=<hex>[,v1=...][,v0=...]" over "<t>." + body. */
int pv_sig_stripe_verify(const char *header, const char *const *secrets,
    const void *body, size_t bodylen, int64_t now, int64_t tolerance_s,
    struct pv_err *err);
int pv_sig_stripe_sign(struct pv_arena *a, const char *secret, int64_t t,
    const void *body, size_t bodylen, const char **header, struct pv_err *err);

/* Shopify: base64(HMAC-SHA256(client secret, body)). */
int pv_sig_shopify_verify(const char *header_b64, const char *secret,
    const void *body, size_t bodylen, struct pv_err *err);
int pv_sig_shopify_verify_any(const char *header_b64,
    const char *const *secrets, const void *body, size_t bodylen,
    struct pv_err *err);
int pv_sig_shopify_sign(struct pv_arena *a, const char *secret,
    const void *body, size_t bodylen, const char **out, struct pv_err *err);

/* Adyen: base64(HMAC-SHA256(hex-decoded key, "f1:f2:...:f8")). */
int pv_sig_adyen_string(struct pv_arena *a, const struct pv_sig_adyen *f,
    const char **out, struct pv_err *err);
int pv_sig_adyen_verify(const char *hexkey, const char *signing_string,
    const char *hmac_b64, struct pv_err *err);
int pv_sig_adyen_sign(struct pv_arena *a, const char *hexkey,
    const char *signing_string, const char **out, struct pv_err *err);

#endif /* PV_SIG_H */
