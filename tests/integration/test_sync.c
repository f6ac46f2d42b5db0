/*
 * The Shopify catalogue sync through the real programs (issue 4
 * acceptance): a merchant connected to the loopback fake store with
 * the real pivotactl, 1,000 products synced by the real pivota-worker
 * (run with --once, as cron would) over 40 pages, with a throttled
 * answer and a run of 500s injected mid-way that outlasts the
 * client's own retries, so the job itself fails and resumes from its
 * checkpoint.  Every product must then be found through
 * /agent/v1/products/search exactly once, and a second sync must
 * change nothing.
 */
#include <sys/types.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pv_fake.h"
#include "pv_httpc.h"
#include "pv_proc.h"
#include "pv_test.h"

#define MAX_SERVERS 8
#define FAKE        "tests/fakes/fake_shopify.py"
#define TOKEN       "shpat_fake_sync_0123456789"
#define NPRODUCTS   1000

static struct pv_httpc_server servers[MAX_SERVERS];
static size_t nservers;
static struct pv_fake *fake;

static void
setup(void)
{
	nservers = pv_httpc_servers(servers, MAX_SERVERS);
	ck_assert_msg(nservers >= 1,
	    "need the servers: run these through tests/integration/run.sh");
	fake = pv_fake_start(FAKE,
	    (const char *const[]){ "--token", TOKEN, NULL });
	ck_assert_msg(fake != NULL, "cannot start " FAKE);
}

static void
teardown(void)
{
	pv_fake_stop(fake);
	fake = NULL;
}

/* The member at path, of any type, as text; NULL if absent or null. */
static const char *
jstr(struct json_object *o, const char *path)
{
	return json_object_get_string(pv_httpc_json_get(o, path));
}

/* The member at path of pivotactl's --json output, copied to dst. */
static void
json_field(const char *out, const char *path, char *dst, size_t size)
{
	struct json_object *o = json_tokener_parse(out);

	ck_assert_msg(o != NULL, "pivotactl printed: %s", out);
	ck_assert_msg(jstr(o, path) != NULL, "no %s in %s", path, out);
	ck_assert_int_lt(snprintf(dst, size, "%s", jstr(o, path)), (int)size);
	json_object_put(o);
}

/* Runs pivota-worker --once with retries due at once; its status. */
static int
worker_once(void)
{
	char path[512];
	const char *argv[] = { path, "--once", "--id", "sync-test",
		"--backoff-base", "1", "--backoff-cap", "1", NULL };

	ck_assert_int_lt(snprintf(path, sizeof(path), "%s/bin/pivota-worker",
	                     getenv("PV_BUILD_DIR")),
	    (int)sizeof(path));
	return pv_proc_run(argv);
}

/* Starts pivota-worker as a daemon; its pid. */
static pid_t
start_worker(void)
{
	char path[512];
	pid_t pid;

	ck_assert_int_lt(snprintf(path, sizeof(path), "%s/bin/pivota-worker",
	                     getenv("PV_BUILD_DIR")),
	    (int)sizeof(path));
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl(path, path, "--id", "sync-daemon", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Runs the worker until the sync is done; the final --status output. */
static void
sync_to_the_end(const char *id, char *out, size_t size)
{
	char state[32];
	int i;

	for (i = 0; i < 10; i++) {
		ck_assert_int_eq(worker_once(), 0);
		ck_assert_int_eq(pv_proc_ctl(out, size, "sync-products", id,
		                     "--status", "--json", NULL),
		    0);
		json_field(out, "state", state, sizeof(state));
		if (strcmp(state, "done") == 0)
			return;
		ck_assert_msg(strcmp(state, "running") == 0 ||
		        strcmp(state, "queued") == 0,
		    "sync state %s: %s", state, out);
	}
	ck_abort_msg("the sync did not finish: %s", out);
}

/* How many products queries the fake answered with status. */
static int
product_pages(int status)
{
	struct json_object *o =
	    pv_fake_call(fake, "GET", "/__fake/requests", NULL);
	struct json_object *arr, *r;
	size_t i;
	int n = 0;

	ck_assert_ptr_nonnull(o);
	arr = pv_httpc_json_get(o, "requests");
	ck_assert_ptr_nonnull(arr);
	for (i = 0; i < json_object_array_length(arr); i++) {
		r = json_object_array_get_idx(arr, i);
		if (jstr(r, "root") != NULL &&
		    strcmp(jstr(r, "root"), "products") == 0 &&
		    jstr(r, "status") != NULL &&
		    strtol(jstr(r, "status"), NULL, 10) == status)
			n++;
	}
	json_object_put(o);
	return n;
}

/*
 * Walks /agent/v1/products/search?extra by cursor, 100 a page, on the
 * servers in turn; marks seen[n] for the product titled "... No. n"
 * and fails on any product seen twice.  Returns how many were seen and
 * sets *total to pagination.total.
 */
static int
walk(const char *header, const char *extra, unsigned char *seen, long *total)
{
	const char *h[] = { header, NULL };
	struct pv_httpc_resp r;
	struct json_object *o, *arr;
	char path[1024], cursor[512] = "", *url;
	const char *title, *no, *next;
	size_t i, page = 0;
	long n;
	int count = 0;

	memset(seen, 0, NPRODUCTS + 1);
	for (;;) {
		ck_assert_int_lt(
		    snprintf(path, sizeof(path),
		        "/agent/v1/products/search?%s&limit=100%s%s", extra,
		        *cursor != '\0' ? "&cursor=" : "", cursor),
		    (int)sizeof(path));
		url = pv_httpc_url(servers[page++ % nservers].base, path);
		ck_assert_msg(pv_httpc_get(&r, url, h) == 0, "%s", r.error);
		free(url);
		ck_assert_msg(r.status == 200, "GET %s: %ld %s", path, r.status,
		    r.body);
		o = pv_httpc_json(&r);
		pv_httpc_resp_free(&r);
		ck_assert_ptr_nonnull(o);
		arr = pv_httpc_json_get(o, "products");
		ck_assert_ptr_nonnull(arr);
		for (i = 0; i < json_object_array_length(arr); i++) {
			title =
			    pv_httpc_json_str(json_object_array_get_idx(arr, i),
			        "title");
			ck_assert_ptr_nonnull(title);
			no = strstr(title, " No. ");
			ck_assert_msg(no != NULL, "title %s", title);
			n = strtol(no + 5, NULL, 10);
			ck_assert_msg(n >= 1 && n <= NPRODUCTS, "title %s",
			    title);
			ck_assert_msg(!seen[n], "%s appears twice", title);
			seen[n] = 1;
			count++;
		}
		ck_assert_ptr_nonnull(jstr(o, "pagination.total"));
		*total = strtol(jstr(o, "pagination.total"), NULL, 10);
		next = pv_httpc_json_str(o, "pagination.next_cursor");
		if (next == NULL || *next == '\0') {
			json_object_put(o);
			return count;
		}
		ck_assert_int_lt(snprintf(cursor, sizeof(cursor), "%s", next),
		    (int)sizeof(cursor));
		json_object_put(o);
	}
}

START_TEST(test_sync_thousand_products_searchable_once)
{
	char out[8192], id[32], shop[64], key[128], header[160], extra[96];
	char v[64], body[128];
	unsigned char seen[NPRODUCTS + 1];
	struct timespec t0, t1;
	pid_t worker;
	long total;
	int i, wst;

	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "create",
	                     "--name", "Synced Store", "--email",
	                     "synced@test.example", "--json", NULL),
	    0);
	json_field(out, "merchant_id", id, sizeof(id));
	snprintf(shop, sizeof(shop), "s%s.myshopify.com", id + 4);
	snprintf(body, sizeof(body), "{\"shop\": \"%s\"}", shop);
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/config", body), 0);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant",
	                     "connect-shopify", id, "--shop", shop, "--token",
	                     TOKEN, "--api-base", pv_fake_url(fake), "--json",
	                     NULL),
	    0);
	/*
	 * 1,000 products, 2,000 variants.  The bucket refills fast enough
	 * to keep the test short (PV_SYNC_RESTORE_RATE=100 gives Shopify's
	 * Standard plan, for measuring); the throttle below still makes
	 * the client wait one out.
	 */
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/catalog",
	                     "{\"count\": 1000}"),
	    0);
	snprintf(body, sizeof(body), "{\"restore_rate\": %s}",
	    getenv("PV_SYNC_RESTORE_RATE") != NULL ?
	        getenv("PV_SYNC_RESTORE_RATE") :
	        "5000.0");
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/config", body), 0);
	/* Page 4 throttled once; page 16 answers 500 three times over. */
	ck_assert_int_eq(pv_fake_do(fake, "POST", "/__fake/faults",
	                     "{\"next\": [{\"delay_ms\": 1}, {\"delay_ms\": 1},"
	                     " {\"delay_ms\": 1}, \"throttle\","
	                     " {\"delay_ms\": 1}, {\"delay_ms\": 1},"
	                     " {\"delay_ms\": 1}, {\"delay_ms\": 1},"
	                     " {\"delay_ms\": 1}, {\"delay_ms\": 1},"
	                     " {\"delay_ms\": 1}, {\"delay_ms\": 1},"
	                     " {\"delay_ms\": 1}, {\"delay_ms\": 1},"
	                     " {\"delay_ms\": 1}, {\"delay_ms\": 1},"
	                     " 500, 500, 500]}"),
	    0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "sync-products", id,
	                     "--json", NULL),
	    0);
	json_field(out, "enqueued", v, sizeof(v));
	ck_assert_str_eq(v, "true");
	/*
	 * The first attempt fails on page 16 with 15 pages committed; the
	 * retry (due in 1 ms: the same --once run may take it) resumes.
	 */
	sync_to_the_end(id, out, sizeof(out));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr,
	    "sync of %d products (40 pages, a throttle, 3 x 500): "
	    "%.2f s\n",
	    NPRODUCTS,
	    (double)(t1.tv_sec - t0.tv_sec) +
	        (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	json_field(out, "products", v, sizeof(v));
	ck_assert_str_eq(v, "1000");
	json_field(out, "pages", v, sizeof(v));
	ck_assert_str_eq(v, "40");
	json_field(out, "job_attempts", v, sizeof(v));
	ck_assert_str_eq(v, "2");
	json_field(out, "result.created", v, sizeof(v));
	ck_assert_str_eq(v, "1000");
	/*
	 * Resumed after page 15: 40 pages answered (plus the throttled
	 * answer, which Shopify sends with 200), none asked twice.
	 */
	ck_assert_int_eq(product_pages(200), 41);
	ck_assert_int_eq(product_pages(500), 3);

	/* Searchable, all of them, once each: browsing and by a word. */
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "agent", "create",
	                     "--name", "sync test", "--per-minute", "100000",
	                     "--merchants", id, "--json", NULL),
	    0);
	json_field(out, "api_key", key, sizeof(key));
	snprintf(header, sizeof(header), "X-API-Key: %s", key);
	snprintf(extra, sizeof(extra), "merchant_id=%s", id);
	ck_assert_int_eq(walk(header, extra, seen, &total), NPRODUCTS);
	ck_assert_int_eq(total, NPRODUCTS);
	for (i = 1; i <= NPRODUCTS; i++)
		ck_assert_msg(seen[i], "product No. %d is missing", i);
	ck_assert_int_eq(walk(header, "q=fake", seen, &total), NPRODUCTS);
	ck_assert_int_eq(total, NPRODUCTS);

	/*
	 * A second sync of the unchanged store changes nothing.  This one
	 * runs under a worker daemon, followed by sync-products --wait.
	 */
	worker = start_worker();
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "sync-products", id,
	                     "--wait", "--timeout", "60", "--json", NULL),
	    0);
	kill(worker, SIGTERM);
	ck_assert_int_eq(waitpid(worker, &wst, 0), worker);
	ck_assert(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
	json_field(out, "run", v, sizeof(v));
	ck_assert_str_eq(v, "2");
	json_field(out, "state", v, sizeof(v));
	ck_assert_str_eq(v, "done");
	json_field(out, "result.unchanged", v, sizeof(v));
	ck_assert_str_eq(v, "1000");
	json_field(out, "result.created", v, sizeof(v));
	ck_assert_str_eq(v, "0");
	json_field(out, "result.updated", v, sizeof(v));
	ck_assert_str_eq(v, "0");
	json_field(out, "result.archived", v, sizeof(v));
	ck_assert_str_eq(v, "0");
	ck_assert_int_eq(walk(header, extra, seen, &total), NPRODUCTS);
	ck_assert_int_eq(total, NPRODUCTS);
}
END_TEST

Suite *
sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *tc = tcase_create("sync");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_sync_thousand_products_searchable_once);
	suite_add_tcase(s, tc);
	return s;
}
