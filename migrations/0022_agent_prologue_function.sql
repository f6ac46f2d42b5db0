-- The agent request prologue as one PL/pgSQL function (lib/pv_agent.h):
-- the key's agent, then its counters.  Compared with the single CTE
-- statement it replaces, the function's statements are planned once per
-- session and are each small, and the agent's agent_rate row is updated
-- last, so its row lock (which every request of one agent queues on) is
-- held for the update and the commit only.  Usage events no longer ride
-- in this statement: processes write them in batches
-- (pv_agent_record); see docs/performance.md for the measurements.
--
-- Returns no row for an unknown, revoked or expired key.  For a
-- suspended agent, the counter columns are NULL and nothing is counted.
-- Otherwise the minute window and the UTC day advance: every request
-- counts in the minute, and only the requests the minute limit lets
-- through count against the daily quota.
--
-- The caller runs it as its own statement outside any transaction
-- block: it turns synchronous_commit off for the transaction it is in,
-- so counters never wait for a disk flush.
CREATE FUNCTION pv_agent_prologue(p_key_hash bytea,
    OUT id bigint, OUT public_id text, OUT name text, OUT status text,
    OUT per_minute_limit integer, OUT daily_quota integer,
    OUT minute_count integer, OUT day_count integer,
    OUT minute_reset bigint, OUT day_reset bigint,
    OUT restricted boolean)
RETURNS SETOF record
LANGUAGE plpgsql AS $$
DECLARE
    v_minute timestamptz := date_trunc('minute', now());
    v_day date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT a.id, a.public_id, a.name, a.status, a.per_minute_limit,
           a.daily_quota,
           EXISTS (SELECT 1 FROM agent_merchants m WHERE m.agent_id = a.id)
      INTO id, public_id, name, status, per_minute_limit, daily_quota,
           restricted
      FROM api_keys k JOIN agents a ON a.id = k.agent_id
     WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL
       AND (k.expires_at IS NULL OR k.expires_at > now());
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF status = 'active' THEN
        UPDATE agent_rate AS r SET
            minute_count = CASE WHEN r.minute_start = v_minute
                THEN r.minute_count + 1 ELSE 1 END,
            minute_start = v_minute,
            day_count = CASE WHEN r.day_start = v_day
                THEN r.day_count ELSE 0 END
              + CASE WHEN (CASE WHEN r.minute_start = v_minute
                    THEN r.minute_count + 1 ELSE 1 END)
                    <= pv_agent_prologue.per_minute_limit
                THEN 1 ELSE 0 END,
            day_start = v_day
         WHERE r.agent_id = pv_agent_prologue.id
        RETURNING r.minute_count, r.day_count
             INTO minute_count, day_count;
        IF FOUND THEN
            minute_reset := extract(epoch FROM v_minute)::bigint + 60;
            day_reset := extract(epoch FROM (v_day + 1)::timestamp
                                 AT TIME ZONE 'UTC')::bigint;
        END IF;
    END IF;
    RETURN NEXT;
END $$;
