/*
 * Unit tests of the catalog readers (pv_catalog: CSV, JSON, JSON Lines,
 * the checks every product passes, handles) and of the search helpers
 * of pv_products (price filters, cursors, fingerprints), with
 * allocation failures injected into the readers.
 */
#include <stdio.h>
#include <string.h>

#include "pv_arena.h"
#include "pv_catalog.h"
#include "pv_products.h"
#include "pv_test.h"

static struct pv_arena *a;
static struct pv_err err;
static struct pv_catalog cat;

static void
setup(void)
{
	a = pv_arena_new(16 * 1024 * 1024);
	ck_assert_ptr_nonnull(a);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_catalog_init(&cat, a, "USD", &err), 0);
}

static void
teardown(void)
{
	pv_arena_free(a);
}

#define CSV(lit)  pv_catalog_parse_csv(&cat, (lit), sizeof(lit) - 1, &err)
#define JSON(lit) pv_catalog_parse_json(&cat, (lit), sizeof(lit) - 1, &err)

/* Asserts problem i is exactly msg. */
static void
problem_is(size_t i, const char *msg)
{
	ck_assert_msg(i < cat.nerrors, "only %zu problems", cat.nerrors);
	ck_assert_str_eq(cat.errors[i], msg);
}

static const char good_csv[] =
    "\xef\xbb\xbfHandle,Title,Body (HTML),Vendor,Type,Tags,Option1 Name,"
    "Option1 Value,Variant SKU,Variant Price,Variant Compare At Price,"
    "Variant Inventory Qty,Image Src\r\n"
    "tee,Plain Tee,\"Soft, \"\"heavy\"\" cotton.\nTwo lines.\",Acme,Tees,"
    "\"tees, cotton, tees\",Size,S,T-S,24.00,30.00,3,https://x.test/a.jpg\r\n"
    "tee,,,,,,,M,T-M,24.00,,0,\r\n"
    "tee,,,,,,,,,,,,https://x.test/b.jpg\r\n"
    "\r\n"
    ",Rain Jacket,,,Jackets,,,,RJ-1,120,,5,\n";

START_TEST(test_catalog_csv_groups_rows_by_handle)
{
	const struct pv_catalog_product *p;

	ck_assert_int_eq(CSV(good_csv), 0);
	ck_assert_uint_eq(cat.errors_total, 0);
	ck_assert_uint_eq(cat.n, 2);
	p = &cat.products[0];
	ck_assert_str_eq(p->handle, "tee");
	ck_assert_str_eq(p->title, "Plain Tee");
	ck_assert_str_eq(p->description, "Soft, \"heavy\" cotton.\nTwo lines.");
	ck_assert_str_eq(p->where, "line 2");
	ck_assert_uint_eq(p->ntags, 2);
	ck_assert_str_eq(p->tags[1], "cotton");
	ck_assert_uint_eq(p->nimages, 2);
	ck_assert_str_eq(p->images[1], "https://x.test/b.jpg");
	ck_assert_uint_eq(p->nvariants, 2);
	ck_assert_str_eq(p->variants[0].sku, "T-S");
	ck_assert_int_eq(p->variants[0].price_minor, 2400);
	ck_assert_int_eq(p->variants[0].compare_minor, 3000);
	ck_assert_int_eq(p->variants[0].inventory, 3);
	ck_assert_str_eq(p->variants[1].options, "{\"Size\":\"M\"}");
	ck_assert_str_eq(p->variants[1].title, "M");
	ck_assert_int_eq(p->variants[1].compare_minor, -1);
	ck_assert_str_eq(p->variants[1].where, "line 4");
	p = &cat.products[1];
	ck_assert_str_eq(p->handle, "rain-jacket");
	ck_assert_str_eq(p->where, "line 7");
	ck_assert_str_eq(p->variants[0].title, "Default Title");
	ck_assert_int_eq(p->variants[0].price_minor, 12000);
}
END_TEST

START_TEST(test_catalog_csv_reports_every_bad_row)
{
	ck_assert_int_eq(CSV("title,price,sku,inventory_quantity,status\n"
	                     "A,1.00,A1,1,active\n"
	                     "B,abc,B1,1,active\n"
	                     "C,1.001,C1,1,active\n"
	                     "D,1.00,D1,x,active\n"
	                     "E,1.00,E1,1,sold\n"
	                     "F,1.00,F\"1,1,active\n"
	                     "G,,G1,1,active\n"
	                     "H,1.00,H1,1,\"active\n"),
	    0);
	ck_assert_uint_eq(cat.errors_total, 7);
	problem_is(0,
	    "line 3: price must be a decimal number such as "
	    "\"48.00\"");
	problem_is(1, "line 4: price has more than 2 decimal places for USD");
	problem_is(2, "line 5: \"inventory_quantity\" must be an integer");
	problem_is(3, "line 6: \"status\" must be active, archived or draft");
	problem_is(4, "line 7: has a quote inside an unquoted field");
	problem_is(5, "line 8: \"price\" is required for a variant");
	problem_is(6, "line 9: opens a quote that is never closed");
}
END_TEST

START_TEST(test_catalog_csv_header_problems)
{
	ck_assert_int_eq(CSV("title,price,pirce\nA,1,2\n"), 0);
	ck_assert_uint_eq(cat.errors_total, 1);
	problem_is(0,
	    "line 1: column \"pirce\" is unknown (see "
	    "docs/catalog.md for the columns)");
	ck_assert_uint_eq(cat.n, 0);
	pv_catalog_init(&cat, a, "USD", &err);
	ck_assert_int_eq(CSV("title,sku\nA,1\n"), 0);
	problem_is(0,
	    "line 1: the header needs a price column and a title "
	    "or handle column");
	pv_catalog_init(&cat, a, "USD", &err);
	ck_assert_int_eq(CSV("Title,TITLE,price\nA,A,1\n"), 0);
	ck_assert_uint_eq(cat.errors_total, 1);
	pv_catalog_init(&cat, a, "USD", &err);
	ck_assert_int_eq(CSV(""), 0);
	problem_is(0, "line 1: the file is empty");
}
END_TEST

START_TEST(test_catalog_csv_duplicates_and_conflicts)
{
	ck_assert_int_eq(
	    CSV("handle,title,price,sku,option1_name,option1_value\n"
	        "a,A,1,S1,Size,S\n"
	        "a,Other,1,S2,,M\n"
	        "b,B,1,X,,\n"
	        "b,,1,X,,\n"
	        "c,C,1,,Size,M\n"
	        "c,,1,,,M\n"
	        "d,D,1,D1,,L\n"),
	    0);
	ck_assert_uint_eq(cat.errors_total, 4);
	problem_is(0,
	    "line 3: \"title\" differs from line 2, the first row "
	    "of this product");
	problem_is(1, "line 8: \"option1_name\" is needed for option1_value");
	problem_is(2,
	    "line 5: \"sku\" repeats the SKU of line 4 in the same "
	    "product");
	problem_is(3,
	    "line 7: \"variant_title\" \"M\" repeats line 6: give "
	    "each variant its own options or title");
}
END_TEST

START_TEST(test_catalog_json_products_and_variants)
{
	const struct pv_catalog_product *p;

	ck_assert_int_eq(
	    JSON("{\"currency\": \"USD\", \"products\": ["
	         "{\"title\": \"Beanie\", \"price\": \"24\", \"sku\": \"B\","
	         " \"inventory_quantity\": 7, \"tags\": [\"hats\"],"
	         " \"image_url\": \"https://x.test/1.jpg\","
	         " \"images\": [\"https://x.test/2.jpg\","
	         " \"https://x.test/1.jpg\"]},"
	         "{\"external_id\": \"9\", \"handle\": \"shoe\","
	         " \"title\": \"Shoe\", \"status\": \"draft\", \"variants\": ["
	         "{\"external_id\": \"v9\", \"price\": \"1.50\","
	         " \"options\": {\"Size\": \"9\", \"Width\": \"Wide\"},"
	         " \"inventory_tracked\": false}]}]}"),
	    0);
	ck_assert_uint_eq(cat.errors_total, 0);
	ck_assert_uint_eq(cat.n, 2);
	p = &cat.products[0];
	ck_assert_str_eq(p->handle, "beanie");
	ck_assert_uint_eq(p->nimages, 2);
	ck_assert_str_eq(p->images[0], "https://x.test/1.jpg");
	ck_assert_int_eq(p->variants[0].price_minor, 2400);
	ck_assert_int_eq(p->variants[0].inventory, 7);
	p = &cat.products[1];
	ck_assert(p->archived);
	ck_assert_str_eq(p->external_id, "9");
	ck_assert_str_eq(p->variants[0].title, "9 / Wide");
	ck_assert(!p->variants[0].tracked);
	ck_assert_str_eq(p->variants[0].where, "products[1].variants[0]");
}
END_TEST

START_TEST(test_catalog_json_problems_name_the_path)
{
	ck_assert_int_eq(
	    JSON("{\"products\": [{\"title\": \"Ok\", \"price\": \"1\"},"
	         " {\"title\": \"A\"},"
	         " {\"title\": \"B\", \"price\": 12.5},"
	         " {\"title\": \"C\", \"price\": \"1\", \"pirce\": \"2\"},"
	         " {\"title\": \"D\", \"variants\": [{\"price\": \"1\"},"
	         "  {\"price\": \"x\"}]},"
	         " {\"title\": \"E\", \"price\": \"1\", \"variants\": []},"
	         " {\"title\": \"Ok\", \"price\": \"2\"},"
	         " {\"title\": \"F\", \"price\": \"1\", \"url\": \"ftp://x\"},"
	         " 7]}"),
	    0);
	ck_assert_uint_eq(cat.errors_total, 8);
	problem_is(0, "products[1]: \"price\" is required");
	problem_is(1,
	    "products[2]: \"price\" must be a decimal string such as "
	    "\"48.00\" (numbers are refused: they round)");
	ck_assert_ptr_nonnull(strstr(cat.errors[2], "products[3]: "));
	ck_assert_ptr_nonnull(strstr(cat.errors[2], "pirce"));
	problem_is(3,
	    "products[4].variants[1]: price must be a decimal number such as "
	    "\"48.00\"");
	ck_assert_ptr_nonnull(strstr(cat.errors[4], "products[5]: "));
	problem_is(5,
	    "products[6]: \"handle\" \"ok\" is already the handle of "
	    "products[0]");
	problem_is(6, "products[7]: \"url\" must be an http(s) URL");
	ck_assert_ptr_nonnull(strstr(cat.errors[7], "products[8]: "));
	pv_catalog_init(&cat, a, "USD", &err);
	ck_assert_int_eq(JSON("{\"currency\": \"EUR\", \"products\": []}"), 0);
	problem_is(0,
	    "file: \"currency\" is EUR but the merchant sells in USD");
	pv_catalog_init(&cat, a, "USD", &err);
	ck_assert_int_eq(JSON("[]"), 0);
	ck_assert_uint_eq(cat.errors_total, 1);
}
END_TEST

START_TEST(test_catalog_jsonl_counts_lines)
{
	static const char in[] = "{\"title\": \"A\", \"price\": \"1\"}\n"
	                         "\n"
	                         "{\"title\": \"B\"}\r\n"
	                         "not json\n"
	                         "{\"title\": \"C\", \"price\": \"3\"}";

	ck_assert_int_eq(pv_catalog_parse_jsonl(&cat, in, sizeof(in) - 1, &err),
	    0);
	ck_assert_uint_eq(cat.n, 3);
	ck_assert_uint_eq(cat.errors_total, 2);
	problem_is(0, "line 3: \"price\" is required");
	ck_assert_ptr_nonnull(strstr(cat.errors[1], "line 4: "));
	ck_assert_str_eq(cat.products[2].where, "line 5");
}
END_TEST

START_TEST(test_catalog_money_in_the_merchant_currency)
{
	pv_catalog_init(&cat, a, "JPY", &err);
	ck_assert_int_eq(CSV("title,price\nA,4800\nB,48.00\n"), 0);
	ck_assert_uint_eq(cat.errors_total, 1);
	ck_assert_int_eq(cat.products[0].variants[0].price_minor, 4800);
	problem_is(0, "line 3: price cannot have decimal places in JPY");
	pv_catalog_init(&cat, a, "KWD", &err);
	ck_assert_int_eq(CSV("title,price\nA,1.250\n"), 0);
	ck_assert_int_eq(cat.products[0].variants[0].price_minor, 1250);
}
END_TEST

START_TEST(test_catalog_slug_is_url_safe)
{
	ck_assert_str_eq(pv_catalog_slug(a, "Men's T-Shirt (Blue)", &err),
	    "men-s-t-shirt-blue");
	ck_assert_str_eq(pv_catalog_slug(a, "  --Über  Café--  ", &err),
	    "ber-caf");
	ck_assert_int_eq(strncmp(pv_catalog_slug(a, "日本", &err), "product-",
	                     8),
	    0);
	ck_assert_str_eq(pv_catalog_slug(a, "日本", &err),
	    pv_catalog_slug(a, "日本", &err));
}
END_TEST

START_TEST(test_catalog_parse_survives_allocation_failures)
{
	long n;
	int rc;

	for (n = 0;; n++) {
		pv_arena_reset(a);
		pv_err_clear(&err);
		ck_assert_int_eq(pv_catalog_init(&cat, a, "USD", &err), 0);
		pv_arena_fail_after(a, n);
		rc = CSV(good_csv);
		pv_arena_fail_after(a, -1);
		if (rc == 0)
			break;
		ck_assert_msg(err.code == PV_E_NOMEM, "step %ld: %s", n,
		    err.msg);
		ck_assert_int_lt(n, 100000);
	}
	ck_assert_uint_eq(cat.errors_total, 0);
	ck_assert_uint_eq(cat.n, 2);
	for (n = 0;; n++) {
		pv_arena_reset(a);
		pv_err_clear(&err);
		ck_assert_int_eq(pv_catalog_init(&cat, a, "USD", &err), 0);
		pv_arena_fail_after(a, n);
		rc = JSON(
		    "{\"products\": [{\"title\": \"Shoe\", \"tags\": [\"a\"],"
		    " \"variants\": [{\"price\": \"1\", \"options\":"
		    " {\"Size\": \"9\"}}]}, {\"title\": \"Hat\","
		    " \"price\": \"x\"}]}");
		pv_arena_fail_after(a, -1);
		if (rc == 0)
			break;
		ck_assert_msg(err.code == PV_E_NOMEM, "step %ld: %s", n,
		    err.msg);
		ck_assert_int_lt(n, 100000);
	}
	ck_assert_uint_eq(cat.errors_total, 1);
}
END_TEST

START_TEST(test_products_parse_price_takes_four_decimals)
{
	int64_t v = 0;

	ck_assert_int_eq(pv_products_parse_price("25", "min_price", &v, &err),
	    0);
	ck_assert_int_eq(v, 250000);
	ck_assert_int_eq(pv_products_parse_price("25.5", "min_price", &v, &err),
	    0);
	ck_assert_int_eq(v, 255000);
	ck_assert_int_eq(pv_products_parse_price("0.0001", "min_price", &v,
	                     &err),
	    0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(pv_products_parse_price("1500.0", "max_price", &v,
	                     &err),
	    0);
	ck_assert_int_eq(v, 15000000);
	ck_assert_int_eq(pv_products_parse_price("abc", "min_price", &v, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.field, "min_price");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_products_parse_price("1.00001", "max_price", &v,
	                     &err),
	    -1);
	ck_assert_str_eq(err.field, "max_price");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_products_parse_price("-1", "max_price", &v, &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_products_parse_price("1e3", "max_price", &v, &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_products_parse_price("999999999999999", "max_price",
	                     &v, &err),
	    -1);
}
END_TEST

START_TEST(test_products_cursor_round_trip_and_tamper)
{
	const char *parts[] = { "hoodie", NULL, NULL, "", "", "0" };
	char fp[PV_PRODUCTS_FP_SIZE], other[PV_PRODUCTS_FP_SIZE];
	const char *c, *rank, *id;

	pv_products_fingerprint(parts, 6, fp);
	ck_assert_uint_eq(strlen(fp), 8);
	parts[1] = "";
	pv_products_fingerprint(parts, 6, other);
	ck_assert_str_ne(fp, other); /* NULL and "" differ */
	ck_assert_int_eq(pv_products_cursor_encode(a, fp, "0.0607927",
	                     "prod_0123456789abcdef", &c, &err),
	    0);
	ck_assert_uint_eq(strspn(c, "0123456789abcdef"), strlen(c));
	ck_assert_int_eq(pv_products_cursor_decode(a, c, fp, &rank, &id, &err),
	    0);
	ck_assert_str_eq(rank, "0.0607927");
	ck_assert_str_eq(id, "prod_0123456789abcdef");
	ck_assert_int_eq(pv_products_cursor_decode(a, c, other, &rank, &id,
	                     &err),
	    -1);
	ck_assert_str_eq(err.field, "cursor");
	ck_assert_ptr_nonnull(strstr(err.msg, "another search"));
	pv_err_clear(&err);
	ck_assert_int_eq(pv_products_cursor_encode(a, fp, "1;DROP",
	                     "prod_0123456789abcdef", &c, &err),
	    0);
	ck_assert_int_eq(pv_products_cursor_decode(a, c, fp, &rank, &id, &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_products_cursor_encode(a, fp, "1", "prod_' OR 1=1",
	                     &c, &err),
	    0);
	ck_assert_int_eq(pv_products_cursor_decode(a, c, fp, &rank, &id, &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_products_cursor_decode(a, "0", fp, &rank, &id,
	                     &err),
	    -1);
	ck_assert_str_eq(err.field, "cursor");
}
END_TEST

Suite *
catalog_suite(void)
{
	Suite *s = suite_create("catalog");
	TCase *tc = tcase_create("readers");
	TCase *sr = tcase_create("search");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_catalog_csv_groups_rows_by_handle);
	tcase_add_test(tc, test_catalog_csv_reports_every_bad_row);
	tcase_add_test(tc, test_catalog_csv_header_problems);
	tcase_add_test(tc, test_catalog_csv_duplicates_and_conflicts);
	tcase_add_test(tc, test_catalog_json_products_and_variants);
	tcase_add_test(tc, test_catalog_json_problems_name_the_path);
	tcase_add_test(tc, test_catalog_jsonl_counts_lines);
	tcase_add_test(tc, test_catalog_money_in_the_merchant_currency);
	tcase_add_test(tc, test_catalog_slug_is_url_safe);
	tcase_add_test(tc, test_catalog_parse_survives_allocation_failures);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(sr, setup, teardown);
	tcase_add_test(sr, test_products_parse_price_takes_four_decimals);
	tcase_add_test(sr, test_products_cursor_round_trip_and_tamper);
	suite_add_tcase(s, sr);
	return s;
}
