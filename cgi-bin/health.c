/* cgi-bin/health.c: GET /health.  Logic: lib/pv_health.c. */
#include "pv_fcgi.h"
#include "pv_health.h"

int
main(void)
{
	return pv_fcgi_run("health", pv_health_handle);
}
