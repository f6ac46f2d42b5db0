/*
 * cgi-bin/products.c: the catalog: /agent/v1/merchants,
 * /agent/v1/products/search, /agent/v1/products/{merchant}/{product}.
 * Logic: lib/pv_products.c.
 */
#include "pv_fcgi.h"
#include "pv_products.h"

int
main(void)
{
	return pv_fcgi_run("products", pv_products_handle);
}
