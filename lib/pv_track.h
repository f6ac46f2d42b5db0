#ifndef PV_TRACK_H
#define PV_TRACK_H

#include "pv_http.h"

/*
 * Tracking for agents (issue 6, API.md 2): where an order's shipments
 * are, a timeline built from the order's own events, and the agent's
 * orders on their way.  Shipments are written by the Shopify webhooks
 * (pv_shopify_hooks.h, migration 0011); this module only reads.  An
 * agent sees its own orders only: another agent's order id is 404
 * exactly like a missing one.
 */

/* Routes the track program's requests (see docs/api.md "Tracking"). */
int pv_track_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

#endif /* PV_TRACK_H */
