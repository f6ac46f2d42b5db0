/*
 * Database tests of the job queue (pv_job), maintenance.prune and the
 * pivota-worker program, against the throwaway PostgreSQL of
 * tests/db/run.sh.  Queue tests commit (two sessions must see each
 * other's jobs), so setup and teardown empty the jobs table instead of
 * rolling back.  The worker tests run the real binary with
 * PIVOTA_ENV=test, which adds the kinds test.sleep and test.fail, and
 * a one-second lease so a killed worker's job comes back quickly.
 */
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pv_config.h"
#include "pv_db.h"
#include "pv_job.h"
#include "pv_json.h"
#include "pv_log.h"
#include "pv_proc.h"
#include "pv_test.h"
#include "pv_worker.h"

#define NJOBS    200 /* claimed by two threads at once */
#define MAXPROCS 4   /* workers one test may start */

static struct pv_config cfg;
static struct pv_ctx ctx;
static struct pv_ctx other; /* a second session: another worker */
static pid_t procs[MAXPROCS];
static char logpath[64];

static const char *
url(void)
{
	const char *u = getenv("PIVOTA_DATABASE_URL");

	ck_assert_msg(u != NULL, "PIVOTA_DATABASE_URL is not set");
	return u;
}

static void
open_ctx(struct pv_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->cfg = &cfg;
	c->arena = pv_arena_new(0);
	c->db = pv_db_new(url(), "db_tests");
	c->now = time(NULL);
}

static void
close_ctx(struct pv_ctx *c)
{
	pv_arena_reset(c->arena);
	pv_db_free(c->db);
	pv_arena_free(c->arena);
}

/* Runs sql (no parameters) on c and fails the test if it fails. */
static PGresult *
sql(struct pv_ctx *c, const char *q)
{
	struct pv_err err = { 0 };
	PGresult *res;

	ck_assert_msg(pv_db_exec(c, q, 0, NULL, &res, &err) == 0, "%s: %s", q,
	    err.msg);
	return res;
}

/* The one value of a one-row, one-column query, or "" for NULL. */
#define VALUE(c, q) value(sql((c), PV_SQL(q)))

static const char *
value(PGresult *res)
{
	ck_assert_int_eq(PQntuples(res), 1);
	return PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0);
}

static void
empty_jobs(void)
{
	sql(&ctx, PV_SQL("DELETE FROM jobs"));
}

static void
setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	open_ctx(&ctx);
	open_ctx(&other);
	empty_jobs();
}

static void
teardown(void)
{
	int i;

	for (i = 0; i < MAXPROCS; i++)
		if (procs[i] > 0) {
			kill(procs[i], SIGKILL);
			waitpid(procs[i], NULL, 0);
			procs[i] = 0;
		}
	if (logpath[0] != '\0')
		unlink(logpath);
	empty_jobs();
	close_ctx(&ctx);
	close_ctx(&other);
}

static void
opts_for(struct pv_job_opts *o, const char *worker)
{
	pv_job_opts_init(o);
	o->worker_id = worker;
}

static void
enqueue(struct pv_ctx *c, const char *kind, const char *payload,
    const char *key, int after)
{
	struct pv_err err = { 0 };

	ck_assert_msg(pv_job_enqueue(c, kind, payload, key, after, &err) == 0,
	    "%s", err.msg);
}

static long
count_jobs(struct pv_ctx *c)
{
	return strtol(VALUE(c, "SELECT count(*) FROM jobs"), NULL, 10);
}

/* The column col of job id (text; "" for NULL). */
static const char *
job_col(int64_t id, const char *col)
{
	struct pv_err err = { 0 };
	const char *p[2];
	char ids[24];
	PGresult *res;

	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	p[0] = ids;
	p[1] = col;
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("SELECT to_jsonb(j) ->> $2 FROM jobs j"
	                            " WHERE id = $1::bigint"),
	                     2, p, &res, &err),
	    0);
	return value(res);
}

static int64_t
last_id(void)
{
	return strtoll(VALUE(&ctx, "SELECT max(id) FROM jobs"), NULL, 10);
}

/* A rolled-back transaction takes its job with it. */
START_TEST(test_job_enqueue_rolled_back_leaves_nothing)
{
	struct pv_err err = { 0 };

	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	enqueue(&ctx, "test.sleep", "{\"ms\": 1}", NULL, 0);
	ck_assert_int_eq(count_jobs(&ctx), 1);
	ck_assert_int_eq(count_jobs(&other), 0); /* not before commit */
	ck_assert_int_eq(pv_db_end(&ctx, 0, &err), -1);
	ck_assert_int_eq(count_jobs(&ctx), 0);
	ck_assert_int_eq(count_jobs(&other), 0);
}
END_TEST

/* A repeated event adds nothing and leaves the transaction usable. */
START_TEST(test_job_enqueue_dedup_ignores_repeats)
{
	struct pv_err err = { 0 };

	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	enqueue(&ctx, "order.push", "{\"order\": 1}", "order.push:1", 0);
	enqueue(&ctx, "order.push", "{\"order\": 1}", "order.push:1", 0);
	ck_assert_str_eq(VALUE(&ctx, "SELECT 'still usable'"), "still usable");
	ck_assert_int_eq(pv_db_end(&ctx, 1, &err), 0);
	enqueue(&other, "order.push", "{\"order\": 1}", "order.push:1", 0);
	ck_assert_int_eq(count_jobs(&ctx), 1);
	enqueue(&ctx, "order.push", NULL, NULL, 0);
	enqueue(&ctx, "order.push", NULL, NULL, 0);
	ck_assert_int_eq(count_jobs(&ctx), 3);
}
END_TEST

/* Bad input is refused by the table, not silently queued. */
START_TEST(test_job_enqueue_refuses_bad_kind_and_payload)
{
	struct pv_err err = { 0 };

	ck_assert_int_eq(pv_job_enqueue(&ctx, "NoDot", NULL, NULL, 0, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_DB);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_job_enqueue(&ctx, "a.b", "[1]", NULL, 0, &err), -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_job_enqueue(&ctx, "a.b", "{", NULL, 0, &err), -1);
	ck_assert_int_eq(count_jobs(&ctx), 0);
}
END_TEST

/* Idle workers hear about a job when, and only when, it commits. */
START_TEST(test_job_enqueue_notifies_at_commit)
{
	struct pv_err err = { 0 };

	sql(&other, PV_SQL("LISTEN " PV_JOB_CHANNEL));
	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	enqueue(&ctx, "test.sleep", NULL, NULL, 0);
	ck_assert_int_eq(pv_db_wait(&other, -1, 50, &err), 0);
	ck_assert_int_eq(pv_db_end(&ctx, 0, &err), -1);
	ck_assert_int_eq(pv_db_wait(&other, -1, 50, &err), 0);

	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	enqueue(&ctx, "test.sleep", NULL, NULL, 0);
	ck_assert_int_eq(pv_db_end(&ctx, 1, &err), 0);
	ck_assert_int_eq(pv_db_wait(&other, -1, 2000, &err), 1);
	ck_assert_int_eq(pv_db_wait(&other, -1, 0, &err), 0); /* consumed */
}
END_TEST

/* Due jobs come out oldest run_at first; future ones wait. */
START_TEST(test_job_claim_orders_by_run_at)
{
	struct pv_err err = { 0 };
	struct pv_job_opts o;
	struct pv_job job;
	int got;

	opts_for(&o, "w1");
	enqueue(&ctx, "test.a", NULL, "a", 0);
	enqueue(&ctx, "test.b", NULL, "b", 0);
	enqueue(&ctx, "test.c", NULL, "c", 0);
	enqueue(&ctx, "test.later", NULL, "later", 60);
	sql(&ctx,
	    PV_SQL("UPDATE jobs SET run_at = now() - CASE dedup_key"
	           " WHEN 'a' THEN interval '1 s'"
	           " WHEN 'b' THEN interval '3 s'"
	           " WHEN 'c' THEN interval '2 s' ELSE '-60 s' END"));

	ck_assert_int_eq(pv_job_claim(&ctx, &o, &job, &got, &err), 0);
	ck_assert_int_eq(got, 1);
	ck_assert_str_eq(job.kind, "test.b");
	ck_assert_int_eq(job.attempt, 1);
	ck_assert_int_eq(job.max_attempts, PV_JOB_MAX_ATTEMPTS);
	ck_assert_str_eq(job.worker, "w1");
	ck_assert_str_eq(job.dedup_key, "b");
	ck_assert_str_eq(job.payload, "{}");
	ck_assert(!job.lapsed);
	ck_assert_str_eq(job_col(job.id, "state"), "running");
	ck_assert_str_eq(job_col(job.id, "locked_by"), "w1");
	ck_assert_int_eq(pv_job_claim(&other, &o, &job, &got, &err), 0);
	ck_assert_str_eq(job.kind, "test.c");
	ck_assert_int_eq(pv_job_claim(&ctx, &o, &job, &got, &err), 0);
	ck_assert_str_eq(job.kind, "test.a");
	ck_assert_int_eq(pv_job_claim(&ctx, &o, &job, &got, &err), 0);
	ck_assert_int_eq(got, 0);
}
END_TEST

static atomic_int seen[NJOBS];
static struct pv_ctx tctx[2];
static atomic_int by[2];
static pthread_barrier_t ready;

/* Counts each job it is handed, and which session ran it. */
static int
count_job(struct pv_ctx *c, const struct pv_job *job, struct pv_err *err)
{
	int64_t n;

	if (pv_json_int(job->args, "n", 0, NJOBS - 1, &n, err) == -1)
		return PV_JOB_PERMANENT;
	atomic_fetch_add(&seen[n], 1);
	atomic_fetch_add(&by[c == &tctx[0] ? 0 : 1], 1);
	return 0;
}

static const struct pv_job_handler count_handlers[] = {
	{ "test.count", count_job },
};

/* One worker thread: runs jobs until none is queued or running. */
static void *
drain(void *arg)
{
	struct pv_ctx *c = arg;
	struct pv_err err = { 0 };
	struct pv_job_opts o;
	int did;

	opts_for(&o, c == &tctx[0] ? "t0" : "t1");
	ck_assert_int_eq(pv_db_ping(c, &err), 0);
	pthread_barrier_wait(&ready);
	for (;;) {
		if (pv_job_run_once(c, count_handlers, 1, &o, &did, &err) == -1)
			return (void *)1;
		pv_arena_reset(c->arena);
		/* A claim racing another can come back empty: look again. */
		if (!did &&
		    strcmp(VALUE(c,
		               "SELECT count(*) FROM jobs WHERE"
		               " state IN ('queued', 'running')"),
		        "0") == 0)
			return NULL;
	}
}

/* Two sessions claiming at once never get the same job. */
START_TEST(test_job_claim_concurrent_each_job_once)
{
	struct pv_err err = { 0 };
	pthread_t t[2];
	char payload[32];
	void *rc;
	int i;

	pv_log_init("db_tests", PV_LOG_WARN); /* not 200 "done" lines */
	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	for (i = 0; i < NJOBS; i++) {
		snprintf(payload, sizeof(payload), "{\"n\": %d}", i);
		enqueue(&ctx, "test.count", payload, NULL, 0);
	}
	ck_assert_int_eq(pv_db_end(&ctx, 1, &err), 0);
	pthread_barrier_init(&ready, NULL, 2);
	for (i = 0; i < 2; i++) {
		open_ctx(&tctx[i]);
		ck_assert_int_eq(pthread_create(&t[i], NULL, drain, &tctx[i]),
		    0);
	}
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(pthread_join(t[i], &rc), 0);
		ck_assert_ptr_null(rc);
		close_ctx(&tctx[i]);
	}
	pthread_barrier_destroy(&ready);
	for (i = 0; i < NJOBS; i++)
		ck_assert_msg(atomic_load(&seen[i]) == 1, "job %d ran %d times",
		    i, atomic_load(&seen[i]));
	ck_assert_int_eq(atomic_load(&by[0]) + atomic_load(&by[1]), NJOBS);
	ck_assert_int_gt(atomic_load(&by[0]), 0);
	ck_assert_int_gt(atomic_load(&by[1]), 0);
	ck_assert_str_eq(VALUE(&ctx,
	                     "SELECT count(*) FROM jobs WHERE state = 'done'"
	                     " AND attempts = 1"),
	    "200");
}
END_TEST

/* Fails with what the payload asks for. */
static int
fail_job(struct pv_ctx *c, const struct pv_job *job, struct pv_err *err)
{
	int64_t after;

	(void)c;
	if (pv_json_int_opt(job->args, "retry_after", 0, 3600, 0, &after,
	        err) == -1)
		return PV_JOB_PERMANENT;
	PV_ERR(err, PV_E_UPSTREAM, NULL, "boom %d", job->attempt);
	err->retry_after = (int)after;
	return strcmp(job->kind, "test.permanent") == 0 ? PV_JOB_PERMANENT : -1;
}

static int
open_tx_job(struct pv_ctx *c, const struct pv_job *job, struct pv_err *err)
{
	(void)job;
	return pv_db_begin(c, err);
}

static const struct pv_job_handler fail_handlers[] = {
	{ "test.fail", fail_job },
	{ "test.permanent", fail_job },
	{ "test.opentx", open_tx_job },
};
#define NFAIL (sizeof(fail_handlers) / sizeof(fail_handlers[0]))

static void
run_one(const struct pv_job_opts *o)
{
	struct pv_err err = { 0 };
	int did;

	ck_assert_msg(pv_job_run_once(&ctx, fail_handlers, NFAIL, o, &did,
	                  &err) == 0,
	    "%s", err.msg);
	ck_assert_int_eq(did, 1);
	pv_arena_reset(ctx.arena);
}

/* Failures back off, count attempts and end dead with the error. */
START_TEST(test_job_fail_backs_off_then_dead)
{
	struct pv_err err = { 0 };
	struct pv_job_opts o;
	int64_t id;
	int i, did;

	opts_for(&o, "w1");
	o.backoff_base_ms = 10000;
	ck_assert_int_eq(pv_job_enqueue_max(&ctx, "test.fail", NULL, NULL, 0, 3,
	                     &err),
	    0);
	id = last_id();
	run_one(&o);
	ck_assert_str_eq(job_col(id, "state"), "queued");
	ck_assert_str_eq(job_col(id, "attempts"), "1");
	ck_assert_str_eq(job_col(id, "last_error"), "PV_E_UPSTREAM: boom 1");
	ck_assert_str_eq(job_col(id, "locked_until"), "");
	ck_assert_str_eq(VALUE(&ctx,
	                     "SELECT run_at >= now() AND run_at <= now() +"
	                     " interval '10.1 s' FROM jobs"),
	    "t");
	/* Not due yet: nothing to do. */
	ck_assert_int_eq(pv_job_run_once(&ctx, fail_handlers, NFAIL, &o, &did,
	                     &err),
	    0);
	ck_assert_int_eq(did, 0);
	for (i = 2; i <= 3; i++) {
		sql(&ctx, PV_SQL("UPDATE jobs SET run_at = now()"));
		run_one(&o);
	}
	ck_assert_str_eq(job_col(id, "state"), "dead");
	ck_assert_str_eq(job_col(id, "attempts"), "3");
	ck_assert_str_eq(job_col(id, "last_error"), "PV_E_UPSTREAM: boom 3");
	sql(&ctx, PV_SQL("UPDATE jobs SET run_at = now() - interval '1 s'"));
	ck_assert_int_eq(pv_job_run_once(&ctx, fail_handlers, NFAIL, &o, &did,
	                     &err),
	    0);
	ck_assert_int_eq(did, 0);
}
END_TEST

/* Retry-After from the handler is a floor under the jitter. */
START_TEST(test_job_fail_honours_retry_after)
{
	struct pv_job_opts o;

	opts_for(&o, "w1");
	enqueue(&ctx, "test.fail", "{\"retry_after\": 60}", NULL, 0);
	run_one(&o);
	ck_assert_str_eq(VALUE(&ctx,
	                     "SELECT run_at >= now() + interval '59 s'"
	                     " AND state = 'queued' FROM jobs"),
	    "t");
}
END_TEST

/* Permanent failures, unknown kinds, and handlers that misbehave. */
START_TEST(test_job_fail_permanent_unknown_and_open_tx)
{
	struct pv_job_opts o;
	int64_t id;

	opts_for(&o, "w1");
	enqueue(&ctx, "test.permanent", NULL, NULL, 0);
	id = last_id();
	run_one(&o);
	ck_assert_str_eq(job_col(id, "state"), "dead");
	ck_assert_str_eq(job_col(id, "attempts"), "1");

	enqueue(&ctx, "test.unknown", NULL, NULL, 0);
	id = last_id();
	run_one(&o);
	ck_assert_str_eq(job_col(id, "state"), "queued");
	ck_assert_str_eq(job_col(id, "last_error"),
	    "PV_E_INTERNAL: no handler for test.unknown in w1");

	enqueue(&ctx, "test.opentx", NULL, NULL, 0);
	id = last_id();
	run_one(&o);
	ck_assert(!pv_db_in_tx(ctx.db));
	ck_assert_str_eq(job_col(id, "state"), "queued");
	ck_assert_str_eq(job_col(id, "last_error"),
	    "PV_E_INTERNAL: handler left a transaction open");
}
END_TEST

/* A dead worker's lease runs out and another worker takes the job. */
START_TEST(test_job_expired_lease_is_reclaimed)
{
	struct pv_err err = { 0 }, why = { 0 };
	struct pv_job_opts o1, o2;
	struct pv_job j1, j2;
	int got;

	opts_for(&o1, "w1");
	opts_for(&o2, "w2");
	enqueue(&ctx, "test.sleep", NULL, NULL, 0);
	ck_assert_int_eq(pv_job_claim(&ctx, &o1, &j1, &got, &err), 0);
	ck_assert_int_eq(got, 1);
	/* While the lease holds, nobody else gets it. */
	ck_assert_int_eq(pv_job_claim(&other, &o2, &j2, &got, &err), 0);
	ck_assert_int_eq(got, 0);
	ck_assert_int_eq(pv_job_touch(&ctx, &j1, 60, &err), 0);
	sql(&ctx,
	    PV_SQL("UPDATE jobs SET locked_until = now() -"
	           " interval '1 s'"));
	ck_assert_int_eq(pv_job_claim(&other, &o2, &j2, &got, &err), 0);
	ck_assert_int_eq(got, 1);
	ck_assert(j2.id == j1.id);
	ck_assert_int_eq(j2.attempt, 2);
	ck_assert_str_eq(j2.worker, "w2");
	ck_assert_str_eq(j2.prev_error, "lease of w1 expired on attempt 1");
	/* The first worker comes back to life: its outcome is refused. */
	ck_assert_int_eq(pv_job_complete(&ctx, &j1, &err), -1);
	ck_assert_int_eq(err.code, PV_E_CONFLICT);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_job_touch(&ctx, &j1, 60, &err), -1);
	ck_assert_int_eq(err.code, PV_E_CONFLICT);
	pv_err_clear(&err);
	PV_ERR(&why, PV_E_UPSTREAM, NULL, "late");
	ck_assert_int_eq(pv_job_fail(&ctx, &j1, &o1, &why, 0, NULL, &err), -1);
	ck_assert_int_eq(err.code, PV_E_CONFLICT);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_job_complete(&other, &j2, &err), 0);
	ck_assert_str_eq(job_col(j1.id, "state"), "done");
	ck_assert_str_eq(job_col(j1.id, "locked_by"), "w2");
}
END_TEST

/* A job whose last attempt's lease ran out is dead, not run again. */
START_TEST(test_job_expired_lease_on_last_attempt_is_dead)
{
	struct pv_err err = { 0 };
	struct pv_job_opts o;
	struct pv_job job;
	int got;

	opts_for(&o, "w1");
	ck_assert_int_eq(pv_job_enqueue_max(&ctx, "test.sleep", NULL, NULL, 0,
	                     1, &err),
	    0);
	ck_assert_int_eq(pv_job_claim(&ctx, &o, &job, &got, &err), 0);
	sql(&ctx,
	    PV_SQL("UPDATE jobs SET locked_until = now() -"
	           " interval '1 s'"));
	ck_assert_int_eq(pv_job_claim(&other, &o, &job, &got, &err), 0);
	ck_assert_int_eq(got, 1);
	ck_assert(job.lapsed);
	ck_assert_str_eq(job_col(job.id, "state"), "dead");
	ck_assert_str_eq(job_col(job.id, "attempts"), "1");
	ck_assert_str_eq(job_col(job.id, "last_error"),
	    "lease of w1 expired on attempt 1");
}
END_TEST

/* Runs pivotactl with the NULL-terminated arguments, output in out. */
static int
ctl(char *out, size_t size, ...)
{
	const char *argv[16], *dir = getenv("PV_BUILD_DIR");
	char path[512];
	va_list ap;
	int n = 1;

	snprintf(path, sizeof(path), "%s/bin/pivotactl",
	    dir != NULL ? dir : "build/debug");
	argv[0] = path;
	va_start(ap, size);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	return pv_proc_capture(argv, out, size);
}

/* Dead jobs go back in the queue by id or all at once. */
START_TEST(test_job_retry_dead)
{
	struct pv_err err = { 0 };
	struct pv_job_opts o;
	char ids[24], out[4096];
	int64_t id;
	long n;

	opts_for(&o, "w1");
	enqueue(&ctx, "test.permanent", NULL, NULL, 0);
	id = last_id();
	run_one(&o);
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	ck_assert_int_eq(pv_job_retry(&ctx, ids, &n, &err), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(job_col(id, "state"), "queued");
	ck_assert_str_eq(job_col(id, "attempts"), "0");
	ck_assert_str_eq(job_col(id, "last_error"), "PV_E_UPSTREAM: boom 1");
	ck_assert_int_eq(pv_job_retry(&ctx, ids, &n, &err), -1);
	ck_assert_int_eq(err.code, PV_E_CONFLICT);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_job_retry(&ctx, "999999999", &n, &err), -1);
	ck_assert_int_eq(err.code, PV_E_NOTFOUND);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_job_retry(&ctx, "x1", &n, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);

	/* Through pivotactl: list the dead, retry them all. */
	run_one(&o);
	enqueue(&ctx, "test.permanent", NULL, NULL, 0);
	run_one(&o);
	ck_assert_int_eq(ctl(out, sizeof(out), "jobs", "list", "--state",
	                     "dead", "--json", NULL),
	    0);
	ck_assert_ptr_nonnull(strstr(out, "\"kind\":\"test.permanent\""));
	ck_assert_ptr_nonnull(strstr(out, "\"state\":\"dead\""));
	ck_assert_ptr_null(strstr(out, "\"state\":\"queued\""));
	ck_assert_int_eq(ctl(out, sizeof(out), "jobs", "list", "--state",
	                     "sleeping", NULL),
	    2);
	ck_assert_int_eq(ctl(out, sizeof(out), "jobs", "retry", NULL), 2);
	ck_assert_int_eq(ctl(out, sizeof(out), "jobs", "retry", "--all-dead",
	                     "--json", NULL),
	    0);
	ck_assert_str_eq(out, "{\"retried\":2}\n");
	ck_assert_str_eq(VALUE(&ctx,
	                     "SELECT count(*) FROM jobs"
	                     " WHERE state = 'queued'"),
	    "2");
	ck_assert_int_eq(ctl(out, sizeof(out), "jobs", "list", "--kind",
	                     "test.permanent", "--limit", "1", NULL),
	    0);
	ck_assert_ptr_nonnull(strstr(out, "test.permanent  queued"));
}
END_TEST

START_TEST(test_job_backoff_full_jitter)
{
	ck_assert_int_eq(pv_job_backoff_ms(1, 2000, 3600000, 0), 0);
	ck_assert_int_eq(pv_job_backoff_ms(1, 2000, 3600000, UINT32_MAX), 1999);
	ck_assert_int_eq(pv_job_backoff_ms(2, 2000, 3600000, UINT32_MAX / 2),
	    1999);
	ck_assert_int_eq(pv_job_backoff_ms(5, 2000, 3600000, UINT32_MAX),
	    31999);
	/* 2 s * 2^11 is past the hour: capped from attempt 12 on. */
	ck_assert_int_eq(pv_job_backoff_ms(12, 2000, 3600000, UINT32_MAX),
	    3599999);
	ck_assert_int_eq(pv_job_backoff_ms(1000, 2000, 3600000, UINT32_MAX),
	    3599999);
	ck_assert_int_eq(pv_job_backoff_ms(0, 2000, 3600000, UINT32_MAX), 1999);
}
END_TEST

static const struct pv_job_handler prune_handlers[] = {
	{ "maintenance.prune", pv_worker_prune },
};

/* The hourly prune deletes what is past retention and nothing else. */
START_TEST(test_job_prune_deletes_old_rows_and_reschedules)
{
	struct pv_err err = { 0 };
	struct pv_job_opts o;
	char key[64], want[80];
	time_t next;
	struct tm tm;
	int did;

	opts_for(&o, "w1");
	sql(&ctx,
	    PV_SQL("INSERT INTO agents (public_id, name)"
	           " VALUES ('agt_00000000000000aa', 'prune test')"));
	sql(&ctx,
	    PV_SQL("INSERT INTO idempotency_keys (agent_id, method,"
	           " path, key, body_hash, created_at)"
	           " SELECT id, 'POST', '/x', k, '\\x00', now() - d"
	           " FROM agents, (VALUES ('old', interval '25 h'),"
	           "  ('new', interval '23 h')) v(k, d)"
	           " WHERE public_id = 'agt_00000000000000aa'"));
	/* More than two batches of old events, the oldest ids first. */
	sql(&ctx,
	    PV_SQL("INSERT INTO usage_events (agent_id, at, endpoint,"
	           " method, status, latency_us, request_id)"
	           " SELECT 1, now() - interval '500 days', 'prune test',"
	           "  'GET', 200, 1, 'older' FROM generate_series(1, 12000)"));
	sql(&ctx,
	    PV_SQL("INSERT INTO usage_events (agent_id, at, endpoint,"
	           " method, status, latency_us, request_id)"
	           " SELECT 1, now() - d, 'prune test', 'GET', 200, 1,"
	           "  r FROM (VALUES ('old', interval '401 days'),"
	           "  ('new', interval '399 days')) v(r, d)"));
	sql(&ctx,
	    PV_SQL("INSERT INTO jobs (kind, state, updated_at)"
	           " VALUES ('test.old', 'done', now() - interval '8 d'),"
	           " ('test.new', 'done', now() - interval '6 d'),"
	           " ('test.olddead', 'dead', now() - interval '91 d'),"
	           " ('test.newdead', 'dead', now() - interval '89 d')"));
	ck_assert_int_eq(pv_worker_enqueue_prune(&ctx, time(NULL), &err), 0);
	ck_assert_int_eq(pv_job_run_once(&ctx, prune_handlers, 1, &o, &did,
	                     &err),
	    0);
	ck_assert_int_eq(did, 1);
	ck_assert_str_eq(VALUE(&ctx,
	                     "SELECT string_agg(key, ',') FROM idempotency_keys"
	                     " WHERE path = '/x'"),
	    "new");
	ck_assert_str_eq(
	    VALUE(&ctx,
	        "SELECT string_agg(request_id, ',')"
	        " FROM usage_events WHERE endpoint = 'prune test'"),
	    "new");
	ck_assert_str_eq(
	    VALUE(&ctx,
	        "SELECT string_agg(kind, ',' ORDER BY id) FROM jobs"
	        " WHERE kind LIKE 'test.%'"),
	    "test.new,test.newdead");
	/* The next hour's run is queued, once however often it is asked. */
	next = time(NULL) + 3600;
	next -= next % 3600;
	gmtime_r(&next, &tm);
	strftime(key, sizeof(key), "maintenance.prune@%Y-%m-%dT%H", &tm);
	snprintf(want, sizeof(want), "%s queued", key);
	ck_assert_int_eq(pv_worker_enqueue_prune(&ctx, next, &err), 0);
	ck_assert_str_eq(VALUE(&ctx,
	                     "SELECT string_agg(dedup_key || ' ' || state,"
	                     " ',' ORDER BY id) FROM jobs"
	                     " WHERE kind = 'maintenance.prune'"
	                     " AND state = 'queued' AND run_at > now()"),
	    want);
	sql(&ctx,
	    PV_SQL("DELETE FROM agents"
	           " WHERE public_id = 'agt_00000000000000aa'"));
	sql(&ctx,
	    PV_SQL("DELETE FROM usage_events"
	           " WHERE endpoint = 'prune test'"));
}
END_TEST

/*
 * Starts build/bin/pivota-worker with the arguments (NULL-terminated),
 * standard error appended to logpath; it dies with the test.
 */
static pid_t
start_worker(const char *arg, ...)
{
	const char *argv[16], *dir = getenv("PV_BUILD_DIR");
	char path[512];
	va_list ap;
	pid_t pid;
	int n = 1, i, fd;

	snprintf(path, sizeof(path), "%s/bin/pivota-worker",
	    dir != NULL ? dir : "build/debug");
	argv[0] = path;
	argv[n] = arg;
	va_start(ap, arg);
	while (argv[n] != NULL && n < 15)
		argv[++n] = va_arg(ap, const char *);
	va_end(ap);
	argv[n] = NULL;
	for (i = 0; i < MAXPROCS && procs[i] > 0; i++)
		;
	ck_assert_int_lt(i, MAXPROCS);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		execv(path, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	procs[i] = pid;
	return pid;
}

/* Waits for the worker pid to exit; returns its status. */
static int
reap(pid_t pid)
{
	int st, i;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	for (i = 0; i < MAXPROCS; i++)
		if (procs[i] == pid)
			procs[i] = 0;
	return st;
}

/* Polls until job id is in state, for at most ms; fails otherwise. */
static void
wait_state(int64_t id, const char *state, int ms)
{
	struct timespec ts = { 0, 20000000L };
	int waited;

	for (waited = 0; waited < ms; waited += 20) {
		if (strcmp(job_col(id, "state"), state) == 0)
			return;
		pv_arena_reset(ctx.arena);
		nanosleep(&ts, NULL);
	}
	ck_abort_msg("job %lld is %s, not %s after %d ms", (long long)id,
	    job_col(id, "state"), state, ms);
}

static double
since_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* True if the worker log has a line containing s. */
static int
logged(const char *s)
{
	char buf[16384];
	size_t n;
	FILE *f;

	if ((f = fopen(logpath, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, s) != NULL;
}

static void
worker_setup(void)
{
	setup();
	setenv("PIVOTA_ENV", "test", 1);
	snprintf(logpath, sizeof(logpath), "/tmp/pv_worker_%ld.log",
	    (long)getpid());
	unlink(logpath);
}

/*
 * An idle worker runs a new job at once (NOTIFY, not its 10 s poll),
 * logs one line for it, and stops cleanly on SIGTERM.
 */
START_TEST(test_worker_runs_new_job_at_once)
{
	struct timespec t0;
	char line[128];
	pid_t pid;
	int64_t id;
	int st;

	pid = start_worker("--id", "w1", "--poll", "10000", NULL);
	/* Up and idle: it has run this hour's prune. */
	for (st = 0; st < 250 && !logged("maintenance.prune attempt 1/20");
	     st++)
		usleep(20000);
	usleep(100000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	enqueue(&ctx, "test.sleep", NULL, NULL, 0);
	id = last_id();
	wait_state(id, "done", 3000);
	ck_assert_msg(since_ms(&t0) < 2000, "took %.0f ms", since_ms(&t0));
	kill(pid, SIGTERM);
	st = reap(pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	snprintf(line, sizeof(line), "job %lld test.sleep attempt 1/20 done",
	    (long long)id);
	ck_assert_msg(logged(line), "no log line \"%s\"", line);
	ck_assert(logged("w1 stopped"));
}
END_TEST

/* kill -9 mid-job: the next worker takes the job when the lease ends. */
START_TEST(test_worker_killed_mid_job_is_finished_by_next)
{
	struct timespec t0;
	pid_t pid;
	int64_t id;
	int st;

	enqueue(&ctx, "test.sleep", "{\"ms\": 60000, \"sleep_attempts\": 1}",
	    NULL, 0);
	id = last_id();
	pid = start_worker("--id", "w1", "--lease", "1", NULL);
	wait_state(id, "running", 3000);
	ck_assert_str_eq(job_col(id, "locked_by"), "w1");
	kill(pid, SIGKILL);
	st = reap(pid);
	ck_assert(WIFSIGNALED(st));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = start_worker("--id", "w2", "--lease", "1", NULL);
	wait_state(id, "done", 5000);
	ck_assert_str_eq(job_col(id, "attempts"), "2");
	ck_assert_str_eq(job_col(id, "locked_by"), "w2");
	ck_assert_str_eq(job_col(id, "last_error"),
	    "lease of w1 expired on attempt 1");
	kill(pid, SIGTERM);
	st = reap(pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

/* SIGTERM during a job lets the job finish, then the worker exits. */
START_TEST(test_worker_sigterm_finishes_current_job)
{
	pid_t pid;
	int64_t id;
	int st;

	enqueue(&ctx, "test.sleep", "{\"ms\": 600}", NULL, 0);
	id = last_id();
	pid = start_worker("--id", "w1", NULL);
	wait_state(id, "running", 3000);
	kill(pid, SIGTERM);
	st = reap(pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_str_eq(job_col(id, "state"), "done");
	ck_assert_str_eq(job_col(id, "attempts"), "1");
}
END_TEST

static void
pg_ctl(const char *what)
{
	const char *argv[] = { getenv("PV_PG_CTL"), what, NULL };

	ck_assert_msg(argv[0] != NULL, "PV_PG_CTL is not set");
	ck_assert_int_eq(pv_proc_run(argv), 0);
}

/* A daemon outlives a database restart and listens again. */
START_TEST(test_worker_survives_database_restart)
{
	pid_t pid;
	int64_t id;
	int st;

	pid = start_worker("--id", "w1", "--poll", "10000", NULL);
	for (st = 0; st < 250 && !logged("maintenance.prune attempt 1/20");
	     st++)
		usleep(20000);
	pg_ctl("stop");
	usleep(300000);
	pg_ctl("start");
	enqueue(&ctx, "test.sleep", NULL, NULL, 0);
	id = last_id();
	wait_state(id, "done", 6000);
	ck_assert(logged("queue: PV_E_UNAVAILABLE"));
	kill(pid, SIGTERM);
	st = reap(pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

/* --once runs what is due and exits; later jobs stay queued. */
START_TEST(test_worker_once_drains_due_jobs)
{
	const char *dir = getenv("PV_BUILD_DIR");
	char path[512];
	const char *argv[] = { path, "--once", NULL };
	int i;

	snprintf(path, sizeof(path), "%s/bin/pivota-worker",
	    dir != NULL ? dir : "build/debug");
	for (i = 0; i < 3; i++)
		enqueue(&ctx, "test.sleep", NULL, NULL, 0);
	enqueue(&ctx, "test.sleep", NULL, "later", 3600);
	ck_assert_int_eq(pv_proc_run(argv), 0);
	ck_assert_str_eq(VALUE(&ctx,
	                     "SELECT string_agg(state || ':' || count, ',')"
	                     " FROM (SELECT state, count(*) FROM jobs"
	                     "  WHERE kind = 'test.sleep' GROUP BY state"
	                     "  ORDER BY state) s"),
	    "done:3,queued:1");
	ck_assert_str_eq(
	    VALUE(&ctx, "SELECT state FROM jobs WHERE dedup_key = 'later'"),
	    "queued");
	ck_assert_str_eq(VALUE(&ctx,
	                     "SELECT count(*) FROM jobs"
	                     " WHERE kind = 'maintenance.prune'"
	                     " AND state = 'done'"),
	    "1");
}
END_TEST

Suite *
jobs_suite(void)
{
	Suite *s = suite_create("jobs");
	TCase *tc = tcase_create("queue");
	TCase *tw = tcase_create("worker");
	TCase *tb = tcase_create("backoff");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_job_enqueue_rolled_back_leaves_nothing);
	tcase_add_test(tc, test_job_enqueue_dedup_ignores_repeats);
	tcase_add_test(tc, test_job_enqueue_refuses_bad_kind_and_payload);
	tcase_add_test(tc, test_job_enqueue_notifies_at_commit);
	tcase_add_test(tc, test_job_claim_orders_by_run_at);
	tcase_add_test(tc, test_job_claim_concurrent_each_job_once);
	tcase_add_test(tc, test_job_fail_backs_off_then_dead);
	tcase_add_test(tc, test_job_fail_honours_retry_after);
	tcase_add_test(tc, test_job_fail_permanent_unknown_and_open_tx);
	tcase_add_test(tc, test_job_expired_lease_is_reclaimed);
	tcase_add_test(tc, test_job_expired_lease_on_last_attempt_is_dead);
	tcase_add_test(tc, test_job_retry_dead);
	tcase_add_test(tc, test_job_prune_deletes_old_rows_and_reschedules);
	suite_add_tcase(s, tc);

	tcase_add_test(tb, test_job_backoff_full_jitter);
	suite_add_tcase(s, tb);

	tcase_add_checked_fixture(tw, worker_setup, teardown);
	tcase_set_timeout(tw, 30);
	tcase_add_test(tw, test_worker_runs_new_job_at_once);
	tcase_add_test(tw, test_worker_killed_mid_job_is_finished_by_next);
	tcase_add_test(tw, test_worker_sigterm_finishes_current_job);
	tcase_add_test(tw, test_worker_once_drains_due_jobs);
	tcase_add_test(tw, test_worker_survives_database_restart);
	suite_add_tcase(s, tw);
	return s;
}
