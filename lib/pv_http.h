#ifndef PV_HTTP_H
#define PV_HTTP_H

#include <stddef.h>
#include <time.h>

#include "pv_arena.h"
#include "pv_err.h"

/*
 * The HTTP model every handler sees: a request parsed into typed parts,
 * a response to fill in, and the per-process context.  Nothing here
 * knows about FastCGI (pv_fcgi.c builds requests from FastCGI or CGI),
 * so tests build a struct pv_req in memory and call handlers directly.
 *
 * Everything a request points at lives in ctx->arena and dies when the
 * response has been written.
 */
struct json_object;
struct pv_config;
struct pv_db;

/* Methods are bits so a route can accept several. */
enum pv_method {
	PV_GET = 1 << 0,
	PV_HEAD = 1 << 1,
	PV_POST = 1 << 2,
	PV_PUT = 1 << 3,
	PV_PATCH = 1 << 4,
	PV_DELETE = 1 << 5,
	PV_OPTIONS = 1 << 6,
	PV_OTHER = 1 << 7,
};

struct pv_kv {
	const char *name;  /* header names are lowercase, '-' separated */
	const char *value; /* NUL-terminated, decoded */
	size_t valuelen;   /* bytes in value (query values may hold NUL) */
};

#define PV_ROUTE_MAXPARAM 4

struct pv_req {
	enum pv_method method;      /* parsed REQUEST_METHOD */
	const char *method_name;    /* as received, for logs */
	const char *path;           /* request path, no query, not decoded */
	const char *query;          /* raw query string, "" if none */
	const struct pv_kv *hdrs;   /* request headers */
	size_t nhdr;                /* entries in hdrs */
	const struct pv_kv *params; /* decoded query parameters */
	size_t nparam;              /* entries in params */
	const char *body;           /* raw body bytes (NUL-terminated copy) */
	size_t bodylen;             /* bytes in body */
	const char *remote_addr;    /* peer address, or "" */
	int https;                  /* the client reached us over TLS */
	const char *route[PV_ROUTE_MAXPARAM]; /* ":name" path segments */
	size_t nroute;                        /* entries in route */
};

#define PV_RESP_MAXHDR 16

struct pv_resp {
	int status;                        /* HTTP status; 0 = not yet set */
	const char *content_type;          /* e.g. "application/json" */
	struct pv_kv hdrs[PV_RESP_MAXHDR]; /* extra headers */
	size_t nhdr;                       /* entries in hdrs */
	const char *body;                  /* bytes to send (arena or static) */
	size_t bodylen;                    /* bytes in body */
};

/*
 * What a request did, for usage analytics: handlers that create or
 * touch an order fill in the money fields.
 */
struct pv_usage {
	const char *endpoint;    /* route, e.g. "GET /agent/v1/orders/:id" */
	const char *merchant_id; /* merchant's internal id, or NULL */
	const char *order_id;    /* public order id, or NULL */
	long long gmv_minor;     /* order value in minor units, or 0 */
	const char *currency;    /* ISO 4217 of gmv_minor, or NULL */
};

/*
 * Finished requests' usage events waiting to be written, as text
 * fields ("" = NULL).  A process writes them in batches, one
 * statement per batch (pv_agent_record, pv_agent_flush): when
 * PV_USAGE_BATCH are waiting, when the oldest has waited
 * PV_USAGE_MAX_AGE_MS, when the process has been idle briefly, and
 * before it exits.  Process memory, not arena: it outlives requests.
 */
#define PV_USAGE_BATCH      32
#define PV_USAGE_MAX_AGE_MS 250
struct pv_usage_row {
	char agent_id[24];    /* internal agent id */
	char at_us[24];       /* request start, microseconds since 1970 */
	char endpoint[160];   /* route pattern */
	char method[12];      /* request method */
	char status[8];       /* HTTP status */
	char latency_us[24];  /* microseconds */
	char merchant_id[24]; /* or "" */
	char order_id[48];    /* or "" */
	char gmv_minor[24];   /* or "" */
	char currency[4];     /* or "" */
	char request_id[48];  /* X-Request-Id */
};
struct pv_usage_batch {
	int n;                 /* rows waiting */
	struct timespec first; /* monotonic time the oldest was kept */
	struct pv_usage_row row[PV_USAGE_BATCH];
};

struct pv_agent;
struct pv_idem;
struct pv_tmpl;
struct pv_upstream;

/*
 * Per-process state handed to every handler.  Handlers may use the
 * arena, the database and the configuration; nothing else is global.
 * The last group is per-request state reset before each request.
 */
struct pv_ctx {
	struct pv_arena *arena;      /* per-request memory */
	const struct pv_config *cfg; /* read-only configuration */
	struct pv_db *db;            /* persistent PostgreSQL connection */
	struct pv_upstream *up;      /* outbound HTTP client (keep-alive) */
	struct pv_tmpl *tmpl;        /* templates, loaded once, or NULL */
	const char *prog;            /* program name, for logs */
	char request_id[48];         /* X-Request-Id of this request */
	unsigned long long rid_next; /* request id sequence (random start) */
	unsigned rid_salt;           /* random per process, in request ids */
	struct timespec started;     /* monotonic start of this request */
	time_t now;                  /* wall clock at the start */
	struct pv_agent *agent;      /* authenticated agent, or NULL */
	struct pv_idem *idem;        /* Idempotency-Key being served, or NULL */
	struct pv_usage usage;       /* recorded after the response */
	struct pv_usage_batch unsent; /* usage events not yet written */
};

/*
 * Loads the configuration into *cfg and makes the per-process state
 * (arena, database handle) of ctx for program prog.  Returns 0, or -1
 * with err set and nothing left to free.  pv_ctx_close() undoes it.
 */
int pv_ctx_open(struct pv_ctx *ctx, const char *prog, struct pv_config *cfg,
    struct pv_err *err);
void pv_ctx_close(struct pv_ctx *ctx, struct pv_config *cfg);

typedef int (*pv_handler)(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err);

/*
 * A routing table entry (cgit's cmd.c): the methods it answers, a
 * pattern whose ":name" segments match one non-empty path segment
 * (captured into req->route in order), the handler, and flags naming
 * the preconditions run before it.
 */
enum pv_route_flag {
	PV_ROUTE_AGENT = 1 << 0,      /* authenticate, rate limit, record */
	PV_ROUTE_IDEMPOTENT = 1 << 1, /* honour Idempotency-Key (POST) */
	PV_ROUTE_AGENT_SELF = 1 << 2, /* the handler runs the prologue */
};

struct pv_route {
	unsigned methods;    /* enum pv_method bits */
	const char *pattern; /* e.g. "/agent/v1/orders/:id" */
	pv_handler fn;       /* the handler */
	unsigned flags;      /* PV_ROUTE_* preconditions */
};

/*
 * Finds the route for req and runs it.  No matching path is 404; a
 * matching path without the method is 405 with an Allow header.  HEAD
 * is served by a GET route.  The handler sees a copy of req with
 * route[] filled.  Preconditions named by the route's flags run first:
 * PV_ROUTE_AGENT authenticates the agent and applies its limits (so no
 * handler can forget to), PV_ROUTE_IDEMPOTENT replays or claims the
 * request's Idempotency-Key.  PV_ROUTE_AGENT_SELF is an agent route
 * whose handler folds its read into the prologue statement
 * (pv_agent_authenticate_with): a handler that succeeds without having
 * authenticated is turned into a 500, so it cannot forget either.
 * Returns what the handler returned.
 */
int pv_route_dispatch(struct pv_ctx *ctx, const struct pv_route *routes,
    size_t nroutes, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err);

/* Method bits from a REQUEST_METHOD string (PV_OTHER if unknown). */
enum pv_method pv_http_method(const char *name);

/* Case-insensitive header lookup; name is lowercase.  NULL if absent. */
const char *pv_req_header(const struct pv_req *req, const char *name);

/*
 * The value of the first cookie called name (case-sensitive) in the
 * Cookie header, or NULL.  The value is borrowed from the header and is
 * not NUL-terminated: it runs for *len bytes, up to the next ';' or the
 * end of the header.
 */
const char *pv_req_cookie(const struct pv_req *req, const char *name,
    size_t *len);

/* First query parameter called name, or NULL. */
const char *pv_req_param(const struct pv_req *req, const char *name);

/*
 * Decodes an application/x-www-form-urlencoded string (a query string
 * or a form body) into arena pairs.  '+' is a space; a bad %-escape or
 * more than max pairs is PV_E_INVALID.  Empty segments are skipped.
 */
int pv_http_parse_form(struct pv_arena *a, const char *s, size_t len,
    size_t max, struct pv_kv **out, size_t *n, struct pv_err *err);

/* Adds a response header; CR, LF or NUL in it is PV_E_INTERNAL. */
int pv_resp_header(struct pv_resp *resp, const char *name, const char *value,
    struct pv_err *err);

/* Sets status and a JSON body serialized through json-c. */
int pv_resp_json(struct pv_ctx *ctx, struct pv_resp *resp, int status,
    struct json_object *obj, struct pv_err *err);

/* Sets status, content type and body (borrowed: arena or static). */
void pv_resp_set(struct pv_resp *resp, int status, const char *content_type,
    const char *body, size_t bodylen);

/*
 * Replaces resp with the API.md error body for err (and Retry-After
 * when err->retry_after is set).  4xx bodies carry the message and the
 * field; 5xx bodies only name the request id.  Cannot fail: if memory
 * runs out a static body is used.
 */
void pv_resp_error(struct pv_ctx *ctx, struct pv_resp *resp,
    const struct pv_err *err);

/*
 * pv_resp_error() with the members of extra (borrowed; may be NULL)
 * added both to the error object and at the top level, e.g. a declined
 * payment's decline_code and payment_id.
 */
void pv_resp_error_extra(struct pv_ctx *ctx, struct pv_resp *resp,
    const struct pv_err *err, struct json_object *extra);

/* The reason phrase of a status ("Not Found"), or "Unknown". */
const char *pv_http_reason(int status);

/* Formats t as RFC 3339 UTC ("2026-11-25T13:28:05Z") into buf[21+]. */
char *pv_http_time(char *buf, size_t size, time_t t);

#endif /* PV_HTTP_H */
