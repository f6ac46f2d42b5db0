/*
 * Database tests of pv_idem: claim, in-flight, replay, conflict, 5xx
 * release and the takeover of a claim a crashed process abandoned.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pv_agent.h"
#include "pv_config.h"
#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_idem.h"
#include "pv_test.h"

static struct pv_config cfg;
static struct pv_ctx ctx;
static struct pv_db *other; /* another process's connection */
static struct pv_agent agent;
static struct pv_kv hdrs[1];
static char key[64];
static char agent_id[24];

static void
setup(void)
{
	struct pv_err err = { 0 };
	const char *p[1];
	PGresult *res;

	memset(&cfg, 0, sizeof(cfg));
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = &cfg;
	ctx.arena = pv_arena_new(0);
	ctx.db = pv_db_new(getenv("PIVOTA_DATABASE_URL"), "db_tests");
	ctx.now = time(NULL);
	ck_assert_int_eq(pv_crypto_token(ctx.arena, "agt_", 8, &p[0], &err), 0);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("INSERT INTO agents (public_id, name)"
	                            " VALUES ($1, 'idem') RETURNING id"),
	                     1, p, &res, &err),
	    0);
	memset(&agent, 0, sizeof(agent));
	memcpy(agent_id, PQgetvalue(res, 0, 0),
	    strlen(PQgetvalue(res, 0, 0)) + 1);
	agent.id = agent_id;
	ctx.agent = &agent;
	ck_assert_int_eq(pv_crypto_token(ctx.arena, "k-", 8, &p[0], &err), 0);
	memcpy(key, p[0], strlen(p[0]) + 1);
	hdrs[0].name = "idempotency-key";
	hdrs[0].value = key;
	other = pv_db_new(getenv("PIVOTA_DATABASE_URL"), "db_tests");
}

static void
teardown(void)
{
	pv_arena_reset(ctx.arena);
	pv_db_free(other);
	pv_db_free(ctx.db);
	pv_arena_free(ctx.arena);
}

/* A POST with our key and the given body. */
static struct pv_req
post(const char *body)
{
	struct pv_req r;

	memset(&r, 0, sizeof(r));
	r.method = PV_POST;
	r.method_name = "POST";
	r.path = "/agent/v1/webhooks";
	r.hdrs = hdrs;
	r.nhdr = 1;
	r.body = body;
	r.bodylen = strlen(body);
	return r;
}

static int
begin(const char *body, struct pv_resp *resp, struct pv_err *err)
{
	struct pv_req r = post(body);

	memset(resp, 0, sizeof(*resp));
	pv_err_clear(err);
	ctx.idem = NULL;
	return pv_idem_begin(&ctx, &r, resp, err);
}

/* begin() as another process would, on its own connection. */
static int
begin_other(const char *body, struct pv_resp *resp, struct pv_err *err)
{
	struct pv_db *mine = ctx.db;
	int rc;

	ctx.db = other;
	rc = begin(body, resp, err);
	ctx.db = mine;
	return rc;
}

START_TEST(test_idem_begin_claims_then_in_flight)
{
	struct pv_resp resp;
	struct pv_err err;

	ck_assert_int_eq(begin("{\"a\":1}", &resp, &err), 0);
	ck_assert_ptr_nonnull(ctx.idem);

	/* While the first runs: in flight, retry in a second. */
	ck_assert_int_eq(begin_other("{\"a\":1}", &resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_CONFLICT);
	ck_assert_str_eq(err.reason, "idempotency_in_flight");
	ck_assert_int_eq(err.retry_after, 1);
}
END_TEST

START_TEST(test_idem_done_replays_and_other_body_conflicts)
{
	struct pv_resp resp, first;
	struct pv_err err;

	ck_assert_int_eq(begin("{\"a\":1}", &resp, &err), 0);
	memset(&first, 0, sizeof(first));
	pv_resp_set(&first, 200, "application/json", "{\"id\":\"x\"}", 10);
	pv_idem_finish(&ctx, &first);
	ck_assert_ptr_null(ctx.idem);

	ck_assert_int_eq(begin("{\"a\":1}", &resp, &err), 1);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_uint_eq(resp.bodylen, 10);
	ck_assert(memcmp(resp.body, "{\"id\":\"x\"}", 10) == 0);
	ck_assert_str_eq(resp.hdrs[0].name, "Idempotent-Replayed");

	ck_assert_int_eq(begin("{\"a\":2}", &resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_UNPROCESSABLE);
	ck_assert_str_eq(err.reason, "idempotency_conflict");
}
END_TEST

START_TEST(test_idem_5xx_releases_the_key)
{
	struct pv_resp resp, failed;
	struct pv_err err;

	ck_assert_int_eq(begin("{\"a\":1}", &resp, &err), 0);
	memset(&failed, 0, sizeof(failed));
	pv_resp_set(&failed, 503, "application/json", "{}", 2);
	pv_idem_finish(&ctx, &failed);
	ck_assert_int_eq(begin("{\"a\":1}", &resp, &err), 0); /* runs again */
}
END_TEST

START_TEST(test_idem_abandoned_claim_is_taken_over)
{
	struct pv_resp resp;
	struct pv_err err = { 0 };
	const char *p[2] = { agent.id, key };
	struct pv_db *mine;

	ck_assert_int_eq(begin("{\"a\":1}", &resp, &err), 0);
	/* Claimed a while ago by a process still connected (its lock
	 * held): only the age says it is abandoned. */
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL(
	                         "UPDATE idempotency_keys SET created_at ="
	                         " now() - interval '61 seconds'"
	                         " WHERE agent_id = $1::bigint AND key = $2"),
	                     2, p, NULL, &err),
	    0);
	ck_assert_int_eq(begin_other("{\"a\":2}", &resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_UNPROCESSABLE);
	ck_assert_int_eq(begin_other("{\"a\":1}", &resp, &err), 0);
	ck_assert_ptr_nonnull(ctx.idem);
	/* Fresh again, and the taker holds it now. */
	mine = ctx.db;
	ctx.db = pv_db_new(getenv("PIVOTA_DATABASE_URL"), "db_tests");
	ck_assert_int_eq(begin("{\"a\":1}", &resp, &err), -1);
	ck_assert_str_eq(err.reason, "idempotency_in_flight");
	pv_db_free(ctx.db);
	ctx.db = mine;
}
END_TEST

/*
 * The process that claimed the key died (its connection closed, its
 * advisory lock with it): the retry takes the key over at once, not
 * after PV_IDEM_STALE_S.
 */
START_TEST(test_idem_dead_claimer_is_taken_over_at_once)
{
	struct pv_resp resp;
	struct pv_err err = { 0 };
	int i;

	ck_assert_int_eq(begin_other("{\"a\":1}", &resp, &err), 0);
	ck_assert_int_eq(begin("{\"a\":1}", &resp, &err), -1);
	ck_assert_str_eq(err.reason, "idempotency_in_flight");
	pv_db_free(other); /* the claimer's process dies */
	other = pv_db_new(getenv("PIVOTA_DATABASE_URL"), "db_tests");
	/* Its backend ends (and the lock with it) a moment after the
	 * disconnect: well within 5 s, far below PV_IDEM_STALE_S. */
	for (i = 0; i < 250 && begin("{\"a\":1}", &resp, &err) != 0; i++) {
		ck_assert_str_eq(err.reason, "idempotency_in_flight");
		usleep(20000);
	}
	ck_assert_int_lt(i, 250);
	ck_assert_ptr_nonnull(ctx.idem);
}
END_TEST

START_TEST(test_idem_malformed_key_is_400)
{
	struct pv_resp resp;
	struct pv_err err;

	hdrs[0].value = "has space";
	ck_assert_int_eq(begin("{}", &resp, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.field, "Idempotency-Key");
	hdrs[0].value = key;
}
END_TEST

Suite *
idem_suite(void)
{
	Suite *s = suite_create("idem");
	TCase *tc = tcase_create("keys");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_idem_begin_claims_then_in_flight);
	tcase_add_test(tc, test_idem_done_replays_and_other_body_conflicts);
	tcase_add_test(tc, test_idem_5xx_releases_the_key);
	tcase_add_test(tc, test_idem_abandoned_claim_is_taken_over);
	tcase_add_test(tc, test_idem_dead_claimer_is_taken_over_at_once);
	tcase_add_test(tc, test_idem_malformed_key_is_400);
	suite_add_tcase(s, tc);
	return s;
}
