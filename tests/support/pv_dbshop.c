/*
 * Helpers the order and refund database suites share: two sessions on
 * the test cluster (a second one for races), statements that fail the
 * test on error, a merchant selling one variant, and orders inserted
 * through pv_order_insert().  Rows are committed; every shop has ids no
 * other test uses.  Test code: failures abort the test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "pv_dbshop.h"

struct pv_config pv_dbs_cfg;
struct pv_ctx pv_dbs_ctx;
struct pv_ctx pv_dbs_other; /* a second session */

const char *
pv_dbs_url(void)
{
	const char *u = getenv("PIVOTA_DATABASE_URL");

	ck_assert_msg(u != NULL, "PIVOTA_DATABASE_URL is not set");
	return u;
}

void
pv_dbs_open_ctx(struct pv_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->cfg = &pv_dbs_cfg;
	c->arena = pv_arena_new(0);
	c->db = pv_db_new(pv_dbs_url(), "db_tests");
	c->now = time(NULL);
}

void
pv_dbs_close_ctx(struct pv_ctx *c)
{
	pv_arena_reset(c->arena);
	pv_db_free(c->db);
	pv_arena_free(c->arena);
}

void
pv_dbs_setup(void)
{
	memset(&pv_dbs_cfg, 0, sizeof(pv_dbs_cfg));
	pv_dbs_open_ctx(&pv_dbs_ctx);
	pv_dbs_open_ctx(&pv_dbs_other);
}

void
pv_dbs_teardown(void)
{
	pv_dbs_close_ctx(&pv_dbs_ctx);
	pv_dbs_close_ctx(&pv_dbs_other);
}

/* Runs q with n params on c; the result, failing the test on error. */
PGresult *
pv_dbs_run(struct pv_ctx *c, const char *q, int n, const char *const *p)
{
	struct pv_err err = { 0 };
	PGresult *res;

	ck_assert_msg(pv_db_exec(c, q, n, p, &res, &err) == 0, "%s: %s", q,
	    err.msg);
	return res;
}

/* The one value of a one-row, one-column result, or "" for NULL. */
const char *
pv_dbs_value(PGresult *res)
{
	ck_assert_int_eq(PQntuples(res), 1);
	return PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0);
}

void
pv_dbs_copy(char *dst, size_t size, const char *src)
{
	ck_assert_int_lt(snprintf(dst, size, "%s", src), (int)size);
}

/* 16 lowercase hex digits no other test of this run uses. */
void
pv_dbs_unique_hex(char *out, size_t size)
{
	static unsigned seq;

	snprintf(out, size, "%08x%08x", (unsigned)getpid(),
	    (unsigned)time(NULL) * 64u + seq++);
}

/* A merchant selling one variant at price (USD cents) with stock. */
void
pv_dbs_shop_make(struct pv_dbs_shop *s, const char *price, const char *stock)
{
	char hx[24], mer[32], agt[32], email[64];
	const char *p[6];

	pv_dbs_unique_hex(hx, sizeof(hx));
	snprintf(mer, sizeof(mer), "mer_%s", hx);
	snprintf(agt, sizeof(agt), "agt_%s", hx);
	snprintf(email, sizeof(email), "orders-%s@test.example", hx);
	snprintf(s->product_public, sizeof(s->product_public), "prod_%s", hx);
	snprintf(s->variant_public, sizeof(s->variant_public), "var_%s", hx);
	p[0] = mer;
	p[1] = email;
	pv_dbs_copy(s->merchant, sizeof(s->merchant),
	    pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	        PV_SQL("INSERT INTO merchants (public_id, business_name, email)"
	               " VALUES ($1, 'Orders test', $2) RETURNING id"),
	        2, p)));
	p[0] = agt;
	pv_dbs_copy(s->agent, sizeof(s->agent),
	    pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	        PV_SQL("INSERT INTO agents (public_id, name) VALUES ($1,"
	               " 'orders test') RETURNING id"),
	        1, p)));
	p[0] = s->merchant;
	p[1] = s->product_public;
	p[2] = price;
	pv_dbs_copy(s->product, sizeof(s->product),
	    pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
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
	pv_dbs_copy(s->variant, sizeof(s->variant),
	    pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
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
const char *
pv_dbs_order_insert(struct pv_ctx *c, const struct pv_dbs_shop *s, int quantity,
    const char *price, char *id)
{
	char hx[24], pub[32], items[512], sub[24];
	const char *p[7];
	PGresult *res;

	pv_dbs_unique_hex(hx, sizeof(hx));
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
	res = pv_dbs_run(c,
	    PV_SQL("SELECT result, order_id FROM pv_order_insert($1,"
	           " $2::bigint, $3::bigint, 'USD', 2::smallint, $4::bigint, 0,"
	           " 0, 'buyer@test.example', '{\"name\":\"B\","
	           "\"address_line1\":\"1 Main St\",\"city\":\"Town\","
	           "\"postal_code\":\"12345\",\"country\":\"US\"}'::jsonb,"
	           " '{}'::jsonb, '', 'sandbox', 1800, $5::jsonb)"),
	    5, p);
	ck_assert_int_eq(PQntuples(res), 1);
	if (id != NULL && !PQgetisnull(res, 0, 1))
		pv_dbs_copy(id, 24, PQgetvalue(res, 0, 1));
	return PQgetvalue(res, 0, 0);
}

/* "status/payment_status" of an order. */
const char *
pv_dbs_order_state(const char *id)
{
	const char *p[1] = { id };

	return pv_dbs_value(pv_dbs_run(&pv_dbs_ctx,
	    PV_SQL("SELECT status || '/' || payment_status FROM orders"
	           " WHERE id = $1::bigint"),
	    1, p));
}
