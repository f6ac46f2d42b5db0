/*
 * pivotactl merchant set-password: dashboard logins for operators
 * (issue 8), and the demo merchant's login made by demo-seed.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "pv_crypto.h"
#include "pv_ctl_int.h"
#include "pv_dash.h"

/*
 * pivotactl merchant set-password MERCHANT --email EMAIL
 * [--password PW|-]: adds a dashboard login for the merchant, or sets
 * the password of its existing login with that email.  "-" reads the
 * password from standard input; without --password one is generated
 * and printed (the only time it is shown).
 */
int
pv_ctl_dash_set_password(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *pos[1], *email = NULL, *pw = NULL;
	const struct pv_ctl_opt opts[] = { { "--email", 0, &email },
		{ "--password", 0, &pw }, { NULL, 0, NULL } };
	char line[258];
	int generated = 0;

	if (pv_ctl_parse(argc, argv, opts, pos, 1, 1, err) == -1)
		return -1;
	if (email == NULL)
		return pv_ctl_usage_error(err, "required:", "--email");
	if (pw != NULL && strcmp(pw, "-") == 0) {
		if (fgets(line, sizeof(line), stdin) == NULL) {
			PV_ERR(err, PV_E_INVALID, "password",
			    "no password on standard input");
			return -1;
		}
		line[strcspn(line, "\r\n")] = '\0';
		pw = pv_arena_strdup(ctx->arena, line, err);
		memset(line, 0, sizeof(line));
		if (pw == NULL)
			return -1;
	} else if (pw == NULL) {
		if (pv_crypto_token(ctx->arena, "pw-", 12, &pw, err) == -1)
			return -1;
		generated = 1;
	}
	if (pv_dash_user_set(ctx, pos[0], email, pw, err) == -1 ||
	    (*out = pv_ctl_new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "merchant_id",
	    json_object_new_string(pos[0]));
	json_object_object_add(*out, "email", json_object_new_string(email));
	if (generated)
		json_object_object_add(*out, "password",
		    json_object_new_string(pw));
	return 0;
}

/*
 * Gives the demo merchant (public id) the dashboard login email with a
 * fresh random password, returned in *password (arena).
 */
int
pv_ctl_dash_demo_login(struct pv_ctx *ctx, const char *merchant,
    const char *email, const char **password, struct pv_err *err)
{
	if (pv_crypto_token(ctx->arena, "demo-", 8, password, err) == -1)
		return -1;
	return pv_dash_user_set(ctx, merchant, email, *password, err);
}
