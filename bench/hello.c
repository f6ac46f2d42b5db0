/*
 * bench/hello.c: the baseline of `make bench`.  A bare libfcgi program:
 * one accept loop, a fixed reply, no libpivota-core, no database.  The
 * reply has the same headers and the same body size as GET /health, so
 * the web server does the same work for both and the ratio measures
 * only what our runtime costs on top of bare libfcgi.
 * Run under a FastCGI server it serves requests until the server closes
 * its socket; run as plain CGI it answers the one request and exits.
 */
#include <stdio.h>
#include <stdlib.h>

#include <fcgiapp.h>

static const char reply[] =
    "Status: 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 97\r\n"
    "X-Request-Id: req_000000000000000000000000\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'\r\n"
    "Cache-Control: no-store\r\n"
    "\r\n"
    "{\"status\":\"ok\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"version\":"
    "\"0.1.0\",\"services\":{\"database\":\"ok\"}}";

int
main(void)
{
	FCGX_Request req;

	if (FCGX_IsCGI()) {
		fputs(reply, stdout);
		return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	}
	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
		return EXIT_FAILURE;
	while (FCGX_Accept_r(&req) >= 0) {
		FCGX_PutStr(reply, (int)sizeof(reply) - 1, req.out);
		FCGX_Finish_r(&req);
	}
	FCGX_Free(&req, 1);
	return EXIT_SUCCESS;
}
