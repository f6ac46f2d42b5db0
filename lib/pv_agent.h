#ifndef PV_AGENT_H
#define PV_AGENT_H

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
#define PV_AGENT_KEY_LEN    72 /* prefix + 64 hex */

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
