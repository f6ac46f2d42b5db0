#ifndef PV_SHOPIFY_HOOKS_H
#define PV_SHOPIFY_HOOKS_H

#include "pv_http.h"

/*
 * Inbound Shopify webhooks (issue 6): POST /webhooks/shopify/{merchant}.
 * The raw body is verified with the merchant's webhook secret
 * (X-Shopify-Hmac-Sha256, constant time) before anything parses it,
 * the shop named by X-Shopify-Shop-Domain must be the merchant's live
 * connection, and each delivery is stored once in provider_events
 * (provider 'shopify', X-Shopify-Webhook-Id) in the transaction that
 * applies it: a replay answers 200 and changes nothing.  What each
 * topic does is in docs/shopify.md ("Inbound webhooks"); the shipment
 * rules are SQL (pv_shipment_apply, migration 0011).
 */

/* The job a store cancel of a paid order queues when the merchant asks. */
#define PV_SHOPIFY_HOOKS_REFUND_KIND "refund.store_cancel"
/* The job a refund made in the Shopify admin queues (refunds/create). */
#define PV_SHOPIFY_HOOKS_STORE_REFUND_KIND "refund.from_store"

/*
 * The webhooks-shopify program's handler.  200 {status, outcome} once
 * the delivery is stored (applied, duplicate, ignored, unknown order
 * ...); 401 for a missing or bad signature, no webhook secret or
 * another shop; 400 for missing headers; 404 unknown merchant; 405;
 * 5xx when the database fails (Shopify retries).
 */
int pv_shopify_hooks_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

struct pv_job;

/*
 * The two jobs, run by the worker outside any transaction because they
 * call the merchant's payment provider (pv_refund_from_store):
 *
 * refund.store_cancel {"order_id": "ORD_..."}: refunds what is left of
 * a paid order the store cancelled, once (its store refund id is
 * "cancel:" + the Shopify order).
 * refund.from_store {"platform_order_id", "store_refund_id", "note",
 * "amounts": ["12.50", ...]}: a refund made in the Shopify admin, sent
 * back to the customer through the provider unless it is our own
 * mirror or was seen before.
 *
 * 0 done (or pending at the provider: its own job finishes it); -1 to
 * retry; PV_JOB_PERMANENT when the order is unknown or nothing is left
 * (the order carries a flagged event).
 */
int pv_shopify_hooks_cancel_refund_job(struct pv_ctx *ctx,
    const struct pv_job *job, struct pv_err *err);
int pv_shopify_hooks_store_refund_job(struct pv_ctx *ctx,
    const struct pv_job *job, struct pv_err *err);

#endif /* PV_SHOPIFY_HOOKS_H */
