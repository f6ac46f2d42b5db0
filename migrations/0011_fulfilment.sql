-- Fulfilment (issue 6): shipments reported by the merchant's Shopify
-- store through its webhooks (lib/pv_shopify_hooks.c), applied so that
-- an order only ever moves forward, and what the tracking endpoints
-- (lib/pv_track.c) read.  docs/shopify.md ("Inbound webhooks").
--
-- An order may have several shipments, one per Shopify fulfillment.
-- Each keeps the updated_at of the store event that last wrote it:
-- an older event (Shopify does not deliver in order) changes nothing,
-- and a shipment's status never goes back (delivered is final).  The
-- order's fulfillment_status and status follow the shipments forward
-- only, through order_transitions (0009), whose trigger appends the
-- order's events; the tracking columns of the order mirror its latest
-- shipment.

-- What a merchant wants when the store cancels an order we were paid
-- for: false (default) flags the order for a human; true also queues
-- the job refund.store_cancel {order_id} (handled by the refunds work).
ALTER TABLE merchants ADD COLUMN refund_on_store_cancel boolean NOT NULL
    DEFAULT false;

-- When the store said the whole order is fulfilled (orders/fulfilled):
-- every line shipped even if the fulfillments we saw do not add up.
ALTER TABLE orders ADD COLUMN store_fulfilled_at timestamptz;

CREATE TABLE shipments (
    id                 bigserial PRIMARY KEY,
    order_id           bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    -- The Shopify fulfillment gid (gid://shopify/Fulfillment/N).
    fulfillment_id     text NOT NULL
                       CHECK (length(fulfillment_id) BETWEEN 1 AND 255),
    name               text NOT NULL DEFAULT '' CHECK (length(name) <= 255),
    status             text NOT NULL CHECK (status IN ('in_transit',
                       'out_for_delivery', 'delivered', 'failed',
                       'cancelled')),
    carrier            text CHECK (length(carrier) <= 255),
    tracking_number    text CHECK (length(tracking_number) <= 255),
    tracking_url       text CHECK (length(tracking_url) <= 2000),
    -- Units of the order's lines in this shipment (0: not said).
    quantity           integer NOT NULL DEFAULT 0 CHECK (quantity >= 0),
    shipped_at         timestamptz NOT NULL,
    delivered_at       timestamptz,
    estimated_delivery timestamptz,
    -- updated_at of the store event that last wrote this row.
    source_updated_at  timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, fulfillment_id)
);
CREATE INDEX shipments_order ON shipments (order_id, shipped_at);

-- Orders of an agent that are on their way (the in-transit list).
CREATE INDEX orders_agent_in_transit ON orders (agent_id, shipped_at DESC)
    WHERE fulfillment_status IN ('partially_shipped', 'shipped');

-- Products the store told us about by webhook: the updated_at of the
-- newest products/update (or the time of a products/delete), so an
-- older update arriving late neither overwrites a newer one nor brings
-- a deleted product back.
CREATE TABLE shopify_product_marks (
    merchant_id bigint NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
    product_gid text NOT NULL CHECK (length(product_gid) BETWEEN 1 AND 255),
    updated_at  timestamptz NOT NULL,
    deleted     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (merchant_id, product_gid)
);

-- Text as a timestamp, or NULL when it is not one (store input).
CREATE FUNCTION pv_try_ts(p text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p IS NULL OR length(p) > 64 THEN
        RETURN NULL;
    END IF;
    RETURN p::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

-- How far a shipment has come; a status never moves to a lower rank
-- (a failed delivery may be retried out for delivery, or delivered).
CREATE FUNCTION pv_shipment_rank(s text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE s WHEN 'in_transit' THEN 1 WHEN 'failed' THEN 2
    WHEN 'out_for_delivery' THEN 2 WHEN 'delivered' THEN 3
    WHEN 'cancelled' THEN 3 ELSE 0 END $$;

-- Moves the order's fulfillment_status and status as far forward as
-- its shipments say (never back), one allowed transition at a time,
-- and mirrors the latest live shipment into the tracking columns.
-- p_reason goes into the events the trigger appends.  Returns the
-- fulfillment_status after.
CREATE FUNCTION pv_order_follow_shipments(p_order bigint, p_reason text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    o orders%ROWTYPE;
    live integer;
    delivered integer;
    failed integer;
    shipped_qty bigint;
    ordered_qty bigint;
    target text;
    latest shipments%ROWTYPE;
    step text;
    rank_of jsonb := '{"unfulfilled": 0, "processing": 0,
        "partially_shipped": 1, "failed": 1, "shipped": 2, "delivered": 3}';
BEGIN
    SELECT * INTO o FROM orders WHERE id = p_order FOR UPDATE;
    SELECT count(*), count(*) FILTER (WHERE status = 'delivered'),
           count(*) FILTER (WHERE status = 'failed'),
           coalesce(sum(quantity), 0)
      INTO live, delivered, failed, shipped_qty
      FROM shipments WHERE order_id = p_order AND status <> 'cancelled';
    SELECT coalesce(sum(quantity), 0) INTO ordered_qty FROM order_items
     WHERE order_id = p_order;
    IF live = 0 THEN
        target := CASE WHEN o.store_fulfilled_at IS NOT NULL
                       THEN 'shipped' ELSE o.fulfillment_status END;
    ELSIF failed = live THEN
        target := 'failed';
    ELSIF o.store_fulfilled_at IS NULL AND shipped_qty < ordered_qty THEN
        target := 'partially_shipped';
    ELSIF delivered = live THEN
        target := 'delivered';
    ELSE
        target := 'shipped';
    END IF;

    PERFORM set_config('pivota.reason', coalesce(p_reason, ''), true);
    -- Forward only; failed is left for shipped or delivered only.
    IF target <> o.fulfillment_status AND (
           (rank_of ->> target)::int > (rank_of ->> o.fulfillment_status)::int
           OR (o.fulfillment_status = 'failed'
               AND target IN ('shipped', 'delivered'))
           OR (target = 'failed'
               AND o.fulfillment_status IN ('partially_shipped', 'shipped'))) THEN
        FOREACH step IN ARRAY CASE
                WHEN o.fulfillment_status = 'failed' AND target = 'delivered'
                    THEN ARRAY['shipped', 'delivered']
                ELSE ARRAY[target] END LOOP
            UPDATE orders SET fulfillment_status = step WHERE id = p_order;
        END LOOP;
    END IF;
    SELECT * INTO o FROM orders WHERE id = p_order;

    -- The order's own status follows a paid order's fulfilment.
    IF o.fulfillment_status IN ('partially_shipped', 'shipped')
       AND o.status IN ('paid', 'processing') THEN
        UPDATE orders SET status = 'shipped' WHERE id = p_order;
    ELSIF o.fulfillment_status = 'delivered'
       AND o.status IN ('paid', 'processing', 'shipped') THEN
        UPDATE orders SET status = 'delivered' WHERE id = p_order;
    END IF;
    PERFORM set_config('pivota.reason', '', true);

    SELECT * INTO latest FROM shipments
     WHERE order_id = p_order AND status <> 'cancelled'
     ORDER BY shipped_at DESC, id DESC LIMIT 1;
    UPDATE orders SET
        tracking_number = latest.tracking_number,
        carrier = latest.carrier,
        tracking_url = latest.tracking_url,
        shipped_at = (SELECT min(shipped_at) FROM shipments
                       WHERE order_id = p_order AND status <> 'cancelled'),
        delivered_at = CASE WHEN o.fulfillment_status = 'delivered'
            THEN coalesce(o.delivered_at, (SELECT max(delivered_at)
                FROM shipments WHERE order_id = p_order
                AND status = 'delivered'), now()) END
     WHERE id = p_order AND latest.id IS NOT NULL
       AND (tracking_number, carrier, tracking_url, shipped_at, delivered_at)
           IS DISTINCT FROM (latest.tracking_number, latest.carrier,
               latest.tracking_url, (SELECT min(shipped_at) FROM shipments
                   WHERE order_id = p_order AND status <> 'cancelled'),
               CASE WHEN o.fulfillment_status = 'delivered'
                   THEN coalesce(o.delivered_at, (SELECT max(delivered_at)
                       FROM shipments WHERE order_id = p_order
                       AND status = 'delivered'), now()) END);
    RETURN o.fulfillment_status;
END $$;

-- Records one Shopify fulfillment of an order (fulfillments/create,
-- fulfillments/update, or one of orders/fulfilled's fulfillments) and
-- moves the order after it.  An event older than the stored one
-- changes nothing ('stale'); one as old changes only a status that
-- moves forward; a status never goes back (delivered stays delivered),
-- though newer tracking details are taken.  Appends a shipment.created
-- or shipment.updated event when the shipment changed (flagged when
-- the order was never paid or was cancelled).  Returns
-- 'created', 'updated', 'unchanged' or 'stale'.
CREATE FUNCTION pv_shipment_apply(p_order bigint, p_fulfillment text,
    p_name text, p_status text, p_carrier text, p_number text, p_url text,
    p_quantity integer, p_created_at timestamptz, p_updated_at timestamptz,
    p_estimated timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    s shipments%ROWTYPE;
    st text := p_status;
    verdict text;
    ostatus text;
BEGIN
    -- One writer per order at a time: the lock orders concurrent
    -- deliveries of events about its shipments.
    SELECT status INTO ostatus FROM orders WHERE id = p_order FOR UPDATE;
    SELECT * INTO s FROM shipments
     WHERE order_id = p_order AND fulfillment_id = p_fulfillment FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO shipments (order_id, fulfillment_id, name, status,
            carrier, tracking_number, tracking_url, quantity, shipped_at,
            delivered_at, estimated_delivery, source_updated_at)
        VALUES (p_order, p_fulfillment, coalesce(p_name, ''), st,
            p_carrier, p_number, p_url, coalesce(p_quantity, 0),
            coalesce(p_created_at, p_updated_at, now()),
            CASE WHEN st = 'delivered' THEN coalesce(p_updated_at, now()) END,
            p_estimated, coalesce(p_updated_at, p_created_at, now()))
        RETURNING * INTO s;
        verdict := 'created';
    ELSIF p_updated_at IS NULL OR p_updated_at < s.source_updated_at
          OR (p_updated_at = s.source_updated_at
              AND pv_shipment_rank(st) <= pv_shipment_rank(s.status)) THEN
        RETURN 'stale';
    ELSE
        -- Never back: a lower rank keeps the stored status.
        IF pv_shipment_rank(st) < pv_shipment_rank(s.status)
           OR s.status IN ('delivered', 'cancelled') THEN
            st := s.status;
        END IF;
        UPDATE shipments SET status = st,
            name = coalesce(nullif(p_name, ''), name),
            carrier = coalesce(p_carrier, carrier),
            tracking_number = coalesce(p_number, tracking_number),
            tracking_url = coalesce(p_url, tracking_url),
            quantity = greatest(coalesce(p_quantity, 0), quantity),
            delivered_at = CASE WHEN st = 'delivered'
                THEN coalesce(delivered_at, p_updated_at) END,
            estimated_delivery = coalesce(p_estimated, estimated_delivery),
            source_updated_at = p_updated_at, updated_at = now()
         WHERE id = s.id
           AND (status, name, carrier, tracking_number, tracking_url,
                quantity, estimated_delivery)
               IS DISTINCT FROM (st, coalesce(nullif(p_name, ''), name),
                coalesce(p_carrier, carrier),
                coalesce(p_number, tracking_number),
                coalesce(p_url, tracking_url),
                greatest(coalesce(p_quantity, 0), quantity),
                coalesce(p_estimated, estimated_delivery))
        RETURNING * INTO s;
        IF NOT FOUND THEN
            UPDATE shipments SET source_updated_at = p_updated_at
             WHERE order_id = p_order AND fulfillment_id = p_fulfillment;
            RETURN 'unchanged';
        END IF;
        verdict := 'updated';
    END IF;
    PERFORM pv_order_event(p_order, 'shipment.' || verdict,
        jsonb_strip_nulls(jsonb_build_object('fulfillment_id',
            s.fulfillment_id, 'status', s.status, 'carrier', s.carrier,
            'tracking_number', s.tracking_number, 'tracking_url',
            s.tracking_url, 'at', pv_ts(s.source_updated_at))),
        -- The store shipped an order we were not paid for: look at it.
        ostatus IN ('pending', 'payment_failed', 'cancelled'));
    PERFORM pv_order_follow_shipments(p_order, 'store fulfillment ' ||
        s.fulfillment_id);
    RETURN verdict;
END $$;
