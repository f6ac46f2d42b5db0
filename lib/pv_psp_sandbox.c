/*
 * The sandbox provider: built in, no credentials, no network.  It is
 * the default for `make run`'s demo merchant, so the whole order flow
 * works out of the box, and it answers like Stripe's test mode:
 *
 *   pm_card_visa, pm_card_mastercard, tok_visa   succeeded
 *   pm_card_visa_chargeDeclined, pm_card_chargeDeclined
 *                                                failed, generic_decline
 *   ...InsufficientFunds, ...LostCard, ...StolenCard, ...ExpiredCard,
 *   ...IncorrectCvc, ...ProcessingError          failed, Stripe's code
 *   pm_card_authenticationRequired, pm_card_threeDSecure2Required,
 *   pm_card_authenticationRequiredOnSetup        requires_action
 *   anything else                                400 on the token
 *
 * References are derived from our ids (pi_sandbox_<hex of pay_ id>),
 * so a retried charge is the same charge, as an Idempotency-Key makes
 * it at Stripe.  A charge needing action is completed when the
 * customer opens next_action's URL (the sandbox authentication page),
 * which delivers a Stripe-shaped, Stripe-signed payment_intent.succeeded
 * webhook through the same path real Stripe events take.
 */
#include <string.h>

#include "pv_arena.h"
#include "pv_config.h"
#include "pv_psp.h"

struct outcome {
	const char *token;
	enum pv_psp_status status;
	const char *decline_code; /* Stripe's decline_code or code */
	const char *message;
};

static const struct outcome outcomes[] = {
	{ "pm_card_visa", PV_PSP_SUCCEEDED, NULL, NULL },
	{ "pm_card_mastercard", PV_PSP_SUCCEEDED, NULL, NULL },
	{ "pm_card_amex", PV_PSP_SUCCEEDED, NULL, NULL },
	{ "tok_visa", PV_PSP_SUCCEEDED, NULL, NULL },
	{ "pm_card_visa_chargeDeclined", PV_PSP_FAILED, "generic_decline",
	    "Your card was declined." },
	{ "pm_card_chargeDeclined", PV_PSP_FAILED, "generic_decline",
	    "Your card was declined." },
	{ "pm_card_visa_chargeDeclinedInsufficientFunds", PV_PSP_FAILED,
	    "insufficient_funds", "Your card has insufficient funds." },
	{ "pm_card_visa_chargeDeclinedLostCard", PV_PSP_FAILED, "lost_card",
	    "Your card was declined." },
	{ "pm_card_visa_chargeDeclinedStolenCard", PV_PSP_FAILED,
	    "stolen_card", "Your card was declined." },
	{ "pm_card_chargeDeclinedExpiredCard", PV_PSP_FAILED, "expired_card",
	    "Your card has expired." },
	{ "pm_card_chargeDeclinedIncorrectCvc", PV_PSP_FAILED, "incorrect_cvc",
	    "Your card's security code is incorrect." },
	{ "pm_card_chargeDeclinedProcessingError", PV_PSP_FAILED,
	    "processing_error",
	    "An error occurred while processing your card." },
	{ "pm_card_authenticationRequired", PV_PSP_REQUIRES_ACTION, NULL,
	    NULL },
	{ "pm_card_threeDSecure2Required", PV_PSP_REQUIRES_ACTION, NULL, NULL },
	{ "pm_card_authenticationRequiredOnSetup", PV_PSP_REQUIRES_ACTION,
	    NULL, NULL },
};

/* "pi_sandbox_<hex>" from "pay_<hex>": prefix + the id after its '_'. */
static const char *
reference(struct pv_ctx *ctx, const char *prefix, const char *id,
    struct pv_err *err)
{
	const char *us = strchr(id, '_');

	return pv_arena_printf(ctx->arena, err, "%s%s", prefix,
	    us != NULL ? us + 1 : id);
}

static int
sandbox_verify(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    struct pv_err *err)
{
	(void)ctx;
	(void)acct;
	(void)err;
	return 0;
}

static int
sandbox_charge(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const struct pv_psp_charge *in, struct pv_psp_result *out,
    struct pv_err *err)
{
	const struct outcome *o = NULL;
	const char *base;
	size_t i;

	(void)acct;
	for (i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		if (strcmp(outcomes[i].token, in->token) == 0)
			o = &outcomes[i];
	if (o == NULL) {
		PV_ERR(err, PV_E_INVALID, "payment_method.token",
		    "No such payment method: the sandbox knows pm_card_visa, "
		    "pm_card_chargeDeclined, pm_card_authenticationRequired "
		    "and Stripe's other test tokens.");
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->status = o->status;
	out->amount_minor = in->amount_minor;
	out->currency = in->currency;
	out->message = o->message != NULL ? o->message : "";
	out->decline_code = o->decline_code;
	if ((out->reference = reference(ctx, "pi_sandbox_", in->payment_id,
	    err)) == NULL)
		return -1;
	if ((out->client_secret = pv_arena_printf(ctx->arena, err,
	    "%s_secret_sandbox", out->reference)) == NULL)
		return -1;
	if (o->status == PV_PSP_REQUIRES_ACTION) {
		base = ctx->cfg->public_url != NULL ? ctx->cfg->public_url : "";
		out->next_action = pv_arena_printf(ctx->arena, err,
		    "{\"type\":\"redirect_to_url\",\"redirect_to_url\":"
		    "{\"url\":\"%s/sandbox/authenticate/%s\",\"return_url\":"
		    "null}}", base, in->payment_id);
		if (out->next_action == NULL)
			return -1;
	}
	return 0;
}

static int
sandbox_refund(struct pv_ctx *ctx, const struct pv_psp_account *acct,
    const struct pv_psp_refund *in, struct pv_psp_refund_result *out,
    struct pv_err *err)
{
	(void)acct;
	memset(out, 0, sizeof(*out));
	out->status = PV_PSP_REFUND_SUCCEEDED;
	out->message = "";
	out->reference = reference(ctx, "re_sandbox_", in->refund_id, err);
	return out->reference != NULL ? 0 : -1;
}

const struct pv_psp_ops pv_psp_sandbox = {
	.name = "sandbox",
	.verify = sandbox_verify,
	.charge = sandbox_charge,
	.retrieve = NULL,
	.refund = sandbox_refund,
};
