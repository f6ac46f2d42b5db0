/*
 * libFuzzer harness for cookie parsing (pv_req_cookie(), which the
 * dashboard uses for its session and CSRF cookies): the input is a
 * Cookie header and, after the first NUL, a cookie name to look up
 * besides pv_session and pv_csrf.  Properties: no crash or leak; a
 * value found lies inside the header, right after "name=" at the start
 * of a pair, and runs to the next ';' or the end; the answer is the
 * one of a reference parser written independently below; and a
 * session cookie appended to the header is found exactly as appended,
 * unless the header already carried one (the first one wins).  Built
 * and run by `make fuzz`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "pv_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOKEN "0123456789abcdef0123456789abcdef"

/*
 * The reference: split h at every ';', drop the spaces that start a
 * pair, and take the first pair whose text before its first '=' is
 * name.  Returns the value's offset in h, or -1; *len its length.
 */
static long
ref_cookie(const char *h, const char *name, size_t *len)
{
	size_t hlen = strlen(h), nlen = strlen(name), i = 0, start, end;
	const char *eq;

	while (i < hlen) {
		for (end = i; end < hlen && h[end] != ';'; end++)
			;
		for (start = i; start < end && h[start] == ' '; start++)
			;
		eq = memchr(h + start, '=', end - start);
		if (eq != NULL && (size_t)(eq - (h + start)) == nlen &&
		    memcmp(h + start, name, nlen) == 0) {
			*len = end - (size_t)(eq + 1 - h);
			return (long)(eq + 1 - h);
		}
		i = end + 1;
	}
	return -1;
}

/* Looks name up in header h; returns the value's offset or -1. */
static long
lookup(const char *h, const char *name, size_t *len)
{
	struct pv_kv hdr = { "cookie", h, strlen(h) };
	struct pv_req req;
	size_t nlen = strlen(name), rlen = 0;
	const char *v, *pair;
	long ref;

	memset(&req, 0, sizeof(req));
	req.hdrs = &hdr;
	req.nhdr = 1;
	*len = 0;
	v = pv_req_cookie(&req, name, len);
	ref = ref_cookie(h, name, &rlen);
	if (v == NULL) {
		check(ref == -1);
		return -1;
	}
	check(ref == v - h && rlen == *len);
	/* Inside the header, after "name=", up to ';' or the end. */
	check(v >= h + nlen + 1 && v + *len <= h + hdr.valuelen);
	check(v[*len] == ';' || v[*len] == '\0');
	check(memchr(v, ';', *len) == NULL);
	pair = v - nlen - 1;
	check(pair[nlen] == '=' && memcmp(pair, name, nlen) == 0);
	/* The pair starts the header or follows ';' and spaces. */
	while (pair > h && pair[-1] == ' ')
		pair--;
	check(pair == h || pair[-1] == ';');
	return ref;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "pv_session", "pv_csrf", NULL };
	char *in, *h2, name[65];
	size_t hlen, n, len, len2, i;
	long first, got;

	/* header NUL name: both become C strings. */
	if ((in = malloc(size + 1)) == NULL)
		abort();
	memcpy(in, data, size);
	in[size] = '\0';
	hlen = strlen(in);
	n = hlen < size ? strnlen(in + hlen + 1, size - hlen - 1) : 0;
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, hlen < size ? in + hlen + 1 : "", n);
	name[n] = '\0';

	for (i = 0; names[i] != NULL; i++)
		(void)lookup(in, names[i], &len);
	(void)lookup(in, name, &len);

	/* A session cookie appended after the fuzzed ones. */
	if ((h2 = malloc(hlen + sizeof("; pv_session=" TOKEN))) == NULL)
		abort();
	memcpy(h2, in, hlen);
	memcpy(h2 + hlen, "; pv_session=" TOKEN, sizeof("; pv_session=" TOKEN));
	first = lookup(in, "pv_session", &len);
	got = lookup(h2, "pv_session", &len2);
	if (first >= 0) {
		check(got == first && len2 == len);
	} else {
		check(got >= 0 && len2 == strlen(TOKEN));
		check(memcmp(h2 + got, TOKEN, len2) == 0);
		check(got == (long)(hlen + sizeof("; pv_session=") - 1));
	}
	free(h2);
	free(in);
	return 0;
}
