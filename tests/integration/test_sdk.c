/*
 * The agent developer kit (issue 10) against the real servers: the
 * Python SDK's tests (sdk/python/tests), the MCP server driven by the
 * official @modelcontextprotocol/sdk client (tests/node/mcp_client.mjs)
 * and docs/openapi.yaml linted and checked against every response of a
 * recorded flow (tests/node/openapi_check.mjs), all through lighttpd.
 *
 * The flows run against make run's demo stack: the real pivotactl
 * demo-seed makes the demo merchant (sandbox PSP, demo catalog) and the
 * demo agent; the child processes get them through the environment:
 * PIVOTA_API_URL, PIVOTA_API_KEY, PIVOTA_TEST_MERCHANT_ID,
 * PIVOTA_TEST_QUERY.  The node tools come from tests/node/node_modules,
 * which `make deps` installs with npm ci.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "pv_httpc.h"
#include "pv_proc.h"
#include "pv_test.h"

#define MAX_SERVERS 8

static struct pv_httpc_server servers[MAX_SERVERS];
static char merchant_id[64];
static char api_key[128];

/* The string member key of pivotactl's --json output, copied to dst. */
static void
json_field(const char *out, const char *key, char *dst, size_t size)
{
	struct json_object *o = json_tokener_parse(out);
	const char *v;

	ck_assert_msg(o != NULL, "pivotactl printed: %s", out);
	v = pv_httpc_json_str(o, key);
	ck_assert_msg(v != NULL, "no %s in %s", key, out);
	ck_assert_int_lt(snprintf(dst, size, "%s", v), (int)size);
	json_object_put(o);
}

/*
 * Once per case: make run's demo (pivotactl demo-seed: the demo
 * merchant on the sandbox PSP with the demo catalog, and the demo
 * agent) and the children's environment.
 */
static void
setup_kit(void)
{
	char out[8192];

	ck_assert_msg(pv_httpc_servers(servers, MAX_SERVERS) >= 1,
	    "need the servers: run these through tests/integration/run.sh");
	ck_assert_msg(pv_proc_ctl(out, sizeof(out), "demo-seed", "--json",
	                  NULL) == 0,
	    "demo-seed: %s", out);
	json_field(out, "merchant_id", merchant_id, sizeof(merchant_id));
	json_field(out, "agent_api_key", api_key, sizeof(api_key));
	ck_assert_int_eq(setenv("PIVOTA_API_URL", servers[0].base, 1), 0);
	ck_assert_int_eq(setenv("PIVOTA_API_KEY", api_key, 1), 0);
	ck_assert_int_eq(setenv("PIVOTA_TEST_MERCHANT_ID", merchant_id, 1), 0);
	ck_assert_int_eq(setenv("PIVOTA_TEST_QUERY", "hoodie", 1), 0);
	ck_assert_int_eq(setenv("PIVOTA_SDK_REQUIRE_LIVE", "1", 1), 0);
}

/* Runs argv (from the repository root, where run.sh starts us). */
static void
run(const char *const argv[])
{
	int rc = pv_proc_run(argv);

	ck_assert_msg(rc == 0, "%s %s exited with %d", argv[0], argv[1], rc);
}

START_TEST(test_sdk_python)
{
	const char *const argv[] = { "python3", "-m", "unittest", "discover",
		"-s", "sdk/python/tests", "-t", "sdk/python", NULL };

	run(argv);
}
END_TEST

START_TEST(test_sdk_mcp)
{
	const char *const argv[] = { "node", "tests/node/mcp_client.mjs",
		NULL };
	char bin[512];

	ck_assert_int_lt(snprintf(bin, sizeof(bin), "%s/bin/pivota-mcp",
	                     getenv("PV_BUILD_DIR")),
	    (int)sizeof(bin));
	ck_assert_int_eq(access(bin, X_OK), 0);
	ck_assert_int_eq(setenv("PIVOTA_MCP_BIN", bin, 1), 0);
	run(argv);
}
END_TEST

START_TEST(test_sdk_openapi)
{
	const char *const argv[] = { "node", "tests/node/openapi_check.mjs",
		"docs/openapi.yaml", NULL };
	char rec[512];

	ck_assert_int_lt(snprintf(rec, sizeof(rec), "%s/openapi-recorded.jsonl",
	                     getenv("PV_SCRATCH")),
	    (int)sizeof(rec));
	ck_assert_int_eq(setenv("PIVOTA_RECORD_FILE", rec, 1), 0);
	run(argv);
}
END_TEST

Suite *
sdk_suite(void)
{
	Suite *s = suite_create("sdk");
	TCase *tc = tcase_create("kit");

	tcase_add_unchecked_fixture(tc, setup_kit, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_sdk_python);
	tcase_add_test(tc, test_sdk_openapi);
	tcase_add_test(tc, test_sdk_mcp);
	suite_add_tcase(s, tc);
	return s;
}
