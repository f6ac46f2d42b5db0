/*
 * Unit tests of pv_crypto: published vectors for SHA-256, HMAC-SHA256,
 * base64, scrypt and PBKDF2; strictness of the decoders; tamper
 * resistance of sealed secrets; password hashing; failure injection.
 */
#include <string.h>

#include "pv_arena.h"
#include "pv_crypto.h"
#include "pv_test.h"

static struct pv_arena *a;

static const unsigned char key1[PV_CRYPTO_KEY_LEN] =
    "0123456789abcdef0123456789abcdef";
static const unsigned char key2[PV_CRYPTO_KEY_LEN] =
    "0123456789abcdef0123456789abcdeF";

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

/* Lowercase hex of a digest, for comparing with published vectors. */
static const char *
hexof(const unsigned char *p, size_t len)
{
	struct pv_err err = { 0 };
	const char *s;

	ck_assert_int_eq(pv_crypto_hex_encode(a, p, len, &s, &err), 0);
	return s;
}

/* Lowercase hex of the SHA-256 of len bytes at p. */
static const char *
sha256_hex(const void *p, size_t len)
{
	unsigned char md[PV_CRYPTO_SHA256_LEN];
	struct pv_err err = { 0 };

	ck_assert_int_eq(pv_crypto_sha256(p, len, md, &err), 0);
	return hexof(md, sizeof(md));
}

START_TEST(test_crypto_sha256_matches_fips_vectors)
{
	ck_assert_str_eq(sha256_hex("abc", 3),
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ck_assert_str_eq(sha256_hex(NULL, 0),
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* Two blocks: the padding does not fit after 56 bytes. */
	ck_assert_str_eq(sha256_hex("abcdbcdecdefdefgefghfghighijhijk"
	                            "ijkljklmklmnlmnomnopnopq",
	                     56),
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

/* FIPS 180-2's long vector: a million 'a's, 15,625 blocks. */
START_TEST(test_crypto_sha256_hashes_a_million_bytes)
{
	struct pv_err err = { 0 };
	char *m;

	ck_assert_ptr_nonnull(m = pv_arena_alloc(a, 1000000, &err));
	memset(m, 'a', 1000000);
	ck_assert_str_eq(sha256_hex(m, 1000000),
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

/* RFC 4231 test case 2, whole and split in three parts. */
START_TEST(test_crypto_hmac_sha256_matches_rfc4231)
{
	static const char msg[] = "what do ya want for nothing?";
	unsigned char mac[PV_CRYPTO_SHA256_LEN];
	struct pv_err err = { 0 };
	struct pv_iov one[] = { { msg, sizeof(msg) - 1 } };
	struct pv_iov three[] = { { msg, 4 }, { NULL, 0 },
		{ msg + 4, sizeof(msg) - 5 } };

	ck_assert_int_eq(pv_crypto_hmac_sha256("Jefe", 4, one, 1, mac, &err),
	    0);
	ck_assert_str_eq(hexof(mac, sizeof(mac)),
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(mac, 0, sizeof(mac));
	ck_assert_int_eq(pv_crypto_hmac_sha256("Jefe", 4, three, 3, mac, &err),
	    0);
	ck_assert_str_eq(hexof(mac, sizeof(mac)),
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
END_TEST

START_TEST(test_crypto_hmac_sha256_refuses_empty_key)
{
	unsigned char mac[PV_CRYPTO_SHA256_LEN];
	struct pv_err err = { 0 };
	struct pv_iov iov[] = { { "x", 1 } };

	ck_assert_int_eq(pv_crypto_hmac_sha256("", 0, iov, 1, mac, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
}
END_TEST

START_TEST(test_crypto_memeq_compares_all_bytes)
{
	ck_assert_int_eq(pv_crypto_memeq("abcd", "abcd", 4), 1);
	ck_assert_int_eq(pv_crypto_memeq("abcd", "abce", 4), 0);
	ck_assert_int_eq(pv_crypto_memeq("xbcd", "abcd", 4), 0);
	ck_assert_int_eq(pv_crypto_memeq("a", "b", 0), 1);
}
END_TEST

START_TEST(test_crypto_token_is_prefix_and_hex)
{
	struct pv_err err = { 0 };
	const char *t1, *t2;
	size_t i;

	ck_assert_int_eq(pv_crypto_token(a, "sk_test_", 24, &t1, &err), 0);
	ck_assert_int_eq(pv_crypto_token(a, "sk_test_", 24, &t2, &err), 0);
	ck_assert_uint_eq(strlen(t1), 8 + 48);
	ck_assert_int_eq(strncmp(t1, "sk_test_", 8), 0);
	for (i = 8; t1[i] != '\0'; i++)
		ck_assert_ptr_nonnull(strchr("0123456789abcdef", t1[i]));
	ck_assert_str_ne(t1, t2);
	ck_assert_int_eq(pv_crypto_token(a, NULL, 1, &t1, &err), 0);
	ck_assert_uint_eq(strlen(t1), 2);
}
END_TEST

START_TEST(test_crypto_token_refuses_bad_size)
{
	struct pv_err err = { 0 };
	const char *t;

	ck_assert_int_eq(pv_crypto_token(a, "x", 0, &t, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_crypto_token(a, "x", PV_CRYPTO_TOKEN_MAX + 1, &t,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
}
END_TEST

/*
 * Secrets sealed before the switch from OpenSSL to Nettle (key bytes
 * 0..31) still open: the format is plain AES-256-GCM either way.
 */
START_TEST(test_crypto_open_reads_openssl_sealed_secrets)
{
	unsigned char key[PV_CRYPTO_KEY_LEN], *pt;
	static const char aad[] = "mer_0123456789abcdef:secret";
	static const char one[] =
	    "v1.oQR1zI3ScGinVe/FZEMSvGDZHvyV8N6h26WQBADmqJd8"
	    "lfEu5KpRLpZC/NF6JayTsM3iC6s5hqTnb9S4";
	static const char empty[] =
	    "v1.voaeOiKf2zjDU36R7+SLCw6+cxFjwAp1y08gyQ==";
	struct pv_err err = { 0 };
	size_t i, n;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)i;
	ck_assert_int_eq(pv_crypto_open(a, key, aad, strlen(aad), one,
	                     strlen(one), &pt, &n, &err),
	    0);
	ck_assert_uint_eq(n, 32);
	ck_assert_str_eq((const char *)pt, "sk_test_4eC39HqLyjWDarjtT1zdp7dc");
	ck_assert_int_eq(pv_crypto_open(a, key, NULL, 0, empty, strlen(empty),
	                     &pt, &n, &err),
	    0);
	ck_assert_uint_eq(n, 0);
	/* The same text under another aad is a forgery. */
	ck_assert_int_eq(pv_crypto_open(a, key, "x", 1, empty, strlen(empty),
	                     &pt, &n, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
}
END_TEST

START_TEST(test_crypto_random_fills)
{
	unsigned char buf[32], zero[32] = { 0 };
	struct pv_err err = { 0 };

	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(pv_crypto_random(buf, sizeof(buf), &err), 0);
	ck_assert_int_ne(memcmp(buf, zero, sizeof(buf)), 0);
	ck_assert_int_eq(pv_crypto_random(buf, 0, &err), 0);
}
END_TEST

/* The kernel gives at most 256 bytes a call: the tail must be filled. */
START_TEST(test_crypto_random_fills_past_256_bytes)
{
	unsigned char buf[1000], zero[32] = { 0 };
	struct pv_err err = { 0 };
	size_t off;

	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(pv_crypto_random(buf, sizeof(buf), &err), 0);
	for (off = 0; off + sizeof(zero) <= sizeof(buf); off += sizeof(zero))
		ck_assert_msg(memcmp(buf + off, zero, sizeof(zero)) != 0,
		    "32 zero bytes at offset %zu", off);
	ck_assert_int_ne(memcmp(buf + sizeof(buf) - 8, zero, 8), 0);
}
END_TEST

START_TEST(test_crypto_hex_roundtrips_and_accepts_uppercase)
{
	static const unsigned char bytes[] = { 0x00, 0x7f, 0x80, 0xff, 0xab };
	struct pv_err err = { 0 };
	unsigned char *out;
	const char *s;
	size_t n;

	ck_assert_int_eq(pv_crypto_hex_encode(a, bytes, sizeof(bytes), &s,
	                     &err),
	    0);
	ck_assert_str_eq(s, "007f80ffab");
	ck_assert_int_eq(pv_crypto_hex_decode(a, s, strlen(s), &out, &n, "key",
	                     &err),
	    0);
	ck_assert_uint_eq(n, sizeof(bytes));
	ck_assert_mem_eq(out, bytes, n);
	ck_assert_int_eq(pv_crypto_hex_decode(a, "007F80FFAB", 10, &out, &n,
	                     "key", &err),
	    0);
	ck_assert_mem_eq(out, bytes, n);
	ck_assert_int_eq(pv_crypto_hex_decode(a, "", 0, &out, &n, "key", &err),
	    0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_crypto_hex_decode_rejects_bad_digits)
{
	static const char *const bad[] = { "0", "abc", "0g", "g0", " 00", "00 ",
		"0x00", "+1", "\xff\xff", NULL };
	struct pv_err err;
	unsigned char *out;
	size_t i, n;

	for (i = 0; bad[i] != NULL; i++) {
		pv_err_clear(&err);
		ck_assert_int_eq(pv_crypto_hex_decode(a, bad[i], strlen(bad[i]),
		                     &out, &n, "key", &err),
		    -1);
		ck_assert_int_eq(err.code, PV_E_INVALID);
		ck_assert_str_eq(err.field, "key");
	}
	/* An embedded NUL is not a digit either. */
	pv_err_clear(&err);
	ck_assert_int_eq(pv_crypto_hex_decode(a, "00\0000", 4, &out, &n, "key",
	                     &err),
	    -1);
}
END_TEST

START_TEST(test_crypto_hex_decode_buf_refuses_overflow)
{
	struct pv_err err = { 0 };
	unsigned char buf[2];
	size_t n;

	ck_assert_int_eq(pv_crypto_hex_decode_buf("aabb", 4, buf, 2, &n, "k",
	                     &err),
	    0);
	ck_assert_int_eq(pv_crypto_hex_decode_buf("aabbcc", 6, buf, 2, &n, "k",
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
}
END_TEST

/* RFC 4648 section 10. */
static const char *const b64vec[][2] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

START_TEST(test_crypto_b64_encode_matches_rfc4648)
{
	struct pv_err err = { 0 };
	const char *s;
	size_t i;

	for (i = 0; i < sizeof(b64vec) / sizeof(b64vec[0]); i++) {
		ck_assert_int_eq(pv_crypto_b64_encode(a, b64vec[i][0],
		                     strlen(b64vec[i][0]), &s, &err),
		    0);
		ck_assert_str_eq(s, b64vec[i][1]);
	}
	ck_assert_int_eq(pv_crypto_b64_encode(a, "\xfb\xff", 2, &s, &err), 0);
	ck_assert_str_eq(s, "+/8=");
}
END_TEST

START_TEST(test_crypto_b64_decode_matches_rfc4648)
{
	struct pv_err err = { 0 };
	unsigned char *out;
	size_t i, n;

	for (i = 0; i < sizeof(b64vec) / sizeof(b64vec[0]); i++) {
		ck_assert_int_eq(pv_crypto_b64_decode(a, b64vec[i][1],
		                     strlen(b64vec[i][1]), &out, &n, "sig",
		                     &err),
		    0);
		ck_assert_uint_eq(n, strlen(b64vec[i][0]));
		ck_assert_mem_eq(out, b64vec[i][0], n);
	}
	ck_assert_int_eq(pv_crypto_b64_decode(a, "+/8=", 4, &out, &n, "sig",
	                     &err),
	    0);
	ck_assert_mem_eq(out, "\xfb\xff", 2);
}
END_TEST

START_TEST(test_crypto_b64_decode_rejects_noncanonical)
{
	static const char *const bad[] = { "Zg", "Zg=", "Zh==", "Zm8",
		"Zm9=", "Zm9v\n", "Zm 9v", " Zm9v",
		"Zg==Zg==", "Z===", "====", "Zm9v=", "-_8=", "Zm9v====", "Z",
		"Zm9vY", "Zg=a", NULL };
	struct pv_err err;
	unsigned char *out;
	size_t i, n;

	for (i = 0; bad[i] != NULL; i++) {
		pv_err_clear(&err);
		ck_assert_msg(pv_crypto_b64_decode(a, bad[i], strlen(bad[i]),
		                  &out, &n, "sig", &err) == -1,
		    "accepted \"%s\"", bad[i]);
		ck_assert_int_eq(err.code, PV_E_INVALID);
		ck_assert_str_eq(err.field, "sig");
	}
}
END_TEST

START_TEST(test_crypto_b64_decode_buf_refuses_overflow)
{
	struct pv_err err = { 0 };
	unsigned char buf[3];
	size_t n;

	ck_assert_int_eq(pv_crypto_b64_decode_buf("Zm9v", 4, buf, 3, &n, "s",
	                     &err),
	    0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(pv_crypto_b64_decode_buf("Zm9vYg==", 8, buf, 3, &n,
	                     "s", &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
}
END_TEST

START_TEST(test_crypto_seal_roundtrips)
{
	static const char secret[] = "whsec_test_secret_0123456789abcdef";
	struct pv_err err = { 0 };
	unsigned char *pt;
	const char *s;
	size_t n;

	ck_assert_int_eq(pv_crypto_seal(a, key1, "merchant_42", 11, secret,
	                     strlen(secret), &s, &err),
	    0);
	ck_assert_int_eq(strncmp(s, "v1.", 3), 0);
	/* 12 + 34 + 16 = 62 bytes: 84 base64 characters. */
	ck_assert_uint_eq(strlen(s), 3 + 84);
	ck_assert_ptr_null(strstr(s, "whsec"));
	ck_assert_int_eq(pv_crypto_open(a, key1, "merchant_42", 11, s,
	                     strlen(s), &pt, &n, &err),
	    0);
	ck_assert_uint_eq(n, strlen(secret));
	ck_assert_str_eq((const char *)pt, secret);

	ck_assert_int_eq(pv_crypto_seal(a, key1, NULL, 0, secret,
	                     strlen(secret), &s, &err),
	    0);
	ck_assert_int_eq(pv_crypto_open(a, key1, NULL, 0, s, strlen(s), &pt, &n,
	                     &err),
	    0);
	ck_assert_str_eq((const char *)pt, secret);

	ck_assert_int_eq(pv_crypto_seal(a, key1, NULL, 0, "", 0, &s, &err), 0);
	ck_assert_int_eq(pv_crypto_open(a, key1, NULL, 0, s, strlen(s), &pt, &n,
	                     &err),
	    0);
	ck_assert_uint_eq(n, 0);
	ck_assert_str_eq((const char *)pt, "");
}
END_TEST

START_TEST(test_crypto_seal_uses_fresh_nonce)
{
	struct pv_err err = { 0 };
	const char *s1, *s2;

	ck_assert_int_eq(pv_crypto_seal(a, key1, NULL, 0, "abc", 3, &s1, &err),
	    0);
	ck_assert_int_eq(pv_crypto_seal(a, key1, NULL, 0, "abc", 3, &s2, &err),
	    0);
	ck_assert_str_ne(s1, s2);
}
END_TEST

START_TEST(test_crypto_open_rejects_wrong_key_or_aad)
{
	struct pv_err err = { 0 };
	unsigned char *pt;
	const char *s;
	size_t n;

	ck_assert_int_eq(pv_crypto_seal(a, key1, "m1", 2, "sk_live_x", 9, &s,
	                     &err),
	    0);
	ck_assert_int_eq(pv_crypto_open(a, key2, "m1", 2, s, strlen(s), &pt, &n,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_crypto_open(a, key1, "m2", 2, s, strlen(s), &pt, &n,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_crypto_open(a, key1, NULL, 0, s, strlen(s), &pt, &n,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_crypto_open(a, key1, "m1", 2, s, strlen(s), &pt, &n,
	                     &err),
	    0);
}
END_TEST

/* Changing, dropping or adding any one character is detected. */
START_TEST(test_crypto_open_rejects_any_tampering)
{
	static const char *const bad[] = { "", "v1.", "v1", "v2.AAAA",
		"V1.AAAA", "v1.AAAA", NULL };
	struct pv_err err;
	unsigned char *pt;
	const char *s;
	char t[256];
	size_t i, n, len;

	pv_err_clear(&err);
	ck_assert_int_eq(pv_crypto_seal(a, key1, "m", 1, "secret", 6, &s, &err),
	    0);
	len = strlen(s);
	ck_assert_uint_lt(len, sizeof(t));
	for (i = 0; i < len; i++) {
		memcpy(t, s, len);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		pv_err_clear(&err);
		ck_assert_int_eq(pv_crypto_open(a, key1, "m", 1, t, len, &pt,
		                     &n, &err),
		    -1);
		ck_assert_int_eq(err.code, PV_E_AUTH);
	}
	for (i = 1; i < len; i++) {
		pv_err_clear(&err);
		ck_assert_int_eq(pv_crypto_open(a, key1, "m", 1, s, len - i,
		                     &pt, &n, &err),
		    -1);
		ck_assert_int_eq(err.code, PV_E_AUTH);
	}
	memcpy(t, s, len);
	memcpy(t + len, "AAAA", 4);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_crypto_open(a, key1, "m", 1, t, len + 4, &pt, &n,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	for (i = 0; bad[i] != NULL; i++) {
		pv_err_clear(&err);
		ck_assert_int_eq(pv_crypto_open(a, key1, "m", 1, bad[i],
		                     strlen(bad[i]), &pt, &n, &err),
		    -1);
		ck_assert_int_eq(err.code, PV_E_AUTH);
	}
}
END_TEST

/* Each allocation of seal and of open fails in turn, cleanly. */
START_TEST(test_crypto_seal_open_fail_cleanly_without_memory)
{
	struct pv_err err;
	unsigned char *pt;
	const char *s;
	size_t n;
	long i;

	for (i = 0;; i++) {
		pv_err_clear(&err);
		pv_arena_reset(a);
		pv_arena_fail_after(a, i);
		if (pv_crypto_seal(a, key1, "m", 1, "secret", 6, &s, &err) == 0)
			break;
		ck_assert_int_eq(err.code, PV_E_NOMEM);
	}
	ck_assert_int_eq(i, 2);
	for (i = 0;; i++) {
		pv_err_clear(&err);
		pv_arena_fail_after(a, i);
		if (pv_crypto_open(a, key1, "m", 1, s, strlen(s), &pt, &n,
		        &err) == 0)
			break;
		ck_assert_int_eq(err.code, PV_E_NOMEM);
	}
	ck_assert_int_eq(i, 2);
	ck_assert_str_eq((const char *)pt, "secret");
	pv_arena_fail_after(a, -1);
}
END_TEST

START_TEST(test_crypto_password_hash_verifies)
{
	struct pv_err err = { 0 };
	const char *h, *h2;

	ck_assert_int_eq(pv_crypto_password_hash_cost(a, "hunter2", 7, 4, &h,
	                     &err),
	    0);
	ck_assert_int_eq(strncmp(h, "$scrypt$ln=4,r=8,p=1$", 21), 0);
	/* 16-byte salt and 32-byte hash, unpadded base64. */
	ck_assert_uint_eq(strlen(h), 21 + 22 + 1 + 43);
	ck_assert_int_eq(pv_crypto_password_verify("hunter2", 7, h, &err), 0);
	ck_assert_int_eq(pv_crypto_password_hash_cost(a, "hunter2", 7, 4, &h2,
	                     &err),
	    0);
	ck_assert_str_ne(h, h2); /* fresh salt */
	ck_assert_int_eq(pv_crypto_password_hash_cost(a, "", 0, 4, &h, &err),
	    0);
	ck_assert_int_eq(pv_crypto_password_verify("", 0, h, &err), 0);
}
END_TEST

START_TEST(test_crypto_password_verify_rejects_wrong_password)
{
	struct pv_err err = { 0 };
	const char *h;

	ck_assert_int_eq(pv_crypto_password_hash_cost(a, "hunter2", 7, 4, &h,
	                     &err),
	    0);
	ck_assert_int_eq(pv_crypto_password_verify("hunter3", 7, h, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_crypto_password_verify("hunter", 6, h, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_crypto_password_verify("Hunter2", 7, h, &err), -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
}
END_TEST

/* RFC 7914 section 12, second vector, written as a stored string. */
START_TEST(test_crypto_password_verify_matches_rfc7914_scrypt)
{
	static const char stored[] =
	    "$scrypt$ln=10,r=8,p=16$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2"
	    "Y0s3MWIurzDZLiKjiG/xCSedmDDaxyevuUqD7m2DYMvfoswGQA";
	struct pv_err err = { 0 };

	ck_assert_int_eq(pv_crypto_password_verify("password", 8, stored, &err),
	    0);
	ck_assert_int_eq(pv_crypto_password_verify("passwore", 8, stored, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
}
END_TEST

/* RFC 7914 section 11, and a 10000-iteration vector from Python. */
START_TEST(test_crypto_password_verify_accepts_pbkdf2)
{
	static const char rfc[] =
	    "$pbkdf2-sha256$i=1$c2FsdA$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8I"
	    "NrLxJypzM8Xm2RZkWZLOdd+8xfHG4RbHjC9UJESBB06GXgw";
	static const char py[] =
	    "$pbkdf2-sha256$i=10000$c2FsdHNhbHRzYWx0c2F"
	    "sdA$M5fgfTQFdt/UZ9ItXSpJUbfh+t3SP1e/381emb1bpCs";
	struct pv_err err = { 0 };

	ck_assert_int_eq(pv_crypto_password_verify("passwd", 6, rfc, &err), 0);
	ck_assert_int_eq(pv_crypto_password_verify("correct horse", 13, py,
	                     &err),
	    0);
	ck_assert_int_eq(pv_crypto_password_verify("correct horsf", 13, py,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_AUTH);
	ck_assert_int_eq(pv_crypto_password_needs_rehash(py), 1);
}
END_TEST

START_TEST(test_crypto_password_verify_rejects_malformed_stored)
{
	static const char *const bad[] = { "", "plain", "$scrypt$",
		"$scrypt$ln=4,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA",
		"$scrypt$ln=4,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$",
		"$scrypt$ln=4,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$c2Fsd",
		"$scrypt$ln=04,r=8,p=1$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
		"$scrypt$ln=0,r=8,p=1$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
		"$scrypt$ln=4,r=8$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
		"$scrypt$r=8,ln=4,p=1$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
		"$scrypt$ln=4,r=8,p=1$c2FsdA==$c2FsdHNhbHRzYWx0c2FsdA",
		"$scrypt$ln=4,r=8,p=1$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA$",
		"$scrypt$ln=4,r=8,p=1$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA ",
		"$scrypt$ln=4,r=8,p=1$c2FsdA$c2FsdHNhbHRzYWx0c2F", /* 15 bytes
		                                                    */
		"$scrypt$ln=4,r=8,p=1$c2Fs$c2FsdHNhbHRzYWx0c2FsdA",
		"$scrypt$ln=+4,r=8,p=1$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
		"$pbkdf2-sha256$i=0$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
		"$pbkdf2-sha256$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
		"$pbkdf2-sha1$i=1$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
		"$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
		NULL };
	struct pv_err err;
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		pv_err_clear(&err);
		ck_assert_msg(pv_crypto_password_verify("x", 1, bad[i], &err) ==
		        -1,
		    "accepted %s", bad[i]);
		ck_assert_int_eq(err.code, PV_E_INTERNAL);
		ck_assert_int_eq(pv_crypto_password_needs_rehash(bad[i]), 1);
	}
	pv_err_clear(&err);
	ck_assert_int_eq(pv_crypto_password_verify("x", 1, NULL, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
}
END_TEST

/* A stored string cannot make verify spend unbounded memory or time. */
START_TEST(test_crypto_password_verify_refuses_excessive_cost)
{
	static const char *const bad[] = {
		"$scrypt$ln=21,r=8,p=1$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
		"$scrypt$ln=20,r=8,p=1$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
		"$scrypt$ln=4,r=33,p=1$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
		"$scrypt$ln=4,r=8,p=17$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
		"$scrypt$ln=99999999999999999999999,r=8,p=1$c2FsdA$"
		"c2FsdHNhbHRzYWx0c2FsdA",
		"$pbkdf2-sha256$i=10000001$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA", NULL
	};
	struct pv_err err;
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		pv_err_clear(&err);
		ck_assert_int_eq(pv_crypto_password_verify("x", 1, bad[i],
		                     &err),
		    -1);
		ck_assert_int_eq(err.code, PV_E_INTERNAL);
	}
}
END_TEST

START_TEST(test_crypto_password_hash_refuses_bad_input)
{
	static char longpw[PV_CRYPTO_PASSWORD_MAX + 1];
	struct pv_err err = { 0 };
	const char *h;

	memset(longpw, 'x', sizeof(longpw));
	ck_assert_int_eq(pv_crypto_password_hash_cost(a, longpw, sizeof(longpw),
	                     4, &h, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.field, "password");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_crypto_password_hash_cost(a, "a\0b", 3, 4, &h,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_crypto_password_hash_cost(a, "a", 1, 0, &h, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_crypto_password_hash_cost(a, "a", 1,
	                     PV_CRYPTO_SCRYPT_LN_MAX + 1, &h, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	ck_assert_int_eq(
	    pv_crypto_password_verify(longpw, sizeof(longpw),
	        "$scrypt$ln=4,r=8,p=1$c2FsdA$c2FsdHNhbHRzYWx0c2FsdA", &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
}
END_TEST

/* The production cost round-trips and is not flagged for rehash. */
START_TEST(test_crypto_password_hash_production_cost_is_current)
{
	struct pv_err err = { 0 };
	const char *h, *cheap;

	ck_assert_int_eq(pv_crypto_password_hash(a, "correct horse", 13, &h,
	                     &err),
	    0);
	ck_assert_int_eq(strncmp(h, "$scrypt$ln=15,r=8,p=1$", 22), 0);
	ck_assert_int_eq(pv_crypto_password_verify("correct horse", 13, h,
	                     &err),
	    0);
	ck_assert_int_eq(pv_crypto_password_needs_rehash(h), 0);
	ck_assert_int_eq(pv_crypto_password_hash_cost(a, "x", 1, 4, &cheap,
	                     &err),
	    0);
	ck_assert_int_eq(pv_crypto_password_needs_rehash(cheap), 1);
}
END_TEST

START_TEST(test_crypto_password_hash_fails_cleanly_without_memory)
{
	struct pv_err err;
	const char *h;
	long i;

	for (i = 0;; i++) {
		pv_err_clear(&err);
		pv_arena_reset(a);
		pv_arena_fail_after(a, i);
		if (pv_crypto_password_hash_cost(a, "pw", 2, 2, &h, &err) == 0)
			break;
		ck_assert_int_eq(err.code, PV_E_NOMEM);
	}
	ck_assert_int_eq(i, 1);
	pv_arena_fail_after(a, -1);
	ck_assert_int_eq(pv_crypto_password_verify("pw", 2, h, &err), 0);
}
END_TEST

START_TEST(test_crypto_token_fails_cleanly_without_memory)
{
	struct pv_err err = { 0 };
	const char *t;

	pv_arena_fail_after(a, 0);
	ck_assert_int_eq(pv_crypto_token(a, "tok_", 16, &t, &err), -1);
	ck_assert_int_eq(err.code, PV_E_NOMEM);
	pv_arena_fail_after(a, -1);
}
END_TEST

Suite *
crypto_suite(void)
{
	Suite *s = suite_create("crypto");
	TCase *tc;

	tc = tcase_create("digest");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_crypto_sha256_matches_fips_vectors);
	tcase_add_test(tc, test_crypto_sha256_hashes_a_million_bytes);
	tcase_add_test(tc, test_crypto_hmac_sha256_matches_rfc4231);
	tcase_add_test(tc, test_crypto_hmac_sha256_refuses_empty_key);
	tcase_add_test(tc, test_crypto_memeq_compares_all_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_crypto_random_fills);
	tcase_add_test(tc, test_crypto_open_reads_openssl_sealed_secrets);
	tcase_add_test(tc, test_crypto_random_fills_past_256_bytes);
	tcase_add_test(tc, test_crypto_token_is_prefix_and_hex);
	tcase_add_test(tc, test_crypto_token_refuses_bad_size);
	tcase_add_test(tc, test_crypto_token_fails_cleanly_without_memory);
	suite_add_tcase(s, tc);

	tc = tcase_create("codec");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_crypto_hex_roundtrips_and_accepts_uppercase);
	tcase_add_test(tc, test_crypto_hex_decode_rejects_bad_digits);
	tcase_add_test(tc, test_crypto_hex_decode_buf_refuses_overflow);
	tcase_add_test(tc, test_crypto_b64_encode_matches_rfc4648);
	tcase_add_test(tc, test_crypto_b64_decode_matches_rfc4648);
	tcase_add_test(tc, test_crypto_b64_decode_rejects_noncanonical);
	tcase_add_test(tc, test_crypto_b64_decode_buf_refuses_overflow);
	suite_add_tcase(s, tc);

	tc = tcase_create("seal");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_crypto_seal_roundtrips);
	tcase_add_test(tc, test_crypto_seal_uses_fresh_nonce);
	tcase_add_test(tc, test_crypto_open_rejects_wrong_key_or_aad);
	tcase_add_test(tc, test_crypto_open_rejects_any_tampering);
	tcase_add_test(tc, test_crypto_seal_open_fail_cleanly_without_memory);
	suite_add_tcase(s, tc);

	tc = tcase_create("password");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_crypto_password_hash_verifies);
	tcase_add_test(tc, test_crypto_password_verify_rejects_wrong_password);
	tcase_add_test(tc, test_crypto_password_verify_matches_rfc7914_scrypt);
	tcase_add_test(tc, test_crypto_password_verify_accepts_pbkdf2);
	tcase_add_test(tc,
	    test_crypto_password_verify_rejects_malformed_stored);
	tcase_add_test(tc, test_crypto_password_verify_refuses_excessive_cost);
	tcase_add_test(tc, test_crypto_password_hash_refuses_bad_input);
	tcase_add_test(tc,
	    test_crypto_password_hash_production_cost_is_current);
	tcase_add_test(tc,
	    test_crypto_password_hash_fails_cleanly_without_memory);
	suite_add_tcase(s, tc);
	return s;
}
