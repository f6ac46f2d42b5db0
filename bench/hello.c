/*
 * bench/hello.c: the baseline of `make bench`.  A bare libfcgi program:
 * one accept loop, a fixed 16-byte JSON body, no libpivota-core, no
 * database.  Whatever a real endpoint costs on top of this is ours.
 * Run under a FastCGI server it serves requests until the server closes
 * its socket; run as plain CGI it answers the one request and exits.
 */
#include <stdio.h>
#include <stdlib.h>

#include <fcgiapp.h>

static const char reply[] = "Status: 200 OK\r\n"
                            "Content-Type: application/json\r\n"
                            "Content-Length: 16\r\n"
                            "Cache-Control: no-store\r\n"
                            "\r\n"
                            "{\"status\":\"ok\"}\n";

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
