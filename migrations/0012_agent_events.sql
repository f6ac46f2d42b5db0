-- The agent-facing event stream (API.md §4, issue 6): the order events
-- an agent may see, each with an evt_ id and a per-order sequence
-- number, and one delivery job per subscribed webhook endpoint.  Both
-- are written by a trigger on order_events, so they commit in the same
-- transaction as the state change that caused them: no change without
-- its event, no event without its deliveries.
--
-- Mapping from order_events.type (migration 0009) to agent events:
--   order.created, order.paid, order.payment_failed, order.processing,
--   order.shipped, order.delivered, order.cancelled, order.refunded
--                               -> the same type
--   order.partially_refunded    -> order.refunded, detail.is_partial true
--   payment.*, fulfillment.*    -> nothing: the status change they come
--                                  with (if any) is the agent's event, so
--                                  one change is never announced twice.
--
-- The Order snapshot is not stored: it is built by pv_order_json() when
-- the event is delivered or pulled, so it is the order as it is then
-- (type and seq say what happened; the snapshot may already show later
-- changes).  docs/api.md documents this.

CREATE TABLE agent_events (
    id         bigserial PRIMARY KEY,
    public_id  text NOT NULL UNIQUE CHECK (public_id ~ '^evt_[0-9a-f]{32}$'),
    agent_id   bigint NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    order_id   bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    -- 1, 2, 3, ... per order without gaps (a gap means a missed event);
    -- assigned under the order's row lock, which every change holds.
    seq        integer NOT NULL CHECK (seq >= 1),
    type       text NOT NULL CHECK (type IN ('order.created', 'order.paid',
               'order.payment_failed', 'order.processing', 'order.shipped',
               'order.delivered', 'order.cancelled', 'order.refunded')),
    detail     jsonb NOT NULL DEFAULT '{}'
               CHECK (jsonb_typeof(detail) = 'object'),
    -- The pull cursor's order (GET /agent/v1/events): the writing
    -- transaction's id, raised to the order's previous event's pos so
    -- an order's events never go backwards.  Only events whose pos is
    -- below the oldest running transaction are served, so an event
    -- that commits later always sorts after every event already served.
    pos        bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, seq)
);
CREATE INDEX agent_events_feed ON agent_events (agent_id, pos, id);

-- Delivery attempts span days: see docs/api.md for the arithmetic.
CREATE FUNCTION pv_agent_webhook_attempts() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 200 $$;

-- The job's dedup key: one delivery of one event to one endpoint.
CREATE FUNCTION pv_agent_webhook_key(p_event text, p_webhook text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 'agent.webhook:' || p_event || ':' || p_webhook $$;

CREATE FUNCTION agent_events_from_order_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t text;
    d jsonb := '{}';
    o record;
    prev record;
    ev agent_events%ROWTYPE;
    n integer;
BEGIN
    IF NEW.type IN ('order.created', 'order.paid', 'order.payment_failed',
            'order.processing', 'order.shipped', 'order.delivered',
            'order.cancelled', 'order.refunded') THEN
        t := NEW.type;
    ELSIF NEW.type = 'order.partially_refunded' THEN
        t := 'order.refunded';
    ELSE
        RETURN NULL;
    END IF;
    IF t = 'order.refunded' THEN
        d := jsonb_build_object('is_partial',
            NEW.type = 'order.partially_refunded');
    END IF;
    SELECT agent_id INTO o FROM orders WHERE id = NEW.order_id;
    SELECT seq, pos INTO prev FROM agent_events
     WHERE order_id = NEW.order_id ORDER BY seq DESC LIMIT 1;
    INSERT INTO agent_events (public_id, agent_id, order_id, seq, type,
        detail, pos)
    VALUES ('evt_' || replace(gen_random_uuid()::text, '-', ''),
        o.agent_id, NEW.order_id, coalesce(prev.seq, 0) + 1, t, d,
        greatest(pg_current_xact_id()::text::bigint, coalesce(prev.pos, 0)))
    RETURNING * INTO ev;
    INSERT INTO jobs (kind, payload, dedup_key, max_attempts)
    SELECT 'agent.webhook',
           jsonb_build_object('event', ev.public_id, 'webhook', w.public_id),
           pv_agent_webhook_key(ev.public_id, w.public_id),
           pv_agent_webhook_attempts()
      FROM agent_webhooks w
     WHERE w.agent_id = ev.agent_id AND w.deleted_at IS NULL
       AND ev.type = ANY (w.events)
     ORDER BY w.id
    ON CONFLICT (dedup_key) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('pv_jobs', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER order_events_to_agent AFTER INSERT ON order_events
    FOR EACH ROW EXECUTE FUNCTION agent_events_from_order_event();
