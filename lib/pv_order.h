#ifndef PV_ORDER_H
#define PV_ORDER_H

#include <json-c/json.h>

#include "pv_http.h"

/*
 * Orders: cart validation, creation (priced by us, stock reserved),
 * reading, listing and cancelling, for one agent at a time; the orders
 * program also serves payments (pv_payment.h).  An order belongs to one
 * merchant and is paid on that merchant's own provider.  State changes
 * are checked by the database (order_transitions) and each one appends
 * an order event there (migration 0009).
 */

/* Unpaid orders hold their stock this long, then expire. */
#define PV_ORDER_TTL_S (30 * 60)

/* Routes the orders program's requests (orders, cart, payments). */
int pv_order_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

/*
 * The Order object of API.md for the order with internal id order_id,
 * or NULL with err set.  For agent responses and webhook snapshots.
 */
struct json_object *pv_order_json(struct pv_ctx *ctx, const char *order_id,
    struct pv_err *err);

/*
 * Resolves an order the agent owns: public id -> internal id.  Another
 * agent's order is PV_E_NOTFOUND exactly like a missing one.
 */
int pv_order_lookup(struct pv_ctx *ctx, const char *public_id,
    const char **order_id, struct pv_err *err);

/*
 * Cancels unpaid orders whose reservation ran out, *n of them, even
 * with a payment attempt still open (an abandoned authentication): a
 * late success is then flagged for a refund, never applied.
 */
int pv_order_expire(struct pv_ctx *ctx, long *n, struct pv_err *err);

#endif /* PV_ORDER_H */
