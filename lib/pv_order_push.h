#ifndef PV_ORDER_PUSH_H
#define PV_ORDER_PUSH_H

#include "pv_http.h"
#include "pv_job.h"

/*
 * The order push: the job that copies a paid order into the merchant's
 * Shopify store (issue 6), exactly once.  pv_payment.c enqueues it as
 * kind "order.push" with the payload {"order_id": "ORD_..."} and the
 * dedup key "order.push:ORD_..." in the transaction that marks the
 * order paid, when the merchant has a connected store.  The worker
 * finds it in pv_worker_handlers[].  How exactly-once holds, and how
 * our fields become Shopify's: docs/shopify.md, "The order push".
 */

/* The job kind served by pv_order_push(). */
#define PV_ORDER_PUSH_KIND "order.push"

/*
 * After a create whose outcome is unknown (a 5xx, a timeout, a dropped
 * connection), the retry waits at least this many seconds, so that
 * Shopify's order search, which the retry asks first, has indexed an
 * order that was in fact created.
 */
#define PV_ORDER_PUSH_INDEX_LAG_S 10

/*
 * The order.push handler (struct pv_job_handler).  Loads the order by
 * its public id, and if it is paid and not yet pushed, finds it in the
 * merchant's store by our tag or creates it there (real variant ids,
 * shipping address, customer email, PAID with the order total through
 * the order's psp, sendReceipt, tagged with our order id); then, in one
 * transaction, stores orders.platform_order_id and moves the order
 * paid -> processing and its fulfilment unfulfilled -> processing.  An
 * order pushed already is done (0, nothing changes).  An order no
 * longer paid is skipped with an event (a Shopify order found for it
 * by tag is recorded and flagged, never moved forward).
 *
 * Returns 0 when done; -1 (retry with backoff) for transient failures:
 * the database, PV_E_UPSTREAM (5xx, throttling left over, a frozen or
 * locked shop) and PV_E_TIMEOUT; PV_JOB_PERMANENT for failures a retry
 * cannot mend: a line without a Shopify variant id, no connected
 * store, PV_E_AUTH, PV_E_FORBIDDEN, PV_E_NOTFOUND, PV_E_UNPROCESSABLE
 * (userErrors) or PV_E_INVALID.  Permanent failures, and a transient
 * one on the job's last attempt, are recorded as a flagged order event
 * "shopify.push_failed" naming the code, field and message.
 */
int pv_order_push(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err);

#endif /* PV_ORDER_PUSH_H */
