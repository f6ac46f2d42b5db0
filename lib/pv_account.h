#ifndef PV_ACCOUNT_H
#define PV_ACCOUNT_H

#include "pv_http.h"

/*
 * The agent's own account (API.md §2, §4): its limits, its usage
 * analytics and the webhook endpoints it registered.  Every route runs
 * the agent prologue.
 *
 *   GET    /agent/v1/rate-limits
 *   GET    /agent/v1/analytics/summary?days=N
 *   POST   /agent/v1/webhooks           {url, events[]}
 *   GET    /agent/v1/webhooks
 *   DELETE /agent/v1/webhooks/{id}
 */
int pv_account_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

#endif /* PV_ACCOUNT_H */
