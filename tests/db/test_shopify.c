/*
 * Connecting a merchant to Shopify end to end: the real pivotactl
 * against the database of tests/db/run.sh and the loopback fake store
 * of tests/fakes/fake_shopify.py.  pivotactl commits, so these tests
 * cannot roll back: each makes its own merchant and shop name.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "pv_config.h"
#include "pv_crypto.h"
#include "pv_db.h"
#include "pv_fake.h"
#include "pv_proc.h"
#include "pv_shopify.h"
#include "pv_test.h"

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

static void
setup(void)
{
	struct pv_err err = { 0 };

	ck_assert_ptr_nonnull(fake);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/reset", NULL), 0);
	/* pivotactl inherits these. */
	setenv("PIVOTA_MASTER_KEY", KEY, 1);
	setenv("PIVOTA_ENV", "test", 1);
	unsetenv("PIVOTA_SHOPIFY_API_BASE");
	ck_assert_msg(pv_ctx_open(&ctx, "db_tests", &cfg, &err) == 0, "%s",
	    err.msg);
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

/* A new merchant's public id, and a shop name of its own. */
static void
merchant(char id[32], char shop[64])
{
	char out[2048], name[64], email[96];
	struct json_object *o, *v;

	snprintf(name, sizeof(name), "Shopify test %d", ++seq);
	snprintf(email, sizeof(email), "shopify-%d-%ld@example.com", seq,
	    (long)getpid());
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "create", "--name",
	                     name, "--email", email, "--json", NULL),
	    0);
	o = json_tokener_parse(out);
	ck_assert_msg(o != NULL &&
	        json_object_object_get_ex(o, "merchant_id", &v),
	    "pivotactl printed: %s", out);
	snprintf(id, 32, "%s", json_object_get_string(v));
	json_object_put(o);
	snprintf(shop, 64, "s%s.myshopify.com", id + 4);
}

/* Tells the fake to answer as shop. */
static void
fake_shop(const char *shop)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"shop\": \"%s\"}", shop);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/config", body), 0);
}

static size_t
fake_requests(void)
{
	struct json_object *o = pv_fake_call(fake, "GET", "/__fake/requests",
	                       NULL),
	                   *arr;
	size_t n;

	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "requests", &arr));
	n = json_object_array_length(arr);
	json_object_put(o);
	return n;
}

/* merchant_shopify rows of the merchant, and the row as JSON text. */
static int
row(const char *id, const char **text)
{
	struct pv_err err = { 0 };
	const char *p[1] = { id };
	PGresult *res;

	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("SELECT row_to_json(s)::text FROM"
	                            " merchant_shopify s JOIN merchants m"
	                            " ON m.id = s.merchant_id"
	                            " WHERE m.public_id = $1"),
	                     1, p, &res, &err),
	    0);
	*text = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : NULL;
	return PQntuples(res);
}

static const char *
column(const char *id, const char *sql_col)
{
	struct pv_err err = { 0 };
	struct json_object *o;
	const char *text, *v;

	ck_assert_int_eq(row(id, &text), 1);
	o = json_tokener_parse(text);
	ck_assert_ptr_nonnull(o);
	v = json_object_get_string(json_object_object_get(o, sql_col));
	if (v != NULL)
		ck_assert_ptr_nonnull(v = pv_arena_strdup(ctx.arena, v, &err));
	json_object_put(o);
	return v;
}

START_TEST(test_shopify_connect_stores_the_token_sealed)
{
	char id[32], shop[64], out[2048], other[32], oshop[64];
	struct pv_shopify_conn conn;
	struct pv_shopify_shop sh;
	struct pv_err err = { 0 };
	struct json_object *o;
	const char *text, *sealed, *secret;
	unsigned char *plain;
	size_t len;

	merchant(id, shop);
	fake_shop(shop);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     id, "--shop", shop, "--token", TOKEN, "--api-base",
	                     pv_fake_url(fake), "--webhook-secret",
	                     "whsec_shopify_app_secret", "--json", NULL),
	    0);
	o = json_tokener_parse(out);
	ck_assert_msg(o != NULL, "pivotactl printed: %s", out);
	ck_assert_str_eq(json_object_get_string(
	                     json_object_object_get(o, "shop")),
	    shop);
	ck_assert_str_eq(json_object_get_string(
	                     json_object_object_get(o, "shop_name")),
	    "Pivota Fake Outfitters");
	ck_assert_str_eq(json_object_get_string(
	                     json_object_object_get(o, "currency")),
	    "USD");
	ck_assert_str_eq(json_object_get_string(
	                     json_object_object_get(o, "api_version")),
	    PV_SHOPIFY_API_VERSION);
	ck_assert(json_object_get_boolean(
	    json_object_object_get(o, "webhook_secret")));
	json_object_put(o);
	ck_assert_ptr_null(strstr(out, TOKEN));
	ck_assert_uint_eq(fake_requests(), 1);

	/* Neither secret appears anywhere in the row. */
	ck_assert_int_eq(row(id, &text), 1);
	ck_assert_ptr_null(strstr(text, TOKEN));
	ck_assert_ptr_null(strstr(text, "0123456789abcdef"));
	ck_assert_ptr_null(strstr(text, "whsec_shopify_app_secret"));
	sealed = column(id, "token_sealed");
	ck_assert(strncmp(sealed, "v1.", 3) == 0);
	ck_assert_str_eq(column(id, "shop_domain"), shop);
	ck_assert_str_eq(column(id, "sync_state"), "never");
	ck_assert_ptr_null(column(id, "disconnected_at"));

	/* It opens with the master key and this merchant's id only. */
	ck_assert_int_eq(pv_crypto_open(ctx.arena, cfg.master_key, id,
	                     strlen(id), sealed, strlen(sealed), &plain, &len,
	                     &err),
	    0);
	ck_assert_uint_eq(len, strlen(TOKEN));
	ck_assert(memcmp(plain, TOKEN, len) == 0);
	merchant(other, oshop);
	ck_assert_int_eq(pv_crypto_open(ctx.arena, cfg.master_key, other,
	                     strlen(other), sealed, strlen(sealed), &plain,
	                     &len, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);

	/* What a sync job or the order worker would do with it. */
	pv_err_clear(&err);
	ck_assert_int_eq(pv_shopify_conn_load(&ctx, id, &conn, &err), 0);
	ck_assert_str_eq(conn.token, TOKEN);
	ck_assert_str_eq(conn.shop, shop);
	ck_assert_str_eq(conn.api_base, pv_fake_url(fake));
	ck_assert_int_eq(pv_shopify_shop(&ctx, &conn, &sh, &err), 0);
	ck_assert_int_eq(pv_shopify_webhook_secret(&ctx, id, &secret, &err), 0);
	ck_assert_str_eq(secret, "whsec_shopify_app_secret");
	ck_assert_int_eq(pv_shopify_webhook_secret(&ctx, other, &secret, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_NOTFOUND);
}
END_TEST

START_TEST(test_shopify_connect_bad_token_stores_nothing)
{
	struct pv_shopify_conn conn = { NULL, "shpat_wrong", NULL };
	char id[32], shop[64], out[2048];
	struct pv_shopify_shop sh;
	struct pv_err err = { 0 };
	const char *text, *at;

	merchant(id, shop);
	fake_shop(shop);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     id, "--shop", shop, "--token", "shpat_wrong",
	                     "--api-base", pv_fake_url(fake), "--json", NULL),
	    1);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(row(id, &text), 0);
	ck_assert_uint_eq(fake_requests(), 1);

	conn.shop = shop;
	conn.api_base = pv_fake_url(fake);
	ck_assert_int_eq(pv_shopify_connect(&ctx, id, &conn, NULL, &sh, &at,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_ptr_nonnull(strstr(err.msg, "refused the access token"));
	ck_assert_int_eq(row(id, &text), 0);
}
END_TEST

START_TEST(test_shopify_connect_refuses_bad_input)
{
	char id[32], shop[64], out[2048];
	const char *text;

	merchant(id, shop);
	fake_shop(shop);
	/* Checked before anyone is asked. */
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     id, "--shop", "shop.evil.example", "--token",
	                     TOKEN, "--api-base", pv_fake_url(fake), NULL),
	    1);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     "mer_ffffffffffffffff", "--shop", shop, "--token",
	                     TOKEN, "--api-base", pv_fake_url(fake), NULL),
	    1);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     id, "--shop", shop, NULL),
	    2);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     id, "--shop", shop, "--token", TOKEN, "--api-base",
	                     "http://10.1.2.3:80", NULL),
	    1);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     id, "--shop", "127.0.0.1", "--token", TOKEN, NULL),
	    1);
	ck_assert_uint_eq(fake_requests(), 0);
	/* The store says it is another shop. */
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     id, "--shop", "someone-else.myshopify.com",
	                     "--token", TOKEN, "--api-base", pv_fake_url(fake),
	                     NULL),
	    1);
	ck_assert_int_eq(row(id, &text), 0);
	/* Production never talks to a loopback store. */
	setenv("PIVOTA_ENV", "prod", 1);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     id, "--shop", shop, "--token", TOKEN, "--api-base",
	                     pv_fake_url(fake), NULL),
	    1);
	setenv("PIVOTA_ENV", "test", 1);
	ck_assert_int_eq(row(id, &text), 0);
	/* Outside production a loopback host may stand for the shop. */
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     id, "--shop", "127.0.0.1", "--token", TOKEN,
	                     "--api-base", pv_fake_url(fake), NULL),
	    0);
	ck_assert_ptr_nonnull(strstr(out, "shop: 127.0.0.1\n"));
	ck_assert_str_eq(column(id, "shop_domain"), "127.0.0.1");
}
END_TEST

START_TEST(test_shopify_connect_token_from_stdin)
{
	char id[32], shop[64], out[2048], cmd[1024];
	const char *argv[] = { "sh", "-c", cmd, NULL };
	struct pv_shopify_conn conn;
	struct pv_err err = { 0 };

	merchant(id, shop);
	fake_shop(shop);
	snprintf(cmd, sizeof(cmd),
	    "printf '%%s\\n' '%s' | '%s/bin/pivotactl' merchant"
	    " connect-shopify %s --shop %s --token - --api-base %s",
	    TOKEN, getenv("PV_BUILD_DIR"), id, shop, pv_fake_url(fake));
	ck_assert_int_eq(pv_proc_capture(argv, out, sizeof(out)), 0);
	ck_assert_int_eq(pv_shopify_conn_load(&ctx, id, &conn, &err), 0);
	ck_assert_str_eq(conn.token, TOKEN);
}
END_TEST

START_TEST(test_shopify_disconnect_destroys_secrets)
{
	char id[32], shop[64], out[2048];
	struct pv_shopify_conn conn;
	struct pv_err err = { 0 };

	merchant(id, shop);
	fake_shop(shop);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     id, "--shop", shop, "--token", TOKEN, "--api-base",
	                     pv_fake_url(fake), "--webhook-secret", "whsec_x",
	                     NULL),
	    0);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "disconnect-shopify",
	                     id, "--json", NULL),
	    0);
	ck_assert_ptr_nonnull(strstr(out, "\"connected\":false"));
	ck_assert_ptr_nonnull(column(id, "disconnected_at"));
	ck_assert_ptr_null(column(id, "token_sealed"));
	ck_assert_ptr_null(column(id, "webhook_secret_sealed"));
	ck_assert_int_eq(pv_shopify_conn_load(&ctx, id, &conn, &err), -1);
	ck_assert_int_eq(err.code, PV_E_NOTFOUND);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "disconnect-shopify",
	                     id, NULL),
	    1);

	/* Connecting again brings it back, without the old secret. */
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify",
	                     id, "--shop", shop, "--token", TOKEN, "--api-base",
	                     pv_fake_url(fake), NULL),
	    0);
	ck_assert_ptr_null(column(id, "disconnected_at"));
	ck_assert_ptr_null(column(id, "webhook_secret_sealed"));
	pv_err_clear(&err);
	ck_assert_int_eq(pv_shopify_conn_load(&ctx, id, &conn, &err), 0);
}
END_TEST

START_TEST(test_shopify_connect_one_store_one_merchant)
{
	char a[32], ashop[64], b[32], bshop[64], out[2048];
	const char *text;

	merchant(a, ashop);
	merchant(b, bshop);
	fake_shop(ashop);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify", a,
	                     "--shop", ashop, "--token", TOKEN, "--api-base",
	                     pv_fake_url(fake), NULL),
	    0);
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify", b,
	                     "--shop", ashop, "--token", TOKEN, "--api-base",
	                     pv_fake_url(fake), NULL),
	    1);
	ck_assert_int_eq(row(b, &text), 0);
	/* Reconnecting the same merchant (a new token, say) is fine. */
	ck_assert_int_eq(ctl(out, sizeof(out), "merchant", "connect-shopify", a,
	                     "--shop", ashop, "--token", TOKEN, "--api-base",
	                     pv_fake_url(fake), NULL),
	    0);
}
END_TEST

Suite *
shopify_suite(void)
{
	Suite *s = suite_create("shopify");
	TCase *tc = tcase_create("connect");

	tcase_add_unchecked_fixture(tc, start_fake, stop_fake);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_shopify_connect_stores_the_token_sealed);
	tcase_add_test(tc, test_shopify_connect_bad_token_stores_nothing);
	tcase_add_test(tc, test_shopify_connect_refuses_bad_input);
	tcase_add_test(tc, test_shopify_connect_token_from_stdin);
	tcase_add_test(tc, test_shopify_disconnect_destroys_secrets);
	tcase_add_test(tc, test_shopify_connect_one_store_one_merchant);
	suite_add_tcase(s, tc);
	return s;
}
