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
#include "pv_dbshop.h"
#include "pv_order.h"
#include "pv_payment.h"
#include "pv_psp.h"
#include "pv_test.h"

static long
reserved(const struct pv_dbs_shop *s)
{
	const char *p[1] = { s->variant };

	return atol(pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("SELECT reserved_quantity FROM variants"
	           " WHERE id = $1::bigint"),
	    1, p)));
}

static long
inventory(const struct pv_dbs_shop *s)
{
	const char *p[1] = { s->variant };

	return atol(pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("SELECT inventory_quantity FROM variants"
	           " WHERE id = $1::bigint"),
	    1, p)));
}

/* The types of an order's events in seq order, space-separated. */
static const char *
events(const char *id)
{
	const char *p[1] = { id };

	return pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
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

	ck_assert_msg(pv_db_exec(&pv_dbs_ctx, q, 1, p, NULL, &err) == -1,
	    "%s was allowed", q);
	ck_assert_str_eq(pv_db_sqlstate(pv_dbs_ctx.db), PV_DB_STATE_CONFLICT);
	ck_assert_int_eq(err.code, PV_E_CONFLICT);
}

/* Opens an attempt with pv_payment_begin(); its id in id (size 24). */
static const char *
begin(const char *order, const char *token, char *id)
{
	char hx[24], pub[40];
	const char *p[3];
	PGresult *res;

	pv_dbs_unique_hex(hx, sizeof(hx));
	snprintf(pub, sizeof(pub), "pay_%s00000000", hx);
	p[0] = order;
	p[1] = pub;
	p[2] = token;
	res = pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("SELECT verdict, payment_id FROM pv_payment_begin("
	           "$1::bigint, $2, $3, NULL)"),
	    3, p);
	ck_assert_int_eq(PQntuples(res), 1);
	if (!PQgetisnull(res, 0, 1))
		pv_dbs_copy(id, 24, PQgetvalue(res, 0, 1));
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
	ck_assert_msg(pv_payment_settle(&pv_dbs_ctx, payment, &r, &outcome,
	                  &err) == 0,
	    "settle: %s", err.msg);
	return outcome;
}

START_TEST(test_orders_trigger_refuses_illegal_transitions)
{
	struct pv_dbs_shop s;
	char a[24], b[24];

	pv_dbs_shop_make(&s, "1000", "10");
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "1000", a),
	    "ok");
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "1000", b),
	    "ok");
	/* pending -> delivered skips payment. */
	refused(PV_SQL("UPDATE orders SET status = 'delivered'"
	               " WHERE id = $1::bigint"),
	    a);
	/* unpaid -> refunded. */
	refused(PV_SQL("UPDATE orders SET payment_status = 'refunded'"
	               " WHERE id = $1::bigint"),
	    a);
	pv_dbs_run(&pv_dbs_ctx,
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
	ck_assert_str_eq(pv_dbs_order_state(a), "paid/succeeded");
	pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("UPDATE orders SET status = 'cancelled'"
	           " WHERE id = $1::bigint"),
	    1, (const char *[]){ b });
	refused(PV_SQL("UPDATE orders SET status = 'paid'"
	               " WHERE id = $1::bigint"),
	    b);
	refused(PV_SQL("UPDATE orders SET status = 'pending'"
	               " WHERE id = $1::bigint"),
	    b);
	ck_assert_str_eq(pv_dbs_order_state(b), "cancelled/unpaid");
	/* Nothing refused left an event behind. */
	ck_assert_str_eq(events(a),
	    "order.created order.paid "
	    "payment.succeeded");
	ck_assert_str_eq(events(b), "order.created order.cancelled");
}
END_TEST

START_TEST(test_orders_every_change_appends_an_event)
{
	struct pv_dbs_shop s;
	char o[24], pay1[24], pay2[24];
	const char *p[1];
	PGresult *res;
	int r;

	pv_dbs_shop_make(&s, "2500", "5");
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 2, "2500", o),
	    "ok");
	ck_assert_str_eq(begin(o, "pm_card_chargeDeclined", pay1), "new");
	ck_assert_str_eq(settle(pay1, PV_PSP_FAILED, "pi_db_1",
	                     "generic_decline"),
	    "changed");
	ck_assert_str_eq(pv_dbs_order_state(o), "payment_failed/failed");
	ck_assert_str_eq(begin(o, "pm_card_authenticationRequired", pay2),
	    "new");
	ck_assert_str_eq(settle(pay2, PV_PSP_REQUIRES_ACTION, "pi_db_2", NULL),
	    "changed");
	ck_assert_str_eq(settle(pay2, PV_PSP_SUCCEEDED, "pi_db_2", NULL),
	    "paid");
	ck_assert_str_eq(pv_dbs_order_state(o), "paid/succeeded");
	ck_assert_str_eq(events(o),
	    "order.created order.payment_failed payment.failed "
	    "payment.requires_action order.paid payment.succeeded");
	/* seq is 1, 2, 3 ... and event_seq is the last. */
	p[0] = o;
	res = pv_dbs_run(&pv_dbs_ctx,
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
	const struct pv_dbs_shop *s;
	char result[32];
};

static void *
race(void *arg)
{
	struct racer *r = arg;

	/* Blocks on the variant's row lock until the main session ends. */
	pv_dbs_copy(r->result, sizeof(r->result),
	    pv_dbs_order_insert(&pv_dbs_other, r->s, 1, "900", NULL));
	return NULL;
}

START_TEST(test_orders_last_unit_goes_to_one_of_two_sessions)
{
	struct pv_dbs_shop s;
	struct racer r;
	struct pv_err err = { 0 };
	pthread_t t;
	char o[24];
	int i, waiting = 0;

	pv_dbs_shop_make(&s, "900", "1");
	ck_assert_int_eq(pv_db_begin(&pv_dbs_ctx, &err), 0);
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "900", o),
	    "ok");
	r.s = &s;
	r.result[0] = '\0';
	ck_assert_int_eq(pthread_create(&t, NULL, race, &r), 0);
	/* Wait until the other session is blocked on our lock. */
	for (i = 0; i < 500 && !waiting; i++) {
		struct pv_ctx probe;

		pv_dbs_open_ctx(&probe);
		waiting =
		    atoi(pv_dbs_value(pv_dbs_run(&probe,
		        PV_SQL("SELECT count(*) FROM pg_stat_activity WHERE"
		               " application_name = 'db_tests' AND"
		               " wait_event_type = 'Lock'"),
		        0, NULL))) > 0;
		pv_dbs_close_ctx(&probe);
		if (!waiting)
			usleep(10000);
	}
	ck_assert_msg(waiting, "the second order never waited for the lock");
	ck_assert_int_eq(pv_db_end(&pv_dbs_ctx, 1, &err), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_str_eq(r.result, "out_of_stock");
	ck_assert_int_eq(reserved(&s), 1);
	ck_assert_str_eq(pv_dbs_order_state(o), "pending/unpaid");
	/* Without the race, still one unit only. */
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "900", NULL),
	    "out_of_stock");
	/* A stale price is refused under the lock too. */
	pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("UPDATE variants SET inventory_quantity = 5"
	           " WHERE id = $1::bigint"),
	    1, (const char *[]){ s.variant });
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "800", NULL),
	    "price_changed");
	ck_assert_int_eq(reserved(&s), 1);
}
END_TEST

START_TEST(test_orders_settle_twice_and_out_of_order)
{
	struct pv_dbs_shop s;
	char o[24], pay[24], o2[24], pay2[24];

	pv_dbs_shop_make(&s, "1500", "4");
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "1500", o),
	    "ok");
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
	ck_assert_str_eq(pv_dbs_order_state(o), "paid/succeeded");
	ck_assert_str_eq(events(o),
	    "order.created order.paid "
	    "payment.succeeded");
	ck_assert_int_eq(inventory(&s), 3);
	ck_assert_int_eq(reserved(&s), 0);
	ck_assert_str_eq(begin(o, "pm_card_visa", pay2), "paid");
	/* Declined twice, then a late success of the same attempt (the
	 * provider changed its mind is not a thing): still failed. */
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "1500", o2),
	    "ok");
	ck_assert_str_eq(begin(o2, "pm_card_chargeDeclined", pay2), "new");
	ck_assert_str_eq(settle(pay2, PV_PSP_FAILED, "pi_db_s2",
	                     "generic_decline"),
	    "changed");
	ck_assert_str_eq(settle(pay2, PV_PSP_FAILED, "pi_db_s2",
	                     "generic_decline"),
	    "unchanged");
	ck_assert_str_eq(settle(pay2, PV_PSP_SUCCEEDED, "pi_db_s2", NULL),
	    "unchanged");
	ck_assert_str_eq(pv_dbs_order_state(o2), "payment_failed/failed");
	ck_assert_str_eq(events(o2),
	    "order.created order.payment_failed payment.failed");
	ck_assert_int_eq(reserved(&s), 1);
}
END_TEST

START_TEST(test_orders_cancel_waits_for_open_payment)
{
	struct pv_dbs_shop s;
	char o[24], pay[24];
	const char *p[2];

	pv_dbs_shop_make(&s, "700", "2");
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "700", o),
	    "ok");
	ck_assert_str_eq(begin(o, "pm_card_visa", pay), "new");
	p[0] = o;
	p[1] = "test";
	/* An open attempt could still succeed: no cancel. */
	ck_assert_str_eq(pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	                     PV_SQL("SELECT pv_order_cancel($1::bigint, $2)"),
	                     2, p)),
	    "payment_open");
	ck_assert_str_eq(settle(pay, PV_PSP_FAILED, "pi_db_c1",
	                     "generic_decline"),
	    "changed");
	ck_assert_str_eq(pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	                     PV_SQL("SELECT pv_order_cancel($1::bigint, $2)"),
	                     2, p)),
	    "cancelled");
	ck_assert_int_eq(reserved(&s), 0);
	ck_assert_str_eq(pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	                     PV_SQL("SELECT pv_order_cancel($1::bigint, $2)"),
	                     2, p)),
	    "already");
	ck_assert_str_eq(pv_dbs_order_state(o), "cancelled/failed");
	ck_assert_int_eq(inventory(&s), 2);
}
END_TEST

START_TEST(test_orders_expiry_cancels_and_releases)
{
	struct pv_dbs_shop s;
	struct pv_err err = { 0 };
	char stale[24], fresh[24], paid[24], pay[24];
	const char *p[1];
	long n = -1;

	pv_dbs_shop_make(&s, "300", "3");
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "300", stale),
	    "ok");
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "300", fresh),
	    "ok");
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "300", paid),
	    "ok");
	ck_assert_str_eq(begin(paid, "pm_card_visa", pay), "new");
	ck_assert_str_eq(settle(pay, PV_PSP_SUCCEEDED, "pi_db_e1", NULL),
	    "paid");
	ck_assert_int_eq(reserved(&s), 2);
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "300", NULL),
	    "out_of_stock");
	p[0] = stale;
	pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("UPDATE orders SET expires_at = now() - interval"
	           " '1 minute' WHERE id = $1::bigint"),
	    1, p);
	p[0] = paid;
	pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("UPDATE orders SET expires_at = now() - interval"
	           " '1 minute' WHERE id = $1::bigint"),
	    1, p);
	ck_assert_msg(pv_order_expire(&pv_dbs_ctx, &n, &err) == 0, "%s",
	    err.msg);
	ck_assert_int_ge(n, 1);
	ck_assert_str_eq(pv_dbs_order_state(stale), "cancelled/unpaid");
	ck_assert_str_eq(pv_dbs_order_state(fresh), "pending/unpaid");
	ck_assert_str_eq(pv_dbs_order_state(paid), "paid/succeeded");
	ck_assert_int_eq(reserved(&s), 1);
	ck_assert_int_eq(inventory(&s), 2);
	/* The released unit can be ordered again. */
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "300", NULL),
	    "ok");
	/* Running it again finds nothing of ours. */
	ck_assert_int_eq(pv_order_expire(&pv_dbs_ctx, &n, &err), 0);
	ck_assert_str_eq(pv_dbs_order_state(stale), "cancelled/unpaid");
	p[0] = stale;
	ck_assert_str_eq(pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
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
	struct pv_dbs_shop s;
	struct pv_err err = { 0 };
	char o[24], pay[24];
	const char *p[1];
	long n = -1;

	pv_dbs_shop_make(&s, "450", "1");
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "450", o),
	    "ok");
	ck_assert_str_eq(begin(o, "pm_card_authenticationRequired", pay),
	    "new");
	ck_assert_str_eq(settle(pay, PV_PSP_REQUIRES_ACTION, "pi_db_x1", NULL),
	    "changed");
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "450", NULL),
	    "out_of_stock");
	p[0] = o;
	pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("UPDATE orders SET expires_at = now() - interval"
	           " '1 minute' WHERE id = $1::bigint"),
	    1, p);
	ck_assert_msg(pv_order_expire(&pv_dbs_ctx, &n, &err) == 0, "%s",
	    err.msg);
	ck_assert_str_eq(pv_dbs_order_state(o), "cancelled/requires_action");
	ck_assert_int_eq(reserved(&s), 0);
	/* The late success: money recorded, order untouched, flagged. */
	ck_assert_str_eq(settle(pay, PV_PSP_SUCCEEDED, "pi_db_x1", NULL),
	    "flagged");
	ck_assert_str_eq(pv_dbs_order_state(o), "cancelled/requires_action");
	ck_assert_str_eq(pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
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

	tcase_add_checked_fixture(tc, pv_dbs_setup, pv_dbs_teardown);
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
