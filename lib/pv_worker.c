/*
 * pivota-worker: options, signals, the handler table, and the job
 * kinds that belong to no other module (maintenance.prune, and the
 * test kinds).  The queue itself is pv_job.c.
 *
 * The stop flag and the self-pipe are the only process-wide state:
 * a signal handler can reach nothing else.  The pipe wakes a worker
 * sleeping in poll() even when the signal lands just before the call.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pv_agent_events.h"
#include "pv_config.h"
#include "pv_db.h"
#include "pv_job.h"
#include "pv_json.h"
#include "pv_log.h"
#include "pv_mail.h"
#include "pv_order.h"
#include "pv_order_push.h"
#include "pv_psp_sandbox.h"
#include "pv_sync.h"
#include "pv_valid.h"
#include "pv_worker.h"

#define PRUNE_MAX_BATCHES 200 /* per table and run; the next hour goes on */
#define SEED_RETRY_MS     2000

/* Job kinds of the product.  New kinds: one row each, above the end. */
const struct pv_job_handler pv_worker_handlers[] = {
	{ "maintenance.prune", pv_worker_prune },
	{ "orders.expire", pv_worker_expire },
	{ "sandbox.webhook", pv_sandbox_webhook_job },
	{ PV_SYNC_KIND, pv_sync_job },
	{ PV_ORDER_PUSH_KIND, pv_order_push },
	{ PV_AGENT_WEBHOOK_KIND, pv_agent_webhook_job },
	{ PV_MAIL_KIND, pv_mail_job },
};
const size_t pv_worker_nhandlers =
    sizeof(pv_worker_handlers) / sizeof(pv_worker_handlers[0]);

static int test_sleep(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err);
static int test_fail(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err);

/* Kinds only a worker with PIVOTA_ENV=test knows. */
static const struct pv_job_handler test_handlers[] = {
	{ "test.sleep", test_sleep },
	{ "test.fail", test_fail },
};
#define NTEST (sizeof(test_handlers) / sizeof(test_handlers[0]))

static volatile sig_atomic_t stop_flag;
static int wake_pipe[2] = { -1, -1 };

enum prune_what {
	PRUNE_IDEM,
	PRUNE_USAGE,
	PRUNE_DONE,
	PRUNE_DEAD,
	PRUNE__MAX
};

/* How long each kind of row is kept, in the unit its statement uses. */
static const int prune_keep[PRUNE__MAX] = {
	PV_PRUNE_IDEM_HOURS,   /* PRUNE_IDEM, hours */
	PV_PRUNE_USAGE_DAYS,   /* PRUNE_USAGE, days */
	PV_JOB_KEEP_DONE_DAYS, /* PRUNE_DONE, days */
	PV_JOB_KEEP_DEAD_DAYS, /* PRUNE_DEAD, days */
};

static const char *const prune_names[PRUNE__MAX] = {
	"idempotency keys", /* PRUNE_IDEM */
	"usage events",     /* PRUNE_USAGE */
	"done jobs",        /* PRUNE_DONE */
	"dead jobs",        /* PRUNE_DEAD */
};

/*
 * Deletes one batch of old rows of one kind; *n gets how many.  Usage
 * events have no index on their time alone (every request writes one,
 * so the hot path does not pay for it): ids grow with time, so the
 * statement looks at the oldest batch by id and deletes those past
 * the retention.  It never scans more than a batch.
 */
static int
prune_batch(struct pv_ctx *ctx, enum prune_what what, long *n,
    struct pv_err *err)
{
	char batch[24], keep[24];
	const char *p[2] = { batch, keep };
	PGresult *res = NULL;
	int rc = -1;

	if (snprintf(batch, sizeof(batch), "%d", PV_PRUNE_BATCH) < 0 ||
	    snprintf(keep, sizeof(keep), "%d", prune_keep[what]) < 0) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "snprintf failed");
		return -1;
	}
	switch (what) {
	case PRUNE_IDEM:
		rc = pv_db_exec(ctx,
		    PV_SQL("DELETE FROM idempotency_keys"
		           " WHERE (agent_id, method, path, key) IN ("
		           "  SELECT agent_id, method, path, key"
		           "  FROM idempotency_keys WHERE created_at <"
		           "  now() - make_interval(hours => $2::int)"
		           "  LIMIT $1::int)"),
		    2, p, &res, err);
		break;
	case PRUNE_USAGE:
		rc = pv_db_exec(ctx,
		    PV_SQL(
		        "DELETE FROM usage_events WHERE id IN ("
		        " SELECT id FROM (SELECT id, at FROM usage_events"
		        "  ORDER BY id LIMIT $1::int) oldest"
		        " WHERE at < now() - make_interval(days => $2::int))"),
		    2, p, &res, err);
		break;
	case PRUNE_DONE:
		rc = pv_db_exec(ctx,
		    PV_SQL("DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
		           " WHERE state = 'done' AND updated_at <"
		           "  now() - make_interval(days => $2::int)"
		           " LIMIT $1::int)"),
		    2, p, &res, err);
		break;
	case PRUNE_DEAD:
		rc = pv_db_exec(ctx,
		    PV_SQL("DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
		           " WHERE state = 'dead' AND updated_at <"
		           "  now() - make_interval(days => $2::int)"
		           " LIMIT $1::int)"),
		    2, p, &res, err);
		break;
	case PRUNE__MAX:
		PV_ERR(err, PV_E_INTERNAL, NULL, "bad prune kind");
		break;
	}
	if (rc == 0)
		*n = strtol(PQcmdTuples(res), NULL, 10);
	return rc;
}

/* The maintenance.prune handler; see pv_worker.h. */
int
pv_worker_prune(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err)
{
	long total[PRUNE__MAX] = { 0 }, got = 0;
	int what, i;

	for (what = 0; what < PRUNE__MAX; what++) {
		for (i = 0; i < PRUNE_MAX_BATCHES; i++) {
			if (prune_batch(ctx, (enum prune_what)what, &got,
			        err) == -1)
				return -1;
			total[what] += got;
			if (got < PV_PRUNE_BATCH)
				break;
			ctx->now = time(NULL);
			if (pv_job_touch(ctx, job, PV_JOB_LEASE_S, err) == -1)
				return -1;
		}
	}
	pv_log_msg(PV_LOG_INFO, "prune: deleted %ld %s, %ld %s, %ld %s, %ld %s",
	    total[PRUNE_IDEM], prune_names[PRUNE_IDEM], total[PRUNE_USAGE],
	    prune_names[PRUNE_USAGE], total[PRUNE_DONE],
	    prune_names[PRUNE_DONE], total[PRUNE_DEAD],
	    prune_names[PRUNE_DEAD]);
	return pv_worker_enqueue_prune(ctx, time(NULL) + 3600, err);
}

/* Enqueues one hour's prune; see pv_worker.h. */
int
pv_worker_enqueue_prune(struct pv_ctx *ctx, time_t t, struct pv_err *err)
{
	time_t hour = t - t % 3600, now = time(NULL);
	char key[64];
	struct tm tm;

	if (gmtime_r(&hour, &tm) == NULL ||
	    strftime(key, sizeof(key), "maintenance.prune@%Y-%m-%dT%H", &tm) ==
	        0) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "cannot format the hour");
		return -1;
	}
	return pv_job_enqueue(ctx, "maintenance.prune", NULL, key,
	    hour > now ? (int)(hour - now) : 0, err);
}

/* The orders.expire handler; see pv_worker.h. */
int
pv_worker_expire(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err)
{
	long n = 0;

	(void)job;
	if (pv_order_expire(ctx, &n, err) == -1)
		return -1;
	if (n > 0)
		pv_log_msg(PV_LOG_INFO, "expired %ld unpaid orders", n);
	return pv_worker_enqueue_expire(ctx, time(NULL) + PV_WORKER_EXPIRE_S,
	    err);
}

/* Enqueues one minute's expiry sweep; see pv_worker.h. */
int
pv_worker_enqueue_expire(struct pv_ctx *ctx, time_t t, struct pv_err *err)
{
	time_t slot = t - t % PV_WORKER_EXPIRE_S, now = time(NULL);
	char key[64];
	struct tm tm;

	if (gmtime_r(&slot, &tm) == NULL ||
	    strftime(key, sizeof(key), "orders.expire@%Y-%m-%dT%H:%M", &tm) ==
	        0) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "cannot format the minute");
		return -1;
	}
	return pv_job_enqueue(ctx, "orders.expire", NULL, key,
	    slot > now ? (int)(slot - now) : 0, err);
}

/*
 * test.sleep {"ms": N, "sleep_attempts": K}: sleeps N ms (signals do
 * not cut it short) on attempts up to K (default: all), then succeeds.
 */
static int
test_sleep(struct pv_ctx *ctx, const struct pv_job *job, struct pv_err *err)
{
	struct timespec ts;
	int64_t ms, upto;

	(void)ctx;
	if (pv_json_int_opt(job->args, "ms", 0, 600000, 0, &ms, err) == -1 ||
	    pv_json_int_opt(job->args, "sleep_attempts", 0, 1000, 1000, &upto,
	        err) == -1)
		return PV_JOB_PERMANENT;
	if (job->attempt > upto)
		return 0;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	return 0;
}

/*
 * test.fail {"message": M, "permanent": B, "retry_after": S}: fails
 * with PV_E_UPSTREAM and message M.
 */
static int
test_fail(struct pv_ctx *ctx, const struct pv_job *job, struct pv_err *err)
{
	const char *msg;
	int64_t after;
	bool permanent;

	(void)ctx;
	if (pv_json_str_opt(job->args, "message", 1, 200, &msg, err) == -1 ||
	    pv_json_bool_opt(job->args, "permanent", false, &permanent, err) ==
	        -1 ||
	    pv_json_int_opt(job->args, "retry_after", 0, 86400, 0, &after,
	        err) == -1)
		return PV_JOB_PERMANENT;
	PV_ERR(err, PV_E_UPSTREAM, NULL, "%s",
	    msg != NULL ? msg : "test.fail failed");
	err->retry_after = (int)after;
	return permanent ? PV_JOB_PERMANENT : -1;
}

static void
on_signal(int sig)
{
	int saved = errno;
	ssize_t w = 0;

	(void)sig;
	stop_flag = 1;
	if (wake_pipe[1] >= 0)
		w = write(wake_pipe[1], "", 1);
	(void)w;
	errno = saved;
}

/* The self-pipe (non-blocking, close-on-exec) and the handlers. */
static int
catch_signals(void)
{
	struct sigaction sa;
	int i;

	if (pipe(wake_pipe) == -1)
		return -1;
	for (i = 0; i < 2; i++)
		if (fcntl(wake_pipe[i], F_SETFL, O_NONBLOCK) == -1 ||
		    fcntl(wake_pipe[i], F_SETFD, FD_CLOEXEC) == -1)
			return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1)
		return -1;
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pivota-worker [--once] [--id NAME] [--lease SECONDS]"
	    " [--poll MS]\n"
	    "                     [--backoff-base MS] [--backoff-cap MS]\n"
	    "  --once          run the jobs that are due, then exit (cron)\n"
	    "  --id NAME       who holds the leases (default host:pid)\n"
	    "  --lease S       seconds a claimed job is held (%d)\n"
	    "  --poll MS       longest idle sleep; enqueues wake the worker"
	    " at once (%d)\n"
	    "  --backoff-base MS, --backoff-cap MS\n"
	    "                  retry delay window (%d, %d)\n",
	    PV_JOB_LEASE_S, PV_JOB_IDLE_MS, PV_JOB_BACKOFF_BASE_MS,
	    PV_JOB_BACKOFF_CAP_MS);
}

/* One numeric option: argv[*i] names it, argv[*i + 1] is the value. */
static int
num_opt(int argc, char **argv, int *i, int64_t min, int64_t max, int *out,
    struct pv_err *err)
{
	int64_t v;

	if (*i + 1 >= argc) {
		PV_ERR(err, PV_E_INVALID, argv[*i], "missing value for %s",
		    argv[*i]);
		return -1;
	}
	if (pv_valid_int64(argv[*i + 1], min, max, &v, argv[*i], err) == -1)
		return -1;
	*out = (int)v;
	*i += 1;
	return 0;
}

/* Fills opts from the command line; PV_E_INVALID on bad usage. */
static int
parse_args(int argc, char **argv, struct pv_job_opts *opts, int *help,
    struct pv_err *err)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--once") == 0) {
			opts->once = 1;
		} else if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			*help = 1;
		} else if (strcmp(argv[i], "--id") == 0) {
			if (i + 1 >= argc || argv[i + 1][0] == '\0' ||
			    strlen(argv[i + 1]) > 200) {
				PV_ERR(err, PV_E_INVALID, "--id",
				    "--id takes a name of 1 to 200 bytes");
				return -1;
			}
			opts->worker_id = argv[++i];
		} else if (strcmp(argv[i], "--lease") == 0) {
			if (num_opt(argc, argv, &i, 1, 86400, &opts->lease_s,
			        err) == -1)
				return -1;
		} else if (strcmp(argv[i], "--poll") == 0) {
			if (num_opt(argc, argv, &i, 10, 3600000, &opts->idle_ms,
			        err) == -1)
				return -1;
		} else if (strcmp(argv[i], "--backoff-base") == 0) {
			if (num_opt(argc, argv, &i, 1, 86400000,
			        &opts->backoff_base_ms, err) == -1)
				return -1;
		} else if (strcmp(argv[i], "--backoff-cap") == 0) {
			if (num_opt(argc, argv, &i, 1, 86400000,
			        &opts->backoff_cap_ms, err) == -1)
				return -1;
		} else {
			PV_ERR(err, PV_E_INVALID, NULL, "unknown option %s",
			    argv[i]);
			return -1;
		}
	}
	return 0;
}

/*
 * Enqueues this hour's prune.  A daemon waits for the database rather
 * than give up (the chain of hourly prunes starts here); a once run
 * reports the failure.
 */
static int
seed(struct pv_ctx *ctx, const struct pv_job_opts *opts, struct pv_err *err)
{
	while (!stop_flag) {
		pv_err_clear(err);
		ctx->now = time(NULL);
		if (pv_worker_enqueue_prune(ctx, ctx->now, err) == 0 &&
		    pv_worker_enqueue_expire(ctx, ctx->now, err) == 0)
			return 0;
		pv_arena_reset(ctx->arena);
		if (opts->once)
			return -1;
		pv_log_msg(PV_LOG_WARN,
		    "cannot enqueue the prune and expiry: %s %s",
		    pv_err_name(err->code), err->msg);
		(void)pv_db_wait(ctx, wake_pipe[0], SEED_RETRY_MS, err);
	}
	return 0;
}

/* The worker program; see pv_worker.h. */
int
pv_worker_main(int argc, char **argv)
{
	struct pv_job_handler handlers[sizeof(pv_worker_handlers) /
	        sizeof(pv_worker_handlers[0]) +
	    NTEST];
	struct pv_err err = { 0 };
	struct pv_job_opts opts;
	struct pv_config cfg;
	struct pv_ctx ctx;
	char id[300], host[256];
	size_t n = pv_worker_nhandlers;
	int help = 0, rc;

	pv_job_opts_init(&opts);
	opts.worker_id = NULL;
	if (parse_args(argc, argv, &opts, &help, &err) == -1) {
		fprintf(stderr, "pivota-worker: %s\n", err.msg);
		usage(stderr);
		return 2;
	}
	if (help) {
		usage(stdout);
		return 0;
	}
	if (opts.worker_id == NULL) {
		if (gethostname(host, sizeof(host)) == -1)
			memcpy(host, "localhost", sizeof("localhost"));
		host[sizeof(host) - 1] = '\0';
		if (snprintf(id, sizeof(id), "%s:%ld", host, (long)getpid()) <
		    0)
			memcpy(id, "worker", sizeof("worker"));
		opts.worker_id = id;
	}
	if (pv_ctx_open(&ctx, "pivota-worker", &cfg, &err) == -1) {
		fprintf(stderr, "pivota-worker: %s\n", err.msg);
		return 1;
	}
	memcpy(handlers, pv_worker_handlers, sizeof(pv_worker_handlers));
	if (cfg.env == PV_ENV_TEST) {
		memcpy(handlers + n, test_handlers, sizeof(test_handlers));
		n += NTEST;
	}
	if (catch_signals() == -1) {
		fprintf(stderr, "pivota-worker: signals: %s\n",
		    strerror(errno));
		pv_ctx_close(&ctx, &cfg);
		return 1;
	}
	opts.stop = &stop_flag;
	opts.wake_fd = wake_pipe[0];
	pv_log_msg(PV_LOG_INFO, "%s %s: %zu kinds, lease %d s%s",
	    opts.worker_id, opts.once ? "draining due jobs" : "started", n,
	    opts.lease_s, cfg.env == PV_ENV_TEST ? " (test kinds too)" : "");
	rc = seed(&ctx, &opts, &err);
	if (rc == 0)
		rc = pv_job_worker(&ctx, handlers, n, &opts, &err);
	if (rc == -1)
		pv_log_msg(PV_LOG_ERROR, "%s: %s %s:%d %s", opts.worker_id,
		    pv_err_name(err.code), err.file != NULL ? err.file : "?",
		    err.line, err.msg);
	else
		pv_log_msg(PV_LOG_INFO, "%s stopped", opts.worker_id);
	pv_ctx_close(&ctx, &cfg);
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	return rc == 0 ? 0 : 1;
}
