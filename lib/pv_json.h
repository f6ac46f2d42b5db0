#ifndef PV_JSON_H
#define PV_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "pv_arena.h"
#include "pv_err.h"

/*
 * The only way JSON enters or leaves the program (json-c underneath).
 *
 * Input: pv_json_parse() accepts exactly one JSON object (RFC 8259,
 * strict: no NaN, no leading zeros, no raw control characters, no
 * unpaired \u surrogates, well-formed UTF-8, no duplicate keys, no
 * \u0000 in keys, nesting at most PV_JSON_MAX_DEPTH, at most
 * PV_JSON_MAX_CONTAINERS objects and arrays) and hands the tree to the
 * arena.  Typed getters then read fields, checking type and range and
 * naming the field in err->field; strings they return borrow from the
 * tree and live as long as the arena.  Errors about a field follow the
 * pv_valid.h message convention ('"quantity" must be at least 1'), and
 * pv_json_err_prefix() turns a nested field into its full path
 * ("items[2].quantity") in both err->field and the message:
 *
 *	for (i = 0; i < n; i++)
 *		if (pv_json_at_obj(items, i, &it, err) == -1 ||
 *		    read_item(it, &in[i], err) == -1)
 *			return pv_json_err_prefix(err, "items[%zu]", i);
 *
 * Output: objects made by pv_json_new_obj()/pv_json_new_arr() belong
 * to the arena.  pv_json_set() and pv_json_push() add a reference to
 * the child instead of stealing one, so a child may be arena-owned,
 * part of a parsed tree or shared by several parents, and there is no
 * ownership to get wrong on error paths.  The builders are sticky like
 * pv_buf: each does nothing and fails when err already holds an error
 * (a NULL parent from a failed pv_json_new_obj() is fine), so a reply
 * of a dozen fields needs one check, at pv_json_to_str() or of
 * err->code.  This assumes err is clear when building starts.
 */

/* Deepest nesting of objects and arrays; the root object is level 1. */
#define PV_JSON_MAX_DEPTH 16

/*
 * Most objects plus arrays in one document.  json-c spends about 750
 * bytes of malloc per object outside the arena, so a 1 MiB body of
 * "{},{},..." would cost ~260 MB; this caps it near 15 MB (413).
 */
#define PV_JSON_MAX_CONTAINERS 20000

/* Parses s[0..len) into an arena-owned object. */
int pv_json_parse(struct pv_arena *a, const char *s, size_t len,
    struct json_object **out, struct pv_err *err);

/* Required and optional (absent or null) fields of obj. */
int pv_json_str(struct json_object *obj, const char *key, size_t minlen,
    size_t maxlen, const char **out, struct pv_err *err);
int pv_json_str_opt(struct json_object *obj, const char *key, size_t minlen,
    size_t maxlen, const char **out, struct pv_err *err);
int pv_json_int(struct json_object *obj, const char *key, int64_t min,
    int64_t max, int64_t *out, struct pv_err *err);
int pv_json_int_opt(struct json_object *obj, const char *key, int64_t min,
    int64_t max, int64_t def, int64_t *out, struct pv_err *err);
int pv_json_bool(struct json_object *obj, const char *key, bool *out,
    struct pv_err *err);
int pv_json_bool_opt(struct json_object *obj, const char *key, bool def,
    bool *out, struct pv_err *err);
int pv_json_obj(struct json_object *obj, const char *key,
    struct json_object **out, struct pv_err *err);
int pv_json_obj_opt(struct json_object *obj, const char *key,
    struct json_object **out, struct pv_err *err);
int pv_json_arr(struct json_object *obj, const char *key, size_t min_n,
    size_t max_n, struct json_object **out, struct pv_err *err);
int pv_json_arr_opt(struct json_object *obj, const char *key, size_t min_n,
    size_t max_n, struct json_object **out, struct pv_err *err);

/* Elements of an array (from pv_json_arr()); errors name no field
 * until pv_json_err_prefix() adds "items[i]". */
int pv_json_at_obj(struct json_object *arr, size_t i, struct json_object **out,
    struct pv_err *err);
int pv_json_at_str(struct json_object *arr, size_t i, size_t minlen,
    size_t maxlen, const char **out, struct pv_err *err);
int pv_json_at_int(struct json_object *arr, size_t i, int64_t min, int64_t max,
    int64_t *out, struct pv_err *err);

/* Refuses a member of obj that is not in the NULL-terminated keys. */
int pv_json_only_keys(struct json_object *obj, const char *const *keys,
    struct pv_err *err);

/* Prefixes the field path of a recorded error; always returns -1. */
int pv_json_err_prefix(struct pv_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Builders (sticky on err, see above). */
struct json_object *pv_json_new_obj(struct pv_arena *a, struct pv_err *err);
struct json_object *pv_json_new_arr(struct pv_arena *a, struct pv_err *err);
int pv_json_set(struct json_object *obj, const char *key,
    struct json_object *child, struct pv_err *err);
int pv_json_set_str(struct json_object *obj, const char *key, const char *s,
    struct pv_err *err);
int pv_json_set_strn(struct json_object *obj, const char *key, const char *s,
    size_t len, struct pv_err *err);
int pv_json_set_int(struct json_object *obj, const char *key, int64_t v,
    struct pv_err *err);
int pv_json_set_double(struct json_object *obj, const char *key, double v,
    struct pv_err *err);
int pv_json_set_bool(struct json_object *obj, const char *key, bool v,
    struct pv_err *err);
int pv_json_push(struct json_object *arr, struct json_object *child,
    struct pv_err *err);
int pv_json_push_str(struct json_object *arr, const char *s,
    struct pv_err *err);
int pv_json_push_int(struct json_object *arr, int64_t v, struct pv_err *err);

/* Serialises obj compactly into arena memory. */
int pv_json_to_str(struct pv_arena *a, struct json_object *obj,
    const char **out, size_t *outlen, struct pv_err *err);

#endif /* PV_JSON_H */
