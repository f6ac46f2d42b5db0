/*
 * The orders program's order half: cart validation, order creation,
 * reading, listing and cancelling.  Contracts in pv_order.h; pricing in
 * pv_cart.c; payments in pv_payment.c.
 *
 * Creation is two statements after the prologue: the quote (one read of
 * merchant, rules and catalog) and pv_order_insert(), which locks the
 * variants, re-checks prices and stock under the lock, reserves and
 * inserts in one go.  So an order is priced from the catalog as it is
 * when the stock is taken, and two agents cannot both buy the last unit.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "pv_agent.h"
#include "pv_arena.h"
#include "pv_buf.h"
#include "pv_cart.h"
#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_idem.h"
#include "pv_json.h"
#include "pv_money.h"
#include "pv_order.h"
#include "pv_payment.h"
#include "pv_valid.h"

#define LIST_LIMIT_DEFAULT 20
#define LIST_LIMIT_MAX     100
#define METADATA_KEYS_MAX  50
#define METADATA_TEXT_MAX  8192

static struct json_object *
success(struct pv_ctx *ctx, struct pv_err *err)
{
	struct json_object *o = pv_json_new_obj(ctx->arena, err);

	pv_json_set_str(o, "status", "success", err);
	return o;
}

static int
reply(struct pv_ctx *ctx, struct pv_resp *resp, struct json_object *o,
    struct pv_err *err)
{
	if (err->code != PV_OK)
		return -1;
	return pv_resp_json(ctx, resp, 200, o, err);
}

/* A country code from the request, upper-cased; 400 naming field. */
static int
country(struct pv_ctx *ctx, const char *in, const char *field, const char **out,
    struct pv_err *err)
{
	char *c;

	if (in == NULL || strlen(in) != 2)
		goto bad;
	if ((c = pv_arena_strdup(ctx->arena, in, err)) == NULL)
		return -1;
	c[0] = (char)toupper((unsigned char)c[0]);
	c[1] = (char)toupper((unsigned char)c[1]);
	if (!pv_valid_country(c))
		goto bad;
	*out = c;
	return 0;
bad:
	PV_ERR(err, PV_E_INVALID, field,
	    "Must be an ISO 3166-1 alpha-2 country code such as \"US\".");
	return -1;
}

/* A region (state, province) code for tax rules: upper case, or "". */
static const char *
region(struct pv_ctx *ctx, const char *in, struct pv_err *err)
{
	char *r;
	size_t i;

	if (in == NULL || strlen(in) > 3)
		return "";
	if ((r = pv_arena_strdup(ctx->arena, in, err)) == NULL)
		return "";
	for (i = 0; r[i] != '\0'; i++) {
		if (!isalnum((unsigned char)r[i]))
			return "";
		r[i] = (char)toupper((unsigned char)r[i]);
	}
	return r;
}

static void
set_estimate(struct pv_ctx *ctx, struct json_object *o,
    const struct pv_cart *cart, struct pv_err *err)
{
	char date[16];
	time_t t = ctx->now + (time_t)cart->rules.max_days * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	pv_json_set_str(o, "country", cart->country, err);
	pv_json_set_str(o, "estimated_delivery", date, err);
	pv_json_set_int(o, "min_days", cart->rules.min_days, err);
	pv_json_set_int(o, "max_days", cart->rules.max_days, err);
}

static struct json_object *
pricing_json(struct pv_ctx *ctx, const struct pv_cart *cart, struct pv_err *err)
{
	struct json_object *p = pv_json_new_obj(ctx->arena, err);
	const char *cur = cart->currency;

	pv_cart_set_money(p, "subtotal", cart->subtotal_minor, cur, err);
	pv_cart_set_money(p, "shipping_fee", cart->shipping_minor, cur, err);
	pv_cart_set_money(p, "tax", cart->tax_minor, cur, err);
	pv_cart_set_money(p, "total", cart->total_minor, cur, err);
	pv_json_set_str(p, "currency", cur, err);
	return p;
}

/*
 * POST /agent/v1/cart/validate {merchant_id, items, shipping_country,
 * shipping_state?}: every line priced, problems reported, not errors.
 */
static int
cart_validate(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	static const char *const keys[] = { "merchant_id", "items",
		"shipping_country", "shipping_state", NULL };
	struct json_object *body, *o, *items, *errors, *it, *e, *ship;
	const char *cc, *state;
	struct pv_cart cart;
	size_t i;

	memset(&cart, 0, sizeof(cart));
	if (pv_json_parse(ctx->arena, req->body, req->bodylen, &body, err) ||
	    pv_json_only_keys(body, keys, err) ||
	    pv_json_str(body, "merchant_id", 1, 64, &cart.merchant_id, err) ||
	    pv_json_str(body, "shipping_country", 2, 2, &cc, err) ||
	    country(ctx, cc, "shipping_country", &cart.country, err) ||
	    pv_json_str_opt(body, "shipping_state", 0, 100, &state, err) ||
	    pv_cart_parse_items(ctx, body, 0, &cart, err))
		return -1;
	cart.region = region(ctx, state, err);
	if (pv_cart_quote(ctx, &cart, err))
		return -1;
	o = success(ctx, err);
	items = pv_json_new_arr(ctx->arena, err);
	errors = pv_json_new_arr(ctx->arena, err);
	for (i = 0; i < cart.n; i++) {
		const struct pv_cart_line *l = &cart.lines[i];

		if (l->problem[0] != '\0') {
			e = pv_json_new_obj(ctx->arena, err);
			pv_json_set_str(e, "product_id", l->product_id, err);
			pv_json_set_str(e, "code", l->problem, err);
			pv_json_set_str(e, "error", l->problem_text, err);
			pv_json_push(errors, e, err);
		}
		if (l->variant_internal == NULL)
			continue;
		it = pv_json_new_obj(ctx->arena, err);
		pv_json_set_str(it, "product_id", l->product_public, err);
		pv_json_set_str(it, "product_title", l->title, err);
		pv_json_set_str(it, "variant_id", l->variant_public, err);
		pv_json_set_str(it, "variant_title", l->variant_title, err);
		pv_json_set_str(it, "sku", l->sku, err);
		pv_json_set_int(it, "quantity", l->quantity, err);
		pv_cart_set_money(it, "unit_price", l->unit_price_minor,
		    l->currency, err);
		pv_cart_set_money(it, "subtotal", l->subtotal_minor,
		    l->currency, err);
		pv_json_set_bool(it, "in_stock",
		    !l->tracked || l->available >= l->quantity, err);
		pv_json_push(items, it, err);
	}
	if (!cart.rules.ships) {
		e = pv_json_new_obj(ctx->arena, err);
		pv_json_set(e, "product_id", NULL, err);
		pv_json_set_str(e, "code", "shipping_unavailable", err);
		pv_json_set_str(e, "error",
		    "The merchant does not ship to this country.", err);
		pv_json_push(errors, e, err);
	}
	pv_json_set_bool(o, "valid",
	    json_object_array_length(errors) == 0 && cart.currency != NULL,
	    err);
	pv_json_set(o, "items", items, err);
	pv_json_set(o, "errors", errors, err);
	if (cart.currency != NULL)
		pv_json_set(o, "pricing", pricing_json(ctx, &cart, err), err);
	ship = pv_json_new_obj(ctx->arena, err);
	set_estimate(ctx, ship, &cart, err);
	pv_json_set(o, "shipping", ship, err);
	return reply(ctx, resp, o, err);
}

/* The shipping address, checked; re-serialised for pv_order_insert. */
static int
parse_address(struct pv_ctx *ctx, struct json_object *body, const char **cc,
    const char **state, const char **json, struct pv_err *err)
{
	static const char *const keys[] = { "name", "address_line1",
		"address_line2", "city", "state", "postal_code", "country",
		"phone", NULL };
	struct json_object *a, *out;
	const char *name, *l1, *l2, *city, *st, *zip, *c, *phone;

	if (pv_json_obj(body, "shipping_address", &a, err))
		return -1;
	if (pv_json_only_keys(a, keys, err) ||
	    pv_json_str(a, "name", 1, 200, &name, err) ||
	    pv_json_str(a, "address_line1", 1, 200, &l1, err) ||
	    pv_json_str_opt(a, "address_line2", 0, 200, &l2, err) ||
	    pv_json_str(a, "city", 1, 100, &city, err) ||
	    pv_json_str_opt(a, "state", 0, 100, &st, err) ||
	    pv_json_str(a, "postal_code", 1, 20, &zip, err) ||
	    pv_json_str(a, "country", 2, 2, &c, err) ||
	    pv_json_str_opt(a, "phone", 0, 40, &phone, err))
		return pv_json_err_prefix(err, "shipping_address");
	if (country(ctx, c, "shipping_address.country", cc, err))
		return -1;
	*state = region(ctx, st, err);
	out = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(out, "name", name, err);
	pv_json_set_str(out, "address_line1", l1, err);
	pv_json_set_str(out, "address_line2", l2 != NULL ? l2 : "", err);
	pv_json_set_str(out, "city", city, err);
	pv_json_set_str(out, "state", st != NULL ? st : "", err);
	pv_json_set_str(out, "postal_code", zip, err);
	pv_json_set_str(out, "country", *cc, err);
	pv_json_set_str(out, "phone", phone != NULL ? phone : "", err);
	if (err->code != PV_OK)
		return -1;
	return pv_json_to_str(ctx->arena, out, json, NULL, err);
}

/* metadata: an object of at most METADATA_KEYS_MAX members. */
static int
parse_metadata(struct pv_ctx *ctx, struct json_object *body, const char **out,
    struct pv_err *err)
{
	struct json_object *m;
	size_t len;

	*out = "{}";
	if (pv_json_obj_opt(body, "metadata", &m, err))
		return -1;
	if (m == NULL)
		return 0;
	if (json_object_object_length(m) > METADATA_KEYS_MAX) {
		PV_ERR(err, PV_E_INVALID, "metadata",
		    "At most %d keys are allowed.", METADATA_KEYS_MAX);
		return -1;
	}
	if (pv_json_to_str(ctx->arena, m, out, &len, err))
		return -1;
	if (len > METADATA_TEXT_MAX) {
		PV_ERR(err, PV_E_INVALID, "metadata",
		    "Must be at most %d bytes as JSON.", METADATA_TEXT_MAX);
		return -1;
	}
	return 0;
}

/* The first line that cannot be bought, as the create error. */
static int
line_error(const struct pv_cart *cart, struct pv_err *err)
{
	const struct pv_cart_line *l;
	char field[48];
	size_t i;

	if ((l = pv_cart_first_problem(cart, &i)) == NULL)
		return 0;
	if (strcmp(l->problem, PV_CART_NOT_FOUND) == 0) {
		snprintf(field, sizeof(field), "items[%zu].product_id", i);
		PV_ERR(err, PV_E_INVALID, field,
		    "No product %s at merchant %s.", l->product_id,
		    cart->merchant_id);
	} else if (strcmp(l->problem, PV_CART_NO_VARIANT) == 0) {
		snprintf(field, sizeof(field), "items[%zu].variant_id", i);
		PV_ERR(err, PV_E_INVALID, field,
		    "Product %s has no variant %s.", l->product_id,
		    l->variant_id);
	} else if (strcmp(l->problem, PV_CART_OUT_OF_STOCK) == 0) {
		snprintf(field, sizeof(field), "items[%zu]", i);
		PV_ERR(err, PV_E_CONFLICT, field,
		    "%s (%s) is out of stock: %" PRId64 " available, %" PRId64
		    " asked.",
		    l->title, l->product_id,
		    l->available > 0 ? l->available : 0, l->quantity);
		pv_err_reason(err, PV_CART_OUT_OF_STOCK);
	} else {
		snprintf(field, sizeof(field), "items[%zu]", i);
		PV_ERR(err, PV_E_CONFLICT, field, "%s: %s", l->product_id,
		    l->problem_text);
		pv_err_reason(err, l->problem);
	}
	return -1;
}

/* items as pv_order_insert() takes them. */
static int
items_json(struct pv_ctx *ctx, const struct pv_cart *cart, const char **out,
    struct pv_err *err)
{
	struct json_object *arr = pv_json_new_arr(ctx->arena, err), *o;
	const struct pv_cart_line *l;
	size_t i;

	for (i = 0; i < cart->n; i++) {
		l = &cart->lines[i];
		o = pv_json_new_obj(ctx->arena, err);
		pv_json_set_str(o, "product_id", l->product_internal, err);
		pv_json_set_str(o, "variant_id", l->variant_internal, err);
		pv_json_set_str(o, "product_public_id", l->product_public, err);
		pv_json_set_str(o, "variant_public_id", l->variant_public, err);
		if (l->external_variant_id != NULL)
			pv_json_set_str(o, "external_variant_id",
			    l->external_variant_id, err);
		pv_json_set_str(o, "title", l->title, err);
		pv_json_set_str(o, "variant_title", l->variant_title, err);
		pv_json_set_str(o, "sku", l->sku, err);
		pv_json_set_int(o, "quantity", l->quantity, err);
		pv_json_set_int(o, "unit_price_minor", l->unit_price_minor,
		    err);
		pv_json_push(arr, o, err);
	}
	if (err->code != PV_OK)
		return -1;
	return pv_json_to_str(ctx->arena, arr, out, NULL, err);
}

/* "ORD_" + 16 uppercase hex from the CSPRNG. */
static int
new_order_id(struct pv_ctx *ctx, const char **out, struct pv_err *err)
{
	char *id;
	size_t i;

	if (pv_crypto_token(ctx->arena, "ORD_", 8, out, err))
		return -1;
	id = (char *)(uintptr_t)*out;
	for (i = 4; id[i] != '\0'; i++)
		id[i] = (char)toupper((unsigned char)id[i]);
	return 0;
}

struct create_in {
	struct pv_cart cart;
	const char *email, *ship, *ship_country, *ship_state, *metadata;
	const char *session, *currency, *preferred;
};

static int
parse_create(struct pv_ctx *ctx, const struct pv_req *req, struct create_in *in,
    struct pv_err *err)
{
	static const char *const keys[] = { "merchant_id", "customer_email",
		"items", "shipping_address", "currency", "metadata",
		"agent_session_id", "preferred_psp", NULL };
	static const char *const psps[] = { "stripe", "adyen", "sandbox",
		NULL };
	struct json_object *body;
	size_t ignored;

	if (pv_json_parse(ctx->arena, req->body, req->bodylen, &body, err) ||
	    pv_json_only_keys(body, keys, err) ||
	    pv_json_str(body, "merchant_id", 1, 64, &in->cart.merchant_id,
	        err) ||
	    pv_json_str(body, "customer_email", 3, 254, &in->email, err) ||
	    pv_valid_email(in->email, strlen(in->email), "customer_email",
	        err) ||
	    pv_cart_parse_items(ctx, body, 1, &in->cart, err) ||
	    parse_address(ctx, body, &in->ship_country, &in->ship_state,
	        &in->ship, err) ||
	    pv_json_str_opt(body, "currency", 3, 3, &in->currency, err) ||
	    parse_metadata(ctx, body, &in->metadata, err) ||
	    pv_json_str_opt(body, "agent_session_id", 0, 255, &in->session,
	        err) ||
	    pv_json_str_opt(body, "preferred_psp", 1, 32, &in->preferred, err))
		return -1;
	if (in->preferred != NULL &&
	    pv_valid_enum(in->preferred, psps, &ignored, "preferred_psp", err))
		return -1;
	in->cart.country = in->ship_country;
	in->cart.region = in->ship_state;
	return 0;
}

/* What the quote says about the whole order, before any write. */
static int
check_quote(const struct create_in *in, struct pv_err *err)
{
	const struct pv_cart *cart = &in->cart;

	if (line_error(cart, err))
		return -1;
	if (!cart->rules.ships) {
		PV_ERR(err, PV_E_INVALID, "shipping_address.country",
		    "Merchant %s does not ship to %s.", cart->merchant_id,
		    cart->country);
		pv_err_reason(err, "shipping_unavailable");
		return -1;
	}
	if (in->currency != NULL &&
	    strcasecmp(in->currency, cart->currency) != 0) {
		PV_ERR(err, PV_E_INVALID, "currency",
		    "This merchant prices these items in %s, not %s.",
		    cart->currency, in->currency);
		return -1;
	}
	if (cart->psp[0] == '\0') {
		PV_ERR(err, PV_E_CONFLICT, "merchant_id",
		    "Merchant %s has no payment provider connected yet.",
		    cart->merchant_id);
		pv_err_reason(err, "merchant_not_payable");
		return -1;
	}
	if (cart->total_minor <= 0) {
		PV_ERR(err, PV_E_INVALID, "items",
		    "The order's total must be more than zero.");
		return -1;
	}
	return 0;
}

static int
insert_order(struct pv_ctx *ctx, struct create_in *in, const char *order_id,
    const char **internal, struct pv_err *err)
{
	char sub[24], ship[24], tax[24], exp[8], ttl[16];
	const char *p[15], *items;
	const struct pv_cart *cart = &in->cart;
	PGresult *res;
	long line;

	if (items_json(ctx, cart, &items, err))
		return -1;
	snprintf(sub, sizeof(sub), "%" PRId64, cart->subtotal_minor);
	snprintf(ship, sizeof(ship), "%" PRId64, cart->shipping_minor);
	snprintf(tax, sizeof(tax), "%" PRId64, cart->tax_minor);
	snprintf(exp, sizeof(exp), "%d", pv_money_exponent(cart->currency));
	snprintf(ttl, sizeof(ttl), "%d", PV_ORDER_TTL_S);
	p[0] = order_id;
	p[1] = cart->merchant_internal;
	p[2] = ctx->agent->id;
	p[3] = cart->currency;
	p[4] = exp;
	p[5] = sub;
	p[6] = ship;
	p[7] = tax;
	p[8] = in->email;
	p[9] = in->ship;
	p[10] = in->metadata;
	p[11] = in->session != NULL ? in->session : "";
	p[12] = cart->psp;
	p[13] = ttl;
	p[14] = items;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT result, line, order_id FROM pv_order_insert($1,"
	               " $2::bigint, $3::bigint, $4, $5::smallint, $6::bigint,"
	               " $7::bigint, $8::bigint, $9, $10::jsonb, $11::jsonb,"
	               " $12, $13, $14::integer, $15::jsonb)"),
	        15, p, &res, err) == -1)
		return -1;
	if (strcmp(PQgetvalue(res, 0, 0), "ok") == 0) {
		*internal = PQgetvalue(res, 0, 2);
		return 0;
	}
	/* The catalog moved between the quote and the lock. */
	line = strtol(PQgetvalue(res, 0, 1), NULL, 10) - 1;
	if (line < 0 || (size_t)line >= cart->n)
		line = 0;
	in->cart.lines[line].problem =
	    strcmp(PQgetvalue(res, 0, 0), "out_of_stock") == 0 ?
	    PV_CART_OUT_OF_STOCK :
	    PV_CART_PRICE_CHANGED;
	in->cart.lines[line].problem_text =
	    "The catalog changed while the "
	    "order was being placed; quote again.";
	in->cart.lines[line].available = 0;
	return line_error(cart, err);
}

/* The 200 answer to an order creation, decided before the insert. */
static struct json_object *
create_reply(struct pv_ctx *ctx, const struct create_in *in,
    const char *order_id, struct pv_err *err)
{
	struct json_object *o, *pay, *track;
	const char *cur = in->cart.currency;
	char ts[32];
	struct tm tm;

	o = success(ctx, err);
	pv_json_set_str(o, "order_id", order_id, err);
	pv_json_set_str(o, "order_status", "pending", err);
	pv_json_set_str(o, "merchant_id", in->cart.merchant_id, err);
	pv_cart_set_money(o, "total", in->cart.total_minor, cur, err);
	pv_cart_set_money(o, "subtotal", in->cart.subtotal_minor, cur, err);
	pv_cart_set_money(o, "shipping_fee", in->cart.shipping_minor, cur, err);
	pv_cart_set_money(o, "tax", in->cart.tax_minor, cur, err);
	pv_json_set_str(o, "currency", cur, err);
	/* The provider's intent is made by POST /agent/v1/payments. */
	pay = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(pay, "psp", in->cart.psp, err);
	pv_json_set_str(pay, "payment_intent_id", "", err);
	pv_json_set_str(pay, "client_secret", "", err);
	pv_json_set_str(pay, "status", "requires_payment_method", err);
	pv_json_set(o, "payment", pay, err);
	track = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(track, "agent_session_id",
	    in->session != NULL ? in->session : "", err);
	gmtime_r(&ctx->now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pv_json_set_str(track, "created_at", ts, err);
	pv_json_set(o, "tracking", track, err);
	return o;
}

struct create_tx {
	struct create_in *in;
	const char *order_id;
	struct json_object *reply;
	struct pv_resp *resp;
};

/*
 * The order and its Idempotency-Key record commit together: one
 * durable commit per order, and no window in which an order exists
 * whose key still says "running".
 */
static int
create_tx(struct pv_ctx *ctx, void *arg, struct pv_err *err)
{
	struct create_tx *t = arg;
	const char *internal;

	if (insert_order(ctx, t->in, t->order_id, &internal, err) ||
	    pv_resp_json(ctx, t->resp, 200, t->reply, err))
		return -1;
	return pv_idem_finish_tx(ctx, t->resp, err);
}

/*
 * POST /agent/v1/orders/create and POST /agent/v1/orders: a priced
 * order with its stock reserved; see API.md for the body.
 */
static int
order_create(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	struct create_in in;
	struct create_tx t;

	memset(&in, 0, sizeof(in));
	if (parse_create(ctx, req, &in, err) ||
	    pv_cart_quote(ctx, &in.cart, err) || check_quote(&in, err) ||
	    pv_cart_check_claims(ctx, &in.cart, err) ||
	    new_order_id(ctx, &t.order_id, err))
		return -1;
	t.in = &in;
	t.resp = resp;
	if ((t.reply = create_reply(ctx, &in, t.order_id, err)) == NULL ||
	    err->code != PV_OK || pv_db_tx(ctx, create_tx, &t, err))
		return -1;
	pv_idem_committed(ctx);
	ctx->usage.order_id = t.order_id;
	ctx->usage.gmv_minor = in.cart.total_minor;
	ctx->usage.currency = in.cart.currency;
	return 0;
}

#define ORDER_COLS \
	"o.id, o.public_id, m.public_id, m.business_name, a.public_id," \
	" o.status, o.payment_status, o.fulfillment_status, o.customer_email," \
	" o.ship_name, o.ship_line1, o.ship_line2, o.ship_city, o.ship_state," \
	" o.ship_postal_code, o.ship_country, o.ship_phone," \
	" o.subtotal_minor, o.shipping_minor, o.tax_minor, o.total_minor," \
	" o.refunded_minor, o.currency, o.tracking_number, o.carrier," \
	" o.tracking_url, o.platform_order_id, pv_ts(o.created_at)," \
	" pv_ts(o.updated_at), pv_ts(o.paid_at), pv_ts(o.shipped_at)," \
	" pv_ts(o.delivered_at), o.psp, o.agent_session_id, o.metadata," \
	" pv_ts(o.expires_at)"

#define ORDER_FROM \
	" FROM orders o JOIN merchants m ON m.id = o.merchant_id" \
	" JOIN agents a ON a.id = o.agent_id"

enum {
	O_ID,
	O_PUBLIC,
	O_MERCHANT,
	O_MERCHANT_NAME,
	O_AGENT,
	O_STATUS,
	O_PAYMENT,
	O_FULFILLMENT,
	O_EMAIL,
	O_SHIP_NAME,
	O_LINE1,
	O_LINE2,
	O_CITY,
	O_STATE,
	O_POSTAL,
	O_COUNTRY,
	O_PHONE,
	O_SUBTOTAL,
	O_SHIPPING,
	O_TAX,
	O_TOTAL,
	O_REFUNDED,
	O_CURRENCY,
	O_TRACKING,
	O_CARRIER,
	O_TRACKING_URL,
	O_PLATFORM,
	O_CREATED,
	O_UPDATED,
	O_PAID,
	O_SHIPPED,
	O_DELIVERED,
	O_PSP,
	O_SESSION,
	O_METADATA,
	O_EXPIRES
};

static int64_t
num(const PGresult *res, int r, int c)
{
	return strtoll(PQgetvalue(res, r, c), NULL, 10);
}

/* A nullable text column: the value or JSON null. */
static void
set_opt(struct json_object *o, const char *key, const PGresult *res, int r,
    int c, struct pv_err *err)
{
	if (PQgetisnull(res, r, c))
		pv_json_set(o, key, NULL, err);
	else
		pv_json_set_str(o, key, PQgetvalue(res, r, c), err);
}

static struct json_object *
address_json(struct pv_ctx *ctx, const PGresult *res, int r, struct pv_err *err)
{
	struct json_object *a = pv_json_new_obj(ctx->arena, err);

	pv_json_set_str(a, "name", PQgetvalue(res, r, O_SHIP_NAME), err);
	pv_json_set_str(a, "address_line1", PQgetvalue(res, r, O_LINE1), err);
	pv_json_set_str(a, "address_line2", PQgetvalue(res, r, O_LINE2), err);
	pv_json_set_str(a, "city", PQgetvalue(res, r, O_CITY), err);
	pv_json_set_str(a, "state", PQgetvalue(res, r, O_STATE), err);
	pv_json_set_str(a, "postal_code", PQgetvalue(res, r, O_POSTAL), err);
	pv_json_set_str(a, "country", PQgetvalue(res, r, O_COUNTRY), err);
	pv_json_set_str(a, "phone", PQgetvalue(res, r, O_PHONE), err);
	return a;
}

/* The order row r without items and events. */
static struct json_object *
order_head(struct pv_ctx *ctx, const PGresult *res, int r, struct pv_err *err)
{
	struct json_object *o = pv_json_new_obj(ctx->arena, err), *meta;
	const char *cur = PQgetvalue(res, r, O_CURRENCY);

	pv_json_set_str(o, "order_id", PQgetvalue(res, r, O_PUBLIC), err);
	pv_json_set_str(o, "merchant_id", PQgetvalue(res, r, O_MERCHANT), err);
	pv_json_set_str(o, "merchant_name", PQgetvalue(res, r, O_MERCHANT_NAME),
	    err);
	pv_json_set_str(o, "agent_id", PQgetvalue(res, r, O_AGENT), err);
	pv_json_set_str(o, "status", PQgetvalue(res, r, O_STATUS), err);
	pv_json_set_str(o, "payment_status", PQgetvalue(res, r, O_PAYMENT),
	    err);
	pv_json_set_str(o, "fulfillment_status",
	    PQgetvalue(res, r, O_FULFILLMENT), err);
	pv_json_set_str(o, "customer_email", PQgetvalue(res, r, O_EMAIL), err);
	pv_json_set(o, "shipping_address", address_json(ctx, res, r, err), err);
	pv_cart_set_money(o, "subtotal", num(res, r, O_SUBTOTAL), cur, err);
	pv_cart_set_money(o, "shipping_fee", num(res, r, O_SHIPPING), cur, err);
	pv_cart_set_money(o, "tax", num(res, r, O_TAX), cur, err);
	pv_cart_set_money(o, "total", num(res, r, O_TOTAL), cur, err);
	pv_cart_set_money(o, "refunded_total", num(res, r, O_REFUNDED), cur,
	    err);
	pv_json_set_str(o, "currency", cur, err);
	set_opt(o, "tracking_number", res, r, O_TRACKING, err);
	set_opt(o, "carrier", res, r, O_CARRIER, err);
	set_opt(o, "tracking_url", res, r, O_TRACKING_URL, err);
	set_opt(o, "platform_order_id", res, r, O_PLATFORM, err);
	pv_json_set_str(o, "created_at", PQgetvalue(res, r, O_CREATED), err);
	pv_json_set_str(o, "updated_at", PQgetvalue(res, r, O_UPDATED), err);
	set_opt(o, "paid_at", res, r, O_PAID, err);
	set_opt(o, "shipped_at", res, r, O_SHIPPED, err);
	set_opt(o, "delivered_at", res, r, O_DELIVERED, err);
	pv_json_set_str(o, "psp", PQgetvalue(res, r, O_PSP), err);
	pv_json_set_str(o, "agent_session_id", PQgetvalue(res, r, O_SESSION),
	    err);
	if (pv_json_parse(ctx->arena, PQgetvalue(res, r, O_METADATA),
	        (size_t)PQgetlength(res, r, O_METADATA), &meta, err) == 0)
		pv_json_set(o, "metadata", meta, err);
	if (strcmp(PQgetvalue(res, r, O_STATUS), "pending") == 0 ||
	    strcmp(PQgetvalue(res, r, O_STATUS), "payment_failed") == 0)
		pv_json_set_str(o, "expires_at", PQgetvalue(res, r, O_EXPIRES),
		    err);
	pv_json_set(o, "items", pv_json_new_arr(ctx->arena, err), err);
	pv_json_set(o, "events", pv_json_new_arr(ctx->arena, err), err);
	return o;
}

/* "{1,2,3}" of the orders' internal ids, for = ANY($1::bigint[]). */
static const char *
id_list(struct pv_ctx *ctx, const PGresult *res, struct pv_err *err)
{
	struct pv_buf b;
	const char *out;
	int r;

	pv_buf_init(&b, ctx->arena, 64 * 24);
	pv_buf_putc(&b, '{');
	for (r = 0; r < PQntuples(res); r++)
		pv_buf_printf(&b, "%s%s", r > 0 ? "," : "",
		    PQgetvalue(res, r, O_ID));
	pv_buf_putc(&b, '}');
	if (pv_buf_finish(&b, &out, NULL, err))
		return NULL;
	return out;
}

/* Finds the JSON order with internal id (orders[i] <-> res row i). */
static struct json_object *
order_for(const PGresult *res, struct json_object **orders, const char *id)
{
	int r;

	for (r = 0; r < PQntuples(res); r++)
		if (strcmp(PQgetvalue(res, r, O_ID), id) == 0)
			return orders[r];
	return NULL;
}

/* Adds items[] and events[] to the orders of res (one query each). */
static int
add_children(struct pv_ctx *ctx, const PGresult *res,
    struct json_object **orders, struct pv_err *err)
{
	const char *p[1];
	struct json_object *o, *arr, *it, *detail;
	PGresult *ir, *er;
	int r;

	if (PQntuples(res) == 0)
		return 0;
	if ((p[0] = id_list(ctx, res, err)) == NULL)
		return -1;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT i.order_id, i.product_public_id,"
	               " i.variant_public_id, i.title, i.variant_title, i.sku,"
	               " i.quantity, i.unit_price_minor, i.subtotal_minor,"
	               " o.currency FROM order_items i"
	               " JOIN orders o ON o.id = i.order_id"
	               " WHERE i.order_id = ANY($1::bigint[])"
	               " ORDER BY i.order_id, i.line"),
	        1, p, &ir, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT order_id, seq, type, pv_ts(created_at), detail, "
	               "flagged FROM order_events"
	               " WHERE order_id = ANY($1::bigint[])"
	               " ORDER BY order_id, seq"),
	        1, p, &er, err) == -1)
		return -1;
	for (r = 0; r < PQntuples(ir); r++) {
		const char *cur = PQgetvalue(ir, r, 9);

		if ((o = order_for(res, orders, PQgetvalue(ir, r, 0))) == NULL)
			continue;
		json_object_object_get_ex(o, "items", &arr);
		it = pv_json_new_obj(ctx->arena, err);
		pv_json_set_str(it, "product_id", PQgetvalue(ir, r, 1), err);
		pv_json_set_str(it, "variant_id", PQgetvalue(ir, r, 2), err);
		pv_json_set_str(it, "title", PQgetvalue(ir, r, 3), err);
		pv_json_set_str(it, "variant_title", PQgetvalue(ir, r, 4), err);
		pv_json_set_str(it, "sku", PQgetvalue(ir, r, 5), err);
		pv_json_set_int(it, "quantity", num(ir, r, 6), err);
		pv_cart_set_money(it, "unit_price", num(ir, r, 7), cur, err);
		pv_cart_set_money(it, "subtotal", num(ir, r, 8), cur, err);
		pv_json_push(arr, it, err);
	}
	for (r = 0; r < PQntuples(er); r++) {
		if ((o = order_for(res, orders, PQgetvalue(er, r, 0))) == NULL)
			continue;
		json_object_object_get_ex(o, "events", &arr);
		it = pv_json_new_obj(ctx->arena, err);
		pv_json_set_int(it, "seq", num(er, r, 1), err);
		pv_json_set_str(it, "type", PQgetvalue(er, r, 2), err);
		pv_json_set_str(it, "at", PQgetvalue(er, r, 3), err);
		if (pv_json_parse(ctx->arena, PQgetvalue(er, r, 4),
		        (size_t)PQgetlength(er, r, 4), &detail, err) == 0)
			pv_json_set(it, "detail", detail, err);
		if (PQgetvalue(er, r, 5)[0] == 't')
			pv_json_set_bool(it, "flagged", true, err);
		pv_json_push(arr, it, err);
	}
	return err->code == PV_OK ? 0 : -1;
}

/* Orders of res as JSON objects with items and events (arena array). */
static struct json_object **
orders_json(struct pv_ctx *ctx, const PGresult *res, struct pv_err *err)
{
	struct json_object **orders;
	int r, n = PQntuples(res);

	orders =
	    pv_arena_calloc(ctx->arena, (size_t)n + 1, sizeof(*orders), err);
	if (orders == NULL)
		return NULL;
	for (r = 0; r < n; r++)
		orders[r] = order_head(ctx, res, r, err);
	if (err->code != PV_OK || add_children(ctx, res, orders, err))
		return NULL;
	return orders;
}

struct json_object *
pv_order_json(struct pv_ctx *ctx, const char *order_id, struct pv_err *err)
{
	const char *p[1] = { order_id };
	struct json_object **orders;
	PGresult *res;

	if (pv_db_exec_one(ctx,
	        PV_SQL(
	            "SELECT " ORDER_COLS ORDER_FROM " WHERE o.id = $1::bigint"),
	        1, p, &res, err) == -1 ||
	    (orders = orders_json(ctx, res, err)) == NULL)
		return NULL;
	return orders[0];
}

int
pv_order_lookup(struct pv_ctx *ctx, const char *public_id,
    const char **order_id, struct pv_err *err)
{
	const char *p[2] = { public_id, ctx->agent->id };
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT id, merchant_id FROM orders WHERE public_id = $1"
	               " AND agent_id = $2::bigint"),
	        2, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "order_id", "No such order: %s.",
		    public_id);
		return -1;
	}
	*order_id = PQgetvalue(res, 0, 0);
	ctx->usage.order_id = public_id;
	ctx->usage.merchant_id = PQgetvalue(res, 0, 1);
	return 0;
}

/* GET /agent/v1/orders/{order_id}: 200 {status, order}. */
static int
order_get(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	const char *p[2] = { req->route[0], ctx->agent->id };
	struct json_object **orders, *o;
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT " ORDER_COLS ORDER_FROM
	               " WHERE o.public_id = $1 AND o.agent_id = $2::bigint"),
	        2, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "order_id", "No such order: %s.",
		    req->route[0]);
		return -1;
	}
	ctx->usage.order_id = req->route[0];
	if ((orders = orders_json(ctx, res, err)) == NULL)
		return -1;
	o = success(ctx, err);
	pv_json_set(o, "order", orders[0], err);
	return reply(ctx, resp, o, err);
}

static const char *const order_states[] = { "pending", "paid", "processing",
	"shipped", "delivered", "payment_failed", "cancelled",
	"partially_refunded", "refunded", NULL };

struct list_in {
	const char *merchant, *status, *cursor;
	int64_t limit, offset;
};

static int
parse_list(const struct pv_req *req, struct list_in *in, struct pv_err *err)
{
	static const char *const known[] = { "merchant_id", "status", "limit",
		"offset", "cursor", NULL };
	const char *s;
	size_t i, k;

	for (i = 0; i < req->nparam; i++)
		if (pv_valid_enum(req->params[i].name, known, &k,
		        req->params[i].name, err))
			return -1;
	in->merchant = pv_req_param(req, "merchant_id");
	in->status = pv_req_param(req, "status");
	in->cursor = pv_req_param(req, "cursor");
	in->limit = LIST_LIMIT_DEFAULT;
	in->offset = 0;
	if (in->status != NULL &&
	    pv_valid_enum(in->status, order_states, &k, "status", err))
		return -1;
	if ((s = pv_req_param(req, "limit")) != NULL &&
	    pv_valid_int64(s, 1, LIST_LIMIT_MAX, &in->limit, "limit", err))
		return -1;
	if ((s = pv_req_param(req, "offset")) != NULL &&
	    pv_valid_int64(s, 0, 1000000, &in->offset, "offset", err))
		return -1;
	if (in->cursor != NULL &&
	    pv_valid_id(in->cursor, "ORD_", 16, "cursor", err))
		return -1;
	return 0;
}

/*
 * GET /agent/v1/orders ?merchant_id status limit offset cursor: this
 * agent's orders, newest first.  The cursor is the last order id of a
 * page (keyset: stable while new orders arrive).
 */
static int
order_list(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	struct json_object **orders, *o, *arr, *pg;
	char lim[24], off[24];
	const char *p[6];
	struct list_in in;
	PGresult *res, *cnt;
	int64_t total;
	int r, n;

	if (parse_list(req, &in, err))
		return -1;
	snprintf(lim, sizeof(lim), "%" PRId64, in.limit);
	snprintf(off, sizeof(off), "%" PRId64, in.cursor ? 0 : in.offset);
	p[0] = ctx->agent->id;
	p[1] = in.merchant;
	p[2] = in.status;
	p[3] = in.cursor;
	p[4] = lim;
	p[5] = off;
	if (pv_db_exec(ctx,
	        PV_SQL(
	            "SELECT " ORDER_COLS ORDER_FROM
	            " WHERE o.agent_id = $1::bigint"
	            " AND ($2::text IS NULL OR m.public_id = $2)"
	            " AND ($3::text IS NULL OR o.status = $3)"
	            " AND ($4::text IS NULL OR o.id < (SELECT c.id FROM"
	            "  orders c WHERE c.public_id = $4"
	            "  AND c.agent_id = $1::bigint))"
	            " ORDER BY o.id DESC LIMIT $5::bigint OFFSET $6::bigint"),
	        6, p, &res, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT count(*) FROM orders o"
	               " JOIN merchants m ON m.id = o.merchant_id"
	               " WHERE o.agent_id = $1::bigint"
	               " AND ($2::text IS NULL OR m.public_id = $2)"
	               " AND ($3::text IS NULL OR o.status = $3)"),
	        3, p, &cnt, err) == -1 ||
	    (orders = orders_json(ctx, res, err)) == NULL)
		return -1;
	o = success(ctx, err);
	arr = pv_json_new_arr(ctx->arena, err);
	n = PQntuples(res);
	for (r = 0; r < n; r++)
		pv_json_push(arr, orders[r], err);
	total = num(cnt, 0, 0);
	pg = pv_json_new_obj(ctx->arena, err);
	pv_json_set_int(pg, "total", total, err);
	pv_json_set_int(pg, "limit", in.limit, err);
	pv_json_set_int(pg, "offset", in.cursor ? 0 : in.offset, err);
	pv_json_set_bool(pg, "has_more", n == in.limit, err);
	if (n == in.limit)
		pv_json_set_str(pg, "next_cursor",
		    PQgetvalue(res, n - 1, O_PUBLIC), err);
	else
		pv_json_set(pg, "next_cursor", NULL, err);
	pv_json_set(o, "orders", arr, err);
	pv_json_set(o, "pagination", pg, err);
	return reply(ctx, resp, o, err);
}

/*
 * POST /agent/v1/orders/{order_id}/cancel {reason?}: an unpaid order is
 * cancelled and its stock released; cancelling again answers the same.
 * Paid: 409 pointing to the refund endpoint.
 */
static int
order_cancel(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	static const char *const keys[] = { "reason", NULL };
	struct json_object *body = NULL, *o;
	const char *reason = NULL, *id, *p[2], *out;
	PGresult *res;

	if (req->bodylen > 0 &&
	    (pv_json_parse(ctx->arena, req->body, req->bodylen, &body, err) ||
	        pv_json_only_keys(body, keys, err) ||
	        pv_json_str_opt(body, "reason", 0, 500, &reason, err)))
		return -1;
	if (pv_order_lookup(ctx, req->route[0], &id, err))
		return -1;
	p[0] = id;
	p[1] =
	    reason != NULL && reason[0] != '\0' ? reason : "cancelled by agent";
	if (pv_db_exec(ctx, PV_SQL("SELECT pv_order_cancel($1::bigint, $2)"), 2,
	        p, &res, err) == -1)
		return -1;
	out = PQgetvalue(res, 0, 0);
	if (strcmp(out, "payment_open") == 0) {
		PV_ERR(err, PV_E_CONFLICT, "order_id",
		    "A payment for order %s is still in progress; wait for its "
		    "outcome.",
		    req->route[0]);
		pv_err_reason(err, "payment_in_progress");
		return -1;
	}
	if (strcmp(out, "cancelled") != 0 && strcmp(out, "already") != 0) {
		PV_ERR(err, PV_E_CONFLICT, "order_id",
		    "Order %s is %s and can no longer be cancelled; refund it "
		    "with POST /agent/v1/orders/%s/refund.",
		    req->route[0], out, req->route[0]);
		pv_err_reason(err, "order_not_cancellable");
		return -1;
	}
	o = success(ctx, err);
	pv_json_set_str(o, "order_id", req->route[0], err);
	pv_json_set_str(o, "order_status", "cancelled", err);
	return reply(ctx, resp, o, err);
}

int
pv_order_expire(struct pv_ctx *ctx, long *n, struct pv_err *err)
{
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT count(*) FILTER (WHERE pv_order_cancel(id,"
	               " 'expired unpaid', true) = 'cancelled') FROM (SELECT id"
	               " FROM orders WHERE status IN ('pending',"
	               " 'payment_failed') AND expires_at < now()"
	               " ORDER BY expires_at LIMIT 500) e"),
	        0, NULL, &res, err) == -1)
		return -1;
	*n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	return 0;
}

static const struct pv_route routes[] = {
	{ PV_POST, "/agent/v1/cart/validate", cart_validate,
	    PV_ROUTE_AGENT | PV_ROUTE_IDEMPOTENT },
	{ PV_POST, "/agent/v1/orders/create", order_create,
	    PV_ROUTE_AGENT | PV_ROUTE_IDEMPOTENT },
	{ PV_POST, "/agent/v1/orders", order_create,
	    PV_ROUTE_AGENT | PV_ROUTE_IDEMPOTENT },
	{ PV_GET, "/agent/v1/orders", order_list, PV_ROUTE_AGENT },
	{ PV_GET, "/agent/v1/orders/:id", order_get, PV_ROUTE_AGENT },
	{ PV_POST, "/agent/v1/orders/:id/cancel", order_cancel,
	    PV_ROUTE_AGENT | PV_ROUTE_IDEMPOTENT },
	{ PV_POST, "/agent/v1/payments", pv_payment_create,
	    PV_ROUTE_AGENT | PV_ROUTE_IDEMPOTENT },
	{ PV_GET, "/agent/v1/payments/:id", pv_payment_get, PV_ROUTE_AGENT },
};

/* Routes the orders program's requests; see pv_order.h. */
int
pv_order_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	return pv_route_dispatch(ctx, routes,
	    sizeof(routes) / sizeof(routes[0]), req, resp, err);
}
