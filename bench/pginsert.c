/*
 * bench/pginsert.c: the baseline of the order-creation row of `make
 * bench`.  A bare libfcgi + libpq program: one connection, one
 * prepared statement that inserts an order and its item in one
 * transaction (the same tables and triggers the orders program writes,
 * order event included), the answer as a small JSON object.  No
 * authentication, limits, idempotency, body parsing, pricing, stock or
 * usage: the ratio of POST /agent/v1/orders to this is what all of that
 * costs.  POST /bench/pginsert?m=MERCHANT_ID&a=AGENT_ID (internal ids).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>
#include <libpq-fe.h>

static const char INSERT[] =
    "WITH o AS (INSERT INTO orders (public_id, merchant_id, agent_id,"
    " currency, currency_exponent, subtotal_minor, shipping_minor,"
    " tax_minor, total_minor, customer_email, ship_name, ship_line1,"
    " ship_city, ship_postal_code, ship_country, psp, expires_at)"
    " VALUES ('ORD_' || upper(substr(md5(random()::text), 1, 16)),"
    " $1::bigint, $2::bigint, 'USD', 2, 4800, 500, 396, 5696,"
    " 'bench@example.com', 'Bench Buyer', '1 Main St', 'Springfield',"
    " '12345', 'US', 'sandbox', now() + interval '30 minutes')"
    " RETURNING id, public_id)"
    " INSERT INTO order_items (order_id, line, product_public_id,"
    " variant_public_id, title, variant_title, sku, quantity,"
    " unit_price_minor, subtotal_minor)"
    " SELECT id, 1, 'prod_0000000000000000', 'var_0000000000000000',"
    " 'Bench product', 'Default', 'BENCH-1', 1, 4800, 4800 FROM o"
    " RETURNING (SELECT public_id FROM o)";

/* The value of name in the query string q, copied into buf. */
static const char *
arg(const char *q, const char *name, char *buf, size_t size)
{
	size_t n = strlen(name), len;
	const char *p;

	for (p = q; p != NULL && *p != '\0';
	     p = strchr(p, '&'), p += p != NULL) {
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			len = strcspn(p + n + 1, "&");
			if (len >= size)
				return NULL;
			memcpy(buf, p + n + 1, len);
			buf[len] = '\0';
			return buf;
		}
	}
	return NULL;
}

static void
respond(PGconn *db, const char *q, char *buf, size_t size)
{
	const char *params[2];
	char m[32], a[32], body[128];
	PGresult *res;
	int status = 500;

	params[0] = arg(q, "m", m, sizeof(m));
	params[1] = arg(q, "a", a, sizeof(a));
	snprintf(body, sizeof(body), "{\"status\":\"error\"}");
	res = PQexecPrepared(db, "insert", 2, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		snprintf(body, sizeof(body),
		    "{\"status\":\"success\",\"order_id\":\"%s\"}",
		    PQgetvalue(res, 0, 0));
		status = 200;
	}
	snprintf(buf, size,
	    "Status: %d\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n"
	    "X-Request-Id: req_000000000000000000000000\r\n"
	    "Cache-Control: no-store\r\n"
	    "\r\n%s",
	    status, strlen(body), body);
	PQclear(res);
}

/* Reads and drops the request body (a client may be blocked on it). */
static void
drain(FCGX_Stream *in)
{
	char tmp[4096];

	while (FCGX_GetStr(tmp, sizeof(tmp), in) > 0)
		;
}

int
main(void)
{
	static char buf[4096];
	FCGX_Request req;
	PGconn *db;
	PGresult *res;
	const char *url = getenv("PIVOTA_DATABASE_URL");

	db = PQconnectdb(url != NULL ? url : "");
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "pginsert: %s", PQerrorMessage(db));
		return EXIT_FAILURE;
	}
	res = PQprepare(db, "insert", INSERT, 2, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "pginsert: %s", PQerrorMessage(db));
		return EXIT_FAILURE;
	}
	PQclear(res);
	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
		return EXIT_FAILURE;
	while (FCGX_Accept_r(&req) >= 0) {
		drain(req.in);
		respond(db, FCGX_GetParam("QUERY_STRING", req.envp), buf,
		    sizeof(buf));
		FCGX_PutStr(buf, (int)strlen(buf), req.out);
		FCGX_Finish_r(&req);
	}
	FCGX_Free(&req, 1);
	PQfinish(db);
	return EXIT_SUCCESS;
}
