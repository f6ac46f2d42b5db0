#ifndef PV_IDEM_H
#define PV_IDEM_H

#include "pv_http.h"

/*
 * Idempotency keys for every POST (API.md §1), implemented once here
 * and run by the router for routes flagged PV_ROUTE_IDEMPOTENT.  A key
 * is scoped to agent + method + path and bound to a SHA-256 of the
 * body.  The first request claims the key ("running"), its final
 * status and body are stored ("done") unless it was a 5xx, and then:
 *
 *   same key, same body, done      -> the stored status and body again,
 *                                     Idempotent-Replayed: true
 *   same key, other body           -> 422 idempotency_conflict
 *   same key, first still running  -> 409 idempotency_in_flight,
 *                                     Retry-After: 1
 *
 * A claim left "running" by a request that is gone (its process or its
 * database connection died: the session advisory lock it held is free)
 * is taken over at once; one whose lock cannot be checked, after
 * PV_IDEM_STALE_S seconds.  Keys are kept at least 24 hours.
 */
#define PV_IDEM_STALE_S 60
#define PV_IDEM_KEY_MAX 255

/*
 * Looks at req's Idempotency-Key.  Returns 0 to run the handler (no
 * key, or the key is now ours: ctx->idem is set), 1 if resp already
 * holds the replayed response, or -1 with err (422, 409, 400 for a
 * malformed key, database errors).  Needs ctx->agent.
 */
int pv_idem_begin(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

/*
 * Stores the final response for ctx->idem (or releases the key after a
 * 5xx, so a retry runs again).  Failures are logged: the response has
 * been decided and is still sent.
 */
void pv_idem_finish(struct pv_ctx *ctx, const struct pv_resp *resp);

/*
 * For a handler whose final write and response are decided together:
 * stores resp for ctx->idem inside the caller's open transaction, so
 * the change and its idempotency record commit (or roll back) as one,
 * with one durable commit (the record's statement is sent with the
 * COMMIT: pv_db_defer(), so it must be the transaction's last write).
 * Once that transaction has committed, call
 * pv_idem_committed() so the router's pv_idem_finish() does nothing; if
 * it rolled back, do not, and the router records the error response as
 * usual.  Both do nothing without a claimed key.
 */
int pv_idem_finish_tx(struct pv_ctx *ctx, const struct pv_resp *resp,
    struct pv_err *err);
void pv_idem_committed(struct pv_ctx *ctx);

#endif /* PV_IDEM_H */
