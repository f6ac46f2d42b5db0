/*
 * pivotactl: command dispatch, option parsing and output.  Every
 * command builds one JSON object; the dispatcher prints it as JSON
 * (--json) or as text (key: value lines, or a table for a list), so a
 * command's human and machine output can never disagree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "pv_agent.h"
#include "pv_config.h"
#include "pv_crypto.h"
#include "pv_ctl.h"
#include "pv_ctl_int.h"
#include "pv_payment.h"
#include "pv_ctl_products.h"
#include "pv_db.h"
#include "pv_log.h"
#include "pv_migrate.h"
#include "pv_money.h"

#define MAX_ARGS 64

struct cmd {
	const char *name;  /* one or two words after pivotactl */
	const char *usage; /* arguments, for the usage text */
	const char *help;  /* one line */
	int (*fn)(struct pv_ctx *ctx, int argc, char **argv,
	    struct json_object **out, struct pv_err *err); /* 0 or -1 */
};

static int
usage_error(struct pv_err *err, const char *what, const char *arg)
{
	PV_ERR(err, PV_E_INVALID, NULL, "%s %s", what, arg);
	pv_err_reason(err, "usage");
	return -1;
}

/*
 * Splits argv into the options in opts and at most maxpos positional
 * arguments, of which minpos are required.  Unknown options and extra
 * or missing arguments are usage errors.
 */
static int
parse(int argc, char **argv, const struct pv_ctl_opt *opts, const char **pos,
    int minpos, int maxpos, struct pv_err *err)
{
	const struct pv_ctl_opt *o;
	int i, n = 0;

	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) != 0) {
			if (n == maxpos)
				return usage_error(err, "unexpected argument",
				    argv[i]);
			pos[n++] = argv[i];
			continue;
		}
		for (o = opts; o != NULL && o->name != NULL; o++)
			if (strcmp(o->name, argv[i]) == 0)
				break;
		if (o == NULL || o->name == NULL)
			return usage_error(err, "unknown option", argv[i]);
		if (o->flag) {
			*o->val = "1";
		} else if (i + 1 < argc) {
			*o->val = argv[++i];
		} else {
			return usage_error(err, "missing value for", argv[i]);
		}
	}
	if (n < minpos)
		return usage_error(err, "missing argument;", "see --help");
	return 0;
}

/* Parses a whole decimal number in [min, max] for option name. */
static int
number(const char *s, long min, long max, const char *name, long *out,
    struct pv_err *err)
{
	char *end;
	long v;

	if (s == NULL)
		return 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < min || v > max) {
		PV_ERR(err, PV_E_INVALID, name,
		    "%s must be a number from %ld "
		    "to %ld",
		    name, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* A new JSON object owned by the caller, or NULL with PV_E_NOMEM. */
static struct json_object *
new_obj(struct pv_err *err)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
	return o;
}

/* A column value as JSON: integers and booleans typed, the rest text. */
static struct json_object *
value(const PGresult *res, int r, int c)
{
	const char *v = PQgetvalue(res, r, c);

	if (PQgetisnull(res, r, c))
		return NULL;
	switch (PQftype(res, c)) {
	case 16: /* bool */
		return json_object_new_boolean(*v == 't');
	case 20: /* int8 */
	case 21: /* int2 */
	case 23: /* int4 */
		return json_object_new_int64(strtoll(v, NULL, 10));
	default:
		return json_object_new_string(v);
	}
}

/* Every column of every row of res as JSON (NULL as null). */
static struct json_object *
rows_to_json(const PGresult *res, struct pv_err *err)
{
	struct json_object *arr, *row;
	int r, c;

	if ((arr = json_object_new_array()) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return NULL;
	}
	for (r = 0; r < PQntuples(res); r++) {
		if ((row = new_obj(err)) == NULL) {
			json_object_put(arr);
			return NULL;
		}
		for (c = 0; c < PQnfields(res); c++)
			json_object_object_add(row, PQfname(res, c),
			    value(res, r, c));
		json_object_array_add(arr, row);
	}
	return arr;
}

/* The first row of res as an object, or NULL with PV_E_NOTFOUND. */
static struct json_object *
row_to_json(const PGresult *res, const char *what, struct pv_err *err)
{
	struct json_object *arr, *row;

	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, NULL, "no such %s", what);
		return NULL;
	}
	if ((arr = rows_to_json(res, err)) == NULL)
		return NULL;
	row = json_object_get(json_object_array_get_idx(arr, 0));
	json_object_put(arr);
	return row;
}

/* Wraps every row of res as {key: [rows]} in *out. */
static int
list_out(const PGresult *res, const char *key, struct json_object **out,
    struct pv_err *err)
{
	struct json_object *arr;

	if ((arr = rows_to_json(res, err)) == NULL)
		return -1;
	if ((*out = new_obj(err)) == NULL) {
		json_object_put(arr);
		return -1;
	}
	json_object_object_add(*out, key, arr);
	return 0;
}

/* Prints a list of flat objects as an aligned table. */
static void
print_table(struct json_object *arr)
{
	size_t n = json_object_array_length(arr), i, c, ncol = 0;
	size_t width[32] = { 0 };
	const char *cols[32];
	struct json_object *row, *v;
	const char *s;

	if (n == 0) {
		puts("(none)");
		return;
	}
	json_object_object_foreach (json_object_array_get_idx(arr, 0), k, v0) {
		(void)v0;
		if (ncol < 32) {
			cols[ncol] = k;
			width[ncol] = strlen(k);
			ncol++;
		}
	}
	for (i = 0; i < n; i++) {
		row = json_object_array_get_idx(arr, i);
		for (c = 0; c < ncol; c++) {
			s = json_object_object_get_ex(row, cols[c], &v) &&
			        v != NULL ?
			    json_object_get_string(v) :
			    "-";
			if (strlen(s) > width[c])
				width[c] = strlen(s);
		}
	}
	for (c = 0; c < ncol; c++)
		printf("%-*s%s", (int)width[c], cols[c],
		    c + 1 < ncol ? "  " : "\n");
	for (i = 0; i < n; i++) {
		row = json_object_array_get_idx(arr, i);
		for (c = 0; c < ncol; c++) {
			s = json_object_object_get_ex(row, cols[c], &v) &&
			        v != NULL ?
			    json_object_get_string(v) :
			    "-";
			printf("%-*s%s", (int)width[c], s,
			    c + 1 < ncol ? "  " : "\n");
		}
	}
}

/* Prints a result for people: arrays as tables, the rest as lines. */
static void
print_human(struct json_object *o)
{
	json_object_object_foreach (o, k, v) {
		if (v != NULL && json_object_is_type(v, json_type_array)) {
			printf("%s:\n", k);
			print_table(v);
		} else {
			printf("%s: %s\n", k,
			    v != NULL ? json_object_get_string(v) : "-");
		}
	}
}

/* pivotactl migrate [--dir DIR]. */
static int
cmd_migrate(struct pv_ctx *ctx, int argc, char **argv, struct json_object **out,
    struct pv_err *err)
{
	const char *dir = ctx->cfg->migrations_dir;
	const struct pv_ctl_opt opts[] = { { "--dir", 0, &dir },
		{ NULL, 0, NULL } };
	int applied;

	if (parse(argc, argv, opts, NULL, 0, 0, err) == -1 ||
	    pv_migrate_run(ctx, dir, stderr, &applied, err) == -1 ||
	    (*out = new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "applied", json_object_new_int(applied));
	return 0;
}

/* pivotactl version. */
static int
cmd_version(struct pv_ctx *ctx, int argc, char **argv, struct json_object **out,
    struct pv_err *err)
{
	(void)ctx;
	if (parse(argc, argv, NULL, NULL, 0, 0, err) == -1 ||
	    (*out = new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "version",
	    json_object_new_string(PV_VERSION));
	return 0;
}

#define MERCHANT_COLS \
	"public_id AS merchant_id, business_name, email, store_url, region," \
	" status, currency, platform, product_count," \
	" to_char(created_at AT TIME ZONE 'UTC'," \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at"

/* pivotactl merchant create --name N --email E [--store-url U] [--region R]
 * [--currency C] */
static int
cmd_merchant_create(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *name = NULL, *email = NULL, *url = "", *region = "US";
	const char *currency = "USD";
	const struct pv_ctl_opt opts[] = { { "--name", 0, &name },
		{ "--email", 0, &email }, { "--store-url", 0, &url },
		{ "--region", 0, &region }, { "--currency", 0, &currency },
		{ NULL, 0, NULL } };
	const char *p[6];
	PGresult *res;

	if (parse(argc, argv, opts, NULL, 0, 0, err) == -1)
		return -1;
	if (name == NULL || email == NULL)
		return usage_error(err, "required:", "--name and --email");
	if (pv_money_currency_check(currency, "--currency", err) == -1 ||
	    pv_crypto_token(ctx->arena, "mer_", 8, &p[0], err) == -1)
		return -1;
	p[1] = name;
	p[2] = email;
	p[3] = url;
	p[4] = region;
	p[5] = currency;
	if (pv_db_exec(ctx,
	        PV_SQL("INSERT INTO merchants (public_id, business_name,"
	               " email, store_url, region, currency)"
	               " VALUES ($1, $2, $3, $4, $5, $6)"
	               " RETURNING " MERCHANT_COLS),
	        6, p, &res, err) == -1)
		return -1;
	return (*out = row_to_json(res, "merchant", err)) == NULL ? -1 : 0;
}

/* pivotactl merchant list */
static int
cmd_merchant_list(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	PGresult *res;

	if (parse(argc, argv, NULL, NULL, 0, 0, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT " MERCHANT_COLS " FROM merchants ORDER BY id"),
	        0, NULL, &res, err) == -1)
		return -1;
	return list_out(res, "merchants", out, err);
}

/* pivotactl merchant show MERCHANT */
static int
cmd_merchant_show(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *p[1];
	PGresult *res;

	if (parse(argc, argv, NULL, p, 1, 1, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT " MERCHANT_COLS
	               " FROM merchants WHERE public_id = $1"),
	        1, p, &res, err) == -1)
		return -1;
	return (*out = row_to_json(res, "merchant", err)) == NULL ? -1 : 0;
}

#define AGENT_COLS \
	"a.public_id AS agent_id, a.name, a.status," \
	" a.per_minute_limit AS per_minute, a.daily_quota AS daily," \
	" coalesce((SELECT string_agg(m.public_id, ',' ORDER BY m.id)" \
	"  FROM agent_merchants am JOIN merchants m ON m.id = am.merchant_id" \
	"  WHERE am.agent_id = a.id), 'all') AS merchants," \
	" to_char(a.created_at AT TIME ZONE 'UTC'," \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at"

/* Replaces the agent's allow-list with a comma list of merchant ids. */
static int
set_merchants(struct pv_ctx *ctx, const char *agent_id, const char *list,
    struct pv_err *err)
{
	const char *p[2] = { agent_id, list };
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("DELETE FROM agent_merchants WHERE agent_id ="
	               " $1::bigint"),
	        1, p, NULL, err) == -1)
		return -1;
	if (list == NULL || strcmp(list, "all") == 0)
		return 0;
	if (pv_db_exec(ctx,
	        PV_SQL("WITH want AS (SELECT DISTINCT unnest(string_to_array("
	               " $2, ',')) AS public_id),"
	               " ins AS (INSERT INTO agent_merchants"
	               "  SELECT $1::bigint, m.id FROM want"
	               "  JOIN merchants m USING (public_id) RETURNING 1)"
	               " SELECT (SELECT count(*) FROM want),"
	               "  (SELECT count(*) FROM ins)"),
	        2, p, &res, err) == -1)
		return -1;
	if (strcmp(PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1)) != 0) {
		PV_ERR(err, PV_E_NOTFOUND, "--merchants",
		    "--merchants names an unknown merchant");
		return -1;
	}
	return 0;
}

struct agent_new {
	const char *name;      /* --name */
	long per_minute;       /* --per-minute */
	long daily;            /* --daily */
	const char *merchants; /* --merchants, or NULL for all */
	const char *key;       /* out: the new key */
	const char *agent_id;  /* out: public id */
};

static int
create_agent(struct pv_ctx *ctx, void *arg, struct pv_err *err)
{
	struct agent_new *a = arg;
	char pm[24], dq[24];
	const char *p[4], *prefix;
	PGresult *res;

	if (snprintf(pm, sizeof(pm), "%ld", a->per_minute) < 0 ||
	    snprintf(dq, sizeof(dq), "%ld", a->daily) < 0 ||
	    pv_crypto_token(ctx->arena, "agt_", 8, &p[0], err) == -1)
		return -1;
	p[1] = a->name;
	p[2] = pm;
	p[3] = dq;
	if (pv_db_exec(ctx,
	        PV_SQL("INSERT INTO agents (public_id, name, per_minute_limit,"
	               " daily_quota) VALUES ($1, $2, $3::int, $4::int)"
	               " RETURNING id"),
	        4, p, &res, err) == -1 ||
	    set_merchants(ctx, PQgetvalue(res, 0, 0), a->merchants, err) ==
	        -1 ||
	    pv_agent_key_create(ctx, PQgetvalue(res, 0, 0), &a->key, &prefix,
	        err) == -1)
		return -1;
	a->agent_id = p[0];
	return 0;
}

/* pivotactl agent create --name N [--per-minute N] [--daily N] [--merchants
 * M,..] */
static int
cmd_agent_create(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *pm = NULL, *dq = NULL;
	struct agent_new a = { NULL, 600, 100000, NULL, NULL, NULL };
	const struct pv_ctl_opt opts[] = { { "--name", 0, &a.name },
		{ "--per-minute", 0, &pm }, { "--daily", 0, &dq },
		{ "--merchants", 0, &a.merchants }, { NULL, 0, NULL } };

	if (parse(argc, argv, opts, NULL, 0, 0, err) == -1)
		return -1;
	if (a.name == NULL)
		return usage_error(err, "required:", "--name");
	if (number(pm, 1, 1000000, "--per-minute", &a.per_minute, err) ||
	    number(dq, 1, 1000000000, "--daily", &a.daily, err) ||
	    pv_db_tx(ctx, create_agent, &a, err) == -1 ||
	    (*out = new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "agent_id",
	    json_object_new_string(a.agent_id));
	json_object_object_add(*out, "api_key", json_object_new_string(a.key));
	return 0;
}

/* pivotactl agent list */
static int
cmd_agent_list(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	PGresult *res;

	if (parse(argc, argv, NULL, NULL, 0, 0, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT " AGENT_COLS " FROM agents a ORDER BY a.id"), 0,
	        NULL, &res, err) == -1)
		return -1;
	return list_out(res, "agents", out, err);
}

/* The agent's settings as JSON, or PV_E_NOTFOUND. */
static int
show_agent(struct pv_ctx *ctx, const char *public_id, struct json_object **out,
    struct pv_err *err)
{
	const char *q[1] = { public_id };
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT " AGENT_COLS " FROM agents a"
	               " WHERE a.public_id = $1"),
	        1, q, &res, err) == -1)
		return -1;
	return (*out = row_to_json(res, "agent", err)) == NULL ? -1 : 0;
}

/* pivotactl agent show AGENT: the agent, its keys and today's usage. */
static int
cmd_agent_show(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	struct json_object *keys;
	const char *p[1];
	PGresult *res;

	if (parse(argc, argv, NULL, p, 1, 1, err) == -1 ||
	    show_agent(ctx, p[0], out, err) == -1)
		return -1;
	if (pv_db_exec(ctx,
	        PV_SQL(
	            "SELECT k.prefix || '...' AS key,"
	            " CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'"
	            "  WHEN k.expires_at IS NOT NULL AND k.expires_at <= now()"
	            "  THEN 'expired'"
	            "  WHEN k.expires_at IS NOT NULL THEN 'rotating'"
	            "  ELSE 'active' END AS state,"
	            " to_char(k.created_at AT TIME ZONE 'UTC',"
	            "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at,"
	            " to_char(k.expires_at AT TIME ZONE 'UTC',"
	            "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS expires_at"
	            " FROM api_keys k JOIN agents a ON a.id = k.agent_id"
	            " WHERE a.public_id = $1 ORDER BY k.id"),
	        1, p, &res, err) == -1 ||
	    (keys = rows_to_json(res, err)) == NULL)
		return -1;
	json_object_object_add(*out, "keys", keys);
	return 0;
}

/* The agent's internal id, or PV_E_NOTFOUND. */
static int
agent_id(struct pv_ctx *ctx, const char *public_id, const char **id,
    struct pv_err *err)
{
	const char *p[1] = { public_id };
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT id FROM agents WHERE public_id = $1"), 1, p,
	        &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "AGENT", "no agent %s", public_id);
		return -1;
	}
	*id = PQgetvalue(res, 0, 0);
	return 0;
}

struct rotate {
	const char *agent;  /* public id */
	const char *grace;  /* seconds the old keys keep working */
	const char *key;    /* out: new key */
	const char *prefix; /* out: its prefix */
};

static int
rotate_key(struct pv_ctx *ctx, void *arg, struct pv_err *err)
{
	struct rotate *r = arg;
	const char *p[2];

	if (agent_id(ctx, r->agent, &p[0], err) == -1)
		return -1;
	p[1] = r->grace;
	/* Old keys expire after the grace period (never extended). */
	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE api_keys SET expires_at = least(coalesce("
	               " expires_at, 'infinity'), now() + make_interval(secs"
	               " => $2::int)) WHERE agent_id = $1::bigint"
	               " AND revoked_at IS NULL"),
	        2, p, NULL, err) == -1)
		return -1;
	return pv_agent_key_create(ctx, p[0], &r->key, &r->prefix, err);
}

/* pivotactl agent rotate-key AGENT [--grace SECONDS] */
static int
cmd_agent_rotate_key(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	struct rotate r = { NULL, "86400", NULL, NULL };
	const struct pv_ctl_opt opts[] = { { "--grace", 0, &r.grace },
		{ NULL, 0, NULL } };
	long grace;

	if (parse(argc, argv, opts, &r.agent, 1, 1, err) == -1 ||
	    number(r.grace, 0, 30 * 86400, "--grace", &grace, err) == -1 ||
	    pv_db_tx(ctx, rotate_key, &r, err) == -1 ||
	    (*out = new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "agent_id",
	    json_object_new_string(r.agent));
	json_object_object_add(*out, "api_key", json_object_new_string(r.key));
	json_object_object_add(*out, "old_keys_expire_in_seconds",
	    json_object_new_int64(grace));
	return 0;
}

/* pivotactl agent revoke-key AGENT (KEY_PREFIX | --all) */
static int
cmd_agent_revoke_key(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *all = NULL, *pos[2] = { NULL, NULL }, *p[3];
	const struct pv_ctl_opt opts[] = { { "--all", 1, &all },
		{ NULL, 0, NULL } };
	PGresult *res;

	if (parse(argc, argv, opts, pos, 1, 2, err) == -1)
		return -1;
	if ((all == NULL) == (pos[1] == NULL))
		return usage_error(err, "give a key prefix or --all,",
		    "not both");
	if (agent_id(ctx, pos[0], &p[0], err) == -1)
		return -1;
	p[1] = all != NULL ? "1" : "0";
	p[2] = pos[1] != NULL ? pos[1] : "";
	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE api_keys SET revoked_at = now()"
	               " WHERE agent_id = $1::bigint AND revoked_at IS NULL"
	               " AND ($2 = '1' OR (length($3) >= 10"
	               "  AND starts_with(prefix, rtrim($3, '.'))))"),
	        3, p, &res, err) == -1)
		return -1;
	if (strcmp(PQcmdTuples(res), "0") == 0) {
		PV_ERR(err, PV_E_NOTFOUND, "KEY", "no active key matches");
		return -1;
	}
	if ((*out = new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "agent_id",
	    json_object_new_string(pos[0]));
	json_object_object_add(*out, "revoked",
	    json_object_new_int((int)strtol(PQcmdTuples(res), NULL, 10)));
	return 0;
}

/* pivotactl agent set-limits AGENT [--per-minute N] [--daily N] */
static int
cmd_agent_set_limits(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *pm = NULL, *dq = NULL, *p[3];
	const struct pv_ctl_opt opts[] = { { "--per-minute", 0, &pm },
		{ "--daily", 0, &dq }, { NULL, 0, NULL } };
	long v;

	if (parse(argc, argv, opts, p, 1, 1, err) == -1)
		return -1;
	if (pm == NULL && dq == NULL)
		return usage_error(err, "give", "--per-minute and/or --daily");
	if (number(pm, 1, 1000000, "--per-minute", &v, err) == -1 ||
	    number(dq, 1, 1000000000, "--daily", &v, err) == -1)
		return -1;
	p[1] = pm;
	p[2] = dq;
	if (pv_db_exec(ctx,
	        PV_SQL(
	            "UPDATE agents SET"
	            " per_minute_limit = coalesce($2::int, per_minute_limit),"
	            " daily_quota = coalesce($3::int, daily_quota),"
	            " updated_at = now() WHERE public_id = $1"),
	        3, p, NULL, err) == -1)
		return -1;
	return show_agent(ctx, p[0], out, err);
}

/* pivotactl agent suspend|activate AGENT */
static int
set_status(struct pv_ctx *ctx, int argc, char **argv, const char *status,
    struct json_object **out, struct pv_err *err)
{
	const char *p[2];

	if (parse(argc, argv, NULL, p, 1, 1, err) == -1)
		return -1;
	p[1] = status;
	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE agents SET status = $2, updated_at = now()"
	               " WHERE public_id = $1"),
	        2, p, NULL, err) == -1)
		return -1;
	return show_agent(ctx, p[0], out, err);
}

static int
cmd_agent_suspend(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	return set_status(ctx, argc, argv, "suspended", out, err);
}

static int
cmd_agent_activate(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	return set_status(ctx, argc, argv, "active", out, err);
}

struct allow {
	const char *agent; /* public id */
	const char *list;  /* comma list of merchant ids, or "all" */
};

static int
allow_merchants(struct pv_ctx *ctx, void *arg, struct pv_err *err)
{
	struct allow *a = arg;
	const char *id;

	return agent_id(ctx, a->agent, &id, err) == -1 ?
	    -1 :
	    set_merchants(ctx, id, a->list, err);
}

/* pivotactl agent set-merchants AGENT (MERCHANT,... | all) */
static int
cmd_agent_set_merchants(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *pos[2];
	struct allow a;

	if (parse(argc, argv, NULL, pos, 2, 2, err) == -1)
		return -1;
	a.agent = pos[0];
	a.list = pos[1];
	if (pv_db_tx(ctx, allow_merchants, &a, err) == -1)
		return -1;
	return show_agent(ctx, pos[0], out, err);
}

#define DEMO_EMAIL "demo@pivota.test"
#define DEMO_AGENT "Demo agent"

struct demo {
	const char *reuse_key;   /* --reuse-key, or NULL */
	const char *merchant_id; /* out */
	const char *agent_id;    /* out */
	const char *api_key;     /* out: the reused or a new key */
	int made_merchant;       /* out: created now */
	int made_agent;          /* out: created now */
	int made_key;            /* out: created now */
	long products;           /* out: catalog products seeded now */
};

/*
 * Makes the demo merchant and agent unless they exist, gives a
 * merchant without products the demo catalog (never twice: stock an
 * earlier run sold stays sold), and gives the agent a key: the one
 * passed with --reuse-key if it still works for this agent, else a new
 * one.  cmd_demo_seed then gives the merchant a dashboard login.
 */
/*
 * The demo merchant takes payments on the built-in sandbox and ships
 * by simple rules: US $5 (free over $75), Canada $12, elsewhere $25;
 * sales tax in California and New York, GST on Canadian orders.  Rules
 * already set are left alone.
 */
static int
demo_payments(struct pv_ctx *ctx, const char *merchant, const char *id,
    struct pv_err *err)
{
	struct pv_psp_account acct = { .provider = "sandbox" };
	const char *p[1] = { id }, *secret;
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL("SELECT 1 FROM merchant_psp WHERE merchant_id = "
	               "$1::bigint"),
	        1, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) == 0 &&
	    pv_payment_connect(ctx, merchant, &acct, &secret, err) == -1)
		return -1;
	return pv_db_exec(ctx,
	    PV_SQL(
	        "WITH s AS (INSERT INTO merchant_shipping_rates (merchant_id,"
	        " country, currency, rate_minor, free_over_minor, min_days,"
	        " max_days) VALUES ($1::bigint, 'US', 'USD', 500, 7500, 3, 5),"
	        " ($1::bigint, 'CA', 'USD', 1200, NULL, 5, 10),"
	        " ($1::bigint, '*', 'USD', 2500, NULL, 7, 21)"
	        " ON CONFLICT DO NOTHING)"
	        " INSERT INTO merchant_tax_rates (merchant_id, country, region,"
	        " rate_ppm, shipping_taxable) VALUES"
	        " ($1::bigint, 'US', 'CA', 72500, false),"
	        " ($1::bigint, 'US', 'NY', 88750, true),"
	        " ($1::bigint, 'CA', '', 50000, true)"
	        " ON CONFLICT DO NOTHING"),
	    1, p, NULL, err);
}

static int
demo_seed(struct pv_ctx *ctx, void *arg, struct pv_err *err)
{
	struct demo *d = arg;
	const char *p[3], *id, *prefix, *hash;
	PGresult *res;

	p[0] = DEMO_EMAIL;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT public_id, id, currency, product_count"
	               " FROM merchants WHERE email = $1"),
	        1, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) == 0) {
		if (pv_crypto_token(ctx->arena, "mer_", 8, &p[0], err) == -1)
			return -1;
		p[1] = DEMO_EMAIL;
		if (pv_db_exec(ctx,
		        PV_SQL(
		            "INSERT INTO merchants (public_id, business_name,"
		            " email, store_url, region) VALUES ($1,"
		            " 'Pivota Demo Outfitters', $2,"
		            " 'https://demo.pivota.test', 'US')"
		            " RETURNING public_id, id, currency, "
		            "product_count"),
		        2, p, &res, err) == -1)
			return -1;
		d->made_merchant = 1;
	}
	d->merchant_id = PQgetvalue(res, 0, 0);
	if (strcmp(PQgetvalue(res, 0, 3), "0") == 0 &&
	    pv_ctl_demo_catalog(ctx, PQgetvalue(res, 0, 1),
	        PQgetvalue(res, 0, 2), &d->products, err) == -1)
		return -1;
	if (demo_payments(ctx, d->merchant_id, PQgetvalue(res, 0, 1), err))
		return -1;

	p[0] = DEMO_AGENT;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT id, public_id FROM agents WHERE name = $1"
	               " ORDER BY id LIMIT 1"),
	        1, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) == 0) {
		if (pv_crypto_token(ctx->arena, "agt_", 8, &p[0], err) == -1)
			return -1;
		p[1] = DEMO_AGENT;
		if (pv_db_exec(ctx,
		        PV_SQL("INSERT INTO agents (public_id, name,"
		               " per_minute_limit, daily_quota)"
		               " VALUES ($1, $2, 600, 100000)"
		               " RETURNING id, public_id"),
		        2, p, &res, err) == -1)
			return -1;
		d->made_agent = 1;
	}
	id = PQgetvalue(res, 0, 0);
	d->agent_id = PQgetvalue(res, 0, 1);

	if (d->reuse_key != NULL && !d->made_agent) {
		if (pv_agent_key_hash(ctx, d->reuse_key, &hash, err) == -1)
			return -1;
		p[0] = id;
		p[1] = hash;
		if (pv_db_exec(ctx,
		        PV_SQL("SELECT 1 FROM api_keys WHERE agent_id ="
		               " $1::bigint AND key_hash = $2::bytea"
		               " AND revoked_at IS NULL AND (expires_at IS NULL"
		               " OR expires_at > now() + interval '1 hour')"),
		        2, p, &res, err) == -1)
			return -1;
		if (PQntuples(res) == 1) {
			d->api_key = d->reuse_key;
			return 0;
		}
	}
	d->made_key = 1;
	return pv_agent_key_create(ctx, id, &d->api_key, &prefix, err);
}

/* pivotactl demo-seed [--reuse-key KEY] */
static int
cmd_demo_seed(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	struct demo d;
	const struct pv_ctl_opt opts[] = { { "--reuse-key", 0, &d.reuse_key },
		{ NULL, 0, NULL } };
	const char *password;

	memset(&d, 0, sizeof(d));
	if (parse(argc, argv, opts, NULL, 0, 0, err) == -1 ||
	    pv_db_tx(ctx, demo_seed, &d, err) == -1 ||
	    pv_ctl_dash_demo_login(ctx, d.merchant_id, DEMO_EMAIL, &password,
	        err) == -1 ||
	    (*out = new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "dashboard_email",
	    json_object_new_string(DEMO_EMAIL));
	json_object_object_add(*out, "dashboard_password",
	    json_object_new_string(password));
	json_object_object_add(*out, "merchant_id",
	    json_object_new_string(d.merchant_id));
	json_object_object_add(*out, "agent_id",
	    json_object_new_string(d.agent_id));
	json_object_object_add(*out, "agent_api_key",
	    json_object_new_string(d.api_key));
	json_object_object_add(*out, "created_merchant",
	    json_object_new_boolean(d.made_merchant));
	json_object_object_add(*out, "created_agent",
	    json_object_new_boolean(d.made_agent));
	json_object_object_add(*out, "created_key",
	    json_object_new_boolean(d.made_key));
	json_object_object_add(*out, "seeded_products",
	    json_object_new_int64(d.products));
	return 0;
}

/* The helpers above, for commands in other files (pv_ctl_int.h). */
int
pv_ctl_parse(int argc, char **argv, const struct pv_ctl_opt *opts,
    const char **pos, int minpos, int maxpos, struct pv_err *err)
{
	return parse(argc, argv, opts, pos, minpos, maxpos, err);
}

int
pv_ctl_number(const char *s, long min, long max, const char *name, long *out,
    struct pv_err *err)
{
	return number(s, min, max, name, out, err);
}

int
pv_ctl_usage_error(struct pv_err *err, const char *what, const char *arg)
{
	return usage_error(err, what, arg);
}

struct json_object *
pv_ctl_new_obj(struct pv_err *err)
{
	return new_obj(err);
}

struct json_object *
pv_ctl_rows(const PGresult *res, struct pv_err *err)
{
	return rows_to_json(res, err);
}

struct json_object *
pv_ctl_row(const PGresult *res, const char *what, struct pv_err *err)
{
	return row_to_json(res, what, err);
}

/* A merchant's internal id and currency (result memory); see pv_ctl_int.h. */
int
pv_ctl_merchant(struct pv_ctx *ctx, const char *merchant, const char **id,
    const char **currency, struct pv_err *err)
{
	const char *p[1] = { merchant };
	PGresult *res;

	if (pv_db_exec(ctx,
	        PV_SQL(
	            "SELECT id, currency FROM merchants WHERE public_id = $1"),
	        1, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "merchant", "No such merchant: %s.",
		    merchant);
		return -1;
	}
	*id = PQgetvalue(res, 0, 0);
	*currency = PQgetvalue(res, 0, 1);
	return 0;
}

static const struct cmd cmds[] = {
	{ "migrate", "[--dir DIR]", "apply pending database migrations",
	    cmd_migrate },
	{ "merchant create",
	    "--name NAME --email EMAIL [--store-url URL] [--region CC]"
	    " [--currency ISO]",
	    "register a merchant", cmd_merchant_create },
	{ "merchant list", "", "list merchants", cmd_merchant_list },
	{ "merchant show", "MERCHANT", "show one merchant", cmd_merchant_show },
	{ "merchant connect-shopify",
	    "MERCHANT --shop DOMAIN --token TOKEN|- [--api-base URL]"
	    " [--webhook-secret S]",
	    "verify a Shopify Admin API token with the store and keep it "
	    "sealed",
	    pv_ctl_shopify_connect },
	{ "merchant disconnect-shopify", "MERCHANT",
	    "forget a merchant's Shopify token and webhook secret",
	    pv_ctl_shopify_disconnect },
	{ "merchant connect-stripe",
	    "MERCHANT --secret-key sk_... [--webhook-secret whsec_...]"
	    " [--api-base URL]",
	    "verify a Stripe secret key with Stripe and keep it sealed",
	    pv_ctl_psp_connect_stripe },
	{ "merchant connect-adyen",
	    "MERCHANT --api-key KEY --merchant-account ACCOUNT --hmac-key HEX"
	    " [--api-base URL]",
	    "verify Adyen credentials with Adyen and keep them sealed",
	    pv_ctl_psp_connect_adyen },
	{ "merchant connect-sandbox", "MERCHANT [--webhook-secret whsec_...]",
	    "use the built-in sandbox payment provider (no credentials)",
	    pv_ctl_psp_connect_sandbox },
	{ "merchant set-password",
	    "MERCHANT --email EMAIL [--password PASSWORD|-]",
	    "add a dashboard login or set its password (generated and shown "
	    "once without --password)",
	    pv_ctl_dash_set_password },
	{ "merchant set-shipping",
	    "MERCHANT --country CC|'*' (--rate AMOUNT [--free-over AMOUNT]"
	    " [--min-days N] [--max-days N] | --delete)",
	    "set a flat shipping rate for a destination",
	    pv_ctl_psp_set_shipping },
	{ "merchant set-tax",
	    "MERCHANT --country CC [--region R] (--rate PERCENT"
	    " [--shipping-taxable] | --delete)",
	    "set a tax rate for a country or region", pv_ctl_psp_set_tax },
	{ "merchant set-refunds",
	    "MERCHANT [--on-store-cancel yes|no] [--restock yes|no]",
	    "refund orders the store cancels after payment (default no); "
	    "restock what refunds mirrored to Shopify give back (default no)",
	    pv_ctl_set_refunds },
	{ "merchant set-mail",
	    "MERCHANT [--notify-merchant yes|no]"
	    " [--notify-customers auto|always|never]",
	    "mail the merchant a new-order notice (default yes); mail "
	    "customers (default auto: unless a live Shopify store does)",
	    pv_ctl_set_mail },
	{ "agent create",
	    "--name NAME [--per-minute N] [--daily N] [--merchants M,...]",
	    "create an agent and print its first API key (shown once)",
	    cmd_agent_create },
	{ "agent list", "", "list agents", cmd_agent_list },
	{ "agent show", "AGENT", "show an agent and its keys", cmd_agent_show },
	{ "agent rotate-key", "AGENT [--grace SECONDS]",
	    "issue a new key; old keys keep working for the grace period "
	    "(default 86400)",
	    cmd_agent_rotate_key },
	{ "agent revoke-key", "AGENT (KEY_PREFIX | --all)",
	    "revoke keys at once", cmd_agent_revoke_key },
	{ "agent set-limits", "AGENT [--per-minute N] [--daily N]",
	    "change an agent's rate limit and daily quota",
	    cmd_agent_set_limits },
	{ "agent set-merchants", "AGENT (MERCHANT,... | all)",
	    "limit the merchants an agent may buy from",
	    cmd_agent_set_merchants },
	{ "agent suspend", "AGENT", "refuse every request of an agent",
	    cmd_agent_suspend },
	{ "agent activate", "AGENT", "lift a suspension", cmd_agent_activate },
	{ "sync-products", "MERCHANT [--status | --wait [--timeout S]]",
	    "sync the catalogue from the merchant's Shopify store (a job), or "
	    "show its progress",
	    pv_ctl_sync_products },
	{ "products import",
	    "MERCHANT FILE [--replace] [--dry-run] [--format csv|json|jsonl]",
	    "import a catalog file: every row or none (--replace archives "
	    "products it does not list)",
	    pv_ctl_products_import },
	{ "demo-seed", "[--reuse-key KEY]",
	    "create the demo merchant, its catalog and the demo agent if "
	    "missing; print a working key",
	    cmd_demo_seed },
	{ "jobs list", "[--state S] [--kind K] [--limit N]",
	    "list jobs, newest first", pv_ctl_jobs_list },
	{ "jobs retry", "JOB_ID | --all-dead", "queue dead jobs again",
	    pv_ctl_jobs_retry },
	{ "version", "", "print the version", cmd_version },
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: pivotactl COMMAND [ARGS] [--json]\n\ncommands:\n");
	for (i = 0; i < NCMDS; i++)
		fprintf(f, "  %s %s\n      %s\n", cmds[i].name, cmds[i].usage,
		    cmds[i].help);
	fprintf(f,
	    "\nconfiguration comes from PIVOTA_* environment variables"
	    " (see README.md)\n");
}

/* The command named by argv[1] (and argv[2]); *used counts the words. */
static const struct cmd *
find_cmd(int argc, char **argv, int *used)
{
	size_t i, len;

	for (i = 0; i < NCMDS; i++) {
		len = strlen(argv[1]);
		if (strcmp(cmds[i].name, argv[1]) == 0) {
			*used = 1;
			return &cmds[i];
		}
		if (argc > 2 && strncmp(cmds[i].name, argv[1], len) == 0 &&
		    cmds[i].name[len] == ' ' &&
		    strcmp(cmds[i].name + len + 1, argv[2]) == 0) {
			*used = 2;
			return &cmds[i];
		}
	}
	return NULL;
}

/* Runs the command named by argv; see pv_ctl.h. */
int
pv_ctl_main(int argc, char **argv)
{
	struct pv_err err = { 0 };
	struct json_object *out = NULL;
	const struct cmd *c;
	struct pv_config cfg;
	struct pv_ctx ctx;
	char *args[MAX_ARGS];
	int i, n = 0, json = 0, used, rc;

	if (argc < 2 || strcmp(argv[1], "help") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if ((c = find_cmd(argc, argv, &used)) == NULL) {
		fprintf(stderr, "pivotactl: unknown command %s%s%s\n", argv[1],
		    argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
		usage(stderr);
		return 2;
	}
	for (i = 1 + used; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (n < MAX_ARGS)
			args[n++] = argv[i];
	}
	if (pv_ctx_open(&ctx, "pivotactl", &cfg, &err) == -1) {
		fprintf(stderr, "pivotactl: %s\n", err.msg);
		return 1;
	}
	rc = c->fn(&ctx, n, args, &out, &err);
	if (rc == 0 && json)
		puts(json_object_to_json_string_ext(out,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	else if (rc == 0)
		print_human(out);
	else if (strcmp(err.reason, "usage") == 0)
		rc = 2;
	if (rc != 0)
		fprintf(stderr, "pivotactl %s: %s\n", c->name, err.msg);
	json_object_put(out);
	pv_ctx_close(&ctx, &cfg);
	return rc == 0 ? 0 : rc == 2 ? 2 : 1;
}
