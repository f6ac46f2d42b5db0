#ifndef PV_MONEY_H
#define PV_MONEY_H

#include <stddef.h>
#include <stdint.h>

#include "pv_err.h"

/*
 * Money is an int64_t count of minor units (cents, yen, fils) plus an
 * ISO 4217 currency code, never a double.  The exponent of each
 * currency (2 for USD, 0 for JPY, 3 for KWD) comes from one table in
 * pv_money.c, the active ISO 4217 list.  Codes are three uppercase
 * letters and lookups are case-sensitive; Stripe's lowercase codes are
 * converted explicitly with pv_money_currency_from_lower().
 *
 * Parsing turns a decimal string in major units ("48.00") into minor
 * units and refuses anything it would have to round, so "48.001" USD
 * is an error and never 4800.  Formatting is the exact inverse.
 */

#define PV_MONEY_CURRENCY_SIZE 4  /* "USD" and its NUL */
#define PV_MONEY_FORMAT_SIZE   24 /* enough for any int64_t amount */
#define PV_MONEY_PARSE_MAX     64 /* longest amount string accepted */

/* Decimal places of a currency (0 to 4), or -1 if it is not known. */
int pv_money_exponent(const char *currency);

/* The i-th known code, alphabetically, or NULL past the end. */
const char *pv_money_currency_at(size_t i);

/* 0 if currency is a known uppercase code, else PV_E_INVALID on field. */
int pv_money_currency_check(const char *currency, const char *field,
    struct pv_err *err);

/* "usd" -> "USD" for a known code; anything else is PV_E_INVALID. */
int pv_money_currency_from_lower(const char *s,
    char out[PV_MONEY_CURRENCY_SIZE], const char *field, struct pv_err *err);
/* "USD" -> "usd" for a known code (Stripe's request format). */
int pv_money_currency_to_lower(const char *currency,
    char out[PV_MONEY_CURRENCY_SIZE], struct pv_err *err);

/* Minor units to major-unit text: 4800 USD -> "48.00", JPY -> "4800". */
int pv_money_format(int64_t minor, const char *currency, char *buf, size_t size,
    struct pv_err *err);

/* Strict major-unit text to minor units; PV_E_INVALID names field. */
int pv_money_parse(const char *s, size_t len, const char *currency,
    int allow_negative, int64_t *minor, const char *field, struct pv_err *err);

#endif /* PV_MONEY_H */
