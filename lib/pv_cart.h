#ifndef PV_CART_H
#define PV_CART_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "pv_http.h"

/*
 * Carts: the items an agent wants from one merchant, priced by us from
 * the merchant's catalog with its own shipping and tax rules.  Both
 * POST /agent/v1/cart/validate and order creation price through here,
 * so a validated cart and the order made from it cannot disagree.
 *
 * Pricing reads everything in one statement (merchant, the rules for
 * the destination, every line's variant and free stock).  The
 * arithmetic is pure (pv_cart_price) and refuses overflow: money is
 * int64 minor units, never a float.
 */

#define PV_CART_LINES_MAX 100   /* lines per cart */
#define PV_CART_QTY_MAX   10000 /* units per line */

/* Why a line cannot be bought; "" when it can. */
#define PV_CART_NOT_FOUND     "product_not_found"
#define PV_CART_NO_VARIANT    "variant_not_found"
#define PV_CART_UNAVAILABLE   "product_unavailable"
#define PV_CART_OUT_OF_STOCK  "out_of_stock"
#define PV_CART_CURRENCY      "currency_mismatch"
#define PV_CART_PRICE_CHANGED "price_changed"

struct pv_cart_line {
	/* From the request. */
	const char *product_id; /* our prod_ id */
	const char *variant_id; /* var_ id or the store's id; NULL = default */
	int64_t quantity;       /* 1..PV_CART_QTY_MAX */
	struct json_object *unit_price_claim; /* client's unit_price, or NULL */
	struct json_object *subtotal_claim;   /* client's subtotal, or NULL */
	/* From the catalog (NULL/0 when not found). */
	const char *product_internal, *variant_internal;
	const char *product_public, *variant_public, *external_variant_id;
	const char *title, *variant_title, *sku, *currency;
	int64_t unit_price_minor, subtotal_minor;
	int tracked;         /* stock is counted */
	int64_t available;   /* free stock (inventory minus reservations) */
	const char *problem; /* PV_CART_* code, or "" */
	const char *problem_text; /* a sentence for people, or "" */
};

/* The merchant's shipping and tax rules for one destination. */
struct pv_cart_rules {
	int ships;               /* a rule covers the destination */
	int64_t rate_minor;      /* flat shipping */
	int64_t free_over_minor; /* free at or above this subtotal; -1 never */
	const char *rate_currency; /* the rule's currency */
	int min_days, max_days;    /* delivery estimate */
	int64_t tax_ppm;           /* tax rate in parts per million */
	int shipping_taxable;      /* tax applies to shipping too */
};

struct pv_cart {
	const char *merchant_id;       /* public id, as requested */
	const char *merchant_internal; /* merchants.id */
	const char *merchant_name;
	const char *psp;     /* the merchant's provider, or "" */
	const char *country; /* destination, ISO 3166-1 alpha-2 */
	const char *region;  /* state/province code, or "" */
	struct pv_cart_line *lines;
	size_t n;
	struct pv_cart_rules rules;
	/* Priced. */
	const char *currency; /* the lines' common currency */
	int64_t subtotal_minor, shipping_minor, tax_minor, total_minor;
};

/*
 * Reads items[] of a request body into cart (arena).  create is 1 for
 * order creation, which also accepts the compatibility fields
 * unit_price, subtotal, product_title, variant_title and sku.  Errors
 * are 400 naming the field, e.g. "items[2].quantity".
 */
int pv_cart_parse_items(struct pv_ctx *ctx, struct json_object *body,
    int create, struct pv_cart *cart, struct pv_err *err);

/*
 * Loads the merchant (one the agent may buy from: else 400 naming
 * merchant_id), its rules for cart->country/region and every line's
 * variant, then prices the cart with pv_cart_price().  Lines that
 * cannot be bought keep a problem code; the caller decides whether
 * that is an error (order creation) or a report (validation).
 */
int pv_cart_quote(struct pv_ctx *ctx, struct pv_cart *cart, struct pv_err *err);

/*
 * The arithmetic: line subtotals, subtotal, shipping (free above the
 * threshold), tax (rounded half up) and total, over the lines without
 * a problem.  Lines in another currency than the first priced line get
 * PV_CART_CURRENCY.  PV_E_INVALID naming "items" if an amount would
 * overflow.
 */
int pv_cart_price(struct pv_cart *cart, struct pv_err *err);

/* The first line with a problem, or NULL. */
const struct pv_cart_line *pv_cart_first_problem(const struct pv_cart *cart,
    size_t *index);

/*
 * Checks the client's unit_price/subtotal claims of every line against
 * our prices: 409 price_changed naming the line and both prices.
 */
int pv_cart_check_claims(struct pv_ctx *ctx, const struct pv_cart *cart,
    struct pv_err *err);

/* Sets key (decimal string) and key_minor (integer) on obj. */
void pv_cart_set_money(struct json_object *obj, const char *key, int64_t minor,
    const char *currency, struct pv_err *err);

#endif /* PV_CART_H */
