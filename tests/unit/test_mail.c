/*
 * Unit tests of pv_mail: the message (CRLF lines, headers, encoded
 * subject and sender name, quoted-printable parts of at most 76
 * bytes, a stable boundary), header injection refused in every header
 * value, and the real templates/email/ rendered for an order whose
 * product is named <b>Bold</b> & "quoted": escaped in the HTML part,
 * verbatim in the text part, amounts in the order's currency.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_mail.h"
#include "pv_test.h"

static struct pv_arena *a;
static struct pv_tmpl *set;
static struct pv_err err;

#define BOLD "<b>Bold</b> & \"quoted\""

static void
setup(void)
{
	a = pv_arena_new(8 * 1024 * 1024);
	ck_assert_ptr_nonnull(a);
	memset(&err, 0, sizeof(err));
	set = pv_tmpl_load("templates", &err);
	ck_assert_msg(set != NULL, "templates: %s", err.msg);
}

static void
teardown(void)
{
	pv_tmpl_free(set);
	pv_arena_free(a);
}

static void
msg_init(struct pv_mail_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->from_name = "Acme Outfitters via Pivota";
	m->from_addr = "orders@pivota.example";
	m->reply_to = "shop@acme.example";
	m->to = "buyer@test.example";
	m->subject = "Your order ORD_0123456789ABCDEF from Acme";
	m->msgid = "abc123.ord_0123456789abcdef@pivota.example";
	m->date = 1764090000; /* 2025-11-25T17:00:00Z, a Tuesday */
	m->text = "Hello\nworld\n";
	m->textlen = strlen(m->text);
	m->html = "<p>Hello</p>\n";
	m->htmllen = strlen(m->html);
}

static const char *
build(const struct pv_mail_msg *m)
{
	const char *out;
	size_t len;

	ck_assert_msg(pv_mail_build(a, m, &out, &len, &err) == 0, "%s",
	    err.msg);
	ck_assert_uint_eq(strlen(out), len);
	return out;
}

/* Decodes quoted-printable text (soft breaks joined, CRLF kept as LF). */
static char *
qp_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	size_t i;
	unsigned v;

	ck_assert_ptr_nonnull(out);
	for (i = 0; i < len; i++) {
		if (s[i] == '=' && i + 2 < len && s[i + 1] == '\r' &&
		    s[i + 2] == '\n') {
			i += 2;
		} else if (s[i] == '=' && i + 2 < len) {
			ck_assert_int_eq(sscanf(s + i + 1, "%2X", &v), 1);
			*o++ = (char)v;
			i += 2;
		} else if (s[i] == '\r') {
			continue;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* The decoded body of the part with content type ct (caller frees). */
static char *
part(const char *msg, const char *ct)
{
	const char *p = strstr(msg, ct), *body, *end;

	ck_assert_msg(p != NULL, "no %s part", ct);
	body = strstr(p, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	body += 4;
	end = strstr(body, "\r\n--=_pv_");
	ck_assert_ptr_nonnull(end);
	return qp_decode(body, (size_t)(end - body));
}

START_TEST(test_mail_build_crlf_and_headers)
{
	struct pv_mail_msg m;
	const char *out, *p, *line;
	char *text;

	msg_init(&m);
	out = build(&m);
	for (p = out; *p != '\0'; p++)
		if (*p == '\n')
			ck_assert_msg(p > out && p[-1] == '\r',
			    "bare LF at %ld", (long)(p - out));
	/* Every line fits SMTP's limits and QP's 76 bytes. */
	for (line = out; *line != '\0'; line = strstr(line, "\r\n") + 2)
		ck_assert_int_le(strstr(line, "\r\n") - line, 76);
	ck_assert_ptr_nonnull(strstr(out,
	    "From: \"Acme Outfitters via Pivota\" "
	    "<orders@pivota.example>\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "Reply-To: <shop@acme.example>\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "To: <buyer@test.example>\r\n"));
	ck_assert_ptr_nonnull(strstr(out,
	    "Subject: Your order ORD_0123456789ABCDEF from Acme\r\n"));
	ck_assert_ptr_nonnull(
	    strstr(out, "Date: Tue, 25 Nov 2025 17:00:00 +0000\r\n"));
	ck_assert_ptr_nonnull(strstr(out,
	    "Message-ID: <abc123.ord_0123456789abcdef@pivota.example>\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "MIME-Version: 1.0\r\n"));
	ck_assert_ptr_nonnull(
	    strstr(out, "Content-Type: multipart/alternative; boundary="));
	ck_assert_ptr_nonnull(strstr(out, "--\r\n")); /* closing boundary */
	text = part(out, "text/plain");
	/* MIME: the CRLF before a boundary belongs to the boundary. */
	ck_assert_str_eq(text, "Hello\nworld");
	free(text);
	/* The same mail builds the same bytes (a retry resends it). */
	ck_assert_str_eq(build(&m), out);
}
END_TEST

START_TEST(test_mail_build_quotes_name_and_encodes_qp)
{
	struct pv_mail_msg m;
	const char *out;
	char long_line[300], *text;

	msg_init(&m);
	m.from_name = "Bob \"the\" Shop\\ via Pivota";
	memset(long_line, 'x', 200);
	memcpy(long_line + 200, " =tail \n.dot\n", 14);
	m.text = long_line;
	m.textlen = strlen(long_line);
	out = build(&m);
	ck_assert_ptr_nonnull(strstr(out,
	    "From: \"Bob \\\"the\\\" Shop\\\\ via Pivota\" <orders@"));
	/* "=" is encoded, a line never starts with a bare dot. */
	ck_assert_ptr_nonnull(strstr(out, "=3Dtail=20\r\n=2Edot"));
	ck_assert_ptr_null(strstr(out, "\r\n.dot"));
	text = part(out, "text/plain");
	ck_assert_str_eq(text + 200, " =tail \n.dot");
	free(text);
}
END_TEST

START_TEST(test_mail_build_encodes_utf8_subject)
{
	static const char subj[] = "Ihre Bestellung bei Caf\xc3\xa9 M\xc3\xbc"
	                           "ller \xe2\x98\x95 ist unterwegs, mit "
	                           "einem sehr langen Betreff \xc3\xa4\xc3\xb6";
	struct pv_mail_msg m;
	const char *out, *s, *e;
	size_t n = 0;

	msg_init(&m);
	m.subject = subj;
	m.from_name = "Caf\xc3\xa9 M\xc3\xbcller via Pivota";
	out = build(&m);
	ck_assert_ptr_nonnull(strstr(out, "From: =?UTF-8?B?"));
	s = strstr(out, "Subject: ");
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(strstr(s, "Subject: =?UTF-8?B?"));
	/* Folded into words of at most 75 bytes, no raw 8-bit bytes. */
	for (s = strstr(s, "=?UTF-8?B?"); s != NULL && s < strstr(out, "Date:");
	     s = strstr(e, "=?UTF-8?B?")) {
		e = strstr(s + 10, "?=");
		ck_assert_ptr_nonnull(e);
		e += 2;
		ck_assert_int_le(e - s, 75);
		n++;
	}
	ck_assert_uint_ge(n, 2);
	for (s = out; *s != '\0'; s++)
		ck_assert_msg((unsigned char)*s < 0x80,
		    "8-bit byte in message");
}
END_TEST

START_TEST(test_mail_build_refuses_header_injection)
{
	static const char *const evil[] = { "x\r\nBcc: victim@evil.example",
		"x\nBcc: victim@evil.example", "x\rBcc: y", "tab\there" };
	struct pv_mail_msg m;
	const char *out;
	size_t i, len;

	for (i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		msg_init(&m);
		m.subject = evil[i];
		pv_err_clear(&err);
		ck_assert_int_eq(pv_mail_build(a, &m, &out, &len, &err), -1);
		ck_assert_int_eq(err.code, PV_E_INVALID);
		ck_assert_str_eq(err.field, "subject");

		msg_init(&m);
		m.from_name = evil[i];
		pv_err_clear(&err);
		ck_assert_int_eq(pv_mail_build(a, &m, &out, &len, &err), -1);
		ck_assert_str_eq(err.field, "from_name");
	}
	msg_init(&m);
	m.to = "buyer@test.example\r\nBcc: victim@evil.example";
	pv_err_clear(&err);
	ck_assert_int_eq(pv_mail_build(a, &m, &out, &len, &err), -1);
	ck_assert_str_eq(err.field, "to");
	msg_init(&m);
	m.reply_to = "shop@acme.example\nBcc: v@evil.example";
	pv_err_clear(&err);
	ck_assert_int_eq(pv_mail_build(a, &m, &out, &len, &err), -1);
	ck_assert_str_eq(err.field, "reply_to");
	msg_init(&m);
	m.to = "a@b.example>, <victim@evil.example";
	pv_err_clear(&err);
	ck_assert_int_eq(pv_mail_build(a, &m, &out, &len, &err), -1);
	ck_assert_str_eq(err.field, "to");
	msg_init(&m);
	m.msgid = "x@y>\r\nBcc: v@evil.example";
	pv_err_clear(&err);
	ck_assert_int_eq(pv_mail_build(a, &m, &out, &len, &err), -1);
	ck_assert_str_eq(err.field, "message_id");
}
END_TEST

START_TEST(test_mail_build_alloc_failures)
{
	struct pv_mail_msg m;
	const char *out;
	size_t len;
	long n;
	int rc = -1;

	msg_init(&m);
	for (n = 0; n < 100 && rc != 0; n++) {
		pv_arena_reset(a);
		pv_arena_fail_after(a, n);
		pv_err_clear(&err);
		rc = pv_mail_build(a, &m, &out, &len, &err);
		if (rc == -1)
			ck_assert_int_eq(err.code, PV_E_NOMEM);
	}
	pv_arena_fail_after(a, -1);
	ck_assert_int_eq(rc, 0);
}
END_TEST

static const struct pv_mail_item items[] = {
	{ BOLD, "Default", "B-1", 2, 1999, 3998 },
	{ "Trail Mug", "Large / Blue", "M-2", 1, 500, 500 },
};

static void
order_init(struct pv_mail_order *o)
{
	memset(o, 0, sizeof(*o));
	o->order_id = "ORD_0123456789ABCDEF";
	o->merchant_name = "Acme & Sons";
	o->customer = "buyer@test.example";
	o->currency = "USD";
	o->subtotal_minor = 4498;
	o->shipping_minor = 500;
	o->tax_minor = 399;
	o->total_minor = 5397;
	o->ship_name = "Buyer";
	o->ship_line1 = "1 Main St";
	o->ship_line2 = "";
	o->ship_city = "Town";
	o->ship_state = "CA";
	o->ship_postal = "12345";
	o->ship_country = "US";
	o->items = items;
	o->nitems = 2;
}

START_TEST(test_mail_render_escapes_html_not_text)
{
	struct pv_mail_order o;
	struct pv_mail_body b;
	struct pv_mail_msg m;
	char *text, *html;

	order_init(&o);
	ck_assert_msg(pv_mail_render(set, a, "order_confirmation", &o, &b,
	                  &err) == 0,
	    "%s", err.msg);
	ck_assert_str_eq(b.subject,
	    "Your order ORD_0123456789ABCDEF from Acme & Sons");
	ck_assert_ptr_nonnull(strstr(b.text, "2 x " BOLD "  @ 19.99 USD"));
	ck_assert_ptr_nonnull(strstr(b.text, "= 39.98 USD"));
	ck_assert_ptr_nonnull(strstr(b.text, "Trail Mug (Large / Blue)"));
	ck_assert_ptr_nonnull(strstr(b.text, "Total:    53.97 USD"));
	ck_assert_ptr_nonnull(
	    strstr(b.html, "&lt;b&gt;Bold&lt;/b&gt; &amp; &quot;quoted&quot;"));
	ck_assert_ptr_null(strstr(b.html, "<b>Bold</b>"));
	ck_assert_ptr_nonnull(strstr(b.html, "Acme &amp; Sons"));
	ck_assert_ptr_nonnull(strstr(b.html, "53.97 USD"));

	/* And through the whole message. */
	msg_init(&m);
	m.subject = b.subject;
	m.text = b.text;
	m.textlen = b.textlen;
	m.html = b.html;
	m.htmllen = b.htmllen;
	text = part(build(&m), "text/plain");
	html = part(build(&m), "text/html");
	ck_assert_ptr_nonnull(strstr(text, BOLD));
	ck_assert_ptr_null(strstr(html, "<b>Bold</b>"));
	ck_assert_ptr_nonnull(strstr(html, "&lt;b&gt;Bold&lt;/b&gt;"));
	free(text);
	free(html);
}
END_TEST

START_TEST(test_mail_render_currency_and_templates)
{
	static const struct pv_mail_item yen[] = {
		{ "Tea", "Default", "", 3, 1500, 4500 },
	};
	struct pv_mail_order o;
	struct pv_mail_body b;

	order_init(&o);
	o.currency = "JPY";
	o.items = yen;
	o.nitems = 1;
	o.subtotal_minor = 4500;
	o.shipping_minor = 0;
	o.tax_minor = 0;
	o.total_minor = 4500;
	o.refunded_minor = 1500;
	ck_assert_int_eq(pv_mail_render(set, a, "refund_confirmation", &o, &b,
	                     &err),
	    0);
	ck_assert_ptr_nonnull(strstr(b.text, "Refunded so far: 1500 JPY"));
	ck_assert_ptr_nonnull(strstr(b.text, "3 x Tea  @ 1500 JPY"));
	ck_assert_ptr_null(strstr(b.text, "15.00"));
	ck_assert_int_eq(pv_mail_render(set, a, "merchant_new_order", &o, &b,
	                     &err),
	    0);
	ck_assert_str_eq(b.subject, "New order ORD_0123456789ABCDEF: 4500 JPY");
	ck_assert_ptr_nonnull(strstr(b.text, "Customer: buyer@test.example"));
	pv_err_clear(&err);
	ck_assert_int_eq(pv_mail_render(set, a, "nope", &o, &b, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
}
END_TEST

START_TEST(test_mail_render_tracking_link_https_only)
{
	struct pv_mail_order o;
	struct pv_mail_body b;

	order_init(&o);
	o.carrier = "UPS";
	o.tracking = "1Z999<x>";
	o.tracking_url = "https://track.example/?n=1Z999&x=\"y\"";
	ck_assert_msg(pv_mail_render(set, a, "shipping_confirmation", &o, &b,
	                  &err) == 0,
	    "%s", err.msg);
	ck_assert_ptr_nonnull(strstr(b.text, "Carrier:         UPS"));
	ck_assert_ptr_nonnull(strstr(b.text, "Tracking number: 1Z999<x>"));
	ck_assert_ptr_nonnull(strstr(b.text,
	    "Track your parcel: https://track.example/?n=1Z999&x=\"y\""));
	ck_assert_ptr_nonnull(strstr(b.html,
	    "<a href=\"https://track.example/?n=1Z999&amp;x=&quot;y&quot;\">"));
	ck_assert_ptr_nonnull(strstr(b.html, "1Z999&lt;x&gt;"));

	o.tracking_url = "javascript:alert(1)";
	ck_assert_int_eq(pv_mail_render(set, a, "shipping_confirmation", &o, &b,
	                     &err),
	    0);
	ck_assert_ptr_null(strstr(b.html, "<a href"));
	ck_assert_ptr_null(strstr(b.html, "javascript"));
	ck_assert_ptr_null(strstr(b.text, "Track your parcel"));
}
END_TEST

Suite *
mail_suite(void)
{
	Suite *s = suite_create("mail");
	TCase *tb = tcase_create("build");
	TCase *tr = tcase_create("render");

	tcase_add_checked_fixture(tb, setup, teardown);
	tcase_add_test(tb, test_mail_build_crlf_and_headers);
	tcase_add_test(tb, test_mail_build_quotes_name_and_encodes_qp);
	tcase_add_test(tb, test_mail_build_encodes_utf8_subject);
	tcase_add_test(tb, test_mail_build_refuses_header_injection);
	tcase_add_test(tb, test_mail_build_alloc_failures);
	suite_add_tcase(s, tb);
	tcase_add_checked_fixture(tr, setup, teardown);
	tcase_add_test(tr, test_mail_render_escapes_html_not_text);
	tcase_add_test(tr, test_mail_render_currency_and_templates);
	tcase_add_test(tr, test_mail_render_tracking_link_https_only);
	suite_add_tcase(s, tr);
	return s;
}
