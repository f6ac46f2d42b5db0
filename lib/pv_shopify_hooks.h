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

/*
 * The webhooks-shopify program's handler.  200 {status, outcome} once
 * the delivery is stored (applied, duplicate, ignored, unknown order
 * ...); 401 for a missing or bad signature, no webhook secret or
 * another shop; 400 for missing headers; 404 unknown merchant; 405;
 * 5xx when the database fails (Shopify retries).
 */
int pv_shopify_hooks_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

#endif /* PV_SHOPIFY_HOOKS_H */
