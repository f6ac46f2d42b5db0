/*
 * The merchant dashboard through lighttpd (issue 8): sign-up and login
 * with forms and cookies as a browser sends them, the login throttle,
 * CSRF (a form POST without the token is 403 and changes nothing),
 * XSS (a product titled <script>alert(1)</script> and an order e-mail
 * with "onmouseover= come out as text), tenancy (merchant B asking for
 * merchant A's order gets 404), logout everywhere, and every page
 * valid HTML by `tidy -e`.  Rows the forms cannot make (a product, an
 * agent's order) are written with psql as the database owner.  The
 * catalog sync from the dashboard: "Sync now" (CSRF-checked, one job
 * however often it is pressed), its progress page reloading itself
 * until the real pivota-worker has copied the loopback fake store,
 * then showing the products (markup in a title as text), and none of
 * it for another merchant.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pv_fake.h"
#include "pv_httpc.h"
#include "pv_proc.h"
#include "pv_test.h"

#define MAX_SERVERS 8
#define PASSWORD    "correct horse 42"
#define SHOPIFY     "tests/fakes/fake_shopify.py"
#define SHOP_TOKEN  "shpat_fake_dash_0123456789"

static struct pv_httpc_server servers[MAX_SERVERS];
static size_t nservers;
static const char *base;

/* A browser: its cookies (pv_session, pv_csrf) and last CSRF token. */
struct browser {
	char session[80]; /* pv_session value, or "" */
	char pre[40];     /* pv_csrf value, or "" */
	char csrf[80];    /* the csrf field of the last page, or "" */
};

static void
setup(void)
{
	size_t i;

	nservers = pv_httpc_servers(servers, MAX_SERVERS);
	base = NULL;
	for (i = 0; i < nservers; i++)
		if (strcmp(servers[i].name, "lighttpd") == 0)
			base = servers[i].base;
	ck_assert_msg(base != NULL,
	    "no lighttpd: run these through tests/integration/run.sh");
}

/* Remembers the cookies a response sets. */
static void
take_cookies(struct browser *b, const struct pv_httpc_resp *r)
{
	size_t i;

	for (i = 0; i < r->hn; i++) {
		const char *v = r->hv[i].value;
		char *dst = NULL;
		size_t size = 0, n;

		if (strcasecmp(r->hv[i].name, "Set-Cookie") != 0)
			continue;
		if (strncmp(v, "pv_session=", 11) == 0) {
			dst = b->session;
			size = sizeof(b->session);
			v += 11;
		} else if (strncmp(v, "pv_csrf=", 8) == 0) {
			dst = b->pre;
			size = sizeof(b->pre);
			v += 8;
		}
		if (dst == NULL)
			continue;
		n = strcspn(v, ";");
		ck_assert_uint_lt(n, size);
		memcpy(dst, v, n);
		dst[n] = '\0';
	}
}

/* Remembers the page's CSRF token (the first csrf field). */
static void
take_csrf(struct browser *b, const struct pv_httpc_resp *r)
{
	const char *p =
	    r->body ? strstr(r->body, "name=\"csrf\" value=\"") : NULL;
	size_t n;

	b->csrf[0] = '\0';
	if (p == NULL)
		return;
	p += strlen("name=\"csrf\" value=\"");
	n = strcspn(p, "\"");
	ck_assert_uint_lt(n, sizeof(b->csrf));
	memcpy(b->csrf, p, n);
	b->csrf[n] = '\0';
}

/* Fails unless tidy finds no errors in the body (warnings are fine). */
static void
tidy_ok(const struct pv_httpc_resp *r, const char *what)
{
	char path[] = "/tmp/pv-dash-tidy-XXXXXX";
	const char *argv[] = { "tidy", "-e", "-q", "-utf8", path, NULL };
	int fd = mkstemp(path), rc;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, r->body, r->body_len), (ssize_t)r->body_len);
	close(fd);
	rc = pv_proc_run(argv);
	unlink(path);
	ck_assert_msg(rc == 0 || rc == 1, "tidy found errors in %s (%d)", what,
	    rc);
}

static void
request(struct browser *b, struct pv_httpc_resp *r, const char *method,
    const char *path, const char *form)
{
	char cookie[200], *url = pv_httpc_url(base, path);
	const char *hdr[3] = { cookie,
		"Content-Type: application/x-www-form-urlencoded", NULL };

	snprintf(cookie, sizeof(cookie), "Cookie: pv_session=%s; pv_csrf=%s",
	    b->session, b->pre);
	ck_assert_ptr_nonnull(url);
	ck_assert_msg(pv_httpc_request(r, method, url, hdr, form,
	                  form ? strlen(form) : 0) == 0,
	    "%s %s: %s", method, path, r->error);
	free(url);
	take_cookies(b, r);
}

/* GET path: 200, valid HTML; the page's CSRF token is remembered. */
static void
page(struct browser *b, struct pv_httpc_resp *r, const char *path)
{
	request(b, r, "GET", path, NULL);
	ck_assert_msg(r->status == 200, "GET %s: %ld", path, r->status);
	ck_assert_ptr_nonnull(
	    strstr(pv_httpc_header(r, "Content-Type"), "text/html"));
	tidy_ok(r, path);
	take_csrf(b, r);
}

/* POST form (a printf format) to path with the CSRF token first. */
static long
post(struct browser *b, const char *path, const char *fmt, ...)
{
	struct pv_httpc_resp r;
	char form[1024], rest[900];
	va_list ap;
	long status;

	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	snprintf(form, sizeof(form), "csrf=%s&%s", b->csrf, rest);
	request(b, &r, "POST", path, form);
	status = r.status;
	if (status != 303)
		tidy_ok(&r, path);
	pv_httpc_resp_free(&r);
	return status;
}

/* Signs up a new merchant as email; b is then logged in. */
static void
signup(struct browser *b, const char *name, char *email, size_t size)
{
	static int seq;
	struct pv_httpc_resp r;
	long st;

	memset(b, 0, sizeof(*b));
	snprintf(email, size, "dash-%ld-%d@test.example", (long)getpid(),
	    seq++);
	page(b, &r, "/dashboard/signup");
	ck_assert(b->pre[0] != '\0');
	pv_httpc_resp_free(&r);
	st = post(b, "/dashboard/signup",
	    "business_name=%s&store_url=https%%3A%%2F%%2Fshop.example"
	    "&email=%s&password=correct+horse+42",
	    name, email);
	ck_assert_int_eq(st, 303);
	ck_assert_msg(b->session[0] != '\0', "no session cookie");
}

/* Runs one SQL statement as the superuser; output into out. */
static void
sql(char *out, size_t size, const char *fmt, ...)
{
	char q[2048];
	const char *admin = getenv("PV_PG_ADMIN_URL");
	const char *argv[] = { "psql", "-X", "-q", "-tA", "-v",
		"ON_ERROR_STOP=1", admin, "-c", q, NULL };
	va_list ap;

	ck_assert_ptr_nonnull(admin);
	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	ck_assert_int_eq(pv_proc_capture(argv, out, size), 0);
	out[strcspn(out, "\n")] = '\0';
}

START_TEST(test_dashboard_signup_pages_valid)
{
	static const char *const pages[] = { "/dashboard/",
		"/dashboard/?days=7", "/dashboard/?days=90",
		"/dashboard/orders",
		"/dashboard/orders?status=paid&q=nobody%40x.example",
		"/dashboard/products", "/dashboard/connections",
		"/dashboard/agents", "/dashboard/settings" };
	struct browser b;
	struct pv_httpc_resp r;
	char email[96];
	const char *sc;
	size_t i;

	signup(&b, "Tidy+Shop", email, sizeof(email));
	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		page(&b, &r, pages[i]);
		ck_assert_ptr_nonnull(strstr(r.body, "Tidy Shop"));
		pv_httpc_resp_free(&r);
	}
	page(&b, &r, "/dashboard/");
	ck_assert_ptr_nonnull(strstr(r.body, "<svg"));
	pv_httpc_resp_free(&r);
	/* The login page, and its cookie attributes. */
	memset(&b, 0, sizeof(b));
	request(&b, &r, "GET", "/dashboard/login", NULL);
	ck_assert_int_eq(r.status, 200);
	tidy_ok(&r, "login");
	sc = pv_httpc_header(&r, "Set-Cookie");
	ck_assert_ptr_nonnull(sc);
	ck_assert_ptr_nonnull(strstr(sc, "HttpOnly"));
	ck_assert_ptr_nonnull(strstr(sc, "SameSite=Lax"));
	ck_assert_ptr_nonnull(
	    strstr(pv_httpc_header(&r, "Content-Security-Policy"),
	        "default-src 'self'"));
	pv_httpc_resp_free(&r);
	/* Without a session: pages send you to log in, POSTs are 403. */
	request(&b, &r, "GET", "/dashboard/orders", NULL);
	ck_assert_int_eq(r.status, 303);
	ck_assert_str_eq(pv_httpc_header(&r, "Location"), "/dashboard/login");
	pv_httpc_resp_free(&r);
	ck_assert_int_eq(post(&b, "/dashboard/settings/tax",
	                     "country=US&rate=5"),
	    403);
	request(&b, &r, "GET", "/dashboard/nope", NULL);
	ck_assert_int_eq(r.status, 404);
	pv_httpc_resp_free(&r);
}
END_TEST

START_TEST(test_dashboard_login_logout_throttle)
{
	struct browser b, other;
	struct pv_httpc_resp r;
	char email[96];
	int i;

	signup(&b, "Login+Shop", email, sizeof(email));
	/* Logging in again gives a second session. */
	memset(&other, 0, sizeof(other));
	page(&other, &r, "/dashboard/login");
	pv_httpc_resp_free(&r);
	ck_assert_int_eq(post(&other, "/dashboard/login",
	                     "email=%s&password=wrong+password+1", email),
	    401);
	ck_assert_int_eq(post(&other, "/dashboard/login",
	                     "email=%s&password=correct+horse+42", email),
	    303);
	ck_assert(other.session[0] != '\0');
	ck_assert_str_ne(other.session, b.session);
	page(&other, &r, "/dashboard/settings");
	pv_httpc_resp_free(&r);
	/* Logout everywhere ends both sessions. */
	ck_assert_int_eq(post(&other, "/dashboard/logout", "everywhere=1"),
	    303);
	request(&b, &r, "GET", "/dashboard/", NULL);
	ck_assert_int_eq(r.status, 303);
	pv_httpc_resp_free(&r);
	/* Five wrong passwords (one above), then even the right one is
	 * refused. */
	memset(&other, 0, sizeof(other));
	page(&other, &r, "/dashboard/login");
	pv_httpc_resp_free(&r);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(post(&other, "/dashboard/login",
		                     "email=%s&password=wrong+password+1",
		                     email),
		    401);
	ck_assert_int_eq(post(&other, "/dashboard/login",
	                     "email=%s&password=correct+horse+42", email),
	    429);
}
END_TEST

START_TEST(test_dashboard_csrf_refused_nothing_changes)
{
	struct browser b;
	struct pv_httpc_resp r;
	char email[96], saved[80];

	signup(&b, "Csrf+Shop", email, sizeof(email));
	page(&b, &r, "/dashboard/settings");
	pv_httpc_resp_free(&r);
	snprintf(saved, sizeof(saved), "%s", b.csrf);
	/* No token, then a wrong one: 403 and no rule saved. */
	b.csrf[0] = '\0';
	ck_assert_int_eq(post(&b, "/dashboard/settings/shipping",
	                     "country=DE&currency=EUR&rate=4.90&min_days=2"
	                     "&max_days=4"),
	    403);
	snprintf(b.csrf, sizeof(b.csrf), "%064d", 0);
	ck_assert_int_eq(post(&b, "/dashboard/settings/shipping",
	                     "country=DE&currency=EUR&rate=4.90&min_days=2"
	                     "&max_days=4"),
	    403);
	/* A pre-session token is not a session's token either. */
	snprintf(b.csrf, sizeof(b.csrf), "%s", b.pre);
	ck_assert_int_eq(post(&b, "/dashboard/logout", "everywhere=1"), 403);
	page(&b, &r, "/dashboard/settings");
	ck_assert_ptr_null(strstr(r.body, "<td>DE</td>"));
	pv_httpc_resp_free(&r);
	snprintf(b.csrf, sizeof(b.csrf), "%s", saved);
	ck_assert_int_eq(post(&b, "/dashboard/settings/shipping",
	                     "country=DE&currency=EUR&rate=4.90&min_days=2"
	                     "&max_days=4"),
	    303);
	ck_assert_int_eq(post(&b, "/dashboard/settings/tax",
	                     "country=US&region=NY&rate=8.875&on_shipping=1"),
	    303);
	page(&b, &r, "/dashboard/settings");
	ck_assert_ptr_nonnull(strstr(r.body, "<td>DE</td>"));
	ck_assert_ptr_nonnull(strstr(r.body, "4.90"));
	ck_assert_ptr_nonnull(strstr(r.body, "8.8750"));
	pv_httpc_resp_free(&r);
	/* Bad input is a 400 page, still valid HTML. */
	ck_assert_int_eq(post(&b, "/dashboard/settings/tax",
	                     "country=US&rate=abc"),
	    400);
	/* The login form needs its own token too. */
	memset(&b, 0, sizeof(b));
	ck_assert_int_eq(post(&b, "/dashboard/login",
	                     "email=%s&password=correct+horse+42", email),
	    403);
}
END_TEST

START_TEST(test_dashboard_xss_and_tenancy)
{
	struct browser a, b;
	struct pv_httpc_resp r;
	char email_a[96], email_b[96], out[256], path[128], order[32];
	char form[256];

	signup(&a, "Shop+A", email_a, sizeof(email_a));
	signup(&b, "Shop+B", email_b, sizeof(email_b));
	snprintf(order, sizeof(order), "ORD_%08lX%08X",
	    (long)getpid() & 0xffffffff, 0xDA5Bu);
	sql(out, sizeof(out),
	    "WITH m AS (SELECT m.id FROM merchants m JOIN merchant_users u "
	    "ON u.merchant_id = m.id WHERE u.email = '%s'), "
	    "p AS (INSERT INTO products (public_id, merchant_id, handle, "
	    "title, currency, currency_exponent) SELECT 'prod_%016lx', id, "
	    "'xss-%ld', '<script>alert(1)</script>', 'USD', 2 FROM m "
	    "RETURNING id), "
	    "ag AS (INSERT INTO agents (public_id, name) VALUES "
	    "('agt_%016lx', 'Agent <b>Smith</b>') RETURNING id) "
	    "INSERT INTO orders (public_id, merchant_id, agent_id, currency, "
	    "currency_exponent, subtotal_minor, shipping_minor, tax_minor, "
	    "total_minor, customer_email, ship_name, ship_line1, ship_city, "
	    "ship_postal_code, ship_country, psp, expires_at) SELECT '%s', "
	    "m.id, ag.id, 'USD', 2, 4000, 500, 300, 4800, "
	    "'x\"onmouseover=alert(1)@evil.example', 'N', 'L', 'C', '1', "
	    "'US', 'sandbox', now() + interval '1 hour' FROM m, ag, p "
	    "RETURNING public_id",
	    email_a, (unsigned long)getpid(), (long)getpid(),
	    (unsigned long)getpid(), order);
	ck_assert_str_eq(out, order);

	page(&a, &r, "/dashboard/products");
	ck_assert_ptr_null(strstr(r.body, "<script>alert(1)"));
	ck_assert_ptr_nonnull(
	    strstr(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	pv_httpc_resp_free(&r);

	page(&a, &r, "/dashboard/orders");
	ck_assert_ptr_null(strstr(r.body, "\"onmouseover"));
	ck_assert_ptr_nonnull(strstr(r.body, "x&quot;onmouseover=alert(1)"));
	ck_assert_ptr_nonnull(strstr(r.body, "48.00"));
	ck_assert_ptr_nonnull(strstr(r.body, "Agent &lt;b&gt;Smith"));
	ck_assert_ptr_nonnull(strstr(r.body, order));
	pv_httpc_resp_free(&r);

	page(&a, &r,
	    "/dashboard/orders?q=X%22onmouseover%3Dalert(1)%40evil.example");
	ck_assert_ptr_nonnull(strstr(r.body, order));
	pv_httpc_resp_free(&r);

	snprintf(path, sizeof(path), "/dashboard/orders/%s", order);
	page(&a, &r, path);
	ck_assert_ptr_null(strstr(r.body, "\"onmouseover"));
	ck_assert_ptr_nonnull(strstr(r.body, "order.created"));
	ck_assert_ptr_nonnull(strstr(r.body, "48.00 USD"));
	pv_httpc_resp_free(&r);

	page(&a, &r, "/dashboard/?days=7");
	ck_assert_ptr_nonnull(strstr(r.body, "of 1 created"));
	ck_assert_ptr_nonnull(strstr(r.body, "Agent &lt;b&gt;Smith"));
	pv_httpc_resp_free(&r);

	request(&a, &r, "GET", "/dashboard/orders.csv", NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, order));
	ck_assert_ptr_nonnull(strstr(r.body, "\"x\"\"onmouseover"));
	pv_httpc_resp_free(&r);

	/* Merchant B sees none of it: 404, empty lists. */
	request(&b, &r, "GET", path, NULL);
	ck_assert_int_eq(r.status, 404);
	tidy_ok(&r, "404");
	pv_httpc_resp_free(&r);
	page(&b, &r, "/dashboard/orders");
	ck_assert_ptr_null(strstr(r.body, order));
	pv_httpc_resp_free(&r);
	request(&b, &r, "GET", "/dashboard/orders.csv", NULL);
	ck_assert_ptr_null(strstr(r.body, order));
	pv_httpc_resp_free(&r);
	page(&b, &r, "/dashboard/products");
	ck_assert_ptr_null(strstr(r.body, "alert(1)"));
	pv_httpc_resp_free(&r);

	/* Agents: A's buyer is listed for A only; blocking needs CSRF. */
	page(&b, &r, "/dashboard/agents");
	ck_assert_ptr_null(strstr(r.body, "Smith"));
	pv_httpc_resp_free(&r);
	page(&a, &r, "/dashboard/agents");
	ck_assert_ptr_nonnull(strstr(r.body, "Agent &lt;b&gt;Smith"));
	/* One order, not paid: 1 created, 0 paid, 0.00 GMV. */
	ck_assert_ptr_nonnull(strstr(r.body,
	    "<td class=\"num\">1</td><td class=\"num\">0</td>"
	    "<td class=\"num\">0.00</td>"));
	pv_httpc_resp_free(&r);
	snprintf(form, sizeof(form), "agent=agt_%016lx&action=block",
	    (unsigned long)getpid());
	request(&a, &r, "POST", "/dashboard/agents/block", form);
	ck_assert_int_eq(r.status, 403);
	pv_httpc_resp_free(&r);
	sql(out, sizeof(out),
	    "SELECT count(*) FROM merchant_agent_blocks b JOIN agents a ON "
	    "a.id = b.agent_id WHERE a.public_id = 'agt_%016lx'",
	    (unsigned long)getpid());
	ck_assert_str_eq(out, "0");
	snprintf(form, sizeof(form), "csrf=%s&agent=agt_%016lx&action=block",
	    a.csrf, (unsigned long)getpid());
	request(&a, &r, "POST", "/dashboard/agents/block", form);
	ck_assert_int_eq(r.status, 303);
	pv_httpc_resp_free(&r);
	sql(out, sizeof(out),
	    "SELECT string_agg(u.email, ',') FROM merchant_agent_blocks b "
	    "JOIN agents a ON a.id = b.agent_id JOIN merchant_users u ON "
	    "u.merchant_id = b.merchant_id WHERE a.public_id = 'agt_%016lx'",
	    (unsigned long)getpid());
	ck_assert_str_eq(out, email_a);
	page(&a, &r, "/dashboard/agents");
	ck_assert_ptr_nonnull(strstr(r.body, "blocked"));
	pv_httpc_resp_free(&r);
	/* Mark shipped: CSRF first, then tenancy, then an unpaid order. */
	snprintf(path, sizeof(path), "/dashboard/orders/%s/ship", order);
	request(&a, &r, "POST", path, "status=in_transit&carrier=UPS");
	ck_assert_int_eq(r.status, 403);
	pv_httpc_resp_free(&r);
	page(&b, &r, "/dashboard/agents");
	pv_httpc_resp_free(&r);
	snprintf(form, sizeof(form), "csrf=%s&status=in_transit", b.csrf);
	request(&b, &r, "POST", path, form);
	ck_assert_int_eq(r.status, 404);
	pv_httpc_resp_free(&r);
	snprintf(form, sizeof(form), "csrf=%s&status=in_transit", a.csrf);
	request(&a, &r, "POST", path, form);
	ck_assert_int_eq(r.status, 409);
	pv_httpc_resp_free(&r);
	sql(out, sizeof(out),
	    "SELECT count(*) FROM shipments s JOIN orders o ON o.id = "
	    "s.order_id WHERE o.public_id = '%s'",
	    order);
	ck_assert_str_eq(out, "0");
	snprintf(form, sizeof(form),
	    "csrf=%s&agent=agt_nosuchagent0000&action=block", a.csrf);
	request(&a, &r, "POST", "/dashboard/agents/block", form);
	ck_assert_int_eq(r.status, 404);
	pv_httpc_resp_free(&r);
}
END_TEST

/* The response's header name, or "" if it has none. */
static const char *
header_or_empty(const struct pv_httpc_resp *r, const char *name)
{
	const char *v = pv_httpc_header(r, name);

	return v != NULL ? v : "";
}

START_TEST(test_dashboard_sync_progress)
{
	struct browser a, b;
	struct pv_httpc_resp r;
	struct pv_fake *fake;
	char email_a[96], email_b[96], out[256], id[32], shop[64], body[160];
	char saved[80];
	const char *jobs_sql =
	    "SELECT count(*) FROM jobs j JOIN merchants m ON j.dedup_key "
	    "LIKE 'catalog.sync:' || m.id || ':%%' WHERE m.public_id = '%s'";

	signup(&a, "Sync+Shop", email_a, sizeof(email_a));
	signup(&b, "Other+Shop", email_b, sizeof(email_b));
	sql(id, sizeof(id),
	    "SELECT m.public_id FROM merchants m JOIN merchant_users u ON "
	    "u.merchant_id = m.id WHERE u.email = '%s'",
	    email_a);
	/* No store yet: the page says so, and "Sync now" is a 404. */
	page(&a, &r, "/dashboard/products/sync");
	ck_assert_ptr_nonnull(strstr(r.body, "No store connected"));
	pv_httpc_resp_free(&r);
	ck_assert_int_eq(post(&a, "/dashboard/products/sync", "x=1"), 404);

	/* A store of three products, one titled with markup. */
	fake = pv_fake_start(SHOPIFY,
	    (const char *const[]){ "--token", SHOP_TOKEN, NULL });
	ck_assert_msg(fake != NULL, "cannot start " SHOPIFY);
	snprintf(shop, sizeof(shop), "d%s.myshopify.com", id + 4);
	snprintf(body, sizeof(body), "{\"shop\": \"%s\"}", shop);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/config", body), 0);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/catalog",
	                     "{\"count\": 3, \"titles\": {\"2\": "
	                     "\"<script>alert(1)</script>\"}}"),
	    0);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant",
	                     "connect-shopify", id, "--shop", shop, "--token",
	                     SHOP_TOKEN, "--api-base", pv_fake_url(fake), NULL),
	    0);
	/* Onboarding: the connections page offers the first sync. */
	page(&a, &r, "/dashboard/connections");
	ck_assert_ptr_nonnull(strstr(r.body, "Sync catalog now"));
	pv_httpc_resp_free(&r);
	page(&a, &r, "/dashboard/products/sync");
	ck_assert_ptr_nonnull(strstr(r.body, "No sync yet."));
	ck_assert_str_eq(header_or_empty(&r, "Refresh"), "");
	pv_httpc_resp_free(&r);
	page(&a, &r, "/dashboard/products");
	ck_assert_ptr_nonnull(strstr(r.body, "No sync yet."));
	ck_assert_ptr_nonnull(
	    strstr(r.body, "href=\"/dashboard/products/sync\""));
	pv_httpc_resp_free(&r);

	/* Without the CSRF token: 403 and no job. */
	snprintf(saved, sizeof(saved), "%s", a.csrf);
	a.csrf[0] = '\0';
	ck_assert_int_eq(post(&a, "/dashboard/products/sync", "x=1"), 403);
	sql(out, sizeof(out), jobs_sql, id);
	ck_assert_str_eq(out, "0");
	snprintf(a.csrf, sizeof(a.csrf), "%s", saved);
	snprintf(body, sizeof(body), "csrf=%s", a.csrf);
	request(&a, &r, "POST", "/dashboard/products/sync", body);
	ck_assert_int_eq(r.status, 303);
	ck_assert_str_eq(pv_httpc_header(&r, "Location"),
	    "/dashboard/products/sync?m=sync");
	pv_httpc_resp_free(&r);
	/* Pressed again while queued: the same run, still one job. */
	request(&a, &r, "POST", "/dashboard/products/sync", body);
	ck_assert_int_eq(r.status, 303);
	ck_assert_str_eq(pv_httpc_header(&r, "Location"),
	    "/dashboard/products/sync?m=syncing");
	pv_httpc_resp_free(&r);
	sql(out, sizeof(out), jobs_sql, id);
	ck_assert_str_eq(out, "1");

	/* Queued: the page reloads itself, without the flash. */
	page(&a, &r, "/dashboard/products/sync?m=sync");
	ck_assert_str_eq(header_or_empty(&r, "Refresh"),
	    "2; url=/dashboard/products/sync");
	ck_assert_ptr_nonnull(strstr(r.body, "Catalog sync queued."));
	ck_assert_ptr_nonnull(strstr(r.body, "Queued: waiting for the worker"));
	ck_assert_ptr_nonnull(strstr(r.body, shop));
	pv_httpc_resp_free(&r);

	/* Merchant B sees nothing of it and cannot start it. */
	page(&b, &r, "/dashboard/products/sync");
	ck_assert_ptr_nonnull(strstr(r.body, "No store connected"));
	ck_assert_ptr_null(strstr(r.body, shop));
	ck_assert_str_eq(header_or_empty(&r, "Refresh"), "");
	pv_httpc_resp_free(&r);
	ck_assert_int_eq(post(&b, "/dashboard/products/sync", "x=1"), 404);
	sql(out, sizeof(out), jobs_sql, id);
	ck_assert_str_eq(out, "1");

	/* The worker runs the job; the page shows the result. */
	ck_assert_int_eq(pv_proc_worker_once("dash-sync"), 0);
	page(&a, &r, "/dashboard/products/sync");
	ck_assert_str_eq(header_or_empty(&r, "Refresh"), "");
	ck_assert_ptr_nonnull(strstr(r.body,
	    "Done: 3 products copied from your store in 1 page."));
	ck_assert_ptr_nonnull(
	    strstr(r.body, "<dt>New products</dt><dd>3</dd>"));
	ck_assert_ptr_nonnull(strstr(r.body,
	    "3 products from your store in the catalog, 3 active."));
	ck_assert_ptr_nonnull(strstr(r.body, "Initech Backpack No. 3"));
	ck_assert_ptr_nonnull(
	    strstr(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	ck_assert_ptr_null(strstr(r.body, "<script>alert(1)"));
	pv_httpc_resp_free(&r);
	page(&a, &r, "/dashboard/products");
	ck_assert_ptr_nonnull(strstr(r.body, "<span class=\"badge done\">"));
	ck_assert_ptr_nonnull(strstr(r.body, "3 products, 3 active."));
	pv_httpc_resp_free(&r);
	page(&b, &r, "/dashboard/products");
	ck_assert_ptr_null(strstr(r.body, "alert(1)"));
	pv_httpc_resp_free(&r);
	pv_fake_stop(fake);
}
END_TEST

Suite *
dashboard_suite(void)
{
	Suite *s = suite_create("dashboard");
	TCase *tc = tcase_create("lighttpd");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_dashboard_signup_pages_valid);
	tcase_add_test(tc, test_dashboard_login_logout_throttle);
	tcase_add_test(tc, test_dashboard_csrf_refused_nothing_changes);
	tcase_add_test(tc, test_dashboard_xss_and_tenancy);
	tcase_add_test(tc, test_dashboard_sync_progress);
	suite_add_tcase(s, tc);
	return s;
}
