/* Unit tests of pv_err and the error body rendered by pv_resp_error. */
#include <string.h>

#include <json-c/json.h>

#include "pv_arena.h"
#include "pv_err.h"
#include "pv_http.h"
#include "pv_test.h"

static struct pv_ctx ctx;

static void
setup(void)
{
	memset(&ctx, 0, sizeof(ctx));
	ctx.arena = pv_arena_new(0);
	memcpy(ctx.request_id, "req_test", 9);
}

static void
teardown(void)
{
	pv_arena_free(ctx.arena);
}

struct expect {
	enum pv_errcode code; /* the error */
	int status;           /* its HTTP status */
	const char *type;     /* its API.md type */
};

static const struct expect table[] = {
	{ PV_E_NOMEM, 503, "api_error" },
	{ PV_E_TOOBIG, 413, "invalid_request_error" },
	{ PV_E_URITOOLONG, 414, "invalid_request_error" },
	{ PV_E_HDRTOOBIG, 431, "invalid_request_error" },
	{ PV_E_INVALID, 400, "invalid_request_error" },
	{ PV_E_AUTH, 401, "authentication_error" },
	{ PV_E_PAYMENT, 402, "payment_error" },
	{ PV_E_FORBIDDEN, 403, "permission_error" },
	{ PV_E_NOTFOUND, 404, "not_found" },
	{ PV_E_METHOD, 405, "invalid_request_error" },
	{ PV_E_CONFLICT, 409, "conflict" },
	{ PV_E_UNPROCESSABLE, 422, "invalid_request_error" },
	{ PV_E_RATELIMIT, 429, "rate_limit_error" },
	{ PV_E_DB, 500, "api_error" },
	{ PV_E_INTERNAL, 500, "api_error" },
	{ PV_E_UPSTREAM, 502, "upstream_error" },
	{ PV_E_UNAVAILABLE, 503, "api_error" },
	{ PV_E_TIMEOUT, 504, "upstream_error" },
};

static const char *
str(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || v == NULL)
		return NULL;
	return json_object_get_string(v);
}

START_TEST(test_err_table_covers_every_code)
{
	ck_assert_uint_eq(sizeof(table) / sizeof(table[0]), PV_E__MAX - 1);
}
END_TEST

/* Every code renders with its status, type, code and the right detail. */
START_TEST(test_err_resp_error_every_code)
{
	const struct expect *x = &table[_i];
	struct json_object *body, *e;
	struct pv_resp resp;
	struct pv_err err = { 0 };

	memset(&resp, 0, sizeof(resp));
	PV_ERR(&err, x->code, "items[0].quantity", "secret detail %d", 42);
	ck_assert_int_eq(pv_err_status(x->code), x->status);
	pv_resp_error(&ctx, &resp, &err);
	ck_assert_int_eq(resp.status, x->status);
	ck_assert_str_eq(resp.content_type, "application/json");
	body = json_tokener_parse(resp.body);
	ck_assert_ptr_nonnull(body);
	ck_assert_str_eq(str(body, "status"), "error");
	ck_assert(json_object_object_get_ex(body, "error", &e));
	ck_assert_str_eq(str(e, "type"), x->type);
	ck_assert_str_eq(str(e, "code"), pv_err_wire_code(&err));
	ck_assert_str_eq(str(e, "request_id"), "req_test");
	if (x->status < 500) {
		ck_assert_str_eq(str(body, "detail"), "secret detail 42");
		ck_assert_str_eq(str(e, "message"), "secret detail 42");
		ck_assert_str_eq(str(e, "param"), "items[0].quantity");
	} else {
		/* 5xx never leaks internals; it names the request id. */
		ck_assert_ptr_null(strstr(resp.body, "secret"));
		ck_assert_ptr_nonnull(strstr(str(body, "detail"), "req_test"));
		ck_assert_ptr_null(str(e, "param"));
	}
	json_object_put(body);
	pv_arena_reset(ctx.arena);
}
END_TEST

START_TEST(test_err_set_keeps_first)
{
	struct pv_err err = { 0 };

	PV_ERR(&err, PV_E_INVALID, "a", "first");
	PV_ERR(&err, PV_E_DB, "b", "second");
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.msg, "first");
	ck_assert_str_eq(err.field, "a");
	ck_assert_ptr_nonnull(strstr(err.file, "test_err.c"));
	pv_err_clear(&err);
	ck_assert_int_eq(err.code, PV_OK);
}
END_TEST

START_TEST(test_err_reason_overrides_wire_code)
{
	struct pv_err err = { 0 };

	PV_ERR(&err, PV_E_CONFLICT, "items[1]", "price changed");
	ck_assert_str_eq(pv_err_wire_code(&err), "conflict");
	pv_err_reason(&err, "price_changed");
	ck_assert_str_eq(pv_err_wire_code(&err), "price_changed");
}
END_TEST

START_TEST(test_err_retry_after_header)
{
	struct pv_resp resp;
	struct pv_err err = { 0 };
	size_t i;
	int found = 0;

	memset(&resp, 0, sizeof(resp));
	PV_ERR(&err, PV_E_RATELIMIT, NULL, "slow down");
	err.retry_after = 17;
	pv_resp_error(&ctx, &resp, &err);
	for (i = 0; i < resp.nhdr; i++)
		if (strcmp(resp.hdrs[i].name, "Retry-After") == 0) {
			ck_assert_str_eq(resp.hdrs[i].value, "17");
			found = 1;
		}
	ck_assert(found);
	ck_assert_int_eq(resp.status, 429);
}
END_TEST

Suite *
err_suite(void)
{
	Suite *s = suite_create("err");
	TCase *tc = tcase_create("table");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_err_table_covers_every_code);
	tcase_add_loop_test(tc, test_err_resp_error_every_code, 0,
	    sizeof(table) / sizeof(table[0]));
	tcase_add_test(tc, test_err_set_keeps_first);
	tcase_add_test(tc, test_err_reason_overrides_wire_code);
	tcase_add_test(tc, test_err_retry_after_header);
	suite_add_tcase(s, tc);
	return s;
}
