/*
 * The agent prologue and usage recording.  The SQL is the design: read
 * it first (the prologue is migration 0022's pv_agent_prologue(), the
 * usage batch is USAGE_SQL below).  Both set synchronous_commit off for
 * their own implicit transaction (set_config(..., true) lasts until the
 * commit that ends the statement), so counters and usage rows never
 * wait for a disk flush while orders and payments, in their own
 * transactions, stay fully durable.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "pv_agent.h"
#include "pv_buf.h"
#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_log.h"

/* The prologue statement (pv_agent.h). */
#define PROLOGUE_SQL \
	PV_SQL(PV_AGENT_SQL_PROLOGUE_WITH \
	    " SELECT" PV_AGENT_SQL_PROLOGUE_COLS PV_AGENT_SQL_PROLOGUE_FROM)

/*
 * A batch of usage events: one array per column ($1..$11, in the order
 * of usage_cols), unnested into rows.  The event's time is the
 * request's start, carried as microseconds since 1970.
 */
#define USAGE_SQL \
	PV_SQL( \
	    "WITH s AS (SELECT set_config('synchronous_commit', 'off'," \
	    " true))" \
	    " INSERT INTO usage_events (agent_id, at, endpoint, method," \
	    "  status, latency_us, merchant_id, order_id, gmv_minor," \
	    "  currency, request_id)" \
	    " SELECT u.agent_id," \
	    "  timestamptz 'epoch' + u.at_us * interval '1 microsecond'," \
	    "  u.endpoint, u.method, u.status, u.latency_us, u.merchant_id," \
	    "  u.order_id, u.gmv_minor, u.currency, u.request_id" \
	    " FROM s, unnest($1::bigint[], $2::bigint[], $3::text[]," \
	    "  $4::text[], $5::int[], $6::int[], $7::bigint[], $8::text[]," \
	    "  $9::bigint[], $10::text[], $11::text[])" \
	    "  AS u (agent_id, at_us, endpoint, method, status, latency_us," \
	    "   merchant_id, order_id, gmv_minor, currency, request_id)")

/* The fields of struct pv_usage_row, in USAGE_SQL's column order. */
static const size_t usage_cols[] = {
	offsetof(struct pv_usage_row, agent_id),
	offsetof(struct pv_usage_row, at_us),
	offsetof(struct pv_usage_row, endpoint),
	offsetof(struct pv_usage_row, method),
	offsetof(struct pv_usage_row, status),
	offsetof(struct pv_usage_row, latency_us),
	offsetof(struct pv_usage_row, merchant_id),
	offsetof(struct pv_usage_row, order_id),
	offsetof(struct pv_usage_row, gmv_minor),
	offsetof(struct pv_usage_row, currency),
	offsetof(struct pv_usage_row, request_id),
};
#define USAGE_NCOLS (sizeof(usage_cols) / sizeof(usage_cols[0]))

/* The key from X-API-Key or "Authorization: Bearer", or NULL. */
static const char *
find_key(const struct pv_req *req)
{
	const char *k;

	if ((k = pv_req_header(req, "x-api-key")) != NULL && *k != '\0')
		return k;
	if ((k = pv_req_header(req, "authorization")) != NULL &&
	    strncasecmp(k, "Bearer ", 7) == 0) {
		k += 7;
		while (*k == ' ')
			k++;
		return k;
	}
	return NULL;
}

static int
well_formed(const char *key)
{
	size_t plen = sizeof(PV_AGENT_KEY_PREFIX) - 1;

	return strlen(key) == PV_AGENT_KEY_LEN &&
	    strncmp(key, PV_AGENT_KEY_PREFIX, plen) == 0 &&
	    strspn(key + plen, "0123456789abcdef") == PV_AGENT_KEY_LEN - plen;
}

/* The bytea text form of the key's SHA-256. */
int
pv_agent_key_hash(struct pv_ctx *ctx, const char *key, const char **out,
    struct pv_err *err)
{
	unsigned char h[PV_CRYPTO_SHA256_LEN];
	const char *hex;

	if (pv_crypto_sha256(key, strlen(key), h, err) == -1 ||
	    pv_crypto_hex_encode(ctx->arena, h, sizeof(h), &hex, err) == -1)
		return -1;
	return (*out = pv_arena_printf(ctx->arena, err, "\\x%s", hex)) == NULL ?
	    -1 :
	    0;
}

static int
header_num(struct pv_ctx *ctx, struct pv_resp *resp, const char *name,
    long long v, struct pv_err *err)
{
	const char *s;

	if ((s = pv_arena_printf(ctx->arena, err, "%lld", v)) == NULL)
		return -1;
	return pv_resp_header(resp, name, s, err);
}

static long
remaining(long limit, long used)
{
	return used >= limit ? 0 : limit - used;
}

static long long
num(const PGresult *res, int col)
{
	return strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

/* Copies src into a fixed field (cut if too long: ids never are). */
static void
put(char *dst, size_t size, const char *src)
{
	if (snprintf(dst, size, "%s", src != NULL ? src : "") < 0)
		dst[0] = '\0';
}

/*
 * The prologue, as sql (PROLOGUE_SQL or a statement folding a read
 * into it) with n more parameters after its own; see pv_agent.h.
 */
static int
prologue(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    const char *sql, int n, const char *const *extra, PGresult **out,
    struct pv_err *err)
{
	const char *key, *p[PV_AGENT_PROLOGUE_NPARAMS + 8];
	struct pv_agent *a;
	PGresult *res;
	long long wait;
	int i;

	if ((key = find_key(req)) == NULL) {
		PV_ERR(err, PV_E_AUTH, "X-API-Key",
		    "No API key: send it in X-API-Key or Authorization: "
		    "Bearer.");
		pv_err_reason(err, "missing_api_key");
		return -1;
	}
	if (!well_formed(key)) {
		PV_ERR(err, PV_E_AUTH, "X-API-Key",
		    "The API key is malformed: keys look like ak_live_ "
		    "followed by 64 hexadecimal digits.");
		pv_err_reason(err, "invalid_api_key");
		return -1;
	}
	if (n < 0 || n > 8) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "prologue: %d parameters", n);
		return -1;
	}
	if (pv_db_in_tx(ctx->db)) {
		/* It would make the open transaction's commit asynchronous. */
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "prologue inside a transaction");
		return -1;
	}
	for (i = 0; i < n; i++)
		p[PV_AGENT_PROLOGUE_NPARAMS + i] = extra[i];
	if (pv_agent_key_hash(ctx, key, &p[0], err) == -1 ||
	    pv_db_exec(ctx, sql, PV_AGENT_PROLOGUE_NPARAMS + n, p, &res, err) ==
	        -1)
		return -1;
	if (PQntuples(res) < 1) {
		PV_ERR(err, PV_E_AUTH, "X-API-Key",
		    "The API key is unknown, revoked or expired.");
		pv_err_reason(err, "invalid_api_key");
		return -1;
	}
	if (strcmp(PQgetvalue(res, 0, 3), "active") != 0 ||
	    PQgetisnull(res, 0, 6)) {
		PV_ERR(err, PV_E_FORBIDDEN, NULL,
		    "This agent is suspended; contact the operator.");
		pv_err_reason(err, "agent_suspended");
		return -1;
	}
	if ((a = pv_arena_calloc(ctx->arena, 1, sizeof(*a), err)) == NULL)
		return -1;
	a->id = PQgetvalue(res, 0, 0);
	a->public_id = PQgetvalue(res, 0, 1);
	a->name = PQgetvalue(res, 0, 2);
	a->per_minute = (long)num(res, 4);
	a->daily = (long)num(res, 5);
	a->minute_count = (long)num(res, 6);
	a->day_count = (long)num(res, 7);
	a->minute_reset = num(res, 8);
	a->day_reset = num(res, 9);
	a->restricted = strcmp(PQgetvalue(res, 0, 10), "t") == 0;
	ctx->agent = a;
	if (header_num(ctx, resp, "X-RateLimit-Limit", a->per_minute, err) ||
	    header_num(ctx, resp, "X-RateLimit-Remaining",
	        remaining(a->per_minute, a->minute_count), err) ||
	    header_num(ctx, resp, "X-RateLimit-Reset", a->minute_reset, err) ||
	    header_num(ctx, resp, "X-Quota-Limit", a->daily, err) ||
	    header_num(ctx, resp, "X-Quota-Remaining",
	        remaining(a->daily, a->day_count), err) ||
	    header_num(ctx, resp, "X-Quota-Reset", a->day_reset, err))
		return -1;
	if (a->minute_count > a->per_minute) {
		wait = a->minute_reset - (long long)ctx->now;
		PV_ERR(err, PV_E_RATELIMIT, NULL,
		    "Rate limit of %ld requests per minute exceeded; retry "
		    "after %lld seconds.",
		    a->per_minute, wait > 0 ? wait : 1);
		pv_err_reason(err, "rate_limit_exceeded");
		err->retry_after = wait > 0 ? (int)wait : 1;
		return -1;
	}
	if (a->day_count > a->daily) {
		wait = a->day_reset - (long long)ctx->now;
		PV_ERR(err, PV_E_RATELIMIT, NULL,
		    "Daily quota of %ld requests used up; it resets at "
		    "00:00 UTC.",
		    a->daily);
		pv_err_reason(err, "daily_quota_exceeded");
		err->retry_after = wait > 0 ? (int)wait : 1;
		return -1;
	}
	if (out != NULL)
		*out = res;
	return 0;
}

/* Authenticates and rate limits; see pv_agent.h. */
int
pv_agent_authenticate(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, struct pv_err *err)
{
	return prologue(ctx, req, resp, PROLOGUE_SQL, 0, NULL, NULL, err);
}

/* The prologue with a read folded in; see pv_agent.h. */
int
pv_agent_prologue(struct pv_ctx *ctx, const struct pv_req *req,
    struct pv_resp *resp, const char *sql, int n, const char *const *params,
    PGresult **res, struct pv_err *err)
{
	*res = NULL;
	return prologue(ctx, req, resp, sql, n, params, res, err);
}

/* Milliseconds from *since to now on the monotonic clock. */
static long
ms_since(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - since->tv_sec) * 1000 +
	    (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Keeps the finished request's usage event; see pv_agent.h. */
void
pv_agent_record(struct pv_ctx *ctx, const char *method, int status,
    long latency_us)
{
	struct pv_usage_batch *b = &ctx->unsent;
	struct pv_usage_row *u;
	struct timespec wall;
	char num[24];

	if (ctx->agent == NULL)
		return;
	if (b->n == PV_USAGE_BATCH)
		pv_agent_flush(ctx); /* could not be sent before: try again */
	if (b->n == PV_USAGE_BATCH) {
		pv_log_msg(PV_LOG_WARN,
		    "%s usage not recorded: %d events "
		    "already waiting for the database",
		    ctx->request_id, b->n);
		return;
	}
	if (b->n == 0)
		clock_gettime(CLOCK_MONOTONIC, &b->first);
	u = &b->row[b->n++];
	clock_gettime(CLOCK_REALTIME, &wall);
	put(u->agent_id, sizeof(u->agent_id), ctx->agent->id);
	(void)snprintf(u->at_us, sizeof(u->at_us), "%lld",
	    (long long)wall.tv_sec * 1000000 + wall.tv_nsec / 1000 -
	        latency_us);
	put(u->endpoint, sizeof(u->endpoint),
	    ctx->usage.endpoint != NULL ? ctx->usage.endpoint : "?");
	put(u->method, sizeof(u->method), method);
	(void)snprintf(u->status, sizeof(u->status), "%d", status);
	(void)snprintf(u->latency_us, sizeof(u->latency_us), "%ld", latency_us);
	put(u->merchant_id, sizeof(u->merchant_id), ctx->usage.merchant_id);
	put(u->order_id, sizeof(u->order_id), ctx->usage.order_id);
	num[0] = '\0';
	if (ctx->usage.currency != NULL)
		(void)snprintf(num, sizeof(num), "%lld", ctx->usage.gmv_minor);
	put(u->gmv_minor, sizeof(u->gmv_minor), num);
	put(u->currency, sizeof(u->currency), ctx->usage.currency);
	put(u->request_id, sizeof(u->request_id), ctx->request_id);
	if (b->n == PV_USAGE_BATCH ||
	    ms_since(&b->first) >= PV_USAGE_MAX_AGE_MS)
		pv_agent_flush(ctx);
}

/*
 * Appends column c of the batch's rows to out as a PostgreSQL array
 * literal: every value double-quoted with '"' and '\\' escaped, empty
 * fields as NULL.
 */
static void
usage_array(struct pv_buf *out, const struct pv_usage_batch *b, size_t c)
{
	const char *v;
	int i;

	pv_buf_putc(out, '{');
	for (i = 0; i < b->n; i++) {
		v = (const char *)&b->row[i] + usage_cols[c];
		if (i > 0)
			pv_buf_putc(out, ',');
		if (*v == '\0') {
			pv_buf_puts(out, "NULL");
			continue;
		}
		pv_buf_putc(out, '"');
		for (; *v != '\0'; v++) {
			if (*v == '"' || *v == '\\')
				pv_buf_putc(out, '\\');
			pv_buf_putc(out, *v);
		}
		pv_buf_putc(out, '"');
	}
	pv_buf_putc(out, '}');
}

/* Sends the waiting usage events; see pv_agent.h. */
void
pv_agent_flush(struct pv_ctx *ctx)
{
	struct pv_usage_batch *b = &ctx->unsent;
	struct pv_err err = { 0 };
	const char *p[USAGE_NCOLS];
	struct pv_buf col;
	size_t c;

	if (b->n == 0)
		return;
	for (c = 0; c < USAGE_NCOLS; c++) {
		pv_buf_init(&col, ctx->arena, 64 * 1024);
		usage_array(&col, b, c);
		if (pv_buf_finish(&col, &p[c], NULL, &err) == -1)
			break;
	}
	if (err.code != PV_OK ||
	    pv_db_send(ctx, USAGE_SQL, (int)USAGE_NCOLS, p, &err) == -1) {
		pv_log_msg(PV_LOG_WARN, "%d usage events not recorded yet: %s",
		    b->n, err.msg);
		return; /* kept: the next record or flush tries again */
	}
	b->n = 0;
}

/* Creates and stores a key; see pv_agent.h. */
int
pv_agent_key_create(struct pv_ctx *ctx, const char *agent_id, const char **key,
    const char **prefix, struct pv_err *err)
{
	const char *p[3];

	if (pv_crypto_token(ctx->arena, PV_AGENT_KEY_PREFIX, 32, key, err) ==
	        -1 ||
	    pv_agent_key_hash(ctx, *key, &p[1], err) == -1 ||
	    (*prefix = pv_arena_strndup(ctx->arena, *key,
	         sizeof(PV_AGENT_KEY_PREFIX) - 1 + 6, err)) == NULL)
		return -1;
	p[0] = agent_id;
	p[2] = *prefix;
	return pv_db_exec(ctx,
	    PV_SQL("INSERT INTO api_keys (agent_id, key_hash, prefix)"
	           " VALUES ($1::bigint, $2::bytea, $3)"),
	    3, p, NULL, err);
}
