/*
 * Unit tests of the Shopify product mapping of the catalogue sync
 * (pv_sync_product, pv_sync_html_text): what a product node of the
 * GraphQL walk becomes in the catalog, which products are refused and
 * why, with allocation failures injected.  The job itself is tested
 * against a database in tests/db/test_sync.c.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "pv_arena.h"
#include "pv_catalog.h"
#include "pv_sync.h"
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

static const char NODE[] =
    "{\"id\": \"gid://shopify/Product/7\", \"title\": \"Blue Hoodie\","
    " \"handle\": \"Blue_Hoodie\", \"status\": \"DRAFT\","
    " \"descriptionHtml\": \"<p>Warm &amp; soft,\\n  <b>really</b>.</p>"
    "<ul><li>Cotton</li><li>Fleece</li></ul>\","
    " \"vendor\": \"Acme\", \"productType\": \"Hoodies\","
    " \"tags\": [\"warm\", \"\", \"winter\"], \"onlineStoreUrl\": null,"
    " \"featuredMedia\": {\"preview\": {\"image\": {\"url\":"
    "  \"https://cdn.example/1.jpg\"}}},"
    " \"media\": {\"nodes\": [{\"preview\": {\"image\": {\"url\":"
    "  \"https://cdn.example/1.jpg\"}}}, {\"preview\": {\"image\": {\"url\":"
    "  \"https://cdn.example/2.jpg\"}}}, {\"preview\": null}]},"
    " \"variants\": {\"nodes\": ["
    "  {\"id\": \"gid://shopify/ProductVariant/71\", \"title\": \"M\","
    "   \"sku\": \"H-1\", \"price\": \"19.99\", \"compareAtPrice\": \"25.00\","
    "   \"inventoryQuantity\": 4, \"availableForSale\": true,"
    "   \"selectedOptions\": [{\"name\": \"Size\", \"value\": \"M\"}]},"
    "  {\"id\": \"gid://shopify/ProductVariant/72\", \"title\": \"L\","
    "   \"sku\": \"H-1\", \"price\": \"21.00\", \"compareAtPrice\": null,"
    "   \"inventoryQuantity\": 0, \"availableForSale\": true,"
    "   \"selectedOptions\": [{\"name\": \"Size\", \"value\": \"L\"}]},"
    "  {\"id\": \"gid://shopify/ProductVariant/73\", \"title\": \"XL\","
    "   \"sku\": null, \"price\": \"21.00\", \"inventoryQuantity\": null,"
    "   \"availableForSale\": false,"
    "   \"selectedOptions\": [{\"name\": \"Size\", \"value\": \"XL\"}]}"
    " ]}}";

static int
add(const char *json)
{
	struct json_object *o = json_tokener_parse(json);
	int rc;

	ck_assert_msg(o != NULL, "bad test JSON");
	rc = pv_sync_product(&cat, o, &err);
	json_object_put(o);
	return rc;
}

START_TEST(test_sync_product_maps_every_field)
{
	const struct pv_catalog_product *p;
	const struct pv_catalog_variant *v;

	ck_assert_int_eq(add(NODE), 0);
	ck_assert_int_eq(cat.n, 1);
	ck_assert_int_eq(cat.errors_total, 0);
	p = &cat.products[0];
	ck_assert(!p->bad);
	ck_assert_str_eq(p->external_id, "gid://shopify/Product/7");
	ck_assert_str_eq(p->handle, "blue-hoodie");
	ck_assert_str_eq(p->title, "Blue Hoodie");
	ck_assert_str_eq(p->description,
	    "Warm & soft, really.\nCotton\nFleece");
	ck_assert_str_eq(p->vendor, "Acme");
	ck_assert_str_eq(p->product_type, "Hoodies");
	ck_assert_str_eq(p->url, "");
	ck_assert(p->archived); /* DRAFT is not for sale */
	ck_assert_int_eq(p->ntags, 2);
	ck_assert_str_eq(p->tags[1], "winter");
	ck_assert_int_eq(p->nimages, 2);
	ck_assert_str_eq(p->images[0], "https://cdn.example/1.jpg");
	ck_assert_str_eq(p->images[1], "https://cdn.example/2.jpg");
	ck_assert_int_eq(p->nvariants, 3);
	v = &p->variants[0];
	ck_assert_str_eq(v->external_id, "gid://shopify/ProductVariant/71");
	ck_assert_int_eq(v->price_minor, 1999);
	ck_assert_int_eq(v->compare_minor, 2500);
	ck_assert_int_eq(v->inventory, 4);
	ck_assert(v->tracked);
	ck_assert_str_eq(v->options, "{\"Size\":\"M\"}");
	ck_assert_str_eq(v->sku, "H-1");
	/* A repeated SKU is dropped; sold with nothing counted: untracked. */
	v = &p->variants[1];
	ck_assert_str_eq(v->sku, "");
	ck_assert_int_eq(v->compare_minor, -1);
	ck_assert(!v->tracked);
	/* Nothing counted and not for sale: tracked, none in stock. */
	v = &p->variants[2];
	ck_assert_str_eq(v->sku, "");
	ck_assert_int_eq(v->inventory, 0);
	ck_assert(v->tracked);
}
END_TEST

START_TEST(test_sync_product_default_title_option_dropped)
{
	ck_assert_int_eq(
	    add("{\"id\": \"gid://shopify/Product/1\","
	        " \"title\": \"Mug\", \"handle\": \"mug\","
	        " \"status\": \"ACTIVE\", \"variants\": {\"nodes\":"
	        " [{\"id\": \"gid://shopify/ProductVariant/1\","
	        " \"title\": \"Default Title\", \"price\": \"8.50\","
	        " \"inventoryQuantity\": 3,"
	        " \"availableForSale\": true, \"selectedOptions\":"
	        " [{\"name\": \"Title\","
	        " \"value\": \"Default Title\"}]}]}}"),
	    0);
	ck_assert_int_eq(cat.errors_total, 0);
	ck_assert(!cat.products[0].archived);
	ck_assert_str_eq(cat.products[0].variants[0].options, "{}");
	ck_assert_str_eq(cat.products[0].variants[0].title, "Default Title");
}
END_TEST

START_TEST(test_sync_product_refusals_are_problems)
{
	/* JPY has no minor unit: "15.5" would round. */
	ck_assert_int_eq(pv_catalog_init(&cat, a, "JPY", &err), 0);
	ck_assert_int_eq(add("{\"id\": \"gid://shopify/Product/2\","
	                     " \"title\": \"Tea\", \"status\": \"ACTIVE\","
	                     " \"variants\": {\"nodes\": [{\"id\":"
	                     " \"gid://shopify/ProductVariant/2\","
	                     " \"price\": \"15.5\"}]}}"),
	    0);
	ck_assert_int_eq(add("{\"id\": \"gid://shopify/Product/3\","
	                     " \"title\": \"Pot\", \"status\": \"ACTIVE\","
	                     " \"variants\": {\"nodes\": [{\"id\":"
	                     " \"gid://shopify/ProductVariant/3\","
	                     " \"price\": \"1500\"}]}}"),
	    0);
	ck_assert_int_eq(add("{\"title\": \"No id\"}"), 0);
	ck_assert_int_eq(add("{\"id\": \"gid://shopify/Product/4\","
	                     " \"title\": \"No variants\"}"),
	    0);
	ck_assert_int_eq(err.code, PV_OK);
	ck_assert_int_eq(cat.n, 4);
	ck_assert(cat.products[0].bad);
	ck_assert(!cat.products[1].bad);
	ck_assert_int_eq(cat.products[1].variants[0].price_minor, 1500);
	ck_assert_str_eq(cat.products[1].handle, "pot"); /* from the title */
	ck_assert(cat.products[2].bad);
	ck_assert(cat.products[3].bad);
	ck_assert_int_eq(cat.errors_total, 3);
	ck_assert_ptr_nonnull(
	    strstr(cat.errors[0], "gid://shopify/ProductVariant/2: price"));
}
END_TEST

START_TEST(test_sync_html_text_cuts_on_characters)
{
	const char *s;

	s = pv_sync_html_text(a, "caf\xc3\xa9 ol\xc3\xa9", 4, &err);
	ck_assert_str_eq(s, "caf");
	s = pv_sync_html_text(a, "a&lt;b&gt; &unknown; <br>c\x01", 100, &err);
	ck_assert_str_eq(s, "a<b> &unknown;\nc");
	s = pv_sync_html_text(a, "<p>unclosed <b", 100, &err);
	ck_assert_str_eq(s, "unclosed");
}
END_TEST

START_TEST(test_sync_product_out_of_memory)
{
	struct json_object *o = json_tokener_parse(NODE);
	long n;
	int rc;

	ck_assert_ptr_nonnull(o);
	for (n = 0;; n++) {
		pv_arena_reset(a);
		pv_err_clear(&err);
		ck_assert_int_eq(pv_catalog_init(&cat, a, "USD", &err), 0);
		pv_arena_fail_after(a, n);
		rc = pv_sync_product(&cat, o, &err);
		pv_arena_fail_after(a, -1);
		if (rc == 0)
			break;
		ck_assert_int_eq(err.code, PV_E_NOMEM);
	}
	ck_assert_int_gt(n, 5);
	ck_assert_int_eq(cat.errors_total, 0);
	json_object_put(o);
}
END_TEST

START_TEST(test_sync_ended_done_failed_or_dead)
{
	static const struct {
		const char *state, *job_state, *error;
		int ended, failed;
	} cases[] = {
		{ "never", NULL, NULL, 0, 0 },
		{ "queued", "queued", NULL, 0, 0 },
		{ "running", "running", NULL, 0, 0 },
		/* A retry pending: the job is queued again, the run goes on. */
		{ "running", "queued", "HTTP 500", 0, 0 },
		/* The job gave up before the run was done. */
		{ "running", "dead", "HTTP 500", 1, 1 },
		{ "failed", NULL, "HTTP 401", 1, 1 }, /* job pruned */
		{ "done", "done", NULL, 1, 0 },
		/* Done stays done whatever became of its job. */
		{ "done", "dead", NULL, 1, 0 },
	};
	struct pv_sync_status st;
	size_t i;
	int failed;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&st, 0, sizeof(st));
		st.state = cases[i].state;
		st.job_state = cases[i].job_state;
		st.error = cases[i].error;
		failed = -1;
		ck_assert_int_eq(pv_sync_ended(&st, &failed), cases[i].ended);
		ck_assert_msg(failed == cases[i].failed, "case %zu: failed %d",
		    i, failed);
	}
}
END_TEST

Suite *
sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *tc = tcase_create("mapping");
	TCase *te = tcase_create("status");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_sync_product_maps_every_field);
	tcase_add_test(tc, test_sync_product_default_title_option_dropped);
	tcase_add_test(tc, test_sync_product_refusals_are_problems);
	tcase_add_test(tc, test_sync_html_text_cuts_on_characters);
	tcase_add_test(tc, test_sync_product_out_of_memory);
	suite_add_tcase(s, tc);
	tcase_add_test(te, test_sync_ended_done_failed_or_dead);
	suite_add_tcase(s, te);
	return s;
}
