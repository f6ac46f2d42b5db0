-- The product catalog (issue 4): products and their variants per
-- merchant, a weighted full-text index for search, and the vocabulary
-- of catalog words that misspelled queries are corrected against.
--
-- Who writes what:
--   * Catalogs arrive in batches (pivotactl products import, the demo
--     seed, later the Shopify sync).  A writer stages rows in
--     catalog_staged_products/_variants, possibly over many
--     transactions, then calls catalog_apply(batch) in ONE transaction:
--     readers see the old catalog or the new one, never half of it.
--     Products are matched by (merchant, external_id), else (merchant,
--     handle); variants by (merchant, external_id), else (product, sku),
--     else (product, title).  Re-applying the same rows changes nothing.
--   * Roll-ups (a product's price, stock, default variant, SKUs; a
--     merchant's product count) are kept by statement-level triggers,
--     so anything that changes a variant (an order reserving stock)
--     keeps the search filters true without knowing about them.
--   * catalog_refresh_words() rebuilds the vocabulary after an import.
--
-- Public ids are 'prod_'/'var_' + 16 lowercase hex, drawn in SQL from
-- gen_random_uuid() (the server's CSPRNG) and hashed to 64 bits.

-- Edit distance ranks the candidates of a typo correction.
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;

-- Merchant columns the merchants endpoint reports.
ALTER TABLE merchants
    ADD COLUMN currency      text NOT NULL DEFAULT 'USD'
                             CHECK (currency ~ '^[A-Z]{3}$'),
    ADD COLUMN platform      text NOT NULL DEFAULT 'custom'
                             CHECK (platform IN ('custom', 'shopify')),
    ADD COLUMN psp_type      text CHECK (psp_type IN ('stripe', 'adyen')),
    ADD COLUMN psp_connected boolean NOT NULL DEFAULT false,
    ADD COLUMN product_count integer NOT NULL DEFAULT 0;

-- What a product matches on: title, tags, vendor, type, description
-- and SKUs, as bare lexemes (strip(): no positions or weights, a third
-- of the size; queries are plain ANDs of words).  IMMUTABLE so it can
-- be trusted in an index; array_to_string alone is only STABLE.
CREATE FUNCTION catalog_doc(title text, tags text[], vendor text,
    product_type text, description text, skus text[])
    RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN strip(to_tsvector('english'::regconfig, title || ' ' ||
        array_to_string(tags, ' ') || ' ' || vendor || ' ' ||
        product_type || ' ' || left(description, 20000) || ' ' ||
        array_to_string(skus, ' ')));

-- What a product ranks on: title and SKUs weigh A, tags and vendor B.
-- The description makes a product match but does not rank it: kept
-- out, the vector stays small and ranking thousands of matches cheap.
CREATE FUNCTION catalog_rank_vec(title text, tags text[], vendor text,
    skus text[])
    RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN setweight(to_tsvector('english'::regconfig, title || ' ' ||
            left(array_to_string(skus, ' '), 2000)), 'A') ||
        setweight(to_tsvector('english'::regconfig,
            left(array_to_string(tags, ' '), 2000) || ' ' || vendor), 'B');

-- A price in 1/10000 of the major unit, whatever the currency's
-- exponent (0 to 4): price filters compare across currencies exactly.
CREATE FUNCTION catalog_e4(minor bigint, exponent smallint)
    RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN minor * (CASE exponent WHEN 0 THEN 10000 WHEN 1 THEN 1000
        WHEN 2 THEN 100 WHEN 3 THEN 10 ELSE 1 END);

CREATE TABLE products (
    id                bigserial PRIMARY KEY,
    public_id         text NOT NULL UNIQUE
                      CHECK (public_id ~ '^prod_[0-9a-f]{16}$'),
    merchant_id       bigint NOT NULL REFERENCES merchants (id)
                      ON DELETE CASCADE,
    external_id       text CHECK (length(external_id) BETWEEN 1 AND 255),
    handle            text NOT NULL CHECK (length(handle) <= 255
                      AND handle ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$'),
    title             text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    description       text NOT NULL DEFAULT ''
                      CHECK (length(description) <= 65535),
    vendor            text NOT NULL DEFAULT '' CHECK (length(vendor) <= 255),
    product_type      text NOT NULL DEFAULT ''
                      CHECK (length(product_type) <= 255),
    tags              text[] NOT NULL DEFAULT '{}'
                      CHECK (cardinality(tags) <= 250),
    url               text NOT NULL DEFAULT '' CHECK (length(url) <= 2000),
    images            text[] NOT NULL DEFAULT '{}'
                      CHECK (cardinality(images) <= 250),
    status            text NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'archived')),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    currency_exponent smallint NOT NULL
                      CHECK (currency_exponent BETWEEN 0 AND 4),
    -- Roll-ups of the variants (catalog_rollup_products); the price
    -- is the default (first) variant's.
    price_minor            bigint,
    compare_at_price_minor bigint,
    in_stock               boolean NOT NULL DEFAULT false,
    inventory_quantity     bigint NOT NULL DEFAULT 0,
    variant_count          integer NOT NULL DEFAULT 0,
    skus                   text[] NOT NULL DEFAULT '{}',
    batch_id          bigint,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, handle),
    UNIQUE (merchant_id, external_id)
);
CREATE INDEX products_merchant ON products (merchant_id, status);

-- The search side of each product, kept by catalog_products_changed:
-- everything a search filters and ranks on, in rows a third as wide
-- as products, so that ranking the thousands of matches of a broad
-- word reads a third of the pages.  Results are then read from
-- products for one page only.
CREATE TABLE product_search (
    product_id  bigint PRIMARY KEY REFERENCES products (id)
                ON DELETE CASCADE,
    merchant_id bigint NOT NULL,
    public_id   text COLLATE "C" NOT NULL,
    active      boolean NOT NULL, -- product and merchant both active
    in_stock    boolean NOT NULL,
    price_e4    bigint,
    category    text NOT NULL,
    rank_vec    tsvector NOT NULL,
    doc         tsvector NOT NULL
);
CREATE INDEX product_search_doc ON product_search USING gin (doc);
CREATE INDEX product_search_merchant ON product_search (merchant_id);

CREATE TABLE variants (
    id                     bigserial PRIMARY KEY,
    public_id              text NOT NULL UNIQUE
                           CHECK (public_id ~ '^var_[0-9a-f]{16}$'),
    product_id             bigint NOT NULL REFERENCES products (id)
                           ON DELETE CASCADE,
    merchant_id            bigint NOT NULL REFERENCES merchants (id)
                           ON DELETE CASCADE,
    external_id            text CHECK (length(external_id) BETWEEN 1 AND 255),
    sku                    text NOT NULL DEFAULT ''
                           CHECK (length(sku) <= 255),
    title                  text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    position               integer NOT NULL DEFAULT 1 CHECK (position >= 1),
    price_minor            bigint NOT NULL
                           CHECK (price_minor BETWEEN 0 AND 10000000000000),
    compare_at_price_minor bigint
                           CHECK (compare_at_price_minor BETWEEN 0
                                  AND 10000000000000),
    inventory_quantity     integer NOT NULL DEFAULT 0,
    inventory_tracked      boolean NOT NULL DEFAULT true,
    options                jsonb NOT NULL DEFAULT '{}'
                           CHECK (jsonb_typeof(options) = 'object'),
    image_url              text NOT NULL DEFAULT ''
                           CHECK (length(image_url) <= 2000),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, external_id)
);
CREATE INDEX variants_product ON variants (product_id, position);

-- Every lexeme of every active product's search vector: a query word
-- whose stem is here needs no correction.
CREATE TABLE catalog_lexemes (
    lexeme text PRIMARY KEY,
    ndoc   integer NOT NULL
);

-- Natural-language words of the active catalog (titles, tags, vendors,
-- types, descriptions; never SKUs), the targets of typo correction:
-- a few thousand rows, so a trigram probe costs far less than a
-- trigram scan of every title.
CREATE TABLE catalog_words (
    word   text PRIMARY KEY,
    lexeme text NOT NULL,
    freq   integer NOT NULL
);
CREATE INDEX catalog_words_trgm ON catalog_words USING gin (word gin_trgm_ops);

-- A batch of catalog rows from one source, applied at once.
CREATE TABLE catalog_batches (
    id                bigserial PRIMARY KEY,
    merchant_id       bigint NOT NULL REFERENCES merchants (id)
                      ON DELETE CASCADE,
    source            text NOT NULL
                      CHECK (source IN ('import', 'demo', 'shopify')),
    replace           boolean NOT NULL DEFAULT false,
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    currency_exponent smallint NOT NULL
                      CHECK (currency_exponent BETWEEN 0 AND 4),
    state             text NOT NULL DEFAULT 'staging'
                      CHECK (state IN ('staging', 'applied')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    applied_at        timestamptz,
    products_created  integer,
    products_updated  integer,
    products_archived integer
);

-- Staged rows: what a batch says the catalog is.  seq orders the rows
-- and names them in messages; product_id/variant_id are filled while
-- the batch is applied.  Staging the same external id or handle twice
-- in one batch is refused (a sync retrying a page upserts instead).
CREATE TABLE catalog_staged_products (
    batch_id     bigint NOT NULL REFERENCES catalog_batches (id)
                 ON DELETE CASCADE,
    seq          integer NOT NULL,
    external_id  text,
    handle       text NOT NULL,
    title        text NOT NULL,
    description  text NOT NULL DEFAULT '',
    vendor       text NOT NULL DEFAULT '',
    product_type text NOT NULL DEFAULT '',
    tags         text[] NOT NULL DEFAULT '{}',
    url          text NOT NULL DEFAULT '',
    images       text[] NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'active',
    product_id   bigint,
    PRIMARY KEY (batch_id, seq),
    UNIQUE (batch_id, handle),
    UNIQUE (batch_id, external_id)
);

CREATE TABLE catalog_staged_variants (
    batch_id               bigint NOT NULL,
    product_seq            integer NOT NULL,
    position               integer NOT NULL,
    external_id            text,
    sku                    text NOT NULL DEFAULT '',
    title                  text NOT NULL,
    price_minor            bigint NOT NULL,
    compare_at_price_minor bigint,
    inventory_quantity     integer NOT NULL DEFAULT 0,
    inventory_tracked      boolean NOT NULL DEFAULT true,
    options                jsonb NOT NULL DEFAULT '{}',
    image_url              text NOT NULL DEFAULT '',
    product_id             bigint,
    variant_id             bigint,
    PRIMARY KEY (batch_id, product_seq, position),
    FOREIGN KEY (batch_id, product_seq)
        REFERENCES catalog_staged_products (batch_id, seq) ON DELETE CASCADE,
    UNIQUE (batch_id, external_id)
);

-- Recomputes the roll-ups of the given products from their variants.
-- Bumps updated_at of every product named: a variant changed.
CREATE FUNCTION catalog_rollup_products(ids bigint[]) RETURNS void
    LANGUAGE sql AS $$
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
    WHERE p.id = r.id
$$;

CREATE FUNCTION catalog_variants_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM catalog_rollup_products(ARRAY(
            SELECT product_id FROM new_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM catalog_rollup_products(ARRAY(
            SELECT product_id FROM new_rows UNION
            SELECT product_id FROM old_rows));
    ELSE
        PERFORM catalog_rollup_products(ARRAY(
            SELECT product_id FROM old_rows));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER variants_ins AFTER INSERT ON variants
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_variants_changed();
CREATE TRIGGER variants_upd AFTER UPDATE ON variants
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_variants_changed();
CREATE TRIGGER variants_del AFTER DELETE ON variants
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_variants_changed();

-- Keeps product_search in step with products (vectors recomputed only
-- when the text changed: a stock update costs no text search work),
-- and merchants.product_count (active products) for the merchants a
-- statement touched.
CREATE FUNCTION catalog_products_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
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
        ids := ARRAY(SELECT DISTINCT merchant_id FROM new_rows);
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE product_search s SET
            merchant_id = n.merchant_id, public_id = n.public_id,
            active = n.status = 'active' AND m.status = 'active',
            in_stock = n.in_stock,
            price_e4 = catalog_e4(n.price_minor, n.currency_exponent),
            category = lower(n.product_type),
            rank_vec = CASE WHEN t.changed THEN catalog_rank_vec(n.title,
                n.tags, n.vendor, n.skus) ELSE s.rank_vec END,
            doc = CASE WHEN t.changed THEN catalog_doc(n.title, n.tags,
                n.vendor, n.product_type, n.description, n.skus)
                ELSE s.doc END
        FROM new_rows n JOIN old_rows o ON o.id = n.id
            JOIN merchants m ON m.id = n.merchant_id,
            LATERAL (SELECT (n.title, n.tags, n.vendor, n.product_type,
                n.description, n.skus) IS DISTINCT FROM (o.title, o.tags,
                o.vendor, o.product_type, o.description, o.skus)
                AS changed) t
        WHERE s.product_id = n.id;
        ids := ARRAY(SELECT n.merchant_id FROM new_rows n
            JOIN old_rows o ON o.id = n.id
            WHERE n.status IS DISTINCT FROM o.status
               OR n.merchant_id IS DISTINCT FROM o.merchant_id
            UNION SELECT o.merchant_id FROM new_rows n
            JOIN old_rows o ON o.id = n.id
            WHERE n.merchant_id IS DISTINCT FROM o.merchant_id);
    ELSE
        ids := ARRAY(SELECT DISTINCT merchant_id FROM old_rows);
    END IF;
    IF cardinality(ids) > 0 THEN
        UPDATE merchants m SET product_count = (SELECT count(*)
            FROM products p WHERE p.merchant_id = m.id
            AND p.status = 'active')
        WHERE m.id = ANY (ids);
    END IF;
    RETURN NULL;
END
$$;
-- product_search.active also says the merchant is active, so that a
-- search across every merchant needs no look at merchants per match.
CREATE FUNCTION catalog_merchant_status() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE product_search s SET active = p.status = 'active'
        AND NEW.status = 'active'
    FROM products p
    WHERE p.merchant_id = NEW.id AND s.product_id = p.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER merchants_status AFTER UPDATE OF status ON merchants
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION catalog_merchant_status();

CREATE TRIGGER products_ins AFTER INSERT ON products
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_products_changed();
CREATE TRIGGER products_upd AFTER UPDATE ON products
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_products_changed();
CREATE TRIGGER products_del AFTER DELETE ON products
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_products_changed();

-- 16 random lowercase hex digits behind prefix.
CREATE FUNCTION catalog_public_id(prefix text) RETURNS text
    LANGUAGE sql VOLATILE
    RETURN prefix || left(md5(gen_random_uuid()::text), 16);

-- Applies a staged batch in the caller's transaction and returns what
-- it did.  Products not in a replace batch are archived (kept, so
-- orders that name them still resolve).  Variants of a product that
-- the batch no longer lists are deleted.  The staged rows are removed.
CREATE FUNCTION catalog_apply(p_batch bigint,
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

-- Rebuilds catalog_lexemes and catalog_words from the active catalog.
-- Returns the number of words.  Serialised by an advisory lock so
-- concurrent imports do not collide on the primary keys.
CREATE FUNCTION catalog_refresh_words() RETURNS integer
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
    SELECT w, min(l), count(*)
    FROM (SELECT t.w, (ts_lexize('english_stem', t.w))[1] AS l
          FROM products p,
          LATERAL regexp_split_to_table(lower(p.title || ' ' ||
              array_to_string(p.tags, ' ') || ' ' || p.vendor || ' ' ||
              p.product_type || ' ' || left(p.description, 20000)),
              '[^[:alpha:]]+') AS t(w)
          WHERE p.status = 'active'
            AND length(t.w) BETWEEN 3 AND 40) x
    WHERE l IS NOT NULL
    GROUP BY w;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Corrects the misspelled words of a search query against the
-- vocabulary.  Only whole alphabetic words of 3+ letters are
-- candidates (SKUs and numbers are left alone), and only when their
-- stem is in no product.  A replacement shares the first letter (typos
-- rarely hit it, and "sweater" must not become "water"), is within 1
-- edit for words of up to 4 letters, 2 up to 8 and 3 beyond ("red"
-- must not become "relaxed"), and is the nearest such catalog word by
-- edit distance, then trigram similarity, then frequency.  Returns the
-- corrected text, or NULL when nothing changed.
CREATE FUNCTION catalog_correct(q text) RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET pg_trgm.similarity_threshold = 0.25
    AS $$
DECLARE
    w text;
    m text[];
    low text;
    maxd integer;
    stem text[];
    fix text;
    words text[] := '{}';
    changed boolean := false;
BEGIN
    IF q IS NULL THEN
        RETURN NULL;
    END IF;
    FOREACH w IN ARRAY regexp_split_to_array(btrim(q), '\s+') LOOP
        m := regexp_match(w, '^([^[:alnum:]]*)([[:alpha:]]{3,40})([^[:alnum:]]*)$');
        IF m IS NOT NULL THEN
            low := lower(m[2]);
            stem := ts_lexize('english_stem', low);
            IF cardinality(stem) > 0 AND NOT EXISTS (SELECT 1
                    FROM catalog_lexemes WHERE lexeme = stem[1]) THEN
                maxd := CASE WHEN length(low) <= 4 THEN 1
                    WHEN length(low) <= 8 THEN 2 ELSE 3 END;
                SELECT c.word INTO fix FROM catalog_words c
                WHERE c.word % low AND left(c.word, 1) = left(low, 1)
                  AND levenshtein_less_equal(c.word, low, maxd) <= maxd
                ORDER BY levenshtein(c.word, low),
                    similarity(c.word, low) DESC, c.freq DESC, c.word
                LIMIT 1;
                IF fix IS NOT NULL THEN
                    w := m[1] || fix || m[3];
                    changed := true;
                END IF;
            END IF;
        END IF;
        words := words || w;
    END LOOP;
    RETURN CASE WHEN changed THEN array_to_string(words, ' ') END;
END
$$;

-- The text search query of q after correction: every lexeme of the
-- (corrected) text must match, as a plain AND (no phrase operators, so
-- the index answers without rechecking rows).  corrected is the
-- corrected text, NULL if nothing was corrected; tsq is NULL when q
-- has no searchable word (only stop words): the caller browses.
CREATE FUNCTION catalog_query(q text, OUT tsq tsquery, OUT corrected text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    lex text;
    one tsquery;
BEGIN
    corrected := catalog_correct(q);
    FOR lex IN SELECT t.lexeme FROM unnest(to_tsvector('english',
            coalesce(corrected, q))) AS t LOOP
        one := ('''' || replace(replace(lex, '\', '\\'), '''', '''''')
            || '''')::tsquery;
        tsq := CASE WHEN tsq IS NULL THEN one ELSE tsq && one END;
    END LOOP;
END
$$;
