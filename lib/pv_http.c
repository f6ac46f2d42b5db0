/*
 * Requests and responses: routing, header and parameter lookup, form
 * decoding, and the one place that renders the API.md error body.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "pv_agent.h"
#include "pv_crypto.h"
#include "pv_http.h"
#include "pv_idem.h"

struct method_name {
	const char *name;      /* REQUEST_METHOD */
	enum pv_method method; /* its bit */
};

static const struct method_name methods[] = {
	{ "GET", PV_GET },
	{ "HEAD", PV_HEAD },
	{ "POST", PV_POST },
	{ "PUT", PV_PUT },
	{ "PATCH", PV_PATCH },
	{ "DELETE", PV_DELETE },
	{ "OPTIONS", PV_OPTIONS },
};

struct reason {
	int status;         /* HTTP status */
	const char *phrase; /* its reason phrase */
};

static const struct reason reasons[] = {
	{ 200, "OK" },
	{ 201, "Created" },
	{ 204, "No Content" },
	{ 302, "Found" },
	{ 303, "See Other" },
	{ 304, "Not Modified" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 402, "Payment Required" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 409, "Conflict" },
	{ 413, "Content Too Large" },
	{ 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" },
	{ 422, "Unprocessable Content" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
};

/* Maps a method name to its bit; anything unknown is PV_OTHER. */
enum pv_method
pv_http_method(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, name) == 0)
			return methods[i].method;
	return PV_OTHER;
}

/* Reason phrase for a status line. */
const char *
pv_http_reason(int status)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].phrase;
	return "Unknown";
}

/* RFC 3339 UTC time of t, e.g. 2026-11-25T13:28:05Z. */
char *
pv_http_time(char *buf, size_t size, time_t t)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		if (size > 0)
			buf[0] = '\0';
	}
	return buf;
}

/* Header value by lowercase name, or NULL. */
const char *
pv_req_header(const struct pv_req *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nhdr; i++)
		if (strcasecmp(req->hdrs[i].name, name) == 0)
			return req->hdrs[i].value;
	return NULL;
}

/*
 * Finds a cookie in "a=1; b=2" (RFC 6265 5.4: a pair's name is what
 * precedes its first '='; leading spaces of a pair are skipped, nothing
 * else is trimmed or unquoted).  See pv_http.h.
 */
const char *
pv_req_cookie(const struct pv_req *req, const char *name, size_t *len)
{
	const char *h = pv_req_header(req, "cookie"), *p, *e, *eq;
	size_t n = strlen(name);

	if (h == NULL)
		return NULL;
	for (p = h; *p != '\0'; p = *e != '\0' ? e + 1 : e) {
		while (*p == ' ')
			p++;
		e = p + strcspn(p, ";");
		eq = memchr(p, '=', (size_t)(e - p));
		if (eq != NULL && (size_t)(eq - p) == n &&
		    memcmp(p, name, n) == 0) {
			*len = (size_t)(e - eq) - 1;
			return eq + 1;
		}
	}
	return NULL;
}

/* The first query parameter of that name, or NULL. */
const char *
pv_req_param(const struct pv_req *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nparam; i++)
		if (strcmp(req->params[i].name, name) == 0)
			return req->params[i].value;
	return NULL;
}

/* Decodes s[0..len) (form rules) into arena memory. */
static char *
form_decode(struct pv_arena *a, const char *s, size_t len, size_t *outlen,
    struct pv_err *err)
{
	size_t i, o = 0;
	char *d;
	int hi, lo;

	if ((d = pv_arena_alloc(a, len + 1, err)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] == '+') {
			d[o++] = ' ';
		} else if (s[i] == '%') {
			if (i + 2 >= len ||
			    (hi = pv_crypto_hex_digit(
			         (unsigned char)s[i + 1])) < 0 ||
			    (lo = pv_crypto_hex_digit(
			         (unsigned char)s[i + 2])) < 0)
				goto bad;
			d[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			d[o++] = s[i];
		}
	}
	d[o] = '\0';
	*outlen = o;
	return d;
bad:
	PV_ERR(err, PV_E_INVALID, NULL, "malformed %%-escape in parameters");
	return NULL;
}

/* Decodes a form or query string into at most max arena pairs. */
int
pv_http_parse_form(struct pv_arena *a, const char *s, size_t len, size_t max,
    struct pv_kv **out, size_t *n, struct pv_err *err)
{
	const char *p, *end = s + len, *amp, *eq;
	struct pv_kv *kv;
	size_t count = 0, klen;

	*out = NULL;
	*n = 0;
	for (p = s; p < end; p = amp + 1) {
		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		if (amp != p)
			count++;
		if (amp == end)
			break;
	}
	if (count == 0)
		return 0;
	if (count > max) {
		PV_ERR(err, PV_E_INVALID, NULL, "more than %zu parameters",
		    max);
		return -1;
	}
	if ((kv = pv_arena_calloc(a, count, sizeof(*kv), err)) == NULL)
		return -1;
	count = 0;
	for (p = s; p < end; p = amp + 1) {
		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		if (amp != p) {
			if ((eq = memchr(p, '=', (size_t)(amp - p))) == NULL)
				eq = amp;
			if ((kv[count].name = form_decode(a, p,
			         (size_t)(eq - p), &klen, err)) == NULL ||
			    (kv[count].value =
			            form_decode(a, eq < amp ? eq + 1 : amp,
			                eq < amp ? (size_t)(amp - eq - 1) : 0,
			                &kv[count].valuelen, err)) == NULL)
				return -1;
			if (strlen(kv[count].name) != klen) {
				PV_ERR(err, PV_E_INVALID, NULL,
				    "NUL byte in a parameter name");
				return -1;
			}
			count++;
		}
		if (amp == end)
			break;
	}
	*out = kv;
	*n = count;
	return 0;
}

/* Does pattern match path?  Fills req->route with ":name" segments. */
static int
match(const char *pattern, const char *path, struct pv_req *req)
{
	const char *seg;
	size_t n = 0;

	while (*pattern != '\0' && *path != '\0') {
		if (*pattern == ':') {
			seg = path;
			while (*path != '\0' && *path != '/')
				path++;
			if (path == seg || n == PV_ROUTE_MAXPARAM)
				return 0;
			req->route[n++] = seg;
			while (*pattern != '\0' && *pattern != '/')
				pattern++;
			continue;
		}
		if (*pattern != *path)
			return 0;
		pattern++;
		path++;
	}
	if (*pattern != '\0' || *path != '\0')
		return 0;
	req->nroute = n;
	return 1;
}

/* Copies each captured segment into the arena, NUL-terminated. */
static int
split_route(struct pv_ctx *ctx, struct pv_req *req, struct pv_err *err)
{
	const char *end;
	size_t i;

	for (i = 0; i < req->nroute; i++) {
		if ((end = strchr(req->route[i], '/')) == NULL)
			end = req->route[i] + strlen(req->route[i]);
		if ((req->route[i] = pv_arena_strndup(ctx->arena, req->route[i],
		         (size_t)(end - req->route[i]), err)) == NULL)
			return -1;
	}
	return 0;
}

/* Runs a route's preconditions, then its handler. */
static int
run_route(struct pv_ctx *ctx, const struct pv_route *r,
    const struct pv_req *req, struct pv_resp *resp, struct pv_err *err)
{
	int rc;

	if (r->flags &
	    (PV_ROUTE_AGENT | PV_ROUTE_IDEMPOTENT | PV_ROUTE_AGENT_SELF)) {
		if ((ctx->usage.endpoint = pv_arena_printf(ctx->arena, err,
		         "%s %s",
		         req->method == PV_HEAD ? "GET" : req->method_name,
		         r->pattern)) == NULL)
			return -1;
	}
	if (r->flags & PV_ROUTE_AGENT_SELF) {
		if ((rc = r->fn(ctx, req, resp, err)) == 0 &&
		    ctx->agent == NULL) {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "%s answered without authenticating", r->pattern);
			return -1;
		}
		return rc;
	}
	if (r->flags & (PV_ROUTE_AGENT | PV_ROUTE_IDEMPOTENT)) {
		if (pv_agent_authenticate(ctx, req, resp, err) == -1)
			return -1;
	}
	if (r->flags & PV_ROUTE_IDEMPOTENT) {
		if ((rc = pv_idem_begin(ctx, req, resp, err)) != 0)
			return rc == 1 ? 0 : -1;
	}
	return r->fn(ctx, req, resp, err);
}

/* Routes req through the table; see pv_http.h. */
int
pv_route_dispatch(struct pv_ctx *ctx, const struct pv_route *routes,
    size_t nroutes, const struct pv_req *req0, struct pv_resp *resp,
    struct pv_err *err)
{
	struct pv_req copy = *req0, *req = &copy;
	const char *v;
	char allow[96];
	unsigned want, allowed = 0;
	size_t i, j, o;

	want = req->method == PV_HEAD ? (PV_GET | PV_HEAD) : req->method;
	for (i = 0; i < nroutes; i++) {
		if (!match(routes[i].pattern, req->path, req))
			continue;
		allowed |= routes[i].methods;
		if ((routes[i].methods & want) == 0)
			continue;
		if (split_route(ctx, req, err) == -1)
			return -1;
		return run_route(ctx, &routes[i], req, resp, err);
	}
	req->nroute = 0;
	if (allowed == 0) {
		PV_ERR(err, PV_E_NOTFOUND, NULL, "no such endpoint");
		return -1;
	}
	if (allowed & PV_GET)
		allowed |= PV_HEAD;
	for (o = 0, j = 0; j < sizeof(methods) / sizeof(methods[0]); j++) {
		if ((allowed & methods[j].method) == 0)
			continue;
		o += (size_t)snprintf(allow + o, sizeof(allow) - o, "%s%s",
		    o != 0 ? ", " : "", methods[j].name);
	}
	if ((v = pv_arena_strdup(ctx->arena, allow, err)) == NULL ||
	    pv_resp_header(resp, "Allow", v, err) == -1)
		return -1;
	PV_ERR(err, PV_E_METHOD, NULL, "%s is not allowed here; use %s",
	    req->method_name, allow);
	return -1;
}

/* Appends a response header after checking it cannot split the head. */
int
pv_resp_header(struct pv_resp *resp, const char *name, const char *value,
    struct pv_err *err)
{
	if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "refusing header %s with a line break", name);
		return -1;
	}
	if (resp->nhdr == PV_RESP_MAXHDR) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "too many response headers");
		return -1;
	}
	resp->hdrs[resp->nhdr].name = name;
	resp->hdrs[resp->nhdr].value = value;
	resp->hdrs[resp->nhdr].valuelen = strlen(value);
	resp->nhdr++;
	return 0;
}

/* Sets a whole response. */
void
pv_resp_set(struct pv_resp *resp, int status, const char *content_type,
    const char *body, size_t bodylen)
{
	resp->status = status;
	resp->content_type = content_type;
	resp->body = body;
	resp->bodylen = bodylen;
}

/*
 * Serializes obj (borrowed) with json-c into the arena as the body.  An
 * error already recorded (a sticky builder that failed half-way) is
 * never sent as a partial 200.
 */
int
pv_resp_json(struct pv_ctx *ctx, struct pv_resp *resp, int status,
    struct json_object *obj, struct pv_err *err)
{
	const char *s;
	size_t len;
	char *copy;

	if (err->code != PV_OK || obj == NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "no response object");
		return -1;
	}

	s = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (s == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "cannot serialize JSON");
		return -1;
	}
	if ((copy = pv_arena_strndup(ctx->arena, s, len, err)) == NULL)
		return -1;
	pv_resp_set(resp, status, "application/json", copy, len);
	return 0;
}

static const char fallback_body[] =
    "{\"status\":\"error\",\"detail\":\"The server is out of memory.\","
    "\"error\":{\"type\":\"api_error\",\"code\":\"service_unavailable\","
    "\"message\":\"The server is out of memory.\",\"param\":null}}";

/* Builds the API.md error object; NULL if json-c runs out of memory. */
static struct json_object *
error_object(struct pv_ctx *ctx, const struct pv_err *err, int status,
    struct json_object *extra)
{
	struct json_object *o, *e;
	char msg[320];
	const char *m;
	int bad = 0;

	if (status < 500) {
		m = err->msg[0] != '\0' ? err->msg : pv_http_reason(status);
	} else {
		if (snprintf(msg, sizeof(msg),
		        "The server could not complete the request; "
		        "request id %s.",
		        ctx->request_id) < 0)
			msg[0] = '\0';
		m = msg;
	}
	if ((o = json_object_new_object()) == NULL)
		return NULL;
	if ((e = json_object_new_object()) == NULL) {
		json_object_put(o);
		return NULL;
	}
	bad |= json_object_object_add(o, "status",
	    json_object_new_string("error"));
	bad |= json_object_object_add(o, "detail", json_object_new_string(m));
	bad |= json_object_object_add(e, "type",
	    json_object_new_string(pv_err_type(err->code)));
	bad |= json_object_object_add(e, "code",
	    json_object_new_string(pv_err_wire_code(err)));
	bad |= json_object_object_add(e, "message", json_object_new_string(m));
	bad |= json_object_object_add(e, "param",
	    status < 500 && err->field[0] != '\0' ?
	        json_object_new_string(err->field) :
	        NULL);
	bad |= json_object_object_add(e, "request_id",
	    json_object_new_string(ctx->request_id));
	if (extra != NULL) {
		json_object_object_foreach (extra, k, v) {
			bad |= json_object_object_add(e, k, json_object_get(v));
			bad |= json_object_object_add(o, k, json_object_get(v));
		}
	}
	bad |= json_object_object_add(o, "error", e);
	if (bad) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Renders err as the response; see pv_http.h. */
void
pv_resp_error(struct pv_ctx *ctx, struct pv_resp *resp,
    const struct pv_err *err)
{
	pv_resp_error_extra(ctx, resp, err, NULL);
}

void
pv_resp_error_extra(struct pv_ctx *ctx, struct pv_resp *resp,
    const struct pv_err *err, struct json_object *extra)
{
	struct pv_err err2 = { 0 };
	struct json_object *o;
	char *ra;
	int status;
	size_t i, keep = 0;

	status = pv_err_status(err->code);
	/* Keep only headers that describe the error (Allow, limits). */
	for (i = 0; i < resp->nhdr; i++)
		if (strcasecmp(resp->hdrs[i].name, "Allow") == 0 ||
		    strncasecmp(resp->hdrs[i].name, "X-RateLimit-", 12) == 0 ||
		    strncasecmp(resp->hdrs[i].name, "X-Quota-", 8) == 0)
			resp->hdrs[keep++] = resp->hdrs[i];
	resp->nhdr = keep;
	if (err->retry_after > 0 &&
	    (ra = pv_arena_printf(ctx->arena, &err2, "%d", err->retry_after)) !=
	        NULL)
		(void)pv_resp_header(resp, "Retry-After", ra, &err2);
	if ((o = error_object(ctx, err, status, extra)) == NULL ||
	    pv_resp_json(ctx, resp, status, o, &err2) == -1)
		pv_resp_set(resp, 503, "application/json", fallback_body,
		    sizeof(fallback_body) - 1);
	if (o != NULL)
		json_object_put(o);
}
