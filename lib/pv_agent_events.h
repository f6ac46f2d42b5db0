#ifndef PV_AGENT_EVENTS_H
#define PV_AGENT_EVENTS_H

#include <stdint.h>

#include "pv_http.h"
#include "pv_job.h"

/*
 * Events for agents (API.md §4): the agent_events stream that
 * migrations/0012_agent_events.sql fills from order_events in the same
 * transaction as each order change, its delivery to the agent's
 * webhook endpoints (job kind "agent.webhook", one job per event and
 * endpoint, queued by the same trigger) and GET /agent/v1/events, the
 * pull side, served by the account program.  The payload, the
 * signature, the retry schedule and the ordering guarantee are
 * documented in docs/api.md, "Outbound webhooks and events".
 */

/* The job kind served by pv_agent_webhook_job(). */
#define PV_AGENT_WEBHOOK_KIND "agent.webhook"

/* The request header carrying the Stripe-style signature. */
#define PV_AGENT_SIG_HEADER "Pivota-Signature"

/* One delivery attempt may take this long (connect included). */
#define PV_AGENT_WEBHOOK_TIMEOUT_MS 10000L

/* GET /agent/v1/events: events per page by default and at most. */
#define PV_AGENT_EVENTS_LIMIT_DEFAULT 20
#define PV_AGENT_EVENTS_LIMIT_MAX     100

/*
 * The agent.webhook handler (struct pv_job_handler), payload
 * {"event": "evt_...", "webhook": "wh_..."}.  POSTs the event (see
 * pv_agent_event_json()) to the endpoint, signed with its unsealed
 * whsec_ secret.  Returns 0 when the endpoint answered 2xx, and also
 * when there is nothing to deliver any more (the event, endpoint or
 * agent is gone, the endpoint was deleted or the agent suspended: the
 * delivery is dropped with a log line).  Returns -1 with err set to
 * retry with backoff: a non-2xx answer or no answer (PV_E_UPSTREAM,
 * honouring Retry-After), or an earlier event of the same order still
 * waiting for this endpoint (PV_E_CONFLICT, with err->retry_after set
 * to when that one is next due), which is what keeps an order's events
 * in sequence per endpoint.  PV_JOB_PERMANENT for a malformed payload
 * or a secret that does not open.
 */
int pv_agent_webhook_job(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err);

/*
 * The event object, {id, object, type, created, order_id, seq,
 * data:{order, is_partial?}}, for the agent_events row of internal id
 * event_id, with the order as pv_order_json() builds it now.  Returns
 * an arena object, or NULL with err set (PV_E_NOTFOUND, PV_E_DB, ...).
 */
struct json_object *pv_agent_event_json(struct pv_ctx *ctx,
    const char *event_id, struct pv_err *err);

/*
 * GET /agent/v1/events ?after=evt_...&limit=N: the authenticated
 * agent's events, oldest first, each with its Order snapshot.
 * 200 {status, events:[...], has_more}; 400 bad limit, bad or unknown
 * after (another agent's event id is unknown too), unknown parameter.
 */
int pv_agent_events_list(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

#endif /* PV_AGENT_EVENTS_H */
