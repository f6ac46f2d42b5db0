/*
 * The migration runner behind `pivotactl migrate`.  Checksums are
 * computed by PostgreSQL (sha256() over the file's bytes), so the value
 * stored and the value compared come from the same function.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pv_db.h"
#include "pv_migrate.h"

#define MAX_MIGRATIONS 1000
#define MAX_FILE       (4u * 1024u * 1024u)

struct migration {
	char name[128]; /* file name, e.g. "0001_init.sql" */
	int version;    /* its NNNN */
};

static int
cmp_migration(const void *a, const void *b)
{
	return ((const struct migration *)a)->version -
	    ((const struct migration *)b)->version;
}

static int
is_sql(const char *name)
{
	size_t len = strlen(name);

	return len > 4 && strcmp(name + len - 4, ".sql") == 0;
}

/* NNNN_[a-z0-9_]+.sql; returns the version or -1. */
static int
parse_name(const char *name)
{
	size_t len = strlen(name), i;
	int v = 0;

	if (len < 10 || len >= sizeof(((struct migration *)0)->name) ||
	    strcmp(name + len - 4, ".sql") != 0 || name[4] != '_')
		return -1;
	for (i = 0; i < 4; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		v = v * 10 + (name[i] - '0');
	}
	for (i = 5; i < len - 4; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		        (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return -1;
	return v;
}

/* Lists dir's migrations in version order into arena memory. */
static int
list_dir(struct pv_ctx *ctx, const char *dir, struct migration **out, size_t *n,
    struct pv_err *err)
{
	struct migration *m;
	struct dirent *de;
	size_t count = 0, i;
	DIR *d;
	int v;

	if ((m = pv_arena_calloc(ctx->arena, MAX_MIGRATIONS, sizeof(*m),
	         err)) == NULL)
		return -1;
	if ((d = opendir(dir)) == NULL) {
		PV_ERR(err, PV_E_INVALID, "dir", "cannot open %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !is_sql(de->d_name))
			continue;
		if ((v = parse_name(de->d_name)) < 0 ||
		    count == MAX_MIGRATIONS) {
			PV_ERR(err, PV_E_INVALID, "dir",
			    "%s is not named NNNN_description.sql", de->d_name);
			closedir(d);
			return -1;
		}
		m[count].version = v;
		memcpy(m[count].name, de->d_name, strlen(de->d_name) + 1);
		count++;
	}
	closedir(d);
	qsort(m, count, sizeof(*m), cmp_migration);
	for (i = 1; i < count; i++) {
		if (m[i].version == m[i - 1].version) {
			PV_ERR(err, PV_E_INVALID, "dir",
			    "%s and %s share a version number", m[i - 1].name,
			    m[i].name);
			return -1;
		}
	}
	*out = m;
	*n = count;
	return 0;
}

/* Reads a whole file (at most MAX_FILE bytes) into the arena. */
static char *
slurp(struct pv_ctx *ctx, const char *path, struct pv_err *err)
{
	struct stat st;
	char *buf = NULL;
	size_t len;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) == -1) {
		PV_ERR(err, PV_E_INVALID, NULL, "cannot read %s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (st.st_size < 0 || (size_t)st.st_size > MAX_FILE) {
		PV_ERR(err, PV_E_INVALID, NULL, "%s is too large", path);
		goto out;
	}
	len = (size_t)st.st_size;
	if ((buf = pv_arena_alloc(ctx->arena, len + 1, err)) == NULL)
		goto out;
	if (fread(buf, 1, len, f) != len || memchr(buf, '\0', len) != NULL) {
		PV_ERR(err, PV_E_INVALID, NULL, "%s is unreadable or not text",
		    path);
		buf = NULL;
		goto out;
	}
	buf[len] = '\0';
out:
	if (f != NULL)
		fclose(f);
	return buf;
}

/* Applies one migration and records it, in one transaction. */
static int
apply(struct pv_ctx *ctx, const struct migration *m, const char *sql,
    struct pv_err *err)
{
	char ver[16];
	const char *p[3] = { ver, m->name, sql };
	int rc = -1;

	if (snprintf(ver, sizeof(ver), "%d", m->version) < 0) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "format failed");
		return -1;
	}
	if (pv_db_begin(ctx, err) == -1)
		return -1;
	if (pv_db_script(ctx, sql, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("INSERT INTO schema_migrations (version, name, checksum)"
	               " VALUES ($1::int, $2,"
	               " encode(sha256(convert_to($3, 'UTF8')), 'hex'))"),
	        3, p, NULL, err) == -1)
		goto out;
	rc = 0;
out:
	if (pv_db_end(ctx, rc == 0, err) == -1)
		rc = -1;
	return rc;
}

/* Applies pending migrations; see pv_migrate.h. */
int
pv_migrate_run(struct pv_ctx *ctx, const char *dir, FILE *out, int *applied,
    struct pv_err *err)
{
	struct migration *m;
	PGresult *res;
	const char *p[2];
	char *path, *sql, ver[16];
	size_t n, i;
	int rc = -1;

	*applied = 0;
	if (list_dir(ctx, dir, &m, &n, err) == -1 ||
	    pv_db_script(ctx,
	        "CREATE TABLE IF NOT EXISTS schema_migrations ("
	        " version integer PRIMARY KEY,"
	        " name text NOT NULL,"
	        " checksum text NOT NULL,"
	        " applied_at timestamptz NOT NULL DEFAULT now())",
	        err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT pg_advisory_lock(hashtext('pivota-migrate'))"),
	        0, NULL, NULL, err) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if ((path = pv_arena_printf(ctx->arena, err, "%s/%s", dir,
		         m[i].name)) == NULL ||
		    (sql = slurp(ctx, path, err)) == NULL ||
		    snprintf(ver, sizeof(ver), "%d", m[i].version) < 0)
			goto out;
		p[0] = ver;
		p[1] = sql;
		if (pv_db_exec(ctx,
		        PV_SQL("SELECT checksum = encode(sha256(convert_to($2,"
		               " 'UTF8')), 'hex'), name FROM schema_migrations"
		               " WHERE version = $1::int"),
		        2, p, &res, err) == -1)
			goto out;
		if (PQntuples(res) == 1) {
			if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
				PV_ERR(err, PV_E_INVALID, m[i].name,
				    "%s was edited after it was applied; "
				    "add a new migration instead",
				    m[i].name);
				goto out;
			}
			continue;
		}
		if (apply(ctx, &m[i], sql, err) == -1)
			goto out;
		(*applied)++;
		if (out != NULL)
			fprintf(out, "applied %s\n", m[i].name);
	}
	rc = 0;
out : {
	struct pv_err e2 = { 0 };

	(void)pv_db_exec(ctx,
	    PV_SQL("SELECT pg_advisory_unlock("
	           "hashtext('pivota-migrate'))"),
	    0, NULL, NULL, &e2);
}
	return rc;
}
