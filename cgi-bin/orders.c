/*
 * cgi-bin/orders.c: cart validation, orders and payments:
 * /agent/v1/cart/validate, /agent/v1/orders..., /agent/v1/payments...
 * Logic: lib/pv_order.c, lib/pv_cart.c, lib/pv_payment.c.
 */
#include "pv_fcgi.h"
#include "pv_order.h"

int
main(void)
{
	return pv_fcgi_run("orders", pv_order_handle);
}
