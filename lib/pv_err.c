/*
 * The error table: every pv_errcode with its HTTP status, the API.md
 * error "type", the default wire "code" and the name used in logs.
 * Rendering the JSON body lives in pv_http.c, which owns responses.
 */
#include <stdio.h>
#include <string.h>

#include "pv_err.h"

struct errdef {
	int status;       /* HTTP status */
	const char *type; /* API.md error.type */
	const char *code; /* default error.code */
	const char *name; /* for logs */
};

static const struct errdef defs[PV_E__MAX] = {
	{ 200, "", "", "PV_OK" }, /* PV_OK */
	{ 503, "api_error", "service_unavailable", "PV_E_NOMEM" },
	/* PV_E_NOMEM */
	{ 413, "invalid_request_error", "body_too_large", "PV_E_TOOBIG" },
	/* PV_E_TOOBIG */
	{ 414, "invalid_request_error", "uri_too_long", "PV_E_URITOOLONG" },
	/* PV_E_URITOOLONG */
	{ 431, "invalid_request_error", "headers_too_large",
	    "PV_E_HDRTOOBIG" }, /* PV_E_HDRTOOBIG */
	{ 400, "invalid_request_error", "invalid_request", "PV_E_INVALID" },
	/* PV_E_INVALID */
	{ 401, "authentication_error", "unauthorized", "PV_E_AUTH" },
	/* PV_E_AUTH */
	{ 402, "payment_error", "payment_declined", "PV_E_PAYMENT" },
	/* PV_E_PAYMENT */
	{ 403, "permission_error", "forbidden", "PV_E_FORBIDDEN" },
	/* PV_E_FORBIDDEN */
	{ 404, "not_found", "not_found", "PV_E_NOTFOUND" },
	/* PV_E_NOTFOUND */
	{ 405, "invalid_request_error", "method_not_allowed", "PV_E_METHOD" },
	/* PV_E_METHOD */
	{ 409, "conflict", "conflict", "PV_E_CONFLICT" },
	/* PV_E_CONFLICT */
	{ 422, "invalid_request_error", "unprocessable",
	    "PV_E_UNPROCESSABLE" }, /* PV_E_UNPROCESSABLE */
	{ 429, "rate_limit_error", "rate_limited", "PV_E_RATELIMIT" },
	/* PV_E_RATELIMIT */
	{ 500, "api_error", "internal_error", "PV_E_DB" },
	/* PV_E_DB */
	{ 500, "api_error", "internal_error", "PV_E_INTERNAL" },
	/* PV_E_INTERNAL */
	{ 502, "upstream_error", "upstream_error", "PV_E_UPSTREAM" },
	/* PV_E_UPSTREAM */
	{ 503, "api_error", "service_unavailable", "PV_E_UNAVAILABLE" },
	/* PV_E_UNAVAILABLE */
	{ 504, "upstream_error", "upstream_timeout", "PV_E_TIMEOUT" },
	/* PV_E_TIMEOUT */
};

/*
 * Records code, location, field and message, unless an error is already
 * recorded: the first failure is the one that explains the others.  A
 * NULL field means none.  A NULL err is allowed and ignored.
 */
void
pv_err_set(struct pv_err *err, enum pv_errcode code, const char *file, int line,
    const char *field, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err->code != PV_OK)
		return;
	err->code = code;
	err->file = file;
	err->line = line;
	err->retry_after = 0;
	err->reason[0] = '\0';
	if (snprintf(err->field, sizeof(err->field), "%s",
	        field != NULL ? field : "") < 0)
		err->field[0] = '\0';
	va_start(ap, fmt);
	if (vsnprintf(err->msg, sizeof(err->msg), fmt, ap) < 0)
		err->msg[0] = '\0';
	va_end(ap);
}

/* Forgets any recorded error, e.g. before retrying an operation. */
void
pv_err_clear(struct pv_err *err)
{
	memset(err, 0, sizeof(*err));
}

/* Sets the specific wire code (API.md "error.code") of a recorded error. */
void
pv_err_reason(struct pv_err *err, const char *reason)
{
	if (snprintf(err->reason, sizeof(err->reason), "%s", reason) < 0)
		err->reason[0] = '\0';
}

/* HTTP status for a code; out-of-range codes are treated as internal. */
int
pv_err_status(enum pv_errcode code)
{
	if ((int)code < 0 || code >= PV_E__MAX)
		code = PV_E_INTERNAL;
	return defs[code].status;
}

/* API.md error.type for a code. */
const char *
pv_err_type(enum pv_errcode code)
{
	if ((int)code < 0 || code >= PV_E__MAX)
		code = PV_E_INTERNAL;
	return defs[code].type;
}

/* The enum name, for log lines. */
const char *
pv_err_name(enum pv_errcode code)
{
	if ((int)code < 0 || code >= PV_E__MAX)
		code = PV_E_INTERNAL;
	return defs[code].name;
}

/* The wire error.code: the recorded reason, else the code's default. */
const char *
pv_err_wire_code(const struct pv_err *err)
{
	if (err->reason[0] != '\0')
		return err->reason;
	return defs[(int)err->code < PV_E__MAX ? err->code : PV_E_INTERNAL]
	    .code;
}
