/*
 * Inbound Shopify webhooks: verification on the raw body, one stored
 * delivery per X-Shopify-Webhook-Id, and the effect of each topic,
 * all in the transaction that stores the delivery.  Contract in
 * pv_shopify_hooks.h; the shipment rules live in SQL (migration 0011)
 * where the order's row lock is; docs/shopify.md tells the story.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "pv_catalog.h"
#include "pv_db.h"
#include "pv_job.h"
#include "pv_json.h"
#include "pv_log.h"
#include "pv_shopify.h"
#include "pv_shopify_hooks.h"
#include "pv_sig.h"
#include "pv_sync.h"
#include "pv_valid.h"

#define HEADER_MAX 255 /* longest topic, webhook id or shop domain */

/* One delivery being applied.  Strings live in ctx->arena. */
struct hook {
	const char *merchant;     /* public id, mer_... */
	const char *mid;          /* merchants.id */
	const char *topic;        /* X-Shopify-Topic */
	const char *webhook_id;   /* X-Shopify-Webhook-Id */
	const char *triggered_at; /* X-Shopify-Triggered-At, or NULL */
	const char *payload;      /* the raw body, or a note if not text */
	struct json_object *body; /* the parsed body, or NULL */
	const char *outcome;      /* what applying it did */
};

/* A string member, or NULL when absent, null or not a string. */
static const char *
jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A non-empty string member, or NULL. */
static const char *
jstr_ne(struct json_object *o, const char *key)
{
	const char *s = jstr(o, key);

	return s != NULL && *s != '\0' ? s : NULL;
}

/* An integer member (number or decimal string) into *out: 0, or -1. */
static int
jint(struct json_object *o, const char *key, int64_t *out)
{
	struct json_object *v;
	struct pv_err e = { 0 };

	if (o == NULL || !json_object_object_get_ex(o, key, &v))
		return -1;
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
		return 0;
	}
	if (json_object_is_type(v, json_type_string))
		return pv_valid_int64(json_object_get_string(v), 0, INT64_MAX,
		    out, key, &e);
	return -1;
}

/*
 * The gid of a REST resource: its admin_graphql_api_id, else
 * "gid://shopify/{kind}/{id_key}".  NULL (no error) when neither.
 */
static const char *
gid_of(struct pv_ctx *ctx, struct json_object *o, const char *kind,
    const char *id_key, struct pv_err *err)
{
	const char *g = strcmp(id_key, "id") == 0 ?
	    jstr_ne(o, "admin_graphql_api_id") :
	    NULL;
	int64_t n;

	if (g != NULL)
		return g;
	if (jint(o, id_key, &n) == -1)
		return NULL;
	return pv_arena_printf(ctx->arena, err, "gid://shopify/%s/%" PRId64,
	    kind, n);
}

/* Our order for a Shopify order gid: *oid NULL when not ours. */
static int
find_order(struct pv_ctx *ctx, const struct hook *h, const char *gid,
    const char **oid, const char **public_id, const char **status,
    struct pv_err *err)
{
	const char *p[2] = { h->mid, gid };
	PGresult *res;

	*oid = *public_id = *status = NULL;
	if (gid == NULL)
		return 0;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT id, public_id, status FROM orders"
	               " WHERE merchant_id = $1::bigint"
	               " AND platform_order_id = $2"),
	        2, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1)
		return 0;
	*oid = PQgetvalue(res, 0, 0);
	*public_id = PQgetvalue(res, 0, 1);
	*status = PQgetvalue(res, 0, 2);
	return 0;
}

/*
 * A fulfillment's shipment status from Shopify's status (pending,
 * open, success, cancelled, error, failure) and shipment_status (the
 * carrier's word, or null).
 */
static const char *
shipment_status(struct json_object *f)
{
	static const struct {
		const char *shopify, *ours;
	} carrier[] = {
		{ "delivered", "delivered" },
		{ "out_for_delivery", "out_for_delivery" },
		{ "ready_for_pickup", "out_for_delivery" },
		{ "attempted_delivery", "out_for_delivery" },
		{ "failure", "failed" },
	};
	const char *st = jstr(f, "status"), *ss = jstr(f, "shipment_status");
	size_t i;

	if (st != NULL && strcmp(st, "cancelled") == 0)
		return "cancelled";
	if (st != NULL &&
	    (strcmp(st, "error") == 0 || strcmp(st, "failure") == 0))
		return "failed";
	for (i = 0; ss != NULL && i < sizeof(carrier) / sizeof(carrier[0]); i++)
		if (strcmp(ss, carrier[i].shopify) == 0)
			return carrier[i].ours;
	return "in_transit";
}

/* Units in a fulfillment's line_items (0 when it does not say). */
static int64_t
fulfilled_units(struct json_object *f)
{
	struct json_object *arr, *li;
	int64_t q, n = 0;
	size_t i;

	if (!json_object_object_get_ex(f, "line_items", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return 0;
	for (i = 0; i < json_object_array_length(arr); i++) {
		li = json_object_array_get_idx(arr, i);
		if (jint(li, "quantity", &q) == 0 && q > 0 && q < 1000000)
			n += q;
	}
	return n;
}

/* Text of at most max bytes, or NULL (store input we keep as a value). */
static const char *
bounded(const char *s, size_t max)
{
	return s != NULL && strlen(s) <= max ? s : NULL;
}

/* One fulfillment of order oid through pv_shipment_apply(). */
static int
apply_fulfillment(struct pv_ctx *ctx, const char *oid, struct json_object *f,
    const char **verdict, struct pv_err *err)
{
	const char *p[11];
	char qty[24];
	PGresult *res;

	*verdict = "no_fulfillment_id";
	p[0] = oid;
	if ((p[1] = gid_of(ctx, f, "Fulfillment", "id", err)) == NULL)
		return err->code == PV_OK ? 0 : -1;
	if (strlen(p[1]) > 255)
		return 0;
	snprintf(qty, sizeof(qty), "%" PRId64, fulfilled_units(f));
	p[2] = bounded(jstr(f, "name"), 255);
	p[3] = shipment_status(f);
	p[4] = bounded(jstr_ne(f, "tracking_company"), 255);
	p[5] = bounded(jstr_ne(f, "tracking_number"), 255);
	p[6] = bounded(jstr_ne(f, "tracking_url"), 2000);
	p[7] = qty;
	p[8] = jstr(f, "created_at");
	p[9] = jstr(f, "updated_at");
	p[10] = jstr(f, "estimated_delivery_at");
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT pv_shipment_apply($1::bigint, $2, $3, $4, $5,"
	               " $6, $7, $8::integer, pv_try_ts($9), pv_try_ts($10),"
	               " pv_try_ts($11))"),
	        11, p, &res, err) == -1)
		return -1;
	*verdict = pv_arena_strdup(ctx->arena, PQgetvalue(res, 0, 0), err);
	return *verdict != NULL ? 0 : -1;
}

/* fulfillments/create, fulfillments/update. */
static int
on_fulfillment(struct pv_ctx *ctx, struct hook *h, struct pv_err *err)
{
	const char *oid, *pub, *status, *gid;

	if ((gid = gid_of(ctx, h->body, "Order", "order_id", err)) == NULL &&
	    err->code != PV_OK)
		return -1;
	if (find_order(ctx, h, gid, &oid, &pub, &status, err) == -1)
		return -1;
	if (oid == NULL) {
		h->outcome = "unknown_order";
		return 0;
	}
	return apply_fulfillment(ctx, oid, h->body, &h->outcome, err);
}

/* The order of an orders/... payload (its id). */
static int
order_of(struct pv_ctx *ctx, struct hook *h, const char **oid, const char **pub,
    const char **status, struct pv_err *err)
{
	const char *gid = gid_of(ctx, h->body, "Order", "id", err);

	if (gid == NULL && err->code != PV_OK)
		return -1;
	if (find_order(ctx, h, gid, oid, pub, status, err) == -1)
		return -1;
	if (*oid == NULL)
		h->outcome = "unknown_order";
	return 0;
}

/*
 * orders/fulfilled: every line is shipped.  The order's fulfillments
 * (if the payload lists them) are applied like fulfillment events;
 * the order then follows.
 */
static int
on_order_fulfilled(struct pv_ctx *ctx, struct hook *h, struct pv_err *err)
{
	struct json_object *arr;
	const char *oid, *pub, *status, *verdict, *p[1];
	size_t i;

	if (order_of(ctx, h, &oid, &pub, &status, err) == -1)
		return -1;
	if (oid == NULL)
		return 0;
	p[0] = oid;
	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE orders SET store_fulfilled_at ="
	               " coalesce(store_fulfilled_at, now())"
	               " WHERE id = $1::bigint"),
	        1, p, NULL, err) == -1)
		return -1;
	if (json_object_object_get_ex(h->body, "fulfillments", &arr) &&
	    json_object_is_type(arr, json_type_array))
		for (i = 0; i < json_object_array_length(arr) && i < 100; i++)
			if (apply_fulfillment(ctx, oid,
			        json_object_array_get_idx(arr, i), &verdict,
			        err) == -1)
				return -1;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT pv_order_follow_shipments($1::bigint,"
	               " 'store: order fulfilled')"),
	        1, p, NULL, err) == -1)
		return -1;
	h->outcome = "fulfilled";
	return 0;
}

/* Appends an order event (type, detail object, flagged). */
static int
order_event(struct pv_ctx *ctx, const char *oid, const char *type,
    struct json_object *detail, bool flagged, struct pv_err *err)
{
	const char *p[4];

	p[0] = oid;
	p[1] = type;
	p[3] = flagged ? "true" : "false";
	if (pv_json_to_str(ctx->arena, detail, &p[2], NULL, err) == -1)
		return -1;
	return pv_db_exec(ctx,
	    PV_SQL("SELECT pv_order_event($1::bigint, $2, $3::jsonb,"
	           " $4::boolean)"),
	    4, p, NULL, err);
}

/*
 * orders/cancelled.  An unpaid order is cancelled here too (its stock
 * released).  One we were paid for cannot simply be cancelled: the
 * event is flagged for a human, and if the merchant asked for it
 * (merchants.refund_on_store_cancel) a refund.store_cancel job is
 * queued, once per order.
 */
static int
on_order_cancelled(struct pv_ctx *ctx, struct hook *h, struct pv_err *err)
{
	struct json_object *d;
	const char *oid, *pub, *status, *p[2], *payload, *key;
	PGresult *res;
	bool refund;

	if (order_of(ctx, h, &oid, &pub, &status, err) == -1)
		return -1;
	if (oid == NULL)
		return 0;
	p[0] = oid;
	if (strcmp(status, "cancelled") == 0) {
		h->outcome = "already_cancelled";
		return 0;
	}
	if (strcmp(status, "pending") == 0 ||
	    strcmp(status, "payment_failed") == 0) {
		p[1] = "cancelled in the store";
		if (pv_db_exec(ctx,
		        PV_SQL("SELECT pv_order_cancel($1::bigint, $2, true)"),
		        2, p, &res, err) == -1)
			return -1;
		h->outcome =
		    pv_arena_strdup(ctx->arena, PQgetvalue(res, 0, 0), err);
		return h->outcome != NULL ? 0 : -1;
	}
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT m.refund_on_store_cancel FROM orders o"
	               " JOIN merchants m ON m.id = o.merchant_id"
	               " WHERE o.id = $1::bigint"),
	        1, p, &res, err) == -1)
		return -1;
	refund =
	    PQgetvalue(res, 0, 0)[0] == 't' && strcmp(status, "refunded") != 0;
	d = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(d, "order_status", status, err);
	pv_json_set_str(d, "cancel_reason",
	    bounded(jstr(h->body, "cancel_reason"), 255), err);
	pv_json_set_str(d, "cancelled_at",
	    bounded(jstr(h->body, "cancelled_at"), 64), err);
	pv_json_set_bool(d, "refund_queued", refund, err);
	if (err->code != PV_OK ||
	    order_event(ctx, oid, "store.cancelled", d, true, err) == -1)
		return -1;
	h->outcome = "flagged";
	if (!refund)
		return 0;
	if ((payload = pv_arena_printf(ctx->arena, err, "{\"order_id\":\"%s\"}",
	         pub)) == NULL ||
	    (key = pv_arena_printf(ctx->arena, err,
	         PV_SHOPIFY_HOOKS_REFUND_KIND ":%s", pub)) == NULL ||
	    pv_job_enqueue(ctx, PV_SHOPIFY_HOOKS_REFUND_KIND, payload, key, 0,
	        err) == -1)
		return -1;
	h->outcome = "refund_queued";
	return 0;
}

/*
 * refunds/create: recorded as a flagged order event with the refund's
 * transactions; nothing is queued.  The refunds work reconciles these
 * with our own refunds (XXX issue 6: until then a human does).
 */
static int
on_refund(struct pv_ctx *ctx, struct hook *h, struct pv_err *err)
{
	struct json_object *d, *arr, *txs, *t, *x;
	const char *oid, *pub, *status, *gid;
	size_t i;

	if ((gid = gid_of(ctx, h->body, "Order", "order_id", err)) == NULL &&
	    err->code != PV_OK)
		return -1;
	if (find_order(ctx, h, gid, &oid, &pub, &status, err) == -1)
		return -1;
	if (oid == NULL) {
		h->outcome = "unknown_order";
		return 0;
	}
	d = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(d, "refund_id",
	    gid_of(ctx, h->body, "Refund", "id", err), err);
	pv_json_set_str(d, "note", bounded(jstr(h->body, "note"), 1000), err);
	pv_json_set_str(d, "created_at",
	    bounded(jstr(h->body, "created_at"), 64), err);
	txs = pv_json_new_arr(ctx->arena, err);
	if (json_object_object_get_ex(h->body, "transactions", &arr) &&
	    json_object_is_type(arr, json_type_array))
		for (i = 0; i < json_object_array_length(arr) && i < 20; i++) {
			x = json_object_array_get_idx(arr, i);
			t = pv_json_new_obj(ctx->arena, err);
			pv_json_set_str(t, "kind", bounded(jstr(x, "kind"), 32),
			    err);
			pv_json_set_str(t, "status",
			    bounded(jstr(x, "status"), 32), err);
			pv_json_set_str(t, "amount",
			    bounded(jstr(x, "amount"), 32), err);
			pv_json_set_str(t, "currency",
			    bounded(jstr(x, "currency"), 3), err);
			pv_json_push(txs, t, err);
		}
	pv_json_set(d, "transactions", txs, err);
	if (err->code != PV_OK ||
	    order_event(ctx, oid, "store.refund", d, true, err) == -1)
		return -1;
	h->outcome = "recorded";
	return 0;
}

/*
 * Takes the product's mark (shopify_product_marks) for an event at
 * updated_at: *newer is 0 when a newer event (or a delete) came first.
 */
static int
mark_product(struct pv_ctx *ctx, const struct hook *h, const char *gid,
    const char *updated_at, bool deleted, int *newer, struct pv_err *err)
{
	const char *p[4] = { h->mid, gid, updated_at, deleted ? "t" : "f" };
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL(
	            "INSERT INTO shopify_product_marks AS k (merchant_id,"
	            " product_gid, updated_at, deleted)"
	            " VALUES ($1::bigint, $2, coalesce(pv_try_ts($3), now()),"
	            " $4::boolean)"
	            " ON CONFLICT (merchant_id, product_gid) DO UPDATE SET"
	            " updated_at = EXCLUDED.updated_at,"
	            " deleted = EXCLUDED.deleted"
	            " WHERE NOT k.deleted AND (EXCLUDED.deleted"
	            " OR k.updated_at < EXCLUDED.updated_at)"
	            " RETURNING 1"),
	        4, p, &res, err) == -1)
		return -1;
	*newer = PQntuples(res) == 1;
	return 0;
}

/* Applies the one product of c (no problems) as a non-replace batch. */
static int
apply_product(struct pv_ctx *ctx, struct hook *h, struct pv_catalog *c,
    const char *currency, struct pv_err *err)
{
	struct pv_catalog_result r;
	const char *batch;

	if (c->errors_total > 0) {
		pv_log_msg(PV_LOG_WARN,
		    "shopify %s for %s: product refused: %s", h->topic,
		    h->merchant, c->nerrors > 0 ? c->errors[0] : "problems");
		h->outcome = "refused";
		return 0;
	}
	memset(&r, 0, sizeof(r));
	if (pv_catalog_batch_new(ctx, h->mid, "shopify", false, currency,
	        &batch, err) == -1 ||
	    pv_catalog_stage(ctx, c, batch, 0, err) == -1 ||
	    pv_catalog_apply(ctx, batch, false, &r, err) == -1)
		return -1;
	h->outcome = r.created > 0 ? "created" :
	    r.updated > 0          ? "updated" :
	                             "unchanged";
	return 0;
}

/* {"preview": {"image": {"url": src}}}, the shape of a media node. */
static struct json_object *
media_node(struct pv_ctx *ctx, const char *src, struct pv_err *err)
{
	struct json_object *m = pv_json_new_obj(ctx->arena, err),
	                   *pv = pv_json_new_obj(ctx->arena, err),
	                   *im = pv_json_new_obj(ctx->arena, err);

	pv_json_set_str(im, "url", src, err);
	pv_json_set(pv, "image", im, err);
	pv_json_set(m, "preview", pv, err);
	return m;
}

/* A REST variant as a GraphQL variant node (pv_shopify.h's shape). */
static struct json_object *
variant_node(struct pv_ctx *ctx, struct json_object *v,
    const char *const *option_names, struct pv_err *err)
{
	static const char *const okeys[] = { "option1", "option2", "option3" };
	struct json_object *n = pv_json_new_obj(ctx->arena, err), *sel, *o, *x;
	const char *policy = jstr(v, "inventory_policy"), *val;
	bool counted = true, avail;
	int64_t q = 0;
	size_t i;

	pv_json_set_str(n, "id", gid_of(ctx, v, "ProductVariant", "id", err),
	    err);
	pv_json_set_str(n, "title", jstr(v, "title"), err);
	pv_json_set_str(n, "sku", jstr(v, "sku"), err);
	pv_json_set_str(n, "price", jstr(v, "price"), err);
	pv_json_set_str(n, "compareAtPrice", jstr_ne(v, "compare_at_price"),
	    err);
	/* inventory_management null: Shopify does not count it. */
	if (json_object_object_get_ex(v, "inventory_management", &x) &&
	    x == NULL)
		counted = false;
	if (counted && jint(v, "inventory_quantity", &q) == 0) {
		pv_json_set_int(n, "inventoryQuantity", q, err);
		avail = q > 0 ||
		    (policy != NULL && strcmp(policy, "continue") == 0);
	} else {
		avail = true;
	}
	pv_json_set_bool(n, "availableForSale", avail, err);
	sel = pv_json_new_arr(ctx->arena, err);
	for (i = 0; i < 3; i++) {
		if (option_names[i] == NULL ||
		    (val = jstr(v, okeys[i])) == NULL)
			continue;
		o = pv_json_new_obj(ctx->arena, err);
		pv_json_set_str(o, "name", option_names[i], err);
		pv_json_set_str(o, "value", val, err);
		pv_json_push(sel, o, err);
	}
	pv_json_set(n, "selectedOptions", sel, err);
	return n;
}

/*
 * A REST product payload as the GraphQL product node pv_sync_product()
 * reads, so a webhook update and the catalogue sync make the same rows.
 */
static struct json_object *
product_node(struct pv_ctx *ctx, struct json_object *b, const char *gid,
    struct pv_err *err)
{
	const char *names[3] = { NULL, NULL, NULL }, *s, *tags, *e;
	struct json_object *n = pv_json_new_obj(ctx->arena, err), *arr, *x,
	                   *media, *vars, *tarr;
	char status[16];
	size_t i, k;

	pv_json_set_str(n, "id", gid, err);
	pv_json_set_str(n, "title", jstr(b, "title"), err);
	pv_json_set_str(n, "handle", jstr(b, "handle"), err);
	pv_json_set_str(n, "descriptionHtml", jstr(b, "body_html"), err);
	pv_json_set_str(n, "vendor", jstr(b, "vendor"), err);
	pv_json_set_str(n, "productType", jstr(b, "product_type"), err);
	/* REST says active/archived/draft; absent means a live product. */
	s = jstr(b, "status");
	for (k = 0; s != NULL && s[k] != '\0' && k + 1 < sizeof(status); k++)
		status[k] = (char)toupper((unsigned char)s[k]);
	status[k] = '\0';
	pv_json_set_str(n, "status", s != NULL ? status : "ACTIVE", err);
	tarr = pv_json_new_arr(ctx->arena, err);
	for (tags = jstr(b, "tags"); tags != NULL && *tags != '\0';) {
		while (*tags == ' ' || *tags == ',')
			tags++;
		if (*tags == '\0')
			break;
		e = strchr(tags, ',');
		k = e != NULL ? (size_t)(e - tags) : strlen(tags);
		while (k > 0 && tags[k - 1] == ' ')
			k--;
		if ((s = pv_arena_strndup(ctx->arena, tags, k, err)) == NULL)
			return NULL;
		pv_json_push_str(tarr, s, err);
		tags = e != NULL ? e + 1 : "";
	}
	pv_json_set(n, "tags", tarr, err);
	if (json_object_object_get_ex(b, "image", &x) &&
	    (s = jstr(x, "src")) != NULL) {
		struct json_object *fm = pv_json_new_obj(ctx->arena, err);

		pv_json_set(fm, "preview",
		    json_object_object_get(media_node(ctx, s, err), "preview"),
		    err);
		pv_json_set(n, "featuredMedia", fm, err);
	}
	media = pv_json_new_arr(ctx->arena, err);
	if (json_object_object_get_ex(b, "images", &arr) &&
	    json_object_is_type(arr, json_type_array))
		for (i = 0; i < json_object_array_length(arr); i++)
			if ((s = jstr(json_object_array_get_idx(arr, i),
			         "src")) != NULL)
				pv_json_push(media, media_node(ctx, s, err),
				    err);
	x = pv_json_new_obj(ctx->arena, err);
	pv_json_set(x, "nodes", media, err);
	pv_json_set(n, "media", x, err);
	if (json_object_object_get_ex(b, "options", &arr) &&
	    json_object_is_type(arr, json_type_array))
		for (i = 0; i < json_object_array_length(arr) && i < 3; i++)
			names[i] =
			    jstr(json_object_array_get_idx(arr, i), "name");
	vars = pv_json_new_arr(ctx->arena, err);
	if (json_object_object_get_ex(b, "variants", &arr) &&
	    json_object_is_type(arr, json_type_array))
		for (i = 0; i < json_object_array_length(arr); i++)
			pv_json_push(vars,
			    variant_node(ctx, json_object_array_get_idx(arr, i),
			        names, err),
			    err);
	x = pv_json_new_obj(ctx->arena, err);
	pv_json_set(x, "nodes", vars, err);
	pv_json_set(n, "variants", x, err);
	return err->code == PV_OK ? n : NULL;
}

/* products/update (and products/create): the product, as the sync would. */
static int
on_product_update(struct pv_ctx *ctx, struct hook *h, struct pv_err *err)
{
	struct json_object *node;
	struct pv_catalog c;
	const char *gid, *id, *currency;
	int newer;

	if ((gid = gid_of(ctx, h->body, "Product", "id", err)) == NULL) {
		h->outcome = "no_product_id";
		return err->code == PV_OK ? 0 : -1;
	}
	if (mark_product(ctx, h, gid,
	        jstr(h->body, "updated_at") != NULL ?
	            jstr(h->body, "updated_at") :
	            h->triggered_at,
	        false, &newer, err) == -1)
		return -1;
	if (!newer) {
		h->outcome = "stale";
		return 0;
	}
	if (pv_catalog_merchant(ctx, h->merchant, &id, &currency, err) == -1 ||
	    (node = product_node(ctx, h->body, gid, err)) == NULL ||
	    pv_catalog_init(&c, ctx->arena, currency, err) == -1 ||
	    pv_sync_product(&c, node, err) == -1)
		return -1;
	return apply_product(ctx, h, &c, currency, err);
}

/* Columns of the product read back for an archive. */
enum {
	PR_ID,
	PR_TITLE,
	PR_HANDLE,
	PR_DESCRIPTION,
	PR_VENDOR,
	PR_TYPE,
	PR_URL,
	PR_LISTS,
	PR_CURRENCY
};

/* The string array at key of o into *out (arena), *n entries. */
static int
str_list(struct pv_ctx *ctx, struct json_object *o, const char *key,
    const char ***out, size_t *n, struct pv_err *err)
{
	struct json_object *arr;
	size_t i, len;

	*out = NULL;
	*n = 0;
	if (!json_object_object_get_ex(o, key, &arr) ||
	    !json_object_is_type(arr, json_type_array) ||
	    (len = json_object_array_length(arr)) == 0)
		return 0;
	if ((*out = pv_arena_calloc(ctx->arena, len, sizeof(**out), err)) ==
	    NULL)
		return -1;
	for (i = 0; i < len; i++)
		if (((*out)[(*n)++] = pv_arena_strdup(ctx->arena,
		         json_object_get_string(
		             json_object_array_get_idx(arr, i)),
		         err)) == NULL)
			return -1;
	return 0;
}

/*
 * products/delete: Shopify's delete is final, ours archives (orders
 * naming the product still resolve).  The product is read back as it
 * stands, marked archived and applied as a batch of one, so the
 * catalog's own rules (roll-ups, search rows, counts) do the rest.
 */
static int
on_product_delete(struct pv_ctx *ctx, struct hook *h, struct pv_err *err)
{
	struct pv_catalog_product *pr;
	struct pv_catalog_variant *v;
	struct json_object *lists;
	struct pv_catalog c;
	const char *gid, *p[2];
	PGresult *res, *vr;
	int newer, r;

	if ((gid = gid_of(ctx, h->body, "Product", "id", err)) == NULL) {
		h->outcome = "no_product_id";
		return err->code == PV_OK ? 0 : -1;
	}
	if (mark_product(ctx, h, gid, h->triggered_at, true, &newer, err) == -1)
		return -1;
	if (!newer) {
		h->outcome = "stale";
		return 0;
	}
	p[0] = h->mid;
	p[1] = gid;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT id, title, handle, description, vendor,"
	               " product_type, url, json_build_object('tags', tags,"
	               " 'images', images)::text, currency FROM products"
	               " WHERE merchant_id = $1::bigint AND external_id = $2"),
	        2, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		h->outcome = "unknown_product";
		return 0;
	}
	p[0] = PQgetvalue(res, 0, PR_ID);
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT external_id, sku, title, price_minor,"
	               " coalesce(compare_at_price_minor, -1),"
	               " inventory_quantity, inventory_tracked, options::text,"
	               " image_url FROM variants WHERE product_id = $1::bigint"
	               " ORDER BY position, id"),
	        1, p, &vr, err) == -1 ||
	    pv_catalog_init(&c, ctx->arena, PQgetvalue(res, 0, PR_CURRENCY),
	        err) == -1 ||
	    (pr = pv_catalog_add_product(&c, gid, err)) == NULL ||
	    pv_json_parse(ctx->arena, PQgetvalue(res, 0, PR_LISTS),
	        (size_t)PQgetlength(res, 0, PR_LISTS), &lists, err) == -1 ||
	    str_list(ctx, lists, "tags", &pr->tags, &pr->ntags, err) == -1 ||
	    str_list(ctx, lists, "images", &pr->images, &pr->nimages, err) ==
	        -1)
		return -1;
	pr->external_id = gid;
	pr->title = PQgetvalue(res, 0, PR_TITLE);
	pr->handle = PQgetvalue(res, 0, PR_HANDLE);
	pr->description = PQgetvalue(res, 0, PR_DESCRIPTION);
	pr->vendor = PQgetvalue(res, 0, PR_VENDOR);
	pr->product_type = PQgetvalue(res, 0, PR_TYPE);
	pr->url = PQgetvalue(res, 0, PR_URL);
	pr->archived = true;
	for (r = 0; r < PQntuples(vr); r++) {
		if ((v = pv_catalog_add_variant(&c, pr, gid, err)) == NULL)
			return -1;
		v->external_id = pv_db_get(vr, r, 0);
		v->sku = PQgetvalue(vr, r, 1);
		v->title = PQgetvalue(vr, r, 2);
		v->price_minor = strtoll(PQgetvalue(vr, r, 3), NULL, 10);
		v->compare_minor = strtoll(PQgetvalue(vr, r, 4), NULL, 10);
		v->inventory = strtoll(PQgetvalue(vr, r, 5), NULL, 10);
		v->tracked = PQgetvalue(vr, r, 6)[0] == 't';
		v->options = PQgetvalue(vr, r, 7);
		v->image_url = PQgetvalue(vr, r, 8);
	}
	if (pv_catalog_finish(&c, pr, err) == -1 ||
	    apply_product(ctx, h, &c, PQgetvalue(res, 0, PR_CURRENCY), err) ==
	        -1)
		return -1;
	if (strcmp(h->outcome, "refused") != 0)
		h->outcome = "archived";
	return 0;
}

/* app/uninstalled: the store is gone; forget its token and secret. */
static int
on_uninstalled(struct pv_ctx *ctx, struct hook *h, struct pv_err *err)
{
	const char *shop;

	if (pv_shopify_disconnect(ctx, h->merchant, &shop, err) == -1)
		return -1;
	pv_log_msg(PV_LOG_INFO, "shopify app uninstalled: %s disconnected %s",
	    h->merchant, shop);
	h->outcome = "disconnected";
	return 0;
}

static const struct {
	const char *topic;
	int (*fn)(struct pv_ctx *, struct hook *, struct pv_err *);
} topics[] = {
	{ "fulfillments/create", on_fulfillment },
	{ "fulfillments/update", on_fulfillment },
	{ "orders/fulfilled", on_order_fulfilled },
	{ "orders/cancelled", on_order_cancelled },
	{ "refunds/create", on_refund },
	{ "products/create", on_product_update },
	{ "products/update", on_product_update },
	{ "products/delete", on_product_delete },
	{ "app/uninstalled", on_uninstalled },
};

/* Stores the delivery (once) and applies it; inside a transaction. */
static int
hook_tx(struct pv_ctx *ctx, void *arg, struct pv_err *err)
{
	struct hook *h = arg;
	const char *p[5];
	PGresult *res;
	size_t i;

	p[0] = h->webhook_id;
	p[1] = h->mid;
	p[2] = h->topic;
	p[3] = h->payload;
	if (pv_db_exec(ctx,
	        PV_SQL("INSERT INTO provider_events (provider, event_id,"
	               " merchant_id, type, payload) VALUES ('shopify', $1,"
	               " $2::bigint, $3, $4) ON CONFLICT DO NOTHING"),
	        4, p, &res, err) == -1)
		return -1;
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		h->outcome = "duplicate";
		return 0;
	}
	h->outcome = "ignored";
	if (h->body == NULL) {
		h->outcome = "bad_payload";
	} else {
		for (i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
			if (strcmp(h->topic, topics[i].topic) == 0) {
				if (topics[i].fn(ctx, h, err) == -1)
					return -1;
				break;
			}
	}
	p[1] = h->outcome;
	return pv_db_exec(ctx,
	    PV_SQL("UPDATE provider_events SET outcome = $2"
	           " WHERE provider = 'shopify' AND event_id = $1"),
	    2, p, NULL, err);
}

/* A required header as text of 1..HEADER_MAX bytes, else PV_E_INVALID. */
static int
header(const struct pv_req *req, const char *name, const char **out,
    struct pv_err *err)
{
	*out = pv_req_header(req, name);
	if (*out == NULL || **out == '\0') {
		PV_ERR(err, PV_E_INVALID, name, "Missing header %s.", name);
		return -1;
	}
	return pv_valid_text(*out, strlen(*out), 1, HEADER_MAX, 0, name, err);
}

/*
 * The merchant (public id) with its live store: internal id, shop
 * domain and webhook secret.  Unknown merchant: 404.  No store, or no
 * secret: 401, as for a bad signature (nothing can be verified).
 */
static int
hook_merchant(struct pv_ctx *ctx, struct hook *h, const char **shop,
    const char **secret, struct pv_err *err)
{
	const char *p[1] = { h->merchant };
	PGresult *res;

	if (pv_valid_text(h->merchant, strlen(h->merchant), 1, 64, 0,
	        "merchant_id", err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT m.id, s.shop_domain FROM merchants m"
	               " LEFT JOIN merchant_shopify s ON s.merchant_id = m.id"
	               " AND s.disconnected_at IS NULL"
	               " WHERE m.public_id = $1"),
	        1, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "merchant_id", "No such merchant.");
		return -1;
	}
	h->mid = PQgetvalue(res, 0, 0);
	*shop = pv_db_get(res, 0, 1);
	*secret = NULL;
	if (*shop != NULL &&
	    pv_shopify_webhook_secret(ctx, h->merchant, secret, err) == -1)
		return -1;
	if (*secret == NULL) {
		PV_ERR(err, PV_E_AUTH, NULL,
		    "No Shopify webhook secret is configured for this "
		    "merchant.");
		return -1;
	}
	return 0;
}

/* POST /webhooks/shopify/{merchant_id}; see pv_shopify_hooks.h. */
static int
shopify_webhook(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	struct pv_err perr = { 0 };
	struct json_object *o;
	const char *shop, *secret, *hmac, *domain;
	struct hook h;

	memset(&h, 0, sizeof(h));
	h.merchant = req->route[0];
	if (hook_merchant(ctx, &h, &shop, &secret, err) == -1)
		return -1;
	if ((hmac = pv_req_header(req, "x-shopify-hmac-sha256")) == NULL) {
		PV_ERR(err, PV_E_AUTH, NULL, "Missing X-Shopify-Hmac-Sha256.");
		return -1;
	}
	/* The signature first: nothing else is read from a forged body. */
	if (pv_sig_shopify_verify(hmac, secret, req->body, req->bodylen, err) ==
	        -1 ||
	    header(req, "x-shopify-shop-domain", &domain, err) == -1)
		return -1;
	if (strcasecmp(domain, shop) != 0) {
		PV_ERR(err, PV_E_AUTH, "X-Shopify-Shop-Domain",
		    "This webhook is from another shop than the merchant's.");
		return -1;
	}
	if (header(req, "x-shopify-topic", &h.topic, err) == -1 ||
	    header(req, "x-shopify-webhook-id", &h.webhook_id, err) == -1)
		return -1;
	h.triggered_at = pv_req_header(req, "x-shopify-triggered-at");
	if (h.triggered_at != NULL && strlen(h.triggered_at) > 64)
		h.triggered_at = NULL;
	/* A signed body that is not a JSON object is kept, not applied. */
	if (pv_json_parse(ctx->arena, req->body, req->bodylen, &h.body,
	        &perr) == -1) {
		if (perr.code == PV_E_NOMEM || perr.code == PV_E_TOOBIG) {
			*err = perr;
			return -1;
		}
		h.body = NULL;
		h.payload = "(not a JSON object)";
	} else {
		h.payload = req->body;
	}
	if (pv_db_tx(ctx, hook_tx, &h, err) == -1)
		return -1;
	pv_log_msg(PV_LOG_INFO, "shopify webhook %s (%s) for %s: %s",
	    h.webhook_id, h.topic, h.merchant, h.outcome);
	o = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(o, "status", "success", err);
	pv_json_set_str(o, "outcome", h.outcome, err);
	if (err->code != PV_OK)
		return -1;
	return pv_resp_json(ctx, resp, 200, o, err);
}

static const struct pv_route routes[] = {
	{ PV_POST, "/webhooks/shopify/:merchant", shopify_webhook, 0 },
};

/* See pv_shopify_hooks.h. */
int
pv_shopify_hooks_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	return pv_route_dispatch(ctx, routes,
	    sizeof(routes) / sizeof(routes[0]), req, resp, err);
}
