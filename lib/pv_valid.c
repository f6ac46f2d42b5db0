/*
 * Validators for text that arrives outside JSON: query strings,
 * headers and form fields.  They are strict on purpose (one spelling
 * per integer, well-formed UTF-8 only, no control characters) because
 * whatever passes here is stored, compared and echoed back, and
 * lenient parsers are where smuggling bugs live.  pv_json uses the
 * UTF-8 helpers and the message convention too.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pv_valid.h"

/* Longest e-mail address (RFC 5321 path limit minus the brackets). */
#define EMAIL_MAX 254
/* Longest local part (RFC 5321 4.5.3.1.1). */
#define LOCAL_MAX 64

/*
 * Records PV_E_INVALID with '"field" <predicate>' or 'value
 * <predicate>'.  The field is cut to fit err->field on a character
 * boundary so the quoted name in the message matches err->field
 * exactly, which pv_json_err_prefix() needs to rewrite both.
 */
void
pv_valid_fail(struct pv_err *err, const char *file, int line, const char *field,
    const char *fmt, ...)
{
	char pred[200];
	va_list ap;
	size_t n;
	int rc;

	if (err == NULL || err->code != PV_OK)
		return;
	va_start(ap, fmt);
	rc = vsnprintf(pred, sizeof(pred), fmt, ap);
	va_end(ap);
	if (rc < 0)
		pred[0] = '\0';
	if (field == NULL || field[0] == '\0') {
		pv_err_set(err, PV_E_INVALID, file, line, NULL, "value %s",
		    pred);
		return;
	}
	n = pv_valid_utf8_clip(field, strlen(field), sizeof(err->field) - 1);
	pv_err_set(err, PV_E_INVALID, file, line, NULL, "\"%.*s\" %s", (int)n,
	    field, pred);
	memcpy(err->field, field, n);
	err->field[n] = '\0';
}

/*
 * Returns the length of the well-formed UTF-8 sequence that starts s
 * (1 to 4 bytes; 1 for any ASCII byte including NUL), or 0 if it is
 * malformed or cut off by len.  Overlong forms, UTF-16 surrogates
 * (U+D800..U+DFFF) and code points above U+10FFFF are malformed
 * (Unicode table 3-7).  len must be at least 1.
 */
size_t
pv_valid_utf8_char(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 0; /* continuation, overlong lead or > U+10FFFF */
	if (p[0] < 0xe0)
		n = 2;
	else if (p[0] < 0xf0)
		n = 3;
	else
		n = 4;
	if (p[0] == 0xe0)
		lo = 0xa0; /* overlong 3-byte */
	else if (p[0] == 0xed)
		hi = 0x9f; /* surrogates */
	else if (p[0] == 0xf0)
		lo = 0x90; /* overlong 4-byte */
	else if (p[0] == 0xf4)
		hi = 0x8f; /* above U+10FFFF */
	if (len < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* True if s[0..len) is well-formed UTF-8 throughout; NUL bytes count
 * as well-formed (pv_valid_text() refuses them). */
bool
pv_valid_utf8(const char *s, size_t len)
{
	size_t i, n;

	for (i = 0; i < len; i += n)
		if ((n = pv_valid_utf8_char(s + i, len - i)) == 0)
			return false;
	return true;
}

/*
 * Returns how many bytes of s[0..len) to keep so that at most max
 * remain and no UTF-8 sequence is cut in half.  Malformed input is cut
 * at max.
 */
size_t
pv_valid_utf8_clip(const char *s, size_t len, size_t max)
{
	size_t n;

	if (len <= max)
		return len;
	/* Keep s[0..n): back up until s[n] starts a character. */
	n = max;
	while (n > 0 && max - n < 3 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return ((unsigned char)s[n] & 0xc0) == 0x80 ? max : n;
}

/*
 * Returns 0 if min <= v <= max, else -1 with PV_E_INVALID naming
 * field.  The message states the bound that matters ("must be at
 * most 100", "must be between 1 and 365").
 */
int
pv_valid_range(int64_t v, int64_t min, int64_t max, const char *field,
    struct pv_err *err)
{
	if (v >= min && v <= max)
		return 0;
	if (min == max)
		PV_ERR_INVALID(err, field, "must be %" PRId64, min);
	else if (v > max && max == INT64_MAX)
		PV_ERR_INVALID(err, field, "is too large");
	else if (v < min && min == INT64_MIN)
		PV_ERR_INVALID(err, field, "is too small");
	else if (max == INT64_MAX)
		PV_ERR_INVALID(err, field, "must be at least %" PRId64, min);
	else if (min == INT64_MIN)
		PV_ERR_INVALID(err, field, "must be at most %" PRId64, max);
	else
		PV_ERR_INVALID(err, field,
		    "must be between %" PRId64 " and %" PRId64, min, max);
	return -1;
}

/*
 * Parses s as a decimal integer in [min, max] into *out.  The whole
 * string must be the canonical spelling: an optional '-', then "0" or
 * digits without a leading zero ("-0", "+1", " 1", "01", "1.0" and ""
 * are refused).  Overflow is detected, never wrapped or clamped.
 * Returns 0, or -1 with PV_E_INVALID naming field (NULL s: required).
 */
int
pv_valid_int64(const char *s, int64_t min, int64_t max, int64_t *out,
    const char *field, struct pv_err *err)
{
	uint64_t mag = 0, limit;
	const char *p;
	bool neg, over = false;
	unsigned d;

	if (s == NULL) {
		PV_ERR_INVALID(err, field, "is required");
		return -1;
	}
	p = s;
	neg = *p == '-';
	if (neg)
		p++;
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (*p < '0' || *p > '9' || (*p == '0' && (neg || p[1] != '\0'))) {
		PV_ERR_INVALID(err, field, "must be an integer");
		return -1;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		d = (unsigned)(*p - '0');
		if (mag > (limit - d) / 10)
			over = true;
		else
			mag = mag * 10 + d;
	}
	if (*p != '\0') {
		PV_ERR_INVALID(err, field, "must be an integer");
		return -1;
	}
	if (over) {
		/* Beyond int64: refuse, naming the caller's bound if any. */
		if (neg ? min > INT64_MIN : max < INT64_MAX)
			return pv_valid_range(neg ? INT64_MIN : INT64_MAX, min,
			    max, field, err);
		PV_ERR_INVALID(err, field, "%s",
		    neg ? "is too small" : "is too large");
		return -1;
	}
	if (neg)
		*out =
		    mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
	else
		*out = (int64_t)mag;
	return pv_valid_range(*out, min, max, field, err);
}

/*
 * Parses the boolean spellings our clients send (Python's True and
 * False included, API.md section 1) into *out.  Returns 0, or -1 with
 * PV_E_INVALID naming field.
 */
int
pv_valid_bool(const char *s, bool *out, const char *field, struct pv_err *err)
{
	static const char *const yes[] = { "true", "True", "TRUE", "1" };
	static const char *const no[] = { "false", "False", "FALSE", "0" };
	size_t i;

	for (i = 0; s != NULL && i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	PV_ERR_INVALID(err, field, "must be true or false");
	return -1;
}

/* Reports a length outside [minlen, maxlen]; 0 if inside. */
static int
check_len(size_t len, size_t minlen, size_t maxlen, const char *field,
    struct pv_err *err)
{
	if (len < minlen) {
		if (minlen == 1)
			PV_ERR_INVALID(err, field, "must not be empty");
		else
			PV_ERR_INVALID(err, field,
			    "must be at least %zu bytes long", minlen);
		return -1;
	}
	if (len > maxlen) {
		PV_ERR_INVALID(err, field, "must be at most %zu bytes long",
		    maxlen);
		return -1;
	}
	return 0;
}

/*
 * Checks that s[0..len) is text: minlen..maxlen bytes, no NUL
 * (strlen(s) == len, so it is safe as a C string), well-formed UTF-8,
 * and no control characters (C0, DEL, C1).  PV_VALID_MULTILINE allows
 * tab, LF and CR when followed by LF.  Returns 0, or -1 with
 * PV_E_INVALID naming field (NULL s: required).
 */
int
pv_valid_text(const char *s, size_t len, size_t minlen, size_t maxlen,
    unsigned flags, const char *field, struct pv_err *err)
{
	const unsigned char *p = (const unsigned char *)s;
	bool multi = (flags & PV_VALID_MULTILINE) != 0;
	size_t i, n;

	if (s == NULL) {
		PV_ERR_INVALID(err, field, "is required");
		return -1;
	}
	if (check_len(len, minlen, maxlen, field, err) == -1)
		return -1;
	if (strlen(s) != len) {
		PV_ERR_INVALID(err, field, "must not contain NUL characters");
		return -1;
	}
	for (i = 0; i < len; i += n) {
		if ((n = pv_valid_utf8_char(s + i, len - i)) == 0) {
			PV_ERR_INVALID(err, field, "must be valid UTF-8");
			return -1;
		}
		if (p[i] >= 0x20 && p[i] != 0x7f &&
		    !(p[i] == 0xc2 && p[i + 1] < 0xa0))
			continue;
		if (multi &&
		    (p[i] == '\t' || p[i] == '\n' ||
		        (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')))
			continue;
		PV_ERR_INVALID(err, field,
		    "must not contain control characters");
		return -1;
	}
	return 0;
}

/* True for bytes that never appear in an unquoted address. */
static bool
email_bad_byte(unsigned char c)
{
	return c <= 0x20 || c == 0x7f || strchr("\"(),:;<>[\\]", c) != NULL;
}

/* True if s[0..len) is dot-separated non-empty atoms. */
static bool
dotted(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 1; i < len; i++)
		if (s[i] == '.' && s[i - 1] == '.')
			return false;
	return true;
}

/*
 * A practical e-mail check, not RFC 5322: at most 254 bytes, exactly
 * one '@', a local part of 1..64 bytes and a domain with at least one
 * dot, both dot-separated without empty atoms; no spaces, control
 * bytes (so no header injection) or the specials that need quoting;
 * non-ASCII must be well-formed UTF-8 (internationalised addresses
 * pass).  Returns 0, or -1 with PV_E_INVALID naming field.
 */
int
pv_valid_email(const char *s, size_t len, const char *field, struct pv_err *err)
{
	const char *at;
	size_t i, n, local;

	if (s == NULL) {
		PV_ERR_INVALID(err, field, "is required");
		return -1;
	}
	if (check_len(len, 1, EMAIL_MAX, field, err) == -1)
		return -1;
	if (strlen(s) != len)
		goto bad;
	for (i = 0; i < len; i += n) {
		if ((n = pv_valid_utf8_char(s + i, len - i)) == 0 ||
		    (n == 1 && email_bad_byte((unsigned char)s[i])))
			goto bad;
	}
	if ((at = memchr(s, '@', len)) == NULL ||
	    memchr(at + 1, '@', len - (size_t)(at - s) - 1) != NULL)
		goto bad;
	local = (size_t)(at - s);
	if (local > LOCAL_MAX || !dotted(s, local) ||
	    !dotted(at + 1, len - local - 1) ||
	    memchr(at + 1, '.', len - local - 1) == NULL)
		goto bad;
	return 0;
bad:
	PV_ERR_INVALID(err, field, "must be a valid e-mail address");
	return -1;
}

/*
 * Checks a public id: prefix (e.g. "ORD_") followed by exactly nhex
 * uppercase hex digits and nothing else.  Returns 0, or -1 with
 * PV_E_INVALID naming field (NULL s: required).
 */
int
pv_valid_id(const char *s, const char *prefix, size_t nhex, const char *field,
    struct pv_err *err)
{
	size_t plen = strlen(prefix), i;

	if (s == NULL) {
		PV_ERR_INVALID(err, field, "is required");
		return -1;
	}
	if (strncmp(s, prefix, plen) != 0)
		goto bad;
	for (i = 0; i < nhex; i++) {
		char c = s[plen + i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			goto bad;
	}
	if (s[plen + nhex] != '\0')
		goto bad;
	return 0;
bad:
	PV_ERR_INVALID(err, field,
	    "must be %s followed by %zu uppercase hex digits", prefix, nhex);
	return -1;
}

/*
 * True if s is two uppercase ASCII letters, the shape of an ISO 3166-1
 * alpha-2 code.  Whether the code is assigned is the caller's concern
 * (shipping rules list the countries a merchant serves).
 */
bool
pv_valid_country(const char *s)
{
	return s != NULL && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' &&
	    s[1] <= 'Z' && s[2] == '\0';
}

/*
 * Looks s up (exactly, case-sensitively) in names, a NULL-terminated
 * table, and stores its position in *index.  Returns 0, or -1 with
 * PV_E_INVALID naming field and listing the accepted values when they
 * fit in a message.
 */
int
pv_valid_enum(const char *s, const char *const *names, size_t *index,
    const char *field, struct pv_err *err)
{
	char list[160];
	size_t i, used = 0;
	int n;

	for (i = 0; s != NULL && names[i] != NULL; i++) {
		if (strcmp(s, names[i]) == 0) {
			*index = i;
			return 0;
		}
	}
	if (s == NULL) {
		PV_ERR_INVALID(err, field, "is required");
		return -1;
	}
	list[0] = '\0';
	for (i = 0; names[i] != NULL; i++) {
		n = snprintf(list + used, sizeof(list) - used, "%s%s",
		    i == 0 ? "" : ", ", names[i]);
		if (n < 0 || (size_t)n >= sizeof(list) - used) {
			PV_ERR_INVALID(err, field,
			    "is not one of the accepted values");
			return -1;
		}
		used += (size_t)n;
	}
	PV_ERR_INVALID(err, field, "must be one of %s", list);
	return -1;
}
