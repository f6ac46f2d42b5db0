#ifndef PV_ADYEN_H
#define PV_ADYEN_H

#include <stddef.h>

#include "pv_arena.h"
#include "pv_err.h"

/*
 * The Adyen Checkout adapter (struct pv_psp_ops pv_psp_adyen, declared
 * in pv_psp.h; docs/adyen.md describes what it sends).  This header
 * holds what onboarding and tests need besides the ops table: the API
 * version, the endpoints, and how an agent's payment-method token
 * becomes an Adyen paymentMethod.
 *
 * Base URL: the merchant's own api_base if set, else
 * PIVOTA_ADYEN_API_BASE, else the test platform.  A live account must
 * set api_base to its own endpoint, which Adyen derives from a
 * merchant-specific prefix shown in the Customer Area (Developers >
 * API URLs): pv_adyen_live_base() builds it.  There is no global live
 * default because there is no global live host.
 */

#define PV_ADYEN_API_VERSION "v71"
#define PV_ADYEN_TEST_BASE \
	"https://checkout-test.adyen.com/" PV_ADYEN_API_VERSION
#define PV_ADYEN_IDEM_MAX   64 /* Adyen's cap on Idempotency-Key */
#define PV_ADYEN_REF_MAX    80 /* Adyen's cap on reference */
#define PV_ADYEN_PREFIX_MAX 64 /* longest live prefix accepted */

/* Tokens: "adyen_test_<OUTCOME>" and "stored:<shopper>:<id>". */
#define PV_ADYEN_TEST_PREFIX   "adyen_test_"
#define PV_ADYEN_STORED_PREFIX "stored:"

/*
 * The live Checkout base for a Customer Area prefix (e.g.
 * "1797a841fbb37ca7-AdyenDemo"):
 * "https://<prefix>-checkout-live.adyenpayments.com/checkout/v71".
 * The prefix may hold only letters, digits and '-'.  Returns arena
 * memory, or NULL with PV_E_INVALID naming "prefix", or PV_E_NOMEM.
 */
const char *pv_adyen_live_base(struct pv_arena *a, const char *prefix,
    struct pv_err *err);

/*
 * Adyen's refusalReason as one of our decline codes: lower case, runs
 * of anything but letters and digits turned into one '_' ("Not enough
 * balance" -> "not_enough_balance").  fallback (e.g. the resultCode)
 * is used when reason is NULL or empty.  Returns arena memory, or NULL
 * with PV_E_NOMEM.
 */
const char *pv_adyen_decline_code(struct pv_arena *a, const char *reason,
    const char *fallback, struct pv_err *err);

#endif /* PV_ADYEN_H */
