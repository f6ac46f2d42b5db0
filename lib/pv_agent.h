#ifndef PV_AGENT_H
#define PV_AGENT_H

#include <libpq-fe.h>

#include "pv_db.h"
#include "pv_http.h"

/*
 * Agents: who is calling, what they may do, and what they did.
 *
 * pv_agent_authenticate() is the request prologue of every agent
 * endpoint (routes flagged PV_ROUTE_AGENT).  It costs one statement,
 * one round trip: pv_agent_prologue() in SQL (migration 0022) looks
 * the key's SHA-256 up and counts the request in the agent's minute
 * window and UTC day with the agent's own sequences, so limits hold
 * exactly across processes and web nodes without a row lock per
 * request (the migration explains why the counts are exact).  Usage
 * events of finished requests are kept by pv_agent_record() and
 * written in batches (struct pv_usage_batch in pv_http.h).
 *
 * Keys are "ak_live_" + 64 lowercase hex (32 CSPRNG bytes); only the
 * hash and a display prefix are stored.
 */
#define PV_AGENT_KEY_PREFIX "ak_live_"

/*
 * The prologue statement, in pieces so that an endpoint can fold its
 * own read into the same statement (pv_agent_authenticate_with): one
 * round trip, one statement per request instead of two.
 *
 * WITH k: the SQL function's one row ($1 is the key's SHA-256 as bytea
 * text; no row: unknown, revoked or expired key; NULL counters: the
 * agent is suspended).  A folded read adds its own CTEs after it, may
 * use k.id and k.restricted (the agent has an allow-list) and
 * PV_AGENT_SQL_PROLOGUE_ALLOWED (the limits let this request through:
 * reads skip their work when they do not), takes its parameters from
 * $2, and joins its rows to PV_AGENT_SQL_PROLOGUE_FROM, after the
 * PV_AGENT_PROLOGUE_NCOLS prologue columns: the statement must return
 * at least one row when k has one.  The caller sees the read's rows
 * only once the prologue has let the request through.
 */
#define PV_AGENT_SQL_PROLOGUE_WITH \
	"WITH k AS MATERIALIZED (SELECT * FROM pv_agent_prologue($1::bytea))"
#define PV_AGENT_SQL_PROLOGUE_COLS \
	" k.id, k.public_id, k.name, k.status," \
	"  k.per_minute_limit, k.daily_quota, k.minute_count," \
	"  k.day_count, k.minute_reset, k.day_reset, k.restricted"
#define PV_AGENT_SQL_PROLOGUE_FROM " FROM k"
#define PV_AGENT_SQL_PROLOGUE_ALLOWED \
	" (k.minute_count <= k.per_minute_limit" \
	"  AND k.day_count <= k.daily_quota)"
#define PV_AGENT_PROLOGUE_NCOLS   11
#define PV_AGENT_PROLOGUE_NPARAMS 1
#define PV_AGENT_KEY_LEN          72 /* prefix + 64 hex */

struct pv_agent {
	const char *id;         /* internal id, for SQL parameters */
	const char *public_id;  /* "agt_" + 16 hex */
	const char *name;       /* display name */
	int restricted;         /* has an allow-list of merchants */
	long per_minute;        /* requests allowed per minute */
	long daily;             /* requests allowed per UTC day */
	long minute_count;      /* requests counted in this minute */
	long day_count;         /* requests counted today */
	long long minute_reset; /* epoch second the minute window ends */
	long long day_reset;    /* epoch second the UTC day ends */
};

/*
 * Authenticates req, applies the limits and sets the rate-limit
 * headers on resp.  On success ctx->agent is set.  Errors: 401
 * PV_E_AUTH (missing, malformed, unknown, revoked or expired key),
 * 403 PV_E_FORBIDDEN (suspended agent), 429 PV_E_RATELIMIT (with
 * retry_after), 503 PV_E_UNAVAILABLE (database down: never fails open).
 */
int pv_agent_authenticate(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

/*
 * pv_agent_authenticate() with a read folded into the prologue
 * statement: sql is a string literal (as for PV_SQL: its address names
 * the prepared statement) built from the PV_AGENT_SQL_PROLOGUE_*
 * pieces, params its n (at most 8) parameters from $2.  On success
 * *res holds the statement's rows, the read's columns from column
 * PV_AGENT_PROLOGUE_NCOLS; on failure nothing of the read is returned.
 * For routes flagged PV_ROUTE_AGENT_SELF.
 */
#define pv_agent_authenticate_with(ctx, req, resp, sql, n, params, res, err) \
	pv_agent_prologue((ctx), (req), (resp), PV_SQL(sql), (n), (params), \
	    (res), (err))
int pv_agent_prologue(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, const char *sql, int n, const char *const *params,
    PGresult **res, struct pv_err *err);

/*
 * Keeps the usage event of the finished request of ctx->agent (status,
 * latency and ctx->usage) in ctx->unsent, and writes the batch when it
 * is full or its oldest event has waited long enough.
 */
void pv_agent_record(struct pv_ctx *ctx, const char *method, int status,
    long latency_us);

/*
 * Sends the kept usage events, one statement, without waiting for it
 * (the FastCGI loop also calls this when no request has come for a
 * moment, and before the process exits).  If the statement cannot be
 * sent the events are kept and the failure logged.
 */
void pv_agent_flush(struct pv_ctx *ctx);

/*
 * Makes a new key for the agent with internal id agent_id: the key
 * (arena memory, shown once) and its display prefix.  The caller's
 * transaction, if any, holds the insert.
 */
int pv_agent_key_create(struct pv_ctx *ctx, const char *agent_id,
    const char **key, const char **prefix, struct pv_err *err);

/* "\\x" + hex SHA-256 of key, the bytea text form (arena memory). */
int pv_agent_key_hash(struct pv_ctx *ctx, const char *key, const char **out,
    struct pv_err *err);

#endif /* PV_AGENT_H */
