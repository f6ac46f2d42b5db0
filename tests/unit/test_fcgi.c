/*
 * Unit tests of the request path shared by FastCGI and CGI: requests
 * are fed to pv_fcgi_serve() from memory and the raw CGI response is
 * inspected, so the front-line checks are tested exactly as deployed.
 */
#include <stdlib.h>
#include <string.h>

#include "pv_config.h"
#include "pv_db.h"
#include "pv_fcgi.h"
#include "pv_test.h"

static struct pv_config cfg;
static struct pv_ctx ctx;

struct mem_io {
	const char *in;  /* body to hand out */
	size_t inlen;    /* its length */
	size_t pos;      /* bytes handed out */
	char out[65536]; /* the response */
	size_t outlen;   /* bytes written */
};

static struct mem_io m;

static int
mem_read(void *arg, char *buf, int len)
{
	struct mem_io *io = arg;
	size_t n = io->inlen - io->pos;

	if (n > (size_t)len)
		n = (size_t)len;
	memcpy(buf, io->in + io->pos, n);
	io->pos += n;
	return (int)n;
}

static int
mem_write(void *arg, const char *buf, int len)
{
	struct mem_io *io = arg;

	if (io->outlen + (size_t)len >= sizeof(io->out))
		return -1;
	memcpy(io->out + io->outlen, buf, (size_t)len);
	io->outlen += (size_t)len;
	io->out[io->outlen] = '\0';
	return 0;
}

/* Echoes what the handler saw. */
static int
echo(struct pv_ctx *c, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	const char *v = pv_req_param(req, "q");
	const char *h = pv_req_header(req, "x-api-key");
	char *body;

	if ((body = pv_arena_printf(c->arena, err, "%s|%s|%s|%zu|%s", req->path,
	         v != NULL ? v : "-", h != NULL ? h : "-", req->bodylen,
	         req->body)) == NULL)
		return -1;
	pv_resp_set(resp, 200, "text/plain", body, strlen(body));
	return 0;
}

static const struct pv_route routes[] = {
	{ PV_GET | PV_POST, "/echo", echo, 0 },
	{ PV_GET, "/orders/:id/items/:n", echo, 0 },
};

static int
handle(struct pv_ctx *c, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	return pv_route_dispatch(c, routes, 2, req, resp, err);
}

static void
setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.body_max = 1024;
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = &cfg;
	ctx.arena = pv_arena_new(0);
	ctx.db = pv_db_new("host=/nonexistent", "test");
	memset(&m, 0, sizeof(m));
}

static void
teardown(void)
{
	pv_db_free(ctx.db);
	pv_arena_free(ctx.arena);
}

/* Serves one request with the given environment and body. */
static const char *
serve(char **envp, const char *body)
{
	struct pv_fcgi_io io = { envp, mem_read, mem_write, &m };

	memset(&m, 0, sizeof(m));
	m.in = body != NULL ? body : "";
	m.inlen = strlen(m.in);
	ck_assert_int_eq(pv_fcgi_serve(&ctx, handle, &io), 0);
	return m.out;
}

static const char *
body_of(const char *resp)
{
	const char *p = strstr(resp, "\r\n\r\n");

	return p != NULL ? p + 4 : "";
}

START_TEST(test_fcgi_serve_get_with_query_and_header)
{
	char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/echo?q=a%20b+c",
		"HTTP_X_API_KEY=ak_live_x", NULL };
	const char *r = serve(env, NULL);

	ck_assert(strncmp(r, "Status: 200 OK\r\n", 16) == 0);
	ck_assert_ptr_nonnull(strstr(r, "X-Content-Type-Options: nosniff"));
	ck_assert_ptr_nonnull(strstr(r, "Content-Security-Policy: "));
	ck_assert_ptr_nonnull(strstr(r, "X-Request-Id: req_"));
	ck_assert_str_eq(body_of(r), "/echo|a b c|ak_live_x|0|");
}
END_TEST

START_TEST(test_fcgi_serve_post_body)
{
	char *env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/echo",
		"CONTENT_LENGTH=5", "CONTENT_TYPE=application/json", NULL };
	const char *r = serve(env, "hello");

	ck_assert_str_eq(body_of(r), "/echo|-|-|5|hello");
}
END_TEST

START_TEST(test_fcgi_serve_route_params)
{
	char *env[] = { "REQUEST_METHOD=GET",
		"REQUEST_URI=/orders/ORD_1/items/2", NULL };
	char *env2[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/orders//items/2",
		NULL };

	ck_assert(strncmp(serve(env, NULL), "Status: 200", 11) == 0);
	ck_assert(strncmp(serve(env2, NULL), "Status: 404", 11) == 0);
}
END_TEST

START_TEST(test_fcgi_serve_head_has_no_body)
{
	char *env[] = { "REQUEST_METHOD=HEAD", "REQUEST_URI=/echo", NULL };
	const char *r = serve(env, NULL);

	ck_assert(strncmp(r, "Status: 200", 11) == 0);
	ck_assert_str_eq(body_of(r), "");
}
END_TEST

START_TEST(test_fcgi_serve_wrong_method_405)
{
	char *env[] = { "REQUEST_METHOD=DELETE", "REQUEST_URI=/echo", NULL };
	const char *r = serve(env, NULL);

	ck_assert(strncmp(r, "Status: 405", 11) == 0);
	ck_assert_ptr_nonnull(strstr(r, "Allow: GET, HEAD, POST\r\n"));
	ck_assert_ptr_nonnull(strstr(r, "\"code\":\"method_not_allowed\""));
}
END_TEST

START_TEST(test_fcgi_serve_unknown_path_404)
{
	char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/nope", NULL };

	ck_assert(strncmp(serve(env, NULL), "Status: 404", 11) == 0);
}
END_TEST

START_TEST(test_fcgi_serve_body_too_large_413)
{
	char *env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/echo",
		"CONTENT_LENGTH=5000", NULL };

	ck_assert(strncmp(serve(env, "x"), "Status: 413", 11) == 0);
}
END_TEST

START_TEST(test_fcgi_serve_short_body_400)
{
	char *env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/echo",
		"CONTENT_LENGTH=10", NULL };

	ck_assert(strncmp(serve(env, "abc"), "Status: 400", 11) == 0);
}
END_TEST

START_TEST(test_fcgi_serve_bad_content_length_400)
{
	char *env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/echo",
		"CONTENT_LENGTH=-1", NULL };

	ck_assert(strncmp(serve(env, "abc"), "Status: 400", 11) == 0);
}
END_TEST

START_TEST(test_fcgi_serve_long_uri_414)
{
	static char uri[9000];
	char *env[] = { "REQUEST_METHOD=GET", uri, NULL };

	memcpy(uri, "REQUEST_URI=/echo?q=", 20);
	memset(uri + 20, 'a', sizeof(uri) - 21);
	ck_assert(strncmp(serve(env, NULL), "Status: 414", 11) == 0);
}
END_TEST

START_TEST(test_fcgi_serve_huge_headers_431)
{
	static char h[40000];
	char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/echo", h, NULL };

	memcpy(h, "HTTP_X_JUNK=", 12);
	memset(h + 12, 'b', sizeof(h) - 13);
	ck_assert(strncmp(serve(env, NULL), "Status: 431", 11) == 0);
}
END_TEST

START_TEST(test_fcgi_serve_control_bytes_in_header_400)
{
	char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/echo",
		"HTTP_X_JUNK=a\x01z", NULL };

	ck_assert(strncmp(serve(env, NULL), "Status: 400", 11) == 0);
}
END_TEST

START_TEST(test_fcgi_serve_bad_escape_400)
{
	char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/echo?q=%g1", NULL };
	char *env2[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/echo?q=%4", NULL };

	ck_assert(strncmp(serve(env, NULL), "Status: 400", 11) == 0);
	ck_assert(strncmp(serve(env2, NULL), "Status: 400", 11) == 0);
}
END_TEST

START_TEST(test_fcgi_serve_echoes_sane_request_id)
{
	char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/echo",
		"HTTP_X_REQUEST_ID=client-req-0001", NULL };
	char *env2[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/echo",
		"HTTP_X_REQUEST_ID=bad id <script>", NULL };

	ck_assert_ptr_nonnull(
	    strstr(serve(env, NULL), "X-Request-Id: client-req-0001\r\n"));
	ck_assert_ptr_null(strstr(serve(env2, NULL), "<script>"));
}
END_TEST

START_TEST(test_fcgi_serve_cgi_parts_without_request_uri)
{
	char *env[] = { "REQUEST_METHOD=GET", "SCRIPT_NAME=/echo",
		"QUERY_STRING=q=1", NULL };

	ck_assert_str_eq(body_of(serve(env, NULL)), "/echo|1|-|0|");
}
END_TEST

/* Any allocation failing mid-request still yields a response. */
START_TEST(test_fcgi_serve_nomem_never_crashes)
{
	char *env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/echo?q=1",
		"CONTENT_LENGTH=2", "HTTP_X_API_KEY=k", NULL };
	struct pv_fcgi_io io = { env, mem_read, mem_write, &m };
	long n;

	for (n = 0; n < 40; n++) {
		memset(&m, 0, sizeof(m));
		m.in = "{}";
		m.inlen = 2;
		pv_arena_fail_after(ctx.arena, n);
		(void)pv_fcgi_serve(&ctx, handle, &io);
		pv_arena_fail_after(ctx.arena, -1);
		ck_assert(strncmp(m.out, "Status: ", 8) == 0 || m.outlen == 0);
	}
	ck_assert(strncmp(m.out, "Status: 200", 11) == 0);
}
END_TEST

/* The value of cookie name in a Cookie header h, copied, or NULL. */
static const char *
cookie_in(const char *h, const char *name)
{
	static char buf[256];
	struct pv_kv hdr = { "cookie", h, strlen(h) };
	struct pv_req req;
	const char *v;
	size_t n;

	memset(&req, 0, sizeof(req));
	req.hdrs = &hdr;
	req.nhdr = 1;
	if ((v = pv_req_cookie(&req, name, &n)) == NULL)
		return NULL;
	ck_assert(v >= h && v + n <= h + strlen(h));
	ck_assert(v[n] == ';' || v[n] == '\0');
	ck_assert_uint_lt(n, sizeof(buf));
	memcpy(buf, v, n);
	buf[n] = '\0';
	return buf;
}

START_TEST(test_http_req_cookie_finds_the_first_pair_of_that_name)
{
	ck_assert_str_eq(cookie_in("pv_session=abc", "pv_session"), "abc");
	ck_assert_str_eq(cookie_in("a=1; pv_session=abc; b=2", "pv_session"),
	    "abc");
	ck_assert_str_eq(cookie_in("a=1;pv_csrf=x;", "pv_csrf"), "x");
	ck_assert_str_eq(cookie_in("pv_csrf=1; pv_csrf=2", "pv_csrf"), "1");
	ck_assert_str_eq(cookie_in("a=1;    b=\"q\"", "b"), "\"q\"");
	ck_assert_str_eq(cookie_in("pv_session=; a=1", "pv_session"), "");
	ck_assert_str_eq(cookie_in("a=x=y", "a"), "x=y");
}
END_TEST

START_TEST(test_http_req_cookie_matches_whole_names_only)
{
	struct pv_req req;
	size_t n = 0;

	ck_assert_ptr_null(cookie_in("pv_session2=abc", "pv_session"));
	ck_assert_ptr_null(cookie_in("xpv_session=abc", "pv_session"));
	ck_assert_ptr_null(cookie_in("pv_session", "pv_session"));
	ck_assert_ptr_null(cookie_in("PV_SESSION=abc", "pv_session"));
	ck_assert_ptr_null(cookie_in("a=pv_session=abc", "pv_session"));
	ck_assert_ptr_null(cookie_in("", "pv_session"));
	ck_assert_ptr_null(cookie_in(" ; ;; ", "pv_session"));
	/*
	 * Found by fuzz_cookie: a name holding '=' matched the start of a
	 * pair's value ("a==b" gave "b" for "a=").  A pair's name ends at
	 * its first '=', so no such name can match.
	 */
	ck_assert_ptr_null(cookie_in("a==b; c=1", "a="));
	ck_assert_ptr_null(cookie_in("x; = ==; b", "= ="));
	ck_assert_str_eq(cookie_in("a==b", "a"), "=b");
	memset(&req, 0, sizeof(req));
	ck_assert_ptr_null(pv_req_cookie(&req, "pv_session", &n));
}
END_TEST

Suite *
fcgi_suite(void)
{
	Suite *s = suite_create("fcgi");
	TCase *tc = tcase_create("serve");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fcgi_serve_get_with_query_and_header);
	tcase_add_test(tc, test_fcgi_serve_post_body);
	tcase_add_test(tc, test_fcgi_serve_route_params);
	tcase_add_test(tc, test_fcgi_serve_head_has_no_body);
	tcase_add_test(tc, test_fcgi_serve_wrong_method_405);
	tcase_add_test(tc, test_fcgi_serve_unknown_path_404);
	tcase_add_test(tc, test_fcgi_serve_body_too_large_413);
	tcase_add_test(tc, test_fcgi_serve_short_body_400);
	tcase_add_test(tc, test_fcgi_serve_bad_content_length_400);
	tcase_add_test(tc, test_fcgi_serve_long_uri_414);
	tcase_add_test(tc, test_fcgi_serve_huge_headers_431);
	tcase_add_test(tc, test_fcgi_serve_control_bytes_in_header_400);
	tcase_add_test(tc, test_fcgi_serve_bad_escape_400);
	tcase_add_test(tc, test_fcgi_serve_echoes_sane_request_id);
	tcase_add_test(tc, test_fcgi_serve_cgi_parts_without_request_uri);
	tcase_add_test(tc, test_fcgi_serve_nomem_never_crashes);
	suite_add_tcase(s, tc);
	tc = tcase_create("cookie");
	tcase_add_test(tc,
	    test_http_req_cookie_finds_the_first_pair_of_that_name);
	tcase_add_test(tc, test_http_req_cookie_matches_whole_names_only);
	suite_add_tcase(s, tc);
	return s;
}
