#ifndef PV_ERR_H
#define PV_ERR_H

#include <stdarg.h>

/*
 * Errors.  A fallible function returns 0 or -1 (or a pointer or NULL)
 * and fills the caller's struct pv_err.  The first function to see a
 * failure records it; callers pass it up untouched (pv_err_set() does
 * nothing once a code is recorded).  The code is for programs, the
 * message for people.  One table in pv_err.c maps each code to its HTTP
 * status, its API error type and its default wire code.
 */
enum pv_errcode {
	PV_OK = 0,
	PV_E_NOMEM,         /* malloc failed: 503 */
	PV_E_TOOBIG,        /* a size cap was hit (arena, body): 413 */
	PV_E_URITOOLONG,    /* request target over the cap: 414 */
	PV_E_HDRTOOBIG,     /* request headers over the cap: 431 */
	PV_E_INVALID,       /* client input failed validation: 400 */
	PV_E_AUTH,          /* bad credentials or signature: 401 */
	PV_E_PAYMENT,       /* the card or PSP declined: 402 */
	PV_E_FORBIDDEN,     /* authenticated but not allowed: 403 */
	PV_E_NOTFOUND,      /* no such resource (or not the caller's): 404 */
	PV_E_METHOD,        /* method not allowed on this path: 405 */
	PV_E_CONFLICT,      /* state forbids it, e.g. already refunded: 409 */
	PV_E_UNPROCESSABLE, /* well-formed but unacceptable: 422 */
	PV_E_RATELIMIT,     /* per-minute limit or daily quota used up: 429 */
	PV_E_DB,            /* PostgreSQL failure: 500 */
	PV_E_INTERNAL,      /* bug or system error: 500 */
	PV_E_UPSTREAM,      /* outbound HTTP failure: 502 */
	PV_E_UNAVAILABLE,   /* a dependency (the database) is down: 503 */
	PV_E_TIMEOUT,       /* outbound HTTP timed out: 504 */
	PV_E__MAX
};

struct pv_err {
	enum pv_errcode code; /* PV_OK until something fails */
	const char *file;     /* where it was set */
	int line;             /* where it was set */
	int retry_after;      /* seconds for Retry-After, or 0 */
	char reason[48];      /* wire error.code override, or "" */
	char field[64];       /* offending input field, or "" */
	char msg[256];        /* shown to clients only for 4xx */
};

/* Record an error (unless one is already recorded) with its location. */
#define PV_ERR(err, code, field, ...) \
	pv_err_set((err), (code), __FILE__, __LINE__, (field), __VA_ARGS__)

void pv_err_set(struct pv_err *err, enum pv_errcode code, const char *file,
    int line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
void pv_err_clear(struct pv_err *err);

/* Sets err->reason (the wire "code", e.g. "price_changed"). */
void pv_err_reason(struct pv_err *err, const char *reason);

int pv_err_status(enum pv_errcode code);
const char *pv_err_type(enum pv_errcode code);
const char *pv_err_name(enum pv_errcode code);
const char *pv_err_wire_code(const struct pv_err *err);

#endif /* PV_ERR_H */
