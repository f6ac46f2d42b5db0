#ifndef PV_CTL_SHOPIFY_H
#define PV_CTL_SHOPIFY_H

#include "pv_err.h"
#include "pv_http.h"

/*
 * pivotactl's Shopify commands (pv_ctl_shopify.c), rows of the command
 * table in pv_ctl.c.  Like every command they parse their arguments,
 * build one JSON object in *out (owned by the caller, which prints it
 * as text or JSON) and return 0, or -1 with err set; a usage error
 * carries the reason "usage" (exit status 2).
 */
struct json_object;

/* merchant connect-shopify MERCHANT --shop D --token T [--api-base U]
 * [--webhook-secret S] */
int pv_ctl_shopify_connect(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);

/* merchant disconnect-shopify MERCHANT */
int pv_ctl_shopify_disconnect(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);

#endif /* PV_CTL_SHOPIFY_H */
