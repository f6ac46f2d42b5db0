-- Merchants, agents, their API keys, per-agent limits, idempotency and
-- usage analytics (issue 3).  Public ids are made by the application
-- from the CSPRNG; bigint keys are for joins only and never leave the
-- database.

CREATE TABLE merchants (
    id            bigserial PRIMARY KEY,
    public_id     text NOT NULL UNIQUE CHECK (public_id ~ '^mer_[0-9a-f]{16}$'),
    business_name text NOT NULL CHECK (length(business_name) BETWEEN 1 AND 200),
    email         citext NOT NULL UNIQUE CHECK (length(email) <= 254),
    store_url     text NOT NULL DEFAULT '' CHECK (length(store_url) <= 500),
    region        text NOT NULL DEFAULT 'US' CHECK (region ~ '^[A-Z]{2}$'),
    status        text NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'suspended')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agents (
    id               bigserial PRIMARY KEY,
    public_id        text NOT NULL UNIQUE CHECK (public_id ~ '^agt_[0-9a-f]{16}$'),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status           text NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'suspended')),
    per_minute_limit integer NOT NULL DEFAULT 600
                     CHECK (per_minute_limit BETWEEN 1 AND 1000000),
    daily_quota      integer NOT NULL DEFAULT 100000
                     CHECK (daily_quota BETWEEN 1 AND 1000000000),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Merchants an agent may buy from.  No rows for an agent = all merchants.
CREATE TABLE agent_merchants (
    agent_id    bigint NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    merchant_id bigint NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
    PRIMARY KEY (agent_id, merchant_id)
);

-- Only the SHA-256 of a key is stored, with a display prefix.  A rotated
-- key keeps working until expires_at (the grace period).
CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    agent_id    bigint NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    key_hash    bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    prefix      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX api_keys_agent ON api_keys (agent_id);

-- One row per agent: the current minute window and UTC day with their
-- counts.  Updated in place by the request prologue (one upsert), so
-- the table never grows and limits hold across every process and node.
CREATE TABLE agent_rate (
    agent_id     bigint PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    minute_start timestamptz NOT NULL,
    minute_count integer NOT NULL,
    day_start    date NOT NULL,
    day_count    integer NOT NULL
) WITH (fillfactor = 50);

-- Idempotency-Key records (API.md §1), scoped to agent + method + path.
CREATE TABLE idempotency_keys (
    agent_id     bigint NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    method       text NOT NULL,
    path         text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    body_hash    bytea NOT NULL,
    state        text NOT NULL DEFAULT 'running'
                 CHECK (state IN ('running', 'done')),
    status       integer,
    content_type text,
    body         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, method, path, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Every authenticated request, written after the response is sent.
CREATE TABLE usage_events (
    id          bigserial PRIMARY KEY,
    agent_id    bigint NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    endpoint    text NOT NULL,
    method      text NOT NULL,
    status      integer NOT NULL,
    latency_us  integer NOT NULL,
    merchant_id bigint,
    order_id    text,
    gmv_minor   bigint,
    currency    text,
    request_id  text NOT NULL
);
CREATE INDEX usage_events_agent_at ON usage_events (agent_id, at);

-- The same events rolled up per agent, UTC day and endpoint, maintained
-- by the same statement, so analytics read a few rows per day.  Orders
-- and GMV are read from the orders themselves, the source of truth.
CREATE TABLE usage_daily (
    agent_id    bigint NOT NULL,
    day         date NOT NULL,
    endpoint    text NOT NULL,
    requests    bigint NOT NULL DEFAULT 0,
    errors      bigint NOT NULL DEFAULT 0,
    latency_us  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, day, endpoint)
) WITH (fillfactor = 70);
