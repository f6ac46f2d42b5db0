/*
 * Database tests of the agent prologue (pv_agent_prologue() in SQL,
 * migration 0022) and of usage batches: counting, limits, suspended
 * and unknown keys, and events that arrive in usage_events exactly as
 * recorded, whatever their text.
 */
#include <sys/wait.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pv_agent.h"
#include "pv_config.h"
#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_test.h"

static struct pv_config cfg;
static struct pv_ctx ctx;
static struct pv_kv hdrs[1];
static char key[PV_AGENT_KEY_LEN + 1];
static char agent_id[24];

/* A fresh agent with one key, limits per minute and per day. */
static void
make_agent(const char *per_minute, const char *daily)
{
	struct pv_err err = { 0 };
	const char *p[3], *k, *prefix;
	PGresult *res;

	ck_assert_int_eq(pv_crypto_token(ctx.arena, "agt_", 8, &p[0], &err), 0);
	p[1] = per_minute;
	p[2] = daily;
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("INSERT INTO agents (public_id, name,"
	                            " per_minute_limit, daily_quota)"
	                            " VALUES ($1, 'prologue', $2::int, $3::int)"
	                            " RETURNING id"),
	                     3, p, &res, &err),
	    0);
	snprintf(agent_id, sizeof(agent_id), "%s", PQgetvalue(res, 0, 0));
	ck_assert_int_eq(pv_agent_key_create(&ctx, agent_id, &k, &prefix, &err),
	    0);
	snprintf(key, sizeof(key), "%s", k);
}

static void
setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = &cfg;
	ctx.arena = pv_arena_new(0);
	ctx.db = pv_db_new(getenv("PIVOTA_DATABASE_URL"), "db_tests");
	ctx.now = time(NULL);
	make_agent("2", "1000");
	hdrs[0].name = "x-api-key";
	hdrs[0].value = key;
}

/*
 * The prologue and usage batches commit on their own (they refuse to
 * run inside a transaction), so the teardown deletes what the test
 * made: other suites count usage events by age (the prune job).
 */
static void
teardown(void)
{
	struct pv_err err = { 0 };

	pv_db_settle(&ctx);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("WITH a AS (DELETE FROM agents"
	                            " WHERE name = 'prologue' RETURNING id)"
	                            " DELETE FROM usage_events"
	                            " WHERE agent_id IN (SELECT id FROM a)"),
	                     0, NULL, NULL, &err),
	    0);
	pv_arena_reset(ctx.arena);
	pv_db_free(ctx.db);
	pv_arena_free(ctx.arena);
}

/* One prologue with our key: 0 or -1 with *err. */
static int
authenticate(struct pv_resp *resp, struct pv_err *err)
{
	struct pv_req r;

	memset(&r, 0, sizeof(r));
	r.method = PV_GET;
	r.method_name = "GET";
	r.path = "/agent/v1/rate-limits";
	r.hdrs = hdrs;
	r.nhdr = 1;
	memset(resp, 0, sizeof(*resp));
	pv_err_clear(err);
	ctx.agent = NULL;
	ctx.now = time(NULL);
	return pv_agent_authenticate(&ctx, &r, resp, err);
}

static const char *
header(const struct pv_resp *resp, const char *name)
{
	size_t i;

	for (i = 0; i < resp->nhdr; i++)
		if (strcmp(resp->hdrs[i].name, name) == 0)
			return resp->hdrs[i].value;
	return NULL;
}

/* One value of a one-row query on our agent ($1). */
static const char *
agent_value(const char *sql)
{
	struct pv_err err = { 0 };
	const char *p[1] = { agent_id };
	PGresult *res;

	ck_assert_int_eq(pv_db_exec(&ctx, sql, 1, p, &res, &err), 0);
	ck_assert_int_eq(PQntuples(res), 1);
	return pv_db_get(res, 0, 0);
}

/*
 * Minutes roll over; a test counting within one minute waits out the
 * last two seconds of one rather than straddle it.
 */
static void
not_at_a_minute_end(void)
{
	while (time(NULL) % 60 >= 58)
		nanosleep(&(struct timespec){ 0, 200000000 }, NULL);
}

START_TEST(test_agent_prologue_counts_and_limits)
{
	struct pv_resp resp;
	struct pv_err err;

	not_at_a_minute_end();
	ck_assert_int_eq(authenticate(&resp, &err), 0);
	ck_assert_str_eq(ctx.agent->id, agent_id);
	ck_assert_int_eq(ctx.agent->minute_count, 1);
	ck_assert_str_eq(header(&resp, "X-RateLimit-Limit"), "2");
	ck_assert_str_eq(header(&resp, "X-RateLimit-Remaining"), "1");
	ck_assert_int_eq(authenticate(&resp, &err), 0);
	ck_assert_str_eq(header(&resp, "X-RateLimit-Remaining"), "0");
	ck_assert_str_eq(header(&resp, "X-Quota-Remaining"), "998");

	/* The third in the minute is refused, and not charged to the day. */
	ck_assert_int_eq(authenticate(&resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_RATELIMIT);
	ck_assert_str_eq(err.reason, "rate_limit_exceeded");
	ck_assert_int_ge(err.retry_after, 1);
	ck_assert_int_le(err.retry_after, 60);
	ck_assert_int_eq(ctx.agent->minute_count, 3);
	ck_assert_int_eq(ctx.agent->day_count, 2);
}
END_TEST

START_TEST(test_agent_prologue_daily_quota)
{
	struct pv_resp resp;
	struct pv_err err;
	int i;

	not_at_a_minute_end();
	make_agent("100", "3");
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(authenticate(&resp, &err), 0);
	ck_assert_int_eq(authenticate(&resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_RATELIMIT);
	ck_assert_str_eq(err.reason, "daily_quota_exceeded");
	ck_assert_str_eq(header(&resp, "X-Quota-Remaining"), "0");
}
END_TEST

START_TEST(test_agent_prologue_refuses_bad_keys)
{
	struct pv_resp resp;
	struct pv_err err;
	const char *other = "ak_live_"
	                    "00000000000000000000000000000000"
	                    "00000000000000000000000000000000";

	hdrs[0].value = other; /* well formed, never issued */
	ck_assert_int_eq(authenticate(&resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_str_eq(err.reason, "invalid_api_key");
	ck_assert_ptr_null(ctx.agent);

	hdrs[0].value = "ak_live_' OR 1=1 --";
	ck_assert_int_eq(authenticate(&resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	hdrs[0].value = key;

	/* Suspended: 403, and nothing is counted. */
	(void)agent_value(PV_SQL("UPDATE agents SET status = 'suspended'"
	                         " WHERE id = $1::bigint RETURNING id"));
	ck_assert_int_eq(authenticate(&resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_FORBIDDEN);
	ck_assert_str_eq(err.reason, "agent_suspended");
	ck_assert_ptr_null(agent_value(PV_SQL("SELECT pg_sequence_last_value("
	                                      " ('agent_rate_minute_' ||"
	                                      " $1)::regclass)")));

	/* Revoked: 401. */
	(void)agent_value(PV_SQL("UPDATE agents SET status = 'active'"
	                         " WHERE id = $1::bigint RETURNING id"));
	(void)agent_value(PV_SQL("UPDATE api_keys SET revoked_at = now()"
	                         " WHERE agent_id = $1::bigint RETURNING 1"));
	ck_assert_int_eq(authenticate(&resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
}
END_TEST

START_TEST(test_agent_prologue_new_window_starts_at_one)
{
	struct pv_resp resp;
	struct pv_err err;
	int i;

	not_at_a_minute_end();
	for (i = 0; i < 3; i++)
		(void)authenticate(&resp, &err); /* 1, 2, then refused */
	ck_assert_int_eq(ctx.agent->minute_count, 3);

	/* As if those were a minute ago: the next request opens a window. */
	(void)agent_value(PV_SQL("UPDATE agent_rate SET minute_start ="
	                         " minute_start - interval '1 minute'"
	                         " WHERE agent_id = $1::bigint RETURNING 1"));
	ck_assert_int_eq(authenticate(&resp, &err), 0);
	ck_assert_int_eq(ctx.agent->minute_count, 1);
	ck_assert_int_eq(ctx.agent->day_count, 3);

	/* And yesterday: the day's count starts again too. */
	(void)agent_value(PV_SQL("UPDATE agent_rate SET minute_start ="
	                         " minute_start - interval '1 day',"
	                         " day_start = day_start - 1"
	                         " WHERE agent_id = $1::bigint RETURNING 1"));
	ck_assert_int_eq(authenticate(&resp, &err), 0);
	ck_assert_int_eq(ctx.agent->minute_count, 1);
	ck_assert_int_eq(ctx.agent->day_count, 1);
	ck_assert_str_eq(header(&resp, "X-Quota-Remaining"), "999");
}
END_TEST

/*
 * 3N requests from separate connections (as from separate processes
 * and nodes), all at once, right when a new minute window must be
 * opened: exactly N get through, and the counts handed out are 1..3N
 * with none twice.
 */
START_TEST(test_agent_prologue_exact_when_window_opens)
{
	enum {
		N = 10,
		KIDS = 6,
		EACH = 5
	};
	int go[2], out[2], i, j, allowed = 0, seen[3 * N + 1] = { 0 };
	struct pv_resp resp;
	struct pv_err err;
	long c;
	pid_t kid;

	ck_assert_int_eq(KIDS * EACH, 3 * N);
	not_at_a_minute_end();
	make_agent("10", "1000");
	(void)agent_value(PV_SQL("UPDATE agent_rate SET minute_start ="
	                         " minute_start - interval '5 minutes'"
	                         " WHERE agent_id = $1::bigint RETURNING 1"));
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(out), 0);
	for (i = 0; i < KIDS; i++) {
		if ((kid = fork()) == 0) {
			char b;

			struct pv_err e2 = { 0 };

			ctx.db = pv_db_new(getenv("PIVOTA_DATABASE_URL"),
			    "db_tests");
			if (pv_db_ping(&ctx, &e2) == -1) /* connected first */
				_exit(1);
			(void)read(go[0], &b, 1);
			for (j = 0; j < EACH; j++) {
				c = authenticate(&resp, &err) == 0 ? 1 : 0;
				c = c * 1000 +
				    (ctx.agent != NULL ?
				            ctx.agent->minute_count :
				            0);
				(void)write(out[1], &c, sizeof(c));
			}
			_exit(0);
		}
		ck_assert_int_gt(kid, 0);
	}
	close(out[1]);
	for (i = 0; i < KIDS; i++)
		(void)write(go[1], "g", 1);
	while (read(out[0], &c, sizeof(c)) == sizeof(c)) {
		allowed += (int)(c / 1000);
		ck_assert_int_ge(c % 1000, 1);
		ck_assert_int_le(c % 1000, 3 * N);
		ck_assert_int_eq(seen[c % 1000]++, 0);
		/* Allowed exactly when its place is within the limit. */
		ck_assert_int_eq(c / 1000, c % 1000 <= N);
	}
	for (i = 0; i < KIDS; i++)
		(void)wait(NULL);
	ck_assert_int_eq(allowed, N);
	for (i = 1; i <= 3 * N; i++)
		ck_assert_int_eq(seen[i], 1);
}
END_TEST

/* Pretends a request of ours finished with these usage fields. */
static void
record(const char *endpoint, const char *order_id, long long gmv,
    const char *currency, int status)
{
	static struct pv_agent a;

	memset(&a, 0, sizeof(a));
	a.id = agent_id;
	ctx.agent = &a;
	memset(&ctx.usage, 0, sizeof(ctx.usage));
	ctx.usage.endpoint = endpoint;
	ctx.usage.order_id = order_id;
	ctx.usage.gmv_minor = gmv;
	ctx.usage.currency = currency;
	snprintf(ctx.request_id, sizeof(ctx.request_id), "req-%s-%d", agent_id,
	    status);
	pv_agent_record(&ctx, "POST", status, 1500);
}

START_TEST(test_agent_usage_batch_keeps_every_value)
{
	struct pv_err err = { 0 };
	const char *p[1] = { agent_id };
	PGresult *res;
	long long at;

	/* Text that array literals would misread if not quoted. */
	record("POST /agent/v1/a\"b\\c{d},NULL", "ORD_1", 4800, "USD", 201);
	record("NULL", NULL, 0, NULL, 404);
	record("GET /agent/v1/caf\xc3\xa9 'x'", "", 0, NULL, 200);
	ck_assert_int_eq(ctx.unsent.n, 3); /* kept, not yet written */
	pv_agent_flush(&ctx);
	ck_assert_int_eq(ctx.unsent.n, 0);
	pv_db_settle(&ctx);

	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("SELECT endpoint, method, status,"
	                            " latency_us, order_id, gmv_minor,"
	                            " currency, request_id,"
	                            " extract(epoch FROM now() - at)::bigint,"
	                            " merchant_id IS NULL"
	                            " FROM usage_events"
	                            " WHERE agent_id = $1::bigint ORDER BY id"),
	                     1, p, &res, &err),
	    0);
	ck_assert_int_eq(PQntuples(res), 3);
	ck_assert_str_eq(pv_db_get(res, 0, 0),
	    "POST /agent/v1/a\"b\\c{d},NULL");
	ck_assert_str_eq(pv_db_get(res, 0, 1), "POST");
	ck_assert_str_eq(pv_db_get(res, 0, 2), "201");
	ck_assert_str_eq(pv_db_get(res, 0, 3), "1500");
	ck_assert_str_eq(pv_db_get(res, 0, 4), "ORD_1");
	ck_assert_str_eq(pv_db_get(res, 0, 5), "4800");
	ck_assert_str_eq(pv_db_get(res, 0, 6), "USD");
	ck_assert_str_eq(pv_db_get(res, 0, 9), "t");
	at = strtoll(pv_db_get(res, 0, 8), NULL, 10);
	ck_assert_int_ge(at, 0);
	ck_assert_int_le(at, 5);
	/* The string "NULL" is a value; empty fields are SQL NULL. */
	ck_assert_str_eq(pv_db_get(res, 1, 0), "NULL");
	ck_assert_ptr_null(pv_db_get(res, 1, 4));
	ck_assert_ptr_null(pv_db_get(res, 1, 5));
	ck_assert_ptr_null(pv_db_get(res, 1, 6));
	ck_assert_str_eq(pv_db_get(res, 2, 0), "GET /agent/v1/caf\xc3\xa9 'x'");
	ck_assert_ptr_null(pv_db_get(res, 2, 4));
}
END_TEST

START_TEST(test_agent_usage_batch_is_written_when_full)
{
	int i;

	for (i = 0; i < PV_USAGE_BATCH - 1; i++)
		record("GET /agent/v1/rate-limits", NULL, 0, NULL, 200);
	ck_assert_int_eq(ctx.unsent.n, PV_USAGE_BATCH - 1);
	ck_assert_str_eq(agent_value(PV_SQL("SELECT count(*) FROM usage_events"
	                                    " WHERE agent_id = $1::bigint")),
	    "0");
	record("GET /agent/v1/rate-limits", NULL, 0, NULL, 200);
	ck_assert_int_eq(ctx.unsent.n, 0);
	ck_assert_str_eq(agent_value(PV_SQL("SELECT count(*) FROM usage_events"
	                                    " WHERE agent_id = $1::bigint")),
	    "32");
}
END_TEST

START_TEST(test_agent_usage_kept_while_database_is_away)
{
	struct pv_db *mine = ctx.db;
	int i;

	/* A server that is not there: events wait, then overflow is dropped. */
	ctx.db = pv_db_new("postgresql://pivota@127.0.0.1:1/none", "db_tests");
	for (i = 0; i < PV_USAGE_BATCH + 3; i++)
		record("GET /agent/v1/rate-limits", NULL, 0, NULL, 503);
	ck_assert_int_eq(ctx.unsent.n, PV_USAGE_BATCH);
	pv_db_free(ctx.db);
	ctx.db = mine;

	/* The server is back: the batch that waited is written whole. */
	pv_agent_flush(&ctx);
	ck_assert_int_eq(ctx.unsent.n, 0);
	pv_db_settle(&ctx);
	ck_assert_str_eq(agent_value(PV_SQL("SELECT count(*) FROM usage_events"
	                                    " WHERE agent_id = $1::bigint")),
	    "32");
}
END_TEST

Suite *
agent_suite(void)
{
	Suite *s = suite_create("agent");
	TCase *tc = tcase_create("prologue");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_agent_prologue_counts_and_limits);
	tcase_add_test(tc, test_agent_prologue_daily_quota);
	tcase_add_test(tc, test_agent_prologue_refuses_bad_keys);
	tcase_add_test(tc, test_agent_prologue_new_window_starts_at_one);
	tcase_add_test(tc, test_agent_prologue_exact_when_window_opens);
	tcase_add_test(tc, test_agent_usage_batch_keeps_every_value);
	tcase_add_test(tc, test_agent_usage_batch_is_written_when_full);
	tcase_add_test(tc, test_agent_usage_kept_while_database_is_away);
	suite_add_tcase(s, tc);
	return s;
}
