/*
 * libFuzzer harness for the webhook signature checks, which see raw
 * attacker-controlled headers before anything else: Stripe-Signature
 * parsing and verification, Shopify's base64 HMAC, and Adyen's.  The
 * input is split into header and body at the first NUL.  Property:
 * nothing verifies without the secret (random input never matches),
 * and nothing crashes or leaks.  Built and run by `make fuzz`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_arena.h"
#include "pv_sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const secrets[] = { "whsec_fuzz", NULL };
	struct pv_err err = { 0 };
	size_t hlen, blen;
	char *header, *body;

	/* header NUL body NUL: both parts are C strings, body has a length. */
	if ((header = malloc(size + 2)) == NULL)
		abort();
	memcpy(header, data, size);
	header[size] = header[size + 1] = '\0';
	hlen = strlen(header);
	body = header + (hlen < size ? hlen + 1 : size + 1);
	blen = hlen < size ? size - hlen - 1 : 0;

	if (pv_sig_stripe_verify(header, secrets, body, blen, 1700000000, 300,
	        &err) == 0)
		abort(); /* a forged signature was accepted */
	memset(&err, 0, sizeof(err));
	if (pv_sig_shopify_verify(header, "fuzz_secret", body, blen, &err) == 0)
		abort();
	memset(&err, 0, sizeof(err));
	if (pv_sig_adyen_verify("44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C05"
	                        "7550C48EC2ACF6BA056",
	        body, header, &err) == 0)
		abort();
	free(header);
	return 0;
}
