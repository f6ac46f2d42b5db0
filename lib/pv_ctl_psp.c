/*
 * pivotactl merchant connect-stripe | connect-adyen | connect-sandbox,
 * set-shipping, set-tax: a merchant's payment provider (verified with
 * the provider before it is stored sealed) and its shipping and tax
 * rules.  The logic is in pv_payment.c; this file only reads arguments.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "pv_ctl_int.h"
#include "pv_db.h"
#include "pv_money.h"
#include "pv_payment.h"
#include "pv_valid.h"

static int
connect_with(struct pv_ctx *ctx, const char *merchant,
    struct pv_psp_account *acct, int secret_given, struct json_object **out,
    struct pv_err *err)
{
	const char *secret;

	if (pv_payment_connect(ctx, merchant, acct, &secret, err) == -1 ||
	    (*out = pv_ctl_new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "merchant_id",
	    json_object_new_string(merchant));
	json_object_object_add(*out, "provider",
	    json_object_new_string(acct->provider));
	json_object_object_add(*out, "api_base",
	    acct->api_base != NULL && acct->api_base[0] != '\0' ?
	        json_object_new_string(acct->api_base) :
	        NULL);
	/* A secret we made is shown once, to configure the sender with. */
	json_object_object_add(*out, "webhook_secret",
	    secret_given ? json_object_new_string("(as given)") :
	                   json_object_new_string(secret));
	return 0;
}

/*
 * merchant connect-stripe MERCHANT --secret-key sk_... [--webhook-secret
 * whsec_...] [--api-base URL]
 */
int
pv_ctl_psp_connect_stripe(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	struct pv_psp_account acct = { .provider = "stripe" };
	const char *merchant;
	const struct pv_ctl_opt opts[] = { { "--secret-key", 0,
		                               &acct.secret_key },
		{ "--webhook-secret", 0, &acct.webhook_secret },
		{ "--api-base", 0, &acct.api_base }, { NULL, 0, NULL } };

	if (pv_ctl_parse(argc, argv, opts, &merchant, 1, 1, err) == -1)
		return -1;
	if (acct.secret_key == NULL)
		return pv_ctl_usage_error(err, "required:", "--secret-key");
	if (strncmp(acct.secret_key, "sk_", 3) != 0 &&
	    strncmp(acct.secret_key, "rk_", 3) != 0)
		return pv_ctl_usage_error(err,
		    "not a Stripe secret key:", "--secret-key");
	return connect_with(ctx, merchant, &acct, acct.webhook_secret != NULL,
	    out, err);
}

/*
 * merchant connect-adyen MERCHANT --api-key KEY --merchant-account ACCT
 * --hmac-key HEX [--api-base URL]
 */
int
pv_ctl_psp_connect_adyen(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	struct pv_psp_account acct = { .provider = "adyen" };
	const char *merchant;
	const struct pv_ctl_opt opts[] = { { "--api-key", 0, &acct.secret_key },
		{ "--merchant-account", 0, &acct.merchant_account },
		{ "--hmac-key", 0, &acct.webhook_secret },
		{ "--api-base", 0, &acct.api_base }, { NULL, 0, NULL } };

	if (pv_ctl_parse(argc, argv, opts, &merchant, 1, 1, err) == -1)
		return -1;
	if (acct.secret_key == NULL || acct.merchant_account == NULL ||
	    acct.webhook_secret == NULL)
		return pv_ctl_usage_error(err, "required:",
		    "--api-key, --merchant-account and --hmac-key");
	return connect_with(ctx, merchant, &acct, 1, out, err);
}

/* merchant connect-sandbox MERCHANT: the built-in test provider. */
int
pv_ctl_psp_connect_sandbox(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	struct pv_psp_account acct = { .provider = "sandbox" };
	const char *merchant;
	const struct pv_ctl_opt opts[] = { { "--webhook-secret", 0,
		                               &acct.webhook_secret },
		{ NULL, 0, NULL } };

	if (pv_ctl_parse(argc, argv, opts, &merchant, 1, 1, err) == -1)
		return -1;
	return connect_with(ctx, merchant, &acct, acct.webhook_secret != NULL,
	    out, err);
}

/* A money option in the merchant's currency; NULL leaves *out. */
static int
money_opt(const char *s, const char *currency, const char *name, int64_t *out,
    struct pv_err *err)
{
	if (s == NULL)
		return 0;
	return pv_money_parse(s, strlen(s), currency, 0, out, name, err);
}

/*
 * merchant set-shipping MERCHANT --country CC|'*' --rate AMOUNT
 * [--free-over AMOUNT] [--min-days N] [--max-days N] [--delete]
 */
int
pv_ctl_psp_set_shipping(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *merchant, *cc = NULL, *rate = NULL, *free_over = NULL;
	const char *min_s = NULL, *max_s = NULL, *del = NULL, *id, *cur;
	const char *p[7];
	const struct pv_ctl_opt opts[] = { { "--country", 0, &cc },
		{ "--rate", 0, &rate }, { "--free-over", 0, &free_over },
		{ "--min-days", 0, &min_s }, { "--max-days", 0, &max_s },
		{ "--delete", 1, &del }, { NULL, 0, NULL } };
	char rate_s[24], free_s[24], mins[12], maxs[12];
	int64_t rate_m = 0, free_m = -1;
	long min_d = 3, max_d = 7;

	if (pv_ctl_parse(argc, argv, opts, &merchant, 1, 1, err) == -1)
		return -1;
	if (cc == NULL || (strcmp(cc, "*") != 0 && !pv_valid_country(cc)))
		return pv_ctl_usage_error(err, "--country needs", "CC or '*'");
	if (pv_ctl_merchant(ctx, merchant, &id, &cur, err))
		return -1;
	p[0] = id;
	p[1] = cc;
	if (del != NULL) {
		if (pv_db_exec(ctx,
		        PV_SQL("DELETE FROM merchant_shipping_rates WHERE"
		               " merchant_id = $1::bigint AND country = $2"),
		        2, p, NULL, err) == -1)
			return -1;
	} else {
		if (rate == NULL)
			return pv_ctl_usage_error(err, "required:", "--rate");
		if (money_opt(rate, cur, "--rate", &rate_m, err) ||
		    money_opt(free_over, cur, "--free-over", &free_m, err) ||
		    pv_ctl_number(min_s, 0, 365, "--min-days", &min_d, err) ||
		    pv_ctl_number(max_s, 0, 365, "--max-days", &max_d, err))
			return -1;
		if (min_d > max_d)
			return pv_ctl_usage_error(err, "--min-days is above",
			    "--max-days");
		snprintf(rate_s, sizeof(rate_s), "%lld", (long long)rate_m);
		snprintf(free_s, sizeof(free_s), "%lld", (long long)free_m);
		snprintf(mins, sizeof(mins), "%ld", min_d);
		snprintf(maxs, sizeof(maxs), "%ld", max_d);
		p[2] = cur;
		p[3] = rate_s;
		p[4] = free_m >= 0 ? free_s : NULL;
		p[5] = mins;
		p[6] = maxs;
		if (pv_db_exec(ctx,
		        PV_SQL(
		            "INSERT INTO merchant_shipping_rates (merchant_id,"
		            " country, currency, rate_minor, free_over_minor,"
		            " min_days, max_days) VALUES ($1::bigint, $2, $3,"
		            " $4::bigint, $5::bigint, $6::int, $7::int)"
		            " ON CONFLICT (merchant_id, country) DO UPDATE SET"
		            " currency = EXCLUDED.currency,"
		            " rate_minor = EXCLUDED.rate_minor,"
		            " free_over_minor = EXCLUDED.free_over_minor,"
		            " min_days = EXCLUDED.min_days,"
		            " max_days = EXCLUDED.max_days"),
		        7, p, NULL, err) == -1)
			return -1;
	}
	if ((*out = pv_ctl_new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "merchant_id",
	    json_object_new_string(merchant));
	json_object_object_add(*out, "country", json_object_new_string(cc));
	json_object_object_add(*out, "deleted",
	    json_object_new_boolean(del != NULL));
	if (del == NULL) {
		json_object_object_add(*out, "rate_minor",
		    json_object_new_int64(rate_m));
		json_object_object_add(*out, "free_over_minor",
		    free_m >= 0 ? json_object_new_int64(free_m) : NULL);
		json_object_object_add(*out, "currency",
		    json_object_new_string(cur));
	}
	return 0;
}

/* "8.875" (percent) to parts per million; at most 4 decimals. */
static int
percent_ppm(const char *s, long *out, struct pv_err *err)
{
	int64_t v;

	/* A percentage in units of 10^-4 percent is parts per million
	 * (8.875 % = 88750 of either): reuse the strict decimal parser
	 * with a 4-decimal currency (CLF). */
	if (pv_money_parse(s, strlen(s), "CLF", 0, &v, "--rate", err))
		return -1;
	if (v > 1000000) {
		PV_ERR(err, PV_E_INVALID, "--rate", "At most 100 percent.");
		return -1;
	}
	*out = (long)v;
	return 0;
}

/*
 * merchant set-tax MERCHANT --country CC [--region R] --rate PERCENT
 * [--shipping-taxable] [--delete]
 */
int
pv_ctl_psp_set_tax(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *merchant, *cc = NULL, *region = "", *rate = NULL;
	const char *ship = NULL, *del = NULL, *id, *cur, *p[5];
	const struct pv_ctl_opt opts[] = { { "--country", 0, &cc },
		{ "--region", 0, &region }, { "--rate", 0, &rate },
		{ "--shipping-taxable", 1, &ship }, { "--delete", 1, &del },
		{ NULL, 0, NULL } };
	char ppm_s[24];
	long ppm = 0;

	if (pv_ctl_parse(argc, argv, opts, &merchant, 1, 1, err) == -1)
		return -1;
	if (cc == NULL || !pv_valid_country(cc))
		return pv_ctl_usage_error(err, "--country needs", "CC");
	if (strlen(region) > 3)
		return pv_ctl_usage_error(err, "--region is a code such as",
		    "CA");
	if (pv_ctl_merchant(ctx, merchant, &id, &cur, err))
		return -1;
	p[0] = id;
	p[1] = cc;
	p[2] = region;
	if (del != NULL) {
		if (pv_db_exec(ctx,
		        PV_SQL(
		            "DELETE FROM merchant_tax_rates WHERE merchant_id ="
		            " $1::bigint AND country = $2 AND region = $3"),
		        3, p, NULL, err) == -1)
			return -1;
	} else {
		if (rate == NULL)
			return pv_ctl_usage_error(err, "required:", "--rate");
		if (percent_ppm(rate, &ppm, err))
			return -1;
		snprintf(ppm_s, sizeof(ppm_s), "%ld", ppm);
		p[3] = ppm_s;
		p[4] = ship != NULL ? "true" : "false";
		if (pv_db_exec(ctx,
		        PV_SQL(
		            "INSERT INTO merchant_tax_rates (merchant_id,"
		            " country, region, rate_ppm, shipping_taxable)"
		            " VALUES ($1::bigint, $2, $3, $4::int, $5::boolean)"
		            " ON CONFLICT (merchant_id, country, region)"
		            " DO UPDATE SET rate_ppm = EXCLUDED.rate_ppm,"
		            " shipping_taxable = EXCLUDED.shipping_taxable"),
		        5, p, NULL, err) == -1)
			return -1;
	}
	if ((*out = pv_ctl_new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "merchant_id",
	    json_object_new_string(merchant));
	json_object_object_add(*out, "country", json_object_new_string(cc));
	json_object_object_add(*out, "region", json_object_new_string(region));
	json_object_object_add(*out, "deleted",
	    json_object_new_boolean(del != NULL));
	if (del == NULL) {
		json_object_object_add(*out, "rate_ppm",
		    json_object_new_int64(ppm));
		json_object_object_add(*out, "shipping_taxable",
		    json_object_new_boolean(ship != NULL));
	}
	return 0;
}
