/*
 * pivotactl products import, and the demo catalog.  The import reads
 * and checks the whole file before it touches the database, prints
 * every problem with its row, and applies the catalog in one
 * transaction (pv_catalog_import).  The demo catalog is generated from
 * word lists with a fixed-seed generator, so every `make run` seeds the
 * same products.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "pv_catalog.h"
#include "pv_ctl_products.h"
#include "pv_db.h"
#include "pv_json.h"

/* The catalog of one import may use this much memory. */
#define IMPORT_ARENA_CAP (1024u * 1024u * 1024u)

struct import {
	const struct pv_catalog *c;      /* what to import */
	const char *merchant_id;         /* internal id */
	const char *source;              /* "import" or "demo" */
	bool replace;                    /* archive what c does not list */
	struct pv_catalog_result result; /* out */
};

static int
import_tx(struct pv_ctx *ctx, void *arg, struct pv_err *err)
{
	struct import *im = arg;

	return pv_catalog_import(ctx, im->c, im->merchant_id, im->source,
	    im->replace, &im->result, err);
}

static int
usage(struct pv_err *err, const char *what)
{
	PV_ERR(err, PV_E_INVALID, NULL, "%s", what);
	pv_err_reason(err, "usage");
	return -1;
}

/* Adds the counts of r (and the problems of c) to the object o. */
static void
report(struct json_object *o, const struct pv_catalog_result *r)
{
	json_object_object_add(o, "products",
	    json_object_new_int64(r->products));
	json_object_object_add(o, "variants",
	    json_object_new_int64(r->variants));
	json_object_object_add(o, "created", json_object_new_int64(r->created));
	json_object_object_add(o, "updated", json_object_new_int64(r->updated));
	json_object_object_add(o, "unchanged",
	    json_object_new_int64(r->unchanged));
	json_object_object_add(o, "archived",
	    json_object_new_int64(r->archived));
	json_object_object_add(o, "words", json_object_new_int64(r->words));
}

/* Parses the arguments and the file, prints problems, imports. */
static int
run_import(struct pv_ctx *ctx, struct pv_arena *a, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *pos[2] = { NULL, NULL }, *format = NULL, *currency;
	struct import im = { NULL, NULL, "import", false, { 0 } };
	struct pv_catalog c;
	bool dry = false;
	size_t i, nv = 0;
	int n = 0, k;

	for (k = 0; k < argc; k++) {
		if (strcmp(argv[k], "--replace") == 0)
			im.replace = true;
		else if (strcmp(argv[k], "--dry-run") == 0)
			dry = true;
		else if (strcmp(argv[k], "--format") == 0 && k + 1 < argc)
			format = argv[++k];
		else if (strncmp(argv[k], "--", 2) == 0 || n == 2)
			return usage(err,
			    "usage: products import MERCHANT FILE"
			    " [--replace] [--dry-run] [--format"
			    " csv|json|jsonl]");
		else
			pos[n++] = argv[k];
	}
	if (n != 2)
		return usage(err, "products import needs MERCHANT and FILE");
	if (pv_catalog_merchant(ctx, pos[0], &im.merchant_id, &currency, err) ==
	        -1 ||
	    pv_catalog_init(&c, a, currency, err) == -1 ||
	    pv_catalog_parse_file(&c, pos[1], format, err) == -1)
		return -1;
	for (i = 0; i < c.nerrors; i++)
		fprintf(stderr, "%s: %s\n", pos[1], c.errors[i]);
	if (c.errors_total > c.nerrors)
		fprintf(stderr, "%s: ... and %zu more\n", pos[1],
		    c.errors_total - c.nerrors);
	if (c.errors_total > 0) {
		PV_ERR(err, PV_E_INVALID, "FILE",
		    "%zu problem%s in %s; nothing was imported", c.errors_total,
		    c.errors_total == 1 ? "" : "s", pos[1]);
		return -1;
	}
	im.c = &c;
	if (dry) {
		for (i = 0; i < c.n; i++)
			nv += c.products[i].nvariants;
		im.result.products = (long)c.n;
		im.result.variants = (long)nv;
	} else if (pv_db_tx(ctx, import_tx, &im, err) == -1) {
		return -1;
	}
	if ((*out = json_object_new_object()) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	json_object_object_add(*out, "merchant_id",
	    json_object_new_string(pos[0]));
	json_object_object_add(*out, "file", json_object_new_string(pos[1]));
	json_object_object_add(*out, "dry_run", json_object_new_boolean(dry));
	report(*out, &im.result);
	return 0;
}

/* pivotactl products import; see pv_ctl_products.h. */
int
pv_ctl_products_import(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	struct pv_arena *a;
	int rc;

	if ((a = pv_arena_new(IMPORT_ARENA_CAP)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	rc = run_import(ctx, a, argc, argv, out, err);
	pv_arena_free(a);
	return rc;
}

/* ---- The demo catalog -------------------------------------------- */

enum sizing {
	SZ_APPAREL, /* XS..XL in two colours */
	SZ_SHOES,   /* US 7..12 in one colour */
	SZ_ONE,     /* one size in three colours */
};

struct kind {
	const char *name;      /* "Hoodie" */
	const char *type;      /* product type, the category */
	const char *materials; /* '|'-separated, fit for the kind */
	long base;             /* price in cents */
	enum sizing sizing;    /* how the variants differ */
};

static const struct kind kinds[] = {
	{ "Hoodie", "Hoodies & Sweatshirts", "Cotton|Organic Cotton|Fleece",
	    5800, SZ_APPAREL },
	{ "Zip Hoodie", "Hoodies & Sweatshirts",
	    "Cotton|Fleece|Recycled Fleece", 6800, SZ_APPAREL },
	{ "Crewneck Sweatshirt", "Hoodies & Sweatshirts",
	    "Cotton|Organic Cotton|French Terry", 5200, SZ_APPAREL },
	{ "T-Shirt", "T-Shirts", "Cotton|Organic Cotton|Linen", 2400,
	    SZ_APPAREL },
	{ "Long Sleeve Tee", "T-Shirts", "Cotton|Merino Wool|Organic Cotton",
	    3200, SZ_APPAREL },
	{ "Pocket Tee", "T-Shirts", "Cotton|Slub Cotton", 2600, SZ_APPAREL },
	{ "Tank Top", "T-Shirts", "Cotton|Linen", 2000, SZ_APPAREL },
	{ "Rain Jacket", "Jackets", "Nylon|Recycled Nylon", 12800, SZ_APPAREL },
	{ "Puffer Jacket", "Jackets", "Down|Synthetic Down", 16800,
	    SZ_APPAREL },
	{ "Denim Jacket", "Jackets", "Denim|Selvedge Denim", 9800, SZ_APPAREL },
	{ "Fleece Jacket", "Jackets", "Fleece|Recycled Fleece", 8800,
	    SZ_APPAREL },
	{ "Chinos", "Pants", "Cotton Twill|Stretch Cotton", 6800, SZ_APPAREL },
	{ "Joggers", "Pants", "Fleece|French Terry", 5400, SZ_APPAREL },
	{ "Jeans", "Pants", "Denim|Selvedge Denim|Stretch Denim", 8400,
	    SZ_APPAREL },
	{ "Shorts", "Pants", "Cotton Twill|Nylon|Linen", 4200, SZ_APPAREL },
	{ "Running Shoes", "Shoes", "Mesh|Knit", 11800, SZ_SHOES },
	{ "Sneakers", "Shoes", "Canvas|Leather|Suede", 8800, SZ_SHOES },
	{ "Hiking Boots", "Shoes", "Leather|Suede", 15800, SZ_SHOES },
	{ "Sandals", "Shoes", "Leather|Cork", 4800, SZ_SHOES },
	{ "Beanie", "Accessories", "Merino Wool|Acrylic|Cashmere", 2400,
	    SZ_ONE },
	{ "Baseball Cap", "Accessories", "Cotton|Canvas|Wool", 2800, SZ_ONE },
	{ "Backpack", "Accessories", "Canvas|Recycled Nylon|Waxed Canvas", 8800,
	    SZ_ONE },
	{ "Tote Bag", "Accessories", "Canvas|Organic Cotton", 3200, SZ_ONE },
	{ "Socks 3-Pack", "Accessories", "Merino Wool|Cotton", 1800, SZ_ONE },
	{ "Belt", "Accessories", "Leather", 4200, SZ_ONE },
	{ "Scarf", "Accessories", "Merino Wool|Cashmere|Linen", 3800, SZ_ONE },
	{ "Water Bottle", "Accessories", "Stainless Steel", 2800, SZ_ONE },
	{ "Mug", "Home", "Ceramic|Enamel", 1800, SZ_ONE },
	{ "Throw Blanket", "Home", "Wool|Cotton|Cashmere", 7800, SZ_ONE },
	{ "Candle", "Home", "Soy Wax|Beeswax", 2600, SZ_ONE },
	{ "Pillow Cover", "Home", "Linen|Cotton", 3400, SZ_ONE },
	{ "Notebook", "Home", "Recycled Paper|Leather", 1600, SZ_ONE },
	{ "Camp Chair", "Outdoor", "Aluminum|Canvas", 6400, SZ_ONE },
	{ "Sleeping Bag", "Outdoor", "Down|Synthetic", 18800, SZ_ONE },
};

static const char *const adjectives[] = { "Classic", "Everyday", "Heritage",
	"Lightweight", "Heavyweight", "Vintage", "Essential", "Performance",
	"Trail", "Coastal" };

static const char *const colours[] = { "Black", "Heather Grey", "Navy", "Olive",
	"Sand", "Rust", "White", "Forest Green" };

static const char *const vendors[] = { "Pivota Basics", "Northwind Outfitters",
	"Trailhead Co.", "Harbor & Pine" };

static const char *const lines[] = {
	"Built for everyday wear and easy layering.",
	"Machine washable and made to last.",
	"A relaxed fit with room to move.",
	"Made in small batches by people we know.",
	"Soft against the skin and warm on cold mornings.",
	"Packs down small for travel.",
	"Reinforced where it matters most.",
	"Garment dyed for a lived-in look from day one.",
};

#define PER_KIND 9 /* products of each kind */

/* xorshift64*: a fixed seed, so the catalog is the same every time. */
static unsigned
rnd(unsigned long long *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (unsigned)((*s * 2685821657736338717ULL) >> 33);
}

/* The n-th '|'-separated word of list (wrapping), in arena memory. */
static const char *
nth(struct pv_arena *a, const char *list, unsigned n, struct pv_err *err)
{
	const char *p = list, *e;
	unsigned count = 1, i;

	for (e = list; *e != '\0'; e++)
		if (*e == '|')
			count++;
	for (i = 0; i < n % count; i++)
		p = strchr(p, '|') + 1;
	e = p + strcspn(p, "|");
	return pv_arena_strndup(a, p, (size_t)(e - p), err);
}

/* Three upper-case letters for SKUs: "Heather Grey" -> "HEA". */
static void
code3(const char *s, char out[4])
{
	int i, o = 0;

	for (i = 0; s[i] != '\0' && o < 3; i++)
		if ((s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= 'a' && s[i] <= 'z'))
			out[o++] = (char)(s[i] & ~0x20);
	while (o < 3)
		out[o++] = 'X';
	out[3] = '\0';
}

/* Adds the variants of product j of kind k. */
static int
demo_variants(struct pv_catalog *c, struct pv_catalog_product *p, size_t k,
    unsigned j, long price, unsigned long long *seed, struct pv_err *err)
{
	static const char *const apparel[] = { "XS", "S", "M", "L", "XL" };
	static const char *const shoes[] = { "7", "8", "9", "10", "11", "12" };
	const struct kind *kd = &kinds[k];
	const char *const *sizes = kd->sizing == SZ_SHOES ? shoes : apparel;
	size_t nsizes = kd->sizing == SZ_SHOES ? 6 :
	    kd->sizing == SZ_ONE               ? 1 :
	                                         5;
	size_t ncol = kd->sizing == SZ_APPAREL ? 2 :
	    kd->sizing == SZ_ONE               ? 3 :
	                                         1;
	struct pv_catalog_variant *v;
	struct json_object *o;
	char cc[4], kc[4];
	size_t ci, si;
	unsigned r;

	code3(kd->name, kc);
	for (ci = 0; ci < ncol; ci++) {
		const char *colour = colours[(j * 3 + ci + k) % 8];

		code3(colour, cc);
		for (si = 0; si < nsizes; si++) {
			if ((v = pv_catalog_add_variant(c, p, p->where, err)) ==
			    NULL)
				return -1;
			r = rnd(seed);
			v->price_minor = price;
			v->compare_minor = j % 5 == 0 ?
			    price + 1000 + 500 * (long)(j % 3) :
			    -1;
			v->inventory = r % 7 == 0 ? 0 : (int64_t)(r % 40);
			o = pv_json_new_obj(c->arena, err);
			pv_json_set_str(o, "Color", colour, err);
			if (kd->sizing != SZ_ONE)
				pv_json_set_str(o, "Size", sizes[si], err);
			if (pv_json_to_str(c->arena, o, &v->options, NULL,
			        err) == -1 ||
			    (v->sku = pv_arena_printf(c->arena, err,
			         "PD-%s-%02u%02zu-%s%s%s", kc, j, k, cc,
			         kd->sizing == SZ_ONE ? "" : "-",
			         kd->sizing == SZ_ONE ? "" : sizes[si])) ==
			        NULL)
				return -1;
		}
	}
	return 0;
}

/* Builds the demo catalog into c. */
static int
demo_build(struct pv_catalog *c, struct pv_err *err)
{
	unsigned long long seed = 0x9e3779b97f4a7c15ULL;
	struct pv_catalog_product *p;
	const char *mat, **tags;
	size_t k;
	unsigned j;
	long price;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		for (j = 0; j < PER_KIND; j++) {
			const struct kind *kd = &kinds[k];
			const char *adj = adjectives[(j + k) % 10];

			if ((p = pv_catalog_add_product(c, "demo", err)) ==
			        NULL ||
			    (mat = nth(c->arena, kd->materials, j, err)) ==
			        NULL)
				return -1;
			price = kd->base + 400 * (long)(j % 4);
			p->title = pv_arena_printf(c->arena, err, "%s %s %s",
			    adj, mat, kd->name);
			if (p->title == NULL ||
			    (p->handle = pv_catalog_slug(c->arena, p->title,
			         err)) == NULL)
				return -1;
			p->description = pv_arena_printf(c->arena, err,
			    "%s %s in %s. %s %s", adj, kd->name, mat,
			    lines[(j + 2 * k) % 8], lines[(3 * j + k + 1) % 8]);
			p->vendor = vendors[(j + k) % 4];
			p->product_type = kd->type;
			p->url = pv_arena_printf(c->arena, err,
			    "https://demo.pivota.test/products/%s", p->handle);
			if ((tags = pv_arena_calloc(c->arena, 3, sizeof(*tags),
			         err)) == NULL ||
			    (tags[0] = pv_catalog_slug(c->arena, kd->type,
			         err)) == NULL ||
			    (tags[1] = pv_catalog_slug(c->arena, mat, err)) ==
			        NULL)
				return -1;
			tags[2] = j % 5 == 0 ? "sale" :
			    j % 4 == 1       ? "new" :
			                       "bestseller";
			p->tags = tags;
			p->ntags = 3;
			if ((p->images = pv_arena_calloc(c->arena, 1,
			         sizeof(*p->images), err)) == NULL ||
			    (p->images[0] = pv_arena_printf(c->arena, err,
			         "https://demo.pivota.test/images/%s.jpg",
			         p->handle)) == NULL ||
			    p->description == NULL || p->url == NULL)
				return -1;
			p->nimages = 1;
			if (demo_variants(c, p, k, j, price, &seed, err) ==
			        -1 ||
			    pv_catalog_finish(c, p, err) == -1)
				return -1;
		}
	}
	if (c->errors_total > 0) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "demo catalog: %s",
		    c->errors[0]);
		return -1;
	}
	return 0;
}

/* The demo catalog; see pv_ctl_products.h. */
int
pv_ctl_demo_catalog(struct pv_ctx *ctx, const char *merchant_id,
    const char *currency, long *products, struct pv_err *err)
{
	struct pv_catalog_result r;
	struct pv_catalog c;
	struct pv_arena *a;
	int rc = -1;

	if ((a = pv_arena_new(PV_ARENA_CAP * 8)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	if (pv_catalog_init(&c, a, currency, err) == 0 &&
	    demo_build(&c, err) == 0 &&
	    pv_catalog_import(ctx, &c, merchant_id, "demo", false, &r, err) ==
	        0) {
		*products = r.products;
		rc = 0;
	}
	pv_arena_free(a);
	return rc;
}
