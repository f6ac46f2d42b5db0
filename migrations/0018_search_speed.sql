-- Search speed (issue 4's bench targets): a broad query of one word, or
-- of two words that are often in titles together, no longer ranks and
-- counts every match.
--
-- Before: a query for one common word ("hoodie": 10,000 of 100,000
-- bench products) visited every match in product_search to rank it
-- and count it, about 1.5 us per match, 15-35 ms a query; at 4 clients
-- on 2 cores that put p99 at 76-97 ms.
--
-- Now, for every broad KEY, the database keeps
--   * catalog_top_bounds: the key, its query text (the tsquery
--     catalog_query builds for it, as text), n = the exact number of
--     active products whose doc matches it, and a bound (rank,
--     public_id);
--   * catalog_top: EXACTLY the active products matching the key whose
--     (ts_rank(rank_vec, query) DESC, public_id) comes at or before the
--     bound, with that rank: a prefix of the ranking.
-- A key is a lexeme found in at least catalog_top_min_docs() active
-- products, or a pair of such lexemes found together in at least that
-- many titles ("organic cotton", "running shoes"; its matches and
-- ranks are over the whole doc, like any search).
-- catalog_refresh_top() rebuilds both (the bound is the
-- catalog_top_size()-th product); a statement trigger on product_search
-- keeps them exact through every write afterwards: a product that
-- leaves the prefix (archived, re-ranked behind the bound) is deleted
-- from it, one that enters it (activated, re-ranked ahead of the bound)
-- is inserted, and n moves by the net change.  The prefix may shrink
-- between rebuilds; it never lies.  A stock change (the common write:
-- every order) changes neither set, so it writes nothing here.
--
-- A search whose corrected query is a key, without filters, merchant
-- or allow-list, reads its page from the prefix when the prefix holds
-- enough products after the cursor (or all of the matches), and its
-- total from n: the same products in the same order with the same
-- scores and totals as ranking every match, for the cost of an index
-- range scan.  Anything else takes the full path.

-- Lexemes in at least this many active products get a ranked prefix.
CREATE FUNCTION catalog_top_min_docs() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN 1000;
-- Products a rebuilt prefix holds (offset + limit beyond it, or past
-- what is left of it, take the full path).
CREATE FUNCTION catalog_top_size() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN 500;

-- The tsquery of one lexeme, exactly as catalog_query builds it.
CREATE FUNCTION catalog_lexeme_query(lex text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ('''' || replace(replace(lex, '\', '\\'), '''', '''''')
        || '''')::tsquery;

-- lexeme is the key: a lexeme, or two separated by a space (a pair);
-- first is the key's first lexeme (in tsvector order), which writes
-- join on; query is the key's tsquery as catalog_query builds it, as
-- text, which searches look up.
CREATE TABLE catalog_top_bounds (
    lexeme    text PRIMARY KEY,
    first     text NOT NULL,
    query     text NOT NULL UNIQUE,
    n         integer NOT NULL,       -- active products matching it
    rank      real NOT NULL,          -- the bound: the prefix is every
    public_id text COLLATE "C" NOT NULL -- product at or before it
);
CREATE TABLE catalog_top (
    lexeme     text NOT NULL,
    product_id bigint NOT NULL,
    rank       real NOT NULL,
    public_id  text COLLATE "C" NOT NULL,
    PRIMARY KEY (lexeme, product_id)
);
CREATE INDEX catalog_top_order ON catalog_top (lexeme, rank DESC, public_id)
    INCLUDE (product_id);
CREATE INDEX catalog_top_product ON catalog_top (product_id);
CREATE INDEX catalog_top_bounds_first ON catalog_top_bounds (first);

-- Rebuilds the prefixes from the active catalog.  Holds a SHARE lock on
-- product_search meanwhile (catalog writes wait, searches do not), so
-- that no write slips between the count and the trigger that keeps it.
-- Returns the number of keys.  The arguments are for tests (a
-- small catalog has no broad word).
CREATE FUNCTION catalog_refresh_top(
    min_docs integer DEFAULT catalog_top_min_docs(),
    size integer DEFAULT catalog_top_size()) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    LOCK TABLE product_search IN SHARE MODE;
    DELETE FROM catalog_top;
    DELETE FROM catalog_top_bounds;
    IF to_regclass('pg_temp.catalog_top_new') IS NOT NULL THEN
        DROP TABLE pg_temp.catalog_top_new;
    END IF;
    CREATE TEMP TABLE catalog_top_new AS
    SELECT x.word AS lexeme, x.word AS first, x.ndoc AS n,
        catalog_lexeme_query(x.word) AS q
    FROM ts_stat('SELECT doc FROM product_search WHERE active') x
    WHERE x.ndoc >= min_docs;
    -- Pairs: two broad words that share at least min_docs titles
    -- (weight A of rank_vec), keyed in tsvector order as catalog_query
    -- builds "a b"; their prefix and count are over every match.
    INSERT INTO catalog_top_new (lexeme, first, n, q)
    SELECT x.a || ' ' || x.b, x.a, 0,
        catalog_lexeme_query(x.a) && catalog_lexeme_query(x.b)
    FROM (SELECT a.lex AS a, b.lex AS b
          FROM product_search s,
          LATERAL unnest(tsvector_to_array(ts_filter(s.rank_vec, '{a}')))
              WITH ORDINALITY AS a (lex, o),
          LATERAL unnest(tsvector_to_array(ts_filter(s.rank_vec, '{a}')))
              WITH ORDINALITY AS b (lex, o)
          WHERE s.active AND a.o < b.o
            AND a.lex IN (SELECT lexeme FROM catalog_top_new)
            AND b.lex IN (SELECT lexeme FROM catalog_top_new)
          GROUP BY a.lex, b.lex HAVING count(*) >= min_docs) x;
    UPDATE catalog_top_new b SET n = (SELECT count(*) FROM product_search s
        WHERE s.active AND s.doc @@ b.q)
    WHERE b.first <> b.lexeme;
    ANALYZE catalog_top_new;
    INSERT INTO catalog_top (lexeme, product_id, rank, public_id)
    SELECT lexeme, product_id, rank, public_id
    FROM (SELECT e.*, row_number() OVER (PARTITION BY e.lexeme
              ORDER BY e.rank DESC, e.public_id) AS i
          FROM (SELECT b.lexeme, s.product_id, s.public_id,
                    ts_rank(s.rank_vec, b.q) AS rank
                FROM product_search s
                CROSS JOIN LATERAL unnest(tsvector_to_array(s.doc))
                    AS l (lex)
                JOIN catalog_top_new b ON b.first = l.lex
                WHERE s.active AND (b.first = b.lexeme OR s.doc @@ b.q)) e
         ) r
    WHERE i <= size;
    INSERT INTO catalog_top_bounds (lexeme, first, query, n, rank,
        public_id)
    SELECT DISTINCT ON (t.lexeme) t.lexeme, b.first, b.q::text, b.n,
        t.rank, t.public_id
    FROM catalog_top t JOIN catalog_top_new b ON b.lexeme = t.lexeme
    ORDER BY t.lexeme, t.rank, t.public_id DESC;
    GET DIAGNOSTICS n = ROW_COUNT;
    DROP TABLE catalog_top_new;
    RETURN n;
END
$$;

-- One product's membership candidate for one key.
CREATE TYPE catalog_top_entry AS (lexeme text, product_id bigint, rank real,
    public_id text);

-- The entries of an active product_search row: every key its doc
-- matches (joined on the key's first lexeme), with the row's rank.
CREATE FUNCTION catalog_top_entries(doc tsvector, rank_vec tsvector,
    product_id bigint, public_id text)
    RETURNS SETOF catalog_top_entry LANGUAGE sql STABLE AS $$
    SELECT b.lexeme, catalog_top_entries.product_id,
        ts_rank(catalog_top_entries.rank_vec, b.query::tsquery),
        catalog_top_entries.public_id
    FROM unnest(tsvector_to_array(catalog_top_entries.doc)) AS l (lex)
    JOIN catalog_top_bounds b ON b.first = l.lex
    WHERE b.first = b.lexeme
       OR catalog_top_entries.doc @@ b.query::tsquery
$$;

-- Applies the difference between the entries of the old rows and
-- those of the new rows of a write: n moves by the net change per
-- lexeme (bounds locked in lexeme order, so that concurrent writers
-- never deadlock), entries that left are deleted, entries that came
-- and fall at or before their bound are inserted.  Equal sides (a
-- stock change) write nothing.
CREATE FUNCTION catalog_top_apply(old_e catalog_top_entry[],
    new_e catalog_top_entry[]) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM catalog_top_bounds b
    WHERE b.lexeme IN (SELECT x.lexeme FROM (
            SELECT e.lexeme, 1 AS d FROM unnest(new_e) e
            UNION ALL SELECT e.lexeme, -1 FROM unnest(old_e) e) x
        GROUP BY x.lexeme HAVING sum(x.d) <> 0)
    ORDER BY b.lexeme FOR NO KEY UPDATE;
    UPDATE catalog_top_bounds b SET n = b.n + d.n
    FROM (SELECT x.lexeme, sum(x.d)::integer AS n FROM (
            SELECT e.lexeme, 1 AS d FROM unnest(new_e) e
            UNION ALL SELECT e.lexeme, -1 FROM unnest(old_e) e) x
          GROUP BY x.lexeme HAVING sum(x.d) <> 0) d
    WHERE b.lexeme = d.lexeme;
    DELETE FROM catalog_top t
    USING (SELECT * FROM unnest(old_e) EXCEPT SELECT * FROM unnest(new_e)) d
    WHERE t.lexeme = d.lexeme AND t.product_id = d.product_id;
    INSERT INTO catalog_top (lexeme, product_id, rank, public_id)
    SELECT d.lexeme, d.product_id, d.rank, d.public_id
    FROM (SELECT * FROM unnest(new_e) EXCEPT SELECT * FROM unnest(old_e)) d
    JOIN catalog_top_bounds b ON b.lexeme = d.lexeme
    WHERE d.rank > b.rank
       OR (d.rank = b.rank AND d.public_id COLLATE "C" <= b.public_id)
    ON CONFLICT (lexeme, product_id) DO UPDATE
        SET rank = EXCLUDED.rank, public_id = EXCLUDED.public_id;
END
$$;

-- Keeps catalog_top and catalog_top_bounds.n exact through every write
-- to product_search (see the head of this file).  The old and new rows
-- are never joined to each other (plpgsql plans once, and a join
-- planned for one row is quadratic for an import's thousands): each
-- side becomes its entries, and only their difference is written.
CREATE FUNCTION catalog_top_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    old_e catalog_top_entry[] := '{}';
    new_e catalog_top_entry[] := '{}';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM catalog_top_bounds) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        new_e := ARRAY(SELECT e FROM new_rows r, catalog_top_entries(r.doc,
            r.rank_vec, r.product_id, r.public_id) e WHERE r.active);
    ELSIF TG_OP = 'UPDATE' THEN
        old_e := ARRAY(SELECT e FROM old_rows r, catalog_top_entries(r.doc,
            r.rank_vec, r.product_id, r.public_id) e WHERE r.active);
        new_e := ARRAY(SELECT e FROM new_rows r, catalog_top_entries(r.doc,
            r.rank_vec, r.product_id, r.public_id) e WHERE r.active);
    ELSE
        old_e := ARRAY(SELECT e FROM old_rows r, catalog_top_entries(r.doc,
            r.rank_vec, r.product_id, r.public_id) e WHERE r.active);
    END IF;
    IF cardinality(old_e) > 0 OR cardinality(new_e) > 0 THEN
        PERFORM catalog_top_apply(old_e, new_e);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER product_search_top_ins AFTER INSERT ON product_search
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_top_changed();
CREATE TRIGGER product_search_top_upd AFTER UPDATE ON product_search
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_top_changed();
CREATE TRIGGER product_search_top_del AFTER DELETE ON product_search
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_top_changed();

-- The vocabulary rebuild also rebuilds the ranked prefixes.
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
    PERFORM catalog_refresh_top();
    RETURN n;
END
$$;
