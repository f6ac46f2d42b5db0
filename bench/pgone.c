/*
 * bench/pgone.c: the baseline of the product lookup row of `make
 * bench`.  A bare libfcgi + libpq program: one connection, one prepared
 * statement (the very lookup the products program runs, from
 * lib/pv_products_sql.h, for an agent without an allow-list), one
 * execution per request, the row turned into a JSON object with
 * json-c.  No authentication, rate limits, usage events, arena, router
 * or error model: the ratio of the real endpoint to this is what all
 * of that costs.  GET /bench/pgone?m=MERCHANT&p=PRODUCT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>
#include <json-c/json.h>
#include <libpq-fe.h>

#include "pv_products_sql.h"

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

/* Every column of row 0 into an object, the variant columns per row. */
static struct json_object *
to_json(const PGresult *res)
{
	struct json_object *o = json_object_new_object();
	struct json_object *vars = json_object_new_array(), *v;
	int r, c, first_variant = 17;
	char key[80];

	/* Column names repeat (public_id): number them. */
	for (c = 0; c < first_variant; c++) {
		snprintf(key, sizeof(key), "%d_%s", c, PQfname(res, c));
		json_object_object_add(o, key,
		    PQgetisnull(res, 0, c) ?
		        NULL :
		        json_object_new_string(PQgetvalue(res, 0, c)));
	}
	for (r = 0; r < PQntuples(res); r++) {
		v = json_object_new_object();
		for (c = first_variant; c < PQnfields(res); c++)
			json_object_object_add(v, PQfname(res, c),
			    PQgetisnull(res, r, c) ?
			        NULL :
			        json_object_new_string(PQgetvalue(res, r, c)));
		json_object_array_add(vars, v);
	}
	json_object_object_add(o, "variants", vars);
	return o;
}

/* The response to the query string q, in buf. */
static void
respond(PGconn *db, const char *q, char *buf, size_t size)
{
	struct json_object *top;
	const char *params[4], *body = "{\"status\":\"error\"}";
	char m[64], p[300];
	PGresult *res;
	int status = 404;

	params[0] = "0";
	params[1] = "f";
	params[2] = arg(q, "m", m, sizeof(m));
	params[3] = arg(q, "p", p, sizeof(p));
	res = PQexecPrepared(db, "lookup", 4, params, NULL, NULL, 0);
	top = json_object_new_object();
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) {
		json_object_object_add(top, "status",
		    json_object_new_string("success"));
		json_object_object_add(top, "product", to_json(res));
		body =
		    json_object_to_json_string_ext(top, JSON_C_TO_STRING_PLAIN);
		status = 200;
	} else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		status = 500;
	}
	snprintf(buf, size,
	    "Status: %d\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n"
	    "X-Request-Id: req_000000000000000000000000\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Content-Security-Policy: default-src 'self'; frame-ancestors "
	    "'none'\r\n"
	    "Cache-Control: no-store\r\n"
	    "\r\n%s",
	    status, strlen(body), body);
	json_object_put(top);
	PQclear(res);
}

int
main(void)
{
	static char buf[1 << 20];
	FCGX_Request req;
	PGconn *db;
	PGresult *res;
	const char *url = getenv("PIVOTA_DATABASE_URL");

	db = PQconnectdb(url != NULL ? url : "");
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "pgone: %s", PQerrorMessage(db));
		return EXIT_FAILURE;
	}
	res = PQprepare(db, "lookup", PV_PRODUCTS_SQL_LOOKUP_BY_ID, 4, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "pgone: %s", PQerrorMessage(db));
		return EXIT_FAILURE;
	}
	PQclear(res);
	if (FCGX_IsCGI()) {
		respond(db,
		    getenv("QUERY_STRING") != NULL ? getenv("QUERY_STRING") :
		                                     "",
		    buf, sizeof(buf));
		fputs(buf, stdout);
		PQfinish(db);
		return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	}
	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
		return EXIT_FAILURE;
	while (FCGX_Accept_r(&req) >= 0) {
		respond(db, FCGX_GetParam("QUERY_STRING", req.envp), buf,
		    sizeof(buf));
		FCGX_PutStr(buf, (int)strlen(buf), req.out);
		FCGX_Finish_r(&req);
	}
	FCGX_Free(&req, 1);
	PQfinish(db);
	return EXIT_SUCCESS;
}
