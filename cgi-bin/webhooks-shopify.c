/*
 * cgi-bin/webhooks-shopify.c: POST /webhooks/shopify/{merchant_id}.
 * Logic: lib/pv_shopify_hooks.c.
 */
#include "pv_fcgi.h"
#include "pv_shopify_hooks.h"

int
main(void)
{
	return pv_fcgi_run("webhooks-shopify", pv_shopify_hooks_handle);
}
