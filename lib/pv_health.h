#ifndef PV_HEALTH_H
#define PV_HEALTH_H

#include "pv_http.h"

/*
 * GET /health (API.md §2): no authentication; reports whether the
 * database answers, for load balancers and uptime checks.
 */
int pv_health_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

#endif /* PV_HEALTH_H */
