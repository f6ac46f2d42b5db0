/*
 * Database tests of the catalog (migrations/0006_catalog.sql and
 * pv_catalog_import): batches applied idempotently, matched by
 * external id, SKU and handle; roll-ups kept by the triggers when a
 * variant changes; the vocabulary and typo correction; and the search
 * statement of the products program, its scope and its use of the
 * index.  Each test runs in a transaction that teardown rolls back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_catalog.h"
#include "pv_config.h"
#include "pv_db.h"
#include "pv_products_sql.h"
#include "pv_test.h"

static struct pv_config cfg;
static struct pv_ctx ctx;
static struct pv_err err;
static const char *mid; /* the test merchant's internal id */

static void
setup(void)
{
	const char *u = getenv("PIVOTA_DATABASE_URL");
	PGresult *res;

	ck_assert_msg(u != NULL, "PIVOTA_DATABASE_URL is not set");
	memset(&cfg, 0, sizeof(cfg));
	memset(&ctx, 0, sizeof(ctx));
	pv_err_clear(&err);
	ctx.cfg = &cfg;
	ctx.arena = pv_arena_new(0);
	ctx.db = pv_db_new(u, "db_tests");
	ck_assert_int_eq(pv_db_begin(&ctx, &err), 0);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("INSERT INTO merchants (public_id,"
	                            " business_name, email) VALUES"
	                            " ('mer_00000000000000c1', 'Catalog test',"
	                            " 'catalog@test.example') RETURNING id"),
	                     0, NULL, &res, &err),
	    0);
	mid = PQgetvalue(res, 0, 0);
}

static void
teardown(void)
{
	pv_db_end(&ctx, 0, &err);
	pv_arena_reset(ctx.arena);
	pv_db_free(ctx.db);
	pv_arena_free(ctx.arena);
}

/* Imports a JSON catalog for the test merchant; returns the result. */
static struct pv_catalog_result
import(const char *json, bool replace)
{
	struct pv_catalog_result r;
	struct pv_catalog c;

	ck_assert_int_eq(pv_catalog_init(&c, ctx.arena, "USD", &err), 0);
	ck_assert_int_eq(pv_catalog_parse_json(&c, json, strlen(json), &err),
	    0);
	ck_assert_msg(c.errors_total == 0, "%s", c.nerrors ? c.errors[0] : "");
	ck_assert_msg(pv_catalog_import(&ctx, &c, mid, "import", replace, &r,
	                  &err) == 0,
	    "import: %s", err.msg);
	return r;
}

/* The single text value of a one-row, one-column query (a PV_SQL). */
static const char *
value(const char *sql)
{
	PGresult *res;

	ck_assert_msg(pv_db_exec(&ctx, sql, 0, NULL, &res, &err) == 0, "%s",
	    err.msg);
	ck_assert_int_eq(PQntuples(res), 1);
	return PQgetisnull(res, 0, 0) ? "NULL" : PQgetvalue(res, 0, 0);
}

static const char catalog1[] =
    "{\"products\": ["
    "{\"external_id\": \"p1\", \"title\": \"Classic Hoodie\","
    " \"description\": \"Warm cotton hoodie.\", \"tags\": [\"hoodies\"],"
    " \"variants\": ["
    "  {\"external_id\": \"v1\", \"sku\": \"H-S\", \"price\": \"48.00\","
    "   \"options\": {\"Size\": \"S\"}, \"inventory_quantity\": 2},"
    "  {\"external_id\": \"v2\", \"sku\": \"H-M\", \"price\": \"50.00\","
    "   \"options\": {\"Size\": \"M\"}, \"inventory_quantity\": 0}]},"
    "{\"title\": \"Rain Jacket\", \"price\": \"120.00\", \"sku\": \"RJ\","
    " \"inventory_quantity\": 0},"
    "{\"title\": \"Wool Socks\", \"price\": \"18.00\", \"sku\": \"WS\","
    " \"inventory_tracked\": false}]}";

START_TEST(test_catalog_import_is_idempotent)
{
	struct pv_catalog_result r;

	r = import(catalog1, false);
	ck_assert_int_eq(r.products, 3);
	ck_assert_int_eq(r.variants, 4);
	ck_assert_int_eq(r.created, 3);
	ck_assert_int_eq(r.updated, 0);
	ck_assert_int_gt(r.words, 0);
	r = import(catalog1, false);
	ck_assert_int_eq(r.created, 0);
	ck_assert_int_eq(r.updated, 0);
	ck_assert_int_eq(r.unchanged, 3);
	ck_assert_str_eq(value(PV_SQL("SELECT count(*) FROM products")), "3");
	ck_assert_str_eq(value(PV_SQL("SELECT count(*) FROM variants")), "4");
	ck_assert_str_eq(value(PV_SQL(
	                     "SELECT count(*) FROM catalog_staged_products")),
	    "0");
	ck_assert_str_eq(value(PV_SQL("SELECT product_count FROM merchants"
	                              " WHERE public_id ="
	                              " 'mer_00000000000000c1'")),
	    "3");
	/* Roll-ups: the first variant prices the product; stock sums. */
	ck_assert_str_eq(value(PV_SQL("SELECT price_minor || ' '"
	                              " || inventory_quantity || ' '"
	                              " || in_stock || ' ' || variant_count"
	                              " FROM products"
	                              " WHERE external_id = 'p1'")),
	    "4800 2 true 2");
	ck_assert_str_eq(value(PV_SQL("SELECT in_stock FROM products"
	                              " WHERE title = 'Wool Socks'")),
	    "t");
	ck_assert_str_eq(value(PV_SQL("SELECT in_stock FROM products"
	                              " WHERE title = 'Rain Jacket'")),
	    "f");
}
END_TEST

START_TEST(test_catalog_changes_are_matched_not_duplicated)
{
	struct pv_catalog_result r;
	const char *var1;

	import(catalog1, false);
	var1 = value(PV_SQL("SELECT public_id FROM variants"
	                    " WHERE external_id = 'v1'"));
	/* Renamed, repriced, a variant dropped, one added, SKU kept. */
	r = import("{\"products\": ["
	           "{\"external_id\": \"p1\", \"handle\": \"hoodie-2\","
	           " \"title\": \"Classic Zip Hoodie\", \"variants\": ["
	           "  {\"external_id\": \"v1\", \"sku\": \"H-S\","
	           "   \"price\": \"45.00\", \"options\": {\"Size\": \"S\"}},"
	           "  {\"sku\": \"H-L\", \"price\": \"45.00\","
	           "   \"options\": {\"Size\": \"L\"}}]},"
	           "{\"title\": \"Rain Jacket\", \"price\": \"120.00\","
	           " \"sku\": \"RJ\", \"inventory_quantity\": 4}]}",
	    true);
	ck_assert_int_eq(r.created, 0);
	ck_assert_int_eq(r.updated, 2);
	ck_assert_int_eq(r.archived, 1);
	ck_assert_str_eq(value(PV_SQL("SELECT count(*) FROM products")), "3");
	ck_assert_str_eq(value(PV_SQL("SELECT public_id FROM variants"
	                              " WHERE external_id = 'v1'")),
	    var1);
	ck_assert_str_eq(value(PV_SQL("SELECT string_agg(sku, ',' ORDER BY"
	                              " position) FROM variants v JOIN"
	                              " products p ON p.id = v.product_id"
	                              " WHERE p.external_id = 'p1'")),
	    "H-S,H-L");
	ck_assert_str_eq(value(PV_SQL("SELECT title || ' ' || handle || ' '"
	                              " || price_minor FROM products"
	                              " WHERE external_id = 'p1'")),
	    "Classic Zip Hoodie hoodie-2 4500");
	ck_assert_str_eq(value(PV_SQL("SELECT status FROM products"
	                              " WHERE title = 'Wool Socks'")),
	    "archived");
	ck_assert_str_eq(value(PV_SQL("SELECT active::text FROM product_search"
	                              " s JOIN products p ON p.id ="
	                              " s.product_id WHERE p.title ="
	                              " 'Wool Socks'")),
	    "false");
	ck_assert_str_eq(value(PV_SQL("SELECT product_count FROM merchants"
	                              " WHERE public_id ="
	                              " 'mer_00000000000000c1'")),
	    "2");
	/* A product that takes over another's handle frees it first. */
	r = import("{\"products\": [{\"external_id\": \"p9\","
	           " \"handle\": \"hoodie-2\", \"title\": \"New\","
	           " \"price\": \"1\"}]}",
	    false);
	ck_assert_int_eq(r.created, 1);
	ck_assert_str_eq(value(PV_SQL("SELECT handle <> 'hoodie-2' FROM"
	                              " products WHERE external_id = 'p1'")),
	    "t");
}
END_TEST

START_TEST(test_catalog_variant_updates_roll_up)
{
	import(catalog1, false);
	/* An order takes the last hoodie: nothing else needs to know. */
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("UPDATE variants SET inventory_quantity ="
	                            " 0 WHERE sku = 'H-S'"),
	                     0, NULL, NULL, &err),
	    0);
	ck_assert_str_eq(value(PV_SQL("SELECT p.in_stock || ' ' ||"
	                              " p.inventory_quantity || ' ' ||"
	                              " s.in_stock FROM products p JOIN"
	                              " product_search s ON s.product_id ="
	                              " p.id WHERE p.external_id = 'p1'")),
	    "false 0 false");
	/*
	 * Reserving stock (orders do, on every creation) changes nothing a
	 * roll-up reads: the product and its search row stay as they were.
	 */
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("UPDATE products SET updated_at ="
	                            " '2001-01-01' WHERE external_id = 'p1'"),
	                     0, NULL, NULL, &err),
	    0);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("UPDATE variants SET reserved_quantity ="
	                            " reserved_quantity + 1 WHERE sku = 'H-M'"),
	                     0, NULL, NULL, &err),
	    0);
	ck_assert_str_eq(value(PV_SQL("SELECT updated_at::date FROM products"
	                              " WHERE external_id = 'p1'")),
	    "2001-01-01");
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("UPDATE variants SET price_minor = 3900"
	                            " WHERE sku = 'H-S'"),
	                     0, NULL, NULL, &err),
	    0);
	ck_assert_str_eq(value(PV_SQL("SELECT updated_at > '2001-01-01'"
	                              " FROM products WHERE external_id ="
	                              " 'p1'")),
	    "t");
	ck_assert_str_eq(value(PV_SQL("SELECT s.price_e4 FROM product_search s"
	                              " JOIN products p ON p.id ="
	                              " s.product_id WHERE p.external_id ="
	                              " 'p1'")),
	    "390000");
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("DELETE FROM variants WHERE sku = 'H-S'"),
	                     0, NULL, NULL, &err),
	    0);
	ck_assert_str_eq(value(PV_SQL("SELECT price_minor FROM products"
	                              " WHERE external_id = 'p1'")),
	    "5000");
	/* A suspended merchant's products leave the search, and return. */
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("UPDATE merchants SET status ="
	                            " 'suspended' WHERE public_id ="
	                            " 'mer_00000000000000c1'"),
	                     0, NULL, NULL, &err),
	    0);
	ck_assert_str_eq(value(PV_SQL("SELECT count(*) FILTER (WHERE active)"
	                              " FROM product_search")),
	    "0");
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("UPDATE merchants SET status = 'active'"
	                            " WHERE public_id ="
	                            " 'mer_00000000000000c1'"),
	                     0, NULL, NULL, &err),
	    0);
	ck_assert_str_eq(value(PV_SQL("SELECT count(*) FILTER (WHERE active)"
	                              " FROM product_search")),
	    "3");
}
END_TEST

START_TEST(test_catalog_correction_uses_the_vocabulary)
{
	import(catalog1, false);
	ck_assert_str_eq(value(PV_SQL("SELECT corrected FROM"
	                              " catalog_query('hodie')")),
	    "hoodie");
	ck_assert_str_eq(value(PV_SQL("SELECT corrected FROM"
	                              " catalog_query('\"rain\" jakcet!')")),
	    "\"rain\" jacket!");
	ck_assert_str_eq(value(PV_SQL("SELECT tsq::text FROM"
	                              " catalog_query('Hoodies')")),
	    "'hoodi'");
	/* Known words, SKUs, numbers and short words are left alone. */
	ck_assert_str_eq(value(PV_SQL("SELECT corrected FROM"
	                              " catalog_query('wool socks')")),
	    "NULL");
	ck_assert_str_eq(value(PV_SQL("SELECT corrected FROM"
	                              " catalog_query('H-M 4800 ab')")),
	    "NULL");
	ck_assert_str_eq(value(PV_SQL("SELECT tsq IS NULL FROM"
	                              " catalog_query('the of and')")),
	    "t");
	ck_assert_str_eq(value(PV_SQL("SELECT tsq::text FROM catalog_query("
	                              "'it''s a back\\slash ''')")),
	    "'back' & 'slash'");
}
END_TEST

/* Runs the products program's search for one agent; returns rows. */
static PGresult *
search(const char *agent, const char *restricted, const char *q,
    const char *min_e4)
{
	const char *p[12] = { agent, restricted, NULL, q, NULL, min_e4, NULL,
		"f", "20", "0", NULL, NULL };
	PGresult *res;

	ck_assert_msg(pv_db_exec(&ctx, PV_SQL(PV_PRODUCTS_SQL_SEARCH), 12, p,
	                  &res, &err) == 0,
	    "search: %s", err.msg);
	return res;
}

START_TEST(test_catalog_search_statement_scope_and_index)
{
	const char *agent,
	    *p[12] = { NULL, "f", NULL, "jacket", NULL, NULL, NULL, "f", "20",
		    "0", NULL, NULL };
	PGresult *res;
	bool indexed = false;
	int r;

	import(catalog1, false);
	agent = value(PV_SQL("INSERT INTO agents (public_id, name) VALUES"
	                     " ('agt_00000000000000c1', 'catalog')"
	                     " RETURNING id"));
	res = search(agent, "f", "jakcet", NULL);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "1"); /* total */
	ck_assert_str_eq(PQgetvalue(res, 0, 3), "jacket");
	res = search(agent, "f", "hoodie", "460000");
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "1");
	res = search(agent, "f", "hoodie", "490000");
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "0");
	/* Restricted to an empty allow-list: nothing at all. */
	res = search(agent, "t", "hoodie", NULL);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "0");
	ck_assert_str_eq(PQgetvalue(res, 0, 2), "0");
	/*
	 * The matches come from the GIN index of product_search, not from
	 * the merchant's products (2,000 of them here).
	 */
	p[0] = agent;
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("INSERT INTO products (public_id,"
	                            " merchant_id, handle, title, currency,"
	                            " currency_exponent)"
	                            " SELECT 'prod_' || lpad(to_hex(i), 16,"
	                            " '0'), $1::bigint, 'filler-' || i,"
	                            " 'Filler item ' || i, 'USD', 2"
	                            " FROM generate_series(1, 2000) i"),
	                     1, &mid, NULL, &err),
	    0);
	ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("ANALYZE product_search"), 0,
	                     NULL, NULL, &err),
	    0);
	/* So small a table is cheaper to scan whole: rule that out. */
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("SET LOCAL enable_seqscan = off"), 0, NULL,
	                     NULL, &err),
	    0);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("EXPLAIN " PV_PRODUCTS_SQL_SEARCH), 12, p,
	                     &res, &err),
	    0);
	for (r = 0; r < PQntuples(res); r++)
		if (strstr(PQgetvalue(res, r, 0), "product_search_doc") != NULL)
			indexed = true;
	ck_assert(indexed);
}
END_TEST

/* Every cell of res, for comparing two results. */
static const char *
cells(PGresult *res)
{
	size_t len = 1, at = 0;
	char *out;
	int r, c;

	for (r = 0; r < PQntuples(res); r++)
		for (c = 0; c < PQnfields(res); c++)
			len += strlen(PQgetvalue(res, r, c)) + 2;
	out = pv_arena_alloc(ctx.arena, len, &err);
	ck_assert_ptr_nonnull(out);
	for (r = 0; r < PQntuples(res); r++)
		for (c = 0; c < PQnfields(res); c++)
			at += (size_t)snprintf(out + at, len - at, "%s%c",
			    PQgetisnull(res, r, c) ? "~" :
			                             PQgetvalue(res, r, c),
			    c + 1 < PQnfields(res) ? '|' : '\n');
	return out;
}

/* The search with paging, through the prefix when it applies. */
static const char *
search_page(const char *agent, const char *q, const char *limit,
    const char *offset, const char *rank, const char *after, bool full)
{
	const char *p[12] = { agent, "f", NULL, q, NULL, NULL, NULL, "f", limit,
		offset, rank, after };
	const char *out;
	PGresult *res;

	/* The full path: no prefix to take. */
	if (full)
		ck_assert_int_eq(pv_db_exec(&ctx, PV_SQL("SAVEPOINT full_path"),
		                     0, NULL, NULL, &err) |
		        pv_db_exec(&ctx,
		            PV_SQL("DELETE FROM catalog_top_bounds"), 0, NULL,
		            NULL, &err),
		    0);
	ck_assert_msg(pv_db_exec(&ctx, PV_SQL(PV_PRODUCTS_SQL_SEARCH), 12, p,
	                  &res, &err) == 0,
	    "search: %s", err.msg);
	out = cells(res);
	if (full)
		ck_assert_int_eq(pv_db_exec(&ctx,
		                     PV_SQL("ROLLBACK TO SAVEPOINT full_path"),
		                     0, NULL, NULL, &err),
		    0);
	return out;
}

/* The prefix answers exactly as ranking every match, page by page. */
static void
same_pages(const char *agent)
{
	static const char *const qs[] = { "filler", "fillers", "item", "filer",
		"special", "filler item", "item fillers" };
	static const char *const pages[][4] = {
		{ "5", "0", NULL, NULL },
		{ "5", "8", NULL, NULL },
		{ "20", "0", NULL, NULL },
		{ "3", "0", "0.6079271", "prod_0000000000000010" },
		{ "3", "1", "0.24317084", "prod_0000000000000020" },
		{ "3", "0", "0", "prod_0000000000000005" },
	};
	size_t i, j;

	for (i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		for (j = 0; j < sizeof(pages) / sizeof(pages[0]); j++)
			ck_assert_str_eq(search_page(agent, qs[i], pages[j][0],
			                     pages[j][1], pages[j][2],
			                     pages[j][3], false),
			    search_page(agent, qs[i], pages[j][0], pages[j][1],
			        pages[j][2], pages[j][3], true));
	/* The kept counts are the counts. */
	ck_assert_str_eq(value(PV_SQL("SELECT count(*) FROM catalog_top_bounds"
	                              " b WHERE b.n <> (SELECT count(*) FROM"
	                              " product_search s WHERE s.active"
	                              " AND s.doc @@ b.query::tsquery)")),
	    "0");
}

START_TEST(test_catalog_search_prefix_is_exact)
{
	const char *agent;
	PGresult *res;
	bool prefix = true;
	int r;

	agent = value(PV_SQL("INSERT INTO agents (public_id, name) VALUES"
	                     " ('agt_00000000000000c2', 'prefix')"
	                     " RETURNING id"));
	/* Three ranks for "filler": title twice, title once, vendor. */
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL(
	                         "INSERT INTO products (public_id,"
	                         " merchant_id, handle, title, vendor,"
	                         " description, currency, currency_exponent)"
	                         " SELECT 'prod_' || lpad(to_hex(i), 16,"
	                         " '0'), $1::bigint, 'filler-' || i,"
	                         " CASE i % 3 WHEN 0 THEN 'Filler filler item'"
	                         " WHEN 1 THEN 'Filler item' ELSE 'Item' END,"
	                         " 'Filler', 'A special thing', 'USD', 2"
	                         " FROM generate_series(1, 40) i"),
	                     1, &mid, NULL, &err),
	    0);
	ck_assert_str_eq(value(PV_SQL("SELECT catalog_refresh_words() > 0")),
	    "t");
	/* Broad: 10 products; a prefix of 12.  Words and a title pair. */
	ck_assert_str_eq(value(PV_SQL("SELECT catalog_refresh_top(10, 12)"
	                              " >= 3")),
	    "t");
	ck_assert_str_eq(value(PV_SQL("SELECT string_agg(query, ',')"
	                              " FROM catalog_top_bounds"
	                              " WHERE first <> lexeme")),
	    "'filler' & 'item'");
	same_pages(agent);
	/* The first page comes from the prefix, not from ranking. */
	{
		const char *p[12] = { agent, "f", NULL, "filler", NULL, NULL,
			NULL, "f", "5", "0", NULL, NULL };

		ck_assert_int_eq(
		    pv_db_exec(&ctx,
		        PV_SQL("EXPLAIN (ANALYZE, COSTS OFF,"
		               " TIMING OFF) " PV_PRODUCTS_SQL_SEARCH),
		        12, p, &res, &err),
		    0);
		for (r = 0; r < PQntuples(res); r++)
			if (strstr(PQgetvalue(res, r, 0),
			        "Bitmap Heap Scan on product_search") != NULL &&
			    strstr(PQgetvalue(res, r, 0), "never executed") ==
			        NULL)
				prefix = false;
		ck_assert(prefix);
	}
	/* Writes keep it exact: archived, re-ranked, renumbered, stock. */
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL(
	                         "UPDATE products SET status = 'archived'"
	                         " WHERE merchant_id = $1::bigint"
	                         " AND public_id IN ('prod_0000000000000003',"
	                         " 'prod_0000000000000004',"
	                         " 'prod_000000000000000a')"),
	                     1, &mid, NULL, &err),
	    0);
	same_pages(agent);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("UPDATE products SET title = CASE"
	                            " WHEN title = 'Item' THEN 'Filler filler'"
	                            " ELSE 'Item' END WHERE merchant_id ="
	                            " $1::bigint AND id % 4 = 0"),
	                     1, &mid, NULL, &err),
	    0);
	same_pages(agent);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("UPDATE products SET status = 'active'"
	                            " WHERE merchant_id = $1::bigint"
	                            " AND public_id = 'prod_0000000000000003'"),
	                     1, &mid, NULL, &err),
	    0);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("DELETE FROM products WHERE merchant_id ="
	                            " $1::bigint AND public_id ="
	                            " 'prod_0000000000000006'"),
	                     1, &mid, NULL, &err),
	    0);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("UPDATE variants SET inventory_quantity ="
	                            " inventory_quantity + 1"
	                            " WHERE merchant_id = $1::bigint"),
	                     1, &mid, NULL, &err),
	    0);
	same_pages(agent);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("UPDATE merchants SET status = 'suspended'"
	                            " WHERE id = $1::bigint"),
	                     1, &mid, NULL, &err),
	    0);
	same_pages(agent);
	ck_assert_int_eq(pv_db_exec(&ctx,
	                     PV_SQL("UPDATE merchants SET status = 'active'"
	                            " WHERE id = $1::bigint"),
	                     1, &mid, NULL, &err),
	    0);
	same_pages(agent);
}
END_TEST

Suite *
catalog_suite(void)
{
	Suite *s = suite_create("catalog");
	TCase *tc = tcase_create("import");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_catalog_import_is_idempotent);
	tcase_add_test(tc, test_catalog_changes_are_matched_not_duplicated);
	tcase_add_test(tc, test_catalog_variant_updates_roll_up);
	tcase_add_test(tc, test_catalog_correction_uses_the_vocabulary);
	tcase_add_test(tc, test_catalog_search_statement_scope_and_index);
	tcase_add_test(tc, test_catalog_search_prefix_is_exact);
	suite_add_tcase(s, tc);
	return s;
}
