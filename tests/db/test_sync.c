/*
 * The Shopify catalogue sync (pv_sync.h) against the database of
 * tests/db/run.sh and the loopback fake store: merchants are made and
 * connected with the real pivotactl, sync-products enqueues, and the
 * job runs here through the real queue (pv_job_run_once with the
 * worker's table of kinds), one attempt at a time so a test can look
 * between attempts.  pivotactl commits, so nothing rolls back: each
 * test makes its own merchant and shop, and setup empties the jobs
 * table as the queue tests do.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "pv_arena.h"
#include "pv_catalog.h"
#include "pv_config.h"
#include "pv_db.h"
#include "pv_fake.h"
#include "pv_job.h"
#include "pv_proc.h"
#include "pv_sync.h"
#include "pv_test.h"
#include "pv_worker.h"

#define FAKE  "tests/fakes/fake_shopify.py"
#define TOKEN "shpat_fake_0123456789abcdef"
#define KEY   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static struct pv_fake *fake;
static struct pv_config cfg;
static struct pv_ctx ctx;
static int seq;

static void
start_fake(void)
{
	fake = pv_fake_start(FAKE, NULL);
	ck_assert_msg(fake != NULL, "cannot start " FAKE);
}

static void
stop_fake(void)
{
	pv_fake_stop(fake);
	fake = NULL;
}

/* The one value of a one-row, one-column query, or NULL. */
static const char *
value(const char *sql, const char *arg)
{
	struct pv_err err = { 0 };
	const char *p[1] = { arg };
	PGresult *res;

	ck_assert_msg(pv_db_exec(&ctx, sql, arg != NULL ? 1 : 0, p, &res,
	                  &err) == 0,
	    "%s: %s", sql, err.msg);
	ck_assert_int_eq(PQntuples(res), 1);
	return PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0);
}

static long
count(const char *sql, const char *arg)
{
	return strtol(value(sql, arg), NULL, 10);
}

static void
setup(void)
{
	struct pv_err err = { 0 };

	ck_assert_ptr_nonnull(fake);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/reset", NULL), 0);
	setenv("PIVOTA_MASTER_KEY", KEY, 1);
	setenv("PIVOTA_ENV", "test", 1);
	unsetenv("PIVOTA_SHOPIFY_API_BASE");
	ck_assert_msg(pv_ctx_open(&ctx, "db_tests", &cfg, &err) == 0, "%s",
	    err.msg);
	value(PV_SQL("WITH d AS (DELETE FROM jobs RETURNING 1)"
	             " SELECT count(*) FROM d"),
	    NULL);
}

static void
teardown(void)
{
	pv_ctx_close(&ctx, &cfg);
}

/* Runs pivotactl with the NULL-terminated args; stdout into out. */
static int
ctl(char *out, size_t size, ...)
{
	char path[512];
	const char *argv[24];
	va_list ap;
	int n = 1;

	ck_assert_int_gt(snprintf(path, sizeof(path), "%s/bin/pivotactl",
	                     getenv("PV_BUILD_DIR")),
	    0);
	argv[0] = path;
	va_start(ap, size);
	while (n < 23 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	out[0] = '\0';
	return pv_proc_capture(argv, out, size);
}

/* The string (or number, as text) member key of JSON text, or NULL. */
static const char *
field(const char *json, const char *key)
{
	static char buf[4][256];
	static int k;
	struct json_object *o = json_tokener_parse(json), *v;
	const char *s = NULL;

	ck_assert_msg(o != NULL, "not JSON: %s", json);
	if (json_object_object_get_ex(o, key, &v) && v != NULL) {
		k = (k + 1) % 4;
		snprintf(buf[k], sizeof(buf[k]), "%s",
		    json_object_get_string(v));
		s = buf[k];
	}
	json_object_put(o);
	return s;
}

/* A new merchant connected to the fake as a shop of its own. */
static void
connected_merchant(char id[32])
{
	char out[2048], name[64], email[96], shop[64], body[128];

	snprintf(name, sizeof(name), "Sync test %d", ++seq);
	snprintf(email, sizeof(email), "sync-%d-%ld@example.com", seq,
	    (long)getpid());
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "create", "--name",
	                     name, "--email", email, "--json", NULL),
	    0);
	ck_assert_ptr_nonnull(field(out, "merchant_id"));
	snprintf(id, 32, "%s", field(out, "merchant_id"));
	snprintf(shop, sizeof(shop), "s%s.myshopify.com", id + 4);
	snprintf(body, sizeof(body), "{\"shop\": \"%s\"}", shop);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/config", body), 0);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     id, "--shop", shop, "--token", TOKEN, "--api-base",
	                     pv_fake_url(fake), "--json", NULL),
	    0);
}

static void
catalog(int n)
{
	char body[64];

	snprintf(body, sizeof(body), "{\"count\": %d}", n);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/catalog", body), 0);
}

static void
faults(const char *next)
{
	char body[512];

	snprintf(body, sizeof(body), "{\"next\": %s}", next);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/faults", body), 0);
}

/* Claims and runs one due job; 1 if there was one. */
static int
run_one(void)
{
	struct pv_err err = { 0 };
	struct pv_job_opts o;
	int did = 0;

	pv_job_opts_init(&o);
	o.worker_id = "db_tests";
	o.backoff_base_ms = 1; /* a failed attempt is due again at once */
	o.backoff_cap_ms = 1;
	ck_assert_msg(pv_job_run_once(&ctx, pv_worker_handlers,
	                  pv_worker_nhandlers, &o, &did, &err) == 0,
	    "%s", err.msg);
	pv_arena_reset(ctx.arena);
	if (did)
		usleep(5000); /* past the 1 ms backoff */
	return did;
}

static void
run_all(void)
{
	int i;

	for (i = 0; i < 50 && run_one(); i++)
		;
	ck_assert_int_lt(i, 50);
}

static const char *
sync_json(const char *id, const char *flag)
{
	static char out[4096];

	ck_assert_int_eq(ctl(out, sizeof(out), "sync-products", id, flag,
	                     "--json", NULL),
	    0);
	return out;
}

static long
products_of(const char *id, const char *status)
{
	const char *p[2] = { id, status };
	struct pv_err err = { 0 };
	PGresult *res;

	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL(
	                         "SELECT count(*) FROM products p JOIN"
	                         " merchants m ON m.id = p.merchant_id"
	                         " WHERE m.public_id = $1 AND p.status = $2"),
	                     2, p, &res, &err),
	    0);
	return strtol(PQgetvalue(res, 0, 0), NULL, 10);
}

/* The GraphQL products requests the fake saw, as their variables. */
static int
product_requests(const char **afters, int max)
{
	struct json_object *o =
	    pv_fake_call(fake, "GET", "/__fake/requests", NULL);
	struct json_object *arr, *r, *body, *vars, *after;
	static char keep[64][128];
	size_t i;
	int n = 0;

	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "requests", &arr));
	for (i = 0; i < json_object_array_length(arr) && n < max; i++) {
		r = json_object_array_get_idx(arr, i);
		if (strcmp(json_object_get_string(
		               json_object_object_get(r, "root")),
		        "products") != 0 ||
		    json_object_get_int(json_object_object_get(r, "status")) !=
		        200)
			continue;
		body = json_tokener_parse(
		    json_object_get_string(json_object_object_get(r, "body")));
		vars = json_object_object_get(body, "variables");
		after = json_object_object_get(vars, "after");
		snprintf(keep[n], sizeof(keep[n]), "%s",
		    after != NULL ? json_object_get_string(after) : "");
		afters[n] = keep[n];
		n++;
		json_object_put(body);
	}
	json_object_put(o);
	return n;
}

START_TEST(test_sync_pages_commit_with_their_cursor)
{
	char id[32];
	const char *out, *afters[16];
	int n;

	connected_merchant(id);
	catalog(60); /* pages of 25: 25, 25, 10 */
	out = sync_json(id, "--json");
	ck_assert_str_eq(field(out, "state"), "queued");
	ck_assert_str_eq(field(out, "enqueued"), "true");
	/* Two pages pass, then the third fails past pv_upstream's retries. */
	faults("[{\"delay_ms\": 1}, {\"delay_ms\": 1}, 500, 500, 500]");
	ck_assert_int_eq(run_one(), 1);

	out = sync_json(id, "--status");
	ck_assert_str_eq(field(out, "state"), "running");
	ck_assert_str_eq(field(out, "products"), "50");
	ck_assert_str_eq(field(out, "pages"), "2");
	ck_assert_str_eq(field(out, "job_state"), "queued");
	ck_assert_ptr_nonnull(field(out, "error"));
	/* The cursor of page 2 (product 50) is the checkpoint. */
	ck_assert_str_eq(value(PV_SQL(
	                           "SELECT convert_from(decode(s.sync_cursor,"
	                           " 'base64'), 'UTF8') FROM merchant_shopify"
	                           " s JOIN merchants m ON m.id ="
	                           " s.merchant_id WHERE m.public_id = $1"),
	                     id),
	    "{\"last_id\":50}");
	ck_assert_int_eq(count(PV_SQL("SELECT count(*) FROM"
	                              " catalog_staged_products s JOIN"
	                              " merchant_shopify m ON m.sync_batch_id ="
	                              " s.batch_id JOIN merchants x ON x.id ="
	                              " m.merchant_id WHERE x.public_id = $1"),
	                     id),
	    50);
	/* Nothing of a half-done sync is visible. */
	ck_assert_int_eq(products_of(id, "active"), 0);
	/* A second request while it is queued reports the same job. */
	out = sync_json(id, "--json");
	ck_assert_str_eq(field(out, "enqueued"), "false");
	ck_assert_str_eq(field(out, "run"), "1");

	run_all();
	out = sync_json(id, "--status");
	ck_assert_str_eq(field(out, "state"), "done");
	ck_assert_str_eq(field(out, "products"), "60");
	ck_assert_str_eq(field(out, "pages"), "3");
	ck_assert_ptr_null(field(out, "error"));
	ck_assert_str_eq(field(out, "job_state"), "done");
	ck_assert_int_eq(products_of(id, "active"), 60);
	ck_assert_ptr_null(value(PV_SQL("SELECT s.sync_cursor FROM"
	                                " merchant_shopify s JOIN merchants m"
	                                " ON m.id = s.merchant_id"
	                                " WHERE m.public_id = $1"),
	    id));
	/* The retry asked for the page after product 50, not from the start. */
	n = product_requests(afters, 16);
	ck_assert_int_eq(n, 3); /* the failed tries answered 500 */
	ck_assert_str_eq(afters[0], "");
	ck_assert_str_eq(afters[2], "eyJsYXN0X2lkIjo1MH0="); /* last_id 50 */
	ck_assert_int_eq(count(PV_SQL("SELECT count(*) FROM variants v JOIN"
	                              " merchants m ON m.id = v.merchant_id"
	                              " WHERE m.public_id = $1"),
	                     id),
	    120); /* 1 + i % 3 variants each */
}
END_TEST

START_TEST(test_sync_second_sync_changes_nothing)
{
	char id[32], before[128], after[128];
	const char *out;

	connected_merchant(id);
	catalog(40);
	sync_json(id, "--json");
	run_all();
	out = sync_json(id, "--status");
	ck_assert_str_eq(field(out, "state"), "done");
	snprintf(before, sizeof(before), "%s",
	    value(PV_SQL("SELECT count(*) || '/' || max(p.updated_at) || '/' ||"
	                 " (SELECT count(*) || '/' || max(v.updated_at) FROM"
	                 " variants v WHERE v.merchant_id = m.id)"
	                 " FROM products p JOIN merchants m ON m.id ="
	                 " p.merchant_id WHERE m.public_id = $1 GROUP BY m.id"),
	        id));

	out = sync_json(id, "--json");
	ck_assert_str_eq(field(out, "enqueued"), "true");
	ck_assert_str_eq(field(out, "run"), "2");
	run_all();
	out = sync_json(id, "--status");
	ck_assert_str_eq(field(out, "state"), "done");
	ck_assert_str_eq(field(out, "products"), "40");
	snprintf(after, sizeof(after), "%s",
	    value(PV_SQL("SELECT count(*) || '/' || max(p.updated_at) || '/' ||"
	                 " (SELECT count(*) || '/' || max(v.updated_at) FROM"
	                 " variants v WHERE v.merchant_id = m.id)"
	                 " FROM products p JOIN merchants m ON m.id ="
	                 " p.merchant_id WHERE m.public_id = $1 GROUP BY m.id"),
	        id));
	ck_assert_str_eq(before, after);
	ck_assert_str_eq(value(PV_SQL("SELECT s.sync_result::text FROM"
	                              " merchant_shopify s JOIN merchants m ON"
	                              " m.id = s.merchant_id WHERE m.public_id"
	                              " = $1"),
	                     id),
	    value(PV_SQL("SELECT jsonb_build_object('created', 0, 'updated', 0,"
	                 " 'unchanged', 40, 'archived', 0, 'words',"
	                 " (SELECT count(*) FROM catalog_words))::text"),
	        NULL));

	/* Products the store no longer has are archived, not deleted. */
	catalog(37);
	sync_json(id, "--json");
	run_all();
	ck_assert_int_eq(products_of(id, "active"), 37);
	ck_assert_int_eq(products_of(id, "archived"), 3);
}
END_TEST

START_TEST(test_sync_refused_token_fails_the_run)
{
	char id[32];
	const char *out;

	connected_merchant(id);
	catalog(30);
	sync_json(id, "--json");
	/* The store forgets our token: 401 on the first page. */
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/config",
	                     "{\"token\": \"shpat_another\"}"),
	    0);
	ck_assert_int_eq(run_one(), 1);
	ck_assert_int_eq(run_one(), 0); /* dead at once, not retried */
	out = sync_json(id, "--status");
	ck_assert_str_eq(field(out, "state"), "failed");
	ck_assert_str_eq(field(out, "job_state"), "dead");
	ck_assert_str_eq(field(out, "job_attempts"), "1");
	ck_assert_ptr_nonnull(strstr(field(out, "error"), "access token"));
	ck_assert_ptr_null(value(PV_SQL("SELECT s.sync_batch_id FROM"
	                                " merchant_shopify s JOIN merchants m"
	                                " ON m.id = s.merchant_id"
	                                " WHERE m.public_id = $1"),
	    id));
	ck_assert_int_eq(products_of(id, "active"), 0);

	/* Once the token works again, a new request syncs everything. */
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/config",
	                     "{\"token\": \"" TOKEN "\"}"),
	    0);
	out = sync_json(id, "--json");
	ck_assert_str_eq(field(out, "enqueued"), "true");
	run_all();
	ck_assert_int_eq(products_of(id, "active"), 30);
}
END_TEST

START_TEST(test_sync_new_shop_drops_the_staged_batch)
{
	char id[32], out[2048], shop[64], body[128];
	const char *st;

	connected_merchant(id);
	catalog(60);
	sync_json(id, "--json");
	faults("[{\"delay_ms\": 1}, {\"delay_ms\": 1}, 500, 500, 500]");
	ck_assert_int_eq(run_one(), 1);
	ck_assert_int_eq(count(PV_SQL("SELECT count(*) FROM catalog_batches b"
	                              " JOIN merchants m ON m.id ="
	                              " b.merchant_id WHERE m.public_id = $1"
	                              " AND b.state = 'staging'"),
	                     id),
	    1);
	/* The merchant connects another store before the retry. */
	snprintf(shop, sizeof(shop), "t%s.myshopify.com", id + 4);
	snprintf(body, sizeof(body), "{\"shop\": \"%s\"}", shop);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/config", body), 0);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     id, "--shop", shop, "--token", TOKEN, "--api-base",
	                     pv_fake_url(fake), "--json", NULL),
	    0);
	st = sync_json(id, "--status");
	ck_assert_str_eq(field(st, "pages"), "0");
	ck_assert_str_eq(field(st, "products"), "0");
	ck_assert_int_eq(count(PV_SQL("SELECT count(*) FROM catalog_batches b"
	                              " JOIN merchants m ON m.id ="
	                              " b.merchant_id WHERE m.public_id = $1"
	                              " AND b.state = 'staging'"),
	                     id),
	    0);
	/* The queued retry notices and walks the new store from the start. */
	run_all();
	st = sync_json(id, "--status");
	ck_assert_str_eq(field(st, "state"), "done");
	ck_assert_str_eq(field(st, "products"), "60");
	ck_assert_str_eq(field(st, "pages"), "3");
	ck_assert_int_eq(products_of(id, "active"), 60);
}
END_TEST

START_TEST(test_sync_unknown_merchant_is_404)
{
	char out[1024];

	ck_assert_int_eq(ctl(out, sizeof(out), "sync-products",
	                     "mer_0000000000000000", "--json", NULL),
	    1);
	ck_assert_int_eq(ctl(out, sizeof(out), "sync-products", "mer_x",
	                     "--status", "--wait", NULL),
	    2);
}
END_TEST

Suite *
sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *tc = tcase_create("sync");

	tcase_add_unchecked_fixture(tc, start_fake, stop_fake);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_sync_pages_commit_with_their_cursor);
	tcase_add_test(tc, test_sync_second_sync_changes_nothing);
	tcase_add_test(tc, test_sync_refused_token_fails_the_run);
	tcase_add_test(tc, test_sync_new_shop_drops_the_staged_batch);
	tcase_add_test(tc, test_sync_unknown_merchant_is_404);
	suite_add_tcase(s, tc);
	return s;
}
