/*
 * Database tests of orders and payments (migrations/0009_orders.sql):
 * the transition trigger refuses illegal changes with SQLSTATE PV409,
 * every change appends an order event with a growing sequence, two
 * sessions racing for the last unit cannot both win, the settle path
 * (pv_payment_settle() in C, the SQL function underneath) ignores a
 * repeated or late outcome, and pv_order_expire() cancels an expired
 * unpaid order and gives its stock back.
 *
 * Rows are committed (the race needs two sessions to see them), so
 * every test makes its own merchant, agent and product with ids no
 * other test uses; nothing here counts rows it did not make.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pv_config.h"
#include "pv_db.h"
#include "pv_order.h"
#include "pv_payment.h"
#include "pv_psp.h"
#include "pv_test.h"

static struct pv_config cfg;
static struct pv_ctx ctx;
static struct pv_ctx other; /* a second session */

/* What one test bought from: internal ids as text. */
struct shop {
	char merchant[24], agent[24], product[24], variant[24];
	char product_public[32], variant_public[32];
};

static const char *
url(void)
{
	const char *u = getenv("PIVOTA_DATABASE_URL");

	ck_assert_msg(u != NULL, "PIVOTA_DATABASE_URL is not set");
	return u;
}

static void
open_ctx(struct pv_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->cfg = &cfg;
	c->arena = pv_arena_new(0);
	c->db = pv_db_new(url(), "db_tests");
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
	open_ctx(&ctx);
	open_ctx(&other);
}

static void
teardown(void)
{
	close_ctx(&ctx);
	close_ctx(&other);
}

/* Runs q with n params on c; the result, failing the test on error. */
static PGresult *
run(struct pv_ctx *c, const char *q, int n, const char *const *p)
{
	struct pv_err err = { 0 };
	PGresult *res;

	ck_assert_msg(pv_db_exec(c, q, n, p, &res, &err) == 0, "%s: %s", q,
	    err.msg);
	return res;
}

/* The one value of a one-row, one-column result, or "" for NULL. */
static const char *
value(PGresult *res)
{
	ck_assert_int_eq(PQntuples(res), 1);
	return PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0);
}

static void
copy(char *dst, size_t size, const char *src)
{
	ck_assert_int_lt(snprintf(dst, size, "%s", src), (int)size);
}

/* 16 lowercase hex digits no other test of this run uses. */
static void
unique_hex(char *out, size_t size)
{
	static unsigned seq;

	snprintf(out, size, "%08x%08x", (unsigned)getpid(),
	    (unsigned)time(NULL) * 64u + seq++);
}

/* A merchant selling one variant at price (USD cents) with stock. */
static void
shop_make(struct shop *s, const char *price, const char *stock)
{
	char hx[24], mer[32], agt[32], email[64];
	const char *p[6];

	unique_hex(hx, sizeof(hx));
	snprintf(mer, sizeof(mer), "mer_%s", hx);
	snprintf(agt, sizeof(agt), "agt_%s", hx);
	snprintf(email, sizeof(email), "orders-%s@test.example", hx);
	snprintf(s->product_public, sizeof(s->product_public), "prod_%s", hx);
	snprintf(s->variant_public, sizeof(s->variant_public), "var_%s", hx);
	p[0] = mer;
	p[1] = email;
	copy(s->merchant, sizeof(s->merchant),
	    value(run(&ctx,
	        PV_SQL("INSERT INTO merchants (public_id, business_name, email)"
	               " VALUES ($1, 'Orders test', $2) RETURNING id"),
	        2, p)));
	p[0] = agt;
	copy(s->agent, sizeof(s->agent),
	    value(run(&ctx,
	        PV_SQL("INSERT INTO agents (public_id, name) VALUES ($1,"
	               " 'orders test') RETURNING id"),
	        1, p)));
	p[0] = s->merchant;
	p[1] = s->product_public;
	p[2] = price;
	copy(s->product, sizeof(s->product),
	    value(run(&ctx,
	        PV_SQL("INSERT INTO products (public_id, merchant_id, handle,"
	               " title, currency, currency_exponent, price_minor)"
	               " VALUES ($2, $1::bigint, 'thing', 'Thing', 'USD', 2,"
	               " $3::bigint) RETURNING id"),
	        3, p)));
	p[0] = s->merchant;
	p[1] = s->product;
	p[2] = s->variant_public;
	p[3] = price;
	p[4] = stock;
	copy(s->variant, sizeof(s->variant),
	    value(run(&ctx,
	        PV_SQL(
	            "INSERT INTO variants (public_id, product_id, merchant_id,"
	            " title, sku, price_minor, inventory_quantity)"
	            " VALUES ($3, $2::bigint, $1::bigint, 'Default', 'T-1',"
	            " $4::bigint, $5::int) RETURNING id"),
	        5, p)));
}

/*
 * pv_order_insert() for quantity units of the shop's variant at the
 * catalog price, on session c: its result ("ok", "out_of_stock",
 * "price_changed"), and the order's internal id in id (size 24) if ok.
 */
static const char *
order_insert(struct pv_ctx *c, const struct shop *s, int quantity,
    const char *price, char *id)
{
	char hx[24], pub[32], items[512], sub[24];
	const char *p[7];
	PGresult *res;

	unique_hex(hx, sizeof(hx));
	for (size_t i = 0; hx[i] != '\0'; i++)
		if (hx[i] >= 'a' && hx[i] <= 'f')
			hx[i] = (char)(hx[i] - 'a' + 'A');
	snprintf(pub, sizeof(pub), "ORD_%s", hx);
	snprintf(items, sizeof(items),
	    "[{\"variant_id\":\"%s\",\"product_id\":\"%s\","
	    "\"product_public_id\":\"%s\",\"variant_public_id\":\"%s\","
	    "\"title\":\"Thing\",\"variant_title\":\"Default\",\"sku\":\"T-1\","
	    "\"quantity\":%d,\"unit_price_minor\":%s}]",
	    s->variant, s->product, s->product_public, s->variant_public,
	    quantity, price);
	snprintf(sub, sizeof(sub), "%lld", atoll(price) * quantity);
	p[0] = pub;
	p[1] = s->merchant;
	p[2] = s->agent;
	p[3] = sub;
	p[4] = items;
	res = run(c,
	    PV_SQL("SELECT result, order_id FROM pv_order_insert($1,"
	           " $2::bigint, $3::bigint, 'USD', 2::smallint, $4::bigint, 0,"
	           " 0, 'buyer@test.example', '{\"name\":\"B\","
	           "\"address_line1\":\"1 Main St\",\"city\":\"Town\","
	           "\"postal_code\":\"12345\",\"country\":\"US\"}'::jsonb,"
	           " '{}'::jsonb, '', 'sandbox', 1800, $5::jsonb)"),
	    5, p);
	ck_assert_int_eq(PQntuples(res), 1);
	if (id != NULL && !PQgetisnull(res, 0, 1))
		copy(id, 24, PQgetvalue(res, 0, 1));
	return PQgetvalue(res, 0, 0);
}

/* "status/payment_status" of an order. */
static const char *
order_state(const char *id)
{
	const char *p[1] = { id };

	return value(run(&ctx,
	    PV_SQL("SELECT status || '/' || payment_status FROM orders"
	           " WHERE id = $1::bigint"),
	    1, p));
}

static long
reserved(const struct shop *s)
{
	const char *p[1] = { s->variant };

	return atol(value(run(&ctx,
	    PV_SQL("SELECT reserved_quantity FROM variants"
	           " WHERE id = $1::bigint"),
	    1, p)));
}

static long
inventory(const struct shop *s)
{
	const char *p[1] = { s->variant };

	return atol(value(run(&ctx,
	    PV_SQL("SELECT inventory_quantity FROM variants"
	           " WHERE id = $1::bigint"),
	    1, p)));
}

/* The types of an order's events in seq order, space-separated. */
static const char *
events(const char *id)
{
	const char *p[1] = { id };

	return value(run(&ctx,
	    PV_SQL("SELECT string_agg(type, ' ' ORDER BY seq) FROM"
	           " order_events WHERE order_id = $1::bigint"),
	    1, p));
}

/* Runs an UPDATE that must fail with PV409. */
static void
refused(const char *q, const char *id)
{
	const char *p[1] = { id };
	struct pv_err err = { 0 };

	ck_assert_msg(pv_db_exec(&ctx, q, 1, p, NULL, &err) == -1,
	    "%s was allowed", q);
	ck_assert_str_eq(pv_db_sqlstate(ctx.db), PV_DB_STATE_CONFLICT);
	ck_assert_int_eq(err.code, PV_E_CONFLICT);
}

/* Opens an attempt with pv_payment_begin(); its id in id (size 24). */
static const char *
begin(const char *order, const char *token, char *id)
{
	char hx[24], pub[40];
	const char *p[3];
	PGresult *res;

	unique_hex(hx, sizeof(hx));
	snprintf(pub, sizeof(pub), "pay_%s00000000", hx);
	p[0] = order;
	p[1] = pub;
	p[2] = token;
	res = run(&ctx,
	    PV_SQL("SELECT verdict, payment_id FROM pv_payment_begin("
	           "$1::bigint, $2, $3, NULL)"),
	    3, p);
	ck_assert_int_eq(PQntuples(res), 1);
	if (!PQgetisnull(res, 0, 1))
		copy(id, 24, PQgetvalue(res, 0, 1));
	return PQgetvalue(res, 0, 0);
}

/* Settles through the C path; the outcome. */
static const char *
settle(const char *payment, enum pv_psp_status st, const char *ref,
    const char *decline)
{
	struct pv_psp_result r;
	struct pv_err err = { 0 };
	const char *outcome;

	memset(&r, 0, sizeof(r));
	r.status = st;
	r.reference = ref;
	r.decline_code = decline;
	ck_assert_msg(pv_payment_settle(&ctx, payment, &r, &outcome, &err) == 0,
	    "settle: %s", err.msg);
	return outcome;
}

START_TEST(test_orders_trigger_refuses_illegal_transitions)
{
	struct shop s;
	char a[24], b[24];

	shop_make(&s, "1000", "10");
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "1000", a), "ok");
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "1000", b), "ok");
	/* pending -> delivered skips payment. */
	refused(PV_SQL("UPDATE orders SET status = 'delivered'"
	               " WHERE id = $1::bigint"),
	    a);
	/* unpaid -> refunded. */
	refused(PV_SQL("UPDATE orders SET payment_status = 'refunded'"
	               " WHERE id = $1::bigint"),
	    a);
	run(&ctx,
	    PV_SQL("UPDATE orders SET status = 'paid', payment_status ="
	           " 'succeeded' WHERE id = $1::bigint"),
	    1, (const char *[]){ a });
	refused(PV_SQL("UPDATE orders SET status = 'pending'"
	               " WHERE id = $1::bigint"),
	    a);
	refused(PV_SQL("UPDATE orders SET status = 'cancelled'"
	               " WHERE id = $1::bigint"),
	    a);
	refused(PV_SQL("UPDATE orders SET payment_status = 'unpaid'"
	               " WHERE id = $1::bigint"),
	    a);
	ck_assert_str_eq(order_state(a), "paid/succeeded");
	run(&ctx,
	    PV_SQL("UPDATE orders SET status = 'cancelled'"
	           " WHERE id = $1::bigint"),
	    1, (const char *[]){ b });
	refused(PV_SQL("UPDATE orders SET status = 'paid'"
	               " WHERE id = $1::bigint"),
	    b);
	refused(PV_SQL("UPDATE orders SET status = 'pending'"
	               " WHERE id = $1::bigint"),
	    b);
	ck_assert_str_eq(order_state(b), "cancelled/unpaid");
	/* Nothing refused left an event behind. */
	ck_assert_str_eq(events(a),
	    "order.created order.paid "
	    "payment.succeeded");
	ck_assert_str_eq(events(b), "order.created order.cancelled");
}
END_TEST

START_TEST(test_orders_every_change_appends_an_event)
{
	struct shop s;
	char o[24], pay1[24], pay2[24];
	const char *p[1];
	PGresult *res;
	int r;

	shop_make(&s, "2500", "5");
	ck_assert_str_eq(order_insert(&ctx, &s, 2, "2500", o), "ok");
	ck_assert_str_eq(begin(o, "pm_card_chargeDeclined", pay1), "new");
	ck_assert_str_eq(settle(pay1, PV_PSP_FAILED, "pi_db_1",
	                     "generic_decline"),
	    "changed");
	ck_assert_str_eq(order_state(o), "payment_failed/failed");
	ck_assert_str_eq(begin(o, "pm_card_authenticationRequired", pay2),
	    "new");
	ck_assert_str_eq(settle(pay2, PV_PSP_REQUIRES_ACTION, "pi_db_2", NULL),
	    "changed");
	ck_assert_str_eq(settle(pay2, PV_PSP_SUCCEEDED, "pi_db_2", NULL),
	    "paid");
	ck_assert_str_eq(order_state(o), "paid/succeeded");
	ck_assert_str_eq(events(o),
	    "order.created order.payment_failed payment.failed "
	    "payment.requires_action order.paid payment.succeeded");
	/* seq is 1, 2, 3 ... and event_seq is the last. */
	p[0] = o;
	res = run(&ctx,
	    PV_SQL(
	        "SELECT e.seq, o.event_seq FROM order_events e"
	        " JOIN orders o ON o.id = e.order_id"
	        " WHERE e.order_id = $1::bigint ORDER BY e.created_at, e.seq"),
	    1, p);
	ck_assert_int_eq(PQntuples(res), 6);
	for (r = 0; r < PQntuples(res); r++)
		ck_assert_int_eq(atoi(PQgetvalue(res, r, 0)), r + 1);
	ck_assert_int_eq(atoi(PQgetvalue(res, 0, 1)), 6);
	/* The sale took the stock: reserved back to 0, inventory 5 - 2. */
	ck_assert_int_eq(reserved(&s), 0);
	ck_assert_int_eq(inventory(&s), 3);
}
END_TEST

struct racer {
	const struct shop *s;
	char result[32];
};

static void *
race(void *arg)
{
	struct racer *r = arg;

	/* Blocks on the variant's row lock until the main session ends. */
	copy(r->result, sizeof(r->result),
	    order_insert(&other, r->s, 1, "900", NULL));
	return NULL;
}

START_TEST(test_orders_last_unit_goes_to_one_of_two_sessions)
{
	struct shop s;
	struct racer r;
	struct pv_err err = { 0 };
	pthread_t t;
	char o[24];
	int i, waiting = 0;

	shop_make(&s, "900", "1");
	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "900", o), "ok");
	r.s = &s;
	r.result[0] = '\0';
	ck_assert_int_eq(pthread_create(&t, NULL, race, &r), 0);
	/* Wait until the other session is blocked on our lock. */
	for (i = 0; i < 500 && !waiting; i++) {
		struct pv_ctx probe;

		open_ctx(&probe);
		waiting =
		    atoi(value(run(&probe,
		        PV_SQL("SELECT count(*) FROM pg_stat_activity WHERE"
		               " application_name = 'db_tests' AND"
		               " wait_event_type = 'Lock'"),
		        0, NULL))) > 0;
		close_ctx(&probe);
		if (!waiting)
			usleep(10000);
	}
	ck_assert_msg(waiting, "the second order never waited for the lock");
	ck_assert_int_eq(pv_db_end(&ctx, 1, &err), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_str_eq(r.result, "out_of_stock");
	ck_assert_int_eq(reserved(&s), 1);
	ck_assert_str_eq(order_state(o), "pending/unpaid");
	/* Without the race, still one unit only. */
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "900", NULL),
	    "out_of_stock");
	/* A stale price is refused under the lock too. */
	run(&ctx,
	    PV_SQL("UPDATE variants SET inventory_quantity = 5"
	           " WHERE id = $1::bigint"),
	    1, (const char *[]){ s.variant });
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "800", NULL),
	    "price_changed");
	ck_assert_int_eq(reserved(&s), 1);
}
END_TEST

START_TEST(test_orders_settle_twice_and_out_of_order)
{
	struct shop s;
	char o[24], pay[24], o2[24], pay2[24];

	shop_make(&s, "1500", "4");
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "1500", o), "ok");
	ck_assert_str_eq(begin(o, "pm_card_visa", pay), "new");
	/* An attempt never answered is re-driven, not doubled. */
	ck_assert_str_eq(begin(o, "pm_card_visa", pay2), "retry");
	ck_assert_str_eq(pay2, pay);
	ck_assert_str_eq(settle(pay, PV_PSP_SUCCEEDED, "pi_db_s1", NULL),
	    "paid");
	ck_assert_str_eq(settle(pay, PV_PSP_SUCCEEDED, "pi_db_s1", NULL),
	    "unchanged");
	/* A failure (or a requires_action) after the success: nothing. */
	ck_assert_str_eq(settle(pay, PV_PSP_FAILED, "pi_db_s1",
	                     "generic_decline"),
	    "unchanged");
	ck_assert_str_eq(settle(pay, PV_PSP_REQUIRES_ACTION, "pi_db_s1", NULL),
	    "unchanged");
	ck_assert_str_eq(order_state(o), "paid/succeeded");
	ck_assert_str_eq(events(o),
	    "order.created order.paid "
	    "payment.succeeded");
	ck_assert_int_eq(inventory(&s), 3);
	ck_assert_int_eq(reserved(&s), 0);
	ck_assert_str_eq(begin(o, "pm_card_visa", pay2), "paid");
	/* Declined twice, then a late success of the same attempt (the
	 * provider changed its mind is not a thing): still failed. */
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "1500", o2), "ok");
	ck_assert_str_eq(begin(o2, "pm_card_chargeDeclined", pay2), "new");
	ck_assert_str_eq(settle(pay2, PV_PSP_FAILED, "pi_db_s2",
	                     "generic_decline"),
	    "changed");
	ck_assert_str_eq(settle(pay2, PV_PSP_FAILED, "pi_db_s2",
	                     "generic_decline"),
	    "unchanged");
	ck_assert_str_eq(settle(pay2, PV_PSP_SUCCEEDED, "pi_db_s2", NULL),
	    "unchanged");
	ck_assert_str_eq(order_state(o2), "payment_failed/failed");
	ck_assert_str_eq(events(o2),
	    "order.created order.payment_failed payment.failed");
	ck_assert_int_eq(reserved(&s), 1);
}
END_TEST

START_TEST(test_orders_cancel_waits_for_open_payment)
{
	struct shop s;
	char o[24], pay[24];
	const char *p[2];

	shop_make(&s, "700", "2");
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "700", o), "ok");
	ck_assert_str_eq(begin(o, "pm_card_visa", pay), "new");
	p[0] = o;
	p[1] = "test";
	/* An open attempt could still succeed: no cancel. */
	ck_assert_str_eq(value(run(&ctx,
	                     PV_SQL("SELECT pv_order_cancel($1::bigint, $2)"),
	                     2, p)),
	    "payment_open");
	ck_assert_str_eq(settle(pay, PV_PSP_FAILED, "pi_db_c1",
	                     "generic_decline"),
	    "changed");
	ck_assert_str_eq(value(run(&ctx,
	                     PV_SQL("SELECT pv_order_cancel($1::bigint, $2)"),
	                     2, p)),
	    "cancelled");
	ck_assert_int_eq(reserved(&s), 0);
	ck_assert_str_eq(value(run(&ctx,
	                     PV_SQL("SELECT pv_order_cancel($1::bigint, $2)"),
	                     2, p)),
	    "already");
	ck_assert_str_eq(order_state(o), "cancelled/failed");
	ck_assert_int_eq(inventory(&s), 2);
}
END_TEST

START_TEST(test_orders_expiry_cancels_and_releases)
{
	struct shop s;
	struct pv_err err = { 0 };
	char stale[24], fresh[24], paid[24], pay[24];
	const char *p[1];
	long n = -1;

	shop_make(&s, "300", "3");
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "300", stale), "ok");
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "300", fresh), "ok");
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "300", paid), "ok");
	ck_assert_str_eq(begin(paid, "pm_card_visa", pay), "new");
	ck_assert_str_eq(settle(pay, PV_PSP_SUCCEEDED, "pi_db_e1", NULL),
	    "paid");
	ck_assert_int_eq(reserved(&s), 2);
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "300", NULL),
	    "out_of_stock");
	p[0] = stale;
	run(&ctx,
	    PV_SQL("UPDATE orders SET expires_at = now() - interval"
	           " '1 minute' WHERE id = $1::bigint"),
	    1, p);
	p[0] = paid;
	run(&ctx,
	    PV_SQL("UPDATE orders SET expires_at = now() - interval"
	           " '1 minute' WHERE id = $1::bigint"),
	    1, p);
	ck_assert_msg(pv_order_expire(&ctx, &n, &err) == 0, "%s", err.msg);
	ck_assert_int_ge(n, 1);
	ck_assert_str_eq(order_state(stale), "cancelled/unpaid");
	ck_assert_str_eq(order_state(fresh), "pending/unpaid");
	ck_assert_str_eq(order_state(paid), "paid/succeeded");
	ck_assert_int_eq(reserved(&s), 1);
	ck_assert_int_eq(inventory(&s), 2);
	/* The released unit can be ordered again. */
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "300", NULL), "ok");
	/* Running it again finds nothing of ours. */
	ck_assert_int_eq(pv_order_expire(&ctx, &n, &err), 0);
	ck_assert_str_eq(order_state(stale), "cancelled/unpaid");
	p[0] = stale;
	ck_assert_str_eq(value(run(&ctx,
	                     PV_SQL("SELECT detail->>'reason' FROM order_events"
	                            " WHERE order_id = $1::bigint AND type ="
	                            " 'order.cancelled'"),
	                     1, p)),
	    "expired unpaid");
}
END_TEST

/*
 * An authentication abandoned by the customer must not hold stock
 * forever: expiry cancels the order although the attempt is open, and
 * if the money arrives after all it is recorded and flagged for a
 * refund, never applied to the cancelled order.
 */
START_TEST(test_orders_expiry_overrides_abandoned_payment)
{
	struct shop s;
	struct pv_err err = { 0 };
	char o[24], pay[24];
	const char *p[1];
	long n = -1;

	shop_make(&s, "450", "1");
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "450", o), "ok");
	ck_assert_str_eq(begin(o, "pm_card_authenticationRequired", pay),
	    "new");
	ck_assert_str_eq(settle(pay, PV_PSP_REQUIRES_ACTION, "pi_db_x1", NULL),
	    "changed");
	ck_assert_str_eq(order_insert(&ctx, &s, 1, "450", NULL),
	    "out_of_stock");
	p[0] = o;
	run(&ctx,
	    PV_SQL("UPDATE orders SET expires_at = now() - interval"
	           " '1 minute' WHERE id = $1::bigint"),
	    1, p);
	ck_assert_msg(pv_order_expire(&ctx, &n, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(order_state(o), "cancelled/requires_action");
	ck_assert_int_eq(reserved(&s), 0);
	/* The late success: money recorded, order untouched, flagged. */
	ck_assert_str_eq(settle(pay, PV_PSP_SUCCEEDED, "pi_db_x1", NULL),
	    "flagged");
	ck_assert_str_eq(order_state(o), "cancelled/requires_action");
	ck_assert_str_eq(value(run(&ctx,
	                     PV_SQL("SELECT count(*) FROM order_events WHERE"
	                            " order_id = $1::bigint AND flagged AND"
	                            " type = 'payment.succeeded'"),
	                     1, p)),
	    "1");
	ck_assert_int_eq(reserved(&s), 0);
}
END_TEST

Suite *
orders_suite(void)
{
	Suite *s = suite_create("orders");
	TCase *tc = tcase_create("orders");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_orders_trigger_refuses_illegal_transitions);
	tcase_add_test(tc, test_orders_every_change_appends_an_event);
	tcase_add_test(tc, test_orders_last_unit_goes_to_one_of_two_sessions);
	tcase_add_test(tc, test_orders_settle_twice_and_out_of_order);
	tcase_add_test(tc, test_orders_cancel_waits_for_open_payment);
	tcase_add_test(tc, test_orders_expiry_cancels_and_releases);
	tcase_add_test(tc, test_orders_expiry_overrides_abandoned_payment);
	suite_add_tcase(s, tc);
	return s;
}
