#ifndef PV_HTTPC_H
#define PV_HTTPC_H

/*
 * A small HTTP client for the integration tests (libcurl underneath):
 * one call sends a request and captures the status, the headers of the
 * final response and the body.  Nothing is followed or retried, so a
 * test sees exactly what the server said.  Memory is plain malloc,
 * released by pv_httpc_resp_free().
 *
 *	struct pv_httpc_resp r;
 *	const char *hdr[] = { "X-Request-Id: t-1", NULL };
 *
 *	ck_assert_int_eq(pv_httpc_get(&r, url, hdr), 0);
 *	ck_assert_int_eq(r.status, 200);
 *	ck_assert_str_eq(pv_httpc_header(&r, "content-type"), "...");
 *	pv_httpc_resp_free(&r);
 */
#include <stddef.h>

#include <json-c/json.h>

struct pv_httpc_header {
	char *name;  /* as sent, e.g. "Content-Type" */
	char *value; /* leading and trailing blanks removed */
};

struct pv_httpc_resp {
	long status;                /* 0 if no response */
	struct pv_httpc_header *hv; /* headers of the final response */
	size_t hn;
	char *body; /* NUL-terminated copy; may hold NULs */
	size_t body_len;
	char error[256]; /* transport error, "" if none */
};

/*
 * Send METHOD to URL with the extra header lines in HEADERS (a NULL-
 * terminated list, may be NULL; "Name:" with nothing after removes a
 * header curl would send, "Name;" sends it empty) and BODY_LEN bytes of BODY
 * (BODY NULL: no body).  Returns 0 when a response arrived (whatever its
 * status), -1 on a transport failure (connection refused, timeout after 15 s,
 * reset by the server...) with R->error set.  R is always safe to free.
 */
int pv_httpc_request(struct pv_httpc_resp *r, const char *method,
    const char *url, const char *const *headers, const void *body,
    size_t body_len);
int pv_httpc_get(struct pv_httpc_resp *r, const char *url,
    const char *const *headers);
/* POST BODY (a C string) as application/json unless HEADERS say else. */
int pv_httpc_post(struct pv_httpc_resp *r, const char *url,
    const char *const *headers, const char *body);
void pv_httpc_resp_free(struct pv_httpc_resp *r);

/* The first value of header NAME (any case), or NULL.  Borrows R. */
const char *pv_httpc_header(const struct pv_httpc_resp *r, const char *name);
/* How many times header NAME came (to catch duplicates). */
size_t pv_httpc_header_count(const struct pv_httpc_resp *r, const char *name);

/*
 * The body parsed as one JSON value with nothing after it, or NULL.
 * The caller owns the result (json_object_put).
 */
struct json_object *pv_httpc_json(const struct pv_httpc_resp *r);
/* Member at a dotted PATH ("services.database"), or NULL.  Borrows O. */
struct json_object *pv_httpc_json_get(struct json_object *o, const char *path);
/* The string at PATH, or NULL if absent or not a string.  Borrows O. */
const char *pv_httpc_json_str(struct json_object *o, const char *path);

/*
 * The servers under test, from the environment run.sh sets up
 * (PV_LIGHTTPD_URL, PV_APACHE_URL, PV_FCGID_URL, PV_CGI_URL): fills up
 * to MAX entries of OUT with those that are set and returns how many.
 */
struct pv_httpc_server {
	const char *name; /* "lighttpd", "apache", "fcgid", "cgi" */
	const char *base; /* "http://127.0.0.1:PORT" */
};
size_t pv_httpc_servers(struct pv_httpc_server *out, size_t max);

/* BASE followed by PATH, malloc'd (the caller frees); NULL if no memory. */
char *pv_httpc_url(const char *base, const char *path);

#endif /* PV_HTTPC_H */
