-- Refunds (issue 7): one row per refund of an order, whoever started it
-- (an agent through the API, the merchant in the provider's dashboard,
-- the merchant in the Shopify admin), with the lines it gives back in
-- refund_items.  The refundable remainder of an order is checked and
-- reserved under the order's row lock (pv_refund_reserve), and the
-- order's refunded_minor, payment_status and status follow a refund in
-- the transaction that records its outcome (pv_refund_settle), through
-- the transitions of migration 0009.  Docs: docs/payments.md "Refunds".

CREATE TABLE refunds (
    id                 bigserial PRIMARY KEY,
    public_id          text NOT NULL UNIQUE CHECK (public_id ~ '^ref_[0-9a-f]{24}$'),
    order_id           bigint NOT NULL REFERENCES orders (id),
    merchant_id        bigint NOT NULL REFERENCES merchants (id),
    -- The charge refunded; NULL only for a store refund of an order
    -- paid outside a payments row (never, today).
    payment_id         bigint REFERENCES payments (id),
    agent_id           bigint REFERENCES agents (id), -- who asked, if an agent
    source             text NOT NULL
                       CHECK (source IN ('agent', 'provider_dashboard', 'store')),
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'succeeded', 'failed')),
    amount_minor       bigint NOT NULL CHECK (amount_minor > 0),
    currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reason             text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    provider_reason    text, -- the provider's enum the reason mapped to
    include_shipping   boolean NOT NULL DEFAULT false,
    shipping_minor     bigint NOT NULL DEFAULT 0 CHECK (shipping_minor >= 0),
    provider           text NOT NULL,
    provider_reference text CHECK (length(provider_reference) BETWEEN 1 AND 255),
    failure_message    text,
    -- The Shopify refund: the one our refund.shopify job made, or the
    -- one a store refund came from.
    store_refund_id    text UNIQUE CHECK (length(store_refund_id) BETWEEN 1 AND 255),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (source <> 'agent' OR agent_id IS NOT NULL)
);
CREATE UNIQUE INDEX refunds_reference ON refunds (provider, provider_reference);
CREATE INDEX refunds_order ON refunds (order_id, id);
-- Pending refunds to re-drive (pv_refund_redrive).
CREATE INDEX refunds_pending ON refunds (updated_at) WHERE status = 'pending';

-- The lines a refund gives back, by order line.
CREATE TABLE refund_items (
    refund_id    bigint NOT NULL REFERENCES refunds (id) ON DELETE CASCADE,
    order_id     bigint NOT NULL,
    line         integer NOT NULL,
    quantity     integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    PRIMARY KEY (refund_id, line),
    FOREIGN KEY (order_id, line) REFERENCES order_items (order_id, line)
);

-- Whether a refund mirrored to Shopify puts the units back in stock
-- (restockType RETURN) or not (NO_RESTOCK).
ALTER TABLE merchant_shopify ADD COLUMN refund_restock boolean NOT NULL
    DEFAULT false;

-- What is left to refund: the total less every refund that has not
-- failed (pending ones hold their amount until they are answered).
CREATE FUNCTION pv_refund_left(p_order bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT o.total_minor - coalesce((SELECT sum(r.amount_minor) FROM refunds r
             WHERE r.order_id = o.id AND r.status <> 'failed'), 0)
      FROM orders o WHERE o.id = p_order
$$;

-- Moves an order's refunded_minor by p_delta and its states with it:
-- partially_refunded, or refunded once everything is back.  States
-- that cannot take a refund state (an order cancelled whose late
-- payment was flagged) keep theirs; the amount is still counted.
CREATE FUNCTION pv_refund_apply(p_order bigint, p_delta bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('pivota.reason', 'refund', true);
    UPDATE orders SET refunded_minor = refunded_minor + p_delta,
        status = CASE
            WHEN p_delta <= 0 OR status NOT IN ('paid', 'processing',
                 'shipped', 'delivered', 'partially_refunded') THEN status
            WHEN refunded_minor + p_delta >= total_minor THEN 'refunded'
            ELSE 'partially_refunded' END,
        payment_status = CASE
            WHEN p_delta <= 0 OR payment_status NOT IN ('succeeded',
                 'partially_refunded') THEN payment_status
            WHEN refunded_minor + p_delta >= total_minor THEN 'refunded'
            ELSE 'partially_refunded' END
     WHERE id = p_order;
    PERFORM set_config('pivota.reason', '', true);
END $$;

-- Opens a refund of an order, under the order's row lock, so that two
-- concurrent refunds can never together exceed what is left.  The
-- amount is p_amount (minor units), or the lines of p_items ([{line,
-- quantity}] as the C code resolved them from the agent's product ids)
-- at their price plus their share of the tax, plus the shipping if
-- p_shipping, or everything left when neither is given.  Returns the
-- verdict: 'ok' with the new refund, 'not_paid' (nothing was paid, or
-- the order is in a state a refund does not apply to), 'exceeds' (more
-- than is left: left says how much is), 'item_exceeds' (line p_items
-- asks more units than remain unrefunded: bad_line), 'no_payment'.
CREATE FUNCTION pv_refund_reserve(p_order bigint, p_public_id text,
    p_agent bigint, p_source text, p_amount bigint, p_items jsonb,
    p_shipping boolean, p_reason text, p_provider_reason text,
    p_store_refund_id text,
    OUT verdict text, OUT refund_id bigint, OUT amount_minor bigint,
    OUT left_minor bigint, OUT bad_line integer)
LANGUAGE plpgsql AS $$
DECLARE
    o orders%ROWTYPE;
    pay payments%ROWTYPE;
    it record;
    want bigint := 0;
    ship bigint := 0;
BEGIN
    bad_line := 0;
    SELECT * INTO o FROM orders WHERE id = p_order FOR UPDATE;
    left_minor := pv_refund_left(p_order);
    IF o.status = 'refunded' OR o.payment_status = 'refunded' THEN
        verdict := 'exceeds';
        amount_minor := coalesce(p_amount, 0);
        RETURN;
    END IF;
    IF o.payment_status NOT IN ('succeeded', 'partially_refunded')
       OR o.status NOT IN ('paid', 'processing', 'shipped', 'delivered',
                           'partially_refunded') THEN
        verdict := 'not_paid';
        RETURN;
    END IF;
    SELECT * INTO pay FROM payments WHERE order_id = p_order
       AND status = 'succeeded' ORDER BY id DESC LIMIT 1;
    IF NOT FOUND THEN
        verdict := 'no_payment';
        RETURN;
    END IF;
    IF p_items IS NOT NULL AND jsonb_array_length(p_items) > 0 THEN
        FOR it IN SELECT i.line, i.quantity AS ordered, i.subtotal_minor,
                         i.unit_price_minor, x.q,
                         coalesce((SELECT sum(ri.quantity) FROM refund_items ri
                            JOIN refunds r ON r.id = ri.refund_id
                           WHERE ri.order_id = p_order AND ri.line = i.line
                             AND r.status <> 'failed'), 0) AS done
                    FROM (SELECT (e->>'line')::integer AS line,
                                 sum((e->>'quantity')::integer) AS q
                            FROM jsonb_array_elements(p_items) e GROUP BY 1) x
                    JOIN order_items i ON i.order_id = p_order
                     AND i.line = x.line ORDER BY i.line LOOP
            IF it.done + it.q > it.ordered THEN
                verdict := 'item_exceeds';
                bad_line := it.line;
                RETURN;
            END IF;
            -- The lines' price and their share of the order's tax.
            want := want + it.unit_price_minor * it.q
                + CASE WHEN o.subtotal_minor > 0
                       THEN (o.tax_minor::numeric * it.unit_price_minor * it.q
                             / o.subtotal_minor)::bigint ELSE 0 END;
        END LOOP;
    END IF;
    IF p_shipping AND NOT EXISTS (SELECT 1 FROM refunds WHERE order_id = p_order
                                  AND include_shipping AND status <> 'failed') THEN
        ship := o.shipping_minor;
        want := want + ship;
    END IF;
    IF p_amount IS NOT NULL THEN
        want := p_amount;
    ELSIF want = 0 AND (p_items IS NULL OR jsonb_array_length(p_items) = 0)
          AND NOT p_shipping THEN
        want := left_minor;
    END IF;
    -- Rounding of the tax share never makes the last lines unrefundable.
    IF p_amount IS NULL AND want > left_minor AND left_minor > 0
       AND want - left_minor <= jsonb_array_length(coalesce(p_items, '[]')) THEN
        want := left_minor;
    END IF;
    IF want <= 0 OR want > left_minor THEN
        verdict := 'exceeds';
        amount_minor := want;
        RETURN;
    END IF;
    INSERT INTO refunds (public_id, order_id, merchant_id, payment_id,
        agent_id, source, amount_minor, currency, reason, provider_reason,
        include_shipping, shipping_minor, provider, store_refund_id)
    VALUES (p_public_id, o.id, o.merchant_id, pay.id, p_agent, p_source,
        want, o.currency, coalesce(p_reason, ''), p_provider_reason,
        ship > 0, ship, pay.provider, p_store_refund_id)
    RETURNING id INTO refund_id;
    INSERT INTO refund_items (refund_id, order_id, line, quantity, amount_minor)
    SELECT refund_id, p_order, i.line, x.q, i.unit_price_minor * x.q
      FROM (SELECT (e->>'line')::integer AS line,
                   sum((e->>'quantity')::integer)::integer AS q
              FROM jsonb_array_elements(coalesce(p_items, '[]')) e
             GROUP BY 1) x
      JOIN order_items i ON i.order_id = p_order AND i.line = x.line;
    PERFORM pv_order_event(p_order, 'refund.created',
        jsonb_build_object('refund_id', p_public_id, 'amount_minor', want,
                           'source', p_source));
    amount_minor := want;
    left_minor := left_minor - want;
    verdict := 'ok';
END $$;

-- The one path that records a refund's outcome, from the provider's
-- synchronous answer or its webhook, in any order and any number of
-- times.  pending moves to succeeded or failed; succeeded may still
-- fail later (the bank returned it: the money is counted back and the
-- event flagged, since the order's state cannot move backwards);
-- failed is final.  The order is locked before the refund, as
-- pv_refund_reserve() does.  Returns 'succeeded' (the money just
-- counted: queue what follows), 'failed', 'reversed' or 'unchanged'.
CREATE FUNCTION pv_refund_settle(p_refund bigint, p_status text,
    p_reference text, p_message text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r refunds%ROWTYPE;
BEGIN
    PERFORM 1 FROM orders WHERE id = (SELECT order_id FROM refunds
                                       WHERE id = p_refund) FOR UPDATE;
    SELECT * INTO r FROM refunds WHERE id = p_refund FOR UPDATE;
    IF r.provider_reference IS NULL AND p_reference IS NOT NULL THEN
        UPDATE refunds SET provider_reference = p_reference,
               updated_at = now() WHERE id = p_refund;
    END IF;
    IF r.status = p_status OR r.status = 'failed' OR p_status = 'pending' THEN
        RETURN 'unchanged';
    END IF;
    UPDATE refunds SET status = p_status, failure_message = p_message,
           updated_at = now() WHERE id = p_refund;
    IF p_status = 'succeeded' THEN
        PERFORM pv_refund_apply(r.order_id, r.amount_minor);
        PERFORM pv_order_event(r.order_id, 'refund.succeeded',
            jsonb_build_object('refund_id', r.public_id,
                               'amount_minor', r.amount_minor,
                               'source', r.source));
        RETURN 'succeeded';
    END IF;
    IF r.status = 'succeeded' THEN
        PERFORM pv_refund_apply(r.order_id, -r.amount_minor);
        PERFORM pv_order_event(r.order_id, 'refund.reversed',
            jsonb_build_object('refund_id', r.public_id,
                               'amount_minor', r.amount_minor,
                               'message', p_message), true);
        RETURN 'reversed';
    END IF;
    PERFORM pv_order_event(r.order_id, 'refund.failed',
        jsonb_build_object('refund_id', r.public_id,
                           'amount_minor', r.amount_minor,
                           'message', p_message));
    RETURN 'failed';
END $$;

-- A refund the provider reports that we did not make (started in its
-- dashboard), recorded once: by its reference, or, when it came first
-- as a bare amount (Stripe's charge.refunded names no refund), as the
-- reference-less row that amount made.  p_reference NULL is such a
-- bare amount: p_amount is then the charge's refunded total, and only
-- the part none of our rows explain is recorded.  The order's money
-- follows as in pv_refund_settle().  Returns the refund's id (NULL if
-- nothing was recorded) and the outcome: 'inserted', 'matched',
-- 'unchanged' or 'nothing'.
CREATE FUNCTION pv_refund_foreign(p_payment bigint, p_public_id text,
    p_reference text, p_status text, p_amount bigint,
    OUT outcome text, OUT refund_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    pay payments%ROWTYPE;
    known bigint;
    amt bigint := p_amount;
    capped bigint;
BEGIN
    SELECT * INTO pay FROM payments WHERE id = p_payment;
    PERFORM 1 FROM orders WHERE id = pay.order_id FOR UPDATE;
    IF p_reference IS NULL THEN
        SELECT coalesce(sum(amount_minor), 0) INTO known FROM refunds
         WHERE payment_id = p_payment AND status <> 'failed';
        amt := p_amount - known;
        IF amt <= 0 THEN
            outcome := 'nothing';
            RETURN;
        END IF;
    ELSE
        -- A bare amount recorded it already: give that row its name.
        SELECT id INTO refund_id FROM refunds WHERE payment_id = p_payment
           AND provider_reference IS NULL AND source = 'provider_dashboard'
           AND amount_minor = p_amount ORDER BY id LIMIT 1 FOR UPDATE;
        IF FOUND THEN
            UPDATE refunds SET provider_reference = p_reference,
                   updated_at = now() WHERE id = refund_id;
            outcome := 'matched';
            PERFORM pv_refund_settle(refund_id, p_status, p_reference, NULL);
            RETURN;
        END IF;
    END IF;
    IF amt <= 0 THEN
        outcome := 'nothing';
        RETURN;
    END IF;
    INSERT INTO refunds (public_id, order_id, merchant_id, payment_id,
        source, amount_minor, currency, provider, provider_reference,
        reason)
    SELECT p_public_id, pay.order_id, pay.merchant_id, pay.id,
        'provider_dashboard', amt, pay.currency, pay.provider, p_reference,
        'refunded in the provider''s dashboard'
    RETURNING id INTO refund_id;
    PERFORM pv_order_event(pay.order_id, 'refund.created',
        jsonb_build_object('refund_id', p_public_id, 'amount_minor', amt,
                           'source', 'provider_dashboard'));
    -- Money the order cannot take (more than its total) is a human's.
    SELECT total_minor - refunded_minor INTO capped FROM orders
     WHERE id = pay.order_id;
    IF p_status = 'succeeded' AND amt > capped THEN
        UPDATE refunds SET status = 'failed', failure_message =
               'exceeds the order total: flagged', updated_at = now()
         WHERE id = refund_id;
        PERFORM pv_order_event(pay.order_id, 'refund.unexplained',
            jsonb_build_object('refund_id', p_public_id, 'amount_minor', amt),
            true);
        outcome := 'flagged';
        RETURN;
    END IF;
    PERFORM pv_refund_settle(refund_id, p_status, p_reference, NULL);
    outcome := 'inserted';
END $$;
