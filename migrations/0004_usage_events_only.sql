-- Usage is recorded by appending to usage_events only.  The per-day
-- roll-up of 0002 updated one row per agent and endpoint on every
-- request; under load that row serialised all of an agent's requests.
-- Analytics read usage_events through an index that covers them.
DROP TABLE usage_daily;
DROP INDEX usage_events_agent_at;
CREATE INDEX usage_events_agent_at ON usage_events (agent_id, at)
    INCLUDE (endpoint, status, latency_us);
