/*
 * FastCGI and CGI transport (fossil's cgi.c idea: one request model,
 * several transports).  Both paths end in pv_fcgi_serve(), which sees
 * only a CGI environment and two I/O callbacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <fcgiapp.h>

#include "pv_agent.h"
#include "pv_buf.h"
#include "pv_config.h"
#include "pv_db.h"
#include "pv_fcgi.h"
#include "pv_idem.h"
#include "pv_log.h"

#define URI_MAX       8192u
#define HDR_MAX       32768u
#define MAX_PARAMS    64u
#define MAX_HEADERS   100u
#define HEAD_MAX      8192u
#define IDLE_FLUSH_MS 20

extern char **environ;

static const char *
getparam(char **envp, const char *name)
{
	size_t n = strlen(name);

	for (; *envp != NULL; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* splitmix64: a well-mixed 64-bit value from a counter. */
static unsigned long long
mix(unsigned long long z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/*
 * Echoes a sane client request id, else makes "req_" + 24 hex: the
 * process's random salt and its next mixed sequence number, so ids are
 * unique across processes and cost no system call.
 */
static void
request_id(struct pv_ctx *ctx, char **envp)
{
	const char *h;
	size_t n;

	h = getparam(envp, "HTTP_X_REQUEST_ID");
	if (h != NULL && (n = strlen(h)) >= 8 && n < sizeof(ctx->request_id) &&
	    strspn(h,
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	        "0123456789._-") == n) {
		memcpy(ctx->request_id, h, n + 1);
		return;
	}
	if (snprintf(ctx->request_id, sizeof(ctx->request_id),
	        "req_%08x%016llx", ctx->rid_salt, mix(ctx->rid_next++)) < 0)
		ctx->request_id[0] = '\0';
}

/* Collects HTTP_* (and CONTENT_TYPE) as lowercase dashed headers. */
static int
collect_headers(struct pv_ctx *ctx, char **envp, struct pv_req *req,
    struct pv_err *err)
{
	struct pv_kv *h;
	size_t n = 0, total = 0, i, len;
	const char *eq, *name, *v;
	char **e;
	char *lc;

	if ((h = pv_arena_calloc(ctx->arena, MAX_HEADERS, sizeof(*h), err)) ==
	    NULL)
		return -1;
	for (e = envp; *e != NULL; e++) {
		if (strncmp(*e, "HTTP_", 5) == 0)
			name = *e + 5;
		else if (strncmp(*e, "CONTENT_TYPE=", 13) == 0)
			name = *e;
		else
			continue;
		if ((eq = strchr(name, '=')) == NULL)
			continue;
		v = eq + 1;
		len = strlen(v);
		total += (size_t)(eq - name) + len;
		if (total > HDR_MAX || n == MAX_HEADERS) {
			PV_ERR(err, PV_E_HDRTOOBIG, NULL,
			    "request headers are too large");
			return -1;
		}
		for (i = 0; i < len; i++) {
			unsigned char c = (unsigned char)v[i];

			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				PV_ERR(err, PV_E_INVALID, NULL,
				    "a request header holds control bytes");
				return -1;
			}
		}
		if ((lc = pv_arena_strndup(ctx->arena, name,
		         (size_t)(eq - name), err)) == NULL)
			return -1;
		for (i = 0; lc[i] != '\0'; i++)
			lc[i] = lc[i] == '_' ? '-' :
			    (lc[i] >= 'A' && lc[i] <= 'Z') ?
			                       (char)(lc[i] + 32) :
			                       lc[i];
		h[n].name = lc;
		h[n].value = v;
		h[n].valuelen = len;
		n++;
	}
	req->hdrs = h;
	req->nhdr = n;
	return 0;
}

/* Parses CONTENT_LENGTH and reads exactly that many bytes. */
static int
read_body(struct pv_ctx *ctx, char **envp, const struct pv_fcgi_io *io,
    struct pv_req *req, struct pv_err *err)
{
	const char *cl = getparam(envp, "CONTENT_LENGTH");
	size_t want = 0, got = 0, i;
	char *body;
	int n;

	req->body = "";
	req->bodylen = 0;
	if (cl == NULL || *cl == '\0')
		return 0;
	for (i = 0; cl[i] != '\0'; i++) {
		if (cl[i] < '0' || cl[i] > '9' || i > 12) {
			PV_ERR(err, PV_E_INVALID, NULL,
			    "malformed Content-Length");
			return -1;
		}
		want = want * 10 + (size_t)(cl[i] - '0');
	}
	if (want > ctx->cfg->body_max) {
		PV_ERR(err, PV_E_TOOBIG, NULL,
		    "request body is larger than %zu bytes",
		    ctx->cfg->body_max);
		return -1;
	}
	if ((body = pv_arena_alloc(ctx->arena, want + 1, err)) == NULL)
		return -1;
	while (got < want) {
		n = io->read(io->arg, body + got,
		    (int)(want - got > 65536 ? 65536 : want - got));
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != want) {
		PV_ERR(err, PV_E_INVALID, NULL,
		    "request body ended after %zu of %zu bytes", got, want);
		return -1;
	}
	body[want] = '\0';
	req->body = body;
	req->bodylen = want;
	return 0;
}

/* Fills req from the CGI environment; front-line checks live here. */
static int
build_request(struct pv_ctx *ctx, const struct pv_fcgi_io *io,
    struct pv_req *req, struct pv_err *err)
{
	char **envp = io->envp;
	const char *uri, *q, *v;
	struct pv_kv *params;
	char *path;

	v = getparam(envp, "REQUEST_METHOD");
	req->method_name = v != NULL ? v : "GET";
	req->method = pv_http_method(req->method_name);
	req->remote_addr = (v = getparam(envp, "REMOTE_ADDR")) ? v : "";
	req->https =
	    (v = getparam(envp, "HTTPS")) != NULL && strcmp(v, "on") == 0;
	req->path = "/";
	req->query = "";
	if ((uri = getparam(envp, "REQUEST_URI")) == NULL) {
		/* Some plain-CGI servers give only the parts. */
		const char *sn = getparam(envp, "SCRIPT_NAME");
		const char *pi = getparam(envp, "PATH_INFO");
		const char *qs = getparam(envp, "QUERY_STRING");

		if ((uri = pv_arena_printf(ctx->arena, err, "%s%s%s%s",
		         sn != NULL ? sn : "", pi != NULL ? pi : "",
		         qs != NULL && *qs != '\0' ? "?" : "",
		         qs != NULL ? qs : "")) == NULL)
			return -1;
	}
	if (strlen(uri) > URI_MAX) {
		PV_ERR(err, PV_E_URITOOLONG, NULL,
		    "request target is longer than %u bytes", URI_MAX);
		return -1;
	}
	q = strchr(uri, '?');
	if ((path = pv_arena_strndup(ctx->arena, uri,
	         q != NULL ? (size_t)(q - uri) : strlen(uri), err)) == NULL)
		return -1;
	req->path = *path == '/' ? path : "/";
	req->query = q != NULL ? q + 1 : "";
	if (collect_headers(ctx, envp, req, err) == -1 ||
	    pv_http_parse_form(ctx->arena, req->query, strlen(req->query),
	        MAX_PARAMS, &params, &req->nparam, err) == -1)
		return -1;
	req->params = params;
	return read_body(ctx, envp, io, req, err);
}

static int
has_header(const struct pv_resp *resp, const char *name)
{
	size_t i;

	for (i = 0; i < resp->nhdr; i++)
		if (strcasecmp(resp->hdrs[i].name, name) == 0)
			return 1;
	return 0;
}

/* Writes status line, headers and (unless HEAD) the body. */
static int
write_response(struct pv_ctx *ctx, const struct pv_req *req,
    const struct pv_resp *resp, const struct pv_fcgi_io *io)
{
	struct pv_err err = { 0 };
	struct pv_buf b;
	const char *head;
	size_t headlen, i;

	pv_buf_init(&b, ctx->arena, HEAD_MAX);
	pv_buf_printf(&b,
	    "Status: %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "X-Request-Id: %s\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Content-Security-Policy: default-src 'self'; "
	    "frame-ancestors 'none'\r\n",
	    resp->status, pv_http_reason(resp->status),
	    resp->content_type != NULL ? resp->content_type : "text/plain",
	    resp->bodylen, ctx->request_id);
	/* Pages get the older belt-and-braces headers too; JSON needs none. */
	if (resp->content_type != NULL &&
	    strncmp(resp->content_type, "text/html", 9) == 0)
		pv_buf_puts(&b,
		    "X-Frame-Options: DENY\r\n"
		    "Referrer-Policy: same-origin\r\n");
	if (!has_header(resp, "Cache-Control"))
		pv_buf_puts(&b, "Cache-Control: no-store\r\n");
	for (i = 0; i < resp->nhdr; i++)
		pv_buf_printf(&b, "%s: %s\r\n", resp->hdrs[i].name,
		    resp->hdrs[i].value);
	pv_buf_puts(&b, "\r\n");
	if (pv_buf_finish(&b, &head, &headlen, &err) == -1)
		return -1;
	if (io->write(io->arg, head, (int)headlen) == -1)
		return -1;
	if (req->method == PV_HEAD || resp->bodylen == 0)
		return 0;
	return io->write(io->arg, resp->body, (int)resp->bodylen);
}

static double
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Serves one request; see pv_fcgi.h.  Returns -1 if writing failed. */
int
pv_fcgi_serve(struct pv_ctx *ctx, pv_handler fn, const struct pv_fcgi_io *io)
{
	struct pv_err err = { 0 };
	struct pv_resp resp;
	struct pv_req req;
	double ms;
	int rc;

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	ctx->agent = NULL;
	ctx->idem = NULL;
	memset(&ctx->usage, 0, sizeof(ctx->usage));
	clock_gettime(CLOCK_MONOTONIC, &ctx->started);
	ctx->now = time(NULL);
	request_id(ctx, io->envp);
	if (build_request(ctx, io, &req, &err) == -1 ||
	    fn(ctx, &req, &resp, &err) == -1) {
		if (err.code == PV_OK)
			PV_ERR(&err, PV_E_INTERNAL, NULL,
			    "handler failed without saying why");
		pv_resp_error(ctx, &resp, &err);
	} else if (resp.status == 0) {
		PV_ERR(&err, PV_E_INTERNAL, NULL, "handler set no response");
		pv_resp_error(ctx, &resp, &err);
	}
	if (pv_db_in_tx(ctx->db)) {
		/* A handler bug; never leave a transaction open. */
		struct pv_err e2 = { 0 };

		pv_log_msg(PV_LOG_ERROR, "%s left a transaction open",
		    req.path != NULL ? req.path : "?");
		(void)pv_db_end(ctx, 0, &e2);
	}
	pv_idem_finish(ctx, &resp);
	rc = write_response(ctx, &req, &resp, io);
	ms = elapsed_ms(&ctx->started);
	pv_agent_record(ctx, req.method_name, resp.status, (long)(ms * 1000));
	pv_log_request(ctx->request_id, req.method_name, req.path, resp.status,
	    ms, &err);
	pv_arena_reset(ctx->arena);
	return rc;
}

static int
fcgx_read(void *arg, char *buf, int len)
{
	return FCGX_GetStr(buf, len, ((FCGX_Request *)arg)->in);
}

static int
fcgx_write(void *arg, const char *buf, int len)
{
	return FCGX_PutStr(buf, len, ((FCGX_Request *)arg)->out) == len ? 0 :
	                                                                  -1;
}

static int
cgi_read(void *arg, char *buf, int len)
{
	(void)arg;
	return (int)fread(buf, 1, (size_t)len, stdin);
}

static int
cgi_write(void *arg, const char *buf, int len)
{
	(void)arg;
	return fwrite(buf, 1, (size_t)len, stdout) == (size_t)len ? 0 : -1;
}

/*
 * Set by SIGTERM/SIGINT: finish the request in hand, write what is
 * kept, exit.  The one piece of global state, as signals require.
 */
static volatile sig_atomic_t stopping;

static void
on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static int
watch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop; /* no SA_RESTART: poll() must return */
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGTERM, &sa, NULL) == -1 ||
	        sigaction(SIGINT, &sa, NULL) == -1 ?
	    -1 :
	    0;
}

/*
 * Waits until a connection is waiting on the listening socket (1).
 * With usage events kept, waits at most IDLE_FLUSH_MS and then writes
 * them (0), so analytics never lag behind an idle process.  The socket
 * is non-blocking: when several processes share it and another one
 * accepts first, FCGX_Accept_r() says EAGAIN instead of blocking with
 * an event unwritten.
 */
static int
wait_for_request(struct pv_ctx *ctx)
{
	struct pollfd pfd = { 0, POLLIN, 0 };
	int n;

	n = poll(&pfd, 1, ctx->unsent.n > 0 ? IDLE_FLUSH_MS : -1);
	if (n == 0) {
		ctx->now = time(NULL);
		pv_agent_flush(ctx);
	}
	return n > 0;
}

/*
 * Reads what is left of a plain-CGI request body: a program that exits
 * with unread input makes Apache reset the connection, and the client
 * would lose the response (a 413, say).  Bounded by CONTENT_LENGTH,
 * which the server has already capped.
 */
static void
drain_stdin(void)
{
	const char *cl = getenv("CONTENT_LENGTH");
	char buf[65536];
	unsigned long long left;
	size_t n;

	if (cl == NULL || (left = strtoull(cl, NULL, 10)) == 0)
		return;
	while (left > 0 &&
	    (n = fread(buf, 1, left < sizeof(buf) ? (size_t)left : sizeof(buf),
	         stdin)) > 0)
		left -= n;
}

/* The main loop of every program; see pv_fcgi.h. */
int
pv_fcgi_run(const char *prog, pv_handler fn)
{
	struct pv_err err = { 0 };
	struct pv_config cfg;
	struct pv_fcgi_io io;
	FCGX_Request r;
	struct pv_ctx ctx;
	int status = 0, rc;

	if (pv_ctx_open(&ctx, prog, &cfg, &err) == -1) {
		pv_log_msg(PV_LOG_ERROR, "start-up: %s", err.msg);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (FCGX_IsCGI()) {
		io.envp = environ;
		io.read = cgi_read;
		io.write = cgi_write;
		io.arg = NULL;
		status = pv_fcgi_serve(&ctx, fn, &io) == 0 ? 0 : 1;
		fflush(stdout);
		drain_stdin();
		goto out;
	}
	if (FCGX_Init() != 0 || FCGX_InitRequest(&r, 0, 0) != 0) {
		pv_log_msg(PV_LOG_ERROR, "cannot initialise libfcgi");
		status = 2;
		goto out;
	}
	if (watch_signals() == -1 ||
	    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK) == -1) {
		pv_log_msg(PV_LOG_ERROR, "cannot set up the listening socket");
		status = 2;
		goto out;
	}
	while (!stopping) {
		rc = wait_for_request(&ctx);
		if (rc == 0)
			continue; /* idle, or a signal */
		rc = FCGX_Accept_r(&r);
		if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR)
			continue; /* another process took the connection */
		if (rc < 0)
			break;
		io.envp = r.envp;
		io.read = fcgx_read;
		io.write = fcgx_write;
		io.arg = &r;
		(void)pv_fcgi_serve(&ctx, fn, &io);
		FCGX_Finish_r(&r);
	}
	FCGX_Free(&r, 1);
out:
	/* The last usage event must not die with the process. */
	pv_agent_flush(&ctx);
	pv_db_settle(&ctx);
	pv_ctx_close(&ctx, &cfg);
	return status;
}
