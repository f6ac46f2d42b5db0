/*
 * libFuzzer harness for the template engine (pv_tmpl): the input is a
 * template and, after the first NUL, a value.  The template is parsed
 * both as HTML and as plain text and, when it loads, rendered with the
 * value bound to the slots "a", "b" and "c" as text.  Properties: no
 * crash or leak; in rendered HTML every '<', '>' and '"' of the value
 * was escaped (the output holds as many as with a harmless value).
 * Built and run by `make fuzz`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "pv_arena.h"
#include "pv_buf.h"
#include "pv_tmpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* How many times c occurs in s. */
static size_t
count(const char *s, char c)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == c;
	return n;
}

/* Renders name with every slot bound to value; NULL if it fails. */
static const char *
render(const struct pv_tmpl *set, const char *name, const char *value,
    struct pv_arena *a)
{
	struct pv_tmpl_arg args[] = { PV_TEXT("a", value), PV_TEXT("b", value),
		PV_TEXT("c", value), PV_END };
	struct pv_err err = { 0 };
	const char *out;
	struct pv_buf b;

	pv_buf_init(&b, a, 1u << 19);
	if (pv_tmpl_render(set, name, args, &b, &err) == -1 ||
	    pv_buf_finish(&b, &out, NULL, &err) == -1)
		return NULL;
	return out;
}

/*
 * Parses text as name and renders it twice: with value, and with a
 * value of plain letters.  In HTML the value's '<', '>' and '"' must all
 * have been escaped: the two outputs hold the same number of each.
 */
static void
one(const char *name, const char *text, size_t len, const char *value)
{
	struct pv_err err = { 0 };
	struct pv_tmpl *set = pv_tmpl_new();
	struct pv_arena *a = pv_arena_new(1u << 21);
	const char *out, *plain;
	const char *chars = "<>\"";

	check(set != NULL && a != NULL);
	if (pv_tmpl_add(set, name, text, len, &err) == 0 &&
	    (out = render(set, name, value, a)) != NULL &&
	    strstr(name, ".html") != NULL) {
		plain = render(set, name, "x", a);
		check(plain != NULL);
		for (; *chars != '\0'; chars++)
			check(count(out, *chars) == count(plain, *chars));
	}
	pv_arena_free(a);
	pv_tmpl_free(set);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nul = memchr(data, '\0', size);
	size_t tlen = nul != NULL ? (size_t)(nul - (const char *)data) : size;
	char *value;

	if (nul != NULL) {
		size_t vlen = size - tlen - 1;

		if ((value = malloc(vlen + 1)) == NULL)
			return 0;
		memcpy(value, nul + 1, vlen);
		value[vlen] = '\0';
	} else if ((value = strdup("<b>\"x\" & 'y'</b>")) == NULL) {
		return 0;
	}
	one("t.html", (const char *)data, tlen, value);
	one("t.txt", (const char *)data, tlen, value);
	free(value);
	return 0;
}
