#ifndef PV_STRIPE_H
#define PV_STRIPE_H

#include <stddef.h>

#include "pv_err.h"
#include "pv_http.h"
#include "pv_psp.h"

/*
 * The Stripe payment adapter (pv_psp_stripe, declared in pv_psp.h):
 * PaymentIntents created and confirmed in one call, refunds, a balance
 * read to check credentials, and the webhook verifier.  Every request
 * uses the merchant's own secret key, pins PV_STRIPE_API_VERSION and
 * goes through pv_upstream; the wire contract is external-apis.md 1.
 *
 * The webhook is exported on its own because the sandbox provider
 * sends Stripe-shaped, Stripe-signed events and reuses it.
 */

#define PV_STRIPE_API_VERSION "2026-07-29.dahlia"
#define PV_STRIPE_API_BASE    "https://api.stripe.com"

/*
 * Verifies req's Stripe-Signature over the raw body with
 * acct->webhook_secret (tolerance PV_SIG_STRIPE_TOLERANCE against
 * ctx->now), then parses the event into *evs (one arena entry, *n = 1).
 * PV_E_AUTH for no secret, no header, a bad or stale signature;
 * PV_E_INVALID for a body that is not an event.  Nothing is parsed
 * before the signature has been checked.
 */
int pv_stripe_webhook(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const struct pv_req *req, struct pv_psp_event **evs, size_t *n,
    struct pv_err *err);

#endif /* PV_STRIPE_H */
