/*
 * Agent events (migrations/0012_agent_events.sql, lib/pv_agent_events.c)
 * against the throwaway PostgreSQL: events and their delivery jobs are
 * written in the transaction of the order change and vanish with its
 * rollback; order events map to agent events with a gapless per-order
 * sequence; one job per (event, endpoint) subscribed; the agent.webhook
 * job posts a signed event to a loopback receiver (tests/support
 * pv_testsrv), keeps an order's events in sequence per endpoint, and
 * drops deliveries to deleted endpoints.  Jobs commit, so setup and
 * teardown empty the jobs table as the queue tests do, and every test
 * makes its own merchant, agent and orders.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "pv_agent_events.h"
#include "pv_config.h"
#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_job.h"
#include "pv_sig.h"
#include "pv_test.h"
#include "pv_testsrv.h"
#include "pv_worker.h"

#define KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static struct pv_config cfg;
static struct pv_ctx ctx;
static int seq;

/* One test's world: internal ids as decimal text unless said. */
struct world {
	char mid[24];    /* merchants.id */
	char aid[24];    /* agents.id */
	char item[1024]; /* one order line, JSON */
	char oid[24];    /* orders.id of the last order */
	char order[24];  /* its public id */
	int norders;     /* orders made so far */
};

static PGresult *
run(const char *sql, int n, const char *const *params)
{
	struct pv_err err = { 0 };
	PGresult *res;

	ck_assert_msg(pv_db_exec(&ctx, sql, n, params, &res, &err) == 0,
	    "%s: %s", sql, err.msg);
	return res;
}

static const char *
one(PGresult *res)
{
	ck_assert_int_eq(PQntuples(res), 1);
	return PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0);
}

static long
num(PGresult *res)
{
	return strtol(one(res), NULL, 10);
}

static void
setup(void)
{
	struct pv_err err = { 0 };

	setenv("PIVOTA_MASTER_KEY", KEY, 1);
	setenv("PIVOTA_ENV", "test", 1);
	ck_assert_msg(pv_ctx_open(&ctx, "db_tests", &cfg, &err) == 0, "%s",
	    err.msg);
	run(PV_SQL("DELETE FROM jobs"), 0, NULL);
}

/*
 * Removes what the test committed (merchants and agents named by this
 * process, and all that hangs on them), so suites that count catalog
 * rows see an empty database.
 */
static void
teardown(void)
{
	char like[32];
	const char *p[1] = { like };

	snprintf(like, sizeof(like), "%%_%08x%%", (unsigned)getpid());
	run(PV_SQL("DELETE FROM jobs"), 0, NULL);
	run(PV_SQL("DELETE FROM payments WHERE merchant_id IN (SELECT id FROM"
	           " merchants WHERE public_id LIKE $1)"),
	    1, p);
	run(PV_SQL("DELETE FROM orders WHERE merchant_id IN (SELECT id FROM"
	           " merchants WHERE public_id LIKE $1)"),
	    1, p);
	run(PV_SQL("DELETE FROM variants WHERE merchant_id IN (SELECT id FROM"
	           " merchants WHERE public_id LIKE $1)"),
	    1, p);
	run(PV_SQL("DELETE FROM products WHERE merchant_id IN (SELECT id FROM"
	           " merchants WHERE public_id LIKE $1)"),
	    1, p);
	run(PV_SQL("DELETE FROM merchants WHERE public_id LIKE $1"), 1, p);
	run(PV_SQL("DELETE FROM agents WHERE public_id LIKE $1"), 1, p);
	pv_ctx_close(&ctx, &cfg);
}

/* A merchant with one variant, and an agent. */
static void
world_new(struct world *w)
{
	const char *p[3];
	char m[32], a[32], email[96];
	PGresult *res;

	memset(w, 0, sizeof(*w));
	seq++;
	snprintf(m, sizeof(m), "mer_%08x%08x", (unsigned)getpid(),
	    (unsigned)seq);
	snprintf(a, sizeof(a), "agt_%08x%08x", (unsigned)getpid(),
	    (unsigned)seq);
	snprintf(email, sizeof(email), "evt-%d-%ld@example.com", seq,
	    (long)getpid());
	p[0] = m;
	p[1] = email;
	snprintf(w->mid, sizeof(w->mid), "%s",
	    one(run(PV_SQL("INSERT INTO merchants (public_id, business_name,"
	                   " email) VALUES ($1, 'Events shop', $2)"
	                   " RETURNING id"),
	        2, p)));
	p[0] = a;
	snprintf(w->aid, sizeof(w->aid), "%s",
	    one(run(PV_SQL("INSERT INTO agents (public_id, name)"
	                   " VALUES ($1, 'events agent') RETURNING id"),
	        1, p)));
	p[0] = w->mid;
	res = run(
	    PV_SQL("WITH pr AS (INSERT INTO products (public_id, merchant_id,"
	           "  handle, title, currency, currency_exponent)"
	           " SELECT 'prod_' || substr(md5(random()::text), 1, 16),"
	           "  $1::bigint, 'p-' || substr(md5(random()::text), 1, 12),"
	           "  'Mug', 'USD', 2 RETURNING id, public_id),"
	           " v AS (INSERT INTO variants (public_id, product_id,"
	           "  merchant_id, sku, title, price_minor, inventory_quantity)"
	           " SELECT 'var_' || substr(md5(random()::text), 1, 16),"
	           "  pr.id, $1::bigint, 'MUG', 'Blue', 1000, 50 FROM pr"
	           " RETURNING id, public_id, product_id)"
	           " SELECT jsonb_build_object('variant_id', v.id,"
	           "  'product_id', v.product_id, 'product_public_id',"
	           "  pr.public_id, 'variant_public_id', v.public_id,"
	           "  'title', 'Mug', 'variant_title', 'Blue', 'sku', 'MUG',"
	           "  'quantity', 1, 'unit_price_minor', 1000)::text"
	           " FROM v, pr"),
	    1, p);
	snprintf(w->item, sizeof(w->item), "[%s]", one(res));
}

/* A webhook endpoint of the agent for events (a text[] literal). */
static void
webhook_new(struct world *w, const char *url, const char *events, char *id,
    size_t idsize, char *secret, size_t secsize)
{
	struct pv_err err = { 0 };
	const char *sealed, *tok, *sec, *p[5];

	ck_assert(pv_crypto_token(ctx.arena, "wh_", 8, &tok, &err) == 0);
	ck_assert(pv_crypto_token(ctx.arena, "whsec_", 32, &sec, &err) == 0);
	ck_assert(pv_crypto_seal(ctx.arena, cfg.master_key, tok, strlen(tok),
	              sec, strlen(sec), &sealed, &err) == 0);
	snprintf(id, idsize, "%s", tok);
	if (secret != NULL)
		snprintf(secret, secsize, "%s", sec);
	p[0] = tok;
	p[1] = w->aid;
	p[2] = url;
	p[3] = events;
	p[4] = sealed;
	run(PV_SQL("INSERT INTO agent_webhooks (public_id, agent_id, url,"
	           " events, secret_sealed)"
	           " VALUES ($1, $2::bigint, $3, $4::text[], $5)"),
	    5, p);
}

/* A pending order of the world's line. */
static void
order_new(struct world *w)
{
	const char *p[4];
	PGresult *res;

	w->norders++;
	snprintf(w->order, sizeof(w->order), "ORD_%08X%04X%04X",
	    (unsigned)getpid(), (unsigned)seq, (unsigned)w->norders);
	p[0] = w->order;
	p[1] = w->mid;
	p[2] = w->aid;
	p[3] = w->item;
	res = run(PV_SQL("SELECT result, order_id FROM pv_order_insert($1,"
	                 " $2::bigint, $3::bigint, 'USD', 2::smallint,"
	                 " 1000, 500, 0, 'ada@example.com',"
	                 " '{\"name\": \"Ada\", \"address_line1\": \"1 Main\","
	                 " \"city\": \"Ottawa\", \"postal_code\": \"K1A\","
	                 " \"country\": \"CA\"}', '{}', '', 'sandbox', 3600,"
	                 " $4::jsonb)"),
	    4, p);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "ok");
	snprintf(w->oid, sizeof(w->oid), "%s", PQgetvalue(res, 0, 1));
}

/* Pays the last order through the settle path (status, e.g. failed). */
static void
order_settle(struct world *w, const char *status)
{
	char pay[32];
	const char *p[2] = { w->oid, pay };
	PGresult *res;

	snprintf(pay, sizeof(pay), "pay_%08x%08x%04x%04x", (unsigned)getpid(),
	    (unsigned)seq, (unsigned)w->norders, (unsigned)(rand() & 0xffff));
	res = run(PV_SQL("SELECT payment_id FROM pv_payment_begin($1::bigint,"
	                 " $2, 'tok_' || $2, NULL)"),
	    2, p);
	p[0] = one(res);
	p[1] = status;
	run(PV_SQL("SELECT pv_payment_settle($1::bigint, $2, 'ref_' || $1,"
	           " NULL, NULL, NULL, NULL)"),
	    2, p);
}

/* The last order's agent events as "seq:type" joined by spaces. */
static const char *
events_of(const struct world *w)
{
	const char *p[1] = { w->oid };

	return one(run(PV_SQL("SELECT coalesce(string_agg(seq || ':' || type"
	                      " || coalesce(':' || (detail ->> 'is_partial'),"
	                      " ''), ' ' ORDER BY seq), '')"
	                      " FROM agent_events WHERE order_id = $1::bigint"),
	    1, p));
}

/* Delivery jobs of the last order's events to endpoint wh. */
static long
jobs_for(const struct world *w, const char *wh)
{
	const char *p[2] = { w->oid, wh };

	return num(run(PV_SQL("SELECT count(*) FROM jobs j JOIN agent_events e"
	                      " ON j.dedup_key = pv_agent_webhook_key("
	                      "  e.public_id, $2)"
	                      " WHERE e.order_id = $1::bigint"
	                      " AND j.kind = 'agent.webhook'"
	                      " AND j.payload ->> 'webhook' = $2"
	                      " AND j.payload ->> 'event' = e.public_id"),
	    2, p));
}

START_TEST(test_agent_events_written_with_the_change)
{
	struct world w;
	char all[32], paid[32], gone[32];
	const char *p[1];

	world_new(&w);
	webhook_new(&w, "https://agent.example/all",
	    "{order.created,"
	    "order.paid,order.payment_failed,order.processing,order.shipped,"
	    "order.delivered,order.cancelled,order.refunded}",
	    all, sizeof(all), NULL, 0);
	webhook_new(&w, "https://agent.example/paid", "{order.paid}", paid,
	    sizeof(paid), NULL, 0);
	webhook_new(&w, "https://agent.example/gone", "{order.created}", gone,
	    sizeof(gone), NULL, 0);
	p[0] = gone;
	run(PV_SQL("UPDATE agent_webhooks SET deleted_at = now()"
	           " WHERE public_id = $1"),
	    1, p);

	/* Rolled back: no event, no job. */
	run(PV_SQL("BEGIN"), 0, NULL);
	order_new(&w);
	ck_assert_str_eq(events_of(&w), "1:order.created");
	ck_assert_int_eq(jobs_for(&w, all), 1);
	run(PV_SQL("ROLLBACK"), 0, NULL);
	ck_assert_str_eq(events_of(&w), "");
	ck_assert_int_eq(num(run(PV_SQL("SELECT count(*) FROM jobs"), 0, NULL)),
	    0);

	/* Committed: each subscribed live endpoint gets one job per event. */
	order_new(&w);
	order_settle(&w, "succeeded");
	ck_assert_str_eq(events_of(&w), "1:order.created 2:order.paid");
	ck_assert_int_eq(jobs_for(&w, all), 2);
	ck_assert_int_eq(jobs_for(&w, paid), 1);
	ck_assert_int_eq(jobs_for(&w, gone), 0);
	ck_assert_int_eq(num(run(PV_SQL("SELECT count(*) FROM jobs WHERE"
	                                " max_attempts ="
	                                " pv_agent_webhook_attempts()"),
	                     0, NULL)),
	    3);
}
END_TEST

START_TEST(test_agent_events_mapping_and_gapless_seq)
{
	struct world w;
	const char *p[1];

	world_new(&w);
	order_new(&w);
	order_settle(&w, "failed");
	order_settle(&w, "succeeded");
	p[0] = w.oid;
	/* Shipping changes both machines: one agent event, not two. */
	run(PV_SQL("UPDATE orders SET status = 'shipped',"
	           " fulfillment_status = 'shipped' WHERE id = $1::bigint"),
	    1, p);
	run(PV_SQL(
	        "UPDATE orders SET status = 'partially_refunded',"
	        " payment_status = 'partially_refunded', refunded_minor = 100"
	        " WHERE id = $1::bigint"),
	    1, p);
	run(PV_SQL("UPDATE orders SET status = 'refunded',"
	           " payment_status = 'refunded', refunded_minor = total_minor"
	           " WHERE id = $1::bigint"),
	    1, p);
	ck_assert_str_eq(events_of(&w),
	    "1:order.created 2:order.payment_failed 3:order.paid"
	    " 4:order.shipped 5:order.refunded:true 6:order.refunded:false");
	/* order_events has more (payment.*, fulfillment.*): they are not. */
	ck_assert_int_gt(num(run(PV_SQL("SELECT count(*) FROM order_events"
	                                " WHERE order_id = $1::bigint"),
	                     1, p)),
	    6);

	order_new(&w);
	p[0] = w.oid;
	run(PV_SQL("SELECT pv_order_cancel($1::bigint, 'test')"), 1, p);
	ck_assert_str_eq(events_of(&w), "1:order.created 2:order.cancelled");
}
END_TEST

START_TEST(test_agent_events_one_job_per_event_and_endpoint)
{
	struct world w;
	struct pv_err err = { 0 };
	char wh[32];
	const char *p[2];
	const char *key;

	world_new(&w);
	webhook_new(&w, "https://agent.example/x", "{order.created}", wh,
	    sizeof(wh), NULL, 0);
	order_new(&w);
	ck_assert_int_eq(jobs_for(&w, wh), 1);
	p[0] = w.oid;
	p[1] = wh;
	key = one(run(PV_SQL("SELECT pv_agent_webhook_key(public_id, $2)"
	                     " FROM agent_events WHERE order_id = $1::bigint"),
	    2, p));
	/* The same delivery queued again (a replayed trigger, a bug): none. */
	ck_assert_int_eq(pv_job_enqueue_max(&ctx, PV_AGENT_WEBHOOK_KIND, NULL,
	                     key, 0, 5, &err),
	    0);
	ck_assert_int_eq(jobs_for(&w, wh), 1);
	ck_assert_int_eq(num(run(PV_SQL("SELECT count(*) FROM jobs"), 0, NULL)),
	    1);
}
END_TEST

/* Makes the delivery of the last order's event seq due now, and the
 * order's other deliveries due in an hour, so run_job() takes it. */
static void
due_only(const struct world *w, const char *wh, int s)
{
	char sq[16];
	const char *p[3] = { w->oid, wh, sq };

	snprintf(sq, sizeof(sq), "%d", s);
	run(PV_SQL("UPDATE jobs j SET run_at = CASE WHEN e.seq = $3::int"
	           " THEN now() - interval '1 second'"
	           " ELSE now() + interval '1 hour' END"
	           " FROM agent_events e WHERE e.order_id = $1::bigint"
	           " AND j.dedup_key = pv_agent_webhook_key(e.public_id, $2)"
	           " AND j.state = 'queued'"),
	    3, p);
}

/* Runs one due job; its outcome's state. */
static const char *
run_job(const struct world *w, const char *wh, int s)
{
	struct pv_err err = { 0 };
	struct pv_job_opts o;
	char sq[16];
	const char *p[3] = { w->oid, wh, sq };
	int did;

	pv_job_opts_init(&o);
	o.worker_id = "events-test";
	ck_assert_msg(pv_job_run_once(&ctx, pv_worker_handlers,
	                  pv_worker_nhandlers, &o, &did, &err) == 0,
	    "%s", err.msg);
	ck_assert_int_eq(did, 1);
	snprintf(sq, sizeof(sq), "%d", s);
	return one(run(PV_SQL("SELECT j.state || ':' || coalesce(j.last_error,"
	                      " '') FROM jobs j JOIN agent_events e ON"
	                      " j.dedup_key = pv_agent_webhook_key(e.public_id,"
	                      "  $2) WHERE e.order_id = $1::bigint"
	                      " AND e.seq = $3::int"),
	    3, p));
}

/* Checks request i of srv is event seq s of the order, signed. */
static void
check_delivery(struct pv_testsrv *srv, size_t i, const char *secret,
    const struct world *w, int s, const char *type)
{
	const struct pv_testsrv_req *r = pv_testsrv_req(srv, i);
	const char *secrets[2] = { secret, NULL };
	struct json_object *o, *v;
	struct pv_err err = { 0 };

	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->method, "POST");
	ck_assert_str_eq(pv_testsrv_header(r, "Content-Type"),
	    "application/json");
	ck_assert_msg(pv_sig_stripe_verify(pv_testsrv_header(r,
	                                       "Pivota-Signature"),
	                  secrets, r->body, r->bodylen, (int64_t)time(NULL),
	                  PV_SIG_STRIPE_TOLERANCE, &err) == 0,
	    "signature: %s", err.msg);
	o = json_tokener_parse(r->body);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "seq", &v));
	ck_assert_int_eq(json_object_get_int(v), s);
	ck_assert(json_object_object_get_ex(o, "type", &v));
	ck_assert_str_eq(json_object_get_string(v), type);
	ck_assert(json_object_object_get_ex(o, "order_id", &v));
	ck_assert_str_eq(json_object_get_string(v), w->order);
	ck_assert(json_object_object_get_ex(o, "id", &v));
	ck_assert_str_eq(json_object_get_string(v),
	    pv_testsrv_header(r, "Pivota-Event-Id"));
	ck_assert(json_object_object_get_ex(o, "data", &v));
	ck_assert(json_object_object_get_ex(v, "order", &v));
	ck_assert(json_object_object_get_ex(v, "order_id", &v));
	ck_assert_str_eq(json_object_get_string(v), w->order);
	json_object_put(o);
}

START_TEST(test_agent_events_delivery_keeps_order_sequence)
{
	static const struct pv_testsrv_resp fail = { .status = 500 };
	static const struct pv_testsrv_resp ok = { .status = 204 };
	struct pv_testsrv *srv = pv_testsrv_start();
	struct world w;
	char wh[32], secret[96], url[128];
	const char *st;

	ck_assert_ptr_nonnull(srv);
	pv_testsrv_set_default(srv, &fail);
	world_new(&w);
	snprintf(url, sizeof(url), "%s/hook", pv_testsrv_url(srv));
	webhook_new(&w, url, "{order.created,order.paid}", wh, sizeof(wh),
	    secret, sizeof(secret));
	order_new(&w);
	order_settle(&w, "succeeded");
	ck_assert_int_eq(jobs_for(&w, wh), 2);

	/* seq 1 fails at the receiver: queued again. */
	due_only(&w, wh, 1);
	st = run_job(&w, wh, 1);
	ck_assert_msg(strncmp(st, "queued:", 7) == 0 &&
	        strstr(st, "answered 500") != NULL,
	    "%s", st);
	ck_assert_int_eq(pv_testsrv_nreq(srv), 1);

	/* seq 2 is due, but seq 1 still waits: not sent. */
	due_only(&w, wh, 2);
	st = run_job(&w, wh, 2);
	ck_assert_msg(strncmp(st, "queued:", 7) == 0 &&
	        strstr(st, "earlier event") != NULL,
	    "%s", st);
	ck_assert_int_eq(pv_testsrv_nreq(srv), 1);

	/* The receiver recovers: seq 1, then seq 2. */
	pv_testsrv_set_default(srv, &ok);
	due_only(&w, wh, 1);
	st = run_job(&w, wh, 1);
	ck_assert_msg(strncmp(st, "done:", 5) == 0, "%s", st);
	due_only(&w, wh, 2);
	st = run_job(&w, wh, 2);
	ck_assert_msg(strncmp(st, "done:", 5) == 0, "%s", st);
	ck_assert_int_eq(pv_testsrv_nreq(srv), 3);
	check_delivery(srv, 0, secret, &w, 1, "order.created");
	check_delivery(srv, 1, secret, &w, 1, "order.created");
	check_delivery(srv, 2, secret, &w, 2, "order.paid");
	pv_testsrv_stop(srv);
}
END_TEST

START_TEST(test_agent_events_deleted_endpoint_dropped)
{
	static const struct pv_testsrv_resp ok = { .status = 200 };
	struct pv_testsrv *srv = pv_testsrv_start();
	struct world w;
	char wh[32], url[128];
	const char *p[1];

	ck_assert_ptr_nonnull(srv);
	pv_testsrv_set_default(srv, &ok);
	world_new(&w);
	snprintf(url, sizeof(url), "%s/hook", pv_testsrv_url(srv));
	webhook_new(&w, url, "{order.created}", wh, sizeof(wh), NULL, 0);
	order_new(&w);
	p[0] = wh;
	run(PV_SQL("UPDATE agent_webhooks SET deleted_at = now()"
	           " WHERE public_id = $1"),
	    1, p);
	due_only(&w, wh, 1);
	ck_assert_str_eq(run_job(&w, wh, 1), "done:");
	ck_assert_int_eq(pv_testsrv_nreq(srv), 0);
	pv_testsrv_stop(srv);
}
END_TEST

Suite *
agent_events_suite(void)
{
	Suite *s = suite_create("agent_events");
	TCase *tc = tcase_create("agent_events");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_agent_events_written_with_the_change);
	tcase_add_test(tc, test_agent_events_mapping_and_gapless_seq);
	tcase_add_test(tc, test_agent_events_one_job_per_event_and_endpoint);
	tcase_add_test(tc, test_agent_events_delivery_keeps_order_sequence);
	tcase_add_test(tc, test_agent_events_deleted_endpoint_dropped);
	suite_add_tcase(s, tc);
	return s;
}
