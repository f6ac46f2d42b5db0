#ifndef PV_PRODUCTS_H
#define PV_PRODUCTS_H

#include <stddef.h>
#include <stdint.h>

#include "pv_http.h"

/*
 * The catalog as agents see it (API.md §2): the merchants an agent may
 * buy from, product search across them, and one product.  Every route
 * runs the agent prologue; a merchant outside the agent's scope
 * (inactive, or not on its allow-list) answers exactly as one that
 * does not exist.  The SQL is in pv_products_sql.h; docs/api.md
 * describes parameters, ranking, price filters and cursors.
 *
 *   GET /agent/v1/merchants?limit&offset&status
 *   GET /agent/v1/products/search?query|q&merchant_id&category
 *       &min_price&max_price&in_stock_only|in_stock&limit&offset&cursor
 *   GET /agent/v1/products/{merchant_id}/{product_id}
 */
int pv_products_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

/*
 * A price filter ("25", "25.5", "25.00"; at most 4 decimals, no sign)
 * in 1/10000 of the major unit of any currency, which is how the
 * search compares prices across currencies exactly.  PV_E_INVALID
 * names field.
 */
int pv_products_parse_price(const char *s, const char *field, int64_t *e4,
    struct pv_err *err);

/*
 * Search cursors: the (rank, public id) of the last product of a page
 * and a fingerprint of the search it belongs to, hex-encoded so it
 * needs no escaping in a URL.  encode returns arena memory; decode
 * fills rank and id (arena memory) or fails with PV_E_INVALID on
 * "cursor" if the text is not a cursor or belongs to another search.
 */
#define PV_PRODUCTS_FP_SIZE 9 /* 8 hex digits and a NUL */
int pv_products_cursor_encode(struct pv_arena *a, const char *fp,
    const char *rank, const char *id, const char **out, struct pv_err *err);
int pv_products_cursor_decode(struct pv_arena *a, const char *cursor,
    const char *fp, const char **rank, const char **id, struct pv_err *err);

/*
 * The fingerprint of a search: FNV-1a over its query and filters (NULL
 * and "" differ), written as 8 hex digits into fp.
 */
void pv_products_fingerprint(const char *const *parts, size_t n,
    char fp[PV_PRODUCTS_FP_SIZE]);

#endif /* PV_PRODUCTS_H */
