/*
 * Database tests of pv_db and pv_migrate against the throwaway
 * PostgreSQL that tests/db/run.sh starts (PIVOTA_DATABASE_URL).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pv_config.h"
#include "pv_db.h"
#include "pv_migrate.h"
#include "pv_test.h"

static struct pv_config cfg;
static struct pv_ctx ctx;
static struct pv_ctx other; /* a second session, for the killer */

static const char *
url(void)
{
	const char *u = getenv("PIVOTA_DATABASE_URL");

	ck_assert_msg(u != NULL, "PIVOTA_DATABASE_URL is not set");
	return u;
}

static void
open_ctx(struct pv_ctx *c, const char *conninfo)
{
	memset(c, 0, sizeof(*c));
	c->cfg = &cfg;
	c->arena = pv_arena_new(0);
	c->db = pv_db_new(conninfo, "db_tests");
	c->now = time(NULL);
}

static void
close_ctx(struct pv_ctx *c)
{
	pv_arena_reset(c->arena);
	pv_db_free(c->db);
	pv_arena_free(c->arena);
}

static void
setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	open_ctx(&ctx, url());
	open_ctx(&other, url());
}

static void
teardown(void)
{
	close_ctx(&ctx);
	close_ctx(&other);
}

/*
 * Has the server end ctx's session (as a restart would), from the other
 * session; returns the killed backend's pid (static storage).
 */
static const char *
kill_session(void)
{
	static char pid[16];
	struct pv_err err = { 0 };
	const char *p[1];
	PGresult *res;

	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("SELECT pg_backend_pid()"), 0,
	                     NULL, &res, &err),
	    0);
	snprintf(pid, sizeof(pid), "%s", pv_db_get(res, 0, 0));
	p[0] = pid;
	ck_assert_int_eq(pv_db_exec(&other,
	                     PV_SQL("SELECT pg_terminate_backend($1::int)"), 1,
	                     p, &res, &err),
	    0);
	usleep(50000);
	return pid;
}

START_TEST(test_db_exec_params_and_results)
{
	struct pv_err err = { 0 };
	const char *p[2] = { "40", NULL };
	PGresult *res;

	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("SELECT $1::int + 2, $2::text"), 2, p, &res,
	                     &err),
	    0);
	ck_assert_int_eq(PQntuples(res), 1);
	ck_assert_str_eq(pv_db_get(res, 0, 0), "42");
	ck_assert_ptr_null(pv_db_get(res, 0, 1));
}
END_TEST

START_TEST(test_db_exec_injection_is_data)
{
	struct pv_err err = { 0 };
	const char *p[1] = { "x'); DROP TABLE schema_migrations; --" };
	PGresult *res;

	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("SELECT length($1)"), 1, p,
	                     &res, &err),
	    0);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("SELECT count(*) FROM schema_migrations"),
	                     0, NULL, &res, &err),
	    0);
}
END_TEST

START_TEST(test_db_exec_unique_violation_is_conflict)
{
	struct pv_err err = { 0 };

	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("CREATE TEMP TABLE u (k int PRIMARY KEY)"),
	                     0, NULL, NULL, &err),
	    0);
	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("INSERT INTO u VALUES (1)"), 0,
	                     NULL, NULL, &err),
	    0);
	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("INSERT INTO u VALUES (1)"), 0,
	                     NULL, NULL, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_CONFLICT);
	ck_assert_str_eq(pv_db_sqlstate(ctx.db), "23505");
	ck_assert_int_eq(pv_db_end(&ctx, 0, &err), -1);
	ck_assert(!pv_db_in_tx(ctx.db));
}
END_TEST

START_TEST(test_db_exec_syntax_error_is_db)
{
	struct pv_err err = { 0 };

	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("SELEC 1"), 0, NULL, NULL,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_DB);
	ck_assert_str_eq(pv_db_sqlstate(ctx.db), "42601");
}
END_TEST

START_TEST(test_db_exec_one_requires_a_row)
{
	struct pv_err err = { 0 };
	PGresult *res;

	ck_assert_int_eq(pv_db_exec_one(&ctx, PV_SQL("SELECT 1 WHERE false"), 0,
	                     NULL, &res, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_NOTFOUND);
}
END_TEST

/* The server killing our session between requests is invisible. */
START_TEST(test_db_exec_reconnects_after_backend_killed)
{
	struct pv_err err = { 0 };
	const char *p[1];
	PGresult *res;

	p[0] = kill_session();
	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("SELECT pg_backend_pid()"), 0,
	                     NULL, &res, &err),
	    0);
	ck_assert_str_ne(pv_db_get(res, 0, 0), p[0]);
}
END_TEST

/* Inside a transaction a lost session must fail, never silently retry. */
START_TEST(test_db_exec_lost_in_tx_is_unavailable)
{
	struct pv_err err = { 0 };
	PGresult *res;

	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	(void)kill_session();
	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("SELECT 1"), 0, NULL, &res,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_UNAVAILABLE);
	ck_assert_int_eq(pv_db_end(&ctx, 0, &err), -1);
	ck_assert(!pv_db_in_tx(ctx.db));
	pv_err_clear(&err);
	ck_assert_int_eq(pv_db_ping(&ctx, &err), 0);
}
END_TEST

/* A killed session is noticed by the cheap check without a query. */
/*
 * BEGIN travels with the transaction's first statement (one round
 * trip), and that statement really runs inside the transaction: on a
 * connection not yet open, prepared for the first time, after a
 * failure, and a transaction that ran nothing ends without a word.
 */
START_TEST(test_db_begin_goes_with_first_statement)
{
	struct pv_err err = { 0 };
	PGresult *res;

	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0); /* not connected yet */
	ck_assert(pv_db_in_tx(ctx.db));
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("CREATE TEMP TABLE lazy (k int PRIMARY KEY)"
	                            " ON COMMIT DROP"),
	                     0, NULL, NULL, &err),
	    0);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("SELECT now() = statement_timestamp()"), 0,
	                     NULL, &res, &err),
	    0);
	ck_assert_str_eq(pv_db_get(res, 0, 0), "f"); /* an older BEGIN */
	ck_assert_int_eq(pv_db_end(&ctx, 1, &err), 0);
	ck_assert(!pv_db_in_tx(ctx.db));
	/* ON COMMIT DROP: the table lived in that one transaction. */
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("SELECT to_regclass('pg_temp.lazy')"
	                            " IS NULL"),
	                     0, NULL, &res, &err),
	    0);
	ck_assert_str_eq(pv_db_get(res, 0, 0), "t");

	/* A first statement that fails: rolled back, and the session is fine.
	 */
	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("SELECT 1/0 AS lazy_fails"), 0,
	                     NULL, &res, &err),
	    -1);
	ck_assert_str_eq(pv_db_sqlstate(ctx.db), "22012");
	ck_assert_int_eq(pv_db_end(&ctx, 0, &err), -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("SELECT 2"), 0, NULL, &res,
	                     &err),
	    0);
	ck_assert_str_eq(pv_db_get(res, 0, 0), "2");

	/* Nothing ran: nothing to commit. */
	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	ck_assert_int_eq(pv_db_end(&ctx, 1, &err), 0);
	ck_assert(!pv_db_in_tx(ctx.db));
}
END_TEST

/*
 * The server closed the session between requests and a transaction
 * starts: its BEGIN and first statement go again on a new connection.
 */
START_TEST(test_db_begin_reconnects_before_first_statement)
{
	struct pv_err err = { 0 };
	PGresult *res;

	(void)kill_session();
	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("SELECT txid_current_if_assigned() IS NULL,"
	                            " txid_current() IS NOT NULL"),
	                     0, NULL, &res, &err),
	    0);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("SELECT txid_current_if_assigned()"
	                            " IS NOT NULL"),
	                     0, NULL, &res, &err),
	    0);
	ck_assert_str_eq(pv_db_get(res, 0, 0), "t"); /* same transaction */
	ck_assert_int_eq(pv_db_end(&ctx, 1, &err), 0);
}
END_TEST

/*
 * A deferred statement runs last, with the COMMIT; is dropped by a
 * rollback; and when it fails the commit fails and nothing of the
 * transaction stays.
 */
START_TEST(test_db_defer_goes_with_commit)
{
	struct pv_err err = { 0 };
	const char *p[1];
	PGresult *res;

	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("CREATE TEMP TABLE d (k int PRIMARY KEY)"),
	                     0, NULL, NULL, &err),
	    0);
	ck_assert_int_eq(pv_db_defer(&ctx, PV_SQL("INSERT INTO d VALUES (1)"),
	                     0, NULL, &err),
	    -1); /* outside a transaction */
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);

	/* Only a deferred statement: BEGIN, it and COMMIT in one go. */
	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	p[0] = "1";
	ck_assert_int_eq(pv_db_defer(&ctx,
	                     PV_SQL("INSERT INTO d VALUES ($1::int)"), 1, p,
	                     &err),
	    0);
	ck_assert_int_eq(pv_db_end(&ctx, 1, &err), 0);

	/* After other statements; the parameter was copied. */
	char two[2] = "2";
	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("INSERT INTO d VALUES (3)"), 0,
	                     NULL, NULL, &err),
	    0);
	p[0] = two;
	ck_assert_int_eq(pv_db_defer(&ctx,
	                     PV_SQL("INSERT INTO d VALUES ($1::int)"), 1, p,
	                     &err),
	    0);
	two[0] = '9';
	ck_assert_int_eq(pv_db_end(&ctx, 1, &err), 0);

	/* Rolled back: neither happened. */
	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("INSERT INTO d VALUES (4)"), 0,
	                     NULL, NULL, &err),
	    0);
	p[0] = "5";
	ck_assert_int_eq(pv_db_defer(&ctx,
	                     PV_SQL("INSERT INTO d VALUES ($1::int)"), 1, p,
	                     &err),
	    0);
	ck_assert_int_eq(pv_db_end(&ctx, 0, &err), -1);

	/* The deferred one fails: the commit fails, 6 is not kept. */
	pv_err_clear(&err);
	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("INSERT INTO d VALUES (6)"), 0,
	                     NULL, NULL, &err),
	    0);
	p[0] = "1"; /* a duplicate key */
	ck_assert_int_eq(pv_db_defer(&ctx,
	                     PV_SQL("INSERT INTO d VALUES ($1::int)"), 1, p,
	                     &err),
	    0);
	ck_assert_int_eq(pv_db_end(&ctx, 1, &err), -1);
	ck_assert_int_eq(err.code, PV_E_CONFLICT);
	ck_assert(!pv_db_in_tx(ctx.db));

	pv_err_clear(&err);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("SELECT string_agg(k::text, ',' ORDER BY k)"
	                            " FROM d"),
	                     0, NULL, &res, &err),
	    0);
	ck_assert_str_eq(pv_db_get(res, 0, 0), "1,2,3");
}
END_TEST

START_TEST(test_db_alive_notices_killed_session)
{
	struct pv_err err = { 0 };
	const char *p[1];
	PGresult *res;

	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("SELECT pg_backend_pid()"), 0,
	                     NULL, &res, &err),
	    0);
	p[0] = pv_db_get(res, 0, 0);
	ck_assert_int_eq(pv_db_alive(&ctx, 60, &err), 0);
	ck_assert_int_eq(pv_db_exec(&other,
	                     PV_SQL("SELECT pg_terminate_backend($1::int)"), 1,
	                     p, &res, &err),
	    0);
	usleep(50000);
	ck_assert_int_eq(pv_db_alive(&ctx, 60, &err), 0);
	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("SELECT pg_backend_pid()"), 0,
	                     NULL, &res, &err),
	    0);
	ck_assert_str_ne(pv_db_get(res, 0, 0), p[0]);
}
END_TEST

START_TEST(test_db_ping_unreachable_is_unavailable)
{
	struct pv_err err = { 0 };
	struct pv_ctx c;

	open_ctx(&c, "host=127.0.0.1 port=1 connect_timeout=1");
	ck_assert_int_eq(pv_db_ping(&c, &err), -1);
	ck_assert_int_eq(err.code, PV_E_UNAVAILABLE);
	/* The second attempt within a second fails fast. */
	pv_err_clear(&err);
	ck_assert_int_eq(pv_db_ping(&c, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "retrying"));
	close_ctx(&c);
}
END_TEST

static int
flaky(struct pv_ctx *c, void *arg, struct pv_err *err)
{
	int *calls = arg;

	if (++*calls < 3)
		return pv_db_exec(c,
		    PV_SQL("DO $$ BEGIN RAISE EXCEPTION 'conflict' "
		           "USING ERRCODE = 'serialization_failure'; END $$"),
		    0, NULL, NULL, err);
	return pv_db_exec(c, PV_SQL("SELECT 1"), 0, NULL, NULL, err);
}

START_TEST(test_db_tx_retries_serialization_failures)
{
	struct pv_err err = { 0 };
	int calls = 0;

	ck_assert_int_eq(pv_db_tx(&ctx, flaky, &calls, &err), 0);
	ck_assert_int_eq(calls, 3);
	ck_assert(!pv_db_in_tx(ctx.db));
}
END_TEST

static int
always_conflict(struct pv_ctx *c, void *arg, struct pv_err *err)
{
	(*(int *)arg)++;
	return pv_db_exec(c,
	    PV_SQL("DO $$ BEGIN RAISE EXCEPTION 'deadlock' "
	           "USING ERRCODE = 'deadlock_detected'; END $$"),
	    0, NULL, NULL, err);
}

START_TEST(test_db_tx_gives_up_after_five)
{
	struct pv_err err = { 0 };
	int calls = 0;

	ck_assert_int_eq(pv_db_tx(&ctx, always_conflict, &calls, &err), -1);
	ck_assert_int_eq(calls, 5);
	ck_assert_int_eq(err.code, PV_E_DB);
}
END_TEST

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	ck_assert_int_gt(snprintf(path, sizeof(path), "%s/%s", dir, name), 0);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Migrations apply once, in order, atomically; edits are refused. */
START_TEST(test_db_migrate_applies_once_and_refuses_edits)
{
	struct pv_err err = { 0 };
	char dir[] = "/tmp/pv_mig_XXXXXX", *conninfo;
	struct pv_ctx m;
	PGresult *res;
	int applied;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(pv_db_script(&ctx,
	                     "DROP DATABASE IF EXISTS pv_migtest; "
	                     "CREATE DATABASE pv_migtest",
	                     &err),
	    -1); /* two statements in one script run as one transaction */
	pv_err_clear(&err);
	ck_assert_int_eq(pv_db_script(&ctx,
	                     "DROP DATABASE IF EXISTS pv_migtest", &err),
	    0);
	ck_assert_int_eq(pv_db_script(&ctx, "CREATE DATABASE pv_migtest", &err),
	    0);
	conninfo = pv_arena_printf(ctx.arena, &err, "%s%sdbname=pv_migtest",
	    url(), strchr(url(), '?') != NULL ? "&" : "?");
	open_ctx(&m, conninfo);

	write_file(dir, "0001_a.sql", "CREATE TABLE a (x int);\n");
	write_file(dir, "0002_b.sql", "INSERT INTO a VALUES (1), (2);\n");
	write_file(dir, "README", "not a migration");
	ck_assert_msg(pv_migrate_run(&m, dir, NULL, &applied, &err) == 0, "%s",
	    err.msg);
	ck_assert_int_eq(applied, 2);
	ck_assert_int_eq(pv_migrate_run(&m, dir, NULL, &applied, &err), 0);
	ck_assert_int_eq(applied, 0);

	/* A failing migration leaves nothing behind. */
	write_file(dir, "0003_c.sql",
	    "INSERT INTO a VALUES (3);\nSELECT no_such_function();\n");
	ck_assert_int_eq(pv_migrate_run(&m, dir, NULL, &applied, &err), -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_db_exec(&m, PV_SQL("SELECT count(*) FROM a"), 0,
	                     NULL, &res, &err),
	    0);
	ck_assert_str_eq(pv_db_get(res, 0, 0), "2");

	/* Editing an applied migration stops the run. */
	write_file(dir, "0003_c.sql", "INSERT INTO a VALUES (3);\n");
	write_file(dir, "0001_a.sql", "CREATE TABLE a (x bigint);\n");
	ck_assert_int_eq(pv_migrate_run(&m, dir, NULL, &applied, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_ptr_nonnull(strstr(err.msg, "edited"));

	/* A badly named file is refused. */
	pv_err_clear(&err);
	write_file(dir, "0001_a.sql", "CREATE TABLE a (x int);\n");
	write_file(dir, "4_bad.sql", "SELECT 1;\n");
	ck_assert_int_eq(pv_migrate_run(&m, dir, NULL, &applied, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "NNNN"));

	close_ctx(&m);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_db_script(&ctx, "DROP DATABASE pv_migtest", &err),
	    0);
	ck_assert_int_eq(system("rm -rf /tmp/pv_mig_*"), 0);
}
END_TEST

Suite *
db_suite(void)
{
	Suite *s = suite_create("db");
	TCase *tc = tcase_create("exec");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_db_exec_params_and_results);
	tcase_add_test(tc, test_db_exec_injection_is_data);
	tcase_add_test(tc, test_db_exec_unique_violation_is_conflict);
	tcase_add_test(tc, test_db_exec_syntax_error_is_db);
	tcase_add_test(tc, test_db_exec_one_requires_a_row);
	tcase_add_test(tc, test_db_exec_reconnects_after_backend_killed);
	tcase_add_test(tc, test_db_exec_lost_in_tx_is_unavailable);
	tcase_add_test(tc, test_db_begin_goes_with_first_statement);
	tcase_add_test(tc, test_db_begin_reconnects_before_first_statement);
	tcase_add_test(tc, test_db_defer_goes_with_commit);
	tcase_add_test(tc, test_db_alive_notices_killed_session);
	tcase_add_test(tc, test_db_ping_unreachable_is_unavailable);
	tcase_add_test(tc, test_db_tx_retries_serialization_failures);
	tcase_add_test(tc, test_db_tx_gives_up_after_five);
	tcase_add_test(tc, test_db_migrate_applies_once_and_refuses_edits);
	suite_add_tcase(s, tc);
	return s;
}
