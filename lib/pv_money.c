/*
 * Money: the ISO 4217 table, and exact conversion between minor units
 * and major-unit decimal text.  Amounts cross this module as int64_t
 * minor units; the arithmetic is done on the magnitude as uint64_t so
 * INT64_MIN needs no special case, and every step is overflow-checked.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pv_money.h"

struct currency {
	char code[PV_MONEY_CURRENCY_SIZE]; /* ISO 4217 alphabetic code */
	int exponent; /* decimal places of the minor unit */
};

/*
 * The active ISO 4217 list, sorted by code for bsearch.  Left out:
 * precious metals, bond units, SDR, XTS and XXX, whose minor unit is
 * "N.A." (nothing can be priced in them), and withdrawn codes such as
 * HRK.  Codes in their changeover period (ANG/XCG, SLL/SLE, ZWL/ZWG,
 * BGN) are both present until ISO removes the old one.
 */
static const struct currency currencies[] = {
	{ "AED", 2 }, /* UAE Dirham */
	{ "AFN", 2 }, /* Afghani */
	{ "ALL", 2 }, /* Lek */
	{ "AMD", 2 }, /* Armenian Dram */
	{ "ANG", 2 }, /* Netherlands Antillean Guilder */
	{ "AOA", 2 }, /* Kwanza */
	{ "ARS", 2 }, /* Argentine Peso */
	{ "AUD", 2 }, /* Australian Dollar */
	{ "AWG", 2 }, /* Aruban Florin */
	{ "AZN", 2 }, /* Azerbaijan Manat */
	{ "BAM", 2 }, /* Convertible Mark */
	{ "BBD", 2 }, /* Barbados Dollar */
	{ "BDT", 2 }, /* Taka */
	{ "BGN", 2 }, /* Bulgarian Lev */
	{ "BHD", 3 }, /* Bahraini Dinar */
	{ "BIF", 0 }, /* Burundi Franc */
	{ "BMD", 2 }, /* Bermudian Dollar */
	{ "BND", 2 }, /* Brunei Dollar */
	{ "BOB", 2 }, /* Boliviano */
	{ "BOV", 2 }, /* Mvdol */
	{ "BRL", 2 }, /* Brazilian Real */
	{ "BSD", 2 }, /* Bahamian Dollar */
	{ "BTN", 2 }, /* Ngultrum */
	{ "BWP", 2 }, /* Pula */
	{ "BYN", 2 }, /* Belarusian Ruble */
	{ "BZD", 2 }, /* Belize Dollar */
	{ "CAD", 2 }, /* Canadian Dollar */
	{ "CDF", 2 }, /* Congolese Franc */
	{ "CHE", 2 }, /* WIR Euro */
	{ "CHF", 2 }, /* Swiss Franc */
	{ "CHW", 2 }, /* WIR Franc */
	{ "CLF", 4 }, /* Unidad de Fomento */
	{ "CLP", 0 }, /* Chilean Peso */
	{ "CNY", 2 }, /* Yuan Renminbi */
	{ "COP", 2 }, /* Colombian Peso */
	{ "COU", 2 }, /* Unidad de Valor Real */
	{ "CRC", 2 }, /* Costa Rican Colon */
	{ "CUC", 2 }, /* Peso Convertible */
	{ "CUP", 2 }, /* Cuban Peso */
	{ "CVE", 2 }, /* Cabo Verde Escudo */
	{ "CZK", 2 }, /* Czech Koruna */
	{ "DJF", 0 }, /* Djibouti Franc */
	{ "DKK", 2 }, /* Danish Krone */
	{ "DOP", 2 }, /* Dominican Peso */
	{ "DZD", 2 }, /* Algerian Dinar */
	{ "EGP", 2 }, /* Egyptian Pound */
	{ "ERN", 2 }, /* Nakfa */
	{ "ETB", 2 }, /* Ethiopian Birr */
	{ "EUR", 2 }, /* Euro */
	{ "FJD", 2 }, /* Fiji Dollar */
	{ "FKP", 2 }, /* Falkland Islands Pound */
	{ "GBP", 2 }, /* Pound Sterling */
	{ "GEL", 2 }, /* Lari */
	{ "GHS", 2 }, /* Ghana Cedi */
	{ "GIP", 2 }, /* Gibraltar Pound */
	{ "GMD", 2 }, /* Dalasi */
	{ "GNF", 0 }, /* Guinean Franc */
	{ "GTQ", 2 }, /* Quetzal */
	{ "GYD", 2 }, /* Guyana Dollar */
	{ "HKD", 2 }, /* Hong Kong Dollar */
	{ "HNL", 2 }, /* Lempira */
	{ "HTG", 2 }, /* Gourde */
	{ "HUF", 2 }, /* Forint */
	{ "IDR", 2 }, /* Rupiah */
	{ "ILS", 2 }, /* New Israeli Sheqel */
	{ "INR", 2 }, /* Indian Rupee */
	{ "IQD", 3 }, /* Iraqi Dinar */
	{ "IRR", 2 }, /* Iranian Rial */
	{ "ISK", 0 }, /* Iceland Krona */
	{ "JMD", 2 }, /* Jamaican Dollar */
	{ "JOD", 3 }, /* Jordanian Dinar */
	{ "JPY", 0 }, /* Yen */
	{ "KES", 2 }, /* Kenyan Shilling */
	{ "KGS", 2 }, /* Som */
	{ "KHR", 2 }, /* Riel */
	{ "KMF", 0 }, /* Comorian Franc */
	{ "KPW", 2 }, /* North Korean Won */
	{ "KRW", 0 }, /* Won */
	{ "KWD", 3 }, /* Kuwaiti Dinar */
	{ "KYD", 2 }, /* Cayman Islands Dollar */
	{ "KZT", 2 }, /* Tenge */
	{ "LAK", 2 }, /* Lao Kip */
	{ "LBP", 2 }, /* Lebanese Pound */
	{ "LKR", 2 }, /* Sri Lanka Rupee */
	{ "LRD", 2 }, /* Liberian Dollar */
	{ "LSL", 2 }, /* Loti */
	{ "LYD", 3 }, /* Libyan Dinar */
	{ "MAD", 2 }, /* Moroccan Dirham */
	{ "MDL", 2 }, /* Moldovan Leu */
	{ "MGA", 2 }, /* Malagasy Ariary */
	{ "MKD", 2 }, /* Denar */
	{ "MMK", 2 }, /* Kyat */
	{ "MNT", 2 }, /* Tugrik */
	{ "MOP", 2 }, /* Pataca */
	{ "MRU", 2 }, /* Ouguiya */
	{ "MUR", 2 }, /* Mauritius Rupee */
	{ "MVR", 2 }, /* Rufiyaa */
	{ "MWK", 2 }, /* Malawi Kwacha */
	{ "MXN", 2 }, /* Mexican Peso */
	{ "MXV", 2 }, /* Mexican Unidad de Inversion (UDI) */
	{ "MYR", 2 }, /* Malaysian Ringgit */
	{ "MZN", 2 }, /* Mozambique Metical */
	{ "NAD", 2 }, /* Namibia Dollar */
	{ "NGN", 2 }, /* Naira */
	{ "NIO", 2 }, /* Cordoba Oro */
	{ "NOK", 2 }, /* Norwegian Krone */
	{ "NPR", 2 }, /* Nepalese Rupee */
	{ "NZD", 2 }, /* New Zealand Dollar */
	{ "OMR", 3 }, /* Rial Omani */
	{ "PAB", 2 }, /* Balboa */
	{ "PEN", 2 }, /* Sol */
	{ "PGK", 2 }, /* Kina */
	{ "PHP", 2 }, /* Philippine Peso */
	{ "PKR", 2 }, /* Pakistan Rupee */
	{ "PLN", 2 }, /* Zloty */
	{ "PYG", 0 }, /* Guarani */
	{ "QAR", 2 }, /* Qatari Rial */
	{ "RON", 2 }, /* Romanian Leu */
	{ "RSD", 2 }, /* Serbian Dinar */
	{ "RUB", 2 }, /* Russian Ruble */
	{ "RWF", 0 }, /* Rwanda Franc */
	{ "SAR", 2 }, /* Saudi Riyal */
	{ "SBD", 2 }, /* Solomon Islands Dollar */
	{ "SCR", 2 }, /* Seychelles Rupee */
	{ "SDG", 2 }, /* Sudanese Pound */
	{ "SEK", 2 }, /* Swedish Krona */
	{ "SGD", 2 }, /* Singapore Dollar */
	{ "SHP", 2 }, /* Saint Helena Pound */
	{ "SLE", 2 }, /* Leone */
	{ "SLL", 2 }, /* Leone */
	{ "SOS", 2 }, /* Somali Shilling */
	{ "SRD", 2 }, /* Surinam Dollar */
	{ "SSP", 2 }, /* South Sudanese Pound */
	{ "STN", 2 }, /* Dobra */
	{ "SVC", 2 }, /* El Salvador Colon */
	{ "SYP", 2 }, /* Syrian Pound */
	{ "SZL", 2 }, /* Lilangeni */
	{ "THB", 2 }, /* Baht */
	{ "TJS", 2 }, /* Somoni */
	{ "TMT", 2 }, /* Turkmenistan New Manat */
	{ "TND", 3 }, /* Tunisian Dinar */
	{ "TOP", 2 }, /* Pa’anga */
	{ "TRY", 2 }, /* Turkish Lira */
	{ "TTD", 2 }, /* Trinidad and Tobago Dollar */
	{ "TWD", 2 }, /* New Taiwan Dollar */
	{ "TZS", 2 }, /* Tanzanian Shilling */
	{ "UAH", 2 }, /* Hryvnia */
	{ "UGX", 0 }, /* Uganda Shilling */
	{ "USD", 2 }, /* US Dollar */
	{ "USN", 2 }, /* US Dollar (Next day) */
	{ "UYI", 0 }, /* Uruguay Peso en Unidades Indexadas (UI) */
	{ "UYU", 2 }, /* Peso Uruguayo */
	{ "UYW", 4 }, /* Unidad Previsional */
	{ "UZS", 2 }, /* Uzbekistan Sum */
	{ "VED", 2 }, /* Bolívar Soberano */
	{ "VES", 2 }, /* Bolívar Soberano */
	{ "VND", 0 }, /* Dong */
	{ "VUV", 0 }, /* Vatu */
	{ "WST", 2 }, /* Tala */
	{ "XAF", 0 }, /* CFA Franc BEAC */
	{ "XCD", 2 }, /* East Caribbean Dollar */
	{ "XCG", 2 }, /* Caribbean Guilder */
	{ "XOF", 0 }, /* CFA Franc BCEAO */
	{ "XPF", 0 }, /* CFP Franc */
	{ "YER", 2 }, /* Yemeni Rial */
	{ "ZAR", 2 }, /* Rand */
	{ "ZMW", 2 }, /* Zambian Kwacha */
	{ "ZWG", 2 }, /* Zimbabwe Gold */
	{ "ZWL", 2 }, /* Zimbabwe Dollar */
};

#define NCURRENCIES (sizeof(currencies) / sizeof(currencies[0]))

static int
cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct currency *)elem)->code);
}

/* Three uppercase ASCII letters and a NUL. */
static int
well_formed(const char *s)
{
	int i;

	if (s == NULL)
		return 0;
	for (i = 0; i < 3; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return 0;
	return s[3] == '\0';
}

/*
 * Returns the number of decimal places of currency's minor unit (0 for
 * JPY, 2 for USD, 3 for KWD, 4 for CLF), or -1 when currency is NULL,
 * not three uppercase letters, or not in the table.
 */
int
pv_money_exponent(const char *currency)
{
	const struct currency *c;

	if (!well_formed(currency))
		return -1;
	c = bsearch(currency, currencies, NCURRENCIES, sizeof(currencies[0]),
	    cmp);
	return c != NULL ? c->exponent : -1;
}

/*
 * Returns the i-th known code in alphabetical order (for drop-downs and
 * tests), or NULL when i is past the end.
 */
const char *
pv_money_currency_at(size_t i)
{
	return i < NCURRENCIES ? currencies[i].code : NULL;
}

/*
 * Returns 0 if currency is a known, uppercase ISO 4217 code, else -1
 * with PV_E_INVALID naming field.
 */
int
pv_money_currency_check(const char *currency, const char *field,
    struct pv_err *err)
{
	if (pv_money_exponent(currency) == -1) {
		PV_ERR(err, PV_E_INVALID, field,
		    "not a supported ISO 4217 currency code");
		return -1;
	}
	return 0;
}

/*
 * Converts a lowercase code as Stripe sends it ("usd") to ours ("USD")
 * in out.  Only three lowercase letters naming a known currency are
 * accepted, so mixed case never slips through.  Returns 0, or -1 with
 * PV_E_INVALID naming field.
 */
int
pv_money_currency_from_lower(const char *s, char out[PV_MONEY_CURRENCY_SIZE],
    const char *field, struct pv_err *err)
{
	char up[PV_MONEY_CURRENCY_SIZE];
	int i;

	for (i = 0; i < 3; i++) {
		if (s == NULL || s[i] < 'a' || s[i] > 'z') {
			PV_ERR(err, PV_E_INVALID, field,
			    "not a lowercase ISO 4217 currency code");
			return -1;
		}
		up[i] = (char)(s[i] - 'a' + 'A');
	}
	up[3] = '\0';
	if (s[3] != '\0' || pv_money_exponent(up) == -1) {
		PV_ERR(err, PV_E_INVALID, field,
		    "not a supported ISO 4217 currency code");
		return -1;
	}
	memcpy(out, up, sizeof(up));
	return 0;
}

/*
 * Writes the lowercase form of a known uppercase code to out, for
 * requests to Stripe.  Returns 0, or -1 with PV_E_INVALID (field
 * "currency") when currency is not a known code.
 */
int
pv_money_currency_to_lower(const char *currency,
    char out[PV_MONEY_CURRENCY_SIZE], struct pv_err *err)
{
	int i;

	if (pv_money_currency_check(currency, "currency", err) == -1)
		return -1;
	for (i = 0; i < 3; i++)
		out[i] = (char)(currency[i] - 'A' + 'a');
	out[3] = '\0';
	return 0;
}

/*
 * Writes minor as a major-unit decimal with exactly the currency's
 * number of decimal places: 4800 is "48.00" in USD and "4800" in JPY,
 * 1234 is "1.234" in KWD, -5 is "-0.05" in USD.  No grouping, no
 * symbol.  PV_MONEY_FORMAT_SIZE bytes always suffice.  Returns 0, or
 * -1 with PV_E_INVALID (field "currency") for an unknown currency or
 * PV_E_INTERNAL when buf is too small (buf is then "" if size > 0).
 */
int
pv_money_format(int64_t minor, const char *currency, char *buf, size_t size,
    struct pv_err *err)
{
	char rev[PV_MONEY_FORMAT_SIZE];
	uint64_t mag;
	size_t n, len, o;
	int exp, neg;

	if (size > 0)
		buf[0] = '\0';
	if ((exp = pv_money_exponent(currency)) == -1) {
		PV_ERR(err, PV_E_INVALID, "currency",
		    "not a supported ISO 4217 currency code");
		return -1;
	}
	neg = minor < 0;
	mag = neg ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
	/* Digits, least significant first, at least exp + 1 of them. */
	n = 0;
	do {
		rev[n++] = (char)('0' + mag % 10);
		mag /= 10;
	} while (mag != 0 || n <= (size_t)exp);
	len = (size_t)neg + n + (exp > 0 ? 1 : 0);
	if (len >= size) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "money buffer of %zu bytes is too small", size);
		return -1;
	}
	o = 0;
	if (neg)
		buf[o++] = '-';
	while (n > 0) {
		if (n == (size_t)exp)
			buf[o++] = '.';
		buf[o++] = rev[--n];
	}
	buf[o] = '\0';
	return 0;
}

/*
 * Parses a major-unit decimal such as "48.00" into minor units of
 * currency.  The text must be exactly: an optional '-' (only when
 * allow_negative), an integer part with no leading zero ("0" alone is
 * fine), and optionally '.' and 1 to exponent digits.  Refused, with
 * PV_E_INVALID naming field: empty text, '+', whitespace, exponents,
 * "1.", ".5", "007", negative zero, more decimal places than the
 * currency has ("48.001" USD, "4800.5" JPY: we never round), and
 * values outside int64_t.  An unknown currency is PV_E_INVALID on
 * field "currency".  Returns 0 and *minor, or -1.
 */
int
pv_money_parse(const char *s, size_t len, const char *currency,
    int allow_negative, int64_t *minor, const char *field, struct pv_err *err)
{
	const char *name = field != NULL ? field : "amount";
	size_t i, start, intlen, fraclen;
	uint64_t mag, limit;
	int exp, neg;

	if ((exp = pv_money_exponent(currency)) == -1) {
		PV_ERR(err, PV_E_INVALID, "currency",
		    "not a supported ISO 4217 currency code");
		return -1;
	}
	if (s == NULL || len == 0) {
		PV_ERR(err, PV_E_INVALID, field, "%s is empty", name);
		return -1;
	}
	if (len > PV_MONEY_PARSE_MAX) {
		PV_ERR(err, PV_E_INVALID, field, "%s is too long", name);
		return -1;
	}
	i = 0;
	neg = s[0] == '-';
	if (neg) {
		if (!allow_negative) {
			PV_ERR(err, PV_E_INVALID, field,
			    "%s must not be negative", name);
			return -1;
		}
		i++;
	}
	start = i;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	intlen = i - start;
	if (intlen == 0) {
		PV_ERR(err, PV_E_INVALID, field,
		    "%s must be a decimal number such as \"48.00\"", name);
		return -1;
	}
	if (intlen > 1 && s[start] == '0') {
		PV_ERR(err, PV_E_INVALID, field, "%s has a leading zero", name);
		return -1;
	}
	fraclen = 0;
	if (i < len && s[i] == '.') {
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			i++;
			fraclen++;
		}
		if (fraclen == 0) {
			PV_ERR(err, PV_E_INVALID, field,
			    "%s has no digits after the decimal point", name);
			return -1;
		}
	}
	if (i != len) {
		PV_ERR(err, PV_E_INVALID, field,
		    "%s must be a decimal number such as \"48.00\"", name);
		return -1;
	}
	if (fraclen > (size_t)exp) {
		if (exp == 0)
			PV_ERR(err, PV_E_INVALID, field,
			    "%s cannot have decimal places in %s", name,
			    currency);
		else
			PV_ERR(err, PV_E_INVALID, field,
			    "%s has more than %d decimal places for %s", name,
			    exp, currency);
		return -1;
	}
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	mag = 0;
	for (i = start; i < len; i++) {
		if (s[i] == '.')
			continue;
		if (mag > (limit - (uint64_t)(s[i] - '0')) / 10)
			goto overflow;
		mag = mag * 10 + (uint64_t)(s[i] - '0');
	}
	for (; fraclen < (size_t)exp; fraclen++) {
		if (mag > limit / 10)
			goto overflow;
		mag *= 10;
	}
	if (neg && mag == 0) {
		PV_ERR(err, PV_E_INVALID, field, "%s is negative zero", name);
		return -1;
	}
	if (!neg)
		*minor = (int64_t)mag;
	else if (mag == (uint64_t)INT64_MAX + 1)
		*minor = INT64_MIN;
	else
		*minor = -(int64_t)mag;
	return 0;
overflow:
	PV_ERR(err, PV_E_INVALID, field, "%s is out of range", name);
	return -1;
}
