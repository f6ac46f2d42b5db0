#ifndef PV_PSP_SANDBOX_H
#define PV_PSP_SANDBOX_H

#include "pv_http.h"
#include "pv_job.h"

/*
 * The sandbox provider's customer side (the adapter itself is
 * pv_psp_sandbox in pv_psp.h).  A sandbox charge that needs
 * authentication points next_action at GET /sandbox/authenticate/
 * {payment_id}: a page where the "customer" completes or fails it.
 * Either way a job (sandbox.webhook) delivers a Stripe-shaped event,
 * signed with the merchant's sandbox webhook secret exactly as Stripe
 * signs, to PIVOTA_PUBLIC_URL/webhooks/stripe/{merchant_id}: the path
 * a real provider's answer takes, so the sandbox exercises it too.
 */

/* The sandbox program: GET and POST /sandbox/authenticate/{payment_id}. */
int pv_sandbox_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

/* The sandbox.webhook job: {"payment_id", "outcome"} -> signed event. */
int pv_sandbox_webhook_job(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err);

#endif /* PV_PSP_SANDBOX_H */
