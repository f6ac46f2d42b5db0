/*
 * pivotactl's merchant settings commands against the database of
 * tests/db/run.sh: the real program (set-refunds, set-mail), its exit
 * statuses and output, the columns it writes, and what they change: the
 * mail an order event queues.  pivotactl commits, so nothing rolls
 * back: each test makes its own merchant.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "pv_dbshop.h"
#include "pv_proc.h"
#include "pv_test.h"

/* One test's merchant: its public and internal ids. */
struct shop {
	struct pv_dbs_shop s; /* the merchant and what it sells */
	char pub[32];         /* mer_... */
};

static void
shop_make(struct shop *m)
{
	const char *p[1];

	pv_dbs_shop_make(&m->s, "2500", "10");
	p[0] = m->s.merchant;
	pv_dbs_copy(m->pub, sizeof(m->pub),
	    pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	        PV_SQL("SELECT public_id FROM merchants WHERE id = $1::bigint"),
	        1, p)));
}

/* One column of the merchant's row of a settings query, "" for NULL. */
static const char *
setting(const struct shop *m, const char *sql)
{
	const char *p[1] = { m->s.merchant };

	return pv_dbs_value(pv_dbs_run(&pv_dbs_ctx, sql, 1, p));
}

/* The merchant's refund_on_store_cancel, "t" or "f". */
static const char *
on_store_cancel(const struct shop *m)
{
	return setting(m,
	    PV_SQL("SELECT refund_on_store_cancel FROM merchants WHERE id ="
	           " $1::bigint"));
}

/* Its store's refund_restock, "t" or "f". */
static const char *
restock(const struct shop *m)
{
	return setting(m,
	    PV_SQL("SELECT refund_restock FROM merchant_shopify WHERE"
	           " merchant_id = $1::bigint"));
}

/* The member key of pivotactl's --json output, as JSON text. */
static void
json_member(const char *out, const char *key, char *dst, size_t size)
{
	struct json_object *o = json_tokener_parse(out), *v;

	ck_assert_msg(o != NULL && json_object_object_get_ex(o, key, &v),
	    "pivotactl printed: %s", out);
	snprintf(dst, size, "%s",
	    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

START_TEST(test_ctl_set_refunds_on_store_cancel)
{
	char out[2048], v[64], want[64];
	struct shop m;

	shop_make(&m);
	ck_assert_str_eq(on_store_cancel(&m), "f");
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant",
	                     "set-refunds", m.pub, "--on-store-cancel", "yes",
	                     "--json", NULL),
	    0);
	json_member(out, "merchant_id", v, sizeof(v));
	snprintf(want, sizeof(want), "\"%s\"", m.pub);
	ck_assert_str_eq(v, want);
	json_member(out, "refund_on_store_cancel", v, sizeof(v));
	ck_assert_str_eq(v, "true");
	json_member(out, "refund_restock", v, sizeof(v));
	ck_assert_str_eq(v, "null"); /* no Shopify store */
	ck_assert_str_eq(on_store_cancel(&m), "t");

	/* People get key: value lines. */
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant",
	                     "set-refunds", m.pub, "--on-store-cancel", "no",
	                     NULL),
	    0);
	ck_assert_msg(strstr(out, "refund_on_store_cancel: false\n") != NULL,
	    "%s", out);
	ck_assert_str_eq(on_store_cancel(&m), "f");
}
END_TEST

START_TEST(test_ctl_set_refunds_restock_needs_a_store)
{
	char out[2048], v[64];
	const char *p[1];
	struct shop m;

	shop_make(&m);
	/* No store: refused, and the other change of the call is undone. */
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant",
	                     "set-refunds", m.pub, "--on-store-cancel", "yes",
	                     "--restock", "yes", NULL),
	    1);
	ck_assert_str_eq(on_store_cancel(&m), "f");

	p[0] = m.s.merchant;
	pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("INSERT INTO merchant_shopify (merchant_id, shop_domain,"
	           " token_sealed, shop_name, currency, api_version) VALUES"
	           " ($1::bigint, 'ctl-' || $1 || '.myshopify.com',"
	           " 'v1.never-opened', 'Ctl', 'USD', '2025-07')"),
	    1, p);
	ck_assert_str_eq(restock(&m), "f");
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant",
	                     "set-refunds", m.pub, "--restock", "yes", "--json",
	                     NULL),
	    0);
	json_member(out, "refund_restock", v, sizeof(v));
	ck_assert_str_eq(v, "true");
	json_member(out, "refund_on_store_cancel", v, sizeof(v));
	ck_assert_str_eq(v, "false"); /* left as it was */
	ck_assert_str_eq(restock(&m), "t");
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant",
	                     "set-refunds", m.pub, "--restock", "no", NULL),
	    0);
	ck_assert_str_eq(restock(&m), "f");
}
END_TEST

START_TEST(test_ctl_settings_refuse_bad_input)
{
	char out[2048];
	struct shop m;

	shop_make(&m);
	/* Nothing to set, or an unknown option: usage (2). */
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant",
	                     "set-refunds", m.pub, NULL),
	    2);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "set-mail",
	                     m.pub, NULL),
	    2);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "set-mail",
	                     m.pub, "--notify", "yes", NULL),
	    2);
	/* Bad values and unknown merchants: 1, nothing written. */
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant",
	                     "set-refunds", m.pub, "--on-store-cancel", "true",
	                     NULL),
	    1);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "set-mail",
	                     m.pub, "--notify-merchant", "maybe", NULL),
	    1);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "set-mail",
	                     m.pub, "--notify-customers", "yes", NULL),
	    1);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant",
	                     "set-refunds", "mer_0000000000000000",
	                     "--on-store-cancel", "yes", NULL),
	    1);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "set-mail",
	                     "mer_0000000000000000", "--notify-merchant", "no",
	                     NULL),
	    1);
	ck_assert_str_eq(setting(&m,
	                     PV_SQL("SELECT count(*) FROM "
	                            "merchant_mail_settings WHERE merchant_id "
	                            "= $1::bigint")),
	    "0");
	ck_assert_str_eq(on_store_cancel(&m), "f");
}
END_TEST

/*
 * Records an order.paid event for the order and returns the mails it
 * queued, as "customer,merchant" (two statements: a statement does not
 * see what its own triggers wrote).
 */
static const char *
paid_mails(const char *order)
{
	const char *p[2] = { order, NULL };
	char seq[16];

	pv_dbs_copy(seq, sizeof(seq),
	    pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	        PV_SQL("SELECT pv_order_event($1::bigint, 'order.paid', '{}')"),
	        1, p)));
	p[1] = seq;
	return pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("SELECT coalesce(string_agg(recipient, ',' ORDER BY"
	           " recipient), '') FROM mail_log"
	           " WHERE order_id = $1::bigint AND event_seq = $2::int"),
	    2, p));
}

START_TEST(test_ctl_set_mail_decides_what_is_mailed)
{
	char out[2048], v[64], order[24];
	const char *p[1];
	struct shop m;

	shop_make(&m);
	ck_assert_str_eq(pv_dbs_order_insert(&pv_dbs_ctx, &m.s, 1, "2500",
	                     order),
	    "ok");
	/* No settings row: both mails. */
	ck_assert_str_eq(paid_mails(order), "customer,merchant");

	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "set-mail",
	                     m.pub, "--notify-merchant", "no", "--json", NULL),
	    0);
	json_member(out, "notify_merchant", v, sizeof(v));
	ck_assert_str_eq(v, "false");
	json_member(out, "notify_customers", v, sizeof(v));
	ck_assert_str_eq(v, "\"auto\"");
	ck_assert_str_eq(paid_mails(order), "customer");

	/* One option at a time: the other keeps its value. */
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "set-mail",
	                     m.pub, "--notify-customers", "never", NULL),
	    0);
	ck_assert_msg(strstr(out, "notify_merchant: false\n") != NULL &&
	        strstr(out, "notify_customers: never\n") != NULL,
	    "%s", out);
	ck_assert_str_eq(paid_mails(order), "");

	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "set-mail",
	                     m.pub, "--notify-merchant", "yes",
	                     "--notify-customers", "always", NULL),
	    0);
	ck_assert_str_eq(paid_mails(order), "customer,merchant");

	/* The mail jobs are not for the other suites to find. */
	p[0] = order;
	pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("DELETE FROM jobs WHERE kind = 'mail.send' AND"
	           " payload ->> 'mail_id' IN (SELECT id::text FROM mail_log"
	           " WHERE order_id = $1::bigint)"),
	    1, p);
}
END_TEST

Suite *
ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc = tcase_create("settings");

	tcase_add_checked_fixture(tc, pv_dbs_setup, pv_dbs_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ctl_set_refunds_on_store_cancel);
	tcase_add_test(tc, test_ctl_set_refunds_restock_needs_a_store);
	tcase_add_test(tc, test_ctl_settings_refuse_bad_input);
	tcase_add_test(tc, test_ctl_set_mail_decides_what_is_mailed);
	suite_add_tcase(s, tc);
	return s;
}
