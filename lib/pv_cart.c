/*
 * Carts: parsing items, reading the catalog and the merchant's rules in
 * one statement, and the money arithmetic.  Contracts in pv_cart.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pv_agent.h"
#include "pv_arena.h"
#include "pv_cart.h"
#include "pv_db.h"
#include "pv_json.h"
#include "pv_money.h"

/*
 * Merchant (only one the agent may buy from and that has not blocked it:
 * merchant_agent_blocks), the shipping rule for the
 * country (exact, else '*'), the tax rule (region, else the whole
 * country), how many shipping rules exist at all, then one row per
 * requested line in request order with its variant (the named one, by
 * our id or the store's, else the default: the first in stock by
 * position, else the first, as the Product's variant_id says).
 */
#define QUOTE_SQL \
	"WITH m AS (SELECT m.id, m.public_id, m.business_name," \
	"  coalesce(psp.provider, '') AS psp" \
	"  FROM merchants m LEFT JOIN merchant_psp psp ON psp.merchant_id = " \
	"m.id" \
	"  WHERE m.public_id = $3 AND m.status = 'active'" \
	"  AND (NOT $2::boolean OR m.id IN (SELECT am.merchant_id" \
	"   FROM agent_merchants am WHERE am.agent_id = $1::bigint))" \
	"  AND NOT EXISTS (SELECT 1 FROM merchant_agent_blocks b" \
	"   WHERE b.merchant_id = m.id AND b.agent_id = $1::bigint))," \
	" s AS (SELECT r.* FROM merchant_shipping_rates r, m" \
	"  WHERE r.merchant_id = m.id AND r.country IN ($4, '*')" \
	"  ORDER BY r.country = '*' LIMIT 1)," \
	" t AS (SELECT r.* FROM merchant_tax_rates r, m" \
	"  WHERE r.merchant_id = m.id AND r.country = $4" \
	"  AND r.region IN ($5, '') ORDER BY r.region = '' LIMIT 1)," \
	" i AS (SELECT e->>'p' AS product, e->>'v' AS variant, n" \
	"  FROM jsonb_array_elements($6::jsonb) WITH ORDINALITY AS x(e, n))" \
	" SELECT m.id, m.business_name, m.psp," \
	"  (SELECT count(*) FROM merchant_shipping_rates r" \
	"   WHERE r.merchant_id = m.id)," \
	"  s.rate_minor, s.free_over_minor, s.min_days, s.max_days, " \
	"s.currency," \
	"  t.rate_ppm, t.shipping_taxable," \
	"  i.n, p.id, p.public_id, p.title, p.currency, p.status," \
	"  v.id, v.public_id, v.title, v.sku, v.price_minor," \
	"  v.inventory_tracked, v.inventory_quantity - v.reserved_quantity," \
	"  v.external_id" \
	" FROM m LEFT JOIN s ON true LEFT JOIN t ON true CROSS JOIN i" \
	" LEFT JOIN products p ON p.public_id = i.product" \
	"  AND p.merchant_id = m.id" \
	" LEFT JOIN LATERAL (SELECT * FROM variants v WHERE v.product_id = " \
	"p.id" \
	"  AND (i.variant IS NULL OR v.public_id = i.variant" \
	"   OR v.external_id = i.variant)" \
	"  ORDER BY v.inventory_tracked AND v.inventory_quantity" \
	"   - v.reserved_quantity <= 0, v.position, v.id LIMIT 1) v ON true" \
	" ORDER BY i.n"

enum {
	Q_MERCHANT,
	Q_MERCHANT_NAME,
	Q_PSP,
	Q_NRULES,
	Q_RATE,
	Q_FREE_OVER,
	Q_MIN_DAYS,
	Q_MAX_DAYS,
	Q_RATE_CURRENCY,
	Q_TAX_PPM,
	Q_SHIP_TAXABLE,
	Q_N,
	Q_PRODUCT,
	Q_PRODUCT_PUBLIC,
	Q_TITLE,
	Q_CURRENCY,
	Q_STATUS,
	Q_VARIANT,
	Q_VARIANT_PUBLIC,
	Q_VARIANT_TITLE,
	Q_SKU,
	Q_PRICE,
	Q_TRACKED,
	Q_AVAILABLE,
	Q_EXTERNAL
};

static int64_t
num(const PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ?
	    0 :
	    strtoll(PQgetvalue(res, r, c), NULL, 10);
}

static int
parse_line(struct pv_ctx *ctx, struct json_object *item, int create,
    struct pv_cart_line *l, struct pv_err *err)
{
	static const char *const keys[] = { "product_id", "variant_id",
		"quantity", NULL };
	static const char *const create_keys[] = { "product_id", "variant_id",
		"quantity", "unit_price", "subtotal", "product_title",
		"variant_title", "sku", NULL };
	const char *ignored;

	(void)ctx;
	if (pv_json_only_keys(item, create ? create_keys : keys, err) ||
	    pv_json_str(item, "product_id", 1, 64, &l->product_id, err) ||
	    pv_json_str_opt(item, "variant_id", 1, 255, &l->variant_id, err) ||
	    pv_json_int(item, "quantity", 1, PV_CART_QTY_MAX, &l->quantity,
	        err))
		return -1;
	if (!create)
		return 0;
	/* Informational copies of our own catalog: checked for type only. */
	if (pv_json_str_opt(item, "product_title", 0, 500, &ignored, err) ||
	    pv_json_str_opt(item, "variant_title", 0, 500, &ignored, err) ||
	    pv_json_str_opt(item, "sku", 0, 255, &ignored, err))
		return -1;
	json_object_object_get_ex(item, "unit_price", &l->unit_price_claim);
	json_object_object_get_ex(item, "subtotal", &l->subtotal_claim);
	return 0;
}

int
pv_cart_parse_items(struct pv_ctx *ctx, struct json_object *body, int create,
    struct pv_cart *cart, struct pv_err *err)
{
	struct json_object *items, *item;
	size_t i;

	if (pv_json_arr(body, "items", 1, PV_CART_LINES_MAX, &items, err))
		return -1;
	cart->n = json_object_array_length(items);
	cart->lines =
	    pv_arena_calloc(ctx->arena, cart->n, sizeof(*cart->lines), err);
	if (cart->lines == NULL)
		return -1;
	for (i = 0; i < cart->n; i++) {
		if (pv_json_at_obj(items, i, &item, err) ||
		    parse_line(ctx, item, create, &cart->lines[i], err))
			return pv_json_err_prefix(err, "items[%zu]", i);
	}
	return 0;
}

static void
problem(struct pv_cart_line *l, const char *code, const char *text)
{
	if (l->problem == NULL || l->problem[0] == '\0') {
		l->problem = code;
		l->problem_text = text;
	}
}

/* Fills a line from its quote row. */
static void
read_line(const PGresult *res, int r, struct pv_cart_line *l)
{
	l->problem = "";
	l->problem_text = "";
	if (PQgetisnull(res, r, Q_PRODUCT)) {
		problem(l, PV_CART_NOT_FOUND,
		    "No such product at this merchant.");
		return;
	}
	l->product_internal = PQgetvalue(res, r, Q_PRODUCT);
	l->product_public = PQgetvalue(res, r, Q_PRODUCT_PUBLIC);
	l->title = PQgetvalue(res, r, Q_TITLE);
	l->currency = PQgetvalue(res, r, Q_CURRENCY);
	if (strcmp(PQgetvalue(res, r, Q_STATUS), "active") != 0)
		problem(l, PV_CART_UNAVAILABLE,
		    "This product is no longer sold.");
	if (PQgetisnull(res, r, Q_VARIANT)) {
		problem(l, PV_CART_NO_VARIANT,
		    "No such variant of this product.");
		return;
	}
	l->variant_internal = PQgetvalue(res, r, Q_VARIANT);
	l->variant_public = PQgetvalue(res, r, Q_VARIANT_PUBLIC);
	l->variant_title = PQgetvalue(res, r, Q_VARIANT_TITLE);
	l->sku = PQgetvalue(res, r, Q_SKU);
	l->external_variant_id = pv_db_get(res, r, Q_EXTERNAL);
	l->unit_price_minor = num(res, r, Q_PRICE);
	l->tracked = PQgetvalue(res, r, Q_TRACKED)[0] == 't';
	l->available = num(res, r, Q_AVAILABLE);
	if (l->tracked && l->available < l->quantity)
		problem(l, PV_CART_OUT_OF_STOCK,
		    l->available > 0 ?
		        "Not enough stock for the quantity asked." :
		        "This item is out of stock.");
}

static void
read_rules(const PGresult *res, struct pv_cart_rules *ru)
{
	memset(ru, 0, sizeof(*ru));
	ru->free_over_minor = -1;
	if (num(res, 0, Q_NRULES) == 0) {
		/* No rules configured: free shipping everywhere. */
		ru->ships = 1;
		ru->min_days = 3;
		ru->max_days = 7;
	} else if (!PQgetisnull(res, 0, Q_RATE)) {
		ru->ships = 1;
		ru->rate_minor = num(res, 0, Q_RATE);
		if (!PQgetisnull(res, 0, Q_FREE_OVER))
			ru->free_over_minor = num(res, 0, Q_FREE_OVER);
		ru->rate_currency = PQgetvalue(res, 0, Q_RATE_CURRENCY);
		ru->min_days = (int)num(res, 0, Q_MIN_DAYS);
		ru->max_days = (int)num(res, 0, Q_MAX_DAYS);
	}
	if (!PQgetisnull(res, 0, Q_TAX_PPM)) {
		ru->tax_ppm = num(res, 0, Q_TAX_PPM);
		ru->shipping_taxable =
		    PQgetvalue(res, 0, Q_SHIP_TAXABLE)[0] == 't';
	}
}

int
pv_cart_quote(struct pv_ctx *ctx, struct pv_cart *cart, struct pv_err *err)
{
	struct json_object *arr, *o;
	const char *p[6], *items;
	PGresult *res;
	size_t i;

	arr = pv_json_new_arr(ctx->arena, err);
	for (i = 0; i < cart->n; i++) {
		o = pv_json_new_obj(ctx->arena, err);
		pv_json_set_str(o, "p", cart->lines[i].product_id, err);
		if (cart->lines[i].variant_id != NULL)
			pv_json_set_str(o, "v", cart->lines[i].variant_id, err);
		pv_json_push(arr, o, err);
	}
	if (err->code != PV_OK ||
	    pv_json_to_str(ctx->arena, arr, &items, NULL, err))
		return -1;
	p[0] = ctx->agent->id;
	p[1] = ctx->agent->restricted ? "true" : "false";
	p[2] = cart->merchant_id;
	p[3] = cart->country;
	p[4] = cart->region != NULL ? cart->region : "";
	p[5] = items;
	if (pv_db_exec(ctx, PV_SQL(QUOTE_SQL), 6, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) == 0) {
		PV_ERR(err, PV_E_INVALID, "merchant_id",
		    "No merchant %s that this agent may buy from.",
		    cart->merchant_id);
		return -1;
	}
	cart->merchant_internal = PQgetvalue(res, 0, Q_MERCHANT);
	cart->merchant_name = PQgetvalue(res, 0, Q_MERCHANT_NAME);
	cart->psp = PQgetvalue(res, 0, Q_PSP);
	ctx->usage.merchant_id = cart->merchant_internal;
	read_rules(res, &cart->rules);
	for (i = 0; i < cart->n && (int)i < PQntuples(res); i++)
		read_line(res, (int)i, &cart->lines[i]);
	return pv_cart_price(cart, err);
}

static int
overflow(struct pv_err *err)
{
	PV_ERR(err, PV_E_INVALID, "items",
	    "The order's amount is too large to process.");
	return -1;
}

/* (amount * ppm / 10^6), rounded half up, without overflow. */
static int64_t
tax_of(int64_t amount, int64_t ppm)
{
	__int128 t = (__int128)amount * ppm + 500000;

	return (int64_t)(t / 1000000);
}

int
pv_cart_price(struct pv_cart *cart, struct pv_err *err)
{
	const struct pv_cart_rules *ru = &cart->rules;
	struct pv_cart_line *l;
	int64_t taxable;
	size_t i;

	cart->currency = NULL;
	cart->subtotal_minor = cart->shipping_minor = 0;
	cart->tax_minor = cart->total_minor = 0;
	for (i = 0; i < cart->n; i++) {
		l = &cart->lines[i];
		if (l->variant_internal == NULL)
			continue;
		if (cart->currency == NULL)
			cart->currency = l->currency;
		else if (strcmp(cart->currency, l->currency) != 0)
			problem(l, PV_CART_CURRENCY,
			    "This item is priced in another currency than the "
			    "rest of the cart.");
		if (__builtin_mul_overflow(l->unit_price_minor, l->quantity,
		        &l->subtotal_minor))
			return overflow(err);
		if (l->problem != NULL && l->problem[0] != '\0')
			continue;
		if (__builtin_add_overflow(cart->subtotal_minor,
		        l->subtotal_minor, &cart->subtotal_minor))
			return overflow(err);
	}
	if (!ru->ships || cart->currency == NULL)
		return 0;
	if (ru->rate_currency != NULL &&
	    strcmp(ru->rate_currency, cart->currency) != 0) {
		PV_ERR(err, PV_E_UNPROCESSABLE, "merchant_id",
		    "The merchant's shipping rate is in %s but its catalog in "
		    "%s.",
		    ru->rate_currency, cart->currency);
		return -1;
	}
	cart->shipping_minor = ru->rate_minor;
	if (ru->free_over_minor >= 0 &&
	    cart->subtotal_minor >= ru->free_over_minor)
		cart->shipping_minor = 0;
	taxable = cart->subtotal_minor;
	if (ru->shipping_taxable &&
	    __builtin_add_overflow(taxable, cart->shipping_minor, &taxable))
		return overflow(err);
	cart->tax_minor = tax_of(taxable, ru->tax_ppm);
	if (__builtin_add_overflow(cart->subtotal_minor, cart->shipping_minor,
	        &cart->total_minor) ||
	    __builtin_add_overflow(cart->total_minor, cart->tax_minor,
	        &cart->total_minor))
		return overflow(err);
	return 0;
}

const struct pv_cart_line *
pv_cart_first_problem(const struct pv_cart *cart, size_t *index)
{
	size_t i;

	for (i = 0; i < cart->n; i++)
		if (cart->lines[i].problem != NULL &&
		    cart->lines[i].problem[0] != '\0') {
			*index = i;
			return &cart->lines[i];
		}
	return NULL;
}

/*
 * A client's price claim as minor units: a decimal string ("48.00") or
 * a JSON number (48, 48.0) in the order's currency.  Numbers are read
 * from their text, never through a double.
 */
static int
claim_minor(struct json_object *claim, const char *currency, int64_t *out,
    const char *field, struct pv_err *err)
{
	const char *s;

	switch (json_object_get_type(claim)) {
	case json_type_string:
	case json_type_int:
	case json_type_double:
		s = json_object_get_string(claim);
		return pv_money_parse(s, strlen(s), currency, 0, out, field,
		    err);
	default:
		PV_ERR(err, PV_E_INVALID, field,
		    "Must be a decimal string such as \"48.00\".");
		return -1;
	}
}

static int
check_claim(struct pv_ctx *ctx, const struct pv_cart *cart, size_t i,
    struct json_object *claim, const char *what, int64_t ours,
    struct pv_err *err)
{
	char field[48], theirs_s[PV_MONEY_FORMAT_SIZE],
	    ours_s[PV_MONEY_FORMAT_SIZE];
	int64_t theirs;

	(void)ctx;
	if (claim == NULL || json_object_get_type(claim) == json_type_null)
		return 0;
	snprintf(field, sizeof(field), "items[%zu].%s", i, what);
	if (claim_minor(claim, cart->currency, &theirs, field, err))
		return -1;
	if (theirs == ours)
		return 0;
	if (pv_money_format(theirs, cart->currency, theirs_s, sizeof(theirs_s),
	        err) ||
	    pv_money_format(ours, cart->currency, ours_s, sizeof(ours_s), err))
		return -1;
	PV_ERR(err, PV_E_CONFLICT, field,
	    "The %s of %s is %s %s, not %s: the price has changed.", what,
	    cart->lines[i].product_id, ours_s, cart->currency, theirs_s);
	pv_err_reason(err, PV_CART_PRICE_CHANGED);
	return -1;
}

int
pv_cart_check_claims(struct pv_ctx *ctx, const struct pv_cart *cart,
    struct pv_err *err)
{
	const struct pv_cart_line *l;
	size_t i;

	for (i = 0; i < cart->n; i++) {
		l = &cart->lines[i];
		if (check_claim(ctx, cart, i, l->unit_price_claim, "unit_price",
		        l->unit_price_minor, err) ||
		    check_claim(ctx, cart, i, l->subtotal_claim, "subtotal",
		        l->subtotal_minor, err))
			return -1;
	}
	return 0;
}

void
pv_cart_set_money(struct json_object *obj, const char *key, int64_t minor,
    const char *currency, struct pv_err *err)
{
	char buf[PV_MONEY_FORMAT_SIZE], k[64];

	if (pv_money_format(minor, currency, buf, sizeof(buf), err))
		return;
	pv_json_set_str(obj, key, buf, err);
	snprintf(k, sizeof(k), "%s_minor", key);
	pv_json_set_int(obj, k, minor, err);
}
