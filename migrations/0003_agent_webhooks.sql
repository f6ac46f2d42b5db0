-- Outbound webhook endpoints registered by agents (API.md §4).  The
-- signing secret must be usable to sign, so it is sealed with the
-- master key (AES-256-GCM, bound to the endpoint id), never stored
-- in the clear.
CREATE TABLE agent_webhooks (
    id            bigserial PRIMARY KEY,
    public_id     text NOT NULL UNIQUE CHECK (public_id ~ '^wh_[0-9a-f]{16}$'),
    agent_id      bigint NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    url           text NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    events        text[] NOT NULL,
    secret_sealed text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE INDEX agent_webhooks_agent ON agent_webhooks (agent_id)
    WHERE deleted_at IS NULL;

-- Orders recorded in usage events, for analytics by day.
CREATE INDEX usage_events_orders ON usage_events (agent_id, at)
    WHERE order_id IS NOT NULL;
