/*
 * pivotactl merchant connect-shopify | disconnect-shopify: the
 * operator's side of pv_shopify_connect() and pv_shopify_disconnect().
 * The token is verified against the store before anything is stored,
 * and is never printed; "--token -" reads it from standard input so it
 * stays out of the process list and the shell history.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "pv_ctl_int.h"
#include "pv_shopify.h"

/* Reads one line (the token) from standard input into ctx->arena. */
static int
read_stdin(struct pv_ctx *ctx, const char **out, struct pv_err *err)
{
	char line[PV_SHOPIFY_TOKEN_MAX + 2];
	size_t len;

	if (fgets(line, sizeof(line), stdin) == NULL) {
		PV_ERR(err, PV_E_INVALID, "token",
		    "no token on standard input");
		return -1;
	}
	len = strcspn(line, "\r\n");
	if (len == strlen(line) && !feof(stdin)) {
		PV_ERR(err, PV_E_INVALID, "token", "token is too long");
		return -1;
	}
	*out = pv_arena_strndup(ctx->arena, line, len, err);
	memset(line, 0, sizeof(line));
	return *out == NULL ? -1 : 0;
}

static struct json_object *
str_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? json_object_new_string(s) : NULL;
}

/*
 * pivotactl merchant connect-shopify MERCHANT --shop DOMAIN --token
 * TOKEN [--api-base URL] [--webhook-secret S]: prints the shop Shopify
 * reported.  Fails (nothing stored) on a bad domain, an unknown
 * merchant or a token the store refuses.
 */
int
pv_ctl_shopify_connect(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	struct pv_shopify_conn conn = { NULL, NULL, NULL };
	const char *merchant, *secret = NULL, *at;
	const struct pv_ctl_opt opts[] = { { "--shop", 0, &conn.shop },
		{ "--token", 0, &conn.token },
		{ "--api-base", 0, &conn.api_base },
		{ "--webhook-secret", 0, &secret }, { NULL, 0, NULL } };
	struct pv_shopify_shop shop;

	if (pv_ctl_parse(argc, argv, opts, &merchant, 1, 1, err) == -1)
		return -1;
	if (conn.shop == NULL || conn.token == NULL)
		return pv_ctl_usage_error(err,
		    "required:", "--shop and --token");
	if (strcmp(conn.token, "-") == 0 &&
	    read_stdin(ctx, &conn.token, err) == -1)
		return -1;
	if (pv_shopify_check_shop(ctx, conn.shop, conn.api_base, &conn.shop,
	        err) == -1)
		return -1;
	if (pv_shopify_connect(ctx, merchant, &conn, secret, &shop, &at, err) ==
	        -1 ||
	    (*out = pv_ctl_new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "merchant_id",
	    json_object_new_string(merchant));
	json_object_object_add(*out, "shop", json_object_new_string(conn.shop));
	json_object_object_add(*out, "myshopify_domain",
	    json_object_new_string(shop.domain));
	json_object_object_add(*out, "shop_name",
	    json_object_new_string(shop.name));
	json_object_object_add(*out, "currency",
	    json_object_new_string(shop.currency));
	json_object_object_add(*out, "api_version",
	    str_or_null(shop.api_version));
	json_object_object_add(*out, "api_base", str_or_null(conn.api_base));
	json_object_object_add(*out, "webhook_secret",
	    json_object_new_boolean(secret != NULL));
	json_object_object_add(*out, "connected_at",
	    json_object_new_string(at));
	return 0;
}

/*
 * pivotactl merchant disconnect-shopify MERCHANT: forgets the token
 * and webhook secret; the catalogue stays until the next sync decides.
 */
int
pv_ctl_shopify_disconnect(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *merchant, *shop;

	if (pv_ctl_parse(argc, argv, NULL, &merchant, 1, 1, err) == -1 ||
	    pv_shopify_disconnect(ctx, merchant, &shop, err) == -1 ||
	    (*out = pv_ctl_new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "merchant_id",
	    json_object_new_string(merchant));
	json_object_object_add(*out, "shop", json_object_new_string(shop));
	json_object_object_add(*out, "connected", json_object_new_boolean(0));
	return 0;
}
