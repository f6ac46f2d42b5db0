/*
 * Mail end to end (issue 11): a sandbox merchant (pivotactl
 * connect-sandbox) sells a product named <b>Bold</b> & "quoted"
 * through the real servers; the real pivota-worker sends what the
 * order's events queued (migration 0015) to the loopback SMTP sink
 * (tests/fakes/smtp_sink.py), and the tests read the .eml files it
 * stored:
 *
 *   - a customer e-mail with CR/LF is refused at order creation
 *   - paid: exactly one confirmation (right items, totals in the
 *     order's currency, Message-ID and Date) and one merchant notice;
 *     running the jobs again sends nothing more
 *   - shipped (through the transitions, by SQL): one shipping mail
 *     with carrier, tracking number and link; refunded in part: one
 *     refund mail
 *   - the worker killed in the middle of a send: after a restart the
 *     mail arrives once, with the same Message-ID
 *   - a relay that refuses (550): a dead job and a flagged order event
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "pv_config.h"
#include "pv_db.h"
#include "pv_httpc.h"
#include "pv_proc.h"
#include "pv_test.h"

#define BOLD "<b>Bold</b> & \"quoted\""
#define FROM "orders@pivota.test"

static struct pv_httpc_server servers[8];
static char sink_dir[512];
static pid_t sink_pid = -1;
static struct pv_ctx ctx;

/* Starts the sink on an ephemeral port; points the worker at it. */
static void
start_sink(void)
{
	char line[64], url[96];
	int fds[2];
	FILE *f;
	const char *scratch = getenv("PV_SCRATCH");

	snprintf(sink_dir, sizeof(sink_dir), "%s/mail-%ld",
	    scratch != NULL ? scratch : "/tmp", (long)getpid());
	if (pipe(fds) == -1)
		return;
	sink_pid = fork();
	if (sink_pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execlp("python3", "python3", "tests/fakes/smtp_sink.py",
		    sink_dir, "--port", "0", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	if (f == NULL || fgets(line, sizeof(line), f) == NULL ||
	    strncmp(line, "port ", 5) != 0) {
		fprintf(stderr, "the SMTP sink did not start\n");
		sink_pid = -1;
		return;
	}
	fclose(f);
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", atoi(line + 5));
	setenv("PIVOTA_SMTP_URL", url, 1);
	setenv("PIVOTA_MAIL_FROM", FROM, 1);
	setenv("PIVOTA_TEMPLATE_DIR", "templates", 1);
}

static void
stop_sink(void)
{
	if (sink_pid > 0) {
		kill(sink_pid, SIGTERM);
		waitpid(sink_pid, NULL, 0);
	}
	sink_pid = -1;
	unsetenv("PIVOTA_SMTP_URL");
}

static struct pv_config cfg;

static void
setup(void)
{
	ck_assert_int_ge(pv_httpc_servers(servers, 8), 1);
	ck_assert_msg(sink_pid > 0, "no SMTP sink");
	memset(&ctx, 0, sizeof(ctx));
	memset(&cfg, 0, sizeof(cfg));
	ctx.cfg = &cfg;
	ctx.arena = pv_arena_new(0);
	ctx.db = pv_db_new(getenv("PIVOTA_DATABASE_URL"), "mail_tests");
	ctx.now = time(NULL);
}

static void
teardown(void)
{
	pv_db_free(ctx.db);
	pv_arena_free(ctx.arena);
}

/* Runs q; the first value of the first row ("" if none or NULL). */
static const char *
sql(const char *q, int n, const char *const *p)
{
	struct pv_err err = { 0 };
	PGresult *res;

	ck_assert_msg(pv_db_exec(&ctx, q, n, p, &res, &err) == 0, "%s: %s", q,
	    err.msg);
	if (PQntuples(res) < 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0))
		return "";
	return PQgetvalue(res, 0, 0);
}

/* Runs pivota-worker --once with retries due at once; its status. */
static int
worker_once(void)
{
	char path[512];
	const char *argv[] = { path, "--once", "--id", "mail-test",
		"--backoff-base", "1", "--backoff-cap", "1", NULL };

	snprintf(path, sizeof(path), "%s/bin/pivota-worker",
	    getenv("PV_BUILD_DIR"));
	return pv_proc_run(argv);
}

static void
json_field(const char *out, const char *key, char *dst, size_t size)
{
	struct json_object *o = json_tokener_parse(out);

	ck_assert_msg(o != NULL && pv_httpc_json_str(o, key) != NULL,
	    "pivotactl printed: %s", out);
	snprintf(dst, size, "%s", pv_httpc_json_str(o, key));
	json_object_put(o);
}

/* A sandbox merchant with the mail catalog, and an agent's header. */
static void
shop(char *m, size_t msize, char *email, size_t esize, char *hdr, size_t hsize)
{
	static int seq;
	char out[4096], key[128];

	snprintf(email, esize, "mail-%ld-%d@merchant.example", (long)getpid(),
	    seq++);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "merchant", "create",
	                     "--name", "Mail & Co", "--email", email,
	                     "--currency", "USD", "--json", NULL),
	    0);
	json_field(out, "merchant_id", m, msize);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "products", "import", m,
	                     "tests/fixtures/mail/usd.jsonl", "--json", NULL),
	    0);
	ck_assert_msg(pv_proc_ctl(out, sizeof(out), "merchant",
	                  "connect-sandbox", m, "--json", NULL) == 0,
	    "connect-sandbox: %s", out);
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "agent", "create",
	                     "--name", "mail test", "--per-minute", "100000",
	                     "--merchants", m, "--json", NULL),
	    0);
	json_field(out, "api_key", key, sizeof(key));
	snprintf(hdr, hsize, "X-API-Key: %s", key);
}

static struct json_object *
call(const char *hdr, const char *method, const char *path, const char *body,
    long status)
{
	const char *h[3] = { hdr, "Content-Type: application/json", NULL };
	struct pv_httpc_resp r;
	struct json_object *o;
	char *url = pv_httpc_url(servers[0].base, path);

	ck_assert(pv_httpc_request(&r, method, url, h, body,
	              body != NULL ? strlen(body) : 0) == 0);
	free(url);
	ck_assert_msg(r.status == status, "%s %s: %ld, want %ld: %s", method,
	    path, r.status, status, r.body);
	o = pv_httpc_json(&r);
	ck_assert_ptr_nonnull(o);
	pv_httpc_resp_free(&r);
	return o;
}

/* The public id of the merchant's product titled title. */
static void
product(const char *m, const char *title, char *id, size_t size)
{
	const char *p[2] = { m, title };

	snprintf(id, size, "%s",
	    sql(PV_SQL("SELECT p.public_id FROM products p JOIN merchants m"
	               " ON m.id = p.merchant_id WHERE m.public_id = $1"
	               " AND p.title = $2"),
	        2, p));
	ck_assert_msg(id[0] != '\0', "no product %s", title);
}

static const char *
order_body(const char *m, const char *email, const char *bold, const char *mug)
{
	static char b[2048];

	snprintf(b, sizeof(b),
	    "{\"merchant_id\": \"%s\", \"customer_email\": \"%s\","
	    " \"items\": [{\"product_id\": \"%s\", \"quantity\": 2},"
	    " {\"product_id\": \"%s\", \"quantity\": 1}],"
	    " \"shipping_address\": {\"name\": \"Ada Buyer\", "
	    "\"address_line1\":"
	    " \"1 Main St\", \"city\": \"Town\", \"postal_code\": \"12345\","
	    " \"country\": \"US\"}}",
	    m, email, bold, mug);
	return b;
}

/* Creates and pays an order for customer; its id in order (size 32). */
static void
buy(const char *m, const char *hdr, const char *customer, char *order)
{
	char bold[48], mug[48], body[512];
	struct json_object *o;

	product(m, BOLD, bold, sizeof(bold));
	product(m, "Trail Mug", mug, sizeof(mug));
	o = call(hdr, "POST", "/agent/v1/orders",
	    order_body(m, customer, bold, mug), 200);
	snprintf(order, 32, "%s", pv_httpc_json_str(o, "order_id"));
	json_object_put(o);
	snprintf(body, sizeof(body),
	    "{\"order_id\": \"%s\", \"payment_method\": {\"type\": \"card\","
	    " \"token\": \"pm_card_visa\"}}",
	    order);
	o = call(hdr, "POST", "/agent/v1/payments", body, 200);
	ck_assert_str_eq(pv_httpc_json_str(o, "payment_status"), "succeeded");
	json_object_put(o);
}

/* Decodes quoted-printable (soft breaks joined, CRLF as LF); malloc'd. */
static char *
qp_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	size_t i;
	unsigned v;

	ck_assert_ptr_nonnull(out);
	for (i = 0; i < len; i++) {
		if (s[i] == '=' && i + 2 < len && s[i + 1] == '\r' &&
		    s[i + 2] == '\n')
			i += 2;
		else if (s[i] == '=' && i + 2 < len &&
		    sscanf(s + i + 1, "%2X", &v) == 1) {
			*o++ = (char)v;
			i += 2;
		} else if (s[i] != '\r')
			*o++ = s[i];
	}
	*o = '\0';
	return out;
}

/* One stored message: the raw file and its decoded parts. */
struct mail {
	char *raw;  /* the file */
	char *text; /* decoded text/plain part */
	char *html; /* decoded text/html part */
};

static char *
decoded_part(const char *raw, const char *ct)
{
	const char *p = strstr(raw, ct), *body, *end;

	ck_assert_msg(p != NULL, "no %s part in:\n%s", ct, raw);
	body = strstr(p, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	body += 4;
	end = strstr(body, "\r\n--=_pv_");
	ck_assert_ptr_nonnull(end);
	return qp_decode(body, (size_t)(end - body));
}

/*
 * The stored mails to rcpt whose Subject holds needle, at most max of
 * them into out; how many there are.
 */
static int
mails(const char *rcpt, const char *needle, struct mail *out, int max)
{
	char path[1024], want[300], subj[400];
	struct dirent *d;
	DIR *dir = opendir(sink_dir);
	FILE *f;
	long len;
	char *raw;
	const char *s;
	int n = 0;

	ck_assert_ptr_nonnull(dir);
	snprintf(want, sizeof(want), "X-Sink-Rcpt-To: <%s>\r\n", rcpt);
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.' || strstr(d->d_name, ".eml") == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", sink_dir, d->d_name);
		f = fopen(path, "rb");
		ck_assert_ptr_nonnull(f);
		fseek(f, 0, SEEK_END);
		len = ftell(f);
		rewind(f);
		raw = calloc(1, (size_t)len + 1);
		ck_assert_uint_eq(fread(raw, 1, (size_t)len, f), (size_t)len);
		fclose(f);
		subj[0] = '\0';
		if ((s = strstr(raw, "\r\nSubject: ")) != NULL)
			snprintf(subj, sizeof(subj), "%.*s",
			    (int)strcspn(s + 11, "\r"), s + 11);
		if (strstr(raw, want) == NULL || strstr(subj, needle) == NULL) {
			free(raw);
			continue;
		}
		if (n < max) {
			out[n].raw = raw;
			out[n].text = decoded_part(raw, "text/plain");
			out[n].html = decoded_part(raw, "text/html");
		} else {
			free(raw);
		}
		n++;
	}
	closedir(dir);
	return n;
}

static void
mail_free(struct mail *m)
{
	free(m->raw);
	free(m->text);
	free(m->html);
}

/* The value of header name in raw (up to CRLF), copied to dst. */
static void
header(const char *raw, const char *name, char *dst, size_t size)
{
	char key[64];
	const char *p, *e;

	snprintf(key, sizeof(key), "\r\n%s: ", name);
	p = strstr(raw, key);
	ck_assert_msg(p != NULL, "no %s header", name);
	p += strlen(key);
	e = strstr(p, "\r\n");
	snprintf(dst, size, "%.*s", (int)(e - p), p);
}

/* A field of the order as the agent API shows it. */
static void
order_field(const char *hdr, const char *order, const char *field, char *dst,
    size_t size)
{
	char path[96];
	struct json_object *o;

	snprintf(path, sizeof(path), "/agent/v1/orders/%s", order);
	o = call(hdr, "GET", path, NULL, 200);
	snprintf(path, sizeof(path), "order.%s", field);
	ck_assert_ptr_nonnull(pv_httpc_json_str(o, path));
	snprintf(dst, size, "%s", pv_httpc_json_str(o, path));
	json_object_put(o);
}

START_TEST(test_mail_crlf_email_refused_at_creation)
{
	char m[32], memail[96], hdr[160], bold[48], mug[48];
	struct json_object *o;

	shop(m, sizeof(m), memail, sizeof(memail), hdr, sizeof(hdr));
	product(m, BOLD, bold, sizeof(bold));
	product(m, "Trail Mug", mug, sizeof(mug));
	o = call(hdr, "POST", "/agent/v1/orders",
	    order_body(m, "ada@test.example\\r\\nBcc: victim@evil.example",
	        bold, mug),
	    400);
	ck_assert_msg(strstr(json_object_to_json_string(o), "customer_email") !=
	        NULL,
	    "%s", json_object_to_json_string(o));
	json_object_put(o);
	o = call(hdr, "POST", "/agent/v1/orders",
	    order_body(m, "ada@test.example\\nBcc: victim@evil.example", bold,
	        mug),
	    400);
	json_object_put(o);
}
END_TEST

START_TEST(test_mail_paid_shipped_refunded_once_each)
{
	char m[32], memail[96], hdr[160], order[32], cust[96], buf[256],
	    total[32], needle[160], token[128];
	struct mail ml[4];
	const char *p[2];
	time_t date;

	shop(m, sizeof(m), memail, sizeof(memail), hdr, sizeof(hdr));
	snprintf(cust, sizeof(cust), "ada-%ld@customer.example",
	    (long)getpid());
	buy(m, hdr, cust, order);
	ck_assert_int_eq(worker_once(), 0);

	/* Exactly one confirmation, with the items and totals in USD. */
	ck_assert_int_eq(mails(cust, order, ml, 4), 1);
	ck_assert_ptr_nonnull(strstr(ml[0].text, "2 x " BOLD "  @ 19.99 USD"));
	ck_assert_ptr_nonnull(strstr(ml[0].text, "= 39.98 USD"));
	ck_assert_ptr_nonnull(strstr(ml[0].text, "1 x Trail Mug  @ 7.50 USD"));
	ck_assert_ptr_nonnull(strstr(ml[0].html,
	    "&lt;b&gt;Bold&lt;/b&gt; &amp; &quot;quoted&quot;"));
	ck_assert_ptr_null(strstr(ml[0].html, "<b>Bold</b>"));
	order_field(hdr, order, "total", total, sizeof(total));
	snprintf(buf, sizeof(buf), "Total:    %s USD", total);
	ck_assert_msg(strstr(ml[0].text, buf) != NULL, "no %s in\n%s", buf,
	    ml[0].text);
	header(ml[0].raw, "Subject", buf, sizeof(buf));
	snprintf(needle, sizeof(needle), "Your order %s from Mail & Co", order);
	ck_assert_str_eq(buf, needle);
	header(ml[0].raw, "From", buf, sizeof(buf));
	ck_assert_str_eq(buf, "\"Mail & Co via Pivota\" <" FROM ">");
	header(ml[0].raw, "Reply-To", buf, sizeof(buf));
	snprintf(needle, sizeof(needle), "<%s>", memail);
	ck_assert_str_eq(buf, needle);
	/* Message-ID: the one the log fixed, at our sender's domain. */
	p[0] = order;
	snprintf(token, sizeof(token), "<%s@pivota.test>",
	    sql(PV_SQL("SELECT l.token FROM mail_log l JOIN orders o"
	               " ON o.id = l.order_id WHERE o.public_id = $1"
	               " AND l.template = 'order_confirmation'"),
	        1, p));
	header(ml[0].raw, "Message-ID", buf, sizeof(buf));
	ck_assert_str_eq(buf, token);
	header(ml[0].raw, "Date", buf, sizeof(buf));
	date = curl_getdate(buf, NULL);
	ck_assert_msg(date > 0 && labs((long)(date - time(NULL))) < 600,
	    "bad Date: %s", buf);
	mail_free(&ml[0]);

	/* One notice to the merchant. */
	snprintf(needle, sizeof(needle), "New order %s", order);
	ck_assert_int_eq(mails(memail, needle, ml, 4), 1);
	ck_assert_ptr_nonnull(strstr(ml[0].text, "Customer: "));
	ck_assert_ptr_nonnull(strstr(ml[0].text, cust));
	mail_free(&ml[0]);

	/* Delivered twice by the queue (at least once): no second mail. */
	sql(PV_SQL(
	        "UPDATE jobs SET state = 'queued', run_at = now(),"
	        " locked_by = NULL, locked_until = NULL"
	        " WHERE kind = 'mail.send' AND dedup_key LIKE 'mail.send:' ||"
	        " (SELECT id FROM orders WHERE public_id = $1) || ':%'"),
	    1, p);
	sql(PV_SQL("SELECT pv_mail_queue(o.id, e.seq, o.public_id,"
	           " 'order_confirmation', 'customer', o.customer_email, '{}')"
	           " FROM orders o JOIN order_events e ON e.order_id = o.id"
	           " AND e.type = 'order.paid' WHERE o.public_id = $1"),
	    1, p);
	ck_assert_int_eq(worker_once(), 0);
	ck_assert_int_eq(mails(cust, order, ml, 4), 1);
	mail_free(&ml[0]);
	ck_assert_str_eq(sql(PV_SQL("SELECT count(*) FROM mail_log l JOIN"
	                            " orders o ON o.id = l.order_id WHERE"
	                            " o.public_id = $1 AND l.state = 'sent'"),
	                     1, p),
	    "2");

	/* Shipped, through the transitions: one shipping mail. */
	sql(PV_SQL("UPDATE orders SET carrier = 'UPS',"
	           " tracking_number = '1Z999AA1', tracking_url ="
	           " 'https://track.example/?n=1Z999AA1', status = 'shipped',"
	           " fulfillment_status = 'shipped', shipped_at = now()"
	           " WHERE public_id = $1"),
	    1, p);
	ck_assert_int_eq(worker_once(), 0);
	snprintf(needle, sizeof(needle), "%s from Mail & Co has shipped",
	    order);
	ck_assert_int_eq(mails(cust, needle, ml, 4), 1);
	ck_assert_ptr_nonnull(strstr(ml[0].text, "Carrier:         UPS"));
	ck_assert_ptr_nonnull(strstr(ml[0].text, "Tracking number: 1Z999AA1"));
	ck_assert_ptr_nonnull(strstr(ml[0].html,
	    "<a href=\"https://track.example/?n=1Z999AA1\">"));
	mail_free(&ml[0]);

	/* Refunded in part: one refund mail with the amount. */
	sql(PV_SQL(
	        "UPDATE orders SET refunded_minor = 500,"
	        " status = 'partially_refunded',"
	        " payment_status = 'partially_refunded' WHERE public_id = $1"),
	    1, p);
	ck_assert_int_eq(worker_once(), 0);
	snprintf(needle, sizeof(needle), "Refund for your order %s", order);
	ck_assert_int_eq(mails(cust, needle, ml, 4), 1);
	ck_assert_ptr_nonnull(strstr(ml[0].text, "Refunded so far: 5.00 USD"));
	mail_free(&ml[0]);
	/* Nothing else went to the customer: 3 mails in all. */
	ck_assert_int_eq(mails(cust, order, ml, 0), 3);
}
END_TEST

static int
exists(const char *name)
{
	char path[1024];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", sink_dir, name);
	return stat(path, &st) == 0;
}

static void
touch(const char *name, const char *content)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", sink_dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(content, f);
	fclose(f);
}

static void
rm(const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", sink_dir, name);
	unlink(path);
}

START_TEST(test_mail_worker_killed_mid_send_no_duplicate)
{
	char m[32], memail[96], hdr[160], order[32], cust[96], path[512],
	    id1[256], id2[256];
	struct mail ml[4];
	const char *p[1] = { order };
	pid_t w;
	int i;

	shop(m, sizeof(m), memail, sizeof(memail), hdr, sizeof(hdr));
	snprintf(cust, sizeof(cust), "kill-%ld@customer.example",
	    (long)getpid());
	ck_assert_int_eq(worker_once(), 0); /* nothing else is due */
	buy(m, hdr, cust, order);
	/* Only the customer's mail: the stalled send is then ours. */
	sql(PV_SQL("DELETE FROM jobs WHERE dedup_key LIKE"
	           " 'mail.send:' || (SELECT id FROM orders WHERE public_id"
	           " = $1) || ':%:merchant'"),
	    1, p);
	touch(".stall", "");
	snprintf(path, sizeof(path), "%s/bin/pivota-worker",
	    getenv("PV_BUILD_DIR"));
	w = fork();
	ck_assert_int_ge(w, 0);
	if (w == 0) {
		execl(path, path, "--id", "mail-killed", "--lease", "1",
		    (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200 && !exists(".stalled"); i++)
		usleep(50000);
	ck_assert_msg(exists(".stalled"), "the worker never reached DATA");
	kill(w, SIGKILL);
	waitpid(w, NULL, 0);
	rm(".stall");
	rm(".stalled");
	ck_assert_int_eq(mails(cust, order, ml, 0), 0);
	ck_assert_str_eq(sql(PV_SQL("SELECT l.state || ' ' || l.tries FROM"
	                            " mail_log l JOIN orders o ON o.id ="
	                            " l.order_id WHERE o.public_id = $1 AND"
	                            " l.recipient = 'customer'"),
	                     1, p),
	    "sending 1");
	sleep(2); /* the dead worker's lease runs out */
	ck_assert_int_eq(worker_once(), 0);
	ck_assert_int_eq(mails(cust, order, ml, 4), 1);
	header(ml[0].raw, "Message-ID", id1, sizeof(id1));
	mail_free(&ml[0]);
	snprintf(id2, sizeof(id2), "<%s@pivota.test>",
	    sql(PV_SQL("SELECT l.token FROM mail_log l JOIN orders o ON o.id ="
	               " l.order_id WHERE o.public_id = $1 AND"
	               " l.recipient = 'customer'"),
	        1, p));
	ck_assert_str_eq(id1, id2);
	ck_assert_str_eq(sql(PV_SQL("SELECT l.state || ' ' || l.tries FROM"
	                            " mail_log l JOIN orders o ON o.id ="
	                            " l.order_id WHERE o.public_id = $1 AND"
	                            " l.recipient = 'customer'"),
	                     1, p),
	    "sent 2");
}
END_TEST

START_TEST(test_mail_refused_is_dead_and_flagged)
{
	char m[32], memail[96], hdr[160], order[32], cust[96], out[8192];
	struct mail ml[1];
	const char *p[1] = { order };

	shop(m, sizeof(m), memail, sizeof(memail), hdr, sizeof(hdr));
	snprintf(cust, sizeof(cust), "nobody-%ld@customer.example",
	    (long)getpid());
	ck_assert_int_eq(worker_once(), 0);
	touch(".refuse", "550 5.1.1 no such user");
	buy(m, hdr, cust, order);
	ck_assert_int_eq(worker_once(), 0);
	rm(".refuse");
	ck_assert_int_eq(mails(cust, order, ml, 0), 0);
	ck_assert_str_eq(sql(PV_SQL("SELECT string_agg(j.state, ',')"
	                            " FROM jobs j WHERE j.kind = 'mail.send'"
	                            " AND j.dedup_key LIKE 'mail.send:' ||"
	                            " (SELECT id FROM orders WHERE public_id"
	                            " = $1) || ':%'"),
	                     1, p),
	    "dead,dead");
	ck_assert_str_eq(sql(PV_SQL("SELECT count(*) FROM order_events e JOIN"
	                            " orders o ON o.id = e.order_id WHERE"
	                            " o.public_id = $1 AND e.type ="
	                            " 'mail.failed' AND e.flagged"),
	                     1, p),
	    "2");
	ck_assert_str_eq(sql(PV_SQL("SELECT string_agg(DISTINCT l.state, ',')"
	                            " FROM mail_log l JOIN orders o ON o.id ="
	                            " l.order_id WHERE o.public_id = $1"),
	                     1, p),
	    "failed");
	ck_assert_int_eq(pv_proc_ctl(out, sizeof(out), "jobs", "list",
	                     "--state", "dead", "--kind", "mail.send", NULL),
	    0);
	ck_assert_ptr_nonnull(strstr(out, "mail.send"));
	ck_assert_ptr_nonnull(strstr(out, "550"));
}
END_TEST

Suite *
mail_suite(void)
{
	Suite *s = suite_create("mail");
	TCase *tc = tcase_create("mail");

	tcase_add_unchecked_fixture(tc, start_sink, stop_sink);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_mail_crlf_email_refused_at_creation);
	tcase_add_test(tc, test_mail_paid_shipped_refunded_once_each);
	tcase_add_test(tc, test_mail_worker_killed_mid_send_no_duplicate);
	tcase_add_test(tc, test_mail_refused_is_dead_and_flagged);
	suite_add_tcase(s, tc);
	return s;
}
