#ifndef PV_JOB_H
#define PV_JOB_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "pv_err.h"
#include "pv_http.h"

/*
 * The durable job queue (the outbox of migrations/0005_jobs.sql).
 *
 * A state change that must be followed by work elsewhere (push an order
 * to Shopify, sync a catalog, deliver an agent webhook) enqueues a job
 * in the same transaction, so the job exists exactly when the change
 * committed.  pivota-worker claims due jobs, runs the handler for their
 * kind and records the outcome.  Any number of workers may run against
 * one database: a claim takes one job with FOR UPDATE SKIP LOCKED and
 * leases it to the worker for opts->lease_s seconds.
 *
 * The contract for handlers:
 *
 *   - Delivery is at least once.  A handler runs outside any queue
 *     transaction, and a worker may die (or lose its lease) after the
 *     handler's effects happened but before the job was marked done;
 *     the job then runs again.  So every handler must tolerate re-runs:
 *     write with upserts or "already done?" checks, and make outside
 *     calls idempotent (an idempotency key, or look up before create,
 *     as the Shopify order push does with its tag).
 *   - Events enqueue at most one job when they pass a dedup key (the
 *     webhook's event id, "order.push:<order id>", ...).  The key is
 *     remembered as long as the job row exists: done jobs are pruned
 *     after PV_JOB_KEEP_DONE_DAYS.
 *   - A handler returns 0 when the job is done, -1 with err set to try
 *     again later (err->retry_after, if set, is the least delay in
 *     seconds, e.g. from a Retry-After header), or PV_JOB_PERMANENT
 *     with err set when retrying cannot help (the job goes dead at
 *     once).  After max_attempts failures the job is dead: it stays in
 *     the table with its last error until an operator runs `pivotactl
 *     jobs retry`.
 *   - Retries back off exponentially with full jitter: the delay after
 *     the n-th failure is uniform in [0, min(cap, base * 2^(n-1))],
 *     and at least err->retry_after.  With the defaults (2 s, 1 h, 20
 *     attempts) a job that keeps failing goes dead about 4.6 hours
 *     (at most 9.1 h) after its first failure; a kind that must keep
 *     trying for days (agent webhooks) passes more attempts to
 *     pv_job_enqueue_max(): 100 attempts last about 2 days.
 *   - A handler must finish within the lease, or extend it with
 *     pv_job_touch() as it goes; otherwise another worker takes the job
 *     over and this worker's outcome is discarded.  It must not leave a
 *     transaction open.  It may allocate from ctx->arena, which the
 *     worker resets after each job; it must not reset it (the job
 *     itself lives there).
 */

/* Defaults of struct pv_job_opts (pv_job_opts_init()). */
#define PV_JOB_LEASE_S         300     /* a claim is held this long */
#define PV_JOB_BACKOFF_BASE_MS 2000    /* first retry within 2 s */
#define PV_JOB_BACKOFF_CAP_MS  3600000 /* no retry waits over an hour */
#define PV_JOB_IDLE_MS         15000   /* longest idle sleep (NOTIFY aside) */
#define PV_JOB_MAX_ATTEMPTS    20      /* the column default, too */
#define PV_JOB_KEEP_DONE_DAYS  7       /* maintenance.prune keeps these */
#define PV_JOB_KEEP_DEAD_DAYS  90      /* and these */

/* A handler's answer when retrying cannot help: the job goes dead. */
#define PV_JOB_PERMANENT (-2)

/* The NOTIFY channel an enqueue signals and idle workers LISTEN on. */
#define PV_JOB_CHANNEL "pv_jobs"

struct json_object;

/* A claimed job, as a handler sees it.  Strings live in ctx->arena. */
struct pv_job {
	int64_t id;               /* jobs.id */
	const char *kind;         /* e.g. "maintenance.prune" */
	const char *payload;      /* the payload as JSON text */
	struct json_object *args; /* payload parsed by pv_job_run_once */
	const char *dedup_key;    /* or NULL */
	int attempt;              /* 1 on the first run */
	int max_attempts;         /* dead after this many failures */
	const char *worker;       /* locked_by: who holds the lease */
	const char *prev_error;   /* last_error of an earlier try, or NULL */
	int lapsed;               /* dead at claim: last lease expired */
	int lease_s;              /* seconds the claim leased it for */
};

typedef int (*pv_job_fn)(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err);

/* One row of a handler table: the worker program owns the table. */
struct pv_job_handler {
	const char *kind; /* jobs.kind it serves */
	pv_job_fn fn;     /* the handler */
};

struct pv_job_opts {
	const char *worker_id;       /* locked_by; e.g. "host:pid" */
	int lease_s;                 /* seconds a claim is held */
	int backoff_base_ms;         /* upper bound of the first retry delay */
	int backoff_cap_ms;          /* largest retry delay */
	int idle_ms;                 /* pv_job_worker: longest idle sleep */
	int once;                    /* pv_job_worker: drain due jobs, return */
	volatile sig_atomic_t *stop; /* non-zero: stop after this job */
	int wake_fd; /* readable once *stop is set (self-pipe), or -1 */
};

/* Fills o with the PV_JOB_* defaults, worker_id "worker", no stop. */
void pv_job_opts_init(struct pv_job_opts *o);

/*
 * Adds a job of kind ("area.verb": lowercase words joined by dots)
 * with payload (JSON object text; NULL = "{}"), due in run_after_s
 * seconds (0 = now).  Call it inside the caller's
 * transaction, so the job commits or rolls back with the change it
 * follows; workers are woken by a NOTIFY sent at commit.  If dedup_key
 * is not NULL and a job with that key exists, nothing is added and
 * 0 is returned: a repeated event is not an error, and the caller's
 * transaction stays usable.  Fails with PV_E_DB (bad kind or payload,
 * which like any failed statement aborts the caller's transaction) or
 * PV_E_UNAVAILABLE.
 */
int pv_job_enqueue(struct pv_ctx *ctx, const char *kind, const char *payload,
    const char *dedup_key, int run_after_s, struct pv_err *err);

/* Like pv_job_enqueue(), with max_attempts instead of the default. */
int pv_job_enqueue_max(struct pv_ctx *ctx, const char *kind,
    const char *payload, const char *dedup_key, int run_after_s,
    int max_attempts, struct pv_err *err);

/*
 * Claims one job, in one statement: a running job whose lease has
 * expired (its worker died), else the queued job with the oldest
 * run_at that is due; rows other workers are claiming are skipped.
 * The job becomes running, leased to opts->worker_id for
 * opts->lease_s seconds, with attempts incremented.  *got is 1 and
 * *job filled (arena strings) when a job was claimed, 0 when none is
 * due.  An expired lease on a job's last attempt makes it dead instead
 * (*got 1, job->lapsed 1: nothing to run).  Not inside a transaction.
 */
int pv_job_claim(struct pv_ctx *ctx, const struct pv_job_opts *opts,
    struct pv_job *job, int *got, struct pv_err *err);

/*
 * Marks the claimed job done.  PV_E_CONFLICT if the lease was lost
 * (another worker took the job over, or an operator changed it).
 */
int pv_job_complete(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err);

/*
 * Records a failed run of the claimed job: why->msg becomes last_error,
 * and the job is queued again after the backoff delay of opts (at
 * least why->retry_after seconds), or dead if permanent is non-zero or this
 * was its last attempt.  *delay_ms (may be NULL) gets the delay, or -1
 * when the job went dead.  PV_E_CONFLICT if the lease was lost.
 */
int pv_job_fail(struct pv_ctx *ctx, const struct pv_job *job,
    const struct pv_job_opts *opts, const struct pv_err *why, int permanent,
    long *delay_ms, struct pv_err *err);

/*
 * Extends the lease of the claimed job to lease_s seconds from now, for
 * handlers that run long.  PV_E_CONFLICT if the lease was already lost:
 * the handler should stop.
 */
int pv_job_touch(struct pv_ctx *ctx, const struct pv_job *job, int lease_s,
    struct pv_err *err);

/*
 * Puts dead jobs back in the queue, due now, with their attempts reset
 * (last_error is kept): job id (decimal text), or every dead job when
 * id is NULL.  *n gets how many.  A job that is not dead is
 * PV_E_CONFLICT, an unknown id PV_E_NOTFOUND.
 */
int pv_job_retry(struct pv_ctx *ctx, const char *id, long *n,
    struct pv_err *err);

/*
 * The backoff delay in ms after failed attempt number attempt (1 on the
 * first failure) for a uniform random r: full jitter over
 * [0, min(cap_ms, base_ms * 2^(attempt-1))].
 */
long pv_job_backoff_ms(int attempt, int base_ms, int cap_ms, uint32_t r);

/*
 * Claims one due job and runs the handler for its kind from handlers[n]
 * (outside any transaction), then marks it done, queues it again with
 * backoff or makes it dead; logs one line per job.  A kind without a
 * handler fails like a handler would (another worker may know it).
 * *did_work is 1 if a job was claimed, 0 if none was due.  Returns -1
 * only when the queue itself failed (the database); a failed handler is
 * an outcome, not an error.  Allocates from ctx->arena: the caller
 * resets it.
 */
int pv_job_run_once(struct pv_ctx *ctx, const struct pv_job_handler *handlers,
    size_t n, const struct pv_job_opts *opts, int *did_work,
    struct pv_err *err);

/*
 * The worker loop: runs due jobs until none is left, then sleeps until
 * the next job is due, a NOTIFY on PV_JOB_CHANNEL says one was
 * enqueued, or opts->idle_ms passed (a notification can be lost when
 * the connection drops), whichever comes first.  Stops after the
 * current job once *opts->stop is set.  With opts->once it returns as
 * soon as no job is due (cron mode).  Database failures are logged and
 * retried after a pause (in once mode they end the run).  Returns 0, or
 * -1 with err set if a once run failed.
 */
int pv_job_worker(struct pv_ctx *ctx, const struct pv_job_handler *handlers,
    size_t n, const struct pv_job_opts *opts, struct pv_err *err);

#endif /* PV_JOB_H */
