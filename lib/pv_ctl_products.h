#ifndef PV_CTL_PRODUCTS_H
#define PV_CTL_PRODUCTS_H

#include "pv_http.h"

/*
 * pivotactl's catalog commands (rows of the command table in
 * pv_ctl.c) and the demo catalog of `pivotactl demo-seed`.
 */
struct json_object;

/*
 * pivotactl products import MERCHANT FILE [--replace] [--dry-run]
 * [--format csv|json|jsonl]: every row or none.  Problems are printed
 * to standard error, one line each with the file and the row; then it
 * fails with PV_E_INVALID.  *out (owned by the caller) says what
 * changed.
 */
int pv_ctl_products_import(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);

/*
 * Gives the merchant (internal id, currency) the demo catalog: about
 * 300 products of outdoor clothing and goods with sizes, colours and
 * stock, generated deterministically, imported in the caller's
 * transaction.  Sets *products to how many.  PV_E_DB, PV_E_NOMEM.
 */
int pv_ctl_demo_catalog(struct pv_ctx *ctx, const char *merchant_id,
    const char *currency, long *products, struct pv_err *err);

#endif /* PV_CTL_PRODUCTS_H */
