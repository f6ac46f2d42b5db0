/*
 * The Shopify catalogue sync: the catalog.sync job, the request and
 * status behind `pivotactl sync-products`, and the mapping of Shopify
 * product nodes to catalog records.  See pv_sync.h for the contract and
 * docs/shopify.md for the design.
 *
 * Every transaction of a run starts by locking the merchant_shopify
 * row and checking that the run is still the current one, uses the
 * batch it started and (for a page) starts from the cursor this walk
 * last committed.  A second worker running the same job (a lease taken
 * over) or a stale job therefore cannot stage a page twice or apply a
 * batch that is not its own: it gets PV_E_CONFLICT and stops.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "pv_arena.h"
#include "pv_buf.h"
#include "pv_catalog.h"
#include "pv_db.h"
#include "pv_json.h"
#include "pv_log.h"
#include "pv_money.h"
#include "pv_shopify.h"
#include "pv_sync.h"

#define DESCRIPTION_MAX 65535 /* products.description, in bytes here */
#define PAGE_ARENA_CAP  (32u * 1024u * 1024u) /* one page of records */
#define PROBLEMS_KEPT   10 /* merchant_shopify.sync_problems */

/* merchant_shopify with its merchant and the current run's job. */
#define STATUS_SQL \
	"SELECT m.id, m.public_id, s.shop_domain, s.sync_state, s.sync_run," \
	" s.sync_products, s.sync_pages, s.sync_skipped," \
	" array_to_json(s.sync_problems)::text," \
	" to_char(s.sync_started_at AT TIME ZONE 'UTC'," \
	"  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')," \
	" to_char(s.sync_finished_at AT TIME ZONE 'UTC'," \
	"  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')," \
	" s.sync_error, s.sync_result::text, j.id, j.state, j.attempts," \
	" s.disconnected_at IS NULL" \
	" FROM merchants m JOIN merchant_shopify s ON s.merchant_id = m.id" \
	" LEFT JOIN jobs j ON j.dedup_key = 'catalog.sync:' || m.id || ':'" \
	"  || s.sync_run" \
	" WHERE m.id = $1::bigint OR m.public_id = $2"

/* One run of the job, shared by the walk's callbacks. */
struct run {
	struct pv_ctx *ctx;       /* the worker's */
	const struct pv_job *job; /* the claimed job (for its lease) */
	const char *merchant_id;  /* internal id */
	const char *run;          /* sync_run of this job, decimal */
	const char *batch;        /* catalog_batches.id being staged */
	const char *currency;     /* the shop's */
	char cursor[PV_SHOPIFY_CURSOR_MAX]; /* last committed, "" = start */
	struct pv_arena *pa;                /* the page's records */
	struct pv_catalog page;             /* the page's products */
	long products;                      /* staged by this walk */
	long skipped;                       /* refused by this walk */
};

/* ---- Products ---------------------------------------------------- */

/* The string member key of o copied into a, or NULL if absent/null. */
static const char *
copy_str(struct pv_arena *a, struct json_object *o, const char *key,
    struct pv_err *err)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return pv_arena_strndup(a, json_object_get_string(v),
	    (size_t)json_object_get_string_len(v), err);
}

/* o.a.b.c... for a NULL-terminated path of object keys, or NULL. */
static struct json_object *
dig(struct json_object *o, const char *const *path)
{
	for (; o != NULL && *path != NULL; path++)
		if (!json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, *path, &o))
			return NULL;
	return o;
}

/*
 * Appends one byte of text, collapsing white space as HTML does: a run
 * of blanks becomes one space (*blank 1), or one line break when a
 * block tag was in it (*blank 2), and none at the start.  Control
 * characters are dropped.
 */
static void
put_char(struct pv_buf *b, char ch, int *blank)
{
	if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
		*blank = *blank == 0 ? 1 : *blank;
		return;
	}
	if ((unsigned char)ch < 0x20 || ch == 0x7f)
		return;
	if (*blank == 2 && b->len > 0)
		pv_buf_append(b, "\n", 1);
	else if (*blank == 1 && b->len > 0)
		pv_buf_append(b, " ", 1);
	*blank = 0;
	pv_buf_append(b, &ch, 1);
}

/* Tags after which text goes on a new line. */
static bool
block_tag(const char *t, size_t len)
{
	static const char *const blocks[] = { "p", "/p", "br", "br/", "/div",
		"div", "li", "/li", "/h1", "/h2", "/h3", "/h4", "/tr", "/ul",
		"/ol", NULL };
	size_t i, n;

	for (n = 0; n < len && t[n] != ' ' && t[n] != '>' && t[n] != '\t' &&
	     t[n] != '\n';
	     n++)
		;
	for (i = 0; blocks[i] != NULL; i++)
		if (strlen(blocks[i]) == n && strncasecmp(blocks[i], t, n) == 0)
			return true;
	return false;
}

/* Plain text of HTML; see pv_sync.h. */
const char *
pv_sync_html_text(struct pv_arena *a, const char *html, size_t max,
    struct pv_err *err)
{
	static const struct {
		const char *name;
		char ch;
	} ents[] = { { "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' },
		{ "quot;", '"' }, { "#39;", '\'' }, { "apos;", '\'' },
		{ "nbsp;", ' ' }, { NULL, 0 } };
	const char *s = html, *end, *out;
	struct pv_buf b;
	size_t i, len, cut;
	int blank = 0;

	pv_buf_init(&b, a, strlen(html) + 2);
	while (*s != '\0') {
		if (*s == '<') {
			if ((end = strchr(s, '>')) == NULL)
				break;
			if (block_tag(s + 1, (size_t)(end - s - 1)))
				blank = 2;
			s = end + 1;
			continue;
		}
		if (*s == '&') {
			for (i = 0; ents[i].name != NULL; i++) {
				len = strlen(ents[i].name);
				if (strncmp(s + 1, ents[i].name, len) == 0)
					break;
			}
			if (ents[i].name != NULL) {
				put_char(&b, ents[i].ch, &blank);
				s += 1 + len;
				continue;
			}
		}
		put_char(&b, *s++, &blank);
	}
	if (pv_buf_finish(&b, &out, &len, err) == -1)
		return NULL;
	if (len <= max)
		return out;
	/* Cut on a character boundary. */
	for (cut = max; cut > 0 && ((unsigned char)out[cut] & 0xc0) == 0x80;
	     cut--)
		;
	return pv_arena_strndup(a, out, cut, err);
}

/* A handle Shopify gave, as ours: kept if valid, else slugged. */
static const char *
handle_of(struct pv_arena *a, const char *h, struct pv_err *err)
{
	size_t i, len = h != NULL ? strlen(h) : 0;
	bool ok = len > 0 && len <= 255 && h[0] != '-' && h[len - 1] != '-';

	for (i = 0; ok && i < len; i++)
		ok = (h[i] >= 'a' && h[i] <= 'z') ||
		    (h[i] >= '0' && h[i] <= '9') || h[i] == '-';
	if (ok)
		return h;
	if (len == 0)
		return ""; /* pv_catalog_finish makes one from the title */
	return pv_catalog_slug(a, h, err);
}

/* Records a problem of product p; -1 only when memory ran out. */
static int
refuse(struct pv_catalog *c, struct pv_catalog_product *p, const char *where,
    const char *msg, struct pv_err *err)
{
	p->bad = true;
	return pv_catalog_problem(c, where, msg, err);
}

/* Adds the image URL at path of node to p unless p has it already. */
static int
add_image(struct pv_catalog *c, struct pv_catalog_product *p,
    struct json_object *node, const char *const *path, size_t max,
    struct pv_err *err)
{
	struct json_object *u = dig(node, path);
	const char *url;
	size_t i;

	if (u == NULL || !json_object_is_type(u, json_type_string))
		return 0;
	url = json_object_get_string(u);
	for (i = 0; i < p->nimages; i++)
		if (strcmp(p->images[i], url) == 0)
			return 0;
	if (p->nimages == max)
		return 0;
	if ((p->images[p->nimages] = pv_arena_strdup(c->arena, url, err)) ==
	    NULL)
		return -1;
	p->nimages++;
	return 0;
}

/*
 * A variant's selectedOptions as our options object, leaving out
 * Shopify's placeholder option of products without options ("Title":
 * "Default Title").  Returns NULL with err set, or JSON text.
 */
static const char *
options_of(struct pv_arena *a, struct json_object *sel, struct pv_err *err)
{
	struct json_object *o = pv_json_new_obj(a, err), *e;
	const char *name, *value, *out;
	size_t i, n;

	n = sel != NULL && json_object_is_type(sel, json_type_array) ?
	    json_object_array_length(sel) :
	    0;
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(sel, i);
		name = json_object_get_string(
		    dig(e, (const char *const[]){ "name", NULL }));
		value = json_object_get_string(
		    dig(e, (const char *const[]){ "value", NULL }));
		if (name == NULL || value == NULL ||
		    (strcmp(name, "Title") == 0 &&
		        strcmp(value, "Default Title") == 0))
			continue;
		pv_json_set_str(o, name, value, err);
	}
	if (pv_json_to_str(a, o, &out, NULL, err) == -1)
		return NULL;
	return out;
}

/* One variant node into p; a problem refuses p. */
static int
add_variant(struct pv_catalog *c, struct pv_catalog_product *p,
    struct json_object *vn, struct pv_err *err)
{
	struct pv_err verr = { 0 };
	struct pv_catalog_variant *v;
	struct json_object *q, *avail;
	const char *where, *price, *compare;
	char msg[320];
	size_t k;

	if ((where = copy_str(c->arena, vn, "id", err)) == NULL) {
		if (err->code != PV_OK)
			return -1;
		return refuse(c, p, p->where, "a variant has no id", err);
	}
	if ((v = pv_catalog_add_variant(c, p, where, err)) == NULL)
		return -1;
	v->external_id = where;
	if ((v->sku = copy_str(c->arena, vn, "sku", err)) == NULL)
		v->sku = "";
	if ((v->title = copy_str(c->arena, vn, "title", err)) == NULL)
		v->title = "";
	price = copy_str(c->arena, vn, "price", err);
	compare = copy_str(c->arena, vn, "compareAtPrice", err);
	if ((v->options = options_of(c->arena,
	         json_object_object_get_ex(vn, "selectedOptions", &q) ? q :
	                                                                NULL,
	         err)) == NULL ||
	    err->code != PV_OK)
		return -1;
	if (price == NULL ||
	    pv_money_parse(price, strlen(price), c->currency, 0,
	        &v->price_minor, "price", &verr) == -1 ||
	    (compare != NULL &&
	        pv_money_parse(compare, strlen(compare), c->currency, 0,
	            &v->compare_minor, "compareAtPrice", &verr) == -1)) {
		snprintf(msg, sizeof(msg), "price: %s",
		    price == NULL ? "missing" : verr.msg);
		return refuse(c, p, where, msg, err);
	}
	/*
	 * Stock: a counted quantity is tracked; a variant Shopify sells
	 * with nothing counted (not tracked, or "continue selling when out
	 * of stock") never runs out here either.
	 */
	avail =
	    json_object_object_get_ex(vn, "availableForSale", &q) ? q : NULL;
	if (json_object_object_get_ex(vn, "inventoryQuantity", &q) &&
	    json_object_is_type(q, json_type_int)) {
		v->inventory = json_object_get_int64(q);
		v->tracked =
		    !(json_object_get_boolean(avail) && v->inventory <= 0);
	} else {
		v->inventory = 0;
		v->tracked = !json_object_get_boolean(avail);
	}
	/* Shopify allows a SKU twice in a product; we match by the first. */
	for (k = 0; k + 1 < p->nvariants && *v->sku != '\0'; k++)
		if (strcmp(p->variants[k].sku, v->sku) == 0)
			v->sku = "";
	return 0;
}

/* One product node into c; see pv_sync.h. */
int
pv_sync_product(struct pv_catalog *c, struct json_object *node,
    struct pv_err *err)
{
	static const char *const featured[] = { "featuredMedia", "preview",
		"image", "url", NULL };
	static const char *const preview[] = { "preview", "image", "url",
		NULL };
	static const char *const vpath[] = { "variants", "nodes", NULL };
	static const char *const mpath[] = { "media", "nodes", NULL };
	struct pv_catalog_product *p;
	struct json_object *arr, *q;
	const char *where, *s;
	size_t i, n, nerr = c->errors_total;

	if ((where = copy_str(c->arena, node, "id", err)) == NULL) {
		if (err->code != PV_OK)
			return -1;
		where = "a product without id";
	}
	if ((p = pv_catalog_add_product(c, where, err)) == NULL)
		return -1;
	if (strcmp(where, "a product without id") == 0)
		return refuse(c, p, where, "Shopify sent no id", err);
	p->external_id = where;
	if ((s = copy_str(c->arena, node, "title", err)) != NULL)
		p->title = s;
	if ((s = copy_str(c->arena, node, "handle", err)) != NULL &&
	    (p->handle = handle_of(c->arena, s, err)) == NULL)
		return -1;
	if ((s = copy_str(c->arena, node, "descriptionHtml", err)) != NULL &&
	    (p->description = pv_sync_html_text(c->arena, s, DESCRIPTION_MAX,
	         err)) == NULL)
		return -1;
	if ((s = copy_str(c->arena, node, "vendor", err)) != NULL)
		p->vendor = s;
	if ((s = copy_str(c->arena, node, "productType", err)) != NULL)
		p->product_type = s;
	if ((s = copy_str(c->arena, node, "onlineStoreUrl", err)) != NULL)
		p->url = s;
	s = copy_str(c->arena, node, "status", err);
	p->archived = s == NULL || strcmp(s, "ACTIVE") != 0;
	if (err->code != PV_OK)
		return -1;
	if (json_object_object_get_ex(node, "tags", &arr) &&
	    json_object_is_type(arr, json_type_array) &&
	    (n = json_object_array_length(arr)) > 0) {
		if ((p->tags = pv_arena_calloc(c->arena, n, sizeof(*p->tags),
		         err)) == NULL)
			return -1;
		for (i = 0; i < n; i++) {
			q = json_object_array_get_idx(arr, i);
			if (!json_object_is_type(q, json_type_string) ||
			    json_object_get_string_len(q) == 0)
				continue;
			if ((p->tags[p->ntags++] = pv_arena_strdup(c->arena,
			         json_object_get_string(q), err)) == NULL)
				return -1;
		}
	}
	arr = dig(node, mpath);
	n = arr != NULL && json_object_is_type(arr, json_type_array) ?
	    json_object_array_length(arr) :
	    0;
	if ((p->images = pv_arena_calloc(c->arena, n + 1, sizeof(*p->images),
	         err)) == NULL ||
	    add_image(c, p, node, featured, n + 1, err) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (add_image(c, p, json_object_array_get_idx(arr, i), preview,
		        n + 1, err) == -1)
			return -1;
	arr = dig(node, vpath);
	n = arr != NULL && json_object_is_type(arr, json_type_array) ?
	    json_object_array_length(arr) :
	    0;
	for (i = 0; i < n && !p->bad; i++)
		if (add_variant(c, p, json_object_array_get_idx(arr, i), err) ==
		    -1)
			return -1;
	if (p->bad)
		return 0;
	if (pv_catalog_finish(c, p, err) == -1)
		return -1;
	if (c->errors_total > nerr)
		p->bad = true;
	return 0;
}

/* ---- Status and requests ----------------------------------------- */

/* The params of STATUS_SQL for a public or internal merchant id. */
static void
who(const char *merchant, const char *p[2])
{
	bool digits = *merchant != '\0' &&
	    strspn(merchant, "0123456789") == strlen(merchant) &&
	    strlen(merchant) < 19;

	p[0] = digits ? merchant : NULL;
	p[1] = digits ? NULL : merchant;
}

static long
num(const PGresult *res, int c)
{
	return strtol(PQgetvalue(res, 0, c), NULL, 10);
}

/* Fills st from the one row of STATUS_SQL. */
static void
read_status(const PGresult *res, struct pv_sync_status *st)
{
	st->merchant_id = pv_db_get(res, 0, 0);
	st->merchant = pv_db_get(res, 0, 1);
	st->shop = pv_db_get(res, 0, 2);
	st->state = pv_db_get(res, 0, 3);
	st->run = num(res, 4);
	st->products = num(res, 5);
	st->pages = num(res, 6);
	st->skipped = num(res, 7);
	st->problems = pv_db_get(res, 0, 8);
	st->started_at = pv_db_get(res, 0, 9);
	st->finished_at = pv_db_get(res, 0, 10);
	st->error = pv_db_get(res, 0, 11);
	st->result = pv_db_get(res, 0, 12);
	st->job_id = pv_db_get(res, 0, 13);
	st->job_state = pv_db_get(res, 0, 14);
	st->job_attempts = PQgetisnull(res, 0, 15) ? 0 : num(res, 15);
	st->connected = *PQgetvalue(res, 0, 16) == 't';
}

static int
no_store(const char *merchant, struct pv_err *err)
{
	PV_ERR(err, PV_E_NOTFOUND, "MERCHANT",
	    "%s has no Shopify store (pivotactl merchant connect-shopify)",
	    merchant);
	return -1;
}

/* See pv_sync.h. */
int
pv_sync_status(struct pv_ctx *ctx, const char *merchant,
    struct pv_sync_status *st, struct pv_err *err)
{
	const char *p[2];
	PGresult *res;

	memset(st, 0, sizeof(*st));
	who(merchant, p);
	if (pv_db_exec(ctx, PV_SQL(STATUS_SQL), 2, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1)
		return no_store(merchant, err);
	read_status(res, st);
	return 0;
}

/* See pv_sync.h. */
int
pv_sync_ended(const struct pv_sync_status *st, int *failed)
{
	*failed = strcmp(st->state, "failed") == 0 ||
	    (st->job_state != NULL && strcmp(st->job_state, "dead") == 0 &&
	        strcmp(st->state, "done") != 0);
	return strcmp(st->state, "done") == 0 || *failed;
}

/* See pv_sync.h. */
int
pv_sync_request(struct pv_ctx *ctx, const char *merchant, int *enqueued,
    struct pv_sync_status *st, struct pv_err *err)
{
	const char *p[2], *payload, *key;
	PGresult *res;
	int rc = -1;

	*enqueued = 0;
	who(merchant, p);
	if (pv_db_begin(ctx, err) == -1)
		return -1;
	if (pv_db_exec(ctx, PV_SQL(STATUS_SQL " FOR UPDATE OF s"), 2, p, &res,
	        err) == -1)
		goto out;
	if (PQntuples(res) != 1) {
		no_store(merchant, err);
		goto out;
	}
	read_status(res, st);
	if (!st->connected) {
		PV_ERR(err, PV_E_CONFLICT, "MERCHANT",
		    "the Shopify store of %s is disconnected", st->merchant);
		goto out;
	}
	if (st->job_state != NULL &&
	    (strcmp(st->job_state, "queued") == 0 ||
	        strcmp(st->job_state, "running") == 0)) {
		rc = 0;
		goto out;
	}
	p[0] = st->merchant_id;
	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE merchant_shopify SET sync_run = sync_run + 1,"
	               " sync_state = 'queued', sync_error = NULL,"
	               " updated_at = now() WHERE merchant_id = $1::bigint"
	               " RETURNING sync_run"),
	        1, p, &res, err) == -1)
		goto out;
	if ((payload = pv_arena_printf(ctx->arena, err,
	         "{\"merchant_id\": \"%s\", \"run\": %s}", st->merchant_id,
	         PQgetvalue(res, 0, 0))) == NULL ||
	    (key = pv_arena_printf(ctx->arena, err, PV_SYNC_KIND ":%s:%s",
	         st->merchant_id, PQgetvalue(res, 0, 0))) == NULL ||
	    pv_job_enqueue(ctx, PV_SYNC_KIND, payload, key, 0, err) == -1)
		goto out;
	*enqueued = 1;
	rc = 0;
out:
	if (pv_db_end(ctx, rc == 0, err) == -1)
		rc = -1;
	if (rc == 0)
		rc = pv_sync_status(ctx, st->merchant, st, err);
	return rc;
}

/* ---- The job ----------------------------------------------------- */

/*
 * Locks the merchant_shopify row and checks that r is still the run
 * (same run number and batch) and, when cursor is not NULL, that the
 * committed cursor is cursor.  PV_E_CONFLICT otherwise.  In a
 * transaction.
 */
static int
fence(struct run *r, const char *cursor, long *seen, struct pv_err *err)
{
	const char *p[3] = { r->merchant_id, r->run, r->batch };
	PGresult *res;

	if (pv_db_exec(r->ctx,
	        PV_SQL("SELECT coalesce(sync_cursor, ''),"
	               " sync_products + sync_skipped FROM merchant_shopify"
	               " WHERE merchant_id = $1::bigint"
	               " AND sync_run = $2::int"
	               " AND sync_batch_id = $3::bigint"
	               " AND disconnected_at IS NULL FOR UPDATE"),
	        3, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1 ||
	    (cursor != NULL && strcmp(PQgetvalue(res, 0, 0), cursor) != 0)) {
		PV_ERR(err, PV_E_CONFLICT, NULL,
		    "sync run %s of merchant %s was taken over or replaced",
		    r->run, r->merchant_id);
		return -1;
	}
	if (seen != NULL)
		*seen = num(res, 1);
	return 0;
}

/* The walk's product callback: into the page's catalog. */
static int
on_product(void *arg, struct json_object *node, struct pv_err *err)
{
	struct run *r = arg;

	return pv_sync_product(&r->page, node, err);
}

/*
 * The walk's page callback: stages the page's products and moves the
 * checkpoint, in one transaction; then starts the next page afresh.
 */
static int
on_page(void *arg, const char *end, size_t n, int has_next, struct pv_err *err)
{
	struct run *r = arg;
	struct json_object *probs;
	const char *p[6], *ptext;
	char good[24], bad[24];
	long seen = 0, nbad = 0;
	size_t i;
	int rc = -1;

	(void)n;
	(void)has_next;
	for (i = 0; i < r->page.n; i++)
		nbad += r->page.products[i].bad ? 1 : 0;
	probs = pv_json_new_arr(r->pa, err);
	for (i = 0; i < r->page.nerrors && i < PROBLEMS_KEPT; i++)
		pv_json_push_str(probs, r->page.errors[i], err);
	if (pv_json_to_str(r->pa, probs, &ptext, NULL, err) == -1)
		return -1;
	snprintf(good, sizeof(good), "%ld", (long)r->page.n - nbad);
	snprintf(bad, sizeof(bad), "%ld", nbad);
	if (pv_db_begin(r->ctx, err) == -1)
		return -1;
	if (fence(r, r->cursor, &seen, err) == -1 ||
	    pv_catalog_stage(r->ctx, &r->page, r->batch, seen, err) == -1)
		goto out;
	p[0] = r->merchant_id;
	p[1] = end;
	p[2] = good;
	p[3] = bad;
	p[4] = ptext;
	if (pv_db_exec(r->ctx,
	        PV_SQL("UPDATE merchant_shopify SET sync_cursor = $2,"
	               " sync_products = sync_products + $3::int,"
	               " sync_skipped = sync_skipped + $4::int,"
	               " sync_pages = sync_pages + 1,"
	               " sync_problems = (sync_problems || ARRAY(SELECT"
	               "  jsonb_array_elements_text($5::jsonb)))[1:10],"
	               " sync_state = 'running', updated_at = now()"
	               " WHERE merchant_id = $1::bigint"),
	        5, p, NULL, err) == -1)
		goto out;
	rc = 0;
out:
	if (pv_db_end(r->ctx, rc == 0, err) == -1)
		rc = -1;
	if (rc == -1)
		return -1;
	snprintf(r->cursor, sizeof(r->cursor), "%s", end);
	r->products += (long)r->page.n - nbad;
	r->skipped += nbad;
	for (i = 0; i < r->page.nerrors && i < PROBLEMS_KEPT; i++)
		pv_log_msg(PV_LOG_WARN, "catalog.sync merchant %s: skipped %s",
		    r->merchant_id, r->page.errors[i]);
	pv_arena_reset(r->pa);
	if (pv_catalog_init(&r->page, r->pa, r->currency, err) == -1)
		return -1;
	/* A big store takes longer than one lease. */
	return pv_job_touch(r->ctx, r->job, PV_JOB_LEASE_S, err);
}

/*
 * Ends the run as failed: state failed with msg, the batch dropped, so
 * the next request starts over.  Does nothing if the run is not
 * current.  Keeps err as it was.
 */
static void
fail_run(struct run *r, const char *msg)
{
	struct pv_err e2 = { 0 };
	const char *p[3] = { r->merchant_id, r->run, msg };
	PGresult *res;

	if (pv_db_begin(r->ctx, &e2) == -1)
		goto out;
	if (pv_db_exec(r->ctx,
	        PV_SQL("WITH s AS (SELECT sync_batch_id FROM merchant_shopify"
	               "  WHERE merchant_id = $1::bigint AND sync_run ="
	               "  $2::int FOR UPDATE),"
	               " u AS (UPDATE merchant_shopify SET"
	               "  sync_state = 'failed', sync_error = $3,"
	               "  sync_finished_at = now(), sync_cursor = NULL,"
	               "  sync_batch_id = NULL, updated_at = now()"
	               "  WHERE merchant_id = $1::bigint"
	               "  AND sync_run = $2::int RETURNING 1)"
	               " DELETE FROM catalog_batches WHERE state = 'staging'"
	               " AND id = (SELECT sync_batch_id FROM s)"
	               " AND EXISTS (SELECT 1 FROM u)"),
	        3, p, &res, &e2) == -1)
		goto out;
out:
	pv_db_end(r->ctx, e2.code == PV_OK, &e2);
	if (e2.code != PV_OK)
		pv_log_msg(PV_LOG_ERROR,
		    "catalog.sync merchant %s: cannot record the failure: %s",
		    r->merchant_id, e2.msg);
}

/* Records a transient failure; the run stays running and retries. */
static void
note_error(struct run *r, const char *msg)
{
	struct pv_err e2 = { 0 };
	const char *p[3] = { r->merchant_id, r->run, msg };

	if (pv_db_exec(r->ctx,
	        PV_SQL("UPDATE merchant_shopify SET sync_error = $3,"
	               " updated_at = now() WHERE merchant_id = $1::bigint"
	               " AND sync_run = $2::int"),
	        3, p, NULL, &e2) == -1)
		pv_log_msg(PV_LOG_ERROR,
		    "catalog.sync merchant %s: cannot record the error: %s",
		    r->merchant_id, e2.msg);
}

/*
 * Starts the run: a new batch unless the merchant has one being
 * staged (a run that died, resumed after its last page).  Fills
 * r->batch and r->cursor.  *skip is 1 when there is nothing to do.
 */
static int
begin_run(struct run *r, int *skip, struct pv_err *err)
{
	const char *p[4] = { r->merchant_id, r->run, NULL, NULL };
	PGresult *res;
	int rc = -1;

	*skip = 0;
	if (pv_db_begin(r->ctx, err) == -1)
		return -1;
	if (pv_db_exec(r->ctx,
	        PV_SQL("SELECT sync_run = $2::int, sync_state,"
	               " sync_batch_id, coalesce(sync_cursor, ''), currency,"
	               " disconnected_at IS NULL"
	               " FROM merchant_shopify WHERE merchant_id = $1::bigint"
	               " FOR UPDATE"),
	        2, p, &res, err) == -1)
		goto out;
	if (PQntuples(res) != 1 || *PQgetvalue(res, 0, 0) != 't' ||
	    strcmp(PQgetvalue(res, 0, 1), "done") == 0) {
		/* No store, a newer run, or this one finished. */
		*skip = 1;
		rc = 0;
		goto out;
	}
	if (*PQgetvalue(res, 0, 5) != 't') {
		PV_ERR(err, PV_E_NOTFOUND, NULL, "the store is disconnected");
		goto out;
	}
	r->currency = PQgetvalue(res, 0, 4);
	if (!PQgetisnull(res, 0, 2)) {
		r->batch = PQgetvalue(res, 0, 2);
		snprintf(r->cursor, sizeof(r->cursor), "%s",
		    PQgetvalue(res, 0, 3));
		rc = pv_db_exec(r->ctx,
		    PV_SQL("UPDATE merchant_shopify SET sync_state ="
		           " 'running', sync_error = NULL, updated_at = now()"
		           " WHERE merchant_id = $1::bigint"),
		    1, p, NULL, err);
		goto out;
	}
	if (pv_catalog_batch_new(r->ctx, r->merchant_id, "shopify", true,
	        r->currency, &r->batch, err) == -1)
		goto out;
	r->cursor[0] = '\0';
	p[2] = r->batch;
	rc = pv_db_exec(r->ctx,
	    PV_SQL("UPDATE merchant_shopify SET sync_state = 'running',"
	           " sync_batch_id = $3::bigint, sync_cursor = NULL,"
	           " sync_products = 0, sync_pages = 0, sync_skipped = 0,"
	           " sync_problems = '{}', sync_error = NULL,"
	           " sync_result = NULL, sync_started_at = now(),"
	           " sync_finished_at = NULL, updated_at = now()"
	           " WHERE merchant_id = $1::bigint AND sync_run = $2::int"),
	    3, p, NULL, err);
out:
	if (pv_db_end(r->ctx, rc == 0, err) == -1)
		rc = -1;
	return rc;
}

/* Applies the staged batch and ends the run as done, in one transaction. */
static int
finish_run(struct run *r, struct pv_err *err)
{
	struct pv_catalog_result res = { 0 };
	struct json_object *o;
	const char *p[2], *text;
	int rc = -1;

	if (pv_db_begin(r->ctx, err) == -1)
		return -1;
	if (fence(r, NULL, NULL, err) == -1 ||
	    pv_catalog_apply(r->ctx, r->batch, true, &res, err) == -1)
		goto out;
	o = pv_json_new_obj(r->ctx->arena, err);
	pv_json_set_int(o, "created", res.created, err);
	pv_json_set_int(o, "updated", res.updated, err);
	pv_json_set_int(o, "unchanged", res.unchanged, err);
	pv_json_set_int(o, "archived", res.archived, err);
	pv_json_set_int(o, "words", res.words, err);
	if (pv_json_to_str(r->ctx->arena, o, &text, NULL, err) == -1)
		goto out;
	p[0] = r->merchant_id;
	p[1] = text;
	if (pv_db_exec(r->ctx,
	        PV_SQL("UPDATE merchant_shopify SET sync_state = 'done',"
	               " sync_finished_at = now(), sync_cursor = NULL,"
	               " sync_batch_id = NULL, sync_error = NULL,"
	               " sync_result = $2::jsonb, updated_at = now()"
	               " WHERE merchant_id = $1::bigint"),
	        2, p, NULL, err) == -1)
		goto out;
	rc = 0;
	pv_log_msg(PV_LOG_INFO,
	    "catalog.sync merchant %s run %s: %ld created, %ld updated, "
	    "%ld unchanged, %ld archived",
	    r->merchant_id, r->run, res.created, res.updated, res.unchanged,
	    res.archived);
out:
	if (pv_db_end(r->ctx, rc == 0, err) == -1)
		rc = -1;
	return rc;
}

/* Whether a failure is the store refusing us: retrying cannot help. */
static bool
permanent(const struct pv_err *err)
{
	return err->code == PV_E_AUTH || err->code == PV_E_FORBIDDEN ||
	    err->code == PV_E_NOTFOUND;
}

/* See pv_sync.h. */
int
pv_sync_job(struct pv_ctx *ctx, const struct pv_job *job, struct pv_err *err)
{
	struct pv_shopify_walk w;
	struct pv_shopify_conn conn;
	struct run r;
	const char *merchant, *public_id;
	const char *p[1];
	PGresult *res;
	int64_t run;
	int skip, rc = -1;

	memset(&r, 0, sizeof(r));
	if (pv_json_str(job->args, "merchant_id", 1, 19, &merchant, err) ==
	        -1 ||
	    pv_json_int(job->args, "run", 1, INT32_MAX, &run, err) == -1)
		return PV_JOB_PERMANENT;
	r.ctx = ctx;
	r.job = job;
	r.merchant_id = merchant;
	if ((r.run = pv_arena_printf(ctx->arena, err, "%lld",
	         (long long)run)) == NULL)
		return -1;
	if (begin_run(&r, &skip, err) == -1) {
		if (permanent(err)) {
			fail_run(&r, err->msg);
			return PV_JOB_PERMANENT;
		}
		return -1;
	}
	if (skip) {
		pv_log_msg(PV_LOG_INFO,
		    "catalog.sync merchant %s run %s: stale or done, nothing "
		    "to do",
		    merchant, r.run);
		return 0;
	}
	p[0] = merchant;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT public_id FROM merchants WHERE id = $1::bigint"),
	        1, p, &res, err) == -1)
		return -1;
	public_id = PQgetvalue(res, 0, 0);
	if ((r.pa = pv_arena_new(PAGE_ARENA_CAP)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	if (pv_catalog_init(&r.page, r.pa, r.currency, err) == -1 ||
	    pv_shopify_conn_load(ctx, public_id, &conn, err) == -1)
		goto failed;
	memset(&w, 0, sizeof(w));
	w.after = r.cursor[0] != '\0' ? r.cursor : NULL;
	w.product = on_product;
	w.page = on_page;
	w.arg = &r;
	if (pv_shopify_products_each(ctx, &conn, &w, err) == -1)
		goto failed;
	if (finish_run(&r, err) == -1)
		goto failed;
	rc = 0;
	goto out;
failed:
	if (err->code == PV_E_CONFLICT) {
		rc = -1; /* another worker has the run: leave it alone */
	} else if (permanent(err)) {
		fail_run(&r, err->msg);
		rc = PV_JOB_PERMANENT;
	} else if (job->attempt >= job->max_attempts) {
		fail_run(&r, err->msg);
		rc = -1;
	} else {
		note_error(&r, err->msg);
		rc = -1;
	}
	pv_log_msg(PV_LOG_WARN,
	    "catalog.sync merchant %s run %s: %s after %ld products "
	    "this attempt",
	    merchant, r.run, err->msg, r.products);
out:
	pv_arena_free(r.pa);
	return rc;
}
