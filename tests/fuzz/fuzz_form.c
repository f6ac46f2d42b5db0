/*
 * libFuzzer harness for the request front line: pv_http_parse_form()
 * (query strings and form bodies) and the whole of pv_fcgi_serve() fed
 * a CGI environment and body derived from the input.  Properties: no
 * crash or leak; every parameter decodes to at most its encoded length;
 * every response starts with a Status line and is a 2xx, 4xx or 5xx.
 * Built and run by `make fuzz`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "pv_arena.h"
#include "pv_config.h"
#include "pv_db.h"
#include "pv_fcgi.h"
#include "pv_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct io {
	const char *in;  /* body */
	size_t inlen;    /* its length */
	size_t pos;      /* read so far */
	char out[16384]; /* start of the response */
	size_t outlen;   /* bytes kept */
};

static int
rd(void *arg, char *buf, int len)
{
	struct io *io = arg;
	size_t n = io->inlen - io->pos;

	if (n > (size_t)len)
		n = (size_t)len;
	memcpy(buf, io->in + io->pos, n);
	io->pos += n;
	return (int)n;
}

static int
wr(void *arg, const char *buf, int len)
{
	struct io *io = arg;
	size_t n = (size_t)len;

	if (n > sizeof(io->out) - 1 - io->outlen)
		n = sizeof(io->out) - 1 - io->outlen;
	memcpy(io->out + io->outlen, buf, n);
	io->outlen += n;
	io->out[io->outlen] = '\0';
	return 0;
}

/* Echoes the parameters; routes like a real program. */
static int
echo(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	(void)err;
	(void)ctx;
	pv_resp_set(resp, 200, "text/plain", req->query, strlen(req->query));
	return 0;
}

static const struct pv_route routes[] = {
	{ PV_GET | PV_POST, "/x", echo, 0 },
	{ PV_GET, "/x/:a/y/:b", echo, 0 },
};

static int
handle(struct pv_ctx *ctx, const struct pv_req *req, struct pv_resp *resp,
    struct pv_err *err)
{
	return pv_route_dispatch(ctx, routes, 2, req, resp, err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pv_config cfg;
	struct pv_err err = { 0 };
	struct pv_ctx ctx;
	struct pv_kv *kv;
	struct io io;
	char *copy, *nl, *env[8], uri[4200], hdr[4200], cl[32];
	size_t n, i, split;

	memset(&ctx, 0, sizeof(ctx));
	cfg.body_max = 4096;
	ctx.cfg = &cfg;
	ctx.arena = pv_arena_new(1024 * 1024);
	ctx.db = pv_db_new("host=/nonexistent", "fuzz");
	check(ctx.arena != NULL && ctx.db != NULL);

	/* 1. The form decoder on the raw input. */
	if (pv_http_parse_form(ctx.arena, (const char *)data, size, 64, &kv, &n,
	        &err) == 0)
		for (i = 0; i < n; i++)
			check(kv[i].valuelen <= size);
	pv_arena_reset(ctx.arena);

	/* 2. The whole request path: "uri\nheader\nbody". */
	if ((copy = malloc(size + 1)) == NULL)
		abort();
	memcpy(copy, data, size);
	copy[size] = '\0';
	split = strlen(copy); /* NULs end the text parts */
	nl = memchr(copy, '\n', split);
	snprintf(uri, sizeof(uri), "REQUEST_URI=/x%.*s",
	    (int)(nl != NULL ? (size_t)(nl - copy) : split), copy);
	snprintf(hdr, sizeof(hdr), "HTTP_X_FUZZ=%s", nl != NULL ? nl + 1 : "");
	if ((nl = strchr(hdr, '\n')) != NULL)
		*nl = '\0';
	memset(&io, 0, sizeof(io));
	io.in = (const char *)data;
	io.inlen = size;
	snprintf(cl, sizeof(cl), "CONTENT_LENGTH=%zu", size);
	env[0] = size % 2 ? "REQUEST_METHOD=POST" : "REQUEST_METHOD=GET";
	env[1] = uri;
	env[2] = hdr;
	env[3] = cl;
	env[4] = NULL;
	{
		struct pv_fcgi_io fio = { env, rd, wr, &io };

		(void)pv_fcgi_serve(&ctx, handle, &fio);
	}
	check(strncmp(io.out, "Status: ", 8) == 0);
	check(io.out[8] == '2' || io.out[8] == '4' || io.out[8] == '5');

	free(copy);
	pv_db_free(ctx.db);
	pv_arena_free(ctx.arena);
	return 0;
}
