#ifndef PV_DBSHOP_H
#define PV_DBSHOP_H

#include <stddef.h>

#include <libpq-fe.h>

#include "pv_config.h"
#include "pv_db.h"
#include "pv_http.h"

/*
 * Shared by the order and refund database suites (pv_dbshop.c).
 * pv_dbs_setup/pv_dbs_teardown are the checked fixture: they open and
 * close pv_dbs_ctx and pv_dbs_other, two sessions on the test cluster.
 */
extern struct pv_config pv_dbs_cfg;
extern struct pv_ctx pv_dbs_ctx;
extern struct pv_ctx pv_dbs_other;

/* What one test bought from: internal ids as text. */
struct pv_dbs_shop {
	char merchant[24], agent[24], product[24], variant[24];
	char product_public[32], variant_public[32];
};

const char *pv_dbs_url(void);

void pv_dbs_open_ctx(struct pv_ctx *c);

void pv_dbs_close_ctx(struct pv_ctx *c);

void pv_dbs_setup(void);

void pv_dbs_teardown(void);

/* Runs q with n params on c; the result, failing the test on error. */
PGresult *pv_dbs_run(struct pv_ctx *c, const char *q, int n,
    const char *const *p);

/* The one value of a one-row, one-column result, or "" for NULL. */
const char *pv_dbs_value(PGresult *res);

void pv_dbs_copy(char *dst, size_t size, const char *src);

/* 16 lowercase hex digits no other test of this run uses. */
void pv_dbs_unique_hex(char *out, size_t size);

/* A merchant selling one variant at price (USD cents) with stock. */
void pv_dbs_shop_make(struct pv_dbs_shop *s, const char *price,
    const char *stock);

/*
 * pv_order_insert() for quantity units of the shop's variant at the
 * catalog price, on session c: its result ("ok", "out_of_stock",
 * "price_changed"), and the order's internal id in id (size 24) if ok.
 */
const char *pv_dbs_order_insert(struct pv_ctx *c, const struct pv_dbs_shop *s,
    int quantity, const char *price, char *id);

/* "status/payment_status" of an order. */
const char *pv_dbs_order_state(const char *id);

#endif /* PV_DBSHOP_H */
