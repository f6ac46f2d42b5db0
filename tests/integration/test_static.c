/*
 * What the web server configs serve themselves, on every server
 * run.sh started: /static/ files with the right types (Chromium treats
 * an octet-stream page as a download), no directory listings, no dot
 * files, and the JSON error documents of www/errors for unknown paths.
 * run.sh puts the pv-probe.* files into the served static/.
 */
#include <stdlib.h>
#include <string.h>

#include "pv_httpc.h"
#include "pv_test.h"

#define MAX_SERVERS 8

static struct pv_httpc_server servers[MAX_SERVERS];
static size_t nservers;

static void
setup(void)
{
	nservers = pv_httpc_servers(servers, MAX_SERVERS);
	ck_assert_msg(nservers > 0,
	    "no PV_*_URL set: run these through tests/integration/run.sh");
}

static void
get(struct pv_httpc_resp *r, const struct pv_httpc_server *s, const char *path)
{
	char *url = pv_httpc_url(s->base, path);

	ck_assert_ptr_nonnull(url);
	ck_assert_msg(pv_httpc_get(r, url, NULL) == 0, "%s: %s", s->name,
	    r->error);
	free(url);
}

START_TEST(test_static_types)
{
	static const struct {
		const char *path, *type;
	} files[] = {
		{ "/static/pv-probe.css", "text/css" },
		{ "/static/pv-probe.js", "text/javascript" },
		{ "/static/pv-probe.html", "text/html" },
		{ "/static/pv-probe.svg", "image/svg+xml" },
		{ "/static/pv-probe.json", "application/json" },
	};
	struct pv_httpc_resp r;
	const char *ct, *nosniff;
	size_t i, k;

	for (i = 0; i < nservers; i++) {
		for (k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
			get(&r, &servers[i], files[k].path);
			ck_assert_msg(r.status == 200, "%s: %s: %ld",
			    servers[i].name, files[k].path, r.status);
			ct = pv_httpc_header(&r, "Content-Type");
			ck_assert_msg(ct != NULL &&
			        strncmp(ct, files[k].type,
			            strlen(files[k].type)) == 0,
			    "%s: %s: Content-Type %s, want %s", servers[i].name,
			    files[k].path, ct != NULL ? ct : "(none)",
			    files[k].type);
			nosniff = pv_httpc_header(&r, "X-Content-Type-Options");
			ck_assert_msg(nosniff != NULL &&
			        strcmp(nosniff, "nosniff") == 0,
			    "%s: %s: no X-Content-Type-Options: nosniff",
			    servers[i].name, files[k].path);
			pv_httpc_resp_free(&r);
		}
	}
}
END_TEST

START_TEST(test_static_no_listing_no_dotfiles)
{
	static const char *const paths[] = { "/static/", "/static", "/",
		"/.htaccess", "/static/.hidden", "/errors/" };
	struct pv_httpc_resp r;
	size_t i, k;

	for (i = 0; i < nservers; i++) {
		for (k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
			get(&r, &servers[i], paths[k]);
			ck_assert_msg(r.status == 403 || r.status == 404 ||
			        r.status == 301,
			    "%s: GET %s: %ld, want 403 or 404", servers[i].name,
			    paths[k], r.status);
			ck_assert_msg(strstr(r.body, "pv-probe") == NULL &&
			        strstr(r.body, "PIVOTA_") == NULL,
			    "%s: GET %s lists or leaks: %.200s",
			    servers[i].name, paths[k], r.body);
			pv_httpc_resp_free(&r);
		}
	}
}
END_TEST

/* An unknown path gets the server's JSON 404 (www/errors/404.json). */
START_TEST(test_static_unknown_path_is_json_404)
{
	struct pv_httpc_resp r;
	struct json_object *o;
	const char *type;
	size_t i;

	for (i = 0; i < nservers; i++) {
		get(&r, &servers[i], "/agent/v0/no-such-endpoint");
		ck_assert_msg(r.status == 404, "%s: %ld", servers[i].name,
		    r.status);
		o = pv_httpc_json(&r);
		ck_assert_msg(o != NULL, "%s: 404 body is not JSON: %.200s",
		    servers[i].name, r.body);
		type = pv_httpc_json_str(o, "error.type");
		ck_assert_msg(type != NULL && strcmp(type, "not_found") == 0,
		    "%s: error.type %s", servers[i].name,
		    type != NULL ? type : "(none)");
		json_object_put(o);
		pv_httpc_resp_free(&r);
	}
}
END_TEST

Suite *
static_suite(void)
{
	Suite *s = suite_create("static");
	TCase *tc = tcase_create("files");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_static_types);
	tcase_add_test(tc, test_static_no_listing_no_dotfiles);
	tcase_add_test(tc, test_static_unknown_path_is_json_404);
	suite_add_tcase(s, tc);
	return s;
}
