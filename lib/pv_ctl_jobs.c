/*
 * pivotactl jobs list|retry: the operator's view of the job queue
 * (pv_job.h).  Dead jobs stay in the table with their last error until
 * someone looks at them here and queues them again.
 */
#include <string.h>

#include <json-c/json.h>

#include "pv_ctl_int.h"
#include "pv_db.h"
#include "pv_job.h"

#define LIST_DEFAULT "50"
#define LIST_MAX     1000

static const char *const states[] = { "queued", "running", "done", "dead",
	NULL };

/*
 * pivotactl jobs list [--state S] [--kind K] [--limit N]: the newest
 * jobs first.  A filter on dead jobs reads the jobs_dead index.
 */
int
pv_ctl_jobs_list(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *p[3] = { NULL, NULL, LIST_DEFAULT };
	const struct pv_ctl_opt opts[] = { { "--state", 0, &p[0] },
		{ "--kind", 0, &p[1] }, { "--limit", 0, &p[2] },
		{ NULL, 0, NULL } };
	struct json_object *arr;
	PGresult *res;
	long limit;
	size_t i;

	if (pv_ctl_parse(argc, argv, opts, NULL, 0, 0, err) == -1 ||
	    pv_ctl_number(p[2], 1, LIST_MAX, "--limit", &limit, err) == -1)
		return -1;
	for (i = 0; p[0] != NULL && states[i] != NULL; i++)
		if (strcmp(states[i], p[0]) == 0)
			break;
	if (p[0] != NULL && states[i] == NULL)
		return pv_ctl_usage_error(err,
		    "--state must be queued, running, done or dead, not", p[0]);
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT id, kind, state, attempts, max_attempts,"
	               " to_char(run_at AT TIME ZONE 'UTC',"
	               "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS run_at,"
	               " to_char(updated_at AT TIME ZONE 'UTC',"
	               "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS updated_at,"
	               " locked_by, dedup_key, last_error FROM jobs"
	               " WHERE ($1::text IS NULL OR state = $1)"
	               " AND ($2::text IS NULL OR kind = $2)"
	               " ORDER BY id DESC LIMIT $3::int"),
	        3, p, &res, err) == -1 ||
	    (arr = pv_ctl_rows(res, err)) == NULL)
		return -1;
	if ((*out = pv_ctl_new_obj(err)) == NULL) {
		json_object_put(arr);
		return -1;
	}
	json_object_object_add(*out, "jobs", arr);
	return 0;
}

/* pivotactl jobs retry JOB_ID | --all-dead */
int
pv_ctl_jobs_retry(struct pv_ctx *ctx, int argc, char **argv,
    struct json_object **out, struct pv_err *err)
{
	const char *all = NULL, *id = NULL;
	const struct pv_ctl_opt opts[] = { { "--all-dead", 1, &all },
		{ NULL, 0, NULL } };
	long n;

	if (pv_ctl_parse(argc, argv, opts, &id, 0, 1, err) == -1)
		return -1;
	if ((all == NULL) == (id == NULL))
		return pv_ctl_usage_error(err, "give a JOB_ID or --all-dead,",
		    "not both");
	if (pv_job_retry(ctx, id, &n, err) == -1 ||
	    (*out = pv_ctl_new_obj(err)) == NULL)
		return -1;
	json_object_object_add(*out, "retried", json_object_new_int64(n));
	return 0;
}
