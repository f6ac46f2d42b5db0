/*
 * Making and unmaking the per-process context shared by the FastCGI
 * programs, pivotactl and the worker.
 */
#include <string.h>
#include <time.h>

#include "pv_config.h"
#include "pv_crypto.h"
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
	/* Request ids need uniqueness, not secrecy: seed once, count on. */
	if (pv_crypto_random(&ctx->rid_next, sizeof(ctx->rid_next), err) ==
	        -1 ||
	    pv_crypto_random(&ctx->rid_salt, sizeof(ctx->rid_salt), err) == -1)
		return -1;
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
