#ifndef PV_PAYMENT_H
#define PV_PAYMENT_H

#include "pv_http.h"
#include "pv_psp.h"

/*
 * Payments: attempts to pay an order on its merchant's own provider,
 * the merchant's provider account, and inbound provider webhooks.
 *
 * An attempt is a payments row opened before the provider is called
 * (pv_payment_begin() in SQL); its public id roots the idempotency key
 * of every provider call, so a retried request, a crashed process or a
 * timeout can never charge twice: an attempt the provider never
 * answered is re-driven with the same key and gets the same answer.
 * The synchronous answer and the provider's webhook, in any order and
 * any number of times, end in one function, pv_payment_settle(), which
 * marks the order paid exactly once and queues what follows.
 */

/* POST /agent/v1/payments and GET /agent/v1/payments/{id}. */
int pv_payment_create(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);
int pv_payment_get(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

/*
 * The merchant's (internal id) provider account with secrets unsealed,
 * in ctx->arena.  PV_E_NOTFOUND if none is connected.
 */
int pv_payment_account(struct pv_ctx *ctx, const char *merchant,
    struct pv_psp_account *acct, struct pv_err *err);

/*
 * Connects a merchant (public id) to a provider: verifies the
 * credentials with the provider (nothing is stored if it refuses),
 * then stores them sealed under the master key, replacing any earlier
 * provider.  The sandbox needs no credentials; if acct->webhook_secret
 * is NULL a whsec_ secret is made.  *webhook_secret is the one stored.
 */
int pv_payment_connect(struct pv_ctx *ctx, const char *merchant,
    const struct pv_psp_account *acct, const char **webhook_secret,
    struct pv_err *err);

/*
 * Records an attempt's outcome (the one path, see above) inside its own
 * transaction.  *outcome: "paid", "changed", "unchanged", "flagged".
 */
int pv_payment_settle(struct pv_ctx *ctx, const char *payment_id,
    const struct pv_psp_result *r, const char **outcome, struct pv_err *err);

/*
 * The webhooks/stripe and webhooks/adyen programs: POST
 * /webhooks/{stripe|adyen}/{merchant_id}, verified with the merchant's
 * webhook secret on the raw body, each event stored once by its
 * provider id and applied through the settle path.  A sandbox merchant
 * is served by the Stripe endpoint (same events, same signature).
 */
int pv_payment_stripe_webhook(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);
int pv_payment_adyen_webhook(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

#endif /* PV_PAYMENT_H */
