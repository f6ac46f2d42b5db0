/*
 * A small libcurl client for the integration tests.  See pv_httpc.h.
 * Test code: it aborts on out-of-memory rather than report it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "pv_httpc.h"

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL) {
		fputs("pv_httpc: out of memory\n", stderr);
		abort();
	}
	return p;
}

static char *
xstrndup(const char *s, size_t n)
{
	char *d = xrealloc(NULL, n + 1);

	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static void
clear_headers(struct pv_httpc_resp *r)
{
	size_t i;

	for (i = 0; i < r->hn; i++) {
		free(r->hv[i].name);
		free(r->hv[i].value);
	}
	free(r->hv);
	r->hv = NULL;
	r->hn = 0;
}

/*
 * One header line per call, CRLF included.  A status line starts a new
 * response (after a 100 Continue, say): only the last one's headers
 * are kept.
 */
static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct pv_httpc_resp *r = arg;
	size_t len = size * n, nl, vs, ve;
	const char *colon;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		clear_headers(r);
		return len;
	}
	colon = memchr(p, ':', len);
	if (colon == NULL)
		return len; /* the blank line, or junk: ignore */
	nl = (size_t)(colon - p);
	vs = nl + 1;
	ve = len;
	while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
		vs++;
	while (ve > vs && isspace((unsigned char)p[ve - 1]))
		ve--;
	r->hv = xrealloc(r->hv, (r->hn + 1) * sizeof(*r->hv));
	r->hv[r->hn].name = xstrndup(p, nl);
	r->hv[r->hn].value = xstrndup(p + vs, ve - vs);
	r->hn++;
	return len;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct pv_httpc_resp *r = arg;
	size_t len = size * n;

	r->body = xrealloc(r->body, r->body_len + len + 1);
	memcpy(r->body + r->body_len, p, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return len;
}

int
pv_httpc_request(struct pv_httpc_resp *r, const char *method, const char *url,
    const char *const *headers, const void *body, size_t body_len)
{
	struct curl_slist *hl = NULL, *t;
	CURL *c;
	CURLcode rc;
	char err[CURL_ERROR_SIZE] = "";
	size_t i;

	memset(r, 0, sizeof(*r));
	r->body = xrealloc(NULL, 1);
	r->body[0] = '\0';
	c = curl_easy_init();
	if (c == NULL) {
		memcpy(r->error, "curl_easy_init failed", 22);
		return -1;
	}
	/* No "Expect: 100-continue" round trip for bigger bodies. */
	hl = curl_slist_append(hl, "Expect:");
	for (i = 0; headers != NULL && headers[i] != NULL; i++) {
		t = curl_slist_append(hl, headers[i]);
		if (t == NULL)
			abort();
		hl = t;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "pivota-tests/1");
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	    !(strcmp(method, "POST") == 0 && body != NULL))
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);

	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	else {
		/* Cut long URLs and messages: this is for a test's output. */
		char msg[sizeof(r->error)];
		int n = snprintf(msg, sizeof(msg), "%.16s %.120s: %.100s",
		    method, url, err[0] != '\0' ? err : curl_easy_strerror(rc));

		if (n > 0)
			memcpy(r->error, msg, sizeof(msg));
	}
	curl_easy_cleanup(c);
	curl_slist_free_all(hl);
	return rc == CURLE_OK ? 0 : -1;
}

int
pv_httpc_get(struct pv_httpc_resp *r, const char *url,
    const char *const *headers)
{
	return pv_httpc_request(r, "GET", url, headers, NULL, 0);
}

int
pv_httpc_post(struct pv_httpc_resp *r, const char *url,
    const char *const *headers, const char *body)
{
	const char *h[64];
	size_t i, n = 0;
	int typed = 0;

	for (i = 0; headers != NULL && headers[i] != NULL && n < 62; i++) {
		if (strncasecmp(headers[i], "Content-Type:", 13) == 0)
			typed = 1;
		h[n++] = headers[i];
	}
	if (!typed)
		h[n++] = "Content-Type: application/json";
	h[n] = NULL;
	return pv_httpc_request(r, "POST", url, h, body == NULL ? "" : body,
	    body == NULL ? 0 : strlen(body));
}

void
pv_httpc_resp_free(struct pv_httpc_resp *r)
{
	clear_headers(r);
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

const char *
pv_httpc_header(const struct pv_httpc_resp *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->hn; i++)
		if (strcasecmp(r->hv[i].name, name) == 0)
			return r->hv[i].value;
	return NULL;
}

size_t
pv_httpc_header_count(const struct pv_httpc_resp *r, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < r->hn; i++)
		if (strcasecmp(r->hv[i].name, name) == 0)
			n++;
	return n;
}

struct json_object *
pv_httpc_json(const struct pv_httpc_resp *r)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t end;

	if (r->body == NULL || r->body_len == 0 ||
	    strlen(r->body) != r->body_len || r->body_len > 64 * 1024 * 1024)
		return NULL;
	tok = json_tokener_new();
	if (tok == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, r->body, (int)r->body_len);
	end = json_tokener_get_parse_end(tok);
	if (o != NULL && json_tokener_get_error(tok) == json_tokener_success) {
		/* Only white space may follow the value. */
		while (
		    end < r->body_len && isspace((unsigned char)r->body[end]))
			end++;
		if (end != r->body_len) {
			json_object_put(o);
			o = NULL;
		}
	} else if (o != NULL) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

struct json_object *
pv_httpc_json_get(struct json_object *o, const char *path)
{
	char key[128];
	const char *p = path, *dot;
	size_t n;

	while (o != NULL && *p != '\0') {
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(key) ||
		    !json_object_is_type(o, json_type_object))
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		if (!json_object_object_get_ex(o, key, &o))
			return NULL;
		p += n;
		if (*p == '.')
			p++;
	}
	return o;
}

const char *
pv_httpc_json_str(struct json_object *o, const char *path)
{
	o = pv_httpc_json_get(o, path);
	if (o == NULL || !json_object_is_type(o, json_type_string))
		return NULL;
	return json_object_get_string(o);
}

size_t
pv_httpc_servers(struct pv_httpc_server *out, size_t max)
{
	static const struct {
		const char *name, *var;
	} known[] = {
		{ "lighttpd", "PV_LIGHTTPD_URL" },
		{ "apache", "PV_APACHE_URL" },
		{ "fcgid", "PV_FCGID_URL" },
		{ "cgi", "PV_CGI_URL" },
	};
	const char *v;
	size_t i, n = 0;

	for (i = 0; i < sizeof(known) / sizeof(known[0]) && n < max; i++) {
		v = getenv(known[i].var);
		if (v == NULL || *v == '\0')
			continue;
		out[n].name = known[i].name;
		out[n].base = v;
		n++;
	}
	return n;
}

char *
pv_httpc_url(const char *base, const char *path)
{
	size_t bl = strlen(base), pl = strlen(path);
	char *u = malloc(bl + pl + 1);

	if (u == NULL)
		return NULL;
	memcpy(u, base, bl);
	memcpy(u + bl, path, pl + 1);
	return u;
}
