-- Customer and merchant e-mail (issue 11): per-merchant settings, a log
-- of every mail an order event produced, and the trigger that queues
-- them.  An order event that calls for mail (order.paid,
-- fulfillment.shipped, order.refunded, order.partially_refunded) writes
-- one mail_log row per recipient and one "mail.send" job per row, in
-- the transaction that changed the order: the mail exists exactly when
-- the change committed, and a mail is never queued twice for one event
-- (the log's unique key and the job's dedup key).  lib/pv_mail.c sends
-- them; docs/mail.md tells the whole story.

-- What a merchant wants mailed.  No row: the defaults.
--   notify_merchant   a new-order notice to the merchant's address
--   notify_customers  'auto': customer mail unless a store platform
--                     that sends its own receipts (a live Shopify
--                     connection) is connected; 'always'; 'never'
CREATE TABLE merchant_mail_settings (
    merchant_id      bigint PRIMARY KEY REFERENCES merchants (id)
                     ON DELETE CASCADE,
    notify_merchant  boolean NOT NULL DEFAULT true,
    notify_customers text NOT NULL DEFAULT 'auto'
                     CHECK (notify_customers IN ('auto', 'always', 'never')),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per mail: which event of which order produced it, with which
-- template, to whom.  token is the local part of the Message-ID
-- ("<token@mail-domain>"), fixed when the mail is queued so that every
-- try sends the same id; created_at is its Date.  detail is what the
-- order looked like at the event (refunded amount, tracking).
-- state: queued -> sending (a try began: the relay may have it) ->
-- sent, or failed (given up: the job is dead, the order flagged).
CREATE TABLE mail_log (
    id          bigserial PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    event_seq   integer NOT NULL,
    template    text NOT NULL CHECK (template ~ '^[a-z_]{1,64}$'),
    recipient   text NOT NULL CHECK (recipient IN ('customer', 'merchant')),
    to_addr     citext NOT NULL CHECK (length(to_addr) BETWEEN 3 AND 254),
    token       text NOT NULL UNIQUE CHECK (token ~ '^[0-9a-z._]{16,80}$'),
    detail      jsonb NOT NULL DEFAULT '{}',
    state       text NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    tries       integer NOT NULL DEFAULT 0 CHECK (tries >= 0),
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    UNIQUE (order_id, event_seq, template, recipient),
    FOREIGN KEY (order_id, event_seq) REFERENCES order_events (order_id, seq)
        ON DELETE CASCADE
);

-- Queues one mail and its job unless this event already has it.
CREATE FUNCTION pv_mail_queue(p_order bigint, p_seq integer, p_public text,
    p_template text, p_recipient text, p_to text, p_detail jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    mid bigint;
BEGIN
    INSERT INTO mail_log (order_id, event_seq, template, recipient, to_addr,
        token, detail)
    VALUES (p_order, p_seq, p_template, p_recipient, p_to,
        replace(gen_random_uuid()::text, '-', '') || '.'
            || lower(p_public), p_detail)
    ON CONFLICT (order_id, event_seq, template, recipient) DO NOTHING
    RETURNING id INTO mid;
    IF mid IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO jobs (kind, payload, dedup_key)
    VALUES ('mail.send', jsonb_build_object('mail_id', mid::text),
        'mail.send:' || p_order || ':' || p_seq || ':' || p_template || ':'
            || p_recipient)
    ON CONFLICT (dedup_key) DO NOTHING;
    PERFORM pg_notify('pv_jobs', '');
END $$;

-- The mails an order event calls for.  A separate trigger from any
-- other on order_events (agent webhooks add their own), so each can
-- change without the other.
CREATE FUNCTION pv_mail_on_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tmpl text;
    o record;
    st record;
    customers boolean;
    detail jsonb;
BEGIN
    tmpl := CASE NEW.type
        WHEN 'order.paid' THEN 'order_confirmation'
        WHEN 'fulfillment.shipped' THEN 'shipping_confirmation'
        WHEN 'order.refunded' THEN 'refund_confirmation'
        WHEN 'order.partially_refunded' THEN 'refund_confirmation'
        END;
    IF tmpl IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT od.public_id, od.merchant_id, od.customer_email,
           od.refunded_minor, od.carrier, od.tracking_number,
           od.tracking_url, m.email AS merchant_email
      INTO o FROM orders od JOIN merchants m ON m.id = od.merchant_id
     WHERE od.id = NEW.order_id;
    SELECT coalesce(s.notify_merchant, true) AS notify_merchant,
           coalesce(s.notify_customers, 'auto') AS notify_customers
      INTO st FROM (SELECT 1) one
      LEFT JOIN merchant_mail_settings s ON s.merchant_id = o.merchant_id;
    customers := CASE st.notify_customers
        WHEN 'always' THEN true
        WHEN 'never' THEN false
        ELSE NOT EXISTS (SELECT 1 FROM merchant_shopify
                          WHERE merchant_id = o.merchant_id
                            AND disconnected_at IS NULL)
        END;
    detail := jsonb_strip_nulls(jsonb_build_object(
        'event', NEW.type, 'refunded_minor', o.refunded_minor,
        'carrier', o.carrier, 'tracking_number', o.tracking_number,
        'tracking_url', o.tracking_url));
    IF customers THEN
        PERFORM pv_mail_queue(NEW.order_id, NEW.seq, o.public_id, tmpl,
            'customer', o.customer_email, detail);
    END IF;
    IF NEW.type = 'order.paid' AND st.notify_merchant THEN
        PERFORM pv_mail_queue(NEW.order_id, NEW.seq, o.public_id,
            'merchant_new_order', 'merchant', o.merchant_email, detail);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER order_events_mail AFTER INSERT ON order_events
    FOR EACH ROW EXECUTE FUNCTION pv_mail_on_event();

-- The mails of an order, for pivotactl and the dashboard.
CREATE INDEX mail_log_order ON mail_log (order_id, id);
