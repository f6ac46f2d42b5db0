/*
 * cgi-bin/sandbox.c: the sandbox payment provider's customer pages,
 * /sandbox/authenticate/{payment_id}.  Logic: lib/pv_psp_sandbox.c.
 */
#include "pv_fcgi.h"
#include "pv_psp_sandbox.h"

int
main(void)
{
	return pv_fcgi_run("sandbox", pv_sandbox_handle);
}
