/*
 * Outbound agent webhooks and the events pull endpoint through the
 * real servers (API.md §4, issue 6 acceptance): an agent registers an
 * endpoint on a loopback receiver (tests/support pv_testsrv) that
 * answers 500 for a while; orders are created, paid on the sandbox
 * provider and cancelled through lighttpd; the real pivota-worker runs
 * in cron mode.  While the receiver fails, only first events of each
 * order are attempted (the per-order guard); once it recovers it gets
 * every event exactly once, in per-order sequence, each signature
 * verifying with the documented scheme (HMAC-SHA256 of "t.body",
 * computed here with OpenSSL, not with our library).  GET
 * /agent/v1/events returns the same events, page by page, through
 * every server; another agent sees none of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pv_httpc.h"
#include "pv_proc.h"
#include "pv_test.h"
#include "pv_testsrv.h"

#define MAX_SERVERS 8
#define MAX_EVENTS  16
#define FIXTURES    "tests/fixtures/orders/"

static struct pv_httpc_server servers[MAX_SERVERS];
static size_t nservers;

/* One event as the receiver or the pull endpoint saw it. */
struct seen {
	char id[64];    /* evt_... */
	char type[32];  /* order.paid, ... */
	char order[32]; /* ORD_... */
	int seq;        /* per-order sequence */
};

static void
setup(void)
{
	nservers = pv_httpc_servers(servers, MAX_SERVERS);
	ck_assert_msg(nservers >= 1,
	    "need the servers: run these through tests/integration/run.sh");
}

static const char *
str(struct json_object *o, const char *path)
{
	const char *s = pv_httpc_json_str(o, path);

	ck_assert_msg(s != NULL, "no string %s in %s", path,
	    json_object_to_json_string(o));
	return s;
}

static void
json_field(const char *out, const char *key, char *dst, size_t size)
{
	struct json_object *o = json_tokener_parse(out);

	ck_assert_msg(o != NULL, "pivotactl printed: %s", out);
	ck_assert_int_lt(snprintf(dst, size, "%s", str(o, key)), (int)size);
	json_object_put(o);
}

/* method path on s as the agent of header; asserts status; the body. */
static struct json_object *
call(const struct pv_httpc_server *s, const char *header, const char *method,
    const char *path, const char *body, long status)
{
	const char *h[3] = { header, NULL, NULL };
	struct pv_httpc_resp r;
	struct json_object *o;
	char *url = pv_httpc_url(s->base, path);

	if (body != NULL)
		h[1] = "Content-Type: application/json";
	ck_assert_msg(pv_httpc_request(&r, method, url, h, body,
	                  body != NULL ? strlen(body) : 0) == 0,
	    "%s: %s", s->name, r.error);
	free(url);
	ck_assert_msg(r.status == status, "%s %s %s: %ld, want %ld: %s",
	    s->name, method, path, r.status, status, r.body);
	o = pv_httpc_json(&r);
	ck_assert_msg(o != NULL, "%s %s: not JSON: %s", s->name, path, r.body);
	pv_httpc_resp_free(&r);
	return o;
}

/* A sandbox merchant with the USD catalogue; its id in m (size 32). */
static void
merchant(char *m)
{
	static int n;
	char email[96], out[4096];

	snprintf(email, sizeof(email), "awh-%ld-%d@test.example",
	    (long)getpid(), n++);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "create",
	                     "--name", "Webhook Shop", "--email", email,
	                     "--currency", "USD", "--json", NULL),
	    0);
	json_field(out, "merchant_id", m, 32);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "products", "import", m,
	                     FIXTURES "usd.jsonl", "--json", NULL),
	    0);
	ck_assert_msg(pv_proc_ctl(out, sizeof(out), "merchant",
	                  "connect-sandbox", m, "--json", NULL) == 0,
	    "connect-sandbox: %s", out);
}

/* An agent for merchant m; its X-API-Key header line in header. */
static void
agent(const char *m, char *header, size_t size)
{
	char out[4096], key[128];

	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "agent", "create",
	                     "--name", "webhook test", "--per-minute", "100000",
	                     "--merchants", m, "--json", NULL),
	    0);
	json_field(out, "api_key", key, sizeof(key));
	snprintf(header, size, "X-API-Key: %s", key);
}

/* Creates an order of one mug at m; its id in id (size 32). */
static void
order(const struct pv_httpc_server *s, const char *key, const char *m, char *id)
{
	struct json_object *o, *p;
	char path[256], body[1024];

	snprintf(path, sizeof(path),
	    "/agent/v1/products/search?merchant_id=%s&q=mug", m);
	o = call(s, key, "GET", path, NULL, 200);
	p = json_object_array_get_idx(pv_httpc_json_get(o, "products"), 0);
	ck_assert_msg(p != NULL, "no mug at %s", m);
	snprintf(body, sizeof(body),
	    "{\"merchant_id\": \"%s\", \"customer_email\": \"b@test.example\","
	    " \"items\": [{\"product_id\": \"%s\", \"quantity\": 1}],"
	    " \"shipping_address\": {\"name\": \"Buyer\", \"address_line1\":"
	    " \"1 Main St\", \"city\": \"Town\", \"postal_code\": \"12345\","
	    " \"country\": \"US\"}}",
	    m, str(p, "id"));
	json_object_put(o);
	o = call(s, key, "POST", "/agent/v1/orders/create", body, 200);
	snprintf(id, 32, "%s", str(o, "order_id"));
	json_object_put(o);
}

/* Runs pivota-worker --once with sub-second retry delays. */
static void
worker_once(void)
{
	char path[512];
	const char *argv[] = { path, "--once", "--id", "awh-test",
		"--backoff-base", "200", "--backoff-cap", "400", NULL };

	ck_assert_int_lt(snprintf(path, sizeof(path), "%s/bin/pivota-worker",
	                     getenv("PV_BUILD_DIR")),
	    (int)sizeof(path));
	ck_assert_int_eq(pv_proc_run(argv), 0);
}

static void
nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Verifies header "t=<unix>,v1=<hex>" over body with secret, the way
 * docs/api.md tells agents to: HMAC-SHA256(secret, t + "." + body).
 */
static void
verify(const char *header, const char *secret, const char *body, size_t len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1], *msg;
	const char *t, *v1, *comma;
	size_t tlen, i;
	long ts;

	ck_assert_ptr_nonnull(header);
	ck_assert_msg(strncmp(header, "t=", 2) == 0, "%s", header);
	t = header + 2;
	comma = strchr(t, ',');
	ck_assert_ptr_nonnull(comma);
	tlen = (size_t)(comma - t);
	ck_assert_msg(strncmp(comma, ",v1=", 4) == 0, "%s", header);
	v1 = comma + 4;
	ts = strtol(t, NULL, 10);
	ck_assert_msg(labs(ts - (long)time(NULL)) < 300, "stale t: %s", header);
	msg = malloc(tlen + 1 + len);
	ck_assert_ptr_nonnull(msg);
	memcpy(msg, t, tlen);
	msg[tlen] = '.';
	memcpy(msg + tlen + 1, body, len);
	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), secret, (int)strlen(secret),
	    (const unsigned char *)msg, tlen + 1 + len, mac, &maclen));
	free(msg);
	for (i = 0; i < maclen; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	ck_assert_msg(strlen(v1) == 2 * maclen &&
	        CRYPTO_memcmp(v1, hex, 2 * maclen) == 0,
	    "signature %s does not verify", header);
}

/* Reads an event object into *e; the order snapshot must match. */
static void
read_event(struct json_object *o, struct seen *e)
{
	struct json_object *v;

	snprintf(e->id, sizeof(e->id), "%s", str(o, "id"));
	snprintf(e->type, sizeof(e->type), "%s", str(o, "type"));
	snprintf(e->order, sizeof(e->order), "%s", str(o, "order_id"));
	v = pv_httpc_json_get(o, "seq");
	ck_assert_ptr_nonnull(v);
	e->seq = json_object_get_int(v);
	ck_assert_ptr_nonnull(pv_httpc_json_get(o, "created"));
	ck_assert_str_eq(str(o, "data.order.order_id"), e->order);
}

/* Request i of the receiver as an event, its signature verified. */
static void
received(struct pv_testsrv *srv, size_t i, const char *secret, struct seen *e)
{
	const struct pv_testsrv_req *r = pv_testsrv_req(srv, i);
	struct json_object *o;

	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->method, "POST");
	ck_assert_str_eq(r->target, "/hook");
	ck_assert_str_eq(pv_testsrv_header(r, "Content-Type"),
	    "application/json");
	verify(pv_testsrv_header(r, "Pivota-Signature"), secret, r->body,
	    r->bodylen);
	o = json_tokener_parse(r->body);
	ck_assert_msg(o != NULL, "not JSON: %s", r->body);
	read_event(o, e);
	json_object_put(o);
}

/* Pulls every event of the agent, limit per page; returns how many. */
static size_t
pull(const struct pv_httpc_server *s, const char *key, int limit,
    struct seen *out, size_t max)
{
	struct json_object *o, *arr;
	char path[256];
	size_t n = 0, i, pages = 0;
	int more;

	do {
		if (n == 0)
			snprintf(path, sizeof(path),
			    "/agent/v1/events?limit=%d", limit);
		else
			snprintf(path, sizeof(path),
			    "/agent/v1/events?after=%s&limit=%d", out[n - 1].id,
			    limit);
		o = call(s, key, "GET", path, NULL, 200);
		arr = pv_httpc_json_get(o, "events");
		ck_assert_ptr_nonnull(arr);
		ck_assert_int_le(json_object_array_length(arr), limit);
		for (i = 0; i < json_object_array_length(arr); i++) {
			ck_assert_uint_lt(n, max);
			read_event(json_object_array_get_idx(arr, i),
			    &out[n++]);
		}
		more =
		    json_object_get_boolean(pv_httpc_json_get(o, "has_more"));
		json_object_put(o);
		ck_assert_uint_lt(++pages, 50);
	} while (more);
	return n;
}

/* Index of the event with id in list, or -1. */
static int
find(const struct seen *list, size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i].id, id) == 0)
			return (int)i;
	return -1;
}

/* Checks each order's events in list run 1, 2, ... in list order. */
static void
in_sequence(const struct seen *list, size_t n, const char *o1, const char *o2)
{
	const char *orders[2] = { o1, o2 };
	size_t i, k;
	int next;

	for (k = 0; k < 2; k++) {
		next = 1;
		for (i = 0; i < n; i++)
			if (strcmp(list[i].order, orders[k]) == 0)
				ck_assert_msg(list[i].seq == next++,
				    "%s: seq %d where %d was due", orders[k],
				    list[i].seq, next - 1);
		ck_assert_int_eq(next, 3); /* two events each */
	}
}

START_TEST(test_agent_webhooks_retried_in_sequence_and_pulled)
{
	static const struct pv_testsrv_resp fail = { .status = 500 };
	static const struct pv_testsrv_resp ok = { .status = 200,
		.body = "{}" };
	const struct pv_httpc_server *s = &servers[0];
	struct pv_testsrv *srv = pv_testsrv_start();
	struct seen got[MAX_EVENTS], pulled[MAX_EVENTS], e;
	struct json_object *o;
	char m[32], key[160], other[160], secret[128], body[512];
	char o1[32], o2[32], path[128];
	size_t i, k, n, nget = 0, sv;
	int round;

	ck_assert_ptr_nonnull(srv);
	pv_testsrv_set_default(srv, &fail);
	merchant(m);
	agent(m, key, sizeof(key));
	agent(m, other, sizeof(other));
	snprintf(body, sizeof(body), "{\"url\": \"%s/hook\"}",
	    pv_testsrv_url(srv));
	o = call(s, key, "POST", "/agent/v1/webhooks", body, 200);
	snprintf(secret, sizeof(secret), "%s", str(o, "secret"));
	ck_assert_int_eq(strncmp(secret, "whsec_", 6), 0);
	json_object_put(o);

	/* Order 1 is paid (sandbox), order 2 is cancelled. */
	order(s, key, m, o1);
	snprintf(body, sizeof(body),
	    "{\"order_id\": \"%s\", \"payment_method\": {\"type\": \"card\","
	    " \"token\": \"pm_card_visa\"}}",
	    o1);
	json_object_put(call(s, key, "POST", "/agent/v1/payments", body, 200));
	order(s, key, m, o2);
	snprintf(path, sizeof(path), "/agent/v1/orders/%s/cancel", o2);
	json_object_put(call(s, key, "POST", path, "{}", 200));

	/* The receiver fails: only seq 1 of each order is ever tried. */
	for (round = 0; round < 4; round++) {
		worker_once();
		nap(450);
	}
	k = pv_testsrv_nreq(srv);
	ck_assert_msg(k >= 2, "only %zu attempts while failing", k);
	for (i = 0; i < k; i++) {
		received(srv, i, secret, &e);
		ck_assert_msg(e.seq == 1,
		    "%s seq %d sent before seq 1 was taken", e.order, e.seq);
	}

	/* It recovers: every event arrives, once, in per-order sequence. */
	pv_testsrv_set_default(srv, &ok);
	for (round = 0; round < 60 && nget < 4; round++) {
		worker_once();
		for (i = k + nget; i < pv_testsrv_nreq(srv); i++) {
			received(srv, i, secret, &e);
			ck_assert_msg(find(got, nget, e.id) == -1,
			    "%s delivered twice", e.id);
			ck_assert_uint_lt(nget, MAX_EVENTS);
			got[nget++] = e;
		}
		nap(300);
	}
	worker_once();
	nap(300);
	ck_assert_uint_eq(pv_testsrv_nreq(srv), k + nget);
	ck_assert_uint_eq(nget, 4);
	in_sequence(got, nget, o1, o2);
	for (i = 0; i < nget; i++)
		ck_assert_str_eq(got[i].type,
		    strcmp(got[i].order, o1) == 0 ?
		        (got[i].seq == 1 ? "order.created" : "order.paid") :
		        (got[i].seq == 1 ? "order.created" :
		                           "order.cancelled"));

	/* The pull endpoint: the same events, on every server. */
	for (sv = 0; sv < nservers; sv++) {
		n = pull(&servers[sv], key, sv == 0 ? 1 : 3, pulled,
		    MAX_EVENTS);
		ck_assert_msg(n == nget, "%s: %zu events pulled",
		    servers[sv].name, n);
		in_sequence(pulled, n, o1, o2);
		for (i = 0; i < n; i++)
			ck_assert_msg(find(got, nget, pulled[i].id) >= 0,
			    "%s pulled, never delivered", pulled[i].id);
		/* Another agent sees none, and cannot use the ids. */
		ck_assert_uint_eq(pull(&servers[sv], other, 20, pulled,
		                      MAX_EVENTS),
		    0);
		snprintf(path, sizeof(path), "/agent/v1/events?after=%s",
		    got[0].id);
		json_object_put(
		    call(&servers[sv], other, "GET", path, NULL, 400));
	}
	pv_testsrv_stop(srv);
}
END_TEST

START_TEST(test_agent_events_bad_input)
{
	const struct pv_httpc_server *s = &servers[0];
	char m[32], key[160];

	merchant(m);
	agent(m, key, sizeof(key));
	json_object_put(
	    call(s, key, "GET", "/agent/v1/events?limit=0", NULL, 400));
	json_object_put(
	    call(s, key, "GET", "/agent/v1/events?limit=101", NULL, 400));
	json_object_put(
	    call(s, key, "GET", "/agent/v1/events?after=ORD_1", NULL, 400));
	json_object_put(
	    call(s, key, "GET", "/agent/v1/events?cursor=x", NULL, 400));
	json_object_put(
	    call(s, "X-API-Key: nope", "GET", "/agent/v1/events", NULL, 401));
}
END_TEST

Suite *
agent_webhooks_suite(void)
{
	Suite *s = suite_create("agent_webhooks");
	TCase *tc = tcase_create("agent_webhooks");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_agent_webhooks_retried_in_sequence_and_pulled);
	tcase_add_test(tc, test_agent_events_bad_input);
	suite_add_tcase(s, tc);
	return s;
}
