/*
 * pivotactl: a merchant's refund and mail settings.
 *
 *   merchant set-refunds MERCHANT [--on-store-cancel yes|no]
 *       [--restock yes|no]
 *   merchant set-mail MERCHANT [--notify-merchant yes|no]
 *       [--notify-customers auto|always|never]
 *
 * --on-store-cancel is merchants.refund_on_store_cancel (migration
 * 0011): when the store cancels an order we were paid for, refund it
 * (a refund.store_cancel job) instead of only flagging it for a human.
 * --restock is merchant_shopify.refund_restock (0013): a refund
 * mirrored to Shopify puts the units back in stock; it needs a Shopify
 * store.  The mail settings are merchant_mail_settings (0015): the
 * merchant's new-order notice, and customer mail ('auto': unless a live
 * Shopify store sends its own receipts).  Options left out keep their
 * value; each command prints every setting of its kind afterwards.
 */
#include <string.h>

#include "pv_ctl_int.h"
#include "pv_db.h"

/* yes|no for option name into "true"/"false"; NULL leaves *out. */
static int
yes_no(const char *s, const char *name, const char **out, struct pv_err *err)
{
	if (s == NULL)
		return 0;
	if (strcmp(s, "yes") == 0 || strcmp(s, "no") == 0) {
		*out = *s == 'y' ? "true" : "false";
		return 0;
	}
	PV_ERR(err, PV_E_INVALID, name, "%s must be yes or no, not \"%s\"",
	    name, s);
	return -1;
}

/* What set-refunds changes, and what it found. */
struct refunds {
	const char *merchant; /* public id */
	const char *cancel;   /* "true"/"false", or NULL to keep */
	const char *restock;  /* "true"/"false", or NULL to keep */
	PGresult *res;        /* out: the settings afterwards */
};

static int
set_refunds(struct pv_ctx *ctx, void *arg, struct pv_err *err)
{
	struct refunds *r = arg;
	const char *p[2], *currency;

	if (pv_ctl_merchant(ctx, r->merchant, &p[0], &currency, err) == -1)
		return -1;
	p[1] = r->cancel;
	if (r->cancel != NULL &&
	    pv_db_exec(ctx,
	        PV_SQL("UPDATE merchants SET refund_on_store_cancel ="
	               " $2::boolean WHERE id = $1::bigint"),
	        2, p, NULL, err) == -1)
		return -1;
	p[1] = r->restock;
	if (r->restock != NULL) {
		if (pv_db_exec(ctx,
		        PV_SQL("UPDATE merchant_shopify SET refund_restock ="
		               " $2::boolean WHERE merchant_id = $1::bigint"
		               " RETURNING 1"),
		        2, p, &r->res, err) == -1)
			return -1;
		if (PQntuples(r->res) != 1) {
			PV_ERR(err, PV_E_CONFLICT, "--restock",
			    "%s has no Shopify store: --restock is about "
			    "refunds mirrored to Shopify (merchant "
			    "connect-shopify first).",
			    r->merchant);
			return -1;
		}
	}
	return pv_db_exec(ctx,
	    PV_SQL("SELECT m.public_id AS merchant_id,"
	           " m.refund_on_store_cancel, s.refund_restock"
	           " FROM merchants m LEFT JOIN merchant_shopify s"
	           " ON s.merchant_id = m.id WHERE m.id = $1::bigint"),
	    1, p, &r->res, err);
}

/* merchant set-refunds MERCHANT [--on-store-cancel yes|no] [--restock yes|no]
 */
int
pv_ctl_set_refunds(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *cancel = NULL, *restock = NULL;
	const struct pv_ctl_opt opts[] = { { "--on-store-cancel", 0, &cancel },
		{ "--restock", 0, &restock }, { NULL, 0, NULL } };
	struct refunds r;

	memset(&r, 0, sizeof(r));
	if (pv_ctl_parse(argc, argv, opts, &r.merchant, 1, 1, err) == -1 ||
	    yes_no(cancel, "--on-store-cancel", &r.cancel, err) == -1 ||
	    yes_no(restock, "--restock", &r.restock, err) == -1)
		return -1;
	if (r.cancel == NULL && r.restock == NULL)
		return pv_ctl_usage_error(err, "give",
		    "--on-store-cancel yes|no and/or --restock yes|no");
	if (pv_db_tx(ctx, set_refunds, &r, err) == -1)
		return -1;
	return (*out = pv_ctl_row(r.res, "merchant", err)) == NULL ? -1 : 0;
}

/*
 * merchant set-mail MERCHANT [--notify-merchant yes|no]
 * [--notify-customers auto|always|never]
 */
int
pv_ctl_set_mail(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *merchant, *notify = NULL, *customers = NULL, *p[3];
	const char *currency;
	const struct pv_ctl_opt opts[] = { { "--notify-merchant", 0, &notify },
		{ "--notify-customers", 0, &customers }, { NULL, 0, NULL } };
	PGresult *res;

	p[1] = NULL;
	if (pv_ctl_parse(argc, argv, opts, &merchant, 1, 1, err) == -1 ||
	    yes_no(notify, "--notify-merchant", &p[1], err) == -1)
		return -1;
	if (customers != NULL && strcmp(customers, "auto") != 0 &&
	    strcmp(customers, "always") != 0 &&
	    strcmp(customers, "never") != 0) {
		PV_ERR(err, PV_E_INVALID, "--notify-customers",
		    "--notify-customers must be auto, always or never, not "
		    "\"%s\"",
		    customers);
		return -1;
	}
	if (p[1] == NULL && customers == NULL)
		return pv_ctl_usage_error(err, "give",
		    "--notify-merchant yes|no and/or --notify-customers "
		    "auto|always|never");
	if (pv_ctl_merchant(ctx, merchant, &p[0], &currency, err) == -1)
		return -1;
	p[2] = customers;
	/* No row means the defaults; the first change makes one. */
	if (pv_db_exec(ctx,
	        PV_SQL("INSERT INTO merchant_mail_settings AS s (merchant_id,"
	               " notify_merchant, notify_customers) VALUES"
	               " ($1::bigint, coalesce($2::boolean, true),"
	               " coalesce($3, 'auto'))"
	               " ON CONFLICT (merchant_id) DO UPDATE SET"
	               " notify_merchant = coalesce($2::boolean,"
	               " s.notify_merchant),"
	               " notify_customers = coalesce($3, s.notify_customers),"
	               " updated_at = now()"
	               " RETURNING (SELECT public_id FROM merchants"
	               " WHERE id = $1::bigint) AS merchant_id,"
	               " notify_merchant, notify_customers"),
	        3, p, &res, err) == -1)
		return -1;
	return (*out = pv_ctl_row(res, "merchant", err)) == NULL ? -1 : 0;
}
