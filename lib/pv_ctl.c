/*
 * Command dispatch for pivotactl.  Commands receive their arguments
 * after the command name, the opened context, and whether --json was
 * given anywhere on the line.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "pv_config.h"
#include "pv_ctl.h"
#include "pv_db.h"
#include "pv_log.h"
#include "pv_migrate.h"

struct cmd {
	const char *name;  /* first word(s) after pivotactl */
	const char *usage; /* arguments, for the usage text */
	const char *help;  /* one line */
	int (*fn)(struct pv_ctx *ctx, int argc, char **argv, int json,
	    struct pv_err *err); /* 0, or -1 with err set */
};

/* Records an unexpected argument: exit status 2 instead of 1. */
static int
usage_error(struct pv_err *err, const char *arg)
{
	PV_ERR(err, PV_E_INVALID, NULL, "unexpected argument %s", arg);
	pv_err_reason(err, "usage");
	return -1;
}

/* Prints obj (borrowed) as one line of JSON. */
static void
print_json(struct json_object *obj)
{
	puts(json_object_to_json_string_ext(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* pivotactl migrate [--dir DIR]: applies pending migrations. */
static int
cmd_migrate(struct pv_ctx *ctx, int argc, char **argv, int json,
    struct pv_err *err)
{
	const char *dir = ctx->cfg->migrations_dir;
	struct json_object *o;
	int i, applied;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
			dir = argv[++i];
			continue;
		}
		return usage_error(err, argv[i]);
	}
	if (pv_migrate_run(ctx, dir, json ? NULL : stdout, &applied, err) == -1)
		return -1;
	if (json) {
		if ((o = json_object_new_object()) == NULL) {
			PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
			return -1;
		}
		json_object_object_add(o, "applied",
		    json_object_new_int(applied));
		print_json(o);
		json_object_put(o);
	} else if (applied == 0) {
		puts("database is up to date");
	}
	return 0;
}

/* pivotactl version. */
static int
cmd_version(struct pv_ctx *ctx, int argc, char **argv, int json,
    struct pv_err *err)
{
	(void)ctx;
	(void)argc;
	(void)argv;
	(void)err;
	if (json)
		printf("{\"version\":\"%s\"}\n", PV_VERSION);
	else
		printf("pivotactl %s\n", PV_VERSION);
	return 0;
}

static const struct cmd cmds[] = {
	{ "migrate", "[--dir DIR]", "apply pending database migrations",
	    cmd_migrate },
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

/* Runs the command named by argv; see pv_ctl.h. */
int
pv_ctl_main(int argc, char **argv)
{
	struct pv_err err = { 0 };
	struct pv_config cfg;
	struct pv_ctx ctx;
	char *args[64];
	int i, n = 0, json = 0, rc;
	size_t c;

	if (argc < 2 || strcmp(argv[1], "help") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (c = 0; c < NCMDS; c++)
		if (strcmp(cmds[c].name, argv[1]) == 0)
			break;
	if (c == NCMDS) {
		fprintf(stderr, "pivotactl: unknown command %s\n", argv[1]);
		usage(stderr);
		return 2;
	}
	for (i = 2; i < argc && n < (int)(sizeof(args) / sizeof(args[0]));
	     i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else
			args[n++] = argv[i];
	}
	if (pv_ctx_open(&ctx, "pivotactl", &cfg, &err) == -1) {
		fprintf(stderr, "pivotactl: %s\n", err.msg);
		return 1;
	}
	rc = cmds[c].fn(&ctx, n, args, json, &err);
	if (rc == -1) {
		if (strcmp(err.reason, "usage") == 0)
			rc = 2;
		fprintf(stderr, "pivotactl %s: %s\n", cmds[c].name, err.msg);
	}
	pv_ctx_close(&ctx, &cfg);
	return rc == 0 ? 0 : rc == 2 ? 2 : 1;
}
