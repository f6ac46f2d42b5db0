#ifndef PV_CTL_INT_H
#define PV_CTL_INT_H

#include <libpq-fe.h>

#include "pv_err.h"
#include "pv_http.h"

/*
 * Inside pivotactl: what pv_ctl.c shares with the files that hold
 * commands of one area (pv_ctl_jobs.c, pv_ctl_shopify.c), and those
 * commands.  Not an
 * API for anything else.  A command parses its arguments with
 * pv_ctl_parse(), builds one JSON object in *out (owned by the caller,
 * which prints it as text or JSON) and returns 0, or -1 with err set
 * (a usage error carries the reason "usage").
 */
struct json_object;

/* One option of a command: --name VALUE, or a flag without value. */
struct pv_ctl_opt {
	const char *name; /* "--per-minute" */
	int flag;         /* takes no value */
	const char **val; /* where the value (or "1" for a flag) goes */
};

/*
 * Splits argv into the options in opts (ended by a NULL name; opts may
 * be NULL) and at most maxpos positional arguments into pos, of which
 * minpos are required.  Unknown options and extra or missing arguments
 * are usage errors.
 */
int pv_ctl_parse(int argc, char **argv, const struct pv_ctl_opt *opts,
    const char **pos, int minpos, int maxpos, struct pv_err *err);

/* Parses s (NULL: leaves *out) as a whole number in [min, max]. */
int pv_ctl_number(const char *s, long min, long max, const char *name,
    long *out, struct pv_err *err);

/* Records a usage error "what arg"; returns -1. */
int pv_ctl_usage_error(struct pv_err *err, const char *what, const char *arg);

/* A new object owned by the caller, or NULL with PV_E_NOMEM. */
struct json_object *pv_ctl_new_obj(struct pv_err *err);

/* Every row of res as an array of objects (caller owns), or NULL. */
struct json_object *pv_ctl_rows(const PGresult *res, struct pv_err *err);

/* The one row of res as an object (caller owns), or NULL with
 * PV_E_NOTFOUND "no such <what>" unless res has exactly one row. */
struct json_object *pv_ctl_row(const PGresult *res, const char *what,
    struct pv_err *err);

/*
 * The internal id and currency of the merchant whose public id is
 * merchant (memory of the request's result), or -1 with PV_E_NOTFOUND.
 */
int pv_ctl_merchant(struct pv_ctx *ctx, const char *merchant, const char **id,
    const char **currency, struct pv_err *err);

/* pv_ctl_jobs.c */
int pv_ctl_jobs_list(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);
int pv_ctl_jobs_retry(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);

/* pv_ctl_shopify.c */
int pv_ctl_shopify_connect(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);
int pv_ctl_shopify_disconnect(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);
int pv_ctl_sync_products(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);

/* pv_ctl_psp.c */
int pv_ctl_psp_connect_stripe(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);
int pv_ctl_psp_connect_adyen(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);
int pv_ctl_psp_connect_sandbox(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);
int pv_ctl_psp_set_shipping(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);
int pv_ctl_psp_set_tax(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);

/* pv_ctl_settings.c */
int pv_ctl_set_refunds(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);
int pv_ctl_set_mail(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);

/* pv_ctl_dash.c */
int pv_ctl_dash_set_password(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err);
int pv_ctl_dash_demo_login(struct pv_ctx *ctx, const char *merchant,
    const char *email, const char **password, struct pv_err *err);

#endif /* PV_CTL_INT_H */
