#ifndef PV_REFUND_H
#define PV_REFUND_H

#include <stdint.h>

#include "pv_err.h"
#include "pv_http.h"
#include "pv_job.h"
#include "pv_psp.h"

/*
 * Refunds (issue 7): the refund program's endpoint, the reconciliation
 * of refunds the payment provider or the Shopify store report, and the
 * two jobs that finish a refund's work.  Every refund, whoever started
 * it, is one row of the refunds table (migration 0013), and every
 * outcome goes through one SQL function, pv_refund_settle(), under the
 * order's row lock: a refund is counted in the order's refunded_minor
 * exactly once, however many times and in whatever order the answers
 * and webhooks arrive.  docs/payments.md "Refunds" has the whole story.
 *
 * Strings returned live in ctx->arena.
 */

/* The job kinds served here (pv_worker_handlers[]). */
#define PV_REFUND_REDRIVE_KIND "refund.redrive"
#define PV_REFUND_SHOPIFY_KIND "refund.shopify"

/* An unanswered refund is asked again after this many seconds. */
#define PV_REFUND_REDRIVE_S 30

/* Routes the refund program's one request (POST .../orders/:id/refund). */
int pv_refund_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

/*
 * A provider refund event (kind PV_PSP_EV_REFUND) for merchant (the
 * internal id), applied inside the caller's transaction (the payment
 * webhook's, which stored the event once).  The event is matched to
 * our refund by the provider's refund reference or by our ref_ id
 * echoed in metadata (Stripe) or merchantReference (Adyen), and its
 * outcome recorded; a refund we did not make (the provider's
 * dashboard) is recorded once with source provider_dashboard, and a
 * bare refunded total (Stripe's charge.refunded) only for the part our
 * rows do not explain.  *outcome says what happened, for the event's
 * log: "succeeded", "failed", "reversed", "unchanged", "inserted",
 * "matched", "nothing", "flagged", "unknown_payment".  PV_E_DB.
 */
int pv_refund_hook(struct pv_ctx *ctx, const char *merchant,
    const struct pv_psp_event *ev, const char **outcome, struct pv_err *err);

/*
 * A refund made in the merchant's Shopify admin, for the Shopify
 * webhook program (refunds/create): merchant is the merchant's public
 * id, platform_order_id the Shopify order (gid://shopify/Order/N or
 * its number), amount_minor the refund's total in the order's
 * currency, store_refund_id Shopify's refund id (gid or number) and
 * note the refund's note (or NULL).  Not inside a transaction: it may
 * call the provider.
 *
 * A Shopify refund we made ourselves (the refund.shopify job; its note
 * names our ref_ id) or one seen before (by its id) changes nothing:
 * *outcome "matched" or "duplicate".  Otherwise the money goes back to
 * the customer through the merchant's payment provider, as a refund
 * with source "store" (idempotency key from its ref_ id): *outcome
 * "succeeded", "pending" (the provider answers later) or "failed".
 * PV_E_NOTFOUND (no such order for the merchant), PV_E_CONFLICT (more
 * than is left to refund, or the order is not paid: an order event is
 * flagged too), PV_E_DB.
 */
int pv_refund_from_store(struct pv_ctx *ctx, const char *merchant,
    const char *platform_order_id, int64_t amount_minor,
    const char *store_refund_id, const char *note, const char **outcome,
    struct pv_err *err);

/*
 * A refund the merchant asks for from the dashboard: order is the
 * order's internal id (the caller checked it is the merchant's),
 * order_pub its ORD_ id, amount_minor the amount in the order's
 * currency (0 = everything left), reason free text or NULL.  Reserved
 * under the order's lock and sent to the provider as an agent's refund
 * is (source "merchant").  *refund is the ref_ id, *status "succeeded",
 * "pending" or "failed".  Errors as the agent endpoint's: PV_E_CONFLICT
 * (unpaid, more than is left), PV_E_UPSTREAM (the provider refused).
 */
int pv_refund_by_merchant(struct pv_ctx *ctx, const char *order,
    const char *order_pub, int64_t amount_minor, const char *reason,
    const char **refund, const char **status, struct pv_err *err);

/*
 * The refund.redrive job, payload {"refund_id": "ref_..."}: asks the
 * provider again (same idempotency key) for a refund whose outcome was
 * unknown, and records the answer.  0 when answered or no longer
 * pending; -1 to try again later.
 */
int pv_refund_redrive(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err);

/*
 * The refund.shopify job, payload {"refund_id": "ref_..."}: mirrors a
 * succeeded refund to the order's Shopify order exactly once.  The
 * order's refunds are read first and one whose note names our ref_ id
 * is taken as ours (a worker died before recording it); otherwise
 * refundCreate with the refunded lines (restocked when the merchant's
 * merchant_shopify.refund_restock says so), the shipping if it was
 * refunded, and one REFUND transaction of the amount on the order's
 * gateway; Shopify's refund id is stored in refunds.store_refund_id.
 * 0 when done; -1 transient (retry); PV_JOB_PERMANENT for userErrors,
 * credentials, a missing store or order (an order event is flagged).
 */
int pv_refund_shopify(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err);

#endif /* PV_REFUND_H */
