#ifndef PV_CONFIG_H
#define PV_CONFIG_H

#include <stddef.h>

#include "pv_err.h"

/*
 * Process configuration, read once at start-up from an optional file
 * (PIVOTA_CONFIG, lines of KEY=VALUE, '#' comments) and then from the
 * environment, which wins.  Keys are the environment names:
 *
 *   PIVOTA_DATABASE_URL   libpq URI or conninfo ("" = libpq defaults)
 *   PIVOTA_MASTER_KEY     64 hex chars: the AES-256 key sealing secrets
 *   PIVOTA_ENV            dev | test | prod
 *   PIVOTA_LOG_LEVEL      error | warn | info | debug
 *   PIVOTA_BODY_MAX       request body cap in bytes (1 MiB)
 *   PIVOTA_PUBLIC_URL     how the outside world reaches us
 *   PIVOTA_STRIPE_API_BASE, PIVOTA_SHOPIFY_API_BASE,
 *   PIVOTA_ADYEN_API_BASE provider base URLs (tests point them at
 *                         loopback fakes)
 *   PIVOTA_TEMPLATE_DIR, PIVOTA_MIGRATIONS_DIR
 *   PIVOTA_SMTP_URL       mail relay, smtps:// or smtp:// (STARTTLS);
 *                         "" = mail waits in the queue (docs/mail.md)
 *   PIVOTA_SMTP_USER, PIVOTA_SMTP_PASSWORD   relay AUTH ("" = none)
 *   PIVOTA_MAIL_FROM      our sender address; its domain ends each
 *                         Message-ID
 *
 * The struct is filled by pv_config_load() and is read-only after;
 * its strings are owned by it and freed by pv_config_free().
 */
enum pv_env {
	PV_ENV_DEV,
	PV_ENV_TEST,
	PV_ENV_PROD,
	PV_ENV__MAX
};

struct pv_config {
	char *database_url;           /* PIVOTA_DATABASE_URL */
	unsigned char master_key[32]; /* decoded PIVOTA_MASTER_KEY */
	int have_master_key;          /* PIVOTA_MASTER_KEY was set and valid */
	enum pv_env env;              /* PIVOTA_ENV */
	int log_level;                /* enum pv_log_level */
	size_t body_max;              /* PIVOTA_BODY_MAX */
	char *public_url;             /* PIVOTA_PUBLIC_URL */
	char *stripe_api_base;        /* PIVOTA_STRIPE_API_BASE */
	char *shopify_api_base; /* PIVOTA_SHOPIFY_API_BASE, "" = the shop */
	char *adyen_api_base;   /* PIVOTA_ADYEN_API_BASE */
	char *template_dir;     /* PIVOTA_TEMPLATE_DIR */
	char *migrations_dir;   /* PIVOTA_MIGRATIONS_DIR */
	char *smtp_url;         /* PIVOTA_SMTP_URL, "" = not configured */
	char *smtp_user;        /* PIVOTA_SMTP_USER */
	char *smtp_password;    /* PIVOTA_SMTP_PASSWORD */
	char *mail_from;        /* PIVOTA_MAIL_FROM */
};

/*
 * Fills cfg from defaults, the file and the environment.  Returns 0, or
 * -1 with PV_E_INVALID naming the bad key (unreadable file, unknown key
 * in the file, malformed value) or PV_E_NOMEM.  On failure cfg holds
 * nothing that needs freeing.
 */
int pv_config_load(struct pv_config *cfg, struct pv_err *err);

/* Like pv_config_load() but reads lookup(name) instead of getenv(). */
int pv_config_load_from(struct pv_config *cfg,
    const char *(*lookup)(const char *name), struct pv_err *err);

void pv_config_free(struct pv_config *cfg);

/* Fails with PV_E_INTERNAL unless a master key is configured. */
int pv_config_require_master_key(const struct pv_config *cfg,
    struct pv_err *err);

const char *pv_config_env_name(enum pv_env env);

/* The release, reported by /health and pivotactl. */
#define PV_VERSION "0.1.0"

#endif /* PV_CONFIG_H */
