/*
 * Configuration loading.  One table lists every key with its kind, its
 * place in struct pv_config and its default; the file, the environment
 * and the defaults are merged through it, so adding a setting is one
 * line here and one member in the struct.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_config.h"
#include "pv_crypto.h"
#include "pv_log.h"

enum kind {
	K_STR,   /* char * */
	K_KEY32, /* 64 hex chars into master_key */
	K_ENV,   /* enum pv_env */
	K_LEVEL, /* enum pv_log_level */
	K_SIZE,  /* size_t, decimal */
};

struct keydef {
	const char *name; /* environment / file key */
	enum kind kind;   /* how to parse it */
	size_t off;       /* where it goes in struct pv_config */
	const char *def;  /* default, or NULL for none */
};

#define OFF(m) offsetof(struct pv_config, m)

static const struct keydef keys[] = {
	{ "PIVOTA_DATABASE_URL", K_STR, OFF(database_url), "" },
	{ "PIVOTA_MASTER_KEY", K_KEY32, OFF(master_key), NULL },
	{ "PIVOTA_ENV", K_ENV, OFF(env), "dev" },
	{ "PIVOTA_LOG_LEVEL", K_LEVEL, OFF(log_level), "info" },
	{ "PIVOTA_BODY_MAX", K_SIZE, OFF(body_max), "1048576" },
	{ "PIVOTA_PUBLIC_URL", K_STR, OFF(public_url),
	    "http://127.0.0.1:8080" },
	{ "PIVOTA_STRIPE_API_BASE", K_STR, OFF(stripe_api_base),
	    "https://api.stripe.com" },
	{ "PIVOTA_SHOPIFY_API_BASE", K_STR, OFF(shopify_api_base), "" },
	{ "PIVOTA_ADYEN_API_BASE", K_STR, OFF(adyen_api_base),
	    "https://checkout-test.adyen.com/v71" },
	{ "PIVOTA_TEMPLATE_DIR", K_STR, OFF(template_dir), "templates" },
	{ "PIVOTA_MIGRATIONS_DIR", K_STR, OFF(migrations_dir), "migrations" },
	{ "PIVOTA_SMTP_URL", K_STR, OFF(smtp_url), "" },
	{ "PIVOTA_SMTP_USER", K_STR, OFF(smtp_user), "" },
	{ "PIVOTA_SMTP_PASSWORD", K_STR, OFF(smtp_password), "" },
	{ "PIVOTA_MAIL_FROM", K_STR, OFF(mail_from), "orders@pivota.invalid" },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const char *const env_names[PV_ENV__MAX] = {
	"dev",  /* PV_ENV_DEV */
	"test", /* PV_ENV_TEST */
	"prod", /* PV_ENV_PROD */
};

static const char *
env_lookup(const char *name)
{
	return getenv(name);
}

static int
lookup_name(const char *const *names, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

/* Parses one value of kind k into cfg; -1 with PV_E_INVALID if bad. */
static int
set_value(struct pv_config *cfg, const struct keydef *k, const char *v,
    struct pv_err *err)
{
	char *base = (char *)cfg + k->off;
	unsigned long long n;
	char *end;
	size_t i;
	int idx;

	switch (k->kind) {
	case K_STR:
		if ((*(char **)(void *)base = strdup(v)) == NULL) {
			PV_ERR(err, PV_E_NOMEM, k->name, "out of memory");
			return -1;
		}
		return 0;
	case K_KEY32:
		if (strlen(v) != 64 ||
		    pv_crypto_hex_decode_buf(v, 64, cfg->master_key,
		        sizeof(cfg->master_key), &i, k->name, err) == -1)
			goto bad;
		cfg->have_master_key = 1;
		return 0;
	case K_ENV:
		if ((idx = lookup_name(env_names, PV_ENV__MAX, v)) < 0)
			goto bad;
		cfg->env = (enum pv_env)idx;
		return 0;
	case K_LEVEL:
		if ((idx = pv_log_level_parse(v)) < 0)
			goto bad;
		cfg->log_level = idx;
		return 0;
	case K_SIZE:
		if (!isdigit((unsigned char)v[0]))
			goto bad;
		errno = 0;
		n = strtoull(v, &end, 10);
		if (errno != 0 || *end != '\0' || n == 0 || n > (1ull << 40))
			goto bad;
		*(size_t *)(void *)base = (size_t)n;
		return 0;
	}
bad:
	PV_ERR(err, PV_E_INVALID, k->name, "%s has an invalid value", k->name);
	return -1;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Reads path into vals[] (strdup'd, indexed like keys[]). */
static int
read_file(const char *path, char **vals, struct pv_err *err)
{
	char line[4096], *k, *v, *eq;
	unsigned lineno = 0;
	FILE *f;
	size_t i;
	int rc = -1;

	if ((f = fopen(path, "r")) == NULL) {
		PV_ERR(err, PV_E_INVALID, "PIVOTA_CONFIG", "cannot open %s: %s",
		    path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			PV_ERR(err, PV_E_INVALID, "PIVOTA_CONFIG",
			    "%s:%u: line too long", path, lineno);
			goto out;
		}
		k = trim(line);
		if (*k == '\0' || *k == '#')
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			PV_ERR(err, PV_E_INVALID, "PIVOTA_CONFIG",
			    "%s:%u: expected KEY=VALUE", path, lineno);
			goto out;
		}
		*eq = '\0';
		k = trim(k);
		v = trim(eq + 1);
		for (i = 0; i < NKEYS; i++)
			if (strcmp(keys[i].name, k) == 0)
				break;
		if (i == NKEYS) {
			PV_ERR(err, PV_E_INVALID, "PIVOTA_CONFIG",
			    "%s:%u: unknown key %s", path, lineno, k);
			goto out;
		}
		free(vals[i]);
		if ((vals[i] = strdup(v)) == NULL) {
			PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	fclose(f);
	return rc;
}

/* Loads the configuration from the file and the environment. */
int
pv_config_load(struct pv_config *cfg, struct pv_err *err)
{
	return pv_config_load_from(cfg, env_lookup, err);
}

/* Loads the configuration, asking lookup() instead of the environment. */
int
pv_config_load_from(struct pv_config *cfg,
    const char *(*lookup)(const char *name), struct pv_err *err)
{
	char *vals[NKEYS] = { 0 };
	const char *path, *v;
	size_t i;
	int rc = -1;

	memset(cfg, 0, sizeof(*cfg));
	path = lookup("PIVOTA_CONFIG");
	if (path != NULL && *path != '\0' && read_file(path, vals, err) == -1)
		goto out;
	for (i = 0; i < NKEYS; i++) {
		if ((v = lookup(keys[i].name)) == NULL)
			v = vals[i] != NULL ? vals[i] : keys[i].def;
		if (v != NULL && set_value(cfg, &keys[i], v, err) == -1)
			goto out;
	}
	if (cfg->env == PV_ENV_PROD && !cfg->have_master_key) {
		PV_ERR(err, PV_E_INVALID, "PIVOTA_MASTER_KEY",
		    "PIVOTA_MASTER_KEY is required when PIVOTA_ENV=prod");
		goto out;
	}
	rc = 0;
out:
	for (i = 0; i < NKEYS; i++)
		free(vals[i]);
	if (rc == -1)
		pv_config_free(cfg);
	return rc;
}

/* Frees the strings of cfg and wipes the master key. */
void
pv_config_free(struct pv_config *cfg)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (keys[i].kind != K_STR)
			continue;
		free(*(char **)(void *)((char *)cfg + keys[i].off));
	}
	explicit_bzero(cfg, sizeof(*cfg));
}

/* 0 if a master key is configured, else -1 with PV_E_INTERNAL. */
int
pv_config_require_master_key(const struct pv_config *cfg, struct pv_err *err)
{
	if (cfg->have_master_key)
		return 0;
	PV_ERR(err, PV_E_INTERNAL, "PIVOTA_MASTER_KEY",
	    "PIVOTA_MASTER_KEY is not configured");
	return -1;
}

/* "dev", "test" or "prod". */
const char *
pv_config_env_name(enum pv_env env)
{
	return env < PV_ENV__MAX ? env_names[env] : "?";
}
