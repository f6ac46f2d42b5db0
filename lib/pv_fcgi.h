#ifndef PV_FCGI_H
#define PV_FCGI_H

#include "pv_http.h"

/*
 * The FastCGI runtime: the only user of libfcgi.  pv_fcgi_run() is the
 * whole main() of a program.  It loads the configuration, opens the
 * per-process state (arena, database handle), then answers requests
 * until the web server stops it: for each one it builds a struct
 * pv_req, calls the handler, adds the standard headers (request id,
 * security headers), writes the response, logs one line and resets the
 * arena.  Started without a FastCGI socket on stdin it answers exactly
 * one request as a plain CGI program, for shared hosting.
 *
 * Front-line checks happen before the handler: request target over
 * 8 KiB (414), headers over 32 KiB (431), control bytes in a header
 * (400), body over PIVOTA_BODY_MAX (413), short body (400), malformed
 * query string (400).
 */

/* Serves requests with fn.  Returns the process exit status. */
int pv_fcgi_run(const char *prog, pv_handler fn);

/*
 * Serves one request described by a CGI environment (envp, NULL-
 * terminated "NAME=value") and a body, writing the raw CGI response
 * (Status line, headers, blank line, body) through put(); exposed so
 * tests exercise the exact code path the programs use.
 */
struct pv_fcgi_io {
	char **envp; /* CGI variables */
	/* Reads up to len body bytes; returns bytes read, 0 at end. */
	int (*read)(void *io, char *buf, int len);
	/* Writes len bytes; returns -1 on error. */
	int (*write)(void *io, const char *buf, int len);
	void *arg; /* passed back to read/write as io */
};

int pv_fcgi_serve(struct pv_ctx *ctx, pv_handler fn,
    const struct pv_fcgi_io *io);

#endif /* PV_FCGI_H */
