/* cgi-bin/dashboard.c: the merchant dashboard, /dashboard/...  Logic:
 * lib/pv_dash*.c. */
#include "pv_dash.h"
#include "pv_fcgi.h"

int
main(void)
{
	return pv_fcgi_run("dashboard", pv_dash_handle);
}
