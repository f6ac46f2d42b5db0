-- Agents a merchant has blocked (issue 8, the dashboard's agents page).
-- agent_merchants is the agent's own allow-list (no rows = every
-- merchant); this is the merchant's side: a row stops that agent
-- buying from that merchant whatever its allow-list says.  Honoured by
-- the agent API's merchant scope: product search and lookup
-- (lib/pv_products_sql.h) and quotes and order creation (lib/pv_cart.c).

CREATE TABLE merchant_agent_blocks (
    merchant_id bigint NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
    agent_id    bigint NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    blocked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, agent_id)
);
-- The scope asks "which merchants blocked this agent".
CREATE INDEX merchant_agent_blocks_agent ON merchant_agent_blocks (agent_id);
