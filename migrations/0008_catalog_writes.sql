-- Catalog writes in time linear in the batch (0006_catalog.sql was
-- quadratic for big imports: measured 2.5 minutes to import 10,000
-- products, 7 minutes to re-import them; now about 5 and 3 seconds):
--   * the staged rows are indexed by the product or variant they were
--     matched to, and a big batch is analysed before it is matched, so
--     "is this product already taken?" is an index or hash lookup;
--   * the products trigger never joins its transition tables to each
--     other (plpgsql plans the statement once, and a join planned for
--     one row is a nested loop over thousands), always recomputes the
--     search vectors of updated rows, and moves merchants.product_count
--     by the net change of active products instead of recounting;
--   * the vocabulary learns each batch's words (catalog_learn_words)
--     instead of being rebuilt from the whole catalog on every import,
--     and its rebuild stems each distinct word once.

CREATE INDEX products_batch ON products (batch_id);

-- catalog_apply asks "is this product / variant already taken?".
CREATE INDEX catalog_staged_products_target
    ON catalog_staged_products (batch_id, product_id);
CREATE INDEX catalog_staged_variants_target
    ON catalog_staged_variants (batch_id, variant_id);

-- Keeps product_search in step with products, and merchants.
-- product_count (active products) by the statement's net change per
-- merchant, so that a stock update touches no merchant row.  The
-- transition tables are never joined to each other: plpgsql plans these
-- statements once, and a join planned for one row would be quadratic
-- for an import's thousands.
CREATE OR REPLACE FUNCTION catalog_products_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO product_search (product_id, merchant_id, public_id,
            active, in_stock, price_e4, category, rank_vec, doc)
        SELECT n.id, n.merchant_id, n.public_id,
            n.status = 'active' AND m.status = 'active',
            n.in_stock, catalog_e4(n.price_minor, n.currency_exponent),
            lower(n.product_type),
            catalog_rank_vec(n.title, n.tags, n.vendor, n.skus),
            catalog_doc(n.title, n.tags, n.vendor, n.product_type,
                n.description, n.skus)
        FROM new_rows n JOIN merchants m ON m.id = n.merchant_id;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE product_search s SET
            merchant_id = n.merchant_id, public_id = n.public_id,
            active = n.status = 'active' AND m.status = 'active',
            in_stock = n.in_stock,
            price_e4 = catalog_e4(n.price_minor, n.currency_exponent),
            category = lower(n.product_type),
            rank_vec = catalog_rank_vec(n.title, n.tags, n.vendor, n.skus),
            doc = catalog_doc(n.title, n.tags, n.vendor, n.product_type,
                n.description, n.skus)
        FROM new_rows n JOIN merchants m ON m.id = n.merchant_id
        WHERE s.product_id = n.id;
    END IF;
    IF TG_OP = 'INSERT' THEN
        UPDATE merchants m SET product_count = m.product_count + d.n
        FROM (SELECT merchant_id, count(*) AS n FROM new_rows
              WHERE status = 'active' GROUP BY merchant_id) d
        WHERE m.id = d.merchant_id;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE merchants m SET product_count = m.product_count + d.n
        FROM (SELECT merchant_id, sum(c) AS n FROM (
                SELECT merchant_id, 1 AS c FROM new_rows
                WHERE status = 'active'
                UNION ALL
                SELECT merchant_id, -1 FROM old_rows
                WHERE status = 'active') x
              GROUP BY merchant_id HAVING sum(c) <> 0) d
        WHERE m.id = d.merchant_id;
    ELSE
        UPDATE merchants m SET product_count = m.product_count - d.n
        FROM (SELECT merchant_id, count(*) AS n FROM old_rows
              WHERE status = 'active' GROUP BY merchant_id) d
        WHERE m.id = d.merchant_id;
    END IF;
    RETURN NULL;
END
$$;

-- Applies a staged batch in the caller's transaction and returns what
-- it did.  Products not in a replace batch are archived (kept, so
-- orders that name them still resolve).  Variants of a product that
-- the batch no longer lists are deleted.  The staged rows are removed.
CREATE OR REPLACE FUNCTION catalog_apply(p_batch bigint,
    OUT created integer, OUT updated integer, OUT unchanged integer,
    OUT archived integer)
    LANGUAGE plpgsql AS $$
DECLARE
    b catalog_batches;
    total integer;
    touched bigint[] := '{}'; -- products whose row or variants changed
    fresh bigint[];           -- products created by this batch
BEGIN
    SELECT * INTO STRICT b FROM catalog_batches WHERE id = p_batch
        FOR UPDATE;
    IF b.state <> 'staging' THEN
        RAISE EXCEPTION 'catalog batch % is already applied', p_batch;
    END IF;
    -- One batch at a time per merchant.
    PERFORM pg_advisory_xact_lock(hashtextextended(
        'pivota.catalog_apply.' || b.merchant_id, 0));
    -- A big batch in tables the planner has no statistics for would
    -- be joined row by row.
    IF (SELECT count(*) FROM catalog_staged_products
            WHERE batch_id = p_batch) > 500 THEN
        ANALYZE catalog_staged_products;
        ANALYZE catalog_staged_variants;
    END IF;

    -- Match products: by external id, else by handle (never taking a
    -- product that another staged row matched, or that belongs to
    -- another external id).
    UPDATE catalog_staged_products s SET product_id = p.id
    FROM products p
    WHERE s.batch_id = p_batch AND s.external_id IS NOT NULL
      AND p.merchant_id = b.merchant_id AND p.external_id = s.external_id;
    UPDATE catalog_staged_products s SET product_id = p.id
    FROM products p
    WHERE s.batch_id = p_batch AND s.product_id IS NULL
      AND p.merchant_id = b.merchant_id AND p.handle = s.handle
      AND (s.external_id IS NULL OR p.external_id IS NULL)
      AND NOT EXISTS (SELECT 1 FROM catalog_staged_products s2
          WHERE s2.batch_id = p_batch AND s2.product_id = p.id);

    -- A handle the batch gives to another product is freed first.
    UPDATE products p SET handle = left(p.handle, 200) || '-' || p.id
    FROM catalog_staged_products s
    WHERE s.batch_id = p_batch AND p.merchant_id = b.merchant_id
      AND p.handle = s.handle AND p.id IS DISTINCT FROM s.product_id;

    WITH u AS (UPDATE products p SET
        external_id = coalesce(s.external_id, p.external_id),
        handle = s.handle, title = s.title, description = s.description,
        vendor = s.vendor, product_type = s.product_type, tags = s.tags,
        url = s.url, images = s.images, status = s.status,
        currency = b.currency, currency_exponent = b.currency_exponent,
        batch_id = p_batch, updated_at = now()
    FROM catalog_staged_products s
    WHERE s.batch_id = p_batch AND s.product_id = p.id
      AND (p.external_id, p.handle, p.title, p.description, p.vendor,
           p.product_type, p.tags, p.url, p.images, p.status, p.currency,
           p.currency_exponent)
          IS DISTINCT FROM
          (coalesce(s.external_id, p.external_id), s.handle, s.title,
           s.description, s.vendor, s.product_type, s.tags, s.url,
           s.images, s.status, b.currency, b.currency_exponent)
        RETURNING p.id)
    SELECT coalesce(array_agg(id), '{}') INTO touched FROM u;

    WITH ins AS (
        INSERT INTO products (public_id, merchant_id, external_id, handle,
            title, description, vendor, product_type, tags, url, images,
            status, currency, currency_exponent, batch_id)
        SELECT catalog_public_id('prod_'), b.merchant_id, s.external_id,
            s.handle, s.title, s.description, s.vendor, s.product_type,
            s.tags, s.url, s.images, s.status, b.currency,
            b.currency_exponent, p_batch
        FROM catalog_staged_products s
        WHERE s.batch_id = p_batch AND s.product_id IS NULL
        ORDER BY s.seq
        RETURNING id, handle),
    st AS (UPDATE catalog_staged_products s SET product_id = ins.id
        FROM ins WHERE s.batch_id = p_batch AND s.handle = ins.handle
        RETURNING ins.id)
    SELECT count(*), array_agg(id) INTO created, fresh FROM st;

    -- Variants: by external id, else by SKU, else by title, within the
    -- product (an external id may move a variant between products).
    UPDATE catalog_staged_variants v SET product_id = s.product_id
    FROM catalog_staged_products s
    WHERE v.batch_id = p_batch AND s.batch_id = p_batch
      AND s.seq = v.product_seq;
    UPDATE catalog_staged_variants sv SET variant_id = v.id
    FROM variants v
    WHERE sv.batch_id = p_batch AND sv.external_id IS NOT NULL
      AND v.merchant_id = b.merchant_id AND v.external_id = sv.external_id;
    UPDATE catalog_staged_variants sv SET variant_id = m.id
    FROM (SELECT DISTINCT ON (v.id) v.id, sv2.product_seq, sv2.position
          FROM catalog_staged_variants sv2
          JOIN variants v ON v.product_id = sv2.product_id
               AND v.sku = sv2.sku
          WHERE sv2.batch_id = p_batch AND sv2.variant_id IS NULL
            AND sv2.sku <> ''
            AND (sv2.external_id IS NULL OR v.external_id IS NULL)
            AND NOT EXISTS (SELECT 1 FROM catalog_staged_variants x
                WHERE x.batch_id = p_batch AND x.variant_id = v.id)
          ORDER BY v.id, sv2.position) m
    WHERE sv.batch_id = p_batch AND sv.product_seq = m.product_seq
      AND sv.position = m.position;
    UPDATE catalog_staged_variants sv SET variant_id = m.id
    FROM (SELECT DISTINCT ON (v.id) v.id, sv2.product_seq, sv2.position
          FROM catalog_staged_variants sv2
          JOIN variants v ON v.product_id = sv2.product_id
               AND v.title = sv2.title
          WHERE sv2.batch_id = p_batch AND sv2.variant_id IS NULL
            AND (sv2.external_id IS NULL OR v.external_id IS NULL)
            AND NOT EXISTS (SELECT 1 FROM catalog_staged_variants x
                WHERE x.batch_id = p_batch AND x.variant_id = v.id)
          ORDER BY v.id, sv2.position) m
    WHERE sv.batch_id = p_batch AND sv.product_seq = m.product_seq
      AND sv.position = m.position;

    WITH d AS (DELETE FROM variants v
        USING catalog_staged_products s
        WHERE s.batch_id = p_batch AND v.product_id = s.product_id
          AND NOT EXISTS (SELECT 1 FROM catalog_staged_variants sv
              WHERE sv.batch_id = p_batch AND sv.variant_id = v.id)
        RETURNING v.product_id)
    SELECT touched || array_agg(product_id) INTO touched FROM d;

    WITH u AS (UPDATE variants v SET
        product_id = sv.product_id,
        external_id = coalesce(sv.external_id, v.external_id),
        sku = sv.sku, title = sv.title, position = sv.position,
        price_minor = sv.price_minor,
        compare_at_price_minor = sv.compare_at_price_minor,
        inventory_quantity = sv.inventory_quantity,
        inventory_tracked = sv.inventory_tracked, options = sv.options,
        image_url = sv.image_url, updated_at = now()
    FROM catalog_staged_variants sv
    WHERE sv.batch_id = p_batch AND sv.variant_id = v.id
      AND (v.product_id, v.external_id, v.sku, v.title, v.position,
           v.price_minor, v.compare_at_price_minor, v.inventory_quantity,
           v.inventory_tracked, v.options, v.image_url)
          IS DISTINCT FROM
          (sv.product_id, coalesce(sv.external_id, v.external_id), sv.sku,
           sv.title, sv.position, sv.price_minor, sv.compare_at_price_minor,
           sv.inventory_quantity, sv.inventory_tracked, sv.options,
           sv.image_url)
        RETURNING v.product_id)
    SELECT touched || array_agg(product_id) INTO touched FROM u;

    WITH i AS (INSERT INTO variants (public_id, product_id, merchant_id, external_id,
        sku, title, position, price_minor, compare_at_price_minor,
        inventory_quantity, inventory_tracked, options, image_url)
    SELECT catalog_public_id('var_'), sv.product_id, b.merchant_id,
        sv.external_id, sv.sku, sv.title, sv.position, sv.price_minor,
        sv.compare_at_price_minor, sv.inventory_quantity,
        sv.inventory_tracked, sv.options, sv.image_url
    FROM catalog_staged_variants sv
    WHERE sv.batch_id = p_batch AND sv.variant_id IS NULL
    ORDER BY sv.product_seq, sv.position
    RETURNING product_id)
    SELECT touched || array_agg(product_id) INTO touched FROM i;

    -- Products whose variants alone changed belong to the batch too
    -- (catalog_learn_words reads what a batch wrote).
    UPDATE products p SET batch_id = p_batch
    WHERE p.id IN (SELECT unnest(touched))
      AND p.batch_id IS DISTINCT FROM p_batch;

    archived := 0;
    IF b.replace THEN
        UPDATE products p SET status = 'archived', batch_id = p_batch,
            updated_at = now()
        WHERE p.merchant_id = b.merchant_id AND p.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM catalog_staged_products s
              WHERE s.batch_id = p_batch AND s.product_id = p.id);
        GET DIAGNOSTICS archived = ROW_COUNT;
    END IF;

    -- A product changed if its row or one of its variants did.  (A
    -- variant moved away also touches the product it left, through
    -- the roll-up, but is not counted against it here.)
    SELECT count(*), count(t.id) INTO total, updated
    FROM catalog_staged_products s
    LEFT JOIN (SELECT unnest(touched) EXCEPT SELECT unnest(fresh)) t (id)
        ON t.id = s.product_id
    WHERE s.batch_id = p_batch;
    unchanged := total - created - updated;

    UPDATE catalog_batches SET state = 'applied', applied_at = now(),
        products_created = created, products_updated = updated,
        products_archived = archived
    WHERE id = p_batch;
    DELETE FROM catalog_staged_products WHERE batch_id = p_batch;
END
$$;

-- The words of the given products' text, with occurrence counts:
-- alphabetic runs of 3 to 40 letters, lowercased, stop words dropped,
-- each with its English stem.
CREATE FUNCTION catalog_text_words(ids bigint[])
    RETURNS TABLE (word text, lexeme text, freq integer)
    LANGUAGE sql STABLE AS $$
    SELECT x.w, y.l, x.n::integer
    FROM (SELECT t.w, count(*) AS n
          FROM products p,
          LATERAL unnest(string_to_array(lower(regexp_replace(
              p.title || ' ' || array_to_string(p.tags, ' ') || ' ' ||
              p.vendor || ' ' || p.product_type || ' ' ||
              left(p.description, 20000), '[^[:alpha:]]+', ' ', 'g')),
              ' ')) AS t (w)
          WHERE (ids IS NULL OR p.id = ANY (ids)) AND p.status = 'active'
            AND length(t.w) BETWEEN 3 AND 40
          GROUP BY t.w) x,
    LATERAL (SELECT (ts_lexize('english_stem', x.w))[1] AS l) y
    WHERE y.l IS NOT NULL
$$;

-- Rebuilds catalog_lexemes and catalog_words from the whole active
-- catalog (a few seconds at 100,000 products); returns the number of
-- words.  Serialised by an advisory lock so that concurrent imports do
-- not collide on the primary keys.
CREATE OR REPLACE FUNCTION catalog_refresh_words() RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(
        'pivota.catalog_words', 0));
    DELETE FROM catalog_lexemes;
    INSERT INTO catalog_lexemes (lexeme, ndoc)
    SELECT word, ndoc FROM ts_stat(
        'SELECT doc FROM product_search WHERE active');
    DELETE FROM catalog_words;
    INSERT INTO catalog_words (word, lexeme, freq)
    SELECT word, lexeme, freq FROM catalog_text_words(NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Adds the words of the products a batch wrote (in proportion to the
-- batch, not the catalog); returns the number of words.  Words of
-- products archived since stay until the next catalog_refresh_words():
-- a correction to such a word finds nothing, as the typo would have.
CREATE FUNCTION catalog_learn_words(p_batch bigint) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(
        'pivota.catalog_words', 0));
    ids := ARRAY(SELECT id FROM products WHERE batch_id = p_batch
        AND status = 'active');
    INSERT INTO catalog_lexemes (lexeme, ndoc)
    SELECT word, ndoc FROM ts_stat(format(
        'SELECT doc FROM product_search WHERE active'
        ' AND product_id = ANY (%L::bigint[])', ids))
    ON CONFLICT (lexeme) DO UPDATE
        SET ndoc = catalog_lexemes.ndoc + EXCLUDED.ndoc;
    INSERT INTO catalog_words (word, lexeme, freq)
    SELECT word, lexeme, freq FROM catalog_text_words(ids)
    ON CONFLICT (word) DO UPDATE
        SET freq = catalog_words.freq + EXCLUDED.freq;
    RETURN (SELECT count(*) FROM catalog_words);
END
$$;
