/*
 * Idempotency records.  Claiming and looking up are one statement: the
 * INSERT ... ON CONFLICT DO NOTHING claims a new key, and the same
 * statement reads an existing one.  If a concurrent first request
 * committed its claim after this statement's snapshot, neither part
 * returns a row and the caller is told the key is in flight, which is
 * the truth.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_agent.h"
#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_idem.h"
#include "pv_log.h"

struct pv_idem {
	const char *params[4]; /* agent id, method, path, key */
};

/*
 * The running request holds a session advisory lock on its key
 * ($1..$4 hashed): it dies with the process or the connection, so a
 * retry that finds a claim still "running" but its lock free knows the
 * request that claimed it is gone (a crash, a PostgreSQL restart) and
 * takes the key over at once, instead of waiting PV_IDEM_STALE_S.
 * Session locks need a connection of our own per process (no
 * transaction-pooling proxy in between), which is how pv_db connects.
 */
#define LOCK_KEY \
	"hashtextextended($1 || ' ' || $2 || ' ' || $3 || ' ' || $4, 0)"

/*
 * The claim commits without waiting for the WAL flush: if it is lost in
 * a crash, so is everything after it that was not flushed, and a later
 * durable commit (the handler's) flushes the claim with it, because the
 * WAL is written in order.
 */
#define CLAIM_SQL \
	PV_SQL("WITH s AS (SELECT set_config('synchronous_commit', 'off'," \
	       "  true) AS off)," \
	       " c AS (" \
	       "  INSERT INTO idempotency_keys" \
	       "   (agent_id, method, path, key, body_hash)" \
	       "  VALUES ($1::bigint, $2, $3, $4, $5::bytea)" \
	       "  ON CONFLICT DO NOTHING RETURNING true AS mine)," \
	       " l AS MATERIALIZED (SELECT pg_try_advisory_lock(" LOCK_KEY \
	       "  ) AS held)" \
	       " SELECT (SELECT mine FROM c), i.body_hash = $5::bytea," \
	       "  i.state, i.status, i.content_type, i.body," \
	       "  i.created_at < now() - make_interval(secs => $6::int)," \
	       "  s.off, l.held" \
	       " FROM s CROSS JOIN l CROSS JOIN (SELECT 1) one" \
	       " LEFT JOIN idempotency_keys i" \
	       "  ON i.agent_id = $1::bigint AND i.method = $2" \
	       "  AND i.path = $3 AND i.key = $4")

/* Gives the key's advisory lock back (a replay or a refusal took it). */
#define UNLOCK_SQL PV_SQL("SELECT pg_advisory_unlock(" LOCK_KEY ")")

static int
valid_key(const char *k)
{
	size_t i, n = strlen(k);

	if (n == 0 || n > PV_IDEM_KEY_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (k[i] < 0x21 || k[i] > 0x7e)
			return 0;
	return 1;
}

/*
 * Takes over a claim abandoned by a crashed process (older than stale
 * seconds: 0 when its lock says it is gone); 1 if we got it.
 */
static int
take_over(struct pv_ctx *ctx, struct pv_idem *id, const char *hash, int stale_s,
    struct pv_err *err)
{
	const char *p[6] = { id->params[0], id->params[1], id->params[2],
		id->params[3], hash, NULL };
	char stale[16];
	PGresult *res;

	snprintf(stale, sizeof(stale), "%d", stale_s);
	p[5] = stale;
	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE idempotency_keys SET created_at = now()"
	               " WHERE agent_id = $1::bigint AND method = $2"
	               " AND path = $3 AND key = $4 AND body_hash = $5::bytea"
	               " AND state = 'running'"
	               " AND created_at <= now() - make_interval(secs =>"
	               " $6::int)"),
	        6, p, &res, err) == -1)
		return -1;
	return strcmp(PQcmdTuples(res), "1") == 0;
}

/*
 * Gives back the key's advisory lock; a failure only costs a log line
 * (the lock ends with the connection anyway).  Outside a transaction
 * the statement is sent without waiting for its answer: the server
 * releases the lock as soon as it reads it, and the response need not
 * wait a round trip for that.
 */
static void
unlock(struct pv_ctx *ctx, const struct pv_idem *id)
{
	struct pv_err err = { 0 };
	int rc;

	rc = pv_db_in_tx(ctx->db) ?
	    pv_db_exec(ctx, UNLOCK_SQL, 4, id->params, NULL, &err) :
	    pv_db_send(ctx, UNLOCK_SQL, 4, id->params, &err);
	if (rc == -1)
		pv_log_msg(PV_LOG_WARN, "%s idempotency lock not released: %s",
		    ctx->request_id, err.msg);
}

/* Claims, replays or refuses the request's key; see pv_idem.h. */
int
pv_idem_begin(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	unsigned char h[PV_CRYPTO_SHA256_LEN];
	const char *key, *hex, *hash, *p[6];
	struct pv_idem *id;
	PGresult *res;
	char stale[16];
	int got, held;

	if (req->method != PV_POST ||
	    (key = pv_req_header(req, "idempotency-key")) == NULL)
		return 0;
	if (!valid_key(key)) {
		PV_ERR(err, PV_E_INVALID, "Idempotency-Key",
		    "Idempotency-Key must be 1 to %d printable ASCII "
		    "characters.",
		    PV_IDEM_KEY_MAX);
		return -1;
	}
	if ((id = pv_arena_calloc(ctx->arena, 1, sizeof(*id), err)) == NULL ||
	    pv_crypto_sha256(req->body, req->bodylen, h, err) == -1 ||
	    pv_crypto_hex_encode(ctx->arena, h, sizeof(h), &hex, err) == -1 ||
	    (hash = pv_arena_printf(ctx->arena, err, "\\x%s", hex)) == NULL ||
	    snprintf(stale, sizeof(stale), "%d", PV_IDEM_STALE_S) < 0)
		return -1;
	id->params[0] = ctx->agent->id;
	id->params[1] = req->method_name;
	id->params[2] = req->path;
	id->params[3] = key;
	memcpy(p, id->params, sizeof(id->params));
	p[4] = hash;
	p[5] = stale;
	if (pv_db_exec(ctx, CLAIM_SQL, 6, p, &res, err) == -1)
		return -1;
	held = strcmp(PQgetvalue(res, 0, 8), "t") == 0;
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		ctx->idem = id;
		return 0;
	}
	/* Running, and its lock free: whoever claimed it is gone. */
	if (!PQgetisnull(res, 0, 2) &&
	    strcmp(PQgetvalue(res, 0, 2), "running") == 0 &&
	    strcmp(PQgetvalue(res, 0, 1), "t") == 0 &&
	    (held || strcmp(PQgetvalue(res, 0, 6), "t") == 0)) {
		if ((got = take_over(ctx, id, hash, held ? 0 : PV_IDEM_STALE_S,
		         err)) == -1)
			return -1;
		if (got) {
			ctx->idem = id;
			return 0;
		}
	}
	if (held)
		unlock(ctx, id);
	if (PQgetisnull(res, 0, 1))
		goto in_flight;
	if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
		PV_ERR(err, PV_E_UNPROCESSABLE, "Idempotency-Key",
		    "This Idempotency-Key was used with a different request "
		    "body; use a new key for a new request.");
		pv_err_reason(err, "idempotency_conflict");
		return -1;
	}
	if (strcmp(PQgetvalue(res, 0, 2), "done") == 0) {
		pv_resp_set(resp, (int)strtol(PQgetvalue(res, 0, 3), NULL, 10),
		    PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 5),
		    (size_t)PQgetlength(res, 0, 5));
		if (pv_resp_header(resp, "Idempotent-Replayed", "true", err) ==
		    -1)
			return -1;
		return 1;
	}
in_flight:
	PV_ERR(err, PV_E_CONFLICT, "Idempotency-Key",
	    "A request with this Idempotency-Key is still being processed; "
	    "retry shortly.");
	pv_err_reason(err, "idempotency_in_flight");
	err->retry_after = 1;
	return -1;
}

/* Forgets a key whose request failed on our side (5xx). */
#define RELEASE_SQL \
	PV_SQL("DELETE FROM idempotency_keys WHERE agent_id = $1::bigint" \
	       " AND method = $2 AND path = $3 AND key = $4")

/* Keeps a key's final response. */
#define DONE_SQL \
	PV_SQL("UPDATE idempotency_keys SET state = 'done'," \
	       " status = $5::int, content_type = $6, body = $7" \
	       " WHERE agent_id = $1::bigint AND method = $2" \
	       " AND path = $3 AND key = $4")

/*
 * Stores resp for id, or releases the key after a 5xx: now, or (in) as
 * the last statement of the open transaction, sent with its COMMIT.
 */
static int
store(struct pv_ctx *ctx, const struct pv_idem *id, const struct pv_resp *resp,
    int in, struct pv_err *err)
{
	const char *p[7];
	char st[16];

	memcpy(p, id->params, sizeof(id->params));
	if (resp->status >= 500)
		return in ? pv_db_defer(ctx, RELEASE_SQL, 4, p, err) :
		            pv_db_exec(ctx, RELEASE_SQL, 4, p, NULL, err);
	snprintf(st, sizeof(st), "%d", resp->status);
	p[4] = st;
	p[5] = resp->content_type != NULL ? resp->content_type :
	                                    "application/json";
	p[6] = resp->body != NULL ? resp->body : "";
	return in ? pv_db_defer(ctx, DONE_SQL, 7, p, err) :
	            pv_db_exec(ctx, DONE_SQL, 7, p, NULL, err);
}

/* Stores or releases the claimed key; see pv_idem.h. */
void
pv_idem_finish(struct pv_ctx *ctx, const struct pv_resp *resp)
{
	struct pv_err err = { 0 };
	struct pv_idem *id = ctx->idem;

	if (id == NULL)
		return;
	ctx->idem = NULL;
	if (store(ctx, id, resp, 0, &err) == -1)
		pv_log_msg(PV_LOG_ERROR, "%s idempotency record not saved: %s",
		    ctx->request_id, err.msg);
	unlock(ctx, id);
}

/* Stores resp inside the caller's transaction; see pv_idem.h. */
int
pv_idem_finish_tx(struct pv_ctx *ctx, const struct pv_resp *resp,
    struct pv_err *err)
{
	if (ctx->idem == NULL)
		return 0;
	return store(ctx, ctx->idem, resp, 1, err);
}

void
pv_idem_committed(struct pv_ctx *ctx)
{
	if (ctx->idem == NULL)
		return;
	unlock(ctx, ctx->idem);
	ctx->idem = NULL;
}
