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
 * one round trip: the key's SHA-256 is looked up, the agent's minute
 * window and UTC-day counters are advanced in one upsert on a single
 * row per agent (so limits hold exactly across processes and web
 * nodes), and the counters commit without waiting for the WAL flush.
 * The usage event of a finished request is kept by pv_agent_record()
 * and written by the next prologue statement of the same process, or
 * by pv_agent_flush() when the process falls idle.
 *
 * Keys are "ak_live_" + 64 lowercase hex (32 CSPRNG bytes); only the
 * hash and a display prefix are stored.
 */
#define PV_AGENT_KEY_PREFIX "ak_live_"

/*
 * The prologue statement, in pieces so that an endpoint can fold its
 * own read into the same statement (pv_agent_authenticate_with): one
 * round trip, one statement per request instead of two.  Both the
 * prologue and the usage statement set synchronous_commit off for
 * their own implicit transaction (set_config(..., true) lasts until
 * the commit that ends the statement), so counters and usage rows
 * never wait for a disk flush while orders and payments, in their own
 * transactions, stay fully durable.
 *
 * WITH: s (that setting); u (this process's previous usage event,
 * $2..$11, all NULL when there is none); k (the key's agent: $1 is the
 * key's SHA-256 as bytea text; no row: unknown, revoked or expired
 * key); r (a plain UPDATE of the agent's agent_rate row, which a
 * trigger creates with the agent, advancing the minute window and the
 * day counter, the latter only counting requests the minute limit let
 * through; no row: the agent is suspended).  A folded read adds its
 * own CTEs after these, may use k.id and k.restricted (the agent has
 * an allow-list), takes its parameters from $12, and joins its rows to
 * PV_AGENT_SQL_PROLOGUE_FROM, after the PV_AGENT_PROLOGUE_NCOLS
 * prologue columns: the statement must return at least one row when k
 * has one.  The caller sees the read's rows only once the prologue
 * has let the request through.
 */
#define PV_AGENT_SQL_PROLOGUE_WITH \
	"WITH s AS (SELECT set_config('synchronous_commit', 'off', true))," \
	" u AS (" \
	"  INSERT INTO usage_events (agent_id, endpoint, method," \
	"   status, latency_us, merchant_id, order_id, gmv_minor," \
	"   currency, request_id)" \
	"  SELECT $2::bigint, $3, $4, $5::int, $6::int, $7::bigint," \
	"   $8, $9::bigint, $10, $11 WHERE $2 IS NOT NULL)," \
	" k AS MATERIALIZED (" \
	"  SELECT a.id, a.public_id, a.name, a.status," \
	"   a.per_minute_limit, a.daily_quota," \
	"   EXISTS (SELECT 1 FROM agent_merchants m" \
	"    WHERE m.agent_id = a.id) AS restricted" \
	"  FROM api_keys k JOIN agents a ON a.id = k.agent_id" \
	"  WHERE k.key_hash = $1::bytea AND k.revoked_at IS NULL" \
	"   AND (k.expires_at IS NULL OR k.expires_at > now()))," \
	" r AS (" \
	"  UPDATE agent_rate AS r SET" \
	"   minute_count = CASE WHEN r.minute_start =" \
	"    date_trunc('minute', now()) THEN r.minute_count + 1" \
	"    ELSE 1 END," \
	"   minute_start = date_trunc('minute', now())," \
	"   day_count = CASE WHEN r.day_start =" \
	"    (now() AT TIME ZONE 'UTC')::date THEN r.day_count ELSE 0" \
	"    END + CASE WHEN (CASE WHEN r.minute_start =" \
	"     date_trunc('minute', now()) THEN r.minute_count + 1" \
	"     ELSE 1 END) <= k.per_minute_limit THEN 1 ELSE 0 END," \
	"   day_start = (now() AT TIME ZONE 'UTC')::date" \
	"  FROM k WHERE r.agent_id = k.id AND k.status = 'active'" \
	"  RETURNING r.minute_count, r.day_count," \
	"   extract(epoch FROM r.minute_start)::bigint + 60" \
	"    AS minute_reset," \
	"   extract(epoch FROM (r.day_start + 1)::timestamp" \
	"    AT TIME ZONE 'UTC')::bigint AS day_reset)"
#define PV_AGENT_SQL_PROLOGUE_COLS \
	" k.id, k.public_id, k.name, k.status," \
	"  k.per_minute_limit, k.daily_quota, r.minute_count," \
	"  r.day_count, r.minute_reset, r.day_reset, k.restricted," \
	"  s.set_config"
#define PV_AGENT_SQL_PROLOGUE_FROM " FROM k CROSS JOIN s LEFT JOIN r ON true"
#define PV_AGENT_PROLOGUE_NCOLS    12
#define PV_AGENT_PROLOGUE_NPARAMS  11
#define PV_AGENT_KEY_LEN           72 /* prefix + 64 hex */

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
 * pieces, params its n (at most 8) parameters from $12.  On success
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
 * latency and ctx->usage) in ctx->unsent for the next statement.
 */
void pv_agent_record(struct pv_ctx *ctx, const char *method, int status,
    long latency_us);

/*
 * Sends a kept usage event on its own without waiting (the FastCGI
 * loop calls this when no request has come for a moment, and before
 * the process exits).  Failures are logged and the event kept.
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
