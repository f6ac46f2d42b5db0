/*
 * bench/sqltext.c: prints the search statement of the products
 * program (lib/pv_products_sql.h) with its parameters filled in as SQL
 * literals, for pgbench: `make bench` runs the same SQL bare that the
 * endpoint runs behind the agent prologue.  Not a FastCGI program.
 *
 *   sqltext AGENT_ID QUERY > q.sql   (no allow-list, no filters,
 *                                     limit 20, first page)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_products_sql.h"

/* s as a SQL string literal, or NULL. */
static void
literal(const char *s)
{
	if (s == NULL) {
		fputs("NULL", stdout);
		return;
	}
	putchar('\'');
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			putchar('\'');
		putchar(*s);
	}
	putchar('\'');
}

int
main(int argc, char **argv)
{
	const char *sql = PV_PRODUCTS_SQL_SEARCH, *params[12];
	char *end;
	long n;

	if (argc != 3) {
		fprintf(stderr, "usage: sqltext AGENT_ID QUERY\n");
		return 2;
	}
	params[0] = argv[1];
	params[1] = "f";
	params[2] = NULL;
	params[3] = argv[2];
	params[4] = params[5] = params[6] = NULL;
	params[7] = "f";
	params[8] = "20";
	params[9] = "0";
	params[10] = params[11] = NULL;
	while (*sql != '\0') {
		if (*sql == '$' && sql[1] >= '1' && sql[1] <= '9') {
			n = strtol(sql + 1, &end, 10);
			if (n >= 1 && n <= 12) {
				literal(params[n - 1]);
				sql = end;
				continue;
			}
		}
		putchar(*sql++);
	}
	puts(";");
	return 0;
}
