-- Orders and payments (issue 5): a merchant's payment provider and its
-- shipping and tax rules; orders with their items, stock reservations,
-- payment attempts and an append-only event log; state transitions
-- enforced here, not only in C; inbound provider events stored once.
--
-- Shape for what comes later (docs/architecture.md): an order belongs to
-- one merchant and is paid on that merchant's own provider; a
-- multi-merchant basket or an ACP checkout session will be a checkouts
-- row owning several orders (orders.checkout_id); an AP2 mandate will be
-- a row referenced by the payment attempt it authorised.

-- A timestamp as RFC 3339 UTC text, the API's format ("...T...Z").
CREATE FUNCTION pv_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;

-- The merchant's payment provider.  Secrets are sealed by
-- pv_crypto_seal() under PIVOTA_MASTER_KEY with the merchant's public id
-- plus "/psp_secret" or "/psp_webhook_secret" as additional data.
CREATE TABLE merchant_psp (
    merchant_id      bigint PRIMARY KEY REFERENCES merchants (id)
                     ON DELETE CASCADE,
    provider         text NOT NULL
                     CHECK (provider IN ('sandbox', 'stripe', 'adyen')),
    secret_sealed    text CHECK (secret_sealed LIKE 'v1.%'),
    merchant_account text CHECK (length(merchant_account) BETWEEN 1 AND 200),
    api_base         text CHECK (length(api_base) BETWEEN 1 AND 500),
    webhook_secret_sealed text CHECK (webhook_secret_sealed LIKE 'v1.%'),
    connected_at     timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (provider = 'sandbox' OR secret_sealed IS NOT NULL),
    CHECK (provider <> 'adyen' OR merchant_account IS NOT NULL)
);

-- Shipping: a flat rate per destination country ('*' = anywhere else),
-- free above a threshold, with a delivery estimate.  No row for a
-- country and no '*' row: the merchant does not ship there.
CREATE TABLE merchant_shipping_rates (
    merchant_id     bigint NOT NULL REFERENCES merchants (id)
                    ON DELETE CASCADE,
    country         text NOT NULL CHECK (country ~ '^([A-Z]{2}|\*)$'),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    rate_minor      bigint NOT NULL CHECK (rate_minor BETWEEN 0 AND 100000000000),
    free_over_minor bigint CHECK (free_over_minor BETWEEN 0 AND 100000000000000),
    min_days        integer NOT NULL DEFAULT 3 CHECK (min_days BETWEEN 0 AND 365),
    max_days        integer NOT NULL DEFAULT 7 CHECK (max_days BETWEEN 0 AND 365),
    PRIMARY KEY (merchant_id, country),
    CHECK (min_days <= max_days)
);

-- Tax: a rate in parts per million (8.875 % = 88750) per country and
-- optional region ('' = the whole country), applied to the items and,
-- where the rule says so, to shipping.
CREATE TABLE merchant_tax_rates (
    merchant_id      bigint NOT NULL REFERENCES merchants (id)
                     ON DELETE CASCADE,
    country          text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    region           text NOT NULL DEFAULT ''
                     CHECK (region ~ '^[A-Z0-9]{0,3}$'),
    rate_ppm         integer NOT NULL CHECK (rate_ppm BETWEEN 0 AND 1000000),
    shipping_taxable boolean NOT NULL DEFAULT false,
    PRIMARY KEY (merchant_id, country, region)
);

-- Stock held by unpaid orders.  The catalog sync owns
-- inventory_quantity; reservations are ours, so a sync never wipes them.
ALTER TABLE variants ADD COLUMN reserved_quantity integer NOT NULL DEFAULT 0
    CHECK (reserved_quantity >= 0);

CREATE TABLE orders (
    id                 bigserial PRIMARY KEY,
    public_id          text NOT NULL UNIQUE CHECK (public_id ~ '^ORD_[0-9A-F]{16}$'),
    merchant_id        bigint NOT NULL REFERENCES merchants (id),
    agent_id           bigint NOT NULL REFERENCES agents (id),
    checkout_id        bigint, -- a multi-merchant basket, later
    status             text NOT NULL DEFAULT 'pending',
    payment_status     text NOT NULL DEFAULT 'unpaid',
    fulfillment_status text NOT NULL DEFAULT 'unfulfilled',
    currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    currency_exponent  smallint NOT NULL CHECK (currency_exponent BETWEEN 0 AND 4),
    subtotal_minor     bigint NOT NULL CHECK (subtotal_minor >= 0),
    shipping_minor     bigint NOT NULL CHECK (shipping_minor >= 0),
    tax_minor          bigint NOT NULL CHECK (tax_minor >= 0),
    total_minor        bigint NOT NULL CHECK (total_minor > 0),
    refunded_minor     bigint NOT NULL DEFAULT 0,
    customer_email     citext NOT NULL CHECK (length(customer_email) <= 254),
    ship_name          text NOT NULL CHECK (length(ship_name) BETWEEN 1 AND 200),
    ship_line1         text NOT NULL CHECK (length(ship_line1) BETWEEN 1 AND 200),
    ship_line2         text NOT NULL DEFAULT '' CHECK (length(ship_line2) <= 200),
    ship_city          text NOT NULL CHECK (length(ship_city) BETWEEN 1 AND 100),
    ship_state         text NOT NULL DEFAULT '' CHECK (length(ship_state) <= 100),
    ship_postal_code   text NOT NULL CHECK (length(ship_postal_code) BETWEEN 1 AND 20),
    ship_country       text NOT NULL CHECK (ship_country ~ '^[A-Z]{2}$'),
    ship_phone         text NOT NULL DEFAULT '' CHECK (length(ship_phone) <= 40),
    metadata           jsonb NOT NULL DEFAULT '{}'
                       CHECK (jsonb_typeof(metadata) = 'object'),
    agent_session_id   text NOT NULL DEFAULT ''
                       CHECK (length(agent_session_id) <= 255),
    psp                text NOT NULL,
    expires_at         timestamptz NOT NULL,
    tracking_number    text,
    carrier            text,
    tracking_url       text,
    platform_order_id  text,
    paid_at            timestamptz,
    shipped_at         timestamptz,
    delivered_at       timestamptz,
    cancelled_at       timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    event_seq          integer NOT NULL DEFAULT 0,
    CHECK (total_minor = subtotal_minor + shipping_minor + tax_minor),
    CHECK (refunded_minor BETWEEN 0 AND total_minor)
);
-- An agent's orders, newest first (GET /agent/v1/orders, keyset cursor).
CREATE INDEX orders_agent ON orders (agent_id, id DESC);
-- The merchant's orders (dashboard).
CREATE INDEX orders_merchant ON orders (merchant_id, id DESC);
-- Unpaid orders whose reservation runs out (the expiry sweep).
CREATE INDEX orders_unpaid_expiry ON orders (expires_at)
    WHERE status IN ('pending', 'payment_failed');

CREATE TABLE order_items (
    order_id          bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line              integer NOT NULL CHECK (line BETWEEN 1 AND 100),
    -- Snapshot at order time: the catalog may change or delete rows.
    product_id        bigint,
    variant_id        bigint,
    product_public_id text NOT NULL,
    variant_public_id text NOT NULL,
    external_variant_id text,
    title             text NOT NULL,
    variant_title     text NOT NULL,
    sku               text NOT NULL,
    quantity          integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    unit_price_minor  bigint NOT NULL CHECK (unit_price_minor >= 0),
    subtotal_minor    bigint NOT NULL,
    reserved          boolean NOT NULL DEFAULT true, -- holds stock now
    PRIMARY KEY (order_id, line),
    CHECK (subtotal_minor = unit_price_minor * quantity)
);

-- Allowed state changes, per state machine (API.md §2 "Order state").
CREATE TABLE order_transitions (
    machine    text NOT NULL CHECK (machine IN ('status', 'payment', 'fulfillment')),
    from_state text NOT NULL,
    to_state   text NOT NULL,
    PRIMARY KEY (machine, from_state, to_state)
);
INSERT INTO order_transitions (machine, from_state, to_state) VALUES
    ('status', 'pending', 'paid'),
    ('status', 'pending', 'payment_failed'),
    ('status', 'pending', 'cancelled'),
    ('status', 'payment_failed', 'paid'),
    ('status', 'payment_failed', 'cancelled'),
    ('status', 'paid', 'processing'),
    ('status', 'paid', 'shipped'),
    ('status', 'paid', 'delivered'),
    ('status', 'processing', 'shipped'),
    ('status', 'processing', 'delivered'),
    ('status', 'shipped', 'delivered'),
    ('status', 'paid', 'partially_refunded'),
    ('status', 'processing', 'partially_refunded'),
    ('status', 'shipped', 'partially_refunded'),
    ('status', 'delivered', 'partially_refunded'),
    ('status', 'paid', 'refunded'),
    ('status', 'processing', 'refunded'),
    ('status', 'shipped', 'refunded'),
    ('status', 'delivered', 'refunded'),
    ('status', 'partially_refunded', 'refunded'),
    ('payment', 'unpaid', 'requires_action'),
    ('payment', 'unpaid', 'processing'),
    ('payment', 'unpaid', 'succeeded'),
    ('payment', 'unpaid', 'failed'),
    ('payment', 'requires_action', 'processing'),
    ('payment', 'requires_action', 'succeeded'),
    ('payment', 'requires_action', 'failed'),
    ('payment', 'processing', 'succeeded'),
    ('payment', 'processing', 'failed'),
    ('payment', 'failed', 'requires_action'),
    ('payment', 'failed', 'processing'),
    ('payment', 'failed', 'succeeded'),
    ('payment', 'succeeded', 'partially_refunded'),
    ('payment', 'succeeded', 'refunded'),
    ('payment', 'partially_refunded', 'refunded'),
    ('fulfillment', 'unfulfilled', 'processing'),
    ('fulfillment', 'unfulfilled', 'partially_shipped'),
    ('fulfillment', 'unfulfilled', 'shipped'),
    ('fulfillment', 'unfulfilled', 'delivered'),
    ('fulfillment', 'unfulfilled', 'failed'),
    ('fulfillment', 'processing', 'partially_shipped'),
    ('fulfillment', 'processing', 'shipped'),
    ('fulfillment', 'processing', 'delivered'),
    ('fulfillment', 'processing', 'failed'),
    ('fulfillment', 'partially_shipped', 'shipped'),
    ('fulfillment', 'partially_shipped', 'delivered'),
    ('fulfillment', 'partially_shipped', 'failed'),
    ('fulfillment', 'shipped', 'delivered'),
    ('fulfillment', 'shipped', 'failed'),
    ('fulfillment', 'failed', 'shipped');

ALTER TABLE orders ADD CHECK (status IN ('pending', 'paid', 'processing',
    'shipped', 'delivered', 'payment_failed', 'cancelled',
    'partially_refunded', 'refunded'));
ALTER TABLE orders ADD CHECK (payment_status IN ('unpaid', 'requires_action',
    'processing', 'succeeded', 'failed', 'partially_refunded', 'refunded'));
ALTER TABLE orders ADD CHECK (fulfillment_status IN ('unfulfilled',
    'processing', 'partially_shipped', 'shipped', 'delivered', 'failed'));

-- Every change of an order, in order: seq is per order and is what
-- agent webhooks carry.  Status changes are written by the trigger
-- below, so no code path can change a state without its event.
CREATE TABLE order_events (
    order_id   bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    seq        integer NOT NULL CHECK (seq >= 1),
    type       text NOT NULL CHECK (length(type) BETWEEN 1 AND 64),
    detail     jsonb NOT NULL DEFAULT '{}',
    flagged    boolean NOT NULL DEFAULT false, -- needs a human look
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, seq)
);

-- Appends an event with the order's next sequence number.
CREATE FUNCTION pv_order_event(p_order bigint, p_type text, p_detail jsonb,
                               p_flagged boolean DEFAULT false)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    s integer;
BEGIN
    UPDATE orders SET event_seq = event_seq + 1 WHERE id = p_order
        RETURNING event_seq INTO s;
    INSERT INTO order_events (order_id, seq, type, detail, flagged)
        VALUES (p_order, s, p_type, coalesce(p_detail, '{}'), p_flagged);
    RETURN s;
END $$;

-- Refuses any state change order_transitions does not list (SQLSTATE
-- PV409, which the C code answers as 409), stamps updated_at and the
-- milestone times.
CREATE FUNCTION orders_check_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> OLD.status AND NOT EXISTS (SELECT 1 FROM order_transitions
            WHERE machine = 'status' AND from_state = OLD.status
              AND to_state = NEW.status) THEN
        RAISE EXCEPTION 'order % cannot go from % to %', OLD.public_id,
            OLD.status, NEW.status USING ERRCODE = 'PV409';
    END IF;
    IF NEW.payment_status <> OLD.payment_status AND NOT EXISTS (
            SELECT 1 FROM order_transitions WHERE machine = 'payment'
              AND from_state = OLD.payment_status
              AND to_state = NEW.payment_status) THEN
        RAISE EXCEPTION 'order % payment cannot go from % to %',
            OLD.public_id, OLD.payment_status, NEW.payment_status
            USING ERRCODE = 'PV409';
    END IF;
    IF NEW.fulfillment_status <> OLD.fulfillment_status AND NOT EXISTS (
            SELECT 1 FROM order_transitions WHERE machine = 'fulfillment'
              AND from_state = OLD.fulfillment_status
              AND to_state = NEW.fulfillment_status) THEN
        RAISE EXCEPTION 'order % fulfillment cannot go from % to %',
            OLD.public_id, OLD.fulfillment_status, NEW.fulfillment_status
            USING ERRCODE = 'PV409';
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status
       OR NEW.payment_status IS DISTINCT FROM OLD.payment_status
       OR NEW.fulfillment_status IS DISTINCT FROM OLD.fulfillment_status
       OR NEW.refunded_minor IS DISTINCT FROM OLD.refunded_minor
       OR NEW.tracking_number IS DISTINCT FROM OLD.tracking_number
       OR NEW.platform_order_id IS DISTINCT FROM OLD.platform_order_id THEN
        NEW.updated_at := now();
    END IF;
    IF NEW.status = 'paid' AND OLD.status <> 'paid' THEN
        NEW.paid_at := coalesce(NEW.paid_at, now());
    ELSIF NEW.status = 'cancelled' AND OLD.status <> 'cancelled' THEN
        NEW.cancelled_at := coalesce(NEW.cancelled_at, now());
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER orders_transition BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_check_transition();

-- The event half: one row per state that changed ("order.paid",
-- "payment.failed", "fulfillment.shipped"), plus "order.created".
CREATE FUNCTION orders_log_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    -- Why, when the transaction said (set_config('pivota.reason', ...)).
    why jsonb := jsonb_strip_nulls(jsonb_build_object('reason',
        nullif(current_setting('pivota.reason', true), '')));
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pv_order_event(NEW.id, 'order.created',
            jsonb_build_object('total_minor', NEW.total_minor,
                               'currency', NEW.currency));
        RETURN NULL;
    END IF;
    IF NEW.status <> OLD.status THEN
        PERFORM pv_order_event(NEW.id, 'order.' || NEW.status,
            jsonb_build_object('from', OLD.status) || why);
    END IF;
    IF NEW.payment_status <> OLD.payment_status THEN
        PERFORM pv_order_event(NEW.id, 'payment.' || NEW.payment_status,
            jsonb_build_object('from', OLD.payment_status) || why);
    END IF;
    IF NEW.fulfillment_status <> OLD.fulfillment_status THEN
        PERFORM pv_order_event(NEW.id, 'fulfillment.' || NEW.fulfillment_status,
            jsonb_build_object('from', OLD.fulfillment_status) || why);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER orders_log_insert AFTER INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_log_change();
CREATE TRIGGER orders_log_update AFTER UPDATE OF status, payment_status,
    fulfillment_status ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_log_change();

-- Payment attempts: one row per try, never overwritten by a later try.
-- Only one attempt per order may be open (not yet answered, or waiting
-- on the customer or the provider); a retried request re-drives that
-- attempt with the same idempotency key instead of starting another.
CREATE TABLE payments (
    id             bigserial PRIMARY KEY,
    public_id      text NOT NULL UNIQUE CHECK (public_id ~ '^pay_[0-9a-f]{24}$'),
    order_id       bigint NOT NULL REFERENCES orders (id),
    merchant_id    bigint NOT NULL REFERENCES merchants (id),
    agent_id       bigint NOT NULL REFERENCES agents (id),
    provider       text NOT NULL,
    status         text NOT NULL DEFAULT 'created'
                   CHECK (status IN ('created', 'requires_action',
                          'processing', 'succeeded', 'failed')),
    amount_minor   bigint NOT NULL CHECK (amount_minor > 0),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    token          text NOT NULL CHECK (length(token) BETWEEN 1 AND 255),
    return_url     text CHECK (length(return_url) <= 2000),
    reference      text CHECK (length(reference) BETWEEN 1 AND 255),
    client_secret  text,
    decline_code   text,
    failure_message text,
    next_action    jsonb,
    mandate_id     bigint, -- an AP2 payment mandate, later
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX payments_open ON payments (order_id)
    WHERE status IN ('created', 'requires_action', 'processing');
CREATE UNIQUE INDEX payments_reference ON payments (provider, reference);
CREATE INDEX payments_order ON payments (order_id, id);

-- Inbound provider webhooks, stored once by the provider's event id
-- before they are acted on.
CREATE TABLE provider_events (
    provider     text NOT NULL,
    event_id     text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    merchant_id  bigint NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
    type         text NOT NULL,
    payload      text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    outcome      text NOT NULL DEFAULT '',
    PRIMARY KEY (provider, event_id)
);

-- Creates a priced order in one statement: reserves the stock of every
-- line (locking the variants, so two orders cannot both take the last
-- unit), re-checks each price against the catalog under that lock, and
-- inserts the order and its items.  p_items is a JSON array of
-- {variant_id, product_id, product_public_id, variant_public_id,
-- external_variant_id, title, variant_title, sku, quantity,
-- unit_price_minor}.  Returns ('ok', 0) or the first line that failed:
-- ('out_of_stock', line) or ('price_changed', line); nothing is written
-- then.
CREATE FUNCTION pv_order_insert(
    p_public_id text, p_merchant bigint, p_agent bigint, p_currency text,
    p_exponent smallint, p_subtotal bigint, p_shipping bigint, p_tax bigint,
    p_email text, p_ship jsonb, p_metadata jsonb, p_session text,
    p_psp text, p_ttl_s integer, p_items jsonb,
    OUT result text, OUT line integer, OUT order_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    it record;
    cur record;
BEGIN
    result := 'ok';
    line := 0;
    -- One row per variant (several lines may name one), locked in
    -- variant id order so concurrent orders never deadlock.
    FOR it IN SELECT (e->>'variant_id')::bigint AS variant_id,
                     sum((e->>'quantity')::integer) AS quantity,
                     min((e->>'unit_price_minor')::bigint) AS lo,
                     max((e->>'unit_price_minor')::bigint) AS hi,
                     min(n) AS n
              FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(e, n)
              GROUP BY 1 ORDER BY 1 LOOP
        SELECT price_minor, inventory_tracked,
               inventory_quantity - reserved_quantity AS available
          INTO cur FROM variants WHERE id = it.variant_id;
        -- Counted stock is locked, so its reservations serialise; a
        -- variant whose stock is not counted never runs out and takes
        -- no lock (a best-seller would otherwise queue every order).
        IF FOUND AND cur.inventory_tracked THEN
            SELECT price_minor, inventory_tracked,
                   inventory_quantity - reserved_quantity AS available
              INTO cur FROM variants WHERE id = it.variant_id FOR UPDATE;
        END IF;
        IF NOT FOUND OR cur.price_minor <> it.lo OR cur.price_minor <> it.hi THEN
            result := 'price_changed'; line := it.n; RETURN;
        END IF;
        IF cur.inventory_tracked AND cur.available < it.quantity THEN
            result := 'out_of_stock'; line := it.n; RETURN;
        END IF;
    END LOOP;
    -- Checked under the locks above: every reservation fits.
    WITH s AS (SELECT (e->>'variant_id')::bigint AS variant_id,
                      sum((e->>'quantity')::integer)::integer AS q
                 FROM jsonb_array_elements(p_items) AS x(e) GROUP BY 1)
    UPDATE variants v SET reserved_quantity = v.reserved_quantity + s.q
      FROM s WHERE v.id = s.variant_id AND v.inventory_tracked;
    INSERT INTO orders (public_id, merchant_id, agent_id, currency,
        currency_exponent, subtotal_minor, shipping_minor, tax_minor,
        total_minor, customer_email, ship_name, ship_line1, ship_line2,
        ship_city, ship_state, ship_postal_code, ship_country, ship_phone,
        metadata, agent_session_id, psp, expires_at)
    VALUES (p_public_id, p_merchant, p_agent, p_currency, p_exponent,
        p_subtotal, p_shipping, p_tax, p_subtotal + p_shipping + p_tax,
        p_email, p_ship->>'name', p_ship->>'address_line1',
        coalesce(p_ship->>'address_line2', ''), p_ship->>'city',
        coalesce(p_ship->>'state', ''), p_ship->>'postal_code',
        p_ship->>'country', coalesce(p_ship->>'phone', ''),
        coalesce(p_metadata, '{}'), coalesce(p_session, ''), p_psp,
        now() + make_interval(secs => p_ttl_s))
    RETURNING id INTO order_id;
    INSERT INTO order_items (order_id, line, product_id, variant_id,
        product_public_id, variant_public_id, external_variant_id, title,
        variant_title, sku, quantity, unit_price_minor, subtotal_minor,
        reserved)
    SELECT order_id, n, (e->>'product_id')::bigint,
           (e->>'variant_id')::bigint, e->>'product_public_id',
           e->>'variant_public_id', e->>'external_variant_id', e->>'title',
           e->>'variant_title', e->>'sku', (e->>'quantity')::integer,
           (e->>'unit_price_minor')::bigint,
           (e->>'unit_price_minor')::bigint * (e->>'quantity')::integer,
           coalesce(v.inventory_tracked, false)
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(e, n)
      LEFT JOIN variants v ON v.id = (e->>'variant_id')::bigint;
END $$;

-- Gives back the stock an unpaid order holds (cancel, expiry).
CREATE FUNCTION pv_order_release(p_order bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH r AS (UPDATE order_items SET reserved = false
                WHERE order_id = p_order AND reserved
            RETURNING variant_id, quantity),
         s AS (SELECT variant_id, sum(quantity)::integer AS q FROM r
                GROUP BY variant_id)
    UPDATE variants v SET reserved_quantity = greatest(v.reserved_quantity - s.q, 0)
      FROM s WHERE v.id = s.variant_id;
END $$;

-- A paid order's reservation becomes a sale: the units leave both the
-- reservation and the stock (the next store sync confirms the count).
CREATE FUNCTION pv_order_take_stock(p_order bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH r AS (UPDATE order_items SET reserved = false
                WHERE order_id = p_order AND reserved
            RETURNING variant_id, quantity),
         s AS (SELECT variant_id, sum(quantity)::integer AS q FROM r
                GROUP BY variant_id)
    UPDATE variants v
       SET reserved_quantity = greatest(v.reserved_quantity - s.q, 0),
           inventory_quantity = CASE WHEN v.inventory_tracked
                                     THEN v.inventory_quantity - s.q
                                     ELSE v.inventory_quantity END
      FROM s WHERE v.id = s.variant_id;
END $$;

-- The one path that records a payment attempt's outcome, whether it
-- came from the provider's synchronous answer or from its webhook, in
-- any order and any number of times.  An answered attempt (succeeded,
-- failed) never changes again; an open one moves forward only.  The
-- order follows the attempt: paid exactly once (its stock taken),
-- payment_failed, or waiting.  A success for an order cancelled in
-- the meantime is recorded and flagged for a refund, never applied.
-- Returns 'paid' (the order just became paid: queue what follows),
-- 'changed', 'unchanged' or 'flagged'.
CREATE FUNCTION pv_payment_settle(p_payment bigint, p_status text,
    p_reference text, p_client_secret text, p_decline text, p_message text,
    p_next_action jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    pay payments%ROWTYPE;
    o orders%ROWTYPE;
BEGIN
    SELECT * INTO pay FROM payments WHERE id = p_payment FOR UPDATE;
    SELECT * INTO o FROM orders WHERE id = pay.order_id FOR UPDATE;
    IF pay.status IN ('succeeded', 'failed') OR pay.status = p_status
       OR (pay.status = 'processing' AND p_status = 'requires_action') THEN
        IF pay.reference IS NULL AND p_reference IS NOT NULL THEN
            UPDATE payments SET reference = p_reference, updated_at = now()
             WHERE id = p_payment;
        END IF;
        RETURN 'unchanged';
    END IF;
    UPDATE payments SET status = p_status,
           reference = coalesce(reference, p_reference),
           client_secret = coalesce(p_client_secret, client_secret),
           decline_code = p_decline, failure_message = p_message,
           next_action = p_next_action, updated_at = now()
     WHERE id = p_payment;
    IF o.status NOT IN ('pending', 'payment_failed') THEN
        PERFORM pv_order_event(o.id, 'payment.' || p_status,
            jsonb_build_object('payment_id', pay.public_id,
                               'order_status', o.status),
            p_status = 'succeeded');
        RETURN CASE WHEN p_status = 'succeeded' THEN 'flagged'
                    ELSE 'changed' END;
    END IF;
    IF p_status = 'succeeded' THEN
        UPDATE orders SET status = 'paid', payment_status = 'succeeded'
         WHERE id = o.id;
        PERFORM pv_order_take_stock(o.id);
        RETURN 'paid';
    ELSIF p_status = 'failed' THEN
        UPDATE orders SET status = 'payment_failed', payment_status = 'failed'
         WHERE id = o.id;
    ELSE
        UPDATE orders SET payment_status = p_status WHERE id = o.id;
    END IF;
    RETURN 'changed';
END $$;

-- Cancels an unpaid order and gives back its stock, with a reason for
-- its event.  Returns 'cancelled', 'already' (cancelled before),
-- 'payment_open' (an attempt is waiting on the customer or provider:
-- it could still succeed) or the status that forbids it ('paid', ...).
-- p_force (the expiry sweep) cancels despite an open attempt, which
-- stays open: if it succeeds after all, pv_payment_settle() records the
-- money and flags the order for a refund instead of applying it, so an
-- abandoned authentication cannot hold stock forever.
CREATE FUNCTION pv_order_cancel(p_order bigint, p_reason text,
    p_force boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text;
BEGIN
    SELECT status INTO st FROM orders WHERE id = p_order FOR UPDATE;
    IF st = 'cancelled' THEN
        RETURN 'already';
    ELSIF st NOT IN ('pending', 'payment_failed') THEN
        RETURN st;
    ELSIF NOT p_force AND EXISTS (SELECT 1 FROM payments
                  WHERE order_id = p_order
                  AND status IN ('created', 'requires_action', 'processing')) THEN
        RETURN 'payment_open';
    END IF;
    PERFORM set_config('pivota.reason', coalesce(p_reason, ''), true);
    UPDATE orders SET status = 'cancelled' WHERE id = p_order;
    PERFORM set_config('pivota.reason', '', true);
    PERFORM pv_order_release(p_order);
    RETURN 'cancelled';
END $$;

-- Opens a payment attempt for an order, or finds the one to re-drive.
-- Returns the attempt and what to do: 'new' (charge it), 'retry' (an
-- attempt with this token was sent but never answered: send it again,
-- same idempotency key), 'in_progress' (another attempt is open),
-- 'paid' or 'cancelled' (nothing to pay), with the merchant's provider
-- account (sealed secrets) to charge on.
CREATE FUNCTION pv_payment_begin(p_order bigint, p_public_id text,
    p_token text, p_return_url text,
    OUT verdict text, OUT payment_id bigint, OUT payment_public_id text,
    OUT payment_status text, OUT amount_minor bigint, OUT currency text,
    OUT token text, OUT return_url text)
LANGUAGE plpgsql AS $$
DECLARE
    o orders%ROWTYPE;
    pay payments%ROWTYPE;
BEGIN
    SELECT * INTO o FROM orders WHERE id = p_order FOR UPDATE;
    SELECT * INTO pay FROM payments WHERE order_id = p_order
       AND status IN ('created', 'requires_action', 'processing');
    IF FOUND THEN
        payment_id := pay.id;
        payment_public_id := pay.public_id;
        payment_status := pay.status;
        amount_minor := pay.amount_minor;
        currency := pay.currency;
        token := pay.token;
        return_url := pay.return_url;
        verdict := CASE WHEN pay.status = 'created' AND pay.token = p_token
                        THEN 'retry' ELSE 'in_progress' END;
        RETURN;
    END IF;
    IF o.status = 'cancelled' THEN
        verdict := 'cancelled';
        RETURN;
    ELSIF o.status NOT IN ('pending', 'payment_failed') THEN
        verdict := 'paid';
        RETURN;
    END IF;
    INSERT INTO payments (public_id, order_id, merchant_id, agent_id,
        provider, amount_minor, currency, token, return_url)
    VALUES (p_public_id, o.id, o.merchant_id, o.agent_id, o.psp,
        o.total_minor, o.currency, p_token, p_return_url)
    RETURNING id, public_id, status, payments.amount_minor,
        payments.currency, payments.token, payments.return_url
    INTO payment_id, payment_public_id, payment_status, amount_minor,
        currency, token, return_url;
    -- Paying keeps the stock held while the customer authenticates.
    UPDATE orders SET expires_at = greatest(expires_at,
        now() + interval '30 minutes') WHERE id = o.id;
    verdict := 'new';
END $$;
