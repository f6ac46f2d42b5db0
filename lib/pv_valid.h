#ifndef PV_VALID_H
#define PV_VALID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pv_err.h"

/*
 * Typed validation of text input: query strings, headers, form fields
 * (kcgi's kvalid_*).  Each validator turns text into a typed value or
 * records PV_E_INVALID naming the field, so handlers never see raw
 * text.  Nothing here allocates: inputs are borrowed and outputs are
 * plain values or pointers into the input.
 *
 * Messages follow one convention, which pv_json_err_prefix() relies
 * on: an error about a field names it first, quoted ("\"limit\" must
 * be at most 100"); an error about an unnamed value (a field of NULL
 * or "") starts with the word "value" ("value must be ...").  Field
 * names longer than err->field are cut on a UTF-8 boundary.
 */

/* pv_valid_text() flag: allow tab, LF and CR-LF (textareas send CR-LF). */
#define PV_VALID_MULTILINE 0x01u

/*
 * Records PV_E_INVALID for field (or an unnamed value when field is
 * NULL or "") with the message '"field" <fmt...>'.  Does nothing when
 * err already holds an error.
 */
#define PV_ERR_INVALID(err, field, ...) \
	pv_valid_fail((err), __FILE__, __LINE__, (field), __VA_ARGS__)

void pv_valid_fail(struct pv_err *err, const char *file, int line,
    const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Length of the well-formed UTF-8 sequence at s (1 to 4), or 0. */
size_t pv_valid_utf8_char(const char *s, size_t len);

/* True if s[0..len) is well-formed UTF-8 (no overlongs or surrogates). */
bool pv_valid_utf8(const char *s, size_t len);

/* The longest prefix of s[0..len) of at most max bytes that ends on a
 * UTF-8 character boundary, for quoting input in messages. */
size_t pv_valid_utf8_clip(const char *s, size_t len, size_t max);

/* 0 if min <= v <= max, else -1 with PV_E_INVALID naming field. */
int pv_valid_range(int64_t v, int64_t min, int64_t max, const char *field,
    struct pv_err *err);

/* Parses a canonical decimal integer in [min, max] into *out. */
int pv_valid_int64(const char *s, int64_t min, int64_t max, int64_t *out,
    const char *field, struct pv_err *err);

/* Parses true/false, True/False, TRUE/FALSE or 1/0 into *out. */
int pv_valid_bool(const char *s, bool *out, const char *field,
    struct pv_err *err);

/* Checks s[0..len) is UTF-8 text of minlen..maxlen bytes without NULs or
 * control characters (flags: PV_VALID_MULTILINE). */
int pv_valid_text(const char *s, size_t len, size_t minlen, size_t maxlen,
    unsigned flags, const char *field, struct pv_err *err);

/* Practical e-mail address check: one @, a dotted domain, no spaces. */
int pv_valid_email(const char *s, size_t len, const char *field,
    struct pv_err *err);

/* Checks s is prefix followed by exactly nhex uppercase hex digits. */
int pv_valid_id(const char *s, const char *prefix, size_t nhex,
    const char *field, struct pv_err *err);

/* True if s has the shape of an ISO 3166-1 alpha-2 code ("US"). */
bool pv_valid_country(const char *s);

/* Finds s in the NULL-terminated names and stores its position. */
int pv_valid_enum(const char *s, const char *const *names, size_t *index,
    const char *field, struct pv_err *err);

#endif /* PV_VALID_H */
