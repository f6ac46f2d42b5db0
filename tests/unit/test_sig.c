/*
 * Unit tests of pv_sig against every webhook test vector in
 * external-apis.md: Stripe 1.9 (fixture body, rotation, tolerance),
 * Shopify 2.6 (fixture body, small vector) and all four Adyen rows of
 * 3.7, plus the strict parsing of the headers.  Fixtures are read from
 * tests/fixtures, so the program runs from the repository root.
 */
#include <stdio.h>
#include <string.h>

#include "pv_arena.h"
#include "pv_crypto.h"
#include "pv_sig.h"
#include "pv_test.h"

#define STRIPE_BODY    "tests/fixtures/stripe/payment_intent.succeeded.json"
#define STRIPE_SIG     "tests/fixtures/stripe/payment_intent.succeeded.sig"
#define STRIPE_SECRET  "tests/fixtures/stripe/webhook_secret"
#define SHOPIFY_BODY   "tests/fixtures/shopify/fulfillments_create.json"
#define SHOPIFY_SIG    "tests/fixtures/shopify/fulfillments_create.sig"
#define SHOPIFY_SECRET "tests/fixtures/shopify/client_secret"

#define T0          1700000000
#define S1          "whsec_test_secret_0123456789abcdef"
#define S2          "whsec_rotated_secret_fedcba9876543210"
#define V1_S1       "3588b73292e8e10094ee9c7e2e2e1ef02ae635ca3868f8b5de696853c3ec34aa"
#define V1_S2       "bbaca1253a4fde875c99342b3d013ab37d74a1b35d5e26869e76bedc8598305b"
#define HDR_S1      "t=1700000000,v1=" V1_S1
#define HDR_ROTATED "t=1700000000,v1=" V1_S2 ",v1=" V1_S1 ",v0=deadbeef"

#define SHOPIFY_SECRET_STR "test_app_client_secret_0123456789"
#define SHOPIFY_HMAC       "XDyCtPjKYgZs91pxvlBV+Ox3tSASAYHK974S0yCLDcw="
#define HUSH_BODY          "{\"id\":1,\"title\":\"T-Shirt\"}"
#define HUSH_HMAC          "OWWnLO1BDOT8iD5FTumnKMKmYTXRkY+TDlDEtkWOnUs="

#define ADYEN_KEY1 \
	"DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00"
#define ADYEN_KEY2 \
	"44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"

static struct pv_arena *a;

static const char *const only_s1[] = { S1, NULL };
static const char *const only_s2[] = { S2, NULL };

/* The four rows of the Adyen table: fields, string, key, signature. */
static const struct {
	struct pv_sig_adyen f; /* notification item fields */
	const char *string;    /* expected signing string */
	const char *key;       /* hex HMAC key */
	const char *sig;       /* expected hmacSignature */
} adyen[] = {
	{ { "pspReference", "originalReference", "merchantAccount", "reference",
	      1000, "EUR", "REPORT_AVAILABLE", "true" },
	    "pspReference:originalReference:merchantAccount:reference:1000:"
	    "EUR:REPORT_AVAILABLE:true",
	    ADYEN_KEY1, "ZNBPtI+oDyyRrLyD1XirkKnQgIAlFc07Vj27TeHsDRE=" },
	{ { "7914073381342284", NULL, "TestMerchant", "order-1001", 2000, "EUR",
	      "AUTHORISATION", "true" },
	    "7914073381342284::TestMerchant:order-1001:2000:EUR:"
	    "AUTHORISATION:true",
	    ADYEN_KEY2, "wL/JhgfVpdfitztv4U3ldnq/2IDMO1bUm3EFukVJlYc=" },
	{ { "8816118280275544", "7914073381342284", "TestMerchant",
	      "refund-1001-1", 500, "EUR", "REFUND", "true" },
	    "8816118280275544:7914073381342284:TestMerchant:refund-1001-1:"
	    "500:EUR:REFUND:true",
	    ADYEN_KEY2, "RXRlmGtkpr0XrNsN3JmNBkApDoVbWeqR1Pb+LyhO9lc=" },
	{ { "8816118280275599", NULL, "TestMerchant", "order-1002", 2000, "EUR",
	      "AUTHORISATION", "false" },
	    "8816118280275599::TestMerchant:order-1002:2000:EUR:"
	    "AUTHORISATION:false",
	    ADYEN_KEY2, "yFYDpRx0d+msbY8OHGMY56wBLMj6nvRw4At99m9CB8M=" },
};

static void
setup(void)
{
	a = pv_arena_new(1024 * 1024);
	ck_assert_ptr_nonnull(a);
}

static void
teardown(void)
{
	pv_arena_free(a);
}

/* Reads a whole fixture into the arena, NUL-terminated. */
static char *
fixture(const char *path, size_t *len)
{
	struct pv_err err = { 0 };
	char *buf;
	FILE *f;
	size_t n;

	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s (run from the repo root)",
	    path);
	buf = pv_arena_alloc(a, 65536, &err);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, 65535, f);
	ck_assert_msg(feof(f) && !ferror(f), "cannot read all of %s", path);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static const char *
sha256hex(const void *p, size_t len)
{
	unsigned char md[PV_CRYPTO_SHA256_LEN];
	struct pv_err err = { 0 };
	const char *s;

	ck_assert_int_eq(pv_crypto_sha256(p, len, md, &err), 0);
	ck_assert_int_eq(pv_crypto_hex_encode(a, md, sizeof(md), &s, &err), 0);
	return s;
}

/* The Stripe body with one space appended. */
static char *
plus_space(const char *body, size_t len)
{
	struct pv_err err = { 0 };
	char *s;

	s = pv_arena_alloc(a, len + 2, &err);
	ck_assert_ptr_nonnull(s);
	memcpy(s, body, len);
	s[len] = ' ';
	s[len + 1] = '\0';
	return s;
}

START_TEST(test_sig_stripe_fixture_matches_spec)
{
	size_t len;

	fixture(STRIPE_BODY, &len);
	ck_assert_uint_eq(len, 368);
	ck_assert_str_eq(sha256hex(fixture(STRIPE_BODY, &len), len),
	    "fc18d2bf709b616ed2e5cdb4a2b71165d5988c6ed9d6e923df5f8b4d9cc49eeb");
	ck_assert_str_eq(fixture(STRIPE_SIG, &len), HDR_S1);
	ck_assert_str_eq(fixture(STRIPE_SECRET, &len), S1);
}
END_TEST

START_TEST(test_sig_stripe_verify_accepts_spec_vector)
{
	struct pv_err err = { 0 };
	const char *secrets[2];
	const char *body;
	size_t len, slen;

	body = fixture(STRIPE_BODY, &len);
	secrets[0] = fixture(STRIPE_SECRET, &slen);
	secrets[1] = NULL;
	ck_assert_int_eq(pv_sig_stripe_verify(fixture(STRIPE_SIG, &slen),
	                     secrets, body, len, T0, PV_SIG_STRIPE_TOLERANCE,
	                     &err),
	    0);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_S1, only_s1, body, len,
	                     T0 + 100, PV_SIG_STRIPE_TOLERANCE, &err),
	    0);
	/* Exactly at the tolerance is still inside it. */
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_S1, only_s1, body, len,
	                     T0 + 300, PV_SIG_STRIPE_TOLERANCE, &err),
	    0);
	/* Like stripe-node, only the age is checked, not the future. */
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_S1, only_s1, body, len,
	                     T0 - 3600, PV_SIG_STRIPE_TOLERANCE, &err),
	    0);
}
END_TEST

START_TEST(test_sig_stripe_verify_rejects_stale_timestamp)
{
	struct pv_err err = { 0 };
	const char *body;
	size_t len;

	body = fixture(STRIPE_BODY, &len);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_S1, only_s1, body, len,
	                     T0 + 301, PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_str_eq(err.msg, "timestamp outside the tolerance zone");
	ck_assert_str_eq(err.field, "Stripe-Signature");
}
END_TEST

START_TEST(test_sig_stripe_verify_rejects_modified_body)
{
	struct pv_err err = { 0 };
	const char *body;
	size_t len;

	body = fixture(STRIPE_BODY, &len);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_S1, only_s1,
	                     plus_space(body, len), len + 1, T0 + 100,
	                     PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_str_eq(err.msg, "signature mismatch");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_S1, only_s1, body, len - 1,
	                     T0, PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	ck_assert_str_eq(err.msg, "signature mismatch");
	/* The signed timestamp is part of the message. */
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_stripe_verify("t=1700000001,v1=" V1_S1, only_s1,
	                     body, len, T0, PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	ck_assert_str_eq(err.msg, "signature mismatch");
}
END_TEST

START_TEST(test_sig_stripe_verify_rejects_wrong_secret)
{
	static const char *const other[] = { "whsec_other", NULL };
	struct pv_err err = { 0 };
	const char *body;
	size_t len;

	body = fixture(STRIPE_BODY, &len);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_S1, other, body, len, T0,
	                     PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_str_eq(err.msg, "signature mismatch");
	/* S2's v1 is not in HDR_S1. */
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_S1, only_s2, body, len, T0,
	                     PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
}
END_TEST

/* During a secret roll Stripe sends one v1 per secret, and a v0. */
START_TEST(test_sig_stripe_verify_accepts_rotated_secrets)
{
	static const char *const both[] = { S2, S1, NULL };
	static const char *const old_first[] = { "whsec_retired", S1, NULL };
	struct pv_err err = { 0 };
	const char *body;
	size_t len;

	body = fixture(STRIPE_BODY, &len);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_ROTATED, only_s1, body, len,
	                     T0 + 100, PV_SIG_STRIPE_TOLERANCE, &err),
	    0);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_ROTATED, only_s2, body, len,
	                     T0 + 100, PV_SIG_STRIPE_TOLERANCE, &err),
	    0);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_ROTATED, both, body, len,
	                     T0 + 100, PV_SIG_STRIPE_TOLERANCE, &err),
	    0);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_S1, old_first, body, len, T0,
	                     PV_SIG_STRIPE_TOLERANCE, &err),
	    0);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_ROTATED, only_s1,
	                     plus_space(body, len), len + 1, T0,
	                     PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	ck_assert_str_eq(err.msg, "signature mismatch");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_ROTATED, only_s1, body, len,
	                     T0 + 301, PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	ck_assert_str_eq(err.msg, "timestamp outside the tolerance zone");
}
END_TEST

START_TEST(test_sig_stripe_verify_ignores_v0_and_unknown_schemes)
{
	struct pv_err err = { 0 };
	const char *body;
	size_t len;

	body = fixture(STRIPE_BODY, &len);
	ck_assert_int_eq(pv_sig_stripe_verify("v0=deadbeef,t=1700000000,"
	                                      "foo=bar=baz,v1=" V1_S1 ",v2=zz",
	                     only_s1, body, len, T0, PV_SIG_STRIPE_TOLERANCE,
	                     &err),
	    0);
	/* A v0 alone is not a signature we accept. */
	ck_assert_int_eq(pv_sig_stripe_verify("t=1700000000,v0=" V1_S1, only_s1,
	                     body, len, T0, PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
}
END_TEST

START_TEST(test_sig_stripe_verify_rejects_malformed_headers)
{
	static const char *const bad[] = { "", "v1=" V1_S1, "t=abc,v1=" V1_S1,
		"t=,v1=" V1_S1, "t=1700000000", "t=1700000000,v0=deadbeef",
		"t=1700000000,v1=3588b732", "t=1700000000,v1=" V1_S1 "a",
		"t=1700000000,v1=" V1_S1 "aa",
		"t=1700000000,v1="
		"zz88b73292e8e10094ee9c7e2e2e1ef02ae635ca3868f8b"
		"5de696853c3ec34aa",
		"t=1700000000,v1=", "t=1700000000, v1=" V1_S1,
		"t=1700000000 ,v1=" V1_S1, " t=1700000000,v1=" V1_S1,
		"t=1700000000,v1=" V1_S1 ",", ",t=1700000000,v1=" V1_S1,
		"t=1700000000,,v1=" V1_S1,
		"t=1700000000,t=1700000000,v1=" V1_S1,
		"t=-1700000000,v1=" V1_S1, "t=+1700000000,v1=" V1_S1,
		"t=1700000000.5,v1=" V1_S1, "t=1e9,v1=" V1_S1,
		"t=1234567890123456,v1=" V1_S1, "t 1700000000,v1=" V1_S1,
		"=1700000000,v1=" V1_S1, "T=1700000000,v1=" V1_S1,
		"t=1700000000,V1=" V1_S1, "t=1700000000;v1=" V1_S1,
		"t=1700000000,v1=" V1_S1 ",v1=" V1_S1 ",v1=" V1_S1 ",v1=" V1_S1
		",v1=" V1_S1 ",v1=" V1_S1 ",v1=" V1_S1 ",v1=" V1_S1
		",v1=" V1_S1,
		NULL };
	struct pv_err err;
	const char *body;
	char *huge;
	size_t i, len;

	body = fixture(STRIPE_BODY, &len);
	for (i = 0; bad[i] != NULL; i++) {
		pv_err_clear(&err);
		ck_assert_msg(pv_sig_stripe_verify(bad[i], only_s1, body, len,
		                  T0, PV_SIG_STRIPE_TOLERANCE, &err) == -1,
		    "accepted \"%s\"", bad[i]);
		ck_assert_int_eq(err.code, PV_E_AUTH);
		ck_assert_str_eq(err.field, "Stripe-Signature");
	}
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_stripe_verify(NULL, only_s1, body, len, T0,
	                     PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	/* A valid header padded with an ignored scheme past the cap. */
	huge = pv_arena_alloc(a, PV_SIG_STRIPE_HEADER_MAX + 128, NULL);
	ck_assert_ptr_nonnull(huge);
	memcpy(huge, HDR_S1 ",v0=", sizeof(HDR_S1 ",v0=") - 1);
	memset(huge + sizeof(HDR_S1 ",v0=") - 1, 'a', PV_SIG_STRIPE_HEADER_MAX);
	huge[PV_SIG_STRIPE_HEADER_MAX + 1] = '\0';
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_stripe_verify(huge, only_s1, body, len, T0,
	                     PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	/* The same header under the cap is fine. */
	huge[PV_SIG_STRIPE_HEADER_MAX] = '\0';
	ck_assert_int_eq(pv_sig_stripe_verify(huge, only_s1, body, len, T0,
	                     PV_SIG_STRIPE_TOLERANCE, &err),
	    0);
}
END_TEST

START_TEST(test_sig_stripe_verify_refuses_missing_configuration)
{
	static const char *const none[] = { NULL };
	static const char *const empty[] = { S1, "", NULL };
	struct pv_err err = { 0 };
	const char *body;
	size_t len;

	body = fixture(STRIPE_BODY, &len);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_S1, none, body, len, T0,
	                     PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_S1, NULL, body, len, T0,
	                     PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_S1, empty, body, len, T0,
	                     PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_stripe_verify(HDR_S1, only_s1, body, len, T0, 0,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
}
END_TEST

START_TEST(test_sig_stripe_sign_reproduces_spec_vectors)
{
	struct pv_err err = { 0 };
	const char *body, *h;
	size_t len;

	body = fixture(STRIPE_BODY, &len);
	ck_assert_int_eq(pv_sig_stripe_sign(a, S1, T0, body, len, &h, &err), 0);
	ck_assert_str_eq(h, HDR_S1);
	ck_assert_int_eq(pv_sig_stripe_sign(a, S2, T0, body, len, &h, &err), 0);
	ck_assert_str_eq(h, "t=1700000000,v1=" V1_S2);
}
END_TEST

/* Our outbound agent webhooks: sign, then verify like a receiver. */
START_TEST(test_sig_stripe_sign_roundtrips_through_verify)
{
	static const char body[] = "{\"a\":1}\0tail";
	struct pv_err err = { 0 };
	const char *h;

	ck_assert_int_eq(pv_sig_stripe_sign(a, "whsec_agent", 1800000000, body,
	                     sizeof(body) - 1, &h, &err),
	    0);
	ck_assert_int_eq(strncmp(h, "t=1800000000,v1=", 16), 0);
	ck_assert_uint_eq(strlen(h), 16 + 64);
	ck_assert_int_eq(pv_sig_stripe_verify(h,
	                     (const char *const[]){ "whsec_agent", NULL }, body,
	                     sizeof(body) - 1, 1800000010,
	                     PV_SIG_STRIPE_TOLERANCE, &err),
	    0);
	ck_assert_int_eq(pv_sig_stripe_verify(h,
	                     (const char *const[]){ "whsec_agent", NULL }, body,
	                     7, 1800000010, PV_SIG_STRIPE_TOLERANCE, &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_stripe_sign(a, "", 1, body, 1, &h, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_stripe_sign(a, "k", -1, body, 1, &h, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
}
END_TEST

/* Each allocation of the signer fails in turn, cleanly. */
START_TEST(test_sig_stripe_sign_fails_cleanly_without_memory)
{
	struct pv_err err;
	const char *h;
	long i;

	for (i = 0;; i++) {
		pv_err_clear(&err);
		pv_arena_reset(a);
		pv_arena_fail_after(a, i);
		if (pv_sig_stripe_sign(a, S1, T0, "{}", 2, &h, &err) == 0)
			break;
		ck_assert_int_eq(err.code, PV_E_NOMEM);
	}
	ck_assert_int_eq(i, 2);
	pv_arena_fail_after(a, -1);
	ck_assert_int_eq(pv_sig_stripe_verify(h, only_s1, "{}", 2, T0,
	                     PV_SIG_STRIPE_TOLERANCE, &err),
	    0);
}
END_TEST

START_TEST(test_sig_shopify_fixture_matches_spec)
{
	size_t len;

	fixture(SHOPIFY_BODY, &len);
	ck_assert_uint_eq(len, 722);
	ck_assert_str_eq(sha256hex(fixture(SHOPIFY_BODY, &len), len),
	    "aca61a179555a2d82a29abbc9c37c0b9b6b44a191c9f6d7bd9e73a51900bc062");
	ck_assert_str_eq(fixture(SHOPIFY_SIG, &len), SHOPIFY_HMAC);
	ck_assert_str_eq(fixture(SHOPIFY_SECRET, &len), SHOPIFY_SECRET_STR);
}
END_TEST

START_TEST(test_sig_shopify_verify_accepts_spec_vectors)
{
	struct pv_err err = { 0 };
	const char *body;
	size_t len, slen;

	body = fixture(SHOPIFY_BODY, &len);
	ck_assert_int_eq(pv_sig_shopify_verify(fixture(SHOPIFY_SIG, &slen),
	                     fixture(SHOPIFY_SECRET, &slen), body, len, &err),
	    0);
	ck_assert_int_eq(pv_sig_shopify_verify(HUSH_HMAC, "hush", HUSH_BODY,
	                     strlen(HUSH_BODY), &err),
	    0);
}
END_TEST

START_TEST(test_sig_shopify_verify_rejects_trailing_space)
{
	struct pv_err err = { 0 };
	const char *body;
	size_t len;

	body = fixture(SHOPIFY_BODY, &len);
	ck_assert_int_eq(pv_sig_shopify_verify(SHOPIFY_HMAC, SHOPIFY_SECRET_STR,
	                     plus_space(body, len), len + 1, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_str_eq(err.msg, "signature mismatch");
	ck_assert_str_eq(err.field, "X-Shopify-Hmac-Sha256");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_shopify_verify(HUSH_HMAC, "hush", HUSH_BODY " ",
	                     strlen(HUSH_BODY) + 1, &err),
	    -1);
	ck_assert_str_eq(err.msg, "signature mismatch");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_shopify_verify(HUSH_HMAC, "hush!", HUSH_BODY,
	                     strlen(HUSH_BODY), &err),
	    -1);
	ck_assert_str_eq(err.msg, "signature mismatch");
}
END_TEST

START_TEST(test_sig_shopify_verify_rejects_malformed_header)
{
	static const char *const bad[] = { "",
		"OWWnLO1BDOT8iD5FTumnKMKmYTXRkY+TDlDEtkWOnUs",
		"OWWnLO1BDOT8iD5FTumnKMKmYTXRkY-TDlDEtkWOnUs=",
		" OWWnLO1BDOT8iD5FTumnKMKmYTXRkY+TDlDEtkWOnUs=",
		"OWWnLO1BDOT8iD5FTumnKMKmYTXRkY+TDlDEtkWOnUs= ",
		"OWWnLO1BDOT8iD5FTumnKMKmYTXRkY+TDlDEtkWOnUt=",
		"OWWnLO1BDOT8iD5FTumnKMKmYTXRkY+TDlDEtkWO",
		"OWWnLO1BDOT8iD5FTumnKMKmYTXRkY+TDlDEtkWOnUsAAAA",
		"OWWnLO1BDOT8iD5FTumnKMKmYTXRkY+"
		"TDlDEtkWOnUsOWWnLO1BDOT8iD5FTumn"
		"KMKmYTXRkY+TDlDEtkWOnUs=",
		"3965a72ced410ce4fc883e454ee9a728c2a66135d1918f930e50c4b6458e9d"
		"4b",
		NULL };
	struct pv_err err;
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		pv_err_clear(&err);
		ck_assert_msg(pv_sig_shopify_verify(bad[i], "hush", HUSH_BODY,
		                  strlen(HUSH_BODY), &err) == -1,
		    "accepted \"%s\"", bad[i]);
		ck_assert_int_eq(err.code, PV_E_AUTH);
	}
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_shopify_verify(NULL, "hush", HUSH_BODY,
	                     strlen(HUSH_BODY), &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_shopify_verify(HUSH_HMAC, NULL, HUSH_BODY,
	                     strlen(HUSH_BODY), &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
}
END_TEST

/* After a rotation Shopify may sign with the old secret for an hour. */
START_TEST(test_sig_shopify_verify_any_accepts_either_secret)
{
	static const char *const rolled[] = { "new_secret", "hush", NULL };
	static const char *const gone[] = { "new_secret", NULL };
	struct pv_err err = { 0 };

	ck_assert_int_eq(pv_sig_shopify_verify_any(HUSH_HMAC, rolled, HUSH_BODY,
	                     strlen(HUSH_BODY), &err),
	    0);
	ck_assert_int_eq(pv_sig_shopify_verify_any(HUSH_HMAC, gone, HUSH_BODY,
	                     strlen(HUSH_BODY), &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
}
END_TEST

START_TEST(test_sig_shopify_sign_reproduces_spec_vectors)
{
	struct pv_err err = { 0 };
	const char *body, *s;
	size_t len;

	body = fixture(SHOPIFY_BODY, &len);
	ck_assert_int_eq(pv_sig_shopify_sign(a, SHOPIFY_SECRET_STR, body, len,
	                     &s, &err),
	    0);
	ck_assert_str_eq(s, SHOPIFY_HMAC);
	ck_assert_int_eq(pv_sig_shopify_sign(a, "hush", HUSH_BODY,
	                     strlen(HUSH_BODY), &s, &err),
	    0);
	ck_assert_str_eq(s, HUSH_HMAC);
}
END_TEST

START_TEST(test_sig_adyen_string_builds_spec_rows)
{
	struct pv_err err = { 0 };
	const char *s;
	size_t i;

	for (i = 0; i < sizeof(adyen) / sizeof(adyen[0]); i++) {
		ck_assert_int_eq(pv_sig_adyen_string(a, &adyen[i].f, &s, &err),
		    0);
		ck_assert_str_eq(s, adyen[i].string);
	}
}
END_TEST

START_TEST(test_sig_adyen_string_treats_missing_as_empty)
{
	struct pv_sig_adyen f = { 0 };
	struct pv_err err = { 0 };
	const char *s;

	ck_assert_int_eq(pv_sig_adyen_string(a, &f, &s, &err), 0);
	ck_assert_str_eq(s, "::::0:::");
	f.value = -5;
	f.currency = "JPY";
	ck_assert_int_eq(pv_sig_adyen_string(a, &f, &s, &err), 0);
	ck_assert_str_eq(s, "::::-5:JPY::");
}
END_TEST

START_TEST(test_sig_adyen_verify_accepts_spec_rows)
{
	struct pv_err err = { 0 };
	const char *s;
	size_t i;

	for (i = 0; i < sizeof(adyen) / sizeof(adyen[0]); i++) {
		ck_assert_int_eq(pv_sig_adyen_string(a, &adyen[i].f, &s, &err),
		    0);
		ck_assert_msg(pv_sig_adyen_verify(adyen[i].key, s, adyen[i].sig,
		                  &err) == 0,
		    "row %zu: %s", i + 1, err.msg);
	}
}
END_TEST

START_TEST(test_sig_adyen_sign_reproduces_spec_rows)
{
	struct pv_err err = { 0 };
	const char *s;
	size_t i;

	for (i = 0; i < sizeof(adyen) / sizeof(adyen[0]); i++) {
		ck_assert_int_eq(pv_sig_adyen_sign(a, adyen[i].key,
		                     adyen[i].string, &s, &err),
		    0);
		ck_assert_str_eq(s, adyen[i].sig);
	}
}
END_TEST

START_TEST(test_sig_adyen_verify_rejects_other_items)
{
	static const char lower[] =
	    "44782def547aaa06c910c43932b1eb0c71fc68d9d0c057550c48ec2acf6ba056";
	struct pv_sig_adyen f;
	struct pv_err err = { 0 };
	const char *s;

	/* Hex keys are case-insensitive. */
	ck_assert_int_eq(pv_sig_adyen_verify(lower, adyen[1].string,
	                     adyen[1].sig, &err),
	    0);
	/* Row 2's signature on row 4's (failed) item, and on a new amount. */
	ck_assert_int_eq(pv_sig_adyen_verify(ADYEN_KEY2, adyen[3].string,
	                     adyen[1].sig, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_str_eq(err.msg, "signature mismatch");
	f = adyen[1].f;
	f.value = 2001;
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_adyen_string(a, &f, &s, &err), 0);
	ck_assert_int_eq(pv_sig_adyen_verify(ADYEN_KEY2, s, adyen[1].sig, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	/* The right signature under the other row's key. */
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_adyen_verify(ADYEN_KEY1, adyen[1].string,
	                     adyen[1].sig, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
}
END_TEST

START_TEST(test_sig_adyen_verify_rejects_bad_key_or_signature)
{
	static const char *const badsig[] = { "",
		"wL/JhgfVpdfitztv4U3ldnq/2IDMO1bUm3EFukVJlYc",
		"wL_JhgfVpdfitztv4U3ldnq_2IDMO1bUm3EFukVJlYc=",
		"wL/JhgfVpdfitztv4U3ldnq/2IDMO1bUm3EFukVJlYc=\n",
		"wL/JhgfVpdfitztv4U3ldnq/2IDMO1bUm3EFukVJ", NULL };
	struct pv_err err;
	size_t i;

	for (i = 0; badsig[i] != NULL; i++) {
		pv_err_clear(&err);
		ck_assert_int_eq(pv_sig_adyen_verify(ADYEN_KEY2,
		                     adyen[1].string, badsig[i], &err),
		    -1);
		ck_assert_int_eq(err.code, PV_E_AUTH);
		ck_assert_str_eq(err.field, "hmacSignature");
	}
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_adyen_verify(ADYEN_KEY2, adyen[1].string, NULL,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_adyen_verify("XYZ", adyen[1].string,
	                     adyen[1].sig, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_adyen_verify("", adyen[1].string, adyen[1].sig,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_sig_adyen_verify(ADYEN_KEY2 "0", adyen[1].string,
	                     adyen[1].sig, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
}
END_TEST

Suite *
sig_suite(void)
{
	Suite *s = suite_create("sig");
	TCase *tc;

	tc = tcase_create("stripe");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_sig_stripe_fixture_matches_spec);
	tcase_add_test(tc, test_sig_stripe_verify_accepts_spec_vector);
	tcase_add_test(tc, test_sig_stripe_verify_rejects_stale_timestamp);
	tcase_add_test(tc, test_sig_stripe_verify_rejects_modified_body);
	tcase_add_test(tc, test_sig_stripe_verify_rejects_wrong_secret);
	tcase_add_test(tc, test_sig_stripe_verify_accepts_rotated_secrets);
	tcase_add_test(tc,
	    test_sig_stripe_verify_ignores_v0_and_unknown_schemes);
	tcase_add_test(tc, test_sig_stripe_verify_rejects_malformed_headers);
	tcase_add_test(tc,
	    test_sig_stripe_verify_refuses_missing_configuration);
	tcase_add_test(tc, test_sig_stripe_sign_reproduces_spec_vectors);
	tcase_add_test(tc, test_sig_stripe_sign_roundtrips_through_verify);
	tcase_add_test(tc, test_sig_stripe_sign_fails_cleanly_without_memory);
	suite_add_tcase(s, tc);

	tc = tcase_create("shopify");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_sig_shopify_fixture_matches_spec);
	tcase_add_test(tc, test_sig_shopify_verify_accepts_spec_vectors);
	tcase_add_test(tc, test_sig_shopify_verify_rejects_trailing_space);
	tcase_add_test(tc, test_sig_shopify_verify_rejects_malformed_header);
	tcase_add_test(tc, test_sig_shopify_verify_any_accepts_either_secret);
	tcase_add_test(tc, test_sig_shopify_sign_reproduces_spec_vectors);
	suite_add_tcase(s, tc);

	tc = tcase_create("adyen");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_sig_adyen_string_builds_spec_rows);
	tcase_add_test(tc, test_sig_adyen_string_treats_missing_as_empty);
	tcase_add_test(tc, test_sig_adyen_verify_accepts_spec_rows);
	tcase_add_test(tc, test_sig_adyen_sign_reproduces_spec_rows);
	tcase_add_test(tc, test_sig_adyen_verify_rejects_other_items);
	tcase_add_test(tc, test_sig_adyen_verify_rejects_bad_key_or_signature);
	suite_add_tcase(s, tc);
	return s;
}
