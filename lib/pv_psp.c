/*
 * What every payment adapter shares: the adapter table, idempotency
 * keys derived from our ids, and the refund-reason maps.  The adapters
 * themselves are pv_psp_sandbox.c, pv_stripe.c and pv_adyen.c.
 */
#include <string.h>
#include <strings.h>

#include "pv_arena.h"
#include "pv_psp.h"

static const struct pv_psp_ops *const adapters[] = {
	&pv_psp_sandbox,
	&pv_psp_stripe,
	&pv_psp_adyen,
};

const struct pv_psp_ops *
pv_psp_find(const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < sizeof(adapters) / sizeof(adapters[0]); i++)
		if (strcmp(adapters[i]->name, name) == 0)
			return adapters[i];
	return NULL;
}

const char *
pv_psp_status_name(enum pv_psp_status s)
{
	switch (s) {
	case PV_PSP_SUCCEEDED:
		return "succeeded";
	case PV_PSP_REQUIRES_ACTION:
		return "requires_action";
	case PV_PSP_PROCESSING:
		return "processing";
	case PV_PSP_FAILED:
		break;
	}
	return "failed";
}

const char *
pv_psp_idem_key(struct pv_ctx *ctx, const char *op, const char *id,
    struct pv_err *err)
{
	return pv_arena_printf(ctx->arena, err, "pivota-%s-%s", op, id);
}

/* Does text mention any of the words (case-insensitive substrings)? */
static int
mentions(const char *text, const char *const *words)
{
	size_t n, i, j;

	n = strlen(text);
	for (i = 0; words[i] != NULL; i++) {
		size_t w = strlen(words[i]);

		for (j = 0; j + w <= n; j++)
			if (strncasecmp(text + j, words[i], w) == 0)
				return 1;
	}
	return 0;
}

static const char *const fraud_words[] = { "fraud", "stolen", "unauthori",
	NULL };
static const char *const duplicate_words[] = { "duplicate", "twice", "double",
	NULL };
static const char *const return_words[] = { "return", NULL };

const char *
pv_psp_stripe_reason(const char *text)
{
	if (text != NULL && mentions(text, fraud_words))
		return "fraudulent";
	if (text != NULL && mentions(text, duplicate_words))
		return "duplicate";
	return "requested_by_customer";
}

const char *
pv_psp_adyen_reason(const char *text)
{
	if (text != NULL && mentions(text, fraud_words))
		return "FRAUD";
	if (text != NULL && mentions(text, duplicate_words))
		return "DUPLICATE";
	if (text != NULL && mentions(text, return_words))
		return "RETURN";
	return "CUSTOMER REQUEST";
}
