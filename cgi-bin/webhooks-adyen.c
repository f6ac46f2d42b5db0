/*
 * cgi-bin/webhooks-adyen.c: POST /webhooks/adyen/{merchant_id}.
 * Logic: lib/pv_payment.c.
 */
#include "pv_fcgi.h"
#include "pv_payment.h"

int
main(void)
{
	return pv_fcgi_run("webhooks-adyen", pv_payment_adyen_webhook);
}
