/*
 * pivotactl merchant connect-shopify | disconnect-shopify: the
 * operator's side of pv_shopify_connect() and pv_shopify_disconnect().
 * The token is verified against the store before anything is stored,
 * and is never printed; "--token -" reads it from standard input so it
 * stays out of the process list and the shell history.  sync-products
 * asks for and follows the catalogue sync of pv_sync.h.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "pv_ctl_int.h"
#include "pv_shopify.h"
#include "pv_sync.h"

/* Reads one line (the token) from standard input into ctx->arena. */
static int
read_stdin(struct pv_ctx *ctx, const char **out, struct pv_err *err)
{
	char line[PV_SHOPIFY_TOKEN_MAX + 2];
	size_t len;

	if (fgets(line, sizeof(line), stdin) == NULL) {
		PV_ERR(err, PV_E_INVALID, "token",
		    "no token on standard input");
		return -1;
	}
	len = strcspn(line, "\r\n");
	if (len == strlen(line) && !feof(stdin)) {
		PV_ERR(err, PV_E_INVALID, "token", "token is too long");
		return -1;
	}
	*out = pv_arena_strndup(ctx->arena, line, len, err);
	memset(line, 0, sizeof(line));
	return *out == NULL ? -1 : 0;
}

static struct json_object *
str_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? json_object_new_string(s) : NULL;
}

/*
 * pivotactl merchant connect-shopify MERCHANT --shop DOMAIN --token
 * TOKEN [--api-base URL] [--webhook-secret S]: prints the shop Shopify
 * reported.  Fails (nothing stored) on a bad domain, an unknown
 * merchant or a token the store refuses.
 */
int
pv_ctl_shopify_connect(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	struct pv_shopify_conn conn = { NULL, NULL, NULL };
	const char *merchant, *secret = NULL, *at;
	const struct pv_ctl_opt opts[] = { { "--shop", 0, &conn.shop },
		{ "--token", 0, &conn.token },
		{ "--api-base", 0, &conn.api_base },
		{ "--webhook-secret", 0, &secret }, { NULL, 0, NULL } };
	struct pv_shopify_shop shop;

	if (pv_ctl_parse(argc, argv, opts, &merchant, 1, 1, err) == -1)
		return -1;
	if (conn.shop == NULL || conn.token == NULL)
		return pv_ctl_usage_error(err,
		    "required:", "--shop and --token");
	if (strcmp(conn.token, "-") == 0 &&
	    read_stdin(ctx, &conn.token, err) == -1)
		return -1;
	if (pv_shopify_check_shop(ctx, conn.shop, conn.api_base, &conn.shop,
	        err) == -1)
		return -1;
	if (pv_shopify_connect(ctx, merchant, &conn, secret, &shop, &at, err) ==
	        -1 ||
	    (*out = pv_ctl_new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "merchant_id",
	    json_object_new_string(merchant));
	json_object_object_add(*out, "shop", json_object_new_string(conn.shop));
	json_object_object_add(*out, "myshopify_domain",
	    json_object_new_string(shop.domain));
	json_object_object_add(*out, "shop_name",
	    json_object_new_string(shop.name));
	json_object_object_add(*out, "currency",
	    json_object_new_string(shop.currency));
	json_object_object_add(*out, "api_version",
	    str_or_null(shop.api_version));
	json_object_object_add(*out, "api_base", str_or_null(conn.api_base));
	json_object_object_add(*out, "webhook_secret",
	    json_object_new_boolean(secret != NULL));
	json_object_object_add(*out, "connected_at",
	    json_object_new_string(at));
	return 0;
}

/*
 * pivotactl merchant disconnect-shopify MERCHANT: forgets the token
 * and webhook secret; the catalogue stays until the next sync decides.
 */
int
pv_ctl_shopify_disconnect(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *merchant, *shop;

	if (pv_ctl_parse(argc, argv, NULL, &merchant, 1, 1, err) == -1 ||
	    pv_shopify_disconnect(ctx, merchant, &shop, err) == -1 ||
	    (*out = pv_ctl_new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "merchant_id",
	    json_object_new_string(merchant));
	json_object_object_add(*out, "shop", json_object_new_string(shop));
	json_object_object_add(*out, "connected", json_object_new_boolean(0));
	return 0;
}

/* st as the object sync-products prints (owned by the caller). */
static struct json_object *
sync_out(const struct pv_sync_status *st, int enqueued, int with_enqueued,
    struct pv_err *err)
{
	struct json_object *o, *probs, *arr, *e;
	size_t i;

	if ((o = pv_ctl_new_obj(err)) == NULL)
		return NULL;
	json_object_object_add(o, "merchant_id",
	    json_object_new_string(st->merchant));
	json_object_object_add(o, "shop", json_object_new_string(st->shop));
	if (with_enqueued)
		json_object_object_add(o, "enqueued",
		    json_object_new_boolean(enqueued));
	json_object_object_add(o, "state", json_object_new_string(st->state));
	json_object_object_add(o, "run", json_object_new_int64(st->run));
	json_object_object_add(o, "products",
	    json_object_new_int64(st->products));
	json_object_object_add(o, "pages", json_object_new_int64(st->pages));
	json_object_object_add(o, "skipped",
	    json_object_new_int64(st->skipped));
	json_object_object_add(o, "started_at", str_or_null(st->started_at));
	json_object_object_add(o, "finished_at", str_or_null(st->finished_at));
	json_object_object_add(o, "error", str_or_null(st->error));
	json_object_object_add(o, "job_id", str_or_null(st->job_id));
	json_object_object_add(o, "job_state", str_or_null(st->job_state));
	json_object_object_add(o, "job_attempts",
	    json_object_new_int64(st->job_attempts));
	json_object_object_add(o, "result",
	    st->result != NULL ? json_tokener_parse(st->result) : NULL);
	/* Objects, so that the human output prints them as a table. */
	probs = st->problems != NULL ? json_tokener_parse(st->problems) : NULL;
	arr = json_object_new_array();
	for (i = 0; probs != NULL && arr != NULL &&
	     i < json_object_array_length(probs);
	     i++) {
		if ((e = json_object_new_object()) == NULL)
			break;
		json_object_object_add(e, "problem",
		    json_object_get(json_object_array_get_idx(probs, i)));
		json_object_array_add(arr, e);
	}
	json_object_put(probs);
	json_object_object_add(o, "problems", arr);
	return o;
}

/*
 * pivotactl sync-products MERCHANT [--status] [--wait] [--timeout S]:
 * enqueues a catalogue sync (unless one is queued or running: then it
 * reports that one) and prints where the sync is.  --status only
 * reports.  --wait polls every half second, printing a progress line
 * to standard error whenever it moves, until the run is done (exit 0)
 * or failed (exit 1), at most --timeout seconds (default 3600).
 */
int
pv_ctl_sync_products(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *merchant, *status = NULL, *wait = NULL, *tmo = NULL;
	const struct pv_ctl_opt opts[] = { { "--status", 1, &status },
		{ "--wait", 1, &wait }, { "--timeout", 0, &tmo },
		{ NULL, 0, NULL } };
	const struct timespec half = { 0, 500000000L };
	struct pv_sync_status st;
	char last[160] = "", line[160];
	long timeout = 3600, waited_ms = 0;
	int enqueued = 0, failed = 0;

	if (pv_ctl_parse(argc, argv, opts, &merchant, 1, 1, err) == -1 ||
	    pv_ctl_number(tmo, 1, 86400 * 7, "--timeout", &timeout, err) == -1)
		return -1;
	if (status != NULL && wait != NULL)
		return pv_ctl_usage_error(err, "give --status or --wait,",
		    "not both");
	if ((status != NULL ?
	            pv_sync_status(ctx, merchant, &st, err) :
	            pv_sync_request(ctx, merchant, &enqueued, &st, err)) == -1)
		return -1;
	while (wait != NULL && !pv_sync_ended(&st, &failed)) {
		/* Until it starts, the counters are the last run's. */
		if (strcmp(st.state, "queued") == 0)
			snprintf(line, sizeof(line), "%s: queued (job %s)",
			    st.merchant, st.job_id != NULL ? st.job_id : "-");
		else
			snprintf(line, sizeof(line),
			    "%s: %s, %ld products, %ld pages%s", st.merchant,
			    st.state, st.products, st.pages,
			    st.error != NULL ? " (retrying)" : "");
		if (strcmp(line, last) != 0) {
			fprintf(stderr, "%s\n", line);
			memcpy(last, line, sizeof(last));
		}
		if (waited_ms >= timeout * 1000) {
			PV_ERR(err, PV_E_TIMEOUT, NULL,
			    "the sync did not end in %ld s (state %s)", timeout,
			    st.state);
			return -1;
		}
		nanosleep(&half, NULL);
		waited_ms += 500;
		pv_arena_reset(ctx->arena);
		if (pv_sync_status(ctx, merchant, &st, err) == -1)
			return -1;
	}
	if ((*out = sync_out(&st, enqueued, status == NULL, err)) == NULL)
		return -1;
	if (wait != NULL && failed) {
		PV_ERR(err, PV_E_UPSTREAM, NULL, "the sync failed: %s",
		    st.error != NULL ? st.error : "its job is dead");
		return -1;
	}
	return 0;
}
