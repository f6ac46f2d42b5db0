#ifndef PV_SYNC_H
#define PV_SYNC_H

#include <stdint.h>

#include "pv_catalog.h"
#include "pv_err.h"
#include "pv_http.h"
#include "pv_job.h"

/*
 * The Shopify catalogue sync (issue 4): a merchant's store copied into
 * its catalog by the durable job catalog.sync, resumable page by page
 * and never visible half-done.  The design is in docs/shopify.md
 * ("Catalogue sync"); the state lives in merchant_shopify (migrations
 * 0007 and 0010).
 *
 * A run walks the store with pv_shopify_products_each() from
 * sync_cursor.  Each page is staged into the run's catalog batch (a
 * replace batch, pv_catalog.h) in one transaction with the new cursor
 * and counters, so a worker killed mid-way resumes after the last
 * committed page.  At the end the batch is applied, the vocabulary
 * rebuilt and the state set to done in one transaction: searches see
 * the old catalog until then.  Transient failures (5xx after
 * pv_upstream's retries, throttling, timeouts, the database) make the
 * job retry from the checkpoint; a token Shopify refuses (or a scope
 * or shop it lacks) fails the run at once: state failed, sync_error
 * set, the job dead.
 *
 * Strings returned live in ctx->arena.
 */

/* The job kind, and the prefix of its dedup key "catalog.sync:ID:RUN". */
#define PV_SYNC_KIND "catalog.sync"

/* Where a merchant's sync is, as `pivotactl sync-products` shows it. */
struct pv_sync_status {
	const char *merchant_id; /* internal id */
	const char *merchant;    /* public id, mer_... */
	const char *shop;        /* shop domain */
	const char *state;       /* never queued running done failed */
	long run;                /* sync requests so far */
	long products;           /* products staged by this run */
	long pages;              /* pages committed by this run */
	long skipped;            /* products refused by this run */
	const char *problems;    /* JSON array of the first problems */
	const char *started_at;  /* ISO 8601 UTC, or NULL */
	const char *finished_at; /* ISO 8601 UTC, or NULL */
	const char *error;       /* last failure, or NULL */
	const char *result;      /* JSON object of the last apply, or NULL */
	const char *job_id;      /* the run's job, or NULL (pruned) */
	const char *job_state;   /* queued running done dead, or NULL */
	long job_attempts;       /* claims of the job so far */
	int connected;           /* 0 once the store was disconnected */
};

/*
 * The sync of merchant (public id "mer_...", or the internal id in
 * decimal).  PV_E_NOTFOUND if the merchant has never connected a
 * store; PV_E_DB.
 */
int pv_sync_status(struct pv_ctx *ctx, const char *merchant,
    struct pv_sync_status *st, struct pv_err *err);

/*
 * Whether the run st describes has ended: 1 once it is done or failed
 * (state failed, or its job dead before the run was done), with
 * *failed set for the latter; 0 while it is queued or running, and
 * before the first run.
 */
int pv_sync_ended(const struct pv_sync_status *st, int *failed);

/*
 * Asks for a sync: unless the current run's job is still queued or
 * running (then *enqueued is 0 and nothing changes), bumps sync_run,
 * sets the state to queued and enqueues catalog.sync for the new run,
 * in one transaction holding the merchant_shopify row.  Fills *st
 * afterwards.  PV_E_NOTFOUND (no store), PV_E_CONFLICT (the store is
 * disconnected), PV_E_DB.
 */
int pv_sync_request(struct pv_ctx *ctx, const char *merchant, int *enqueued,
    struct pv_sync_status *st, struct pv_err *err);

/*
 * The catalog.sync job handler (payload {"merchant_id": "ID", "run":
 * N}); see above.  Returns 0 when the run finished (or is stale: a
 * newer run exists, or this one is already done), -1 to retry later,
 * PV_JOB_PERMANENT when the store refuses us or is gone.
 */
int pv_sync_job(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err);

/*
 * Adds one Shopify product node (the shape of pv_shopify.h) to c, in
 * c's currency: gids become external ids, prices are parsed with
 * pv_money_parse, descriptionHtml becomes plain text, status other
 * than ACTIVE becomes archived.  A product that cannot be taken is
 * recorded as a problem of c (and p->bad set) rather than an error.
 * Copies what it keeps into c->arena.  Returns -1 only for
 * PV_E_NOMEM/PV_E_TOOBIG.
 */
int pv_sync_product(struct pv_catalog *c, struct json_object *node,
    struct pv_err *err);

/* Plain text of a little HTML (arena memory), at most max bytes. */
const char *pv_sync_html_text(struct pv_arena *a, const char *html, size_t max,
    struct pv_err *err);

#endif /* PV_SYNC_H */
