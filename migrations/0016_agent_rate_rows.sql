-- Every agent has its agent_rate row from birth, so the request
-- prologue advances the counters with a plain UPDATE of one row instead
-- of an INSERT ... ON CONFLICT DO UPDATE, whose speculative insertion
-- cost more than the rest of the statement (docs/performance.md).
INSERT INTO agent_rate (agent_id, minute_start, minute_count, day_start,
                        day_count)
SELECT id, date_trunc('minute', now()), 0, (now() AT TIME ZONE 'UTC')::date, 0
  FROM agents
ON CONFLICT (agent_id) DO NOTHING;

CREATE FUNCTION agents_rate_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO agent_rate (agent_id, minute_start, minute_count, day_start,
                            day_count)
    VALUES (NEW.id, date_trunc('minute', now()), 0,
            (now() AT TIME ZONE 'UTC')::date, 0)
    ON CONFLICT (agent_id) DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER agents_rate_row AFTER INSERT ON agents
    FOR EACH ROW EXECUTE FUNCTION agents_rate_row();
