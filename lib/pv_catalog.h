#ifndef PV_CATALOG_H
#define PV_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pv_http.h"

/*
 * Catalog import: products and variants from a file (CSV, JSON, JSON
 * Lines), a program (the demo seed) or, later, a store platform,
 * validated into typed records and applied to one merchant's catalog
 * as one batch (catalog_apply(), migrations/0006_catalog.sql): all of
 * it or nothing, idempotent (products are matched by external id or
 * handle, variants by external id, SKU or title), and invisible to
 * searches until the caller's transaction commits.
 *
 * Parsing does not stop at the first bad row.  Every problem is kept
 * as one "WHERE: message" line (WHERE is "line 12" for CSV and JSON
 * Lines, "products[3].variants[0]" for JSON), so an operator fixes a
 * file in one pass; any problem means nothing may be imported.
 * Everything lives in the arena given to pv_catalog_init().  Money is
 * parsed in the merchant's currency (pv_money_parse: "48.00"; JSON
 * numbers are refused, they would round).
 *
 * CSV: a header line names the columns (case and punctuation do not
 * matter, Shopify's export names are understood too); one row per
 * variant; rows with the same handle (or, without a handle, the same
 * title) are one product, whose fields the first row gives.  The
 * columns are listed in docs/catalog.md.
 */
#define PV_CATALOG_FILE_MAX     (64u * 1024u * 1024u) /* bytes per file */
#define PV_CATALOG_ERRORS_KEPT  100 /* messages kept; the rest counted */
#define PV_CATALOG_VARIANTS_MAX 250 /* per product */

struct pv_catalog_variant {
	const char *external_id; /* the platform's variant id, or NULL */
	const char *sku;         /* "" when none */
	const char *title;       /* "" until finished: option values or
	                            "Default Title" */
	int64_t price_minor;     /* in the merchant's currency */
	int64_t compare_minor;   /* compare-at price, or -1 for none */
	int64_t inventory;       /* on hand; negative when oversold */
	bool tracked;            /* false: never runs out */
	const char *options;     /* JSON object text, e.g. {"Size":"M"} */
	const char *image_url;   /* "" when none */
	const char *where;       /* where it came from, for messages */
};

struct pv_catalog_product {
	const char *external_id;  /* the platform's product id, or NULL */
	const char *handle;       /* unique per merchant; "" until finished:
	                             derived from the title */
	const char *title;        /* 1 to 500 bytes */
	const char *description;  /* may span lines */
	const char *vendor;       /* brand */
	const char *product_type; /* the category */
	const char *url;          /* product page, or "" */
	bool archived;            /* kept but not for sale */
	const char **tags;        /* ntags entries */
	size_t ntags;             /* entries in tags */
	const char **images;      /* image URLs, the first is the main one */
	size_t nimages;           /* entries in images */
	struct pv_catalog_variant *variants; /* nvariants entries */
	size_t nvariants;                    /* entries in variants */
	size_t capvariants;                  /* room in variants */
	const char *option_names[3];         /* CSV: names from the first row */
	const char *where; /* where it came from, for messages */
	bool bad;          /* has an error: skip further checks */
};

struct pv_catalog_index; /* opaque: duplicate detection */

struct pv_catalog {
	struct pv_arena *arena; /* where everything lives (borrowed) */
	const char *currency;   /* the merchant's ISO 4217 code */
	struct pv_catalog_product *products; /* n entries */
	size_t n;                            /* products */
	size_t cap;                          /* room in products */
	const char **errors;            /* nerrors messages, in file order */
	size_t nerrors;                 /* messages kept */
	size_t errors_total;            /* problems found (may exceed kept) */
	struct pv_catalog_index *index; /* handles and ids seen */
};

/* What an import did. */
struct pv_catalog_result {
	long products;  /* in the batch */
	long variants;  /* in the batch */
	long created;   /* products new to the catalog */
	long updated;   /* products whose row or variants changed */
	long unchanged; /* products already exactly so */
	long archived;  /* products a replace import archived */
	long words;     /* catalog vocabulary after the import */
};

/* Sets up an empty catalog in arena a for a merchant's currency. */
int pv_catalog_init(struct pv_catalog *c, struct pv_arena *a,
    const char *currency, struct pv_err *err);

/*
 * Parse a whole file into c.  Return 0 when the file was read (check
 * c->errors_total for problems in it), -1 only for PV_E_NOMEM or
 * PV_E_TOOBIG.  The file format is chosen by pv_catalog_parse_file()
 * from the name's extension (.csv, .json, .jsonl or .ndjson) unless
 * format names it.
 */
int pv_catalog_parse_csv(struct pv_catalog *c, const char *data, size_t len,
    struct pv_err *err);
int pv_catalog_parse_json(struct pv_catalog *c, const char *data, size_t len,
    struct pv_err *err);
int pv_catalog_parse_jsonl(struct pv_catalog *c, const char *data, size_t len,
    struct pv_err *err);
int pv_catalog_parse_file(struct pv_catalog *c, const char *path,
    const char *format, struct pv_err *err);

/*
 * For programs that build a catalog (the demo seed): a new product or
 * variant, zeroed except for defaults (tracked stock, no compare-at
 * price, options "{}"), to fill in and then hand to
 * pv_catalog_finish(), which validates it like a parsed one.
 */
struct pv_catalog_product *pv_catalog_add_product(struct pv_catalog *c,
    const char *where, struct pv_err *err);
struct pv_catalog_variant *pv_catalog_add_variant(struct pv_catalog *c,
    struct pv_catalog_product *p, const char *where, struct pv_err *err);
int pv_catalog_finish(struct pv_catalog *c, struct pv_catalog_product *p,
    struct pv_err *err);

/*
 * Records a problem: "where: message".  Returns -1 only if memory ran
 * out (err set).
 */
int pv_catalog_problem(struct pv_catalog *c, const char *where, const char *msg,
    struct pv_err *err);

/*
 * The merchant's internal id and currency (arena memory) by public
 * id; PV_E_NOTFOUND if there is none.
 */
int pv_catalog_merchant(struct pv_ctx *ctx, const char *public_id,
    const char **id, const char **currency, struct pv_err *err);

/*
 * Stages every product of c as one batch for the merchant (internal
 * id) and applies it, then adds its words to the vocabulary (rebuilds
 * it after a replace), all inside the caller's transaction (which must
 * be open).  source is "import",
 * "demo" or "shopify"; replace archives the merchant's products that c
 * does not list.  c must have no problems.  Fills *out.  PV_E_DB,
 * PV_E_NOMEM.
 */
int pv_catalog_import(struct pv_ctx *ctx, const struct pv_catalog *c,
    const char *merchant_id, const char *source, bool replace,
    struct pv_catalog_result *out, struct pv_err *err);

/*
 * The three steps of pv_catalog_import(), for writers that stage a
 * batch over many transactions (the Shopify sync, pv_sync.h).
 *
 * pv_catalog_batch_new() opens a batch (catalog_batches, state
 * staging) of the merchant (internal id) in currency; *batch (arena
 * memory) gets its id.  pv_catalog_stage() stages the products of c
 * that have no problems (p->bad unset) in the batch, numbered seq0 +
 * their index + 1 (seq0: products staged before, so numbers never
 * repeat in a batch).  Staging a handle or external id twice in one
 * batch is PV_E_CONFLICT.  pv_catalog_apply() applies the batch with
 * catalog_apply() (replace batches archive what they do not list) and
 * then rebuilds the vocabulary (refresh_words) or adds the batch's
 * words; it fills *out except products and variants, which it leaves
 * to the caller.  Applying must happen in one transaction: readers see
 * the whole batch or none of it.  PV_E_DB, PV_E_NOMEM.
 */
int pv_catalog_batch_new(struct pv_ctx *ctx, const char *merchant_id,
    const char *source, bool replace, const char *currency, const char **batch,
    struct pv_err *err);
int pv_catalog_stage(struct pv_ctx *ctx, const struct pv_catalog *c,
    const char *batch, int64_t seq0, struct pv_err *err);
int pv_catalog_apply(struct pv_ctx *ctx, const char *batch, bool refresh_words,
    struct pv_catalog_result *out, struct pv_err *err);

/* A URL-safe handle from a title ("Men's Tee" -> "men-s-tee"). */
const char *pv_catalog_slug(struct pv_arena *a, const char *title,
    struct pv_err *err);

#endif /* PV_CATALOG_H */
