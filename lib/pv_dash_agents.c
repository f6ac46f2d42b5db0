/*
 * The dashboard's agents page: which agents buy from this merchant
 * (orders, paid, GMV and last order per currency) and a block / allow
 * button for each.  A block is a merchant_agent_blocks row (migration
 * 0017), honoured by the agent API's merchant scope (product search
 * and lookup, quotes, order creation).  Scoped by the session's
 * merchant like every page.
 */
#include <string.h>

#include "pv_dash_int.h"
#include "pv_valid.h"

/*
 * Agents with orders here or blocked here, one row per agent and
 * currency, the most recent buyer first.
 */
#define AGENTS_SQL \
	"WITH o AS (SELECT agent_id, currency, count(*) AS n," \
	"  count(paid_at) AS paid, coalesce(sum(total_minor) FILTER" \
	"  (WHERE paid_at IS NOT NULL), 0)::bigint AS gmv," \
	"  max(currency_exponent) AS e, max(created_at) AS last" \
	"  FROM orders WHERE merchant_id = $1 GROUP BY agent_id, currency)," \
	" b AS (SELECT agent_id FROM merchant_agent_blocks" \
	"  WHERE merchant_id = $1)," \
	" ids AS (SELECT agent_id FROM o UNION SELECT agent_id FROM b)" \
	" SELECT a.name AS agent, a.public_id AS agent_id," \
	"  coalesce(o.currency, '') AS currency," \
	"  coalesce(o.n, 0)::text AS created," \
	"  coalesce(o.paid, 0)::text AS paid," \
	"  coalesce(pv_money_text(o.gmv, o.e), '') AS gmv," \
	"  coalesce(pv_ts(o.last), '') AS last_order," \
	"  CASE WHEN b.agent_id IS NULL THEN 'allowed' ELSE 'blocked' END" \
	"  AS status," \
	"  CASE WHEN b.agent_id IS NULL THEN 'block' ELSE 'allow' END" \
	"  AS action," \
	"  CASE WHEN b.agent_id IS NULL THEN 'Block' ELSE 'Allow' END" \
	"  AS action_label," \
	"  CASE WHEN b.agent_id IS NULL THEN 'danger' ELSE '' END" \
	"  AS button_class" \
	" FROM ids JOIN agents a ON a.id = ids.agent_id" \
	" LEFT JOIN o ON o.agent_id = a.id" \
	" LEFT JOIN b ON b.agent_id = a.id" \
	" ORDER BY o.last DESC NULLS LAST, a.public_id, o.currency"

/* GET /dashboard/agents */
int
pv_dash_agents(struct dash *d, struct pv_err *err)
{
	const char *p[1] = { d->s.merchant_id };
	struct pv_tmpl_arg extra[] = { PV_TEXT("csrf", d->csrf), PV_END };
	PGresult *res;
	struct pv_html rows;

	if (pv_db_exec(d->ctx, PV_SQL(AGENTS_SQL), 1, p, &res, err) == -1 ||
	    pv_dash_rows(d, "partials/agent_block_row.html", res, extra, &rows,
	        err) == -1)
		return -1;
	{
		struct pv_tmpl_arg a[] = { PV_HTML("rows", &rows), PV_END };

		return pv_dash_page(d, 200, "Agents", "agents.html", a, err);
	}
}

/*
 * POST /dashboard/agents/block: agent (public id), action block|allow.
 * Any existing agent may be blocked (one that has not bought yet too);
 * an unknown id is 404.  Idempotent.
 */
int
pv_dash_agent_block(struct dash *d, struct pv_err *err)
{
	static const char *const actions[] = { "block", "allow", NULL };
	const char *agent = pv_dash_field(d, "agent");
	const char *p[2] = { d->s.merchant_id, agent };
	PGresult *res;
	size_t idx;

	if (pv_valid_enum(pv_dash_field(d, "action"), actions, &idx, "action",
	        err) == -1 ||
	    pv_valid_text(agent, strlen(agent), 1, 64, 0, "agent", err) == -1)
		return -1;
	if (pv_db_exec(d->ctx,
	        idx == 0 ?
	            PV_SQL("WITH a AS (SELECT id FROM agents"
	                   " WHERE public_id = $2),"
	                   " ins AS (INSERT INTO merchant_agent_blocks"
	                   " (merchant_id, agent_id) SELECT $1, id FROM a"
	                   " ON CONFLICT DO NOTHING)"
	                   " SELECT 1 FROM a") :
	            PV_SQL("WITH a AS (SELECT id FROM agents"
	                   " WHERE public_id = $2),"
	                   " del AS (DELETE FROM merchant_agent_blocks b"
	                   " USING a WHERE b.merchant_id = $1"
	                   " AND b.agent_id = a.id)"
	                   " SELECT 1 FROM a"),
	        2, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) == 0) {
		PV_ERR(err, PV_E_NOTFOUND, "agent", "no such agent");
		return -1;
	}
	return pv_dash_redirect(d,
	    idx == 0 ? "/dashboard/agents?m=blocked" :
	               "/dashboard/agents?m=allowed",
	    err);
}
