/*
 * Making and unmaking the per-process context shared by the FastCGI
 * programs, pivotactl and the worker.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pv_config.h"
#include "pv_db.h"
#include "pv_http.h"
#include "pv_log.h"
#include "pv_tmpl.h"
#include "pv_upstream.h"

/* Opens the context; see pv_http.h. */
int
pv_ctx_open(struct pv_ctx *ctx, const char *prog, struct pv_config *cfg,
    struct pv_err *err)
{
	memset(ctx, 0, sizeof(*ctx));
	pv_log_init(prog, PV_LOG_INFO);
	if (pv_config_load(cfg, err) == -1)
		return -1;
	pv_log_init(prog, (enum pv_log_level)cfg->log_level);
	ctx->prog = prog;
	ctx->cfg = cfg;
	ctx->now = time(NULL);
	/*
	 * Request ids need uniqueness, not secrecy: seed once, count on.
	 * The seed comes from the kernel, not OpenSSL: a program that does
	 * no cryptography (health) then never starts OpenSSL, whose first
	 * use costs a process 2 MiB of RSS (docs/performance.md).
	 */
	if (getentropy(&ctx->rid_next, sizeof(ctx->rid_next)) == -1 ||
	    getentropy(&ctx->rid_salt, sizeof(ctx->rid_salt)) == -1) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "getentropy: %s",
		    strerror(errno));
		return -1;
	}
	ctx->arena = pv_arena_new(PV_ARENA_CAP);
	ctx->db = pv_db_new(cfg->database_url, prog);
	ctx->up = pv_upstream_new();
	if (ctx->arena == NULL || ctx->db == NULL || ctx->up == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory at start-up");
		pv_ctx_close(ctx, cfg);
		return -1;
	}
	return 0;
}

/* Frees what pv_ctx_open() made. */
void
pv_ctx_close(struct pv_ctx *ctx, struct pv_config *cfg)
{
	pv_tmpl_free(ctx->tmpl);
	pv_upstream_free(ctx->up);
	pv_db_free(ctx->db);
	pv_arena_free(ctx->arena);
	pv_config_free(cfg);
	memset(ctx, 0, sizeof(*ctx));
}

/*
 * libpq needs libldap, which needs GnuTLS, whose constructor starts
 * GnuTLS (its crypto back end, p11-kit, the system priority file) in
 * every process that merely maps it: 0.7 MiB of RSS each, for a library
 * we never call.  Defining this function is GnuTLS's documented way to
 * skip that (GNUTLS_SKIP_GLOBAL_INIT in <gnutls/gnutls.h>; the same as
 * GNUTLS_NO_IMPLICIT_INIT=1 in the environment).  Its users that do
 * run (libldap's TLS, librtmp) call gnutls_global_init() themselves.
 * It must be exported from libpivota-core so that the dynamic linker
 * finds it before GnuTLS's own weak definition.
 */
int _gnutls_global_init_skip(void);

int
_gnutls_global_init_skip(void)
{
	return 1;
}
