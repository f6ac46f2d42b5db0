/*
 * cgi-bin/account.c: the agent's account: /agent/v1/rate-limits,
 * /agent/v1/analytics/summary, /agent/v1/webhooks.  Logic:
 * lib/pv_account.c.
 */
#include "pv_account.h"
#include "pv_fcgi.h"

int
main(void)
{
	return pv_fcgi_run("account", pv_account_handle);
}
