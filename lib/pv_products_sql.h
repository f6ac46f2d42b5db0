#ifndef PV_PRODUCTS_SQL_H
#define PV_PRODUCTS_SQL_H

/*
 * The statements of the products program (pv_products.c), in one
 * header so that `make bench` (bench/sqltext.c, bench/pgone.c) runs
 * exactly what the endpoints run.  Each is a string literal for
 * PV_SQL().  Read them as the design of the endpoints:
 *
 * Scope.  Every statement starts from the merchants the agent may buy
 * from: active merchants, only those of its allow-list when it has
 * one ($2 restricted), only $3 when a merchant is named.  A merchant
 * outside the scope is indistinguishable from one that does not exist.
 *
 * Search: one statement, one round trip.  The query text is corrected
 * against the catalog vocabulary and turned into an AND of lexemes
 * (catalog_query, migrations/0006_catalog.sql).  The matches come from
 * the GIN index of product_search, are filtered there (scope, category,
 * price in 1/10000 of the major unit, stock) and ranked on the small
 * rank vector; all of them are materialised once, counted (exactly:
 * ranking needs every match anyway, so the count is nearly free) and
 * the page is cut by (rank DESC, public_id).  Only the page's products
 * and variants are read from the wide tables.  A cursor is the last
 * (rank, public_id) of the previous page: keyset paging, so rows do not
 * shift or repeat when the catalog changes between pages; "before"
 * counts the matches ahead of it, which is the page's offset.
 *
 * Parameters of SEARCH and BROWSE:
 *   $1 agent id  $2 restricted  $3 merchant public id or NULL
 *   $4 query text (SEARCH; ignored by BROWSE)  $5 category or NULL
 *   $6 min price e4 or NULL  $7 max price e4 or NULL  $8 in stock only
 *   $9 limit  $10 offset  $11 cursor rank or NULL  $12 cursor public id
 *
 * Times are epoch seconds (C formats them as RFC 3339): no ":" in the
 * text, which pgbench would take for a variable.
 *
 * Result rows, ordered: one per variant of each product of the page
 * (products in rank order, variants by position); at least one row
 * even when the page is empty (product columns NULL).
 */

/* The merchants that blocked agent $1 (migration 0017). */
#define PV_PRODUCTS_SQL_BLOCKED \
	" (SELECT b.merchant_id FROM merchant_agent_blocks b" \
	"  WHERE b.agent_id = $1::bigint)"

/* The merchants the agent may buy from ($1, $2, $3). */
#define PV_PRODUCTS_SQL_SCOPE \
	"scope AS MATERIALIZED (SELECT m.id, m.public_id, m.business_name," \
	" m.platform FROM merchants m WHERE m.status = 'active'" \
	" AND ($3::text IS NULL OR m.public_id = $3)" \
	" AND (NOT $2::boolean OR m.id IN (SELECT am.merchant_id" \
	"  FROM agent_merchants am WHERE am.agent_id = $1::bigint))" \
	" AND m.id NOT IN" PV_PRODUCTS_SQL_BLOCKED ")"

/*
 * Filters on product_search s shared by SEARCH and BROWSE.  s.active
 * includes the merchant's status, so an agent without an allow-list
 * searching every merchant skips the scope test per match.
 */
#define PV_PRODUCTS_SQL_FILTERS \
	" s.active AND ($3::text IS NULL AND NOT $2::boolean" \
	"  AND s.merchant_id NOT IN" PV_PRODUCTS_SQL_BLOCKED \
	"  OR s.merchant_id IN (SELECT id FROM scope))" \
	" AND ($5::text IS NULL OR s.category = lower($5))" \
	" AND ($6::bigint IS NULL OR s.price_e4 >= $6::bigint)" \
	" AND ($7::bigint IS NULL OR s.price_e4 <= $7::bigint)" \
	" AND (NOT $8::boolean OR s.in_stock)"

/*
 * Product columns: 0..17 after the leading meta columns.  Lists come
 * as text joined by U+001F, option pairs as name U+001E value: the
 * import refuses control characters in them, and splitting costs far
 * less than parsing JSON per row.
 */
#define PV_PRODUCTS_SQL_PRODUCT_COLS \
	" p.public_id, m.public_id, m.business_name, m.platform, p.title," \
	" p.description, p.vendor, p.product_type," \
	" array_to_string(p.tags, E'\\x1f')," \
	" array_to_string(p.images, E'\\x1f')," \
	" p.currency, p.in_stock AND p.status = 'active'," \
	" p.inventory_quantity, p.url, p.external_id," \
	" extract(epoch FROM p.updated_at)::bigint, p.status, m.id,"

/* Variant columns: 0..10 after the product columns (NULL if none). */
#define PV_PRODUCTS_SQL_VARIANT_COLS \
	" v.public_id, v.title, v.sku, v.price_minor," \
	" v.compare_at_price_minor," \
	" p.status = 'active' AND (NOT v.inventory_tracked" \
	"  OR v.inventory_quantity > 0)," \
	" v.inventory_quantity, v.inventory_tracked," \
	" (SELECT string_agg(o.key || E'\\x1e' || o.value, E'\\x1f')" \
	"  FROM jsonb_each_text(v.options) o)," \
	" v.image_url, v.external_id"

/* The total and the matches up to the cursor, counted in "hits". */
#define PV_PRODUCTS_SQL_COUNT \
	" SELECT count(*) AS total, count(*) FILTER (WHERE" \
	"  h.rank > $11::real OR (h.rank = $11::real" \
	"   AND h.public_id <= $12)) AS before FROM hits h"

/* The page, its products and their variants, after "hits", "stats". */
#define PV_PRODUCTS_SQL_PAGE_AFTER_STATS \
	" page AS (SELECT h.id, h.public_id, h.rank FROM hits h" \
	"  WHERE $11::real IS NULL OR h.rank < $11::real" \
	"   OR (h.rank = $11::real AND h.public_id > $12)" \
	"  ORDER BY h.rank DESC, h.public_id LIMIT $9::int OFFSET $10::int)" \
	" SELECT st.total, st.before, (SELECT count(*) FROM scope)," \
	"  q.corrected, pg.rank," PV_PRODUCTS_SQL_PRODUCT_COLS \
	    PV_PRODUCTS_SQL_VARIANT_COLS " FROM stats st CROSS JOIN q" \
	" LEFT JOIN page pg ON true" \
	" LEFT JOIN products p ON p.id = pg.id" \
	" LEFT JOIN scope m ON m.id = p.merchant_id" \
	" LEFT JOIN variants v ON v.product_id = p.id" \
	" ORDER BY pg.rank DESC, pg.public_id, v.position, v.id"

/* The page after "hits", counted there. */
#define PV_PRODUCTS_SQL_PAGE \
	" stats AS (" PV_PRODUCTS_SQL_COUNT \
	")," PV_PRODUCTS_SQL_PAGE_AFTER_STATS

/*
 * Full-text search with typo correction, ranked.  "top" is the fast
 * path of a query that is a broad key (one frequent word, or two that
 * are often in titles together), without filters, merchant or
 * allow-list (migrations/0018_search_speed.sql): the page from the
 * ranked prefix kept for that key, taken ("f" has a row) when the
 * prefix holds the whole page after the cursor or every match; its
 * total is the key's kept count and "before" is counted in the
 * prefix (which holds everything up to the cursor).  Otherwise "hits"
 * ranks every match from the GIN index.  The two branches are gated
 * by one-time filters: only one of them runs.  Same rows, order,
 * scores and totals either way.
 */
#define PV_PRODUCTS_SQL_SEARCH \
	"WITH " PV_PRODUCTS_SQL_SCOPE "," \
	" q AS MATERIALIZED (SELECT tsq, corrected FROM catalog_query($4))," \
	" b AS MATERIALIZED (SELECT b.lexeme, b.n FROM q" \
	"  JOIN catalog_top_bounds b ON b.query = q.tsq::text" \
	"  WHERE $3::text IS NULL AND NOT $2::boolean AND $5::text IS NULL" \
	"  AND $6::bigint IS NULL AND $7::bigint IS NULL" \
	"  AND NOT $8::boolean)," \
	" top AS MATERIALIZED (SELECT t.product_id AS id, t.public_id, t.rank" \
	"  FROM b JOIN catalog_top t ON t.lexeme = b.lexeme" \
	"  WHERE $11::real IS NULL OR t.rank < $11::real" \
	"   OR (t.rank = $11::real AND t.public_id > $12)" \
	"  ORDER BY t.rank DESC, t.public_id LIMIT $9::int + $10::int)," \
	" f AS MATERIALIZED (SELECT b.n AS total, (SELECT count(*)" \
	"   FROM catalog_top t WHERE t.lexeme = b.lexeme" \
	"   AND (t.rank > $11::real OR (t.rank = $11::real" \
	"    AND t.public_id <= $12))) AS before FROM b" \
	"  WHERE (SELECT count(*) FROM top) = $9::int + $10::int" \
	"   OR (SELECT count(*) FROM catalog_top t" \
	"    WHERE t.lexeme = b.lexeme) = b.n)," \
	" hits AS MATERIALIZED (SELECT id, public_id, rank FROM top" \
	"  WHERE EXISTS (SELECT FROM f) UNION ALL" \
	"  SELECT s.product_id, s.public_id, ts_rank(s.rank_vec, q.tsq)" \
	"  FROM q, product_search s WHERE NOT EXISTS (SELECT FROM f)" \
	"  AND s.doc @@ q.tsq AND" PV_PRODUCTS_SQL_FILTERS ")," \
	" stats AS (SELECT total, before FROM f" \
	" UNION ALL" PV_PRODUCTS_SQL_COUNT " HAVING NOT EXISTS" \
	" (SELECT FROM f))," PV_PRODUCTS_SQL_PAGE_AFTER_STATS

/* No query text: every product in scope, by public id (rank 0). */
#define PV_PRODUCTS_SQL_BROWSE \
	"WITH " PV_PRODUCTS_SQL_SCOPE "," \
	" q AS (SELECT NULL::text AS corrected, $4::text AS unused)," \
	" hits AS MATERIALIZED (SELECT s.product_id AS id, s.public_id," \
	"  0::real AS rank FROM product_search s" \
	"  WHERE" PV_PRODUCTS_SQL_FILTERS ")," PV_PRODUCTS_SQL_PAGE

/*
 * One product of a merchant in scope: $1 agent id, $2 restricted, $3
 * merchant public id, $4 product public id (BY_ID) or platform id
 * (BY_EXTERNAL).  Unique-index lookups only.  One row per variant; no
 * row: 404.  Archived products are found (orders may name them) and
 * say so in "status".
 */
#define PV_PRODUCTS_SQL_LOOKUP_HEAD \
	"SELECT" PV_PRODUCTS_SQL_PRODUCT_COLS PV_PRODUCTS_SQL_VARIANT_COLS \
	" FROM merchants m JOIN products p ON p.merchant_id = m.id" \
	" LEFT JOIN variants v ON v.product_id = p.id" \
	" WHERE m.public_id = $3 AND m.status = 'active'" \
	" AND (NOT $2::boolean OR EXISTS (SELECT 1 FROM agent_merchants am" \
	"  WHERE am.agent_id = $1::bigint AND am.merchant_id = m.id))" \
	" AND m.id NOT IN" PV_PRODUCTS_SQL_BLOCKED
#define PV_PRODUCTS_SQL_LOOKUP_BY_ID \
	PV_PRODUCTS_SQL_LOOKUP_HEAD \
	" AND p.public_id = $4 ORDER BY v.position, v.id"
#define PV_PRODUCTS_SQL_LOOKUP_BY_EXTERNAL \
	PV_PRODUCTS_SQL_LOOKUP_HEAD \
	" AND p.external_id = $4 ORDER BY v.position, v.id"

/*
 * The same lookup folded into the agent prologue (pv_agent.h), one
 * statement per request: the prologue's columns, then the lookup's
 * (as above, from column PV_AGENT_PROLOGUE_NCOLS; NULL when there is
 * no such product, or the limits turned the request away), then two
 * ordering columns.  $2 merchant public id, $3 product public id
 * (BY_ID) or platform id (BY_EXTERNAL); the agent and its allow-list
 * come from the prologue's k.
 */
#define PV_PRODUCTS_SQL_LOOKUP_FOLD_HEAD \
	PV_AGENT_SQL_PROLOGUE_WITH \
	", x AS (SELECT" PV_PRODUCTS_SQL_PRODUCT_COLS \
	    PV_PRODUCTS_SQL_VARIANT_COLS \
	", v.position AS v_position, v.id AS v_id" \
	" FROM k CROSS JOIN merchants m JOIN products p" \
	" ON p.merchant_id = m.id" \
	" LEFT JOIN variants v ON v.product_id = p.id" \
	" WHERE m.public_id = $2 AND m.status = 'active'" \
	" AND" PV_AGENT_SQL_PROLOGUE_ALLOWED \
	" AND (NOT k.restricted OR EXISTS (SELECT 1" \
	"  FROM agent_merchants am" \
	"  WHERE am.agent_id = k.id AND am.merchant_id = m.id))"
#define PV_PRODUCTS_SQL_LOOKUP_FOLD_TAIL \
	") SELECT" PV_AGENT_SQL_PROLOGUE_COLS \
	", x.*" PV_AGENT_SQL_PROLOGUE_FROM " LEFT JOIN x ON true" \
	" ORDER BY x.v_position, x.v_id"
#define PV_PRODUCTS_SQL_LOOKUP_FOLD_BY_ID \
	PV_PRODUCTS_SQL_LOOKUP_FOLD_HEAD \
	" AND p.public_id = $3" PV_PRODUCTS_SQL_LOOKUP_FOLD_TAIL
#define PV_PRODUCTS_SQL_LOOKUP_FOLD_BY_EXTERNAL \
	PV_PRODUCTS_SQL_LOOKUP_FOLD_HEAD \
	" AND p.external_id = $3" PV_PRODUCTS_SQL_LOOKUP_FOLD_TAIL

/*
 * The merchants in scope ($1 agent id, $2 restricted), a page of them
 * by id ($3 limit, $4 offset) with their total; $5 false lists none (a
 * status filter other than active).  At least one row (the total).
 */
#define PV_PRODUCTS_SQL_MERCHANTS \
	"WITH scope AS MATERIALIZED (SELECT m.* FROM merchants m" \
	" WHERE m.status = 'active' AND $5::boolean" \
	" AND (NOT $2::boolean OR m.id IN (SELECT am.merchant_id" \
	"  FROM agent_merchants am WHERE am.agent_id = $1::bigint))" \
	" AND m.id NOT IN" PV_PRODUCTS_SQL_BLOCKED ")" \
	" SELECT c.total, m.public_id, m.business_name, m.status," \
	"  m.store_url, m.region, m.psp_connected, m.psp_type, m.platform," \
	"  m.product_count, m.currency," \
	"  extract(epoch FROM m.created_at)::bigint" \
	" FROM (SELECT count(*) AS total FROM scope) c" \
	" LEFT JOIN LATERAL (SELECT * FROM scope ORDER BY id" \
	"  LIMIT $3::int OFFSET $4::int) m ON true ORDER BY m.id"

#endif /* PV_PRODUCTS_SQL_H */
