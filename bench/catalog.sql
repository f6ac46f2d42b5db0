-- bench/catalog.sql: the bench catalog of `make bench`, 100,000
-- products over 50 merchants, made in SQL from word lists so it loads
-- in seconds.  Deterministic (hashes of the row number, no random()),
-- so every run searches the same catalog.
--
-- Titles are "<adjective> <material> <kind>" over 9 categories and 50
-- kinds: a kind word ("jacket", "hoodie", "shoes") matches thousands of
-- products, a pair of words hundreds.  Each product has 1 to 4 size
-- variants in one colour, some out of stock, some on sale.  The
-- roll-ups an import would leave are computed here directly; the
-- vocabulary is rebuilt at the end.
--
--   psql -v ON_ERROR_STOP=1 -f bench/catalog.sql "$PIVOTA_DATABASE_URL"
\set ON_ERROR_STOP 1
BEGIN;

CREATE TEMP TABLE w_kind (n int, kind text, category text, base int);
INSERT INTO w_kind
SELECT row_number() OVER () - 1, k, c, b FROM (VALUES
  ('Hoodie', 'Hoodies & Sweatshirts', 5500), ('Zip Hoodie', 'Hoodies & Sweatshirts', 6500),
  ('Sweatshirt', 'Hoodies & Sweatshirts', 4800), ('Crewneck', 'Hoodies & Sweatshirts', 4500),
  ('Pullover', 'Hoodies & Sweatshirts', 5200), ('T-Shirt', 'T-Shirts', 2200),
  ('Tee', 'T-Shirts', 1900), ('Long Sleeve Tee', 'T-Shirts', 2800),
  ('Tank Top', 'T-Shirts', 1800), ('Polo Shirt', 'T-Shirts', 3900),
  ('Rain Jacket', 'Jackets & Coats', 12900), ('Puffer Jacket', 'Jackets & Coats', 17900),
  ('Denim Jacket', 'Jackets & Coats', 8900), ('Windbreaker', 'Jackets & Coats', 7900),
  ('Parka', 'Jackets & Coats', 22900), ('Fleece Jacket', 'Jackets & Coats', 8400),
  ('Bomber Jacket', 'Jackets & Coats', 11900), ('Chinos', 'Pants', 6800),
  ('Joggers', 'Pants', 5400), ('Jeans', 'Pants', 7800), ('Cargo Pants', 'Pants', 7200),
  ('Shorts', 'Pants', 3900), ('Leggings', 'Pants', 4600),
  ('Running Shoes', 'Shoes', 11900), ('Sneakers', 'Shoes', 8900),
  ('Hiking Boots', 'Shoes', 15900), ('Sandals', 'Shoes', 4900),
  ('Loafers', 'Shoes', 9900), ('Slippers', 'Shoes', 3900),
  ('Beanie', 'Accessories', 2400), ('Baseball Cap', 'Accessories', 2600),
  ('Backpack', 'Accessories', 8900), ('Tote Bag', 'Accessories', 3400),
  ('Socks', 'Accessories', 1400), ('Belt', 'Accessories', 3900),
  ('Scarf', 'Accessories', 3600), ('Gloves', 'Accessories', 3200),
  ('Sunglasses', 'Accessories', 9900), ('Wallet', 'Accessories', 4900),
  ('Mug', 'Home', 1800), ('Throw Blanket', 'Home', 7900), ('Candle', 'Home', 2800),
  ('Pillow', 'Home', 3900), ('Towel', 'Home', 2900), ('Notebook', 'Home', 1600),
  ('Dress', 'Dresses & Skirts', 8900), ('Midi Dress', 'Dresses & Skirts', 9800),
  ('Skirt', 'Dresses & Skirts', 5900), ('Sweater', 'Sweaters', 7900),
  ('Cardigan', 'Sweaters', 8600)) AS t (k, c, b);

CREATE TEMP TABLE w (list text, n int, word text);
INSERT INTO w
SELECT 'adj', o - 1, x FROM unnest(ARRAY['Classic', 'Everyday', 'Vintage',
  'Essential', 'Lightweight', 'Heavyweight', 'Relaxed', 'Slim', 'Oversized',
  'Cozy', 'Premium', 'Organic', 'Recycled', 'Waterproof', 'Insulated',
  'Breathable', 'Stretch', 'Quilted', 'Ribbed', 'Washed', 'Performance',
  'Urban', 'Trail', 'Coastal', 'Alpine']) WITH ORDINALITY AS t (x, o)
UNION ALL
SELECT 'mat', o - 1, x FROM unnest(ARRAY['Cotton', 'Organic Cotton',
  'Merino Wool', 'Wool', 'Linen', 'Fleece', 'Denim', 'Leather', 'Canvas',
  'Nylon', 'Cashmere', 'Hemp', 'Bamboo', 'Corduroy', 'Suede'])
  WITH ORDINALITY AS t (x, o)
UNION ALL
SELECT 'color', o - 1, x FROM unnest(ARRAY['Black', 'White', 'Navy', 'Grey',
  'Charcoal', 'Olive', 'Red', 'Burgundy', 'Forest Green', 'Sand', 'Cream',
  'Blue', 'Sky Blue', 'Mustard', 'Pink', 'Brown']) WITH ORDINALITY AS t (x, o)
UNION ALL
SELECT 'brand', o - 1, x FROM unnest(ARRAY['Northwind', 'Harbor & Pine',
  'Trailhead', 'Lumen', 'Fieldhouse', 'Copper Kettle', 'Wildcraft',
  'Tidewater', 'Ironbark', 'Bluebird', 'Highline', 'Saltmarsh', 'Redwood',
  'Meridian', 'Foxglove', 'Granite Peak', 'Little Bay', 'Old Mill',
  'Sundial', 'Westbrook']) WITH ORDINALITY AS t (x, o)
UNION ALL
SELECT 'line', o - 1, x FROM unnest(ARRAY[
  'Built for everyday wear and easy layering.',
  'Machine washable and made to last for years.',
  'A relaxed fit with plenty of room to move.',
  'Ethically made in small batches by people we know.',
  'Soft against the skin and warm on cold mornings.',
  'Packs down small for travel and weekend trips.',
  'Reinforced seams where it matters most.',
  'Garment dyed for a lived-in look from day one.',
  'Pairs well with everything else in your closet.',
  'Finished with recycled trims and a water-based print.',
  'Tested on the trail and in the city.',
  'Our most popular style, now in new colours.']) WITH ORDINALITY AS t (x, o);

INSERT INTO merchants (public_id, business_name, email, store_url, region,
    currency, platform)
SELECT 'mer_' || lpad(to_hex(1000 + i), 16, '0'),
       (SELECT word FROM w WHERE list = 'brand' AND n = i % 20) ||
           ' Store ' || i,
       'bench-' || i || '@bench.test',
       'https://bench-' || i || '.example', 'US', 'USD',
       CASE WHEN i % 3 = 0 THEN 'shopify' ELSE 'custom' END
FROM generate_series(1, 50) AS i;

-- One row per product (i) with the hashes that pick its words, and
-- one per variant with its size and stock.
CREATE TEMP TABLE gen AS
SELECT i,
       abs(hashint4(i)) AS h1, abs(hashint4(i + 7919)) AS h2,
       abs(hashint4(i + 104729)) AS h3, abs(hashint4(i + 1299709)) AS h4
FROM generate_series(1, 100000) AS i;
CREATE TEMP TABLE genv AS
SELECT g.i, z.pos::int AS pos, z.size,
       CASE WHEN (g.h2 + z.pos) % 7 = 0 THEN 0
            ELSE ((g.h1 + z.pos) % 40)::int END AS qty
FROM gen g, unnest(ARRAY['S', 'M', 'L', 'XL']) WITH ORDINALITY AS z (size, pos)
WHERE z.pos <= 1 + g.h1 % 4;
CREATE TEMP TABLE genp AS
SELECT i, count(*)::int AS n, sum(qty) AS qty,
       array_agg('B' || i || '-' || size ORDER BY pos) AS skus
FROM genv GROUP BY i;
ANALYZE w_kind;
ANALYZE w;
ANALYZE gen;
ANALYZE genv;
ANALYZE genp;

-- Products with their variant roll-ups already computed, and variants
-- inserted with the roll-up trigger off: one write per row instead of
-- two.  (The table owner may switch its own triggers.)
INSERT INTO products (public_id, merchant_id, external_id, handle, title,
    description, vendor, product_type, tags, url, images, status, currency,
    currency_exponent, price_minor, compare_at_price_minor, in_stock,
    inventory_quantity, variant_count, skus)
SELECT 'prod_' || left(md5('bench-product-' || g.i), 16),
       m.id, 'gid://bench/Product/' || g.i,
       'p-' || g.i,
       a.word || ' ' || mt.word || ' ' || k.kind,
       a.word || ' ' || lower(k.kind) || ' made from ' || lower(mt.word) ||
           '. ' || l1.word || ' ' || l2.word,
       b.word, k.category,
       ARRAY[lower(k.category), lower(mt.word), lower(c.word)] ||
           CASE WHEN g.h4 % 5 = 0 THEN ARRAY['sale'] ELSE '{}' END,
       'https://bench-' || (g.i % 50 + 1) || '.example/products/p-' || g.i,
       ARRAY['https://cdn.bench.example/p-' || g.i || '.jpg'],
       'active', 'USD', 2,
       k.base + (g.h3 % 20) * 100,
       CASE WHEN g.h4 % 5 = 0 THEN k.base + (g.h3 % 20) * 100 + 1500 END,
       v.qty > 0, v.qty, v.n, v.skus
FROM gen g
JOIN merchants m ON m.public_id = 'mer_' || lpad(to_hex(1000 + g.i % 50 + 1), 16, '0')
JOIN w_kind k ON k.n = g.h1 % 50
JOIN w a ON a.list = 'adj' AND a.n = g.h2 % 25
JOIN w mt ON mt.list = 'mat' AND mt.n = g.h3 % 15
JOIN w c ON c.list = 'color' AND c.n = g.h4 % 16
JOIN w b ON b.list = 'brand' AND b.n = (g.h1 / 50) % 20
JOIN w l1 ON l1.list = 'line' AND l1.n = (g.h2 / 25) % 12
JOIN w l2 ON l2.list = 'line' AND l2.n = (g.h3 / 15 + 5) % 12
JOIN genp v ON v.i = g.i;

ALTER TABLE variants DISABLE TRIGGER variants_ins;
INSERT INTO variants (public_id, product_id, merchant_id, external_id, sku,
    title, position, price_minor, compare_at_price_minor,
    inventory_quantity, options)
SELECT 'var_' || left(md5('bench-variant-' || g.i || '-' || x.pos), 16),
       p.id, p.merchant_id, 'gid://bench/ProductVariant/' || g.i || '-' || x.pos,
       'B' || g.i || '-' || x.size,
       x.size || ' / ' || c.word, x.pos,
       p.price_minor, p.compare_at_price_minor, x.qty,
       jsonb_build_object('Size', x.size, 'Color', c.word)
FROM gen g
JOIN genv x ON x.i = g.i
JOIN products p ON p.external_id = 'gid://bench/Product/' || g.i
JOIN w c ON c.list = 'color' AND c.n = g.h4 % 16;
ALTER TABLE variants ENABLE TRIGGER variants_ins;

SELECT catalog_refresh_words() AS words;
COMMIT;
-- Visibility map and statistics, as autovacuum would leave them.
VACUUM ANALYZE merchants, products, variants, product_search, catalog_words,
    catalog_lexemes;
