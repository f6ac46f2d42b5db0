/*
 * Webhook signature schemes on top of pv_crypto.  Parsing is strict:
 * a header that is not exactly in the documented shape is refused
 * rather than guessed at, since a lenient parser is where signature
 * bypasses live.  Every comparison is between decoded MAC bytes with
 * pv_crypto_memeq(), and every candidate is compared (no early exit)
 * so timing does not say which secret or which v1 entry matched.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "pv_crypto.h"
#include "pv_sig.h"

#define STRIPE_FIELD  "Stripe-Signature"
#define SHOPIFY_FIELD "X-Shopify-Hmac-Sha256"
#define ADYEN_FIELD   "hmacSignature"
#define T_DIGITS_MAX  15 /* far beyond any real Unix time, far below INT64 */
#define ADYEN_KEY_MAX 64 /* bytes of a decoded Adyen HMAC key */

/* Checks that a list of secrets has at least one non-empty entry. */
static int
have_secrets(const char *const *secrets, const char *who, struct pv_err *err)
{
	size_t i;

	if (secrets == NULL || secrets[0] == NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "no %s webhook secret configured", who);
		return -1;
	}
	for (i = 0; secrets[i] != NULL; i++) {
		if (secrets[i][0] == '\0') {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "empty %s webhook secret configured", who);
			return -1;
		}
	}
	return 0;
}

/* Parses the Stripe timestamp: 1 to T_DIGITS_MAX digits, nothing else. */
static int
stripe_ts(const char *s, size_t len, int64_t *out, struct pv_err *err)
{
	int64_t v = 0;
	size_t i;

	if (len == 0 || len > T_DIGITS_MAX) {
		PV_ERR(err, PV_E_AUTH, STRIPE_FIELD,
		    "malformed timestamp in Stripe-Signature header");
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			PV_ERR(err, PV_E_AUTH, STRIPE_FIELD,
			    "malformed timestamp in Stripe-Signature header");
			return -1;
		}
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* HMAC-SHA256(secret, t + "." + body), with t exactly as it was sent. */
static int
stripe_mac(const char *secret, const char *t, size_t tlen, const void *body,
    size_t bodylen, unsigned char mac[PV_CRYPTO_SHA256_LEN], struct pv_err *err)
{
	struct pv_iov iov[3];

	iov[0].p = t;
	iov[0].len = tlen;
	iov[1].p = ".";
	iov[1].len = 1;
	iov[2].p = body;
	iov[2].len = bodylen;
	return pv_crypto_hmac_sha256(secret, strlen(secret), iov, 3, mac, err);
}

/*
 * Verifies a Stripe-Signature header against the raw body.  The header
 * must be comma-separated key=value items with no spaces, exactly one
 * t (decimal seconds), and 1 to PV_SIG_STRIPE_V1_MAX v1 entries of 64
 * hex digits each; v0 and unknown keys are ignored, as Stripe
 * documents.  Accepts if any v1 matches any of the NULL-terminated
 * secrets (the "whsec_..." strings, used as they are), and then only if
 * now - t is at most tolerance_s (future timestamps are not refused,
 * like stripe-node).  Returns 0, or -1 with PV_E_AUTH ("signature
 * mismatch", "timestamp outside the tolerance zone", or what is wrong
 * with the header), or PV_E_INTERNAL (no secret, tolerance_s <= 0).
 */
int
pv_sig_stripe_verify(const char *header, const char *const *secrets,
    const void *body, size_t bodylen, int64_t now, int64_t tolerance_s,
    struct pv_err *err)
{
	unsigned char want[PV_SIG_STRIPE_V1_MAX][PV_CRYPTO_SHA256_LEN];
	unsigned char mac[PV_CRYPTO_SHA256_LEN];
	struct pv_err derr = { 0 };
	const char *p, *end, *eq, *t = NULL;
	size_t i, j, nv1 = 0, tlen = 0, n;
	int64_t ts;
	int match = 0;

	if (have_secrets(secrets, "Stripe", err) == -1)
		return -1;
	if (tolerance_s <= 0) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "Stripe tolerance must be positive");
		return -1;
	}
	if (header == NULL || header[0] == '\0') {
		PV_ERR(err, PV_E_AUTH, STRIPE_FIELD,
		    "missing Stripe-Signature header");
		return -1;
	}
	if (strnlen(header, PV_SIG_STRIPE_HEADER_MAX + 1) >
	    PV_SIG_STRIPE_HEADER_MAX) {
		PV_ERR(err, PV_E_AUTH, STRIPE_FIELD,
		    "Stripe-Signature header is longer than %d bytes",
		    PV_SIG_STRIPE_HEADER_MAX);
		return -1;
	}
	for (p = header;; p = end + 1) {
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL || eq == p) {
			PV_ERR(err, PV_E_AUTH, STRIPE_FIELD,
			    "malformed Stripe-Signature header");
			return -1;
		}
		if (eq - p == 1 && p[0] == 't') {
			if (t != NULL) {
				PV_ERR(err, PV_E_AUTH, STRIPE_FIELD,
				    "more than one timestamp in "
				    "Stripe-Signature header");
				return -1;
			}
			t = eq + 1;
			tlen = (size_t)(end - t);
		} else if (eq - p == 2 && p[0] == 'v' && p[1] == '1') {
			if (nv1 == PV_SIG_STRIPE_V1_MAX) {
				PV_ERR(err, PV_E_AUTH, STRIPE_FIELD,
				    "more than %d v1 signatures in "
				    "Stripe-Signature header",
				    PV_SIG_STRIPE_V1_MAX);
				return -1;
			}
			if (end - (eq + 1) != 2 * PV_CRYPTO_SHA256_LEN ||
			    pv_crypto_hex_decode_buf(eq + 1,
			        2 * PV_CRYPTO_SHA256_LEN, want[nv1],
			        PV_CRYPTO_SHA256_LEN, &n, NULL, &derr) == -1) {
				PV_ERR(err, PV_E_AUTH, STRIPE_FIELD,
				    "malformed v1 signature in "
				    "Stripe-Signature header");
				return -1;
			}
			nv1++;
		}
		if (*end == '\0')
			break;
	}
	if (t == NULL) {
		PV_ERR(err, PV_E_AUTH, STRIPE_FIELD,
		    "no timestamp in Stripe-Signature header");
		return -1;
	}
	if (stripe_ts(t, tlen, &ts, err) == -1)
		return -1;
	if (nv1 == 0) {
		PV_ERR(err, PV_E_AUTH, STRIPE_FIELD,
		    "no v1 signature in Stripe-Signature header");
		return -1;
	}
	for (i = 0; secrets[i] != NULL; i++) {
		if (stripe_mac(secrets[i], t, tlen, body, bodylen, mac, err) ==
		    -1)
			return -1;
		for (j = 0; j < nv1; j++)
			match |= pv_crypto_memeq(mac, want[j], sizeof(mac));
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	if (!match) {
		PV_ERR(err, PV_E_AUTH, STRIPE_FIELD, "signature mismatch");
		return -1;
	}
	if (ts < now && now - ts > tolerance_s) {
		PV_ERR(err, PV_E_AUTH, STRIPE_FIELD,
		    "timestamp outside the tolerance zone");
		return -1;
	}
	return 0;
}

/*
 * Signs body the way Stripe does, for tests and for our outbound agent
 * webhooks: *header becomes "t=<t>,v1=<hex>" (arena memory), ready for
 * a Stripe-Signature header.  Returns 0, or -1 with PV_E_INTERNAL
 * (empty secret, negative t, OpenSSL), PV_E_NOMEM or PV_E_TOOBIG.
 */
int
pv_sig_stripe_sign(struct pv_arena *a, const char *secret, int64_t t,
    const void *body, size_t bodylen, const char **header, struct pv_err *err)
{
	unsigned char mac[PV_CRYPTO_SHA256_LEN];
	const char *hex;
	char ts[24];
	char *h;
	int n;

	if (secret == NULL || secret[0] == '\0') {
		PV_ERR(err, PV_E_INTERNAL, NULL, "no Stripe signing secret");
		return -1;
	}
	if (t < 0) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "negative signing timestamp");
		return -1;
	}
	n = snprintf(ts, sizeof(ts), "%" PRId64, t);
	if (n < 0 || (size_t)n >= sizeof(ts)) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "timestamp does not format");
		return -1;
	}
	if (stripe_mac(secret, ts, (size_t)n, body, bodylen, mac, err) == -1 ||
	    pv_crypto_hex_encode(a, mac, sizeof(mac), &hex, err) == -1 ||
	    (h = pv_arena_printf(a, err, "t=%s,v1=%s", ts, hex)) == NULL)
		return -1;
	*header = h;
	return 0;
}

/* Decodes a base64 HMAC-SHA256 from a header; anything else is PV_E_AUTH. */
static int
b64_mac(const char *s, const char *field,
    unsigned char mac[PV_CRYPTO_SHA256_LEN], struct pv_err *err)
{
	struct pv_err derr = { 0 };
	size_t len, n;

	if (s == NULL || s[0] == '\0') {
		PV_ERR(err, PV_E_AUTH, field, "missing %s", field);
		return -1;
	}
	len = strnlen(s, 64);
	if (pv_crypto_b64_decode_buf(s, len, mac, PV_CRYPTO_SHA256_LEN, &n,
	        NULL, &derr) == -1 ||
	    n != PV_CRYPTO_SHA256_LEN || s[len] != '\0') {
		PV_ERR(err, PV_E_AUTH, field, "malformed %s", field);
		return -1;
	}
	return 0;
}

/*
 * Verifies X-Shopify-Hmac-Sha256 (header_b64) against the raw body for
 * any of the NULL-terminated app client secrets (Shopify keeps signing
 * with the old secret for up to an hour after a rotation).  The header
 * must be canonical padded base64 of 32 bytes.  Returns 0, or -1 with
 * PV_E_AUTH (missing, malformed, "signature mismatch") or
 * PV_E_INTERNAL (no secret configured, OpenSSL).
 */
int
pv_sig_shopify_verify_any(const char *header_b64, const char *const *secrets,
    const void *body, size_t bodylen, struct pv_err *err)
{
	unsigned char want[PV_CRYPTO_SHA256_LEN], mac[PV_CRYPTO_SHA256_LEN];
	struct pv_iov iov[1];
	size_t i;
	int match = 0;

	if (have_secrets(secrets, "Shopify", err) == -1 ||
	    b64_mac(header_b64, SHOPIFY_FIELD, want, err) == -1)
		return -1;
	iov[0].p = body;
	iov[0].len = bodylen;
	for (i = 0; secrets[i] != NULL; i++) {
		if (pv_crypto_hmac_sha256(secrets[i], strlen(secrets[i]), iov,
		        1, mac, err) == -1)
			return -1;
		match |= pv_crypto_memeq(mac, want, sizeof(mac));
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	if (!match) {
		PV_ERR(err, PV_E_AUTH, SHOPIFY_FIELD, "signature mismatch");
		return -1;
	}
	return 0;
}

/* pv_sig_shopify_verify_any() with a single secret. */
int
pv_sig_shopify_verify(const char *header_b64, const char *secret,
    const void *body, size_t bodylen, struct pv_err *err)
{
	const char *secrets[2];

	secrets[0] = secret;
	secrets[1] = NULL;
	return pv_sig_shopify_verify_any(header_b64, secrets, body, bodylen,
	    err);
}

/*
 * Computes the X-Shopify-Hmac-Sha256 value for body (for tests and the
 * local Shopify fake).  Returns 0 and *out (arena memory), or -1 with
 * PV_E_INTERNAL, PV_E_NOMEM or PV_E_TOOBIG.
 */
int
pv_sig_shopify_sign(struct pv_arena *a, const char *secret, const void *body,
    size_t bodylen, const char **out, struct pv_err *err)
{
	unsigned char mac[PV_CRYPTO_SHA256_LEN];
	struct pv_iov iov[1];

	if (secret == NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "no Shopify signing secret");
		return -1;
	}
	iov[0].p = body;
	iov[0].len = bodylen;
	if (pv_crypto_hmac_sha256(secret, strlen(secret), iov, 1, mac, err) ==
	        -1 ||
	    pv_crypto_b64_encode(a, mac, sizeof(mac), out, err) == -1)
		return -1;
	return 0;
}

static const char *
or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/*
 * Builds the string Adyen signs for a payment notification item:
 * pspReference:originalReference:merchantAccountCode:merchantReference:
 * value:currency:eventCode:success, with NULL fields as empty strings.
 * Fields are not escaped (Adyen does not escape them either).  Returns
 * 0 and *out (arena memory), or -1 with PV_E_NOMEM or PV_E_TOOBIG.
 */
int
pv_sig_adyen_string(struct pv_arena *a, const struct pv_sig_adyen *f,
    const char **out, struct pv_err *err)
{
	const char *s;

	s = pv_arena_printf(a, err, "%s:%s:%s:%s:%" PRId64 ":%s:%s:%s",
	    or_empty(f->psp_reference), or_empty(f->original_reference),
	    or_empty(f->merchant_account), or_empty(f->merchant_reference),
	    f->value, or_empty(f->currency), or_empty(f->event_code),
	    or_empty(f->success));
	if (s == NULL)
		return -1;
	*out = s;
	return 0;
}

/* HMAC-SHA256 of a C string under a hex-encoded key. */
static int
adyen_mac(const char *hexkey, const char *str,
    unsigned char mac[PV_CRYPTO_SHA256_LEN], struct pv_err *err)
{
	unsigned char key[ADYEN_KEY_MAX];
	struct pv_err derr = { 0 };
	struct pv_iov iov[1];
	size_t keylen;
	int rc;

	if (hexkey == NULL || hexkey[0] == '\0') {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "no Adyen HMAC key configured");
		return -1;
	}
	if (str == NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "no Adyen signing string");
		return -1;
	}
	if (pv_crypto_hex_decode_buf(hexkey, strlen(hexkey), key, sizeof(key),
	        &keylen, NULL, &derr) == -1) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "Adyen HMAC key: %s",
		    derr.msg);
		return -1;
	}
	iov[0].p = str;
	iov[0].len = strlen(str);
	rc = pv_crypto_hmac_sha256(key, keylen, iov, 1, mac, err);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/*
 * Verifies an Adyen hmacSignature (base64) over signing_string (from
 * pv_sig_adyen_string()) with the Customer Area key given in hex.
 * Returns 0, or -1 with PV_E_AUTH (missing or malformed signature,
 * "signature mismatch") or PV_E_INTERNAL (key not hex, OpenSSL).
 */
int
pv_sig_adyen_verify(const char *hexkey, const char *signing_string,
    const char *hmac_b64, struct pv_err *err)
{
	unsigned char want[PV_CRYPTO_SHA256_LEN], mac[PV_CRYPTO_SHA256_LEN];
	int match;

	if (adyen_mac(hexkey, signing_string, mac, err) == -1 ||
	    b64_mac(hmac_b64, ADYEN_FIELD, want, err) == -1)
		return -1;
	match = pv_crypto_memeq(mac, want, sizeof(mac));
	OPENSSL_cleanse(mac, sizeof(mac));
	if (!match) {
		PV_ERR(err, PV_E_AUTH, ADYEN_FIELD, "signature mismatch");
		return -1;
	}
	return 0;
}

/*
 * Computes the hmacSignature for signing_string under the hex key (for
 * tests and the local Adyen fake).  Returns 0 and *out (arena memory,
 * base64), or -1 with PV_E_INTERNAL, PV_E_NOMEM or PV_E_TOOBIG.
 */
int
pv_sig_adyen_sign(struct pv_arena *a, const char *hexkey,
    const char *signing_string, const char **out, struct pv_err *err)
{
	unsigned char mac[PV_CRYPTO_SHA256_LEN];

	if (adyen_mac(hexkey, signing_string, mac, err) == -1 ||
	    pv_crypto_b64_encode(a, mac, sizeof(mac), out, err) == -1)
		return -1;
	return 0;
}
