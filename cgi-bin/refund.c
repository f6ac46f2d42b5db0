/*
 * cgi-bin/refund.c: POST /agent/v1/orders/{order_id}/refund.
 * Logic: lib/pv_refund.c.
 */
#include "pv_fcgi.h"
#include "pv_refund.h"

int
main(void)
{
	return pv_fcgi_run("refund", pv_refund_handle);
}
