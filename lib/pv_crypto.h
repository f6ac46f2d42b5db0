#ifndef PV_CRYPTO_H
#define PV_CRYPTO_H

#include <stddef.h>

#include "pv_arena.h"
#include "pv_err.h"

/*
 * Cryptographic primitives for the rest of libpivota-core: SHA-256,
 * HMAC-SHA256 over scattered parts and AES-256-GCM sealing of stored
 * secrets (Nettle), constant-time comparison, random bytes (the
 * kernel's) and tokens, strict hex and base64, and scrypt password
 * hashes (OpenSSL 3 EVP, which costs a process 2.3 MiB of RSS the first
 * time: see pv_crypto.c).  Nothing here keeps state between calls.
 *
 * Results that vary in size are returned in arena memory; fixed-size
 * results go into caller arrays.  OpenSSL failures are PV_E_INTERNAL
 * with OpenSSL's error text in the message.  Bad input from outside
 * (hex, base64) is PV_E_INVALID naming the caller's field; anything
 * that smells of forgery (sealed secrets, passwords) is PV_E_AUTH.
 * Secret material is never copied into error messages.
 */

#define PV_CRYPTO_SHA256_LEN   32    /* bytes of a SHA-256 or HMAC-SHA256 */
#define PV_CRYPTO_KEY_LEN      32    /* bytes of a sealing master key */
#define PV_CRYPTO_TOKEN_MAX    64    /* largest nbytes pv_crypto_token takes */
#define PV_CRYPTO_SEAL_MAX     65536 /* largest plaintext that can be sealed */
#define PV_CRYPTO_PASSWORD_MAX 1024  /* longest password accepted, bytes */

/*
 * Production scrypt cost: N = 2^15, r = 8, p = 1, 32 MiB per hash;
 * measured 115-150 ms on the 2-vCPU development VM (ln 14: 45-55 ms).
 * Raising it later is safe: verify reads the cost from each stored
 * string and pv_crypto_password_needs_rehash() flags the old ones.
 */
#define PV_CRYPTO_SCRYPT_LN 15
/* Cheapest cost pv_crypto_password_hash_cost() accepts (tests only). */
#define PV_CRYPTO_SCRYPT_LN_MIN 1
/* Dearest cost a stored hash may ask for, so a row cannot exhaust us. */
#define PV_CRYPTO_SCRYPT_LN_MAX 20

/* One part of a scattered message. */
struct pv_iov {
	const void *p; /* the bytes (borrowed); may be NULL if len is 0 */
	size_t len;    /* how many */
};

/* Digests and MACs into caller arrays; PV_E_INTERNAL on failure. */
int pv_crypto_sha256(const void *p, size_t len,
    unsigned char out[PV_CRYPTO_SHA256_LEN], struct pv_err *err);
int pv_crypto_hmac_sha256(const void *key, size_t keylen,
    const struct pv_iov *iov, size_t n, unsigned char out[PV_CRYPTO_SHA256_LEN],
    struct pv_err *err);
/* 1 if equal, else 0; constant time in len. */
int pv_crypto_memeq(const void *a, const void *b, size_t len);

/* CSPRNG bytes, and tokens of prefix + 2 * nbytes hex (arena memory). */
int pv_crypto_random(void *p, size_t len, struct pv_err *err);
int pv_crypto_token(struct pv_arena *a, const char *prefix, size_t nbytes,
    const char **out, struct pv_err *err);

/*
 * Lowercase hex and padded standard base64 into the arena.  Decoders
 * are strict (canonical input only) and fail with PV_E_INVALID naming
 * field; the _buf variants decode into size bytes of caller memory.
 */
/* The value of one hex digit (either case), or -1. */
int pv_crypto_hex_digit(int c);
int pv_crypto_hex_encode(struct pv_arena *a, const void *p, size_t len,
    const char **out, struct pv_err *err);
int pv_crypto_hex_decode(struct pv_arena *a, const char *s, size_t len,
    unsigned char **out, size_t *outlen, const char *field, struct pv_err *err);
int pv_crypto_hex_decode_buf(const char *s, size_t len, unsigned char *out,
    size_t size, size_t *outlen, const char *field, struct pv_err *err);

int pv_crypto_b64_encode(struct pv_arena *a, const void *p, size_t len,
    const char **out, struct pv_err *err);
int pv_crypto_b64_decode(struct pv_arena *a, const char *s, size_t len,
    unsigned char **out, size_t *outlen, const char *field, struct pv_err *err);
int pv_crypto_b64_decode_buf(const char *s, size_t len, unsigned char *out,
    size_t size, size_t *outlen, const char *field, struct pv_err *err);

/*
 * AES-256-GCM for secrets at rest under a PV_CRYPTO_KEY_LEN-byte key:
 * "v1." + base64(nonce | ciphertext | tag), bound to the optional aad.
 * Open fails with PV_E_AUTH on any tampering, wrong key or wrong aad.
 */
int pv_crypto_seal(struct pv_arena *a, const unsigned char *key,
    const void *aad, size_t aadlen, const void *p, size_t len, const char **out,
    struct pv_err *err);
int pv_crypto_open(struct pv_arena *a, const unsigned char *key,
    const void *aad, size_t aadlen, const char *sealed, size_t sealedlen,
    unsigned char **out, size_t *outlen, struct pv_err *err);

/*
 * scrypt password hashes as "$scrypt$ln=15,r=8,p=1$<salt>$<hash>";
 * verify reads the cost from the stored string (and also accepts
 * "$pbkdf2-sha256$i=..$<salt>$<hash>") and fails with PV_E_AUTH on a
 * wrong password.  _cost takes a cheaper ln for tests.
 */
int pv_crypto_password_hash(struct pv_arena *a, const char *pw, size_t pwlen,
    const char **out, struct pv_err *err);
int pv_crypto_password_hash_cost(struct pv_arena *a, const char *pw,
    size_t pwlen, int ln, const char **out, struct pv_err *err);
int pv_crypto_password_verify(const char *pw, size_t pwlen, const char *stored,
    struct pv_err *err);
int pv_crypto_password_needs_rehash(const char *stored);

#endif /* PV_CRYPTO_H */
