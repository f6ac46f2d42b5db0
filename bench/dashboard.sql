-- bench/dashboard.sql: the dashboard bench's merchant (`make bench`,
-- scripts/bench.sh bench_dashboard): :orders orders (10,000 in the
-- bench) of the existing merchant :'merchant' (public id), made in SQL
-- so that they load in seconds.  Deterministic (hashes of the row
-- number, no random()), so every run measures the same shop.
--
-- What a merchant a few months in looks like: 2,000 products with 1 to
-- 3 variants, 8 agents of very different volume, orders spread over
-- the last 90 days (busier lately), 1 to 3 lines each, repeat
-- customers, every status (pending and failed payments, cancelled,
-- paid, processing, shipped, delivered, partly and fully refunded)
-- with the payment attempts (some declined before one succeeded),
-- refunds and the event log each path leaves, as the code writes
-- them.  The triggers that would write the events, agent feeds and
-- mail jobs of each order one by one are switched off for the load
-- (the table owner may switch its own triggers); the events are
-- written here instead, in their seq order.
--
--   psql -v ON_ERROR_STOP=1 -v merchant=mer_... -v orders=10000 \
--       -f bench/dashboard.sql "$PIVOTA_DATABASE_URL"
\set ON_ERROR_STOP 1
BEGIN;

CREATE TEMP TABLE bm AS
SELECT id, public_id FROM merchants WHERE public_id = :'merchant';
DO $$ BEGIN
    IF (SELECT count(*) FROM bm) <> 1 THEN
        RAISE EXCEPTION 'bench/dashboard.sql: no such merchant';
    END IF;
END $$;

-- Agents: name and share of the orders (percent, cumulative bounds).
CREATE TEMP TABLE ba (n int, name text, lo int, hi int, id bigint);
INSERT INTO ba (n, name, lo, hi) VALUES
    (0, 'Concierge GPT', 0, 35), (1, 'ShopPilot', 35, 55),
    (2, 'Claude Shopper', 55, 70), (3, 'DealHound', 70, 80),
    (4, 'GiftGenie', 80, 88), (5, 'Cartwright', 88, 94),
    (6, 'Errand Bot', 94, 98), (7, 'Prototype Agent', 98, 100);
INSERT INTO agents (public_id, name)
SELECT 'agt_' || left(md5('dash-agent-' || :'merchant' || n), 16), name
FROM ba;
UPDATE ba SET id = a.id FROM agents a
WHERE a.public_id = 'agt_' || left(md5('dash-agent-' || :'merchant' || ba.n), 16);

-- The catalog: 2,000 products, 1 to 3 variants, roll-ups computed here.
CREATE TEMP TABLE bp AS
SELECT i, abs(hashint4(i + 31)) AS h,
       (ARRAY['Hoodie', 'Tee', 'Jacket', 'Sneakers', 'Backpack', 'Beanie',
              'Mug', 'Socks', 'Cap', 'Scarf'])[1 + i % 10] AS kind,
       (ARRAY['Classic', 'Everyday', 'Trail', 'Organic', 'Vintage',
              'Coastal', 'Alpine', 'Urban'])[1 + (i / 10) % 8] AS adj,
       1 + abs(hashint4(i + 17)) % 3 AS nv
FROM generate_series(1, 2000) AS i;
INSERT INTO products (public_id, merchant_id, handle, title, description,
    vendor, product_type, status, currency, currency_exponent, price_minor,
    in_stock, inventory_quantity, variant_count, skus)
SELECT 'prod_' || left(md5('dash-product-' || :'merchant' || i), 16),
       bm.id, 'd-' || i, adj || ' ' || kind || ' ' || i,
       'A ' || lower(adj) || ' ' || lower(kind) || '.', 'Bench Goods', kind,
       CASE WHEN i % 50 = 0 THEN 'archived' ELSE 'active' END, 'USD', 2,
       900 + (h % 120) * 100, h % 9 <> 0, CASE WHEN h % 9 = 0 THEN 0 ELSE h % 60 END,
       nv, ARRAY(SELECT 'D' || i || '-' || v FROM generate_series(1, nv) v)
FROM bp, bm;
ALTER TABLE variants DISABLE TRIGGER variants_ins;
INSERT INTO variants (public_id, product_id, merchant_id, sku, title,
    position, price_minor, inventory_quantity, options)
SELECT 'var_' || left(md5('dash-variant-' || :'merchant' || bp.i || '-' || v), 16),
       p.id, p.merchant_id, 'D' || bp.i || '-' || v,
       (ARRAY['S', 'M', 'L'])[v], v, p.price_minor,
       CASE WHEN bp.h % 9 = 0 THEN 0 ELSE bp.h % 60 / bp.nv END,
       jsonb_build_object('Size', (ARRAY['S', 'M', 'L'])[v])
FROM bp
JOIN products p ON p.public_id = 'prod_' || left(md5('dash-product-' || :'merchant' || bp.i), 16)
CROSS JOIN generate_series(1, bp.nv) AS v;
ALTER TABLE variants ENABLE TRIGGER variants_ins;

-- One row per order: when (over 90 days, busier lately), who, what
-- became of it.  Orders are numbered in time order, as ids are.
CREATE TEMP TABLE bo AS
SELECT i, h1, h2, h3, h4,
       now() - make_interval(secs => 7776000.0 * (1 - sqrt(i::float8 / :orders))
                                     + h1 % 900) AS at,
       (SELECT id FROM ba WHERE h3 % 100 >= lo AND h3 % 100 < hi) AS agent,
       CASE WHEN h2 % 100 < 3 THEN 'pending'
            WHEN h2 % 100 < 7 THEN 'payment_failed'
            WHEN h2 % 100 < 11 THEN 'cancelled'
            WHEN h2 % 100 < 21 THEN 'paid'
            WHEN h2 % 100 < 36 THEN 'processing'
            WHEN h2 % 100 < 56 THEN 'shipped'
            WHEN h2 % 100 < 90 THEN 'delivered'
            WHEN h2 % 100 < 95 THEN 'partially_refunded'
            ELSE 'refunded' END AS status,
       1 + h4 % 3 AS nlines,
       h1 % 10 = 0 AS declined_first
FROM (SELECT i, abs(hashint4(i)) AS h1, abs(hashint4(i + 7919)) AS h2,
             abs(hashint4(i + 104729)) AS h3, abs(hashint4(i + 1299709)) AS h4
      FROM generate_series(1, :orders) AS i) x;
-- An unpaid order older than its hour has expired: cancelled.
UPDATE bo SET status = 'cancelled'
WHERE status = 'pending' AND at < now() - interval '1 hour';
ANALYZE bo;
ANALYZE bp;

CREATE TEMP TABLE bi AS
SELECT bo.i, l AS line, p.id AS product_id, v.id AS variant_id,
       p.public_id AS product_public_id, v.public_id AS variant_public_id,
       p.title, v.title AS variant_title, v.sku,
       1 + (bo.h1 / 7 + l) % 3 AS quantity, p.price_minor AS unit
FROM bo
CROSS JOIN generate_series(1, bo.nlines) AS l
JOIN bp ON bp.i = 1 + (bo.h4 / 3 + l * 7919) % 2000
JOIN products p ON p.public_id = 'prod_' || left(md5('dash-product-' || :'merchant' || bp.i), 16)
JOIN variants v ON v.product_id = p.id AND v.position = 1 + (bo.h2 / 100 + l) % bp.nv;

CREATE TEMP TABLE bt AS
SELECT i, sum(quantity * unit)::bigint AS subtotal FROM bi GROUP BY i;
ALTER TABLE bt ADD COLUMN shipping bigint, ADD COLUMN tax bigint;
UPDATE bt SET shipping = CASE WHEN subtotal >= 7500 THEN 0 ELSE 500 END,
              tax = CASE WHEN i % 4 = 0 THEN subtotal * 825 / 10000 ELSE 0 END;

-- The event log each path leaves, in order.
CREATE TEMP TABLE bpath (status text, seq int, type text, dt interval);
INSERT INTO bpath
SELECT s, n, t, d::interval FROM (VALUES
    ('pending', ARRAY['order.created'], ARRAY['0']),
    ('payment_failed', ARRAY['order.created', 'payment.failed',
        'order.payment_failed'], ARRAY['0', '1 minute', '1 minute']),
    ('cancelled', ARRAY['order.created', 'order.cancelled'],
        ARRAY['0', '1 hour']),
    ('paid', ARRAY['order.created', 'payment.succeeded', 'order.paid'],
        ARRAY['0', '2 minutes', '2 minutes']),
    ('processing', ARRAY['order.created', 'payment.succeeded', 'order.paid',
        'order.processing', 'fulfillment.processing'],
        ARRAY['0', '2 minutes', '2 minutes', '3 minutes', '3 minutes']),
    ('shipped', ARRAY['order.created', 'payment.succeeded', 'order.paid',
        'shipment.created', 'fulfillment.shipped', 'order.shipped'],
        ARRAY['0', '2 minutes', '2 minutes', '1 day', '1 day', '1 day']),
    ('delivered', ARRAY['order.created', 'payment.succeeded', 'order.paid',
        'shipment.created', 'fulfillment.shipped', 'order.shipped',
        'shipment.delivered', 'fulfillment.delivered', 'order.delivered'],
        ARRAY['0', '2 minutes', '2 minutes', '1 day', '1 day', '1 day',
              '4 days', '4 days', '4 days']),
    ('partially_refunded', ARRAY['order.created', 'payment.succeeded',
        'order.paid', 'shipment.created', 'fulfillment.shipped',
        'order.shipped', 'refund.created', 'refund.succeeded',
        'payment.partially_refunded', 'order.partially_refunded'],
        ARRAY['0', '2 minutes', '2 minutes', '1 day', '1 day', '1 day',
              '6 days', '6 days', '6 days', '6 days']),
    ('refunded', ARRAY['order.created', 'payment.succeeded', 'order.paid',
        'refund.created', 'refund.succeeded', 'payment.refunded',
        'order.refunded'],
        ARRAY['0', '2 minutes', '2 minutes', '6 days', '6 days', '6 days',
              '6 days'])
) AS p (s, types, dts),
LATERAL unnest(types, dts) WITH ORDINALITY AS u (t, d, n);

ALTER TABLE orders DISABLE TRIGGER orders_log_insert;
INSERT INTO orders (public_id, merchant_id, agent_id, status, payment_status,
    fulfillment_status, currency, currency_exponent, subtotal_minor,
    shipping_minor, tax_minor, total_minor, refunded_minor, customer_email,
    ship_name, ship_line1, ship_city, ship_state, ship_postal_code,
    ship_country, psp, expires_at, tracking_number, carrier, tracking_url,
    paid_at, shipped_at, delivered_at, cancelled_at, created_at, updated_at,
    event_seq)
SELECT 'ORD_' || upper(left(md5('dash-order-' || :'merchant' || bo.i), 16)),
       bm.id, bo.agent, bo.status,
       CASE bo.status WHEN 'pending' THEN 'unpaid'
                      WHEN 'payment_failed' THEN 'failed'
                      WHEN 'cancelled' THEN CASE WHEN bo.h1 % 2 = 0
                                                 THEN 'failed' ELSE 'unpaid' END
                      WHEN 'partially_refunded' THEN 'partially_refunded'
                      WHEN 'refunded' THEN 'refunded'
                      ELSE 'succeeded' END,
       CASE WHEN bo.status IN ('shipped', 'partially_refunded') THEN 'shipped'
            WHEN bo.status = 'delivered' THEN 'delivered'
            WHEN bo.status = 'processing' THEN 'processing'
            ELSE 'unfulfilled' END,
       'USD', 2, bt.subtotal, bt.shipping, bt.tax,
       bt.subtotal + bt.shipping + bt.tax,
       CASE bo.status WHEN 'refunded' THEN bt.subtotal + bt.shipping + bt.tax
                      WHEN 'partially_refunded' THEN (bt.subtotal + bt.shipping + bt.tax) / 3
                      ELSE 0 END,
       'customer' || (bo.h4 % 4000) || '@example.com',
       'Customer ' || (bo.h4 % 4000), (1 + bo.h1 % 900) || ' Main St',
       (ARRAY['Springfield', 'Portland', 'Austin', 'Denver', 'Madison'])[1 + bo.h3 % 5],
       (ARRAY['IL', 'OR', 'TX', 'CO', 'WI'])[1 + bo.h3 % 5],
       lpad((10000 + bo.h2 % 89999)::text, 5, '0'), 'US', 'stripe',
       bo.at + interval '1 hour',
       CASE WHEN bo.status IN ('shipped', 'delivered', 'partially_refunded')
            THEN '1Z' || upper(left(md5('track' || bo.i), 16)) END,
       CASE WHEN bo.status IN ('shipped', 'delivered', 'partially_refunded')
            THEN (ARRAY['UPS', 'USPS', 'FedEx'])[1 + bo.h2 % 3] END,
       CASE WHEN bo.status IN ('shipped', 'delivered', 'partially_refunded')
            THEN 'https://track.example/' || bo.i END,
       CASE WHEN bo.status NOT IN ('pending', 'payment_failed', 'cancelled')
            THEN bo.at + interval '2 minutes' END,
       CASE WHEN bo.status IN ('shipped', 'delivered', 'partially_refunded')
            THEN bo.at + interval '1 day' END,
       CASE WHEN bo.status = 'delivered' THEN bo.at + interval '4 days' END,
       CASE WHEN bo.status = 'cancelled' THEN bo.at + interval '1 hour' END,
       bo.at, bo.at + interval '4 days',
       (SELECT max(seq) FROM bpath WHERE bpath.status = bo.status)
FROM bo JOIN bt ON bt.i = bo.i CROSS JOIN bm
ORDER BY bo.i;
ALTER TABLE orders ENABLE TRIGGER orders_log_insert;

CREATE TEMP TABLE bx AS
SELECT bo.*, o.id AS order_id, o.total_minor, o.refunded_minor
FROM bo JOIN orders o
  ON o.public_id = 'ORD_' || upper(left(md5('dash-order-' || :'merchant' || bo.i), 16));
CREATE INDEX ON bx (i);
ANALYZE bx;

INSERT INTO order_items (order_id, line, product_id, variant_id,
    product_public_id, variant_public_id, title, variant_title, sku,
    quantity, unit_price_minor, subtotal_minor, reserved)
SELECT bx.order_id, bi.line, bi.product_id, bi.variant_id,
       bi.product_public_id, bi.variant_public_id, bi.title,
       bi.variant_title, bi.sku, bi.quantity, bi.unit, bi.quantity * bi.unit,
       false
FROM bi JOIN bx ON bx.i = bi.i;

-- Payment attempts: a declined card first for some, then the charge;
-- failed orders have only the decline; cancelled ones half of them.
INSERT INTO payments (public_id, order_id, merchant_id, agent_id, provider,
    status, amount_minor, currency, token, reference, decline_code,
    failure_message, created_at, updated_at)
SELECT 'pay_' || left(md5('dash-pay-' || :'merchant' || bx.i || '-' || k), 24),
       bx.order_id, bm.id, bx.agent, 'stripe',
       CASE WHEN k = 1 AND (bx.declined_first OR bx.status = 'payment_failed'
                            OR bx.status = 'cancelled') THEN 'failed'
            ELSE 'succeeded' END,
       bx.total_minor, 'USD',
       CASE WHEN k = 1 AND (bx.declined_first OR bx.status IN ('payment_failed', 'cancelled'))
            THEN 'pm_card_chargeDeclined' ELSE 'pm_card_visa' END,
       'pi_dash_' || left(md5('dash-pay-' || :'merchant' || bx.i || '-' || k), 20),
       CASE WHEN k = 1 AND (bx.declined_first OR bx.status IN ('payment_failed', 'cancelled'))
            THEN 'card_declined' END,
       CASE WHEN k = 1 AND (bx.declined_first OR bx.status IN ('payment_failed', 'cancelled'))
            THEN 'Your card was declined.' END,
       bx.at + make_interval(mins => k), bx.at + make_interval(mins => k)
FROM bx CROSS JOIN bm
CROSS JOIN generate_series(1, 2) AS k
WHERE bx.status <> 'pending'
  AND NOT (bx.status = 'cancelled' AND bx.h1 % 2 = 1)
  AND (k = 1 OR (bx.declined_first AND bx.status NOT IN ('payment_failed', 'cancelled')));

-- Refunds (by the agent) of the refunded orders.
INSERT INTO refunds (public_id, order_id, merchant_id, payment_id, agent_id,
    source, status, amount_minor, currency, reason, provider,
    provider_reference, created_at, updated_at)
SELECT 'ref_' || left(md5('dash-refund-' || :'merchant' || bx.i), 24),
       bx.order_id, bm.id,
       (SELECT max(id) FROM payments p WHERE p.order_id = bx.order_id),
       bx.agent, 'agent', 'succeeded', bx.refunded_minor, 'USD',
       CASE WHEN bx.status = 'refunded' THEN 'customer changed their mind'
            ELSE 'one item arrived damaged' END,
       'stripe', 're_dash_' || left(md5('dash-refund-' || :'merchant' || bx.i), 20),
       bx.at + interval '6 days', bx.at + interval '6 days'
FROM bx CROSS JOIN bm
WHERE bx.status IN ('partially_refunded', 'refunded');

ALTER TABLE order_events DISABLE TRIGGER USER;
INSERT INTO order_events (order_id, seq, type, detail, created_at)
SELECT bx.order_id, bpath.seq, bpath.type,
       CASE WHEN bpath.type = 'order.created'
            THEN jsonb_build_object('total_minor', bx.total_minor, 'currency', 'USD')
            WHEN bpath.type LIKE 'refund.%'
            THEN jsonb_build_object('amount_minor', bx.refunded_minor)
            WHEN bpath.type LIKE 'shipment.%'
            THEN jsonb_build_object('fulfillment_id', 'dashboard')
            ELSE '{}'::jsonb END,
       bx.at + bpath.dt
FROM bx JOIN bpath ON bpath.status = bx.status;
ALTER TABLE order_events ENABLE TRIGGER USER;

SELECT count(*) AS orders, count(DISTINCT agent_id) AS agents,
       min(created_at)::date AS first, max(created_at)::date AS last,
       (SELECT count(*) FROM order_events e WHERE e.order_id IN
            (SELECT order_id FROM bx)) AS events
FROM orders WHERE merchant_id = (SELECT id FROM bm);
COMMIT;
-- Visibility map and statistics, as autovacuum would leave them.
VACUUM ANALYZE agents, products, variants, orders, order_items, payments,
    refunds, order_events;
