/*
 * The health endpoint.  One prepared SELECT 1 on the process's
 * persistent connection; a failure is reported as "down" with 503, and
 * the next request reconnects by itself once PostgreSQL is back.
 */
#include <json-c/json.h>

#include "pv_config.h"
#include "pv_db.h"
#include "pv_health.h"
#include "pv_log.h"

/*
 * Load balancers poll this endpoint hard; a live connection that
 * answered within this many seconds needs no extra query.
 */
#define HEALTH_MAX_AGE 1

static void
put(void *o)
{
	json_object_put(o);
}

/* Takes ownership of o; -1 with PV_E_NOMEM if json-c failed. */
static int
own(struct pv_ctx *ctx, struct json_object *o, struct pv_err *err)
{
	if (o == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	return pv_arena_defer(ctx->arena, put, o, err);
}

/*
 * GET /health.
 * 200 {status:"ok", timestamp, version, services:{database:"ok"}};
 * 503 {status:"degraded", ..., services:{database:"down"}}.
 */
static int
health(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	struct pv_err dberr = { 0 };
	struct json_object *o, *svc;
	char ts[32];
	int up, bad = 0;

	(void)req;
	up = pv_db_alive(ctx, HEALTH_MAX_AGE, &dberr) == 0;
	if (!up)
		pv_log_msg(PV_LOG_WARN, "%s health: %s", ctx->request_id,
		    dberr.msg);
	o = json_object_new_object();
	if (own(ctx, o, err) == -1)
		return -1;
	svc = json_object_new_object();
	bad |= json_object_object_add(svc, "database",
	    json_object_new_string(up ? "ok" : "down"));
	bad |= json_object_object_add(o, "status",
	    json_object_new_string(up ? "ok" : "degraded"));
	bad |= json_object_object_add(o, "timestamp",
	    json_object_new_string(pv_http_time(ts, sizeof(ts), ctx->now)));
	bad |= json_object_object_add(o, "version",
	    json_object_new_string(PV_VERSION));
	bad |= json_object_object_add(o, "services", svc);
	if (bad || svc == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	return pv_resp_json(ctx, resp, up ? 200 : 503, o, err);
}

static const struct pv_route routes[] = {
	{ PV_GET, "/health", health, 0 },
};

/* Routes the health program's requests; see pv_health.h. */
int
pv_health_handle(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	return pv_route_dispatch(ctx, routes,
	    sizeof(routes) / sizeof(routes[0]), req, resp, err);
}
