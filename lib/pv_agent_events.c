/*
 * Events for agents: the agent.webhook delivery job and the
 * GET /agent/v1/events pull endpoint.  The rows themselves (events and
 * their delivery jobs) are written by the trigger of
 * migrations/0012_agent_events.sql, in the transaction of the order
 * change; this file only reads them.  Both sides build the same event
 * object, so a pulled event and a delivered one differ only in how
 * recent their Order snapshot is.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "pv_agent.h"
#include "pv_agent_events.h"
#include "pv_config.h"
#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_json.h"
#include "pv_log.h"
#include "pv_order.h"
#include "pv_sig.h"
#include "pv_upstream.h"
#include "pv_valid.h"

#define EVT_HEX         32   /* hex digits after "evt_" */
#define RETRY_AFTER_MAX 3600 /* a receiver's Retry-After is capped here */

/* Columns of the delivery statement. */
enum {
	D_EVENT,   /* agent_events.id */
	D_URL,     /* agent_webhooks.url */
	D_SEALED,  /* agent_webhooks.secret_sealed */
	D_LIVE,    /* endpoint not deleted and agent active: "t" or "f" */
	D_BLOCKED, /* seconds until an earlier delivery is next due, or NULL */
	D__MAX
};

/*
 * What a delivery needs, in one statement: the event, the endpoint
 * (only the event's own agent's), whether it is still live, and
 * whether an earlier event of the same order still waits for this
 * endpoint (a queued or running job): then the seconds until that
 * job's next attempt, plus one so it goes first.  The earlier events
 * are found by (order_id, seq) and their jobs by the unique dedup key,
 * so the check reads a handful of index entries.
 */
#define DELIVERY_SQL \
	PV_SQL("SELECT e.id, w.url, w.secret_sealed," \
	       " w.deleted_at IS NULL AND a.status = 'active'," \
	       " (SELECT (greatest(0, ceil(extract(epoch FROM" \
	       "   min(CASE WHEN j.state = 'queued' THEN j.run_at" \
	       "   ELSE now() END) - now()))) + 1)::int" \
	       "  FROM agent_events p JOIN jobs j ON j.dedup_key =" \
	       "   pv_agent_webhook_key(p.public_id, w.public_id)" \
	       "  WHERE p.order_id = e.order_id AND p.seq < e.seq" \
	       "  AND j.state IN ('queued', 'running')" \
	       "  HAVING count(*) > 0)" \
	       " FROM agent_events e" \
	       " JOIN agent_webhooks w ON w.public_id = $2" \
	       "  AND w.agent_id = e.agent_id" \
	       " JOIN agents a ON a.id = e.agent_id" \
	       " WHERE e.public_id = $1")

/* The event object; see pv_agent_events.h. */
struct json_object *
pv_agent_event_json(struct pv_ctx *ctx, const char *event_id,
    struct pv_err *err)
{
	const char *p[1] = { event_id };
	struct json_object *ev, *data, *order;
	const char *partial;
	PGresult *res;

	if (pv_db_exec_one(ctx,
	        PV_SQL("SELECT e.public_id, e.type,"
	               " extract(epoch FROM e.created_at)::bigint,"
	               " o.public_id, e.seq, e.order_id,"
	               " e.detail ->> 'is_partial'"
	               " FROM agent_events e JOIN orders o ON o.id = e.order_id"
	               " WHERE e.id = $1::bigint"),
	        1, p, &res, err) == -1 ||
	    (order = pv_order_json(ctx, PQgetvalue(res, 0, 5), err)) == NULL)
		return NULL;
	ev = pv_json_new_obj(ctx->arena, err);
	data = pv_json_new_obj(ctx->arena, err);
	pv_json_set_str(ev, "id", PQgetvalue(res, 0, 0), err);
	pv_json_set_str(ev, "object", "event", err);
	pv_json_set_str(ev, "type", PQgetvalue(res, 0, 1), err);
	pv_json_set_int(ev, "created", strtoll(PQgetvalue(res, 0, 2), NULL, 10),
	    err);
	pv_json_set_str(ev, "order_id", PQgetvalue(res, 0, 3), err);
	pv_json_set_int(ev, "seq", strtoll(PQgetvalue(res, 0, 4), NULL, 10),
	    err);
	pv_json_set(data, "order", order, err);
	partial = pv_db_get(res, 0, 6);
	if (partial != NULL)
		pv_json_set_bool(data, "is_partial",
		    strcmp(partial, "true") == 0, err);
	pv_json_set(ev, "data", data, err);
	return err->code == PV_OK ? ev : NULL;
}

/* Opens the endpoint's whsec_ secret, sealed with its public id. */
static int
open_secret(struct pv_ctx *ctx, const char *webhook, const char *sealed,
    const char **secret, struct pv_err *err)
{
	unsigned char *plain;
	size_t len;

	if (pv_config_require_master_key(ctx->cfg, err) == -1 ||
	    pv_crypto_open(ctx->arena, ctx->cfg->master_key, webhook,
	        strlen(webhook), sealed, strlen(sealed), &plain, &len,
	        err) == -1)
		return -1;
	*secret = pv_arena_strndup(ctx->arena, (const char *)plain, len, err);
	return *secret != NULL ? 0 : -1;
}

/* POSTs body to url, signed with secret; 0 on a 2xx answer. */
static int
post_event(struct pv_ctx *ctx, const char *url, const char *secret,
    const char *event, const char *body, size_t len, struct pv_err *err)
{
	struct pv_upstream_hdr hdrs[4];
	struct pv_upstream_req rq;
	struct pv_upstream_resp rs;
	const char *sig;

	if (pv_sig_stripe_sign(ctx->arena, secret, (int64_t)time(NULL), body,
	        len, &sig, err) == -1)
		return -1;
	hdrs[0].name = "Content-Type";
	hdrs[0].value = "application/json";
	hdrs[1].name = PV_AGENT_SIG_HEADER;
	hdrs[1].value = sig;
	hdrs[2].name = "Pivota-Event-Id";
	hdrs[2].value = event;
	hdrs[3].name = "User-Agent";
	hdrs[3].value = "Pivota-Webhooks/1";
	memset(&rq, 0, sizeof(rq));
	rq.method = PV_UPSTREAM_POST;
	rq.url = url;
	rq.hdrs = hdrs;
	rq.nhdrs = sizeof(hdrs) / sizeof(hdrs[0]);
	rq.body = body;
	rq.bodylen = len;
	rq.timeout_ms = PV_AGENT_WEBHOOK_TIMEOUT_MS;
	rq.max_resp = 64 * 1024; /* the answer is not read */
	rq.max_attempts = 1;     /* the job retries, freshly signed */
	if (pv_upstream_do(ctx->up, ctx->arena, &rq, &rs, err) == -1)
		return -1;
	if (rs.status < 200 || rs.status > 299) {
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "the webhook endpoint answered %ld", rs.status);
		if (rs.retry_after_ms > 0)
			err->retry_after =
			    rs.retry_after_ms / 1000 > RETRY_AFTER_MAX ?
			    RETRY_AFTER_MAX :
			    (int)(rs.retry_after_ms / 1000);
		return -1;
	}
	return 0;
}

/* The agent.webhook handler; see pv_agent_events.h. */
int
pv_agent_webhook_job(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err)
{
	const char *event, *webhook, *secret, *body, *p[2];
	struct json_object *ev;
	size_t len;
	PGresult *res;

	if (pv_json_str(job->args, "event", 1, 64, &event, err) == -1 ||
	    pv_json_str(job->args, "webhook", 1, 64, &webhook, err) == -1)
		return PV_JOB_PERMANENT;
	p[0] = event;
	p[1] = webhook;
	if (pv_db_exec(ctx, DELIVERY_SQL, 2, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1 || *PQgetvalue(res, 0, D_LIVE) != 't') {
		pv_log_msg(PV_LOG_INFO, "agent webhook %s to %s dropped: %s",
		    event, webhook,
		    PQntuples(res) != 1 ?
		        "event or endpoint gone" :
		        "endpoint deleted or agent suspended");
		return 0;
	}
	if (!PQgetisnull(res, 0, D_BLOCKED)) {
		PV_ERR(err, PV_E_CONFLICT, NULL,
		    "an earlier event of the order is not yet delivered to %s",
		    webhook);
		err->retry_after =
		    (int)strtol(PQgetvalue(res, 0, D_BLOCKED), NULL, 10);
		return -1;
	}
	if (open_secret(ctx, webhook, PQgetvalue(res, 0, D_SEALED), &secret,
	        err) == -1)
		return err->code == PV_E_AUTH ? PV_JOB_PERMANENT : -1;
	if ((ev = pv_agent_event_json(ctx, PQgetvalue(res, 0, D_EVENT), err)) ==
	        NULL ||
	    pv_json_to_str(ctx->arena, ev, &body, &len, err) == -1)
		return -1;
	return post_event(ctx, PQgetvalue(res, 0, D_URL), secret, event, body,
	    len, err);
}

/* An event id of ours: "evt_" and EVT_HEX lowercase hex digits. */
static int
valid_event_id(const char *s, struct pv_err *err)
{
	size_t i;

	if (strncmp(s, "evt_", 4) == 0 && strlen(s) == 4 + EVT_HEX) {
		for (i = 4; s[i] != '\0'; i++)
			if (!((s[i] >= '0' && s[i] <= '9') ||
			        (s[i] >= 'a' && s[i] <= 'f')))
				break;
		if (s[i] == '\0')
			return 0;
	}
	PV_ERR(err, PV_E_INVALID, "after",
	    "after must be an event id (evt_...).");
	return -1;
}

/* The list endpoint; see pv_agent_events.h. */
int
pv_agent_events_list(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	static const char *const known[] = { "after", "limit", NULL };
	struct json_object *o, *arr;
	char lim[24];
	const char *after, *s, *p[3];
	int64_t limit = PV_AGENT_EVENTS_LIMIT_DEFAULT;
	PGresult *res;
	size_t i, k;
	int r, n;

	for (i = 0; i < req->nparam; i++)
		if (pv_valid_enum(req->params[i].name, known, &k,
		        req->params[i].name, err) == -1)
			return -1;
	after = pv_req_param(req, "after");
	if ((s = pv_req_param(req, "limit")) != NULL &&
	    pv_valid_int64(s, 1, PV_AGENT_EVENTS_LIMIT_MAX, &limit, "limit",
	        err) == -1)
		return -1;
	if (after != NULL && valid_event_id(after, err) == -1)
		return -1;
	if (snprintf(lim, sizeof(lim), "%d", (int)limit + 1) < 0) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "snprintf failed");
		return -1;
	}
	p[0] = ctx->agent->id;
	p[1] = after;
	p[2] = lim;
	if (after != NULL) {
		if (pv_db_exec(ctx,
		        PV_SQL("SELECT 1 FROM agent_events WHERE public_id = $2"
		               " AND agent_id = $1::bigint"),
		        2, p, &res, err) == -1)
			return -1;
		if (PQntuples(res) != 1) {
			PV_ERR(err, PV_E_INVALID, "after", "No such event: %s.",
			    after);
			return -1;
		}
	}
	/*
	 * Only events below the oldest running transaction (see pos in
	 * the migration): one that commits later sorts after all of these,
	 * so a cursor never skips an event.
	 */
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT e.id FROM agent_events e"
	               " WHERE e.agent_id = $1::bigint"
	               " AND e.pos < pg_snapshot_xmin(pg_current_snapshot())"
	               "  ::text::bigint"
	               " AND ($2::text IS NULL OR (e.pos, e.id) >"
	               "  (SELECT c.pos, c.id FROM agent_events c"
	               "   WHERE c.public_id = $2 AND c.agent_id = $1::bigint))"
	               " ORDER BY e.pos, e.id LIMIT $3::int"),
	        3, p, &res, err) == -1)
		return -1;
	n = PQntuples(res);
	o = pv_json_new_obj(ctx->arena, err);
	arr = pv_json_new_arr(ctx->arena, err);
	for (r = 0; r < n && r < (int)limit; r++)
		pv_json_push(arr,
		    pv_agent_event_json(ctx, PQgetvalue(res, r, 0), err), err);
	pv_json_set_str(o, "status", "success", err);
	pv_json_set(o, "events", arr, err);
	pv_json_set_bool(o, "has_more", n > (int)limit, err);
	if (err->code != PV_OK)
		return -1;
	return pv_resp_json(ctx, resp, 200, o, err);
}
