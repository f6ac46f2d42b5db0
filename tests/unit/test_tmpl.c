/*
 * Unit tests of pv_tmpl: escaping by slot kind (the XSS cases), unbound
 * and mis-kinded slots fail, the loader refuses slots in unsafe places,
 * plain-text templates, loading a directory, allocation failures.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pv_tmpl.h"
#include "pv_test.h"

static struct pv_arena *a;
static struct pv_tmpl *set;

static void
setup(void)
{
	a = pv_arena_new(1024 * 1024);
	set = pv_tmpl_new();
	ck_assert_ptr_nonnull(set);
}

static void
teardown(void)
{
	pv_tmpl_free(set);
	pv_arena_free(a);
}

static void
add(const char *name, const char *text)
{
	struct pv_err err = { 0 };

	ck_assert_msg(pv_tmpl_add(set, name, text, strlen(text), &err) == 0,
	    "%s", err.msg);
}

static int
add_fails(const char *name, const char *text, struct pv_err *err)
{
	return pv_tmpl_add(set, name, text, strlen(text), err);
}

static const char *
render(const char *name, const struct pv_tmpl_arg *args)
{
	struct pv_err err = { 0 };
	struct pv_html h;

	ck_assert_msg(pv_tmpl_render_html(set, name, args, a, 65536, &h,
	                  &err) == 0,
	    "%s", err.msg);
	ck_assert_uint_eq(strlen(h.s), h.len);
	return h.s;
}

START_TEST(test_tmpl_render_escapes_script)
{
	struct pv_tmpl_arg args[] = {
		PV_TEXT("title", "<script>alert(1)</script>"),
		PV_END,
	};

	add("p.html", "<td>{{title}}</td>");
	ck_assert_str_eq(render("p.html", args),
	    "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>");
}
END_TEST

START_TEST(test_tmpl_render_escapes_attribute_breakout)
{
	struct pv_tmpl_arg args[] = {
		PV_TEXT("email", "x\"onmouseover=alert(1) '"),
		PV_END,
	};

	add("p.html", "<input value=\"{{email}}\" title='{{email}}'>");
	ck_assert_str_eq(render("p.html", args),
	    "<input value=\"x&quot;onmouseover=alert(1) &#39;\" "
	    "title='x&quot;onmouseover=alert(1) &#39;'>");
}
END_TEST

START_TEST(test_tmpl_render_url_encodes)
{
	struct pv_tmpl_arg args[] = {
		PV_TEXT("id", "a b&c\"<>/?"),
		PV_END,
	};

	add("p.html", "<a href=\"/dashboard/orders/{{id|url}}\">{{id}}</a>");
	ck_assert_str_eq(render("p.html", args),
	    "<a href=\"/dashboard/orders/a%20b%26c%22%3C%3E%2F%3F\">"
	    "a b&amp;c&quot;&lt;&gt;/?</a>");
}
END_TEST

START_TEST(test_tmpl_render_html_slot_inserts_rendered_markup)
{
	struct pv_html inner, lit = PV_HTML_LIT("<hr>");
	struct pv_err err = { 0 };
	struct pv_tmpl_arg in[] = { PV_TEXT("x", "<b>"), PV_END };

	add("row.html", "<li>{{x}}</li>");
	add("page.html", "<ul>{{rows|html}}</ul>{{sep|html}}");
	ck_assert_int_eq(pv_tmpl_render_html(set, "row.html", in, a, 1024,
	                     &inner, &err),
	    0);
	{
		struct pv_tmpl_arg args[] = {
			PV_HTML("rows", &inner),
			PV_HTML("sep", &lit),
			PV_END,
		};
		ck_assert_str_eq(render("page.html", args),
		    "<ul><li>&lt;b&gt;</li></ul><hr>");
	}
}
END_TEST

START_TEST(test_tmpl_render_unbound_slot_fails)
{
	struct pv_err err = { 0 };
	struct pv_tmpl_arg args[] = { PV_TEXT("a", "1"), PV_END };
	struct pv_html h;

	add("p.html", "<p>{{a}} {{b}}</p>");
	ck_assert_int_eq(pv_tmpl_render_html(set, "p.html", args, a, 1024, &h,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "b is unbound"));
}
END_TEST

START_TEST(test_tmpl_render_wrong_kind_fails)
{
	struct pv_err err = { 0 };
	struct pv_html lit = PV_HTML_LIT("<b>x</b>"), h;
	struct pv_tmpl_arg text_for_html[] = { PV_TEXT("a", "<b>"), PV_END };
	struct pv_tmpl_arg html_for_text[] = { PV_HTML("b", &lit), PV_END };
	struct pv_tmpl_arg null_text[] = { PV_TEXT("b", NULL), PV_END };

	add("h.html", "<p>{{a|html}}</p>");
	add("t.html", "<p>{{b}}</p>");
	ck_assert_int_eq(pv_tmpl_render_html(set, "h.html", text_for_html, a,
	                     1024, &h, &err),
	    -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "wrong kind"));
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(pv_tmpl_render_html(set, "t.html", html_for_text, a,
	                     1024, &h, &err),
	    -1);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(pv_tmpl_render_html(set, "t.html", null_text, a, 1024,
	                     &h, &err),
	    -1);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(pv_tmpl_render_html(set, "nope.html", null_text, a,
	                     1024, &h, &err),
	    -1);
}
END_TEST

START_TEST(test_tmpl_add_refuses_unsafe_places)
{
	static const char *const bad[] = {
		"<script>var x = \"{{x}}\";</script>",
		"<SCRIPT type=\"module\">{{x}}</SCRIPT>",
		"<style>p { color: {{x}} }</style>",
		"<a onclick=\"go('{{x}}')\">",
		"<img ONERROR='{{x}}'>",
		"<p style=\"color: {{x}}\">",
		"<input value={{x}}>",
		"<p {{x}}>",
		"<a href=\"{{x}}\">",
		"<form action='{{x}}'>",
		"<!-- {{x}} -->",
		"{{x",
		"{{X}}",
		"{{}}",
		"{{x|raw}}",
	};
	struct pv_err err;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		ck_assert_msg(add_fails("bad.html", bad[i], &err) == -1,
		    "accepted: %s", bad[i]);
		ck_assert_int_eq(err.code, PV_E_INTERNAL);
	}
}
END_TEST

START_TEST(test_tmpl_add_accepts_safe_places)
{
	struct pv_tmpl_arg args[] = { PV_TEXT("x", "v"), PV_END };

	add("ok.html",
	    "<script src=\"/static/a.js\"></script><p title=\"{{x}}\">{{x}}"
	    "</p><a href=\"/o/{{x|url}}\">{{x}}</a><a href=\"{{x|url}}\">"
	    "</a><style>p{}</style><em>{{x}}</em>");
	ck_assert_str_eq(render("ok.html", args),
	    "<script src=\"/static/a.js\"></script><p title=\"v\">v</p>"
	    "<a href=\"/o/v\">v</a><a href=\"v\"></a><style>p{}</style>"
	    "<em>v</em>");
}
END_TEST

START_TEST(test_tmpl_plain_text_is_verbatim)
{
	struct pv_err err = { 0 };
	struct pv_tmpl_arg args[] = { PV_TEXT("name", "A & <B>"),
		PV_TEXT("id", "a b"), PV_END };
	struct pv_buf b;
	const char *out;

	add("email/hello.txt", "Hi {{name}}, see /o/{{id|url}}\n");
	ck_assert_int_eq(add_fails("email/bad.txt", "{{x|html}}", &err), -1);
	pv_buf_init(&b, a, 1024);
	ck_assert_int_eq(pv_tmpl_render(set, "email/hello.txt", args, &b, &err),
	    0);
	ck_assert_int_eq(pv_buf_finish(&b, &out, NULL, &err), 0);
	ck_assert_str_eq(out, "Hi A & <B>, see /o/a%20b\n");
}
END_TEST

START_TEST(test_tmpl_render_cap_fails_cleanly)
{
	struct pv_err err = { 0 };
	struct pv_tmpl_arg args[] = { PV_TEXT("x", "0123456789"), PV_END };
	struct pv_html h;

	add("p.html", "<p>{{x}}{{x}}{{x}}</p>");
	ck_assert_int_eq(pv_tmpl_render_html(set, "p.html", args, a, 16, &h,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_TOOBIG);
}
END_TEST

START_TEST(test_tmpl_render_nomem_fails_cleanly)
{
	struct pv_tmpl_arg args[] = { PV_TEXT("x", "<0123456789>"), PV_END };
	struct pv_err err;
	struct pv_html h;
	size_t n;
	int rc;

	add("p.html", "<p>{{x}}{{x}}{{x}}{{x}}{{x}}{{x}}</p>");
	for (n = 0;; n++) {
		memset(&err, 0, sizeof(err));
		pv_arena_reset(a);
		pv_arena_fail_after(a, n);
		rc = pv_tmpl_render_html(set, "p.html", args, a, 65536, &h,
		    &err);
		if (rc == 0)
			break;
		ck_assert_int_eq(err.code, PV_E_NOMEM);
		ck_assert_uint_lt(n, 100);
	}
	pv_arena_fail_after(a, (size_t)-1);
}
END_TEST

START_TEST(test_tmpl_load_reads_a_tree)
{
	char dir[] = "/tmp/pv-tmpl-XXXXXX", path[256];
	struct pv_tmpl_arg args[] = { PV_TEXT("id", "7"), PV_END };
	struct pv_err err = { 0 };
	struct pv_tmpl *t;
	struct pv_html h;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/partials", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/partials/row.html", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs("<tr><td>{{id}}</td></tr>", f);
	fclose(f);
	t = pv_tmpl_load(dir, &err);
	ck_assert_msg(t != NULL, "%s", err.msg);
	ck_assert(pv_tmpl_has(t, "partials/row.html"));
	ck_assert_int_eq(pv_tmpl_render_html(t, "partials/row.html", args, a,
	                     1024, &h, &err),
	    0);
	ck_assert_str_eq(h.s, "<tr><td>7</td></tr>");
	pv_tmpl_free(t);

	/* One bad file fails the whole load, naming it. */
	snprintf(path, sizeof(path), "%s/bad.html", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs("<p onclick=\"{{x}}\">", f);
	fclose(f);
	ck_assert_ptr_null(pv_tmpl_load(dir, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "bad.html"));
	unlink(path);
	snprintf(path, sizeof(path), "%s/partials/row.html", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/partials", dir);
	rmdir(path);
	rmdir(dir);
	memset(&err, 0, sizeof(err));
	ck_assert_ptr_null(pv_tmpl_load(dir, &err));
}
END_TEST

START_TEST(test_tmpl_load_project_templates)
{
	struct pv_err err = { 0 };
	struct pv_tmpl *t = pv_tmpl_load("templates", &err);

	/* The unit tests run from the repository root. */
	ck_assert_msg(t != NULL, "%s", err.msg);
	ck_assert(pv_tmpl_has(t, "layout.html"));
	pv_tmpl_free(t);
}
END_TEST

Suite *
tmpl_suite(void)
{
	Suite *s = suite_create("tmpl");
	TCase *tc = tcase_create("render");
	TCase *tl = tcase_create("load");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_tmpl_render_escapes_script);
	tcase_add_test(tc, test_tmpl_render_escapes_attribute_breakout);
	tcase_add_test(tc, test_tmpl_render_url_encodes);
	tcase_add_test(tc, test_tmpl_render_html_slot_inserts_rendered_markup);
	tcase_add_test(tc, test_tmpl_render_unbound_slot_fails);
	tcase_add_test(tc, test_tmpl_render_wrong_kind_fails);
	tcase_add_test(tc, test_tmpl_plain_text_is_verbatim);
	tcase_add_test(tc, test_tmpl_render_cap_fails_cleanly);
	tcase_add_test(tc, test_tmpl_render_nomem_fails_cleanly);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tl, setup, teardown);
	tcase_add_test(tl, test_tmpl_add_refuses_unsafe_places);
	tcase_add_test(tl, test_tmpl_add_accepts_safe_places);
	tcase_add_test(tl, test_tmpl_load_reads_a_tree);
	tcase_add_test(tl, test_tmpl_load_project_templates);
	suite_add_tcase(s, tl);
	return s;
}
