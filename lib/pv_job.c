/*
 * The job queue: enqueue inside the caller's transaction, claim with a
 * lease (one statement, FOR UPDATE SKIP LOCKED), finish or back off,
 * and the worker loop that sleeps on LISTEN/NOTIFY.  See pv_job.h for
 * the contract handlers follow and migrations/0005_jobs.sql for the
 * table.  Every statement that ends a claim checks the fencing token
 * (id, attempts, locked_by), so a worker that lost its lease cannot
 * overwrite the outcome of the worker that took the job over.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_job.h"
#include "pv_json.h"
#include "pv_log.h"
#include "pv_valid.h"

#define REST_MS     2000 /* pause after a database failure in the loop */
#define MIN_IDLE_MS 25   /* shortest idle sleep: no spinning on a lock */

/*
 * The claim.  The two sub-selects are InitPlans evaluated lazily, so
 * the queued one only runs when no lease has expired; each walks its
 * partial index (jobs_running, jobs_queued) and stops at the first row
 * it can lock.  A job whose lease expired on its last attempt becomes
 * dead instead of running again: a job that kills its worker every
 * time must not do so forever.
 */
#define CLAIM_SQL \
	PV_SQL("UPDATE jobs j SET" \
	       " state = CASE WHEN j.state = 'running'" \
	       "  AND j.attempts >= j.max_attempts THEN 'dead'" \
	       "  ELSE 'running' END," \
	       " attempts = CASE WHEN j.state = 'running'" \
	       "  AND j.attempts >= j.max_attempts THEN j.attempts" \
	       "  ELSE j.attempts + 1 END," \
	       " locked_by = CASE WHEN j.state = 'running'" \
	       "  AND j.attempts >= j.max_attempts THEN j.locked_by" \
	       "  ELSE $1 END," \
	       " locked_until = CASE WHEN j.state = 'running'" \
	       "  AND j.attempts >= j.max_attempts THEN NULL" \
	       "  ELSE now() + make_interval(secs => $2::int) END," \
	       " last_error = CASE WHEN j.state = 'running'" \
	       "  THEN 'lease of ' || j.locked_by || ' expired on attempt '" \
	       "  || j.attempts ELSE j.last_error END," \
	       " updated_at = now()" \
	       " FROM (SELECT coalesce(" \
	       "  (SELECT id FROM jobs" \
	       "   WHERE state = 'running' AND locked_until <= now()" \
	       "   ORDER BY locked_until LIMIT 1 FOR UPDATE SKIP LOCKED)," \
	       "  (SELECT id FROM jobs" \
	       "   WHERE state = 'queued' AND run_at <= now()" \
	       "   ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)" \
	       " ) AS id) next" \
	       " WHERE j.id = next.id" \
	       " RETURNING j.id, j.kind, j.payload::text, j.dedup_key," \
	       "  j.attempts, j.max_attempts, j.locked_by, j.state = 'dead'," \
	       "  j.last_error")

/* Sets the PV_JOB_* defaults; see pv_job.h. */
void
pv_job_opts_init(struct pv_job_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->worker_id = "worker";
	o->lease_s = PV_JOB_LEASE_S;
	o->backoff_base_ms = PV_JOB_BACKOFF_BASE_MS;
	o->backoff_cap_ms = PV_JOB_BACKOFF_CAP_MS;
	o->idle_ms = PV_JOB_IDLE_MS;
	o->stop = NULL;
	o->wake_fd = -1;
}

/* Formats v into buf (a local array); PV_E_INTERNAL if it cannot. */
static int
fmt_long(char *buf, size_t size, long v, struct pv_err *err)
{
	int n = snprintf(buf, size, "%ld", v);

	if (n < 0 || (size_t)n >= size) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "number does not fit");
		return -1;
	}
	return 0;
}

/*
 * Adds a job unless its dedup key exists (ON CONFLICT DO NOTHING keeps
 * the caller's transaction usable), and signals idle workers: the
 * NOTIFY is delivered when the caller commits, and not at all if it
 * rolls back.  Returns 0 or -1 (PV_E_DB, PV_E_UNAVAILABLE).
 */
int
pv_job_enqueue_max(struct pv_ctx *ctx, const char *kind, const char *payload,
    const char *dedup_key, int run_after_s, int max_attempts,
    struct pv_err *err)
{
	char after[24], max[24];
	const char *p[5];

	if (fmt_long(after, sizeof(after), run_after_s, err) == -1 ||
	    fmt_long(max, sizeof(max),
	        max_attempts > 0 ? max_attempts : PV_JOB_MAX_ATTEMPTS,
	        err) == -1)
		return -1;
	p[0] = kind;
	p[1] = payload != NULL ? payload : "{}";
	p[2] = dedup_key;
	p[3] = after;
	p[4] = max;
	return pv_db_exec(ctx,
	    PV_SQL("WITH ins AS (INSERT INTO jobs"
	           "  (kind, payload, dedup_key, run_at, max_attempts)"
	           "  VALUES ($1, $2::jsonb, $3,"
	           "   now() + make_interval(secs => $4::int), $5::int)"
	           "  ON CONFLICT (dedup_key) DO NOTHING RETURNING id)"
	           " SELECT pg_notify('" PV_JOB_CHANNEL "', '') FROM ins"),
	    5, p, NULL, err);
}

/* Adds a job with the default attempts; see pv_job.h. */
int
pv_job_enqueue(struct pv_ctx *ctx, const char *kind, const char *payload,
    const char *dedup_key, int run_after_s, struct pv_err *err)
{
	return pv_job_enqueue_max(ctx, kind, payload, dedup_key, run_after_s, 0,
	    err);
}

/* Reads a whole integer column we wrote ourselves. */
static int64_t
col_int(const PGresult *res, int c)
{
	return strtoll(PQgetvalue(res, 0, c), NULL, 10);
}

/*
 * Claims one due job or an expired lease; see pv_job.h.  Fills *job
 * from the RETURNING row (arena strings).
 */
int
pv_job_claim(struct pv_ctx *ctx, const struct pv_job_opts *opts,
    struct pv_job *job, int *got, struct pv_err *err)
{
	char lease[24];
	const char *p[2];
	PGresult *res;

	*got = 0;
	memset(job, 0, sizeof(*job));
	if (fmt_long(lease, sizeof(lease), opts->lease_s, err) == -1)
		return -1;
	p[0] = opts->worker_id;
	p[1] = lease;
	if (pv_db_exec(ctx, CLAIM_SQL, 2, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) == 0)
		return 0;
	job->id = col_int(res, 0);
	job->kind = PQgetvalue(res, 0, 1);
	job->payload = PQgetvalue(res, 0, 2);
	job->dedup_key = pv_db_get(res, 0, 3);
	job->attempt = (int)col_int(res, 4);
	job->max_attempts = (int)col_int(res, 5);
	job->worker = PQgetvalue(res, 0, 6);
	job->lapsed = *PQgetvalue(res, 0, 7) == 't';
	job->prev_error = pv_db_get(res, 0, 8);
	job->lease_s = opts->lease_s;
	*got = 1;
	return 0;
}

/*
 * The fencing parameters of a claimed job: id, attempts, locked_by.
 * The numbers go into the caller's arrays.
 */
static int
fence(const struct pv_job *job, char *id, char *att, size_t size,
    const char **p, struct pv_err *err)
{
	if (fmt_long(id, size, (long)job->id, err) == -1 ||
	    fmt_long(att, size, job->attempt, err) == -1)
		return -1;
	p[0] = id;
	p[1] = att;
	p[2] = job->worker;
	return 0;
}

/* PV_E_CONFLICT unless res changed exactly one row. */
static int
one_row(PGresult *res, const struct pv_job *job, struct pv_err *err)
{
	if (strcmp(PQcmdTuples(res), "1") == 0)
		return 0;
	PV_ERR(err, PV_E_CONFLICT, NULL,
	    "job %" PRId64 ": lease lost (another worker took it over)",
	    job->id);
	return -1;
}

/* Marks a claimed job done; see pv_job.h. */
int
pv_job_complete(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err)
{
	char id[24], att[24];
	const char *p[3];
	PGresult *res;

	if (fence(job, id, att, sizeof(id), p, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("UPDATE jobs SET state = 'done', locked_until = NULL,"
	               " updated_at = now()"
	               " WHERE id = $1::bigint AND state = 'running'"
	               " AND attempts = $2::int AND locked_by = $3"),
	        3, p, &res, err) == -1)
		return -1;
	return one_row(res, job, err);
}

/* Full jitter over an exponentially growing window; see pv_job.h. */
long
pv_job_backoff_ms(int attempt, int base_ms, int cap_ms, uint32_t r)
{
	uint64_t window = base_ms > 0 ? (uint64_t)base_ms : 1;
	uint64_t cap = cap_ms > 0 ? (uint64_t)cap_ms : 1;
	int i;

	for (i = 1; i < attempt && window < cap; i++)
		window *= 2;
	if (window > cap)
		window = cap;
	return (long)((window * r) >> 32);
}

/* Records a failed run: queued with backoff, or dead; see pv_job.h. */
int
pv_job_fail(struct pv_ctx *ctx, const struct pv_job *job,
    const struct pv_job_opts *opts, const struct pv_err *why, int permanent,
    long *delay_ms, struct pv_err *err)
{
	struct pv_err ignored = { 0 };
	char id[24], att[24], delay[24], msg[320];
	const char *p[6];
	PGresult *res;
	uint32_t r;
	long ms;
	int n;

	if (pv_crypto_random(&r, sizeof(r), &ignored) == -1)
		r = UINT32_MAX / 2;
	ms = pv_job_backoff_ms(job->attempt, opts->backoff_base_ms,
	    opts->backoff_cap_ms, r);
	if (why->retry_after > 0 && ms < why->retry_after * 1000L)
		ms = why->retry_after * 1000L;
	n = snprintf(msg, sizeof(msg), "%s: %s", pv_err_name(why->code),
	    why->msg);
	if (n < 0)
		msg[0] = '\0';
	if (fence(job, id, att, sizeof(id), p, err) == -1 ||
	    fmt_long(delay, sizeof(delay), ms, err) == -1)
		return -1;
	p[3] = permanent ? "t" : "f";
	p[4] = delay;
	p[5] = msg;
	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE jobs SET"
	               " state = CASE WHEN $4::boolean"
	               "  OR attempts >= max_attempts THEN 'dead'"
	               "  ELSE 'queued' END,"
	               " run_at = CASE WHEN $4::boolean"
	               "  OR attempts >= max_attempts THEN run_at"
	               "  ELSE now() + make_interval(secs =>"
	               "   $5::bigint / 1000.0) END,"
	               " locked_until = NULL, last_error = $6,"
	               " updated_at = now()"
	               " WHERE id = $1::bigint AND state = 'running'"
	               " AND attempts = $2::int AND locked_by = $3"
	               " RETURNING state"),
	        6, p, &res, err) == -1 ||
	    one_row(res, job, err) == -1)
		return -1;
	if (delay_ms != NULL)
		*delay_ms =
		    strcmp(PQgetvalue(res, 0, 0), "dead") == 0 ? -1 : ms;
	return 0;
}

/* Extends a lease; see pv_job.h. */
int
pv_job_touch(struct pv_ctx *ctx, const struct pv_job *job, int lease_s,
    struct pv_err *err)
{
	char id[24], att[24], lease[24];
	const char *p[4];
	PGresult *res;

	if (fence(job, id, att, sizeof(id), p, err) == -1 ||
	    fmt_long(lease, sizeof(lease), lease_s, err) == -1)
		return -1;
	p[3] = lease;
	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE jobs SET locked_until = now() +"
	               " make_interval(secs => $4::int), updated_at = now()"
	               " WHERE id = $1::bigint AND state = 'running'"
	               " AND attempts = $2::int AND locked_by = $3"),
	        4, p, &res, err) == -1)
		return -1;
	return one_row(res, job, err);
}

/* Queues dead jobs again; see pv_job.h. */
int
pv_job_retry(struct pv_ctx *ctx, const char *id, long *n, struct pv_err *err)
{
	const char *p[1] = { id };
	const char *state;
	PGresult *res;
	int64_t v;

	*n = 0;
	if (id == NULL) {
		if (pv_db_exec(ctx,
		        PV_SQL("UPDATE jobs SET state = 'queued', attempts = 0,"
		               " run_at = now(), updated_at = now()"
		               " WHERE state = 'dead'"),
		        0, NULL, &res, err) == -1)
			return -1;
	} else {
		if (pv_valid_int64(id, 1, INT64_MAX, &v, "JOB_ID", err) == -1 ||
		    pv_db_exec(ctx,
		        PV_SQL(
		            "WITH r AS (UPDATE jobs SET state = 'queued',"
		            "  attempts = 0, run_at = now(),"
		            "  updated_at = now()"
		            "  WHERE id = $1::bigint AND state = 'dead'"
		            "  RETURNING 1)"
		            " SELECT (SELECT count(*) FROM r),"
		            "  (SELECT state FROM jobs WHERE id = $1::bigint)"),
		        1, p, &res, err) == -1)
			return -1;
		state = pv_db_get(res, 0, 1);
		if (state == NULL) {
			PV_ERR(err, PV_E_NOTFOUND, "JOB_ID", "no job %s", id);
			return -1;
		}
		if (strcmp(PQgetvalue(res, 0, 0), "1") != 0) {
			PV_ERR(err, PV_E_CONFLICT, "JOB_ID",
			    "job %s is %s, not dead", id, state);
			return -1;
		}
	}
	*n = id == NULL ? strtol(PQcmdTuples(res), NULL, 10) : 1;
	if (*n == 0)
		return 0;
	return pv_db_exec(ctx,
	    PV_SQL("SELECT pg_notify('" PV_JOB_CHANNEL "', '')"), 0, NULL, NULL,
	    err);
}

static double
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The one line per job: id, kind, attempt, outcome, time, error. */
static void
log_job(const struct pv_job *job, enum pv_log_level level, const char *outcome,
    double ms, const struct pv_err *why)
{
	if (why == NULL || why->code == PV_OK) {
		pv_log_msg(level, "job %" PRId64 " %s attempt %d/%d %s %.1fms",
		    job->id, job->kind, job->attempt, job->max_attempts,
		    outcome, ms);
		return;
	}
	pv_log_msg(level,
	    "job %" PRId64 " %s attempt %d/%d %s %.1fms %s %s:%d %s", job->id,
	    job->kind, job->attempt, job->max_attempts, outcome, ms,
	    pv_err_name(why->code), why->file != NULL ? why->file : "?",
	    why->line, why->msg);
}

/* Runs the handler for job; returns its answer with why filled. */
static int
run_handler(struct pv_ctx *ctx, const struct pv_job_handler *handlers, size_t n,
    struct pv_job *job, struct pv_err *why)
{
	struct pv_err ignored = { 0 };
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if (strcmp(handlers[i].kind, job->kind) == 0)
			break;
	if (i == n) {
		PV_ERR(why, PV_E_INTERNAL, NULL, "no handler for %s in %s",
		    job->kind, job->worker);
		return -1;
	}
	if (pv_json_parse(ctx->arena, job->payload, strlen(job->payload),
	        &job->args, why) == -1)
		return PV_JOB_PERMANENT;
	rc = handlers[i].fn(ctx, job, why);
	if (pv_db_in_tx(ctx->db)) {
		pv_db_end(ctx, 0, &ignored);
		PV_ERR(why, PV_E_INTERNAL, NULL,
		    "handler left a transaction open");
		if (rc == 0)
			rc = -1;
	}
	if (rc != 0 && why->code == PV_OK)
		PV_ERR(why, PV_E_INTERNAL, NULL,
		    "handler failed saying nothing");
	return rc;
}

/* Claims and runs one job; see pv_job.h. */
int
pv_job_run_once(struct pv_ctx *ctx, const struct pv_job_handler *handlers,
    size_t n, const struct pv_job_opts *opts, int *did_work, struct pv_err *err)
{
	struct pv_err why = { 0 };
	struct pv_job job;
	char outcome[48];
	double ms;
	long delay;
	int got, rc;

	*did_work = 0;
	ctx->now = time(NULL);
	if (pv_job_claim(ctx, opts, &job, &got, err) == -1)
		return -1;
	if (!got)
		return 0;
	*did_work = 1;
	if (job.lapsed) {
		pv_log_msg(PV_LOG_WARN,
		    "job %" PRId64 " %s attempt %d/%d dead: %s", job.id,
		    job.kind, job.attempt, job.max_attempts,
		    job.prev_error != NULL ? job.prev_error : "lease expired");
		return 0;
	}
	if (snprintf(ctx->request_id, sizeof(ctx->request_id),
	        "job_%" PRId64 "_%d", job.id, job.attempt) < 0)
		ctx->request_id[0] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &ctx->started);
	rc = run_handler(ctx, handlers, n, &job, &why);
	ms = elapsed_ms(&ctx->started);
	ctx->now = time(NULL);
	if (rc == 0) {
		if (pv_job_complete(ctx, &job, err) == 0) {
			log_job(&job, PV_LOG_INFO, "done", ms, NULL);
			return 0;
		}
	} else if (pv_job_fail(ctx, &job, opts, &why, rc == PV_JOB_PERMANENT,
	               &delay, err) == 0) {
		if (delay < 0 ||
		    snprintf(outcome, sizeof(outcome), "retry in %.1fs",
		        (double)delay / 1e3) < 0)
			memcpy(outcome, "dead", sizeof("dead"));
		log_job(&job, PV_LOG_WARN, outcome, ms, &why);
		return 0;
	}
	if (err->code != PV_E_CONFLICT) /* the queue failed: lease expires */
		return -1;
	log_job(&job, PV_LOG_WARN, "lease lost", ms, err);
	pv_err_clear(err);
	return 0;
}

static int
stopping(const struct pv_job_opts *opts)
{
	return opts->stop != NULL && *opts->stop;
}

/*
 * Milliseconds until the next queued job is due or the next lease
 * expires, within [MIN_IDLE_MS, opts->idle_ms].  Both are the first
 * entry of a partial index.
 */
static int
next_due_ms(struct pv_ctx *ctx, const struct pv_job_opts *opts, long *ms,
    struct pv_err *err)
{
	const char *v;
	PGresult *res;

	*ms = opts->idle_ms;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT ceil(extract(epoch FROM least("
	               "  (SELECT min(run_at) FROM jobs"
	               "   WHERE state = 'queued'),"
	               "  (SELECT min(locked_until) FROM jobs"
	               "   WHERE state = 'running'))"
	               " - clock_timestamp()) * 1000)::bigint"),
	        0, NULL, &res, err) == -1)
		return -1;
	if ((v = pv_db_get(res, 0, 0)) != NULL && strtol(v, NULL, 10) < *ms)
		*ms = strtol(v, NULL, 10);
	if (*ms < MIN_IDLE_MS)
		*ms = MIN_IDLE_MS;
	return 0;
}

/*
 * One round of the loop: LISTEN (a no-op when already listening; after
 * a reconnect it listens again), run every due job, then sleep until
 * more may be due.  LISTEN comes before the claims, so a job committed
 * after the last empty claim always sends us a notification.
 */
static int
cycle(struct pv_ctx *ctx, const struct pv_job_handler *handlers, size_t n,
    const struct pv_job_opts *opts, struct pv_err *err)
{
	long ms;
	int did, rc;

	ctx->now = time(NULL); /* pv_db's reconnect pacing reads it */
	if (!opts->once &&
	    pv_db_exec(ctx, PV_SQL("LISTEN " PV_JOB_CHANNEL), 0, NULL, NULL,
	        err) == -1)
		return -1;
	do {
		rc = pv_job_run_once(ctx, handlers, n, opts, &did, err);
		pv_arena_reset(ctx->arena);
		if (rc == -1)
			return -1;
	} while (did && !stopping(opts));
	if (opts->once || stopping(opts))
		return 0;
	rc = next_due_ms(ctx, opts, &ms, err);
	pv_arena_reset(ctx->arena);
	if (rc == -1)
		return -1;
	return pv_db_wait(ctx, opts->wake_fd, (int)ms, err) == -1 ? -1 : 0;
}

/* Sleeps ms, or less if the wake descriptor becomes readable. */
static void
rest(const struct pv_job_opts *opts, int ms)
{
	struct pollfd pfd = { opts->wake_fd, POLLIN, 0 };

	if (!stopping(opts))
		(void)poll(&pfd, opts->wake_fd >= 0 ? 1 : 0, ms);
}

/* The worker loop; see pv_job.h. */
int
pv_job_worker(struct pv_ctx *ctx, const struct pv_job_handler *handlers,
    size_t n, const struct pv_job_opts *opts, struct pv_err *err)
{
	while (!stopping(opts)) {
		pv_err_clear(err);
		if (cycle(ctx, handlers, n, opts, err) == 0) {
			if (opts->once)
				return 0;
			continue;
		}
		if (opts->once)
			return -1;
		pv_log_msg(PV_LOG_WARN, "queue: %s %s:%d %s; again in %d ms",
		    pv_err_name(err->code), err->file != NULL ? err->file : "?",
		    err->line, err->msg, REST_MS);
		rest(opts, REST_MS);
	}
	pv_err_clear(err);
	return 0;
}
