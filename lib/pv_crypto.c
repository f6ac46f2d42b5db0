/*
 * Cryptographic primitives.  The module has no state of its own.
 *
 * What the FastCGI programs use on every request (SHA-256, HMAC-SHA256,
 * AES-256-GCM) is Nettle's, and random bytes come from the kernel
 * (getentropy, the source OpenSSL's own generator is seeded from).
 * Only the password KDFs (scrypt, PBKDF2), used at login, are OpenSSL
 * 3 EVP: a process's first EVP call starts OpenSSL's provider machinery
 * (the default provider, a name map of every algorithm, the error
 * strings), 2.3 MiB of RSS in every process that hashes an API key or
 * opens a stored secret (docs/performance.md, "Memory").  Nettle has
 * no global state to start, and libpq's dependencies (GnuTLS) already
 * map it into every process on Debian.  Hex and base64 are written
 * here rather than taken from EVP_EncodeBlock/EVP_DecodeBlock because those
 * skip whitespace, accept stray padding and lose the exact decoded length;
 * everything we decode comes from outside and must be canonical.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include <nettle/gcm.h>
#include <nettle/hmac.h>
#include <nettle/sha2.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "pv_crypto.h"

#define SEAL_PREFIX    "v1."
#define SEAL_PREFIXLEN 3
#define SEAL_NONCELEN  12
#define SEAL_TAGLEN    16

#define SCRYPT_PREFIX   "$scrypt$"
#define PBKDF2_PREFIX   "$pbkdf2-sha256$"
#define SCRYPT_R        8u
#define SCRYPT_P        1u
#define SALT_LEN        16
#define HASH_LEN        32
#define PHC_SALT_MIN    4  /* shortest salt a stored string may hold */
#define PHC_HASH_MIN    16 /* shortest hash a stored string may hold */
#define PHC_BYTES_MAX   64 /* longest salt or hash a stored string may hold */
#define SCRYPT_R_MAX    32u
#define SCRYPT_P_MAX    16u
#define SCRYPT_MAXMEM   (256ull * 1024 * 1024)
#define PBKDF2_ITER_MAX 10000000ul

enum phc_scheme {
	PHC_SCRYPT, /* $scrypt$ln=..,r=..,p=..$salt$hash */
	PHC_PBKDF2  /* $pbkdf2-sha256$i=..$salt$hash */
};

/* A parsed stored password hash. */
struct phc {
	enum phc_scheme scheme;            /* which KDF */
	unsigned long ln;                  /* scrypt: log2 of N */
	unsigned long r;                   /* scrypt: block size */
	unsigned long p;                   /* scrypt: parallelism */
	unsigned long iter;                /* pbkdf2: iterations */
	unsigned char salt[PHC_BYTES_MAX]; /* decoded salt */
	size_t saltlen;                    /* its length */
	unsigned char hash[PHC_BYTES_MAX]; /* decoded expected output */
	size_t hashlen;                    /* its length */
};

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char hexchars[] = "0123456789abcdef";

/*
 * Records an OpenSSL failure with the oldest queued error's text and
 * empties the queue, so a later failure does not report a stale cause.
 */
static void
ossl_fail(struct pv_err *err, const char *what)
{
	char buf[200];
	unsigned long e;

	e = ERR_get_error();
	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	else if (snprintf(buf, sizeof(buf), "no OpenSSL error queued") < 0)
		buf[0] = '\0';
	ERR_clear_error();
	PV_ERR(err, PV_E_INTERNAL, NULL, "%s: %s", what, buf);
}

/*
 * OSSL_PARAM wants void * for octet strings it only reads; launder the
 * const through uintptr_t rather than cast it away in a dozen places.
 */
static void *
unconst(const void *p)
{
	return (void *)(uintptr_t)p;
}

/*
 * Writes 2 * len lowercase hex digits and a NUL to out.
 */
static void
hex(const unsigned char *p, size_t len, char *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = hexchars[p[i] >> 4];
		out[2 * i + 1] = hexchars[p[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

/* The value of one hex digit (either case), or -1. */
int
pv_crypto_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Bytes of base64 text for len bytes, padded or not, excluding NUL. */
static size_t
b64len(size_t len, int pad)
{
	if (pad)
		return (len + 2) / 3 * 4;
	return len / 3 * 4 + (len % 3 != 0 ? len % 3 + 1 : 0);
}

/* Writes b64len(len, pad) characters of standard base64 and a NUL. */
static void
b64(const unsigned char *p, size_t len, int pad, char *out)
{
	unsigned long v;
	size_t i, o;

	for (i = 0, o = 0; i + 2 < len; i += 3) {
		v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8 |
		    p[i + 2];
		out[o++] = b64chars[v >> 18 & 63];
		out[o++] = b64chars[v >> 12 & 63];
		out[o++] = b64chars[v >> 6 & 63];
		out[o++] = b64chars[v & 63];
	}
	if (len - i == 1) {
		v = (unsigned long)p[i] << 16;
		out[o++] = b64chars[v >> 18 & 63];
		out[o++] = b64chars[v >> 12 & 63];
		if (pad) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (len - i == 2) {
		v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8;
		out[o++] = b64chars[v >> 18 & 63];
		out[o++] = b64chars[v >> 12 & 63];
		out[o++] = b64chars[v >> 6 & 63];
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decodes canonical standard base64: padded to a multiple of four when
 * pad is set, with no '=' at all otherwise.  No whitespace, no URL-safe
 * alphabet, and the bits left over in the last character must be zero
 * (so each byte string has exactly one accepted encoding).
 */
static int
unb64(const char *s, size_t len, int pad, unsigned char *out, size_t size,
    size_t *outlen, const char *field, struct pv_err *err)
{
	unsigned int v, bits;
	size_t i, n, o, need;
	int d;

	n = len;
	if (pad) {
		if (len % 4 != 0) {
			PV_ERR(err, PV_E_INVALID, field,
			    "base64 length is not a multiple of 4");
			return -1;
		}
		if (n > 0 && s[n - 1] == '=')
			n--;
		if (n > 0 && s[n - 1] == '=')
			n--;
	}
	if (n % 4 == 1) {
		PV_ERR(err, PV_E_INVALID, field, "base64 is truncated");
		return -1;
	}
	need = n / 4 * 3 + (n % 4 != 0 ? n % 4 - 1 : 0);
	if (need > size) {
		PV_ERR(err, PV_E_INVALID, field,
		    "base64 decodes to more than %zu bytes", size);
		return -1;
	}
	v = 0;
	bits = 0;
	o = 0;
	for (i = 0; i < n; i++) {
		if ((d = b64val((unsigned char)s[i])) == -1) {
			PV_ERR(err, PV_E_INVALID, field,
			    "invalid base64 character at offset %zu", i);
			return -1;
		}
		v = v << 6 | (unsigned int)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
			v &= (1u << bits) - 1;
		}
	}
	if (v != 0) {
		PV_ERR(err, PV_E_INVALID, field, "base64 is not canonical");
		return -1;
	}
	*outlen = o;
	return 0;
}

/*
 * Computes the SHA-256 of len bytes at p into out (Nettle; see the
 * top of the file).  Returns 0: it cannot fail, err is there for the
 * callers' chains.
 */
int
pv_crypto_sha256(const void *p, size_t len,
    unsigned char out[PV_CRYPTO_SHA256_LEN], struct pv_err *err)
{
	struct sha256_ctx c;

	(void)err;
	sha256_init(&c);
	if (len != 0)
		sha256_update(&c, len, p);
	sha256_digest(&c, PV_CRYPTO_SHA256_LEN, out);
	return 0;
}

/*
 * Computes HMAC-SHA256 with key over the concatenation of the n parts
 * of iov, so a message assembled from pieces (Stripe's "t." and body)
 * needs no copy.  An empty key is refused as PV_E_INTERNAL: it means a
 * secret was never configured, and would make every signature
 * forgeable.  Returns 0, or -1 with PV_E_INTERNAL.
 */
int
pv_crypto_hmac_sha256(const void *key, size_t keylen, const struct pv_iov *iov,
    size_t n, unsigned char out[PV_CRYPTO_SHA256_LEN], struct pv_err *err)
{
	struct hmac_sha256_ctx c;
	size_t i;

	if (keylen == 0) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "HMAC key is empty");
		return -1;
	}
	hmac_sha256_set_key(&c, keylen, key);
	for (i = 0; i < n; i++)
		if (iov[i].len != 0)
			hmac_sha256_update(&c, iov[i].len, iov[i].p);
	hmac_sha256_digest(&c, PV_CRYPTO_SHA256_LEN, out);
	OPENSSL_cleanse(&c, sizeof(c));
	return 0;
}

/*
 * Returns 1 if the len bytes at a and b are equal, else 0, in time that
 * depends only on len.  Use it for every secret or MAC comparison.
 */
int
pv_crypto_memeq(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

/*
 * Fills len bytes at p from the kernel's CSPRNG (getentropy, at most
 * 256 bytes a call).  Returns 0, or -1 with PV_E_INTERNAL if the
 * kernel has none to give.
 */
int
pv_crypto_random(void *p, size_t len, struct pv_err *err)
{
	unsigned char *b = p;
	size_t n;

	for (; len > 0; b += n, len -= n) {
		n = len < 256 ? len : 256;
		if (getentropy(b, n) == -1) {
			PV_ERR(err, PV_E_INTERNAL, NULL, "getentropy: %s",
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

/*
 * Makes a random token: prefix (which may be NULL or "") followed by
 * nbytes (1 to PV_CRYPTO_TOKEN_MAX) random bytes in lowercase hex, e.g.
 * "sk_live_" and 24 bytes for an API key.  Returns 0 and *out (arena
 * memory), or -1 with PV_E_INTERNAL (bad nbytes, RNG failure),
 * PV_E_NOMEM or PV_E_TOOBIG.
 */
int
pv_crypto_token(struct pv_arena *a, const char *prefix, size_t nbytes,
    const char **out, struct pv_err *err)
{
	unsigned char raw[PV_CRYPTO_TOKEN_MAX];
	size_t plen;
	char *s;

	if (nbytes == 0 || nbytes > PV_CRYPTO_TOKEN_MAX) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "token size %zu is outside 1..%d bytes", nbytes,
		    PV_CRYPTO_TOKEN_MAX);
		return -1;
	}
	plen = prefix != NULL ? strlen(prefix) : 0;
	if (plen > 256) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "token prefix too long");
		return -1;
	}
	if ((s = pv_arena_alloc(a, plen + 2 * nbytes + 1, err)) == NULL)
		return -1;
	if (pv_crypto_random(raw, nbytes, err) == -1)
		return -1;
	if (plen != 0)
		memcpy(s, prefix, plen);
	hex(raw, nbytes, s + plen);
	OPENSSL_cleanse(raw, sizeof(raw));
	*out = s;
	return 0;
}

/*
 * Encodes len bytes as lowercase hex.  Returns 0 and *out (arena
 * memory, NUL-terminated), or -1 with PV_E_NOMEM or PV_E_TOOBIG.
 */
int
pv_crypto_hex_encode(struct pv_arena *a, const void *p, size_t len,
    const char **out, struct pv_err *err)
{
	char *s;

	if (len > (SIZE_MAX - 1) / 2) {
		PV_ERR(err, PV_E_TOOBIG, NULL, "hex input too large");
		return -1;
	}
	if ((s = pv_arena_alloc(a, 2 * len + 1, err)) == NULL)
		return -1;
	hex(p, len, s);
	*out = s;
	return 0;
}

/*
 * Decodes len hex digits (either case, nothing else, even count) into
 * out, which holds size bytes.  Returns 0 and *outlen, or -1 with
 * PV_E_INVALID naming field when the text is not hex or too long.
 */
int
pv_crypto_hex_decode_buf(const char *s, size_t len, unsigned char *out,
    size_t size, size_t *outlen, const char *field, struct pv_err *err)
{
	size_t i;
	int hi, lo;

	if (len % 2 != 0) {
		PV_ERR(err, PV_E_INVALID, field, "odd number of hex digits");
		return -1;
	}
	if (len / 2 > size) {
		PV_ERR(err, PV_E_INVALID, field,
		    "hex decodes to more than %zu bytes", size);
		return -1;
	}
	for (i = 0; i < len; i += 2) {
		hi = pv_crypto_hex_digit((unsigned char)s[i]);
		lo = pv_crypto_hex_digit((unsigned char)s[i + 1]);
		if (hi == -1 || lo == -1) {
			PV_ERR(err, PV_E_INVALID, field,
			    "invalid hex digit at offset %zu",
			    hi == -1 ? i : i + 1);
			return -1;
		}
		out[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	*outlen = len / 2;
	return 0;
}

/*
 * Like pv_crypto_hex_decode_buf() but into arena memory.  Returns 0 with
 * *out and *outlen, or -1 with PV_E_INVALID, PV_E_NOMEM or PV_E_TOOBIG.
 */
int
pv_crypto_hex_decode(struct pv_arena *a, const char *s, size_t len,
    unsigned char **out, size_t *outlen, const char *field, struct pv_err *err)
{
	unsigned char *p;

	if ((p = pv_arena_alloc(a, len / 2, err)) == NULL ||
	    pv_crypto_hex_decode_buf(s, len, p, len / 2, outlen, field, err) ==
	        -1)
		return -1;
	*out = p;
	return 0;
}

/*
 * Encodes len bytes as standard, padded base64.  Returns 0 and *out
 * (arena memory, NUL-terminated), or -1 with PV_E_NOMEM or PV_E_TOOBIG.
 */
int
pv_crypto_b64_encode(struct pv_arena *a, const void *p, size_t len,
    const char **out, struct pv_err *err)
{
	char *s;

	if (len > SIZE_MAX / 2) {
		PV_ERR(err, PV_E_TOOBIG, NULL, "base64 input too large");
		return -1;
	}
	if ((s = pv_arena_alloc(a, b64len(len, 1) + 1, err)) == NULL)
		return -1;
	b64(p, len, 1, s);
	*out = s;
	return 0;
}

/*
 * Decodes canonical, padded, standard base64 (no whitespace, no URL-safe
 * alphabet, zero spare bits) into out, which holds size bytes.  Returns
 * 0 and *outlen, or -1 with PV_E_INVALID naming field.
 */
int
pv_crypto_b64_decode_buf(const char *s, size_t len, unsigned char *out,
    size_t size, size_t *outlen, const char *field, struct pv_err *err)
{
	return unb64(s, len, 1, out, size, outlen, field, err);
}

/*
 * Like pv_crypto_b64_decode_buf() but into arena memory.  Returns 0 with
 * *out and *outlen, or -1 with PV_E_INVALID, PV_E_NOMEM or PV_E_TOOBIG.
 */
int
pv_crypto_b64_decode(struct pv_arena *a, const char *s, size_t len,
    unsigned char **out, size_t *outlen, const char *field, struct pv_err *err)
{
	unsigned char *p;
	size_t size;

	size = len / 4 * 3;
	if ((p = pv_arena_alloc(a, size, err)) == NULL ||
	    unb64(s, len, 1, p, size, outlen, field, err) == -1)
		return -1;
	*out = p;
	return 0;
}

/*
 * Starts AES-256-GCM under key with the nonce and the sealing AAD: the
 * version prefix first, so a future format cannot be confused with
 * this one, then the caller's aad.  Nettle takes AAD in whole blocks
 * but the last, so the prefix and the start of aad make the first.
 */
static void
seal_start(struct gcm_aes256_ctx *c, const unsigned char *key,
    const unsigned char *nonce, const void *aad, size_t aadlen)
{
	unsigned char head[GCM_BLOCK_SIZE];
	size_t n = sizeof(head) - SEAL_PREFIXLEN;

	if (aadlen < n)
		n = aadlen;
	memcpy(head, SEAL_PREFIX, SEAL_PREFIXLEN);
	if (n != 0)
		memcpy(head + SEAL_PREFIXLEN, aad, n);
	gcm_aes256_set_key(c, key);
	gcm_aes256_set_iv(c, SEAL_NONCELEN, nonce);
	gcm_aes256_update(c, SEAL_PREFIXLEN + n, head);
	if (aadlen > n)
		gcm_aes256_update(c, aadlen - n,
		    (const unsigned char *)aad + n);
}

/*
 * Encrypts len bytes (at most PV_CRYPTO_SEAL_MAX) with AES-256-GCM under
 * the PV_CRYPTO_KEY_LEN-byte key, binding the optional aad (which open
 * must repeat exactly), for storage of third-party secrets.  The result
 * is printable: "v1." and base64 of a fresh random 12-byte nonce, the
 * ciphertext and the 16-byte tag.  Random nonces are safe for far more
 * secrets than we will ever seal under one key (2^32).  Returns 0 and
 * *out (arena memory), or -1 with PV_E_INTERNAL (RNG, sizes),
 * PV_E_NOMEM or PV_E_TOOBIG.
 */
int
pv_crypto_seal(struct pv_arena *a, const unsigned char *key, const void *aad,
    size_t aadlen, const void *p, size_t len, const char **out,
    struct pv_err *err)
{
	struct gcm_aes256_ctx c;
	unsigned char *raw;
	size_t rawlen;
	char *s;

	if (len > PV_CRYPTO_SEAL_MAX || aadlen > PV_CRYPTO_SEAL_MAX) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "sealed data over %d bytes",
		    PV_CRYPTO_SEAL_MAX);
		return -1;
	}
	rawlen = SEAL_NONCELEN + len + SEAL_TAGLEN;
	if ((raw = pv_arena_alloc(a, rawlen, err)) == NULL ||
	    (s = pv_arena_alloc(a, SEAL_PREFIXLEN + b64len(rawlen, 1) + 1,
	         err)) == NULL ||
	    pv_crypto_random(raw, SEAL_NONCELEN, err) == -1)
		return -1;
	seal_start(&c, key, raw, aad, aadlen);
	if (len != 0)
		gcm_aes256_encrypt(&c, len, raw + SEAL_NONCELEN, p);
	gcm_aes256_digest(&c, SEAL_TAGLEN, raw + SEAL_NONCELEN + len);
	OPENSSL_cleanse(&c, sizeof(c));
	memcpy(s, SEAL_PREFIX, SEAL_PREFIXLEN);
	b64(raw, rawlen, 1, s + SEAL_PREFIXLEN);
	*out = s;
	return 0;
}

/*
 * Opens what pv_crypto_seal() made, with the same key and aad.  Returns
 * 0 with *out (arena memory, NUL-terminated for convenience; *outlen
 * excludes the NUL), or -1 with PV_E_AUTH when the text is malformed,
 * of an unknown version, or fails authentication (wrong key, wrong aad,
 * any change to the text); PV_E_INTERNAL, PV_E_NOMEM or PV_E_TOOBIG
 * otherwise.  No plaintext is returned or left behind on failure.
 */
int
pv_crypto_open(struct pv_arena *a, const unsigned char *key, const void *aad,
    size_t aadlen, const char *sealed, size_t sealedlen, unsigned char **out,
    size_t *outlen, struct pv_err *err)
{
	unsigned char *raw, *pt, tag[SEAL_TAGLEN];
	struct gcm_aes256_ctx c;
	struct pv_err derr = { 0 };
	size_t rawlen, ctlen;
	int ok;

	if (aadlen > PV_CRYPTO_SEAL_MAX) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "sealing AAD over %d bytes",
		    PV_CRYPTO_SEAL_MAX);
		return -1;
	}
	if (sealedlen < SEAL_PREFIXLEN ||
	    memcmp(sealed, SEAL_PREFIX, SEAL_PREFIXLEN) != 0) {
		PV_ERR(err, PV_E_AUTH, NULL, "sealed secret has no v1. prefix");
		return -1;
	}
	if (sealedlen - SEAL_PREFIXLEN >
	    b64len(SEAL_NONCELEN + PV_CRYPTO_SEAL_MAX + SEAL_TAGLEN, 1)) {
		PV_ERR(err, PV_E_AUTH, NULL, "sealed secret too long");
		return -1;
	}
	/* Decoding errors are tampering, hence PV_E_AUTH, not PV_E_INVALID. */
	if ((raw = pv_arena_alloc(a, (sealedlen - SEAL_PREFIXLEN) / 4 * 3,
	         err)) == NULL)
		return -1;
	if (unb64(sealed + SEAL_PREFIXLEN, sealedlen - SEAL_PREFIXLEN, 1, raw,
	        (sealedlen - SEAL_PREFIXLEN) / 4 * 3, &rawlen, NULL,
	        &derr) == -1) {
		PV_ERR(err, PV_E_AUTH, NULL, "sealed secret: %s", derr.msg);
		return -1;
	}
	if (rawlen < SEAL_NONCELEN + SEAL_TAGLEN) {
		PV_ERR(err, PV_E_AUTH, NULL, "sealed secret too short");
		return -1;
	}
	ctlen = rawlen - SEAL_NONCELEN - SEAL_TAGLEN;
	if ((pt = pv_arena_alloc(a, ctlen + 1, err)) == NULL)
		return -1;
	seal_start(&c, key, raw, aad, aadlen);
	if (ctlen != 0)
		gcm_aes256_decrypt(&c, ctlen, pt, raw + SEAL_NONCELEN);
	gcm_aes256_digest(&c, SEAL_TAGLEN, tag);
	OPENSSL_cleanse(&c, sizeof(c));
	ok = CRYPTO_memcmp(tag, raw + SEAL_NONCELEN + ctlen, SEAL_TAGLEN) == 0;
	if (!ok) {
		OPENSSL_cleanse(pt, ctlen + 1);
		PV_ERR(err, PV_E_AUTH, NULL,
		    "sealed secret failed authentication");
		return -1;
	}
	pt[ctlen] = '\0';
	*out = pt;
	*outlen = ctlen;
	return 0;
}

/*
 * Runs scrypt.  maxmem is set to our own cap; callers have already
 * checked that N, r and p fit inside it.
 */
static int
scrypt(const char *pw, size_t pwlen, const unsigned char *salt, size_t saltlen,
    unsigned long ln, unsigned long r, unsigned long p, unsigned char *out,
    size_t outlen, struct pv_err *err)
{
	OSSL_PARAM params[7];
	EVP_KDF_CTX *ctx = NULL;
	EVP_KDF *kdf = NULL;
	uint64_t n = (uint64_t)1 << ln, maxmem = SCRYPT_MAXMEM;
	uint32_t r32 = (uint32_t)r, p32 = (uint32_t)p;
	int rc = -1;

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	    unconst(pwlen != 0 ? pw : ""), pwlen);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    unconst(salt), saltlen);
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r32);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p32);
	params[5] =
	    OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	params[6] = OSSL_PARAM_construct_end();
	if ((kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL)) == NULL ||
	    (ctx = EVP_KDF_CTX_new(kdf)) == NULL ||
	    EVP_KDF_derive(ctx, out, outlen, params) != 1) {
		ossl_fail(err, "scrypt");
		goto out;
	}
	rc = 0;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}

/* Runs PBKDF2-HMAC-SHA256, without SP 800-132's lower bounds. */
static int
pbkdf2(const char *pw, size_t pwlen, const unsigned char *salt, size_t saltlen,
    unsigned long iter, unsigned char *out, size_t outlen, struct pv_err *err)
{
	OSSL_PARAM params[6];
	EVP_KDF_CTX *ctx = NULL;
	EVP_KDF *kdf = NULL;
	unsigned int it = (unsigned int)iter;
	int pkcs5 = 1, rc = -1;

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	    unconst(pwlen != 0 ? pw : ""), pwlen);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    unconst(salt), saltlen);
	params[2] = OSSL_PARAM_construct_uint(OSSL_KDF_PARAM_ITER, &it);
	params[3] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    "SHA256", 0);
	params[4] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_PKCS5, &pkcs5);
	params[5] = OSSL_PARAM_construct_end();
	if ((kdf = EVP_KDF_fetch(NULL, "PBKDF2", NULL)) == NULL ||
	    (ctx = EVP_KDF_CTX_new(kdf)) == NULL ||
	    EVP_KDF_derive(ctx, out, outlen, params) != 1) {
		ossl_fail(err, "PBKDF2");
		goto out;
	}
	rc = 0;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}

/*
 * Parses a decimal in 1..max with no sign and no leading zero, stopping
 * at the first non-digit.  Returns the end, or NULL.
 */
static const char *
phc_num(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	const char *p;

	if (*s < '1' || *s > '9')
		return NULL;
	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (v > (max - (unsigned long)(*p - '0')) / 10)
			return NULL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	*out = v;
	return p;
}

/* Expects the literal lit at s.  Returns the end, or NULL. */
static const char *
phc_lit(const char *s, const char *lit)
{
	size_t n = strlen(lit);

	if (s == NULL || strncmp(s, lit, n) != 0)
		return NULL;
	return s + n;
}

/* Decodes min or more bytes of unpadded base64 up to the next '$' (or NUL). */
static const char *
phc_b64(const char *s, int last, size_t min, unsigned char *out, size_t *outlen)
{
	struct pv_err err = { 0 };
	const char *end;

	if (s == NULL)
		return NULL;
	end = last ? s + strlen(s) : strchr(s, '$');
	if (end == NULL ||
	    unb64(s, (size_t)(end - s), 0, out, PHC_BYTES_MAX, outlen, NULL,
	        &err) == -1 ||
	    *outlen < min)
		return NULL;
	return end;
}

/*
 * Parses "$scrypt$ln=L,r=R,p=P$salt$hash" or
 * "$pbkdf2-sha256$i=I$salt$hash" (salt and hash in unpadded standard
 * base64, as the PHC string format has it), refusing parameters that
 * would let a stored row make us burn unbounded memory or time.
 */
static int
phc_parse(const char *s, struct phc *h)
{
	const char *p;

	memset(h, 0, sizeof(*h));
	if ((p = phc_lit(s, SCRYPT_PREFIX)) != NULL) {
		h->scheme = PHC_SCRYPT;
		if ((p = phc_lit(p, "ln=")) == NULL ||
		    (p = phc_num(p, PV_CRYPTO_SCRYPT_LN_MAX, &h->ln)) == NULL ||
		    (p = phc_lit(p, ",r=")) == NULL ||
		    (p = phc_num(p, SCRYPT_R_MAX, &h->r)) == NULL ||
		    (p = phc_lit(p, ",p=")) == NULL ||
		    (p = phc_num(p, SCRYPT_P_MAX, &h->p)) == NULL)
			return -1;
		if (128ull * h->r * (((uint64_t)1 << h->ln) + h->p + 2) >
		    SCRYPT_MAXMEM)
			return -1;
	} else if ((p = phc_lit(s, PBKDF2_PREFIX)) != NULL) {
		h->scheme = PHC_PBKDF2;
		if ((p = phc_lit(p, "i=")) == NULL ||
		    (p = phc_num(p, PBKDF2_ITER_MAX, &h->iter)) == NULL)
			return -1;
	} else
		return -1;
	p = phc_lit(p, "$");
	p = phc_b64(p, 0, PHC_SALT_MIN, h->salt, &h->saltlen);
	p = phc_lit(p, "$");
	p = phc_b64(p, 1, PHC_HASH_MIN, h->hash, &h->hashlen);
	return p != NULL ? 0 : -1;
}

static int
check_pw(const char *pw, size_t pwlen, struct pv_err *err)
{
	if (pwlen > PV_CRYPTO_PASSWORD_MAX) {
		PV_ERR(err, PV_E_INVALID, "password",
		    "password is longer than %d bytes", PV_CRYPTO_PASSWORD_MAX);
		return -1;
	}
	if (pw != NULL && memchr(pw, '\0', pwlen) != NULL) {
		PV_ERR(err, PV_E_INVALID, "password",
		    "password contains a NUL byte");
		return -1;
	}
	return 0;
}

/*
 * Hashes a password with scrypt at N = 2^ln, r = 8, p = 1 and a fresh
 * 16-byte salt.  ln below PV_CRYPTO_SCRYPT_LN is for tests, which cannot
 * spend 100 ms per hash.  Returns 0 and *out, a string such as
 * "$scrypt$ln=15,r=8,p=1$<salt>$<hash>" (arena memory), or -1 with
 * PV_E_INVALID (password too long or with a NUL), PV_E_INTERNAL (bad
 * ln, OpenSSL), PV_E_NOMEM or PV_E_TOOBIG.
 */
int
pv_crypto_password_hash_cost(struct pv_arena *a, const char *pw, size_t pwlen,
    int ln, const char **out, struct pv_err *err)
{
	unsigned char salt[SALT_LEN], hash[HASH_LEN];
	char salt64[64], hash64[64];
	char *s;
	int rc = -1;

	if (ln < PV_CRYPTO_SCRYPT_LN_MIN || ln > PV_CRYPTO_SCRYPT_LN_MAX) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "scrypt cost ln=%d out of range", ln);
		return -1;
	}
	if (check_pw(pw, pwlen, err) == -1 ||
	    pv_crypto_random(salt, sizeof(salt), err) == -1 ||
	    scrypt(pw, pwlen, salt, sizeof(salt), (unsigned long)ln, SCRYPT_R,
	        SCRYPT_P, hash, sizeof(hash), err) == -1)
		goto out;
	b64(salt, sizeof(salt), 0, salt64);
	b64(hash, sizeof(hash), 0, hash64);
	if ((s = pv_arena_printf(a, err, SCRYPT_PREFIX "ln=%d,r=%u,p=%u$%s$%s",
	         ln, SCRYPT_R, SCRYPT_P, salt64, hash64)) == NULL)
		goto out;
	*out = s;
	rc = 0;
out:
	OPENSSL_cleanse(hash, sizeof(hash));
	return rc;
}

/*
 * Hashes a password at the production cost, PV_CRYPTO_SCRYPT_LN.  See
 * pv_crypto_password_hash_cost() for the result and errors.
 */
int
pv_crypto_password_hash(struct pv_arena *a, const char *pw, size_t pwlen,
    const char **out, struct pv_err *err)
{
	return pv_crypto_password_hash_cost(a, pw, pwlen, PV_CRYPTO_SCRYPT_LN,
	    out, err);
}

/*
 * Checks a password against a stored hash, taking the scheme and cost
 * from the stored string, so old rows keep working after the cost is
 * raised (see pv_crypto_password_needs_rehash()).  Accepts scrypt strings
 * from pv_crypto_password_hash() and "$pbkdf2-sha256$i=I$salt$hash" for
 * imported accounts.  The final comparison is constant-time.  Returns 0
 * on a match, or -1 with PV_E_AUTH (wrong password), PV_E_INVALID (the
 * password is too long or has a NUL), or PV_E_INTERNAL (the stored
 * string is malformed or too costly, or OpenSSL failed).
 */
int
pv_crypto_password_verify(const char *pw, size_t pwlen, const char *stored,
    struct pv_err *err)
{
	unsigned char got[PHC_BYTES_MAX];
	struct phc h;
	int rc = -1, ok;

	if (check_pw(pw, pwlen, err) == -1)
		return -1;
	if (stored == NULL || phc_parse(stored, &h) == -1) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "stored password hash is malformed");
		return -1;
	}
	if (h.scheme == PHC_SCRYPT)
		ok = scrypt(pw, pwlen, h.salt, h.saltlen, h.ln, h.r, h.p, got,
		    h.hashlen, err);
	else
		ok = pbkdf2(pw, pwlen, h.salt, h.saltlen, h.iter, got,
		    h.hashlen, err);
	if (ok == -1)
		goto out;
	if (!pv_crypto_memeq(got, h.hash, h.hashlen)) {
		PV_ERR(err, PV_E_AUTH, NULL, "wrong password");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(&h, sizeof(h));
	return rc;
}

/*
 * Returns 1 if a stored hash should be replaced by a fresh
 * pv_crypto_password_hash() at the next successful login: it is not
 * scrypt, or cheaper than today's cost, or unreadable.  Returns 0 if
 * it is current.
 */
int
pv_crypto_password_needs_rehash(const char *stored)
{
	struct phc h;

	if (stored == NULL || phc_parse(stored, &h) == -1)
		return 1;
	return h.scheme != PHC_SCRYPT || h.ln < PV_CRYPTO_SCRYPT_LN ||
	    h.r < SCRYPT_R || h.hashlen < HASH_LEN;
}
