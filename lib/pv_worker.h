#ifndef PV_WORKER_H
#define PV_WORKER_H

#include <stddef.h>
#include <time.h>

#include "pv_err.h"
#include "pv_http.h"
#include "pv_job.h"

/*
 * pivota-worker: the program that runs the job queue (pv_job.h), and
 * the table of job kinds it knows.  A module that needs background
 * work adds one row to pv_worker_handlers[] in pv_worker.c and
 * enqueues its kind with pv_job_enqueue().
 *
 *   pivota-worker [--once] [--id NAME] [--lease SECONDS] [--poll MS]
 *                 [--backoff-base MS] [--backoff-cap MS]
 *
 * As a daemon (make run, systemd) it sleeps on LISTEN/NOTIFY between
 * jobs and stops after the current job on SIGTERM or SIGINT.  With
 * --once it runs the jobs that are due and exits, for cron on shared
 * hosting.  Each start also enqueues this hour's maintenance.prune.
 * With PIVOTA_ENV=test it also knows the kinds test.sleep and
 * test.fail, which the tests use to kill a worker mid-job.
 */

/* The production job kinds and how many there are. */
extern const struct pv_job_handler pv_worker_handlers[];
extern const size_t pv_worker_nhandlers;

/* What maintenance.prune keeps. */
#define PV_PRUNE_IDEM_HOURS 24   /* Idempotency-Key records (API.md §1) */
#define PV_PRUNE_USAGE_DAYS 400  /* usage events: a year and a month */
#define PV_PRUNE_BATCH      5000 /* rows per DELETE */

/*
 * maintenance.prune: deletes idempotency keys older than
 * PV_PRUNE_IDEM_HOURS, usage events older than PV_PRUNE_USAGE_DAYS,
 * and finished jobs (PV_JOB_KEEP_DONE_DAYS, PV_JOB_KEEP_DEAD_DAYS), in
 * batches that each extend the lease, and then enqueues the next
 * hour's run.  Re-running it is harmless.  Fails with PV_E_DB or
 * PV_E_UNAVAILABLE.
 */
int pv_worker_prune(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err);

/*
 * Enqueues the maintenance.prune run of the UTC hour holding t, due at
 * the start of that hour (now if it has begun), with the dedup key
 * "maintenance.prune@YYYY-MM-DDTHH" so each hour is pruned once however
 * many workers start.
 */
int pv_worker_enqueue_prune(struct pv_ctx *ctx, time_t t, struct pv_err *err);

/*
 * orders.expire: cancels unpaid orders whose reservation ran out
 * (pv_order_expire) and enqueues the next sweep, one per minute under
 * the dedup key "orders.expire@YYYY-MM-DDTHH:MM", so any number of
 * workers sweep each minute once.  The worker seeds the chain.
 */
#define PV_WORKER_EXPIRE_S 60
int pv_worker_expire(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err);
int pv_worker_enqueue_expire(struct pv_ctx *ctx, time_t t, struct pv_err *err);

/* Runs the worker program; returns the exit status (0, 1, 2 = usage). */
int pv_worker_main(int argc, char **argv);

#endif /* PV_WORKER_H */
