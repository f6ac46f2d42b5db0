-- The durable job queue (issue 6): an outbox that a state change writes
-- in its own transaction (pv_job_enqueue), worked by pivota-worker.
-- Delivery is at least once: a worker claims a due job by leasing it
-- (state 'running', locked_until), runs the handler outside any
-- transaction and then marks it done or reschedules it with backoff.
-- A worker that dies leaves its lease to expire, and the job is claimed
-- again.  lib/pv_job.c holds the statements these indexes serve.
CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    -- Which handler runs it: "area.verb", e.g. "maintenance.prune".
    kind         text NOT NULL CHECK (length(kind) <= 64
                 AND kind ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    payload      jsonb NOT NULL DEFAULT '{}'
                 CHECK (jsonb_typeof(payload) = 'object'),
    -- The event a job stands for: a second enqueue of the same key is
    -- ignored, for as long as the row exists (done jobs are pruned
    -- after 7 days).  NULL: no deduplication.
    dedup_key    text UNIQUE CHECK (length(dedup_key) BETWEEN 1 AND 255),
    state        text NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'done', 'dead')),
    -- Claims so far (the one running included); also the fencing token
    -- that stops a worker whose lease expired from finishing a job that
    -- another worker has taken over.
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts integer NOT NULL DEFAULT 20
                 CHECK (max_attempts BETWEEN 1 AND 1000),
    -- Queued: not before this.  Done or dead: unchanged since the end.
    run_at       timestamptz NOT NULL DEFAULT now(),
    locked_by    text CHECK (length(locked_by) <= 200),
    locked_until timestamptz,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- Exactly the running jobs hold a lease.
    CHECK ((state = 'running') = (locked_until IS NOT NULL))
) WITH (autovacuum_vacuum_scale_factor = 0.02);

-- The claim: the oldest due queued job, and expired leases.  The idle
-- worker's "when is the next one due" reads the first entry of each.
CREATE INDEX jobs_queued ON jobs (run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_running ON jobs (locked_until) WHERE state = 'running';
-- pivotactl jobs list --state dead, jobs retry --all-dead, and pruning.
CREATE INDEX jobs_dead ON jobs (id) WHERE state = 'dead';
CREATE INDEX jobs_done ON jobs (updated_at) WHERE state = 'done';
