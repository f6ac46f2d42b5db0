/* Unit tests of pv_config: defaults, file, environment precedence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pv_config.h"
#include "pv_test.h"

static char path[64];
static const char *env_file;
static const char *env_url;
static const char *env_key;
static const char *env_env;

static const char *
lookup(const char *name)
{
	if (strcmp(name, "PIVOTA_CONFIG") == 0)
		return env_file;
	if (strcmp(name, "PIVOTA_DATABASE_URL") == 0)
		return env_url;
	if (strcmp(name, "PIVOTA_MASTER_KEY") == 0)
		return env_key;
	if (strcmp(name, "PIVOTA_ENV") == 0)
		return env_env;
	return NULL;
}

static void
write_file(const char *text)
{
	FILE *f;
	int fd;

	memcpy(path, "/tmp/pv_config_XXXXXX", 22);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	env_file = path;
}

static void
setup(void)
{
	env_file = env_url = env_key = env_env = NULL;
	path[0] = '\0';
}

static void
teardown(void)
{
	if (path[0] != '\0')
		unlink(path);
}

START_TEST(test_config_load_defaults)
{
	struct pv_err err = { 0 };
	struct pv_config cfg;

	ck_assert_int_eq(pv_config_load_from(&cfg, lookup, &err), 0);
	ck_assert_str_eq(cfg.database_url, "");
	ck_assert_int_eq(cfg.env, PV_ENV_DEV);
	ck_assert_uint_eq(cfg.body_max, 1048576);
	ck_assert_int_eq(cfg.have_master_key, 0);
	pv_config_free(&cfg);
}
END_TEST

START_TEST(test_config_load_env_beats_file)
{
	struct pv_err err = { 0 };
	struct pv_config cfg;

	write_file("# comment\n\nPIVOTA_DATABASE_URL = host=file\n"
	           "PIVOTA_BODY_MAX=2048\n");
	env_url = "host=env";
	env_key = "000102030405060708090a0b0c0d0e0f"
	          "101112131415161718191a1b1c1d1e1f";
	ck_assert_int_eq(pv_config_load_from(&cfg, lookup, &err), 0);
	ck_assert_str_eq(cfg.database_url, "host=env");
	ck_assert_uint_eq(cfg.body_max, 2048);
	ck_assert_int_eq(cfg.have_master_key, 1);
	ck_assert_uint_eq(cfg.master_key[31], 0x1f);
	pv_config_free(&cfg);
}
END_TEST

START_TEST(test_config_load_unknown_file_key_fails)
{
	struct pv_err err = { 0 };
	struct pv_config cfg;

	write_file("PIVOTA_DATABASE_ULR=typo\n");
	ck_assert_int_eq(pv_config_load_from(&cfg, lookup, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_ptr_nonnull(strstr(err.msg, "unknown key"));
}
END_TEST

START_TEST(test_config_load_bad_master_key_fails)
{
	struct pv_err err = { 0 };
	struct pv_config cfg;

	env_key = "not-hex";
	ck_assert_int_eq(pv_config_load_from(&cfg, lookup, &err), -1);
	ck_assert_str_eq(err.field, "PIVOTA_MASTER_KEY");
}
END_TEST

START_TEST(test_config_load_prod_needs_master_key)
{
	struct pv_err err = { 0 };
	struct pv_config cfg;

	env_env = "prod";
	ck_assert_int_eq(pv_config_load_from(&cfg, lookup, &err), -1);
	ck_assert_str_eq(err.field, "PIVOTA_MASTER_KEY");
	pv_err_clear(&err);
	env_env = "staging";
	ck_assert_int_eq(pv_config_load_from(&cfg, lookup, &err), -1);
	ck_assert_str_eq(err.field, "PIVOTA_ENV");
}
END_TEST

Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_config_load_defaults);
	tcase_add_test(tc, test_config_load_env_beats_file);
	tcase_add_test(tc, test_config_load_unknown_file_key_fails);
	tcase_add_test(tc, test_config_load_bad_master_key_fails);
	tcase_add_test(tc, test_config_load_prod_needs_master_key);
	suite_add_tcase(s, tc);
	return s;
}
