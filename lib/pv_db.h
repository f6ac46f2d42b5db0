#ifndef PV_DB_H
#define PV_DB_H

#include <time.h>

#include <libpq-fe.h>

#include "pv_err.h"
#include "pv_http.h"

/*
 * PostgreSQL.  The only module that talks to libpq's connection and
 * query functions.  Each process keeps one persistent connection,
 * opened on first use and reopened after the server restarts; every
 * statement is prepared once per connection and then executed by name,
 * so a request costs one round trip per statement and no parsing.
 *
 * SQL must be a string literal: PV_SQL(lit) expands to ("" lit ""), so
 * a variable does not compile.  The literal's address identifies the
 * prepared statement.  Parameters are $1..$n text values (NULL = SQL
 * NULL); results are text.
 *
 * Failures: a lost or unreachable server is PV_E_UNAVAILABLE (503);
 * unique violations (23505) are PV_E_CONFLICT; serialization failures
 * and deadlocks are PV_E_DB with pv_db_retryable() true; disk full and
 * other resource errors (class 53) are PV_E_UNAVAILABLE; anything else
 * is PV_E_DB.  The SQLSTATE is kept for callers that need it.
 */
#define PV_SQL(lit) ("" lit "")

struct pv_db; /* opaque */

/*
 * A connection handle for conninfo (URI or key=value; "" = libpq's
 * defaults).  Does not connect yet.  app names us in pg_stat_activity.
 * Returns NULL if malloc fails.
 */
struct pv_db *pv_db_new(const char *conninfo, const char *app);
void pv_db_free(struct pv_db *db);

/*
 * Runs the prepared form of sql with n text params.  On success *res is
 * the result, owned by ctx->arena (may be NULL if res is NULL).  Rows:
 * PQntuples(*res).  A connection lost outside a transaction is reopened
 * and the statement retried once.
 */
int pv_db_exec(struct pv_ctx *ctx, const char *sql, int n,
    const char *const *params, PGresult **res, struct pv_err *err);

/*
 * Sends a statement without waiting for its result, for writes nobody
 * waits on (usage events).  The result is collected, and a failure
 * logged, before the connection's next use.  Not inside a transaction.
 */
int pv_db_send(struct pv_ctx *ctx, const char *sql, int n,
    const char *const *params, struct pv_err *err);

/* Waits for the result of an earlier pv_db_send(), if any. */
void pv_db_settle(struct pv_ctx *ctx);

/* Like pv_db_exec() but fails with PV_E_NOTFOUND unless one row came back. */
int pv_db_exec_one(struct pv_ctx *ctx, const char *sql, int n,
    const char *const *params, PGresult **res, struct pv_err *err);

/*
 * BEGIN.  Transactions do not nest.  The BEGIN itself is sent with the
 * transaction's first statement (one round trip for both).
 */
int pv_db_begin(struct pv_ctx *ctx, struct pv_err *err);

/*
 * Queues a statement whose result nobody needs (at most one) to run
 * last in this transaction, sent with its COMMIT in one round trip.  It
 * is dropped if the transaction rolls back; if it fails, the commit
 * fails (pv_db_end() reports it and rolls back).  Parameters are copied.
 */
int pv_db_defer(struct pv_ctx *ctx, const char *sql, int n,
    const char *const *params, struct pv_err *err);

/*
 * COMMIT if commit is non-zero and no error is recorded in err, else
 * ROLLBACK.  Returns -1 if the COMMIT itself failed (and records it).
 */
int pv_db_end(struct pv_ctx *ctx, int commit, struct pv_err *err);

/*
 * Runs fn(ctx, arg, err) inside a transaction, committing if it returns
 * 0.  Serialization failures and deadlocks roll back and run fn again
 * (a few times, with jittered backoff); fn must therefore only change
 * state through the database.  Returns fn's result or -1.
 */
int pv_db_tx(struct pv_ctx *ctx,
    int (*fn)(struct pv_ctx *ctx, void *arg, struct pv_err *err), void *arg,
    struct pv_err *err);

/* Non-zero while a transaction is open. */
int pv_db_in_tx(const struct pv_db *db);

/* Non-zero if the last failure was a serialization failure or deadlock. */
int pv_db_retryable(const struct pv_db *db);

/*
 * The SQLSTATE our own triggers raise when a state change is not
 * allowed (order_transitions): PV_E_CONFLICT with the trigger's message.
 */
#define PV_DB_STATE_CONFLICT "PV409"

/* SQLSTATE of the last failure, or "". */
const char *pv_db_sqlstate(const struct pv_db *db);

/*
 * Runs a script of several statements (a migration) with the simple
 * query protocol.  Only pivotactl uses it; never with client input.
 */
int pv_db_script(struct pv_ctx *ctx, const char *sql, struct pv_err *err);

/*
 * Is the database reachable?  Without a round trip when the connection
 * is open, idle with nothing to read (a server that shuts down sends a
 * notice and closes: both are readable) and answered a statement in
 * the last max_age seconds; otherwise SELECT 1.  For health checks
 * that must not cost a query each.
 */
int pv_db_alive(struct pv_ctx *ctx, time_t max_age, struct pv_err *err);

/*
 * Waits up to timeout_ms for a notification on a channel this session
 * LISTENs to (run LISTEN with pv_db_exec() first), or for fd to become
 * readable (fd < 0: none), or for a signal.  Notifications that came
 * in during earlier statements count at once.  Returns 1 if any
 * notification arrived (all pending ones are consumed; payloads are
 * not kept), 0 otherwise, or -1 with PV_E_UNAVAILABLE if the
 * connection was lost (the next statement reconnects, and the LISTEN
 * must then be repeated).  Without an open connection it only waits
 * for fd.
 */
int pv_db_wait(struct pv_ctx *ctx, int fd, int timeout_ms, struct pv_err *err);

/* Checks the server answers (SELECT 1). */
int pv_db_ping(struct pv_ctx *ctx, struct pv_err *err);

/* Value of row r, column c (arena lifetime), or NULL for SQL NULL. */
const char *pv_db_get(const PGresult *res, int r, int c);

#endif /* PV_DB_H */
