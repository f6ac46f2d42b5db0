#ifndef PV_ITSHOP_H
#define PV_ITSHOP_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "pv_fake.h"
#include "pv_httpc.h"

/*
 * Shared by the order and refund integration suites (pv_itshop.c):
 * merchants with the orders fixtures on the Stripe fake, agents, calls
 * with an asserted status, orders created and paid through the servers.
 */
#define PV_IT_FIXTURES "tests/fixtures/orders/"
#define PV_IT_SK       "sk_test_fake_0123456789abcdef"
#define PV_IT_WHSEC    "whsec_ordtest_0123456789abcdef"

void pv_it_json_field(const char *out, const char *key, char *dst, size_t size);

int64_t pv_it_num(struct json_object *o, const char *path);

const char *pv_it_str(struct json_object *o, const char *path);

/* A merchant with the fixture's catalog; its public id in id. */
void pv_it_merchant(const char *currency, const char *fixture, char *id,
    size_t size);

/* Connects merchant id to the Stripe fake (verified against it). */
void pv_it_connect_stripe(struct pv_fake *stripe, const char *id);

/* The fake's webhooks go to merchant id's endpoint on server s. */
void pv_it_stripe_webhooks_to(struct pv_fake *stripe,
    const struct pv_httpc_server *s, const char *id, int hold);

void pv_it_agent(const char *merchants, char *header, size_t size);

/*
 * method path (no body for GET) on server s as the agent of header,
 * with an optional extra header line; asserts the status; the parsed
 * body (caller puts it).
 */
struct json_object *pv_it_call(const struct pv_httpc_server *s,
    const char *header, const char *extra, const char *method, const char *path,
    const char *body, long status);

/* The first product of a search at merchant m for q: its id in id. */
void pv_it_find(const struct pv_httpc_server *s, const char *header,
    const char *m, const char *q, char *id, size_t size);

/* The body of an order for qty (JSON text) of product at m to cc. */
const char *pv_it_order_body(const char *m, const char *product,
    const char *qty, const char *cc, const char *extra);

/* Creates an order; its id in id (size 32). */
void pv_it_create(const struct pv_httpc_server *s, const char *header,
    const char *m, const char *product, const char *qty, const char *cc,
    char *id);

/* POST /agent/v1/payments for order with token; expects status. */
struct json_object *pv_it_pay(const struct pv_httpc_server *s,
    const char *header, const char *order, const char *token, long status);

struct json_object *pv_it_order_get(const struct pv_httpc_server *s,
    const char *header, const char *order);

/* How many events of type the order has. */
int pv_it_events_of(struct json_object *o, const char *type);

/* Asserts the order's status and payment status. */
void pv_it_order_is(const struct pv_httpc_server *s, const char *header,
    const char *order, const char *status, const char *payment);

#endif /* PV_ITSHOP_H */
