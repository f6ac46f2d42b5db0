/*
 * The libcurl client behind every provider adapter.  One easy handle
 * per process keeps the connection cache warm: each call resets the
 * handle's options, so nothing of one request leaks into the next,
 * while live connections survive curl_easy_reset().
 *
 * Retries follow what Stripe, Shopify and Adyen document: connection
 * failures, timeouts, 409, 429 and 5xx are retried with exponential
 * backoff and full jitter, or after Retry-After when the server sends
 * one; other 4xx never are.  The body and header buffers are reused
 * from one attempt to the next, so retries cost no more arena memory
 * than the largest response.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "pv_upstream.h"

#define HDRS_MAX          (64u * 1024u) /* response header bytes kept */
#define HDR_LINE_MAX      (16u * 1024u) /* one request header line */
#define ATTEMPTS_MAX      10
#define RETRY_AFTER_MAX_S 86400L
#define MAX_RESP_LIMIT    (SIZE_MAX / 4) /* keeps max_resp + 1 sane */
#define USER_AGENT        "pivota"
#define CURL_MIN_VERSION  0x075500 /* 7.85.0: CURLOPT_PROTOCOLS_STR */

/* The libcurl we are built against; the Makefile may say otherwise. */
#ifndef PV_CURL_SONAME
#define PV_CURL_SONAME "libcurl.so.4"
#endif

/*
 * libcurl's functions, looked up with dlsym() by load_curl().  Each
 * member has the type of the function it holds, taken from
 * <curl/curl.h>, so a call through it is checked as a direct call is.
 */
struct curl_api {
	void *dl; /* the dlopen() handle, NULL until loaded */
	__typeof__(curl_version_info) *version_info;
	__typeof__(curl_global_init) *global_init;
	__typeof__(curl_global_cleanup) *global_cleanup;
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_reset) *easy_reset;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_perform) *easy_perform;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_url) *url;
	__typeof__(curl_url_set) *url_set;
	__typeof__(curl_url_get) *url_get;
	__typeof__(curl_url_cleanup) *url_cleanup;
	__typeof__(curl_free) *free;
	__typeof__(curl_slist_append) *slist_append;
	__typeof__(curl_slist_free_all) *slist_free_all;
	__typeof__(curl_getdate) *getdate;
};

struct pv_upstream {
	struct curl_api api;          /* libcurl, once loaded */
	CURL *curl;                   /* the one easy handle */
	char errbuf[CURL_ERROR_SIZE]; /* libcurl's words for a failure */
	uint64_t rng;                 /* xorshift state for jitter */
	void (*sleep)(void *, long);  /* waits between attempts */
	void *sleeparg;               /* passed to sleep */
};

/* The settings of one call, defaults filled in. */
struct opts {
	long timeout;   /* per attempt, ms */
	long connect;   /* connect phase, ms */
	long base;      /* first backoff ceiling, ms */
	long max;       /* largest backoff ceiling, ms */
	long budget;    /* whole call, ms */
	size_t maxresp; /* body cap, bytes */
	int attempts;   /* at most this many */
};

/* What the callbacks fill in during one attempt. */
struct xfer {
	struct pv_buf body; /* response body */
	struct pv_buf hdrs; /* "name\0value\0" pairs of the final response */
	size_t maxresp;     /* cap on body.len */
	struct pv_err err;  /* why a callback stopped the transfer */
};

static const char *const methods[PV_UPSTREAM__MAX] = {
	"GET",    /* PV_UPSTREAM_GET */
	"POST",   /* PV_UPSTREAM_POST */
	"PUT",    /* PV_UPSTREAM_PUT */
	"PATCH",  /* PV_UPSTREAM_PATCH */
	"DELETE", /* PV_UPSTREAM_DELETE */
	"HEAD",   /* PV_UPSTREAM_HEAD */
};

static void
sleep_ms(void *arg, long ms)
{
	struct timespec ts, rem;

	(void)arg;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &rem) == -1 && errno == EINTR)
		ts = rem;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64: jitter needs spread, not secrecy. */
static uint64_t
rnd(struct pv_upstream *up)
{
	uint64_t x = up->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	up->rng = x;
	return x;
}

/*
 * Creates the process's client.  Neither libcurl nor anything it
 * depends on is loaded yet (see load_curl()).  Called at start-up;
 * returns NULL if malloc fails.
 */
struct pv_upstream *
pv_upstream_new(void)
{
	struct pv_upstream *up;
	struct timespec ts;

	if ((up = calloc(1, sizeof(*up))) == NULL)
		return NULL;
	if (getentropy(&up->rng, sizeof(up->rng)) == -1 || up->rng == 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		up->rng = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
		    (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ULL;
	}
	up->sleep = sleep_ms;
	return up;
}

/*
 * libcurl is not linked: the first call that needs it loads it.  Most
 * programs never call a provider, and linking it would map libcurl and
 * the twenty-odd libraries it pulls in (HTTP/2, SSH, LDAP, RTMP, IDN,
 * PSL, brotli, zstd...) into every process, relocated and touched at
 * start-up: half a megabyte of each process's RSS (docs/performance.md,
 * "Memory").  RTLD_NODELETE keeps it mapped after dlclose(), as a
 * linked library would stay, so nothing it registered (with OpenSSL,
 * say) can outlive its code.  Returns 0, or -1 with PV_E_INTERNAL if
 * it cannot be loaded, lacks a function or is older than 7.85.0.
 */
static int
load_curl(struct pv_upstream *up, struct pv_err *err)
{
	struct curl_api *api = &up->api;
	const curl_version_info_data *v;
	void *dl;
	int ok;

	if (api->dl != NULL)
		return 0;
	dl = dlopen(PV_CURL_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (dl == NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "cannot load libcurl: %s",
		    dlerror());
		return -1;
	}
#define LOAD(f) ((api->f = (__typeof__(api->f))dlsym(dl, "curl_" #f)) != NULL)
	ok = LOAD(version_info) && LOAD(global_init) && LOAD(global_cleanup) &&
	    LOAD(easy_init) && LOAD(easy_cleanup) && LOAD(easy_reset) &&
	    LOAD(easy_setopt) && LOAD(easy_perform) && LOAD(easy_getinfo) &&
	    LOAD(easy_strerror) && LOAD(url) && LOAD(url_set) &&
	    LOAD(url_get) && LOAD(url_cleanup) && LOAD(free) &&
	    LOAD(slist_append) && LOAD(slist_free_all) && LOAD(getdate);
#undef LOAD
	if (!ok) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "%s: %s", PV_CURL_SONAME,
		    dlerror());
	} else if ((v = api->version_info(CURLVERSION_NOW)) == NULL ||
	    v->version_num < CURL_MIN_VERSION) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "%s is libcurl %s; 7.85.0 or later is needed",
		    PV_CURL_SONAME, v != NULL ? v->version : "?");
		ok = 0;
	}
	if (!ok) {
		dlclose(dl);
		memset(api, 0, sizeof(*api));
		return -1;
	}
	api->dl = dl;
	return 0;
}

/*
 * libcurl's global state (and the TLS library's) is started on the
 * first transfer, not when libcurl is loaded to parse a URL.
 */
static int
start_curl(struct pv_upstream *up, struct pv_err *err)
{
	if (up->curl != NULL)
		return 0;
	if (load_curl(up, err) == -1)
		return -1;
	if (up->api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		PV_ERR(err, PV_E_NOMEM, NULL, "cannot start libcurl");
		return -1;
	}
	if ((up->curl = up->api.easy_init()) == NULL) {
		up->api.global_cleanup();
		PV_ERR(err, PV_E_NOMEM, NULL, "cannot start libcurl");
		return -1;
	}
	return 0;
}

/* Closes the cached connections and frees the client.  NULL is allowed. */
void
pv_upstream_free(struct pv_upstream *up)
{
	if (up == NULL)
		return;
	if (up->curl != NULL) {
		up->api.easy_cleanup(up->curl);
		up->api.global_cleanup();
	}
	if (up->api.dl != NULL)
		dlclose(up->api.dl);
	free(up);
}

/*
 * curl_easy_setopt() on the client's handle, one function per kind of
 * value, so that each value reaches libcurl as the type its va_arg()
 * reads (curl.h's type-checking macro does not reach a call through a
 * pointer).  Each returns 1 if libcurl refused the option, else 0.
 */
static int
opt_long(struct pv_upstream *up, CURLoption o, long v)
{
	assert(o < CURLOPTTYPE_OBJECTPOINT);
	return up->api.easy_setopt(up->curl, o, v) != CURLE_OK;
}

static int
opt_str(struct pv_upstream *up, CURLoption o, const char *s)
{
	assert(o >= CURLOPTTYPE_OBJECTPOINT && o < CURLOPTTYPE_FUNCTIONPOINT);
	return up->api.easy_setopt(up->curl, o, s) != CURLE_OK;
}

static int
opt_ptr(struct pv_upstream *up, CURLoption o, void *p)
{
	assert(o >= CURLOPTTYPE_OBJECTPOINT && o < CURLOPTTYPE_FUNCTIONPOINT);
	return up->api.easy_setopt(up->curl, o, p) != CURLE_OK;
}

static int
opt_list(struct pv_upstream *up, CURLoption o, struct curl_slist *l)
{
	assert(o >= CURLOPTTYPE_OBJECTPOINT && o < CURLOPTTYPE_FUNCTIONPOINT);
	return up->api.easy_setopt(up->curl, o, l) != CURLE_OK;
}

static int
opt_fn(struct pv_upstream *up, CURLoption o, curl_write_callback fn)
{
	assert(o >= CURLOPTTYPE_FUNCTIONPOINT && o < CURLOPTTYPE_OFF_T);
	return up->api.easy_setopt(up->curl, o, fn) != CURLE_OK;
}

static int
opt_off(struct pv_upstream *up, CURLoption o, curl_off_t v)
{
	assert(o >= CURLOPTTYPE_OFF_T && o < CURLOPTTYPE_BLOB);
	return up->api.easy_setopt(up->curl, o, v) != CURLE_OK;
}

#ifdef PV_TESTING
/* Lets tests observe backoff waits without spending them. */
void
pv_upstream_set_sleep(struct pv_upstream *up, void (*fn)(void *arg, long ms),
    void *arg)
{
	up->sleep = fn != NULL ? fn : sleep_ms;
	up->sleeparg = arg;
}
#endif

/* 127.0.0.0/8, ::1 and localhost, as libcurl reports the host. */
static int
is_loopback(const char *host)
{
	struct in6_addr v6;
	struct in_addr v4;
	char buf[INET6_ADDRSTRLEN];
	size_t len;

	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	len = strlen(host);
	if (len < 3 || host[0] != '[' || host[len - 1] != ']' ||
	    len - 2 >= sizeof(buf))
		return 0;
	memcpy(buf, host + 1, len - 2);
	buf[len - 2] = '\0';
	return inet_pton(AF_INET6, buf, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

/* A URL as libcurl's own parser splits it. */
struct url_parts {
	CURLU *u;     /* the parsed handle */
	char *scheme; /* libcurl memory */
	char *host;   /* libcurl memory */
};

/*
 * Parses url into p with libcurl's parser, loading libcurl if need be.
 * Returns 0, 1 if url is malformed (the caller says so in its own
 * words), or -1 with PV_E_NOMEM or load_curl()'s error.  p must be
 * released with url_release() whatever the outcome.
 */
static int
url_split(struct pv_upstream *up, const char *url, struct url_parts *p,
    struct pv_err *err)
{
	memset(p, 0, sizeof(*p));
	if (load_curl(up, err) == -1)
		return -1;
	if ((p->u = up->api.url()) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	if (url == NULL ||
	    up->api.url_set(p->u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    up->api.url_get(p->u, CURLUPART_SCHEME, &p->scheme, 0) !=
	        CURLUE_OK ||
	    up->api.url_get(p->u, CURLUPART_HOST, &p->host, 0) != CURLUE_OK)
		return 1;
	return 0;
}

static void
url_release(struct pv_upstream *up, struct url_parts *p)
{
	if (up->api.dl == NULL)
		return;
	up->api.free(p->scheme);
	up->api.free(p->host);
	up->api.url_cleanup(p->u);
	memset(p, 0, sizeof(*p));
}

/*
 * Parses url with libcurl's own parser and hands the parsed handle to
 * the transfer, so the host judged here is the host connected to.
 */
static int
parse_url(struct pv_upstream *up, const char *url, CURLU **out, int *loopback,
    struct pv_err *err)
{
	struct url_parts p;
	int rc = -1, r;

	*out = NULL;
	if ((r = url_split(up, url, &p, err)) == 1)
		PV_ERR(err, PV_E_UPSTREAM, NULL, "malformed upstream URL");
	if (r != 0)
		goto out;
	*loopback = is_loopback(p.host);
	if (strcasecmp(p.scheme, "https") == 0 ||
	    (strcasecmp(p.scheme, "http") == 0 && *loopback)) {
		*out = p.u;
		p.u = NULL;
		rc = 0;
	} else if (strcasecmp(p.scheme, "http") == 0)
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "plain http is allowed only to loopback hosts");
	else
		PV_ERR(err, PV_E_UPSTREAM, NULL,
		    "only https upstream URLs are allowed");
out:
	url_release(up, &p);
	return rc;
}

/* An RFC 9110 token: what may appear as a header name. */
static int
valid_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		        (*s >= '0' && *s <= '9') ||
		        strchr("!#$%&'*+-.^_`|~", *s) != NULL))
			return 0;
	return 1;
}

/* No control bytes but tab, so a value cannot start a new header. */
static int
valid_value(const char *s)
{
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return 0;
	return 1;
}

/*
 * Builds libcurl's header list (malloc'd; the caller frees it).  The
 * values are secrets, so a malformed one is reported by position only.
 */
static int
build_headers(struct pv_upstream *up, struct pv_arena *a,
    const struct pv_upstream_req *req, struct curl_slist **out,
    struct pv_err *err)
{
	const struct pv_upstream_hdr *h;
	struct curl_slist *list = NULL, *t;
	struct pv_buf b;
	const char *line;
	size_t i;

	pv_buf_init(&b, a, HDR_LINE_MAX);
	/* An empty Expect stops libcurl waiting for 100-continue. */
	if ((list = up->api.slist_append(NULL, "Expect:")) == NULL)
		goto nomem;
	for (i = 0; i < req->nhdrs; i++) {
		h = &req->hdrs[i];
		if (h->name == NULL || h->value == NULL ||
		    !valid_name(h->name) || !valid_value(h->value)) {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "upstream request header %zu is malformed", i);
			goto fail;
		}
		pv_buf_truncate(&b, 0);
		pv_buf_puts(&b, h->name);
		/* "Name;" is how libcurl sends a header with no value. */
		pv_buf_puts(&b, h->value[0] != '\0' ? ": " : ";");
		pv_buf_puts(&b, h->value);
		if (pv_buf_finish(&b, &line, NULL, err) == -1)
			goto fail;
		if ((t = up->api.slist_append(list, line)) == NULL)
			goto nomem;
		list = t;
	}
	*out = list;
	return 0;
nomem:
	PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
fail:
	up->api.slist_free_all(list);
	return -1;
}

/* Checks the request and fills in defaults for fields left at 0. */
static int
resolve(const struct pv_upstream_req *req, struct opts *o, struct pv_err *err)
{
	if ((int)req->method < 0 || req->method >= PV_UPSTREAM__MAX ||
	    req->url == NULL || (req->body == NULL && req->bodylen != 0) ||
	    (req->hdrs == NULL && req->nhdrs != 0)) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "malformed upstream request");
		return -1;
	}
	if ((req->method == PV_UPSTREAM_GET ||
	        req->method == PV_UPSTREAM_HEAD) &&
	    req->body != NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "%s request with a body",
		    methods[req->method]);
		return -1;
	}
	o->timeout =
	    req->timeout_ms > 0 ? req->timeout_ms : PV_UPSTREAM_TIMEOUT_MS;
	o->connect = req->connect_timeout_ms > 0 ?
	    req->connect_timeout_ms :
	    PV_UPSTREAM_CONNECT_TIMEOUT_MS;
	o->base = req->backoff_base_ms > 0 ? req->backoff_base_ms :
	                                     PV_UPSTREAM_BACKOFF_BASE_MS;
	o->max = req->backoff_max_ms > 0 ? req->backoff_max_ms :
	                                   PV_UPSTREAM_BACKOFF_MAX_MS;
	if (o->max < o->base)
		o->max = o->base;
	o->budget = req->budget_ms > 0 ? req->budget_ms : PV_UPSTREAM_BUDGET_MS;
	o->maxresp = req->max_resp > 0 ? req->max_resp : PV_UPSTREAM_MAX_RESP;
	if (o->maxresp > MAX_RESP_LIMIT)
		o->maxresp = MAX_RESP_LIMIT;
	if (!req->retry_safe)
		o->attempts = 1;
	else if (req->max_attempts <= 0)
		o->attempts = PV_UPSTREAM_MAX_ATTEMPTS;
	else if (req->max_attempts > ATTEMPTS_MAX)
		o->attempts = ATTEMPTS_MAX;
	else
		o->attempts = req->max_attempts;
	return 0;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;

	if (len > x->maxresp - x->body.len) {
		PV_ERR(&x->err, PV_E_UPSTREAM, NULL,
		    "upstream response too large (over %zu bytes)", x->maxresp);
		return 0;
	}
	pv_buf_append(&x->body, p, len);
	if (pv_buf_failed(&x->body)) {
		x->err = x->body.err;
		return 0;
	}
	return len;
}

/*
 * Keeps the headers of the final response only: a status line (after
 * a 1xx, say) starts the list again.  Lines holding a NUL are dropped,
 * as they could forge an extra pair in the "name\0value\0" list.
 */
static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n, nlen, vlen;
	const char *colon, *v, *end;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		pv_buf_truncate(&x->hdrs, 0);
		return len;
	}
	if ((colon = memchr(p, ':', len)) == NULL || colon == p ||
	    memchr(p, '\0', len) != NULL)
		return len;
	nlen = (size_t)(colon - p);
	v = colon + 1;
	end = p + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && strchr("\r\n \t", end[-1]) != NULL)
		end--;
	vlen = (size_t)(end - v);
	if (nlen + vlen + 2 > HDRS_MAX - x->hdrs.len) {
		PV_ERR(&x->err, PV_E_UPSTREAM, NULL,
		    "upstream response headers too large");
		return 0;
	}
	pv_buf_append(&x->hdrs, p, nlen);
	pv_buf_putc(&x->hdrs, '\0');
	pv_buf_append(&x->hdrs, v, vlen);
	pv_buf_putc(&x->hdrs, '\0');
	if (pv_buf_failed(&x->hdrs)) {
		x->err = x->hdrs.err;
		return 0;
	}
	return len;
}

/*
 * Retry-After in milliseconds: delta-seconds, fractional seconds as
 * Shopify sends ("2.0"), or an HTTP-date.  -1 if absent or unreadable.
 */
static long
parse_retry_after(struct pv_upstream *up, const char *v)
{
	long sec = 0, ms = 0, scale = 100;
	time_t t, now;

	if (v == NULL)
		return -1;
	if (*v < '0' || *v > '9') {
		if ((t = up->api.getdate(v, NULL)) == -1)
			return -1;
		now = time(NULL);
		if (t <= now)
			return 0;
		if (t - now > RETRY_AFTER_MAX_S)
			return RETRY_AFTER_MAX_S * 1000;
		return (long)(t - now) * 1000;
	}
	for (; *v >= '0' && *v <= '9'; v++)
		if (sec <= RETRY_AFTER_MAX_S)
			sec = sec * 10 + (*v - '0');
	if (*v == '.') {
		for (v++; *v >= '0' && *v <= '9'; v++) {
			ms += (*v - '0') * scale;
			scale /= 10;
		}
	}
	if (*v != '\0')
		return -1;
	if (sec >= RETRY_AFTER_MAX_S)
		return RETRY_AFTER_MAX_S * 1000;
	return sec * 1000 + ms;
}

static int
retryable_status(long status)
{
	return status == 409 || status == 429 ||
	    (status >= 500 && status <= 599);
}

/* Failures after which the same request may well succeed. */
static int
retryable_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

/* Full jitter: uniform in [0, min(max, base * 2^(attempt - 1))]. */
static long
backoff(struct pv_upstream *up, const struct opts *o, int attempt)
{
	long ceil = o->base;
	int i;

	for (i = 1; i < attempt && ceil < o->max; i++)
		ceil = ceil > o->max / 2 ? o->max : ceil * 2;
	if (ceil > o->max)
		ceil = o->max;
	return (long)(rnd(up) % ((uint64_t)ceil + 1));
}

/* Sets every option that stays the same across the attempts of a call. */
static int
setup(struct pv_upstream *up, const struct pv_upstream_req *req,
    const struct opts *o, CURLU *u, int loopback, struct curl_slist *hl,
    struct xfer *x, struct pv_err *err)
{
	const char *body = req->body != NULL ? req->body : "";
	int bad;

	up->api.easy_reset(up->curl);
	up->errbuf[0] = '\0';
	bad = opt_ptr(up, CURLOPT_CURLU, u) ||
	    opt_str(up, CURLOPT_PROTOCOLS_STR,
	        loopback ? "http,https" : "https") ||
	    opt_long(up, CURLOPT_FOLLOWLOCATION, 0) ||
	    opt_long(up, CURLOPT_NOSIGNAL, 1) ||
	    opt_ptr(up, CURLOPT_ERRORBUFFER, up->errbuf) ||
	    opt_long(up, CURLOPT_CONNECTTIMEOUT_MS, o->connect) ||
	    opt_list(up, CURLOPT_HTTPHEADER, hl) ||
	    opt_str(up, CURLOPT_USERAGENT, USER_AGENT) ||
	    opt_fn(up, CURLOPT_WRITEFUNCTION, on_body) ||
	    opt_ptr(up, CURLOPT_WRITEDATA, x) ||
	    opt_fn(up, CURLOPT_HEADERFUNCTION, on_header) ||
	    opt_ptr(up, CURLOPT_HEADERDATA, x);
	/* Lets libcurl refuse early when Content-Length is over the cap. */
	if (!bad && req->method != PV_UPSTREAM_HEAD)
		bad = opt_off(up, CURLOPT_MAXFILESIZE_LARGE,
		    (curl_off_t)o->maxresp);
	/* A fake provider on loopback must not be reached via a proxy. */
	if (!bad && loopback)
		bad = opt_str(up, CURLOPT_PROXY, "");
	/*
	 * libcurl silently resends a request whose reused connection died
	 * before any reply; only a fresh connection keeps "at most once".
	 */
	if (!bad && !req->retry_safe)
		bad = opt_long(up, CURLOPT_FRESH_CONNECT, 1);
	if (!bad) {
		switch (req->method) {
		case PV_UPSTREAM_GET:
			bad = opt_long(up, CURLOPT_HTTPGET, 1);
			break;
		case PV_UPSTREAM_HEAD:
			bad = opt_long(up, CURLOPT_NOBODY, 1);
			break;
		default:
			if (req->method != PV_UPSTREAM_POST)
				bad = opt_str(up, CURLOPT_CUSTOMREQUEST,
				    methods[req->method]);
			if (!bad &&
			    (req->method != PV_UPSTREAM_DELETE ||
			        req->body != NULL))
				bad = opt_off(up, CURLOPT_POSTFIELDSIZE_LARGE,
				          (curl_off_t)req->bodylen) ||
				    opt_str(up, CURLOPT_POSTFIELDS, body);
			break;
		}
	}
	if (bad) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "libcurl refused an option (missing https support?)");
		return -1;
	}
	return 0;
}

/*
 * Describes a finished attempt in resp, or its transport failure in
 * last.  Returns whether the attempt is worth retrying by default.
 */
static int
outcome(struct pv_upstream *up, CURLcode cc, struct xfer *x,
    struct pv_upstream_resp *resp, struct pv_err *last)
{
	resp->status = 0;
	resp->body = "";
	resp->bodylen = 0;
	resp->hdrs = "";
	resp->hdrslen = 0;
	resp->retry_after_ms = -1;
	if (cc != CURLE_OK) {
		PV_ERR(last,
		    cc == CURLE_OPERATION_TIMEDOUT ? PV_E_TIMEOUT :
		                                     PV_E_UPSTREAM,
		    NULL, "upstream: %s",
		    up->errbuf[0] != '\0' ? up->errbuf :
		                            up->api.easy_strerror(cc));
		return retryable_curl(cc);
	}
	if (up->api.easy_getinfo(up->curl, CURLINFO_RESPONSE_CODE,
	        &resp->status) != CURLE_OK)
		resp->status = 0;
	if (x->body.data != NULL) {
		resp->body = x->body.data;
		resp->bodylen = x->body.len;
	}
	if (x->hdrs.data != NULL) {
		resp->hdrs = x->hdrs.data;
		resp->hdrslen = x->hdrs.len;
	}
	resp->retry_after_ms =
	    parse_retry_after(up, pv_upstream_resp_header(resp, "Retry-After"));
	return retryable_status(resp->status);
}

/*
 * Sends req, retrying as the file comment describes when
 * req->retry_safe is set, and describes the last attempt in resp.
 * Borrows req; resp's strings are arena memory.  A call never takes
 * much longer than req's budget: attempts are cut short to fit it, and
 * a retry is made only if, after its wait (backoff or Retry-After),
 * the budget still leaves a full connect timeout (or attempt timeout,
 * if shorter).  A Retry-After too long for the budget thus ends the
 * call at once with that response, rather than retrying early.
 *
 * Returns 0 whenever an HTTP response arrived, whatever its status: the
 * caller maps 4xx and 5xx.  Returns -1 with PV_E_TIMEOUT when the last
 * attempt timed out; PV_E_UPSTREAM when it failed otherwise, when the
 * URL is refused (only https, or http to loopback) or when the
 * response passes req->max_resp; PV_E_NOMEM or PV_E_TOOBIG when the
 * arena fails; PV_E_INTERNAL for a malformed request.  resp->attempts
 * is set either way.
 */
int
pv_upstream_do(struct pv_upstream *up, struct pv_arena *a,
    const struct pv_upstream_req *req, struct pv_upstream_resp *resp,
    struct pv_err *err)
{
	enum pv_upstream_verdict verdict;
	struct curl_slist *hl = NULL;
	struct pv_err last;
	struct xfer x;
	struct opts o;
	CURLU *u = NULL;
	CURLcode cc;
	int64_t start, left;
	long delay, minleft;
	int loopback = 0, retry, rc = -1;

	memset(resp, 0, sizeof(*resp));
	resp->body = "";
	resp->hdrs = "";
	resp->retry_after_ms = -1;
	memset(&x, 0, sizeof(x));
	memset(&last, 0, sizeof(last));
	if (start_curl(up, err) == -1 || resolve(req, &o, err) == -1 ||
	    parse_url(up, req->url, &u, &loopback, err) == -1 ||
	    build_headers(up, a, req, &hl, err) == -1)
		goto out;
	pv_buf_init(&x.body, a, o.maxresp + 1);
	pv_buf_init(&x.hdrs, a, HDRS_MAX + 1);
	x.maxresp = o.maxresp;
	minleft = o.connect < o.timeout ? o.connect : o.timeout;
	if (setup(up, req, &o, u, loopback, hl, &x, err) == -1)
		goto out;
	start = now_ms();
	for (;;) {
		left = o.budget - (now_ms() - start);
		if (left > o.timeout)
			left = o.timeout;
		if (left < 1)
			left = 1;
		if (opt_long(up, CURLOPT_TIMEOUT_MS, (long)left)) {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "libcurl refused a timeout");
			goto out;
		}
		pv_buf_truncate(&x.body, 0);
		pv_buf_truncate(&x.hdrs, 0);
		pv_err_clear(&last);
		up->errbuf[0] = '\0';
		resp->attempts++;
		cc = up->api.easy_perform(up->curl);
		if (x.err.code != PV_OK) {
			/* Our own refusal (cap, memory): never retried. */
			if (err->code == PV_OK)
				*err = x.err;
			goto out;
		}
		if (cc == CURLE_FILESIZE_EXCEEDED) {
			PV_ERR(err, PV_E_UPSTREAM, NULL,
			    "upstream response too large (over %zu bytes)",
			    o.maxresp);
			goto out;
		}
		retry = outcome(up, cc, &x, resp, &last);
		if (resp->attempts >= o.attempts)
			break;
		if (req->retry_fn != NULL) {
			verdict =
			    req->retry_fn(req->retry_arg, resp, last.code);
			if (verdict == PV_UPSTREAM_RETRY)
				retry = 1;
			else if (verdict == PV_UPSTREAM_NO_RETRY)
				retry = 0;
		}
		if (!retry)
			break;
		delay = resp->retry_after_ms >= 0 ?
		    resp->retry_after_ms :
		    backoff(up, &o, resp->attempts);
		/* A retry left less than a connect timeout is not worth it. */
		if (now_ms() - start + delay + minleft > o.budget)
			break;
		up->sleep(up->sleeparg, delay);
	}
	if (last.code != PV_OK) {
		PV_ERR(err, last.code, NULL, "%s (attempts: %d)", last.msg,
		    resp->attempts);
		goto out;
	}
	rc = 0;
out:
	/* Drop the pointers into this call's memory; connections stay. */
	if (up->curl != NULL) {
		up->api.easy_reset(up->curl);
		up->api.slist_free_all(hl);
		up->api.url_cleanup(u);
	}
	return rc;
}

/*
 * Looks up a header of the final response by name, ignoring case.
 * Returns the first value (arena memory, trimmed) or NULL.
 */
const char *
pv_upstream_resp_header(const struct pv_upstream_resp *resp, const char *name)
{
	const char *p = resp->hdrs, *end = resp->hdrs + resp->hdrslen, *v;

	while (p < end) {
		v = p + strlen(p) + 1;
		if (v >= end)
			break;
		if (strcasecmp(p, name) == 0)
			return v;
		p = v + strlen(v) + 1;
	}
	return NULL;
}

/*
 * A retry_fn for Stripe: its Stripe-Should-Retry header overrides the
 * status-based decision in both directions (as stripe-node does).
 */
enum pv_upstream_verdict
pv_upstream_stripe_retry(void *arg, const struct pv_upstream_resp *resp,
    enum pv_errcode transport)
{
	const char *v;

	(void)arg;
	if (transport != PV_OK ||
	    (v = pv_upstream_resp_header(resp, "Stripe-Should-Retry")) == NULL)
		return PV_UPSTREAM_DEFAULT;
	if (strcmp(v, "true") == 0)
		return PV_UPSTREAM_RETRY;
	if (strcmp(v, "false") == 0)
		return PV_UPSTREAM_NO_RETRY;
	return PV_UPSTREAM_DEFAULT;
}

/* Percent-encodes a form key but keeps Stripe's brackets readable. */
static void
form_key(struct pv_buf *b, const char *key)
{
	size_t run;

	while (*key != '\0') {
		run = strcspn(key, "[]");
		pv_buf_urlenc(b, key, run);
		key += run;
		if (*key != '\0')
			pv_buf_putc(b, *key++);
	}
}

/*
 * Appends "key=value" to a form body, with "&" before it unless the
 * buffer is empty.  Both parts are percent-encoded (space as %20);
 * brackets in the key stay raw, e.g. "metadata[order_id]", which
 * Stripe reads the same as %5B and %5D.  Errors are sticky in b.
 */
void
pv_upstream_form_addn(struct pv_buf *b, const char *key, const char *value,
    size_t valuelen)
{
	if (b->len != 0)
		pv_buf_putc(b, '&');
	form_key(b, key);
	pv_buf_putc(b, '=');
	pv_buf_urlenc(b, value, valuelen);
}

/* pv_upstream_form_addn() for a C string value. */
void
pv_upstream_form_add(struct pv_buf *b, const char *key, const char *value)
{
	pv_upstream_form_addn(b, key, value, strlen(value));
}

/* pv_upstream_form_addn() for an integer, e.g. an amount in minor units. */
void
pv_upstream_form_add_int64(struct pv_buf *b, const char *key, int64_t value)
{
	char num[24];
	int n;

	n = snprintf(num, sizeof(num), "%lld", (long long)value);
	if (n < 0 || (size_t)n >= sizeof(num)) {
		PV_ERR(&b->err, PV_E_INTERNAL, NULL, "cannot format integer");
		return;
	}
	pv_upstream_form_addn(b, key, num, (size_t)n);
}

/*
 * Joins a provider's base URL (which may end in slashes) and a path
 * (which may start with them) with exactly one slash: base
 * "http://127.0.0.1:12111/" and path "/v1/refunds" give
 * "http://127.0.0.1:12111/v1/refunds".  Returns arena memory, or NULL
 * with PV_E_NOMEM or PV_E_TOOBIG.
 */
char *
pv_upstream_url(struct pv_arena *a, const char *base, const char *path,
    struct pv_err *err)
{
	size_t blen = strlen(base);

	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	while (*path == '/')
		path++;
	if (blen > 65536) {
		PV_ERR(err, PV_E_TOOBIG, NULL, "base URL too long");
		return NULL;
	}
	return pv_arena_printf(a, err, "%.*s/%s", (int)blen, base, path);
}

/*
 * Tells whether a configured base URL points at loopback, for settings
 * that are only allowed there outside production (a fake provider).
 * Parsed by libcurl, so the verdict matches what pv_upstream_do() will
 * connect to.  Returns 1 (loopback, http or https), 0 (https to any
 * other host) or -1 with PV_E_INVALID naming field (malformed, not http
 * or https, or plain http to a host that is not loopback).
 */
int
pv_upstream_url_loopback(struct pv_upstream *up, const char *url,
    const char *field, struct pv_err *err)
{
	struct url_parts p;
	int rc = -1, r;

	if ((r = url_split(up, url, &p, err)) == 1)
		PV_ERR(err, PV_E_INVALID, field, "%s is not a valid URL",
		    field);
	if (r != 0)
		goto out;
	if (is_loopback(p.host) &&
	    (strcasecmp(p.scheme, "http") == 0 ||
	        strcasecmp(p.scheme, "https") == 0))
		rc = 1;
	else if (strcasecmp(p.scheme, "https") == 0)
		rc = 0;
	else
		PV_ERR(err, PV_E_INVALID, field,
		    "%s must be https (plain http only to loopback)", field);
out:
	url_release(up, &p);
	return rc;
}

/* Waits ms milliseconds with the client's sleep (a test may replace it). */
void
pv_upstream_sleep(struct pv_upstream *up, long ms)
{
	if (ms > 0)
		up->sleep(up->sleeparg, ms);
}

/* What the SMTP upload callback reads from. */
struct smtp_src {
	const char *p; /* the rest of the message */
	size_t left;   /* bytes in p */
};

static size_t
on_smtp_read(char *buf, size_t size, size_t n, void *arg)
{
	struct smtp_src *src = arg;
	size_t len = size * n;

	if (len > src->left)
		len = src->left;
	memcpy(buf, src->p, len);
	src->p += len;
	src->left -= len;
	return len;
}

/* A bare address for an SMTP envelope: no brackets, spaces or controls. */
static int
valid_envelope(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 254 ||
	    strchr(s, '@') == NULL)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f ||
		    strchr("<>", *s) != NULL)
			return 0;
	return 1;
}

/*
 * Judges an SMTP relay URL: 0 with *loopback set if it is smtps://, or
 * smtp:// (STARTTLS is then required unless loopback); -1 with
 * PV_E_UPSTREAM otherwise.
 */
static int
smtp_url(struct pv_upstream *up, const char *url, int *loopback,
    struct pv_err *err)
{
	struct url_parts p;
	int rc = -1, r;

	if ((r = url_split(up, url, &p, err)) == 1)
		PV_ERR(err, PV_E_UPSTREAM, "PIVOTA_SMTP_URL",
		    "malformed SMTP relay URL");
	if (r != 0)
		goto out;
	*loopback = is_loopback(p.host);
	if (strcasecmp(p.scheme, "smtps") == 0 ||
	    strcasecmp(p.scheme, "smtp") == 0)
		rc = 0;
	else
		PV_ERR(err, PV_E_UPSTREAM, "PIVOTA_SMTP_URL",
		    "the SMTP relay URL must be smtps:// or smtp://");
out:
	url_release(up, &p);
	return rc;
}

/* Sends one message over SMTP; see pv_upstream.h. */
int
pv_upstream_smtp(struct pv_upstream *up, const struct pv_upstream_smtp *m,
    long *reply, struct pv_err *err)
{
	struct curl_slist *rcpt = NULL;
	struct smtp_src src;
	char from[300];
	CURLcode cc;
	int loopback = 0, bad, rc = -1;

	*reply = 0;
	if (!valid_envelope(m->from) || !valid_envelope(m->rcpt) ||
	    m->msg == NULL) {
		PV_ERR(err, PV_E_UPSTREAM, NULL, "malformed mail envelope");
		return -1;
	}
	if (snprintf(from, sizeof(from), "<%s>", m->from) >=
	    (int)sizeof(from)) {
		PV_ERR(err, PV_E_UPSTREAM, NULL, "sender address too long");
		return -1;
	}
	if (smtp_url(up, m->url, &loopback, err) == -1 ||
	    start_curl(up, err) == -1)
		return -1;
	if ((rcpt = up->api.slist_append(NULL, m->rcpt)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	up->api.easy_reset(up->curl);
	up->errbuf[0] = '\0';
	src.p = m->msg;
	src.left = m->msglen;
	bad = opt_str(up, CURLOPT_URL, m->url) ||
	    opt_str(up, CURLOPT_PROTOCOLS_STR, "smtp,smtps") ||
	    opt_long(up, CURLOPT_USE_SSL,
	        loopback ? (long)CURLUSESSL_TRY : (long)CURLUSESSL_ALL) ||
	    opt_long(up, CURLOPT_NOSIGNAL, 1) ||
	    opt_ptr(up, CURLOPT_ERRORBUFFER, up->errbuf) ||
	    opt_long(up, CURLOPT_CONNECTTIMEOUT_MS,
	        PV_UPSTREAM_CONNECT_TIMEOUT_MS) ||
	    opt_long(up, CURLOPT_TIMEOUT_MS,
	        m->timeout_ms > 0 ? m->timeout_ms :
	                            PV_UPSTREAM_SMTP_TIMEOUT_MS) ||
	    opt_str(up, CURLOPT_MAIL_FROM, from) ||
	    opt_list(up, CURLOPT_MAIL_RCPT, rcpt) ||
	    opt_long(up, CURLOPT_UPLOAD, 1) ||
	    opt_off(up, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->msglen) ||
	    opt_fn(up, CURLOPT_READFUNCTION, on_smtp_read) ||
	    opt_ptr(up, CURLOPT_READDATA, &src);
	/* A relay on loopback must not be reached via a proxy. */
	if (!bad && loopback)
		bad = opt_str(up, CURLOPT_PROXY, "");
	if (!bad && m->user != NULL && *m->user != '\0')
		bad = opt_str(up, CURLOPT_USERNAME, m->user) ||
		    opt_str(up, CURLOPT_PASSWORD,
		        m->password != NULL ? m->password : "");
	if (bad) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "libcurl refused an option (missing smtp support?)");
		goto out;
	}
	cc = up->api.easy_perform(up->curl);
	if (up->api.easy_getinfo(up->curl, CURLINFO_RESPONSE_CODE, reply) !=
	    CURLE_OK)
		*reply = 0;
	if (cc != CURLE_OK) {
		PV_ERR(err,
		    cc == CURLE_OPERATION_TIMEDOUT ? PV_E_TIMEOUT :
		                                     PV_E_UPSTREAM,
		    NULL, "smtp: %s (reply %ld)",
		    up->errbuf[0] != '\0' ? up->errbuf :
		                            up->api.easy_strerror(cc),
		    *reply);
		goto out;
	}
	rc = 0;
out:
	up->api.easy_reset(up->curl);
	up->api.slist_free_all(rcpt);
	return rc;
}
