/*
 * cgi-bin/webhooks-stripe.c: POST /webhooks/stripe/{merchant_id}
 * (Stripe, and the built-in sandbox provider).  Logic: lib/pv_payment.c.
 */
#include "pv_fcgi.h"
#include "pv_payment.h"

int
main(void)
{
	return pv_fcgi_run("webhooks-stripe", pv_payment_stripe_webhook);
}
