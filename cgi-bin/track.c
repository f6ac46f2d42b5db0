/*
 * cgi-bin/track.c: GET /agent/v1/fulfillment/track/{order_id}, its
 * alias GET /agent/v1/orders/{order_id}/track and GET
 * /agent/v1/fulfillment/orders/in-transit.  Logic: lib/pv_track.c.
 */
#include "pv_fcgi.h"
#include "pv_track.h"

int
main(void)
{
	return pv_fcgi_run("track", pv_track_handle);
}
