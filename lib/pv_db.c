/*
 * The PostgreSQL connection.  Prepared statements are remembered in a
 * small open-addressing table keyed by the SQL literal's address; the
 * table is emptied whenever the connection is reopened, because
 * prepared statements die with their session.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "pv_db.h"
#include "pv_log.h"

#define NSLOT       512 /* prepared statements per process, at most */
#define TX_TRIES    5   /* attempts of a serializable transaction */
#define RETRY_AFTER 1   /* seconds between reconnect attempts when down */

struct stmt {
	const char *sql; /* the literal, or NULL for a free slot */
	unsigned id;     /* name is "s<id>" */
};

struct pv_db {
	PGconn *conn;      /* NULL until the first use */
	char *conninfo;    /* how to connect */
	char *app;         /* application_name */
	int in_tx;         /* in a transaction: BEGIN sent or begin_pending */
	int begin_pending; /* BEGIN not sent: goes with the next statement */
	const char *defer_sql;     /* pv_db_defer(): goes with COMMIT */
	int defer_n;               /* its number of parameters */
	const char **defer_params; /* and their arena copies */
	int pending;               /* a pv_db_send() result is still unread */
	int retryable;             /* last failure was 40001 or 40P01 */
	char sqlstate[6];          /* SQLSTATE of the last failure */
	time_t down_until; /* fail fast until then after a failed connect */
	time_t last_ok;    /* when the server last answered a statement */
	unsigned nstmt;    /* statements prepared on this connection */
	struct stmt slots[NSLOT]; /* prepared statements */
};

/* Makes a handle; connecting waits for the first statement. */
struct pv_db *
pv_db_new(const char *conninfo, const char *app)
{
	struct pv_db *db;

	if ((db = calloc(1, sizeof(*db))) == NULL)
		return NULL;
	if ((db->conninfo = strdup(conninfo != NULL ? conninfo : "")) == NULL ||
	    (db->app = strdup(app != NULL ? app : "pivota")) == NULL) {
		pv_db_free(db);
		return NULL;
	}
	return db;
}

/* Closes the connection and frees the handle.  NULL is allowed. */
void
pv_db_free(struct pv_db *db)
{
	if (db == NULL)
		return;
	if (db->conn != NULL)
		PQfinish(db->conn);
	free(db->conninfo);
	free(db->app);
	free(db);
}

int
pv_db_in_tx(const struct pv_db *db)
{
	return db->in_tx;
}

int
pv_db_retryable(const struct pv_db *db)
{
	return db->retryable;
}

const char *
pv_db_sqlstate(const struct pv_db *db)
{
	return db->sqlstate;
}

static void
forget_statements(struct pv_db *db)
{
	memset(db->slots, 0, sizeof(db->slots));
	db->nstmt = 0;
}

static void
disconnect(struct pv_db *db)
{
	if (db->conn != NULL)
		PQfinish(db->conn);
	db->conn = NULL;
	db->in_tx = 0;
	db->begin_pending = 0;
	db->defer_sql = NULL;
	db->pending = 0;
	forget_statements(db);
}

/* Copies a libpq message without its line breaks (logs escape the rest). */
static void
oneline(char *dst, size_t size, const char *src)
{
	size_t i;

	if (snprintf(dst, size, "%s", src) < 0)
		dst[0] = '\0';
	for (i = 0; dst[i] != '\0'; i++)
		if (dst[i] == '\n' || dst[i] == '\t')
			dst[i] = ' ';
	while (i > 0 && dst[i - 1] == ' ')
		dst[--i] = '\0';
}

/* Opens the connection unless it is open; PV_E_UNAVAILABLE if not. */
static int
connect_db(struct pv_db *db, time_t now, struct pv_err *err)
{
	/*
	 * gssencmode comes before dbname, so the URL may still ask for it:
	 * libpq's default ("prefer") starts Kerberos on every connection
	 * to look for credentials we never have (0.5 MiB of RSS per
	 * process).  The ones after dbname override the URL.
	 */
	const char *const kw[] = { "gssencmode", "dbname", "connect_timeout",
		"application_name", "keepalives_idle", "options", NULL };
	const char *const val[] = { "disable", db->conninfo, "3", db->app, "30",
		"-c client_min_messages=warning", NULL };
	char msg[200];
	int pending;

	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
		return 0;
	pending = db->begin_pending; /* a transaction not yet begun survives */
	disconnect(db);
	db->in_tx = db->begin_pending = pending;
	if (now < db->down_until) {
		PV_ERR(err, PV_E_UNAVAILABLE, NULL,
		    "database unavailable (retrying shortly)");
		return -1;
	}
	db->conn = PQconnectdbParams(kw, val, 1);
	if (db->conn == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory connecting");
		return -1;
	}
	if (PQstatus(db->conn) != CONNECTION_OK) {
		oneline(msg, sizeof(msg), PQerrorMessage(db->conn));
		PV_ERR(err, PV_E_UNAVAILABLE, NULL, "cannot connect: %s", msg);
		disconnect(db);
		db->down_until = now + RETRY_AFTER;
		return -1;
	}
	db->down_until = 0;
	return 0;
}

/* The slot for sql: its own, or the free one where it belongs. */
static struct stmt *
slot_for(struct pv_db *db, const char *sql)
{
	size_t h = ((uintptr_t)sql >> 4) % NSLOT, i;

	for (i = 0; i < NSLOT; i++) {
		struct stmt *s = &db->slots[(h + i) % NSLOT];

		if (s->sql == sql || s->sql == NULL)
			return s;
	}
	return NULL;
}

/* Records a failed result in err with the right code. */
static void
fail(struct pv_db *db, const PGresult *r, struct pv_err *err)
{
	const char *state, *m;
	char msg[200];

	state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (snprintf(db->sqlstate, sizeof(db->sqlstate), "%s",
	        state != NULL ? state : "") < 0)
		db->sqlstate[0] = '\0';
	m = r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(db->conn);
	oneline(msg, sizeof(msg), m);
	db->retryable = strcmp(db->sqlstate, "40001") == 0 ||
	    strcmp(db->sqlstate, "40P01") == 0;
	if (PQstatus(db->conn) != CONNECTION_OK ||
	    strncmp(db->sqlstate, "08", 2) == 0 ||
	    strncmp(db->sqlstate, "57P", 3) == 0 ||
	    strncmp(db->sqlstate, "53", 2) == 0)
		PV_ERR(err, PV_E_UNAVAILABLE, NULL, "database: %s", msg);
	else if (strcmp(db->sqlstate, "23505") == 0)
		PV_ERR(err, PV_E_CONFLICT, NULL, "already exists: %s", msg);
	else if (strcmp(db->sqlstate, PV_DB_STATE_CONFLICT) == 0)
		PV_ERR(err, PV_E_CONFLICT, NULL, "%s",
		    r != NULL &&
		            PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ?
		        PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) :
		        msg);
	else
		PV_ERR(err, PV_E_DB, NULL, "database: %s", msg);
}

static void
clear_result(void *r)
{
	PQclear(r);
}

/* Collects the result of an earlier pv_db_send(), logging a failure. */
static void
drain(struct pv_db *db)
{
	char msg[200];
	PGresult *r;

	if (!db->pending)
		return;
	db->pending = 0;
	while ((r = PQgetResult(db->conn)) != NULL) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK &&
		    PQresultStatus(r) != PGRES_TUPLES_OK) {
			oneline(msg, sizeof(msg), PQresultErrorMessage(r));
			pv_log_msg(PV_LOG_WARN, "deferred statement failed: %s",
			    msg);
		}
		PQclear(r);
	}
}

static int
ok(const PGresult *r)
{
	return r != NULL &&
	    (PQresultStatus(r) == PGRES_COMMAND_OK ||
	        PQresultStatus(r) == PGRES_TUPLES_OK);
}

/*
 * The prepared statement for sql: 1 with its name in name (*is_new: it
 * still has to be prepared on this connection, and is remembered only
 * by remember()), or 0 when the table is full (run it unprepared).
 */
static int
statement_name(struct pv_db *db, const char *sql, char *name, size_t size,
    int *is_new)
{
	struct stmt *s;

	if ((s = slot_for(db, sql)) == NULL)
		return 0;
	*is_new = s->sql == NULL;
	(void)snprintf(name, size, "s%u", *is_new ? db->nstmt + 1 : s->id);
	return 1;
}

/* Records that sql is now prepared (under the name statement_name gave). */
static void
remember(struct pv_db *db, const char *sql)
{
	struct stmt *s = slot_for(db, sql);

	if (s != NULL && s->sql == NULL) {
		s->id = ++db->nstmt;
		s->sql = sql;
	}
}

/* Looks up or prepares sql; the statement name goes into name. */
static int
prepared(struct pv_db *db, const char *sql, int n, char *name, size_t size,
    PGresult **fail_res)
{
	PGresult *r;
	int is_new;

	*fail_res = NULL;
	if (statement_name(db, sql, name, size, &is_new) == 0)
		return 0; /* table full: run unprepared */
	if (is_new) {
		r = PQprepare(db->conn, name, sql, n, NULL);
		if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
			*fail_res = r;
			return -1;
		}
		PQclear(r);
		remember(db, sql);
	}
	return 1;
}

/*
 * The next result of a pipeline, reading the NULL that ends it (a
 * PIPELINE_SYNC has none).
 */
static PGresult *
next_result(PGconn *conn)
{
	PGresult *r = PQgetResult(conn), *end;

	if (r != NULL && PQresultStatus(r) != PGRES_PIPELINE_SYNC &&
	    (end = PQgetResult(conn)) != NULL)
		PQclear(end); /* not expected: one result per statement */
	return r;
}

/*
 * In one round trip (libpq pipeline mode): BEGIN if begin, the
 * statement (prepared first if new), COMMIT if commit, and a sync.
 * Returns the first failure; else COMMIT's result if commit, else the
 * statement's; NULL if the connection failed.
 */
static PGresult *
run_pipeline(struct pv_db *db, int begin, const char *sql, int n,
    const char *const *params, int commit)
{
	PGresult *r, *res = NULL, *bad = NULL;
	char name[16];
	int named, is_new = 0, sent = 1, steps, i, stmt;

	named = statement_name(db, sql, name, sizeof(name), &is_new);
	if (!PQenterPipelineMode(db->conn))
		return NULL;
	if (begin)
		sent = PQsendQueryParams(db->conn, "BEGIN", 0, NULL, NULL, NULL,
		    NULL, 0);
	if (sent && named && is_new)
		sent = PQsendPrepare(db->conn, name, sql, n, NULL);
	if (sent)
		sent = named ? PQsendQueryPrepared(db->conn, name, n, params,
		                   NULL, NULL, 0) :
		               PQsendQueryParams(db->conn, sql, n, NULL, params,
		                   NULL, NULL, 0);
	if (sent && commit)
		sent = PQsendQueryParams(db->conn, "COMMIT", 0, NULL, NULL,
		    NULL, NULL, 0);
	if (!sent || !PQpipelineSync(db->conn)) {
		(void)PQexitPipelineMode(db->conn);
		return NULL;
	}
	stmt = (begin ? 1 : 0) + (named && is_new ? 1 : 0);
	steps = stmt + 1 + (commit ? 1 : 0);
	for (i = 0; i < steps; i++) {
		if ((r = next_result(db->conn)) == NULL)
			break; /* connection lost */
		if (i == steps - 1 && ok(r) && bad == NULL) {
			res = r;
			break;
		}
		if (!ok(r) && bad == NULL)
			bad = r; /* the first failure; the rest were skipped */
		else
			PQclear(r);
		if (i == stmt - 1 && named && is_new && bad == NULL)
			remember(db, sql); /* its PREPARE succeeded */
	}
	while ((r = PQgetResult(db->conn)) != NULL) {
		int sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;

		PQclear(r);
		if (sync)
			break;
	}
	(void)PQexitPipelineMode(db->conn);
	if (bad != NULL) {
		PQclear(res);
		return bad;
	}
	return res;
}

/* One attempt: prepare if needed, execute.  Returns the result or NULL. */
static PGresult *
run(struct pv_db *db, const char *sql, int n, const char *const *params)
{
	PGresult *fail_res;
	char name[16];

	drain(db);
	if (db->begin_pending) {
		db->begin_pending = 0;
		return run_pipeline(db, 1, sql, n, params, 0);
	}
	switch (prepared(db, sql, n, name, sizeof(name), &fail_res)) {
	case 0:
		return PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL,
		    0);
	case 1:
		return PQexecPrepared(db->conn, name, n, params, NULL, NULL, 0);
	default:
		return fail_res;
	}
}

/* Runs a prepared statement; see pv_db.h. */
int
pv_db_exec(struct pv_ctx *ctx, const char *sql, int n,
    const char *const *params, PGresult **res, struct pv_err *err)
{
	struct pv_db *db = ctx->db;
	PGresult *r;
	int attempt, fresh, tx;

	if (res != NULL)
		*res = NULL;
	db->retryable = 0;
	db->sqlstate[0] = '\0';
	for (attempt = 0;; attempt++) {
		if (connect_db(db, ctx->now, err) == -1)
			return -1;
		fresh = !db->in_tx || db->begin_pending;
		r = run(db, sql, n, params);
		if (ok(r))
			break;
		if (PQstatus(db->conn) == CONNECTION_OK || !fresh ||
		    attempt == 1) {
			fail(db, r, err);
			PQclear(r);
			if (PQstatus(db->conn) != CONNECTION_OK)
				disconnect(db);
			return -1;
		}
		/*
		 * The server went away between requests, or before this
		 * transaction's first statement: reconnect once.
		 */
		PQclear(r);
		tx = db->in_tx;
		disconnect(db);
		db->in_tx = db->begin_pending = tx;
	}
	db->last_ok = ctx->now;
	if (res == NULL) {
		PQclear(r);
		return 0;
	}
	if (pv_arena_defer(ctx->arena, clear_result, r, err) == -1)
		return -1;
	*res = r;
	return 0;
}

/* Collects an outstanding pv_db_send() result; see pv_db.h. */
void
pv_db_settle(struct pv_ctx *ctx)
{
	if (ctx->db->conn != NULL)
		drain(ctx->db);
}

/* Sends without waiting; see pv_db.h. */
int
pv_db_send(struct pv_ctx *ctx, const char *sql, int n,
    const char *const *params, struct pv_err *err)
{
	struct pv_db *db = ctx->db;
	PGresult *fail_res;
	char name[16];
	int sent;

	if (db->in_tx) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "pv_db_send inside a transaction");
		return -1;
	}
	if (connect_db(db, ctx->now, err) == -1)
		return -1;
	drain(db);
	switch (prepared(db, sql, n, name, sizeof(name), &fail_res)) {
	case 0:
		sent = PQsendQueryParams(db->conn, sql, n, NULL, params, NULL,
		    NULL, 0);
		break;
	case 1:
		sent = PQsendQueryPrepared(db->conn, name, n, params, NULL,
		    NULL, 0);
		break;
	default:
		fail(db, fail_res, err);
		PQclear(fail_res);
		return -1;
	}
	if (!sent) {
		fail(db, NULL, err);
		return -1;
	}
	db->pending = 1;
	return 0;
}

/* Runs a statement that must return exactly one row. */
int
pv_db_exec_one(struct pv_ctx *ctx, const char *sql, int n,
    const char *const *params, PGresult **res, struct pv_err *err)
{
	if (pv_db_exec(ctx, sql, n, params, res, err) == -1)
		return -1;
	if (PQntuples(*res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, NULL, "not found");
		return -1;
	}
	return 0;
}

/* Starts a transaction. */
int
pv_db_begin(struct pv_ctx *ctx, struct pv_err *err)
{
	if (ctx->db->in_tx) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "transaction already open");
		return -1;
	}
	/* Sent with the transaction's first statement: one round trip. */
	ctx->db->in_tx = 1;
	ctx->db->begin_pending = 1;
	return 0;
}

/* Queues a statement for the COMMIT's round trip; see pv_db.h. */
int
pv_db_defer(struct pv_ctx *ctx, const char *sql, int n,
    const char *const *params, struct pv_err *err)
{
	struct pv_db *db = ctx->db;
	const char **p;
	int i;

	if (!db->in_tx || db->defer_sql != NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "%s",
		    db->in_tx ? "a statement is already deferred" :
		                "pv_db_defer outside a transaction");
		return -1;
	}
	if ((p = pv_arena_calloc(ctx->arena, (size_t)n + 1, sizeof(*p), err)) ==
	    NULL)
		return -1;
	for (i = 0; i < n; i++)
		if (params[i] != NULL &&
		    (p[i] = pv_arena_strdup(ctx->arena, params[i], err)) ==
		        NULL)
			return -1;
	db->defer_sql = sql;
	db->defer_n = n;
	db->defer_params = p;
	return 0;
}

/*
 * COMMIT with the deferred statement before it, one round trip.  If
 * either fails the transaction is rolled back (a failed statement left
 * it open and aborted) and the failure recorded.
 */
static int
commit_deferred(struct pv_ctx *ctx, struct pv_err *err)
{
	struct pv_err ignored = { 0 };
	struct pv_db *db = ctx->db;
	PGresult *r = NULL;
	int begin = db->begin_pending;

	db->begin_pending = 0;
	db->retryable = 0;
	db->sqlstate[0] = '\0';
	if (begin) /* nothing ran yet: a closed connection may be reopened */
		(void)connect_db(db, ctx->now, err);
	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK) {
		drain(db);
		r = run_pipeline(db, begin, db->defer_sql, db->defer_n,
		    db->defer_params, 1);
	}
	db->defer_sql = NULL;
	if (ok(r)) {
		PQclear(r);
		db->in_tx = 0;
		db->last_ok = ctx->now;
		return 0;
	}
	if (db->conn == NULL) {
		if (err->code == PV_OK)
			PV_ERR(err, PV_E_UNAVAILABLE, NULL,
			    "database: connection lost in a transaction");
	} else {
		fail(db, r, err);
	}
	PQclear(r);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK ||
	    pv_db_exec(ctx, PV_SQL("ROLLBACK"), 0, NULL, NULL, &ignored) == -1)
		disconnect(db);
	db->in_tx = 0;
	return -1;
}

/* Ends a transaction: COMMIT when asked and nothing failed. */
int
pv_db_end(struct pv_ctx *ctx, int commit, struct pv_err *err)
{
	struct pv_err ignored = { 0 };
	struct pv_db *db = ctx->db;
	char state[sizeof(db->sqlstate)];
	int rc, retryable;

	if (!db->in_tx)
		return commit && err->code == PV_OK ? 0 : -1;
	if (commit && err->code == PV_OK && db->defer_sql != NULL)
		return commit_deferred(ctx, err);
	db->defer_sql = NULL;
	if (db->begin_pending) { /* no statement ran: nothing to end */
		db->in_tx = db->begin_pending = 0;
		return commit && err->code == PV_OK ? 0 : -1;
	}
	if (commit && err->code == PV_OK) {
		rc = pv_db_exec(ctx, PV_SQL("COMMIT"), 0, NULL, NULL, err);
		db->in_tx = 0;
		return rc;
	}
	/*
	 * Keep the first error and what it said about retrying; a failed
	 * ROLLBACK closes the session.
	 */
	retryable = db->retryable;
	memcpy(state, db->sqlstate, sizeof(state));
	if (pv_db_exec(ctx, PV_SQL("ROLLBACK"), 0, NULL, NULL, &ignored) == -1)
		disconnect(db);
	db->in_tx = 0;
	db->retryable = retryable;
	memcpy(db->sqlstate, state, sizeof(state));
	return -1;
}

/* Sleeps a random 5..50 ms times the attempt before a retry. */
static void
backoff(int attempt)
{
	struct timespec ts;
	long ms;

	ms = (5 + random() % 45) * attempt;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Runs fn in a transaction, retrying serialization failures. */
int
pv_db_tx(struct pv_ctx *ctx,
    int (*fn)(struct pv_ctx *ctx, void *arg, struct pv_err *err), void *arg,
    struct pv_err *err)
{
	int attempt, rc;

	for (attempt = 1;; attempt++) {
		if (pv_db_begin(ctx, err) == -1)
			return -1;
		rc = fn(ctx, arg, err);
		if (pv_db_end(ctx, rc == 0, err) == 0)
			return 0;
		if (!ctx->db->retryable || attempt == TX_TRIES)
			return -1;
		pv_err_clear(err);
		backoff(attempt);
	}
}

/* Runs a multi-statement script (migrations). */
int
pv_db_script(struct pv_ctx *ctx, const char *sql, struct pv_err *err)
{
	struct pv_db *db = ctx->db;
	PGresult *r;
	int rc = 0;

	if (connect_db(db, ctx->now, err) == -1)
		return -1;
	drain(db);
	if (!PQsendQuery(db->conn, sql)) {
		fail(db, NULL, err);
		return -1;
	}
	while ((r = PQgetResult(db->conn)) != NULL) {
		if (rc == 0 && !ok(r)) {
			fail(db, r, err);
			rc = -1;
		}
		PQclear(r);
	}
	return rc;
}

/* Cheap liveness; see pv_db.h. */
int
pv_db_alive(struct pv_ctx *ctx, time_t max_age, struct pv_err *err)
{
	struct pv_db *db = ctx->db;
	struct pollfd pfd;

	/*
	 * An idle connection has nothing to read.  Anything readable (a
	 * shutdown notice, the close itself) means the server went away
	 * or is going: ask it properly.
	 */
	if (db->conn != NULL && !db->pending && !db->in_tx &&
	    PQstatus(db->conn) == CONNECTION_OK &&
	    ctx->now - db->last_ok < max_age) {
		pfd.fd = PQsocket(db->conn);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (pfd.fd >= 0 && poll(&pfd, 1, 0) == 0)
			return 0;
	}
	return pv_db_ping(ctx, err);
}

/* Consumes pending notifications; returns how many there were. */
static int
take_notifies(struct pv_db *db)
{
	PGnotify *n;
	int got = 0;

	while ((n = PQnotifies(db->conn)) != NULL) {
		PQfreemem(n);
		got++;
	}
	return got;
}

/* Waits for a notification, fd or a timeout; see pv_db.h. */
int
pv_db_wait(struct pv_ctx *ctx, int fd, int timeout_ms, struct pv_err *err)
{
	struct pv_db *db = ctx->db;
	struct pollfd pfd[2];
	int nfd = 0, live;

	live = db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
	    !db->in_tx;
	if (live) {
		drain(db);
		if (take_notifies(db) > 0)
			return 1;
		pfd[nfd].fd = PQsocket(db->conn);
		pfd[nfd].events = POLLIN;
		pfd[nfd++].revents = 0;
	}
	if (fd >= 0) {
		pfd[nfd].fd = fd;
		pfd[nfd].events = POLLIN;
		pfd[nfd++].revents = 0;
	}
	if (poll(pfd, (nfds_t)nfd, timeout_ms < 0 ? 0 : timeout_ms) <= 0 ||
	    !live || pfd[0].revents == 0)
		return 0; /* timeout, signal, or fd */
	if (!PQconsumeInput(db->conn) || PQstatus(db->conn) != CONNECTION_OK) {
		fail(db, NULL, err);
		disconnect(db);
		return -1;
	}
	return take_notifies(db) > 0;
}

/* SELECT 1. */
int
pv_db_ping(struct pv_ctx *ctx, struct pv_err *err)
{
	return pv_db_exec(ctx, PV_SQL("SELECT 1"), 0, NULL, NULL, err);
}

/* Text value at (r, c), or NULL for SQL NULL. */
const char *
pv_db_get(const PGresult *res, int r, int c)
{
	if (PQgetisnull(res, r, c))
		return NULL;
	return PQgetvalue(res, r, c);
}
