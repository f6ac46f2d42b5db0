-- Orders reserve and release stock by updating variants.reserved_quantity,
-- and every UPDATE of variants fired the statement trigger that rolls
-- the variants up into their products (migration 0006), which rewrote
-- the product and its search row on every order, even for variants
-- whose stock is not tracked (the statement updates no row, and a
-- statement trigger fires anyway).  Worse, catalog_rollup_products was
-- a LANGUAGE sql function that PostgreSQL cannot inline (it updates),
-- so its UPDATE was planned again on every call: measured, the largest
-- single cost of creating an order.
--
-- Now: the roll-up is PL/pgSQL (its plan is cached per session) and
-- returns at once for no products; and an UPDATE of variants rolls up
-- only the products of variants that changed in something other than
-- reserved_quantity, which no roll-up reads.  The roll-up itself is
-- unchanged.
CREATE OR REPLACE FUNCTION catalog_rollup_products(ids bigint[]) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    UPDATE products p SET
        price_minor = r.price_minor,
        compare_at_price_minor = r.compare_at_price_minor,
        in_stock = r.in_stock,
        inventory_quantity = r.inventory_quantity,
        variant_count = r.n,
        skus = r.skus,
        updated_at = now()
    FROM (SELECT x.id,
            d.price_minor, d.compare_at_price_minor,
            coalesce(a.in_stock, false) AS in_stock,
            coalesce(a.inventory_quantity, 0) AS inventory_quantity,
            coalesce(a.n, 0) AS n, coalesce(a.skus, '{}') AS skus
          FROM (SELECT DISTINCT unnest(ids) AS id) x
          LEFT JOIN LATERAL (SELECT v.price_minor,
                  v.compare_at_price_minor FROM variants v
              WHERE v.product_id = x.id ORDER BY v.position, v.id LIMIT 1) d
              ON true
          LEFT JOIN LATERAL (SELECT
                  bool_or(NOT v.inventory_tracked
                      OR v.inventory_quantity > 0) AS in_stock,
                  sum(greatest(v.inventory_quantity, 0))
                      FILTER (WHERE v.inventory_tracked)
                      AS inventory_quantity,
                  count(*) AS n,
                  array_agg(v.sku ORDER BY v.position, v.id)
                      FILTER (WHERE v.sku <> '') AS skus
              FROM variants v WHERE v.product_id = x.id) a ON true) r
    WHERE p.id = r.id;
END
$$;

CREATE OR REPLACE FUNCTION catalog_variants_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM catalog_rollup_products(ARRAY(
            SELECT product_id FROM new_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM catalog_rollup_products(ARRAY(
            SELECT unnest(ARRAY[n.product_id, o.product_id])
              FROM new_rows n JOIN old_rows o ON o.id = n.id
             WHERE to_jsonb(n) - 'reserved_quantity'
                   IS DISTINCT FROM to_jsonb(o) - 'reserved_quantity'));
    ELSE
        PERFORM catalog_rollup_products(ARRAY(
            SELECT product_id FROM old_rows));
    END IF;
    RETURN NULL;
END
$$;
