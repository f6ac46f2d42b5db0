#ifndef PV_SHOPIFY_H
#define PV_SHOPIFY_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "pv_err.h"
#include "pv_http.h"

/*
 * Shopify: the Admin GraphQL client (on pv_upstream) and a merchant's
 * store connection (table merchant_shopify, migration 0007).  Facts
 * about the API are in external-apis.md 2.
 *
 * Every call is POST {base}/admin/api/PV_SHOPIFY_API_VERSION/graphql.json
 * with X-Shopify-Access-Token and a {query, variables} body.  The base
 * is, first found: the connection's api_base, PIVOTA_SHOPIFY_API_BASE,
 * or https://{shop}.  Queries are retried by pv_upstream on connection
 * failures, 429 and 5xx (honouring Retry-After); a mutation is sent
 * once on a fresh connection, because Shopify has no idempotency key
 * for it.  A THROTTLED answer (or a 429 that pv_upstream did not
 * retry) is waited out here, (requested - available) / restoreRate
 * seconds read from extensions.cost, at most PV_SHOPIFY_THROTTLE_MAX_MS
 * per wait and PV_SHOPIFY_THROTTLE_TRIES times per call; nothing was
 * done by a throttled request, so this holds for mutations too.
 *
 * Errors: HTTP 401 is PV_E_AUTH (bad token), 403 PV_E_FORBIDDEN
 * (missing scope), 404 PV_E_NOTFOUND (no such shop), 402 (frozen) and
 * 423 (locked) PV_E_UPSTREAM with the reason "shopify_frozen" or
 * "shopify_locked"; other statuses, top-level GraphQL errors and
 * malformed answers are PV_E_UPSTREAM (PV_E_TIMEOUT for a timeout);
 * userErrors of a mutation are PV_E_UNPROCESSABLE naming the input
 * field.  Tokens never reach a message or a log line.
 *
 * Unless said otherwise, strings returned live in ctx->arena.
 */

/* The Admin API version every request asks for (external-apis.md 2.1). */
#define PV_SHOPIFY_API_VERSION "2026-07"

/*
 * A product page asks for this many variants and media per product and
 * at most PV_SHOPIFY_PAGE_MAX products, which keeps its requested cost
 * (2 + 25 * (2 + 27 + 7) = 902) under Shopify's 1,000-point query cap.
 * Products with more variants get the rest by extra queries.
 */
#define PV_SHOPIFY_PAGE_MAX      25
#define PV_SHOPIFY_PAGE_VARIANTS 25
#define PV_SHOPIFY_PAGE_MEDIA    5

#define PV_SHOPIFY_THROTTLE_TRIES  6     /* THROTTLED/429 waits per call */
#define PV_SHOPIFY_THROTTLE_MAX_MS 20000 /* longest single wait */
#define PV_SHOPIFY_THROTTLE_MIN_MS 50    /* shortest single wait */
#define PV_SHOPIFY_CURSOR_MAX      1024  /* longest cursor accepted */
#define PV_SHOPIFY_TAG_MAX         40    /* longest order tag */
#define PV_SHOPIFY_TOKEN_MAX       512   /* longest access token */
#define PV_SHOPIFY_LINES_MAX       250   /* line items per order */

/* Where and how to reach one store.  The caller owns the strings. */
struct pv_shopify_conn {
	const char *shop;     /* "name.myshopify.com", lower case */
	const char *token;    /* Admin API access token; never logged */
	const char *api_base; /* NULL or "": configured base or the shop */
};

/* The shop query's answer. */
struct pv_shopify_shop {
	const char *name;        /* shop.name */
	const char *domain;      /* shop.myshopifyDomain */
	const char *currency;    /* shop.currencyCode (ISO 4217) */
	const char *api_version; /* X-Shopify-API-Version served, or "" */
};

/*
 * Walking the catalogue.  product() is called once per product in id
 * order with the product node (borrowed: valid until it returns; copy
 * what you keep).  Its shape is PRODUCTS_QUERY in pv_shopify.c: id
 * title handle descriptionHtml vendor productType tags status
 * updatedAt onlineStoreUrl featuredMedia.preview.image{url altText}
 * media.nodes[].preview.image, variants.nodes[] {id title sku price
 * compareAtPrice inventoryQuantity availableForSale selectedOptions
 * [{name value}]}, every variant present (overflow already fetched).
 * page() is called after the products of each page with the page's
 * end cursor: the checkpoint to save, so a walk started later with
 * after = that cursor continues with the next product.  A page whose
 * page() did not return 0 counts as not done: after a failure, resume
 * from w->cursor and that page's products come again (at least once).
 * Either callback returns 0, or -1 with err set to stop the walk.
 */
typedef int (*pv_shopify_product_fn)(void *arg, struct json_object *product,
    struct pv_err *err);
typedef int (*pv_shopify_page_fn)(void *arg, const char *end_cursor,
    size_t nproducts, int has_next, struct pv_err *err);

struct pv_shopify_walk {
	const char *after;             /* resume after this; NULL, "" = start */
	int page_size;                 /* 1..PV_SHOPIFY_PAGE_MAX, 0 = max */
	int max_pages;                 /* stop after this many, 0 = all */
	pv_shopify_product_fn product; /* per product; required */
	pv_shopify_page_fn page;       /* per page (checkpoint), or NULL */
	void *arg;                     /* passed to both */
	char cursor[PV_SHOPIFY_CURSOR_MAX]; /* out: resume here, "" = start */
	size_t products;                    /* out: product() calls */
	size_t pages;                       /* out: pages done */
	int done; /* out: 1 once the last page is done */
};

/* One line of an order: a Shopify variant and how many. */
struct pv_shopify_line {
	const char *variant_id; /* gid://shopify/ProductVariant/N */
	int64_t quantity;       /* 1 .. 1000000 */
};

/* MailingAddressInput fields; NULL ones are left out. */
struct pv_shopify_address {
	const char *first_name;    /* firstName */
	const char *last_name;     /* lastName */
	const char *company;       /* company */
	const char *address1;      /* address1 */
	const char *address2;      /* address2 */
	const char *city;          /* city */
	const char *province_code; /* provinceCode, e.g. "ON" */
	const char *country_code;  /* countryCode, ISO 3166-1 alpha-2 */
	const char *zip;           /* zip */
	const char *phone;         /* phone */
};

/* A paid order to create in the merchant's store. */
struct pv_shopify_order_in {
	const char *tag;      /* our order id; [A-Za-z0-9_.-], 1..40 */
	const char *email;    /* the customer's */
	const char *currency; /* ISO 4217 of paid_minor */
	const struct pv_shopify_line *lines;       /* borrowed */
	size_t nlines;                             /* 1..PV_SHOPIFY_LINES_MAX */
	const struct pv_shopify_address *shipping; /* or NULL */
	int64_t paid_minor;  /* amount paid, minor units of currency */
	const char *gateway; /* transaction gateway, e.g. "stripe" */
	const char *note;    /* or NULL */
	int send_receipt;    /* 1: Shopify e-mails the customer a receipt */
};

/* An order as Shopify reports it. */
struct pv_shopify_order {
	const char *id;               /* gid://shopify/Order/N */
	const char *name;             /* "#1001" */
	const char *financial_status; /* displayFinancialStatus, e.g. PAID */
	const char *total;            /* totalPriceSet.shopMoney.amount */
	const char *currency;         /* totalPriceSet.shopMoney.currencyCode */
};

/* The shop query: verifies a token and reads the shop's basics. */
int pv_shopify_shop(struct pv_ctx *ctx, const struct pv_shopify_conn *conn,
    struct pv_shopify_shop *out, struct pv_err *err);

/* Walks the products from w->after; see struct pv_shopify_walk. */
int pv_shopify_products_each(struct pv_ctx *ctx,
    const struct pv_shopify_conn *conn, struct pv_shopify_walk *w,
    struct pv_err *err);

/* orderCreate: a paid order tagged with in->tag. */
int pv_shopify_order_create(struct pv_ctx *ctx,
    const struct pv_shopify_conn *conn, const struct pv_shopify_order_in *in,
    struct pv_shopify_order *out, struct pv_err *err);

/* The order carrying exactly this tag: *found is 1 and out filled, or 0. */
int pv_shopify_order_find_by_tag(struct pv_ctx *ctx,
    const struct pv_shopify_conn *conn, const char *tag,
    struct pv_shopify_order *out, int *found, struct pv_err *err);

/*
 * Any other operation: query with variables (NULL for none); *data is
 * the response's data object (ctx->arena).  mutation = 1 sends it once
 * (see above).  pv_shopify_user_errors() fails if payload.userErrors
 * is not empty.
 */
int pv_shopify_graphql(struct pv_ctx *ctx, const struct pv_shopify_conn *conn,
    const char *query, struct json_object *variables, int mutation,
    struct json_object **data, struct pv_err *err);
int pv_shopify_user_errors(struct json_object *payload, struct pv_err *err);

/*
 * Checks a shop domain for connecting: "name.myshopify.com" (any case;
 * *out is lower case), or, outside production and only when api_base
 * is a loopback URL, a loopback host such as "127.0.0.1" (a fake).
 * api_base (NULL or "" for none) must be https, or http to loopback
 * outside production.  PV_E_INVALID naming "shop" or "api_base".
 */
int pv_shopify_check_shop(struct pv_ctx *ctx, const char *shop,
    const char *api_base, const char **out, struct pv_err *err);

/*
 * Connects a merchant's store: checks the input, verifies the token
 * with the shop query and stores the connection with the token (and
 * the webhook secret, NULL for none) sealed under the master key.
 * Nothing is stored unless Shopify accepted the token.  Fills *shop
 * and *connected_at (ISO 8601 UTC).  PV_E_NOTFOUND for an unknown
 * merchant, PV_E_CONFLICT if another merchant has connected the shop,
 * the Shopify errors above, PV_E_DB.
 */
int pv_shopify_connect(struct pv_ctx *ctx, const char *merchant,
    const struct pv_shopify_conn *conn, const char *webhook_secret,
    struct pv_shopify_shop *shop, const char **connected_at,
    struct pv_err *err);

/*
 * Disconnects: stamps disconnected_at and destroys the sealed token and
 * webhook secret.  Fills *shop (the domain).  PV_E_NOTFOUND if the
 * merchant has no connected store.
 */
int pv_shopify_disconnect(struct pv_ctx *ctx, const char *merchant,
    const char **shop, struct pv_err *err);

/*
 * The merchant's live connection with the token unsealed (ctx->arena).
 * PV_E_NOTFOUND if none; PV_E_AUTH if the sealed token does not open.
 */
int pv_shopify_conn_load(struct pv_ctx *ctx, const char *merchant,
    struct pv_shopify_conn *conn, struct pv_err *err);

/* The merchant's webhook secret, unsealed, or *secret = NULL if none. */
int pv_shopify_webhook_secret(struct pv_ctx *ctx, const char *merchant,
    const char **secret, struct pv_err *err);

#endif /* PV_SHOPIFY_H */
