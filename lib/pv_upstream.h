#ifndef PV_UPSTREAM_H
#define PV_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "pv_arena.h"
#include "pv_buf.h"
#include "pv_err.h"

/*
 * Outbound HTTP to payment and commerce providers (Stripe, Shopify,
 * Adyen).  This is the only module that uses libcurl.
 *
 * A process creates one struct pv_upstream at start-up and frees it at
 * exit.  It owns one CURL easy handle, so keep-alive connections to a
 * provider survive from one request to the next.  It is not
 * thread-safe: FastCGI programs serve one request at a time.  libcurl
 * is not linked but loaded (dlopen) by the first function here that
 * needs it, so a process that never calls out never maps it.
 *
 * A request is described by struct pv_upstream_req, which the caller
 * allocates; every numeric field left at 0 takes the default below.
 * pv_upstream_do() borrows the request and fills struct
 * pv_upstream_resp with arena memory.  Retrying is only done for
 * requests the caller marks retry_safe (GETs, and POSTs that carry an
 * Idempotency-Key); others are attempted exactly once.
 *
 * Only https is allowed, plus plain http to loopback hosts (127.0.0.0/8,
 * ::1, localhost), which is where tests put their fake providers.
 * Redirects are never followed.  Nothing here logs: request headers
 * carry API keys and bodies carry customer data.
 */
struct pv_upstream; /* opaque */

#define PV_UPSTREAM_TIMEOUT_MS         10000L /* whole attempt */
#define PV_UPSTREAM_CONNECT_TIMEOUT_MS 3000L
#define PV_UPSTREAM_MAX_RESP           (1024u * 1024u) /* body bytes */
#define PV_UPSTREAM_MAX_ATTEMPTS       3
#define PV_UPSTREAM_BACKOFF_BASE_MS    500L
#define PV_UPSTREAM_BACKOFF_MAX_MS     5000L
#define PV_UPSTREAM_BUDGET_MS          15000L /* whole call, retries included */

enum pv_upstream_method {
	PV_UPSTREAM_GET = 0,
	PV_UPSTREAM_POST,
	PV_UPSTREAM_PUT,
	PV_UPSTREAM_PATCH,
	PV_UPSTREAM_DELETE,
	PV_UPSTREAM_HEAD,
	PV_UPSTREAM__MAX
};

/* What a retry hook may say about an attempt. */
enum pv_upstream_verdict {
	PV_UPSTREAM_DEFAULT = 0, /* keep the module's decision */
	PV_UPSTREAM_RETRY,       /* retry, even a status that is not retried */
	PV_UPSTREAM_NO_RETRY     /* do not retry */
};

/* One request header; neither part may contain CR or LF. */
struct pv_upstream_hdr {
	const char *name;  /* e.g. "Idempotency-Key" */
	const char *value; /* never logged */
};

/*
 * The outcome of the last attempt.  All pointers are arena memory.
 */
struct pv_upstream_resp {
	long status;         /* HTTP status, or 0 if no response arrived */
	const char *body;    /* NUL-terminated; "" when there is none */
	size_t bodylen;      /* bytes in body, excluding the NUL */
	const char *hdrs;    /* "name\0value\0" pairs; see _resp_header() */
	size_t hdrslen;      /* bytes in hdrs */
	int attempts;        /* attempts made, 0 if none was started */
	long retry_after_ms; /* parsed Retry-After, or -1 if absent */
};

/*
 * Called after each attempt of a retry-safe request that has attempts
 * left.  resp describes that attempt.  transport is PV_OK when an HTTP
 * response arrived, else PV_E_TIMEOUT or PV_E_UPSTREAM (and status is
 * 0).  A provider adapter uses this to honour headers such as
 * Stripe-Should-Retry.  The budget still applies to a forced retry.
 */
typedef enum pv_upstream_verdict (*pv_upstream_retry_fn)(void *arg,
    const struct pv_upstream_resp *resp, enum pv_errcode transport);

struct pv_upstream_req {
	enum pv_upstream_method method;     /* PV_UPSTREAM_GET if 0 */
	const char *url;                    /* absolute, https or loopback */
	const struct pv_upstream_hdr *hdrs; /* borrowed, or NULL */
	size_t nhdrs;                       /* entries in hdrs */
	const char *body;                   /* borrowed, or NULL */
	size_t bodylen;                     /* bytes in body */
	int retry_safe;                     /* 1: may be sent again */
	long timeout_ms;                    /* per attempt */
	long connect_timeout_ms;            /* per attempt */
	size_t max_resp;                    /* response body cap in bytes */
	int max_attempts;                   /* first try included */
	long backoff_base_ms;               /* first backoff ceiling */
	long backoff_max_ms;                /* largest backoff ceiling */
	long budget_ms;                     /* wall time for the whole call */
	pv_upstream_retry_fn retry_fn;      /* optional veto/force hook */
	void *retry_arg;                    /* passed to retry_fn */
};

/* Start-up and exit; see pv_upstream.c for the contracts. */
struct pv_upstream *pv_upstream_new(void);
void pv_upstream_free(struct pv_upstream *up);

int pv_upstream_do(struct pv_upstream *up, struct pv_arena *a,
    const struct pv_upstream_req *req, struct pv_upstream_resp *resp,
    struct pv_err *err);

/* The first response header called name (any case), or NULL. */
const char *pv_upstream_resp_header(const struct pv_upstream_resp *resp,
    const char *name);

/* A retry_fn that obeys Stripe-Should-Retry: true|false. */
enum pv_upstream_verdict pv_upstream_stripe_retry(void *arg,
    const struct pv_upstream_resp *resp, enum pv_errcode transport);

/* Form bodies (application/x-www-form-urlencoded, Stripe brackets). */
void pv_upstream_form_add(struct pv_buf *b, const char *key, const char *value);
void pv_upstream_form_addn(struct pv_buf *b, const char *key, const char *value,
    size_t valuelen);
void pv_upstream_form_add_int64(struct pv_buf *b, const char *key,
    int64_t value);

/* Joins a provider base URL and a path.  Returns arena memory or NULL. */
char *pv_upstream_url(struct pv_arena *a, const char *base, const char *path,
    struct pv_err *err);

/*
 * Judges a base URL as pv_upstream_do() would: 1 if it is http or https
 * to a loopback host, 0 if it is https elsewhere, -1 with PV_E_INVALID
 * naming field if it is malformed or plain http to another host (or
 * PV_E_INTERNAL if libcurl, whose parser judges it, cannot be loaded).
 */
int pv_upstream_url_loopback(struct pv_upstream *up, const char *url,
    const char *field, struct pv_err *err);

/*
 * Waits ms milliseconds the way backoff waits do, so an adapter's own
 * waits (Shopify's throttle) are observed by the same test hook.
 */
void pv_upstream_sleep(struct pv_upstream *up, long ms);

/*
 * Outbound mail: one message handed to an SMTP relay (pv_mail.c builds
 * it).  The same module, so libcurl stays in one file.
 */
#define PV_UPSTREAM_SMTP_TIMEOUT_MS 60000L /* the whole conversation */

struct pv_upstream_smtp {
	const char *url;      /* smtps://host[:port] or smtp://host[:port] */
	const char *user;     /* AUTH user, or NULL or "" for none */
	const char *password; /* AUTH password; never logged */
	const char *from;     /* envelope sender: a bare address */
	const char *rcpt;     /* the one envelope recipient: a bare address */
	const char *msg;      /* the whole RFC 5322 message, CRLF lines */
	size_t msglen;        /* bytes in msg */
	long timeout_ms;      /* 0: PV_UPSTREAM_SMTP_TIMEOUT_MS */
};

/*
 * Sends m->msg to m->rcpt through the relay at m->url, once (the job
 * queue retries).  smtps:// is TLS from the start; smtp:// must switch
 * to TLS with STARTTLS, except to a loopback host (a local relay or
 * the test sink), where TLS is used only if offered.  *reply gets the
 * relay's last reply code (250 when accepted; 0 if it never answered).
 * Returns 0 once the relay accepted the message, or -1 with
 * PV_E_UPSTREAM (refused, transport failure, bad URL or address),
 * PV_E_TIMEOUT or PV_E_NOMEM.
 */
int pv_upstream_smtp(struct pv_upstream *up, const struct pv_upstream_smtp *m,
    long *reply, struct pv_err *err);

#ifdef PV_TESTING
/* Replaces nanosleep() for backoff waits; NULL restores it. */
void pv_upstream_set_sleep(struct pv_upstream *up,
    void (*fn)(void *arg, long ms), void *arg);
#endif

#endif /* PV_UPSTREAM_H */
