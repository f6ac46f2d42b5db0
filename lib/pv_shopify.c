/*
 * The Shopify Admin GraphQL client and the merchant_shopify table; the
 * contracts are in pv_shopify.h.  One function, gql(), sends every
 * operation and turns each way Shopify can say no (HTTP status, top-
 * level errors, THROTTLED) into a pv_err or a wait; the operations
 * above it only build variables and read the data they asked for.
 *
 * A catalogue walk may fetch thousands of pages, more than one arena
 * could hold, so it parses each page in an arena of its own that is
 * reset between pages: the callbacks borrow a page that dies with the
 * next one, and only the resume cursor is copied out.
 */
#include <string.h>

#include <json-c/json.h>

#include "pv_arena.h"
#include "pv_config.h"
#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_json.h"
#include "pv_log.h"
#include "pv_money.h"
#include "pv_shopify.h"
#include "pv_upstream.h"
#include "pv_valid.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

#define GRAPHQL_PATH   "/admin/api/" PV_SHOPIFY_API_VERSION "/graphql.json"
#define PAGE_ARENA_CAP (64u * 1024u * 1024u) /* one page, parsed */
#define PAGE_RESP_MAX  (16u * 1024u * 1024u) /* one page's body */
#define VARIANT_PAGES  16  /* overflow queries per product (4000 variants) */
#define SECRET_MAX     512 /* longest webhook secret */
#define MYSHOPIFY      ".myshopify.com"
#define WEBHOOK_AAD    "/shopify_webhook_secret" /* after the merchant id */

#define VARIANT_FIELDS \
	"id title sku price compareAtPrice inventoryQuantity" \
	" availableForSale selectedOptions { name value }"

#define ORDER_FIELDS \
	"id name tags displayFinancialStatus" \
	" totalPriceSet { shopMoney { amount currencyCode } }"

static const char SHOP_QUERY[] =
    "query PivotaShop { shop { name myshopifyDomain currencyCode } }";

static const char PRODUCTS_QUERY[] =
    "query PivotaProducts($first: Int!, $after: String) {"
    " products(first: $first, after: $after, sortKey: ID) {"
    " nodes { id title handle descriptionHtml vendor productType tags"
    " status updatedAt onlineStoreUrl"
    " featuredMedia { preview { image { url altText } } }"
    " media(first: " STR(
        PV_SHOPIFY_PAGE_MEDIA) ") {"
                               " nodes { mediaContentType preview { image { "
                               "url altText } } } }"
                               " variants(first: " STR(
                                   PV_SHOPIFY_PAGE_VARIANTS) ") {"
                                                             " nodes "
                                                             "{ " VARIANT_FIELDS
                                                             " } pageInfo { "
                                                             "hasNextPage "
                                                             "endCursor } } }"
                                                             " pageInfo { "
                                                             "hasNextPage "
                                                             "endCursor } } }";

static const char VARIANTS_QUERY[] =
    "query PivotaVariants($id: ID!, $after: String) {"
    " product(id: $id) { variants(first: 250, after: $after) {"
    " nodes { " VARIANT_FIELDS " } pageInfo { hasNextPage endCursor } } } }";

static const char ORDER_CREATE[] =
    "mutation PivotaOrderCreate($order: OrderCreateOrderInput!,"
    " $options: OrderCreateOptionsInput) {"
    " orderCreate(order: $order, options: $options) {"
    " order { " ORDER_FIELDS " } userErrors { field message code } } }";

/* A few, not one: the search is by words and we want the exact tag. */
static const char ORDERS_BY_TAG[] =
    "query PivotaOrderByTag($query: String!) {"
    " orders(first: 5, query: $query) { nodes { " ORDER_FIELDS " } } }";

/* Shopify's leaky bucket as the last answer described it. */
struct bucket {
	double requested; /* what the last query asked for */
	double available; /* points left */
	double restore;   /* points per second */
	int known;        /* 1 once an answer carried extensions.cost */
};

/* One conversation with a store: several requests share it. */
struct call {
	struct pv_ctx *ctx;                 /* upstream client, config */
	struct pv_arena *a;                 /* where answers live */
	const struct pv_shopify_conn *conn; /* borrowed */
	const char *url;                    /* the GraphQL endpoint, in a */
	size_t max_resp;                    /* body cap, 0 = default */
	struct bucket bucket;               /* throttle state */
	char served[16];                    /* X-Shopify-API-Version seen */
	int deprecated;                     /* a deprecation header came */
};

static void
call_init(struct call *c, struct pv_ctx *ctx, struct pv_arena *a,
    const struct pv_shopify_conn *conn)
{
	memset(c, 0, sizeof(*c));
	c->ctx = ctx;
	c->a = a;
	c->conn = conn;
}

/* The member key of o if o is an object holding it (non-null). */
static struct json_object *
get(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

static struct json_object *
get_type(struct json_object *o, const char *key, enum json_type t)
{
	struct json_object *v = get(o, key);

	return v != NULL && json_object_is_type(v, t) ? v : NULL;
}

static const char *
get_str(struct json_object *o, const char *key)
{
	struct json_object *v = get_type(o, key, json_type_string);

	return v != NULL ? json_object_get_string(v) : NULL;
}

/* A JSON number (Shopify sends both 2000 and 2000.0), or -1. */
static double
get_num(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	if (v == NULL ||
	    !(json_object_is_type(v, json_type_int) ||
	        json_object_is_type(v, json_type_double)))
		return -1;
	return json_object_get_double(v);
}

static int
malformed(struct pv_err *err, const char *what)
{
	PV_ERR(err, PV_E_UPSTREAM, NULL, "Shopify sent an answer without %s",
	    what);
	return -1;
}

/* The endpoint: connection base, configured base, or the shop. */
static const char *
endpoint(struct call *c, struct pv_err *err)
{
	const struct pv_shopify_conn *conn = c->conn;
	const char *base = conn->api_base;

	if (base == NULL || *base == '\0')
		base = c->ctx->cfg->shopify_api_base;
	if (base == NULL || *base == '\0') {
		if (conn->shop == NULL || *conn->shop == '\0') {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "Shopify connection without a shop");
			return NULL;
		}
		if ((base = pv_arena_printf(c->a, err, "https://%s",
		         conn->shop)) == NULL)
			return NULL;
	}
	return pv_upstream_url(c->a, base, GRAPHQL_PATH, err);
}

static long
clamp_wait(double ms)
{
	if (!(ms >= PV_SHOPIFY_THROTTLE_MIN_MS)) /* also NaN */
		return PV_SHOPIFY_THROTTLE_MIN_MS;
	if (ms > PV_SHOPIFY_THROTTLE_MAX_MS)
		return PV_SHOPIFY_THROTTLE_MAX_MS;
	return (long)(ms + 0.999);
}

/* How long until the bucket holds what the last query asked for. */
static long
throttle_ms(const struct bucket *b)
{
	if (!b->known || !(b->restore > 0))
		return 1000;
	return clamp_wait((b->requested - b->available) / b->restore * 1000.0);
}

/*
 * Before the next request of a walk: if the last answer left less in
 * the bucket than that query cost, wait for it rather than be throttled.
 */
static void
pace(struct call *c)
{
	const struct bucket *b = &c->bucket;

	if (b->known && b->restore > 0 && b->available < b->requested)
		pv_upstream_sleep(c->ctx->up, throttle_ms(b));
}

static void
read_cost(struct call *c, struct json_object *root)
{
	struct json_object *cost = get(get(root, "extensions"), "cost");
	struct json_object *ts = get(cost, "throttleStatus");
	double req = get_num(cost, "requestedQueryCost");
	double avail = get_num(ts, "currentlyAvailable");
	double restore = get_num(ts, "restoreRate");

	if (req < 0 || avail < 0 || restore < 0)
		return;
	c->bucket.requested = req;
	c->bucket.available = avail;
	c->bucket.restore = restore;
	c->bucket.known = 1;
}

/* Maps an HTTP status other than 2xx and 429 to an error. */
static int
status_error(long status, struct pv_err *err)
{
	switch (status) {
	case 401:
		PV_ERR(err, PV_E_AUTH, NULL,
		    "Shopify refused the access token (HTTP 401)");
		break;
	case 402:
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "the Shopify store is frozen: its bill is unpaid (HTTP "
		    "402)");
		pv_err_reason(err, "shopify_frozen");
		break;
	case 403:
		PV_ERR(err, PV_E_FORBIDDEN, NULL,
		    "the Shopify access token lacks a scope this needs "
		    "(HTTP 403)");
		break;
	case 404:
		PV_ERR(err, PV_E_NOTFOUND, NULL,
		    "no such Shopify store or API version (HTTP 404)");
		break;
	case 423:
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "the Shopify store is locked (HTTP 423)");
		pv_err_reason(err, "shopify_locked");
		break;
	default:
		PV_ERR(err, PV_E_UPSTREAM, NULL, "Shopify answered HTTP %ld",
		    status);
		break;
	}
	return -1;
}

/* The extensions.code of the first GraphQL error, or "". */
static const char *
error_code(struct json_object *errors)
{
	const char *code;

	if (!json_object_is_type(errors, json_type_array) ||
	    json_object_array_length(errors) == 0)
		return "";
	code = get_str(get(json_object_array_get_idx(errors, 0), "extensions"),
	    "code");
	return code != NULL ? code : "";
}

/* Top-level errors (GraphQL's array, or a REST-style string). */
static int
graphql_error(struct json_object *errors, struct pv_err *err)
{
	const char *code = error_code(errors), *msg = NULL;

	if (json_object_is_type(errors, json_type_array) &&
	    json_object_array_length(errors) > 0)
		msg = get_str(json_object_array_get_idx(errors, 0), "message");
	else if (json_object_is_type(errors, json_type_string))
		msg = json_object_get_string(errors);
	if (msg == NULL)
		msg = "(no message)";
	if (strcmp(code, "ACCESS_DENIED") == 0) {
		PV_ERR(err, PV_E_FORBIDDEN, NULL,
		    "the Shopify access token lacks a scope this needs "
		    "(ACCESS_DENIED)");
		return -1;
	}
	PV_ERR(err, PV_E_UPSTREAM, NULL, "Shopify GraphQL error%s%s%s: %.160s",
	    *code != '\0' ? " (" : "", code, *code != '\0' ? ")" : "", msg);
	if (strcmp(code, "THROTTLED") == 0)
		pv_err_reason(err, "shopify_throttled");
	return -1;
}

static void
note_headers(struct call *c, const struct pv_upstream_resp *resp)
{
	const char *v = pv_upstream_resp_header(resp, "X-Shopify-API-Version");
	size_t n;

	if (v != NULL && (n = strlen(v)) < sizeof(c->served)) {
		memcpy(c->served, v, n + 1);
	}
	if (pv_upstream_resp_header(resp, "X-Shopify-API-Deprecated-Reason") !=
	    NULL)
		c->deprecated = 1;
}

/*
 * Sends one operation and returns its data object (in c->a).  Waits
 * out THROTTLED and 429 answers (see pv_shopify.h); every other failure
 * is returned at once.
 */
static int
gql(struct call *c, const char *query, struct json_object *vars, int mutation,
    struct json_object **data, struct pv_err *err)
{
	struct pv_upstream_hdr hdrs[3];
	struct pv_upstream_req req;
	struct pv_upstream_resp resp;
	struct json_object *root, *errors;
	struct pv_err perr;
	const char *body;
	size_t bodylen;
	int tries;

	*data = NULL;
	if (c->conn->token == NULL || *c->conn->token == '\0') {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "Shopify connection without a token");
		return -1;
	}
	if (c->url == NULL && (c->url = endpoint(c, err)) == NULL)
		return -1;
	root = pv_json_new_obj(c->a, err);
	pv_json_set_str(root, "query", query, err);
	if (vars != NULL)
		pv_json_set(root, "variables", vars, err);
	if (pv_json_to_str(c->a, root, &body, &bodylen, err) == -1)
		return -1;
	hdrs[0].name = "X-Shopify-Access-Token";
	hdrs[0].value = c->conn->token;
	hdrs[1].name = "Content-Type";
	hdrs[1].value = "application/json";
	hdrs[2].name = "Accept";
	hdrs[2].value = "application/json";
	memset(&req, 0, sizeof(req));
	req.method = PV_UPSTREAM_POST;
	req.url = c->url;
	req.hdrs = hdrs;
	req.nhdrs = 3;
	req.body = body;
	req.bodylen = bodylen;
	req.retry_safe = !mutation;
	req.max_resp = c->max_resp;
	for (tries = 1;; tries++) {
		if (pv_upstream_do(c->ctx->up, c->a, &req, &resp, err) == -1)
			return -1;
		note_headers(c, &resp);
		if (resp.status == 429 && tries < PV_SHOPIFY_THROTTLE_TRIES) {
			pv_upstream_sleep(c->ctx->up,
			    resp.retry_after_ms >= 0 ?
			        clamp_wait((double)resp.retry_after_ms) :
			        1000);
			continue;
		}
		if (resp.status == 429) {
			PV_ERR(err, PV_E_UPSTREAM, NULL,
			    "Shopify kept answering 429 (rate limited)");
			pv_err_reason(err, "shopify_throttled");
			return -1;
		}
		if (resp.status < 200 || resp.status > 299)
			return status_error(resp.status, err);
		memset(&perr, 0, sizeof(perr));
		if (pv_json_parse(c->a, resp.body, resp.bodylen, &root,
		        &perr) == -1) {
			if (perr.code == PV_E_NOMEM)
				*err = perr;
			else
				PV_ERR(err, PV_E_UPSTREAM, NULL,
				    "Shopify sent malformed JSON: %s",
				    perr.msg);
			return -1;
		}
		read_cost(c, root);
		if ((errors = get(root, "errors")) != NULL) {
			if (strcmp(error_code(errors), "THROTTLED") == 0 &&
			    tries < PV_SHOPIFY_THROTTLE_TRIES) {
				pv_upstream_sleep(c->ctx->up,
				    throttle_ms(&c->bucket));
				continue;
			}
			return graphql_error(errors, err);
		}
		if ((*data = get_type(root, "data", json_type_object)) == NULL)
			return malformed(err, "data");
		return 0;
	}
}

/* See pv_shopify.h.  The data object lives in ctx->arena. */
int
pv_shopify_graphql(struct pv_ctx *ctx, const struct pv_shopify_conn *conn,
    const char *query, struct json_object *variables, int mutation,
    struct json_object **data, struct pv_err *err)
{
	struct call c;

	call_init(&c, ctx, ctx->arena, conn);
	return gql(&c, query, variables, mutation, data, err);
}

/*
 * Fails with PV_E_UNPROCESSABLE if payload.userErrors holds an error,
 * naming its input path ("order.lineItems.0.variantId") in err->field
 * and quoting Shopify's message; the reason is "shopify_user_error".
 * PV_E_UPSTREAM if userErrors is there but not an array.
 */
int
pv_shopify_user_errors(struct json_object *payload, struct pv_err *err)
{
	struct json_object *ue = get(payload, "userErrors"), *e, *f, *part;
	char field[64];
	const char *msg, *s;
	size_t i, len = 0, n;

	if (ue == NULL)
		return 0;
	if (!json_object_is_type(ue, json_type_array))
		return malformed(err, "a userErrors list");
	if (json_object_array_length(ue) == 0)
		return 0;
	e = json_object_array_get_idx(ue, 0);
	field[0] = '\0';
	f = get_type(e, "field", json_type_array);
	for (i = 0; f != NULL && i < json_object_array_length(f); i++) {
		part = json_object_array_get_idx(f, i);
		s = json_object_get_string(part);
		n = s != NULL ? strlen(s) : 0;
		if (len + n + 2 > sizeof(field))
			break;
		if (len > 0)
			field[len++] = '.';
		memcpy(field + len, s, n);
		len += n;
		field[len] = '\0';
	}
	if ((msg = get_str(e, "message")) == NULL)
		msg = "(no message)";
	PV_ERR(err, PV_E_UNPROCESSABLE, field, "Shopify refused it: %s%s%.160s",
	    field, *field != '\0' ? ": " : "", msg);
	pv_err_reason(err, "shopify_user_error");
	return -1;
}

/*
 * The shop query.  Fills out with arena strings; a shop without name,
 * domain or a known currency is PV_E_UPSTREAM.  Other errors as in
 * pv_shopify.h (a bad token is PV_E_AUTH).
 */
int
pv_shopify_shop(struct pv_ctx *ctx, const struct pv_shopify_conn *conn,
    struct pv_shopify_shop *out, struct pv_err *err)
{
	struct json_object *data, *shop;
	struct call c;

	memset(out, 0, sizeof(*out));
	call_init(&c, ctx, ctx->arena, conn);
	if (gql(&c, SHOP_QUERY, NULL, 0, &data, err) == -1)
		return -1;
	shop = get_type(data, "shop", json_type_object);
	out->name = get_str(shop, "name");
	out->domain = get_str(shop, "myshopifyDomain");
	out->currency = get_str(shop, "currencyCode");
	if (out->name == NULL || out->domain == NULL || out->currency == NULL)
		return malformed(err, "shop name, domain and currency");
	if (pv_money_exponent(out->currency) < 0) {
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "Shopify reported an unknown currency");
		return -1;
	}
	out->api_version = pv_arena_strdup(ctx->arena, c.served, err);
	return out->api_version == NULL ? -1 : 0;
}

/*
 * Fetches the variants a product page left out (more than
 * PV_SHOPIFY_PAGE_VARIANTS) and appends them to the product's
 * variants.nodes, so callbacks see every variant.
 */
static int
more_variants(struct call *c, struct json_object *product, struct pv_err *err)
{
	struct json_object *variants, *nodes, *info, *vars, *data, *more, *n;
	const char *id, *after;
	size_t i, len;
	int pages;

	variants = get_type(product, "variants", json_type_object);
	nodes = get_type(variants, "nodes", json_type_array);
	info = get_type(variants, "pageInfo", json_type_object);
	if (nodes == NULL || info == NULL)
		return malformed(err, "product variants");
	for (pages = 0; json_object_get_boolean(get(info, "hasNextPage"));
	     pages++) {
		if ((id = get_str(product, "id")) == NULL ||
		    (after = get_str(info, "endCursor")) == NULL)
			return malformed(err, "a variants cursor");
		if (pages == VARIANT_PAGES) {
			PV_ERR(err, PV_E_UPSTREAM, NULL,
			    "Shopify product %.80s has too many variants", id);
			return -1;
		}
		pace(c);
		vars = pv_json_new_obj(c->a, err);
		pv_json_set_str(vars, "id", id, err);
		pv_json_set_str(vars, "after", after, err);
		if (err->code != PV_OK ||
		    gql(c, VARIANTS_QUERY, vars, 0, &data, err) == -1)
			return -1;
		if ((more = get_type(get(get(data, "product"), "variants"),
		         "nodes", json_type_array)) == NULL ||
		    (info = get_type(get(get(data, "product"), "variants"),
		         "pageInfo", json_type_object)) == NULL)
			return malformed(err, "product variants");
		len = json_object_array_length(more);
		for (i = 0; i < len; i++) {
			n = json_object_array_get_idx(more, i);
			if (json_object_array_add(nodes, json_object_get(n)) !=
			    0) {
				json_object_put(n);
				PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
				return -1;
			}
		}
		/* The product now holds every variant fetched so far. */
		if (json_object_object_add(variants, "pageInfo",
		        json_object_get(info)) != 0) {
			json_object_put(info);
			PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* One page: fetch, complete, hand out.  *next is its end cursor. */
static int
walk_page(struct call *c, struct pv_shopify_walk *w, const char *after,
    int first, const char **next, size_t *n, int *has_next, struct pv_err *err)
{
	struct json_object *vars, *data, *products, *nodes, *info, *p;
	size_t i;

	vars = pv_json_new_obj(c->a, err);
	pv_json_set_int(vars, "first", first, err);
	pv_json_set_str(vars, "after", after, err);
	if (err->code != PV_OK ||
	    gql(c, PRODUCTS_QUERY, vars, 0, &data, err) == -1)
		return -1;
	products = get_type(data, "products", json_type_object);
	nodes = get_type(products, "nodes", json_type_array);
	info = get_type(products, "pageInfo", json_type_object);
	if (nodes == NULL || info == NULL)
		return malformed(err, "products and pageInfo");
	*n = json_object_array_length(nodes);
	*has_next = json_object_get_boolean(get(info, "hasNextPage"));
	*next = get_str(info, "endCursor");
	if ((*next == NULL && (*n > 0 || *has_next)) ||
	    (*next != NULL && after != NULL && strcmp(*next, after) == 0) ||
	    (*n == 0 && *has_next))
		return malformed(err, "a cursor that moves on");
	if (*next != NULL && strlen(*next) >= PV_SHOPIFY_CURSOR_MAX) {
		PV_ERR(err, PV_E_UPSTREAM, NULL, "Shopify cursor too long");
		return -1;
	}
	for (i = 0; i < *n; i++) {
		p = json_object_array_get_idx(nodes, i);
		if (!json_object_is_type(p, json_type_object))
			return malformed(err, "product objects");
		if (more_variants(c, p, err) == -1 ||
		    w->product(w->arg, p, err) == -1)
			return -1;
		w->products++;
	}
	return 0;
}

/*
 * Walks the catalogue as struct pv_shopify_walk describes, a page at a
 * time, until the last page, w->max_pages pages or a failure.  Pages
 * are parsed in a private arena (up to 64 MiB) freed before returning.
 * w->cursor always ends holding where to resume: the end cursor of the
 * last page done, else w->after, else "".  Returns 0, or -1 with a callback's
 * error, the Shopify errors of pv_shopify.h, PV_E_INVALID for a bad w
 * (page_size, cursor), or PV_E_NOMEM.
 */
int
pv_shopify_products_each(struct pv_ctx *ctx, const struct pv_shopify_conn *conn,
    struct pv_shopify_walk *w, struct pv_err *err)
{
	char *done = w->cursor;
	size_t alen = w->after != NULL ? strlen(w->after) : 0;
	struct pv_arena *pa = NULL;
	const char *next;
	struct call c;
	size_t n;
	int first = w->page_size, has_next, have_done, rc = -1;

	w->products = 0;
	w->pages = 0;
	w->done = 0;
	if (alen >= PV_SHOPIFY_CURSOR_MAX) {
		done[0] = '\0';
		PV_ERR(err, PV_E_INVALID, "after", "resume cursor is too long");
		return -1;
	}
	/* w->after may be w->cursor itself, kept from the last walk. */
	memmove(done, w->after != NULL ? w->after : "", alen);
	done[alen] = '\0';
	have_done = alen > 0;
	if (first == 0)
		first = PV_SHOPIFY_PAGE_MAX;
	if (w->product == NULL || first < 1 || first > PV_SHOPIFY_PAGE_MAX ||
	    w->max_pages < 0) {
		PV_ERR(err, PV_E_INVALID, "page_size",
		    "page size must be 1 to %d", PV_SHOPIFY_PAGE_MAX);
		return -1;
	}
	if ((pa = pv_arena_new(PAGE_ARENA_CAP)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	call_init(&c, ctx, pa, conn);
	c.max_resp = PAGE_RESP_MAX;
	while (w->max_pages == 0 || w->pages < (size_t)w->max_pages) {
		if (w->pages > 0)
			pace(&c);
		/* Everything of the last page dies here, URL included. */
		pv_arena_reset(pa);
		c.url = NULL;
		if (walk_page(&c, w, have_done ? done : NULL, first, &next, &n,
		        &has_next, err) == -1)
			goto out;
		if (n > 0 && w->page != NULL &&
		    w->page(w->arg, next, n, has_next, err) == -1)
			goto out;
		if (next != NULL) {
			memcpy(done, next, strlen(next) + 1);
			have_done = 1;
		}
		w->pages++;
		if (!has_next) {
			w->done = 1;
			break;
		}
	}
	rc = 0;
out:
	if (c.served[0] != '\0' &&
	    (strcmp(c.served, PV_SHOPIFY_API_VERSION) != 0 || c.deprecated))
		pv_log_msg(PV_LOG_WARN,
		    "shopify %s: asked for API %s, served %s%s",
		    conn->shop != NULL ? conn->shop : "(api base)",
		    PV_SHOPIFY_API_VERSION, c.served,
		    c.deprecated ? " (deprecated fields used)" : "");
	pv_arena_free(pa);
	return rc;
}

/* Tags we write: plain enough to need no escaping in a search. */
static int
check_tag(const char *tag, struct pv_err *err)
{
	size_t len = tag != NULL ? strlen(tag) : 0;

	if (len == 0 || len > PV_SHOPIFY_TAG_MAX ||
	    strspn(tag,
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	        "0123456789_.-") != len) {
		PV_ERR(err, PV_E_INVALID, "tag",
		    "tag must be 1 to %d letters, digits, '_', '.' or '-'",
		    PV_SHOPIFY_TAG_MAX);
		return -1;
	}
	return 0;
}

/* Fills out from an Order node; PV_E_UPSTREAM if it lacks an id. */
static int
read_order(struct json_object *o, struct pv_shopify_order *out,
    struct pv_err *err)
{
	struct json_object *money = get(get(o, "totalPriceSet"), "shopMoney");

	out->id = get_str(o, "id");
	out->name = get_str(o, "name");
	out->financial_status = get_str(o, "displayFinancialStatus");
	out->total = get_str(money, "amount");
	out->currency = get_str(money, "currencyCode");
	if (out->id == NULL)
		return malformed(err, "an order id");
	return 0;
}

/* Adds key: s to o unless s is NULL. */
static void
set_opt(struct json_object *o, const char *key, const char *s,
    struct pv_err *err)
{
	if (s != NULL)
		pv_json_set_str(o, key, s, err);
}

static struct json_object *
address(struct pv_arena *a, const struct pv_shopify_address *s,
    struct pv_err *err)
{
	struct json_object *o = pv_json_new_obj(a, err);

	set_opt(o, "firstName", s->first_name, err);
	set_opt(o, "lastName", s->last_name, err);
	set_opt(o, "company", s->company, err);
	set_opt(o, "address1", s->address1, err);
	set_opt(o, "address2", s->address2, err);
	set_opt(o, "city", s->city, err);
	set_opt(o, "provinceCode", s->province_code, err);
	set_opt(o, "countryCode", s->country_code, err);
	set_opt(o, "zip", s->zip, err);
	set_opt(o, "phone", s->phone, err);
	return o;
}

/* Checks the parts of an order that Shopify would refuse less clearly. */
static int
check_order(const struct pv_shopify_order_in *in, struct pv_err *err)
{
	size_t i;

	if (check_tag(in->tag, err) == -1 ||
	    pv_valid_email(in->email != NULL ? in->email : "",
	        in->email != NULL ? strlen(in->email) : 0, "email",
	        err) == -1 ||
	    pv_money_currency_check(in->currency != NULL ? in->currency : "",
	        "currency", err) == -1 ||
	    pv_valid_range(in->paid_minor, 0, INT64_MAX / 2, "paid", err) ==
	        -1 ||
	    pv_valid_range((int64_t)in->nlines, 1, PV_SHOPIFY_LINES_MAX,
	        "lines", err) == -1)
		return -1;
	if (in->gateway == NULL || *in->gateway == '\0') {
		PV_ERR(err, PV_E_INVALID, "gateway", "gateway is required");
		return -1;
	}
	for (i = 0; i < in->nlines; i++) {
		if (in->lines[i].variant_id == NULL ||
		    strncmp(in->lines[i].variant_id,
		        "gid://shopify/ProductVariant/", 29) != 0) {
			PV_ERR(err, PV_E_INVALID, "lines",
			    "line %zu: variant id must be a ProductVariant gid",
			    i);
			return -1;
		}
		if (pv_valid_range(in->lines[i].quantity, 1, 1000000,
		        "quantity", err) == -1)
			return -1;
	}
	return 0;
}

/* The variables of orderCreate for in (ctx->arena); sticky on err. */
static struct json_object *
order_vars(struct pv_ctx *ctx, const struct pv_shopify_order_in *in,
    struct pv_err *err)
{
	struct json_object *vars, *order, *lines, *line, *tx, *txs, *set, *shop,
	    *opts, *tags;
	char amount[PV_MONEY_FORMAT_SIZE];
	struct pv_arena *a = ctx->arena;
	size_t i;

	if (pv_money_format(in->paid_minor, in->currency, amount,
	        sizeof(amount), err) == -1)
		return NULL;
	vars = pv_json_new_obj(a, err);
	order = pv_json_new_obj(a, err);
	pv_json_set_str(order, "email", in->email, err);
	pv_json_set_str(order, "currency", in->currency, err);
	lines = pv_json_new_arr(a, err);
	for (i = 0; i < in->nlines; i++) {
		line = pv_json_new_obj(a, err);
		pv_json_set_str(line, "variantId", in->lines[i].variant_id,
		    err);
		pv_json_set_int(line, "quantity", in->lines[i].quantity, err);
		pv_json_push(lines, line, err);
	}
	pv_json_set(order, "lineItems", lines, err);
	if (in->shipping != NULL)
		pv_json_set(order, "shippingAddress",
		    address(a, in->shipping, err), err);
	pv_json_set_str(order, "financialStatus", "PAID", err);
	shop = pv_json_new_obj(a, err);
	pv_json_set_str(shop, "amount", amount, err);
	pv_json_set_str(shop, "currencyCode", in->currency, err);
	set = pv_json_new_obj(a, err);
	pv_json_set(set, "shopMoney", shop, err);
	tx = pv_json_new_obj(a, err);
	pv_json_set_str(tx, "kind", "SALE", err);
	pv_json_set_str(tx, "status", "SUCCESS", err);
	pv_json_set_str(tx, "gateway", in->gateway, err);
	pv_json_set(tx, "amountSet", set, err);
	txs = pv_json_new_arr(a, err);
	pv_json_push(txs, tx, err);
	pv_json_set(order, "transactions", txs, err);
	tags = pv_json_new_arr(a, err);
	pv_json_push_str(tags, in->tag, err);
	pv_json_set(order, "tags", tags, err);
	set_opt(order, "note", in->note, err);
	opts = pv_json_new_obj(a, err);
	pv_json_set_bool(opts, "sendReceipt", in->send_receipt != 0, err);
	pv_json_set_bool(opts, "sendFulfillmentReceipt", in->send_receipt != 0,
	    err);
	pv_json_set_str(opts, "inventoryBehaviour", "DECREMENT_OBEYING_POLICY",
	    err);
	pv_json_set(vars, "order", order, err);
	pv_json_set(vars, "options", opts, err);
	return err->code == PV_OK ? vars : NULL;
}

/*
 * orderCreate: a PAID order with one SALE transaction of in->paid_minor
 * through in->gateway, tagged in->tag, stock decremented as the shop's
 * policy says, and a receipt e-mailed if in->send_receipt.  Sent once:
 * after PV_E_UPSTREAM or PV_E_TIMEOUT the order may or may not exist,
 * so look for the tag with pv_shopify_order_find_by_tag() before
 * trying again (Shopify's search may lag the create by a few seconds).
 * PV_E_INVALID for bad input (nothing sent), PV_E_UNPROCESSABLE for
 * userErrors, the errors of pv_shopify.h.
 */
int
pv_shopify_order_create(struct pv_ctx *ctx, const struct pv_shopify_conn *conn,
    const struct pv_shopify_order_in *in, struct pv_shopify_order *out,
    struct pv_err *err)
{
	struct json_object *vars, *data, *payload, *order;
	struct call c;

	memset(out, 0, sizeof(*out));
	if (check_order(in, err) == -1 ||
	    (vars = order_vars(ctx, in, err)) == NULL)
		return -1;
	call_init(&c, ctx, ctx->arena, conn);
	if (gql(&c, ORDER_CREATE, vars, 1, &data, err) == -1)
		return -1;
	if ((payload = get_type(data, "orderCreate", json_type_object)) == NULL)
		return malformed(err, "an orderCreate result");
	if (pv_shopify_user_errors(payload, err) == -1)
		return -1;
	if ((order = get_type(payload, "order", json_type_object)) == NULL)
		return malformed(err, "the order created");
	return read_order(order, out, err);
}

/* 1 if the order's tags list holds tag exactly. */
static int
has_tag(struct json_object *order, const char *tag)
{
	struct json_object *tags = get_type(order, "tags", json_type_array);
	const char *s;
	size_t i;

	for (i = 0; tags != NULL && i < json_object_array_length(tags); i++)
		if ((s = json_object_get_string(
		         json_object_array_get_idx(tags, i))) != NULL &&
		    strcmp(s, tag) == 0)
			return 1;
	return 0;
}

/*
 * Looks for the order tagged tag (orders(query: "tag:...")), checking
 * the tag exactly since the search matches words.  *found = 0 and out
 * zeroed when there is none.  PV_E_INVALID for a bad tag, the errors
 * of pv_shopify.h.
 */
int
pv_shopify_order_find_by_tag(struct pv_ctx *ctx,
    const struct pv_shopify_conn *conn, const char *tag,
    struct pv_shopify_order *out, int *found, struct pv_err *err)
{
	struct json_object *vars, *data, *nodes, *o;
	const char *q;
	struct call c;
	size_t i;

	memset(out, 0, sizeof(*out));
	*found = 0;
	if (check_tag(tag, err) == -1 ||
	    (q = pv_arena_printf(ctx->arena, err, "tag:\"%s\"", tag)) == NULL)
		return -1;
	vars = pv_json_new_obj(ctx->arena, err);
	if (pv_json_set_str(vars, "query", q, err) == -1)
		return -1;
	call_init(&c, ctx, ctx->arena, conn);
	if (gql(&c, ORDERS_BY_TAG, vars, 0, &data, err) == -1)
		return -1;
	if ((nodes = get_type(get(data, "orders"), "nodes", json_type_array)) ==
	    NULL)
		return malformed(err, "orders");
	for (i = 0; i < json_object_array_length(nodes); i++) {
		o = json_object_array_get_idx(nodes, i);
		if (has_tag(o, tag)) {
			*found = 1;
			return read_order(o, out, err);
		}
	}
	return 0;
}

/* A loopback host as a shop name: "localhost", "127.x.y.z", "[::1]". */
static int
loopback_host(struct pv_upstream *up, const char *s)
{
	char url[300];
	struct pv_err e = { 0 };
	int n;

	if (strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.:[]") != strlen(s))
		return 0;
	n = snprintf(url, sizeof(url), "http://%s/", s);
	return n > 0 && (size_t)n < sizeof(url) &&
	    pv_upstream_url_loopback(up, url, "shop", &e) == 1;
}

/* See pv_shopify.h. */
int
pv_shopify_check_shop(struct pv_ctx *ctx, const char *shop,
    const char *api_base, const char **out, struct pv_err *err)
{
	size_t len = shop != NULL ? strlen(shop) : 0, i, label;
	int loop = 0;
	char *s;

	*out = NULL;
	if (api_base != NULL && *api_base != '\0') {
		if ((loop = pv_upstream_url_loopback(ctx->up, api_base,
		         "api_base", err)) == -1)
			return -1;
		if (loop && ctx->cfg->env == PV_ENV_PROD) {
			PV_ERR(err, PV_E_INVALID, "api_base",
			    "api_base may point at loopback only outside "
			    "production");
			return -1;
		}
	}
	if (len == 0 || len > 255 ||
	    (s = pv_arena_strndup(ctx->arena, shop, len, err)) == NULL) {
		if (err->code == PV_OK)
			PV_ERR(err, PV_E_INVALID, "shop",
			    "shop must be a *.myshopify.com domain");
		return -1;
	}
	for (i = 0; i < len; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
	label = len > strlen(MYSHOPIFY) ? len - strlen(MYSHOPIFY) : 0;
	if (label > 0 && label <= 63 && strcmp(s + label, MYSHOPIFY) == 0 &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == label &&
	    s[0] != '-' && s[label - 1] != '-') {
		*out = s;
		return 0;
	}
	if (loop && loopback_host(ctx->up, s)) {
		*out = s;
		return 0;
	}
	PV_ERR(err, PV_E_INVALID, "shop", "%s",
	    loop ? "shop must be a *.myshopify.com domain or a loopback host" :
	           "shop must be a *.myshopify.com domain");
	return -1;
}

/* Printable ASCII without spaces: safe in a header, plausible as a key. */
static int
check_secret(const char *s, size_t max, const char *field, struct pv_err *err)
{
	size_t i, len = s != NULL ? strlen(s) : 0;

	for (i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			break;
	if (len == 0 || len > max || i != len) {
		PV_ERR(err, PV_E_INVALID, field,
		    "%s must be 1 to %zu printable characters without spaces",
		    field, max);
		return -1;
	}
	return 0;
}

/* The additional data sealing a merchant's webhook secret. */
static const char *
webhook_aad(struct pv_ctx *ctx, const char *merchant, struct pv_err *err)
{
	return pv_arena_printf(ctx->arena, err, "%s" WEBHOOK_AAD, merchant);
}

/* See pv_shopify.h.  The merchant is checked before Shopify is asked. */
int
pv_shopify_connect(struct pv_ctx *ctx, const char *merchant,
    const struct pv_shopify_conn *conn, const char *webhook_secret,
    struct pv_shopify_shop *shop, const char **connected_at, struct pv_err *err)
{
	struct pv_shopify_conn c = *conn;
	const char *p[9], *aad;
	PGresult *res;

	memset(shop, 0, sizeof(*shop));
	*connected_at = NULL;
	if (pv_config_require_master_key(ctx->cfg, err) == -1 ||
	    pv_shopify_check_shop(ctx, conn->shop, conn->api_base, &c.shop,
	        err) == -1 ||
	    check_secret(conn->token, PV_SHOPIFY_TOKEN_MAX, "token", err) ==
	        -1 ||
	    (webhook_secret != NULL &&
	        check_secret(webhook_secret, SECRET_MAX, "webhook_secret",
	            err) == -1))
		return -1;
	p[0] = merchant;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT id FROM merchants WHERE public_id = $1"), 1, p,
	        &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "merchant", "no merchant %.64s",
		    merchant);
		return -1;
	}
	p[0] = PQgetvalue(res, 0, 0);
	if (pv_shopify_shop(ctx, &c, shop, err) == -1)
		return -1;
	/* A real store answers for itself; a proxy might answer for another. */
	if (strstr(c.shop, MYSHOPIFY) != NULL &&
	    strcmp(shop->domain, c.shop) != 0) {
		PV_ERR(err, PV_E_INVALID, "shop",
		    "the token belongs to %.80s, not %.80s", shop->domain,
		    c.shop);
		return -1;
	}
	p[1] = c.shop;
	p[3] = c.api_base != NULL ? c.api_base : "";
	p[4] = shop->name;
	p[5] = shop->currency;
	p[6] = shop->api_version;
	p[7] = NULL;
	if (pv_crypto_seal(ctx->arena, ctx->cfg->master_key, merchant,
	        strlen(merchant), c.token, strlen(c.token), &p[2], err) == -1)
		return -1;
	if (webhook_secret != NULL &&
	    ((aad = webhook_aad(ctx, merchant, err)) == NULL ||
	        pv_crypto_seal(ctx->arena, ctx->cfg->master_key, aad,
	            strlen(aad), webhook_secret, strlen(webhook_secret), &p[7],
	            err) == -1))
		return -1;
	if (pv_db_exec(ctx,
	        PV_SQL(
	            "INSERT INTO merchant_shopify AS s (merchant_id,"
	            " shop_domain, token_sealed, api_base, shop_name, currency,"
	            " api_version, webhook_secret_sealed)"
	            " VALUES ($1::bigint, $2, $3, NULLIF($4, ''), $5, $6, $7,"
	            " $8)"
	            " ON CONFLICT (merchant_id) DO UPDATE SET"
	            " shop_domain = EXCLUDED.shop_domain,"
	            " token_sealed = EXCLUDED.token_sealed,"
	            " api_base = EXCLUDED.api_base,"
	            " shop_name = EXCLUDED.shop_name,"
	            " currency = EXCLUDED.currency,"
	            " api_version = EXCLUDED.api_version,"
	            " webhook_secret_sealed = CASE"
	            "  WHEN s.shop_domain = EXCLUDED.shop_domain THEN coalesce("
	            "  EXCLUDED.webhook_secret_sealed, s.webhook_secret_sealed)"
	            "  ELSE EXCLUDED.webhook_secret_sealed END,"
	            " connected_at = now(), disconnected_at = NULL,"
	            " sync_state = CASE WHEN s.shop_domain ="
	            "  EXCLUDED.shop_domain THEN s.sync_state ELSE 'never' END,"
	            " sync_cursor = CASE WHEN s.shop_domain ="
	            "  EXCLUDED.shop_domain THEN s.sync_cursor END,"
	            " sync_products = CASE WHEN s.shop_domain ="
	            "  EXCLUDED.shop_domain THEN s.sync_products ELSE 0 END,"
	            " sync_started_at = CASE WHEN s.shop_domain ="
	            "  EXCLUDED.shop_domain THEN s.sync_started_at END,"
	            " sync_finished_at = CASE WHEN s.shop_domain ="
	            "  EXCLUDED.shop_domain THEN s.sync_finished_at END,"
	            " sync_error = CASE WHEN s.shop_domain ="
	            "  EXCLUDED.shop_domain THEN s.sync_error END,"
	            " updated_at = now()"
	            " RETURNING to_char(connected_at AT TIME ZONE 'UTC',"
	            " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"),
	        8, p, &res, err) == -1) {
		if (err->code == PV_E_CONFLICT) {
			pv_err_clear(err);
			PV_ERR(err, PV_E_CONFLICT, "shop",
			    "%.80s is connected to another merchant", c.shop);
		}
		return -1;
	}
	*connected_at = PQgetvalue(res, 0, 0);
	return 0;
}

/* See pv_shopify.h. */
int
pv_shopify_disconnect(struct pv_ctx *ctx, const char *merchant,
    const char **shop, struct pv_err *err)
{
	const char *p[1] = { merchant };
	PGresult *res;

	*shop = NULL;
	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE merchant_shopify s SET disconnected_at = now(),"
	               " token_sealed = NULL, webhook_secret_sealed = NULL,"
	               " updated_at = now() FROM merchants m"
	               " WHERE m.id = s.merchant_id AND m.public_id = $1"
	               " AND s.disconnected_at IS NULL"
	               " RETURNING s.shop_domain"),
	        1, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "merchant",
		    "merchant %.64s has no Shopify store connected", merchant);
		return -1;
	}
	*shop = PQgetvalue(res, 0, 0);
	return 0;
}

/* Opens a sealed column value as a C string (ctx->arena). */
static int
unseal(struct pv_ctx *ctx, const char *aad, const char *sealed,
    const char **out, struct pv_err *err)
{
	unsigned char *plain;
	size_t len;

	if (pv_config_require_master_key(ctx->cfg, err) == -1 ||
	    pv_crypto_open(ctx->arena, ctx->cfg->master_key, aad, strlen(aad),
	        sealed, strlen(sealed), &plain, &len, err) == -1)
		return -1;
	if (memchr(plain, '\0', len) != NULL) {
		PV_ERR(err, PV_E_AUTH, NULL, "sealed secret holds a NUL");
		return -1;
	}
	if ((*out = pv_arena_strndup(ctx->arena, (const char *)plain, len,
	         err)) == NULL)
		return -1;
	return 0;
}

/* Reads the live connection row of merchant: 0 columns found or -1. */
static int
live_row(struct pv_ctx *ctx, const char *merchant, PGresult **res,
    struct pv_err *err)
{
	const char *p[1] = { merchant };

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT s.shop_domain, s.token_sealed,"
	               " coalesce(s.api_base, ''), s.webhook_secret_sealed"
	               " FROM merchant_shopify s JOIN merchants m"
	               " ON m.id = s.merchant_id WHERE m.public_id = $1"
	               " AND s.disconnected_at IS NULL"),
	        1, p, res, err) == -1)
		return -1;
	if (PQntuples(*res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "merchant",
		    "merchant %.64s has no Shopify store connected", merchant);
		return -1;
	}
	return 0;
}

/* See pv_shopify.h. */
int
pv_shopify_conn_load(struct pv_ctx *ctx, const char *merchant,
    struct pv_shopify_conn *conn, struct pv_err *err)
{
	PGresult *res;

	memset(conn, 0, sizeof(*conn));
	if (live_row(ctx, merchant, &res, err) == -1 ||
	    unseal(ctx, merchant, PQgetvalue(res, 0, 1), &conn->token, err) ==
	        -1)
		return -1;
	conn->shop = PQgetvalue(res, 0, 0);
	conn->api_base = PQgetvalue(res, 0, 2);
	return 0;
}

/* See pv_shopify.h. */
int
pv_shopify_webhook_secret(struct pv_ctx *ctx, const char *merchant,
    const char **secret, struct pv_err *err)
{
	const char *aad;
	PGresult *res;

	*secret = NULL;
	if (live_row(ctx, merchant, &res, err) == -1)
		return -1;
	if (PQgetisnull(res, 0, 3))
		return 0;
	if ((aad = webhook_aad(ctx, merchant, err)) == NULL)
		return -1;
	return unseal(ctx, aad, PQgetvalue(res, 0, 3), secret, err);
}
