/*
 * Database tests of refunds (migrations/0013_refunds.sql): two sessions
 * refunding 60 % each of one order, and exactly one wins; 30 % + 30 %
 * + 40 % makes the order refunded and a fourth is refused; a refund
 * that fails gives its reservation back; provider webhooks about our
 * own refunds (by reference, by our id, as a bare refunded total) are
 * matched, never counted twice, and a refund made in the provider's
 * dashboard is recorded once however its events arrive.
 *
 * Rows are committed (the race needs two sessions to see them), so
 * every test makes its own merchant, agent and product.
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
#include "pv_refund.h"
#include "pv_test.h"

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

/* A paid order of one unit at price, on charge reference ref. */
static void
paid_order(struct pv_dbs_shop *s, const char *price, const char *ref, char *o,
    char *pay)
{
	pv_dbs_shop_make(s, price, "10");
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, s, 1, price, o),
	    "ok");
	ck_assert_str_eq(begin(o, "pm_card_visa", pay), "new");
	ck_assert_str_eq(settle(pay, PV_PSP_SUCCEEDED, ref, NULL), "paid");
}

/*
 * pv_refund_reserve() of amount (NULL: all that is left) on session c;
 * the verdict, and the refund's internal id in id (size 24) if ok.
 */
static const char *
reserve(struct pv_ctx *c, const struct pv_dbs_shop *s, const char *o,
    const char *amount, char *id)
{
	char hx[24], pub[40];
	const char *p[4];
	PGresult *res;

	pv_dbs_unique_hex(hx, sizeof(hx));
	snprintf(pub, sizeof(pub), "ref_%s00000000", hx);
	p[0] = o;
	p[1] = pub;
	p[2] = s->agent;
	p[3] = amount;
	res = pv_dbs_run(c,
	    PV_SQL("SELECT verdict, refund_id FROM pv_refund_reserve("
	           "$1::bigint, $2, $3::bigint, 'agent', $4::bigint, NULL,"
	           " false, 'changed my mind', 'requested_by_customer',"
	           " NULL)"),
	    4, p);
	ck_assert_int_eq(PQntuples(res), 1);
	if (id != NULL && !PQgetisnull(res, 0, 1))
		pv_dbs_copy(id, 24, PQgetvalue(res, 0, 1));
	return PQgetvalue(res, 0, 0);
}

/* pv_refund_settle(); its outcome. */
static const char *
rsettle(const char *refund, const char *status, const char *ref)
{
	const char *p[3] = { refund, status, ref };

	return pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("SELECT pv_refund_settle($1::bigint, $2, $3, NULL)"), 3, p));
}

static long
refunded(const char *o)
{
	const char *p[1] = { o };

	return atol(pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("SELECT refunded_minor FROM orders WHERE id = $1::bigint"),
	    1, p)));
}

/* How many refunds of the order have status (NULL: any). */
static long
refunds(const char *o, const char *status)
{
	const char *p[2] = { o, status };

	return atol(pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("SELECT count(*) FROM refunds WHERE order_id = $1::bigint"
	           " AND ($2::text IS NULL OR status = $2)"),
	    2, p)));
}

static const char *
public_id(const char *refund)
{
	const char *p[1] = { refund };

	return pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("SELECT public_id FROM refunds WHERE id = $1::bigint"), 1,
	    p));
}

/* A provider refund event through pv_refund_hook(); its outcome. */
static const char *
hook(const struct pv_dbs_shop *s, const char *charge, const char *re,
    const char *ours, enum pv_psp_refund_status st, int64_t amount)
{
	struct pv_psp_event ev;
	struct pv_err err = { 0 };
	const char *outcome = NULL;

	memset(&ev, 0, sizeof(ev));
	ev.id = "evt_db";
	ev.type = re[0] != '\0' ? "refund.updated" : "charge.refunded";
	ev.kind = PV_PSP_EV_REFUND;
	ev.reference = charge;
	ev.order_id = "";
	ev.decline_code = "";
	ev.refund_reference = re;
	ev.refund_id = ours;
	ev.refund_status = st;
	ev.amount_minor = amount;
	ev.currency = "USD";
	ck_assert_msg(pv_refund_hook(&pv_dbs_ctx, s->merchant, &ev, &outcome,
	                  &err) == 0,
	    "hook: %s", err.msg);
	return outcome;
}

struct racer {
	const struct pv_dbs_shop *s;
	const char *order;
	char result[32];
};

static void *
race(void *arg)
{
	struct racer *r = arg;

	/* Blocks on the order's row lock until the main session ends. */
	pv_dbs_copy(r->result, sizeof(r->result),
	    reserve(&pv_dbs_other, r->s, r->order, "600", NULL));
	return NULL;
}

START_TEST(test_refunds_two_60_percent_exactly_one)
{
	struct pv_dbs_shop s;
	struct racer r;
	struct pv_err err = { 0 };
	pthread_t t;
	char o[24], pay[24], a[24];
	int i, waiting = 0;

	paid_order(&s, "1000", "pi_rf_race", o, pay);
	ck_assert_int_eq(pv_db_begin(&pv_dbs_ctx, &err), 0);
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, "600", a), "ok");
	r.s = &s;
	r.order = o;
	r.result[0] = '\0';
	ck_assert_int_eq(pthread_create(&t, NULL, race, &r), 0);
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
	ck_assert_msg(waiting, "the second refund never waited for the lock");
	ck_assert_int_eq(pv_db_end(&pv_dbs_ctx, 1, &err), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_str_eq(r.result, "exceeds");
	ck_assert_int_eq(refunds(o, NULL), 1);
	/* Pending holds its amount; success counts it once. */
	ck_assert_int_eq(refunded(o), 0);
	ck_assert_str_eq(rsettle(a, "succeeded", "re_rf_race"), "succeeded");
	ck_assert_int_eq(refunded(o), 600);
	ck_assert_str_eq(pv_dbs_order_state(o),
	    "partially_refunded/partially_refunded");
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, "600", NULL), "exceeds");
	ck_assert_int_eq(refunds(o, NULL), 1);
}
END_TEST

START_TEST(test_refunds_30_30_40_then_409)
{
	struct pv_dbs_shop s;
	char o[24], pay[24], a[24], b[24], c[24], d[24];

	paid_order(&s, "1000", "pi_rf_334", o, pay);
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, "300", a), "ok");
	ck_assert_str_eq(rsettle(a, "succeeded", "re_rf_1"), "succeeded");
	ck_assert_str_eq(pv_dbs_order_state(o),
	    "partially_refunded/partially_refunded");
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, "300", b), "ok");
	ck_assert_str_eq(rsettle(b, "succeeded", "re_rf_2"), "succeeded");
	ck_assert_int_eq(refunded(o), 600);
	/* A refund that fails gives its reservation back. */
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, "401", NULL), "exceeds");
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, NULL, d), "ok");
	ck_assert_str_eq(rsettle(d, "failed", "re_rf_f"), "failed");
	ck_assert_str_eq(rsettle(d, "succeeded", "re_rf_f"), "unchanged");
	ck_assert_int_eq(refunded(o), 600);
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, "400", c), "ok");
	/* The answer twice, and late: counted once. */
	ck_assert_str_eq(rsettle(c, "succeeded", "re_rf_3"), "succeeded");
	ck_assert_str_eq(rsettle(c, "succeeded", "re_rf_3"), "unchanged");
	ck_assert_str_eq(rsettle(c, "pending", "re_rf_3"), "unchanged");
	ck_assert_int_eq(refunded(o), 1000);
	ck_assert_str_eq(pv_dbs_order_state(o), "refunded/refunded");
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, "1", NULL), "exceeds");
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, NULL, NULL), "exceeds");
	ck_assert_int_eq(refunds(o, "succeeded"), 3);
	ck_assert_int_eq(refunds(o, NULL), 4);
	ck_assert_str_eq(events(o),
	    "order.created order.paid payment.succeeded refund.created "
	    "order.partially_refunded payment.partially_refunded "
	    "refund.succeeded refund.created refund.succeeded refund.created "
	    "refund.failed refund.created order.refunded payment.refunded "
	    "refund.succeeded");
}
END_TEST

START_TEST(test_refunds_unpaid_order_is_refused)
{
	struct pv_dbs_shop s;
	char o[24];

	pv_dbs_shop_make(&s, "1000", "10");
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &s, 1, "1000", o),
	    "ok");
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, NULL, NULL), "not_paid");
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, "100", NULL), "not_paid");
	ck_assert_int_eq(refunds(o, NULL), 0);
	ck_assert_str_eq(pv_dbs_order_state(o), "pending/unpaid");
}
END_TEST

START_TEST(test_refunds_webhooks_never_count_twice)
{
	struct pv_dbs_shop s;
	char o[24], pay[24], a[24], b[24];

	paid_order(&s, "1000", "pi_rf_hook", o, pay);
	/* Ours, answered pending; the webhook names it by our id first. */
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, "300", a), "ok");
	ck_assert_str_eq(hook(&s, "pi_rf_hook", "re_rf_h1", public_id(a),
	                     PV_PSP_REFUND_SUCCEEDED, 300),
	    "succeeded");
	ck_assert_str_eq(rsettle(a, "succeeded", "re_rf_h1"), "unchanged");
	/* Again by reference, and as the charge's refunded total. */
	ck_assert_str_eq(hook(&s, "pi_rf_hook", "re_rf_h1", "",
	                     PV_PSP_REFUND_SUCCEEDED, 300),
	    "unchanged");
	ck_assert_str_eq(hook(&s, "pi_rf_hook", "", "", PV_PSP_REFUND_SUCCEEDED,
	                     300),
	    "nothing");
	ck_assert_int_eq(refunded(o), 300);
	ck_assert_int_eq(refunds(o, NULL), 1);
	/* Pending ours is not mistaken for a dashboard refund either. */
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, "100", b), "ok");
	ck_assert_str_eq(hook(&s, "pi_rf_hook", "", "", PV_PSP_REFUND_SUCCEEDED,
	                     400),
	    "nothing");
	ck_assert_str_eq(rsettle(b, "succeeded", "re_rf_h2"), "succeeded");
	/* A dashboard refund by its refund event, then its total. */
	ck_assert_str_eq(hook(&s, "pi_rf_hook", "re_rf_dash", "",
	                     PV_PSP_REFUND_SUCCEEDED, 200),
	    "inserted");
	ck_assert_str_eq(hook(&s, "pi_rf_hook", "re_rf_dash", "",
	                     PV_PSP_REFUND_SUCCEEDED, 200),
	    "unchanged");
	ck_assert_str_eq(hook(&s, "pi_rf_hook", "", "", PV_PSP_REFUND_SUCCEEDED,
	                     600),
	    "nothing");
	ck_assert_int_eq(refunded(o), 600);
	/* Another: its total first, then its refund event. */
	ck_assert_str_eq(hook(&s, "pi_rf_hook", "", "", PV_PSP_REFUND_SUCCEEDED,
	                     750),
	    "inserted");
	ck_assert_str_eq(hook(&s, "pi_rf_hook", "re_rf_dash2", "",
	                     PV_PSP_REFUND_SUCCEEDED, 150),
	    "matched");
	ck_assert_str_eq(hook(&s, "pi_rf_hook", "re_rf_dash2", "",
	                     PV_PSP_REFUND_SUCCEEDED, 150),
	    "unchanged");
	ck_assert_int_eq(refunded(o), 750);
	ck_assert_int_eq(refunds(o, NULL), 4);
	ck_assert_str_eq(pv_dbs_order_state(o),
	    "partially_refunded/partially_refunded");
	/* An unknown charge changes nothing. */
	ck_assert_str_eq(hook(&s, "pi_rf_nobody", "re_rf_x", "",
	                     PV_PSP_REFUND_SUCCEEDED, 100),
	    "unknown_payment");
	/* A succeeded refund the bank sends back: counted back, flagged. */
	ck_assert_str_eq(hook(&s, "pi_rf_hook", "re_rf_dash2", "",
	                     PV_PSP_REFUND_FAILED, 150),
	    "reversed");
	ck_assert_int_eq(refunded(o), 600);
}
END_TEST

/* The merchant's public id. */
static const char *
merchant_public(const struct pv_dbs_shop *s)
{
	const char *p[1] = { s->merchant };

	return pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("SELECT public_id FROM merchants WHERE id = $1::bigint"), 1,
	    p));
}

/* pv_refund_from_store(); its outcome, or the error code's name. */
static const char *
from_store(const struct pv_dbs_shop *s, const char *gid, int64_t amount,
    const char *store_id, const char *note)
{
	struct pv_err err = { 0 };
	const char *outcome = NULL;
	char mer[32];

	pv_dbs_copy(mer, sizeof(mer), merchant_public(s));
	if (pv_refund_from_store(&pv_dbs_ctx, mer, gid, amount, store_id, note,
	        &outcome, &err) == -1)
		return pv_err_name(err.code);
	return outcome;
}

START_TEST(test_refunds_from_store_once)
{
	struct pv_dbs_shop s;
	char o[24], pay[24], a[24], note[64];
	const char *p[2];

	paid_order(&s, "1000", "pi_rf_store", o, pay);
	p[0] = s.merchant;
	pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("INSERT INTO merchant_psp (merchant_id, provider)"
	           " VALUES ($1::bigint, 'sandbox')"),
	    1, p);
	p[0] = o;
	p[1] = "gid://shopify/Order/77";
	pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("UPDATE orders SET platform_order_id = $2"
	           " WHERE id = $1::bigint"),
	    2, p);
	/* Our own refund, mirrored: the store's webhook names it. */
	ck_assert_str_eq(reserve(&pv_dbs_ctx, &s, o, "300", a), "ok");
	ck_assert_str_eq(rsettle(a, "succeeded", "re_rf_s1"), "succeeded");
	snprintf(note, sizeof(note), "Pivota refund %s", public_id(a));
	ck_assert_str_eq(from_store(&s, "gid://shopify/Order/77", 300,
	                     "gid://shopify/Refund/501", note),
	    "matched");
	ck_assert_str_eq(from_store(&s, "77", 300, "501", note), "duplicate");
	ck_assert_int_eq(refunded(o), 300);
	/* A refund made in the Shopify admin goes to the provider once. */
	ck_assert_str_eq(from_store(&s, "gid://shopify/Order/77", 200,
	                     "gid://shopify/Refund/502", "damaged box"),
	    "succeeded");
	ck_assert_str_eq(from_store(&s, "gid://shopify/Order/77", 200,
	                     "gid://shopify/Refund/502", "damaged box"),
	    "duplicate");
	ck_assert_int_eq(refunded(o), 500);
	ck_assert_int_eq(refunds(o, "succeeded"), 2);
	/* More than is left: refused, flagged, nothing counted. */
	ck_assert_str_eq(from_store(&s, "gid://shopify/Order/77", 501,
	                     "gid://shopify/Refund/503", NULL),
	    "PV_E_CONFLICT");
	ck_assert_int_eq(refunded(o), 500);
	ck_assert_str_eq(from_store(&s, "gid://shopify/Order/78", 1,
	                     "gid://shopify/Refund/504", NULL),
	    "PV_E_NOTFOUND");
	ck_assert_str_eq(pv_dbs_order_state(o),
	    "partially_refunded/partially_refunded");
}
END_TEST

Suite *
refunds_suite(void)
{
	Suite *s = suite_create("refunds");
	TCase *tc = tcase_create("refunds");

	tcase_add_checked_fixture(tc, pv_dbs_setup, pv_dbs_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_refunds_two_60_percent_exactly_one);
	tcase_add_test(tc, test_refunds_30_30_40_then_409);
	tcase_add_test(tc, test_refunds_unpaid_order_is_refused);
	tcase_add_test(tc, test_refunds_webhooks_never_count_twice);
	tcase_add_test(tc, test_refunds_from_store_once);
	suite_add_tcase(s, tc);
	return s;
}
